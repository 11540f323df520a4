//! `mongowire record --listen ADDR --upstream HOST:PORT --out FILE`: a transparent recording
//! proxy; stops on Ctrl-C or SIGTERM and flushes the fixture.

use std::process::ExitCode;

use crate::signals::shutdown_signal;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Address to accept clients on, such as 127.0.0.1:27999 (port 0 picks a free one).
    #[arg(long)]
    listen: String,
    /// The server to forward to, HOST:PORT.
    #[arg(long)]
    upstream: String,
    /// The fixture file to write.
    #[arg(long)]
    out: std::path::PathBuf,
    /// What the session does, written into the fixture's header.
    #[arg(long, default_value = "")]
    description: String,
}

pub(crate) async fn run(args: &Args) -> ExitCode {
    let file = match std::fs::File::create(&args.out) {
        Ok(file) => file,
        Err(error) => {
            eprintln!("mongowire record: cannot create {}: {error}", args.out.display());
            return ExitCode::from(2);
        }
    };
    let (listener, address) = match mongowire::traffic::bind(&args.listen).await {
        Ok(bound) => bound,
        Err(error) => {
            eprintln!("mongowire record: cannot listen on {}: {error}", args.listen);
            return ExitCode::from(2);
        }
    };
    // The first line tells scripts where to connect (useful with port 0).
    println!("recording on {address}, forwarding to {}", args.upstream);
    let recorded = mongowire::traffic::record(
        listener,
        args.upstream.clone(),
        file,
        args.description.clone(),
        shutdown_signal(),
    )
    .await;
    match recorded {
        Ok(summary) => {
            eprintln!(
                "mongowire record: {} connections, {} entries written to {}",
                summary.connections,
                summary.entries,
                args.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("mongowire record: {error}");
            ExitCode::FAILURE
        }
    }
}
