//! Change streams against the real replica sets: every option reaching the server, every kind of
//! resume (with no event lost or repeated), database and cluster streams, invalidate and
//! startAfter, explicit sessions, prefetch, and split-event reassembly of an event over 16 MB.
//! Fail points are limited to each test's own client by `appName`, so tests can run together.
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod common;

use std::time::Duration;

use bson::{RawDocumentBuf, rawdoc};
use mongowire::driver::{ChangeStream, Client, Collection};
use mongowire::protocol::change_stream::{ChangeStreamOptions, FullDocument, FullDocumentBeforeChange, OperationType};
use mongowire::protocol::crud::UpdateModifications;
use mongowire::protocol::{ReadConcern, ReadConcernLevel, ReadPreference, ReadPreferenceMode};

const WAIT: Duration = Duration::from_secs(20);

/// A client whose commands are logged, with a unique appName for fail points.
async fn client(uri: &str, app: &str) -> (Client, std::sync::Arc<common::CommandLog>) {
    common::logged_client(&common::with_options(uri, &format!("appName={app}"))).await
}

async fn next(stream: &mut ChangeStream) -> mongowire::protocol::change_stream::ChangeEvent {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("an event in time")
        .expect("the stream is open")
        .unwrap()
}

/// The `_id`s of the next `n` events' documents (from `documentKey`).
async fn next_ids(stream: &mut ChangeStream, n: usize) -> Vec<i32> {
    let mut ids = Vec::new();
    while ids.len() < n {
        let event = next(stream).await;
        ids.push(event.document_key().unwrap().get_i32("_id").unwrap());
    }
    ids
}

/// A fail point on this server that only `app`'s connections trip.
async fn fail_point(admin: &Client, app: &str, times: i32, data: RawDocumentBuf) -> common::FailPoint {
    let mut data = data;
    data.append(bson::raw::cstr!("appName"), app);
    common::fail_point(
        admin,
        rawdoc! { "configureFailPoint": "failCommand", "mode": { "times": times }, "data": data },
    )
    .await
}

async fn fresh_collection(client: &Client, prefix: &str) -> Collection {
    let coll = client.database(&common::unique_db(prefix)).collection("events");
    coll.insert_one(rawdoc! { "_id": -1 }).await.unwrap();
    coll
}

async fn insert_range(coll: &Collection, range: std::ops::Range<i32>) {
    coll.insert_many(range.map(|i| rawdoc! { "_id": i })).await.unwrap();
}

#[tokio::test]
async fn every_option_reaches_the_server() {
    let Some(uri) = common::single() else { return };
    let (client, log) = client(&uri, "cs-options").await;
    let coll = fresh_collection(&client, "cs_options").await;
    let options = ChangeStreamOptions {
        full_document: Some(FullDocument::UpdateLookup),
        batch_size: Some(2),
        max_await_time: Some(Duration::from_millis(200)),
        comment: Some(bson::RawBson::String("tail-comment".into())),
        collation: Some(rawdoc! { "locale": "en", "strength": 2 }),
        show_expanded_events: Some(true),
        read_concern: Some(ReadConcern {
            level: ReadConcernLevel::Majority,
        }),
        ..ChangeStreamOptions::default()
    };
    let pipeline = [rawdoc! { "$match": { "operationType": { "$in": ["update", "createIndexes"] } } }];
    let mut stream = coll.watch(pipeline, options).await.unwrap();
    coll.insert_one(rawdoc! { "_id": 1, "n": 0 }).await.unwrap();
    coll.update_one(
        rawdoc! { "_id": 1 },
        UpdateModifications::Document(rawdoc! { "$set": { "n": 5 } }),
    )
    .await
    .unwrap();
    let db = client.database(&coll.namespace().db);
    db.run_command(rawdoc! { "createIndexes": "events", "indexes": [{ "key": { "n": 1 }, "name": "n_1" }] })
        .await
        .unwrap();

    let update = next(&mut stream).await;
    assert_eq!(
        update.operation_type(),
        OperationType::Update,
        "the pipeline filtered the insert out"
    );
    assert_eq!(update.full_document().unwrap().get_i32("n").unwrap(), 5, "updateLookup");
    assert_eq!(
        update
            .update_description()
            .unwrap()
            .updated_fields()
            .unwrap()
            .get_i32("n")
            .unwrap(),
        5
    );
    let index = next(&mut stream).await;
    assert_eq!(
        index.operation_type(),
        OperationType::CreateIndexes,
        "showExpandedEvents"
    );

    let aggregate = &log.commands("aggregate")[0];
    let stage = aggregate
        .get_array("pipeline")
        .unwrap()
        .get_document(0)
        .unwrap()
        .get_document("$changeStream")
        .unwrap();
    assert_eq!(stage.get_str("fullDocument").unwrap(), "updateLookup");
    assert!(stage.get_bool("showExpandedEvents").unwrap());
    assert_eq!(
        aggregate.get_document("cursor").unwrap().get_i64("batchSize").unwrap(),
        2
    );
    assert_eq!(aggregate.get_str("comment").unwrap(), "tail-comment");
    assert_eq!(
        aggregate.get_document("collation").unwrap().get_str("locale").unwrap(),
        "en"
    );
    assert_eq!(
        aggregate.get_document("readConcern").unwrap().get_str("level").unwrap(),
        "majority"
    );
    assert!(
        aggregate.get("maxTimeMS").unwrap().is_none(),
        "maxAwaitTime only on getMore"
    );
    let get_more = log.commands("getMore").into_iter().next().expect("a getMore");
    assert_eq!(get_more.get_i64("batchSize").unwrap(), 2);
    assert_eq!(get_more.get_i64("maxTimeMS").unwrap(), 200);
    assert_eq!(
        get_more.get_str("comment").unwrap(),
        "tail-comment",
        "comment on getMore (4.4+)"
    );
    stream.close().await;
    db.drop().await.unwrap();
}

#[tokio::test]
async fn pre_and_post_images() {
    let Some(uri) = common::single() else { return };
    let client = Client::connect(&uri).await.unwrap();
    let db = client.database(&common::unique_db("cs_images"));
    db.create_collection(
        "imaged",
        Some(&rawdoc! { "changeStreamPreAndPostImages": { "enabled": true } }),
    )
    .await
    .unwrap();
    let coll = db.collection("imaged");
    coll.insert_one(rawdoc! { "_id": 1, "v": "before" }).await.unwrap();
    let options = ChangeStreamOptions {
        full_document: Some(FullDocument::WhenAvailable),
        full_document_before_change: Some(FullDocumentBeforeChange::Required),
        ..ChangeStreamOptions::default()
    };
    let mut stream = coll.watch([], options).await.unwrap();
    coll.replace_one(rawdoc! { "_id": 1 }, rawdoc! { "v": "after" }, false)
        .await
        .unwrap();
    coll.delete_one(rawdoc! { "_id": 1 }).await.unwrap();
    let replace = next(&mut stream).await;
    assert_eq!(replace.operation_type(), OperationType::Replace);
    assert_eq!(
        replace.full_document_before_change().unwrap().get_str("v").unwrap(),
        "before"
    );
    assert_eq!(replace.full_document().unwrap().get_str("v").unwrap(), "after");
    let delete = next(&mut stream).await;
    assert_eq!(delete.operation_type(), OperationType::Delete);
    assert_eq!(
        delete.full_document_before_change().unwrap().get_str("v").unwrap(),
        "after"
    );
    stream.close().await;

    // `required` on a collection that records no images: the server refuses, the error surfaces.
    let plain = db.collection("plain");
    plain.insert_one(rawdoc! { "_id": 1 }).await.unwrap();
    let required = ChangeStreamOptions {
        full_document_before_change: Some(FullDocumentBeforeChange::Required),
        ..ChangeStreamOptions::default()
    };
    let mut stream = plain.watch([], required).await.unwrap();
    plain.delete_one(rawdoc! { "_id": 1 }).await.unwrap();
    let error = tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(error.as_server_error().is_some(), "{error}");
    assert!(!stream.is_alive());
    assert!(
        stream.next().await.is_none(),
        "the error came once, then the stream is closed"
    );
    db.drop().await.unwrap();
}

#[tokio::test]
async fn resume_after_start_at_operation_time_and_start_after_an_invalidate() {
    let Some(uri) = common::single() else { return };
    let client = Client::connect(&uri).await.unwrap();
    let db = client.database(&common::unique_db("cs_start"));
    let coll = db.collection("c");
    coll.insert_one(rawdoc! { "_id": -1 }).await.unwrap();
    let before = db
        .run_command(rawdoc! { "ping": 1 })
        .await
        .unwrap()
        .get_timestamp("operationTime")
        .unwrap();

    let mut stream = coll.watch([], ChangeStreamOptions::default()).await.unwrap();
    insert_range(&coll, 0..3).await;
    assert_eq!(next_ids(&mut stream, 1).await, [0]);
    let after_first = stream.resume_token().unwrap();
    stream.close().await;

    let resumed = ChangeStreamOptions {
        resume_after: Some(after_first),
        ..ChangeStreamOptions::default()
    };
    let mut stream = coll.watch([], resumed).await.unwrap();
    assert_eq!(
        next_ids(&mut stream, 2).await,
        [1, 2],
        "resumeAfter: the events after the token"
    );
    stream.close().await;

    // startAtOperationTime is inclusive, and the ping's time may be the -1 insert's: look at 0.. only.
    let at = ChangeStreamOptions {
        start_at_operation_time: Some(before),
        ..ChangeStreamOptions::default()
    };
    let ours = rawdoc! { "$match": { "$or": [
        { "documentKey._id": { "$gte": 0 } },
        { "operationType": { "$in": ["drop", "invalidate"] } },
    ] } };
    let mut stream = coll.watch([ours], at).await.unwrap();
    assert_eq!(
        next_ids(&mut stream, 3).await,
        [0, 1, 2],
        "startAtOperationTime: everything since"
    );

    // Dropping the collection: drop, then invalidate, then the stream is over.
    coll.drop().await.unwrap();
    assert_eq!(next(&mut stream).await.operation_type(), OperationType::Drop);
    let invalidate = next(&mut stream).await;
    assert_eq!(invalidate.operation_type(), OperationType::Invalidate);
    assert!(!stream.is_alive());
    assert!(stream.next().await.is_none());

    // startAfter the invalidate: a new stream on the recreated collection.
    let start_after = ChangeStreamOptions {
        start_after: Some(invalidate.resume_token().to_owned()),
        ..ChangeStreamOptions::default()
    };
    let mut stream = coll.watch([], start_after).await.unwrap();
    coll.insert_one(rawdoc! { "_id": 100 }).await.unwrap();
    let event = next(&mut stream).await;
    assert_eq!(event.operation_type(), OperationType::Insert);
    assert_eq!(event.document_key().unwrap().get_i32("_id").unwrap(), 100);
    stream.close().await;
    db.drop().await.unwrap();
}

#[tokio::test]
async fn try_next_does_one_get_more_and_the_token_is_always_available() {
    let Some(uri) = common::single() else { return };
    let (client, log) = client(&uri, "cs-trynext").await;
    let coll = fresh_collection(&client, "cs_trynext").await;
    let options = ChangeStreamOptions {
        max_await_time: Some(Duration::from_millis(100)),
        ..ChangeStreamOptions::default()
    };
    let mut stream = coll.watch([], options).await.unwrap();
    let first_token = stream.resume_token().expect("the first batch's postBatchResumeToken");
    let get_mores = log.commands("getMore").len();
    let started = std::time::Instant::now();
    assert!(stream.try_next().await.unwrap().is_none(), "nothing happened");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(log.commands("getMore").len(), get_mores + 1, "exactly one getMore");
    assert!(stream.resume_token().is_some());
    coll.insert_one(rawdoc! { "_id": 1 }).await.unwrap();
    let mut event = None;
    for _ in 0..50 {
        if let Some(found) = stream.try_next().await.unwrap() {
            event = Some(found);
            break;
        }
    }
    let event = event.expect("the insert within 50 empty batches");
    assert_eq!(stream.resume_token().unwrap(), event.resume_token().to_owned());
    assert_ne!(stream.resume_token().unwrap(), first_token);
    stream.close().await;
}

#[tokio::test]
async fn database_and_cluster_streams() {
    let Some(uri) = common::single() else { return };
    let (client, log) = client(&uri, "cs-scopes").await;
    let first = client.database(&common::unique_db("cs_db_a"));
    let second = client.database(&common::unique_db("cs_db_b"));
    for db in [&first, &second] {
        db.collection("x").insert_one(rawdoc! { "_id": -1 }).await.unwrap();
    }
    let mut db_stream = first.watch([], ChangeStreamOptions::default()).await.unwrap();
    // The cluster stream filters to this test's two databases (others run concurrently).
    let ours = [first.name().to_owned(), second.name().to_owned()];
    let filter = rawdoc! { "$match": { "ns.db": { "$in": [ours[0].as_str(), ours[1].as_str()] } } };
    let mut cluster_stream = client.watch([filter], ChangeStreamOptions::default()).await.unwrap();
    first.collection("x").insert_one(rawdoc! { "_id": 1 }).await.unwrap();
    first.collection("y").insert_one(rawdoc! { "_id": 2 }).await.unwrap();
    second.collection("z").insert_one(rawdoc! { "_id": 3 }).await.unwrap();

    let colls: Vec<String> = [next(&mut db_stream).await, next(&mut db_stream).await]
        .iter()
        .map(|e| e.ns().unwrap().coll.unwrap().to_owned())
        .collect();
    assert_eq!(
        colls,
        ["x", "y"],
        "a database stream sees every collection of its database"
    );
    let seen: Vec<(String, i32)> = [
        next(&mut cluster_stream).await,
        next(&mut cluster_stream).await,
        next(&mut cluster_stream).await,
    ]
    .iter()
    .map(|e| {
        (
            e.ns().unwrap().db.to_owned(),
            e.document_key().unwrap().get_i32("_id").unwrap(),
        )
    })
    .collect();
    assert_eq!(seen, [(ours[0].clone(), 1), (ours[0].clone(), 2), (ours[1].clone(), 3)]);

    let aggregates = log.commands("aggregate");
    assert!(
        aggregates
            .iter()
            .any(|a| a.get_i32("aggregate").is_ok_and(|v| v == 1) && a.get_str("$db").is_ok_and(|d| d == first.name()))
    );
    let cluster = aggregates
        .iter()
        .find(|a| a.get_str("$db").is_ok_and(|d| d == "admin"))
        .expect("a cluster aggregate on admin");
    let stage = cluster
        .get_array("pipeline")
        .unwrap()
        .get_document(0)
        .unwrap()
        .get_document("$changeStream")
        .unwrap();
    assert!(stage.get_bool("allChangesForCluster").unwrap());
    assert!(
        log.commands("getMore")
            .iter()
            .all(|g| g.get_str("collection").is_ok_and(|c| c == "$cmd.aggregate")),
        "getMore goes to the namespace the aggregate returned"
    );
    db_stream.close().await;
    cluster_stream.close().await;
    first.drop().await.unwrap();
    second.drop().await.unwrap();
}

/// Writes ids `range` while the stream is resumed by `fault`, and checks every id arrives once,
/// in order.
async fn survives(coll: &Collection, stream: &mut ChangeStream, log: &common::CommandLog, fault: impl AsyncFnOnce()) {
    insert_range(coll, 0..5).await;
    assert_eq!(next_ids(stream, 5).await, (0..5).collect::<Vec<_>>());
    let aggregates = log.commands("aggregate").len();
    fault().await;
    insert_range(coll, 5..10).await;
    assert_eq!(
        next_ids(stream, 5).await,
        (5..10).collect::<Vec<_>>(),
        "nothing lost or repeated across the resume"
    );
    assert_eq!(log.commands("aggregate").len(), aggregates + 1, "exactly one resume");
    let resume = log.commands("aggregate").pop().unwrap();
    let stage = resume
        .get_array("pipeline")
        .unwrap()
        .get_document(0)
        .unwrap()
        .get_document("$changeStream")
        .unwrap();
    assert!(
        stage.get_document("resumeAfter").is_ok(),
        "resumed after the cached token: {stage:?}"
    );
}

#[tokio::test]
async fn resumes_after_its_cursor_is_killed_by_another_client() {
    let Some(uri) = common::single() else { return };
    let (client, log) = client(&uri, "cs-killed").await;
    let other = Client::connect(&uri).await.unwrap();
    let coll = fresh_collection(&client, "cs_killed").await;
    let mut stream = coll.watch([], ChangeStreamOptions::default()).await.unwrap();
    survives(&coll, &mut stream, &log, async || {
        let get_more = log.commands("getMore").pop().unwrap();
        let id = get_more.get_i64("getMore").unwrap();
        let ns = other.database(&coll.namespace().db);
        let killed = ns
            .run_command(rawdoc! { "killCursors": "events", "cursors": [id] })
            .await
            .unwrap();
        assert_eq!(killed.get_array("cursorsKilled").unwrap().get_i64(0).unwrap(), id);
    })
    .await;
    stream.close().await;
}

#[tokio::test]
async fn resumes_after_the_connection_is_closed() {
    let Some(uri) = common::single() else { return };
    let (client, log) = client(&uri, "cs-closeconn").await;
    let coll = fresh_collection(&client, "cs_closeconn").await;
    let mut stream = coll.watch([], ChangeStreamOptions::default()).await.unwrap();
    let mut guard = None;
    survives(&coll, &mut stream, &log, async || {
        let data = rawdoc! { "failCommands": ["getMore"], "closeConnection": true };
        guard = Some(fail_point(&client, "cs-closeconn", 1, data).await);
    })
    .await;
    guard.unwrap().disable().await;
    stream.close().await;
}

#[tokio::test]
async fn resumes_after_a_resumable_server_error() {
    let Some(uri) = common::single() else { return };
    let (client, log) = client(&uri, "cs-resumable").await;
    let coll = fresh_collection(&client, "cs_resumable").await;
    let mut stream = coll.watch([], ChangeStreamOptions::default()).await.unwrap();
    let mut guard = None;
    survives(&coll, &mut stream, &log, async || {
        let data =
            rawdoc! { "failCommands": ["getMore"], "errorCode": 91, "errorLabels": ["ResumableChangeStreamError"] };
        guard = Some(fail_point(&client, "cs-resumable", 1, data).await);
    })
    .await;
    guard.unwrap().disable().await;
    stream.close().await;
}

#[tokio::test]
async fn a_non_resumable_error_surfaces_once_and_closes_the_stream() {
    let Some(uri) = common::single() else { return };
    let (client, log) = client(&uri, "cs-fatal").await;
    let coll = fresh_collection(&client, "cs_fatal").await;
    let mut stream = coll.watch([], ChangeStreamOptions::default()).await.unwrap();
    let fail = fail_point(
        &client,
        "cs-fatal",
        1,
        rawdoc! { "failCommands": ["getMore"], "errorCode": 2 },
    )
    .await;
    let error = tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    fail.disable().await;
    assert_eq!(error.as_server_error().map(|e| e.code), Some(2), "{error}");
    assert!(!stream.is_alive());
    assert!(stream.next().await.is_none());
    assert_eq!(log.commands("aggregate").len(), 1, "no resume");
    assert_eq!(log.commands("killCursors").len(), 1, "the cursor was killed");
}

#[tokio::test]
async fn read_preference_secondary_streams_from_a_secondary() {
    let Some(uri) = common::rs3() else { return };
    let (client, log) = common::logged_client(&uri).await;
    let coll = client.database(&common::unique_db("cs_secondary")).collection("c");
    // w:3, so that whichever secondary the stream lands on already has this insert: with
    // w:majority the third member may apply it after the stream opened there, and show it.
    let writer = Client::connect(&common::with_options(&uri, "w=3")).await.unwrap();
    writer
        .database(&coll.namespace().db)
        .collection("c")
        .insert_one(rawdoc! { "_id": -1 })
        .await
        .unwrap();
    let options = ChangeStreamOptions {
        read_preference: Some(ReadPreference::with_mode(ReadPreferenceMode::Secondary)),
        ..ChangeStreamOptions::default()
    };
    let mut stream = coll.watch([], options).await.unwrap();
    writer
        .database(&coll.namespace().db)
        .collection("c")
        .insert_one(rawdoc! { "_id": 7 })
        .await
        .unwrap();
    assert_eq!(next_ids(&mut stream, 1).await, [7]);
    let topology = client.topology();
    let primary = topology.primary().map(|p| p.address.clone());
    for address in log.addresses("aggregate").into_iter().chain(log.addresses("getMore")) {
        let server = topology.server(&address).expect("a known member");
        assert_eq!(
            server.server_type,
            mongowire::protocol::sdam::ServerType::RsSecondary,
            "{address}"
        );
        assert_ne!(Some(address), primary);
    }
    stream.close().await;
    writer.database(&coll.namespace().db).drop().await.unwrap();
}

#[tokio::test]
async fn an_explicit_session_carries_every_command() {
    let Some(uri) = common::single() else { return };
    let (client, log) = client(&uri, "cs-session").await;
    let coll = fresh_collection(&client, "cs_session").await;
    let session = client.start_session().await.unwrap();
    let lsid = session.id().unwrap().to_owned();
    let mut stream = coll
        .watch_in(session, [], ChangeStreamOptions::default())
        .await
        .unwrap();
    coll.insert_one(rawdoc! { "_id": 1 }).await.unwrap();
    next(&mut stream).await;
    assert_eq!(stream.session().unwrap().id().unwrap(), lsid.as_ref());
    for command in log.commands("aggregate").into_iter().chain(log.commands("getMore")) {
        assert_eq!(command.get_document("lsid").unwrap(), lsid.as_ref());
    }
    assert!(stream.session().unwrap().operation_time().is_some());
    stream.close().await;
}

#[tokio::test]
async fn implicit_sessions_stay_the_same_across_a_resume() {
    let Some(uri) = common::single() else { return };
    let (client, log) = client(&uri, "cs-implicit").await;
    let coll = fresh_collection(&client, "cs_implicit").await;
    let mut stream = coll.watch([], ChangeStreamOptions::default()).await.unwrap();
    let fail = fail_point(
        &client,
        "cs-implicit",
        1,
        rawdoc! { "failCommands": ["getMore"], "closeConnection": true },
    )
    .await;
    coll.insert_one(rawdoc! { "_id": 1 }).await.unwrap();
    next(&mut stream).await;
    fail.disable().await;
    let lsids: Vec<RawDocumentBuf> = log
        .commands("aggregate")
        .into_iter()
        .chain(log.commands("getMore"))
        .map(|c| c.get_document("lsid").unwrap().to_owned())
        .collect();
    assert!(lsids.len() >= 3);
    assert!(lsids.windows(2).all(|w| w[0] == w[1]), "one lsid for the whole stream");
    stream.close().await;
}

#[tokio::test]
async fn dropping_or_closing_a_stream_kills_its_cursor() {
    let Some(uri) = common::single() else { return };
    let client = Client::connect(&uri).await.unwrap();
    let coll = fresh_collection(&client, "cs_drop").await;
    let open = |client: Client| async move {
        common::number_at(&common::server_status(&client).await, "metrics.cursor.open.total")
    };
    let stream = coll.watch([], ChangeStreamOptions::default()).await.unwrap();
    let with_stream = open(client.clone()).await;
    drop(stream);
    let killed = common::eventually(Duration::from_secs(5), || {
        let client = client.clone();
        async move { open(client).await < with_stream }
    })
    .await;
    assert!(killed, "dropping the stream killed its cursor");
    let stream = coll.watch([], ChangeStreamOptions::default()).await.unwrap();
    let with_stream = open(client.clone()).await;
    stream.close().await;
    assert!(open(client.clone()).await < with_stream);
}

#[tokio::test]
async fn prefetch_delivers_every_event_in_order() {
    let Some(uri) = common::single() else { return };
    let (client, log) = client(&uri, "cs-prefetch").await;
    let coll = fresh_collection(&client, "cs_prefetch").await;
    let options = ChangeStreamOptions {
        prefetch: true,
        batch_size: Some(50),
        ..ChangeStreamOptions::default()
    };
    let mut stream = coll.watch([], options).await.unwrap();
    insert_range(&coll, 0..1000).await;
    assert_eq!(next_ids(&mut stream, 1000).await, (0..1000).collect::<Vec<_>>());
    assert!(log.commands("getMore").len() >= 20);
    stream.close().await;
}

#[tokio::test]
async fn an_event_over_16_mb_is_reassembled_from_its_fragments() {
    let Some(uri) = common::single() else { return };
    let client = Client::connect(&uri).await.unwrap();
    let db = client.database(&common::unique_db("cs_split"));
    db.create_collection(
        "big",
        Some(&rawdoc! { "changeStreamPreAndPostImages": { "enabled": true } }),
    )
    .await
    .unwrap();
    let coll = db.collection("big");
    let nine_mb = |c: char| c.to_string().repeat(9 * 1024 * 1024);
    coll.insert_one(rawdoc! { "_id": 1, "blob": nine_mb('a') })
        .await
        .unwrap();
    let images = || ChangeStreamOptions {
        full_document: Some(FullDocument::Required),
        full_document_before_change: Some(FullDocumentBeforeChange::Required),
        ..ChangeStreamOptions::default()
    };
    let split = || [rawdoc! { "$changeStreamSplitLargeEvent": {} }];
    let reassembling = ChangeStreamOptions {
        reassemble_split_events: true,
        ..images()
    };
    let mut whole = coll.watch(split(), reassembling).await.unwrap();
    let mut fragments = coll.watch(split(), images()).await.unwrap();
    coll.replace_one(rawdoc! { "_id": 1 }, rawdoc! { "blob": nine_mb('b') }, false)
        .await
        .unwrap();

    let event = next(&mut whole).await;
    assert!(
        event.raw().as_bytes().len() > 18 * 1024 * 1024,
        "{} bytes",
        event.raw().as_bytes().len()
    );
    assert_eq!(event.operation_type(), OperationType::Replace);
    assert!(event.split_event().is_none());
    assert!(
        event
            .full_document_before_change()
            .unwrap()
            .get_str("blob")
            .unwrap()
            .starts_with("aaaa")
    );
    assert!(
        event
            .full_document()
            .unwrap()
            .get_str("blob")
            .unwrap()
            .starts_with("bbbb")
    );
    // The event was its batch's last, so the cached token is the postBatchResumeToken; either
    // way, resuming after it must not deliver the event again.
    let after = ChangeStreamOptions {
        resume_after: whole.resume_token(),
        max_await_time: Some(Duration::from_millis(200)),
        ..images()
    };
    let mut resumed = coll.watch(split(), after).await.unwrap();
    assert!(
        resumed.try_next().await.unwrap().is_none(),
        "nothing after the reassembled event"
    );
    resumed.close().await;

    let first = next(&mut fragments).await;
    let split_info = first
        .split_event()
        .expect("without reassembly, fragments arrive one by one");
    assert_eq!(split_info.fragment, 1);
    let mut last = first;
    for _ in 1..split_info.of {
        last = next(&mut fragments).await;
    }
    assert_eq!(last.split_event().unwrap().fragment, split_info.of);
    assert_eq!(
        last.resume_token(),
        event.resume_token(),
        "the reassembled event's token is the last fragment's"
    );
    whole.close().await;
    fragments.close().await;
    db.drop().await.unwrap();
}

#[tokio::test]
async fn a_next_that_times_out_leaves_the_stream_usable() {
    let Some(uri) = common::single() else { return };
    let (client, log) = client(&uri, "cs-timeout").await;
    let coll = fresh_collection(&client, "cs_timeout").await;
    let options = ChangeStreamOptions {
        max_await_time: Some(Duration::from_millis(500)),
        ..ChangeStreamOptions::default()
    };
    let mut stream = coll.watch([], options).await.unwrap();
    // Nothing happens: the caller's own timeout fires in the middle of a getMore.
    for _ in 0..3 {
        assert!(
            tokio::time::timeout(Duration::from_millis(120), stream.next())
                .await
                .is_err()
        );
    }
    assert!(stream.is_alive());
    coll.insert_one(rawdoc! { "_id": 1 }).await.unwrap();
    assert_eq!(next_ids(&mut stream, 1).await, [1]);
    assert_eq!(log.commands("aggregate").len(), 1, "the timeouts cost no resume");
    stream.close().await;
}

#[test]
fn dropping_a_stream_after_its_runtime_is_gone_does_not_panic() {
    let Some(uri) = common::single() else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = runtime.block_on(async {
        let client = Client::connect(&uri).await.unwrap();
        let coll = fresh_collection(&client, "cs_noruntime").await;
        coll.watch([], ChangeStreamOptions::default()).await.unwrap()
    });
    drop(runtime);
    drop(stream);
}
