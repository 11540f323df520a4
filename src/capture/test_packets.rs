//! Builders of packets and capture files, for tests and fuzz seeds only.
//!
//! This file uses nothing but `std`, so the library's unit tests, the integration tests
//! (`#[path]`-included) and the fuzz crate's seed generator share one set of builders. Checksums
//! are left zero: the readers never verify them (captures taken with checksum offload are full of
//! wrong ones).
#![allow(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap
)]

use std::net::{IpAddr, SocketAddr};

/// TCP flag bits.
pub(crate) const FIN: u8 = 0x01;
pub(crate) const SYN: u8 = 0x02;
pub(crate) const RST: u8 = 0x04;
pub(crate) const PSH: u8 = 0x08;
pub(crate) const ACK: u8 = 0x10;

/// A TCP header (no options) followed by `payload`.
pub(crate) fn tcp(src_port: u16, dst_port: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + payload.len());
    out.extend_from_slice(&src_port.to_be_bytes());
    out.extend_from_slice(&dst_port.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&ack.to_be_bytes());
    out.push(5 << 4);
    out.push(flags);
    out.extend_from_slice(&65_535u16.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
    out
}

/// An IPv4 header (no options, don't-fragment set) around `payload`.
pub(crate) fn ipv4(src: [u8; 4], dst: [u8; 4], protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x45, 0];
    out.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    out.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, protocol, 0, 0]);
    out.extend_from_slice(&src);
    out.extend_from_slice(&dst);
    out.extend_from_slice(payload);
    out
}

/// An IPv6 header around `payload`, whose first header is `next_header`.
pub(crate) fn ipv6(src: [u8; 16], dst: [u8; 16], next_header: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x60, 0, 0, 0];
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(&[next_header, 64]);
    out.extend_from_slice(&src);
    out.extend_from_slice(&dst);
    out.extend_from_slice(payload);
    out
}

/// An IPv4 or IPv6 packet (after the addresses' family) carrying one TCP segment.
pub(crate) fn ip_tcp(src: SocketAddr, dst: SocketAddr, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let segment = tcp(src.port(), dst.port(), seq, ack, flags, payload);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4(s.octets(), d.octets(), 6, &segment),
        (IpAddr::V6(s), IpAddr::V6(d)) => ipv6(s.octets(), d.octets(), 6, &segment),
        _ => panic!("mixed address families"),
    }
}

/// The ethertype of an IP packet, from its version nibble.
fn ethertype_of(ip: &[u8]) -> u16 {
    if ip.first().map(|b| b >> 4) == Some(6) {
        0x86dd
    } else {
        0x0800
    }
}

/// An Ethernet II frame, with an 802.1Q tag per entry of `vlans`.
pub(crate) fn ethernet(vlans: &[u16], ip: &[u8]) -> Vec<u8> {
    let mut out = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02];
    for vlan in vlans {
        out.extend_from_slice(&0x8100u16.to_be_bytes());
        out.extend_from_slice(&vlan.to_be_bytes());
    }
    out.extend_from_slice(&ethertype_of(ip).to_be_bytes());
    out.extend_from_slice(ip);
    out
}

/// A frame of `link_type` carrying the IP packet `ip`: 0 and 108 (BSD loopback, family in
/// little- and big-endian order), 1 (Ethernet), 101/12/14/228/229 (raw IP), 113 (Linux cooked),
/// 276 (Linux cooked v2).
pub(crate) fn frame(link_type: u16, ip: &[u8]) -> Vec<u8> {
    let v6 = ethertype_of(ip) == 0x86dd;
    let mut out = Vec::new();
    match link_type {
        0 => out.extend_from_slice(&(if v6 { 30u32 } else { 2 }).to_le_bytes()),
        108 => out.extend_from_slice(&(if v6 { 24u32 } else { 2 }).to_be_bytes()),
        1 => return ethernet(&[], ip),
        113 => {
            out.extend_from_slice(&[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
            out.extend_from_slice(&ethertype_of(ip).to_be_bytes());
        }
        276 => {
            out.extend_from_slice(&ethertype_of(ip).to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
        }
        _ => {}
    }
    out.extend_from_slice(ip);
    out
}

/// One packet of a capture file: seconds, fraction (micro- or nanoseconds, or pcapng units),
/// bytes.
pub(crate) type Record = (u32, u32, Vec<u8>);

/// A classic pcap file.
pub(crate) fn pcap(link_type: u32, nanos: bool, big_endian: bool, records: &[Record]) -> Vec<u8> {
    let u32b = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let u16b = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut out = Vec::new();
    out.extend_from_slice(&u32b(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    out.extend_from_slice(&u16b(2));
    out.extend_from_slice(&u16b(4));
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&u32b(262_144));
    out.extend_from_slice(&u32b(link_type));
    for (seconds, fraction, data) in records {
        for field in [*seconds, *fraction, data.len() as u32, data.len() as u32] {
            out.extend_from_slice(&u32b(field));
        }
        out.extend_from_slice(data);
    }
    out
}

/// A pcapng file under construction, in one byte order.
pub(crate) struct PcapNg {
    big_endian: bool,
    out: Vec<u8>,
}

impl PcapNg {
    /// A file starting with a section header block.
    pub(crate) fn new(big_endian: bool) -> PcapNg {
        let mut file = PcapNg {
            big_endian,
            out: Vec::new(),
        };
        file.section();
        file
    }

    fn u16b(&self, v: u16) -> [u8; 2] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u32b(&self, v: u32) -> [u8; 4] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// Appends a block of `block_type` around `body` (padded to 4 bytes).
    pub(crate) fn block(&mut self, block_type: u32, body: &[u8]) -> &mut PcapNg {
        let padded = body.len().div_ceil(4) * 4;
        let total = (12 + padded) as u32;
        let (t, l) = (self.u32b(block_type), self.u32b(total));
        self.out.extend_from_slice(&t);
        self.out.extend_from_slice(&l);
        self.out.extend_from_slice(body);
        self.out.resize(self.out.len() + padded - body.len(), 0);
        self.out.extend_from_slice(&l);
        self
    }

    /// A new section header block (it forgets the interfaces of the previous section).
    pub(crate) fn section(&mut self) -> &mut PcapNg {
        let mut body = self.u32b(0x1a2b_3c4d).to_vec();
        body.extend_from_slice(&self.u16b(1));
        body.extend_from_slice(&self.u16b(0));
        body.extend_from_slice(&[0xff; 8]);
        self.block(0x0a0d_0d0a, &body)
    }

    /// An interface description block; `tsresol` is the if_tsresol option byte, if any.
    pub(crate) fn interface(&mut self, link_type: u16, tsresol: Option<u8>) -> &mut PcapNg {
        let mut body = self.u16b(link_type).to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&self.u32b(0));
        if let Some(resolution) = tsresol {
            body.extend_from_slice(&self.u16b(9));
            body.extend_from_slice(&self.u16b(1));
            body.extend_from_slice(&[resolution, 0, 0, 0]);
            body.extend_from_slice(&[0; 4]);
        }
        self.block(1, &body)
    }

    /// An enhanced packet block: interface, timestamp in the interface's units, data.
    pub(crate) fn packet(&mut self, interface: u32, units: u64, data: &[u8]) -> &mut PcapNg {
        let mut body = self.u32b(interface).to_vec();
        body.extend_from_slice(&self.u32b((units >> 32) as u32));
        body.extend_from_slice(&self.u32b(units as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(data);
        self.block(6, &body)
    }

    /// A simple packet block (interface 0, no timestamp).
    pub(crate) fn simple_packet(&mut self, data: &[u8]) -> &mut PcapNg {
        let mut body = self.u32b(data.len() as u32).to_vec();
        body.extend_from_slice(data);
        self.block(3, &body)
    }

    /// The file's bytes.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.out.clone()
    }
}

/// A mongoreplay playback file: the header document, then one record per `(message bytes,
/// source port, destination port, connection)`, built by hand in the format mongoreplay writes
/// (`rawop.header` fields as int32, `rawop.body` holding the whole message, `seen` as Go's
/// seconds since year 1 and nanoseconds).
pub(crate) fn playback(records: &[(Vec<u8>, u16, u16, i64)]) -> Vec<u8> {
    fn element(out: &mut Vec<u8>, kind: u8, name: &str, value: &[u8]) {
        out.push(kind);
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value);
    }
    fn document(elements: &[u8]) -> Vec<u8> {
        let mut out = ((elements.len() + 5) as i32).to_le_bytes().to_vec();
        out.extend_from_slice(elements);
        out.push(0);
        out
    }
    fn string(value: &str) -> Vec<u8> {
        let mut out = ((value.len() + 1) as i32).to_le_bytes().to_vec();
        out.extend_from_slice(value.as_bytes());
        out.push(0);
        out
    }
    let mut file = Vec::new();
    let mut head = Vec::new();
    element(&mut head, 0x10, "playbackfileversion", &1i32.to_le_bytes());
    element(&mut head, 0x08, "driveropsfiltered", &[0]);
    file.extend_from_slice(&document(&head));
    for (order, (message, src, dst, connection)) in records.iter().enumerate() {
        let field = |i: usize| message.get(i..i + 4).map_or([0; 4], |b| b.try_into().unwrap());
        let mut header = Vec::new();
        element(&mut header, 0x10, "messagelength", &field(0));
        element(&mut header, 0x10, "requestid", &field(4));
        element(&mut header, 0x10, "responseto", &field(8));
        element(&mut header, 0x10, "opcode", &field(12));
        let mut body = (message.len() as i32).to_le_bytes().to_vec();
        body.push(0);
        body.extend_from_slice(message);
        let mut rawop = Vec::new();
        element(&mut rawop, 0x03, "header", &document(&header));
        element(&mut rawop, 0x05, "body", &body);
        let mut seen = Vec::new();
        element(
            &mut seen,
            0x12,
            "sec",
            &(62_135_596_800i64 + 1_470_939_129 + order as i64).to_le_bytes(),
        );
        element(&mut seen, 0x10, "nsec", &422_603_000i32.to_le_bytes());
        let mut record = Vec::new();
        element(&mut record, 0x03, "rawop", &document(&rawop));
        element(&mut record, 0x03, "seen", &document(&seen));
        element(&mut record, 0x02, "srcendpoint", &string(&src.to_string()));
        element(&mut record, 0x02, "dstendpoint", &string(&dst.to_string()));
        element(&mut record, 0x12, "seenconnectionnum", &connection.to_le_bytes());
        element(&mut record, 0x12, "playedconnectionnum", &0i64.to_le_bytes());
        element(&mut record, 0x10, "generation", &0i32.to_le_bytes());
        element(&mut record, 0x12, "order", &(order as i64 + 1).to_le_bytes());
        file.extend_from_slice(&document(&record));
    }
    file
}
