//! The `mongowire` command.

mod checkpoint;
mod decode;
mod ping;
mod record;
mod replay;
mod signals;
mod watch;

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
    /// Tail a change stream as JSON lines, with durable resume checkpoints.
    Watch(watch::Args),
    /// Connect and report the deployment: members, primary, wire versions, round-trip times.
    Ping(ping::Args),
    /// Print every MongoDB message in captures (pcap, pcapng, mongoreplay), fixtures or raw message files as JSON lines.
    Decode(decode::Args),
    /// Record the traffic of clients through a transparent proxy into a fixture.
    Record(record::Args),
    /// Play a fixture's server side to a client and check it does what was recorded.
    Replay(replay::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Watch(args) => {
            init_logging(args.verbosity());
            runtime().block_on(watch::run(&args))
        }
        Command::Ping(args) => runtime().block_on(ping::run(&args)),
        Command::Decode(args) => decode::run(&args),
        Command::Record(args) => runtime().block_on(record::run(&args)),
        Command::Replay(args) => runtime().block_on(replay::run(&args)),
    }
}

/// Sends the library's tracing events to stderr: none at verbosity 0, `info` at 1, `debug` at 2
/// and `trace` beyond. `RUST_LOG` overrides.
fn init_logging(verbosity: u8) {
    let level = match verbosity {
        0 => return,
        1 => "mongowire=info",
        2 => "mongowire=debug",
        _ => "mongowire=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn runtime() -> tokio::runtime::Runtime {
    // ok: building a runtime fails only when the OS refuses threads or an event loop.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}
