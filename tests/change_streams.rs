//! Change streams against the real replica sets: every option, every kind of resume, database and
//! cluster streams, invalidate and startAfter, split-event reassembly.
#![allow(clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use bson::rawdoc;
use mongowire::driver::Client;
use mongowire::protocol::change_stream::{ChangeStreamOptions, OperationType};

#[tokio::test]
async fn smoke_insert_is_seen() {
    let Some(uri) = common::single() else { return };
    let client = Client::connect(&uri).await.unwrap();
    let coll = client.database(&common::unique_db("cs_smoke")).collection("c");
    coll.insert_one(rawdoc! { "_id": 0 }).await.unwrap();
    let mut stream = coll.watch([], ChangeStreamOptions::default()).await.unwrap();
    assert!(stream.is_alive());
    coll.insert_one(rawdoc! { "_id": 1, "x": "hello" }).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(event.operation_type(), OperationType::Insert);
    assert_eq!(event.full_document().unwrap().get_str("x").unwrap(), "hello");
    assert_eq!(stream.resume_token().unwrap(), event.resume_token().to_owned());
    stream.close().await;
}
