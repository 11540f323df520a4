//! Command monitoring: started, succeeded and failed events for every command an operation
//! sends (not the handshake, authentication or monitoring commands), as the Command Logging and
//! Monitoring specification describes.

use std::time::Duration;

use bson::RawDocumentBuf;

use crate::error::Error;
use crate::protocol::ServerAddress;

/// A command's life, as a listener sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CommandEvent {
    /// The command is about to be sent.
    Started {
        /// The command document, with document sequences folded back in as arrays.
        command: RawDocumentBuf,
        /// Its name (first key).
        command_name: String,
        /// The database it runs on.
        database_name: String,
        /// The request id on the wire.
        request_id: i32,
        /// The server it goes to.
        address: ServerAddress,
    },
    /// The server answered `ok: 1`.
    Succeeded {
        /// The reply.
        reply: RawDocumentBuf,
        /// The command's name.
        command_name: String,
        /// The request id on the wire.
        request_id: i32,
        /// The time from sending to the reply.
        duration: Duration,
        /// The server.
        address: ServerAddress,
    },
    /// The command failed: a server error or a network failure.
    Failed {
        /// Why.
        error: Error,
        /// The command's name.
        command_name: String,
        /// The request id on the wire.
        request_id: i32,
        /// The time from sending to the failure.
        duration: Duration,
        /// The server.
        address: ServerAddress,
    },
}

/// Receives command events. Called inline on the operation's task: keep it quick.
pub trait CommandListener: Send + Sync + std::fmt::Debug {
    /// One event.
    fn on_command(&self, event: &CommandEvent);
}
