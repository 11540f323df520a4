//! A transparent recording proxy: every connection a client opens is forwarded to the upstream
//! server byte for byte, and every message of both directions is written to a fixture.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::capture::{Direction, FixtureEntry, FixtureEvent, FixtureHeader, Timestamp, write_entry, write_header};
use crate::wire::MessageDecoder;

/// Bytes read from a socket at a time.
const CHUNK: usize = 64 * 1024;

/// What a recording session saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordSummary {
    /// Connections accepted.
    pub connections: u32,
    /// Entries written (opens, messages, unframed chunks, closes).
    pub entries: u64,
}

/// An entry without its sequence number, which the writer assigns in arrival order.
struct Pending {
    conn: u32,
    dir: Direction,
    at: Instant,
    event: FixtureEvent,
}

/// Records every connection accepted on `listener`, forwarded to `upstream`, into `out`, until
/// `stop` resolves; then flushes and returns what it saw. Connections still open at the stop are
/// recorded up to that point.
pub async fn record(
    listener: TcpListener,
    upstream: String,
    out: impl Write + Send + 'static,
    description: String,
    stop: impl Future<Output = ()>,
) -> std::io::Result<RecordSummary> {
    let started = Instant::now();
    let header = FixtureHeader {
        description,
        upstream: upstream.clone(),
        recorded_at: now_rfc3339(),
    };
    let (entries, mut receiver) = mpsc::unbounded_channel::<Pending>();
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let mut out = std::io::BufWriter::new(out);
        write_header(&mut out, &header)?;
        let mut seq = 0;
        while let Some(pending) = receiver.blocking_recv() {
            let time_us = u64::try_from(pending.at.saturating_duration_since(started).as_micros()).unwrap_or(u64::MAX);
            let entry = FixtureEntry {
                seq,
                conn: pending.conn,
                dir: pending.dir,
                time_us,
                event: pending.event,
            };
            write_entry(&mut out, &entry)?;
            seq += 1;
        }
        out.flush()?;
        Ok(seq)
    });
    let connections = Arc::new(AtomicU32::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => {
                let (client, _) = accepted?;
                let conn = connections.fetch_add(1, Ordering::Relaxed) + 1;
                tasks.spawn(proxy(client, upstream.clone(), conn, entries.clone()));
            }
        }
    }
    tasks.shutdown().await;
    drop(entries);
    let entries = writer.await.map_err(std::io::Error::other)??;
    Ok(RecordSummary {
        connections: connections.load(Ordering::Relaxed),
        entries,
    })
}

/// One proxied connection: opens the upstream connection and pumps both directions.
async fn proxy(client: TcpStream, upstream: String, conn: u32, entries: mpsc::UnboundedSender<Pending>) {
    let _ = entries.send(Pending {
        conn,
        dir: Direction::ClientToServer,
        at: Instant::now(),
        event: FixtureEvent::Open,
    });
    let server = match TcpStream::connect(&upstream).await {
        Ok(server) => server,
        Err(_) => {
            let at = Instant::now();
            let _ = entries.send(Pending {
                conn,
                dir: Direction::ServerToClient,
                at,
                event: FixtureEvent::Close,
            });
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let requests = pump(
        client_read,
        server_write,
        conn,
        Direction::ClientToServer,
        entries.clone(),
    );
    let replies = pump(server_read, client_write, conn, Direction::ServerToClient, entries);
    tokio::join!(requests, replies);
}

/// Copies one direction, logging each whole message before forwarding the bytes that complete
/// it, so the fixture never shows a reply before its request.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    conn: u32,
    dir: Direction,
    entries: mpsc::UnboundedSender<Pending>,
) {
    let mut decoder = MessageDecoder::default();
    let mut pending = BytesMut::new();
    let mut framing = true;
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let read = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let data = chunk.get(..read).unwrap_or_default();
        let at = Instant::now();
        if framing {
            pending.extend_from_slice(data);
            loop {
                match decoder.next_frame(&mut pending) {
                    Ok(Some(frame)) => {
                        let _ = entries.send(Pending {
                            conn,
                            dir,
                            at,
                            event: FixtureEvent::Message(frame),
                        });
                    }
                    Ok(None) => break,
                    Err(_) => {
                        // Not MongoDB framing: keep forwarding, record the rest as it comes.
                        framing = false;
                        let rest = pending.split().freeze();
                        let _ = entries.send(Pending {
                            conn,
                            dir,
                            at,
                            event: FixtureEvent::Unframed(rest),
                        });
                        break;
                    }
                }
            }
        } else {
            let bytes = bytes::Bytes::copy_from_slice(data);
            let _ = entries.send(Pending {
                conn,
                dir,
                at,
                event: FixtureEvent::Unframed(bytes),
            });
        }
        if to.write_all(data).await.is_err() {
            break;
        }
    }
    if !pending.is_empty() {
        let rest = pending.split().freeze();
        let _ = entries.send(Pending {
            conn,
            dir,
            at: Instant::now(),
            event: FixtureEvent::Unframed(rest),
        });
    }
    let _ = entries.send(Pending {
        conn,
        dir,
        at: Instant::now(),
        event: FixtureEvent::Close,
    });
    let _ = to.shutdown().await;
}

/// The current UTC time as RFC 3339.
fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = i64::try_from(now.as_secs()).unwrap_or(0);
    Timestamp::new(seconds, now.subsec_micros() * 1000, 6)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The address a recorder listens on, for tests and the CLI's first line of output.
pub async fn bind(address: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(address).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_from_the_clock_has_the_right_shape() {
        let now = now_rfc3339();
        let parsed: Timestamp = now.parse().unwrap();
        assert_eq!(now.len(), 27, "{now}: microseconds, so fixture entries can be dated");
        assert!(parsed.seconds() > 1_750_000_000, "{now}");
    }
}
