//! Every rule of the Change Streams specification, driven reply by reply with no server.

use bson::{RawArrayBuf, RawDocumentBuf, Timestamp, rawdoc};
use bytes::Bytes;

use super::*;
use crate::error::{Error, TransportError, TransportErrorKind};
use crate::protocol::crud::Command;
use crate::protocol::cursor::Namespace;
use crate::wire::SharedDocument;

const WIRE_7_0: i32 = 21;
const WIRE_4_2: i32 = 8;

fn ns() -> Namespace {
    Namespace::new("db", "coll")
}

fn collection_stream(options: ChangeStreamOptions) -> ChangeStreamMachine {
    ChangeStreamMachine::new(WatchTarget::Collection(ns()), Vec::new(), options)
}

fn token(n: u32) -> RawDocumentBuf {
    rawdoc! { "_data": format!("token-{n:04}") }
}

fn event(n: u32) -> RawDocumentBuf {
    let id = i64::from(n);
    rawdoc! { "_id": token(n), "operationType": "insert", "documentKey": { "_id": id }, "fullDocument": { "_id": id } }
}

fn shared(doc: RawDocumentBuf) -> SharedDocument {
    SharedDocument::from_bytes(Bytes::from(doc.into_bytes())).unwrap()
}

/// A cursor reply with `events`, cursor `id`, and optionally a postBatchResumeToken.
fn reply(first: bool, id: i64, events: Vec<RawDocumentBuf>, post_batch: Option<u32>) -> SharedDocument {
    let batch: RawArrayBuf = events.into_iter().collect();
    let mut cursor = RawDocumentBuf::new();
    cursor.append(bson::raw::cstr!("id"), id);
    cursor.append(bson::raw::cstr!("ns"), "db.coll");
    if first {
        cursor.append(bson::raw::cstr!("firstBatch"), batch);
    } else {
        cursor.append(bson::raw::cstr!("nextBatch"), batch);
    }
    if let Some(n) = post_batch {
        cursor.append(bson::raw::cstr!("postBatchResumeToken"), token(n));
    }
    shared(rawdoc! { "cursor": cursor, "operationTime": Timestamp { time: 100, increment: 7 }, "ok": 1.0 })
}

fn server_error(code: i32, labels: &[&str]) -> Error {
    let labels: RawArrayBuf = labels.iter().copied().collect();
    let body = rawdoc! { "ok": 0.0, "code": code, "errmsg": "boom", "errorLabels": labels };
    crate::protocol::reply::server_error(&body, None).unwrap().into()
}

fn network_error() -> Error {
    TransportError::new(TransportErrorKind::Closed, None, "connection closed").into()
}

fn expect_aggregate(machine: &mut ChangeStreamMachine) -> Command {
    match machine.poll() {
        Action::Aggregate(command) => command,
        other => panic!("expected an aggregate, got {other:?}"),
    }
}

fn expect_get_more(machine: &mut ChangeStreamMachine) -> Command {
    match machine.poll() {
        Action::GetMore(command) => command,
        other => panic!("expected a getMore, got {other:?}"),
    }
}

fn expect_kill(machine: &mut ChangeStreamMachine) -> Command {
    match machine.poll() {
        Action::KillCursors(command) => command,
        other => panic!("expected a killCursors, got {other:?}"),
    }
}

fn expect_event(machine: &mut ChangeStreamMachine) -> ChangeEvent {
    match machine.poll() {
        Action::Event(event) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

fn expect_closed_with(machine: &mut ChangeStreamMachine) -> Error {
    match machine.poll() {
        Action::Closed(Some(error)) => error,
        other => panic!("expected the stream to close with an error, got {other:?}"),
    }
}

/// The `$changeStream` stage of an aggregate.
fn stage(command: &Command) -> RawDocumentBuf {
    let pipeline = command.body.get_array("pipeline").unwrap();
    pipeline
        .get_document(0)
        .unwrap()
        .get_document("$changeStream")
        .unwrap()
        .to_owned()
}

/// Opens a collection stream whose first batch is empty, ready for getMore.
fn opened(options: ChangeStreamOptions, post_batch: Option<u32>) -> ChangeStreamMachine {
    let mut machine = collection_stream(options);
    expect_aggregate(&mut machine);
    machine.handle_aggregate(Ok(reply(true, 42, vec![], post_batch)), WIRE_7_0);
    machine
}

#[test]
fn aggregate_has_only_the_options_that_were_set() {
    let mut machine = collection_stream(ChangeStreamOptions::default());
    let command = expect_aggregate(&mut machine);
    assert_eq!(command.db, "db");
    assert_eq!(
        command.body,
        rawdoc! { "aggregate": "coll", "pipeline": [{ "$changeStream": {} }], "cursor": {} },
        "nothing optional is sent, maxAwaitTime never on the aggregate"
    );

    let options = ChangeStreamOptions {
        full_document: Some(FullDocument::UpdateLookup),
        full_document_before_change: Some(FullDocumentBeforeChange::WhenAvailable),
        show_expanded_events: Some(true),
        batch_size: Some(5),
        collation: Some(rawdoc! { "locale": "en" }),
        comment: Some(bson::RawBson::String("tail".into())),
        read_concern: Some(crate::protocol::ReadConcern {
            level: crate::protocol::ReadConcernLevel::Majority,
        }),
        max_await_time: Some(std::time::Duration::from_millis(300)),
        ..ChangeStreamOptions::default()
    };
    let pipeline = vec![rawdoc! { "$match": { "operationType": "insert" } }];
    let mut machine = ChangeStreamMachine::new(WatchTarget::Collection(ns()), pipeline, options);
    let command = expect_aggregate(&mut machine);
    assert_eq!(
        command.body,
        rawdoc! {
            "aggregate": "coll",
            "pipeline": [
                { "$changeStream": { "fullDocument": "updateLookup", "fullDocumentBeforeChange": "whenAvailable", "showExpandedEvents": true } },
                { "$match": { "operationType": "insert" } },
            ],
            "cursor": { "batchSize": 5_i64 },
            "collation": { "locale": "en" },
            "comment": "tail",
            "readConcern": { "level": "majority" },
        }
    );
    machine.handle_aggregate(Ok(reply(true, 42, vec![], None)), WIRE_7_0);
    let get_more = expect_get_more(&mut machine);
    assert_eq!(
        get_more.body,
        rawdoc! { "getMore": 42_i64, "collection": "coll", "batchSize": 5_i64, "maxTimeMS": 300_i64, "comment": "tail" }
    );
}

#[test]
fn unknown_full_document_values_are_sent_as_given() {
    let options = ChangeStreamOptions {
        full_document: Some(FullDocument::from_name("somethingNew")),
        ..ChangeStreamOptions::default()
    };
    let command = expect_aggregate(&mut collection_stream(options));
    assert_eq!(stage(&command).get_str("fullDocument").unwrap(), "somethingNew");
}

#[test]
fn comment_is_not_sent_on_get_more_to_servers_before_4_4() {
    let options = ChangeStreamOptions {
        comment: Some(bson::RawBson::Int32(7)),
        ..ChangeStreamOptions::default()
    };
    let mut machine = collection_stream(options);
    expect_aggregate(&mut machine);
    machine.handle_aggregate(Ok(reply(true, 42, vec![], None)), WIRE_4_2);
    assert!(expect_get_more(&mut machine).body.get("comment").unwrap().is_none());
}

#[test]
fn database_and_cluster_streams_send_get_more_to_the_namespace_the_server_returned() {
    let mut machine = ChangeStreamMachine::new(
        WatchTarget::Database("db".into()),
        Vec::new(),
        ChangeStreamOptions::default(),
    );
    let command = expect_aggregate(&mut machine);
    assert_eq!(
        (command.db.as_str(), command.body.get_i32("aggregate").unwrap()),
        ("db", 1)
    );
    let body = shared(rawdoc! { "cursor": { "id": 9_i64, "ns": "db.$cmd.aggregate", "firstBatch": [] }, "ok": 1.0 });
    machine.handle_aggregate(Ok(body), WIRE_7_0);
    let get_more = expect_get_more(&mut machine);
    assert_eq!(
        (get_more.db.as_str(), get_more.body.get_str("collection").unwrap()),
        ("db", "$cmd.aggregate")
    );

    let mut cluster = ChangeStreamMachine::new(WatchTarget::Cluster, Vec::new(), ChangeStreamOptions::default());
    let command = expect_aggregate(&mut cluster);
    assert_eq!(command.db, "admin");
    assert!(stage(&command).get_bool("allChangesForCluster").unwrap());
}

#[test]
fn resumable_errors_by_kind_code_label_and_wire_version() {
    assert!(is_resumable(&network_error(), WIRE_7_0));
    let timeout: Error = TransportError::new(TransportErrorKind::Timeout, None, "t").into();
    assert!(is_resumable(&timeout, WIRE_4_2));
    assert!(
        is_resumable(&server_error(43, &[]), WIRE_7_0),
        "CursorNotFound, any version"
    );
    assert!(is_resumable(&server_error(43, &[]), WIRE_4_2));
    // 4.4+: only the label counts.
    assert!(is_resumable(
        &server_error(280, &["ResumableChangeStreamError"]),
        WIRE_7_0
    ));
    assert!(
        !is_resumable(&server_error(91, &[]), WIRE_7_0),
        "a listed code without the label"
    );
    // Before 4.4: only the listed codes count.
    for code in [
        6, 7, 89, 91, 133, 150, 189, 234, 262, 9001, 10107, 11600, 11602, 13388, 13435, 13436, 63,
    ] {
        assert!(is_resumable(&server_error(code, &[]), WIRE_4_2), "{code}");
    }
    assert!(!is_resumable(
        &server_error(280, &["ResumableChangeStreamError"]),
        WIRE_4_2
    ));
    assert!(!is_resumable(&server_error(2, &[]), WIRE_4_2));
    assert!(!is_resumable(&Error::usage("x"), WIRE_7_0));
}

#[test]
fn an_aggregate_error_is_never_resumable() {
    let mut machine = collection_stream(ChangeStreamOptions::default());
    expect_aggregate(&mut machine);
    machine.handle_aggregate(Err(network_error()), WIRE_7_0);
    assert!(expect_closed_with(&mut machine).is_network_error());
    assert!(matches!(machine.poll(), Action::Closed(None)), "the error comes once");
    assert!(!machine.is_alive());
}

#[test]
fn resume_kills_the_old_cursor_then_aggregates_again_once_per_error() {
    let mut machine = opened(ChangeStreamOptions::default(), Some(1));
    // 1. getMore fails resumably: kill the old cursor, then aggregate.
    expect_get_more(&mut machine);
    machine.handle_get_more(Err(network_error()));
    assert!(machine.is_alive());
    let kill = expect_kill(&mut machine);
    assert_eq!(kill.body, rawdoc! { "killCursors": "coll", "cursors": [42_i64] });
    assert!(
        matches!(machine.poll(), Action::Waiting),
        "nothing until the kill is reported"
    );
    machine.handle_killed();
    let resume = expect_aggregate(&mut machine);
    assert_eq!(stage(&resume).get_document("resumeAfter").unwrap(), token(1).as_ref());
    // 2. The resume succeeds; a second failure may resume again.
    machine.handle_aggregate(Ok(reply(true, 43, vec![], Some(2))), WIRE_7_0);
    expect_get_more(&mut machine);
    machine.handle_get_more(Err(server_error(43, &[])));
    assert_eq!(
        expect_kill(&mut machine)
            .body
            .get_array("cursors")
            .unwrap()
            .get_i64(0)
            .unwrap(),
        43
    );
    machine.handle_killed();
    let again = expect_aggregate(&mut machine);
    assert_eq!(stage(&again).get_document("resumeAfter").unwrap(), token(2).as_ref());
    // 3. The resume aggregate itself fails: that error is the user's and the stream closes.
    machine.handle_aggregate(Err(server_error(91, &["ResumableChangeStreamError"])), WIRE_7_0);
    assert_eq!(expect_closed_with(&mut machine).as_server_error().unwrap().code, 91);
    assert!(!machine.is_alive());
}

#[test]
fn a_non_resumable_get_more_error_kills_the_cursor_and_surfaces_once() {
    let mut machine = opened(ChangeStreamOptions::default(), None);
    expect_get_more(&mut machine);
    machine.handle_get_more(Err(server_error(2, &[])));
    assert!(!machine.is_alive());
    expect_kill(&mut machine);
    machine.handle_killed();
    assert_eq!(expect_closed_with(&mut machine).as_server_error().unwrap().code, 2);
    assert!(matches!(machine.poll(), Action::Closed(None)));
}

#[test]
fn resume_with_start_after_until_the_first_event_then_resume_after() {
    let options = ChangeStreamOptions {
        start_after: Some(token(5)),
        start_at_operation_time: None,
        ..Default::default()
    };
    let mut machine = collection_stream(options);
    assert_eq!(
        machine.resume_token().unwrap(),
        token(5).as_ref(),
        "the cache starts with startAfter"
    );
    let first = expect_aggregate(&mut machine);
    assert_eq!(stage(&first).get_document("startAfter").unwrap(), token(5).as_ref());
    machine.handle_aggregate(Ok(reply(true, 42, vec![], Some(6))), WIRE_7_0);
    assert_eq!(machine.resume_token().unwrap(), token(6).as_ref());
    expect_get_more(&mut machine);
    machine.handle_get_more(Err(network_error()));
    expect_kill(&mut machine);
    machine.handle_killed();
    let resume = expect_aggregate(&mut machine);
    let resumed = stage(&resume);
    assert_eq!(
        resumed.get_document("startAfter").unwrap(),
        token(6).as_ref(),
        "no event returned yet"
    );
    assert!(resumed.get("resumeAfter").unwrap().is_none());
    assert!(resumed.get("startAtOperationTime").unwrap().is_none());

    machine.handle_aggregate(Ok(reply(true, 43, vec![event(7)], None)), WIRE_7_0);
    expect_event(&mut machine);
    expect_get_more(&mut machine);
    machine.handle_get_more(Err(network_error()));
    expect_kill(&mut machine);
    machine.handle_killed();
    let resumed = stage(&expect_aggregate(&mut machine));
    assert_eq!(
        resumed.get_document("resumeAfter").unwrap(),
        token(7).as_ref(),
        "after an event: resumeAfter"
    );
    assert!(resumed.get("startAfter").unwrap().is_none());
}

#[test]
fn a_cached_token_replaces_start_at_operation_time_on_resume() {
    let at = Timestamp { time: 50, increment: 1 };
    let options = ChangeStreamOptions {
        start_at_operation_time: Some(at),
        ..Default::default()
    };
    let mut machine = collection_stream(options);
    assert_eq!(
        stage(&expect_aggregate(&mut machine))
            .get_timestamp("startAtOperationTime")
            .unwrap(),
        at
    );
    machine.handle_aggregate(Ok(reply(true, 42, vec![event(1)], None)), WIRE_7_0);
    expect_event(&mut machine);
    expect_get_more(&mut machine);
    machine.handle_get_more(Err(network_error()));
    expect_kill(&mut machine);
    machine.handle_killed();
    let resumed = stage(&expect_aggregate(&mut machine));
    assert_eq!(resumed.get_document("resumeAfter").unwrap(), token(1).as_ref());
    assert!(resumed.get("startAtOperationTime").unwrap().is_none());
}

#[test]
fn without_a_token_resume_uses_the_given_or_saved_operation_time_else_the_original_command() {
    // Given startAtOperationTime, no token ever cached (no events, no postBatchResumeToken).
    let at = Timestamp { time: 50, increment: 1 };
    let mut machine = collection_stream(ChangeStreamOptions {
        start_at_operation_time: Some(at),
        ..Default::default()
    });
    expect_aggregate(&mut machine);
    machine.handle_aggregate(Ok(reply(true, 42, vec![], None)), WIRE_7_0);
    expect_get_more(&mut machine);
    machine.handle_get_more(Err(network_error()));
    expect_kill(&mut machine);
    machine.handle_killed();
    assert_eq!(
        stage(&expect_aggregate(&mut machine))
            .get_timestamp("startAtOperationTime")
            .unwrap(),
        at
    );

    // Saved from the first reply: no start option, empty batch, no postBatchResumeToken.
    let mut machine = opened(ChangeStreamOptions::default(), None);
    expect_get_more(&mut machine);
    machine.handle_get_more(Err(network_error()));
    expect_kill(&mut machine);
    machine.handle_killed();
    let saved = stage(&expect_aggregate(&mut machine));
    assert_eq!(
        saved.get_timestamp("startAtOperationTime").unwrap(),
        Timestamp {
            time: 100,
            increment: 7
        }
    );
}

#[test]
fn operation_time_is_saved_only_when_the_specification_says() {
    // With a postBatchResumeToken the token is used instead.
    let mut machine = opened(ChangeStreamOptions::default(), Some(3));
    expect_get_more(&mut machine);
    machine.handle_get_more(Err(network_error()));
    expect_kill(&mut machine);
    machine.handle_killed();
    let resumed = stage(&expect_aggregate(&mut machine));
    assert!(resumed.get("startAtOperationTime").unwrap().is_none());
    assert_eq!(resumed.get_document("resumeAfter").unwrap(), token(3).as_ref());

    // With a start option (resumeAfter) nothing is saved, and the token rules apply.
    let mut machine = opened(
        ChangeStreamOptions {
            resume_after: Some(token(9)),
            ..Default::default()
        },
        None,
    );
    expect_get_more(&mut machine);
    machine.handle_get_more(Err(network_error()));
    expect_kill(&mut machine);
    machine.handle_killed();
    let resumed = stage(&expect_aggregate(&mut machine));
    assert_eq!(resumed.get_document("resumeAfter").unwrap(), token(9).as_ref());
    assert!(resumed.get("startAtOperationTime").unwrap().is_none());
}

#[test]
fn without_token_or_operation_time_resume_sends_the_original_command() {
    let mut machine = collection_stream(ChangeStreamOptions::default());
    let original = expect_aggregate(&mut machine);
    // A first batch with events but (old server) no postBatchResumeToken: nothing saved, but the
    // events' ids give a token. Cut before any event is taken:
    let body = shared(rawdoc! { "cursor": { "id": 42_i64, "ns": "db.coll", "firstBatch": [] }, "ok": 1.0 });
    machine.handle_aggregate(Ok(body), WIRE_4_2);
    expect_get_more(&mut machine);
    machine.handle_get_more(Err(network_error()));
    expect_kill(&mut machine);
    machine.handle_killed();
    assert_eq!(
        expect_aggregate(&mut machine).body,
        original.body,
        "no operationTime in that reply to save"
    );
}

#[test]
fn token_cache_follows_ids_and_the_post_batch_token_of_the_last_event() {
    let mut machine = collection_stream(ChangeStreamOptions::default());
    expect_aggregate(&mut machine);
    assert!(machine.resume_token().is_none());
    machine.handle_aggregate(Ok(reply(true, 42, vec![event(1), event(2)], Some(10))), WIRE_7_0);
    assert!(
        machine.resume_token().is_none(),
        "a batch with events does not cache its token up front"
    );
    assert_eq!(expect_event(&mut machine).resume_token(), token(1).as_ref());
    assert_eq!(
        machine.resume_token().unwrap(),
        token(1).as_ref(),
        "not the last: the event's _id"
    );
    assert_eq!(expect_event(&mut machine).resume_token(), token(2).as_ref());
    assert_eq!(
        machine.resume_token().unwrap(),
        token(10).as_ref(),
        "the last: the postBatchResumeToken"
    );
    expect_get_more(&mut machine);
    machine.handle_get_more(Ok(reply(false, 42, vec![], Some(11))));
    assert_eq!(
        machine.resume_token().unwrap(),
        token(11).as_ref(),
        "an empty batch moves the token too"
    );
    expect_get_more(&mut machine);
    machine.handle_get_more(Ok(reply(false, 42, vec![event(12)], None)));
    expect_event(&mut machine);
    assert_eq!(
        machine.resume_token().unwrap(),
        token(12).as_ref(),
        "the last, without a postBatchResumeToken"
    );
}

#[test]
fn an_event_without_an_id_is_an_error_that_closes_the_stream() {
    let mut machine = collection_stream(ChangeStreamOptions::default());
    expect_aggregate(&mut machine);
    let projected = rawdoc! { "operationType": "insert" };
    machine.handle_aggregate(Ok(reply(true, 42, vec![projected, event(2)], None)), WIRE_7_0);
    expect_kill(&mut machine);
    machine.handle_killed();
    let error = expect_closed_with(&mut machine);
    assert!(
        error
            .to_string()
            .contains("Cannot provide resume functionality when the resume token is missing"),
        "{error}"
    );
    assert!(!machine.is_alive());
    assert!(matches!(machine.poll(), Action::Closed(None)));
}

#[test]
fn an_invalidate_event_is_returned_then_the_stream_closes() {
    let mut machine = collection_stream(ChangeStreamOptions::default());
    expect_aggregate(&mut machine);
    let invalidate = rawdoc! { "_id": token(3), "operationType": "invalidate" };
    let drop = rawdoc! { "_id": token(2), "operationType": "drop" };
    machine.handle_aggregate(Ok(reply(true, 0, vec![event(1), drop, invalidate], None)), WIRE_7_0);
    assert_eq!(expect_event(&mut machine).operation_type(), OperationType::Insert);
    assert_eq!(expect_event(&mut machine).operation_type(), OperationType::Drop);
    assert_eq!(expect_event(&mut machine).operation_type(), OperationType::Invalidate);
    assert!(!machine.is_alive());
    assert!(
        matches!(machine.poll(), Action::Closed(None)),
        "no getMore after invalidate"
    );
    assert_eq!(
        machine.resume_token().unwrap(),
        token(3).as_ref(),
        "startAfter this token opens a new stream"
    );
}

#[test]
fn an_invalidate_on_an_open_cursor_kills_it() {
    let mut machine = opened(ChangeStreamOptions::default(), None);
    expect_get_more(&mut machine);
    let invalidate = rawdoc! { "_id": token(3), "operationType": "invalidate" };
    machine.handle_get_more(Ok(reply(false, 42, vec![invalidate], None)));
    expect_event(&mut machine);
    expect_kill(&mut machine);
    machine.handle_killed();
    assert!(matches!(machine.poll(), Action::Closed(None)));
}

#[test]
fn close_kills_an_open_cursor_and_nothing_else() {
    let mut machine = opened(ChangeStreamOptions::default(), None);
    assert_eq!(
        machine.close().unwrap().body,
        rawdoc! { "killCursors": "coll", "cursors": [42_i64] }
    );
    assert!(!machine.is_alive());
    assert!(matches!(machine.poll(), Action::Closed(None)));
    assert!(machine.close().is_none());
    let mut never_opened = collection_stream(ChangeStreamOptions::default());
    assert!(never_opened.close().is_none());
}

#[test]
fn outcomes_out_of_turn_are_ignored() {
    let mut machine = collection_stream(ChangeStreamOptions::default());
    machine.handle_get_more(Ok(reply(false, 1, vec![event(1)], None)));
    machine.handle_killed();
    assert!(matches!(machine.poll(), Action::Aggregate(_)));
    assert!(matches!(machine.poll(), Action::Waiting));
}

fn fragment(n: u32, of: i32, which: i32, field: &str, value: &str) -> RawDocumentBuf {
    let mut doc = rawdoc! { "_id": token(n), "splitEvent": { "fragment": which, "of": of } };
    if which == 1 {
        doc.append(bson::raw::cstr!("operationType"), "update");
    }
    doc.append(bson::raw::CString::try_from(field).unwrap(), value);
    doc
}

fn reassembling() -> ChangeStreamOptions {
    ChangeStreamOptions {
        reassemble_split_events: true,
        ..Default::default()
    }
}

#[test]
fn split_fragments_become_one_event_with_the_last_fragments_token() {
    let mut machine = opened(reassembling(), Some(1));
    expect_get_more(&mut machine);
    let parts = vec![
        fragment(10, 3, 1, "fullDocument", "big-a"),
        fragment(11, 3, 2, "fullDocumentBeforeChange", "big-b"),
        fragment(12, 3, 3, "updateDescription", "big-c"),
        event(13),
    ];
    machine.handle_get_more(Ok(reply(false, 42, parts, Some(20))));
    let merged = expect_event(&mut machine);
    assert_eq!(merged.resume_token(), token(12).as_ref());
    assert_eq!(merged.operation_type(), OperationType::Update);
    let keys: Vec<&str> = merged.raw().iter().map(|e| e.unwrap().0.as_str()).collect();
    assert_eq!(
        keys,
        [
            "_id",
            "operationType",
            "fullDocument",
            "fullDocumentBeforeChange",
            "updateDescription"
        ]
    );
    assert!(merged.split_event().is_none());
    assert_eq!(machine.resume_token().unwrap(), token(12).as_ref());
    assert_eq!(expect_event(&mut machine).resume_token(), token(13).as_ref());
    assert_eq!(machine.resume_token().unwrap(), token(20).as_ref());
}

#[test]
fn a_resume_in_the_middle_of_a_split_event_restarts_from_its_first_fragment() {
    let mut machine = opened(reassembling(), Some(1));
    expect_get_more(&mut machine);
    let parts = vec![fragment(10, 3, 1, "a", "x"), fragment(11, 3, 2, "b", "y")];
    machine.handle_get_more(Ok(reply(false, 42, parts, Some(11))));
    expect_get_more(&mut machine);
    assert_eq!(
        machine.resume_token().unwrap(),
        token(1).as_ref(),
        "users see the token before the event"
    );
    // Even an empty batch's postBatchResumeToken must not move past the first fragment.
    machine.handle_get_more(Ok(reply(false, 42, vec![], Some(15))));
    assert_eq!(machine.resume_token().unwrap(), token(1).as_ref());
    expect_get_more(&mut machine);
    machine.handle_get_more(Err(network_error()));
    expect_kill(&mut machine);
    machine.handle_killed();
    let resumed = stage(&expect_aggregate(&mut machine));
    assert_eq!(resumed.get_document("resumeAfter").unwrap(), token(1).as_ref());
    // The server sends the whole event again.
    let again = vec![fragment(10, 2, 1, "a", "x"), fragment(11, 2, 2, "b", "y")];
    machine.handle_aggregate(Ok(reply(true, 43, again, None)), WIRE_7_0);
    let merged = expect_event(&mut machine);
    assert_eq!(
        (merged.raw().get_str("a").unwrap(), merged.raw().get_str("b").unwrap()),
        ("x", "y")
    );
}

#[test]
fn fragments_out_of_order_are_a_protocol_error() {
    for parts in [
        vec![fragment(10, 3, 2, "a", "x")],
        vec![fragment(10, 3, 1, "a", "x"), fragment(11, 3, 3, "b", "y")],
        vec![fragment(10, 3, 1, "a", "x"), fragment(11, 2, 2, "b", "y")],
        vec![fragment(10, 2, 1, "a", "x"), event(11)],
        vec![fragment(10, 1, 2, "a", "x")],
    ] {
        let mut machine = opened(reassembling(), None);
        expect_get_more(&mut machine);
        machine.handle_get_more(Ok(reply(false, 42, parts, None)));
        expect_kill(&mut machine);
        machine.handle_killed();
        let error = expect_closed_with(&mut machine);
        assert!(matches!(error, Error::Protocol(_)), "{error}");
    }
}

#[test]
fn without_reassembly_fragments_are_events() {
    let mut machine = opened(ChangeStreamOptions::default(), None);
    expect_get_more(&mut machine);
    machine.handle_get_more(Ok(reply(false, 42, vec![fragment(10, 2, 1, "a", "x")], None)));
    let first = expect_event(&mut machine);
    assert_eq!(first.split_event(), Some(SplitEvent { fragment: 1, of: 2 }));
    assert_eq!(machine.resume_token().unwrap(), token(10).as_ref());
}

#[test]
fn prefetch_offers_a_get_more_only_when_asked_and_open() {
    let mut machine = opened(
        ChangeStreamOptions {
            prefetch: true,
            ..Default::default()
        },
        None,
    );
    assert_eq!(machine.prefetch_command().unwrap().body.get_i64("getMore").unwrap(), 42);
    expect_get_more(&mut machine);
    assert!(machine.prefetch_command().is_none(), "one is already in flight");
    let plain = opened(ChangeStreamOptions::default(), None);
    assert!(plain.prefetch_command().is_none());
}

#[test]
fn malformed_replies_close_or_resume_as_their_kind_says() {
    // A malformed first reply: aggregate errors are final.
    let mut machine = collection_stream(ChangeStreamOptions::default());
    expect_aggregate(&mut machine);
    machine.handle_aggregate(Ok(shared(rawdoc! { "ok": 1.0 })), WIRE_7_0);
    assert!(matches!(expect_closed_with(&mut machine), Error::Protocol(_)));
    // A malformed getMore reply means the connection cannot be trusted: resume.
    let mut machine = opened(ChangeStreamOptions::default(), Some(1));
    expect_get_more(&mut machine);
    machine.handle_get_more(Ok(shared(
        rawdoc! { "cursor": { "id": 42_i64, "ns": "db.coll", "nextBatch": 3 }, "ok": 1.0 },
    )));
    expect_kill(&mut machine);
    machine.handle_killed();
    assert_eq!(
        stage(&expect_aggregate(&mut machine))
            .get_document("resumeAfter")
            .unwrap(),
        token(1).as_ref()
    );
}

#[test]
fn events_are_typed_raw_and_deserializable() {
    let raw = rawdoc! {
        "_id": token(1), "operationType": "update", "clusterTime": Timestamp { time: 9, increment: 1 },
        "wallTime": bson::DateTime::from_millis(1_700_000_000_000),
        "ns": { "db": "db", "coll": "coll" }, "documentKey": { "_id": 5 },
        "updateDescription": {
            "updatedFields": { "a.b": 1 }, "removedFields": ["c"],
            "truncatedArrays": [{ "field": "arr", "newSize": 2 }], "disambiguatedPaths": { "a.b": ["a", "b"] },
        },
        "fullDocument": { "_id": 5, "a": { "b": 1 } }, "fullDocumentBeforeChange": null, "txnNumber": 3_i64,
        "lsid": { "id": 1 }, "newField": true,
    };
    let event = ChangeEvent::new(shared(raw.clone())).unwrap();
    assert_eq!(event.raw(), raw.as_ref());
    assert_eq!(event.operation_type(), OperationType::Update);
    assert_eq!(
        event.ns(),
        Some(EventNamespace {
            db: "db",
            coll: Some("coll")
        })
    );
    assert_eq!(event.to(), None);
    assert_eq!(event.document_key().unwrap().get_i32("_id").unwrap(), 5);
    assert_eq!(event.full_document().unwrap().get_i32("_id").unwrap(), 5);
    assert!(event.full_document_before_change().is_none(), "null is absent");
    let update = event.update_description().unwrap();
    assert_eq!(update.updated_fields().unwrap().get_i32("a.b").unwrap(), 1);
    assert_eq!(update.removed_fields(), ["c"]);
    assert_eq!(
        update.truncated_arrays(),
        [TruncatedArray {
            field: "arr",
            new_size: 2
        }]
    );
    assert!(update.disambiguated_paths().is_some());
    assert_eq!(event.cluster_time(), Some(Timestamp { time: 9, increment: 1 }));
    assert_eq!(event.wall_time(), Some(bson::DateTime::from_millis(1_700_000_000_000)));
    assert_eq!(event.txn_number(), Some(3));
    assert!(event.lsid().is_some());
    let typed: ChangeStreamEvent<bson::Document> = event.deserialize().unwrap();
    assert_eq!(event.to_typed().unwrap(), typed, "the direct conversion equals serde's");
    assert_eq!(typed.operation_type, OperationType::Update);
    assert_eq!(typed.full_document.unwrap().get_i32("_id").unwrap(), 5);
    assert_eq!(typed.ns.unwrap().coll.as_deref(), Some("coll"));
    #[derive(serde::Deserialize)]
    struct Mine {
        #[serde(rename = "newField")]
        new_field: bool,
    }
    assert!(
        event.deserialize::<Mine>().unwrap().new_field,
        "the user's own type, one call"
    );
    assert_eq!(
        OperationType::from_name("futureOp"),
        OperationType::Other("futureOp".into())
    );
}

#[test]
fn to_typed_equals_serde_for_every_field_kind() {
    let uuid = bson::Binary {
        subtype: bson::spec::BinarySubtype::Uuid,
        bytes: vec![7; 16],
    };
    let events = [
        rawdoc! {
            "_id": token(2), "operationType": "insert", "clusterTime": Timestamp { time: 1, increment: 2 },
            "collectionUUID": uuid.clone(), "ns": { "db": "d", "coll": "c" },
            "documentKey": { "_id": bson::oid::ObjectId::from_bytes([1; 12]) },
            "fullDocument": {
                "_id": bson::oid::ObjectId::from_bytes([1; 12]), "n": 1.5, "tags": ["a", { "b": [1_i64] }],
                "bin": uuid, "when": bson::DateTime::from_millis(-5), "dec": bson::Decimal128::from_bytes([3; 16]),
                "re": bson::Regex { pattern: "^a".to_owned().try_into().unwrap(), options: "i".to_owned().try_into().unwrap() }, "nothing": null,
            },
            "splitEvent": { "fragment": 1, "of": 2 },
        },
        rawdoc! {
            "_id": token(3), "operationType": "rename", "ns": { "db": "d", "coll": "c" },
            "to": { "db": "d", "coll": "e" },
        },
        rawdoc! { "_id": token(4), "operationType": "dropDatabase", "ns": { "db": "d" } },
        rawdoc! { "_id": token(5), "operationType": "someFutureOp", "ns": null, "fullDocument": null },
    ];
    for raw in events {
        let event = ChangeEvent::new(shared(raw.clone())).unwrap();
        let serde: ChangeStreamEvent<bson::Document> = event.deserialize().unwrap();
        assert_eq!(event.to_typed().unwrap(), serde, "{raw:?}");
    }
    let no_type = ChangeEvent::new(shared(rawdoc! { "_id": token(6) })).unwrap();
    assert!(no_type.to_typed().is_err() && no_type.deserialize::<ChangeStreamEvent<bson::Document>>().is_err());
}
