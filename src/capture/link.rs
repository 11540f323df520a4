//! From a captured frame to a TCP segment: link layer, IPv4/IPv6, TCP.
//!
//! Link layers: Ethernet II with any number (up to 8) of 802.1Q/802.1ad VLAN tags, Linux cooked
//! captures (SLL and SLL2), BSD loopback (`NULL`, the address family in either byte order, and
//! OpenBSD's `LOOP`) and raw IP (`LINKTYPE_RAW` 101, the platform `DLT_RAW` numbers 12 and 14,
//! and the IPv4-only and IPv6-only types 228 and 229).
//!
//! IPv4: the header length comes from IHL, so options are skipped; the total length trims
//! Ethernet padding (a zero total length, which TCP segmentation offload leaves in captures,
//! means "the rest of the frame"). IPv6: hop-by-hop, routing, destination-options, mobility,
//! HIP, shim6 and authentication headers are skipped. IP fragments are not reassembled: every
//! fragment is reported as [`PacketError::Fragment`] and skipped, and the TCP layer then sees (and
//! reports) the hole. Checksums are not verified, because captures taken on the sending host are
//! full of checksums the network card would have filled in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;

use super::pcap::LinkType;

/// TCP header flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from the sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers: the first segment of each direction.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push.
    pub const PSH: u8 = 0x08;
    /// The acknowledgment number is valid.
    pub const ACK: u8 = 0x10;

    /// Whether every bit of `flag` is set.
    pub fn has(self, flag: u8) -> bool {
        self.0 & flag == flag
    }
}

/// One TCP segment, with the addresses of the IP packet around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSegment {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Sequence number of the first payload byte (of the SYN itself when SYN is set).
    pub seq: u32,
    /// Acknowledgment number (meaningful when ACK is set).
    pub ack: u32,
    /// Header flags.
    pub flags: TcpFlags,
    /// Payload as captured: shorter than the IP header says when a snap length cut the packet.
    pub payload: Bytes,
}

/// Why a captured frame yielded no TCP segment although it should have, or could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// A link type this reader does not know.
    #[error("link type {0} is not supported (said once per link type)")]
    UnsupportedLinkType(u16),
    /// A header runs past the captured bytes.
    #[error("{layer} header cut short: needs {needed} bytes, {available} captured")]
    Truncated {
        /// "Ethernet", "IPv4", "TCP"...
        layer: &'static str,
        /// Bytes the header needs.
        needed: usize,
        /// Bytes captured from its start.
        available: usize,
    },
    /// A header field with an impossible value.
    #[error("{layer}: {what}")]
    Invalid {
        /// The layer concerned.
        layer: &'static str,
        /// What was wrong.
        what: String,
    },
    /// An IP fragment; fragments are not reassembled.
    #[error("IP fragment (id {id:#x}, offset {offset}); fragments are not reassembled")]
    Fragment {
        /// The datagram's identification field.
        id: u32,
        /// The fragment's offset in bytes.
        offset: u32,
    },
}

fn truncated(layer: &'static str, needed: usize, available: usize) -> PacketError {
    PacketError::Truncated {
        layer,
        needed,
        available,
    }
}

fn invalid(layer: &'static str, what: impl Into<String>) -> PacketError {
    PacketError::Invalid {
        layer,
        what: what.into(),
    }
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn byte_at(data: &[u8], at: usize) -> Option<u8> {
    data.get(at).copied()
}

/// `data[start..end]` as a shared slice, if that range lies inside `data`.
fn sub(data: &Bytes, start: usize, end: usize) -> Option<Bytes> {
    (start <= end && end <= data.len()).then(|| data.slice(start..end))
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const MAX_VLAN_TAGS: usize = 8;

/// The TCP segment in a frame of `link_type`; `Ok(None)` for anything that is not TCP over IP
/// (ARP, UDP, ICMP...), which a MongoDB capture may well contain and nobody needs to hear about.
pub fn tcp_segment(link_type: LinkType, frame: &Bytes) -> Result<Option<TcpSegment>, PacketError> {
    match link_type {
        LinkType::ETHERNET => {
            let ethertype = u16_at(frame, 12).ok_or_else(|| truncated("Ethernet", 14, frame.len()))?;
            ethertype_payload("Ethernet", ethertype, frame, 14)
        }
        LinkType::LINUX_SLL => {
            let protocol = u16_at(frame, 14).ok_or_else(|| truncated("Linux cooked", 16, frame.len()))?;
            ethertype_payload("Linux cooked", protocol, frame, 16)
        }
        LinkType::LINUX_SLL2 => {
            let protocol = u16_at(frame, 0).filter(|_| frame.len() >= 20);
            let protocol = protocol.ok_or_else(|| truncated("Linux cooked v2", 20, frame.len()))?;
            ethertype_payload("Linux cooked v2", protocol, frame, 20)
        }
        LinkType::NULL | LinkType::LOOP => {
            let family: [u8; 4] = frame
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| truncated("loopback", 4, frame.len()))?;
            // The family is in the capturing host's byte order (network order for LOOP); the
            // two readings never collide, since every family number is below 256.
            let family = match u32::from_le_bytes(family) {
                f if f < 256 => f,
                _ => u32::from_be_bytes(family),
            };
            match family {
                2 => ip_packet(frame, 4, Some(4)),
                // AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD and macOS.
                10 | 24 | 28 | 30 => ip_packet(frame, 4, Some(6)),
                _ => Ok(None),
            }
        }
        LinkType::RAW | LinkType::RAW_BSD | LinkType::RAW_OPENBSD => ip_packet(frame, 0, None),
        LinkType::IPV4 => ip_packet(frame, 0, Some(4)),
        LinkType::IPV6 => ip_packet(frame, 0, Some(6)),
        LinkType(other) => Err(PacketError::UnsupportedLinkType(other)),
    }
}

/// The IP packet after a link header whose protocol field is an ethertype, past VLAN tags.
fn ethertype_payload(
    layer: &'static str,
    mut ethertype: u16,
    frame: &Bytes,
    mut at: usize,
) -> Result<Option<TcpSegment>, PacketError> {
    for _ in 0..MAX_VLAN_TAGS {
        match ethertype {
            ETHERTYPE_IPV4 => return ip_packet(frame, at, Some(4)),
            ETHERTYPE_IPV6 => return ip_packet(frame, at, Some(6)),
            // 802.1Q, 802.1ad and the pre-standard QinQ tag: 2 bytes of tag control, then
            // the next ethertype.
            0x8100 | 0x88a8 | 0x9100 => {
                ethertype = u16_at(frame, at + 2).ok_or_else(|| truncated(layer, at + 4, frame.len()))?;
                at += 4;
            }
            _ => return Ok(None),
        }
    }
    Err(invalid(layer, format!("more than {MAX_VLAN_TAGS} VLAN tags")))
}

/// The IP packet starting at `at`; `version` is what the link layer announced, if it did.
fn ip_packet(frame: &Bytes, at: usize, version: Option<u8>) -> Result<Option<TcpSegment>, PacketError> {
    let first = byte_at(frame, at).ok_or_else(|| truncated("IP", at + 1, frame.len()))?;
    let found = first >> 4;
    if let Some(expected) = version
        && expected != found
    {
        return Err(invalid(
            "IP",
            format!("version {found} where the link layer said {expected}"),
        ));
    }
    match found {
        4 => ipv4(frame, at),
        6 => ipv6(frame, at),
        other => Err(invalid("IP", format!("version {other}"))),
    }
}

fn ipv4(frame: &Bytes, at: usize) -> Result<Option<TcpSegment>, PacketError> {
    let available = frame.len().saturating_sub(at);
    if available < 20 {
        return Err(truncated("IPv4", 20, available));
    }
    let field16 = |offset: usize| u16_at(frame, at + offset).unwrap_or(0);
    let header_len = usize::from(byte_at(frame, at).unwrap_or(0) & 0x0f) * 4;
    if header_len < 20 {
        return Err(invalid("IPv4", format!("header length {header_len} is below 20")));
    }
    if header_len > available {
        return Err(truncated("IPv4", header_len, available));
    }
    let total = usize::from(field16(2));
    let end = match total {
        0 => frame.len(),
        t if t < header_len => {
            return Err(invalid(
                "IPv4",
                format!("total length {t} is below the header length {header_len}"),
            ));
        }
        t => frame.len().min(at + t),
    };
    let fragment = field16(6);
    let more_fragments = fragment & 0x2000 != 0;
    let offset = u32::from(fragment & 0x1fff) * 8;
    if more_fragments || offset != 0 {
        return Err(PacketError::Fragment {
            id: u32::from(field16(4)),
            offset,
        });
    }
    if byte_at(frame, at + 9) != Some(6) {
        return Ok(None);
    }
    let address = |offset: usize| {
        let octets: [u8; 4] = frame
            .get(at + offset..at + offset + 4)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; 4]);
        IpAddr::V4(Ipv4Addr::from(octets))
    };
    tcp(frame, at + header_len, end, address(12), address(16))
}

/// IPv6 extension headers skipped on the way to TCP, with how their length is counted.
fn extension_length(next_header: u8, frame: &[u8], at: usize) -> Option<Result<usize, PacketError>> {
    let len_byte = || {
        byte_at(frame, at + 1)
            .map(usize::from)
            .ok_or_else(|| truncated("IPv6 extension", 2, frame.len().saturating_sub(at)))
    };
    match next_header {
        // Hop-by-hop, routing, destination options, mobility, HIP, shim6: 8-byte units, not
        // counting the first 8.
        0 | 43 | 60 | 135 | 139 | 140 => Some(len_byte().map(|n| (n + 1) * 8)),
        // Authentication header: 4-byte units, not counting the first 2.
        51 => Some(len_byte().map(|n| (n + 2) * 4)),
        _ => None,
    }
}

fn ipv6(frame: &Bytes, at: usize) -> Result<Option<TcpSegment>, PacketError> {
    let available = frame.len().saturating_sub(at);
    if available < 40 {
        return Err(truncated("IPv6", 40, available));
    }
    let payload_len = usize::from(u16_at(frame, at + 4).unwrap_or(0));
    // A zero payload length is a jumbogram or segmentation offload: the rest of the frame.
    let end = if payload_len == 0 {
        frame.len()
    } else {
        frame.len().min(at + 40 + payload_len)
    };
    let address = |offset: usize| {
        let octets: [u8; 16] = frame
            .get(at + offset..at + offset + 16)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; 16]);
        IpAddr::V6(Ipv6Addr::from(octets))
    };
    let (src, dst) = (address(8), address(24));
    let mut next_header = byte_at(frame, at + 6).unwrap_or(59);
    let mut cursor = at + 40;
    // Each extension header is at least 8 bytes, so the walk ends within the packet.
    while cursor < end {
        if next_header == 6 {
            return tcp(frame, cursor, end, src, dst);
        }
        if next_header == 44 {
            let field = u16_at(frame, cursor + 2).ok_or_else(|| truncated("IPv6 fragment", 8, end - cursor))?;
            let offset = u32::from(field >> 3) * 8;
            if offset != 0 || field & 1 != 0 {
                let id = u32_at(frame, cursor + 4).unwrap_or(0);
                return Err(PacketError::Fragment { id, offset });
            }
            // An atomic fragment (offset 0, no more fragments) is a whole packet.
            next_header = byte_at(frame, cursor).unwrap_or(59);
            cursor += 8;
            continue;
        }
        let Some(length) = extension_length(next_header, frame, cursor) else {
            return Ok(None);
        };
        let length = length?;
        next_header = byte_at(frame, cursor).unwrap_or(59);
        cursor += length;
    }
    if next_header == 6 {
        return Err(truncated("TCP", 20, 0));
    }
    Ok(None)
}

fn tcp(frame: &Bytes, at: usize, end: usize, src: IpAddr, dst: IpAddr) -> Result<Option<TcpSegment>, PacketError> {
    let available = end.saturating_sub(at);
    if available < 20 {
        return Err(truncated("TCP", 20, available));
    }
    let header_len = usize::from(byte_at(frame, at + 12).unwrap_or(0) >> 4) * 4;
    if header_len < 20 {
        return Err(invalid("TCP", format!("data offset {header_len} is below 20")));
    }
    if header_len > available {
        return Err(truncated("TCP", header_len, available));
    }
    let payload = sub(frame, at + header_len, end).unwrap_or_default();
    Ok(Some(TcpSegment {
        src: SocketAddr::new(src, u16_at(frame, at).unwrap_or(0)),
        dst: SocketAddr::new(dst, u16_at(frame, at + 2).unwrap_or(0)),
        seq: u32_at(frame, at + 4).unwrap_or(0),
        ack: u32_at(frame, at + 8).unwrap_or(0),
        flags: TcpFlags(byte_at(frame, at + 13).unwrap_or(0)),
        payload,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::test_packets::{self as tp, ACK, PSH};

    fn v4() -> (SocketAddr, SocketAddr) {
        ("10.0.0.1:50000".parse().unwrap(), "10.0.0.2:27017".parse().unwrap())
    }

    fn v6() -> (SocketAddr, SocketAddr) {
        (
            "[2001:db8::1]:50000".parse().unwrap(),
            "[2001:db8::2]:27017".parse().unwrap(),
        )
    }

    fn parse(link_type: u16, frame: Vec<u8>) -> Result<Option<TcpSegment>, PacketError> {
        tcp_segment(LinkType(link_type), &Bytes::from(frame))
    }

    fn segment(link_type: u16, frame: Vec<u8>) -> TcpSegment {
        parse(link_type, frame).unwrap().expect("a TCP segment")
    }

    fn assert_hello(segment: &TcpSegment, (src, dst): (SocketAddr, SocketAddr)) {
        assert_eq!((segment.src, segment.dst), (src, dst));
        assert_eq!((segment.seq, segment.ack), (1000, 2000));
        assert!(segment.flags.has(TcpFlags::PSH) && segment.flags.has(TcpFlags::ACK));
        assert!(!segment.flags.has(TcpFlags::SYN));
        assert_eq!(&segment.payload[..], b"hello");
    }

    #[test]
    fn every_link_type_carries_ipv4_and_ipv6() {
        for (addresses, extra) in [(v4(), LinkType::IPV4), (v6(), LinkType::IPV6)] {
            let ip = tp::ip_tcp(addresses.0, addresses.1, 1000, 2000, PSH | ACK, b"hello");
            for link in [0, 1, 12, 14, 101, 108, 113, 276, extra.0] {
                let frame = tp::frame(link, &ip);
                assert_hello(&segment(link, frame), addresses);
            }
        }
    }

    #[test]
    fn loopback_family_in_either_byte_order() {
        let (src, dst) = v6();
        let ip6 = tp::ip_tcp(src, dst, 1000, 2000, PSH | ACK, b"hello");
        for family in [10u32, 24, 28, 30] {
            for bytes in [family.to_le_bytes(), family.to_be_bytes()] {
                let frame = [bytes.as_slice(), &ip6].concat();
                assert_hello(&segment(0, frame), v6());
            }
        }
        let ip4 = tp::ip_tcp(v4().0, v4().1, 1000, 2000, PSH | ACK, b"hello");
        let frame = [2u32.to_be_bytes().as_slice(), &ip4].concat();
        assert_hello(&segment(0, frame), v4());
        // An unknown family (AppleTalk) is not IP.
        let frame = [16u32.to_le_bytes().as_slice(), &ip4].concat();
        assert_eq!(parse(0, frame), Ok(None));
    }

    #[test]
    fn vlan_tags_are_skipped() {
        let ip = tp::ip_tcp(v4().0, v4().1, 1000, 2000, PSH | ACK, b"hello");
        assert_hello(&segment(1, tp::ethernet(&[100], &ip)), v4());
        assert_hello(&segment(1, tp::ethernet(&[100, 200], &ip)), v4());
        let too_many = tp::ethernet(&[1; 9], &ip);
        assert!(matches!(parse(1, too_many), Err(PacketError::Invalid { .. })));
        // A tag cut off by the snap length.
        let frame = tp::ethernet(&[100], &ip);
        assert!(matches!(
            parse(1, frame[..16].to_vec()),
            Err(PacketError::Truncated { .. })
        ));
    }

    #[test]
    fn ipv4_options_and_ethernet_padding_are_skipped() {
        let tcp = tp::tcp(50000, 27017, 1000, 2000, PSH | ACK, b"hello");
        let mut ip = tp::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 6, &tcp);
        // IHL 6: four bytes of options (NOPs) after the fixed header.
        ip[0] = 0x46;
        ip.splice(20..20, [1, 1, 1, 1]);
        let total = u16::try_from(ip.len()).unwrap();
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        let mut frame = tp::ethernet(&[], &ip);
        frame.extend_from_slice(&[0; 6]); // padding to Ethernet's minimum
        assert_hello(&segment(1, frame), v4());
    }

    #[test]
    fn zero_lengths_mean_the_rest_of_the_frame() {
        // Segmentation offload leaves IPv4 total length 0 (and IPv6 payload length 0).
        let mut ip = tp::ip_tcp(v4().0, v4().1, 1000, 2000, PSH | ACK, b"hello");
        ip[2..4].copy_from_slice(&[0, 0]);
        assert_hello(&segment(101, ip), v4());
        let mut ip = tp::ip_tcp(v6().0, v6().1, 1000, 2000, PSH | ACK, b"hello");
        ip[4..6].copy_from_slice(&[0, 0]);
        assert_hello(&segment(101, ip), v6());
    }

    #[test]
    fn a_snap_length_cut_leaves_the_captured_payload() {
        let ip = tp::ip_tcp(v4().0, v4().1, 1000, 2000, PSH | ACK, b"hello, world");
        let cut = ip[..ip.len() - 7].to_vec();
        assert_eq!(&segment(101, cut).payload[..], b"hello");
    }

    #[test]
    fn ipv6_extension_headers_are_skipped() {
        let (src, dst) = v6();
        let tcp = tp::tcp(src.port(), dst.port(), 1000, 2000, PSH | ACK, b"hello");
        // Hop-by-hop (8 bytes) -> destination options (16 bytes) -> atomic fragment -> TCP.
        let mut chain = vec![60, 0, 1, 4, 0, 0, 0, 0];
        chain.extend_from_slice(&[44, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        chain.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 7]);
        chain.extend_from_slice(&tcp);
        let IpAddr::V6(s) = src.ip() else { unreachable!() };
        let IpAddr::V6(d) = dst.ip() else { unreachable!() };
        let ip = tp::ipv6(s.octets(), d.octets(), 0, &chain);
        assert_hello(&segment(229, ip), v6());
    }

    #[test]
    fn fragments_are_reported_not_reassembled() {
        let tcp = tp::tcp(50000, 27017, 1000, 2000, PSH | ACK, b"hello");
        let mut first = tp::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 6, &tcp);
        first[6] = 0x20; // more fragments
        assert_eq!(parse(101, first), Err(PacketError::Fragment { id: 0x1234, offset: 0 }));
        let mut later = tp::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 6, &tcp);
        later[6..8].copy_from_slice(&[0, 3]);
        assert_eq!(parse(101, later), Err(PacketError::Fragment { id: 0x1234, offset: 24 }));
        let fragment_header = [[6, 0, 0, 0x19].as_slice(), &7u32.to_be_bytes(), &tcp].concat();
        let ip = tp::ipv6([0; 16], [1; 16], 44, &fragment_header);
        assert_eq!(parse(229, ip), Err(PacketError::Fragment { id: 7, offset: 24 }));
    }

    #[test]
    fn other_protocols_are_ignored_silently() {
        let udp = tp::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 17, &[0; 8]);
        assert_eq!(parse(1, tp::ethernet(&[], &udp)), Ok(None));
        let mut arp = tp::ethernet(&[], &[0; 28]);
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(parse(1, arp), Ok(None));
        assert_eq!(parse(229, tp::ipv6([0; 16], [1; 16], 17, &[0; 8])), Ok(None));
        assert_eq!(parse(229, tp::ipv6([0; 16], [1; 16], 59, &[])), Ok(None));
    }

    #[test]
    fn broken_headers_are_errors() {
        let ip = tp::ip_tcp(v4().0, v4().1, 1000, 2000, PSH | ACK, b"hello");
        let truncated = |link, frame: &[u8]| matches!(parse(link, frame.to_vec()), Err(PacketError::Truncated { .. }));
        assert!(truncated(1, &[0; 10]));
        assert!(truncated(113, &[0; 12]));
        assert!(truncated(276, &[0; 19]));
        assert!(truncated(0, &[2, 0]));
        assert!(truncated(101, &ip[..12]));
        assert!(truncated(101, &ip[..30]), "TCP header cut short");
        assert!(truncated(229, &tp::ipv6([0; 16], [1; 16], 6, &[])[..30]));
        let mut bad_ihl = ip.clone();
        bad_ihl[0] = 0x44;
        assert!(matches!(
            parse(101, bad_ihl),
            Err(PacketError::Invalid { layer: "IPv4", .. })
        ));
        let mut bad_offset = ip.clone();
        bad_offset[32] = 0x40;
        assert!(matches!(
            parse(101, bad_offset),
            Err(PacketError::Invalid { layer: "TCP", .. })
        ));
        let v6_in_v4 = tp::frame(228, &tp::ip_tcp(v6().0, v6().1, 1, 2, ACK, b""));
        assert!(matches!(
            parse(228, v6_in_v4),
            Err(PacketError::Invalid { layer: "IP", .. })
        ));
        assert_eq!(parse(105, ip), Err(PacketError::UnsupportedLinkType(105)));
    }

    #[test]
    fn no_prefix_of_any_frame_panics() {
        for link in [0u16, 1, 12, 14, 101, 108, 113, 228, 229, 276] {
            for addresses in [v4(), v6()] {
                let frame = tp::frame(link, &tp::ip_tcp(addresses.0, addresses.1, 1, 2, ACK, b"payload"));
                for len in 0..=frame.len() {
                    let _ = parse(link, frame[..len].to_vec());
                    let mut flipped = frame.clone();
                    if let Some(byte) = flipped.get_mut(len) {
                        *byte ^= 0xff;
                    }
                    let _ = parse(link, flipped);
                }
            }
        }
    }
}
