//! The `stowage` command-line tool.
//!
//! Exit codes: 0 success; 1 the work failed (the message names what and where: the file, URL, segment,
//! line and column, and what to try); 2 the command line is wrong; 130 a download was interrupted with
//! Ctrl-C and suspended (finished segments are kept; `stowage resume` continues).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            cli::report_error(&e);
            ExitCode::FAILURE
        }
    }
}
