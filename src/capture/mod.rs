//! Reading recorded MongoDB traffic and showing it to people.
//!
//! [`CaptureReader`] reads any file `mongowire decode` accepts, recognised by its first bytes:
//!
//! - pcap and pcapng captures ([`PacketReader`]), down through the link layer, IPv4/IPv6 and
//!   TCP ([`tcp_segment`]), reassembled per direction ([`Reassembler`]) and cut into messages;
//! - mongoreplay playback files ([`MongoReplayReader`]);
//! - protocol fixtures, the JSON Lines recordings `mongowire record` writes ([`Fixture`],
//!   [`FixtureReader`]);
//! - files of back-to-back wire messages ([`RawStreamReader`]), what a `tcpflow`-style dump of
//!   one direction of a connection holds.
//!
//! Each yields [`CaptureItem`]s in capture order: a [`CapturedMessage`] (the decoded message,
//! its endpoints, timestamp and sender role when the source has them) or a [`Problem`] saying
//! what could not be decoded and where, after which reading goes on. [`captured_json`] turns a
//! message into the JSON object `mongowire decode` prints, one per line.
//!
//! Everything here is a pure reader over [`std::io::Read`]: no I/O of its own, no async. Every
//! length read from a file is checked against what the file holds and a fixed limit before it
//! is used, so hostile input costs at most its own size in memory.

mod fixture;
mod item;
mod json;
mod link;
mod message_stream;
mod mongoreplay;
mod pcap;
mod raw_stream;
mod reader;
mod role;
mod tcp;
mod timestamp;

#[cfg(test)]
pub(crate) mod test_packets;

pub use fixture::{
    Direction, FORMAT_VERSION, Fixture, FixtureEntry, FixtureError, FixtureEvent, FixtureHeader, FixtureReader,
    write_entry, write_header,
};
pub use item::{CaptureItem, CapturedMessage, Location, Problem, ProblemKind, Role};
pub use json::{captured_json, message_json};
pub use link::{PacketError, TcpFlags, TcpSegment, tcp_segment};
pub use mongoreplay::{MAX_PLAYBACK_RECORD, MongoReplayReader, is_playback_document};
pub use pcap::{CaptureError, FileKind, LinkType, MAX_RECORD_LEN, Packet, PacketReader, file_kind};
pub use raw_stream::{RawStreamReader, StreamItem};
pub use reader::{CaptureOptions, CaptureReader, Format, detect};
pub use tcp::{PacketInfo, Reassembler, ReassemblyConfig};
pub use timestamp::{Timestamp, TimestampParseError};
