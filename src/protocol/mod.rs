//! The protocol core: what to send and what replies mean, with no I/O.
//!
//! Command builders, reply classification, the connection string, authentication
//! conversations, server discovery and selection, and (later) the cursor and change-stream
//! state machines. Everything here is driven by values passed in and answers with values, so
//! every rule is unit-tested without a server; the async driver runs these over connections.

mod address;
pub mod auth;
pub mod change_stream;
mod concern;
mod credential;
pub mod crud;
pub mod cursor;
pub mod handshake;
mod read_preference;
pub mod reply;
pub mod retry;
pub mod sdam;
pub mod session;
pub mod uri;

pub use address::{DEFAULT_PORT, ServerAddress};
pub use concern::{Acknowledgment, ReadConcern, ReadConcernLevel, WriteConcern};
pub use credential::{AuthMechanism, Credential, Password};
pub use read_preference::{ReadPreference, ReadPreferenceMode, TagSet};
