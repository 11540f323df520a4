//! A whole message: header plus one opcode's body, and the OP_COMPRESSED wrapper.

use bytes::{BufMut, Bytes, BytesMut};

use super::compression::{Compressor, compress, decompress};
use super::error::{DecodeError, DecodeErrorKind, EncodeError};
use super::header::{HEADER_LEN, Header, OpCode};
use super::legacy::{
    OpCommand, OpCommandReply, OpDelete, OpGetMore, OpInsert, OpKillCursors, OpQuery, OpReply, OpUpdate,
};
use super::msg::OpMsg;
use super::reader::Reader;

/// Bytes between the OP_COMPRESSED header and the compressed payload: originalOpcode,
/// uncompressedSize, compressorId.
const COMPRESSED_PREFIX_LEN: usize = 4 + 4 + 1;

/// The body of a message, by opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Body {
    /// OP_MSG (2013).
    Msg(OpMsg),
    /// OP_REPLY (1).
    Reply(OpReply),
    /// OP_QUERY (2004).
    Query(OpQuery),
    /// OP_COMMAND (2010).
    Command(OpCommand),
    /// OP_COMMANDREPLY (2011).
    CommandReply(OpCommandReply),
    /// OP_INSERT (2002).
    Insert(OpInsert),
    /// OP_UPDATE (2001).
    Update(OpUpdate),
    /// OP_DELETE (2006).
    Delete(OpDelete),
    /// OP_GET_MORE (2005).
    GetMore(OpGetMore),
    /// OP_KILL_CURSORS (2007).
    KillCursors(OpKillCursors),
}

impl Body {
    /// The opcode this body is sent with.
    pub fn op_code(&self) -> OpCode {
        match self {
            Body::Msg(_) => OpCode::Msg,
            Body::Reply(_) => OpCode::Reply,
            Body::Query(_) => OpCode::Query,
            Body::Command(_) => OpCode::Command,
            Body::CommandReply(_) => OpCode::CommandReply,
            Body::Insert(_) => OpCode::Insert,
            Body::Update(_) => OpCode::Update,
            Body::Delete(_) => OpCode::Delete,
            Body::GetMore(_) => OpCode::GetMore,
            Body::KillCursors(_) => OpCode::KillCursors,
        }
    }

    /// Appends this body as a whole uncompressed message with the given ids.
    pub fn encode(&self, request_id: i32, response_to: i32, dst: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Body::Msg(m) => m.encode(request_id, response_to, dst),
            Body::Reply(m) => m.encode(request_id, response_to, dst),
            Body::Query(m) => m.encode(request_id, response_to, dst),
            Body::Command(m) => m.encode(request_id, response_to, dst),
            Body::CommandReply(m) => m.encode(request_id, response_to, dst),
            Body::Insert(m) => m.encode(request_id, response_to, dst),
            Body::Update(m) => m.encode(request_id, response_to, dst),
            Body::Delete(m) => m.encode(request_id, response_to, dst),
            Body::GetMore(m) => m.encode(request_id, response_to, dst),
            Body::KillCursors(m) => m.encode(request_id, response_to, dst),
        }
    }

    /// Decodes the body of the uncompressed message in `buf` (header included).
    fn decode(op_code: OpCode, buf: &Bytes) -> Result<Body, DecodeError> {
        let len = buf.len();
        Ok(match op_code {
            OpCode::Msg => Body::Msg(OpMsg::decode(buf, len)?),
            OpCode::Reply => Body::Reply(OpReply::decode(buf, len)?),
            OpCode::Query => Body::Query(OpQuery::decode(buf, len)?),
            OpCode::Command => Body::Command(OpCommand::decode(buf, len)?),
            OpCode::CommandReply => Body::CommandReply(OpCommandReply::decode(buf, len)?),
            OpCode::Insert => Body::Insert(OpInsert::decode(buf, len)?),
            OpCode::Update => Body::Update(OpUpdate::decode(buf, len)?),
            OpCode::Delete => Body::Delete(OpDelete::decode(buf, len)?),
            OpCode::GetMore => Body::GetMore(OpGetMore::decode(buf, len)?),
            OpCode::KillCursors => Body::KillCursors(OpKillCursors::decode(buf, len)?),
            OpCode::Compressed => {
                return Err(DecodeError {
                    field: "OP_COMPRESSED.originalOpcode",
                    offset: HEADER_LEN,
                    kind: DecodeErrorKind::UncompressibleOpCode(op_code.code()),
                });
            }
        })
    }
}

/// How a message travelled when it arrived inside OP_COMPRESSED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// The compressor that was used.
    pub compressor: Compressor,
    /// The size of the OP_COMPRESSED message on the wire.
    pub wire_length: usize,
}

/// A decoded message. It holds the buffer it was decoded from (the decompressed one, for a
/// message that arrived compressed) and hands out views into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    header: Header,
    compression: Option<Compression>,
    raw: Bytes,
    body: Body,
}

impl Message {
    /// Decodes `bytes`, which must hold exactly one message, of at most `max_message_size`
    /// bytes (that limit also bounds the uncompressed size of OP_COMPRESSED).
    pub fn decode(bytes: Bytes, max_message_size: usize) -> Result<Message, DecodeError> {
        let Some(header) = Header::parse(&bytes) else {
            return Err(DecodeError {
                field: "header",
                offset: 0,
                kind: DecodeErrorKind::Truncated {
                    needed: HEADER_LEN,
                    available: bytes.len(),
                },
            });
        };
        let length = header.checked_length(max_message_size)?;
        if length != bytes.len() {
            let kind = if length > bytes.len() {
                DecodeErrorKind::Truncated {
                    needed: length,
                    available: bytes.len(),
                }
            } else {
                DecodeErrorKind::TrailingBytes {
                    count: bytes.len() - length,
                }
            };
            return Err(DecodeError {
                field: "header.messageLength",
                offset: 0,
                kind,
            });
        }
        let op_code = OpCode::from_code(header.op_code).ok_or(DecodeError {
            field: "header.opCode",
            offset: 12,
            kind: DecodeErrorKind::UnknownOpCode(header.op_code),
        })?;
        if op_code == OpCode::Compressed {
            return Message::decode_compressed(header, bytes, max_message_size);
        }
        let body = Body::decode(op_code, &bytes)?;
        Ok(Message {
            header,
            compression: None,
            raw: bytes,
            body,
        })
    }

    fn decode_compressed(outer: Header, bytes: Bytes, max_message_size: usize) -> Result<Message, DecodeError> {
        let mut reader = Reader::new(&bytes, HEADER_LEN, bytes.len());
        let original = reader.i32("OP_COMPRESSED.originalOpcode")?;
        let op_code = OpCode::from_code(original).ok_or(DecodeError {
            field: "OP_COMPRESSED.originalOpcode",
            offset: HEADER_LEN,
            kind: DecodeErrorKind::UnknownOpCode(original),
        })?;
        let size_offset = reader.position();
        let declared = reader.i32("OP_COMPRESSED.uncompressedSize")?;
        let size_error = |kind| DecodeError {
            field: "OP_COMPRESSED.uncompressedSize",
            offset: size_offset,
            kind,
        };
        let uncompressed_size = usize::try_from(declared).map_err(|_| {
            size_error(DecodeErrorKind::LengthTooSmall {
                length: declared.into(),
                min: 0,
            })
        })?;
        let inner_length = uncompressed_size + HEADER_LEN;
        if inner_length > max_message_size {
            let length = i64::try_from(inner_length).unwrap_or(i64::MAX);
            return Err(size_error(DecodeErrorKind::LengthTooLarge {
                length,
                max: max_message_size,
            }));
        }
        let id_offset = reader.position();
        let id = reader.u8("OP_COMPRESSED.compressorId")?;
        let compressor = Compressor::from_id(id).ok_or(DecodeError {
            field: "OP_COMPRESSED.compressorId",
            offset: id_offset,
            kind: DecodeErrorKind::UnknownCompressor(id),
        })?;
        let payload = reader.take_rest();

        // The decompressed message gets back the header it had before compression, so the
        // body decoders (and an OP_MSG checksum) see exactly what the sender compressed.
        let inner = Header {
            message_length: i32::try_from(inner_length).unwrap_or(i32::MAX),
            request_id: outer.request_id,
            response_to: outer.response_to,
            op_code: original,
        };
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.extend_from_slice(&inner.message_length.to_le_bytes());
        out.extend_from_slice(&inner.request_id.to_le_bytes());
        out.extend_from_slice(&inner.response_to.to_le_bytes());
        out.extend_from_slice(&inner.op_code.to_le_bytes());
        decompress(
            compressor,
            bytes.get(payload.clone()).unwrap_or_default(),
            uncompressed_size,
            &mut out,
        )
        .map_err(|kind| DecodeError {
            field: "OP_COMPRESSED.compressedMessage",
            offset: payload.start,
            kind,
        })?;
        let raw = Bytes::from(out);
        let body = Body::decode(op_code, &raw)?;
        let compression = Some(Compression {
            compressor,
            wire_length: bytes.len(),
        });
        Ok(Message {
            header: inner,
            compression,
            raw,
            body,
        })
    }

    /// A message to send.
    pub fn new(request_id: i32, response_to: i32, body: Body) -> Message {
        let header = Header {
            message_length: 0,
            request_id,
            response_to,
            op_code: body.op_code().code(),
        };
        Message {
            header,
            compression: None,
            raw: Bytes::new(),
            body,
        }
    }

    /// The header of the (decompressed) message. For a message built with [`Message::new`],
    /// `message_length` is 0 until it is encoded.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The sender's id for this message.
    pub fn request_id(&self) -> i32 {
        self.header.request_id
    }

    /// The request this message answers.
    pub fn response_to(&self) -> i32 {
        self.header.response_to
    }

    /// The opcode of the body (after unwrapping OP_COMPRESSED).
    pub fn op_code(&self) -> OpCode {
        self.body.op_code()
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// Takes the body out of the message.
    pub fn into_body(self) -> Body {
        self.body
    }

    /// How the message travelled, if it arrived inside OP_COMPRESSED.
    pub fn compression(&self) -> Option<Compression> {
        self.compression
    }

    /// The uncompressed message as decoded, header included. Empty for a message built with
    /// [`Message::new`].
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// Appends the message, uncompressed, re-encoded from its parts.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.body.encode(self.header.request_id, self.header.response_to, dst)
    }

    /// Appends the message wrapped in OP_COMPRESSED.
    pub fn encode_compressed(
        &self,
        compressor: Compressor,
        level: Option<i32>,
        dst: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let mut plain = BytesMut::new();
        self.encode(&mut plain)?;
        compress_message(&plain, compressor, level, dst)
    }
}

/// Wraps an encoded uncompressed message (header included) in OP_COMPRESSED and appends it.
pub fn compress_message(
    message: &[u8],
    compressor: Compressor,
    level: Option<i32>,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    let Some(header) = Header::parse(message) else {
        return Err(EncodeError::TooLarge(message.len()));
    };
    let payload = message.get(HEADER_LEN..).unwrap_or_default();
    let uncompressed_size = i32::try_from(payload.len()).map_err(|_| EncodeError::TooLarge(message.len()))?;
    let mut compressed = Vec::new();
    compress(compressor, payload, level, &mut compressed)?;
    write_message(
        dst,
        OpCode::Compressed,
        header.request_id,
        header.response_to,
        COMPRESSED_PREFIX_LEN + compressed.len(),
        |dst| {
            dst.put_i32_le(header.op_code);
            dst.put_i32_le(uncompressed_size);
            dst.put_u8(compressor.id());
            dst.put_slice(&compressed);
        },
    )
    .map(drop)
}

/// Appends a header for a message whose body is `body_len` bytes, then the body, in one
/// reservation. Returns the offset in `dst` where the message starts.
pub(crate) fn write_message(
    dst: &mut BytesMut,
    op_code: OpCode,
    request_id: i32,
    response_to: i32,
    body_len: usize,
    write_body: impl FnOnce(&mut BytesMut),
) -> Result<usize, EncodeError> {
    let total = HEADER_LEN + body_len;
    let message_length = i32::try_from(total).map_err(|_| EncodeError::TooLarge(total))?;
    let start = dst.len();
    dst.reserve(total);
    Header {
        message_length,
        request_id,
        response_to,
        op_code: op_code.code(),
    }
    .write(dst);
    write_body(dst);
    Ok(start)
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use super::*;
    use crate::wire::msg::MsgFlags;
    use crate::wire::test_support::frame;

    const MAX: usize = super::super::DEFAULT_MAX_MESSAGE_SIZE;
    const COMPRESSORS: [Compressor; 4] = [Compressor::Noop, Compressor::Snappy, Compressor::Zlib, Compressor::Zstd];

    fn reply(n: i32) -> Message {
        let batch: Vec<_> = (0..n).map(|i| rawdoc! { "_id": i, "pad": "x".repeat(100) }).collect();
        let body = rawdoc! { "cursor": { "id": 0_i64, "ns": "db.c", "nextBatch": bson::RawArrayBuf::from_iter(batch) }, "ok": 1.0 };
        Message::new(5, 4, Body::Msg(OpMsg::new(body)))
    }

    fn compressed(message: &Message, compressor: Compressor) -> Bytes {
        let mut out = BytesMut::new();
        message.encode_compressed(compressor, None, &mut out).unwrap();
        out.freeze()
    }

    /// An OP_COMPRESSED frame with the given prefix fields and payload.
    fn op_compressed(original: i32, size: i32, id: u8, payload: &[u8]) -> Bytes {
        let mut body = Vec::new();
        body.extend_from_slice(&original.to_le_bytes());
        body.extend_from_slice(&size.to_le_bytes());
        body.push(id);
        body.extend_from_slice(payload);
        frame(2012, &body)
    }

    fn err(field: &'static str, offset: usize, kind: DecodeErrorKind) -> DecodeError {
        DecodeError { field, offset, kind }
    }

    #[test]
    fn each_compressor_unwraps_to_the_original_message() {
        let original = reply(50);
        let mut plain = BytesMut::new();
        original.encode(&mut plain).unwrap();
        for compressor in COMPRESSORS {
            let wire = compressed(&original, compressor);
            assert_eq!(Header::parse(&wire).unwrap().op_code, 2012);
            let decoded = Message::decode(wire.clone(), MAX).unwrap();
            assert_eq!(decoded.op_code(), OpCode::Msg, "{compressor}");
            assert_eq!(decoded.body(), original.body(), "{compressor}");
            assert_eq!((decoded.request_id(), decoded.response_to()), (5, 4));
            assert_eq!(
                decoded.compression(),
                Some(Compression {
                    compressor,
                    wire_length: wire.len()
                })
            );
            assert_eq!(decoded.raw(), &plain, "{compressor}: the header is restored");
            if compressor != Compressor::Noop {
                assert!(wire.len() < plain.len(), "{compressor} did not compress");
            }
        }
    }

    #[test]
    fn checksummed_op_msg_inside_op_compressed_verifies() {
        let body = OpMsg::new(rawdoc! { "ping": 1 }).with_flags(MsgFlags::CHECKSUM_PRESENT);
        let message = Message::new(1, 0, Body::Msg(body));
        let decoded = Message::decode(compressed(&message, Compressor::Zstd), MAX).unwrap();
        assert_eq!(decoded.body(), message.body());
    }

    #[test]
    fn compressed_prefix_fields_are_validated() {
        let payload = b"\x05\0\0\0\0";
        assert_eq!(
            Message::decode(op_compressed(2012, 5, 0, payload), MAX).unwrap_err(),
            err(
                "OP_COMPRESSED.originalOpcode",
                16,
                DecodeErrorKind::UncompressibleOpCode(2012)
            )
        );
        assert_eq!(
            Message::decode(op_compressed(77, 5, 0, payload), MAX).unwrap_err(),
            err("OP_COMPRESSED.originalOpcode", 16, DecodeErrorKind::UnknownOpCode(77))
        );
        assert_eq!(
            Message::decode(op_compressed(2013, -5, 0, payload), MAX).unwrap_err(),
            err(
                "OP_COMPRESSED.uncompressedSize",
                20,
                DecodeErrorKind::LengthTooSmall { length: -5, min: 0 }
            )
        );
        assert_eq!(
            Message::decode(op_compressed(2013, 1000, 0, payload), 500).unwrap_err(),
            err(
                "OP_COMPRESSED.uncompressedSize",
                20,
                DecodeErrorKind::LengthTooLarge { length: 1016, max: 500 }
            )
        );
        assert_eq!(
            Message::decode(op_compressed(2013, 5, 4, payload), MAX).unwrap_err(),
            err("OP_COMPRESSED.compressorId", 24, DecodeErrorKind::UnknownCompressor(4))
        );
        assert_eq!(
            Message::decode(op_compressed(2013, 9, 0, payload), MAX).unwrap_err(),
            err(
                "OP_COMPRESSED.compressedMessage",
                25,
                DecodeErrorKind::UncompressedSizeMismatch { declared: 9, actual: 5 }
            )
        );
        assert_eq!(
            Message::decode(frame(2012, &[0xdd, 7, 0, 0, 0]), MAX).unwrap_err(),
            err(
                "OP_COMPRESSED.uncompressedSize",
                20,
                DecodeErrorKind::Truncated {
                    needed: 4,
                    available: 1
                }
            )
        );
    }

    #[test]
    fn errors_inside_a_compressed_message_point_into_the_decompressed_bytes() {
        // flagBits 0, then section kind 9: the error offset counts the restored header.
        let decoded = Message::decode(op_compressed(2013, 5, 0, &[0, 0, 0, 0, 9]), MAX);
        assert_eq!(
            decoded.unwrap_err(),
            err("OP_MSG.section.kind", 20, DecodeErrorKind::UnknownSectionKind(9))
        );
    }

    #[test]
    fn whole_message_length_is_checked_against_the_buffer_and_maximum() {
        let mut bytes = BytesMut::new();
        reply(1).encode(&mut bytes).unwrap();
        let bytes = bytes.freeze();
        let len = bytes.len();
        assert_eq!(
            Message::decode(bytes.slice(..len - 1), MAX).unwrap_err(),
            err(
                "header.messageLength",
                0,
                DecodeErrorKind::Truncated {
                    needed: len,
                    available: len - 1
                }
            )
        );
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(
            Message::decode(Bytes::from(longer), MAX).unwrap_err(),
            err("header.messageLength", 0, DecodeErrorKind::TrailingBytes { count: 1 })
        );
        assert_eq!(
            Message::decode(bytes.clone(), len - 1).unwrap_err(),
            err(
                "header.messageLength",
                0,
                DecodeErrorKind::LengthTooLarge {
                    length: len as i64,
                    max: len - 1
                }
            )
        );
        assert_eq!(
            Message::decode(bytes.slice(..10), MAX).unwrap_err(),
            err(
                "header",
                0,
                DecodeErrorKind::Truncated {
                    needed: 16,
                    available: 10
                }
            )
        );
        assert_eq!(
            Message::decode(frame(2003, &[]), MAX).unwrap_err(),
            err("header.opCode", 12, DecodeErrorKind::UnknownOpCode(2003))
        );
    }

    #[test]
    fn compress_message_rejects_a_buffer_without_a_header() {
        let mut out = BytesMut::new();
        assert_eq!(
            compress_message(b"short", Compressor::Snappy, None, &mut out),
            Err(EncodeError::TooLarge(5))
        );
    }
}
