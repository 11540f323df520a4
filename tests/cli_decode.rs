//! `mongowire decode` end to end: JSON lines on stdout, offsets of bad messages on stderr, and
//! an exit status that says whether everything decoded.
#![allow(clippy::indexing_slicing)]

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
    let dir = std::env::temp_dir().join(format!("mongowire-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.bin", bytes.len()));
    std::fs::write(&path, bytes).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mongowire"))
        .arg("decode")
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
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
