//! mongowire: a MongoDB change-stream client written from scratch.
//!
//! The crate is built in layers that data flows through one way:
//!
//! - [`wire`]: the sans-IO codec for MongoDB's wire protocol (OP_MSG, OP_COMPRESSED and the
//!   legacy opcodes), zero-copy over [`bytes::Bytes`].
//! - [`capture`]: reading recorded traffic and rendering messages as JSON.
// Tests index into buffers they built themselves and cast small known sizes.
#![cfg_attr(
    test,
    allow(
        clippy::indexing_slicing,
        clippy::cast_possible_truncation,
        clippy::cast_possible_wrap
    )
)]

pub mod capture;
pub mod wire;
