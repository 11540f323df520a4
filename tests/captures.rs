//! Real bytes nobody on this project wrote: the hex dumps, vectors, packet captures and
//! mongoreplay recordings in `../shared/captures/` (FerretDB's test dumps, a node driver vector,
//! pcaps from mongo-tools, deepflow and arkime, mongoreplay playback files). Each file is decoded
//! and checked against what its source (and `captures/README.md`) says it holds. Skips with a
//! notice when `../shared` is absent; never commit those files (their licences differ).
#![allow(clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;
use std::fs::File;

use base64::Engine;
use bytes::Bytes;
use mongowire::capture::{CaptureItem, CaptureOptions, CaptureReader, CapturedMessage, Format, Problem, Role};
use mongowire::wire::{Body, DEFAULT_MAX_MESSAGE_SIZE, DecodeErrorKind, Message, MsgFlags, OpCode, Section};

/// `$MONGOWIRE_SHARED/captures`, by default `../shared/captures` beside the checkout.
fn captures_dir() -> Option<PathBuf> {
    let shared = std::env::var_os("MONGOWIRE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let dir = shared.join("captures");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is absent", dir.display());
        None
    }
}

/// Parses `hexdump -C` output (`00000000  5c 00 ... |ascii|`) and Wireshark's "copy as hex
/// dump" (`0000   76 00 ...   ascii`, 16 bytes in a fixed 48-column field).
fn parse_hex_dump(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let offset_len = line.find(' ').unwrap_or(line.len());
        let after_offset = &line[offset_len..];
        // hexdump -C has 8-digit offsets and a |ascii| column; Wireshark 4 digits and a fixed
        // 48-column hex field (its ascii column may itself contain '|').
        let hex_area = match (offset_len, after_offset.find('|')) {
            (8, Some(bar)) => &after_offset[..bar],
            _ => {
                let start = offset_len + 3;
                &line[start.min(line.len())..(start + 48).min(line.len())]
            }
        };
        for token in hex_area.split_whitespace() {
            out.push(u8::from_str_radix(token, 16).unwrap_or_else(|_| panic!("bad hex {token:?} in {line:?}")));
        }
    }
    out
}

fn read_dump(dir: &Path, names: &[&str]) -> Bytes {
    let bytes: Vec<u8> = names
        .iter()
        .flat_map(|name| parse_hex_dump(&std::fs::read_to_string(dir.join("FerretDB-FerretDB").join(name)).unwrap()))
        .collect();
    Bytes::from(bytes)
}

fn decode(bytes: Bytes) -> Message {
    Message::decode(bytes, DEFAULT_MAX_MESSAGE_SIZE).unwrap()
}

fn crc_trailer_is_valid(raw: &[u8]) -> bool {
    let (covered, trailer) = raw.split_at(raw.len() - 4);
    crc32c::crc32c(covered).to_le_bytes() == trailer
}

fn msg(message: &Message) -> &mongowire::wire::OpMsg {
    match message.body() {
        Body::Msg(msg) => msg,
        other => panic!("expected OP_MSG, got {other:?}"),
    }
}

/// Every message that decodes re-encodes to the bytes it came from.
fn assert_reencodes(message: &Message, original: &[u8]) {
    let mut out = bytes::BytesMut::new();
    message.encode(&mut out).unwrap();
    assert_eq!(&out[..], original);
}

#[test]
fn ferretdb_legacy_handshake_is_op_query_and_op_reply() {
    let Some(dir) = captures_dir() else { return };
    for (request, reply, request_id) in [("handshake1", "handshake2", 1), ("handshake3", "handshake4", 2)] {
        let query_bytes = read_dump(
            &dir,
            &[&format!("{request}_header.hex"), &format!("{request}_body.hex")],
        );
        let query = decode(query_bytes.clone());
        assert_reencodes(&query, &query_bytes);
        assert_eq!(query.request_id(), request_id);
        let Body::Query(op_query) = query.body() else {
            panic!("{request}: not OP_QUERY")
        };
        assert_eq!(op_query.full_collection_name(), "admin.$cmd");
        assert_eq!(op_query.number_to_return, -1);
        let command = op_query.query();
        assert!(command.get_bool("ismaster").unwrap());
        let driver = command.get_document("client").unwrap().get_document("driver").unwrap();
        assert_eq!(driver.get_str("name").unwrap(), "nodejs");

        let reply_bytes = read_dump(&dir, &[&format!("{reply}_header.hex"), &format!("{reply}_body.hex")]);
        let answer = decode(reply_bytes.clone());
        assert_reencodes(&answer, &reply_bytes);
        assert_eq!(answer.response_to(), request_id, "{reply} answers {request}");
        let Body::Reply(op_reply) = answer.body() else {
            panic!("{reply}: not OP_REPLY")
        };
        assert_eq!(
            (op_reply.response_flags, op_reply.cursor_id, op_reply.number_returned()),
            (8, 0, 1)
        );
        let hello = op_reply.documents().next().unwrap();
        assert!(hello.get_bool("ismaster").unwrap());
        assert_eq!(hello.get_i32("maxMessageSizeBytes").unwrap(), 48_000_000);
        assert_eq!(hello.get_i32("maxWireVersion").unwrap(), 13, "MongoDB 5.0");
    }
}

#[test]
fn ferretdb_build_info_over_op_msg() {
    let Some(dir) = captures_dir() else { return };
    let request_bytes = read_dump(&dir, &["handshake5_header.hex", "handshake5_body.hex"]);
    let request = decode(request_bytes.clone());
    assert_reencodes(&request, &request_bytes);
    let body = msg(&request);
    assert_eq!(body.command_name(), Some("buildInfo"));
    assert_eq!(body.flags(), MsgFlags::empty());
    assert_eq!(body.body().get_str("$db").unwrap(), "admin");
    assert_eq!(
        body.body()
            .get_document("lsid")
            .unwrap()
            .get_binary("id")
            .unwrap()
            .bytes
            .len(),
        16
    );

    let reply_bytes = read_dump(&dir, &["handshake6_header.hex", "handshake6_body.hex"]);
    let reply = decode(reply_bytes.clone());
    assert_reencodes(&reply, &reply_bytes);
    assert_eq!(reply.response_to(), request.request_id());
    let body = msg(&reply).body();
    assert_eq!(body.get_str("version").unwrap(), "5.0.0");
    assert_eq!(body.get_f64("ok").unwrap(), 1.0);
}

#[test]
fn ferretdb_insert_sends_documents_as_a_kind_1_sequence() {
    let Some(dir) = captures_dir() else { return };
    let bytes = read_dump(&dir, &["import.hex"]);
    let message = decode(bytes.clone());
    assert_reencodes(&message, &bytes);
    let body = msg(&message);
    assert_eq!(body.command_name(), Some("insert"));
    assert_eq!(body.body().get_str("insert").unwrap(), "actor");
    let documents = body.sequence("documents").expect("a documents sequence");
    assert!(!documents.is_empty());
    assert_eq!(documents.documents().count(), documents.len());
    for document in documents.documents() {
        assert!(document.get("_id").unwrap().is_some());
    }
}

#[test]
fn ferretdb_sequence_before_body_with_valid_checksum() {
    let Some(dir) = captures_dir() else { return };
    for (file, command, identifier) in [
        ("multi_section_insert.hex", "insert", "documents"),
        ("multi_section_update.hex", "update", "updates"),
    ] {
        let bytes = read_dump(&dir, &[file]);
        assert!(
            crc_trailer_is_valid(&bytes),
            "{file}: the capture's own CRC-32C trailer"
        );
        let message = decode(bytes.clone());
        assert_reencodes(&message, &bytes);
        let body = msg(&message);
        assert!(body.flags().contains(MsgFlags::CHECKSUM_PRESENT));
        assert_eq!(body.command_name(), Some(command));
        let order: Vec<&str> = body
            .sections()
            .map(|s| match s {
                Section::Sequence(seq) => seq.identifier(),
                Section::Body(_) => "<body>",
            })
            .collect();
        assert_eq!(order, [identifier, "<body>"], "{file}: the sequence comes first");
        assert_eq!(body.sequence(identifier).unwrap().len(), 1);
    }
}

#[test]
fn ferretdb_dollar_dot_field_name_is_read() {
    let Some(dir) = captures_dir() else { return };
    let bytes = read_dump(&dir, &["dollar_dot.hex"]);
    let message = decode(bytes.clone());
    assert_reencodes(&message, &bytes);
    let body = msg(&message).body();
    let document = body.get_array("documents").unwrap().get_document(0).unwrap();
    assert!(document.get_bool("$.").unwrap());
}

#[test]
fn ferretdb_fuzz_message_is_rejected_precisely() {
    let Some(dir) = captures_dir() else { return };
    let bytes = read_dump(&dir, &["msg_fuzz1.hex"]);
    assert_eq!(bytes.len(), 48);
    let error = Message::decode(bytes, DEFAULT_MAX_MESSAGE_SIZE).unwrap_err();
    assert_eq!((error.field, error.offset), ("OP_MSG.flagBits", 16));
    assert_eq!(error.kind, DecodeErrorKind::ReservedFlagBits(0x3030));
}

#[test]
fn node_driver_ping_reply_vector() {
    let Some(dir) = captures_dir() else { return };
    let path = dir.join("code-embedded-vectors/node-mongodb-native_connection.test.ts_L147_validResponse.bin");
    let bytes = Bytes::from(std::fs::read(path).unwrap());
    assert_eq!(bytes.len(), 163);
    let message = decode(bytes.clone());
    assert_reencodes(&message, &bytes);
    assert_eq!(message.op_code(), OpCode::Msg);
    assert_eq!((message.request_id(), message.response_to()), (0x082a, 0x014b));
    let body = msg(&message).body();
    assert_eq!(body.get_f64("ok").unwrap(), 1.0);
    let cluster_time = body.get_document("$clusterTime").unwrap();
    assert_eq!(
        cluster_time.get_timestamp("clusterTime").unwrap(),
        body.get_timestamp("operationTime").unwrap()
    );
    let hash = cluster_time
        .get_document("signature")
        .unwrap()
        .get_binary("hash")
        .unwrap();
    assert_eq!(hash.bytes.len(), 20, "HMAC-SHA1");
}

/// Every message and problem of a capture file, read through `mongowire decode`'s reader.
fn read_capture(path: &Path, server_port: Option<u16>) -> (Format, Vec<CapturedMessage>, Vec<Problem>) {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = CaptureReader::new(std::io::BufReader::new(file), CaptureOptions { server_port }).unwrap();
    let (mut messages, mut problems) = (Vec::new(), Vec::new());
    while let Some(item) = reader.next_item().unwrap() {
        match item {
            CaptureItem::Message(message) => messages.push(*message),
            CaptureItem::Problem(problem) => problems.push(problem),
        }
    }
    (reader.format(), messages, problems)
}

/// Reads a capture that must decode without a single failure; notes are allowed.
fn decode_capture(dir: &Path, name: &str, server_port: Option<u16>) -> (Format, Vec<CapturedMessage>) {
    let (format, messages, problems) = read_capture(&dir.join(name), server_port);
    let failures: Vec<String> = problems.iter().filter(|p| p.failure).map(|p| p.to_string()).collect();
    assert!(failures.is_empty(), "{name}: {failures:#?}");
    (format, messages)
}

/// Messages per (opcode after unwrapping, compressor name).
fn opcode_counts(messages: &[CapturedMessage]) -> BTreeMap<(i32, &'static str), usize> {
    let mut counts = BTreeMap::new();
    for m in messages {
        let compressor = m.message.compression().map_or("none", |c| c.compressor.name());
        *counts.entry((m.message.op_code().code(), compressor)).or_insert(0) += 1;
    }
    counts
}

/// Every request is answered on the same connection, and replies come from the other side.
fn assert_replies_answer_requests(messages: &[CapturedMessage]) {
    for reply in messages.iter().filter(|m| m.sender == Some(Role::Server)) {
        let request = messages
            .iter()
            .find(|m| m.message.request_id() == reply.message.response_to() && m.from == reply.to)
            .unwrap_or_else(|| panic!("no request {} from {:?}", reply.message.response_to(), reply.to));
        assert_eq!(request.sender, Some(Role::Client));
        assert_eq!(request.to, reply.from);
        assert!(request.timestamp <= reply.timestamp);
    }
}

#[test]
fn deepflow_shell_session_with_checksummed_op_msg() {
    let Some(dir) = captures_dir() else { return };
    let (format, messages) = decode_capture(&dir, "deepflowio-deepflow/mongo.pcap", None);
    assert_eq!(format, Format::Pcap);
    assert_eq!(
        opcode_counts(&messages),
        BTreeMap::from([((1, "none"), 1), ((2004, "none"), 1), ((2013, "none"), 28)])
    );
    assert_eq!(messages[0].message.op_code(), OpCode::Query);
    assert_eq!(messages[1].message.op_code(), OpCode::Reply);
    for m in messages.iter().filter(|m| m.message.op_code() == OpCode::Msg) {
        let body = msg(&m.message);
        assert!(body.flags().contains(MsgFlags::CHECKSUM_PRESENT));
        // The decoder verified it already; check the trailer independently too.
        assert!(crc_trailer_is_valid(m.message.raw()));
    }
    assert!(
        messages
            .iter()
            .all(|m| m.to.as_deref().is_some_and(|to| to.ends_with(":27017"))
                || m.from.as_deref().is_some_and(|from| from.ends_with(":27017")))
    );
    assert_eq!(messages[0].from.as_deref(), Some("10.50.1.138:43250"));
    assert_eq!(messages[0].packet, Some(4), "tshark frame 4");
    assert_replies_answer_requests(&messages);
}

#[test]
fn deepflow_find_on_port_3717() {
    let Some(dir) = captures_dir() else { return };
    for server_port in [None, Some(3717)] {
        let (_, messages) = decode_capture(&dir, "deepflowio-deepflow/mongo-msg.pcap", server_port);
        assert_eq!(messages.len(), 2);
        let (find, reply) = (&messages[0], &messages[1]);
        assert_eq!(msg(&find.message).command_name(), Some("find"));
        assert_eq!(
            (find.sender, find.to.as_deref()),
            (Some(Role::Client), Some("10.152.88.231:3717"))
        );
        assert!(msg(&find.message).body().get_document("lsid").is_ok());
        assert!(msg(&find.message).body().get_document("$clusterTime").is_ok());
        assert_eq!(reply.message.response_to(), find.message.request_id());
        assert_eq!(reply.sender, Some(Role::Server));
        let cursor = msg(&reply.message).body().get_document("cursor").unwrap();
        assert!(cursor.get_array("firstBatch").is_ok());
    }
}

#[test]
fn mongo_tools_compressed_session() {
    let Some(dir) = captures_dir() else { return };
    let (_, messages) = decode_capture(&dir, "mongodb-mongo-tools/compressed.pcap", None);
    assert_eq!(messages.len(), 12);
    assert_eq!(messages[0].message.op_code(), OpCode::Query);
    assert!(messages[0].message.compression().is_none());
    assert!(messages[1..].iter().all(|m| m.message.compression().is_some()));
    assert_eq!(
        opcode_counts(&messages),
        BTreeMap::from([
            ((1, "snappy"), 1),
            ((2004, "none"), 1),
            ((2010, "snappy"), 5),
            ((2011, "snappy"), 5)
        ])
    );
    assert_eq!(
        messages[0].timestamp.unwrap().to_string(),
        "2016-08-11T18:12:09.422603Z",
        "frame 4's time"
    );
}

#[test]
fn mongo_tools_op_command_over_loopback_on_port_20000() {
    let Some(dir) = captures_dir() else { return };
    // No SYN and no default port: the server is inferred from the replies, or named.
    for server_port in [None, Some(20000)] {
        let (_, messages) = decode_capture(&dir, "mongodb-mongo-tools/op_command_2inserts.pcap", server_port);
        assert_eq!(
            opcode_counts(&messages),
            BTreeMap::from([((2010, "none"), 12), ((2011, "none"), 12)])
        );
        for m in &messages {
            let from_server = m.from.as_deref() == Some("127.0.0.1:20000");
            assert_eq!(m.sender, Some(if from_server { Role::Server } else { Role::Client }));
            assert_eq!(from_server, m.message.op_code() == OpCode::CommandReply);
        }
        assert_replies_answer_requests(&messages);
        // The largest reply: 16,259 bytes (a find's batch).
        assert_eq!(messages.iter().map(|m| m.message.raw().len()).max(), Some(16_259));
    }
}

#[test]
fn mongo_tools_mongoreplay_test_is_a_pcap() {
    let Some(dir) = captures_dir() else { return };
    let (format, messages) = decode_capture(&dir, "mongodb-mongo-tools/mongoreplay_test.out", None);
    assert_eq!(format, Format::Pcap);
    assert_eq!(
        opcode_counts(&messages),
        BTreeMap::from([((1, "none"), 11), ((2004, "none"), 11)])
    );
    assert_replies_answer_requests(&messages);
}

#[test]
fn arkime_queries_behind_vlan_tags_once_each() {
    let Some(dir) = captures_dir() else { return };
    let (_, messages) = decode_capture(&dir, "arkime-arkime/mongo.pcap", None);
    // Every packet was captured twice, on VLANs 300 and 50 (or 100); each query comes out once,
    // including the one to port 30000.
    assert_eq!(opcode_counts(&messages), BTreeMap::from([((2004, "none"), 5)]));
    assert!(messages.iter().all(|m| m.sender == Some(Role::Client)));
    assert_eq!(messages[4].to.as_deref(), Some("10.10.10.19:30000"));
    let packets: Vec<u64> = messages.iter().filter_map(|m| m.packet).collect();
    assert_eq!(packets, [6, 12, 16, 20, 27]);
}

#[test]
fn mongoreplay_playback_of_compressed_pcap_matches_the_pcap() {
    let Some(dir) = captures_dir() else { return };
    let (format, replayed) = decode_capture(&dir, "mongodb-labs-mongoreplay/pcap_test_run.playback", None);
    assert_eq!(format, Format::MongoReplay);
    let (_, captured) = decode_capture(&dir, "mongodb-mongo-tools/compressed.pcap", None);
    assert_eq!(replayed.len(), captured.len());
    for (r, c) in replayed.iter().zip(&captured) {
        assert_eq!(r.message, c.message);
        assert_eq!(r.sender, c.sender);
        // mongoreplay records ports only; the pcap has the addresses too.
        let port = |e: &Option<String>| e.as_deref().and_then(|e| e.rsplit(':').next()).map(str::to_owned);
        assert_eq!((port(&r.from), port(&r.to)), (port(&c.from), port(&c.to)));
        let (rt, ct) = (r.timestamp.unwrap(), c.timestamp.unwrap());
        assert_eq!((rt.seconds(), rt.nanos()), (ct.seconds(), ct.nanos()));
    }
}

#[test]
fn mongoreplay_write_error_recording_matches_its_json() {
    let Some(dir) = captures_dir() else { return };
    let (format, messages) = decode_capture(&dir, "hudl-mongoreplay/writeErrorReplication.bson", None);
    assert_eq!(format, Format::MongoReplay);
    assert_eq!(
        opcode_counts(&messages),
        BTreeMap::from([((1, "none"), 9), ((2004, "none"), 9)])
    );
    // The .json file is the same recording as Extended JSON, one record per line.
    let json = std::fs::read_to_string(dir.join("hudl-mongoreplay/writeErrorReplication.json")).unwrap();
    let bodies: Vec<Vec<u8>> = json
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|record| record.get("rawop").is_some() && record.get("eof").is_none())
        .map(|record| {
            let body = record["rawop"]["body"]["$binary"]["base64"]
                .as_str()
                .unwrap()
                .to_owned();
            base64::engine::general_purpose::STANDARD.decode(body).unwrap()
        })
        .collect();
    assert_eq!(bodies.len(), messages.len());
    for (body, m) in bodies.iter().zip(&messages) {
        assert_eq!(&m.message.raw()[..], &body[..]);
    }
    let inserts = messages
        .iter()
        .filter(|m| matches!(m.message.body(), Body::Query(q) if q.query().get_str("insert").is_ok()))
        .count();
    assert!(inserts > 0, "the failing inserts");
    assert_eq!(
        messages[0].timestamp.unwrap().to_string(),
        "2023-09-12T12:11:26.763155079Z"
    );
    assert_eq!(
        (messages[0].from.as_deref(), messages[0].to.as_deref()),
        (Some("57603"), Some("27018"))
    );
    assert_replies_answer_requests(&messages);
}

/// A new file in the captures folder must get a test of its own, not be ignored silently.
#[test]
fn every_capture_and_recording_is_covered() {
    let Some(dir) = captures_dir() else { return };
    let covered = [
        "arkime-arkime/mongo.pcap",
        "deepflowio-deepflow/mongo-msg.pcap",
        "deepflowio-deepflow/mongo.pcap",
        "hudl-mongoreplay/AaronDocDBTest",
        "hudl-mongoreplay/writeErrorReplication.bson",
        "hudl-mongoreplay/writeErrorReplication.json",
        "mongodb-labs-mongoreplay/pcap_test_run.playback",
        "mongodb-mongo-tools/compressed.pcap",
        "mongodb-mongo-tools/mongoreplay_test.out",
        "mongodb-mongo-tools/op_command_2inserts.pcap",
    ];
    for folder in [
        "arkime-arkime",
        "deepflowio-deepflow",
        "hudl-mongoreplay",
        "mongodb-labs-mongoreplay",
        "mongodb-mongo-tools",
    ] {
        for entry in std::fs::read_dir(dir.join(folder)).unwrap() {
            let name = format!("{folder}/{}", entry.unwrap().file_name().into_string().unwrap());
            assert!(covered.contains(&name.as_str()), "{name} has no test");
        }
    }
    // AaronDocDBTest is mongoreplay's JSON report of a replay, not a recording: it is read as
    // raw wire messages and rejected at its first bytes, as any text would be.
    let (format, messages, problems) = read_capture(&dir.join("hudl-mongoreplay/AaronDocDBTest"), None);
    assert_eq!((format, messages.len(), problems.len()), (Format::RawMessages, 0, 1));
}

/// A new file in the captures folder must get a test of its own, not be ignored silently.
#[test]
fn every_dump_and_vector_is_covered() {
    let Some(dir) = captures_dir() else { return };
    let covered = [
        "handshake1",
        "handshake2",
        "handshake3",
        "handshake4",
        "handshake5",
        "handshake6",
        "import",
        "multi_section_insert",
        "multi_section_update",
        "dollar_dot",
        "msg_fuzz1",
    ];
    for entry in std::fs::read_dir(dir.join("FerretDB-FerretDB")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let stem = name
            .trim_end_matches(".hex")
            .trim_end_matches("_header")
            .trim_end_matches("_body");
        assert!(covered.contains(&stem), "{name} has no test");
    }
    let vectors: Vec<_> = std::fs::read_dir(dir.join("code-embedded-vectors")).unwrap().collect();
    assert_eq!(vectors.len(), 1, "a new vector needs a test");
}
