//! The `mongowire` command.

mod decode;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// MongoDB wire-protocol tools.
#[derive(Parser)]
#[command(name = "mongowire", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every MongoDB message in files of raw wire messages as JSON lines.
    Decode(decode::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Decode(args) => decode::run(&args),
    }
}
