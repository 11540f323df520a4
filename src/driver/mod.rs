//! The async driver: runs the protocol core over tokio connections.
//!
//! Thin by design: TCP and TLS streams, the connection read/write loop, the handshake and
//! authentication exchanges, pools, monitors and the user-facing API. Every decision about what
//! to send and what a reply means lives in [`crate::protocol`].

mod auth;
mod change_stream;
mod client;
mod connection;
mod cursor;
mod handshake;
mod monitoring;
mod operation;
mod pool;
mod session;
mod srv;
mod stream;
mod tls;
mod topology;

pub use change_stream::ChangeStream;
pub use client::{Client, ClientOptions, Collection, Database, InsertManyResult, InsertOneResult};
pub use connection::Reply;
pub(crate) use connection::next_request_id;
pub use cursor::Cursor;
pub use monitoring::{CommandEvent, CommandListener};
pub use session::ClientSession;
pub use tls::{TlsOptions, TrustRoots};

#[cfg(test)]
mod server_tests;
#[cfg(test)]
mod tls_tests;
