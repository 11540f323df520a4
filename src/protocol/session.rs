//! Logical sessions and cluster time (Driver Sessions and Causal Consistency specifications).
//!
//! [`ClusterClock`] keeps the greatest `$clusterTime` any reply gossiped, to send with every
//! command. [`SessionPool`] recycles server sessions (`lsid`s) the way the specification says:
//! most recently used first, never one with less than a minute left before the server would
//! forget it, never one that saw a network error.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bson::{RawArrayBuf, RawDocument, RawDocumentBuf, Timestamp, rawdoc};

/// A session is not handed out when it has less than this left before the server expires it.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// The most sessions one `endSessions` command may name.
const END_SESSIONS_BATCH: usize = 10_000;

/// The greatest cluster time seen so far.
#[derive(Debug, Clone, Default)]
pub struct ClusterClock {
    latest: Option<RawDocumentBuf>,
}

fn cluster_timestamp(cluster_time: &RawDocument) -> Option<Timestamp> {
    cluster_time.get_timestamp("clusterTime").ok()
}

impl ClusterClock {
    /// Keeps `candidate` (a `$clusterTime` document) if it is newer than what is held.
    pub fn advance(&mut self, candidate: &RawDocument) {
        let Some(new) = cluster_timestamp(candidate) else {
            return;
        };
        let newer = match self.latest.as_deref().and_then(cluster_timestamp) {
            Some(current) => new > current,
            None => true,
        };
        if newer {
            self.latest = Some(candidate.to_owned());
        }
    }

    /// The `$clusterTime` to send, if any was seen.
    pub fn current(&self) -> Option<&RawDocument> {
        self.latest.as_deref()
    }
}

/// A server session: the `lsid` and the transaction number for retryable writes.
#[derive(Debug, Clone)]
pub struct ServerSession {
    lsid: RawDocumentBuf,
    last_use: Instant,
    txn_number: i64,
    /// The greatest `operationTime` of the replies to this session's commands.
    operation_time: Option<Timestamp>,
    /// A network error happened while the session was in use: the server may still hold it in
    /// a state the client cannot know, so it is not reused.
    pub dirty: bool,
}

impl ServerSession {
    /// A new session with a random UUID (version 4).
    pub fn new(now: Instant) -> ServerSession {
        let id = bson::Binary::from(bson::Uuid::new());
        ServerSession {
            lsid: rawdoc! { "id": id },
            last_use: now,
            txn_number: 0,
            operation_time: None,
            dirty: false,
        }
    }

    /// The `lsid` document to send with commands.
    pub fn lsid(&self) -> &RawDocument {
        &self.lsid
    }

    /// Records a use at `now`.
    pub fn touch(&mut self, now: Instant) {
        self.last_use = now;
    }

    /// Keeps `time` if it is later than the operation time held.
    pub fn advance_operation_time(&mut self, time: Timestamp) {
        if self.operation_time.is_none_or(|current| time > current) {
            self.operation_time = Some(time);
        }
    }

    /// The greatest `operationTime` seen by this session.
    pub fn operation_time(&self) -> Option<Timestamp> {
        self.operation_time
    }

    /// The next transaction number, for a retryable write (both attempts use the same one).
    pub fn next_txn_number(&mut self) -> i64 {
        self.txn_number += 1;
        self.txn_number
    }

    fn about_to_expire(&self, now: Instant, timeout: Duration) -> bool {
        let idle = now.saturating_duration_since(self.last_use);
        idle + EXPIRY_MARGIN >= timeout
    }
}

/// Server sessions waiting for reuse, most recently used first.
#[derive(Debug, Default)]
pub struct SessionPool {
    sessions: VecDeque<ServerSession>,
}

impl SessionPool {
    /// A session with at least a minute to live under `timeout` (the topology's
    /// `logicalSessionTimeoutMinutes`), reused if one is pooled, else new.
    pub fn acquire(&mut self, now: Instant, timeout: Duration) -> ServerSession {
        while let Some(session) = self.sessions.pop_front() {
            if !session.about_to_expire(now, timeout) {
                return session;
            }
        }
        ServerSession::new(now)
    }

    /// Returns a session for reuse, unless it is dirty or about to expire. Also drops expiring
    /// sessions from the back, where the least recently used wait.
    pub fn release(&mut self, session: ServerSession, now: Instant, timeout: Duration) {
        while self.sessions.back().is_some_and(|s| s.about_to_expire(now, timeout)) {
            self.sessions.pop_back();
        }
        if !session.dirty && !session.about_to_expire(now, timeout) {
            self.sessions.push_front(session);
        }
    }

    /// How many sessions are pooled.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is pooled.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Empties the pool into `endSessions` command bodies (at most 10,000 ids each, to run on
    /// `admin`), for client shutdown, so the server frees them at once instead of after the
    /// timeout.
    pub fn drain_end_sessions(&mut self) -> Vec<RawDocumentBuf> {
        let ids: Vec<RawDocumentBuf> = self.sessions.drain(..).map(|s| s.lsid).collect();
        ids.chunks(END_SESSIONS_BATCH)
            .map(|chunk| {
                let array: RawArrayBuf = chunk.iter().cloned().collect();
                rawdoc! { "endSessions": array }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THIRTY_MINUTES: Duration = Duration::from_secs(30 * 60);

    fn cluster_time(time: u32, increment: u32) -> RawDocumentBuf {
        rawdoc! { "clusterTime": Timestamp { time, increment }, "signature": { "keyId": 1_i64 } }
    }

    #[test]
    fn the_clock_only_moves_forward() {
        let mut clock = ClusterClock::default();
        assert!(clock.current().is_none());
        clock.advance(&cluster_time(10, 5));
        clock.advance(&cluster_time(10, 4));
        clock.advance(&cluster_time(9, 99));
        assert_eq!(clock.current().unwrap(), cluster_time(10, 5).as_ref());
        clock.advance(&cluster_time(10, 6));
        assert_eq!(clock.current().unwrap(), cluster_time(10, 6).as_ref());
        clock.advance(&rawdoc! { "nonsense": 1 });
        assert_eq!(clock.current().unwrap(), cluster_time(10, 6).as_ref());
    }

    #[test]
    fn lsid_is_a_v4_uuid_binary() {
        let session = ServerSession::new(Instant::now());
        let id = session.lsid().get_binary("id").unwrap();
        assert_eq!(id.subtype, bson::spec::BinarySubtype::Uuid);
        assert_eq!(id.bytes.len(), 16);
        assert_eq!(id.bytes[6] >> 4, 4, "version 4");
        assert_ne!(ServerSession::new(Instant::now()).lsid(), session.lsid());
    }

    #[test]
    fn pool_reuses_most_recent_first_and_skips_expiring_or_dirty_sessions() {
        let start = Instant::now();
        let mut pool = SessionPool::default();
        let a = pool.acquire(start, THIRTY_MINUTES);
        let b = pool.acquire(start, THIRTY_MINUTES);
        let (a_id, b_id) = (a.lsid().to_owned(), b.lsid().to_owned());
        pool.release(a, start, THIRTY_MINUTES);
        pool.release(b, start, THIRTY_MINUTES);
        assert_eq!(
            pool.acquire(start, THIRTY_MINUTES).lsid(),
            b_id.as_ref(),
            "most recently released first"
        );

        let mut dirty = pool.acquire(start, THIRTY_MINUTES);
        assert_eq!(dirty.lsid(), a_id.as_ref());
        dirty.dirty = true;
        pool.release(dirty, start, THIRTY_MINUTES);
        assert!(pool.is_empty(), "a dirty session is discarded");

        let old = pool.acquire(start, THIRTY_MINUTES);
        pool.release(old, start, THIRTY_MINUTES);
        let later = start + Duration::from_secs(29 * 60 + 1);
        let fresh = pool.acquire(later, THIRTY_MINUTES);
        assert!(
            pool.is_empty(),
            "a session idle 29 minutes of 30 is dropped, not reused"
        );
        assert_ne!(fresh.lsid(), a_id.as_ref());
    }

    #[test]
    fn operation_time_only_moves_forward() {
        let mut session = ServerSession::new(Instant::now());
        assert_eq!(session.operation_time(), None);
        session.advance_operation_time(Timestamp { time: 5, increment: 2 });
        session.advance_operation_time(Timestamp { time: 5, increment: 1 });
        assert_eq!(session.operation_time(), Some(Timestamp { time: 5, increment: 2 }));
    }

    #[test]
    fn txn_numbers_increase() {
        let mut session = ServerSession::new(Instant::now());
        assert_eq!((session.next_txn_number(), session.next_txn_number()), (1, 2));
    }

    #[test]
    fn end_sessions_batches_ids() {
        let now = Instant::now();
        let mut pool = SessionPool::default();
        let sessions: Vec<_> = (0..3).map(|_| pool.acquire(now, THIRTY_MINUTES)).collect();
        for session in sessions {
            pool.release(session, now, THIRTY_MINUTES);
        }
        let commands = pool.drain_end_sessions();
        assert_eq!(commands.len(), 1);
        assert_eq!(commands[0].get_array("endSessions").unwrap().into_iter().count(), 3);
        assert!(pool.is_empty());
    }
}
