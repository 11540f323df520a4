//! `mongowire decode` end to end: JSON lines on stdout, offsets of bad messages on stderr, and
//! an exit status that says whether everything decoded. Raw message files, and pcap, pcapng and
//! mongoreplay files written here with the project's own encoder.
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

#[allow(dead_code)]
#[path = "../src/capture/test_packets.rs"]
mod packets;

use std::net::SocketAddr;
use std::process::Command;

use bson::rawdoc;
use bytes::BytesMut;
use mongowire::wire::{Body, Compressor, Message, OpMsg};

fn encoded(id: i32, compressor: Option<Compressor>) -> Vec<u8> {
    let mut out = BytesMut::new();
    let message = Message::new(id, 0, Body::Msg(OpMsg::new(rawdoc! { "find": "c", "$db": "d" })));
    match compressor {
        Some(c) => message.encode_compressed(c, None, &mut out).unwrap(),
        None => message.encode(&mut out).unwrap(),
    }
    out.to_vec()
}

fn decode_file(bytes: &[u8]) -> (Option<i32>, String, String) {
    decode_with(bytes, &[])
}

/// Runs `mongowire decode [args] FILE` on a temporary file holding `bytes`; stderr comes back
/// with the file's path replaced by `FILE`.
fn decode_with(bytes: &[u8], args: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capture");
    std::fs::write(&path, bytes).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mongowire"))
        .arg("decode")
        .args(args)
        .arg(&path)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr)
            .unwrap()
            .replace(path.to_str().unwrap(), "FILE"),
    )
}

fn lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn message(id: i32, response_to: i32, command: bson::RawDocumentBuf) -> Vec<u8> {
    let mut out = BytesMut::new();
    Message::new(id, response_to, Body::Msg(OpMsg::new(command)))
        .encode(&mut out)
        .unwrap();
    out.to_vec()
}

/// A conversation as IP packets: handshake; a find sent in two segments; its reply; then a
/// message with a reserved flag bit and a good one in one segment; and an unanswered ping.
fn conversation(client: SocketAddr, server: SocketAddr) -> Vec<Vec<u8>> {
    use packets::{ACK, PSH, SYN, ip_tcp};
    let find = message(1, 0, rawdoc! { "find": "orders", "$db": "shop" });
    let reply = message(
        7,
        1,
        rawdoc! { "cursor": { "firstBatch": [{ "_id": 1 }], "id": 0_i64, "ns": "shop.orders" }, "ok": 1.0 },
    );
    let mut bad = message(2, 0, rawdoc! { "ping": 1, "$db": "admin" });
    bad[16] = 4;
    let good = message(3, 0, rawdoc! { "ping": 1, "$db": "admin" });
    let both = [bad, good].concat();
    let (c, s) = (101u32, 901u32);
    vec![
        ip_tcp(client, server, c - 1, 0, SYN, b""),
        ip_tcp(server, client, s - 1, c, SYN | ACK, b""),
        ip_tcp(client, server, c, s, ACK, b""),
        ip_tcp(client, server, c, s, PSH | ACK, &find[..20]),
        ip_tcp(client, server, c + 20, s, PSH | ACK, &find[20..]),
        ip_tcp(server, client, s, c + find.len() as u32, PSH | ACK, &reply),
        ip_tcp(
            client,
            server,
            c + find.len() as u32,
            s + reply.len() as u32,
            PSH | ACK,
            &both,
        ),
    ]
}

#[test]
fn a_pcap_prints_messages_with_endpoints_and_reports_a_bad_one() {
    let (client, server): (SocketAddr, SocketAddr) =
        ("10.0.0.1:50000".parse().unwrap(), "10.0.0.2:27017".parse().unwrap());
    let records: Vec<packets::Record> = conversation(client, server)
        .iter()
        .enumerate()
        .map(|(i, ip)| (1_700_000_000, i as u32 * 1000, packets::ethernet(&[42], ip)))
        .collect();
    let (status, stdout, stderr) = decode_with(&packets::pcap(1, false, false, &records), &[]);
    assert_eq!(status, Some(1), "{stderr}");
    let lines = lines(&stdout);
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[0]["doc"]["find"], "orders");
    assert_eq!(lines[0]["from"], "10.0.0.1:50000");
    assert_eq!(lines[0]["to"], "10.0.0.2:27017");
    assert_eq!(lines[0]["sender"], "client");
    assert_eq!(lines[0]["packet"], 5, "the packet that completed it");
    assert_eq!(lines[0]["ts"], "2023-11-14T22:13:20.004000Z");
    assert_eq!(lines[1]["response_to"], 1);
    assert_eq!(
        (&lines[1]["from"], &lines[1]["sender"]),
        (&"10.0.0.2:27017".into(), &"server".into())
    );
    assert_eq!(lines[1]["doc"]["cursor"]["firstBatch"][0]["_id"], 1);
    assert_eq!(lines[2]["request_id"], 3, "decoding went on after the bad message");
    let find_length = lines[0]["length"].as_u64().unwrap();
    assert_eq!(
        stderr,
        format!(
            "FILE: message at byte {find_length} of stream 10.0.0.1:50000 -> 10.0.0.2:27017 (packet 7): reserved flag \
             bits 0x0004 are set (field OP_MSG.flagBits, byte 16); skipped\n"
        )
    );
    assert!(
        stdout
            .lines()
            .next()
            .unwrap()
            .starts_with(r#"{"opcode":2013,"op":"OP_MSG","compressor":null,"request_id":1,"response_to":0,"length":"#)
    );
}

#[test]
fn a_pcapng_over_linux_cooked_ipv6() {
    let (client, server): (SocketAddr, SocketAddr) = (
        "[2001:db8::1]:50000".parse().unwrap(),
        "[2001:db8::2]:27017".parse().unwrap(),
    );
    let mut file = packets::PcapNg::new(true);
    file.interface(276, Some(9));
    for (i, ip) in conversation(client, server).iter().enumerate().take(6) {
        file.packet(0, 1_700_000_000_123_456_789 + i as u64, &packets::frame(276, ip));
    }
    let (status, stdout, stderr) = decode_with(&file.bytes(), &[]);
    assert_eq!(status, Some(0), "{stderr}");
    assert_eq!(stderr, "");
    let lines = lines(&stdout);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["from"], "[2001:db8::1]:50000");
    assert_eq!(lines[1]["from"], "[2001:db8::2]:27017");
    assert_eq!(lines[1]["ts"], "2023-11-14T22:13:20.123456794Z");
}

#[test]
fn server_port_names_the_server() {
    use packets::{ACK, PSH, ip_tcp};
    // One direction of a connection joined late: nothing says which end is the server.
    let (a, b): (SocketAddr, SocketAddr) = ("10.0.0.1:40000".parse().unwrap(), "10.0.0.2:20000".parse().unwrap());
    let ping = message(5, 0, rawdoc! { "ping": 1 });
    let records = [(0, 0, packets::frame(101, &ip_tcp(a, b, 7, 9, PSH | ACK, &ping)))];
    let file = packets::pcap(101, true, false, &records);
    let sender = |args: &[&str]| lines(&decode_with(&file, args).1)[0]["sender"].clone();
    assert_eq!(sender(&[]), "client", "a request comes from the client");
    assert_eq!(sender(&["--server-port", "40000"]), "server");
    assert_eq!(sender(&["--server-port", "20000"]), "client");
}

#[test]
fn a_truncated_capture_keeps_what_came_before() {
    let (client, server): (SocketAddr, SocketAddr) =
        ("10.0.0.1:50000".parse().unwrap(), "10.0.0.2:27017".parse().unwrap());
    let records: Vec<packets::Record> = conversation(client, server)
        .iter()
        .map(|ip| (1, 0, packets::frame(0, ip)))
        .collect();
    let file = packets::pcap(0, false, true, &records);
    let (status, stdout, stderr) = decode_with(&file[..file.len() - 10], &[]);
    assert_eq!(status, Some(1));
    assert_eq!(lines(&stdout).len(), 2, "the find and its reply");
    assert!(stderr.contains(": packet 7: record cut short"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn a_mongoreplay_recording() {
    let request = message(1, 0, rawdoc! { "ping": 1 });
    let reply = message(2, 1, rawdoc! { "ok": 1.0 });
    let file = packets::playback(&[(request, 39420, 27017, 0), (reply, 27017, 39420, 0)]);
    let (status, stdout, stderr) = decode_with(&file, &[]);
    assert_eq!(status, Some(0), "{stderr}");
    let lines = lines(&stdout);
    assert_eq!(lines.len(), 2);
    assert_eq!((&lines[0]["from"], &lines[0]["to"]), (&"39420".into(), &"27017".into()));
    assert_eq!(lines[0]["ts"], "2016-08-11T18:12:09.422603000Z");
    assert_eq!(lines[1]["sender"], "server");
}

#[test]
fn every_file_is_read_and_the_worst_status_wins() {
    let good = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(good.path(), encoded(1, None)).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mongowire"))
        .arg("decode")
        .arg("/nonexistent/x.pcap")
        .arg(good.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().count(),
        1,
        "the readable file is still decoded"
    );
}

#[test]
fn prints_one_json_line_per_message_in_order() {
    let bytes = [encoded(1, None), encoded(2, Some(Compressor::Snappy))].concat();
    let (status, stdout, stderr) = decode_file(&bytes);
    assert_eq!(status, Some(0), "{stderr}");
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["request_id"], 1);
    assert_eq!(lines[1]["compressor"], "snappy");
    assert_eq!(lines[1]["opcode"], 2013);
    assert_eq!(lines[1]["doc"]["find"], "c");
    assert!(
        stdout.lines().next().unwrap().starts_with(r#"{"opcode":2013,"#),
        "keys keep their order"
    );
}

#[test]
fn reports_a_bad_message_with_its_offset_and_carries_on() {
    let mut bad = encoded(1, None);
    bad[16] = 4; // reserved OP_MSG flag bit 2
    let good = encoded(2, None);
    let (status, stdout, stderr) = decode_file(&[bad.clone(), good].concat());
    assert_eq!(status, Some(1));
    assert_eq!(
        stdout.lines().count(),
        1,
        "the good message after the bad one is still printed"
    );
    assert!(
        stderr
            .contains("message at byte 0: reserved flag bits 0x0004 are set (field OP_MSG.flagBits, byte 16); skipped"),
        "{stderr}"
    );
}

#[test]
fn garbage_is_a_clear_error_not_a_panic() {
    let (status, stdout, stderr) = decode_file(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n");
    assert_eq!(status, Some(1));
    assert!(stdout.is_empty());
    assert!(stderr.contains("exceeds the 48000000-byte maximum"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn a_missing_file_exits_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_mongowire"))
        .args(["decode", "/nonexistent/x.bin"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/x.bin"));
}

/// A fixture written with the project's own writer, one connection: open, a command, its
/// reply, a chunk that never framed, a close.
fn fixture_text() -> String {
    use mongowire::capture::{Direction, Fixture, FixtureEntry, FixtureEvent, FixtureHeader};
    let entry = |seq: u64, dir, event| FixtureEntry {
        seq,
        conn: 3,
        dir,
        time_us: seq * 250_000,
        event,
    };
    let fixture = Fixture {
        header: FixtureHeader {
            description: "a find".into(),
            upstream: "127.0.0.1:27100".into(),
            recorded_at: "2026-11-25T23:59:59.500000Z".into(),
        },
        entries: vec![
            entry(0, Direction::ClientToServer, FixtureEvent::Open),
            entry(
                1,
                Direction::ClientToServer,
                FixtureEvent::Message(encoded(7, None).into()),
            ),
            entry(
                2,
                Direction::ServerToClient,
                FixtureEvent::Message(message(8, 7, rawdoc! { "ok": 1.0 }).into()),
            ),
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
    String::from_utf8(out).unwrap()
}

#[test]
fn a_fixture_prints_its_messages_with_sender_connection_and_time() {
    let (code, stdout, stderr) = decode_file(fixture_text().as_bytes());
    assert_eq!(code, Some(0), "{stderr}");
    let lines = lines(&stdout);
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0]["sender"], "client");
    assert_eq!(lines[0]["conn"], 3);
    assert_eq!(lines[0]["ts"], "2026-11-25T23:59:59.750000Z");
    assert_eq!(lines[0]["doc"]["find"], "c");
    assert_eq!(lines[1]["sender"], "server");
    assert_eq!(lines[1]["response_to"], 7);
    assert_eq!(lines[1]["ts"], "2026-11-26T00:00:00.000000Z");
    assert_eq!(stderr, "FILE: note: 5 bytes from line 5 frame no message; skipped\n");
}

#[test]
fn bad_fixture_lines_are_reported_by_number_and_the_rest_is_read() {
    let good = fixture_text();
    let mut text: Vec<String> = good.lines().map(str::to_owned).collect();
    text[2] = text[2].replacen("\"bytes\":\"", "\"bytes\":\"AAAA", 1);
    text.insert(3, "{\"seq\":9, \"conn\": 1".into());
    let (code, stdout, stderr) = decode_file(text.join("\n").as_bytes());
    assert_eq!(code, Some(1));
    assert_eq!(
        lines(&stdout).len(),
        1,
        "the reply after the bad lines is still printed"
    );
    let errors: Vec<&str> = stderr.lines().collect();
    assert!(errors[0].starts_with("FILE: message at line 3: "), "{stderr}");
    assert!(errors[1].starts_with("FILE: at line 4: not JSON"), "{stderr}");

    let (code, stdout, stderr) = decode_file(b"{\"fixture\":\"mongowire\",\"version\":2}\n");
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    assert_eq!(stderr, "FILE: at line 1: unsupported version Some(2); this reads 1\n");
}

#[test]
fn every_recorded_fixture_decodes_cleanly() {
    let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/protocol-fixtures");
    let mut checked = 0;
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let messages = text.lines().filter(|l| l.contains("\"event\":\"message\"")).count();
        let output = Command::new(env!("CARGO_BIN_EXE_mongowire"))
            .arg("decode")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert_eq!(lines(&stdout).len(), messages, "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} fixtures found");
}
