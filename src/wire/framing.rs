//! Cutting whole messages out of a byte stream.

use bytes::{Bytes, BytesMut};

use super::error::DecodeError;
use super::header::{HEADER_LEN, Header};
use super::message::Message;

/// Cuts messages out of a growing buffer, the way a connection's read loop needs them.
///
/// [`MessageDecoder::decode`] returns `Ok(None)` until a whole message is buffered. It never
/// reserves space on the strength of a declared length, so a peer that announces a 40 MB
/// message and sends 20 bytes costs 20 bytes ([`MessageDecoder::missing_bytes`] lets a read loop
/// choose otherwise, within the maximum). A message whose header is valid but whose body is
/// not is consumed before the error is returned, so the stream stays aligned on the next
/// message; a header with an impossible length leaves the stream unusable and is returned again
/// on every call.
#[derive(Debug, Clone)]
pub struct MessageDecoder {
    max_message_size: usize,
    consumed: u64,
    frame_offset: u64,
}

impl MessageDecoder {
    /// A decoder that rejects messages longer than `max_message_size`.
    pub fn new(max_message_size: usize) -> MessageDecoder {
        MessageDecoder {
            max_message_size,
            consumed: 0,
            frame_offset: 0,
        }
    }

    /// Changes the limit, for example to the server's `maxMessageSizeBytes` after the handshake.
    pub fn set_max_message_size(&mut self, max_message_size: usize) {
        self.max_message_size = max_message_size;
    }

    /// The limit in force.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Stream offset of the first byte of the message most recently returned or rejected.
    pub fn frame_offset(&self) -> u64 {
        self.frame_offset
    }

    /// Bytes consumed from the stream so far.
    pub fn position(&self) -> u64 {
        self.consumed
    }

    /// How many more bytes the message at the front of `buf` needs, once its header has arrived
    /// and declares a valid length; `None` before that. A read loop may reserve this much in one
    /// step (at most the maximum message size, and only address space until bytes arrive)
    /// instead of growing its buffer as the message comes in.
    pub fn missing_bytes(&self, buf: &[u8]) -> Option<usize> {
        let length = Header::parse(buf)?.checked_length(self.max_message_size).ok()?;
        Some(length.saturating_sub(buf.len()))
    }

    /// The bytes of the next whole message, without decoding its body.
    pub fn next_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, DecodeError> {
        let Some(header) = Header::parse(buf) else {
            return Ok(None);
        };
        self.frame_offset = self.consumed;
        let length = header.checked_length(self.max_message_size)?;
        if buf.len() < length {
            return Ok(None);
        }
        debug_assert!(length >= HEADER_LEN);
        self.consumed += length as u64;
        Ok(Some(buf.split_to(length).freeze()))
    }

    /// The next whole decoded message, `Ok(None)` if more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, DecodeError> {
        match self.next_frame(buf)? {
            Some(frame) => Message::decode(frame, self.max_message_size).map(Some),
            None => Ok(None),
        }
    }
}

impl Default for MessageDecoder {
    fn default() -> MessageDecoder {
        MessageDecoder::new(super::DEFAULT_MAX_MESSAGE_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;
    use bytes::BufMut;

    use super::*;
    use crate::wire::{Body, DecodeErrorKind, OpMsg};

    fn encoded(request_id: i32) -> Vec<u8> {
        let mut out = BytesMut::new();
        let body = Body::Msg(OpMsg::new(rawdoc! { "n": request_id }));
        Message::new(request_id, 0, body).encode(&mut out).unwrap();
        out.to_vec()
    }

    #[test]
    fn waits_for_a_whole_message_fed_byte_by_byte() {
        let bytes = encoded(1);
        let mut decoder = MessageDecoder::default();
        let mut buf = BytesMut::new();
        for (i, byte) in bytes.iter().enumerate() {
            assert!(decoder.decode(&mut buf).unwrap().is_none(), "after {i} bytes");
            buf.put_u8(*byte);
        }
        let message = decoder.decode(&mut buf).unwrap().unwrap();
        assert_eq!(message.request_id(), 1);
        assert!(buf.is_empty());
        assert_eq!(decoder.position(), bytes.len() as u64);
    }

    #[test]
    fn cuts_several_messages_from_one_buffer() {
        let (a, b) = (encoded(1), encoded(2));
        let mut buf = BytesMut::from(&[a.as_slice(), b.as_slice(), &b[..3]].concat()[..]);
        let mut decoder = MessageDecoder::default();
        assert_eq!(decoder.decode(&mut buf).unwrap().unwrap().request_id(), 1);
        assert_eq!(decoder.frame_offset(), 0);
        assert_eq!(decoder.decode(&mut buf).unwrap().unwrap().request_id(), 2);
        assert_eq!(decoder.frame_offset(), a.len() as u64);
        assert!(decoder.decode(&mut buf).unwrap().is_none());
        assert_eq!(buf.len(), 3);
    }

    #[test]
    fn a_huge_declared_length_allocates_nothing() {
        let mut decoder = MessageDecoder::new(48_000_000);
        let mut buf = BytesMut::with_capacity(64);
        buf.put_i32_le(47_000_000);
        buf.put_slice(&[0; 20]);
        let capacity = buf.capacity();
        assert!(decoder.decode(&mut buf).unwrap().is_none());
        assert_eq!(buf.capacity(), capacity);
        assert_eq!(buf.len(), 24);
    }

    #[test]
    fn an_impossible_length_is_an_error_before_the_body_arrives() {
        for length in [15, -1, 48_000_001] {
            let mut decoder = MessageDecoder::default();
            let mut buf = BytesMut::new();
            buf.put_i32_le(length);
            buf.put_slice(&[0; 12]);
            let error = decoder.decode(&mut buf).unwrap_err();
            assert_eq!(error.field, "header.messageLength");
            assert!(
                matches!(
                    error.kind,
                    DecodeErrorKind::LengthTooSmall { .. } | DecodeErrorKind::LengthTooLarge { .. }
                ),
                "{length}: {error}"
            );
            assert_eq!(buf.len(), 16, "nothing consumed");
            assert_eq!(decoder.decode(&mut buf).unwrap_err(), error, "the stream stays failed");
        }
    }

    #[test]
    fn a_bad_body_is_consumed_so_the_next_message_decodes() {
        let mut bad = encoded(1);
        bad[20] = 7; // section kind
        let good = encoded(2);
        let mut buf = BytesMut::from(&[bad.as_slice(), good.as_slice()].concat()[..]);
        let mut decoder = MessageDecoder::default();
        let error = decoder.decode(&mut buf).unwrap_err();
        assert_eq!(error.kind, DecodeErrorKind::UnknownSectionKind(7));
        assert_eq!(decoder.frame_offset(), 0);
        assert_eq!(decoder.decode(&mut buf).unwrap().unwrap().request_id(), 2);
        assert_eq!(decoder.frame_offset(), bad.len() as u64);
    }

    #[test]
    fn the_limit_can_change_after_the_handshake() {
        let bytes = encoded(1);
        let mut decoder = MessageDecoder::new(20);
        let mut buf = BytesMut::from(&bytes[..]);
        assert!(decoder.decode(&mut buf).is_err());
        decoder.set_max_message_size(1000);
        assert_eq!(decoder.max_message_size(), 1000);
        assert!(decoder.decode(&mut buf).unwrap().is_some());
    }
}
