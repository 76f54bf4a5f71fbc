//! The `upward` command line: parses arguments and hands each subcommand to `cli/`.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("upward: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
