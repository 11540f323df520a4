//! The official driver's side of `scripts/bench-latency`, with the same arguments and output as
//! mongowire's `examples/latency.rs`: one change stream per collection `DB.lat0` ..
//! `DB.lat{K-1}`, each consumed by its own task; `ready` once all are open; then, after TOTAL
//! events, one line `k n unix_ns` per event (wall-clock arrival time).
//!
//! usage: peer-rust-official-latency --uri URI --db DB --streams K --n TOTAL

use std::time::{SystemTime, UNIX_EPOCH};

use bson::Document;
use futures_util::StreamExt;
use tokio::sync::mpsc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn unix_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let uri = arg(&args, "--uri").ok_or("--uri URI")?;
    let db = arg(&args, "--db").ok_or("--db DB")?;
    let streams: usize = arg(&args, "--streams").ok_or("--streams K")?.parse()?;
    let total: usize = arg(&args, "--n").ok_or("--n TOTAL")?.parse()?;

    let client = mongodb::Client::with_uri_str(&uri).await?;
    let database = client.database(&db);
    let (arrived, mut arrivals) = mpsc::unbounded_channel();
    let mut tasks = Vec::with_capacity(streams);
    for k in 0..streams {
        let collection = database.collection::<Document>(&format!("lat{k}"));
        let mut stream = collection.watch().await?;
        let arrived = arrived.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(event) = stream.next().await {
                let at = unix_ns();
                let n = event?
                    .full_document
                    .and_then(|d| d.get_i64("n").ok())
                    .ok_or("an insert without an integer n")?;
                if arrived.send((k, n, at)).is_err() {
                    break;
                }
            }
            Ok::<_, BoxError>(())
        }));
    }
    drop(arrived);
    println!("ready");

    let mut seen = Vec::with_capacity(total);
    while seen.len() < total {
        let Some(arrival) = arrivals.recv().await else { break };
        seen.push(arrival);
    }
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        if let Ok(Err(e)) = task.await {
            return Err(e);
        }
    }
    let mut out = String::with_capacity(seen.len() * 32);
    for (k, n, at) in &seen {
        out.push_str(&format!("{k} {n} {at}\n"));
    }
    print!("{out}");
    client.shutdown().await;
    Ok(())
}
