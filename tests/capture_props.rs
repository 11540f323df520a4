//! Property tests of TCP reassembly: messages encoded back to back, cut into random segments,
//! delivered out of order within a window and with random retransmissions (exact and
//! overlapping), come out as the same messages, in order, each at the packet that completed it.
#![allow(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap
)]

use std::net::SocketAddr;

use bson::rawdoc;
use bytes::{Bytes, BytesMut};
use mongowire::capture::{
    CaptureItem, PacketInfo, Problem, ProblemKind, Reassembler, ReassemblyConfig, TcpFlags, TcpSegment,
};
use mongowire::wire::{Body, Compressor, Message, OpMsg};
use proptest::prelude::*;

fn encoded(id: i32, pad: usize, compressed: bool) -> Vec<u8> {
    let message = Message::new(
        id,
        0,
        Body::Msg(OpMsg::new(rawdoc! { "insert": id, "pad": "x".repeat(pad) })),
    );
    let mut out = BytesMut::new();
    if compressed {
        message.encode_compressed(Compressor::Snappy, None, &mut out).unwrap();
    } else {
        message.encode(&mut out).unwrap();
    }
    out.to_vec()
}

/// A stream of messages, where each one starts and ends.
fn stream(specs: &[(usize, bool)]) -> (Vec<u8>, Vec<(i32, usize, usize)>) {
    let mut bytes = Vec::new();
    let mut bounds = Vec::new();
    for (i, (pad, compressed)) in specs.iter().enumerate() {
        let id = i as i32 + 1;
        let message = encoded(id, *pad, *compressed);
        bounds.push((id, bytes.len(), bytes.len() + message.len()));
        bytes.extend_from_slice(&message);
    }
    (bytes, bounds)
}

/// Byte ranges covering `len` bytes, cut at the given sizes.
fn cut(len: usize, sizes: &[usize]) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut at = 0;
    let mut sizes = sizes.iter().cycle();
    while at < len {
        let end = (at + sizes.next().copied().unwrap_or(1).max(1)).min(len);
        ranges.push((at, end));
        at = end;
    }
    ranges
}

/// Moves each range by up to `window` places: sort by index plus a random delay.
fn shuffle(ranges: Vec<(usize, usize)>, delays: &[usize], window: usize) -> Vec<(usize, usize)> {
    let mut keyed: Vec<(usize, usize, (usize, usize))> = ranges
        .into_iter()
        .enumerate()
        .map(|(i, r)| (i + delays.get(i).copied().unwrap_or(0) % (window + 1), i, r))
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, _, r)| r).collect()
}

fn client() -> SocketAddr {
    "192.0.2.1:51000".parse().unwrap()
}

fn server() -> SocketAddr {
    "192.0.2.2:27017".parse().unwrap()
}

/// Runs a SYN then the ranges of `bytes` as data segments; returns the items and, per packet,
/// the range it carried.
fn reassemble(isn: u32, bytes: &[u8], ranges: &[(usize, usize)]) -> Vec<CaptureItem> {
    let mut reassembler = Reassembler::new(ReassemblyConfig::default());
    let syn = TcpSegment {
        src: client(),
        dst: server(),
        seq: isn,
        ack: 0,
        flags: TcpFlags(TcpFlags::SYN),
        payload: Bytes::new(),
    };
    reassembler.push(
        syn,
        PacketInfo {
            number: 1,
            timestamp: None,
        },
    );
    for (i, (start, end)) in ranges.iter().enumerate() {
        let segment = TcpSegment {
            src: client(),
            dst: server(),
            seq: isn.wrapping_add(1).wrapping_add(*start as u32),
            ack: 0,
            flags: TcpFlags(TcpFlags::PSH),
            payload: Bytes::copy_from_slice(&bytes[*start..*end]),
        };
        reassembler.push(
            segment,
            PacketInfo {
                number: i as u64 + 2,
                timestamp: None,
            },
        );
    }
    reassembler.finish();
    std::iter::from_fn(|| reassembler.pop()).collect()
}

/// The packet at which each message's bytes were all present and contiguous from the stream's
/// start, computed independently of the reassembler.
fn completing_packets(len: usize, ranges: &[(usize, usize)], bounds: &[(i32, usize, usize)]) -> Vec<(i32, u64)> {
    let mut covered = vec![false; len];
    let mut prefix = 0;
    let mut out = Vec::new();
    let mut next = 0;
    for (i, (start, end)) in ranges.iter().enumerate() {
        covered[*start..*end].iter_mut().for_each(|c| *c = true);
        while prefix < len && covered[prefix] {
            prefix += 1;
        }
        while let Some((id, _, message_end)) = bounds.get(next) {
            if *message_end > prefix {
                break;
            }
            out.push((*id, i as u64 + 2));
            next += 1;
        }
    }
    out
}

/// A message as the tests compare it: request id, completing packet, bytes on the wire (empty
/// for a compressed one, whose wire bytes the message does not keep).
type Seen = (i32, Option<u64>, Vec<u8>);

fn split(items: Vec<CaptureItem>) -> (Vec<Seen>, Vec<Problem>) {
    let mut messages = Vec::new();
    let mut problems = Vec::new();
    for item in items {
        match item {
            CaptureItem::Message(m) => {
                let wire = match m.message.compression() {
                    None => m.message.raw().to_vec(),
                    Some(_) => Vec::new(),
                };
                messages.push((m.message.request_id(), m.packet, wire));
            }
            CaptureItem::Problem(p) => problems.push(p),
        }
    }
    (messages, problems)
}

fn specs() -> impl Strategy<Value = Vec<(usize, bool)>> {
    prop::collection::vec((0usize..400, prop::bool::weighted(0.2)), 1..10)
}

/// Initial sequence numbers, half of them close enough to 2^32 for the stream to wrap.
fn isn() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), (u32::MAX - 2000)..=u32::MAX]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn shuffled_and_retransmitted_segments_give_the_messages_in_order(
        specs in specs(),
        isn in isn(),
        sizes in prop::collection::vec(1usize..120, 1..20),
        delays in prop::collection::vec(0usize..64, 0..200),
        window in 0usize..6,
        retransmits in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), 0usize..300, 0usize..40), 0..12),
    ) {
        let (bytes, bounds) = stream(&specs);
        let mut ranges = shuffle(cut(bytes.len(), &sizes), &delays, window);
        // Retransmissions: exact copies of a sent segment, or any range of the stream already
        // sent (overlapping several segments), at a later position.
        for (which, at, extra, offset) in retransmits {
            let position = at.index(ranges.len() + 1).max(1);
            let (start, end) = ranges[which.index(position)];
            let copy = if extra == 0 {
                (start, end)
            } else {
                let start = start.saturating_sub(offset);
                (start, (end + extra).min(bytes.len()))
            };
            ranges.insert(position, copy);
        }
        let expected = completing_packets(bytes.len(), &ranges, &bounds);
        let (messages, problems) = split(reassemble(isn, &bytes, &ranges));
        prop_assert!(problems.is_empty(), "{:?}", problems);
        let got: Vec<(i32, u64)> = messages.iter().map(|(id, packet, _)| (*id, packet.unwrap_or(0))).collect();
        prop_assert_eq!(got, expected);
        for ((_, start, end), (_, _, wire)) in bounds.iter().zip(&messages) {
            if !wire.is_empty() {
                prop_assert_eq!(&bytes[*start..*end], &wire[..]);
            }
        }
    }

    #[test]
    fn a_lost_segment_costs_only_the_messages_it_touches(
        specs in specs(),
        isn in isn(),
        sizes in prop::collection::vec(1usize..120, 1..20),
        delays in prop::collection::vec(0usize..64, 0..200),
        window in 0usize..6,
        lost in any::<prop::sample::Index>(),
    ) {
        let (bytes, bounds) = stream(&specs);
        let mut ranges = shuffle(cut(bytes.len(), &sizes), &delays, window);
        let (lost_start, lost_end) = ranges.remove(lost.index(ranges.len()));
        let (messages, problems) = split(reassemble(isn, &bytes, &ranges));
        let expected: Vec<i32> = bounds
            .iter()
            .filter(|(_, start, end)| *end <= lost_start || *start >= lost_end)
            .map(|(id, _, _)| *id)
            .collect();
        let got: Vec<i32> = messages.iter().map(|(id, _, _)| *id).collect();
        prop_assert_eq!(got, expected);
        let failures: Vec<&Problem> = problems.iter().filter(|p| p.failure).collect();
        let at_boundary = bounds.iter().any(|(_, start, _)| *start == lost_start);
        if lost_end < bytes.len() {
            // A hole with data after it: one gap, whatever else it cost.
            let missing = (lost_end - lost_start) as u64;
            prop_assert_eq!(failures.len(), 1, "{:?}", problems);
            prop_assert!(matches!(&failures[0].kind, ProblemKind::Gap { missing: m, .. } if *m == missing), "{:?}", problems);
        } else if at_boundary {
            // The capture just ends early, between messages: nothing to see.
            prop_assert!(failures.is_empty(), "{:?}", problems);
        } else {
            // The capture ends inside a message (fewer than 4 bytes of it cannot be told from
            // other traffic, so those are "no MongoDB message", a failure on port 27017 too).
            prop_assert_eq!(failures.len(), 1, "{:?}", problems);
            let kind = &failures[0].kind;
            prop_assert!(matches!(kind, ProblemKind::Truncated { .. } | ProblemKind::Unframed { .. }), "{:?}", problems);
        }
    }
}
