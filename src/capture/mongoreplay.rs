//! mongoreplay playback files.
//!
//! A playback file is a stream of BSON documents. The first is a header
//! (`{playbackfileversion: 1, driveropsfiltered: false}`); each of the others records one
//! message as mongoreplay saw it:
//!
//! ```text
//! { rawop: { header: { messagelength, requestid, responseto, opcode },   (int32s)
//!            body: <binary: the whole message, header included> },
//!   seen: { sec: <int64 seconds since 0001-01-01 UTC>, nsec: <int32> },
//!   srcendpoint: "39420", dstendpoint: "27017",                         (ports, as strings)
//!   seenconnectionnum, playedconnectionnum, generation, order, eof? }
//! ```
//!
//! (Field names and meanings as found in the files in `../shared/captures`, a recording of
//! `compressed.pcap` whose `seen` times match that capture's packet times once Go's year-1 epoch
//! is taken off.) A record with `eof: true` marks the end of a connection and holds no message.
//! The message is rebuilt from `body` when it holds the whole message (its first 16 bytes then
//! equal the header fields), or from the header fields followed by `body` when it holds only
//! what follows the header.

use std::collections::HashMap;
use std::io::{self, Read};

use bson::RawDocument;
use bytes::Bytes;

use super::item::{CaptureItem, CapturedMessage, Location, Problem, ProblemKind};
use super::role::{Endpoint, ServerEvidence};
use super::timestamp::Timestamp;
use crate::wire::{HEADER_LEN, Header, Message};

/// Seconds from 0001-01-01T00:00:00Z (Go's internal epoch) to the Unix epoch.
const GO_EPOCH_TO_UNIX: i64 = 62_135_596_800;

/// The longest record accepted: a message of the largest size MongoDB allows, with room for
/// the record's other fields. A longer length is a corrupt file.
pub const MAX_PLAYBACK_RECORD: usize = 64 << 20;

/// Whether `document` is the first document of a playback file (its header, or a recorded
/// message for files written without one).
pub fn is_playback_document(document: &RawDocument) -> bool {
    document
        .iter()
        .flatten()
        .any(|(key, _)| key == "playbackfileversion" || key == "rawop")
}

/// Reads the messages of a mongoreplay playback file.
pub struct MongoReplayReader<R> {
    reader: R,
    offset: u64,
    records: u64,
    done: bool,
    max_message_size: usize,
    server_port: Option<u16>,
    /// Server evidence per recorded connection (`seenconnectionnum`).
    evidence: HashMap<i64, ServerEvidence<String>>,
}

/// An integer field written as int32 or int64.
fn integer(document: &RawDocument, key: &str) -> Option<i64> {
    match document.get(key).ok()?? {
        bson::RawBsonRef::Int32(v) => Some(i64::from(v)),
        bson::RawBsonRef::Int64(v) => Some(v),
        _ => None,
    }
}

fn int32(document: &RawDocument, key: &str) -> Result<i32, String> {
    integer(document, key)
        .and_then(|v| i32::try_from(v).ok())
        .ok_or_else(|| format!("rawop.header.{key} is missing or not a 32-bit integer"))
}

/// The port at the end of a recorded endpoint ("27017", or "host:27017").
fn port_of(endpoint: &str) -> Option<u16> {
    endpoint.rsplit(':').next()?.parse().ok()
}

/// The wire message a record holds.
fn message_bytes(rawop: &RawDocument) -> Result<Vec<u8>, String> {
    let header = rawop
        .get_document("header")
        .map_err(|_| "rawop.header is missing or not a document".to_owned())?;
    let fields = Header {
        message_length: int32(header, "messagelength")?,
        request_id: int32(header, "requestid")?,
        response_to: int32(header, "responseto")?,
        op_code: int32(header, "opcode")?,
    };
    let body = rawop
        .get_binary("body")
        .map_err(|_| "rawop.body is missing or not binary".to_owned())?
        .bytes;
    let declared = usize::try_from(fields.message_length).unwrap_or(0);
    if body.len() == declared && Header::parse(body) == Some(fields) {
        return Ok(body.to_vec());
    }
    if body.len() + HEADER_LEN == declared {
        let mut out = Vec::with_capacity(declared);
        for field in [
            fields.message_length,
            fields.request_id,
            fields.response_to,
            fields.op_code,
        ] {
            out.extend_from_slice(&field.to_le_bytes());
        }
        out.extend_from_slice(body);
        return Ok(out);
    }
    Err(format!(
        "rawop.body holds {} bytes, which is neither the {declared}-byte message nor its body",
        body.len()
    ))
}

impl<R: Read> MongoReplayReader<R> {
    /// A reader of the playback file in `reader`, from its first byte.
    pub fn new(reader: R, max_message_size: usize, server_port: Option<u16>) -> MongoReplayReader<R> {
        MongoReplayReader {
            reader,
            offset: 0,
            records: 0,
            done: false,
            max_message_size,
            server_port,
            evidence: HashMap::new(),
        }
    }

    /// The next message or problem; `Ok(None)` at the end of the file.
    pub fn next_item(&mut self) -> io::Result<Option<CaptureItem>> {
        while !self.done {
            let offset = self.offset;
            let number = self.records + 1;
            let location = Location::Record { number, offset };
            let record = match self.read_record()? {
                Some(Ok(record)) => record,
                Some(Err(what)) => {
                    self.done = true;
                    return Ok(Some(problem(location, ProblemKind::Capture(what))));
                }
                None => {
                    self.done = true;
                    return Ok(None);
                }
            };
            self.records = number;
            if let Some(item) = self.record_item(&record, number, offset) {
                return Ok(Some(item));
            }
        }
        Ok(None)
    }

    /// The next document's bytes; `Some(Err)` when the file cannot be framed further.
    fn read_record(&mut self) -> io::Result<Option<Result<Vec<u8>, String>>> {
        let mut length = [0u8; 4];
        let mut got = 0;
        while let Some(rest) = length.get_mut(got..).filter(|r| !r.is_empty()) {
            match self.reader.read(rest) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        self.offset += got as u64;
        if got == 0 {
            return Ok(None);
        }
        if got < 4 {
            return Ok(Some(Err(format!("document length cut short ({got} of 4 bytes)"))));
        }
        let declared = i32::from_le_bytes(length);
        let Some(declared) = usize::try_from(declared)
            .ok()
            .filter(|d| (5..=MAX_PLAYBACK_RECORD).contains(d))
        else {
            return Ok(Some(Err(format!("{declared} is not a document length"))));
        };
        let mut record = length.to_vec();
        let rest = u64::try_from(declared - 4).unwrap_or(0);
        (&mut self.reader).take(rest).read_to_end(&mut record)?;
        self.offset += record.len() as u64 - 4;
        if record.len() < declared {
            return Ok(Some(Err(format!(
                "document cut short ({} of {declared} bytes)",
                record.len()
            ))));
        }
        Ok(Some(Ok(record)))
    }

    /// What one whole document holds: a message, a problem, or nothing worth showing.
    fn record_item(&mut self, record: &[u8], number: u64, offset: u64) -> Option<CaptureItem> {
        let location = Location::Record { number, offset };
        let document = match RawDocument::from_bytes(record) {
            Ok(document) => document,
            Err(error) => return Some(problem(location, ProblemKind::Record(format!("not BSON: {error}")))),
        };
        let Ok(rawop) = document.get_document("rawop") else {
            if document.get("playbackfileversion").ok().flatten().is_some() {
                return None;
            }
            return Some(problem(location, ProblemKind::Record("no rawop document".to_owned())));
        };
        if document.get_bool("eof").unwrap_or(false) {
            return None;
        }
        let bytes = match message_bytes(rawop) {
            Ok(bytes) => bytes,
            Err(what) => return Some(problem(location, ProblemKind::Record(what))),
        };
        let message = match Message::decode(Bytes::from(bytes), self.max_message_size) {
            Ok(message) => message,
            Err(error) => {
                return Some(problem(location, ProblemKind::Decode { error, recovered: true }));
            }
        };
        let endpoint = |key| document.get_str(key).ok().filter(|e| !e.is_empty()).map(str::to_owned);
        let (from, to) = (endpoint("srcendpoint"), endpoint("dstendpoint"));
        let seen = document.get_document("seen").ok();
        let timestamp = seen.and_then(|seen| {
            let seconds = integer(seen, "sec")?.checked_sub(GO_EPOCH_TO_UNIX)?;
            let nanos = u32::try_from(integer(seen, "nsec")?).ok()?;
            Timestamp::new(seconds, nanos, 9)
        });
        let connection = integer(document, "seenconnectionnum").unwrap_or(-1);
        let evidence = self.evidence.entry(connection).or_default();
        let (from_id, to_id) = (from.clone().unwrap_or_default(), to.clone().unwrap_or_default());
        let sender = evidence.sender(
            Endpoint {
                id: &from_id,
                port: port_of(&from_id),
            },
            Endpoint {
                id: &to_id,
                port: port_of(&to_id),
            },
            self.server_port,
            &message,
        );
        Some(CaptureItem::Message(Box::new(CapturedMessage {
            message,
            offset,
            from,
            to,
            sender: Some(sender),
            timestamp,
            packet: None,
            connection: None,
        })))
    }
}

fn problem(location: Location, kind: ProblemKind) -> CaptureItem {
    CaptureItem::Problem(Problem {
        failure: true,
        location,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use bson::{Binary, rawdoc, spec::BinarySubtype};
    use bytes::BytesMut;

    use super::*;
    use crate::capture::item::Role;
    use crate::capture::test_packets;
    use crate::wire::{Body, OpMsg};

    fn msg(id: i32, response_to: i32) -> Vec<u8> {
        let mut out = BytesMut::new();
        Message::new(id, response_to, Body::Msg(OpMsg::new(rawdoc! { "ping": id })))
            .encode(&mut out)
            .unwrap();
        out.to_vec()
    }

    fn items(file: &[u8]) -> Vec<CaptureItem> {
        let mut reader = MongoReplayReader::new(file, 48_000_000, None);
        std::iter::from_fn(|| reader.next_item().unwrap()).collect()
    }

    fn record(body: &[u8], header_length: i32, eof: bool) -> Vec<u8> {
        let header = Header::parse(&msg(5, 0)).unwrap();
        let document = rawdoc! {
            "rawop": {
                "header": {
                    "messagelength": header_length,
                    "requestid": header.request_id,
                    "responseto": header.response_to,
                    "opcode": header.op_code,
                },
                "body": Binary { subtype: BinarySubtype::Generic, bytes: body.to_vec() },
            },
            "seen": { "sec": 63_000_000_000_i64, "nsec": 5_i32 },
            "srcendpoint": "[::1]:50000",
            "dstendpoint": "[::1]:27017",
            "eof": eof,
        };
        document.into_bytes()
    }

    #[test]
    fn reads_recorded_messages_with_time_and_endpoints() {
        let file = test_packets::playback(&[(msg(1, 0), 39420, 27017, 0), (msg(2, 1), 27017, 39420, 0)]);
        assert!(is_playback_document(RawDocument::from_bytes(&file[..50]).unwrap()));
        let got = items(&file);
        assert_eq!(got.len(), 2, "the header document yields nothing");
        let CaptureItem::Message(first) = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(first.message.request_id(), 1);
        assert_eq!(first.offset, 50);
        assert_eq!(
            (first.from.as_deref(), first.to.as_deref()),
            (Some("39420"), Some("27017"))
        );
        assert_eq!(first.sender, Some(Role::Client));
        assert_eq!(first.timestamp.unwrap().to_string(), "2016-08-11T18:12:09.422603000Z");
        let CaptureItem::Message(second) = &got[1] else {
            panic!("{got:?}")
        };
        assert_eq!(second.sender, Some(Role::Server));
        assert_eq!(second.packet, None);
    }

    #[test]
    fn a_body_without_its_header_and_eof_markers() {
        let whole = msg(5, 0);
        let length = i32::try_from(whole.len()).unwrap();
        let file = [
            record(&whole[16..], length, false),
            record(&[], 0, true),
            record(&whole, length, false),
        ]
        .concat();
        let got = items(&file);
        assert_eq!(got.len(), 2);
        for item in &got {
            let CaptureItem::Message(m) = item else {
                panic!("{got:?}")
            };
            assert_eq!(m.message.raw()[..], whole[..]);
            assert_eq!(m.from.as_deref(), Some("[::1]:50000"));
            assert_eq!(m.timestamp.unwrap().to_string(), "1997-05-23T16:00:00.000000005Z");
        }
    }

    #[test]
    fn bad_records_are_reported_and_reading_goes_on() {
        let whole = msg(5, 0);
        let length = i32::try_from(whole.len()).unwrap();
        let mut bad_flags = whole.clone();
        bad_flags[16] = 4;
        let no_rawop = rawdoc! { "x": 1 }.into_bytes();
        let file = [
            record(&whole[..10], length, false),
            no_rawop.clone(),
            record(&bad_flags, length, false),
            record(&whole, length, false),
        ]
        .concat();
        let got = items(&file);
        let texts: Vec<String> = got
            .iter()
            .map(|item| match item {
                CaptureItem::Problem(p) => p.to_string(),
                CaptureItem::Message(m) => format!("message {}", m.message.request_id()),
            })
            .collect();
        let second = record(&whole[..10], length, false).len();
        let third = second + no_rawop.len();
        assert_eq!(
            texts,
            [
                format!(
                    "record 1 (byte 0): rawop.body holds 10 bytes, which is neither the {length}-byte message nor its \
                     body; skipped"
                ),
                format!("record 2 (byte {second}): no rawop document; skipped"),
                format!(
                    "message at record 3 (byte {third}): reserved flag bits 0x0004 are set (field OP_MSG.flagBits, \
                     byte 16); skipped"
                ),
                "message 5".to_owned(),
            ]
        );
    }

    #[test]
    fn truncation_and_garbage_end_the_file_with_a_problem() {
        let file = test_packets::playback(&[(msg(1, 0), 1, 2, 0)]);
        for len in 1..file.len() {
            let got = items(&file[..len]);
            if len == 50 {
                assert!(got.is_empty(), "the header document alone is a valid, empty file");
                continue;
            }
            let CaptureItem::Problem(problem) = got.last().unwrap() else {
                panic!("{len}: {got:?}")
            };
            assert!(problem.failure);
            assert!(problem.to_string().contains("cut short"), "{len}: {problem}");
        }
        let got = items(&[0xff, 0xff, 0xff, 0x7f, 0]);
        let CaptureItem::Problem(problem) = &got[0] else {
            panic!()
        };
        assert_eq!(
            problem.to_string(),
            "at record 1 (byte 0): 2147483647 is not a document length"
        );
        assert_eq!(got.len(), 1);
    }
}
