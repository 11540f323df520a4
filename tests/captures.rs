//! Real bytes nobody on this project wrote: the hex dumps and vectors in `../shared/captures/`
//! (FerretDB's test dumps, a node driver vector). Each file is decoded and checked against what
//! its source says it holds. Skips with a notice when `../shared` is absent; never commit those
//! files (their licences differ).
#![allow(clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use bytes::Bytes;
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
