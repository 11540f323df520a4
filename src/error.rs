//! The one public error type, separating whose fault a failure was.
//!
//! - [`Error::Transport`]: the network: I/O, TLS, DNS, timeouts, a closed connection. The
//!   operation may well succeed on another attempt or another server.
//! - [`Error::Protocol`]: the peer sent bytes that do not decode, or that decode but break the
//!   protocol (a reply to the wrong request, a cursor reply without `cursor.id`).
//! - [`Error::Server`]: the server answered `ok: 0` (or reported write errors): code, codeName,
//!   message, error labels and the raw reply.
//! - [`Error::Authentication`]: credentials were refused or the server failed to prove itself;
//!   names the user and mechanism, never the password.
//! - [`Error::ServerSelection`]: no suitable server was found in time; says what was seen.
//! - [`Error::Usage`]: a caller mistake (a bad option or connection string), in words a user
//!   can act on.
//!
//! Every variant is `Clone`, so one failure can be handed to several waiters, and none of them
//! ever holds a password.

use bson::RawDocumentBuf;

use crate::protocol::ServerAddress;
use crate::wire::DecodeError;

/// Every error mongowire returns.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The network failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The peer broke the protocol.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The server reported an error.
    #[error(transparent)]
    Server(#[from] Box<ServerError>),
    /// Authentication failed.
    #[error(transparent)]
    Authentication(#[from] Box<AuthError>),
    /// No suitable server was found in time.
    #[error(transparent)]
    ServerSelection(#[from] ServerSelectionError),
    /// The caller asked for something that cannot be done.
    #[error(transparent)]
    Usage(#[from] UsageError),
}

/// A specialised `Result` for mongowire operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The server error, if this is one.
    pub fn as_server_error(&self) -> Option<&ServerError> {
        match self {
            Error::Server(error) => Some(error),
            _ => None,
        }
    }

    /// Whether this is a network error or a network timeout (the Change Streams and retryable
    /// reads/writes specifications treat both as retryable).
    pub fn is_network_error(&self) -> bool {
        matches!(self, Error::Transport(_))
    }

    /// Whether the server (or the driver, for network errors) attached this error label.
    pub fn has_label(&self, label: &str) -> bool {
        match self {
            Error::Server(error) => error.has_label(label),
            _ => false,
        }
    }

    /// A usage error with this message.
    pub fn usage(message: impl Into<String>) -> Error {
        Error::Usage(UsageError {
            message: message.into(),
        })
    }

    /// A protocol error.
    pub fn protocol(context: &'static str, kind: ProtocolErrorKind) -> Error {
        Error::Protocol(ProtocolError { context, kind })
    }
}

impl From<ServerError> for Error {
    fn from(error: ServerError) -> Error {
        Error::Server(Box::new(error))
    }
}

impl From<AuthError> for Error {
    fn from(error: AuthError) -> Error {
        Error::Authentication(Box::new(error))
    }
}

/// What went wrong on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// An I/O error (connection refused, reset, ...).
    Io(std::io::ErrorKind),
    /// An operation did not finish in time.
    Timeout,
    /// The TLS handshake or session failed (unknown CA, wrong host name, expired certificate).
    Tls,
    /// A DNS lookup (SRV, TXT or host) failed.
    Dns,
    /// The peer closed the connection.
    Closed,
}

/// A network failure, with the server it happened with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", address.as_ref().map(|a| format!("{a}: ")).unwrap_or_default())]
pub struct TransportError {
    /// What kind of failure.
    pub kind: TransportErrorKind,
    /// The server, when one was involved.
    pub address: Option<ServerAddress>,
    /// What happened, for people.
    pub message: String,
}

impl TransportError {
    /// A transport error of `kind` with `address`.
    pub fn new(
        kind: TransportErrorKind,
        address: Option<ServerAddress>,
        message: impl Into<String>,
    ) -> TransportError {
        TransportError {
            kind,
            address,
            message: message.into(),
        }
    }

    /// An I/O error on the connection to `address`, described as `what` failed.
    pub fn io(address: &ServerAddress, what: &str, error: &std::io::Error) -> TransportError {
        let kind = match error.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                TransportErrorKind::Timeout
            }
            std::io::ErrorKind::UnexpectedEof => TransportErrorKind::Closed,
            other => TransportErrorKind::Io(other),
        };
        TransportError::new(kind, Some(address.clone()), format!("{what}: {error}"))
    }

    /// Whether the failure was a timeout.
    pub fn is_timeout(&self) -> bool {
        self.kind == TransportErrorKind::Timeout
    }
}

/// What was wrong with what the peer sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolErrorKind {
    /// The bytes are not a valid message.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A reply whose responseTo is not the request it should answer.
    #[error("reply answers request {got}, expected {expected}")]
    ResponseTo {
        /// The request id that was sent.
        expected: i32,
        /// The responseTo that came back.
        got: i32,
    },
    /// A reply with an opcode other than OP_MSG (or OP_COMPRESSED around it).
    #[error("unexpected {0} reply")]
    UnexpectedOpCode(&'static str),
    /// A required field is missing.
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// A field has the wrong type or an impossible value.
    #[error("field {field}: {problem}")]
    InvalidField {
        /// The field, as a dotted path.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A document is not valid BSON.
    #[error("invalid BSON: {0}")]
    InvalidBson(String),
    /// The server is older than the oldest version mongowire supports.
    #[error("the server does not support wire version {required} or above (it has {server})")]
    UnsupportedWireVersion {
        /// The minimum wire version mongowire needs.
        required: i32,
        /// The server's maxWireVersion.
        server: i32,
    },
}

/// The peer broke the protocol; `context` says what mongowire was reading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("protocol error in {context}: {kind}")]
pub struct ProtocolError {
    /// What was being read, such as "cursor reply" or "hello reply".
    pub context: &'static str,
    /// What was wrong.
    pub kind: ProtocolErrorKind,
}

/// An error the server reported.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ServerError {
    /// The error code (`code`; for write errors, the first write error's code).
    pub code: i32,
    /// The code's name (`codeName`), empty when the server sent none.
    pub code_name: String,
    /// The server's message (`errmsg`).
    pub message: String,
    /// Error labels (`errorLabels`), such as `ResumableChangeStreamError` or `RetryableWriteError`.
    pub labels: Vec<String>,
    /// The server that answered.
    pub address: Option<ServerAddress>,
    /// The whole reply.
    pub reply: RawDocumentBuf,
}

impl ServerError {
    /// Whether the server attached `label`.
    pub fn has_label(&self, label: &str) -> bool {
        self.labels.iter().any(|l| l == label)
    }

    fn describe(&self) -> String {
        let mut out = String::new();
        if let Some(address) = &self.address {
            out.push_str(&format!("{address}: "));
        }
        out.push_str(&format!("server error {}", self.code));
        if !self.code_name.is_empty() {
            out.push_str(&format!(" ({})", self.code_name));
        }
        out.push_str(&format!(": {}", self.message));
        if !self.labels.is_empty() {
            out.push_str(&format!(" [labels: {}]", self.labels.join(", ")));
        }
        out
    }
}

/// Authentication failed. Names the user, mechanism and source; never holds the password.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "authentication of user {user:?} (mechanism {mechanism}, source {source_db:?}) failed: {reason}"
)]
pub struct AuthError {
    /// The user name.
    pub user: String,
    /// The mechanism, such as `SCRAM-SHA-256`.
    pub mechanism: String,
    /// The authentication database.
    pub source_db: String,
    /// Why, for people: the server's message, or what the client found wrong.
    pub reason: String,
    /// The server's error, when the server refused.
    pub server_error: Option<ServerError>,
}

/// No suitable server was found within serverSelectionTimeoutMS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server selection timed out after {timeout_ms} ms looking for {wanted}; topology: {seen}")]
pub struct ServerSelectionError {
    /// What was wanted, such as "a primary" or "secondary (read preference)".
    pub wanted: String,
    /// How long selection waited.
    pub timeout_ms: u64,
    /// What the client saw of the topology: each server, its type, and its last error.
    pub seen: String,
}

/// A caller mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    /// What is wrong and, where it applies, where.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_error_display_has_address_code_name_and_labels() {
        let error = ServerError {
            code: 43,
            code_name: "CursorNotFound".into(),
            message: "cursor id 5 not found".into(),
            labels: vec!["ResumableChangeStreamError".into()],
            address: Some(ServerAddress::new("127.0.0.1", 27100)),
            reply: RawDocumentBuf::new(),
        };
        assert_eq!(
            Error::from(error).to_string(),
            "127.0.0.1:27100: server error 43 (CursorNotFound): cursor id 5 not found [labels: ResumableChangeStreamError]"
        );
    }

    #[test]
    fn transport_error_names_the_server() {
        let address = ServerAddress::new("db.example", 27017);
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error = TransportError::io(&address, "connect", &io);
        assert_eq!(
            error.kind,
            TransportErrorKind::Io(std::io::ErrorKind::ConnectionRefused)
        );
        assert_eq!(error.to_string(), "db.example:27017: connect: refused");
        let timeout = std::io::Error::new(std::io::ErrorKind::TimedOut, "deadline");
        assert!(TransportError::io(&address, "read", &timeout).is_timeout());
    }

    #[test]
    fn results_stay_small() {
        assert!(size_of::<Error>() <= 88, "{}", size_of::<Error>());
    }
}
