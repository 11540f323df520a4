//! `mongowire ping --uri URI`: connects, waits until every server has been checked, and reports
//! the topology: members, their type, the primary, wire versions and round-trip times.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use bson::rawdoc;
use mongowire::driver::Client;
use mongowire::protocol::sdam::ServerType;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Connection string.
    #[arg(long)]
    uri: String,
}

pub(crate) async fn run(args: &Args) -> ExitCode {
    let client = match Client::connect(&args.uri).await {
        Ok(client) => client,
        Err(error) => {
            eprintln!("mongowire ping: {error}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let pinged = client.database("admin").run_command(rawdoc! { "ping": 1 }).await;
    let round_trip = started.elapsed();
    if let Err(error) = pinged {
        eprintln!("mongowire ping: {error}");
        return ExitCode::FAILURE;
    }
    // Give each monitor a moment to report, so members the seed list did not name show up too.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline
        && client
            .topology()
            .servers()
            .values()
            .any(|s| s.server_type == ServerType::Unknown && s.error.is_none())
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let topology = client.topology();
    let set = topology.set_name().map(|s| format!(" {s:?}")).unwrap_or_default();
    println!(
        "topology {}{set}, ping {:.1} ms",
        topology.topology_type(),
        round_trip.as_secs_f64() * 1000.0
    );
    for server in topology.servers().values() {
        let role = if topology.primary().is_some_and(|p| p.address == server.address) {
            " (primary)"
        } else {
            ""
        };
        let rtt = server
            .round_trip_time
            .map(|d| format!("{:.1} ms", d.as_secs_f64() * 1000.0))
            .unwrap_or("-".into());
        let wire = if server.server_type == ServerType::Unknown {
            "-".to_owned()
        } else {
            format!("{}..{}", server.min_wire_version, server.max_wire_version)
        };
        print!(
            "  {:<24} {:<12}{role} wire {wire:<6} rtt {rtt}",
            server.address.to_string(),
            server.server_type.name()
        );
        match &server.error {
            Some(error) => println!("  error: {error}"),
            None => println!(),
        }
    }
    client.shutdown().await;
    ExitCode::SUCCESS
}
