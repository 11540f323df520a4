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
    /// Print every MongoDB message in captures (pcap, pcapng, mongoreplay) or raw message files as JSON lines.
    Decode(decode::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Decode(args) => decode::run(&args),
    }
}
