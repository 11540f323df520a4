//! A file of back-to-back wire messages.

use std::io::Read;

use bytes::BytesMut;

use crate::wire::{DecodeError, Message, MessageDecoder};

/// One item read from a stream: a message, or a message that did not decode and where it was.
#[derive(Debug)]
pub enum StreamItem {
    /// A decoded message and the stream offset of its first byte.
    Message {
        /// Offset of the message's first byte in the stream.
        offset: u64,
        /// The message.
        message: Message,
    },
    /// A message that did not decode. When its header was valid, the reader skipped it and
    /// carries on; otherwise the rest of the stream cannot be framed and reading ends.
    Error {
        /// Offset of the message's first byte in the stream.
        offset: u64,
        /// Why it did not decode.
        error: DecodeError,
        /// Whether reading goes on after this message.
        recovered: bool,
    },
    /// The stream ended in the middle of a message.
    Truncated {
        /// Offset of the incomplete message's first byte.
        offset: u64,
        /// How many bytes of it were there.
        available: usize,
    },
}

/// Reads messages from any `Read` in 64 KiB chunks; memory use is bounded by the largest
/// message, itself bounded by the decoder's maximum message size.
pub struct RawStreamReader<R> {
    reader: R,
    decoder: MessageDecoder,
    buf: BytesMut,
    done: bool,
}

const CHUNK: usize = 64 * 1024;

impl<R: Read> RawStreamReader<R> {
    /// A reader with the default maximum message size.
    pub fn new(reader: R) -> RawStreamReader<R> {
        RawStreamReader {
            reader,
            decoder: MessageDecoder::default(),
            buf: BytesMut::new(),
            done: false,
        }
    }

    /// The next item, `Ok(None)` at the end of the stream.
    pub fn next_item(&mut self) -> std::io::Result<Option<StreamItem>> {
        loop {
            if self.done {
                return Ok(None);
            }
            let before = self.decoder.position();
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(message)) => {
                    return Ok(Some(StreamItem::Message {
                        offset: self.decoder.frame_offset(),
                        message,
                    }));
                }
                Err(error) => {
                    let recovered = self.decoder.position() != before;
                    self.done = !recovered;
                    let offset = self.decoder.frame_offset();
                    return Ok(Some(StreamItem::Error {
                        offset,
                        error,
                        recovered,
                    }));
                }
                Ok(None) => {}
            }
            let read = read_chunk(&mut self.reader, &mut self.buf)?;
            if read == 0 {
                self.done = true;
                if !self.buf.is_empty() {
                    let offset = self.decoder.position();
                    return Ok(Some(StreamItem::Truncated {
                        offset,
                        available: self.buf.len(),
                    }));
                }
            }
        }
    }
}

/// Appends up to one chunk from `reader` to `buf`; returns how many bytes came.
fn read_chunk(reader: &mut impl Read, buf: &mut BytesMut) -> std::io::Result<usize> {
    let start = buf.len();
    buf.resize(start + CHUNK, 0);
    let read = reader.read(buf.get_mut(start..).unwrap_or_default());
    buf.truncate(start + *read.as_ref().unwrap_or(&0));
    read
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use super::*;
    use crate::wire::{Body, OpMsg};

    fn encoded(id: i32) -> Vec<u8> {
        let mut out = BytesMut::new();
        Message::new(id, 0, Body::Msg(OpMsg::new(rawdoc! { "ping": id })))
            .encode(&mut out)
            .unwrap();
        out.to_vec()
    }

    fn items(bytes: &[u8]) -> Vec<StreamItem> {
        let mut reader = RawStreamReader::new(bytes);
        std::iter::from_fn(|| reader.next_item().unwrap()).collect()
    }

    #[test]
    fn reads_every_message_with_its_offset() {
        let (a, b) = (encoded(1), encoded(2));
        let got = items(&[a.clone(), b].concat());
        assert_eq!(got.len(), 2);
        assert!(
            matches!(&got[1], StreamItem::Message { offset, message } if *offset == a.len() as u64 && message.request_id() == 2)
        );
    }

    #[test]
    fn a_bad_body_is_reported_and_skipped_and_a_short_tail_is_reported() {
        let mut bad = encoded(1);
        bad[20] = 9;
        let good = encoded(2);
        let stream = [bad.clone(), good.clone(), good[..10].to_vec()].concat();
        let got = items(&stream);
        assert!(matches!(
            &got[0],
            StreamItem::Error {
                offset: 0,
                recovered: true,
                ..
            }
        ));
        assert!(matches!(&got[1], StreamItem::Message { message, .. } if message.request_id() == 2));
        let tail = (bad.len() + good.len()) as u64;
        assert!(matches!(&got[2], StreamItem::Truncated { offset, available: 10 } if *offset == tail));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn a_bad_header_ends_the_stream() {
        let got = items(&[[3u8, 0, 0, 0].as_slice(), &[0; 12], &encoded(1)].concat());
        assert_eq!(got.len(), 1);
        assert!(matches!(
            &got[0],
            StreamItem::Error {
                offset: 0,
                recovered: false,
                ..
            }
        ));
    }
}
