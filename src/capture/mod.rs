//! Reading recorded MongoDB traffic and showing it to people.
//!
//! [`message_json`] turns a decoded message into the JSON object that `mongowire decode`
//! prints, one per line; [`RawStreamReader`] reads a file of back-to-back wire messages (what a
//! `tcpflow`-style dump of one direction of a connection holds) and reports undecodable
//! messages with their offsets without stopping at the first one.
//!
//! [`PacketReader`] reads pcap and pcapng captures packet by packet, [`tcp_segment`] takes a
//! captured frame down through its link layer and IPv4/IPv6 to its TCP segment, and
//! [`Reassembler`] puts each direction of each connection back in order and cuts it into
//! messages, yielding [`CaptureItem`]s in capture order. All are pure readers: every length
//! from the file is checked before use, so hostile input costs at most its own size in memory.

mod item;
mod json;
mod link;
mod message_stream;
mod pcap;
mod raw_stream;
mod role;
mod tcp;
mod timestamp;

#[cfg(test)]
pub(crate) mod test_packets;

pub use item::{CaptureItem, CapturedMessage, Location, Problem, ProblemKind, Role};
pub use json::message_json;
pub use link::{PacketError, TcpFlags, TcpSegment, tcp_segment};
pub use pcap::{CaptureError, FileKind, LinkType, MAX_RECORD_LEN, Packet, PacketReader, file_kind};
pub use raw_stream::{RawStreamReader, StreamItem};
pub use tcp::{PacketInfo, Reassembler, ReassemblyConfig};
pub use timestamp::Timestamp;
