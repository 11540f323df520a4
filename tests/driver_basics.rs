//! The minimal driver against the real single-node replica set: handshake metadata, CRUD,
//! cursors over several batches, pool reuse, compression, retryable reads and writes through
//! fail points, and the errors a user meets.
#![allow(clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use bson::{RawBson, rawdoc};
use futures_util::StreamExt;
use mongowire::Error;
use mongowire::driver::Client;
use mongowire::protocol::crud::{FindOptions, UpdateModifications};
use mongowire::wire::Compressor;

async fn client(extra: &str) -> Option<Client> {
    let uri = common::single()?;
    Some(Client::connect(&common::with_options(&uri, extra)).await.unwrap())
}

#[tokio::test]
async fn handshake_metadata_reaches_the_server() {
    let Some(client) = client("appName=basics-metadata").await else {
        return;
    };
    let ops = client
        .database("admin")
        .run_command(rawdoc! { "currentOp": 1, "$ownOps": true, "$all": true })
        .await
        .unwrap();
    let ours = ops
        .get_array("inprog")
        .unwrap()
        .into_iter()
        .filter_map(|op| op.ok()?.as_document())
        .find(|op| op.get_str("appName").ok() == Some("basics-metadata"))
        .expect("a connection with our appName");
    let metadata = ours.get_document("clientMetadata").unwrap();
    assert_eq!(
        metadata.get_document("driver").unwrap().get_str("name").unwrap(),
        "mongowire"
    );
    assert_eq!(
        metadata.get_document("driver").unwrap().get_str("version").unwrap(),
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(metadata.get_document("os").unwrap().get_str("type").unwrap(), "Linux");
    client.shutdown().await;
}

#[tokio::test]
async fn crud_round_trip() {
    let Some(client) = client("").await else { return };
    let db = client.database(&common::unique_db("crud"));
    let coll = db.collection("things");
    let one = coll.insert_one(rawdoc! { "name": "a", "n": 1 }).await.unwrap();
    assert!(matches!(one.inserted_id, RawBson::ObjectId(_)));
    let many = coll
        .insert_many([
            rawdoc! { "_id": 10, "name": "b", "n": 2 },
            rawdoc! { "_id": 11, "name": "c", "n": 3 },
        ])
        .await
        .unwrap();
    assert_eq!(many.inserted_ids, [(0, RawBson::Int32(10)), (1, RawBson::Int32(11))]);

    let found = coll.find_one(rawdoc! { "_id": 10 }).await.unwrap().unwrap();
    assert_eq!(found.get_str("name").unwrap(), "b");

    let updated = coll
        .update_one(
            rawdoc! { "_id": 10 },
            UpdateModifications::Document(rawdoc! { "$inc": { "n": 5 } }),
        )
        .await
        .unwrap();
    assert_eq!((updated.matched_count, updated.modified_count), (1, 1));
    assert_eq!(
        coll.find_one(rawdoc! { "_id": 10 })
            .await
            .unwrap()
            .unwrap()
            .get_i32("n")
            .unwrap(),
        7
    );

    let many = coll
        .update_many(
            rawdoc! { "n": { "$gte": 1 } },
            UpdateModifications::Document(rawdoc! { "$set": { "seen": true } }),
        )
        .await
        .unwrap();
    assert_eq!(many.modified_count, 3);

    let replaced = coll
        .replace_one(rawdoc! { "_id": 11 }, rawdoc! { "name": "z" }, false)
        .await
        .unwrap();
    assert_eq!(replaced.modified_count, 1);
    let z = coll.find_one(rawdoc! { "_id": 11 }).await.unwrap().unwrap();
    assert!(z.get("n").unwrap().is_none(), "a replacement drops the other fields");
    let upserted = coll
        .replace_one(rawdoc! { "_id": 12 }, rawdoc! { "name": "new" }, true)
        .await
        .unwrap();
    assert_eq!(upserted.upserted_id, Some(RawBson::Int32(12)));

    assert_eq!(coll.delete_one(rawdoc! { "_id": 12 }).await.unwrap().deleted_count, 1);
    assert_eq!(coll.delete_many(rawdoc! {}).await.unwrap().deleted_count, 3);
    assert!(coll.find_one(rawdoc! {}).await.unwrap().is_none());

    let dup = coll
        .insert_many([rawdoc! { "_id": 1 }, rawdoc! { "_id": 1 }])
        .await
        .unwrap_err();
    assert_eq!(dup.as_server_error().unwrap().code, 11000, "{dup}");

    coll.drop().await.unwrap();
    coll.drop().await.unwrap();
    db.drop().await.unwrap();
    client.shutdown().await;
}

#[tokio::test]
async fn create_collection_with_options() {
    let Some(client) = client("").await else { return };
    let db = client.database(&common::unique_db("create"));
    db.create_collection(
        "images",
        Some(&rawdoc! { "changeStreamPreAndPostImages": { "enabled": true } }),
    )
    .await
    .unwrap();
    let listed = db
        .run_command(rawdoc! { "listCollections": 1, "filter": { "name": "images" } })
        .await
        .unwrap();
    let info = listed
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap()
        .get_document(0)
        .unwrap();
    let options = info.get_document("options").unwrap();
    assert!(
        options
            .get_document("changeStreamPreAndPostImages")
            .unwrap()
            .get_bool("enabled")
            .unwrap()
    );
    let again = db.create_collection("images", None).await.unwrap_err();
    assert_eq!(again.as_server_error().unwrap().code_name, "NamespaceExists");
    db.drop().await.unwrap();
}

#[tokio::test]
async fn a_cursor_spans_several_batches_and_is_killed_when_dropped_early() {
    let Some(client) = client("").await else { return };
    let db = client.database(&common::unique_db("cursor"));
    let coll = db.collection("numbers");
    coll.insert_many((0..25).map(|i| rawdoc! { "_id": i })).await.unwrap();

    let options = FindOptions {
        batch_size: Some(4),
        sort: Some(rawdoc! { "_id": 1 }),
        ..FindOptions::default()
    };
    let mut cursor = coll.find(rawdoc! {}, options.clone()).await.unwrap();
    let mut seen = Vec::new();
    while let Some(doc) = cursor.next().await {
        seen.push(doc.unwrap().get_i32("_id").unwrap());
    }
    assert_eq!(seen, (0..25).collect::<Vec<_>>(), "7 batches, nothing lost or repeated");
    assert_eq!(cursor.id(), 0);

    let open_before = common::number_at(&common::server_status(&client).await, "metrics.cursor.open.total");
    let mut early = coll.find(rawdoc! {}, options.clone()).await.unwrap();
    assert!(early.try_next().await.unwrap().is_some());
    assert_ne!(early.id(), 0);
    let during = common::number_at(&common::server_status(&client).await, "metrics.cursor.open.total");
    assert_eq!(during, open_before + 1);
    drop(early);
    let closed = common::eventually(Duration::from_secs(5), || async {
        common::number_at(&common::server_status(&client).await, "metrics.cursor.open.total") == open_before
    })
    .await;
    assert!(closed, "dropping the cursor killed it on the server");

    let explicit = coll.find(rawdoc! {}, options).await.unwrap();
    explicit.close().await;
    assert_eq!(
        common::number_at(&common::server_status(&client).await, "metrics.cursor.open.total"),
        open_before
    );
    db.drop().await.unwrap();
}

#[tokio::test]
async fn sequential_operations_reuse_one_pooled_connection() {
    let Some(client) = client("maxPoolSize=5").await else {
        return;
    };
    let db = client.database("admin");
    db.run_command(rawdoc! { "ping": 1 }).await.unwrap();
    let created = |status: &bson::RawDocument| common::number_at(status, "connections.totalCreated");
    let before = created(&common::server_status(&client).await);
    for _ in 0..50 {
        db.run_command(rawdoc! { "ping": 1 }).await.unwrap();
    }
    let after = created(&common::server_status(&client).await);
    assert_eq!(after, before, "50 commands opened no new connection");

    let concurrent: Vec<_> = (0..20)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                db.run_command(rawdoc! { "sleep": 1, "millis": 50, "lock": "none" })
                    .await
            })
        })
        .collect();
    for task in concurrent {
        task.await.unwrap().unwrap();
    }
    let burst = created(&common::server_status(&client).await);
    assert!(
        burst - after <= 5,
        "maxPoolSize=5 bounds the pool: {} new connections",
        burst - after
    );
}

#[tokio::test]
async fn each_compressor_is_used_for_commands() {
    let Some(uri) = common::single() else { return };
    let observer = Client::connect(&uri).await.unwrap();
    for compressor in [Compressor::Snappy, Compressor::Zlib, Compressor::Zstd] {
        // bytesOut: what the server got after decompressing what we sent.
        let path = format!("network.compression.{}.decompressor.bytesOut", compressor.name());
        let before = common::number_at(&common::server_status(&observer).await, &path);
        let client = Client::connect(&common::with_options(
            &uri,
            &format!("compressors={}", compressor.name()),
        ))
        .await
        .unwrap();
        let coll = client.database(&common::unique_db("compress")).collection("c");
        coll.insert_many((0..100).map(|i| rawdoc! { "_id": i, "pad": "x".repeat(500) }))
            .await
            .unwrap();
        let mut cursor = coll.find(rawdoc! {}, FindOptions::default()).await.unwrap();
        let mut count = 0;
        while let Some(doc) = cursor.next().await {
            doc.unwrap();
            count += 1;
        }
        assert_eq!(count, 100);
        let after = common::number_at(&common::server_status(&observer).await, &path);
        assert!(
            after > before + 10_000,
            "{compressor}: server decompressed {} bytes",
            after - before
        );
        client.database(coll.namespace().db.as_str()).drop().await.unwrap();
    }
}

#[tokio::test]
async fn retryable_write_survives_a_closed_connection_exactly_once() {
    let Some(client) = client("retryWrites=true").await else {
        return;
    };
    let coll = client.database(&common::unique_db("retry")).collection("w");
    coll.insert_one(rawdoc! { "_id": 0 }).await.unwrap();
    let fail = common::fail_point(
        &client,
        rawdoc! {
            "configureFailPoint": "failCommand", "mode": { "times": 1 },
            "data": { "failCommands": ["insert"], "closeConnection": true },
        },
    )
    .await;
    coll.insert_one(rawdoc! { "_id": 1 }).await.unwrap();
    fail.disable().await;
    let mut cursor = coll.find(rawdoc! {}, FindOptions::default()).await.unwrap();
    let mut ids = Vec::new();
    while let Some(doc) = cursor.next().await {
        ids.push(doc.unwrap().get_i32("_id").unwrap());
    }
    assert_eq!(ids, [0, 1], "the retried insert applied once");
    client.database(coll.namespace().db.as_str()).drop().await.unwrap();
}

#[tokio::test]
async fn retryable_read_survives_a_not_primary_error() {
    let Some(client) = client("").await else { return };
    let coll = client.database(&common::unique_db("retryread")).collection("r");
    coll.insert_one(rawdoc! { "_id": 1 }).await.unwrap();
    let fail = common::fail_point(
        &client,
        rawdoc! {
            "configureFailPoint": "failCommand", "mode": { "times": 1 },
            "data": { "failCommands": ["find"], "errorCode": 11600 },
        },
    )
    .await;
    let found = coll.find_one(rawdoc! { "_id": 1 }).await.unwrap();
    fail.disable().await;
    assert!(found.is_some());
    client.database(coll.namespace().db.as_str()).drop().await.unwrap();
}

#[tokio::test]
async fn a_non_retryable_error_surfaces_with_code_name_and_server() {
    let Some(client) = client("").await else { return };
    let error = client
        .database("admin")
        .run_command(rawdoc! { "noSuchCommand": 1 })
        .await
        .unwrap_err();
    let server = error.as_server_error().expect("a server error");
    assert_eq!((server.code, server.code_name.as_str()), (59, "CommandNotFound"));
    assert!(error.to_string().contains("127.0.0.1:27100"), "{error}");
}

#[tokio::test]
async fn server_selection_timeout_says_what_was_seen() {
    let Some(_) = common::single() else { return };
    let client = Client::connect("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=700&connectTimeoutMS=300")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let error = client
        .database("admin")
        .run_command(rawdoc! { "ping": 1 })
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    match &error {
        Error::ServerSelection(selection) => {
            assert_eq!(selection.timeout_ms, 700);
            assert!(selection.seen.contains("127.0.0.1:1"), "{error}");
            assert!(selection.seen.contains("connect"), "the last error is shown: {error}");
        }
        other => panic!("expected a server selection error, got {other}"),
    }
}

#[tokio::test]
async fn a_wrong_replica_set_name_never_selects_the_server() {
    let Some(_) = common::single() else { return };
    let uri = "mongodb://127.0.0.1:27100/?replicaSet=not-mw1&serverSelectionTimeoutMS=1000";
    let client = Client::connect(uri).await.unwrap();
    let error = client
        .database("admin")
        .run_command(rawdoc! { "ping": 1 })
        .await
        .unwrap_err();
    assert!(matches!(error, Error::ServerSelection(_)), "{error}");
}

#[tokio::test]
async fn invalid_connection_strings_are_usage_errors() {
    for (uri, fragment) in [
        ("mongo://x", "scheme"),
        ("mongodb://host:99999", "99999"),
        ("mongodb://a,b/?directConnection=true", "directConnection"),
    ] {
        let error = Client::connect(uri).await.unwrap_err();
        assert!(matches!(error, Error::Usage(_)), "{uri}: {error}");
        assert!(error.to_string().contains(fragment), "{uri}: {error}");
    }
}
