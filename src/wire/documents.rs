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
pub(crate) fn concat_documents<D: AsRef<RawDocument>>(
    documents: impl IntoIterator<Item = D>,
) -> (Bytes, usize) {
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
