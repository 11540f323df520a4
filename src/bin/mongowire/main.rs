//! The `mongowire` command.

mod decode;
mod record;
mod replay;
mod signals;

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
    /// Record the traffic of clients through a transparent proxy into a fixture.
    Record(record::Args),
    /// Play a fixture's server side to a client and check it does what was recorded.
    Replay(replay::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode(args) => decode::run(&args),
        Command::Record(args) => runtime().block_on(record::run(&args)),
        Command::Replay(args) => runtime().block_on(replay::run(&args)),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    // ok: building a runtime fails only when the OS refuses threads or an event loop.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}
