//! Replaying change-stream fixtures against mongowire's own client: what to watch is read from
//! the recorded aggregate, what must come out from the recorded replies.

use std::time::Duration;

use bson::{RawBsonRef, RawDocument, RawDocumentBuf};
use bytes::BytesMut;
use mongowire::capture::{Direction, Fixture, FixtureEvent};
use mongowire::driver::Client;
use mongowire::protocol::change_stream::{ChangeStreamOptions, FullDocument, FullDocumentBeforeChange, WatchTarget};
use mongowire::protocol::cursor::Namespace;
use mongowire::protocol::{ReadConcern, ReadConcernLevel};
use mongowire::traffic::ReplayReport;
use mongowire::wire::{Body, DEFAULT_MAX_MESSAGE_SIZE, Message};

/// Every message of a fixture decodes and re-encodes to its exact bytes (for OP_COMPRESSED, the
/// decompressed message does, and recompressing gives the same body). Returns the message count.
pub fn assert_reencodes(fixture: &Fixture) -> usize {
    let mut count = 0;
    for entry in &fixture.entries {
        let FixtureEvent::Message(bytes) = &entry.event else {
            continue;
        };
        let message = Message::decode(bytes.clone(), DEFAULT_MAX_MESSAGE_SIZE).unwrap();
        let mut plain = BytesMut::new();
        message.encode(&mut plain).unwrap();
        match message.compression() {
            None => assert_eq!(&plain[..], &bytes[..], "entry {} re-encodes to its bytes", entry.seq),
            Some(compression) => {
                assert_eq!(
                    &plain[..],
                    &message.raw()[..],
                    "entry {}: the decompressed message re-encodes",
                    entry.seq
                );
                let mut again = BytesMut::new();
                message
                    .encode_compressed(compression.compressor, None, &mut again)
                    .unwrap();
                let back = Message::decode(again.freeze(), DEFAULT_MAX_MESSAGE_SIZE).unwrap();
                assert_eq!(back.body(), message.body());
            }
        }
        count += 1;
    }
    count
}

/// What a change-stream fixture's client did: the target, pipeline and options of its first
/// aggregate (and the maxTimeMS of its getMores), and the events the server gave it.
pub struct RecordedStream {
    pub target: WatchTarget,
    pub pipeline: Vec<RawDocumentBuf>,
    pub options: ChangeStreamOptions,
    pub events: Vec<RawDocumentBuf>,
}

fn body(message: &Message) -> Option<&RawDocument> {
    match message.body() {
        Body::Msg(msg) => Some(msg.body()),
        _ => None,
    }
}

/// Reads the stream a fixture recorded; `None` when it recorded no change stream.
pub fn recorded_stream(fixture: &Fixture) -> Option<RecordedStream> {
    let messages: Vec<(Direction, Message)> = fixture
        .entries
        .iter()
        .filter_map(|e| match &e.event {
            FixtureEvent::Message(bytes) => {
                Some((e.dir, Message::decode(bytes.clone(), DEFAULT_MAX_MESSAGE_SIZE).ok()?))
            }
            _ => None,
        })
        .collect();
    let aggregate = messages.iter().find_map(|(dir, m)| {
        let b = body(m)?;
        (*dir == Direction::ClientToServer && b.get("aggregate").ok()?.is_some()).then(|| b.to_owned())
    })?;
    let db = aggregate.get_str("$db").ok()?.to_owned();
    let pipeline = aggregate.get_array("pipeline").ok()?;
    let stage = pipeline.get_document(0).ok()?.get_document("$changeStream").ok()?;
    let target = match aggregate.get("aggregate").ok()?? {
        RawBsonRef::String(coll) => WatchTarget::Collection(Namespace::new(db, coll)),
        _ if stage.get_bool("allChangesForCluster").unwrap_or(false) => WatchTarget::Cluster,
        _ => WatchTarget::Database(db),
    };
    let user_pipeline: Vec<RawDocumentBuf> = pipeline
        .into_iter()
        .skip(1)
        .filter_map(|s| Some(s.ok()?.as_document()?.to_owned()))
        .collect();
    let max_await = messages.iter().find_map(|(dir, m)| {
        let b = body(m)?;
        (*dir == Direction::ClientToServer && b.get("getMore").ok()?.is_some()).then(|| b.get_i64("maxTimeMS").ok())?
    });
    let options = ChangeStreamOptions {
        full_document: stage.get_str("fullDocument").ok().map(FullDocument::from_name),
        full_document_before_change: stage
            .get_str("fullDocumentBeforeChange")
            .ok()
            .map(FullDocumentBeforeChange::from_name),
        resume_after: aggregate_token(stage, "resumeAfter"),
        start_after: aggregate_token(stage, "startAfter"),
        start_at_operation_time: stage.get_timestamp("startAtOperationTime").ok(),
        show_expanded_events: stage.get_bool("showExpandedEvents").ok(),
        batch_size: aggregate
            .get_document("cursor")
            .ok()
            .and_then(|c| c.get_i64("batchSize").ok())
            .and_then(|n| u32::try_from(n).ok()),
        max_await_time: max_await
            .and_then(|ms| u64::try_from(ms).ok())
            .map(Duration::from_millis),
        collation: aggregate.get_document("collation").ok().map(ToOwned::to_owned),
        comment: aggregate.get("comment").ok().flatten().map(Into::into),
        read_concern: aggregate
            .get_document("readConcern")
            .ok()
            .and_then(|r| r.get_str("level").ok())
            .map(|level| ReadConcern {
                level: ReadConcernLevel::from_name(level),
            }),
        ..ChangeStreamOptions::default()
    };
    let mut events = Vec::new();
    for (dir, message) in &messages {
        let Some(reply) = body(message).filter(|_| *dir == Direction::ServerToClient) else {
            continue;
        };
        let Ok(cursor) = reply.get_document("cursor") else {
            continue;
        };
        let batch = cursor
            .get_array("firstBatch")
            .or_else(|_| cursor.get_array("nextBatch"));
        if let Ok(batch) = batch {
            events.extend(
                batch
                    .into_iter()
                    .filter_map(|e| Some(e.ok()?.as_document()?.to_owned())),
            );
        }
    }
    Some(RecordedStream {
        target,
        pipeline: user_pipeline,
        options,
        events,
    })
}

fn aggregate_token(stage: &RawDocument, key: &str) -> Option<RawDocumentBuf> {
    stage.get_document(key).ok().map(ToOwned::to_owned)
}

/// Replays `fixture` to a mongowire client that watches what the recording watched, and checks
/// it gets the recorded events with the recorded tokens; returns the replay's report.
pub async fn replay_change_stream(fixture: &Fixture) -> ReplayReport {
    let recorded = recorded_stream(fixture).expect("a change-stream fixture");
    let (listener, address) = mongowire::traffic::bind("127.0.0.1:0").await.unwrap();
    let replay = {
        let fixture = fixture.clone();
        tokio::spawn(async move { mongowire::traffic::replay(listener, &fixture, Duration::from_secs(5)).await })
    };
    let client = Client::connect(&format!(
        "mongodb://{address}/?directConnection=true&serverSelectionTimeoutMS=5000"
    ))
    .await
    .unwrap();
    let (pipeline, options) = (recorded.pipeline, recorded.options);
    let mut stream = match &recorded.target {
        WatchTarget::Collection(ns) => {
            client
                .database(&ns.db)
                .collection(&ns.coll)
                .watch(pipeline, options)
                .await
        }
        WatchTarget::Database(db) => client.database(db).watch(pipeline, options).await,
        WatchTarget::Cluster => client.watch(pipeline, options).await,
    }
    .unwrap();
    for (index, expected) in recorded.events.iter().enumerate() {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap_or_else(|_| panic!("event {index} in time"))
            .unwrap_or_else(|| panic!("event {index}: the stream closed"))
            .unwrap_or_else(|e| panic!("event {index}: {e}"));
        assert_eq!(event.raw(), expected.as_ref(), "event {index} as recorded");
        assert_eq!(
            event.resume_token(),
            expected.get_document("_id").unwrap(),
            "event {index}'s token"
        );
    }
    if stream.is_alive() {
        stream.close().await;
    }
    client.shutdown().await;
    replay.await.unwrap().unwrap()
}
