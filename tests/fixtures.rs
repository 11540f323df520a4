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

fn committed() -> Vec<(String, Fixture)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol-fixtures");
    let mut fixtures: Vec<(String, Fixture)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
        .map(|path| {
            let file = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let fixture = Fixture::read(file).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, fixture)
        })
        .collect();
    fixtures.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(fixtures.len() >= 15, "the committed fixtures are all there");
    fixtures
}

#[test]
fn every_committed_fixture_decodes_and_re_encodes_to_its_bytes() {
    for (name, fixture) in committed() {
        let messages = common::fixtures::assert_reencodes(&fixture);
        assert!(messages >= 4, "{name}: {messages} messages");
        assert!(!fixture.header.description.is_empty(), "{name} says what it records");
    }
}

#[test]
fn the_committed_fixtures_cover_what_the_issue_lists() {
    let fixtures = committed();
    let all_text = |name: &str| -> String {
        let (_, fixture) = fixtures
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name}"));
        let mut out = Vec::new();
        fixture.write(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    let operation_types = all_text("cs-operation-types");
    for kind in [
        "create",
        "insert",
        "update",
        "replace",
        "delete",
        "createIndexes",
        "dropIndexes",
        "modify",
        "rename",
        "invalidate",
    ] {
        assert!(
            operation_types.contains(&format!("\"operationType\":\"{kind}\"")),
            "operation type {kind}"
        );
    }
    let drop_database = all_text("cs-drop-database");
    for kind in ["drop", "dropDatabase", "invalidate"] {
        assert!(
            drop_database.contains(&format!("\"operationType\":\"{kind}\"")),
            "operation type {kind}"
        );
    }
    assert!(all_text("cs-resume-cursor-not-found").contains("\"code\":43"));
    assert!(all_text("cs-error-labels").contains("\"errorLabels\":[\"ResumableChangeStreamError\"]"));
    assert!(all_text("cs-empty-batches").contains("\"nextBatch\":[],\"postBatchResumeToken\""));
    assert!(all_text("cs-start-at-operation-time").contains("startAtOperationTime"));
    assert!(all_text("cs-cluster").contains("\"allChangesForCluster\":true"));
    for compressor in ["snappy", "zlib", "zstd"] {
        assert!(all_text(&format!("cs-{compressor}")).contains(&format!("\"compressor\":\"{compressor}\"")));
    }
    let scram = all_text("scram-sha-256");
    assert!(scram.contains("\"speculativeAuthenticate\"") && scram.contains("\"saslContinue\""));
    assert!(!scram.contains("mwadmin-pw"), "a fixture never holds the password");
    let large = fixtures.iter().find(|(n, _)| n == "cs-large-batch").unwrap();
    let biggest = large
        .1
        .entries
        .iter()
        .filter_map(|e| match &e.event {
            FixtureEvent::Message(bytes) => Some(
                mongowire::wire::Message::decode(bytes.clone(), mongowire::wire::DEFAULT_MAX_MESSAGE_SIZE)
                    .unwrap()
                    .raw()
                    .len(),
            ),
            _ => None,
        })
        .max()
        .unwrap();
    assert!(biggest > 15_000_000, "a batch near the 16 MB limit: {biggest} bytes");
}

#[tokio::test]
async fn every_change_stream_fixture_replays_against_the_client() {
    for (name, fixture) in committed() {
        if !name.starts_with("cs-") {
            continue;
        }
        let recorded = common::fixtures::recorded_stream(&fixture).unwrap();
        assert!(!recorded.events.is_empty(), "{name} recorded events");
        let report = common::fixtures::replay_change_stream(&fixture).await;
        assert!(report.passed(), "{name}: {report:?}");
    }
}

#[test]
fn broken_fixture_files_give_clear_errors() {
    let (_, fixture) = committed().into_iter().next().unwrap();
    let mut text = Vec::new();
    fixture.write(&mut text).unwrap();
    let cut = &text[..text.len() / 2];
    let error = Fixture::read(cut).unwrap_err();
    assert!(error.to_string().starts_with("line "), "{error}");
    for garbage in [&b"\x00\x01\x02binary"[..], b"GET / HTTP/1.1\r\n", b"[1,2,3]\n"] {
        assert!(Fixture::read(garbage).is_err());
    }
}
