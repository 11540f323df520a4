//! Replaying a fixture's server side to whatever client connects.
//!
//! Requests are matched to the recording by command and order: each operation the client sends
//! must equal the next recorded one (after removing fields that change from run to run: `lsid`,
//! `$clusterTime`, `txnNumber`, `operationTime`, `afterClusterTime`), and gets the recorded
//! replies, with ids rewritten for this connection. Where the server closed the connection in
//! the recording, the replay closes it too. Handshakes and monitoring (`hello`, `isMaster`) and
//! `endSessions` are answered from the recording without being checked: how many of them a run
//! sends depends on timing, not on what the client does.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bson::{Bson, Document, RawDocument};
use bytes::{Bytes, BytesMut};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::capture::{Direction, Fixture, FixtureEvent};
use crate::wire::{Body, DEFAULT_MAX_MESSAGE_SIZE, Message, MessageDecoder, OpMsg};

/// Fields whose values differ between a recording and a replay of the same client behaviour.
const VOLATILE: [&str; 5] = ["lsid", "$clusterTime", "txnNumber", "operationTime", "afterClusterTime"];

/// Commands answered from the recording but not checked against it.
const UNCHECKED: [&str; 4] = ["hello", "isMaster", "ismaster", "endSessions"];

/// One recorded request with what the server did about it.
#[derive(Debug)]
struct Exchange {
    /// The fixture line of the request.
    line: u64,
    command: String,
    request: Message,
    replies: Vec<Message>,
    /// The server closed the connection after (or instead of) replying.
    close_after: bool,
}

/// The first request that did not match the recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The fixture line of the request that was expected.
    pub line: u64,
    /// The command that was expected.
    pub expected: String,
    /// The command that came.
    pub got: String,
    /// The differences, one per line: `- path: expected` / `+ path: got`.
    pub diff: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "request differs from the recording at line {} (expected {}, got {}):",
            self.line, self.expected, self.got
        )?;
        f.write_str(&self.diff)
    }
}

/// What a replay saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Recorded operations (requests other than handshakes and monitoring).
    pub operations: usize,
    /// How many of them the client performed, in order.
    pub performed: usize,
    /// Connections the client opened.
    pub connections: u32,
    /// The first request that differed, if any.
    pub mismatch: Option<Mismatch>,
    /// The next operation the client did not perform, if it stopped early.
    pub missing: Option<String>,
}

impl ReplayReport {
    /// Whether the client did exactly what the recording says.
    pub fn passed(&self) -> bool {
        self.mismatch.is_none() && self.performed == self.operations
    }
}

#[derive(Debug, Default)]
struct State {
    next: usize,
    mismatch: Option<Mismatch>,
    open_connections: u32,
    connections: u32,
}

struct Script {
    operations: Vec<Exchange>,
    handshake_reply: Option<Message>,
    monitor_reply: Option<Message>,
    end_sessions_reply: Option<Message>,
    state: Mutex<State>,
    done: Notify,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The command name of a request: an OP_MSG body's first key, an OP_QUERY's query's first key.
fn command_name(message: &Message) -> String {
    let first_key = |doc: &RawDocument| {
        doc.iter()
            .next()
            .and_then(|e| e.ok())
            .map(|(k, _)| k.as_str().to_owned())
    };
    match message.body() {
        Body::Msg(msg) => msg.command_name().unwrap_or_default().to_owned(),
        Body::Query(query) => first_key(query.query()).unwrap_or_default(),
        Body::Command(command) => command.command_name().to_owned(),
        other => other.op_code().name().to_owned(),
    }
}

fn decode(bytes: &Bytes) -> Option<Message> {
    Message::decode(bytes.clone(), DEFAULT_MAX_MESSAGE_SIZE).ok()
}

impl Script {
    fn from_fixture(fixture: &Fixture) -> Script {
        let mut operations: Vec<Exchange> = Vec::new();
        let (mut handshake_reply, mut monitor_reply, mut end_sessions_reply) = (None, None, None);
        // Per connection: the index of its last request, and whether it was the first.
        let mut last: std::collections::HashMap<u32, (Option<usize>, String, bool, i32)> = Default::default();
        for entry in &fixture.entries {
            match (&entry.event, entry.dir) {
                (FixtureEvent::Message(bytes), Direction::ClientToServer) => {
                    let Some(request) = decode(bytes) else { continue };
                    let command = command_name(&request);
                    let first = !last.contains_key(&entry.conn);
                    let request_id = request.request_id();
                    let index = if UNCHECKED.contains(&command.as_str()) {
                        None
                    } else {
                        operations.push(Exchange {
                            line: entry.seq + 2,
                            command: command.clone(),
                            request,
                            replies: Vec::new(),
                            close_after: false,
                        });
                        Some(operations.len() - 1)
                    };
                    last.insert(entry.conn, (index, command, first, request_id));
                }
                (FixtureEvent::Message(bytes), Direction::ServerToClient) => {
                    let Some(reply) = decode(bytes) else { continue };
                    let Some((index, command, first, request_id)) = last.get(&entry.conn) else {
                        continue;
                    };
                    if reply.response_to() != *request_id {
                        continue;
                    }
                    match index {
                        Some(index) => {
                            if let Some(exchange) = operations.get_mut(*index) {
                                exchange.replies.push(reply);
                            }
                        }
                        None if command == "endSessions" => end_sessions_reply = Some(reply),
                        None if *first => {
                            handshake_reply.get_or_insert(reply);
                        }
                        None => monitor_reply = Some(reply),
                    }
                }
                (FixtureEvent::Close, Direction::ServerToClient) => {
                    if let Some((Some(index), ..)) = last.get(&entry.conn)
                        && let Some(exchange) = operations.get_mut(*index)
                    {
                        exchange.close_after = true;
                    }
                }
                _ => {}
            }
        }
        Script {
            operations,
            handshake_reply,
            monitor_reply,
            end_sessions_reply,
            state: Mutex::new(State::default()),
            done: Notify::new(),
        }
    }

    fn report(&self) -> ReplayReport {
        let state = lock(&self.state);
        let missing = self
            .operations
            .get(state.next)
            .map(|e| format!("{} (line {})", e.command, e.line));
        ReplayReport {
            operations: self.operations.len(),
            performed: state.next,
            connections: state.connections,
            mismatch: state.mismatch.clone(),
            missing: missing.filter(|_| state.mismatch.is_none()),
        }
    }

    fn finished(&self) -> bool {
        let state = lock(&self.state);
        state.open_connections == 0 && (state.next == self.operations.len() || state.mismatch.is_some())
    }
}

/// Serves the fixture's server side on `listener` until the client has performed every recorded
/// operation (or sent one that differs) and closed its connections, or until nothing happens for
/// `idle_timeout`.
pub async fn replay(listener: TcpListener, fixture: &Fixture, idle_timeout: Duration) -> std::io::Result<ReplayReport> {
    let script = Arc::new(Script::from_fixture(fixture));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        if script.finished() && lock(&script.state).connections > 0 {
            break;
        }
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                {
                    let mut state = lock(&script.state);
                    state.open_connections += 1;
                    state.connections += 1;
                }
                let script = script.clone();
                tasks.spawn(async move {
                    serve(stream, &script, idle_timeout).await;
                    lock(&script.state).open_connections -= 1;
                    script.done.notify_waiters();
                });
            }
            () = script.done.notified() => {}
            () = tokio::time::sleep(idle_timeout) => {
                if lock(&script.state).open_connections == 0 {
                    break;
                }
            }
        }
    }
    tasks.shutdown().await;
    Ok(script.report())
}

/// One client connection.
async fn serve(mut stream: TcpStream, script: &Script, idle_timeout: Duration) {
    let _ = stream.set_nodelay(true);
    let mut decoder = MessageDecoder::default();
    let mut buffer = BytesMut::new();
    let mut first = true;
    loop {
        let request = loop {
            match decoder.decode(&mut buffer) {
                Ok(Some(message)) => break message,
                Ok(None) => {}
                Err(_) => return,
            }
            buffer.reserve(64 * 1024);
            match tokio::time::timeout(idle_timeout, stream.read_buf(&mut buffer)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                Ok(Ok(_)) => {}
            }
        };
        let command = command_name(&request);
        let (replies, close) = if UNCHECKED.contains(&command.as_str()) {
            let recorded = match command.as_str() {
                "endSessions" => script.end_sessions_reply.as_ref(),
                _ if first => script.handshake_reply.as_ref(),
                _ => script.monitor_reply.as_ref().or(script.handshake_reply.as_ref()),
            };
            (recorded.into_iter().cloned().collect::<Vec<_>>(), false)
        } else {
            check(script, &request, &command)
        };
        first = false;
        let mut out = BytesMut::new();
        for reply in &replies {
            let request_id = crate::driver::next_request_id();
            let encoded = match reply.compression() {
                Some(compression) => {
                    let rewritten = Message::new(request_id, request.request_id(), reply.body().clone());
                    rewritten.encode_compressed(compression.compressor, None, &mut out)
                }
                None => reply.body().encode(request_id, request.request_id(), &mut out),
            };
            if encoded.is_err() {
                return;
            }
        }
        if stream.write_all(&out).await.is_err() || close {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// Matches a request against the next recorded operation: the replies to send and whether to
/// close the connection after them; an error reply when it does not match (the mismatch is kept
/// for the report).
fn check(script: &Script, request: &Message, command: &str) -> (Vec<Message>, bool) {
    let mut state = lock(&script.state);
    let expected = match (&state.mismatch, script.operations.get(state.next)) {
        (None, Some(expected)) => expected,
        (Some(_), _) => {
            return (
                vec![error_reply("an earlier request already differed from the recording")],
                false,
            );
        }
        (None, None) => {
            state.mismatch = Some(Mismatch {
                line: 0,
                expected: "nothing (the recording is over)".into(),
                got: command.to_owned(),
                diff: format!("+ {}\n", comparable(request).map(|d| d.to_string()).unwrap_or_default()),
            });
            return (vec![error_reply("the recording has no more operations")], false);
        }
    };
    let diff = match (comparable(&expected.request), comparable(request)) {
        (Some(want), Some(got)) => document_diff(&want, &got),
        _ => format!("- {}\n+ {command}\n", expected.command),
    };
    if !diff.is_empty() {
        let mismatch = Mismatch {
            line: expected.line,
            expected: expected.command.clone(),
            got: command.to_owned(),
            diff,
        };
        let reply = error_reply(&mismatch.to_string());
        state.mismatch = Some(mismatch);
        return (vec![reply], false);
    }
    state.next += 1;
    (expected.replies.clone(), expected.close_after)
}

fn error_reply(message: &str) -> Message {
    let body = bson::rawdoc! { "ok": 0.0, "errmsg": format!("mongowire replay: {message}"), "code": 1, "codeName": "ReplayMismatch" };
    Message::new(0, 0, Body::Msg(OpMsg::new(body)))
}

/// A request as compared: its command document with sequences folded in as arrays, without
/// the volatile fields.
fn comparable(message: &Message) -> Option<Document> {
    let mut document = match message.body() {
        Body::Msg(msg) => {
            let mut document = Document::try_from(msg.body()).ok()?;
            for sequence in msg.sequences() {
                let items: Vec<Bson> = sequence
                    .documents()
                    .filter_map(|d| Document::try_from(d).ok())
                    .map(Bson::Document)
                    .collect();
                document.insert(sequence.identifier(), items);
            }
            document
        }
        Body::Query(query) => Document::try_from(query.query()).ok()?,
        Body::Command(command) => Document::try_from(command.command_args()).ok()?,
        _ => return None,
    };
    strip_volatile(&mut document);
    Some(document)
}

fn strip_volatile(document: &mut Document) {
    for key in VOLATILE {
        document.remove(key);
    }
    for (_, value) in document.iter_mut() {
        strip_volatile_value(value);
    }
}

fn strip_volatile_value(value: &mut Bson) {
    match value {
        Bson::Document(inner) => strip_volatile(inner),
        Bson::Array(items) => items.iter_mut().for_each(strip_volatile_value),
        _ => {}
    }
}

/// The paths where two documents differ, as `- path: expected` / `+ path: got` lines, in
/// relaxed Extended JSON; empty when they are equal.
fn document_diff(expected: &Document, got: &Document) -> String {
    let mut out = String::new();
    diff_values(
        "",
        &Bson::Document(expected.clone()).into_relaxed_extjson(),
        &Bson::Document(got.clone()).into_relaxed_extjson(),
        &mut out,
    );
    out
}

fn diff_values(path: &str, expected: &Value, got: &Value, out: &mut String) {
    match (expected, got) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match have.get(key) {
                    Some(other) => diff_values(&child, value, other, out),
                    None => out.push_str(&format!("- {child}: {value}\n+ {child}: (missing)\n")),
                }
            }
            for (key, value) in have {
                if !want.contains_key(key) {
                    let child = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    out.push_str(&format!("- {child}: (missing)\n+ {child}: {value}\n"));
                }
            }
        }
        (Value::Array(want), Value::Array(have)) if want.len() == have.len() => {
            for (index, (a, b)) in want.iter().zip(have).enumerate() {
                diff_values(&format!("{path}[{index}]"), a, b, out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push_str(&format!("- {path}: {a}\n+ {path}: {b}\n")),
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn diffs_name_the_paths_that_differ_and_ignore_volatile_fields() {
        let mut expected = doc! {
            "aggregate": "c",
            "pipeline": [{ "$changeStream": { "resumeAfter": { "_data": "A" } } }],
            "lsid": { "id": 1 },
            "$clusterTime": { "clusterTime": bson::Timestamp { time: 1, increment: 1 } },
        };
        let mut got = doc! {
            "aggregate": "c",
            "pipeline": [{ "$changeStream": { "startAfter": { "_data": "A" } } }],
            "lsid": { "id": 2 },
        };
        strip_volatile(&mut expected);
        strip_volatile(&mut got);
        let diff = document_diff(&expected, &got);
        assert_eq!(
            diff,
            "- pipeline[0].$changeStream.resumeAfter: {\"_data\":\"A\"}\n+ pipeline[0].$changeStream.resumeAfter: (missing)\n\
             - pipeline[0].$changeStream.startAfter: (missing)\n+ pipeline[0].$changeStream.startAfter: {\"_data\":\"A\"}\n"
        );
        assert!(
            document_diff(&doc! { "a": 1, "b": 2 }, &doc! { "b": 2, "a": 1 }).is_empty(),
            "order does not matter"
        );
    }
}
