//! One reader for every kind of file `mongowire decode` accepts, chosen by the file's first
//! bytes.

use std::collections::HashSet;
use std::io::{self, BufReader, Chain, Cursor, Read};

use bson::RawDocument;

use super::Fixture;
use super::fixture::{Direction, FixtureEntry, FixtureError, FixtureEvent, FixtureReader};
use super::item::{CaptureItem, CapturedMessage, Location, Problem, ProblemKind, Role};
use super::link::{PacketError, tcp_segment};
use super::mongoreplay::{MongoReplayReader, is_playback_document};
use super::pcap::{CaptureError, FileKind, Packet, PacketReader, file_kind};
use super::raw_stream::{RawStreamReader, StreamItem};
use super::tcp::{PacketInfo, Reassembler, ReassemblyConfig};
use super::timestamp::Timestamp;
use crate::wire::{DEFAULT_MAX_MESSAGE_SIZE, Message};

/// The kinds of file a [`CaptureReader`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// Classic pcap.
    Pcap,
    /// pcapng.
    PcapNg,
    /// A mongoreplay playback file.
    MongoReplay,
    /// A mongowire protocol fixture (see [`Fixture`](super::Fixture)).
    Fixture,
    /// Back-to-back wire messages, as sent on one TCP stream.
    RawMessages,
}

/// The kind of file starting with `prefix`. `prefix` should hold the first document of the file
/// when its first four bytes could be a BSON document length (see [`CaptureReader::new`]);
/// anything unrecognised is taken for raw wire messages, whose reader reports what it cannot
/// decode.
pub fn detect(prefix: &[u8]) -> Format {
    match file_kind(prefix) {
        Some(FileKind::Pcap) => return Format::Pcap,
        Some(FileKind::PcapNg) => return Format::PcapNg,
        None => {}
    }
    if Fixture::sniff(prefix) {
        return Format::Fixture;
    }
    // A playback file and a raw message file both start with a little-endian length; only the
    // playback file's first bytes are a BSON document with mongoreplay's keys. (Further formats
    // recognised by their first bytes go here, before the raw fallback.)
    if let Some(document) = first_document(prefix)
        && is_playback_document(document)
    {
        return Format::MongoReplay;
    }
    Format::RawMessages
}

/// The BSON document at the start of `prefix`, if there is a whole one.
fn first_document(prefix: &[u8]) -> Option<&RawDocument> {
    let length = usize::try_from(i32::from_le_bytes(prefix.get(..4)?.try_into().ok()?)).ok()?;
    RawDocument::from_bytes(prefix.get(..length)?).ok()
}

/// Settings of a [`CaptureReader`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureOptions {
    /// The MongoDB server's port, when the capture does not make it clear (see
    /// [`Reassembler`] for how the server is otherwise recognised).
    pub server_port: Option<u16>,
}

type Prefixed<R> = Chain<Cursor<Vec<u8>>, R>;

enum Source<R> {
    Raw(RawStreamReader<Prefixed<R>>),
    Packets {
        reader: PacketReader<Prefixed<R>>,
        reassembler: Reassembler,
        /// Link types already reported as unsupported, so each is reported once.
        unsupported: HashSet<u16>,
        ended: bool,
    },
    Replay(MongoReplayReader<Prefixed<R>>),
    Fixture {
        reader: FixtureReader<BufReader<Prefixed<R>>>,
        /// When the recording started, from the header, to date each message.
        started: Option<Timestamp>,
    },
    /// A capture whose file header could not be read: one problem, then nothing.
    Failed(Option<Problem>),
}

/// Reads MongoDB messages from a pcap, pcapng, mongoreplay, fixture or raw message file,
/// recognised by its first bytes.
///
/// ```
/// use mongowire::capture::{CaptureItem, CaptureOptions, CaptureReader, Format};
///
/// let file: &[u8] = b""; // a capture file's bytes, or any `Read`
/// let mut reader = CaptureReader::new(file, CaptureOptions::default())?;
/// assert_eq!(reader.format(), Format::RawMessages);
/// while let Some(item) = reader.next_item()? {
///     match item {
///         CaptureItem::Message(message) => println!("{:?} from {:?}", message.message.op_code(), message.from),
///         CaptureItem::Problem(problem) => eprintln!("{problem}"),
///     }
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct CaptureReader<R> {
    format: Format,
    source: Source<R>,
}

/// The most read ahead to recognise a playback file: its first document.
const MAX_DETECT: usize = 16 << 20;
/// What is read ahead of a file starting with `{` to recognise a fixture's header.
const TEXT_DETECT: u64 = 64;

impl<R: Read> CaptureReader<R> {
    /// Reads the first bytes of `reader` to recognise its format. Fails only when reading fails.
    pub fn new(mut reader: R, options: CaptureOptions) -> io::Result<CaptureReader<R>> {
        let mut prefix = Vec::new();
        (&mut reader).take(4).read_to_end(&mut prefix)?;
        let declared = prefix
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(i32::from_le_bytes)
            .and_then(|l| usize::try_from(l).ok());
        if file_kind(&prefix).is_none()
            && let Some(length) = declared.filter(|l| (5..=MAX_DETECT).contains(l))
        {
            (&mut reader)
                .take(u64::try_from(length - 4).unwrap_or(0))
                .read_to_end(&mut prefix)?;
        } else if prefix.first() == Some(&b'{') {
            (&mut reader).take(TEXT_DETECT).read_to_end(&mut prefix)?;
        }
        let format = detect(&prefix);
        let input = Cursor::new(prefix).chain(reader);
        let source = match format {
            Format::Pcap | Format::PcapNg => match PacketReader::new(input) {
                Ok(reader) => Source::Packets {
                    reader,
                    reassembler: Reassembler::new(ReassemblyConfig {
                        server_port: options.server_port,
                        ..ReassemblyConfig::default()
                    }),
                    unsupported: HashSet::new(),
                    ended: false,
                },
                Err(CaptureError::Io(error)) => return Err(error),
                Err(CaptureError::Format { offset, what }) => Source::Failed(Some(Problem {
                    failure: true,
                    location: Location::File { offset },
                    kind: ProblemKind::Capture(what),
                })),
            },
            Format::MongoReplay => Source::Replay(MongoReplayReader::new(
                input,
                DEFAULT_MAX_MESSAGE_SIZE,
                options.server_port,
            )),
            Format::Fixture => match FixtureReader::new(BufReader::new(input)) {
                Ok(reader) => Source::Fixture {
                    started: reader.header().recorded_at.parse().ok(),
                    reader,
                },
                Err(FixtureError::Io(error)) => return Err(error),
                Err(error) => Source::Failed(Some(fixture_problem(error))),
            },
            Format::RawMessages => Source::Raw(RawStreamReader::new(input)),
        };
        Ok(CaptureReader { format, source })
    }

    /// The format recognised.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The next message or problem, in capture order; `Ok(None)` at the end. An `Err` is an
    /// I/O error of the underlying reader; everything wrong with the file's contents is a
    /// [`CaptureItem::Problem`], after which reading goes on as far as the format allows.
    pub fn next_item(&mut self) -> io::Result<Option<CaptureItem>> {
        match &mut self.source {
            Source::Raw(reader) => Ok(reader.next_item()?.map(raw_item)),
            Source::Replay(reader) => reader.next_item(),
            Source::Failed(problem) => Ok(problem.take().map(CaptureItem::Problem)),
            Source::Fixture { reader, started } => loop {
                match reader.next_entry() {
                    Ok(Some(entry)) => {
                        if let Some(item) = fixture_item(entry, reader.position(), *started) {
                            return Ok(Some(item));
                        }
                    }
                    Ok(None) => return Ok(None),
                    Err(FixtureError::Io(error)) => return Err(error),
                    Err(error) => return Ok(Some(CaptureItem::Problem(fixture_problem(error)))),
                }
            },
            Source::Packets {
                reader,
                reassembler,
                unsupported,
                ended,
            } => loop {
                if let Some(item) = reassembler.pop() {
                    return Ok(Some(item));
                }
                if *ended {
                    return Ok(None);
                }
                match reader.next_packet() {
                    Ok(Some(packet)) => {
                        if let Some(problem) = packet_problem(packet, reassembler, unsupported) {
                            return Ok(Some(CaptureItem::Problem(problem)));
                        }
                    }
                    Ok(None) => {
                        reassembler.finish();
                        *ended = true;
                    }
                    Err(CaptureError::Io(error)) => return Err(error),
                    Err(CaptureError::Format { offset, what }) => {
                        return Ok(Some(CaptureItem::Problem(Problem {
                            failure: true,
                            location: Location::File { offset },
                            kind: ProblemKind::Capture(what),
                        })));
                    }
                }
            },
        }
    }
}

/// Feeds a packet's TCP segment to the reassembler; returns what is wrong with the packet, if
/// anything worth telling.
fn packet_problem(packet: Packet, reassembler: &mut Reassembler, unsupported: &mut HashSet<u16>) -> Option<Problem> {
    let location = Location::Packet {
        number: packet.number,
        offset: packet.offset,
    };
    match tcp_segment(packet.link_type, &packet.data) {
        Ok(Some(segment)) => {
            let info = PacketInfo {
                number: packet.number,
                timestamp: packet.timestamp,
            };
            reassembler.push(segment, info);
            None
        }
        Ok(None) => None,
        Err(PacketError::UnsupportedLinkType(link_type)) if !unsupported.insert(link_type) => None,
        Err(error) => Some(Problem {
            // A fragment is a note: the hole it leaves in its TCP stream is the failure.
            failure: !matches!(error, PacketError::Fragment { .. }),
            location,
            kind: ProblemKind::Packet(error),
        }),
    }
}

/// A fixture's message as a captured one, dated from the recording's start; opens and closes
/// are left out, bytes that never framed become a note.
fn fixture_item(entry: FixtureEntry, (line, offset): (usize, u64), started: Option<Timestamp>) -> Option<CaptureItem> {
    let bytes = match entry.event {
        FixtureEvent::Message(bytes) => bytes,
        FixtureEvent::Unframed(bytes) => {
            return Some(CaptureItem::Problem(Problem {
                failure: false,
                location: Location::Line { number: line },
                kind: ProblemKind::Unframed {
                    bytes: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
                    any_message: true,
                },
            }));
        }
        FixtureEvent::Open | FixtureEvent::Close => return None,
    };
    let sender = match entry.dir {
        Direction::ClientToServer => Role::Client,
        Direction::ServerToClient => Role::Server,
    };
    // The reader checked that the bytes decode.
    let message = Message::decode(bytes, DEFAULT_MAX_MESSAGE_SIZE).ok()?;
    Some(CaptureItem::Message(Box::new(CapturedMessage {
        message,
        offset,
        from: None,
        to: None,
        sender: Some(sender),
        timestamp: started.and_then(|start| start.add_micros(entry.time_us)),
        packet: None,
        connection: Some(entry.conn),
    })))
}

fn fixture_problem(error: FixtureError) -> Problem {
    let (line, kind) = match error {
        FixtureError::Format { line, problem } => (line, ProblemKind::Capture(problem)),
        FixtureError::Decode { line, error } => (line, ProblemKind::Decode { error, recovered: true }),
        FixtureError::Io(error) => (0, ProblemKind::Capture(error.to_string())),
    };
    Problem {
        failure: true,
        location: Location::Line { number: line },
        kind,
    }
}

fn raw_item(item: StreamItem) -> CaptureItem {
    let problem = |offset, kind| {
        CaptureItem::Problem(Problem {
            failure: true,
            location: Location::File { offset },
            kind,
        })
    };
    match item {
        StreamItem::Message { offset, message } => CaptureItem::Message(Box::new(CapturedMessage {
            message,
            offset,
            from: None,
            to: None,
            sender: None,
            timestamp: None,
            packet: None,
            connection: None,
        })),
        StreamItem::Error {
            offset,
            error,
            recovered,
        } => problem(offset, ProblemKind::Decode { error, recovered }),
        StreamItem::Truncated { offset, available } => problem(offset, ProblemKind::Truncated { available }),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use bson::rawdoc;
    use bytes::BytesMut;

    use super::*;
    use crate::capture::test_packets::{self as tp, ACK, PSH, PcapNg, SYN};
    use crate::wire::{Body, Message, OpMsg};

    fn msg(id: i32, response_to: i32) -> Vec<u8> {
        let mut out = BytesMut::new();
        Message::new(id, response_to, Body::Msg(OpMsg::new(rawdoc! { "ping": id })))
            .encode(&mut out)
            .unwrap();
        out.to_vec()
    }

    fn read(file: &[u8]) -> (Format, Vec<CaptureItem>) {
        let mut reader = CaptureReader::new(file, CaptureOptions::default()).unwrap();
        let items = std::iter::from_fn(|| reader.next_item().unwrap()).collect();
        (reader.format(), items)
    }

    fn summary(items: &[CaptureItem]) -> Vec<String> {
        items
            .iter()
            .map(|item| match item {
                CaptureItem::Message(m) => format!(
                    "{} {} -> {} #{}",
                    m.message.request_id(),
                    m.from.as_deref().unwrap_or("?"),
                    m.to.as_deref().unwrap_or("?"),
                    m.packet.unwrap_or(0)
                ),
                CaptureItem::Problem(p) => format!("{}{p}", if p.failure { "" } else { "note: " }),
            })
            .collect()
    }

    /// A client/server exchange as IP packets: handshake, a request, its reply.
    fn exchange(client: SocketAddr, server: SocketAddr) -> Vec<Vec<u8>> {
        let (request, reply) = (msg(1, 0), msg(2, 1));
        vec![
            tp::ip_tcp(client, server, 100, 0, SYN, b""),
            tp::ip_tcp(server, client, 900, 101, SYN | ACK, b""),
            tp::ip_tcp(client, server, 101, 901, PSH | ACK, &request),
            tp::ip_tcp(server, client, 901, 101 + request.len() as u32, PSH | ACK, &reply),
        ]
    }

    #[test]
    fn formats_are_recognised_by_their_first_bytes() {
        assert_eq!(detect(&tp::pcap(1, false, false, &[])), Format::Pcap);
        assert_eq!(detect(&tp::pcap(1, true, true, &[])), Format::Pcap);
        assert_eq!(detect(&PcapNg::new(true).bytes()), Format::PcapNg);
        assert_eq!(detect(&tp::playback(&[])), Format::MongoReplay);
        let rawop_first = rawdoc! { "rawop": { "header": {}, "body": "" } }.into_bytes();
        assert_eq!(detect(&rawop_first), Format::MongoReplay);
        assert_eq!(detect(&rawdoc! { "other": 1 }.into_bytes()), Format::RawMessages);
        assert_eq!(detect(&msg(1, 0)), Format::RawMessages);
        assert_eq!(detect(b"{\"fixture\":\"mongowire\",\"version\":1}"), Format::Fixture);
        assert_eq!(detect(b"{\"fixture\":\"other\"}"), Format::RawMessages);
        assert_eq!(detect(b""), Format::RawMessages);
        assert_eq!(detect(b"GET / HTTP/1.1"), Format::RawMessages);
    }

    #[test]
    fn every_link_type_in_pcap_and_pcapng() {
        let v4: (SocketAddr, SocketAddr) = ("10.1.1.1:40000".parse().unwrap(), "10.1.1.2:27017".parse().unwrap());
        let v6: (SocketAddr, SocketAddr) = ("[fe80::1]:40000".parse().unwrap(), "[fe80::2]:27017".parse().unwrap());
        for (client, server) in [v4, v6] {
            for link in [0u16, 1, 12, 14, 101, 108, 113, 276] {
                let frames: Vec<Vec<u8>> = exchange(client, server).iter().map(|ip| tp::frame(link, ip)).collect();
                let records: Vec<tp::Record> = frames.iter().map(|f| (1_700_000_000, 5, f.clone())).collect();
                let mut ng = PcapNg::new(false);
                ng.interface(link, None);
                for frame in &frames {
                    ng.packet(0, 1_700_000_000_000_005, frame);
                }
                for file in [tp::pcap(u32::from(link), false, false, &records), ng.bytes()] {
                    let (_, items) = read(&file);
                    assert_eq!(
                        summary(&items),
                        [
                            format!("1 {client} -> {server} #3"),
                            format!("2 {server} -> {client} #4")
                        ],
                        "link type {link}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_broken_capture_header_is_one_problem() {
        let (format, items) = read(&tp::pcap(1, false, false, &[])[..10]);
        assert_eq!(format, Format::Pcap);
        assert_eq!(
            summary(&items),
            ["at byte 0: the pcap file header is cut short (10 of 24 bytes)"]
        );
    }

    #[test]
    fn packet_problems_are_located_and_reading_goes_on() {
        let (client, server) = ("10.1.1.1:40000".parse().unwrap(), "10.1.1.2:27017".parse().unwrap());
        let mut frames: Vec<Vec<u8>> = exchange(client, server).iter().map(|ip| tp::frame(1, ip)).collect();
        let mut fragment = tp::frame(1, &tp::ipv4([10, 1, 1, 1], [10, 1, 1, 2], 6, &[0; 20]));
        fragment[14 + 6] = 0x20;
        frames.insert(0, fragment);
        frames.insert(1, vec![0; 6]);
        let records: Vec<tp::Record> = frames.iter().map(|f| (1, 0, f.clone())).collect();
        let (_, items) = read(&tp::pcap(1, false, false, &records));
        assert_eq!(
            summary(&items),
            [
                "note: packet 1 (byte 24): IP fragment (id 0x1234, offset 0); fragments are not reassembled; skipped"
                    .to_owned(),
                "packet 2 (byte 94): Ethernet header cut short: needs 14 bytes, 6 captured; skipped".to_owned(),
                format!("1 {client} -> {server} #5"),
                format!("2 {server} -> {client} #6"),
            ]
        );
        // An unsupported link type is said once, not once per packet.
        let records: Vec<tp::Record> = (0..3).map(|_| (1, 0, vec![0; 30])).collect();
        let (_, items) = read(&tp::pcap(105, false, false, &records));
        assert_eq!(
            summary(&items),
            ["packet 1 (byte 24): link type 105 is not supported (said once per link type); skipped"]
        );
    }
}
