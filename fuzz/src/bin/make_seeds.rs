//! Writes the seed corpora of the fuzz targets (`fuzz/corpus/<target>/`): one message of every
//! opcode and shape the codec knows, built with the codec's own encoder. Run it from `fuzz/`
//! after changing what a seed should cover: `cargo run --bin make_seeds`.

use std::path::Path;

use bson::{RawArrayBuf, rawdoc};
use bytes::BytesMut;
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
