//! A tiny command-line parser: `--name value`, `--name=value` and bare `--flag`.

use crate::error::{Error, Result};

/// The arguments after the subcommand, consumed option by option.
pub struct Args {
    rest: Vec<String>,
}

impl Args {
    pub fn new(rest: Vec<String>) -> Self {
        Args { rest }
    }

    /// Takes `--name VALUE` or `--name=VALUE`; `None` when the option is absent.
    pub fn value(&mut self, name: &str) -> Result<Option<String>> {
        let long = format!("--{name}");
        let prefix = format!("--{name}=");
        let Some(index) = self
            .rest
            .iter()
            .position(|arg| *arg == long || arg.starts_with(&prefix))
        else {
            return Ok(None);
        };
        let arg = self.rest.remove(index);
        if let Some(value) = arg.strip_prefix(&prefix) {
            return Ok(Some(value.to_string()));
        }
        if index < self.rest.len() && !self.rest[index].starts_with("--") {
            return Ok(Some(self.rest.remove(index)));
        }
        Err(Error::Usage(format!("{long} needs a value")))
    }

    /// Takes `--name VALUE` and parses it with `parse`, naming the option in the error.
    pub fn parsed<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        expected: &str,
    ) -> Result<Option<T>> {
        match self.value(name)? {
            None => Ok(None),
            Some(text) => parse(&text)
                .map(Some)
                .ok_or_else(|| Error::Usage(format!("--{name} {text}: expected {expected}"))),
        }
    }

    /// Takes a bare `--name` flag.
    pub fn flag(&mut self, name: &str) -> bool {
        let long = format!("--{name}");
        let before = self.rest.len();
        self.rest.retain(|arg| *arg != long);
        self.rest.len() != before
    }

    /// Fails if anything was left unconsumed.
    pub fn finish(self) -> Result<()> {
        match self.rest.first() {
            None => Ok(()),
            Some(arg) => Err(Error::Usage(format!("unexpected argument `{arg}`"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Args {
        Args::new(text.split_whitespace().map(String::from).collect())
    }

    #[test]
    fn takes_values_in_both_spellings() {
        let mut a = args("--mode native --out=/tmp/x.img");
        assert_eq!(a.value("out").unwrap().as_deref(), Some("/tmp/x.img"));
        assert_eq!(a.value("mode").unwrap().as_deref(), Some("native"));
        assert_eq!(a.value("cpu").unwrap(), None);
        a.finish().unwrap();
    }

    #[test]
    fn missing_value_is_an_error() {
        let mut a = args("--timeout --mode hv");
        assert!(a.value("timeout").is_err());
    }

    #[test]
    fn flags_and_leftovers() {
        let mut a = args("--skip-host --bogus");
        assert!(a.flag("skip-host"));
        assert!(!a.flag("list"));
        assert!(a.finish().is_err());
    }

    #[test]
    fn parsed_reports_the_option() {
        let mut a = args("--timeout soon");
        let err = a.parsed("timeout", |s| s.parse::<u64>().ok(), "seconds");
        assert!(err.unwrap_err().to_string().contains("--timeout soon"));
    }
}
