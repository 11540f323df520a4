//! The protocol-fixture format: one recorded session per file, made to be reviewed.
//!
//! A fixture is JSON Lines. The first line is a header; every other line is one event of one
//! connection, in the order the recorder saw them:
//!
//! ```text
//! {"fixture":"mongowire","version":1,"description":"...","upstream":"127.0.0.1:27100",...}
//! {"seq":0,"conn":1,"dir":"c2s","t_us":0,"event":"open"}
//! {"seq":1,"conn":1,"dir":"c2s","t_us":412,"event":"message","op":"OP_MSG","request_id":7,...,"doc":{...},"bytes":"..."}
//! {"seq":9,"conn":1,"dir":"s2c","t_us":9120,"event":"close"}
//! ```
//!
//! Why this shape: a reviewer reads a diff, and JSON Lines makes each message one line, so a
//! changed message is one changed line; the `doc` view (relaxed Extended JSON, field order kept)
//! is what a person reads, and `bytes` (base64 of the exact wire message) is what the tests
//! trust, so a re-encode can be compared byte for byte and the view can be abbreviated for huge
//! messages without losing anything. Connection opens and closes are events too, because a
//! replay must close a connection where the server did (a `closeConnection` fail point).

use std::io::{BufRead, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::capture::message_json;
use crate::wire::{DEFAULT_MAX_MESSAGE_SIZE, DecodeError, Message};

/// The `fixture` value of the header line.
const FORMAT: &str = "mongowire";
/// The version of the format this code writes and reads.
pub const FORMAT_VERSION: u64 = 1;
/// Messages larger than this get an abbreviated `doc` view (long arrays cut to a few elements);
/// their `bytes` are always complete.
const FULL_VIEW_LIMIT: usize = 64 * 1024;
/// How many elements of a long array an abbreviated view keeps.
const VIEW_ARRAY_ELEMENTS: usize = 3;

/// Who sent a message, or who opened or closed the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The client.
    ClientToServer,
    /// The server.
    ServerToClient,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::ClientToServer => "c2s",
            Direction::ServerToClient => "s2c",
        }
    }

    fn parse(text: &str) -> Option<Direction> {
        match text {
            "c2s" => Some(Direction::ClientToServer),
            "s2c" => Some(Direction::ServerToClient),
            _ => None,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixtureEvent {
    /// The connection was opened (always by the client).
    Open,
    /// A whole message, as it travelled.
    Message(Bytes),
    /// Bytes that do not frame as MongoDB messages (the proxy forwarded them unchanged).
    Unframed(Bytes),
    /// The side in `dir` closed the connection.
    Close,
}

/// One line of a fixture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureEntry {
    /// Position in the file, from 0.
    pub seq: u64,
    /// The connection, numbered by the recorder from 1 in the order they opened.
    pub conn: u32,
    /// Who sent it.
    pub dir: Direction,
    /// Microseconds since the recording started.
    pub time_us: u64,
    /// What happened.
    pub event: FixtureEvent,
}

/// What a fixture says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FixtureHeader {
    /// What the recorded session does, for people.
    pub description: String,
    /// The server the recorder forwarded to.
    pub upstream: String,
    /// When the recording started (RFC 3339).
    pub recorded_at: String,
}

/// Why a fixture could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixtureError {
    /// Reading the file failed.
    #[error("reading the fixture: {0}")]
    Io(#[from] std::io::Error),
    /// A line is not what the format says, and why.
    #[error("line {line}: {problem}")]
    Format {
        /// The line number, from 1.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// A message's bytes do not decode.
    #[error("line {line}: message does not decode: {error}")]
    Decode {
        /// The line number, from 1.
        line: usize,
        /// The codec's error.
        error: DecodeError,
    },
}

/// Writes the header line.
pub fn write_header(out: &mut impl Write, header: &FixtureHeader) -> std::io::Result<()> {
    let line = json!({
        "fixture": FORMAT,
        "version": FORMAT_VERSION,
        "description": header.description,
        "upstream": header.upstream,
        "recorded_at": header.recorded_at,
    });
    writeln!(out, "{line}")
}

/// Writes one entry as a line: the event, a readable view of a message, and its exact bytes.
pub fn write_entry(out: &mut impl Write, entry: &FixtureEntry) -> std::io::Result<()> {
    let mut line = Map::new();
    line.insert("seq".into(), json!(entry.seq));
    line.insert("conn".into(), json!(entry.conn));
    line.insert("dir".into(), json!(entry.dir.as_str()));
    line.insert("t_us".into(), json!(entry.time_us));
    match &entry.event {
        FixtureEvent::Open => {
            line.insert("event".into(), json!("open"));
        }
        FixtureEvent::Close => {
            line.insert("event".into(), json!("close"));
        }
        FixtureEvent::Unframed(bytes) => {
            line.insert("event".into(), json!("unframed"));
            line.insert("bytes".into(), json!(STANDARD.encode(bytes)));
        }
        FixtureEvent::Message(bytes) => {
            line.insert("event".into(), json!("message"));
            match Message::decode(bytes.clone(), DEFAULT_MAX_MESSAGE_SIZE) {
                Ok(message) => {
                    // Decompressed size: a compressed 15 MB batch is small on the wire, not to read.
                    let large = message.raw().len() > FULL_VIEW_LIMIT;
                    if let Value::Object(view) = message_json(&message) {
                        for (key, value) in view {
                            let big = key == "doc" && large;
                            line.insert(key, if big { abbreviate(value) } else { value });
                        }
                    }
                }
                Err(error) => {
                    line.insert("decode_error".into(), json!(error.to_string()));
                }
            }
            line.insert("bytes".into(), json!(STANDARD.encode(bytes)));
        }
    }
    writeln!(out, "{}", Value::Object(line))
}

/// Cuts long arrays to their first few elements, noting how many were left out.
fn abbreviate(value: Value) -> Value {
    match value {
        Value::Array(items) if items.len() > VIEW_ARRAY_ELEMENTS => {
            let left_out = items.len() - VIEW_ARRAY_ELEMENTS;
            let mut kept: Vec<Value> = items.into_iter().take(VIEW_ARRAY_ELEMENTS).map(abbreviate).collect();
            kept.push(json!({ "$abbreviated": format!("{left_out} more elements; see bytes") }));
            Value::Array(kept)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(abbreviate).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, abbreviate(v))).collect()),
        Value::String(text) if text.len() > 256 => {
            let cut: String = text.chars().take(64).collect();
            Value::String(format!("{cut}... ({} bytes; see bytes)", text.len()))
        }
        other => other,
    }
}

/// A fixture read into memory: its header and entries, messages checked to decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    /// The header.
    pub header: FixtureHeader,
    /// Every entry, in order.
    pub entries: Vec<FixtureEntry>,
}

impl Fixture {
    /// Reads a whole fixture into memory, failing at the first bad line. Only `bytes` are
    /// trusted; the readable fields are not read back.
    pub fn read(input: impl BufRead) -> Result<Fixture, FixtureError> {
        let mut reader = FixtureReader::new(input)?;
        let mut entries = Vec::new();
        while let Some(entry) = reader.next_entry()? {
            entries.push(entry);
        }
        Ok(Fixture {
            header: reader.header,
            entries,
        })
    }

    /// Writes the fixture.
    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        write_header(out, &self.header)?;
        for entry in &self.entries {
            write_entry(out, entry)?;
        }
        Ok(())
    }

    /// Whether `bytes` begin like a fixture (for format detection).
    pub fn sniff(bytes: &[u8]) -> bool {
        let start = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(bytes.len());
        let head = bytes.get(start..).unwrap_or_default();
        head.starts_with(b"{\"fixture\":\"mongowire\"")
    }
}

/// The longest line read: the base64 of the largest message the codec accepts, with room to
/// spare for its readable view (abbreviated beyond 64 KiB). Longer lines are refused rather
/// than buffered without limit.
const MAX_LINE: usize = DEFAULT_MAX_MESSAGE_SIZE / 3 * 4 + (1 << 20);

/// Reads a fixture one entry at a time, for files too large to hold in memory and for readers
/// that report a bad line and go on.
#[derive(Debug)]
pub struct FixtureReader<R> {
    input: R,
    header: FixtureHeader,
    /// The number of the last line read, from 1.
    line: usize,
    /// File offset of the last line read.
    line_offset: u64,
    /// Bytes read so far.
    consumed: u64,
    /// Set once a line too long to read has been reported: the rest cannot be framed.
    broken: bool,
}

impl<R: BufRead> FixtureReader<R> {
    /// Reads and checks the header line.
    pub fn new(mut input: R) -> Result<FixtureReader<R>, FixtureError> {
        let (header, consumed) = match read_line(&mut input, 1)? {
            Some((line, length)) => (parse_header(&utf8(line, 1)?)?, length),
            None => return Err(format_error(1, "empty file")),
        };
        Ok(FixtureReader {
            input,
            header,
            line: 1,
            line_offset: 0,
            consumed,
            broken: false,
        })
    }

    /// The number (from 1) and file offset of the line the last entry or error came from.
    pub fn position(&self) -> (usize, u64) {
        (self.line, self.line_offset)
    }

    /// The header.
    pub fn header(&self) -> &FixtureHeader {
        &self.header
    }

    /// The next entry, or `Ok(None)` at the end. After an `Err` for a bad line, reading goes on
    /// with the next line, except after a line too long to read or an I/O error, when it ends.
    pub fn next_entry(&mut self) -> Result<Option<FixtureEntry>, FixtureError> {
        loop {
            if self.broken {
                return Ok(None);
            }
            self.line += 1;
            self.line_offset = self.consumed;
            let line = match read_line(&mut self.input, self.line) {
                Ok(Some((line, length))) => {
                    self.consumed += length;
                    line
                }
                Ok(None) => return Ok(None),
                Err(error) => {
                    self.broken = true;
                    return Err(error);
                }
            };
            if !line.trim_ascii().is_empty() {
                return parse_entry(&utf8(line, self.line)?, self.line).map(Some);
            }
        }
    }
}

/// One line without its line ending, and the bytes it took with it; `None` at the end of the
/// input.
fn read_line<R: BufRead>(input: &mut R, number: usize) -> Result<Option<(Vec<u8>, u64)>, FixtureError> {
    let mut buffer = Vec::new();
    let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX);
    std::io::Read::take(input.by_ref(), limit + 1).read_until(b'\n', &mut buffer)?;
    if buffer.is_empty() {
        return Ok(None);
    }
    if buffer.len() > MAX_LINE {
        return Err(format_error(number, format!("longer than {MAX_LINE} bytes")));
    }
    let length = u64::try_from(buffer.len()).unwrap_or(u64::MAX);
    if buffer.last() == Some(&b'\n') {
        buffer.pop();
    }
    Ok(Some((buffer, length)))
}

fn utf8(line: Vec<u8>, number: usize) -> Result<String, FixtureError> {
    String::from_utf8(line).map_err(|_| format_error(number, "not UTF-8"))
}

fn format_error(line: usize, problem: impl Into<String>) -> FixtureError {
    FixtureError::Format {
        line,
        problem: problem.into(),
    }
}

fn parse_header(line: &str) -> Result<FixtureHeader, FixtureError> {
    let value: Value = serde_json::from_str(line).map_err(|e| format_error(1, format!("not JSON: {e}")))?;
    if value.get("fixture").and_then(Value::as_str) != Some(FORMAT) {
        return Err(format_error(
            1,
            "not a mongowire fixture (no \"fixture\": \"mongowire\")",
        ));
    }
    match value.get("version").and_then(Value::as_u64) {
        Some(FORMAT_VERSION) => {}
        other => {
            return Err(format_error(
                1,
                format!("unsupported version {other:?}; this reads {FORMAT_VERSION}"),
            ));
        }
    }
    let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok(FixtureHeader {
        description: text("description"),
        upstream: text("upstream"),
        recorded_at: text("recorded_at"),
    })
}

fn parse_entry(line: &str, number: usize) -> Result<FixtureEntry, FixtureError> {
    let value: Value = serde_json::from_str(line).map_err(|e| format_error(number, format!("not JSON: {e}")))?;
    let field = |key: &str| {
        value
            .get(key)
            .ok_or_else(|| format_error(number, format!("no \"{key}\"")))
    };
    let number_field = |key: &str| {
        field(key)?
            .as_u64()
            .ok_or_else(|| format_error(number, format!("\"{key}\" is not a number")))
    };
    let seq = number_field("seq")?;
    let conn = u32::try_from(number_field("conn")?).map_err(|_| format_error(number, "\"conn\" is too large"))?;
    let time_us = number_field("t_us")?;
    let dir = field("dir")?
        .as_str()
        .and_then(Direction::parse)
        .ok_or_else(|| format_error(number, "\"dir\" must be \"c2s\" or \"s2c\""))?;
    let bytes = || -> Result<Bytes, FixtureError> {
        let text = field("bytes")?
            .as_str()
            .ok_or_else(|| format_error(number, "\"bytes\" is not a string"))?;
        let decoded = STANDARD
            .decode(text)
            .map_err(|e| format_error(number, format!("\"bytes\" is not base64: {e}")))?;
        Ok(Bytes::from(decoded))
    };
    let event = match field("event")?.as_str() {
        Some("open") => FixtureEvent::Open,
        Some("close") => FixtureEvent::Close,
        Some("unframed") => FixtureEvent::Unframed(bytes()?),
        Some("message") => {
            let bytes = bytes()?;
            Message::decode(bytes.clone(), DEFAULT_MAX_MESSAGE_SIZE)
                .map_err(|error| FixtureError::Decode { line: number, error })?;
            FixtureEvent::Message(bytes)
        }
        other => return Err(format_error(number, format!("unknown event {other:?}"))),
    };
    Ok(FixtureEntry {
        seq,
        conn,
        dir,
        time_us,
        event,
    })
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;
    use bytes::BytesMut;

    use super::*;
    use crate::wire::{Body, OpMsg};

    fn message(request_id: i32, body: bson::RawDocumentBuf) -> Bytes {
        let mut out = BytesMut::new();
        Message::new(request_id, 0, Body::Msg(OpMsg::new(body)))
            .encode(&mut out)
            .unwrap();
        out.freeze()
    }

    fn sample() -> Fixture {
        let entry = |seq: u64, dir, event| FixtureEntry {
            seq,
            conn: 1,
            dir,
            time_us: seq * 10,
            event,
        };
        Fixture {
            header: FixtureHeader {
                description: "a ping".into(),
                upstream: "127.0.0.1:27100".into(),
                recorded_at: "2026-11-25T12:00:00Z".into(),
            },
            entries: vec![
                entry(0, Direction::ClientToServer, FixtureEvent::Open),
                entry(
                    1,
                    Direction::ClientToServer,
                    FixtureEvent::Message(message(1, rawdoc! { "ping": 1, "$db": "admin" })),
                ),
                entry(
                    2,
                    Direction::ServerToClient,
                    FixtureEvent::Message(message(9, rawdoc! { "ok": 1.0 })),
                ),
                entry(
                    3,
                    Direction::ClientToServer,
                    FixtureEvent::Unframed(Bytes::from_static(b"GET /")),
                ),
                entry(4, Direction::ServerToClient, FixtureEvent::Close),
            ],
        }
    }

    #[test]
    fn a_fixture_round_trips_and_reads_like_a_log() {
        let fixture = sample();
        let mut out = Vec::new();
        fixture.write(&mut out).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(Fixture::sniff(text.as_bytes()));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6);
        assert!(
            lines[2].contains(r#""op":"OP_MSG""#) && lines[2].contains(r#""doc":{"ping":1,"$db":"admin"}"#),
            "{}",
            lines[2]
        );
        assert!(
            lines[2].find("\"doc\"").unwrap() < lines[2].find("\"bytes\"").unwrap(),
            "bytes come last"
        );
        assert_eq!(Fixture::read(out.as_slice()).unwrap(), fixture);
    }

    #[test]
    fn huge_messages_get_an_abbreviated_view_but_complete_bytes() {
        let batch: bson::RawArrayBuf = (0..200)
            .map(|i| rawdoc! { "_id": i, "pad": "x".repeat(1000) })
            .collect();
        let bytes = message(
            3,
            rawdoc! { "cursor": { "nextBatch": batch, "id": 0_i64, "ns": "d.c" }, "ok": 1.0 },
        );
        let entry = FixtureEntry {
            seq: 0,
            conn: 1,
            dir: Direction::ServerToClient,
            time_us: 0,
            event: FixtureEvent::Message(bytes.clone()),
        };
        let mut out = Vec::new();
        write_entry(&mut out, &entry).unwrap();
        let line: Value = serde_json::from_slice(&out).unwrap();
        let shown = line["doc"]["cursor"]["nextBatch"].as_array().unwrap();
        assert_eq!(shown.len(), 4);
        assert_eq!(shown[3]["$abbreviated"], "197 more elements; see bytes");
        assert!(shown[0]["pad"].as_str().unwrap().ends_with("(1000 bytes; see bytes)"));
        let parsed = parse_entry(std::str::from_utf8(&out).unwrap(), 2).unwrap();
        assert_eq!(parsed.event, FixtureEvent::Message(bytes));
    }

    #[test]
    fn bad_fixtures_give_line_numbered_errors() {
        let good = {
            let mut out = Vec::new();
            sample().write(&mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "line 1: empty file"),
            ("{\"fixture\":\"other\"}\n".into(), "line 1: not a mongowire fixture"),
            (
                "{\"fixture\":\"mongowire\",\"version\":9}\n".into(),
                "line 1: unsupported version Some(9)",
            ),
            (
                good.replace("\"dir\":\"s2c\"", "\"dir\":\"sideways\""),
                "\"dir\" must be",
            ),
            (
                good.replacen("\"event\":\"open\"", "\"event\":\"teleport\"", 1),
                "line 2: unknown event",
            ),
            (format!("{}not json\n", good), "line 7: not JSON"),
        ];
        for (text, expected) in cases {
            let error = Fixture::read(text.as_bytes()).unwrap_err();
            assert!(
                error.to_string().contains(expected),
                "{error} should contain {expected}"
            );
        }
        // A message whose bytes do not decode.
        let broken = good.replacen("\"bytes\":\"", "\"bytes\":\"AAAA", 1);
        let error = Fixture::read(broken.as_bytes()).unwrap_err();
        assert!(
            matches!(
                error,
                FixtureError::Decode { line: 3, .. } | FixtureError::Format { line: 3, .. }
            ),
            "{error}"
        );
    }
}
