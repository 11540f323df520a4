//! Inserts numbered documents, so there is something to watch: `{n, at}` (the `_id` a new
//! ObjectId) for n from 1, a few a second (or as fast as the server takes them with `--rate 0`).
//!
//! ```sh
//! cargo run --example writer -- --uri 'mongodb://127.0.0.1:27100/?replicaSet=mw1' --ns demo.orders
//! ```
//!
//! Options: `--uri URI`, `--ns DB.COLL` (default `demo.orders`), `--count N` (default: until
//! stopped), `--rate PER_SECOND` (default 5; 0 for no pause), `--start N` (first number, default 1).

use std::time::Duration;

use bson::rawdoc;
use mongowire::driver::Client;

struct Options {
    uri: String,
    db: String,
    collection: String,
    count: Option<u64>,
    rate: f64,
    start: i64,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        uri: "mongodb://127.0.0.1:27100/?replicaSet=mw1".into(),
        db: "demo".into(),
        collection: "orders".into(),
        count: None,
        rate: 5.0,
        start: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |what: &str| format!("{flag}: {value:?} is not {what}");
        match flag.as_str() {
            "--uri" => options.uri = value,
            "--ns" => {
                let (db, collection) = value.split_once('.').ok_or_else(|| number("DB.COLL"))?;
                (options.db, options.collection) = (db.into(), collection.into());
            }
            "--count" => options.count = Some(value.parse().map_err(|_| number("a count"))?),
            "--rate" => options.rate = value.parse().map_err(|_| number("a rate"))?,
            "--start" => options.start = value.parse().map_err(|_| number("a number"))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = options()?;
    let client = Client::connect(&options.uri).await?;
    let collection = client.database(&options.db).collection(&options.collection);
    let pause = (options.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / options.rate));
    let mut n = options.start;
    let end = options
        .count
        .map(|count| options.start.saturating_add(i64::try_from(count).unwrap_or(i64::MAX)));
    while end.is_none_or(|end| n < end) {
        collection
            .insert_one(rawdoc! { "n": n, "at": bson::DateTime::now() })
            .await?;
        n += 1;
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
    }
    client.shutdown().await;
    Ok(())
}
