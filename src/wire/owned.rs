//! Raw BSON into owned [`bson::Document`]s, for consumers who want owned, typed values.
//!
//! One pass over the bytes with every length checked against its enclosing document, building
//! each value in place. bson's own `Document::try_from(&RawDocument)` reaches the same result
//! through an owned raw copy of every nested document; serde's raw deserializer goes through
//! extended JSON (an ObjectId becomes a hex string and back). A change stream's typed events are
//! made here, so this is on the per-event path.

use bson::oid::ObjectId;
use bson::spec::BinarySubtype;
use bson::{Binary, Bson, DateTime, Decimal128, Document, RawDocument, Timestamp};

/// Deeper nesting is refused rather than recursed into: the server's own limit is 100 levels
/// of user document, plus the few levels of the envelope a change event or reply puts around it.
pub const MAX_NESTING: usize = 128;

/// Why a raw document could not become an owned one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToDocumentError {
    /// Documents and arrays nested deeper than [`MAX_NESTING`].
    #[error("documents nested deeper than {MAX_NESTING} levels")]
    TooDeep,
    /// Bytes that are not BSON.
    #[error("malformed BSON at byte {offset}: {problem}")]
    Malformed {
        /// Offset from the start of the enclosing document.
        offset: usize,
        /// What was wrong.
        problem: &'static str,
    },
    /// A value bson itself refused to convert (the rare element kinds are converted by bson).
    #[error("{0}")]
    Bson(String),
}

/// An owned [`Document`] with the contents of `raw`: equal to `Document::try_from(raw)` for
/// every document bson accepts, at a fraction of the cost.
pub fn to_document(raw: &RawDocument) -> Result<Document, ToDocumentError> {
    Walker { depth: 0 }.document(raw.as_bytes())
}

/// Calls `each` with every element of `raw` in order, its value converted to an owned [`Bson`]:
/// for building a typed value from a document without an intermediate [`Document`].
pub fn for_each_owned(raw: &RawDocument, each: impl FnMut(&str, Bson)) -> Result<(), ToDocumentError> {
    Walker { depth: 0 }.elements(raw.as_bytes(), each)
}

struct Walker {
    depth: usize,
}

fn malformed(offset: usize, problem: &'static str) -> ToDocumentError {
    ToDocumentError::Malformed { offset, problem }
}

/// The bytes `bytes[at..at + n]`, or an error naming `what` when they run past the end.
fn take<'a>(bytes: &'a [u8], at: usize, n: usize, what: &'static str) -> Result<&'a [u8], ToDocumentError> {
    at.checked_add(n)
        .and_then(|end| bytes.get(at..end))
        .ok_or_else(|| malformed(at, what))
}

fn fixed<const N: usize>(bytes: &[u8], at: usize, what: &'static str) -> Result<[u8; N], ToDocumentError> {
    let slice = take(bytes, at, N, what)?;
    let mut out = [0; N];
    out.copy_from_slice(slice);
    Ok(out)
}

fn length(bytes: &[u8], at: usize, what: &'static str) -> Result<usize, ToDocumentError> {
    let n = i32::from_le_bytes(fixed(bytes, at, what)?);
    usize::try_from(n).map_err(|_| malformed(at, "negative length"))
}

/// The cstring at `at` and the offset just past its terminator.
fn cstring(bytes: &[u8], at: usize) -> Result<(&str, usize), ToDocumentError> {
    let rest = bytes.get(at..).ok_or_else(|| malformed(at, "missing key"))?;
    let nul = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| malformed(at, "unterminated cstring"))?;
    let (text, _) = rest.split_at(nul);
    let text = std::str::from_utf8(text).map_err(|_| malformed(at, "cstring is not UTF-8"))?;
    Ok((text, at + nul + 1))
}

impl Walker {
    /// The bytes of the nested document at `at`, as its length prefix declares them; the rest
    /// of the frame is checked when its elements are read.
    fn frame<'a>(&self, bytes: &'a [u8], at: usize) -> Result<&'a [u8], ToDocumentError> {
        let len = length(bytes, at, "document length")?;
        take(bytes, at, len, "document runs past its parent")
    }

    fn document(&mut self, frame: &[u8]) -> Result<Document, ToDocumentError> {
        let mut document = Document::new();
        self.elements(frame, |key, value| {
            document.insert(key, value);
        })?;
        Ok(document)
    }

    fn array(&mut self, frame: &[u8]) -> Result<Vec<Bson>, ToDocumentError> {
        let mut array = Vec::new();
        self.elements(frame, |_, value| array.push(value))?;
        Ok(array)
    }

    /// Calls `each` with every element of a document frame, in order.
    fn elements(&mut self, frame: &[u8], mut each: impl FnMut(&str, Bson)) -> Result<(), ToDocumentError> {
        if self.depth >= MAX_NESTING {
            return Err(ToDocumentError::TooDeep);
        }
        self.depth += 1;
        let body = match frame.split_last() {
            Some((0, body)) if frame.len() >= 5 => body,
            _ => return Err(malformed(0, "document shorter than 5 bytes or not terminated by 0")),
        };
        let mut at = 4;
        while let Some(&kind) = body.get(at) {
            let (key, value_at) = cstring(body, at + 1)?;
            let (value, next) = self.value(body, kind, value_at)?;
            each(key, value);
            at = next;
        }
        self.depth -= 1;
        Ok(())
    }

    /// The value of kind `kind` at `at`, and the offset just past it.
    fn value(&mut self, bytes: &[u8], kind: u8, at: usize) -> Result<(Bson, usize), ToDocumentError> {
        Ok(match kind {
            0x01 => (Bson::Double(f64::from_le_bytes(fixed(bytes, at, "double")?)), at + 8),
            0x02 => {
                let len = length(bytes, at, "string length")?;
                let with_nul = take(bytes, at + 4, len, "string runs past its document")?;
                let Some((&0, text)) = with_nul.split_last() else {
                    return Err(malformed(at, "string not terminated by 0"));
                };
                let text = std::str::from_utf8(text).map_err(|_| malformed(at, "string is not UTF-8"))?;
                (Bson::String(text.to_owned()), at + 4 + len)
            }
            0x03 => {
                let frame = self.frame(bytes, at)?;
                (Bson::Document(self.document(frame)?), at + frame.len())
            }
            0x04 => {
                let frame = self.frame(bytes, at)?;
                (Bson::Array(self.array(frame)?), at + frame.len())
            }
            0x05 => {
                let len = length(bytes, at, "binary length")?;
                let subtype = BinarySubtype::from(fixed::<1>(bytes, at + 4, "binary subtype")?[0]);
                if subtype == BinarySubtype::BinaryOld {
                    return self.by_bson(bytes, kind, at);
                }
                let data = take(bytes, at + 5, len, "binary runs past its document")?;
                let binary = Binary {
                    subtype,
                    bytes: data.to_vec(),
                };
                (Bson::Binary(binary), at + 5 + len)
            }
            0x07 => (
                Bson::ObjectId(ObjectId::from_bytes(fixed(bytes, at, "ObjectId")?)),
                at + 12,
            ),
            0x08 => match fixed::<1>(bytes, at, "boolean")?[0] {
                0 => (Bson::Boolean(false), at + 1),
                1 => (Bson::Boolean(true), at + 1),
                _ => return Err(malformed(at, "boolean is neither 0 nor 1")),
            },
            0x09 => {
                let millis = i64::from_le_bytes(fixed(bytes, at, "datetime")?);
                (Bson::DateTime(DateTime::from_millis(millis)), at + 8)
            }
            0x0A => (Bson::Null, at),
            0x10 => (Bson::Int32(i32::from_le_bytes(fixed(bytes, at, "int32")?)), at + 4),
            0x11 => {
                let increment = u32::from_le_bytes(fixed(bytes, at, "timestamp")?);
                let time = u32::from_le_bytes(fixed(bytes, at + 4, "timestamp")?);
                (Bson::Timestamp(Timestamp { time, increment }), at + 8)
            }
            0x12 => (Bson::Int64(i64::from_le_bytes(fixed(bytes, at, "int64")?)), at + 8),
            0x13 => (
                Bson::Decimal128(Decimal128::from_bytes(fixed(bytes, at, "decimal128")?)),
                at + 16,
            ),
            _ => return self.by_bson(bytes, kind, at),
        })
    }

    /// The rare kinds (regular expression, code, symbol, DBPointer, min/max key, undefined,
    /// old binary), converted by bson from a one-element copy: none is on a hot path.
    fn by_bson(&mut self, bytes: &[u8], kind: u8, at: usize) -> Result<(Bson, usize), ToDocumentError> {
        let size = rare_value_size(bytes, kind, at)?;
        let value = take(bytes, at, size, "value runs past its document")?;
        let mut single = Vec::with_capacity(size + 8);
        let total = i32::try_from(size + 8).map_err(|_| malformed(at, "value too large"))?;
        single.extend_from_slice(&total.to_le_bytes());
        single.extend_from_slice(&[kind, b'v', 0]);
        single.extend_from_slice(value);
        single.push(0);
        let document = RawDocument::from_bytes(&single).map_err(|e| ToDocumentError::Bson(e.to_string()))?;
        let converted = Document::try_from(document).map_err(|e| ToDocumentError::Bson(e.to_string()))?;
        let value = converted
            .into_iter()
            .next()
            .map(|(_, value)| value)
            .ok_or_else(|| malformed(at, "empty value"))?;
        Ok((value, at + size))
    }
}

/// The size of a value of one of the rare kinds.
fn rare_value_size(bytes: &[u8], kind: u8, at: usize) -> Result<usize, ToDocumentError> {
    let prefixed = |extra: usize| -> Result<usize, ToDocumentError> {
        let len = length(bytes, at, "length")?;
        Ok(4 + extra + len)
    };
    match kind {
        0x05 => prefixed(1),
        0x06 | 0x7F | 0xFF => Ok(0),
        0x0B => {
            let (_, after_pattern) = cstring(bytes, at)?;
            let (_, after_options) = cstring(bytes, after_pattern)?;
            Ok(after_options - at)
        }
        0x0C => Ok(prefixed(0)? + 12),
        0x0D | 0x0E => prefixed(0),
        0x0F => Ok(length(bytes, at, "code with scope length")?),
        _ => Err(malformed(at, "unknown element type")),
    }
}

#[cfg(test)]
mod tests {
    use bson::{RawBson, RawDocumentBuf, rawdoc};

    use super::*;

    #[test]
    fn rare_kinds_convert_as_bson_converts_them() {
        let mut raw = rawdoc! { "min": RawBson::MinKey, "max": RawBson::MaxKey, "u": RawBson::Undefined };
        raw.append(cstr("sym"), RawBson::Symbol("s".into()));
        raw.append(cstr("js"), RawBson::JavaScriptCode("f()".into()));
        raw.append(
            cstr("scope"),
            RawBson::JavaScriptCodeWithScope(bson::raw::RawJavaScriptCodeWithScope {
                code: "g()".into(),
                scope: rawdoc! { "x": 1 },
            }),
        );
        raw.append(
            cstr("old"),
            RawBson::Binary(Binary {
                subtype: BinarySubtype::BinaryOld,
                bytes: vec![1, 2, 3],
            }),
        );
        raw.append(
            cstr("re"),
            RawBson::RegularExpression(bson::Regex {
                pattern: cstr("a+"),
                options: cstr("i"),
            }),
        );
        let theirs = Document::try_from(raw.as_ref()).unwrap();
        assert_eq!(to_document(&raw).unwrap(), theirs);
    }

    fn cstr(s: &str) -> bson::raw::CString {
        bson::raw::CString::try_from(s.to_owned()).unwrap()
    }

    #[test]
    fn nesting_past_the_limit_is_an_error_not_a_deep_recursion() {
        let nested = |depth: usize| {
            let mut doc = rawdoc! { "leaf": 1 };
            for _ in 1..depth {
                doc = rawdoc! { "d": doc };
            }
            doc
        };
        assert!(to_document(&nested(MAX_NESTING)).is_ok());
        assert_eq!(to_document(&nested(MAX_NESTING + 1)), Err(ToDocumentError::TooDeep));
    }

    #[test]
    fn lengths_past_their_document_are_errors() {
        let mut bytes = rawdoc! { "s": "abc" }.into_bytes();
        bytes[7] = 100; // the string's length
        let raw = RawDocumentBuf::from_bytes(bytes).unwrap();
        assert!(matches!(to_document(&raw), Err(ToDocumentError::Malformed { .. })));
    }
}
