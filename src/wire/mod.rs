//! The wire codec: MongoDB messages to and from bytes, with no I/O.
//!
//! Decoding takes a [`bytes::Bytes`] holding one whole message (cut from a stream by
//! [`MessageDecoder`]) and returns a [`Message`] that keeps that buffer: every document is a
//! `&bson::RawDocument` view into it, so a 16 MB batch is never copied. Encoding appends to a
//! [`bytes::BytesMut`] with one reservation per message.
//!
//! Everything that comes from the peer is bounds-checked: a length below its minimum or past
//! its enclosing bounds, an unknown opcode, section kind or compressor, reserved flag bits, a
//! bad checksum or a decompressed size that differs from the declared one is a [`DecodeError`]
//! naming the field and its offset, never a panic or an allocation the received bytes do not
//! justify.
//!
//! ```
//! use bson::rawdoc;
//! use bytes::BytesMut;
//! use mongowire::wire::{Body, Message, MessageDecoder, MsgFlags, OpMsg};
//!
//! let ping = OpMsg::new(rawdoc! { "ping": 1, "$db": "admin" }).with_flags(MsgFlags::CHECKSUM_PRESENT);
//! let mut buf = BytesMut::new();
//! Message::new(7, 0, Body::Msg(ping)).encode(&mut buf)?;
//!
//! let message = MessageDecoder::default().decode(&mut buf)?.expect("a whole message");
//! let Body::Msg(msg) = message.body() else { unreachable!() };
//! assert_eq!(msg.command_name(), Some("ping"));
//! assert_eq!(message.request_id(), 7);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod compression;
mod documents;
mod error;
mod framing;
mod header;
mod legacy;
mod message;
mod msg;
mod owned;
mod reader;

pub use compression::{Compressor, compress, decompress};
pub use documents::{Documents, SharedDocument};
pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use framing::MessageDecoder;
pub use header::{DEFAULT_MAX_MESSAGE_SIZE, HEADER_LEN, Header, OpCode};
pub use legacy::{OpCommand, OpCommandReply, OpDelete, OpGetMore, OpInsert, OpKillCursors, OpQuery, OpReply, OpUpdate};
pub use message::{Body, Compression, Message, compress_message};
pub use msg::{DocumentSequence, MsgFlags, OpMsg, Section};
pub use owned::{MAX_NESTING, ToDocumentError, for_each_owned, to_document};

#[cfg(test)]
pub(crate) mod test_support {
    //! Builders for hand-made messages in unit tests.
    use bytes::Bytes;

    /// A message with a correct header around `payload`.
    pub(crate) fn frame(op_code: i32, payload: &[u8]) -> Bytes {
        let len = i32::try_from(16 + payload.len()).unwrap();
        let mut out = Vec::new();
        for field in [len, 1, 0, op_code] {
            out.extend_from_slice(&field.to_le_bytes());
        }
        out.extend_from_slice(payload);
        Bytes::from(out)
    }

    /// Concatenates byte pieces.
    pub(crate) fn cat(pieces: &[&[u8]]) -> Vec<u8> {
        pieces.concat()
    }

    /// A kind-1 section with a correct size field.
    pub(crate) fn sequence_section(identifier: &str, docs: &[&[u8]]) -> Vec<u8> {
        let content: Vec<u8> = cat(&[identifier.as_bytes(), &[0], &docs.concat()]);
        let size = i32::try_from(4 + content.len()).unwrap();
        cat(&[&[1], &size.to_le_bytes(), &content])
    }
}
