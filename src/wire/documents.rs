//! Zero-copy views of BSON documents inside a received message, and their conversion to owned
//! documents for those who ask.

use bson::{Binary, Bson, Document, RawArray, RawBsonRef, RawDocument};
use bytes::Bytes;

/// An owned [`Document`] with the contents of `raw`, built in one pass over its bytes.
///
/// Equal to bson's own `Document::try_from(raw)`, which converts each nested document to an
/// owned raw copy first and then converts that again, and far cheaper than serde, whose raw
/// deserializer turns every ObjectId into a hex string and back. A change stream's typed events
/// are made here, so this is on the per-event path.
pub fn to_document(raw: &RawDocument) -> Result<Document, bson::error::Error> {
    let mut document = Document::new();
    for element in raw {
        let (key, value) = element?;
        document.insert(key.as_str(), to_bson(value)?);
    }
    Ok(document)
}

fn to_array(raw: &RawArray) -> Result<Vec<Bson>, bson::error::Error> {
    raw.into_iter().map(|value| to_bson(value?)).collect()
}

fn to_bson(value: RawBsonRef<'_>) -> Result<Bson, bson::error::Error> {
    Ok(match value {
        RawBsonRef::Double(v) => Bson::Double(v),
        RawBsonRef::String(v) => Bson::String(v.to_owned()),
        RawBsonRef::Document(v) => Bson::Document(to_document(v)?),
        RawBsonRef::Array(v) => Bson::Array(to_array(v)?),
        RawBsonRef::Boolean(v) => Bson::Boolean(v),
        RawBsonRef::Null => Bson::Null,
        RawBsonRef::Int32(v) => Bson::Int32(v),
        RawBsonRef::Int64(v) => Bson::Int64(v),
        RawBsonRef::Timestamp(v) => Bson::Timestamp(v),
        RawBsonRef::DateTime(v) => Bson::DateTime(v),
        RawBsonRef::ObjectId(v) => Bson::ObjectId(v),
        RawBsonRef::Decimal128(v) => Bson::Decimal128(v),
        RawBsonRef::Binary(v) => Bson::Binary(Binary {
            subtype: v.subtype,
            bytes: v.bytes.to_vec(),
        }),
        // The rare kinds (regular expressions, code, symbols, DBPointer, min/max keys,
        // undefined) hold nothing nested, so bson's own conversion costs no extra copy.
        other => Bson::try_from(other)?,
    })
}

/// The `RawDocument` view of bytes that decoding already checked (length prefix equal to the
/// slice length, at least 5 bytes, zero terminator).
pub(crate) fn document_view(bytes: &[u8]) -> &RawDocument {
    // ok: every caller passes a range that `Reader::document` validated with the same checks
    // `RawDocument::from_bytes` makes, so this cannot fail.
    RawDocument::from_bytes(bytes).expect("document bounds were validated at decode")
}

/// An owned BSON document that shares the buffer it was received in: cloning it and keeping it
/// after the message is gone cost a reference count, not a copy.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedDocument(Bytes);

impl SharedDocument {
    /// A document from bytes that hold exactly one valid BSON document frame.
    pub fn from_bytes(bytes: Bytes) -> Result<SharedDocument, bson::error::Error> {
        RawDocument::from_bytes(&bytes)?;
        Ok(SharedDocument(bytes))
    }

    /// A copy of `document` in a buffer of its own.
    pub fn copy_of(document: &RawDocument) -> SharedDocument {
        SharedDocument(Bytes::copy_from_slice(document.as_bytes()))
    }

    /// The document `view` points to inside `buffer`, sharing `buffer`; a copy when `view`
    /// lies elsewhere.
    pub fn within(buffer: &Bytes, view: &RawDocument) -> SharedDocument {
        let start = (view.as_bytes().as_ptr() as usize).wrapping_sub(buffer.as_ptr() as usize);
        let end = start.wrapping_add(view.as_bytes().len());
        if start <= end && end <= buffer.len() {
            SharedDocument(buffer.slice(start..end))
        } else {
            SharedDocument(Bytes::copy_from_slice(view.as_bytes()))
        }
    }

    /// The document.
    pub fn as_document(&self) -> &RawDocument {
        document_view(&self.0)
    }

    /// An owned copy as a `RawDocumentBuf`.
    pub fn to_raw_document_buf(&self) -> bson::RawDocumentBuf {
        self.as_document().to_owned()
    }

    /// The document's bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }
}

impl std::ops::Deref for SharedDocument {
    type Target = RawDocument;

    fn deref(&self) -> &RawDocument {
        self.as_document()
    }
}

impl AsRef<RawDocument> for SharedDocument {
    fn as_ref(&self) -> &RawDocument {
        self.as_document()
    }
}

impl std::fmt::Debug for SharedDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_document().fmt(f)
    }
}

/// The concatenated documents of a kind-1 section, an OP_REPLY or an OP_INSERT, in order.
///
/// Created from bytes whose document boundaries decoding validated; it borrows the message
/// buffer and copies nothing.
#[derive(Debug, Clone)]
pub struct Documents<'a> {
    rest: &'a [u8],
}

impl<'a> Documents<'a> {
    pub(crate) fn new(bytes: &'a Bytes) -> Self {
        Documents { rest: bytes }
    }
}

impl<'a> Iterator for Documents<'a> {
    type Item = &'a RawDocument;

    fn next(&mut self) -> Option<&'a RawDocument> {
        let len_bytes: [u8; 4] = self.rest.get(..4)?.try_into().ok()?;
        let len = usize::try_from(i32::from_le_bytes(len_bytes)).ok()?;
        let (document, rest) = self.rest.split_at_checked(len)?;
        self.rest = rest;
        Some(document_view(document))
    }
}

/// Appends documents to an encode buffer and returns the bytes, for building messages to send.
pub(crate) fn concat_documents<D: AsRef<RawDocument>>(documents: impl IntoIterator<Item = D>) -> (Bytes, usize) {
    let mut out = Vec::new();
    let mut count = 0;
    for document in documents {
        out.extend_from_slice(document.as_ref().as_bytes());
        count += 1;
    }
    (Bytes::from(out), count)
}

/// Checks that a string can be written as a cstring, returning its bytes.
pub(crate) fn cstring_bytes(value: &str) -> Result<Bytes, super::EncodeError> {
    if value.as_bytes().contains(&0) {
        return Err(super::EncodeError::InteriorNul(value.to_owned()));
    }
    Ok(Bytes::copy_from_slice(value.as_bytes()))
}

/// The text of a cstring field that decoding or construction validated as UTF-8.
pub(crate) fn cstring_str(bytes: &Bytes) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use super::*;

    #[test]
    fn shared_document_slices_the_buffer_it_lives_in() {
        let outer = rawdoc! { "cursor": { "firstBatch": [{ "_id": 1 }] } };
        let buffer = Bytes::from(outer.as_bytes().to_vec());
        let view = document_view(&buffer);
        let inner = view.get_document("cursor").unwrap();
        let shared = SharedDocument::within(&buffer, inner);
        assert_eq!(shared.as_bytes(), inner.as_bytes());
        assert_eq!(shared.bytes().as_ptr(), inner.as_bytes().as_ptr(), "no copy");

        let elsewhere = rawdoc! { "x": 1 };
        let copied = SharedDocument::within(&buffer, &elsewhere);
        assert_eq!(copied.as_document(), elsewhere.as_ref());
        assert!(SharedDocument::from_bytes(Bytes::from_static(b"\x05\0\0\0\x01")).is_err());
    }
}
