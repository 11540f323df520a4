//! Decode and encode errors of the wire codec.
//!
//! A decode error names the field being read and the byte offset where it starts, counted from
//! the first byte of the message (for a message that arrived compressed, from the first byte of
//! the decompressed message, whose header is the one the sender compressed). Errors are `Clone +
//! PartialEq` so tests compare them with `assert_eq!`.

/// Why a message could not be decoded, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} (field {field}, byte {offset})")]
pub struct DecodeError {
    /// The field being read, named as in the wire-protocol documentation ("OP_MSG.flagBits").
    pub field: &'static str,
    /// Byte offset of that field from the start of the message.
    pub offset: usize,
    /// What was wrong with it.
    pub kind: DecodeErrorKind,
}

/// The ways a message can be malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// messageLength is smaller than the smallest message of its kind.
    #[error("length {length} is below the {min}-byte minimum")]
    LengthTooSmall {
        /// The declared length.
        length: i64,
        /// The minimum for this field.
        min: usize,
    },
    /// messageLength (or an uncompressed size) is larger than the configured maximum.
    #[error("length {length} exceeds the {max}-byte maximum")]
    LengthTooLarge {
        /// The declared length.
        length: i64,
        /// The configured maximum.
        max: usize,
    },
    /// A field runs past the end of its enclosing message or section.
    #[error("needs {needed} bytes but only {available} remain")]
    Truncated {
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the enclosing bounds.
        available: usize,
    },
    /// Bytes remain after the last field of a message or section.
    #[error("{count} unexpected bytes after the last field")]
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// The opcode is not one this codec knows.
    #[error("unknown opcode {0}")]
    UnknownOpCode(i32),
    /// OP_MSG flag bits that the specification reserves (bits 2-15) are set.
    #[error("reserved flag bits {0:#06x} are set")]
    ReservedFlagBits(u32),
    /// An OP_MSG section kind other than 0 (body) and 1 (document sequence).
    #[error("unknown section kind {0}")]
    UnknownSectionKind(u8),
    /// An OP_MSG without a kind-0 body section.
    #[error("no kind-0 body section")]
    MissingBody,
    /// An OP_MSG with more than one kind-0 body section.
    #[error("a second kind-0 body section")]
    DuplicateBody,
    /// A BSON document's int32 length is below 5 or past its enclosing bounds.
    #[error("document length {length} does not fit (minimum 5, {available} bytes available)")]
    DocumentLength {
        /// The declared document length.
        length: i64,
        /// Bytes left in the enclosing bounds.
        available: usize,
    },
    /// A BSON document whose last byte is not zero.
    #[error("document does not end with a zero byte")]
    DocumentTerminator,
    /// A cstring with no terminating zero byte within its bounds.
    #[error("string has no terminating zero byte")]
    UnterminatedString,
    /// A cstring that is not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// The OP_MSG checksum does not match the CRC-32C of the message.
    #[error("checksum {found:#010x} does not match the computed CRC-32C {computed:#010x}")]
    ChecksumMismatch {
        /// The checksum in the message.
        found: u32,
        /// The CRC-32C computed over the message.
        computed: u32,
    },
    /// An OP_COMPRESSED compressor id other than 0-3.
    #[error("unknown compressor id {0}")]
    UnknownCompressor(u8),
    /// OP_COMPRESSED wrapping an opcode that cannot be compressed (OP_COMPRESSED itself).
    #[error("OP_COMPRESSED cannot wrap opcode {0}")]
    UncompressibleOpCode(i32),
    /// The decompressed data is not the size the message declared.
    #[error("declared uncompressed size {declared} but decompression gave {actual} bytes or more")]
    UncompressedSizeMismatch {
        /// uncompressedSize from the message.
        declared: usize,
        /// What decompression produced (capped at declared + 1).
        actual: usize,
    },
    /// The compressed payload is corrupt.
    #[error("decompression failed: {0}")]
    Decompression(String),
    /// A count field disagrees with what follows it.
    #[error("count is {declared} but {actual} items follow")]
    CountMismatch {
        /// The count in the message.
        declared: i64,
        /// Items actually present.
        actual: usize,
    },
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded message would not fit the int32 messageLength field.
    #[error("message of {0} bytes is too large for the int32 length field")]
    TooLarge(usize),
    /// A cstring (identifier, collection or command name) contains a zero byte.
    #[error("{0:?} contains a zero byte and cannot be written as a cstring")]
    InteriorNul(String),
    /// The compressor failed.
    #[error("compression failed: {0}")]
    Compression(String),
}
