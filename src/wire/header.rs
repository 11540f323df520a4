//! The 16-byte standard message header and the opcodes.

use super::error::{DecodeError, DecodeErrorKind};

/// Size of the standard message header.
pub const HEADER_LEN: usize = 16;

/// The largest message a MongoDB server sends or accepts by default (its `maxMessageSizeBytes`).
/// The driver lowers or raises its limit to what the server's `hello` reply reports.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 48_000_000;

/// The standard header that starts every message, as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Total message size in bytes, header included.
    pub message_length: i32,
    /// Identifier the sender chose for this message.
    pub request_id: i32,
    /// The `request_id` of the request this message answers (0 for requests).
    pub response_to: i32,
    /// The raw opcode; see [`OpCode`].
    pub op_code: i32,
}

impl Header {
    /// Parses a header from the first 16 bytes of `bytes`; `None` if fewer are there.
    ///
    /// Only the byte layout is read here; [`Header::checked_length`] validates the length.
    pub fn parse(bytes: &[u8]) -> Option<Header> {
        let field = |i: usize| -> Option<i32> {
            let b: [u8; 4] = bytes.get(i..i + 4)?.try_into().ok()?;
            Some(i32::from_le_bytes(b))
        };
        Some(Header {
            message_length: field(0)?,
            request_id: field(4)?,
            response_to: field(8)?,
            op_code: field(12)?,
        })
    }

    /// The message length as a `usize`, if it lies between the header size and `max`.
    pub fn checked_length(&self, max: usize) -> Result<usize, DecodeError> {
        let error = |kind| DecodeError {
            field: "header.messageLength",
            offset: 0,
            kind,
        };
        let length = i64::from(self.message_length);
        match usize::try_from(self.message_length) {
            Ok(len) if len < HEADER_LEN => Err(error(DecodeErrorKind::LengthTooSmall {
                length,
                min: HEADER_LEN,
            })),
            Ok(len) if len > max => Err(error(DecodeErrorKind::LengthTooLarge { length, max })),
            Ok(len) => Ok(len),
            Err(_) => Err(error(DecodeErrorKind::LengthTooSmall {
                length,
                min: HEADER_LEN,
            })),
        }
    }

    /// Appends the header in wire order.
    pub(crate) fn write(&self, dst: &mut bytes::BytesMut) {
        use bytes::BufMut;
        dst.put_i32_le(self.message_length);
        dst.put_i32_le(self.request_id);
        dst.put_i32_le(self.response_to);
        dst.put_i32_le(self.op_code);
    }
}

/// The opcodes this codec knows. Opcodes removed from the server long ago (OP_INSERT and
/// friends) are still decoded because captures from older clients are full of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpCode {
    /// OP_REPLY (1): reply to OP_QUERY and OP_GET_MORE.
    Reply,
    /// OP_UPDATE (2001), legacy.
    Update,
    /// OP_INSERT (2002), legacy.
    Insert,
    /// OP_QUERY (2004), legacy; still used for the first hello by old drivers.
    Query,
    /// OP_GET_MORE (2005), legacy.
    GetMore,
    /// OP_DELETE (2006), legacy.
    Delete,
    /// OP_KILL_CURSORS (2007), legacy.
    KillCursors,
    /// OP_COMMAND (2010), used between 3.2-era clients and servers.
    Command,
    /// OP_COMMANDREPLY (2011), the reply to OP_COMMAND.
    CommandReply,
    /// OP_COMPRESSED (2012), a wrapper around another message.
    Compressed,
    /// OP_MSG (2013), the only opcode of current servers.
    Msg,
}

impl OpCode {
    /// The number on the wire.
    pub fn code(self) -> i32 {
        match self {
            OpCode::Reply => 1,
            OpCode::Update => 2001,
            OpCode::Insert => 2002,
            OpCode::Query => 2004,
            OpCode::GetMore => 2005,
            OpCode::Delete => 2006,
            OpCode::KillCursors => 2007,
            OpCode::Command => 2010,
            OpCode::CommandReply => 2011,
            OpCode::Compressed => 2012,
            OpCode::Msg => 2013,
        }
    }

    /// The opcode for a number on the wire, if this codec knows it.
    pub fn from_code(code: i32) -> Option<OpCode> {
        Some(match code {
            1 => OpCode::Reply,
            2001 => OpCode::Update,
            2002 => OpCode::Insert,
            2004 => OpCode::Query,
            2005 => OpCode::GetMore,
            2006 => OpCode::Delete,
            2007 => OpCode::KillCursors,
            2010 => OpCode::Command,
            2011 => OpCode::CommandReply,
            2012 => OpCode::Compressed,
            2013 => OpCode::Msg,
            _ => return None,
        })
    }

    /// The name used in the wire-protocol documentation, such as `OP_MSG`.
    pub fn name(self) -> &'static str {
        match self {
            OpCode::Reply => "OP_REPLY",
            OpCode::Update => "OP_UPDATE",
            OpCode::Insert => "OP_INSERT",
            OpCode::Query => "OP_QUERY",
            OpCode::GetMore => "OP_GET_MORE",
            OpCode::Delete => "OP_DELETE",
            OpCode::KillCursors => "OP_KILL_CURSORS",
            OpCode::Command => "OP_COMMAND",
            OpCode::CommandReply => "OP_COMMANDREPLY",
            OpCode::Compressed => "OP_COMPRESSED",
            OpCode::Msg => "OP_MSG",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(length: i32) -> Header {
        Header {
            message_length: length,
            request_id: 1,
            response_to: 0,
            op_code: 2013,
        }
    }

    #[test]
    fn parses_little_endian_fields() {
        let bytes = [0x2a, 0, 0, 0, 0x07, 0, 0, 0, 0x05, 0, 0, 0, 0xdd, 0x07, 0, 0, 0xff];
        let parsed = Header::parse(&bytes).unwrap();
        assert_eq!(
            parsed,
            Header {
                message_length: 42,
                request_id: 7,
                response_to: 5,
                op_code: 2013
            }
        );
        assert_eq!(Header::parse(&bytes[..15]), None);
        let mut written = bytes::BytesMut::new();
        parsed.write(&mut written);
        assert_eq!(&written[..], &bytes[..16]);
    }

    #[test]
    fn length_bounds() {
        assert_eq!(header(16).checked_length(100), Ok(16));
        assert_eq!(header(100).checked_length(100), Ok(100));
        let too_small = header(15).checked_length(100).unwrap_err();
        assert_eq!(too_small.kind, DecodeErrorKind::LengthTooSmall { length: 15, min: 16 });
        assert_eq!(too_small.field, "header.messageLength");
        let negative = header(-1).checked_length(100).unwrap_err();
        assert_eq!(negative.kind, DecodeErrorKind::LengthTooSmall { length: -1, min: 16 });
        let too_large = header(101).checked_length(100).unwrap_err();
        assert_eq!(
            too_large.kind,
            DecodeErrorKind::LengthTooLarge { length: 101, max: 100 }
        );
    }

    #[test]
    fn every_opcode_round_trips_through_its_number() {
        for code in [1, 2001, 2002, 2004, 2005, 2006, 2007, 2010, 2011, 2012, 2013] {
            let op = OpCode::from_code(code).unwrap();
            assert_eq!(op.code(), code);
            assert!(op.name().starts_with("OP_"));
        }
        assert_eq!(OpCode::from_code(2003), None);
        assert_eq!(OpCode::from_code(0), None);
    }
}
