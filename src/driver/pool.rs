//! A connection pool per server (a simplified Connection Monitoring and Pooling design).
//!
//! A semaphore bounds the connections in use or idle (`maxPoolSize`). Checkout reuses the most
//! recently returned idle connection, dropping any that is broken, too old a generation, or idle
//! past `maxIdleTimeMS`, and opens a new one otherwise. A checked-out connection goes back to the
//! pool when dropped, unless it broke or the pool was cleared meanwhile: clearing bumps the
//! generation (after a network error or a "not primary" error, as SDAM requires) so every older
//! connection is closed instead of reused.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::driver::connection::Connection;
use crate::driver::handshake::{ConnectionOptions, open};
use crate::error::{Error, TransportError, TransportErrorKind};
use crate::protocol::ServerAddress;

/// Pool settings from the connection string.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolOptions {
    /// `maxPoolSize`; 0 means no limit.
    pub(crate) max_size: usize,
    /// `maxIdleTimeMS`.
    pub(crate) max_idle_time: Option<Duration>,
}

#[derive(Debug, Default)]
struct PoolState {
    idle: Vec<Connection>,
    generation: u32,
}

/// The pool for one server.
#[derive(Debug)]
pub(crate) struct Pool {
    address: ServerAddress,
    connection_options: Arc<ConnectionOptions>,
    options: PoolOptions,
    permits: Arc<Semaphore>,
    state: Arc<Mutex<PoolState>>,
}

fn lock(state: &Mutex<PoolState>) -> MutexGuard<'_, PoolState> {
    // A panic while holding this lock cannot leave the state inconsistent (every update is a
    // single push, pop or increment), so a poisoned lock is still usable.
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Pool {
    pub(crate) fn new(
        address: ServerAddress,
        connection_options: Arc<ConnectionOptions>,
        options: PoolOptions,
    ) -> Pool {
        let permits = if options.max_size == 0 {
            Semaphore::MAX_PERMITS
        } else {
            options.max_size
        };
        Pool {
            address,
            connection_options,
            options,
            permits: Arc::new(Semaphore::new(permits)),
            state: Arc::new(Mutex::new(PoolState::default())),
        }
    }

    /// A connection, waiting at most `wait` for one to become free. A failure to open one comes
    /// back with the generation the attempt belonged to, for SDAM's error handling; a closed
    /// pool or a wait that timed out says nothing about the server and comes back without one.
    pub(crate) async fn check_out(&self, wait: Duration) -> Result<PooledConnection, (Error, Option<u32>)> {
        let permit = match tokio::time::timeout(wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => {
                return Err((
                    self.error(TransportErrorKind::Closed, "the pool is closed".into()),
                    None,
                ));
            }
            Err(_) => {
                let error = self.error(
                    TransportErrorKind::Timeout,
                    format!(
                        "all {} connections stayed in use for {} ms",
                        self.options.max_size,
                        wait.as_millis()
                    ),
                );
                return Err((error, None));
            }
        };
        let generation = {
            let mut state = lock(&self.state);
            let now = Instant::now();
            while let Some(connection) = state.idle.pop() {
                let stale = connection.generation != state.generation
                    || connection.is_broken()
                    || self
                        .options
                        .max_idle_time
                        .is_some_and(|max| now.duration_since(connection.last_used) > max);
                if !stale {
                    return Ok(self.pooled(connection, permit));
                }
            }
            state.generation
        };
        let mut connection = open(&self.address, &self.connection_options)
            .await
            .map_err(|e| (e, Some(generation)))?;
        connection.generation = generation;
        Ok(self.pooled(connection, permit))
    }

    fn pooled(&self, connection: Connection, permit: OwnedSemaphorePermit) -> PooledConnection {
        PooledConnection {
            connection: Some(connection),
            state: self.state.clone(),
            _permit: permit,
        }
    }

    /// Moves the pool to `generation` (SDAM counts generations per server): idle connections
    /// close now, checked-out ones of older generations when they come back.
    pub(crate) fn clear(&self, generation: u32) {
        let mut state = lock(&self.state);
        state.generation = state.generation.max(generation);
        state.idle.clear();
    }

    /// Closes the pool: waiting and future checkouts fail, idle connections close.
    pub(crate) fn close(&self) {
        self.permits.close();
        lock(&self.state).idle.clear();
    }

    fn error(&self, kind: TransportErrorKind, message: String) -> Error {
        TransportError::new(kind, Some(self.address.clone()), message).into()
    }
}

/// A checked-out connection; returns to its pool when dropped.
#[derive(Debug)]
pub(crate) struct PooledConnection {
    connection: Option<Connection>,
    state: Arc<Mutex<PoolState>>,
    _permit: OwnedSemaphorePermit,
}

impl Deref for PooledConnection {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        // ok: `connection` is only taken in `drop`.
        self.connection.as_ref().expect("connection present until drop")
    }
}

impl DerefMut for PooledConnection {
    fn deref_mut(&mut self) -> &mut Connection {
        // ok: `connection` is only taken in `drop`.
        self.connection.as_mut().expect("connection present until drop")
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        let mut state = lock(&self.state);
        if !connection.is_broken() && connection.generation == state.generation {
            state.idle.push(connection);
        }
    }
}
