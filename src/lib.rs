//! mongowire: a MongoDB change-stream client written from scratch.
//!
//! The crate is built in layers that data flows through one way:
//!
//! - [`wire`]: the sans-IO codec for MongoDB's wire protocol (OP_MSG, OP_COMPRESSED and the
//!   legacy opcodes), zero-copy over [`bytes::Bytes`].
//! - [`protocol`]: the protocol core with no I/O: connection strings, authentication
//!   conversations, server discovery and selection, commands and replies.
//! - [`driver`]: the async driver on tokio: connections, TLS, pools, topology, the client API.
//! - [`capture`]: reading recorded traffic (fixtures, captures) and rendering messages as JSON.
//! - [`traffic`]: the recording proxy and the replay server (tokio).
//!
//! Errors of every layer above the codec are one type, [`Error`].
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
pub mod driver;
mod error;
pub mod protocol;
pub mod traffic;
pub mod wire;

pub use error::{
    AuthError, Error, ProtocolError, ProtocolErrorKind, Result, ServerError, ServerSelectionError, TransportError,
    TransportErrorKind, UsageError,
};
