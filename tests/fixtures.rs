//! Protocol fixtures: recording real traffic through `mongowire::traffic::record`, reading it
//! back, re-encoding every message byte for byte, and replaying it against mongowire's client.
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation, clippy::cast_sign_loss)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bson::rawdoc;
use mongowire::capture::{Fixture, FixtureEvent};
use mongowire::driver::Client;
use mongowire::protocol::change_stream::ChangeStreamOptions;
use mongowire::protocol::crud::UpdateModifications;

/// A `Write` into a shared buffer, to read the fixture after the recorder is done.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_recorded_change_stream_replays_with_the_same_events() {
    let Some(uri) = common::single() else { return };
    let (listener, proxy) = mongowire::traffic::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let out = Shared::default();
    let recorder = {
        let out = out.clone();
        tokio::spawn(async move {
            let stop = async {
                let _ = stopped.await;
            };
            mongowire::traffic::record(listener, "127.0.0.1:27100".into(), out, "test".into(), stop).await
        })
    };

    // The watcher goes through the proxy; the writer straight to the server.
    let watcher = Client::connect(&format!("mongodb://{proxy}/?directConnection=true&compressors=zstd"))
        .await
        .unwrap();
    let writer = Client::connect(&uri).await.unwrap();
    let db = common::unique_db("fixture_rt");
    let coll = writer.database(&db).collection("c");
    coll.insert_one(rawdoc! { "_id": -1 }).await.unwrap();
    let options = ChangeStreamOptions {
        max_await_time: Some(Duration::from_millis(100)),
        ..ChangeStreamOptions::default()
    };
    let mut stream = watcher.database(&db).collection("c").watch([], options).await.unwrap();
    coll.insert_many((0..3).map(|i| rawdoc! { "_id": i })).await.unwrap();
    coll.update_one(
        rawdoc! { "_id": 1 },
        UpdateModifications::Document(rawdoc! { "$set": { "x": 1 } }),
    )
    .await
    .unwrap();
    coll.delete_one(rawdoc! { "_id": 2 }).await.unwrap();
    let mut tokens = Vec::new();
    for _ in 0..5 {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        tokens.push(event.resume_token().to_owned());
    }
    stream.close().await;
    watcher.shutdown().await;
    let _ = stop.send(());
    let summary = recorder.await.unwrap().unwrap();
    assert!(
        summary.connections >= 2,
        "a monitor and an operation connection: {summary:?}"
    );

    let bytes = out.0.lock().unwrap().clone();
    let fixture = Fixture::read(bytes.as_slice()).unwrap();
    assert_eq!(fixture.header.upstream, "127.0.0.1:27100");
    let messages = common::fixtures::assert_reencodes(&fixture);
    assert!(messages >= 8, "{messages} messages");
    assert!(
        fixture
            .entries
            .iter()
            .any(|e| matches!(&e.event, FixtureEvent::Message(b) if b.get(12..16) == Some(&2012i32.to_le_bytes()))),
        "zstd-compressed messages were recorded as they travelled"
    );
    let recorded = common::fixtures::recorded_stream(&fixture).unwrap();
    assert_eq!(recorded.events.len(), 5);
    assert_eq!(
        recorded
            .events
            .iter()
            .map(|e| e.get_document("_id").unwrap().to_owned())
            .collect::<Vec<_>>(),
        tokens,
        "the fixture holds the events the client saw"
    );

    let report = common::fixtures::replay_change_stream(&fixture).await;
    assert!(report.passed(), "{report:?}");
    assert!(report.operations >= 3, "aggregate, getMores, killCursors: {report:?}");
    writer.database(&db).drop().await.unwrap();
}

#[tokio::test]
async fn replay_reports_the_first_request_that_differs() {
    let Some(uri) = common::single() else { return };
    // Record a find, then replay it to a client that sends another one.
    let (listener, proxy) = mongowire::traffic::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let out = Shared::default();
    let recorder = {
        let out = out.clone();
        tokio::spawn(async move {
            mongowire::traffic::record(listener, "127.0.0.1:27100".into(), out, "find".into(), async {
                let _ = stopped.await;
            })
            .await
        })
    };
    let client = Client::connect(&format!("mongodb://{proxy}/?directConnection=true"))
        .await
        .unwrap();
    let _ = Client::connect(&uri).await.unwrap();
    client
        .database("admin")
        .run_command(rawdoc! { "listDatabases": 1, "nameOnly": true })
        .await
        .unwrap();
    client.shutdown().await;
    let _ = stop.send(());
    recorder.await.unwrap().unwrap();
    let fixture = Fixture::read(out.0.lock().unwrap().as_slice()).unwrap();

    let (listener, address) = mongowire::traffic::bind("127.0.0.1:0").await.unwrap();
    let replay =
        tokio::spawn(async move { mongowire::traffic::replay(listener, &fixture, Duration::from_secs(3)).await });
    let client = Client::connect(&format!("mongodb://{address}/?directConnection=true"))
        .await
        .unwrap();
    let error = client
        .database("admin")
        .run_command(rawdoc! { "listDatabases": 1, "nameOnly": false })
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("mongowire replay: request differs"),
        "{error}"
    );
    client.shutdown().await;
    let report = replay.await.unwrap().unwrap();
    assert!(!report.passed());
    let mismatch = report.mismatch.unwrap();
    assert_eq!(
        (mismatch.expected.as_str(), mismatch.got.as_str()),
        ("listDatabases", "listDatabases")
    );
    assert_eq!(mismatch.diff, "- nameOnly: true\n+ nameOnly: false\n");
}
