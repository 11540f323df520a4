//! Which errors a read or a write may be retried on, once (Retryable Reads and Retryable
//! Writes specifications).

use bson::RawDocument;

use crate::error::Error;
use crate::protocol::reply;

/// Server errors that mean "this member cannot serve that now; another (or this one soon) can".
const RETRYABLE_CODES: [i32; 12] = [
    11600, // InterruptedAtShutdown
    11602, // InterruptedDueToReplStateChange
    10107, // NotWritablePrimary
    13435, // NotPrimaryNoSecondaryOk
    13436, // NotPrimaryOrSecondary
    189,   // PrimarySteppedDown
    91,    // ShutdownInProgress
    7,     // HostNotFound
    6,     // HostUnreachable
    89,    // NetworkTimeout
    9001,  // SocketException
    262,   // ExceededTimeLimit
];

/// ReadConcernMajorityNotAvailableYet: retryable for reads only.
const READ_CONCERN_MAJORITY_NOT_AVAILABLE_YET: i32 = 134;

/// The label servers (4.4+) and drivers put on retryable write errors.
pub const RETRYABLE_WRITE_ERROR: &str = "RetryableWriteError";

/// Wire version 9 (MongoDB 4.4): the server labels retryable write errors itself.
const SERVER_LABELS_WRITES: i32 = 9;

/// Whether a read may be retried after `error`.
pub fn is_retryable_read(error: &Error) -> bool {
    match error {
        Error::Transport(_) => true,
        Error::Server(server) => {
            RETRYABLE_CODES.contains(&server.code) || server.code == READ_CONCERN_MAJORITY_NOT_AVAILABLE_YET
        }
        _ => false,
    }
}

fn top_level_code(reply: &RawDocument) -> Option<i32> {
    reply::get_number(reply, "code").and_then(|c| i32::try_from(c).ok())
}

fn write_concern_code(reply: &RawDocument) -> Option<i32> {
    let concern = reply.get_document("writeConcernError").ok()?;
    reply::get_number(concern, "code").and_then(|c| i32::try_from(c).ok())
}

/// Whether a write may be retried after `error`, from a server of `max_wire_version`. Network
/// errors always may; from 4.4 servers only what the server labelled; from older ones the
/// specification's codes, in the top-level `code` or `writeConcernError.code`, never in
/// `writeErrors`.
pub fn is_retryable_write(error: &Error, max_wire_version: i32) -> bool {
    match error {
        Error::Transport(_) => true,
        Error::Server(server) if server.has_label(RETRYABLE_WRITE_ERROR) => true,
        Error::Server(server) if max_wire_version < SERVER_LABELS_WRITES => {
            let codes = [top_level_code(&server.reply), write_concern_code(&server.reply)];
            codes.into_iter().flatten().any(|code| RETRYABLE_CODES.contains(&code))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use bson::{RawDocumentBuf, rawdoc};

    use super::*;
    use crate::error::{TransportError, TransportErrorKind};

    fn server(reply: RawDocumentBuf) -> Error {
        reply::server_error(&reply, None).map(Error::from).unwrap()
    }

    #[test]
    fn reads_retry_on_network_errors_and_listed_codes() {
        assert!(is_retryable_read(
            &TransportError::new(TransportErrorKind::Timeout, None, "t").into()
        ));
        for code in [11600, 10107, 189, 91, 134, 262, 9001] {
            assert!(is_retryable_read(&server(rawdoc! { "ok": 0, "code": code })), "{code}");
        }
        for code in [2, 11000, 43, 13] {
            assert!(!is_retryable_read(&server(rawdoc! { "ok": 0, "code": code })), "{code}");
        }
        assert!(!is_retryable_read(&Error::usage("bad")));
    }

    #[test]
    fn writes_on_new_servers_follow_the_label_only() {
        let labelled = server(rawdoc! { "ok": 0, "code": 91, "errorLabels": ["RetryableWriteError"] });
        assert!(is_retryable_write(&labelled, 21));
        let unlabelled = server(rawdoc! { "ok": 0, "code": 91 });
        assert!(!is_retryable_write(&unlabelled, 21), "4.4+ servers decide");
        assert!(is_retryable_write(&unlabelled, 8), "older servers: by code");
        assert!(is_retryable_write(
            &TransportError::new(TransportErrorKind::Closed, None, "c").into(),
            21
        ));
    }

    #[test]
    fn old_servers_retry_on_write_concern_codes_but_never_on_write_errors() {
        let concern = server(rawdoc! { "ok": 1, "writeConcernError": { "code": 11602, "errmsg": "x" } });
        assert!(is_retryable_write(&concern, 8));
        let write_error = server(rawdoc! { "ok": 1, "writeErrors": [{ "index": 0, "code": 91, "errmsg": "x" }] });
        let Error::Server(inner) = &write_error else { panic!() };
        assert_eq!(inner.code, 91, "the write error's code is reported");
        assert!(!is_retryable_write(&write_error, 8), "but never retried on");
    }
}
