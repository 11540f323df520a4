//! The `ChangeStream`: runs the protocol's [`ChangeStreamMachine`] over the client's
//! connections.
//!
//! Every exchange the machine asks for runs as one boxed future kept in the stream, with the
//! session moved into it and handed back with the outcome. A caller that drops `next()` half way
//! (a timeout around it, a `select!`) therefore cancels nothing: the next call picks up the same
//! exchange. With `prefetch`, the next getMore runs on its own task while the user handles the
//! current batch.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bson::{RawDocument, RawDocumentBuf};
use futures_core::Stream;
use tokio::task::JoinHandle;

use crate::driver::client::ClientInner;
use crate::driver::operation::{Retry, SessionSlot, Target};
use crate::driver::session::ClientSession;
use crate::error::Error;
use crate::protocol::change_stream::{Action, ChangeEvent, ChangeStreamMachine, is_resumable};
use crate::protocol::crud::Command;
use crate::protocol::sdam::SelectionCriteria;
use crate::protocol::session::ServerSession;
use crate::wire::SharedDocument;

/// How long the server waits on a getMore when no maxAwaitTimeMS is set (its own default).
const SERVER_DEFAULT_AWAIT: Duration = Duration::from_secs(1);

/// Added to the await time to bound a getMore exchange when `socketTimeoutMS` is not set: a
/// server that stays silent longer is treated as a network timeout, which the stream resumes from.
const GET_MORE_GRACE: Duration = Duration::from_secs(30);

/// The session a change stream runs in.
#[derive(Debug)]
enum Session {
    /// An implicit session, acquired by the first aggregate and kept for every command after.
    Implicit(Option<ServerSession>),
    /// The user's session.
    Explicit(ClientSession),
}

/// What an exchange gave back, with the session it borrowed.
enum Outcome {
    Aggregate(Result<(SharedDocument, Target), Error>),
    GetMore(Result<SharedDocument, Error>),
    Killed,
}

type Exchange = Pin<Box<dyn Future<Output = (Outcome, Session)> + Send>>;

/// A change stream: the changes to a collection, a database or the whole deployment, resumed
/// automatically after network errors, failovers and the other errors the specification allows.
///
/// Iterate with [`ChangeStream::next`] (waits for the next event), [`ChangeStream::try_next`] (at
/// most one round trip; `None` when nothing came) or as a [`Stream`]. To store progress, save
/// [`ChangeStream::resume_token`] after each event *and* after `try_next` returns `None`: the
/// token moves on empty batches too, so a resumed stream does not scan the oplog again.
pub struct ChangeStream {
    client: Arc<ClientInner>,
    machine: ChangeStreamMachine,
    criteria: SelectionCriteria,
    target: Option<Target>,
    session: Option<Session>,
    exchange: Option<Exchange>,
    /// Whether `exchange` is a getMore (for `try_next`'s budget of one).
    exchange_is_get_more: bool,
    prefetch: Option<JoinHandle<Result<SharedDocument, Error>>>,
}

impl std::fmt::Debug for ChangeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeStream")
            .field("alive", &self.machine.is_alive())
            .field("resume_token", &self.machine.resume_token())
            .finish()
    }
}

impl ChangeStream {
    /// Opens the stream: runs the first aggregate, so that an error (a bad pipeline, no replica
    /// set) comes from `watch` itself.
    pub(crate) async fn open(
        client: Arc<ClientInner>,
        machine: ChangeStreamMachine,
        criteria: SelectionCriteria,
        session: Option<ClientSession>,
    ) -> Result<ChangeStream, Error> {
        let session = match session {
            Some(session) => Session::Explicit(session),
            None => Session::Implicit(None),
        };
        let mut stream = ChangeStream {
            client,
            machine,
            criteria,
            target: None,
            session: Some(session),
            exchange: None,
            exchange_is_get_more: false,
            prefetch: None,
        };
        std::future::poll_fn(|cx| stream.poll_until_open(cx)).await?;
        Ok(stream)
    }

    /// The next event, waiting as long as it takes; `None` once the stream is closed (after an
    /// invalidate event, or after an error was returned).
    pub async fn next(&mut self) -> Option<Result<ChangeEvent, Error>> {
        std::future::poll_fn(|cx| self.poll_event(cx, false)).await
    }

    /// The next event if one arrives with at most one getMore: `Ok(None)` when the server had
    /// nothing (check [`ChangeStream::resume_token`] then: it may have moved).
    pub async fn try_next(&mut self) -> Result<Option<ChangeEvent>, Error> {
        std::future::poll_fn(|cx| self.poll_event(cx, true)).await.transpose()
    }

    /// The token a new stream would resume after (`resumeAfter`), or `None` before any is known.
    pub fn resume_token(&self) -> Option<RawDocumentBuf> {
        self.machine.resume_token().map(RawDocument::to_owned)
    }

    /// Whether the stream could still produce events.
    pub fn is_alive(&self) -> bool {
        self.machine.is_alive()
    }

    /// The explicit session the stream runs in, if it was given one.
    pub fn session(&self) -> Option<&ClientSession> {
        match &self.session {
            Some(Session::Explicit(session)) => Some(session),
            _ => None,
        }
    }

    /// Closes the stream: kills the server cursor (errors are ignored) and frees the session.
    pub async fn close(mut self) {
        self.exchange = None;
        if let Some(prefetch) = self.prefetch.take() {
            prefetch.abort();
        }
        if let (Some(kill), Some(target)) = (self.machine.close(), self.target.clone()) {
            let (mut slot, holder) = lend(self.session.take());
            let _ = self.client.executor.execute_on(&target, kill, &mut slot, None).await;
            self.session = Some(return_slot(holder, slot));
        }
        self.release_session();
    }

    /// Drives the first aggregate to its outcome: `Ok` once the cursor is open, else its error.
    fn poll_until_open(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            if self.exchange.is_some() {
                std::task::ready!(self.poll_exchange(cx));
                if self.target.is_some() {
                    return Poll::Ready(Ok(()));
                }
            }
            match self.machine.poll() {
                Action::Aggregate(command) => self.start_aggregate(command),
                Action::Closed(Some(error)) => {
                    self.release_session();
                    return Poll::Ready(Err(error));
                }
                other => {
                    return Poll::Ready(Err(Error::usage(format!(
                        "change stream: unexpected {other:?} before the cursor opened"
                    ))));
                }
            }
        }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>, try_once: bool) -> Poll<Option<Result<ChangeEvent, Error>>> {
        let mut get_mores = 0;
        loop {
            if self.exchange.is_some() {
                if self.exchange_is_get_more {
                    get_mores += 1;
                }
                std::task::ready!(self.poll_exchange(cx));
                continue;
            }
            match self.machine.poll() {
                Action::Event(event) => {
                    self.start_prefetch();
                    return Poll::Ready(Some(Ok(event)));
                }
                Action::Closed(Some(error)) => {
                    self.release_session();
                    return Poll::Ready(Some(Err(error)));
                }
                Action::Closed(None) => {
                    self.release_session();
                    return Poll::Ready(None);
                }
                Action::Aggregate(command) => self.start_aggregate(command),
                Action::KillCursors(command) => self.start_kill(command),
                Action::GetMore(command) => {
                    self.start_get_more(command);
                    if try_once && get_mores > 0 {
                        // The budget was one getMore: this one waits for the next call.
                        return Poll::Ready(None);
                    }
                }
                Action::Waiting => {
                    return Poll::Ready(Some(Err(Error::usage("change stream: an outcome went missing"))));
                }
            }
        }
    }

    /// Polls the exchange in flight and hands its outcome to the machine.
    fn poll_exchange(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(exchange) = self.exchange.as_mut() else {
            return Poll::Ready(());
        };
        let (outcome, session) = std::task::ready!(exchange.as_mut().poll(cx));
        self.exchange = None;
        self.exchange_is_get_more = false;
        self.session = Some(session);
        match outcome {
            Outcome::Aggregate(result) => {
                let wire_version = result.as_ref().map_or(0, |(_, target)| target.max_wire_version);
                let result = result.map(|(body, target)| {
                    self.target = Some(target);
                    body
                });
                self.machine.handle_aggregate(result, wire_version);
            }
            Outcome::GetMore(result) => {
                if let (Err(error), Some(target)) = (&result, &self.target) {
                    if is_resumable(error, target.max_wire_version) {
                        tracing::info!(address = %target.address, %error, "change stream resuming");
                    } else {
                        tracing::warn!(address = %target.address, %error, "change stream failed");
                    }
                }
                self.machine.handle_get_more(result);
            }
            Outcome::Killed => self.machine.handle_killed(),
        }
        Poll::Ready(())
    }

    fn start_aggregate(&mut self, command: Command) {
        let (client, criteria) = (self.client.clone(), self.criteria.clone());
        let holder = self.session.take();
        self.exchange = Some(Box::pin(async move {
            let (mut slot, holder) = lend(holder);
            let result = client
                .executor
                .execute_in(command, &criteria, Retry::Read, &mut slot)
                .await;
            let result = result.map(|(reply, target)| (reply.body_shared(), target));
            (Outcome::Aggregate(result), return_slot(holder, slot))
        }));
    }

    fn start_get_more(&mut self, command: Command) {
        self.exchange_is_get_more = true;
        if let Some(prefetch) = self.prefetch.take() {
            // The same getMore was sent ahead of need; its outcome is this one's.
            let holder = self.session.take();
            self.exchange = Some(Box::pin(async move {
                let result = match prefetch.await {
                    Ok(result) => result,
                    Err(e) => Err(Error::usage(format!("prefetch task failed: {e}"))),
                };
                (Outcome::GetMore(result), holder.unwrap_or(Session::Implicit(None)))
            }));
            return;
        }
        let Some(target) = self.target.clone() else { return };
        let client = self.client.clone();
        let timeout = self.get_more_timeout();
        let holder = self.session.take();
        self.exchange = Some(Box::pin(async move {
            let (mut slot, holder) = lend(holder);
            let result = client
                .executor
                .execute_on(&target, command, &mut slot, Some(timeout))
                .await;
            (
                Outcome::GetMore(result.map(|reply| reply.body_shared())),
                return_slot(holder, slot),
            )
        }));
    }

    fn start_kill(&mut self, command: Command) {
        if let Some(prefetch) = self.prefetch.take() {
            prefetch.abort();
        }
        let Some(target) = self.target.clone() else {
            self.machine.handle_killed();
            return;
        };
        let client = self.client.clone();
        let holder = self.session.take();
        self.exchange = Some(Box::pin(async move {
            let (mut slot, holder) = lend(holder);
            // The specification: errors while killing the old cursor are ignored.
            let _ = client.executor.execute_on(&target, command, &mut slot, None).await;
            (Outcome::Killed, return_slot(holder, slot))
        }));
    }

    /// With `prefetch`, sends the next getMore on its own task once a batch is being consumed.
    fn start_prefetch(&mut self) {
        if self.prefetch.is_some() || self.exchange.is_some() {
            return;
        }
        let (Some(command), Some(target)) = (self.machine.prefetch_command(), self.target.clone()) else {
            return;
        };
        let lsid = match &self.session {
            Some(Session::Implicit(Some(session))) => Some(session.lsid().to_owned()),
            Some(Session::Explicit(session)) => session.id().map(RawDocument::to_owned),
            _ => None,
        };
        let client = self.client.clone();
        let timeout = self.get_more_timeout();
        self.prefetch = Some(tokio::spawn(async move {
            let mut slot = lsid.map_or(SessionSlot::None, SessionSlot::Lsid);
            let result = client
                .executor
                .execute_on(&target, command, &mut slot, Some(timeout))
                .await;
            result.map(|reply| reply.body_shared())
        }));
    }

    fn get_more_timeout(&self) -> Duration {
        let grace = self.client.socket_timeout.unwrap_or(GET_MORE_GRACE);
        self.machine.options().max_await_time.unwrap_or(SERVER_DEFAULT_AWAIT) + grace
    }

    fn release_session(&mut self) {
        if let Some(Session::Implicit(Some(session))) = self.session.take() {
            self.client.executor.release_session(session);
        }
    }
}

/// Lends the session to one exchange: an implicit one moves into the slot; an explicit one lends
/// its server session.
fn lend(holder: Option<Session>) -> (SessionSlot<'static>, Option<Session>) {
    match holder {
        Some(Session::Implicit(Some(session))) => (SessionSlot::Implicit(session), Some(Session::Implicit(None))),
        Some(Session::Explicit(mut session)) => match session.take_server_session() {
            Some(server) => (SessionSlot::Implicit(server), Some(Session::Explicit(session))),
            None => (SessionSlot::None, Some(Session::Explicit(session))),
        },
        other => (SessionSlot::None, other),
    }
}

/// Takes the session back from an exchange's slot.
fn return_slot(holder: Option<Session>, slot: SessionSlot<'static>) -> Session {
    let server = match slot {
        SessionSlot::Implicit(server) => Some(server),
        _ => None,
    };
    give_back(holder, server)
}

fn give_back(holder: Option<Session>, server: Option<ServerSession>) -> Session {
    match holder {
        Some(Session::Explicit(mut session)) => {
            if let Some(server) = server {
                session.put_server_session(server);
            }
            Session::Explicit(session)
        }
        _ => Session::Implicit(server),
    }
}

impl Stream for ChangeStream {
    type Item = Result<ChangeEvent, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_event(cx, false)
    }
}

impl Drop for ChangeStream {
    fn drop(&mut self) {
        if let Some(prefetch) = self.prefetch.take() {
            prefetch.abort();
        }
        let kill = self.machine.close();
        let session = match self.session.take() {
            Some(Session::Implicit(session)) => session,
            // An explicit session goes back to its owner's pool when it drops with the stream.
            _ => None,
        };
        let (Some(kill), Some(target)) = (kill, self.target.take()) else {
            if let Some(session) = session {
                self.client.executor.release_session(session);
            }
            return;
        };
        // Killing needs the runtime; without one (it shut down) the server times the cursor out.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let client = self.client.clone();
        runtime.spawn(async move {
            let mut slot = session.map_or(SessionSlot::None, SessionSlot::Implicit);
            let _ = client.executor.execute_on(&target, kill, &mut slot, None).await;
            if let SessionSlot::Implicit(session) = slot {
                client.executor.release_session(session);
            }
        });
    }
}
