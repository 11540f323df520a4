//! Measures getMore prefetch: drains the same backlog of change events with prefetch off and on,
//! alternating runs, with a consumer that spends `--work-us` of CPU on each event, and prints the
//! median wall time of each and their ratio.
//!
//! ```sh
//! scripts/mongod start single
//! cargo run --release --example prefetch -- --n 20000 --work-us 20 --runs 5
//! ```

use std::time::{Duration, Instant};

use bson::rawdoc;
use mongowire::driver::Client;
use mongowire::protocol::change_stream::ChangeStreamOptions;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

fn spin(work: Duration) {
    let until = Instant::now() + work;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

#[tokio::main]
async fn main() -> Result<(), mongowire::Error> {
    let uri = arg("--uri", "mongodb://127.0.0.1:27100/?replicaSet=mw1");
    let n: usize = arg("--n", "20000").parse().expect("--n N");
    let work = Duration::from_micros(arg("--work-us", "20").parse().expect("--work-us MICROS"));
    let runs: usize = arg("--runs", "5").parse().expect("--runs R");
    let batch_size: u32 = arg("--batch-size", "1000").parse().expect("--batch-size B");

    let client = Client::connect(&uri).await?;
    let coll = client.database("mongowire_bench").collection("prefetch");
    coll.drop().await?;
    coll.insert_one(rawdoc! { "_id": -1 }).await?;
    let start = client.database("admin").run_command(rawdoc! { "ping": 1 }).await?;
    let start = start.get_timestamp("operationTime").expect("operationTime");
    let pad = "x".repeat(900);
    let ids: Vec<i64> = (0..i64::try_from(n).expect("--n fits i64")).collect();
    for chunk in ids.chunks(1000) {
        coll.insert_many(chunk.iter().map(|&i| rawdoc! { "_id": i, "pad": pad.as_str() }))
            .await?;
    }

    let (mut off_times, mut on_times) = (Vec::new(), Vec::new());
    for run in 0..runs * 2 {
        let prefetch = run % 2 == 1;
        let options = ChangeStreamOptions {
            start_at_operation_time: Some(start),
            batch_size: Some(batch_size),
            prefetch,
            ..ChangeStreamOptions::default()
        };
        let started = Instant::now();
        let mut stream = coll
            .watch([rawdoc! { "$match": { "documentKey._id": { "$gte": 0 } } }], options)
            .await?;
        let mut seen = 0;
        while seen < n {
            match stream.next().await {
                Some(event) => {
                    event?;
                    spin(work);
                    seen += 1;
                }
                None => break,
            }
        }
        if prefetch { &mut on_times } else { &mut off_times }.push(started.elapsed());
        stream.close().await;
        assert_eq!(seen, n, "every event of the backlog");
    }
    let median = |t: &mut Vec<Duration>| {
        t.sort();
        t.get(t.len() / 2).copied().unwrap_or_default()
    };
    let (off, on) = (median(&mut off_times), median(&mut on_times));
    println!(
        "{n} events of ~1 KB, batchSize {batch_size}, {} us of work per event, {runs} runs each",
        work.as_micros()
    );
    println!(
        "prefetch off: median {:.3} s ({:.0} events/s)",
        off.as_secs_f64(),
        n as f64 / off.as_secs_f64()
    );
    println!(
        "prefetch on:  median {:.3} s ({:.0} events/s)",
        on.as_secs_f64(),
        n as f64 / on.as_secs_f64()
    );
    println!("on / off: {:.2}", on.as_secs_f64() / off.as_secs_f64());
    coll.drop().await?;
    client.shutdown().await;
    Ok(())
}
