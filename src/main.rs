//! The `upward` command line: parses arguments and hands each subcommand to `cli/`.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(i) = err.downcast_ref::<cli::Interrupted>() {
                eprintln!("upward: {i}");
                return ExitCode::from(i.exit_code());
            }
            // The chain of causes on one line, never a backtrace.
            let err: &(dyn std::error::Error + 'static) = err.as_ref();
            eprintln!("upward: error: {}", upward::term::error_text(err));
            ExitCode::FAILURE
        }
    }
}
