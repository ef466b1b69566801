//! `init` (pid 1): starts the shell and exits with its exit code, which ends the boot.
#![cfg_attr(target_os = "none", no_std, no_main)]

use rampart_user::{println, sys};

rampart_user::entry!(
    init_main,
    "pid 1: starts the shell, ends the boot with its exit code"
);

fn init_main(_args: &str) -> i64 {
    println!("[init] starting sh");
    let pid = match sys::spawn("sh", "") {
        Ok(pid) => pid,
        Err(err) => {
            println!("[init] cannot start sh: {}", err.name());
            return 1;
        }
    };
    match sys::wait(Some(pid)) {
        Ok((_, code)) => {
            println!("[init] sh exited with code {code}");
            code
        }
        Err(err) => {
            println!("[init] wait for sh failed: {}", err.name());
            1
        }
    }
}
