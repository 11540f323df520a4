//! The driver against the real 3-member replica set: discovery from one seed, read
//! preferences, and failover while writing.
#![allow(clippy::indexing_slicing)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use bson::rawdoc;
use futures_util::StreamExt;
use mongowire::driver::Client;
use mongowire::protocol::crud::FindOptions;
use mongowire::protocol::sdam::TopologyType;
use mongowire::protocol::{ReadPreference, ReadPreferenceMode};

#[tokio::test]
async fn discovers_every_member_from_one_seed() {
    let Some(_) = common::rs3() else { return };
    let client = Client::connect("mongodb://127.0.0.1:27103/?replicaSet=mw3&heartbeatFrequencyMS=500")
        .await
        .unwrap();
    client
        .database("admin")
        .run_command(rawdoc! { "ping": 1 })
        .await
        .unwrap();
    let complete = common::eventually(Duration::from_secs(20), || async {
        client.topology().servers().len() == 3 && common::secondaries(&client).len() == 2
    })
    .await;
    let topology = client.topology();
    assert!(complete, "{}", topology.describe());
    assert_eq!(topology.topology_type(), TopologyType::ReplicaSetWithPrimary);
    assert_eq!(topology.set_name(), Some("mw3"));
    let ports: Vec<u16> = topology.servers().keys().map(|a| a.port()).collect();
    assert_eq!(ports, [27101, 27102, 27103]);
    assert!(topology.servers().values().all(|s| s.round_trip_time.is_some()));
    client.shutdown().await;
}

#[tokio::test]
async fn read_preference_secondary_reads_from_a_secondary() {
    let Some(uri) = common::rs3() else { return };
    let client = Client::connect(&uri).await.unwrap();
    let admin = client.database("admin");
    let on_primary = admin.run_command(rawdoc! { "hello": 1 }).await.unwrap();
    assert!(on_primary.get_bool("isWritablePrimary").unwrap());
    for _ in 0..5 {
        let on_secondary = admin
            .run_command_with(
                rawdoc! { "hello": 1 },
                ReadPreference::with_mode(ReadPreferenceMode::Secondary),
            )
            .await
            .unwrap();
        assert!(on_secondary.get_bool("secondary").unwrap(), "{on_secondary:?}");
        assert_ne!(on_secondary.get_str("me").unwrap(), on_primary.get_str("me").unwrap());
    }
    client.shutdown().await;
}

/// Writes numbered documents with `w: majority` while the primary steps down; every
/// acknowledged write must be there afterwards, and the retry must hide the failover.
#[tokio::test]
async fn step_down_during_writes_loses_nothing() {
    let Some(uri) = common::rs3() else { return };
    let client = Client::connect(&common::with_options(
        &uri,
        "w=majority&retryWrites=true&heartbeatFrequencyMS=500",
    ))
    .await
    .unwrap();
    let db_name = common::unique_db("stepdown");
    let coll = client.database(&db_name).collection("numbers");
    coll.insert_one(rawdoc! { "_id": -1 }).await.unwrap();
    let writes = 600;
    let progress = Arc::new(AtomicI32::new(0));
    let writer = {
        let (coll, progress) = (coll.clone(), progress.clone());
        tokio::spawn(async move {
            let mut failures = Vec::new();
            for i in 0..writes {
                if let Err(e) = coll.insert_one(rawdoc! { "_id": i }).await {
                    failures.push((i, e.to_string()));
                }
                progress.store(i + 1, Ordering::SeqCst);
            }
            failures
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = client
        .topology()
        .primary()
        .map(|p| p.address.clone())
        .expect("a primary");
    let step_down = client
        .database("admin")
        .run_command(rawdoc! { "replSetStepDown": 10, "secondaryCatchUpPeriodSecs": 5 })
        .await;
    assert!(
        step_down.is_ok() || step_down.as_ref().is_err_and(|e| e.is_network_error()),
        "{step_down:?}"
    );
    let failures = writer.await.unwrap();
    assert!(failures.is_empty(), "writes failed across the failover: {failures:?}");
    let changed = common::eventually(Duration::from_secs(30), || async {
        client.topology().primary().is_some_and(|p| p.address != before)
    })
    .await;
    assert!(changed, "a new primary was elected: {}", client.topology().describe());

    let mut cursor = coll
        .find(
            rawdoc! {},
            FindOptions {
                sort: Some(rawdoc! { "_id": 1 }),
                ..FindOptions::default()
            },
        )
        .await
        .unwrap();
    let mut ids = Vec::new();
    while let Some(doc) = cursor.next().await {
        ids.push(doc.unwrap().get_i32("_id").unwrap());
    }
    assert_eq!(
        ids,
        (-1..writes).collect::<Vec<_>>(),
        "every acknowledged write is there, once"
    );
    client.database(&db_name).drop().await.unwrap();
    client.shutdown().await;
}
