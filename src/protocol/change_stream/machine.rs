//! The change-stream state machine: every rule of the Change Streams specification about what
//! to send, which token to keep and when to resume, with no I/O.
//!
//! The driver asks [`ChangeStreamMachine::poll`] what to do and reports the outcome back:
//!
//! ```text
//!             poll                          handle_aggregate(ok)
//!   Start ─────────► Aggregate ──────────────────────────────────► Open ◄──────────────┐
//!     ▲                  │ handle_aggregate(err): never resumable   │ poll: events,     │
//!     │                  ▼                                          │ then GetMore      │
//!     │               Closed ◄── non-resumable getMore error ───────┤                   │
//!     │                  ▲                                          ▼                   │
//!     │                  └── invalidate, missing _id ──────── AwaitGetMore ─ ok ───────┘
//!     │                                                             │ resumable error
//!     └──── (resume: kill the old cursor, then aggregate with ─ Resume ◄┘
//!            startAfter / resumeAfter / startAtOperationTime)
//! ```
//!
//! Resume once per error: a getMore error leads to one resume aggregate; if it fails, the error
//! is the user's and the stream closes; if it succeeds, a later getMore error may resume again.

use std::collections::VecDeque;

use bson::{RawArrayBuf, RawBson, RawBsonRef, RawDocument, RawDocumentBuf, Timestamp, raw::cstr, rawdoc};
use bytes::Bytes;

use super::event::ChangeEvent;
use super::options::{ChangeStreamOptions, WatchTarget};
use crate::error::{Error, ProtocolErrorKind};
use crate::protocol::crud::Command;
use crate::protocol::cursor::{GetMoreOptions, Namespace, get_more_command, kill_cursors_command, parse_cursor_reply};
use crate::protocol::reply;
use crate::wire::SharedDocument;

/// CursorNotFound: resumable whatever the server version.
const CURSOR_NOT_FOUND: i32 = 43;

/// Wire version 9 (MongoDB 4.4): the server labels resumable errors itself.
const SERVER_LABELS_RESUMABLE: i32 = 9;

/// The label 4.4+ servers put on errors a change stream may resume after.
pub const RESUMABLE_CHANGE_STREAM_ERROR: &str = "ResumableChangeStreamError";

/// Codes that are resumable on servers older than 4.4.
const LEGACY_RESUMABLE_CODES: [i32; 17] = [
    6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 63, 150, 13388, 234, 133,
];

/// Whether a getMore failure lets the stream resume, given the wire version of the connection
/// the getMore ran on. Any error that is not the server's (network, timeout, or bytes that broke
/// the protocol, after which the connection is closed) is resumable; so are CursorNotFound and,
/// by server version, labelled errors or the listed codes.
pub fn is_resumable(error: &Error, wire_version: i32) -> bool {
    match error {
        Error::Transport(_) | Error::Protocol(_) => true,
        Error::Server(server) if server.code == CURSOR_NOT_FOUND => true,
        Error::Server(server) if wire_version >= SERVER_LABELS_RESUMABLE => {
            server.has_label(RESUMABLE_CHANGE_STREAM_ERROR)
        }
        Error::Server(server) => LEGACY_RESUMABLE_CODES.contains(&server.code),
        _ => false,
    }
}

/// What the driver must do next.
#[derive(Debug)]
pub enum Action {
    /// Run this aggregate on a server selected with the stream's read preference (on a resume,
    /// with the same session), then call [`ChangeStreamMachine::handle_aggregate`].
    Aggregate(Command),
    /// Run this getMore on the cursor's server, then call [`ChangeStreamMachine::handle_get_more`].
    GetMore(Command),
    /// Kill the previous cursor on the server it lives on, ignoring any failure, then call
    /// [`ChangeStreamMachine::handle_killed`].
    KillCursors(Command),
    /// Give this event to the user.
    Event(ChangeEvent),
    /// The stream is closed; the error that closed it comes once, then `None`.
    Closed(Option<Error>),
    /// An outcome is still expected: the last action's result has not been handed back.
    Waiting,
}

/// An open server cursor and its buffered batch.
#[derive(Debug)]
struct Cursor {
    id: i64,
    ns: Namespace,
    wire_version: i32,
    batch: VecDeque<SharedDocument>,
    post_batch_resume_token: Option<SharedDocument>,
}

#[derive(Debug)]
enum State {
    /// The first aggregate is to be sent.
    Start,
    /// An aggregate is in flight; `resume` tells a resume from the first one.
    AwaitAggregate { resume: bool },
    /// A cursor is open.
    Open(Cursor),
    /// A getMore is in flight.
    AwaitGetMore(Cursor),
    /// A resumable error happened: the old cursor is to be killed (if it is still open), then
    /// the aggregate sent again.
    Resume { old: Option<(i64, Namespace)> },
    /// The killCursors of a resume is in flight.
    AwaitKillForResume,
    /// The stream ended; the cursor is to be killed first when `kill` is set.
    Closing { kill: Option<(i64, Namespace)> },
    /// The killCursors of a close is in flight.
    AwaitKillForClose,
    /// Closed.
    Closed,
}

/// Fragments of an event split by `$changeStreamSplitLargeEvent`, waiting for the last one.
#[derive(Debug)]
struct Fragments {
    parts: Vec<SharedDocument>,
    of: i32,
    /// The resume token before the first fragment: where a resume must restart from.
    token_before: Option<SharedDocument>,
}

/// One change stream's protocol state.
#[derive(Debug)]
pub struct ChangeStreamMachine {
    target: WatchTarget,
    pipeline: Vec<RawDocumentBuf>,
    options: ChangeStreamOptions,
    token: Option<SharedDocument>,
    /// `startAtOperationTime` as given, or saved from the first aggregate's reply.
    operation_time: Option<Timestamp>,
    returned_event: bool,
    state: State,
    error: Option<Error>,
    fragments: Option<Fragments>,
    /// An invalidate event was returned: the stream ends.
    invalidated: bool,
}

fn protocol(problem: impl Into<String>) -> Error {
    Error::protocol(
        "change event",
        ProtocolErrorKind::InvalidField {
            field: "splitEvent",
            problem: problem.into(),
        },
    )
}

impl ChangeStreamMachine {
    /// A stream on `target` with `pipeline` stages after `$changeStream`.
    pub fn new(
        target: WatchTarget,
        pipeline: Vec<RawDocumentBuf>,
        options: ChangeStreamOptions,
    ) -> ChangeStreamMachine {
        // The token cache starts with startAfter, else resumeAfter.
        let token = options
            .start_after
            .as_deref()
            .or(options.resume_after.as_deref())
            .map(SharedDocument::copy_of);
        let operation_time = options.start_at_operation_time;
        ChangeStreamMachine {
            target,
            pipeline,
            options,
            token,
            operation_time,
            returned_event: false,
            state: State::Start,
            error: None,
            fragments: None,
            invalidated: false,
        }
    }

    /// The token a new stream would resume after: the latest event's `_id` or batch's
    /// `postBatchResumeToken`, updated even when no event comes. While a split event is being
    /// reassembled, the token before its first fragment.
    pub fn resume_token(&self) -> Option<&RawDocument> {
        match &self.fragments {
            Some(fragments) => fragments.token_before.as_deref(),
            None => self.token.as_deref(),
        }
    }

    /// Whether the stream could still produce events.
    pub fn is_alive(&self) -> bool {
        !matches!(
            self.state,
            State::Closed | State::Closing { .. } | State::AwaitKillForClose
        )
    }

    /// The options the stream was opened with.
    pub fn options(&self) -> &ChangeStreamOptions {
        &self.options
    }

    /// What to do next.
    pub fn poll(&mut self) -> Action {
        loop {
            match std::mem::replace(&mut self.state, State::Closed) {
                State::Start => {
                    self.state = State::AwaitAggregate { resume: false };
                    return Action::Aggregate(self.aggregate_command(false));
                }
                State::Resume { old: Some((id, ns)) } => {
                    self.state = State::AwaitKillForResume;
                    return Action::KillCursors(kill_cursors_command(id, &ns));
                }
                State::Resume { old: None } => {
                    self.state = State::AwaitAggregate { resume: true };
                    return Action::Aggregate(self.aggregate_command(true));
                }
                State::Open(mut cursor) => {
                    if let Some(document) = cursor.batch.pop_front() {
                        let last = cursor.batch.is_empty();
                        let post_batch = if last {
                            cursor.post_batch_resume_token.clone()
                        } else {
                            None
                        };
                        match self.take_document(document, post_batch, last) {
                            Ok(Some(event)) => {
                                self.state = if self.invalidated {
                                    State::Closing {
                                        kill: (cursor.id != 0).then(|| (cursor.id, cursor.ns.clone())),
                                    }
                                } else {
                                    State::Open(cursor)
                                };
                                return Action::Event(event);
                            }
                            Ok(None) => {
                                self.state = State::Open(cursor);
                                continue;
                            }
                            Err(error) => {
                                self.error = Some(error);
                                self.state = State::Closing {
                                    kill: (cursor.id != 0).then_some((cursor.id, cursor.ns)),
                                };
                                continue;
                            }
                        }
                    }
                    if cursor.id == 0 {
                        // The server closed the cursor (after a drop or invalidate it did not
                        // report as an event); nothing more can come.
                        self.state = State::Closed;
                        continue;
                    }
                    let command = self.get_more_command(&cursor);
                    self.state = State::AwaitGetMore(cursor);
                    return Action::GetMore(command);
                }
                State::Closing { kill: Some((id, ns)) } => {
                    self.state = State::AwaitKillForClose;
                    return Action::KillCursors(kill_cursors_command(id, &ns));
                }
                State::Closing { kill: None } | State::Closed => {
                    self.state = State::Closed;
                    self.fragments = None;
                    return Action::Closed(self.error.take());
                }
                waiting @ (State::AwaitAggregate { .. }
                | State::AwaitGetMore(_)
                | State::AwaitKillForResume
                | State::AwaitKillForClose) => {
                    self.state = waiting;
                    return Action::Waiting;
                }
            }
        }
    }

    /// Reports an aggregate's outcome: its reply body, or the error. `wire_version` is the
    /// server's, kept for judging later getMore errors. An aggregate error is never resumable.
    pub fn handle_aggregate(&mut self, result: Result<SharedDocument, Error>, wire_version: i32) {
        let resume = match std::mem::replace(&mut self.state, State::Closed) {
            State::AwaitAggregate { resume } => resume,
            other => {
                // Not awaiting an aggregate: the outcome is out of turn and ignored.
                self.state = other;
                return;
            }
        };
        let body = match result {
            Ok(body) => body,
            Err(error) => return self.fail(error, None),
        };
        let reply = match parse_cursor_reply(&body) {
            Ok(reply) => reply,
            Err(error) => return self.fail(error, None),
        };
        let started_at_a_point = self.options.resume_after.is_some()
            || self.options.start_after.is_some()
            || self.options.start_at_operation_time.is_some();
        if !resume && !started_at_a_point && reply.batch.is_empty() && reply.post_batch_resume_token.is_none() {
            self.operation_time = reply::operation_time(&body);
        }
        let cursor = Cursor {
            id: reply.id,
            ns: reply.ns,
            wire_version,
            batch: reply.batch.collect(),
            post_batch_resume_token: reply.post_batch_resume_token,
        };
        self.cache_empty_batch_token(&cursor);
        self.state = State::Open(cursor);
    }

    /// Reports a getMore's outcome. A resumable error starts the resume; any other closes the
    /// stream (killing the cursor first) and is returned once by [`ChangeStreamMachine::poll`].
    pub fn handle_get_more(&mut self, result: Result<SharedDocument, Error>) {
        let mut cursor = match std::mem::replace(&mut self.state, State::Closed) {
            State::AwaitGetMore(cursor) => cursor,
            other => {
                self.state = other;
                return;
            }
        };
        let reply = match result.and_then(|body| parse_cursor_reply(&body)) {
            Ok(reply) => reply,
            Err(error) if is_resumable(&error, cursor.wire_version) => {
                // A resume restarts a split event from its first fragment.
                if let Some(fragments) = self.fragments.take() {
                    self.token = fragments.token_before;
                }
                self.state = State::Resume {
                    old: Some((cursor.id, cursor.ns)),
                };
                return;
            }
            Err(error) => return self.fail(error, Some((cursor.id, cursor.ns))),
        };
        cursor.id = reply.id;
        cursor.ns = reply.ns;
        cursor.batch = reply.batch.collect();
        cursor.post_batch_resume_token = reply.post_batch_resume_token;
        self.cache_empty_batch_token(&cursor);
        self.state = State::Open(cursor);
    }

    /// Reports that a killCursors asked for by [`Action::KillCursors`] is done (whatever its
    /// outcome).
    pub fn handle_killed(&mut self) {
        self.state = match std::mem::replace(&mut self.state, State::Closed) {
            State::AwaitKillForResume => State::Resume { old: None },
            State::AwaitKillForClose => State::Closed,
            other => other,
        };
    }

    /// Closes the stream. Returns the killCursors to send when a cursor is open.
    pub fn close(&mut self) -> Option<Command> {
        let kill = match std::mem::replace(&mut self.state, State::Closed) {
            State::Open(cursor) | State::AwaitGetMore(cursor) if cursor.id != 0 => {
                Some(kill_cursors_command(cursor.id, &cursor.ns))
            }
            State::Resume { old: Some((id, ns)) } | State::Closing { kill: Some((id, ns)) } => {
                Some(kill_cursors_command(id, &ns))
            }
            _ => None,
        };
        self.fragments = None;
        self.error = None;
        kill
    }

    /// A getMore to send now, ahead of need, when the stream prefetches: the cursor is open and
    /// nothing is in flight. Its outcome goes to [`ChangeStreamMachine::handle_get_more`] once
    /// `poll` asks for a getMore.
    pub fn prefetch_command(&self) -> Option<Command> {
        match &self.state {
            State::Open(cursor) if cursor.id != 0 && self.options.prefetch && !self.invalidated => {
                Some(self.get_more_command(cursor))
            }
            _ => None,
        }
    }

    fn fail(&mut self, error: Error, cursor: Option<(i64, Namespace)>) {
        self.error = Some(error);
        self.fragments = None;
        self.state = State::Closing {
            kill: cursor.filter(|(id, _)| *id != 0),
        };
    }

    /// An empty batch with a postBatchResumeToken moves the token, except in the middle of a
    /// split event, which must be resumable from its first fragment.
    fn cache_empty_batch_token(&mut self, cursor: &Cursor) {
        if cursor.batch.is_empty()
            && self.fragments.is_none()
            && let Some(token) = &cursor.post_batch_resume_token
        {
            self.token = Some(token.clone());
        }
    }

    /// Turns a batch document into an event (or a fragment held back), updating the token:
    /// the postBatchResumeToken for the batch's last document when there is one, else `_id`.
    fn take_document(
        &mut self,
        document: SharedDocument,
        post_batch: Option<SharedDocument>,
        last_of_batch: bool,
    ) -> Result<Option<ChangeEvent>, Error> {
        let event = ChangeEvent::new(document)?;
        // Within a batch, the token is a slice of the reply's buffer: no allocation per event.
        // The last one is copied, so that once the user drops the events the reply buffer is
        // free and the connection reads the next batch into it.
        let token_after = match post_batch {
            Some(token) => token,
            None if last_of_batch => SharedDocument::copy_of(event.resume_token()),
            None => SharedDocument::within(event.shared().bytes(), event.resume_token()),
        };
        if self.options.reassemble_split_events {
            if let Some(split) = event.split_event() {
                let Some(event) = self.add_fragment(event, split.fragment, split.of)? else {
                    return Ok(None);
                };
                self.token = Some(token_after);
                self.returned_event = true;
                return Ok(Some(event));
            }
            if self.fragments.is_some() {
                return Err(protocol(
                    "an unsplit event arrived before the last fragment of a split event",
                ));
            }
        }
        self.token = Some(token_after);
        self.returned_event = true;
        if event.raw().get_str("operationType").is_ok_and(|t| t == "invalidate") {
            self.invalidated = true;
        }
        Ok(Some(event))
    }

    fn add_fragment(&mut self, event: ChangeEvent, fragment: i32, of: i32) -> Result<Option<ChangeEvent>, Error> {
        if fragment < 1 || of < fragment {
            return Err(protocol(format!("fragment {fragment} of {of}")));
        }
        match &mut self.fragments {
            None if fragment == 1 => {
                self.fragments = Some(Fragments {
                    parts: Vec::new(),
                    of,
                    token_before: self.token.clone(),
                });
            }
            Some(fragments)
                if usize::try_from(fragment).ok() == Some(fragments.parts.len() + 1) && fragments.of == of => {}
            _ => return Err(protocol(format!("fragment {fragment} of {of} arrived out of order"))),
        }
        let Some(fragments) = self.fragments.as_mut() else {
            return Ok(None);
        };
        fragments.parts.push(event.shared().clone());
        if fragment < of {
            return Ok(None);
        }
        let parts = self.fragments.take().map(|f| f.parts).unwrap_or_default();
        merge_fragments(&parts).map(Some)
    }

    fn aggregate_command(&self, resume: bool) -> Command {
        let mut stage = RawDocumentBuf::new();
        if let Some(full_document) = &self.options.full_document {
            stage.append(cstr!("fullDocument"), full_document.as_str());
        }
        if let Some(before) = &self.options.full_document_before_change {
            stage.append(cstr!("fullDocumentBeforeChange"), before.as_str());
        }
        let start = if resume {
            self.resume_position()
        } else {
            self.original_position()
        };
        match start {
            Position::ResumeAfter(token) => stage.append(cstr!("resumeAfter"), token),
            Position::StartAfter(token) => stage.append(cstr!("startAfter"), token),
            Position::StartAt(time) => stage.append(cstr!("startAtOperationTime"), time),
            Position::Now => {}
        }
        if self.target == WatchTarget::Cluster {
            stage.append(cstr!("allChangesForCluster"), true);
        }
        if let Some(expanded) = self.options.show_expanded_events {
            stage.append(cstr!("showExpandedEvents"), expanded);
        }
        let mut pipeline = RawArrayBuf::new();
        pipeline.push(rawdoc! { "$changeStream": stage });
        for user_stage in &self.pipeline {
            pipeline.push(user_stage.clone());
        }
        let aggregate = match &self.target {
            WatchTarget::Collection(ns) => RawBson::String(ns.coll.clone()),
            WatchTarget::Database(_) | WatchTarget::Cluster => RawBson::Int32(1),
        };
        let mut cursor = RawDocumentBuf::new();
        if let Some(size) = self.options.batch_size {
            cursor.append(cstr!("batchSize"), i64::from(size));
        }
        let mut body = rawdoc! { "aggregate": aggregate, "pipeline": pipeline, "cursor": cursor };
        if let Some(collation) = &self.options.collation {
            body.append(cstr!("collation"), collation.clone());
        }
        if let Some(comment) = &self.options.comment {
            body.append(cstr!("comment"), comment.clone());
        }
        if let Some(concern) = &self.options.read_concern {
            body.append(cstr!("readConcern"), concern.to_document());
        }
        Command::new(self.target.db(), body)
    }

    /// The position of the first aggregate: whatever the options say.
    fn original_position(&self) -> Position {
        if let Some(token) = &self.options.start_after {
            Position::StartAfter(token.clone())
        } else if let Some(token) = &self.options.resume_after {
            Position::ResumeAfter(token.clone())
        } else if let Some(time) = self.options.start_at_operation_time {
            Position::StartAt(time)
        } else {
            Position::Now
        }
    }

    /// The position of a resume (the specification's Resume Process): the cached token, as
    /// startAfter when the stream began with startAfter and returned nothing yet, else as
    /// resumeAfter; without a token, the saved operation time; else the original command.
    fn resume_position(&self) -> Position {
        match (&self.token, self.operation_time) {
            (Some(token), _) if self.options.start_after.is_some() && !self.returned_event => {
                Position::StartAfter(token.to_raw_document_buf())
            }
            (Some(token), _) => Position::ResumeAfter(token.to_raw_document_buf()),
            (None, Some(time)) => Position::StartAt(time),
            (None, None) => self.original_position(),
        }
    }

    fn get_more_command(&self, cursor: &Cursor) -> Command {
        let options = GetMoreOptions {
            batch_size: self.options.batch_size,
            max_await_time: self.options.max_await_time,
            // Servers before 4.4 refuse a comment on getMore.
            comment: self
                .options
                .comment
                .clone()
                .filter(|_| cursor.wire_version >= SERVER_LABELS_RESUMABLE),
        };
        get_more_command(cursor.id, &cursor.ns, &options)
    }
}

/// Where an aggregate starts reading.
enum Position {
    ResumeAfter(RawDocumentBuf),
    StartAfter(RawDocumentBuf),
    StartAt(Timestamp),
    Now,
}

/// One event from its fragments: the last fragment's `_id`, then every other field of every
/// fragment in order, without `splitEvent`.
fn merge_fragments(parts: &[SharedDocument]) -> Result<ChangeEvent, Error> {
    let last = parts.last().ok_or_else(|| protocol("no fragments"))?;
    let id = match last.get("_id") {
        Ok(Some(RawBsonRef::Document(id))) => id.to_owned(),
        _ => return Err(protocol("a fragment without a resume token")),
    };
    let mut merged = rawdoc! { "_id": id };
    for part in parts {
        for element in part.iter() {
            let (key, value) =
                element.map_err(|e| Error::protocol("change event", ProtocolErrorKind::InvalidBson(e.to_string())))?;
            if key.as_str() != "_id" && key.as_str() != "splitEvent" {
                merged.append(key, value);
            }
        }
    }
    let merged = SharedDocument::from_bytes(Bytes::from(merged.into_bytes()))
        .map_err(|e| Error::protocol("change event", ProtocolErrorKind::InvalidBson(e.to_string())))?;
    ChangeEvent::new(merged)
}
