//! mongowire as a minimal embedded driver: connect, write, read back with a cursor.
//!
//! ```sh
//! scripts/mongod start single
//! cargo run --example embed -- 'mongodb://127.0.0.1:27100/?replicaSet=mw1'
//! ```

use bson::rawdoc;
use futures_util::StreamExt;
use mongowire::driver::Client;
use mongowire::protocol::crud::{FindOptions, UpdateModifications};

#[tokio::main]
async fn main() -> Result<(), mongowire::Error> {
    let uri = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "mongodb://127.0.0.1:27100/?replicaSet=mw1".into());
    let client = Client::connect(&uri).await?;
    let orders = client.database("shop").collection("orders");

    orders
        .insert_many((1..=5).map(|i| rawdoc! { "_id": i, "item": format!("item-{i}"), "qty": i * 10 }))
        .await?;
    orders
        .update_one(
            rawdoc! { "_id": 3 },
            UpdateModifications::Document(rawdoc! { "$inc": { "qty": 1 } }),
        )
        .await?;

    let options = FindOptions {
        sort: Some(rawdoc! { "qty": -1 }),
        batch_size: Some(2),
        ..FindOptions::default()
    };
    let mut cursor = orders.find(rawdoc! { "qty": { "$gte": 20 } }, options).await?;
    while let Some(order) = cursor.next().await {
        let order = order?;
        println!(
            "{} x{}",
            order.get_str("item").unwrap_or("?"),
            order.get_i32("qty").unwrap_or(0)
        );
    }

    orders.drop().await?;
    client.shutdown().await;
    Ok(())
}
