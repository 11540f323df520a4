//! What the capture readers yield: messages with where and when they were seen, and problems
//! with where they happened.

use std::fmt;

use super::link::PacketError;
use super::timestamp::Timestamp;
use crate::wire::{DecodeError, Message};

/// Which end of a connection sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The side that sends requests.
    Client,
    /// The side that answers them.
    Server,
}

impl Role {
    /// "client" or "server".
    pub fn name(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
        }
    }
}

/// A decoded message and what the source recorded about it.
#[derive(Debug, Clone)]
pub struct CapturedMessage {
    /// The message.
    pub message: Message,
    /// Where it starts: its file offset in a raw message file; the file offset of its record in
    /// a mongoreplay file, or of its line in a fixture; its offset in its TCP stream (counting
    /// from the first payload byte) in a packet capture.
    pub offset: u64,
    /// Sender as "ip:port" (IPv6 in brackets) for packet captures; for mongoreplay files, the
    /// `srcendpoint` string exactly as recorded (a bare port in the known files).
    pub from: Option<String>,
    /// Receiver, in the same form as `from`.
    pub to: Option<String>,
    /// Whether the client or the server sent it, when the source says who is who.
    pub sender: Option<Role>,
    /// When the packet that completed it was captured, or when mongoreplay saw it.
    pub timestamp: Option<Timestamp>,
    /// Number (from 1) of the packet that completed it, for packet captures.
    pub packet: Option<u64>,
    /// The connection it travelled on, as a fixture numbers them (from 1, in opening order).
    pub connection: Option<u32>,
}

/// One thing read from a capture.
#[derive(Debug)]
pub enum CaptureItem {
    /// A message.
    Message(Box<CapturedMessage>),
    /// Something that could not be decoded, or is worth a note.
    Problem(Problem),
}

/// Something wrong (or worth knowing) about part of a capture, and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Whether something that should have decoded did not (`mongowire decode` then exits 1);
    /// `false` for notes, such as traffic that is not MongoDB or bytes skipped at the start of a
    /// connection the capture joined late.
    pub failure: bool,
    /// Where.
    pub location: Location,
    /// What.
    pub kind: ProblemKind,
}

/// Where a problem is, in terms a person can follow to the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A byte offset in the file.
    File {
        /// The offset.
        offset: u64,
    },
    /// A packet of a capture file.
    Packet {
        /// Its number, from 1, as Wireshark numbers frames.
        number: u64,
        /// File offset of its record or block.
        offset: u64,
    },
    /// A record (BSON document) of a mongoreplay file.
    Record {
        /// Its number, from 1, counting the file's header document.
        number: u64,
        /// Its file offset.
        offset: u64,
    },
    /// A line of a text file (a fixture).
    Line {
        /// Its number, from 1.
        number: usize,
    },
    /// A byte of one direction of a TCP connection.
    Stream {
        /// Sender, "ip:port".
        from: String,
        /// Receiver, "ip:port".
        to: String,
        /// Offset in the direction's byte stream, from its first payload byte.
        offset: u64,
        /// The packet being processed when the problem was found, if any (none at the end of
        /// the capture).
        packet: Option<u64>,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File { offset } => write!(f, "byte {offset}"),
            Location::Packet { number, offset } => write!(f, "packet {number} (byte {offset})"),
            Location::Record { number, offset } => write!(f, "record {number} (byte {offset})"),
            Location::Line { number } => write!(f, "line {number}"),
            Location::Stream {
                from,
                to,
                offset,
                packet,
            } => {
                write!(f, "byte {offset} of stream {from} -> {to}")?;
                match packet {
                    Some(packet) => write!(f, " (packet {packet})"),
                    None => f.write_str(" (end of capture)"),
                }
            }
        }
    }
}

/// The kinds of problem.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// A message that did not decode.
    Decode {
        /// Why.
        error: DecodeError,
        /// Whether the next message starts right after it (its length was sound); otherwise the
        /// reader looks for the next message boundary, or (in a raw file) stops.
        recovered: bool,
    },
    /// The stream or file ended inside a message.
    Truncated {
        /// How many bytes of it were there.
        available: usize,
    },
    /// Bytes of a TCP stream the capture never had (lost by the capture, or a hole that never
    /// filled).
    Gap {
        /// How many.
        missing: u64,
        /// Bytes of a message begun before the hole, lost with it.
        partial: usize,
    },
    /// Framing resumed after skipping bytes that were no whole message (a note: the cause was
    /// reported before, or the capture began mid-connection).
    Resynchronised {
        /// Captured bytes skipped.
        skipped: u64,
    },
    /// Bytes of a TCP stream that never framed as MongoDB messages.
    Unframed {
        /// Captured bytes.
        bytes: u64,
        /// Whether the stream carried MongoDB messages elsewhere.
        any_message: bool,
    },
    /// A packet that could not be read down to TCP.
    Packet(PacketError),
    /// The capture file breaks its format here (reading stops if the framing is lost).
    Capture(String),
    /// A mongoreplay record that holds no readable message.
    Record(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = &self.location;
        match &self.kind {
            ProblemKind::Decode { error, recovered } => {
                let next = match (recovered, at) {
                    (true, _) => "skipped",
                    (false, Location::Stream { .. }) => "looking for the next message",
                    (false, _) => "the rest of the file cannot be framed",
                };
                write!(f, "message at {at}: {error}; {next}")
            }
            ProblemKind::Truncated { available } => {
                write!(f, "message at {at} is cut short after {available} bytes")
            }
            ProblemKind::Gap { missing, partial } => {
                write!(f, "{missing} bytes missing from the capture at {at}")?;
                if *partial > 0 {
                    write!(f, "; the message begun {partial} bytes earlier is lost")?;
                }
                f.write_str("; looking for the next message")
            }
            ProblemKind::Resynchronised { skipped } => {
                write!(f, "messages resume at {at} after {skipped} bytes that frame no message")
            }
            ProblemKind::Unframed {
                bytes,
                any_message: false,
            } => write!(f, "{bytes} bytes from {at} hold no MongoDB message; ignored"),
            ProblemKind::Unframed { bytes, .. } => {
                write!(f, "{bytes} bytes from {at} frame no message; skipped")
            }
            ProblemKind::Packet(error) => write!(f, "{at}: {error}; skipped"),
            ProblemKind::Capture(what) => write!(f, "at {at}: {what}"),
            ProblemKind::Record(what) => write!(f, "{at}: {what}; skipped"),
        }
    }
}
