//! Zero-copy views of BSON documents inside a received message.

use bson::RawDocument;
use bytes::Bytes;

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
