//! Writes the seed corpora of the fuzz targets (`fuzz/corpus/<target>/`): one message of every
//! opcode and shape the codec knows, built with the codec's own encoder, and small capture files
//! of every format and link type `mongowire decode` reads. Run it from `fuzz/` after changing
//! what a seed should cover: `cargo run --bin make_seeds`.

#[allow(dead_code)]
#[path = "../../../src/capture/test_packets.rs"]
mod packets;

use std::net::SocketAddr;
use std::path::Path;

use bson::{RawArrayBuf, rawdoc};
use bytes::BytesMut;
use mongowire::capture::{Direction, Fixture, FixtureEntry, FixtureEvent, FixtureHeader};
use mongowire::wire::{
    Body, Compressor, DocumentSequence, Message, MsgFlags, OpCommand, OpCommandReply, OpDelete, OpGetMore, OpInsert,
    OpKillCursors, OpMsg, OpQuery, OpReply, OpUpdate, compress,
};

fn change_event(i: i32) -> bson::RawDocumentBuf {
    rawdoc! {
        "_id": { "_data": format!("8265{i:08X}000000012B0229296E04") },
        "operationType": "insert",
        "clusterTime": bson::Timestamp { time: 1_700_000_000, increment: i as u32 },
        "ns": { "db": "db", "coll": "c" },
        "documentKey": { "_id": i },
        "fullDocument": { "_id": i, "pad": "x".repeat(64) },
    }
}

fn get_more_reply() -> Body {
    let batch: RawArrayBuf = (0..4).map(change_event).collect();
    Body::Msg(OpMsg::new(rawdoc! {
        "cursor": { "nextBatch": batch, "postBatchResumeToken": { "_data": "8265000000040000" }, "id": 42_i64, "ns": "db.c" },
        "ok": 1.0,
    }))
}

fn seeds() -> Vec<(&'static str, Body)> {
    let docs = [rawdoc! { "_id": 1 }, rawdoc! { "_id": 2 }];
    vec![
        ("msg_ping", Body::Msg(OpMsg::new(rawdoc! { "ping": 1, "$db": "admin" }))),
        (
            "msg_checksum",
            Body::Msg(OpMsg::new(rawdoc! { "hello": 1, "$db": "admin" }).with_flags(MsgFlags::CHECKSUM_PRESENT)),
        ),
        (
            "msg_more_to_come_exhaust",
            Body::Msg(
                OpMsg::new(rawdoc! { "hello": 1, "topologyVersion": { "counter": 0_i64 }, "$db": "admin" })
                    .with_flags(MsgFlags::MORE_TO_COME | MsgFlags::EXHAUST_ALLOWED),
            ),
        ),
        (
            "msg_insert_sequences",
            Body::Msg(
                OpMsg::new(rawdoc! { "insert": "c", "$db": "db" })
                    .with_sequence(DocumentSequence::new("documents", &docs).unwrap())
                    .with_sequence(DocumentSequence::new("empty", Vec::<bson::RawDocumentBuf>::new()).unwrap()),
            ),
        ),
        ("msg_get_more_reply", get_more_reply()),
        (
            "reply",
            Body::Reply(OpReply::new(8, 0, 0, [rawdoc! { "ismaster": true, "ok": 1.0 }])),
        ),
        (
            "query_hello",
            Body::Query(OpQuery::new("admin.$cmd", rawdoc! { "hello": 1 }).unwrap()),
        ),
        (
            "command",
            Body::Command(OpCommand::new("db", "insert", rawdoc! { "insert": "c" }, rawdoc! {}, &docs).unwrap()),
        ),
        (
            "command_reply",
            Body::CommandReply(OpCommandReply::new(rawdoc! { "ok": 1, "n": 2 }, rawdoc! {}, &docs)),
        ),
        ("insert", Body::Insert(OpInsert::new(0, "db.c", &docs).unwrap())),
        (
            "update",
            Body::Update(OpUpdate::new("db.c", 1, rawdoc! { "a": 1 }, rawdoc! { "$set": { "b": 1 } }).unwrap()),
        ),
        (
            "delete",
            Body::Delete(OpDelete::new("db.c", 0, rawdoc! { "a": 1 }).unwrap()),
        ),
        ("get_more", Body::GetMore(OpGetMore::new("db.c", 10, 42).unwrap())),
        ("kill_cursors", Body::KillCursors(OpKillCursors::new(&[42, 43]))),
    ]
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{name}.bin")), bytes).unwrap();
}

fn encoded(id: i32, response_to: i32, body: Body) -> Vec<u8> {
    let mut out = BytesMut::new();
    Message::new(id, response_to, body).encode(&mut out).unwrap();
    out.to_vec()
}

/// A connection as IP packets: handshake, a request in two segments sent out of order and
/// retransmitted, a compressed reply, a legacy query and reply in one segment, a segment the
/// capture lost (acknowledged by the peer), the message after it, FIN.
fn conversation(client: SocketAddr, server: SocketAddr) -> Vec<Vec<u8>> {
    use packets::{ACK, FIN, PSH, SYN, ip_tcp};
    let request = encoded(1, 0, Body::Msg(OpMsg::new(rawdoc! { "find": "c", "$db": "db" })));
    let mut reply = BytesMut::new();
    Message::new(2, 1, get_more_reply())
        .encode_compressed(Compressor::Snappy, None, &mut reply)
        .unwrap();
    let legacy = [
        encoded(
            3,
            0,
            Body::Query(OpQuery::new("admin.$cmd", rawdoc! { "isMaster": 1 }).unwrap()),
        ),
        encoded(4, 0, Body::Msg(OpMsg::new(rawdoc! { "ping": 1, "$db": "admin" }))),
    ]
    .concat();
    let lost = encoded(5, 0, Body::Msg(OpMsg::new(rawdoc! { "ping": 2, "$db": "admin" })));
    let after = encoded(6, 0, Body::Msg(OpMsg::new(rawdoc! { "ping": 3, "$db": "admin" })));
    let (c, s) = (0xffff_ff00u32, 7000u32); // the client's sequence numbers wrap
    let c1 = c.wrapping_add(request.len() as u32);
    let c2 = c1.wrapping_add(legacy.len() as u32);
    let c3 = c2.wrapping_add(lost.len() as u32);
    let s1 = s + reply.len() as u32;
    vec![
        ip_tcp(client, server, c.wrapping_sub(1), 0, SYN, b""),
        ip_tcp(server, client, s - 1, c, SYN | ACK, b""),
        ip_tcp(client, server, c.wrapping_add(30), s, PSH | ACK, &request[30..]),
        ip_tcp(client, server, c, s, PSH | ACK, &request[..30]),
        ip_tcp(client, server, c, s, PSH | ACK, &request[..30]),
        ip_tcp(server, client, s, c1, PSH | ACK, &reply),
        ip_tcp(client, server, c1, s1, PSH | ACK, &legacy),
        ip_tcp(client, server, c3, s1, PSH | ACK, &after),
        ip_tcp(server, client, s1, c3.wrapping_add(after.len() as u32), ACK, b""),
        ip_tcp(client, server, c3.wrapping_add(after.len() as u32), s1, FIN | ACK, b""),
    ]
}

/// Capture files of every format and link type, small enough to mutate quickly.
fn capture_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let v4: (SocketAddr, SocketAddr) = ("10.0.0.1:50000".parse().unwrap(), "10.0.0.2:27017".parse().unwrap());
    let v6: (SocketAddr, SocketAddr) = (
        "[2001:db8::1]:50000".parse().unwrap(),
        "[2001:db8::2]:3717".parse().unwrap(),
    );
    let frames = |link: u16, (client, server): (SocketAddr, SocketAddr)| -> Vec<packets::Record> {
        conversation(client, server)
            .iter()
            .enumerate()
            .map(|(i, ip)| (1_700_000_000, i as u32, packets::frame(link, ip)))
            .collect()
    };
    let vlan: Vec<packets::Record> = conversation(v4.0, v4.1)
        .iter()
        .map(|ip| (1, 2, packets::ethernet(&[100, 200], ip)))
        .collect();
    let mut seeds = vec![
        ("ethernet_ipv4", packets::pcap(1, false, false, &frames(1, v4))),
        ("ethernet_vlan_ipv4", packets::pcap(1, false, false, &vlan)),
        (
            "loopback_ipv6_big_endian_nanos",
            packets::pcap(0, true, true, &frames(0, v6)),
        ),
        ("raw_ipv4", packets::pcap(101, false, false, &frames(101, v4))),
        ("linux_cooked_ipv6", packets::pcap(113, false, false, &frames(113, v6))),
    ];
    let mut ng = packets::PcapNg::new(false);
    ng.interface(276, Some(9)).interface(1, None);
    for (i, (_, _, frame)) in frames(276, v6).iter().enumerate() {
        ng.packet(0, 1_700_000_000_000_000_000 + i as u64, frame);
    }
    ng.block(0x0bad, b"custom").section();
    ng.interface(1, Some(0x8a));
    for (_, _, frame) in frames(1, v4).iter().take(4) {
        ng.simple_packet(frame);
    }
    seeds.push(("pcapng_sll2_ipv6_then_ethernet", ng.bytes()));
    let ping = encoded(1, 0, Body::Msg(OpMsg::new(rawdoc! { "ping": 1, "$db": "admin" })));
    let pong = encoded(2, 1, Body::Msg(OpMsg::new(rawdoc! { "ok": 1.0 })));
    seeds.push((
        "mongoreplay",
        packets::playback(&[(ping.clone(), 39420, 27017, 0), (pong.clone(), 27017, 39420, 0)]),
    ));
    seeds.push(("fixture", fixture(ping, pong)));
    seeds
}

/// A fixture of one connection: open, ping, reply, a chunk that never framed, close.
fn fixture(ping: Vec<u8>, pong: Vec<u8>) -> Vec<u8> {
    let entry = |seq: u64, dir, event| FixtureEntry {
        seq,
        conn: 1,
        dir,
        time_us: seq * 100,
        event,
    };
    let fixture = Fixture {
        header: FixtureHeader {
            description: "a ping".into(),
            upstream: "127.0.0.1:27017".into(),
            recorded_at: "2026-11-25T12:00:00.000000Z".into(),
        },
        entries: vec![
            entry(0, Direction::ClientToServer, FixtureEvent::Open),
            entry(1, Direction::ClientToServer, FixtureEvent::Message(ping.into())),
            entry(2, Direction::ServerToClient, FixtureEvent::Message(pong.into())),
            entry(
                3,
                Direction::ClientToServer,
                FixtureEvent::Unframed(b"GET /".to_vec().into()),
            ),
            entry(4, Direction::ServerToClient, FixtureEvent::Close),
        ],
    };
    let mut out = Vec::new();
    fixture.write(&mut out).unwrap();
    out
}

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut stream = Vec::new();
    for (i, (name, body)) in seeds().into_iter().enumerate() {
        let message = Message::new(i as i32 + 1, 0, body);
        let mut plain = BytesMut::new();
        message.encode(&mut plain).unwrap();
        write(&corpus.join("round_trip"), name, &plain);
        write(&corpus.join("decode"), name, &plain);
        stream.extend_from_slice(&plain);
    }
    write(&corpus.join("decode"), "stream_of_every_opcode", &stream);
    for (name, bytes) in capture_seeds() {
        write(&corpus.join("pcap"), name, &bytes);
    }

    let reply = Message::new(9, 8, get_more_reply());
    let mut plain = BytesMut::new();
    reply.encode(&mut plain).unwrap();
    for compressor in [Compressor::Noop, Compressor::Snappy, Compressor::Zlib, Compressor::Zstd] {
        let mut wrapped = BytesMut::new();
        reply.encode_compressed(compressor, None, &mut wrapped).unwrap();
        let name = format!("compressed_{compressor}");
        write(&corpus.join("round_trip"), &name, &wrapped);
        write(&corpus.join("decode"), &name, &wrapped);

        let payload = &plain[16..];
        let mut seed = vec![compressor.id()];
        seed.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_le_bytes());
        compress(compressor, payload, None, &mut seed).unwrap();
        write(&corpus.join("decompress"), compressor.name(), &seed);
    }
}
