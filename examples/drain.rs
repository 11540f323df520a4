//! Drains N change events and prints one JSON line of figures: mongowire's entry in the
//! side-by-side benchmark (`scripts/bench-drain`), with the same arguments and output as the
//! reference clients in `../shared/peers/`, so every client does the same work.
//!
//! ```sh
//! cargo run --release --example drain -- --uri URI --ns DB.COLL --start-at T:I --n N [--raw] [--batch-size B] [--prefetch]
//! ```
//!
//! By default each event is converted in full into `ChangeStreamEvent<bson::Document>`
//! ([`ChangeEvent::to_typed`](mongowire::protocol::change_stream::ChangeEvent::to_typed)), what
//! the official driver's typed stream yields; `--raw` takes the events as the server sent them
//! (views into the reply, no parsing), like its `RawDocumentBuf` stream. `--prefetch` asks for
//! the next batch while the current one is consumed.

use std::time::Instant;

use bson::Timestamp;
use mongowire::driver::Client;
use mongowire::protocol::change_stream::ChangeStreamOptions;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let uri = arg(&args, "--uri").unwrap_or_else(|| "mongodb://127.0.0.1:27100/?replicaSet=mw1".into());
    let ns = arg(&args, "--ns").ok_or("--ns DB.COLL")?;
    let (db, coll) = ns.split_once('.').ok_or("--ns DB.COLL")?;
    let n: u64 = arg(&args, "--n").ok_or("--n N")?.parse()?;
    let start = arg(&args, "--start-at").ok_or("--start-at T:I")?;
    let (time, increment) = start.split_once(':').ok_or("--start-at T:I")?;
    let batch_size = arg(&args, "--batch-size").map(|b| b.parse()).transpose()?;
    let raw = args.iter().any(|a| a == "--raw");
    let prefetch = args.iter().any(|a| a == "--prefetch");

    let client = Client::connect(&uri).await?;
    let options = ChangeStreamOptions {
        start_at_operation_time: Some(Timestamp {
            time: time.parse()?,
            increment: increment.parse()?,
        }),
        batch_size,
        prefetch,
        ..ChangeStreamOptions::default()
    };
    let started = Instant::now();
    let mut stream = client.database(db).collection(coll).watch([], options).await?;
    let mut seen = 0_u64;
    while seen < n {
        let Some(event) = stream.next().await else { break };
        let event = event?;
        if !raw {
            event.to_typed()?;
        }
        seen += 1;
    }
    let wall = started.elapsed().as_secs_f64();
    let name = match (raw, prefetch) {
        (false, false) => "mongowire",
        (true, false) => "mongowire-raw",
        (false, true) => "mongowire-prefetch",
        (true, true) => "mongowire-raw-prefetch",
    };
    println!(
        "{{\"client\":\"{name}\",\"events\":{seen},\"wall_s\":{wall:.4},\"events_per_s\":{:.0}}}",
        seen as f64 / wall
    );
    stream.close().await;
    client.shutdown().await;
    Ok(())
}
