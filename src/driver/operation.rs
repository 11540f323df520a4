//! Running one command: select a server, check out a connection, attach the session, cluster
//! time and read preference, send, report failures to SDAM, and retry once when the Retryable
//! Reads or Retryable Writes specification allows.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bson::{RawDocumentBuf, raw::cstr};

use crate::driver::connection::{Reply, next_request_id};
use crate::driver::monitoring::{CommandEvent, CommandListener};
use crate::driver::pool::PooledConnection;
use crate::driver::topology::{Selected, Topology};
use crate::error::Error;
use crate::protocol::crud::Command;
use crate::protocol::cursor::check_cursor_shape;
use crate::protocol::retry::{is_retryable_read, is_retryable_write};
use crate::protocol::sdam::{SelectionCriteria, ServerType, read_preference_document_for};
use crate::protocol::session::{ClusterClock, ServerSession, SessionPool};
use crate::protocol::{ReadPreference, ServerAddress, reply};

/// Whether and how a command may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Never (runCommand, getMore, killCursors, multi-document writes).
    No,
    /// A retryable read.
    Read,
    /// A retryable write: sent with a transaction number so the server applies it once.
    Write,
}

/// Client-wide state every operation uses.
#[derive(Debug)]
pub(crate) struct Executor {
    pub(crate) topology: Topology,
    listener: Option<Arc<dyn CommandListener>>,
    pub(crate) retry_reads: bool,
    pub(crate) retry_writes: bool,
    /// How long a checkout may wait for a free connection (`waitQueueTimeoutMS`, else the
    /// server selection timeout).
    pub(crate) checkout_timeout: Duration,
    clock: Mutex<ClusterClock>,
    sessions: Mutex<SessionPool>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A server session attached to an operation or a cursor: borrowed from an explicit session,
/// or implicit and returned to the pool when done.
#[derive(Debug)]
pub(crate) enum SessionSlot<'a> {
    None,
    Implicit(ServerSession),
    Explicit(&'a mut ServerSession),
    /// Only the lsid, for a command sent while the session itself is busy elsewhere (a
    /// change stream's prefetched getMore): no bookkeeping.
    Lsid(RawDocumentBuf),
}

impl SessionSlot<'_> {
    fn get(&mut self) -> Option<&mut ServerSession> {
        match self {
            SessionSlot::None | SessionSlot::Lsid(_) => None,
            SessionSlot::Implicit(session) => Some(session),
            SessionSlot::Explicit(session) => Some(session),
        }
    }

    /// The lsid to send, noting the use.
    fn lsid(&mut self) -> Option<RawDocumentBuf> {
        if let SessionSlot::Lsid(lsid) = self {
            return Some(lsid.clone());
        }
        let session = self.get()?;
        session.touch(Instant::now());
        Some(session.lsid().to_owned())
    }
}

/// Where a command went, for cursors that must send getMore to the same server.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) address: ServerAddress,
    pub(crate) pool: Arc<crate::driver::pool::Pool>,
    /// The server's wire version: a change stream judges getMore errors by it.
    pub(crate) max_wire_version: i32,
}

impl Executor {
    pub(crate) fn new(
        topology: Topology,
        retry_reads: bool,
        retry_writes: bool,
        checkout_timeout: Duration,
        listener: Option<Arc<dyn CommandListener>>,
    ) -> Executor {
        Executor {
            topology,
            listener,
            retry_reads,
            retry_writes,
            checkout_timeout,
            clock: Mutex::new(ClusterClock::default()),
            sessions: Mutex::new(SessionPool::default()),
        }
    }

    /// An implicit session, when the topology supports sessions.
    pub(crate) fn implicit_session(&self, timeout: Option<Duration>) -> Option<ServerSession> {
        timeout.map(|timeout| lock(&self.sessions).acquire(Instant::now(), timeout))
    }

    /// Returns an implicit session to the pool.
    pub(crate) fn release_session(&self, session: ServerSession) {
        let timeout = self.topology.snapshot().logical_session_timeout_minutes();
        if let Some(minutes) = timeout {
            lock(&self.sessions).release(session, Instant::now(), Duration::from_secs(u64::from(minutes) * 60));
        }
    }

    /// Ends every pooled session, for shutdown.
    pub(crate) fn drain_sessions(&self) -> Vec<RawDocumentBuf> {
        lock(&self.sessions).drain_end_sessions()
    }

    /// Runs `command` on a server chosen by `criteria`. Without an explicit session, an implicit
    /// one is used for this command alone. Returns the reply and where it ran.
    pub(crate) async fn execute(
        &self,
        command: Command,
        criteria: &SelectionCriteria,
        retry: Retry,
        explicit: Option<&mut ServerSession>,
    ) -> Result<(Reply, Target), Error> {
        let mut slot = match explicit {
            Some(session) => SessionSlot::Explicit(session),
            None => SessionSlot::None,
        };
        let result = self.execute_in(command, criteria, retry, &mut slot).await;
        if let SessionSlot::Implicit(session) = slot {
            self.release_session(session);
        }
        result
    }

    /// Like [`Executor::execute`], with the session slot owned by the caller (a cursor keeps an
    /// implicit session for all its getMores). An empty slot gets an implicit session.
    pub(crate) async fn execute_in(
        &self,
        command: Command,
        criteria: &SelectionCriteria,
        retry: Retry,
        slot: &mut SessionSlot<'_>,
    ) -> Result<(Reply, Target), Error> {
        let read_preference = match criteria {
            SelectionCriteria::ReadPreference(preference) => Some(preference),
            SelectionCriteria::Writable => None,
        };
        let mut deprioritized = Vec::new();
        let mut first_error: Option<Error> = None;
        let mut txn_number = None;
        for attempt in 0..2 {
            let selected = match self.topology.select_server(criteria, &deprioritized).await {
                Ok(selected) => selected,
                Err(error) => return Err(first_error.unwrap_or(error)),
            };
            if matches!(slot, SessionSlot::None)
                && let Some(session) = self.implicit_session(selected.session_timeout)
            {
                *slot = SessionSlot::Implicit(session);
            }
            let retryable = match retry {
                Retry::No => false,
                Retry::Read => self.retry_reads,
                Retry::Write => {
                    self.retry_writes && selected.server_type != ServerType::Standalone && slot.get().is_some()
                }
            };
            if retry == Retry::Write && retryable && txn_number.is_none() {
                txn_number = slot.get().map(ServerSession::next_txn_number);
            }
            let address = selected.address.clone();
            let outcome = self
                .attempt(&command, &selected, read_preference, slot, txn_number)
                .await;
            let error = match outcome {
                Ok(reply) => {
                    let target = Target {
                        address,
                        pool: selected.pool.clone(),
                        max_wire_version: selected.max_wire_version,
                    };
                    return Ok((reply, target));
                }
                Err(error) => error,
            };
            let may_retry = attempt == 0
                && retryable
                && match retry {
                    Retry::Read => is_retryable_read(&error),
                    Retry::Write => is_retryable_write(&error, selected.max_wire_version),
                    Retry::No => false,
                };
            if !may_retry {
                // The specification: when the retry reports that no write was performed, the
                // first error is the informative one.
                return Err(match first_error {
                    Some(first) if error.has_label("NoWritesPerformed") => first,
                    _ => error,
                });
            }
            tracing::debug!(command = command.name(), %address, %error, "retrying");
            deprioritized.push(address);
            first_error = Some(error);
        }
        Err(first_error.unwrap_or_else(|| Error::usage("retry loop ended without a result")))
    }

    async fn attempt(
        &self,
        command: &Command,
        selected: &Selected,
        read_preference: Option<&ReadPreference>,
        slot: &mut SessionSlot<'_>,
        txn_number: Option<i64>,
    ) -> Result<Reply, Error> {
        let mut connection = match selected.pool.check_out(self.checkout_timeout).await {
            Ok(connection) => connection,
            Err((error, generation)) => {
                if let Some(generation) = generation {
                    self.topology
                        .handle_connect_error(&selected.address, &error, generation);
                }
                return Err(error);
            }
        };
        let mut body = command.body.clone();
        if let Some(txn_number) = txn_number {
            body.append(cstr!("txnNumber"), txn_number);
        }
        if let Some(preference) = read_preference
            && let Some(document) =
                read_preference_document_for(selected.server_type, selected.topology_type, preference)
        {
            body.append(cstr!("$readPreference"), document);
        }
        let command = Command {
            db: command.db.clone(),
            body,
            sequences: command.sequences.clone(),
        };
        self.send(&mut connection, command, slot, None).await
    }

    /// Sends on a connection already chosen: attaches the session and cluster time, reports the
    /// command to the listener, gossips cluster time back, and reports failures to SDAM.
    /// `timeout` bounds the exchange (else the socket timeout does).
    pub(crate) async fn send(
        &self,
        connection: &mut PooledConnection,
        mut command: Command,
        slot: &mut SessionSlot<'_>,
        timeout: Option<Duration>,
    ) -> Result<Reply, Error> {
        if let Some(lsid) = slot.lsid() {
            command.body.append(cstr!("lsid"), lsid);
        }
        if let Some(cluster_time) = lock(&self.clock).current() {
            command.body.append(cstr!("$clusterTime"), cluster_time.to_owned());
        }
        let request_id = next_request_id();
        let command_name = command.name().to_owned();
        let started = Instant::now();
        if let Some(listener) = &self.listener {
            listener.on_command(&CommandEvent::Started {
                command: command.monitored_document(),
                command_name: command_name.clone(),
                database_name: command.db.clone(),
                request_id,
                address: connection.address().clone(),
            });
        }
        let mut result = connection.command_as(request_id, &command.into_op_msg(), timeout).await;
        if let Ok(reply) = &result
            && matches!(reply.body().get("cursor"), Ok(Some(_)))
            && let Err(malformed) = check_cursor_shape(reply.body())
        {
            connection.mark_broken();
            result = Err(malformed);
        }
        if let Some(listener) = &self.listener {
            let (duration, address) = (started.elapsed(), connection.address().clone());
            listener.on_command(&match &result {
                Ok(reply) => CommandEvent::Succeeded {
                    reply: reply.body().to_owned(),
                    command_name,
                    request_id,
                    duration,
                    address,
                },
                Err(error) => CommandEvent::Failed {
                    error: error.clone(),
                    command_name,
                    request_id,
                    duration,
                    address,
                },
            });
        }
        let body = match &result {
            Ok(reply) => Some(reply.body()),
            Err(Error::Server(server)) => Some(server.reply.as_ref()),
            Err(_) => None,
        };
        if let Some(cluster_time) = body.and_then(reply::cluster_time) {
            lock(&self.clock).advance(&cluster_time);
        }
        if let (Some(time), Some(session)) = (body.and_then(reply::operation_time), slot.get()) {
            session.advance_operation_time(time);
        }
        if let Err(error) = &result {
            if error.is_network_error()
                && let Some(session) = slot.get()
            {
                session.dirty = true;
            }
            self.topology
                .handle_application_error(connection.address(), error, connection.generation);
        }
        result
    }

    /// Runs a command on a given server (getMore and killCursors must go where the cursor is),
    /// with the cursor's session, within `timeout` if given.
    pub(crate) async fn execute_on(
        &self,
        target: &Target,
        command: Command,
        slot: &mut SessionSlot<'_>,
        timeout: Option<Duration>,
    ) -> Result<Reply, Error> {
        let mut connection = match target.pool.check_out(self.checkout_timeout).await {
            Ok(connection) => connection,
            Err((error, generation)) => {
                if let Some(generation) = generation {
                    self.topology.handle_connect_error(&target.address, &error, generation);
                }
                return Err(error);
            }
        };
        self.send(&mut connection, command, slot, timeout).await
    }
}
