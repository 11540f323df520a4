//! OP_MSG (opcode 2013), as the OP_MSG specification defines it.
//!
//! ```text
//! OP_MSG {
//!     MsgHeader header;          // opCode 2013
//!     uint32 flagBits;           // bit 0 checksumPresent, bit 1 moreToCome, bit 16 exhaustAllowed
//!     Sections[] sections;       // exactly one kind 0, any number of kind 1, in any order
//!     optional<uint32> checksum; // CRC-32C of everything before it, when checksumPresent
//! }
//! kind 0: uint8 0, document body
//! kind 1: uint8 1, int32 size (includes itself), cstring identifier, document* documents
//! ```

use bson::{RawDocument, RawDocumentBuf};
use bytes::{BufMut, Bytes, BytesMut};

use super::DecodeError;
use super::documents::{Documents, SharedDocument, concat_documents, cstring_bytes, cstring_str, document_view};
use super::error::{DecodeErrorKind, EncodeError};
use super::header::{HEADER_LEN, OpCode};
use super::message::write_message;
use super::reader::Reader;

/// The OP_MSG flagBits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MsgFlags(u32);

impl MsgFlags {
    /// A CRC-32C checksum follows the sections.
    pub const CHECKSUM_PRESENT: MsgFlags = MsgFlags(1);
    /// The sender will send another message without waiting for a reply; the receiver must
    /// not answer this one.
    pub const MORE_TO_COME: MsgFlags = MsgFlags(1 << 1);
    /// The client accepts several replies to this request (exhaust cursors, streaming hello).
    pub const EXHAUST_ALLOWED: MsgFlags = MsgFlags(1 << 16);
    /// Bits 2-15: reserved, and an error when set. Bits 16-31 are optional and ignored unless
    /// known, so that newer peers can add flags.
    const RESERVED: u32 = 0xffff & !0b11;

    /// No flags set.
    pub const fn empty() -> MsgFlags {
        MsgFlags(0)
    }

    /// Flags from their wire value, unknown high bits kept so a message re-encodes unchanged.
    pub const fn from_bits_retain(bits: u32) -> MsgFlags {
        MsgFlags(bits)
    }

    /// The wire value.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: MsgFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// These flags with the bits of `other` also set.
    #[must_use]
    pub const fn union(self, other: MsgFlags) -> MsgFlags {
        MsgFlags(self.0 | other.0)
    }

    /// These flags with the bits of `other` cleared.
    #[must_use]
    pub const fn difference(self, other: MsgFlags) -> MsgFlags {
        MsgFlags(self.0 & !other.0)
    }
}

impl std::ops::BitOr for MsgFlags {
    type Output = MsgFlags;
    fn bitor(self, rhs: MsgFlags) -> MsgFlags {
        self.union(rhs)
    }
}

/// A kind-1 section: a named sequence of documents, such as the `documents` of an insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentSequence {
    identifier: Bytes,
    documents: Bytes,
    count: usize,
}

impl DocumentSequence {
    /// A sequence to send; `identifier` names the command field it stands for.
    pub fn new<D: AsRef<RawDocument>>(
        identifier: &str,
        documents: impl IntoIterator<Item = D>,
    ) -> Result<DocumentSequence, EncodeError> {
        let identifier = cstring_bytes(identifier)?;
        let (documents, count) = concat_documents(documents);
        Ok(DocumentSequence {
            identifier,
            documents,
            count,
        })
    }

    /// The identifier, such as `documents` or `updates`.
    pub fn identifier(&self) -> &str {
        cstring_str(&self.identifier)
    }

    /// The documents, in order.
    pub fn documents(&self) -> Documents<'_> {
        Documents::new(&self.documents)
    }

    /// How many documents the sequence holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the sequence holds no documents.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The section's size field: itself, the identifier and its terminator, the documents.
    fn size_field(&self) -> usize {
        4 + self.identifier.len() + 1 + self.documents.len()
    }
}

/// One section of an OP_MSG, in wire order.
#[derive(Debug, Clone, Copy)]
pub enum Section<'a> {
    /// The kind-0 body.
    Body(&'a RawDocument),
    /// A kind-1 document sequence.
    Sequence(&'a DocumentSequence),
}

/// An OP_MSG message body: flags, the body document, and document sequences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpMsg {
    flags: MsgFlags,
    body: Bytes,
    sequences: Vec<DocumentSequence>,
    /// Where the body stands among the sections, so a decoded message re-encodes in its order.
    body_position: usize,
}

impl OpMsg {
    /// A message with this body and no flags or sequences.
    pub fn new(body: RawDocumentBuf) -> OpMsg {
        OpMsg::from_body_bytes(Bytes::from(body.into_bytes()))
    }

    /// A message whose body is a copy of `body`.
    pub fn from_document(body: &RawDocument) -> OpMsg {
        OpMsg::from_body_bytes(Bytes::copy_from_slice(body.as_bytes()))
    }

    fn from_body_bytes(body: Bytes) -> OpMsg {
        OpMsg {
            flags: MsgFlags::empty(),
            body,
            sequences: Vec::new(),
            body_position: 0,
        }
    }

    /// Adds a document sequence after the existing sections.
    #[must_use]
    pub fn with_sequence(mut self, sequence: DocumentSequence) -> OpMsg {
        self.sequences.push(sequence);
        self
    }

    /// Replaces the flags. Setting [`MsgFlags::CHECKSUM_PRESENT`] makes encoding append a CRC-32C.
    #[must_use]
    pub fn with_flags(mut self, flags: MsgFlags) -> OpMsg {
        self.flags = flags;
        self
    }

    /// The flagBits.
    pub fn flags(&self) -> MsgFlags {
        self.flags
    }

    /// The kind-0 body: the command or the reply.
    pub fn body(&self) -> &RawDocument {
        document_view(&self.body)
    }

    /// The body as a [`SharedDocument`] that keeps the received buffer alive.
    pub fn body_shared(&self) -> SharedDocument {
        SharedDocument::within(&self.body, self.body())
    }

    /// The kind-1 document sequences, in wire order.
    pub fn sequences(&self) -> &[DocumentSequence] {
        &self.sequences
    }

    /// The sequence with this identifier, if any.
    pub fn sequence(&self, identifier: &str) -> Option<&DocumentSequence> {
        self.sequences.iter().find(|s| s.identifier() == identifier)
    }

    /// Every section in wire order.
    pub fn sections(&self) -> impl Iterator<Item = Section<'_>> {
        let (before, after) = self.sequences.split_at(self.body_position.min(self.sequences.len()));
        before
            .iter()
            .map(Section::Sequence)
            .chain(std::iter::once(Section::Body(self.body())))
            .chain(after.iter().map(Section::Sequence))
    }

    /// The command name: the first key of the body. `None` for an empty body or one whose first
    /// element does not parse.
    pub fn command_name(&self) -> Option<&str> {
        match self.body().iter().next()? {
            Ok((key, _)) => Some(key.as_str()),
            Err(_) => None,
        }
    }

    pub(crate) fn decode(buf: &Bytes, message_len: usize) -> Result<OpMsg, DecodeError> {
        let mut reader = Reader::new(buf, HEADER_LEN, message_len);
        let flags = MsgFlags(reader.u32("OP_MSG.flagBits")?);
        if flags.0 & MsgFlags::RESERVED != 0 {
            return Err(DecodeError {
                field: "OP_MSG.flagBits",
                offset: HEADER_LEN,
                kind: DecodeErrorKind::ReservedFlagBits(flags.0 & MsgFlags::RESERVED),
            });
        }
        let mut sections = if flags.contains(MsgFlags::CHECKSUM_PRESENT) {
            let sections_len = reader.remaining().checked_sub(4).ok_or_else(|| {
                reader.error(
                    "OP_MSG.checksum",
                    DecodeErrorKind::Truncated {
                        needed: 4,
                        available: reader.remaining(),
                    },
                )
            })?;
            let sections = reader.sub_reader(sections_len, "OP_MSG.sections")?;
            let checksum_offset = reader.position();
            let found = reader.u32("OP_MSG.checksum")?;
            let computed = crc32c::crc32c(buf.get(..checksum_offset).unwrap_or_default());
            if found != computed {
                return Err(DecodeError {
                    field: "OP_MSG.checksum",
                    offset: checksum_offset,
                    kind: DecodeErrorKind::ChecksumMismatch { found, computed },
                });
            }
            sections
        } else {
            reader
        };

        let mut body = None;
        let mut sequences = Vec::new();
        let mut body_position = 0;
        while !sections.is_empty() {
            let kind_offset = sections.position();
            match sections.u8("OP_MSG.section.kind")? {
                0 => {
                    if body.is_some() {
                        return Err(DecodeError {
                            field: "OP_MSG.section.kind",
                            offset: kind_offset,
                            kind: DecodeErrorKind::DuplicateBody,
                        });
                    }
                    body = Some(sections.document("OP_MSG.body")?);
                    body_position = sequences.len();
                }
                1 => sequences.push(decode_sequence(&mut sections)?),
                other => {
                    return Err(DecodeError {
                        field: "OP_MSG.section.kind",
                        offset: kind_offset,
                        kind: DecodeErrorKind::UnknownSectionKind(other),
                    });
                }
            }
        }
        let Some(body) = body else {
            return Err(sections.error("OP_MSG.sections", DecodeErrorKind::MissingBody));
        };
        Ok(OpMsg {
            flags,
            body: sections.bytes(body),
            sequences,
            body_position,
        })
    }

    pub(crate) fn encode(&self, request_id: i32, response_to: i32, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let checksum = self.flags.contains(MsgFlags::CHECKSUM_PRESENT);
        let sections_len: usize =
            1 + self.body.len() + self.sequences.iter().map(|s| 1 + s.size_field()).sum::<usize>();
        let body_len = 4 + sections_len + if checksum { 4 } else { 0 };
        let start = write_message(dst, OpCode::Msg, request_id, response_to, body_len, |dst| {
            dst.put_u32_le(self.flags.0);
            for section in self.sections() {
                match section {
                    Section::Body(body) => {
                        dst.put_u8(0);
                        dst.put_slice(body.as_bytes());
                    }
                    Section::Sequence(sequence) => {
                        dst.put_u8(1);
                        // Fits: write_message checked the whole message against i32::MAX.
                        dst.put_i32_le(i32::try_from(sequence.size_field()).unwrap_or(i32::MAX));
                        dst.put_slice(&sequence.identifier);
                        dst.put_u8(0);
                        dst.put_slice(&sequence.documents);
                    }
                }
            }
        })?;
        if checksum {
            let crc = crc32c::crc32c(dst.get(start..).unwrap_or_default());
            dst.put_u32_le(crc);
        }
        Ok(())
    }
}

fn decode_sequence(sections: &mut Reader<'_>) -> Result<DocumentSequence, DecodeError> {
    let size_offset = sections.position();
    let size = sections.i32("OP_MSG.sequence.size")?;
    // The size counts itself and at least the identifier's terminator.
    let content_len = usize::try_from(size)
        .ok()
        .and_then(|s| s.checked_sub(4))
        .filter(|&len| len >= 1);
    let Some(content_len) = content_len.filter(|&len| len <= sections.remaining()) else {
        return Err(DecodeError {
            field: "OP_MSG.sequence.size",
            offset: size_offset,
            kind: match content_len {
                None => DecodeErrorKind::LengthTooSmall {
                    length: size.into(),
                    min: 5,
                },
                Some(len) => DecodeErrorKind::Truncated {
                    needed: len,
                    available: sections.remaining(),
                },
            },
        });
    };
    let mut sequence = sections.sub_reader(content_len, "OP_MSG.sequence")?;
    let identifier = sequence.cstring("OP_MSG.sequence.identifier")?;
    let (documents, count) = sequence.documents("OP_MSG.sequence.documents")?;
    Ok(DocumentSequence {
        identifier: sequence.bytes(identifier),
        documents: sequence.bytes(documents),
        count,
    })
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use super::*;
    use crate::wire::test_support::{cat, frame, sequence_section};
    use crate::wire::{Body, DEFAULT_MAX_MESSAGE_SIZE, Message};

    const MAX: usize = DEFAULT_MAX_MESSAGE_SIZE;

    /// `{ping: 1, $db: "admin"}`
    fn ping_doc() -> Vec<u8> {
        rawdoc! { "ping": 1, "$db": "admin" }.into_bytes()
    }

    fn decode_msg(bytes: Bytes) -> Result<OpMsg, DecodeError> {
        match Message::decode(bytes, MAX)?.into_body() {
            Body::Msg(msg) => Ok(msg),
            other => panic!("not an OP_MSG: {other:?}"),
        }
    }

    fn err(field: &'static str, offset: usize, kind: DecodeErrorKind) -> DecodeError {
        DecodeError { field, offset, kind }
    }

    fn encode(msg: &OpMsg) -> Vec<u8> {
        let mut out = BytesMut::new();
        msg.encode(0x11, 0x22, &mut out).unwrap();
        out.to_vec()
    }

    #[test]
    fn ping_encodes_to_the_exact_wire_bytes() {
        let bytes = encode(&OpMsg::new(rawdoc! { "ping": 1, "$db": "admin" }));
        let expected = hex::decode(concat!(
            "33000000",
            "11000000",
            "22000000",
            "dd070000", // header: 51 bytes, ids, opcode 2013
            "00000000", // flagBits
            "00",       // kind 0
            "1e000000",
            "1070696e670001000000",
            "022464620006000000",
            "61646d696e00",
            "00",
        ))
        .unwrap();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn decodes_body_and_command_name() {
        let msg = decode_msg(frame(2013, &cat(&[&[0, 0, 0, 0, 0], &ping_doc()]))).unwrap();
        assert_eq!(msg.flags(), MsgFlags::empty());
        assert_eq!(msg.command_name(), Some("ping"));
        assert_eq!(msg.body().get_str("$db").unwrap(), "admin");
        assert!(msg.sequences().is_empty());
    }

    #[test]
    fn checksum_is_emitted_verified_and_rejected_when_wrong() {
        let msg = OpMsg::new(rawdoc! { "hello": 1 }).with_flags(MsgFlags::CHECKSUM_PRESENT);
        let bytes = encode(&msg);
        let (covered, trailer) = bytes.split_at(bytes.len() - 4);
        assert_eq!(trailer, crc32c::crc32c(covered).to_le_bytes());
        assert_eq!(decode_msg(Bytes::from(bytes.clone())).unwrap(), msg);

        let mut corrupted = bytes.clone();
        corrupted[26] ^= 0x20; // a byte of the body's first key
        let computed = crc32c::crc32c(&corrupted[..corrupted.len() - 4]);
        let found = u32::from_le_bytes(trailer.try_into().unwrap());
        assert_eq!(
            decode_msg(Bytes::from(corrupted)).unwrap_err(),
            err(
                "OP_MSG.checksum",
                bytes.len() - 4,
                DecodeErrorKind::ChecksumMismatch { found, computed }
            )
        );
    }

    #[test]
    fn crc32c_is_the_castagnoli_polynomial() {
        // The standard check value of CRC-32C.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn checksum_flag_without_room_for_the_checksum_is_truncated() {
        let bytes = frame(2013, &[1, 0, 0, 0]);
        assert_eq!(
            decode_msg(bytes).unwrap_err(),
            err(
                "OP_MSG.checksum",
                20,
                DecodeErrorKind::Truncated {
                    needed: 4,
                    available: 0
                }
            )
        );
    }

    #[test]
    fn known_flags_decode_and_unknown_high_bits_are_kept() {
        let flags = MsgFlags::MORE_TO_COME | MsgFlags::EXHAUST_ALLOWED | MsgFlags::from_bits_retain(1 << 24);
        let msg = OpMsg::new(rawdoc! { "getMore": 1_i64 }).with_flags(flags);
        let bytes = encode(&msg);
        let decoded = decode_msg(Bytes::from(bytes.clone())).unwrap();
        assert!(decoded.flags().contains(MsgFlags::MORE_TO_COME));
        assert!(decoded.flags().contains(MsgFlags::EXHAUST_ALLOWED));
        assert!(!decoded.flags().contains(MsgFlags::CHECKSUM_PRESENT));
        assert_eq!(encode(&decoded), bytes);
    }

    #[test]
    fn reserved_low_bits_are_errors() {
        for bit in 2..16 {
            let flags = (1u32 << bit).to_le_bytes();
            let bytes = frame(2013, &cat(&[&flags, &[0], &ping_doc()]));
            assert_eq!(
                decode_msg(bytes).unwrap_err(),
                err("OP_MSG.flagBits", 16, DecodeErrorKind::ReservedFlagBits(1 << bit)),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn sequence_before_body_keeps_its_order() {
        let a = rawdoc! { "_id": 1 }.into_bytes();
        let b = rawdoc! { "_id": 2 }.into_bytes();
        let payload = cat(&[
            &[0, 0, 0, 0],
            &sequence_section("documents", &[&a, &b]),
            &[0],
            &rawdoc! { "insert": "c", "$db": "d" }.into_bytes(),
            &sequence_section("other", &[]),
        ]);
        let bytes = frame(2013, &payload);
        let msg = decode_msg(bytes.clone()).unwrap();
        assert_eq!(msg.command_name(), Some("insert"));
        let order: Vec<String> = msg
            .sections()
            .map(|s| match s {
                Section::Body(_) => "body".to_owned(),
                Section::Sequence(seq) => seq.identifier().to_owned(),
            })
            .collect();
        assert_eq!(order, ["documents", "body", "other"]);
        let docs = msg.sequence("documents").unwrap();
        assert_eq!(docs.len(), 2);
        let ids: Vec<i32> = docs.documents().map(|d| d.get_i32("_id").unwrap()).collect();
        assert_eq!(ids, [1, 2]);
        assert!(msg.sequence("other").unwrap().is_empty());
        let mut out = BytesMut::new();
        msg.encode(1, 0, &mut out).unwrap();
        assert_eq!(&out[..], &bytes[..]);
    }

    #[test]
    fn missing_and_duplicate_bodies_are_errors() {
        let only_sequence = frame(2013, &cat(&[&[0, 0, 0, 0], &sequence_section("documents", &[])]));
        assert_eq!(
            decode_msg(only_sequence).unwrap_err(),
            err("OP_MSG.sections", 35, DecodeErrorKind::MissingBody)
        );
        assert_eq!(
            decode_msg(frame(2013, &[0, 0, 0, 0])).unwrap_err(),
            err("OP_MSG.sections", 20, DecodeErrorKind::MissingBody)
        );
        let doc = ping_doc();
        let two_bodies = frame(2013, &cat(&[&[0, 0, 0, 0, 0], &doc, &[0], &doc]));
        assert_eq!(
            decode_msg(two_bodies).unwrap_err(),
            err("OP_MSG.section.kind", 21 + doc.len(), DecodeErrorKind::DuplicateBody)
        );
    }

    #[test]
    fn unknown_section_kind_is_an_error() {
        let bytes = frame(2013, &cat(&[&[0, 0, 0, 0, 0], &ping_doc(), &[2, 5, 0, 0, 0, 0]]));
        let offset = 21 + ping_doc().len();
        assert_eq!(
            decode_msg(bytes).unwrap_err(),
            err("OP_MSG.section.kind", offset, DecodeErrorKind::UnknownSectionKind(2))
        );
    }

    #[test]
    fn body_lengths_are_checked_against_the_message() {
        let mut doc = ping_doc();
        let len = doc.len();
        doc[0] += 1; // claims one byte more than the message holds
        assert_eq!(
            decode_msg(frame(2013, &cat(&[&[0, 0, 0, 0, 0], &doc]))).unwrap_err(),
            err(
                "OP_MSG.body",
                21,
                DecodeErrorKind::DocumentLength {
                    length: (len + 1) as i64,
                    available: len
                }
            )
        );
        assert_eq!(
            decode_msg(frame(2013, &[0, 0, 0, 0, 0, 4, 0, 0, 0])).unwrap_err(),
            err(
                "OP_MSG.body",
                21,
                DecodeErrorKind::DocumentLength {
                    length: 4,
                    available: 4
                }
            )
        );
        assert_eq!(
            decode_msg(frame(2013, &[0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0])).unwrap_err(),
            err(
                "OP_MSG.body",
                21,
                DecodeErrorKind::DocumentLength {
                    length: -1,
                    available: 5
                }
            )
        );
        assert_eq!(
            decode_msg(frame(2013, &[0, 0, 0, 0, 0, 5, 0, 0, 0, 1])).unwrap_err(),
            err("OP_MSG.body", 21, DecodeErrorKind::DocumentTerminator)
        );
        assert_eq!(
            decode_msg(frame(2013, &[0, 0, 0, 0, 0, 5, 0])).unwrap_err(),
            err(
                "OP_MSG.body",
                21,
                DecodeErrorKind::Truncated {
                    needed: 4,
                    available: 2
                }
            )
        );
    }

    #[test]
    fn sequence_bounds_are_checked() {
        let body = cat(&[&[0], &ping_doc()]);
        let flags: &[u8] = &[0, 0, 0, 0];
        // Size below the 5-byte minimum (itself plus the identifier's terminator).
        let small = frame(2013, &cat(&[flags, &[1], &4i32.to_le_bytes(), &body]));
        assert_eq!(
            decode_msg(small).unwrap_err(),
            err(
                "OP_MSG.sequence.size",
                21,
                DecodeErrorKind::LengthTooSmall { length: 4, min: 5 }
            )
        );
        // Size past the end of the message.
        let large = frame(2013, &cat(&[flags, &[1], &100i32.to_le_bytes(), b"x\0"]));
        assert_eq!(
            decode_msg(large).unwrap_err(),
            err(
                "OP_MSG.sequence.size",
                21,
                DecodeErrorKind::Truncated {
                    needed: 96,
                    available: 2
                }
            )
        );
        // A document that fits the message but not its sequence.
        let doc = rawdoc! { "a": 1 }.into_bytes();
        let mut section = sequence_section("documents", &[&doc]);
        let size = i32::from_le_bytes(section[1..5].try_into().unwrap()) - 1;
        section[1..5].copy_from_slice(&size.to_le_bytes());
        let overflowing = frame(2013, &cat(&[flags, &section, &[0], &body]));
        assert_eq!(
            decode_msg(overflowing).unwrap_err(),
            err(
                "OP_MSG.sequence.documents",
                35,
                DecodeErrorKind::DocumentLength {
                    length: doc.len() as i64,
                    available: doc.len() - 1
                }
            )
        );
        // An identifier without its terminator.
        let unterminated = frame(2013, &cat(&[flags, &[1], &7i32.to_le_bytes(), b"abc", &body]));
        assert_eq!(
            decode_msg(unterminated).unwrap_err(),
            err("OP_MSG.sequence.identifier", 25, DecodeErrorKind::UnterminatedString)
        );
        let not_utf8 = frame(2013, &cat(&[flags, &[1], &7i32.to_le_bytes(), b"\xff\xfe\0", &body]));
        assert_eq!(
            decode_msg(not_utf8).unwrap_err(),
            err("OP_MSG.sequence.identifier", 25, DecodeErrorKind::InvalidUtf8)
        );
    }

    #[test]
    fn identifiers_with_a_zero_byte_cannot_be_encoded() {
        let docs: [&RawDocument; 0] = [];
        assert_eq!(
            DocumentSequence::new("docu\0ments", docs).unwrap_err(),
            EncodeError::InteriorNul("docu\0ments".to_owned())
        );
    }

    #[test]
    fn document_views_point_into_the_received_buffer() {
        let doc = rawdoc! { "a": 1 }.into_bytes();
        let bytes = frame(
            2013,
            &cat(&[&[0, 0, 0, 0], &sequence_section("d", &[&doc]), &[0], &ping_doc()]),
        );
        let range = bytes.as_ptr_range();
        let msg = decode_msg(bytes.clone()).unwrap();
        assert!(range.contains(&msg.body().as_bytes().as_ptr()));
        let first = msg.sequence("d").unwrap().documents().next().unwrap();
        assert!(range.contains(&first.as_bytes().as_ptr()));
    }
}
