//! The async driver: runs the protocol core over tokio connections.
//!
//! Thin by design: TCP and TLS streams, the connection read/write loop, the handshake and
//! authentication exchanges, pools, monitors and the user-facing API. Every decision about what
//! to send and what a reply means lives in [`crate::protocol`].

mod auth;
mod connection;
mod handshake;
mod pool;
mod srv;
mod stream;
mod tls;

pub use connection::Reply;
pub use tls::{TlsOptions, TrustRoots};

#[cfg(test)]
mod server_tests;
#[cfg(test)]
mod tls_tests;
