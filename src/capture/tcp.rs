//! TCP reassembly: each direction of each connection back into a byte stream, and the MongoDB
//! messages in it, in capture order.
//!
//! A direction is keyed by its (source, destination) address pair. Sequence numbers become
//! stream offsets relative to the next expected byte (a signed 32-bit distance, so wraparound
//! past 2^32 is just another step). Data before the next expected byte is a retransmission and
//! is dropped (overlapping segments keep the bytes that arrived first); data after it waits in a
//! buffer until the hole fills. A hole is given up on, reported as a gap, and the message stream
//! resynchronised (see [`super::message_stream`]) when:
//!
//! - the other direction acknowledges bytes beyond it (the receiver had them, so they will never
//!   be retransmitted: the capture dropped them), or
//! - the buffered out-of-order bytes exceed [`ReassemblyConfig::max_buffered`], or
//! - the connection ends (FIN reached, RST) or the capture does.
//!
//! A SYN fixes the direction's first offset and says its first byte starts a message; without
//! one (a capture that joined an open connection) the stream hunts for the first message. A SYN
//! without ACK carrying a new initial sequence number on a known address pair starts a new
//! connection. Once both directions have ended (a FIN each, or a RST) the connection is kept as
//! a bufferless tombstone that ignores late retransmissions until a new SYN. Messages come out when the packet that completes them is processed, so the
//! output follows the capture.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;

use bytes::Bytes;

use super::item::{CaptureItem, CapturedMessage, Location, Problem, ProblemKind};
use super::link::{TcpFlags, TcpSegment};
use super::message_stream::{MessageStream, StreamOutput};
use super::role::{DEFAULT_PORTS, Endpoint, ServerEvidence};
use super::timestamp::Timestamp;
use crate::wire::DEFAULT_MAX_MESSAGE_SIZE;

/// Limits and hints for [`Reassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// Out-of-order bytes buffered per direction before the hole in front of them is given up.
    pub max_buffered: usize,
    /// Messages longer than this are errors.
    pub max_message_size: usize,
    /// The server's port, when the user knows it better than the inference does.
    pub server_port: Option<u16>,
}

impl Default for ReassemblyConfig {
    fn default() -> ReassemblyConfig {
        ReassemblyConfig {
            max_buffered: 8 << 20,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            server_port: None,
        }
    }
}

/// The packet a segment came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInfo {
    /// Its number in the capture, from 1.
    pub number: u64,
    /// When it was captured.
    pub timestamp: Option<Timestamp>,
}

/// The signed distance from `b` to `a` in sequence space.
fn seq_distance(a: u32, b: u32) -> i64 {
    let d = a.wrapping_sub(b);
    if d < 0x8000_0000 {
        i64::from(d)
    } else {
        i64::from(d) - (1i64 << 32)
    }
}

/// What an assembler hands on, in stream order.
#[derive(Debug)]
enum Chunk {
    /// The next bytes, and the packet that brought them.
    Data(Bytes, PacketInfo),
    /// This many bytes will never come.
    Gap(u64),
}

/// One direction's bytes, back in order.
#[derive(Debug)]
struct Assembler {
    /// Sequence number and stream offset of the next byte expected.
    next_seq: u32,
    next_offset: u64,
    /// The SYN's sequence number, when it was captured.
    isn: Option<u32>,
    /// Out-of-order data by stream offset.
    pending: BTreeMap<u64, (Bytes, PacketInfo)>,
    pending_bytes: usize,
    max_pending: usize,
    /// Stream offset just past the last byte, once a FIN has been seen.
    fin: Option<u64>,
}

impl Assembler {
    fn new(first_seq: u32, isn: Option<u32>, max_pending: usize) -> Assembler {
        Assembler {
            next_seq: first_seq,
            next_offset: 0,
            isn,
            pending: BTreeMap::new(),
            pending_bytes: 0,
            max_pending,
            fin: None,
        }
    }

    /// The stream offset of `seq` (negative when it lies before the stream's start).
    fn offset_of(&self, seq: u32) -> i64 {
        i64::try_from(self.next_offset).unwrap_or(i64::MAX) + seq_distance(seq, self.next_seq)
    }

    fn advance(&mut self, count: u64) {
        self.next_offset += count;
        self.next_seq = self
            .next_seq
            .wrapping_add(u32::try_from(count % (1 << 32)).unwrap_or(0));
    }

    fn skip_to(&mut self, offset: u64, out: &mut Vec<Chunk>) {
        if offset > self.next_offset {
            out.push(Chunk::Gap(offset - self.next_offset));
            self.advance(offset - self.next_offset);
        }
    }

    /// Hands on buffered data that has become contiguous.
    fn drain(&mut self, out: &mut Vec<Chunk>) {
        while let Some(entry) = self.pending.first_entry() {
            let start = *entry.key();
            if start > self.next_offset {
                break;
            }
            let (data, packet) = entry.remove();
            self.pending_bytes -= data.len();
            let end = start + data.len() as u64;
            if end <= self.next_offset {
                continue;
            }
            // start <= next_offset < end, so the cut lies inside `data`.
            let fresh = data.slice(usize::try_from(self.next_offset - start).unwrap_or(0)..);
            self.advance(fresh.len() as u64);
            out.push(Chunk::Data(fresh, packet));
        }
    }

    fn data(&mut self, seq: u32, payload: Bytes, packet: PacketInfo, out: &mut Vec<Chunk>) {
        if payload.is_empty() {
            return;
        }
        let start = self.offset_of(seq);
        let next = i64::try_from(self.next_offset).unwrap_or(i64::MAX);
        let end = start + i64::try_from(payload.len()).unwrap_or(i64::MAX);
        if end <= next {
            return;
        }
        let (start, payload) = if start < next {
            let cut = usize::try_from(next - start).unwrap_or(0);
            (self.next_offset, payload.slice(cut..))
        } else {
            (u64::try_from(start).unwrap_or(0), payload)
        };
        if start == self.next_offset {
            self.advance(payload.len() as u64);
            out.push(Chunk::Data(payload, packet));
            self.drain(out);
            return;
        }
        match self.pending.entry(start) {
            Entry::Occupied(mut held) => {
                if held.get().0.len() < payload.len() {
                    self.pending_bytes = self.pending_bytes - held.get().0.len() + payload.len();
                    held.insert((payload, packet));
                }
            }
            Entry::Vacant(slot) => {
                self.pending_bytes += payload.len();
                slot.insert((payload, packet));
            }
        }
        while self.pending_bytes > self.max_pending {
            let Some(first) = self.pending.keys().next().copied() else {
                break;
            };
            self.skip_to(first, out);
            self.drain(out);
        }
    }

    /// The other direction acknowledged up to `ack`: a hole below it will never fill.
    fn peer_ack(&mut self, ack: u32, out: &mut Vec<Chunk>) {
        let Some(first) = self.pending.keys().next().copied() else {
            return;
        };
        let acked = self.offset_of(ack);
        if acked > i64::try_from(self.next_offset).unwrap_or(i64::MAX) {
            self.skip_to(first.min(u64::try_from(acked).unwrap_or(0)), out);
            self.drain(out);
        }
    }

    /// Hands on everything buffered, holes reported as gaps.
    fn flush(&mut self, out: &mut Vec<Chunk>) {
        while let Some(first) = self.pending.keys().next().copied() {
            self.skip_to(first, out);
            self.drain(out);
        }
    }

    /// Whether every byte up to the FIN has been handed on.
    fn complete(&self) -> bool {
        self.fin.is_some_and(|fin| self.next_offset >= fin) && self.pending.is_empty()
    }
}

/// One direction of a connection.
#[derive(Debug)]
struct Direction {
    assembler: Assembler,
    stream: MessageStream,
    finished: bool,
    /// Whether a failure has been reported for this direction (later consequences of it are
    /// notes).
    failed: bool,
}

impl Direction {
    fn new(segment: &TcpSegment, config: &ReassemblyConfig) -> Direction {
        let syn = segment.flags.has(TcpFlags::SYN);
        let (first, isn) = if syn {
            (segment.seq.wrapping_add(1), Some(segment.seq))
        } else {
            (segment.seq, None)
        };
        Direction {
            assembler: Assembler::new(first, isn, config.max_buffered),
            stream: MessageStream::new(config.max_message_size, syn),
            finished: false,
            failed: false,
        }
    }
}

/// Both directions of a connection and what is known about who is the server.
#[derive(Debug)]
struct Connection {
    /// Creation order, so the end of the capture reports connections in the order they began.
    id: u64,
    /// `directions[i]` carries bytes from `endpoints[i]` to the other endpoint.
    endpoints: [SocketAddr; 2],
    directions: [Option<Direction>; 2],
    evidence: ServerEvidence<SocketAddr>,
    /// Whether a MongoDB message has been seen on it.
    carries_mongodb: bool,
    /// Both directions have ended (FIN on each, or RST). The connection stays as a tombstone,
    /// with its buffers freed, so that late retransmissions are not decoded again as a new
    /// connection; only a SYN replaces it.
    closed: bool,
}

/// Turns captured TCP segments into MongoDB messages and problems, in capture order.
///
/// Feed every segment of the capture, in file order, to [`Reassembler::push`]; call
/// [`Reassembler::finish`] at the end of the capture; take the results with
/// [`Reassembler::pop`] whenever convenient.
#[derive(Debug)]
pub struct Reassembler {
    config: ReassemblyConfig,
    connections: HashMap<(SocketAddr, SocketAddr), Connection>,
    next_id: u64,
    out: VecDeque<CaptureItem>,
}

/// Everything needed to turn a direction's stream output into items.
struct Emit<'a> {
    from: SocketAddr,
    to: SocketAddr,
    /// The packet being processed; `None` at the end of the capture.
    current: Option<PacketInfo>,
    evidence: &'a mut ServerEvidence<SocketAddr>,
    carries_mongodb: &'a mut bool,
    config: &'a ReassemblyConfig,
    out: &'a mut VecDeque<CaptureItem>,
}

impl Emit<'_> {
    fn chunks(&mut self, direction: &mut Direction, chunks: Vec<Chunk>) {
        let mut outputs = Vec::new();
        for chunk in chunks {
            let packet = match chunk {
                Chunk::Data(bytes, origin) => {
                    direction.stream.push(&bytes, &mut outputs);
                    self.current.or(Some(origin))
                }
                Chunk::Gap(missing) => {
                    direction.stream.gap(missing, &mut outputs);
                    self.current
                }
            };
            for output in outputs.drain(..) {
                self.output(output, packet, &mut direction.failed);
            }
        }
    }

    fn finish(&mut self, direction: &mut Direction) {
        if direction.finished {
            return;
        }
        let mut chunks = Vec::new();
        direction.assembler.flush(&mut chunks);
        self.chunks(direction, chunks);
        let mut outputs = Vec::new();
        direction.stream.finish(&mut outputs);
        for output in outputs {
            self.output(output, self.current, &mut direction.failed);
        }
        direction.finished = true;
        direction.stream = MessageStream::new(self.config.max_message_size, false);
    }

    /// Whether the user or MongoDB's defaults say this connection is MongoDB's.
    fn on_mongodb_port(&self) -> bool {
        let ports = [self.from.port(), self.to.port()];
        ports
            .iter()
            .any(|p| self.config.server_port == Some(*p) || DEFAULT_PORTS.contains(p))
    }

    /// Turns one stream output into an item. Decode errors and truncated messages are failures
    /// (they come from a stream framing MongoDB messages); a gap is one on a connection that
    /// carries MongoDB (or should: the server port); bytes that never framed are one only on a
    /// connection that should carry MongoDB and has no earlier failure explaining them.
    fn output(&mut self, output: StreamOutput, packet: Option<PacketInfo>, failed: &mut bool) {
        let location = |offset| Location::Stream {
            from: self.from.to_string(),
            to: self.to.to_string(),
            offset,
            packet: packet.map(|p| p.number),
        };
        let problem = |failure, offset, kind| {
            CaptureItem::Problem(Problem {
                failure,
                location: location(offset),
                kind,
            })
        };
        let item = match output {
            StreamOutput::Message { offset, message } => {
                let sender = self.evidence.sender(
                    Endpoint {
                        id: &self.from,
                        port: Some(self.from.port()),
                    },
                    Endpoint {
                        id: &self.to,
                        port: Some(self.to.port()),
                    },
                    self.config.server_port,
                    &message,
                );
                *self.carries_mongodb = true;
                CaptureItem::Message(Box::new(CapturedMessage {
                    message,
                    offset,
                    from: Some(self.from.to_string()),
                    to: Some(self.to.to_string()),
                    sender: Some(sender),
                    timestamp: packet.and_then(|p| p.timestamp),
                    packet: packet.map(|p| p.number),
                    connection: None,
                }))
            }
            StreamOutput::Error {
                offset,
                error,
                recovered,
            } => problem(true, offset, ProblemKind::Decode { error, recovered }),
            StreamOutput::Truncated { offset, available } => {
                problem(true, offset, ProblemKind::Truncated { available })
            }
            StreamOutput::Gap {
                offset,
                missing,
                partial,
                mongodb,
            } => {
                let failure = mongodb || *self.carries_mongodb || self.on_mongodb_port();
                problem(failure, offset, ProblemKind::Gap { missing, partial })
            }
            StreamOutput::Resynchronised { offset, skipped } => {
                problem(false, offset, ProblemKind::Resynchronised { skipped })
            }
            StreamOutput::Unframed {
                offset,
                bytes,
                any_message,
            } => {
                let failure = !any_message && !*failed && self.on_mongodb_port();
                problem(failure, offset, ProblemKind::Unframed { bytes, any_message })
            }
        };
        if let CaptureItem::Problem(Problem { failure: true, .. }) = item {
            *failed = true;
        }
        self.out.push_back(item);
    }
}

impl Reassembler {
    /// A reassembler with no connections yet.
    pub fn new(config: ReassemblyConfig) -> Reassembler {
        Reassembler {
            config,
            connections: HashMap::new(),
            next_id: 0,
            out: VecDeque::new(),
        }
    }

    /// The next message or problem, in capture order.
    pub fn pop(&mut self) -> Option<CaptureItem> {
        self.out.pop_front()
    }

    fn emit<'a>(
        config: &'a ReassemblyConfig,
        out: &'a mut VecDeque<CaptureItem>,
        connection: &'a mut Connection,
        index: usize,
        current: Option<PacketInfo>,
    ) -> (Emit<'a>, Option<&'a mut Direction>) {
        let [a, b] = connection.endpoints;
        let (from, to) = if index == 0 { (a, b) } else { (b, a) };
        let direction = connection.directions.get_mut(index).and_then(Option::as_mut);
        let emit = Emit {
            from,
            to,
            current,
            evidence: &mut connection.evidence,
            carries_mongodb: &mut connection.carries_mongodb,
            config,
            out,
        };
        (emit, direction)
    }

    /// Ends both directions of a connection (holes become gaps, unfinished messages are
    /// reported) and leaves it a tombstone.
    fn close(&mut self, connection: &mut Connection, current: Option<PacketInfo>) {
        for index in 0..2 {
            let (mut emit, direction) = Reassembler::emit(&self.config, &mut self.out, connection, index, current);
            if let Some(direction) = direction {
                emit.finish(direction);
            }
        }
        connection.directions = [None, None];
        connection.closed = true;
    }

    /// Takes the next segment of the capture.
    pub fn push(&mut self, segment: TcpSegment, packet: PacketInfo) {
        let key = if segment.src <= segment.dst {
            (segment.src, segment.dst)
        } else {
            (segment.dst, segment.src)
        };
        let flags = segment.flags;
        let (syn, ack) = (flags.has(TcpFlags::SYN), flags.has(TcpFlags::ACK));
        let mut connection = match self.connections.remove(&key) {
            Some(old) if old.closed => {
                if !syn || ack {
                    self.connections.insert(key, old);
                    return;
                }
                None
            }
            // A SYN with a new initial sequence number: the address pair is being reused.
            Some(mut old) if syn && !ack && direction_isn(&old, segment.src).is_some_and(|isn| isn != segment.seq) => {
                self.close(&mut old, Some(packet));
                None
            }
            other => other,
        };
        if connection.is_none() {
            if segment.payload.is_empty() && !syn {
                return;
            }
            connection = Some(Connection {
                id: self.next_id,
                endpoints: [segment.src, segment.dst],
                directions: [None, None],
                evidence: ServerEvidence::default(),
                carries_mongodb: false,
                closed: false,
            });
            self.next_id += 1;
        }
        let Some(mut connection) = connection else {
            return;
        };
        self.segment(&mut connection, segment, packet);
        self.connections.insert(key, connection);
    }

    fn segment(&mut self, connection: &mut Connection, segment: TcpSegment, packet: PacketInfo) {
        let flags = segment.flags;
        let (syn, ack) = (flags.has(TcpFlags::SYN), flags.has(TcpFlags::ACK));
        let index = usize::from(segment.src != connection.endpoints[0]);
        if syn {
            let server = if ack { segment.src } else { segment.dst };
            connection.evidence.saw_syn(&server);
        }
        let restart = match connection.directions.get(index).and_then(Option::as_ref) {
            None => syn || !segment.payload.is_empty(),
            // A SYN-ACK with a new initial sequence number: this side restarted.
            Some(direction) => syn && direction.assembler.isn != Some(segment.seq),
        };
        if restart {
            let (mut emit, direction) = Reassembler::emit(&self.config, &mut self.out, connection, index, Some(packet));
            if let Some(direction) = direction {
                emit.finish(direction);
            }
            if let Some(slot) = connection.directions.get_mut(index) {
                *slot = Some(Direction::new(&segment, &self.config));
            }
        }

        // This direction's data.
        let (mut emit, direction) = Reassembler::emit(&self.config, &mut self.out, connection, index, Some(packet));
        if let Some(direction) = direction.filter(|d| !d.finished) {
            let seq = if syn { segment.seq.wrapping_add(1) } else { segment.seq };
            let length = segment.payload.len() as u64;
            let mut chunks = Vec::new();
            if flags.has(TcpFlags::FIN) {
                let end = direction.assembler.offset_of(seq) + i64::try_from(length).unwrap_or(0);
                direction.assembler.fin = u64::try_from(end).ok();
            }
            direction.assembler.data(seq, segment.payload, packet, &mut chunks);
            emit.chunks(direction, chunks);
            if direction.assembler.complete() {
                emit.finish(direction);
            }
        }

        // What it acknowledges of the other direction.
        let other = 1 - index;
        let (mut emit, direction) = Reassembler::emit(&self.config, &mut self.out, connection, other, Some(packet));
        if let Some(direction) = direction.filter(|d| !d.finished) {
            if ack {
                let mut chunks = Vec::new();
                direction.assembler.peer_ack(segment.ack, &mut chunks);
                emit.chunks(direction, chunks);
            }
            if direction.assembler.complete() {
                emit.finish(direction);
            }
        }

        let both_ended = connection
            .directions
            .iter()
            .all(|d| d.as_ref().is_some_and(|d| d.finished));
        if flags.has(TcpFlags::RST) || both_ended {
            self.close(connection, Some(packet));
        }
    }

    /// The capture has ended: every connection still open is closed, in the order they began.
    pub fn finish(&mut self) {
        let mut connections: Vec<Connection> = self.connections.drain().map(|(_, c)| c).collect();
        connections.sort_by_key(|c| c.id);
        for mut connection in connections {
            self.close(&mut connection, None);
        }
    }
}

/// The initial sequence number of the direction sent by `src`, if its SYN was seen.
fn direction_isn(connection: &Connection, src: SocketAddr) -> Option<u32> {
    let index = usize::from(src != connection.endpoints[0]);
    connection.directions.get(index)?.as_ref()?.assembler.isn
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;
    use bytes::BytesMut;

    use super::*;
    use crate::capture::item::Role;
    use crate::capture::test_packets::{ACK, FIN, PSH, RST, SYN};
    use crate::wire::{Body, Message, OpMsg};

    /// An OP_MSG of about `pad` + 40 bytes; a reply when `response_to` is not 0.
    fn msg(id: i32, response_to: i32, pad: usize) -> Vec<u8> {
        let body = OpMsg::new(rawdoc! { "ping": id, "pad": "x".repeat(pad) });
        let mut out = BytesMut::new();
        Message::new(id, response_to, Body::Msg(body)).encode(&mut out).unwrap();
        out.to_vec()
    }

    fn client() -> SocketAddr {
        "10.0.0.1:50000".parse().unwrap()
    }

    fn server() -> SocketAddr {
        "10.0.0.2:27017".parse().unwrap()
    }

    fn seg(src: SocketAddr, dst: SocketAddr, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> TcpSegment {
        TcpSegment {
            src,
            dst,
            seq,
            ack,
            flags: TcpFlags(flags),
            payload: Bytes::copy_from_slice(payload),
        }
    }

    /// Client data segment at stream offset `offset` of a connection whose client ISN is 1000.
    fn data(offset: u32, payload: &[u8]) -> TcpSegment {
        seg(client(), server(), 1001 + offset, 5001, PSH | ACK, payload)
    }

    fn handshake() -> Vec<TcpSegment> {
        vec![
            seg(client(), server(), 1000, 0, SYN, b""),
            seg(server(), client(), 5000, 1001, SYN | ACK, b""),
            seg(client(), server(), 1001, 5001, ACK, b""),
        ]
    }

    fn run_with(config: ReassemblyConfig, segments: Vec<TcpSegment>) -> Vec<CaptureItem> {
        let mut reassembler = Reassembler::new(config);
        for (i, segment) in segments.into_iter().enumerate() {
            let number = i as u64 + 1;
            let timestamp = Timestamp::new(1_700_000_000 + i as i64, 0, 6);
            reassembler.push(segment, PacketInfo { number, timestamp });
        }
        reassembler.finish();
        std::iter::from_fn(|| reassembler.pop()).collect()
    }

    fn run(segments: Vec<TcpSegment>) -> Vec<CaptureItem> {
        run_with(ReassemblyConfig::default(), segments)
    }

    /// (request id, packet that completed it) of every message.
    fn messages(items: &[CaptureItem]) -> Vec<(i32, Option<u64>)> {
        items
            .iter()
            .filter_map(|item| match item {
                CaptureItem::Message(m) => Some((m.message.request_id(), m.packet)),
                CaptureItem::Problem(_) => None,
            })
            .collect()
    }

    fn problems(items: &[CaptureItem]) -> Vec<&Problem> {
        items
            .iter()
            .filter_map(|item| match item {
                CaptureItem::Problem(p) => Some(p),
                CaptureItem::Message(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_message_split_over_three_segments() {
        let m = msg(1, 0, 100);
        let mut segments = handshake();
        segments.extend([data(0, &m[..10]), data(10, &m[10..50]), data(50, &m[50..])]);
        let items = run(segments);
        assert_eq!(messages(&items), [(1, Some(6))]);
        let CaptureItem::Message(message) = &items[0] else {
            unreachable!()
        };
        assert_eq!(message.from.as_deref(), Some("10.0.0.1:50000"));
        assert_eq!(message.to.as_deref(), Some("10.0.0.2:27017"));
        assert_eq!(message.sender, Some(Role::Client));
        assert_eq!(message.offset, 0);
        assert_eq!(message.timestamp.unwrap().seconds(), 1_700_000_005);
        assert!(problems(&items).is_empty());
    }

    #[test]
    fn two_messages_in_one_segment_and_a_reply() {
        let (a, b) = (msg(1, 0, 10), msg(2, 0, 20));
        let mut segments = handshake();
        segments.push(data(0, &[a.clone(), b.clone()].concat()));
        let reply = msg(7, 2, 5);
        segments.push(seg(
            server(),
            client(),
            5001,
            1001 + (a.len() + b.len()) as u32,
            PSH | ACK,
            &reply,
        ));
        let items = run(segments);
        assert_eq!(messages(&items), [(1, Some(4)), (2, Some(4)), (7, Some(5))]);
        let CaptureItem::Message(second) = &items[1] else {
            unreachable!()
        };
        assert_eq!(second.offset, a.len() as u64);
        let CaptureItem::Message(reply) = &items[2] else {
            unreachable!()
        };
        assert_eq!(reply.sender, Some(Role::Server));
        assert_eq!(reply.from.as_deref(), Some("10.0.0.2:27017"));
    }

    #[test]
    fn retransmissions_give_no_duplicates() {
        let (a, b) = (msg(1, 0, 20), msg(2, 0, 60));
        assert!(a.len() < 90 && a.len() + b.len() > 90);
        let stream = [a.clone(), b.clone()].concat();
        let mut segments = handshake();
        segments.extend([
            data(0, &stream[..40]),
            data(0, &stream[..40]),    // exact duplicate
            data(20, &stream[20..90]), // overlaps the first and goes on
            data(0, &stream[..90]),    // covers everything so far
            data(90, &stream[90..]),
            data(90, &stream[90..]),
        ]);
        let items = run(segments);
        assert_eq!(messages(&items), [(1, Some(6)), (2, Some(8))]);
        assert!(problems(&items).is_empty());
    }

    #[test]
    fn out_of_order_segments_are_reassembled_in_order() {
        let (a, b) = (msg(1, 0, 60), msg(2, 0, 10));
        let stream = [a.clone(), b.clone()].concat();
        let cut = a.len();
        let mut segments = handshake();
        segments.extend([
            data(30, &stream[30..60]),
            data(cut as u32, &stream[cut..]), // all of b, before a is complete
            data(60, &stream[60..cut]),
            data(0, &stream[..30]), // the first bytes arrive last
        ]);
        let items = run(segments);
        assert_eq!(messages(&items), [(1, Some(7)), (2, Some(7))]);
        assert!(problems(&items).is_empty());
    }

    #[test]
    fn a_hole_acknowledged_by_the_peer_is_reported_and_decoding_resumes() {
        let (a, b, c) = (msg(1, 0, 30), msg(2, 0, 30), msg(3, 0, 30));
        let (b_at, c_at) = (a.len() as u32, (a.len() + b.len()) as u32);
        let mut segments = handshake();
        segments.extend([
            data(0, &a),
            data(b_at, &b[..20]),
            // b[20..] never captured
            data(c_at, &c),
            // The server acknowledges everything: the hole will never fill.
            seg(server(), client(), 5001, 1001 + c_at + c.len() as u32, ACK, b""),
            data(c_at + c.len() as u32, &msg(4, 0, 1)),
        ]);
        let items = run(segments);
        assert_eq!(messages(&items), [(1, Some(4)), (3, Some(7)), (4, Some(8))]);
        let problems = problems(&items);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].failure);
        let missing = u64::from(c_at) - u64::from(b_at) - 20;
        assert_eq!(problems[0].kind, ProblemKind::Gap { missing, partial: 20 });
        assert_eq!(
            problems[0].to_string(),
            format!(
                "{missing} bytes missing from the capture at byte {} of stream 10.0.0.1:50000 -> 10.0.0.2:27017 \
                 (packet 7); the message begun 20 bytes earlier is lost; looking for the next message",
                b_at + 20
            )
        );
    }

    #[test]
    fn a_hole_that_never_fills_is_reported_at_the_end() {
        let (a, b, c) = (msg(1, 0, 30), msg(2, 0, 30), msg(3, 0, 30));
        let c_at = (a.len() + b.len()) as u32;
        let mut segments = handshake();
        segments.extend([
            data(0, &a),
            data(a.len() as u32 + 10, &b[10..]), // b's first 10 bytes never captured
            data(c_at, &c),
        ]);
        let items = run(segments);
        // c was held behind the hole until the end of the capture, then delivered.
        assert_eq!(messages(&items), [(1, Some(4)), (3, Some(6))]);
        let problems = problems(&items);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(
            problems[0].kind,
            ProblemKind::Gap {
                missing: 10,
                partial: 0
            }
        );
        assert!(problems[0].to_string().contains("(end of capture)"));
        // b's remaining bytes were skipped to find c: a note, the hole was the failure.
        assert_eq!(
            problems[1].kind,
            ProblemKind::Resynchronised {
                skipped: b.len() as u64 - 10
            }
        );
        assert!(!problems[1].failure);
    }

    #[test]
    fn too_many_buffered_bytes_give_up_the_hole() {
        let (a, b) = (msg(1, 0, 30), msg(2, 0, 300));
        let config = ReassemblyConfig {
            max_buffered: 100,
            ..ReassemblyConfig::default()
        };
        let mut segments = handshake();
        let b_at = a.len() as u32;
        segments.extend([data(5, &a[5..]), data(b_at, &b[..80]), data(b_at + 80, &b[80..])]);
        let items = run_with(config, segments);
        assert_eq!(messages(&items), [(2, Some(6))]);
        let problems = problems(&items);
        assert_eq!(problems[0].kind, ProblemKind::Gap { missing: 5, partial: 0 });
        // The second out-of-order segment took the buffer past its limit.
        assert!(matches!(problems[0].location, Location::Stream { packet: Some(5), .. }));
    }

    #[test]
    fn sequence_numbers_wrap_around() {
        let (a, b) = (msg(1, 0, 40), msg(2, 0, 40));
        let stream = [a, b].concat();
        let isn = u32::MAX - 30;
        let at = |offset: usize| isn.wrapping_add(1).wrapping_add(offset as u32);
        let segments = vec![
            seg(client(), server(), isn, 0, SYN, b""),
            seg(client(), server(), at(50), 0, ACK, &stream[50..]), // after the wrap, early
            seg(client(), server(), at(0), 0, ACK, &stream[..25]),  // before the wrap
            seg(client(), server(), at(25), 0, ACK, &stream[25..50]), // across it
            seg(client(), server(), at(25), 0, ACK, &stream[25..50]), // and again
        ];
        let items = run(segments);
        assert_eq!(messages(&items), [(1, Some(4)), (2, Some(4))]);
        assert!(problems(&items).is_empty());
    }

    #[test]
    fn fin_ends_a_direction_and_reports_an_unfinished_message() {
        let a = msg(1, 0, 30);
        let mut segments = handshake();
        segments.extend([
            data(0, &a[..20]),
            seg(client(), server(), 1021, 5001, FIN | ACK, b""),
            data(20, &a[20..]), // after the FIN: ignored
        ]);
        let items = run(segments);
        assert!(messages(&items).is_empty());
        let problems = problems(&items);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].kind, ProblemKind::Truncated { available: 20 });
        assert!(matches!(problems[0].location, Location::Stream { packet: Some(5), .. }));
    }

    #[test]
    fn rst_closes_both_directions_and_a_new_syn_starts_afresh() {
        let a = msg(1, 0, 30);
        let mut segments = handshake();
        segments.extend([
            data(0, &a[..20]),
            seg(server(), client(), 5001, 1021, RST | ACK, b""),
            // The same address pair again, with a new ISN: offsets start over.
            seg(client(), server(), 9000, 0, SYN, b""),
            seg(client(), server(), 9000, 0, SYN, b""), // a retransmitted SYN changes nothing
            seg(client(), server(), 9001, 0, ACK, &a),
        ]);
        let items = run(segments);
        assert_eq!(messages(&items), [(1, Some(8))]);
        let CaptureItem::Message(message) = &items[1] else {
            unreachable!()
        };
        assert_eq!(message.offset, 0);
        let problems = problems(&items);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].kind, ProblemKind::Truncated { available: 20 });
    }

    #[test]
    fn a_retransmission_after_both_fins_is_not_decoded_again() {
        let (request, reply) = (msg(1, 0, 10), msg(2, 1, 10));
        let (c_end, s_end) = (1001 + request.len() as u32, 5001 + reply.len() as u32);
        let mut segments = handshake();
        segments.extend([
            data(0, &request),
            seg(server(), client(), 5001, c_end, PSH | ACK, &reply),
            seg(client(), server(), c_end, s_end, FIN | ACK, b""),
            seg(server(), client(), s_end, c_end + 1, FIN | ACK, b""),
            data(0, &request),
            seg(server(), client(), 5001, c_end, PSH | ACK, &reply),
        ]);
        let items = run(segments);
        assert_eq!(messages(&items), [(1, Some(4)), (2, Some(5))]);
        assert!(problems(&items).is_empty());
    }

    #[test]
    fn a_capture_that_joins_mid_connection_finds_the_next_message() {
        let (a, b) = (msg(1, 0, 30), msg(2, 0, 30));
        // No handshake; the first captured bytes are the tail of `a`.
        let segments = vec![data(0, &a[12..]), data((a.len() - 12) as u32, &b)];
        let items = run(segments);
        assert_eq!(messages(&items), [(2, Some(2))]);
        let problems = problems(&items);
        assert_eq!(problems.len(), 1);
        assert!(!problems[0].failure, "a late start is a note");
        assert_eq!(
            problems[0].kind,
            ProblemKind::Resynchronised {
                skipped: a.len() as u64 - 12
            }
        );
    }

    #[test]
    fn a_bad_message_is_reported_and_the_next_decodes() {
        let (mut a, b) = (msg(1, 0, 30), msg(2, 0, 30));
        a[16] = 4; // a reserved OP_MSG flag bit
        let mut segments = handshake();
        segments.push(data(0, &[a.clone(), b].concat()));
        let items = run(segments);
        assert_eq!(messages(&items), [(2, Some(4))]);
        let problems = problems(&items);
        assert_eq!(
            problems[0].to_string(),
            "message at byte 0 of stream 10.0.0.1:50000 -> 10.0.0.2:27017 (packet 4): reserved flag bits 0x0004 \
             are set (field OP_MSG.flagBits, byte 16); skipped"
        );
    }

    #[test]
    fn an_impossible_length_makes_the_stream_hunt() {
        let b = msg(2, 0, 30);
        let mut bad = vec![0u8; 16];
        bad[..4].copy_from_slice(&(-5i32).to_le_bytes());
        let mut segments = handshake();
        segments.push(data(0, &msg(1, 0, 1)));
        let at = msg(1, 0, 1).len() as u32;
        segments.push(data(at, &[bad, b].concat()));
        let items = run(segments);
        assert_eq!(messages(&items), [(1, Some(4)), (2, Some(5))]);
        let problems = problems(&items);
        assert!(problems[0].failure);
        assert!(problems[0].to_string().ends_with("looking for the next message"));
        assert_eq!(problems[1].kind, ProblemKind::Resynchronised { skipped: 16 });
    }

    #[test]
    fn other_protocols_are_a_note_unless_on_a_mongodb_port() {
        let web: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let request = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n";
        for (port, failure) in [(80, false), (27017, true)] {
            let dst = SocketAddr::new(web.ip(), port);
            let segments = vec![
                seg(client(), dst, 1000, 0, SYN, b""),
                seg(client(), dst, 1001, 0, ACK, request),
            ];
            let items = run(segments);
            let problems = problems(&items);
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].failure, failure);
            assert_eq!(
                problems[0].kind,
                ProblemKind::Unframed {
                    bytes: request.len() as u64,
                    any_message: false
                }
            );
        }
    }

    #[test]
    fn a_hole_in_other_traffic_is_a_note() {
        let web: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let segments = vec![
            seg(client(), web, 1000, 0, SYN, b""),
            seg(client(), web, 1001, 0, ACK, b"GET / HTTP/1.1\r\n"),
            seg(client(), web, 1101, 0, ACK, b"Host: example\r\n\r\n"),
        ];
        let items = run(segments);
        let problems = problems(&items);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().all(|p| !p.failure), "{problems:?}");
        assert!(matches!(problems[0].kind, ProblemKind::Gap { missing: 84, .. }));
    }

    #[test]
    fn who_is_the_server() {
        let a: SocketAddr = "[2001:db8::1]:40000".parse().unwrap();
        let b: SocketAddr = "[2001:db8::2]:20000".parse().unwrap();
        let request = msg(1, 0, 1);
        let reply = msg(2, 1, 1);
        let senders = |config: ReassemblyConfig, segments: Vec<TcpSegment>| -> Vec<(String, Role)> {
            run_with(config, segments)
                .iter()
                .filter_map(|item| match item {
                    CaptureItem::Message(m) => Some((m.from.clone().unwrap(), m.sender.unwrap())),
                    CaptureItem::Problem(_) => None,
                })
                .collect()
        };
        // No SYN, no default port: the request's shape, then the reply, decide.
        let plain = vec![seg(a, b, 1, 0, ACK, &request), seg(b, a, 1, 0, ACK, &reply)];
        assert_eq!(
            senders(ReassemblyConfig::default(), plain.clone()),
            [
                ("[2001:db8::1]:40000".to_owned(), Role::Client),
                ("[2001:db8::2]:20000".to_owned(), Role::Server)
            ]
        );
        // The user says the server listens on 40000: that wins.
        let config = ReassemblyConfig {
            server_port: Some(40000),
            ..ReassemblyConfig::default()
        };
        let roles: Vec<Role> = senders(config, plain).into_iter().map(|(_, r)| r).collect();
        assert_eq!(roles, [Role::Server, Role::Client]);
        // A request-shaped message from the SYN's destination is still the server's.
        let syn_first = vec![
            seg(a, b, 0, 0, SYN, b""),
            seg(a, b, 1, 0, ACK, &request),
            seg(b, a, 1, 0, ACK, &request),
        ];
        let roles: Vec<Role> = senders(ReassemblyConfig::default(), syn_first)
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        assert_eq!(roles, [Role::Client, Role::Server]);
    }
}
