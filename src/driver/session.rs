//! Explicit sessions.

use bson::{RawDocument, Timestamp};

use crate::driver::client::Client;
use crate::error::Error;
use crate::protocol::session::ServerSession;

/// An explicit logical session: commands run in it share one `lsid`, and it remembers the
/// latest `operationTime` they saw. Returned to the client's pool when ended or dropped; the
/// server forgets it after `logicalSessionTimeoutMinutes` unused, or at once when the client
/// shuts down (`endSessions`). A session is not meant for concurrent use.
#[derive(Debug)]
pub struct ClientSession {
    client: Client,
    session: Option<ServerSession>,
}

impl ClientSession {
    pub(crate) fn new(client: Client, session: ServerSession) -> ClientSession {
        ClientSession {
            client,
            session: Some(session),
        }
    }

    /// The session id (`lsid`), as sent with each command.
    pub fn id(&self) -> Option<&RawDocument> {
        self.session.as_ref().map(ServerSession::lsid)
    }

    /// The latest `operationTime` of a reply in this session.
    pub fn operation_time(&self) -> Option<Timestamp> {
        self.session.as_ref().and_then(ServerSession::operation_time)
    }

    /// The client this session belongs to.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Ends the session (its server session goes back to the pool for reuse).
    pub fn end(mut self) {
        self.release();
    }

    /// Lends the server session out (to a change stream's exchange in flight).
    pub(crate) fn take_server_session(&mut self) -> Option<ServerSession> {
        self.session.take()
    }

    /// Takes a lent server session back.
    pub(crate) fn put_server_session(&mut self, session: ServerSession) {
        self.session = Some(session);
    }

    pub(crate) fn server_session(&mut self) -> Result<&mut ServerSession, Error> {
        self.session
            .as_mut()
            .ok_or_else(|| Error::usage("this session has ended"))
    }

    fn release(&mut self) {
        if let Some(session) = self.session.take() {
            self.client.inner().executor.release_session(session);
        }
    }
}

impl Drop for ClientSession {
    fn drop(&mut self) {
        self.release();
    }
}
