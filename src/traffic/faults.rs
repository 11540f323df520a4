//! A fault-injecting TCP proxy: forwards MongoDB connections to an upstream server and, on a
//! seeded schedule, closes them, cuts a message in the middle, delays a message, stalls a
//! direction or corrupts a byte of a reply. The reliability tests put it between a change stream
//! and a real server; users can put it in front of their own consumers.
//!
//! Faults are decided per whole message (the proxy frames both directions by the header's
//! length), so a cut really lands inside a message and a corruption lands where a client can see
//! it. Every decision comes from one random stream seeded by [`FaultPlan::seed`]; the same seed
//! gives the same sequence of faults, though which connection each lands on depends on timing.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::wire::DEFAULT_MAX_MESSAGE_SIZE;

/// How long the proxy waits for the upstream server to accept a connection.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of a reply a corruption may hit: the header's messageLength (0-3), responseTo (8-11) and
/// opCode (12-15), OP_MSG's flagBits (16-19), the first section's kind (20) and its document's
/// length (21-24). A client detects a flipped bit in each of these (or, for the flag bits it
/// ignores, is unaffected). A bit flipped inside a BSON value is invisible to every MongoDB
/// client unless the server checksums its replies, which it does not do by default, so the proxy
/// does not pretend a client could catch it.
const CORRUPTIBLE: [Range<usize>; 2] = [0..4, 8..25];

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Close both sides of the connection before forwarding the message.
    Close,
    /// Forward part of the message, then close both sides.
    Cut,
    /// Hold the message for a moment ([`FaultPlan::delay`]), then forward it.
    Delay,
    /// Stop reading and forwarding this direction for a while ([`FaultPlan::stall`]); long
    /// enough, it outlasts the client's socket timeout.
    Stall,
    /// Flip one bit in the header or the start of a reply's body (replies only).
    Corrupt,
}

impl Fault {
    /// Every kind, in the order reports list them.
    pub const ALL: [Fault; 5] = [Fault::Close, Fault::Cut, Fault::Delay, Fault::Stall, Fault::Corrupt];

    /// The kind's name, as `FromStr` reads it.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Close => "close",
            Fault::Cut => "cut",
            Fault::Delay => "delay",
            Fault::Stall => "stall",
            Fault::Corrupt => "corrupt",
        }
    }

    fn index(self) -> usize {
        match self {
            Fault::Close => 0,
            Fault::Cut => 1,
            Fault::Delay => 2,
            Fault::Stall => 3,
            Fault::Corrupt => 4,
        }
    }
}

impl std::str::FromStr for Fault {
    type Err = String;

    fn from_str(name: &str) -> Result<Fault, String> {
        Fault::ALL
            .into_iter()
            .find(|fault| fault.name() == name)
            .ok_or_else(|| format!("unknown fault {name:?} (close, cut, delay, stall or corrupt)"))
    }
}

/// What the proxy injects, and when.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// Seeds every decision; print it so a failing run can be replayed.
    pub seed: u64,
    /// The kinds to draw from, uniformly, each time a fault fires. Empty: no faults.
    pub faults: Vec<Fault>,
    /// Scheduled faults: one fault every N messages (either direction, any connection), N drawn
    /// from this range after each fault. Counting messages rather than time leaves the client
    /// the same room to recover however busy or idle it is (a clock-based schedule starves an
    /// idle client: every heartbeat it sends meets the next fault), which is what makes "at
    /// least N faults" a test of recovery rather than of luck. An empty range disables it.
    pub every: Range<u32>,
    /// Random faults: the chance that any one message gets a fault, on top of the schedule.
    pub probability: f64,
    /// How long a [`Fault::Delay`] holds a message.
    pub delay: Range<Duration>,
    /// How long a [`Fault::Stall`] freezes a direction.
    pub stall: Range<Duration>,
}

impl FaultPlan {
    /// A plan drawing from `faults`, one every 8-24 messages, delays of 5-100 ms and stalls of
    /// 0.5-3 s.
    pub fn new(seed: u64, faults: impl IntoIterator<Item = Fault>) -> FaultPlan {
        FaultPlan {
            seed,
            faults: faults.into_iter().collect(),
            every: 8..24,
            probability: 0.0,
            delay: Duration::from_millis(5)..Duration::from_millis(100),
            stall: Duration::from_millis(500)..Duration::from_secs(3),
        }
    }
}

/// Faults injected so far, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Connections closed between messages.
    pub close: u64,
    /// Messages cut short, followed by a close.
    pub cut: u64,
    /// Messages delayed.
    pub delay: u64,
    /// Directions stalled.
    pub stall: u64,
    /// Replies with a flipped bit.
    pub corrupt: u64,
}

impl FaultCounts {
    /// The count for one kind.
    pub fn of(&self, fault: Fault) -> u64 {
        match fault {
            Fault::Close => self.close,
            Fault::Cut => self.cut,
            Fault::Delay => self.delay,
            Fault::Stall => self.stall,
            Fault::Corrupt => self.corrupt,
        }
    }

    /// Every fault of every kind.
    pub fn total(&self) -> u64 {
        self.close + self.cut + self.delay + self.stall + self.corrupt
    }
}

/// What happens to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Close,
    Cut { keep: usize },
    Hold(Duration),
    Flip { byte: usize, bit: u8 },
}

/// Which way a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Request,
    Reply,
}

/// State shared by the accept loop, the schedule and every connection.
#[derive(Debug)]
struct Injector {
    plan: FaultPlan,
    rng: Mutex<StdRng>,
    enabled: AtomicBool,
    /// Messages left before the next scheduled fault.
    countdown: AtomicU32,
    /// A scheduled corruption drawn for a request, waiting for the next reply.
    armed: AtomicBool,
    counts: [AtomicU64; 5],
    connections: AtomicU64,
}

impl Injector {
    fn new(plan: FaultPlan) -> Injector {
        let mut rng = StdRng::seed_from_u64(plan.seed);
        let countdown = AtomicU32::new(next_countdown(&mut rng, &plan.every));
        Injector {
            rng: Mutex::new(rng),
            countdown,
            plan,
            enabled: AtomicBool::new(true),
            armed: AtomicBool::new(false),
            counts: Default::default(),
            connections: AtomicU64::new(0),
        }
    }

    fn rng(&self) -> std::sync::MutexGuard<'_, StdRng> {
        self.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The fault, if any, for the next message of `len` bytes going `way`.
    fn decide(&self, way: Way, len: usize) -> Option<Action> {
        if !self.enabled.load(Ordering::Relaxed) || self.plan.faults.is_empty() {
            return None;
        }
        let mut rng = self.rng();
        let due = self.countdown.fetch_sub(1, Ordering::AcqRel) == 1;
        if due {
            self.countdown
                .store(next_countdown(&mut rng, &self.plan.every), Ordering::Release);
        }
        let scheduled = due || self.armed.swap(false, Ordering::AcqRel);
        let random = self.plan.probability > 0.0 && rng.random_bool(self.plan.probability.min(1.0));
        if !(scheduled || random) {
            return None;
        }
        let fault = *self.plan.faults.get(rng.random_range(0..self.plan.faults.len()))?;
        let action = match fault {
            Fault::Close => Action::Close,
            Fault::Cut => Action::Cut {
                keep: rng.random_range(1..len.max(2)),
            },
            Fault::Delay => Action::Hold(random_in(&mut rng, &self.plan.delay)),
            Fault::Stall => Action::Hold(random_in(&mut rng, &self.plan.stall)),
            Fault::Corrupt if way == Way::Request => {
                // Corruption is for replies; leave this one to the next message that is one.
                self.armed.store(scheduled, Ordering::Release);
                return None;
            }
            Fault::Corrupt => {
                let candidates: Vec<usize> = CORRUPTIBLE.iter().cloned().flatten().filter(|&b| b < len).collect();
                let byte = *candidates.get(rng.random_range(0..candidates.len().max(1)))?;
                Action::Flip {
                    byte,
                    bit: rng.random_range(0..8),
                }
            }
        };
        if let Some(count) = self.counts.get(fault.index()) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        Some(action)
    }

    fn counts(&self) -> FaultCounts {
        let get = |fault: Fault| self.counts.get(fault.index()).map_or(0, |c| c.load(Ordering::Relaxed));
        FaultCounts {
            close: get(Fault::Close),
            cut: get(Fault::Cut),
            delay: get(Fault::Delay),
            stall: get(Fault::Stall),
            corrupt: get(Fault::Corrupt),
        }
    }
}

/// Messages until the next scheduled fault; `u32::MAX` (never, in practice) without a schedule.
fn next_countdown(rng: &mut StdRng, every: &Range<u32>) -> u32 {
    if every.is_empty() {
        u32::MAX
    } else {
        rng.random_range(every.clone()).max(1)
    }
}

fn random_in(rng: &mut StdRng, range: &Range<Duration>) -> Duration {
    if range.is_empty() {
        range.start
    } else {
        rng.random_range(range.clone())
    }
}

/// A running fault-injecting proxy; dropping it stops it and closes every connection.
#[derive(Debug)]
pub struct FaultProxy {
    address: std::net::SocketAddr,
    injector: Arc<Injector>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on `listen` (such as `127.0.0.1:0`) and forwards every connection to `upstream`.
    pub async fn start(listen: &str, upstream: &str, plan: FaultPlan) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        let injector = Arc::new(Injector::new(plan));
        let accept = tokio::spawn(accept_loop(listener, upstream.to_owned(), injector.clone()));
        Ok(FaultProxy {
            address,
            injector,
            accept,
        })
    }

    /// Where clients connect.
    pub fn address(&self) -> std::net::SocketAddr {
        self.address
    }

    /// The plan's seed.
    pub fn seed(&self) -> u64 {
        self.injector.plan.seed
    }

    /// Faults injected so far.
    pub fn injected(&self) -> FaultCounts {
        self.injector.counts()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.injector.connections.load(Ordering::Relaxed)
    }

    /// Turns fault injection on or off; off, the proxy forwards faithfully (connections already
    /// stalled finish their stall).
    pub fn set_enabled(&self, enabled: bool) {
        self.injector.enabled.store(enabled, Ordering::Relaxed);
        if !enabled {
            self.injector.armed.store(false, Ordering::Relaxed);
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Accepts connections until aborted; the connections' tasks end with it.
async fn accept_loop(listener: TcpListener, upstream: String, injector: Arc<Injector>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                injector.connections.fetch_add(1, Ordering::Relaxed);
                connections.spawn(forward(client, upstream.clone(), injector.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One proxied connection: both directions until either side closes or a fault closes it.
async fn forward(client: TcpStream, upstream: String, injector: Arc<Injector>) {
    let server = match tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(&upstream)).await {
        Ok(Ok(server)) => server,
        _ => return,
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let (closed, _) = watch::channel(false);
    let closed = Arc::new(closed);
    tokio::join!(
        pump(client_read, server_write, Way::Request, &injector, &closed),
        pump(server_read, client_write, Way::Reply, &injector, &closed),
    );
}

/// Copies one direction message by message, applying faults; when either direction ends, both do.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    way: Way,
    injector: &Injector,
    closed: &watch::Sender<bool>,
) {
    let mut on_close = closed.subscribe();
    let mut pending = BytesMut::with_capacity(64 * 1024);
    // Once the bytes stop looking like MongoDB messages, the rest is forwarded as it comes.
    let mut framed = true;
    'copy: loop {
        let read = tokio::select! {
            read = from.read_buf(&mut pending) => read,
            _ = on_close.wait_for(|closed| *closed) => break,
        };
        if !matches!(read, Ok(n) if n > 0) {
            break;
        }
        while !pending.is_empty() {
            let len = if framed {
                message_len(&pending)
            } else {
                Some(pending.len())
            };
            let Some(len) = len else {
                framed = framed && pending.len() < 4;
                if framed {
                    break;
                }
                continue;
            };
            if pending.len() < len {
                break;
            }
            let mut message = pending.split_to(len);
            let action = if framed { injector.decide(way, len) } else { None };
            let keep = match action {
                None => len,
                Some(Action::Close) => break 'copy,
                Some(Action::Cut { keep }) => keep,
                Some(Action::Hold(pause)) => {
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        _ = on_close.wait_for(|closed| *closed) => break 'copy,
                    }
                    len
                }
                Some(Action::Flip { byte, bit }) => {
                    if let Some(target) = message.get_mut(byte) {
                        *target ^= 1 << bit;
                    }
                    len
                }
            };
            let bytes = message.get(..keep).unwrap_or_default();
            let written = tokio::select! {
                written = to.write_all(bytes) => written.is_ok(),
                _ = on_close.wait_for(|closed| *closed) => false,
            };
            if !written || keep < len {
                break 'copy;
            }
        }
    }
    closed.send_replace(true);
    let _ = to.shutdown().await;
}

/// The length a message header declares, once its first four bytes are here; `None` when they
/// are not here yet or do not describe a MongoDB message (then the caller stops framing).
fn message_len(pending: &[u8]) -> Option<usize> {
    let prefix: [u8; 4] = pending.get(..4)?.try_into().ok()?;
    let len = usize::try_from(i32::from_le_bytes(prefix)).ok()?;
    (16..=DEFAULT_MAX_MESSAGE_SIZE).contains(&len).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(faults: &[Fault]) -> FaultPlan {
        FaultPlan {
            probability: 1.0,
            every: 0..0,
            ..FaultPlan::new(7, faults.iter().copied())
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let decisions = |seed| {
            let injector = Injector::new(FaultPlan {
                seed,
                ..plan(&Fault::ALL)
            });
            (0..200).map(|_| injector.decide(Way::Reply, 300)).collect::<Vec<_>>()
        };
        assert_eq!(decisions(1), decisions(1));
        assert_ne!(decisions(1), decisions(2));
    }

    #[test]
    fn corruption_flips_one_bit_where_a_client_can_see_it_and_only_in_replies() {
        let injector = Injector::new(plan(&[Fault::Corrupt]));
        assert_eq!(injector.decide(Way::Request, 300), None);
        for _ in 0..500 {
            let Some(Action::Flip { byte, bit }) = injector.decide(Way::Reply, 300) else {
                panic!("a reply is corrupted")
            };
            assert!(CORRUPTIBLE.iter().any(|r| r.contains(&byte)), "byte {byte}");
            assert!(bit < 8);
        }
        assert_eq!(injector.counts().corrupt, 500);
    }

    #[test]
    fn a_cut_keeps_at_least_one_byte_and_loses_at_least_one() {
        let injector = Injector::new(plan(&[Fault::Cut]));
        for len in [16, 17, 300] {
            for _ in 0..100 {
                let Some(Action::Cut { keep }) = injector.decide(Way::Request, len) else {
                    panic!("a cut")
                };
                assert!((1..len).contains(&keep), "{keep} of {len}");
            }
        }
    }

    #[test]
    fn disabled_or_empty_plans_inject_nothing() {
        let injector = Injector::new(plan(&[]));
        assert_eq!(injector.decide(Way::Reply, 100), None);
        let injector = Injector::new(plan(&[Fault::Close]));
        injector.enabled.store(false, Ordering::Relaxed);
        assert_eq!(injector.decide(Way::Reply, 100), None);
        assert_eq!(injector.counts().total(), 0);
    }

    #[test]
    fn framing_reads_the_declared_length_and_gives_up_on_garbage() {
        assert_eq!(message_len(&[16, 0, 0]), None);
        assert_eq!(message_len(&300_i32.to_le_bytes()), Some(300));
        assert_eq!(message_len(&15_i32.to_le_bytes()), None);
        assert_eq!(message_len(&(-1_i32).to_le_bytes()), None);
        assert_eq!(message_len(b"GET / HTTP/1.1"), None);
    }

    #[test]
    fn fault_names_round_trip() {
        for fault in Fault::ALL {
            assert_eq!(fault.name().parse::<Fault>(), Ok(fault));
        }
        assert!("explode".parse::<Fault>().is_err());
    }

    /// An echo server behind the proxy: faithful when disabled, closed by a scheduled close.
    #[tokio::test]
    async fn forwards_faithfully_until_a_fault_closes_the_connection() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream_address = upstream.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = upstream.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0; 1024];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 || socket.write_all(buf.get(..n).unwrap_or_default()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let proxy = FaultProxy::start("127.0.0.1:0", &upstream_address, plan(&[Fault::Close]))
            .await
            .unwrap();
        proxy.set_enabled(false);
        let mut client = TcpStream::connect(proxy.address()).await.unwrap();
        let mut message = 20_i32.to_le_bytes().to_vec();
        message.extend_from_slice(&[9; 16]);
        client.write_all(&message).await.unwrap();
        let mut echoed = vec![0; 20];
        client.read_exact(&mut echoed).await.unwrap();
        assert_eq!(echoed, message);

        proxy.set_enabled(true);
        client.write_all(&message).await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "closed: {read:?}");
        assert_eq!(proxy.injected().close, 1);
        assert_eq!(proxy.connections(), 1);
    }
}
