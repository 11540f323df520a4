//! Decoding a 16 MB getMore reply of about 1 KB change events, against a memcpy of the same
//! bytes in the same run; and what one such event costs a consumer who wants it typed.
//! `scripts/bench-codec` runs this and prints GB/s, ratios and per-event times.
//!
//! "Decode" is what a change stream does with a reply: cut the frame out of the read buffer,
//! decode the OP_MSG, find `cursor.nextBatch`, and visit every event, reading its `_id` (the
//! resume token). No event is copied. The per-event group compares `ChangeEvent::to_typed`
//! with serde deserialization into the same `ChangeStreamEvent<Document>`.
#![allow(missing_docs)]

use std::hint::black_box;

use bson::{RawArrayBuf, RawBsonRef, RawDocumentBuf, rawdoc};
use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mongowire::protocol::change_stream::{ChangeEvent, ChangeStreamEvent};
use mongowire::wire::{Body, Message, MessageDecoder, MsgFlags, OpMsg, SharedDocument};

const TARGET_SIZE: usize = 16 * 1024 * 1024;

fn change_event(i: u32) -> RawDocumentBuf {
    rawdoc! {
        "_id": { "_data": format!("82{:016X}2B022C0100296E5A1004{:032X}", u64::from(i) << 20, i) },
        "operationType": "insert",
        "clusterTime": bson::Timestamp { time: 1_700_000_000, increment: i },
        "wallTime": bson::DateTime::from_millis(1_700_000_000_000),
        "fullDocument": { "_id": i64::from(i), "i": i64::from(i), "n": f64::from(i) * 1.5, "tags": ["a", "b"], "pad": "x".repeat(700) },
        "ns": { "db": "bench", "coll": "events" },
        "documentKey": { "_id": i64::from(i) },
    }
}

/// An encoded getMore reply whose batch fills about 16 MB, and its event count.
fn get_more_reply(flags: MsgFlags) -> (Vec<u8>, usize) {
    let mut batch = RawArrayBuf::new();
    let mut size = 0;
    let mut count = 0;
    while size < TARGET_SIZE - 2048 {
        let event = change_event(u32::try_from(count).unwrap());
        size += event.as_bytes().len() + 8;
        batch.push(event);
        count += 1;
    }
    let body = rawdoc! {
        "cursor": { "nextBatch": batch, "postBatchResumeToken": { "_data": "8265" }, "id": 7_i64, "ns": "bench.events" },
        "ok": 1.0,
    };
    let mut out = BytesMut::new();
    Message::new(1, 0, Body::Msg(OpMsg::new(body).with_flags(flags)))
        .encode(&mut out)
        .unwrap();
    (out.to_vec(), count)
}

/// Decodes one reply and visits each event's `_id`; returns the message (so that freeing it is
/// not timed) and how many events it saw.
fn decode_and_visit(buf: &mut BytesMut) -> (Message, usize) {
    let message = MessageDecoder::default().decode(buf).unwrap().unwrap();
    let Body::Msg(msg) = message.body() else { unreachable!() };
    let batch = msg
        .body()
        .get_document("cursor")
        .unwrap()
        .get_array("nextBatch")
        .unwrap();
    let mut seen = 0;
    for event in batch {
        let Ok(RawBsonRef::Document(event)) = event else {
            unreachable!()
        };
        let Some(RawBsonRef::Document(token)) = event.get("_id").unwrap() else {
            unreachable!()
        };
        black_box(token);
        seen += 1;
    }
    (message, seen)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("getmore_16mb");
    group.sample_size(30);
    for (name, flags) in [
        ("decode", MsgFlags::empty()),
        ("decode_with_checksum", MsgFlags::CHECKSUM_PRESENT),
    ] {
        let (wire, events) = get_more_reply(flags);
        assert_eq!(decode_and_visit(&mut BytesMut::from(&wire[..])).1, events);
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_function(name, |b| {
            b.iter_batched(
                || BytesMut::from(&wire[..]),
                |mut buf| (decode_and_visit(&mut buf), buf),
                BatchSize::PerIteration,
            )
        });
    }
    let (wire, _) = get_more_reply(MsgFlags::empty());
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("memcpy", |b| {
        let mut dst = vec![0u8; wire.len()];
        b.iter(|| {
            dst.copy_from_slice(black_box(&wire));
            black_box(&dst);
        })
    });
    group.finish();
}

/// One event as the benchmark backlog has it: an ObjectId `_id`, numbers, an array, ~900 bytes
/// of padding.
fn typed_event(c: &mut Criterion) {
    let raw = rawdoc! {
        "_id": { "_data": format!("82{:016X}2B022C0100296E5A1004{:032X}", 1_u64 << 40, 7) },
        "operationType": "insert",
        "clusterTime": bson::Timestamp { time: 1_700_000_000, increment: 7 },
        "wallTime": bson::DateTime::from_millis(1_700_000_000_000),
        "fullDocument": {
            "_id": bson::oid::ObjectId::from_bytes([7; 12]), "i": 7, "n": 10.5, "tags": ["a", "b"], "pad": "x".repeat(940),
        },
        "ns": { "db": "bench", "coll": "events" },
        "documentKey": { "_id": bson::oid::ObjectId::from_bytes([7; 12]) },
    };
    let event = ChangeEvent::new(SharedDocument::from_bytes(raw.into_bytes().into()).unwrap()).unwrap();
    let mut group = c.benchmark_group("event_1kb");
    group.bench_function("to_typed", |b| b.iter(|| black_box(&event).to_typed().unwrap()));
    group.bench_function("serde", |b| {
        b.iter(|| {
            black_box(&event)
                .deserialize::<ChangeStreamEvent<bson::Document>>()
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench, typed_event);
criterion_main!(benches);
