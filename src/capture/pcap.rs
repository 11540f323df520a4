//! Packet capture files: classic pcap and pcapng, read as a stream of packets.
//!
//! Both formats are read from any [`Read`] a record or block at a time, so a capture of many
//! gigabytes costs one packet of memory. Every length in the file is checked before use: a
//! record or block longer than [`MAX_RECORD_LEN`] is refused, and the bytes of a record are read
//! with `Read::take`, so a length that claims more than the file holds allocates only what the
//! file actually had before the reader reports it cut short.
//!
//! Formats (public facts; the code is this project's own): classic pcap has a 24-byte file
//! header whose magic gives the byte order and the timestamp unit (`a1b2c3d4` microseconds,
//! `a1b23c4d` nanoseconds, `a1b2cd34` the "modified" variant with 8 more bytes per record
//! header), then 16-byte record headers. pcapng is a sequence of blocks `type, total length,
//! body, total length`; a section header block (SHB) carries a byte-order magic and starts a
//! section, interface description blocks (IDB) give each interface's link type and timestamp
//! resolution (`if_tsresol`, `if_tsoffset`), and packets come in enhanced (EPB), simple (SPB) or
//! obsolete packet blocks (PB). Other blocks are skipped.

use std::io::{self, Read};

use bytes::Bytes;

use super::timestamp::Timestamp;

/// The largest record or block accepted. A MongoDB message is at most 48 MB and travels in TCP
/// segments far smaller than that; anything longer is a corrupt length, and reading on would
/// misframe the rest of the file.
pub const MAX_RECORD_LEN: usize = 64 << 20;

/// A link-layer header type, as pcap and pcapng number them (the `LINKTYPE_` registry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkType(pub u16);

impl LinkType {
    /// BSD loopback: a 4-byte address family in the capturing host's byte order.
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet II, possibly with 802.1Q/802.1ad VLAN tags.
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP under the number BSD systems give `DLT_RAW`.
    pub const RAW_BSD: LinkType = LinkType(12);
    /// Raw IP under the number OpenBSD gives `DLT_RAW`.
    pub const RAW_OPENBSD: LinkType = LinkType(14);
    /// Raw IPv4 or IPv6 (`LINKTYPE_RAW`).
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback: the address family in network byte order.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux cooked capture (SLL), what `tcpdump -i any` writes.
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Raw IPv4 only.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6 only.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture v2 (SLL2), what newer `tcpdump -i any` writes.
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// One captured packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Position in the file, counting from 1 as Wireshark numbers frames.
    pub number: u64,
    /// File offset of the record or block that held it.
    pub offset: u64,
    /// When it was captured; `None` for pcapng simple packet blocks, which carry no time, and
    /// for times outside what [`Timestamp`] represents.
    pub timestamp: Option<Timestamp>,
    /// How to read its first bytes.
    pub link_type: LinkType,
    /// The captured bytes (possibly fewer than `original_length`, when a snap length cut it).
    pub data: Bytes,
    /// The packet's length on the wire.
    pub original_length: u32,
}

/// Why a capture file could not be read further, or why one of its records was skipped.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be read.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The file's bytes do not follow the format.
    #[error("at byte {offset}: {what}")]
    Format {
        /// File offset of the record, block or header concerned.
        offset: u64,
        /// What was wrong, in words.
        what: String,
    },
}

/// Which kind of capture file a 4-byte prefix announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Classic pcap.
    Pcap,
    /// pcapng.
    PcapNg,
}

const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

/// The kind of capture file starting with `prefix`, from its magic number.
pub fn file_kind(prefix: &[u8]) -> Option<FileKind> {
    let magic: [u8; 4] = prefix.get(..4)?.try_into().ok()?;
    if u32::from_le_bytes(magic) == PCAPNG_SHB {
        return Some(FileKind::PcapNg);
    }
    [u32::from_le_bytes(magic), u32::from_be_bytes(magic)]
        .into_iter()
        .any(|m| matches!(m, 0xa1b2_c3d4 | 0xa1b2_3c4d | 0xa1b2_cd34))
        .then_some(FileKind::Pcap)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, data: &[u8], at: usize) -> Option<u16> {
        let bytes: [u8; 2] = data.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u16::from_le_bytes(bytes),
            Endian::Big => u16::from_be_bytes(bytes),
        })
    }

    fn u32(self, data: &[u8], at: usize) -> Option<u32> {
        let bytes: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u32::from_le_bytes(bytes),
            Endian::Big => u32::from_be_bytes(bytes),
        })
    }

    fn i64(self, data: &[u8], at: usize) -> Option<i64> {
        let bytes: [u8; 8] = data.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => i64::from_le_bytes(bytes),
            Endian::Big => i64::from_be_bytes(bytes),
        })
    }
}

/// The reader and how far into the file it is.
struct Input<R> {
    reader: R,
    offset: u64,
}

impl<R: Read> Input<R> {
    /// Fills `buf` as far as the file goes; returns how many bytes came (fewer only at the end).
    fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while let Some(rest) = buf.get_mut(filled..) {
            if rest.is_empty() {
                break;
            }
            match self.reader.read(rest) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        self.offset += filled as u64;
        Ok(filled)
    }

    /// Up to `len` bytes; the vector grows with what arrives, never on the strength of `len`.
    fn take(&mut self, len: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let limit = u64::try_from(len).unwrap_or(u64::MAX);
        (&mut self.reader).take(limit).read_to_end(&mut out)?;
        self.offset += out.len() as u64;
        Ok(out)
    }
}

/// Timestamp units of a pcapng interface.
#[derive(Debug, Clone, Copy)]
struct Resolution {
    /// Units per second, at most 2^64 (finer ones are refused: every u64 time would fall in the
    /// first second).
    per_second: u128,
    /// Fraction digits worth printing.
    digits: u8,
}

const MICROSECONDS: Resolution = Resolution {
    per_second: 1_000_000,
    digits: 6,
};

impl Resolution {
    /// From the `if_tsresol` byte: 10^-n seconds, or 2^-n with the top bit set.
    fn from_option(value: u8) -> Option<Resolution> {
        let exponent = u32::from(value & 0x7f);
        if value & 0x80 == 0 {
            (exponent <= 19).then(|| Resolution {
                per_second: 10u128.pow(exponent),
                digits: u8::try_from(exponent.min(9)).unwrap_or(9),
            })
        } else {
            (exponent <= 64).then(|| Resolution {
                per_second: 1u128 << exponent,
                digits: if exponent == 0 { 0 } else { 9 },
            })
        }
    }

    fn timestamp(self, units: u64, offset_seconds: i64) -> Option<Timestamp> {
        let units = u128::from(units);
        let seconds = i64::try_from(units / self.per_second)
            .ok()?
            .checked_add(offset_seconds)?;
        // The remainder is below 2^64, so multiplying by 10^9 stays far inside u128.
        let nanos = u32::try_from(units % self.per_second * 1_000_000_000 / self.per_second).ok()?;
        Timestamp::new(seconds, nanos, self.digits)
    }
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: LinkType,
    snap_length: u32,
    resolution: Resolution,
    offset_seconds: i64,
}

#[derive(Debug)]
enum Format {
    Classic {
        endian: Endian,
        nanos: bool,
        /// The "modified" format's record headers carry 8 more bytes (interface index,
        /// protocol, packet type).
        extended: bool,
        link_type: LinkType,
    },
    Ng {
        /// The current section's byte order.
        endian: Endian,
        interfaces: Vec<Interface>,
    },
}

/// Reads packets from a classic pcap or a pcapng file.
///
/// [`PacketReader::next_packet`] returns each packet in file order. A damaged record that
/// leaves the framing intact (a pcapng packet block naming an unknown interface, say) is
/// returned as an error and reading goes on; a damaged length ends the file, since nothing
/// after it can be framed. Callers read until `Ok(None)`.
pub struct PacketReader<R> {
    input: Input<R>,
    format: Format,
    packets: u64,
    done: bool,
}

fn format_error(offset: u64, what: impl Into<String>) -> CaptureError {
    CaptureError::Format {
        offset,
        what: what.into(),
    }
}

impl<R: Read> PacketReader<R> {
    /// Reads the file header (classic pcap) or prepares to read the first section header block
    /// (pcapng). Fails on anything else.
    pub fn new(reader: R) -> Result<PacketReader<R>, CaptureError> {
        let mut input = Input { reader, offset: 0 };
        let mut header = [0u8; 24];
        let got = input.fill(header.get_mut(..4).unwrap_or_default())?;
        let magic = header.get(..got).unwrap_or_default();
        let format = match file_kind(magic) {
            Some(FileKind::PcapNg) => {
                let mut reader = PacketReader {
                    input,
                    format: Format::Ng {
                        endian: Endian::Little,
                        interfaces: Vec::new(),
                    },
                    packets: 0,
                    done: false,
                };
                reader.read_section_header(0, header.get(..4).unwrap_or_default())?;
                return Ok(reader);
            }
            Some(FileKind::Pcap) => {
                let rest = input.fill(header.get_mut(4..).unwrap_or_default())?;
                if rest < 20 {
                    return Err(format_error(
                        0,
                        format!("the pcap file header is cut short ({} of 24 bytes)", 4 + rest),
                    ));
                }
                classic_format(&header)
            }
            None => return Err(format_error(0, "not a pcap or pcapng file")),
        };
        Ok(PacketReader {
            input,
            format,
            packets: 0,
            done: false,
        })
    }

    /// The next packet, `Ok(None)` at the end of the file (or after an error that ends it).
    pub fn next_packet(&mut self) -> Result<Option<Packet>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        let result = match self.format {
            Format::Classic { .. } => self.next_classic(),
            Format::Ng { .. } => self.next_ng(),
        };
        if matches!(result, Err(CaptureError::Io(_))) {
            self.done = true;
        }
        result
    }

    /// Ends the file with a format error at `offset`.
    fn fatal(&mut self, offset: u64, what: impl Into<String>) -> CaptureError {
        self.done = true;
        format_error(offset, what)
    }

    fn next_classic(&mut self) -> Result<Option<Packet>, CaptureError> {
        let Format::Classic {
            endian,
            nanos,
            extended,
            link_type,
        } = self.format
        else {
            return Ok(None);
        };
        let offset = self.input.offset;
        let mut header = [0u8; 24];
        let wanted = if extended { 24 } else { 16 };
        let got = self.input.fill(header.get_mut(..wanted).unwrap_or_default())?;
        if got == 0 {
            self.done = true;
            return Ok(None);
        }
        let number = self.packets + 1;
        if got < wanted {
            return Err(self.fatal(
                offset,
                format!("packet {number}: record header cut short ({got} of {wanted} bytes)"),
            ));
        }
        let field = |at| endian.u32(&header, at).unwrap_or(0);
        let (seconds, fraction, captured, original) = (field(0), field(4), field(8), field(12));
        let data = self.record_data(offset, number, captured)?;
        self.packets = number;
        let (unit, digits) = if nanos { (1, 9) } else { (1000, 6) };
        let nanos_total = u64::from(fraction) * unit;
        let timestamp = Timestamp::new(
            i64::from(seconds) + i64::try_from(nanos_total / 1_000_000_000).unwrap_or(0),
            u32::try_from(nanos_total % 1_000_000_000).unwrap_or(0),
            digits,
        );
        Ok(Some(Packet {
            number,
            offset,
            timestamp,
            link_type,
            data,
            original_length: original,
        }))
    }

    /// `declared` bytes of packet data, or an error that ends the file.
    fn record_data(&mut self, offset: u64, number: u64, declared: u32) -> Result<Bytes, CaptureError> {
        let declared = usize::try_from(declared).unwrap_or(usize::MAX);
        if declared > MAX_RECORD_LEN {
            return Err(self.fatal(
                offset,
                format!("packet {number}: captured length {declared} exceeds the {MAX_RECORD_LEN}-byte limit"),
            ));
        }
        let data = self.input.take(declared)?;
        if data.len() < declared {
            return Err(self.fatal(
                offset,
                format!("packet {number}: record cut short ({} of {declared} bytes)", data.len()),
            ));
        }
        Ok(Bytes::from(data))
    }

    /// Reads a section header block whose first bytes, `already`, were read by the caller. Its
    /// byte-order magic decides how the rest of the section is read, and it forgets the previous
    /// section's interfaces.
    fn read_section_header(&mut self, offset: u64, already: &[u8]) -> Result<(), CaptureError> {
        let mut head = [0u8; 12];
        for (to, from) in head.iter_mut().zip(already) {
            *to = *from;
        }
        let have = already.len().min(12);
        let got = self.input.fill(head.get_mut(have..).unwrap_or_default())?;
        if have + got < 12 {
            return Err(self.fatal(offset, "section header block cut short"));
        }
        let endian = match Endian::Little.u32(&head, 8).unwrap_or(0) {
            PCAPNG_BYTE_ORDER_MAGIC => Endian::Little,
            m if m.swap_bytes() == PCAPNG_BYTE_ORDER_MAGIC => Endian::Big,
            m => return Err(self.fatal(offset, format!("section header byte-order magic {m:#010x}"))),
        };
        self.format = Format::Ng {
            endian,
            interfaces: Vec::new(),
        };
        let total = endian.u32(&head, 4).unwrap_or(0);
        let body = self.block_body(offset, endian, total, 12, 28)?;
        let major = endian.u16(&body, 0).unwrap_or(0);
        if major != 1 {
            return Err(self.fatal(offset, format!("pcapng major version {major} is not supported")));
        }
        Ok(())
    }

    /// Reads the rest of a block whose total length is `total` and whose first `read` bytes
    /// are consumed; checks the trailing length; returns the bytes between those already read
    /// and the trailer.
    fn block_body(
        &mut self,
        offset: u64,
        endian: Endian,
        total: u32,
        read: usize,
        min: usize,
    ) -> Result<Vec<u8>, CaptureError> {
        let total_len = usize::try_from(total).unwrap_or(usize::MAX);
        if total_len < min || total_len % 4 != 0 || total_len > MAX_RECORD_LEN {
            return Err(self.fatal(
                offset,
                format!("block length {total} is not a valid pcapng block length"),
            ));
        }
        let rest = total_len - read;
        let mut body = self.input.take(rest)?;
        if body.len() < rest {
            return Err(self.fatal(
                offset,
                format!("block cut short ({} of {total} bytes)", read + body.len()),
            ));
        }
        let trailer = body.split_off(rest - 4);
        if endian.u32(&trailer, 0) != Some(total) {
            return Err(self.fatal(offset, "block's trailing length differs from its leading length"));
        }
        Ok(body)
    }

    fn next_ng(&mut self) -> Result<Option<Packet>, CaptureError> {
        loop {
            let Format::Ng { endian, .. } = self.format else {
                return Ok(None);
            };
            let offset = self.input.offset;
            let mut head = [0u8; 8];
            let got = self.input.fill(&mut head)?;
            if got == 0 {
                self.done = true;
                return Ok(None);
            }
            if got < 8 {
                return Err(self.fatal(offset, "block header cut short"));
            }
            let block_type = endian.u32(&head, 0).unwrap_or(0);
            if block_type == PCAPNG_SHB {
                // A new section, possibly in the other byte order: its length is read again
                // after the byte-order magic.
                self.read_section_header(offset, &head)?;
                continue;
            }
            let total = endian.u32(&head, 4).unwrap_or(0);
            let body = self.block_body(offset, endian, total, 8, 12)?;
            match block_type {
                1 => self.read_interface(offset, endian, &body)?,
                2 | 3 | 6 => return self.packet_block(offset, endian, block_type, body).map(Some),
                _ => {}
            }
        }
    }

    /// An interface description block. A bad one is still recorded (with what could be read),
    /// so the interface numbers of later blocks stay right.
    fn read_interface(&mut self, offset: u64, endian: Endian, body: &[u8]) -> Result<(), CaptureError> {
        let link_type = LinkType(endian.u16(body, 0).unwrap_or(u16::MAX));
        let snap_length = endian.u32(body, 4).unwrap_or(0);
        let mut interface = Interface {
            link_type,
            snap_length,
            resolution: MICROSECONDS,
            offset_seconds: 0,
        };
        let mut problem = (body.len() < 8).then(|| "interface description block shorter than 8 bytes".to_owned());
        let mut at = 8;
        while let (Some(code), Some(len)) = (endian.u16(body, at), endian.u16(body, at + 2)) {
            let value_at = at + 4;
            let len = usize::from(len);
            let Some(value) = body.get(value_at..value_at + len) else {
                problem = Some(format!("interface option {code} runs past its block"));
                break;
            };
            match (code, value) {
                (0, _) => break,
                (9, [resolution]) => match Resolution::from_option(*resolution) {
                    Some(r) => interface.resolution = r,
                    None => problem = Some(format!("if_tsresol {resolution:#04x} is finer than 2^-64 seconds")),
                },
                (14, _) => match endian.i64(value, 0) {
                    Some(seconds) if value.len() == 8 => interface.offset_seconds = seconds,
                    _ => problem = Some("if_tsoffset is not 8 bytes".to_owned()),
                },
                (9, _) => problem = Some("if_tsresol is not 1 byte".to_owned()),
                _ => {}
            }
            at = value_at + len.div_ceil(4) * 4;
        }
        let index = match &mut self.format {
            Format::Ng { interfaces, .. } => {
                interfaces.push(interface);
                interfaces.len() - 1
            }
            Format::Classic { .. } => 0,
        };
        match problem {
            Some(what) => Err(format_error(offset, format!("interface {index}: {what}"))),
            None => Ok(()),
        }
    }

    fn interface(&self, index: usize) -> Option<Interface> {
        match &self.format {
            Format::Ng { interfaces, .. } => interfaces.get(index).copied(),
            Format::Classic { .. } => None,
        }
    }

    /// An enhanced (6), simple (3) or obsolete (2) packet block.
    fn packet_block(
        &mut self,
        offset: u64,
        endian: Endian,
        block_type: u32,
        body: Vec<u8>,
    ) -> Result<Packet, CaptureError> {
        self.packets += 1;
        let number = self.packets;
        let field = |at| endian.u32(&body, at);
        let (index, units, captured, original, data_at) = if block_type == 3 {
            let original = field(0);
            let available = u32::try_from(body.len().saturating_sub(4)).unwrap_or(u32::MAX);
            let snap = self.interface(0).map_or(0, |i| i.snap_length);
            let captured = original.map(|o| {
                let c = o.min(available);
                if snap > 0 { c.min(snap) } else { c }
            });
            (Some(0), None, captured, original, 4usize)
        } else {
            let index = if block_type == 2 {
                endian.u16(&body, 0).map(u32::from)
            } else {
                field(0)
            };
            let units = field(4)
                .zip(field(8))
                .map(|(high, low)| (u64::from(high) << 32) | u64::from(low));
            (index, units, field(12), field(16), 20)
        };
        let kind = match block_type {
            3 => "simple packet block",
            6 => "enhanced packet block",
            _ => "packet block",
        };
        let (Some(index), Some(captured), Some(original)) = (index, captured, original) else {
            return Err(format_error(
                offset,
                format!("packet {number}: {kind} shorter than its fixed fields"),
            ));
        };
        let index = usize::try_from(index).unwrap_or(usize::MAX);
        let Some(interface) = self.interface(index) else {
            return Err(format_error(
                offset,
                format!("packet {number}: interface {index} has no interface description block"),
            ));
        };
        let captured = usize::try_from(captured).unwrap_or(usize::MAX);
        let Some(end) = data_at.checked_add(captured).filter(|end| *end <= body.len()) else {
            return Err(format_error(
                offset,
                format!("packet {number}: captured length {captured} runs past its {kind}"),
            ));
        };
        let data = Bytes::from(body).slice(data_at..end);
        let timestamp = units.and_then(|u| interface.resolution.timestamp(u, interface.offset_seconds));
        Ok(Packet {
            number,
            offset,
            timestamp,
            link_type: interface.link_type,
            data,
            original_length: original,
        })
    }
}

fn classic_format(header: &[u8; 24]) -> Format {
    let magic_le = Endian::Little.u32(header, 0).unwrap_or(0);
    let (endian, magic) = if matches!(magic_le, 0xa1b2_c3d4 | 0xa1b2_3c4d | 0xa1b2_cd34) {
        (Endian::Little, magic_le)
    } else {
        (Endian::Big, magic_le.swap_bytes())
    };
    // The link-type field's upper 16 bits carry FCS information; the type is the lower 16.
    let link_type = LinkType(u16::try_from(endian.u32(header, 20).unwrap_or(0) & 0xffff).unwrap_or(0));
    Format::Classic {
        endian,
        nanos: magic == 0xa1b2_3c4d,
        extended: magic == 0xa1b2_cd34,
        link_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::test_packets::{self as tp, PcapNg};

    fn read_all(bytes: &[u8]) -> (Vec<Packet>, Vec<String>) {
        let mut packets = Vec::new();
        let mut errors = Vec::new();
        let mut reader = match PacketReader::new(bytes) {
            Ok(reader) => reader,
            Err(error) => return (packets, vec![error.to_string()]),
        };
        loop {
            match reader.next_packet() {
                Ok(Some(packet)) => packets.push(packet),
                Ok(None) => return (packets, errors),
                Err(error) => errors.push(error.to_string()),
            }
        }
    }

    fn rfc3339(packet: &Packet) -> String {
        packet.timestamp.map(|t| t.to_string()).unwrap_or_default()
    }

    #[test]
    fn classic_pcap_in_both_byte_orders_and_units() {
        for big_endian in [false, true] {
            for nanos in [false, true] {
                let fraction = if nanos { 422_603_123 } else { 422_603 };
                let records = [
                    (1_470_939_129, fraction, vec![1, 2, 3]),
                    (1_470_939_130, 0, vec![4; 10]),
                ];
                let file = tp::pcap(113, nanos, big_endian, &records);
                assert_eq!(file_kind(&file), Some(FileKind::Pcap));
                let (packets, errors) = read_all(&file);
                assert!(errors.is_empty(), "{errors:?}");
                assert_eq!(packets.len(), 2);
                assert_eq!((packets[0].number, packets[0].offset), (1, 24));
                assert_eq!((packets[1].number, packets[1].offset), (2, 24 + 16 + 3));
                assert_eq!(packets[0].link_type, LinkType::LINUX_SLL);
                assert_eq!(&packets[0].data[..], [1, 2, 3]);
                assert_eq!(packets[1].original_length, 10);
                let expected = if nanos {
                    "2016-08-11T18:12:09.422603123Z"
                } else {
                    "2016-08-11T18:12:09.422603Z"
                };
                assert_eq!(rfc3339(&packets[0]), expected);
            }
        }
    }

    #[test]
    fn the_modified_pcap_variant_has_longer_record_headers() {
        let mut file = tp::pcap(1, false, false, &[]);
        file[..4].copy_from_slice(&0xa1b2_cd34u32.to_le_bytes());
        for field in [5u32, 6, 2, 2, 0, 0] {
            file.extend_from_slice(&field.to_le_bytes());
        }
        file.extend_from_slice(&[7, 8]);
        let (packets, errors) = read_all(&file);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(&packets[0].data[..], [7, 8]);
        assert_eq!(rfc3339(&packets[0]), "1970-01-01T00:00:05.000006Z");
    }

    #[test]
    fn pcapng_interfaces_resolutions_and_block_kinds() {
        for big_endian in [false, true] {
            let mut file = PcapNg::new(big_endian);
            file.interface(1, None)
                .interface(101, Some(9))
                .block(0x0bad, b"a custom block nobody reads")
                .packet(0, 1_470_939_129_422_603, &[1, 2])
                .block(4, &[0; 8])
                .packet(1, 1_470_939_129_422_603_123, &[3])
                .simple_packet(&[4, 5, 6]);
            let file = file.bytes();
            assert_eq!(file_kind(&file), Some(FileKind::PcapNg));
            let (packets, errors) = read_all(&file);
            assert!(errors.is_empty(), "{errors:?}");
            let seen: Vec<_> = packets
                .iter()
                .map(|p| (p.number, p.link_type.0, p.data.to_vec(), rfc3339(p)))
                .collect();
            assert_eq!(
                seen,
                [
                    (1, 1, vec![1, 2], "2016-08-11T18:12:09.422603Z".to_owned()),
                    (2, 101, vec![3], "2016-08-11T18:12:09.422603123Z".to_owned()),
                    (3, 1, vec![4, 5, 6], String::new()),
                ]
            );
        }
    }

    #[test]
    fn pcapng_binary_resolution_and_time_offset() {
        let mut file = PcapNg::new(false);
        // if_tsresol 2^-10 seconds and if_tsoffset 1,000,000,000 s, options by hand.
        let mut idb = vec![1, 0, 0, 0, 0, 0, 0, 0];
        idb.extend_from_slice(&[9, 0, 1, 0, 0x8a, 0, 0, 0]);
        idb.extend_from_slice(&[14, 0, 8, 0]);
        idb.extend_from_slice(&1_000_000_000i64.to_le_bytes());
        idb.extend_from_slice(&[0, 0, 0, 0]);
        file.block(1, &idb).packet(0, 3 * 1024 + 512, &[1]);
        let (packets, errors) = read_all(&file.bytes());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(rfc3339(&packets[0]), "2001-09-09T01:46:43.500000000Z");
    }

    #[test]
    fn a_new_section_forgets_interfaces_and_may_change_byte_order() {
        let mut first = PcapNg::new(false);
        first.interface(1, None).interface(1, None).packet(1, 0, &[1]);
        let mut second = PcapNg::new(true);
        second.interface(101, None).packet(1, 0, &[2]).packet(0, 0, &[3]);
        let file = [first.bytes(), second.bytes()].concat();
        let (packets, errors) = read_all(&file);
        assert_eq!(packets.len(), 2);
        assert_eq!(
            (packets[0].link_type, &packets[0].data[..]),
            (LinkType::ETHERNET, &[1][..])
        );
        assert_eq!((packets[1].number, packets[1].link_type), (3, LinkType::RAW));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("packet 2: interface 1 has no interface description block"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_bad_block_inside_good_framing_is_skipped() {
        let mut file = PcapNg::new(false);
        file.interface(1, None);
        // An enhanced packet block whose captured length runs past the block.
        let mut epb = vec![0u8; 20];
        epb[12..16].copy_from_slice(&100u32.to_le_bytes());
        file.block(6, &epb).packet(0, 0, &[9]);
        file.interface(1, Some(0x7f)); // a resolution finer than 2^-64 s
        let (packets, errors) = read_all(&file.bytes());
        assert_eq!(packets.len(), 1);
        assert_eq!(packets[0].number, 2);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("packet 1: captured length 100 runs past its enhanced packet block"));
        assert!(errors[1].contains("if_tsresol 0x7f"), "{errors:?}");
    }

    #[test]
    fn every_truncation_is_a_clear_error() {
        let records = [(1, 2, vec![0xaa; 40]), (3, 4, vec![0xbb; 7])];
        let classic = tp::pcap(1, false, false, &records);
        let mut ng = PcapNg::new(false);
        ng.interface(1, None).packet(0, 5, &[0xaa; 40]).packet(0, 6, &[0xbb; 7]);
        let ng = ng.bytes();
        // Offsets where a file may end cleanly, and the packets before each.
        let classic_ends = vec![(24, 0), (24 + 56, 1), (classic.len(), 2)];
        let ng_ends = vec![(28, 0), (28 + 20, 0), (28 + 20 + 72, 1), (ng.len(), 2)];
        for (file, ends) in [(classic, classic_ends), (ng, ng_ends)] {
            for len in 0..=file.len() {
                let (packets, errors) = read_all(&file[..len]);
                match ends.iter().find(|(end, _)| *end == len) {
                    Some((_, count)) => {
                        assert!(errors.is_empty(), "{len}: {errors:?}");
                        assert_eq!(packets.len(), *count);
                    }
                    None => {
                        assert_eq!(errors.len(), 1, "{len}: {errors:?}");
                        let complete = ends.iter().filter(|(end, _)| *end < len).map(|(_, n)| *n).max();
                        assert_eq!(packets.len(), complete.unwrap_or(0), "{len}");
                        assert!(
                            errors[0].contains("cut short") || errors[0].contains("not a pcap"),
                            "{len}: {errors:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn garbage_and_broken_lengths_end_the_file_without_panics() {
        let (_, errors) = read_all(b"GET / HTTP/1.1\r\n");
        assert_eq!(errors, ["at byte 0: not a pcap or pcapng file"]);
        // A record claiming far more than the limit allocates nothing and ends the file.
        let mut file = tp::pcap(1, false, false, &[(0, 0, vec![1])]);
        file[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        let (packets, errors) = read_all(&file);
        assert!(packets.is_empty());
        assert!(errors[0].contains("exceeds the 67108864-byte limit"), "{errors:?}");
        // pcapng: a length that is no multiple of 4, and a trailer that disagrees.
        let mut ng = PcapNg::new(false);
        ng.interface(1, None);
        let mut bad = ng.bytes();
        bad[28 + 4] = 21;
        assert!(read_all(&bad).1[0].contains("block length 21 is not a valid pcapng block length"));
        let mut bad = ng.bytes();
        let last = bad.len() - 4;
        bad[last] = 24;
        assert!(read_all(&bad).1[0].contains("trailing length"));
        let mut bad = ng.bytes();
        bad[8] = 0x99;
        assert!(read_all(&bad).1[0].contains("byte-order magic"));
        // Byte flips anywhere in a small file never panic.
        let mut ng = PcapNg::new(false);
        ng.interface(1, Some(6)).packet(0, 1, &[1, 2, 3]).simple_packet(&[4]);
        let ng = ng.bytes();
        let classic = tp::pcap(101, true, true, &[(1, 2, vec![3; 5])]);
        for file in [ng, classic] {
            for at in 0..file.len() {
                for value in [0x00, 0x7f, 0xff] {
                    let mut mutated = file.clone();
                    mutated[at] = value;
                    let _ = read_all(&mutated);
                }
            }
        }
    }
}
