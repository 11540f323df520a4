//! A bounds-checked cursor over a message buffer.
//!
//! Every decoder reads through [`Reader`], so no decoder indexes a slice directly: each read
//! checks its length against the reader's end (the message end, or the end of an enclosing
//! section) and a failure carries the field name and the message offset where it happened.

use std::ops::Range;

use bytes::Bytes;

use super::error::{DecodeError, DecodeErrorKind};

/// The smallest valid BSON document: int32 length 5 and the terminating zero.
pub(crate) const MIN_DOCUMENT_LEN: usize = 5;

pub(crate) struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf[start..end]`; offsets in errors stay relative to `buf`.
    pub(crate) fn new(buf: &'a Bytes, start: usize, end: usize) -> Self {
        let end = end.min(buf.len());
        Reader {
            buf,
            pos: start.min(end),
            end,
        }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.end
    }

    pub(crate) fn error(&self, field: &'static str, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            field,
            offset: self.pos,
            kind,
        }
    }

    /// Fails unless every byte up to the end has been read.
    pub(crate) fn finish(&self, field: &'static str) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.error(
                field,
                DecodeErrorKind::TrailingBytes {
                    count: self.remaining(),
                },
            ))
        }
    }

    /// A reader over the next `len` bytes, which this reader skips.
    pub(crate) fn sub_reader(&mut self, len: usize, field: &'static str) -> Result<Reader<'a>, DecodeError> {
        let range = self.take(len, field)?;
        Ok(Reader {
            buf: self.buf,
            pos: range.start,
            end: range.end,
        })
    }

    pub(crate) fn take(&mut self, len: usize, field: &'static str) -> Result<Range<usize>, DecodeError> {
        if len > self.remaining() {
            return Err(self.error(
                field,
                DecodeErrorKind::Truncated {
                    needed: len,
                    available: self.remaining(),
                },
            ));
        }
        let start = self.pos;
        self.pos += len;
        Ok(start..self.pos)
    }

    pub(crate) fn take_rest(&mut self) -> Range<usize> {
        let start = self.pos;
        self.pos = self.end;
        start..self.end
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let range = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(self.slice(range));
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        self.array(field).map(i32::from_le_bytes)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_le_bytes)
    }

    pub(crate) fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        self.array(field).map(i64::from_le_bytes)
    }

    /// A zero-terminated UTF-8 string; the range excludes the terminator.
    pub(crate) fn cstring(&mut self, field: &'static str) -> Result<Range<usize>, DecodeError> {
        let rest = self.slice(self.pos..self.end);
        let Some(len) = rest.iter().position(|&b| b == 0) else {
            return Err(self.error(field, DecodeErrorKind::UnterminatedString));
        };
        if std::str::from_utf8(rest.get(..len).unwrap_or_default()).is_err() {
            return Err(self.error(field, DecodeErrorKind::InvalidUtf8));
        }
        let range = self.pos..self.pos + len;
        self.pos += len + 1;
        Ok(range)
    }

    /// A BSON document: its int32 length must be at least 5, fit in the remaining bytes, and the
    /// document must end with a zero byte. Elements are not walked here; the `RawDocument` view
    /// checks them as they are read.
    pub(crate) fn document(&mut self, field: &'static str) -> Result<Range<usize>, DecodeError> {
        let start = self.pos;
        let available = self.remaining();
        let length = self.i32(field)?;
        let fits = usize::try_from(length)
            .ok()
            .filter(|&len| (MIN_DOCUMENT_LEN..=available).contains(&len));
        let Some(len) = fits else {
            self.pos = start;
            return Err(self.error(
                field,
                DecodeErrorKind::DocumentLength {
                    length: length.into(),
                    available,
                },
            ));
        };
        self.pos = start + len;
        if self.slice(start..self.pos).last() != Some(&0) {
            self.pos = start;
            return Err(self.error(field, DecodeErrorKind::DocumentTerminator));
        }
        Ok(start..start + len)
    }

    /// An optional trailing document: `None` when the reader is at its end.
    pub(crate) fn optional_document(&mut self, field: &'static str) -> Result<Option<Range<usize>>, DecodeError> {
        if self.is_empty() {
            Ok(None)
        } else {
            self.document(field).map(Some)
        }
    }

    /// Zero or more documents up to the end; returns their range and count.
    pub(crate) fn documents(&mut self, field: &'static str) -> Result<(Range<usize>, usize), DecodeError> {
        let start = self.pos;
        let mut count = 0;
        while !self.is_empty() {
            self.document(field)?;
            count += 1;
        }
        Ok((start..self.pos, count))
    }

    fn slice(&self, range: Range<usize>) -> &'a [u8] {
        // Ranges come from this reader, which keeps `pos <= end <= buf.len()`.
        self.buf.get(range).unwrap_or_default()
    }

    pub(crate) fn bytes(&self, range: Range<usize>) -> Bytes {
        self.buf.slice(range)
    }
}
