//! The topology as the driver sees it: one monitor task per server feeding the SDAM state
//! machine ([`crate::protocol::sdam`]), one pool per server, and server selection that waits
//! for the topology to change until `serverSelectionTimeoutMS`.
//!
//! Monitors poll (`serverMonitoringMode=poll`): a dedicated, unauthenticated connection per
//! server runs `hello` every `heartbeatFrequencyMS`, or sooner (but not more than every 500 ms)
//! when an operation failed or a selection found nothing suitable. The description lives behind
//! one mutex so that each SDAM change and the pool actions it asks for (clear, create, close)
//! happen atomically; selection reads immutable snapshots published on a watch channel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::driver::connection::Connection;
use crate::driver::handshake::{ConnectionOptions, open};
use crate::driver::pool::{Pool, PoolOptions};
use crate::error::{Error, ServerSelectionError, TransportError, TransportErrorKind};
use crate::protocol::ServerAddress;
use crate::protocol::sdam::{
    ApplicationError, ApplicationErrorKind, MIN_HEARTBEAT_FREQUENCY, SelectionCriteria, ServerDescription, ServerType,
    TopologyChange, TopologyDescription, TopologyType, select,
};
use crate::wire::OpMsg;

/// Topology settings from the connection string.
#[derive(Debug, Clone)]
pub(crate) struct TopologyOptions {
    pub(crate) heartbeat_frequency: Duration,
    pub(crate) server_selection_timeout: Duration,
    pub(crate) local_threshold: Duration,
    /// Options of application connections (compression, authentication).
    pub(crate) connection: Arc<ConnectionOptions>,
    /// Options of monitoring connections: the same TLS and timeouts, no compression.
    pub(crate) monitor_connection: Arc<ConnectionOptions>,
    pub(crate) pool: PoolOptions,
}

struct ServerEntry {
    pool: Arc<Pool>,
    monitor: Option<JoinHandle<()>>,
    check_now: Arc<Notify>,
    cancel_check: Arc<Notify>,
}

struct State {
    description: TopologyDescription,
    servers: HashMap<ServerAddress, ServerEntry>,
    closed: bool,
}

struct Shared {
    options: TopologyOptions,
    state: Mutex<State>,
    snapshot: watch::Sender<Arc<TopologyDescription>>,
}

/// A server chosen for an operation.
pub(crate) struct Selected {
    pub(crate) address: ServerAddress,
    pub(crate) pool: Arc<Pool>,
    pub(crate) server_type: ServerType,
    pub(crate) topology_type: TopologyType,
    pub(crate) max_wire_version: i32,
    /// `logicalSessionTimeoutMinutes` of the topology; `None` when sessions are not supported.
    pub(crate) session_timeout: Option<Duration>,
}

/// The driver's topology; cheap to clone.
#[derive(Clone)]
pub(crate) struct Topology {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topology")
            .field("description", &self.snapshot().describe())
            .finish()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Every change under this lock is applied whole before anything can panic, so a poisoned
    // lock still guards a consistent state.
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Topology {
    /// Starts a monitor (and creates a pool) for every seed. Must run inside a tokio runtime.
    pub(crate) fn start(description: TopologyDescription, options: TopologyOptions) -> Topology {
        let seeds: Vec<ServerAddress> = description.servers().keys().cloned().collect();
        let load_balanced = description.topology_type() == TopologyType::LoadBalanced;
        let (snapshot, _) = watch::channel(Arc::new(description.clone()));
        let shared = Arc::new(Shared {
            options,
            state: Mutex::new(State {
                description,
                servers: HashMap::new(),
                closed: false,
            }),
            snapshot,
        });
        {
            let mut state = lock(&shared.state);
            for address in seeds {
                add_server(&shared, &mut state, address, !load_balanced);
            }
        }
        Topology { shared }
    }

    /// The current topology description.
    pub(crate) fn snapshot(&self) -> Arc<TopologyDescription> {
        self.shared.snapshot.borrow().clone()
    }

    /// Waits until a server suitable for `criteria` is known, at most serverSelectionTimeoutMS.
    /// Servers in `deprioritized` are chosen only when nothing else is suitable.
    pub(crate) async fn select_server(
        &self,
        criteria: &SelectionCriteria,
        deprioritized: &[ServerAddress],
    ) -> Result<Selected, Error> {
        let timeout = self.shared.options.server_selection_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.shared.snapshot.subscribe();
        loop {
            let snapshot = changes.borrow_and_update().clone();
            let candidates = select(&snapshot, criteria, self.shared.options.local_threshold, deprioritized)?;
            if !candidates.is_empty() {
                let index = rand::rng().random_range(0..candidates.len());
                if let Some(server) = candidates.get(index)
                    && let Some(selected) = self.selected(&snapshot, server)
                {
                    return Ok(selected);
                }
            }
            self.request_checks();
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    return Err(
                        TransportError::new(TransportErrorKind::Closed, None, "the client was shut down").into(),
                    );
                }
                Err(_) => {
                    return Err(ServerSelectionError {
                        wanted: criteria.to_string(),
                        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                        seen: self.snapshot().describe(),
                    }
                    .into());
                }
            }
        }
    }

    fn selected(&self, snapshot: &TopologyDescription, server: &ServerDescription) -> Option<Selected> {
        let state = lock(&self.shared.state);
        let entry = state.servers.get(&server.address)?;
        Some(Selected {
            address: server.address.clone(),
            pool: entry.pool.clone(),
            server_type: server.server_type,
            topology_type: snapshot.topology_type(),
            max_wire_version: server.max_wire_version,
            session_timeout: snapshot
                .logical_session_timeout_minutes()
                .map(|m| Duration::from_secs(u64::from(m) * 60)),
        })
    }

    fn request_checks(&self) {
        let state = lock(&self.shared.state);
        for entry in state.servers.values() {
            entry.check_now.notify_one();
        }
    }

    /// Tells SDAM an operation failed on a connection of `generation` to `address`: it may mark
    /// the server Unknown, clear its pool and wake its monitor.
    pub(crate) fn handle_application_error(&self, address: &ServerAddress, error: &Error, generation: u32) {
        let Some(kind) = ApplicationErrorKind::from_error(error) else {
            return;
        };
        let mut state = lock(&self.shared.state);
        let change = state
            .description
            .handle_application_error(address, ApplicationError::after_handshake(kind, generation));
        apply_change(&self.shared, &mut state, change);
    }

    /// Tells SDAM that opening a connection of `generation` to `address` failed.
    pub(crate) fn handle_connect_error(&self, address: &ServerAddress, error: &Error, generation: u32) {
        let Some(kind) = ApplicationErrorKind::from_error(error) else {
            return;
        };
        let mut state = lock(&self.shared.state);
        let error = ApplicationError {
            completed_handshake: false,
            ..ApplicationError::after_handshake(kind, generation)
        };
        let change = state.description.handle_application_error(address, error);
        apply_change(&self.shared, &mut state, change);
    }

    /// Stops every monitor and closes every pool.
    pub(crate) fn shutdown(&self) {
        let mut state = lock(&self.shared.state);
        state.closed = true;
        for (_, entry) in state.servers.drain() {
            if let Some(monitor) = entry.monitor {
                monitor.abort();
            }
            entry.pool.close();
        }
    }
}

fn add_server(shared: &Arc<Shared>, state: &mut State, address: ServerAddress, monitored: bool) {
    if state.closed || state.servers.contains_key(&address) {
        return;
    }
    let pool = Arc::new(Pool::new(
        address.clone(),
        shared.options.connection.clone(),
        shared.options.pool,
    ));
    let check_now = Arc::new(Notify::new());
    let cancel_check = Arc::new(Notify::new());
    let monitor = monitored.then(|| {
        tokio::spawn(monitor(
            Arc::downgrade(shared),
            address.clone(),
            check_now.clone(),
            cancel_check.clone(),
        ))
    });
    state.servers.insert(
        address,
        ServerEntry {
            pool,
            monitor,
            check_now,
            cancel_check,
        },
    );
}

/// Carries out what SDAM asked for, under the state lock, then publishes the new description.
fn apply_change(shared: &Arc<Shared>, state: &mut State, change: TopologyChange) {
    for address in change.added {
        add_server(shared, state, address, true);
    }
    for address in &change.removed {
        if let Some(entry) = state.servers.remove(address) {
            if let Some(monitor) = entry.monitor {
                monitor.abort();
            }
            entry.pool.close();
        }
    }
    if let Some(clear) = &change.clear_pool
        && let Some(entry) = state.servers.get(&clear.address)
    {
        tracing::info!(address = %clear.address, generation = clear.generation, "connection pool cleared");
        entry.pool.clear(clear.generation);
    }
    for address in &change.request_immediate_check {
        if let Some(entry) = state.servers.get(address) {
            entry.check_now.notify_one();
        }
    }
    if let Some(address) = &change.cancel_check
        && let Some(entry) = state.servers.get(address)
    {
        entry.cancel_check.notify_one();
    }
    shared.snapshot.send_replace(Arc::new(state.description.clone()));
}

/// One server's monitor: checks it, feeds SDAM, sleeps until the next heartbeat or an earlier
/// request. Ends when the topology is dropped or removes the server (the task is aborted).
async fn monitor(shared: Weak<Shared>, address: ServerAddress, check_now: Arc<Notify>, cancel_check: Arc<Notify>) {
    let mut connection: Option<Connection> = None;
    loop {
        let Some(strong) = shared.upgrade() else { return };
        let started = tokio::time::Instant::now();
        let heartbeat = strong.options.heartbeat_frequency;
        let options = strong.options.monitor_connection.clone();
        drop(strong);
        let outcome = tokio::select! {
            outcome = check(&address, &options, &mut connection) => outcome,
            () = cancel_check.notified() => Err(TransportError::new(
                TransportErrorKind::Closed, Some(address.clone()), "check cancelled after an operation failed").into()),
        };
        let Some(strong) = shared.upgrade() else { return };
        {
            let mut state = lock(&strong.state);
            let before = state.description.server(&address).map(|s| s.server_type);
            let change = match outcome {
                Ok((reply, round_trip_time)) => state.description.apply(ServerDescription::from_hello(
                    address.clone(),
                    &reply,
                    Some(round_trip_time),
                    Instant::now(),
                )),
                Err(error) => {
                    connection = None;
                    let timeout = matches!(&error, Error::Transport(t) if t.is_timeout());
                    state
                        .description
                        .handle_check_network_error(&address, error.to_string(), timeout)
                }
            };
            apply_change(&strong, &mut state, change);
            let after = state.description.server(&address).map(|s| s.server_type);
            if before != after {
                let error = state.description.server(&address).and_then(|s| s.error.clone());
                tracing::info!(%address, from = ?before, to = ?after, error, "server changed");
            }
        }
        drop(strong);
        tokio::select! {
            () = tokio::time::sleep_until(started + heartbeat) => {}
            () = async {
                check_now.notified().await;
                tokio::time::sleep_until(started + MIN_HEARTBEAT_FREQUENCY).await;
            } => {}
        }
    }
}

/// One check: the handshake on a new monitoring connection, or `hello` on the existing one.
async fn check(
    address: &ServerAddress,
    options: &ConnectionOptions,
    connection: &mut Option<Connection>,
) -> Result<(bson::RawDocumentBuf, Duration), Error> {
    let started = Instant::now();
    if let Some(existing) = connection.as_mut() {
        let hello_ok = existing.hello.as_ref().is_some_and(|h| h.hello_ok);
        let command = if hello_ok {
            bson::rawdoc! { "hello": 1, "$db": "admin" }
        } else {
            bson::rawdoc! { "isMaster": 1, "$db": "admin" }
        };
        let reply = existing
            .round_trip(&OpMsg::new(command), Some(options.connect_timeout))
            .await?;
        return Ok((reply.body().to_owned(), started.elapsed()));
    }
    let opened = open(address, options).await?;
    let reply = opened.hello.as_ref().map(|h| h.document.clone()).unwrap_or_default();
    *connection = Some(opened);
    Ok((reply, started.elapsed()))
}
