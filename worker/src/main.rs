//! `darkroom-worker`: see the `worker` crate.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match worker::config::run(worker::config::Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
