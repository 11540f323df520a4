//! One direction of a TCP connection, from contiguous bytes to MongoDB messages.
//!
//! Bytes arrive in order (the reassembler has put them there), possibly with holes the capture
//! never filled. While the stream is *framing*, a [`MessageDecoder`] cuts message after message
//! out of the buffer. When the position of the next message is not known (after a hole, after a
//! header with an impossible length, or when the capture began in the middle of a connection)
//! the stream *hunts*: it looks for the next offset where a plausible header (known opcode,
//! length within the limit) starts a message that decodes completely, drops what came before,
//! and frames again from there. A message that fails to decode while framing is reported and
//! skipped; one that fails while hunting is taken for noise.

use bytes::{Buf, Bytes, BytesMut};

use crate::wire::{DecodeError, HEADER_LEN, Header, Message, MessageDecoder, OpCode};

/// What a stream produced, in stream order.
#[derive(Debug)]
pub(crate) enum StreamOutput {
    /// A message and the stream offset of its first byte.
    Message { offset: u64, message: Message },
    /// A message that did not decode.
    Error {
        offset: u64,
        error: DecodeError,
        /// Whether its length could be trusted, so the next message starts right after it.
        recovered: bool,
    },
    /// The stream ended `available` bytes into the message at `offset`.
    Truncated { offset: u64, available: usize },
    /// `missing` bytes at `offset` never appeared in the capture; `partial` bytes of a message
    /// started before the hole were dropped with it. `mongodb` says whether the stream was known
    /// to carry MongoDB messages (it had framed one, or was framing from a plausible header).
    Gap {
        offset: u64,
        missing: u64,
        partial: usize,
        mongodb: bool,
    },
    /// Framing resumed at `offset` after `skipped` captured bytes that could not be framed.
    Resynchronised { offset: u64, skipped: u64 },
    /// The stream ended while hunting: `bytes` captured bytes from `offset` on never framed as
    /// MongoDB messages; `any_message` says whether the stream framed anything at all.
    Unframed { offset: u64, bytes: u64, any_message: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The buffer starts at a message boundary.
    Framing,
    /// Looking for a message boundary since stream offset `since`, having dropped `skipped`
    /// captured bytes so far.
    Hunting { since: u64, skipped: u64 },
}

/// A direction's bytes and what has been made of them.
#[derive(Debug)]
pub(crate) struct MessageStream {
    buf: BytesMut,
    /// Stream offset of `buf[0]`.
    start: u64,
    state: State,
    /// Whether the stream's first byte is known to start a message (the SYN was captured) and
    /// its first header has not been seen yet.
    at_boundary: bool,
    /// Set while the buffered bytes are known to get no continuation (a hole or the end): a
    /// candidate message longer than what is buffered can then be given up on.
    ending: bool,
    decoder: MessageDecoder,
    framed_any: bool,
}

/// The length of the message `bytes` start with, if they start with a header a MongoDB peer
/// could have sent: a known opcode and a length the decoder accepts.
fn header_length(bytes: &[u8], max_message_size: usize) -> Option<(usize, OpCode)> {
    let header = Header::parse(bytes)?;
    let length = header.checked_length(max_message_size).ok()?;
    Some((length, OpCode::from_code(header.op_code)?))
}

/// [`header_length`], when the fields after the header are consistent with it as far as they
/// are buffered.
///
/// The fields after the header matter when hunting: bytes inside a message often look like a
/// header (a document length shifted by two bytes reads as a few megabytes, a small integer as
/// OP_REPLY), and a stream that took such a false candidate for a message would wait for
/// megabytes before the full decode rejected it, holding back every real message behind it.
fn plausible_message(bytes: &[u8], max_message_size: usize) -> Option<usize> {
    let (length, op_code) = header_length(bytes, max_message_size)?;
    plausible_body(op_code, bytes, length, max_message_size).then_some(length)
}

/// The int32 at `at`, if buffered.
fn i32_at(bytes: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// Where a cstring starting at `at` ends (its zero byte): `Err` if it has a control character
/// or runs past the message, `Ok(None)` if its end is not buffered yet.
fn cstring_end(bytes: &[u8], at: usize, length: usize) -> Result<Option<usize>, ()> {
    let available = bytes.get(at..length.min(bytes.len())).unwrap_or_default();
    match available.iter().position(|b| *b < 0x20 || *b == 0x7f) {
        Some(i) if available.get(i) == Some(&0) => Ok(Some(at + i)),
        Some(_) => Err(()),
        None if bytes.len() >= length => Err(()),
        None => Ok(None),
    }
}

fn plausible_body(op_code: OpCode, bytes: &[u8], length: usize, max_message_size: usize) -> bool {
    let int = |at: usize| i32_at(bytes, at);
    // A field that is zero, or not buffered yet.
    let zero = |at: usize| int(at).is_none_or(|v| v == 0);
    // Flag bits outside `allowed` are clear, or not buffered yet.
    let flags = |at: usize, allowed: u32| int(at).is_none_or(|v| u32::from_le_bytes(v.to_le_bytes()) & !allowed == 0);
    // A document (or section) length at `at` that fits between `at` and the message end.
    let fits =
        |at: usize| int(at).is_none_or(|l| usize::try_from(l).is_ok_and(|l| l >= 5 && at.saturating_add(l) <= length));
    // A cstring at `at` followed by a document `gap` bytes after its zero byte.
    let string_then_document = |at: usize, gap: usize| match cstring_end(bytes, at, length) {
        Ok(Some(end)) => fits(end + 1 + gap),
        Ok(None) => true,
        Err(()) => false,
    };
    match op_code {
        OpCode::Msg => {
            // Flag bits 2-15 are reserved; the first section is a body or a sequence.
            flags(HEADER_LEN, 0xffff_0003)
                && bytes.get(HEADER_LEN + 4).is_none_or(|kind| *kind <= 1)
                && fits(HEADER_LEN + 5)
        }
        OpCode::Reply => {
            let returned = int(32);
            flags(HEADER_LEN, 0xf)
                && returned.is_none_or(|n| n >= 0)
                && match returned {
                    Some(0) => length == 36,
                    _ => fits(36),
                }
        }
        OpCode::Query => flags(HEADER_LEN, 0xfe) && string_then_document(20, 8),
        OpCode::Insert => flags(HEADER_LEN, 1) && string_then_document(20, 0),
        OpCode::Update | OpCode::Delete => {
            let flags_at = cstring_end(bytes, 20, length);
            zero(HEADER_LEN)
                && match flags_at {
                    Ok(Some(end)) => flags(end + 1, 3) && fits(end + 5),
                    Ok(None) => true,
                    Err(()) => false,
                }
        }
        OpCode::GetMore => {
            zero(HEADER_LEN)
                && match cstring_end(bytes, 20, length) {
                    Ok(Some(end)) => end + 13 == length,
                    Ok(None) => true,
                    Err(()) => false,
                }
        }
        OpCode::KillCursors => {
            zero(HEADER_LEN)
                && int(20).is_none_or(|n| usize::try_from(n).is_ok_and(|n| n.checked_mul(8) == length.checked_sub(24)))
        }
        OpCode::Command => match cstring_end(bytes, HEADER_LEN, length) {
            Ok(Some(end)) => string_then_document(end + 1, 0),
            Ok(None) => true,
            Err(()) => false,
        },
        OpCode::CommandReply => fits(HEADER_LEN),
        OpCode::Compressed => {
            let original = int(HEADER_LEN);
            let size = int(HEADER_LEN + 4);
            original.is_none_or(|o| OpCode::from_code(o).is_some_and(|o| o != OpCode::Compressed))
                && size
                    .is_none_or(|s| usize::try_from(s).is_ok_and(|s| s.saturating_add(HEADER_LEN) <= max_message_size))
                && bytes.get(HEADER_LEN + 8).is_none_or(|id| *id <= 3)
        }
    }
}

impl MessageStream {
    /// A stream whose first byte starts a message if `at_boundary` (its SYN was seen), or may
    /// fall anywhere in one (the capture began mid-connection).
    pub(crate) fn new(max_message_size: usize, at_boundary: bool) -> MessageStream {
        MessageStream {
            buf: BytesMut::new(),
            start: 0,
            state: if at_boundary {
                State::Framing
            } else {
                State::Hunting { since: 0, skipped: 0 }
            },
            at_boundary,
            ending: false,
            decoder: MessageDecoder::new(max_message_size),
            framed_any: false,
        }
    }

    /// Appends the next bytes of the stream and returns what they completed.
    pub(crate) fn push(&mut self, data: &[u8], out: &mut Vec<StreamOutput>) {
        self.buf.extend_from_slice(data);
        self.run(out);
    }

    /// `missing` bytes after what was pushed so far will never come.
    pub(crate) fn gap(&mut self, missing: u64, out: &mut Vec<StreamOutput>) {
        self.settle(out);
        let offset = self.start + self.buf.len() as u64;
        let (partial, since, skipped) = match self.state {
            State::Framing => (self.buf.len(), offset + missing, 0),
            State::Hunting { since, skipped } => (0, since, skipped + self.buf.len() as u64),
        };
        let framing = self.state == State::Framing && !self.at_boundary;
        out.push(StreamOutput::Gap {
            offset,
            missing,
            partial,
            mongodb: self.framed_any || framing,
        });
        self.buf.clear();
        self.start = offset + missing;
        self.state = State::Hunting { since, skipped };
        self.at_boundary = false;
    }

    /// The stream has ended: reports a message left incomplete, or bytes never framed.
    pub(crate) fn finish(&mut self, out: &mut Vec<StreamOutput>) {
        self.settle(out);
        let buffered = self.buf.len() as u64;
        // Fewer than a header's worth came after the SYN: a message cut short if its length
        // field is one the decoder would take, else no telling it was MongoDB at all.
        let short_header = self
            .buf
            .get(..4)
            .map(|b| i32::from_le_bytes(b.try_into().unwrap_or([0; 4])));
        let short_header = short_header.and_then(|l| usize::try_from(l).ok());
        let max = self.decoder.max_message_size();
        let cut_message = short_header.is_some_and(|l| (HEADER_LEN..=max).contains(&l));
        match self.state {
            State::Framing if self.at_boundary && buffered > 0 && !cut_message => out.push(StreamOutput::Unframed {
                offset: self.start,
                bytes: buffered,
                any_message: false,
            }),
            State::Framing if buffered > 0 => out.push(StreamOutput::Truncated {
                offset: self.start,
                available: self.buf.len(),
            }),
            State::Hunting { since, skipped } if skipped + buffered > 0 => out.push(StreamOutput::Unframed {
                offset: since,
                bytes: skipped + buffered,
                any_message: self.framed_any,
            }),
            State::Framing | State::Hunting { .. } => {}
        }
        self.start += buffered;
        self.buf.clear();
    }

    /// Makes what can be made of the buffer, knowing nothing will be appended to it.
    fn settle(&mut self, out: &mut Vec<StreamOutput>) {
        self.ending = true;
        self.run(out);
        self.ending = false;
    }

    fn run(&mut self, out: &mut Vec<StreamOutput>) {
        loop {
            let progressed = match self.state {
                State::Framing => self.frame(out),
                State::Hunting { since, skipped } => self.hunt(since, skipped, out),
            };
            if !progressed {
                return;
            }
        }
    }

    /// Cuts messages while the buffer starts at a boundary. Returns whether it switched to
    /// hunting (so the caller should go on).
    fn frame(&mut self, out: &mut Vec<StreamOutput>) -> bool {
        if self.at_boundary {
            if self.buf.len() < HEADER_LEN {
                return false;
            }
            // The first bytes after a SYN: if they are no MongoDB header, hunt rather than
            // report another protocol as a broken MongoDB stream.
            self.at_boundary = false;
            if header_length(&self.buf, self.decoder.max_message_size()).is_none() {
                self.state = State::Hunting {
                    since: self.start,
                    skipped: 0,
                };
                return true;
            }
        }
        loop {
            let offset = self.start;
            let before = self.buf.len();
            let result = self.decoder.decode(&mut self.buf);
            let consumed = before - self.buf.len();
            self.start += consumed as u64;
            match result {
                Ok(Some(message)) => {
                    self.framed_any = true;
                    out.push(StreamOutput::Message { offset, message });
                }
                Ok(None) => return false,
                Err(error) if consumed > 0 => out.push(StreamOutput::Error {
                    offset,
                    error,
                    recovered: true,
                }),
                Err(error) => {
                    out.push(StreamOutput::Error {
                        offset,
                        error,
                        recovered: false,
                    });
                    self.state = State::Hunting {
                        since: offset,
                        skipped: 0,
                    };
                    return true;
                }
            }
        }
    }

    /// Drops `count` buffered bytes while hunting.
    fn skip(&mut self, count: usize, skipped: &mut u64) {
        self.buf.advance(count);
        self.start += count as u64;
        *skipped += count as u64;
    }

    /// Looks for the next message boundary. Returns whether it found one (so the caller should
    /// frame from there).
    fn hunt(&mut self, since: u64, mut skipped: u64, out: &mut Vec<StreamOutput>) -> bool {
        let max = self.decoder.max_message_size();
        let found = loop {
            let candidate = (0..self.buf.len().saturating_sub(HEADER_LEN - 1)).find_map(|at| {
                let length = plausible_message(self.buf.get(at..).unwrap_or_default(), max)?;
                Some((at, length))
            });
            let Some((at, length)) = candidate else {
                // Keep the last bytes, which may be the start of a header, unless none will follow.
                let keep = if self.ending { 0 } else { HEADER_LEN - 1 };
                self.skip(self.buf.len().saturating_sub(keep), &mut skipped);
                break false;
            };
            self.skip(at, &mut skipped);
            let Some(bytes) = self.buf.get(..length) else {
                if self.ending {
                    self.skip(1, &mut skipped);
                    continue;
                }
                break false;
            };
            if Message::decode(Bytes::copy_from_slice(bytes), max).is_ok() {
                break true;
            }
            self.skip(1, &mut skipped);
        };
        if found {
            if skipped > 0 {
                out.push(StreamOutput::Resynchronised {
                    offset: self.start,
                    skipped,
                });
            }
            self.state = State::Framing;
        } else {
            self.state = State::Hunting { since, skipped };
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;
    use bytes::BytesMut;

    use super::*;
    use crate::wire::{Body, OpMsg};

    fn msg(id: i32) -> Vec<u8> {
        let mut out = BytesMut::new();
        Message::new(
            id,
            0,
            Body::Msg(OpMsg::new(rawdoc! { "ping": id, "pad": "x".repeat(30) })),
        )
        .encode(&mut out)
        .unwrap();
        out.to_vec()
    }

    fn ids(out: &[StreamOutput]) -> Vec<i32> {
        out.iter()
            .filter_map(|o| match o {
                StreamOutput::Message { message, .. } => Some(message.request_id()),
                _ => None,
            })
            .collect()
    }

    /// A header for a 1000-byte OP_COMMANDREPLY whose first document length fits: plausible in
    /// every field that is there, yet no message.
    fn false_candidate() -> Vec<u8> {
        let mut out = Vec::new();
        for field in [1000i32, 9, 0, 2011, 500] {
            out.extend_from_slice(&field.to_le_bytes());
        }
        out
    }

    #[test]
    fn a_false_candidate_is_given_up_when_the_stream_ends() {
        let mut stream = MessageStream::new(48_000_000, false);
        let mut out = Vec::new();
        stream.push(&[false_candidate(), msg(2), msg(3)].concat(), &mut out);
        assert!(ids(&out).is_empty(), "waiting for the candidate's 1000 bytes");
        stream.finish(&mut out);
        assert_eq!(ids(&out), [2, 3]);
        assert!(matches!(
            out[0],
            StreamOutput::Resynchronised {
                offset: 20,
                skipped: 20
            }
        ));
    }

    #[test]
    fn a_false_candidate_is_given_up_at_a_gap() {
        let mut stream = MessageStream::new(48_000_000, false);
        let mut out = Vec::new();
        stream.push(&[false_candidate(), msg(2)].concat(), &mut out);
        stream.gap(10, &mut out);
        stream.push(&msg(3), &mut out);
        assert_eq!(ids(&out), [2, 3]);
        let gap_at = (false_candidate().len() + msg(2).len()) as u64;
        assert!(out.iter().any(
            |o| matches!(o, StreamOutput::Gap { offset, missing: 10, partial: 0, mongodb: true } if *offset == gap_at)
        ));
    }

    #[test]
    fn a_short_stream_after_a_syn_is_unframed_not_truncated() {
        let mut stream = MessageStream::new(48_000_000, true);
        let mut out = Vec::new();
        stream.push(b"PING\r\n", &mut out);
        stream.finish(&mut out);
        assert!(matches!(
            out[..],
            [StreamOutput::Unframed {
                offset: 0,
                bytes: 6,
                any_message: false
            }]
        ));
        // Four bytes that could start a header are a message cut short.
        let mut out = Vec::new();
        let mut stream = MessageStream::new(48_000_000, true);
        stream.push(&msg(1)[..6], &mut out);
        stream.finish(&mut out);
        assert!(matches!(
            out[..],
            [StreamOutput::Truncated {
                offset: 0,
                available: 6
            }]
        ));
        // And a stream with nothing in it says nothing.
        let mut out = Vec::new();
        MessageStream::new(48_000_000, true).finish(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_message_cut_by_a_gap_is_lost_and_the_next_one_found() {
        let (a, b) = (msg(1), msg(2));
        let mut stream = MessageStream::new(48_000_000, true);
        let mut out = Vec::new();
        stream.push(&a[..30], &mut out);
        stream.gap(20, &mut out);
        stream.push(&a[50..], &mut out);
        stream.push(&b, &mut out);
        assert_eq!(ids(&out), [2]);
        assert!(matches!(
            out[0],
            StreamOutput::Gap {
                offset: 30,
                missing: 20,
                partial: 30,
                mongodb: true
            }
        ));
        let skipped = (a.len() - 50) as u64;
        assert!(matches!(out[1], StreamOutput::Resynchronised { skipped: s, .. } if s == skipped));
    }

    #[test]
    fn legacy_headers_are_checked_beyond_the_header() {
        let max = 48_000_000;
        let header = |length: i32, op_code: i32, rest: &[u8]| {
            let mut out = Vec::new();
            for field in [length, 1, 0, op_code] {
                out.extend_from_slice(&field.to_le_bytes());
            }
            out.extend_from_slice(rest);
            out
        };
        // OP_QUERY with a namespace that holds a control character.
        assert_eq!(plausible_message(&header(60, 2004, b"\0\0\0\0db.\x01"), max), None);
        assert_eq!(plausible_message(&header(60, 2004, b"\0\0\0\0db.c"), max), Some(60));
        // OP_REPLY with reserved response flags, or a negative count.
        assert_eq!(plausible_message(&header(60, 1, &[0x10, 0, 0, 0]), max), None);
        let mut reply = header(36, 1, &[0; 20]);
        assert_eq!(plausible_message(&reply, max), Some(36));
        reply[32..36].copy_from_slice(&(-1i32).to_le_bytes());
        assert_eq!(plausible_message(&reply, max), None);
        // OP_KILL_CURSORS whose count disagrees with its length.
        assert_eq!(
            plausible_message(&header(40, 2007, &[0, 0, 0, 0, 2, 0, 0, 0]), max),
            Some(40)
        );
        assert_eq!(
            plausible_message(&header(40, 2007, &[0, 0, 0, 0, 3, 0, 0, 0]), max),
            None
        );
        // OP_GET_MORE whose length is not namespace + 12 bytes.
        assert_eq!(plausible_message(&header(37, 2005, b"\0\0\0\0db.c\0"), max), Some(37));
        assert_eq!(plausible_message(&header(36, 2005, b"\0\0\0\0db.c\0"), max), None);
        // OP_COMPRESSED wrapping itself.
        assert_eq!(plausible_message(&header(40, 2012, &2012i32.to_le_bytes()), max), None);
        // OP_MSG whose body document would run past the message.
        assert_eq!(
            plausible_message(&header(40, 2013, &[0, 0, 0, 0, 0, 30, 0, 0, 0]), max),
            None
        );
        assert_eq!(
            plausible_message(&header(40, 2013, &[0, 0, 0, 0, 0, 19, 0, 0, 0]), max),
            Some(40)
        );
    }
}
