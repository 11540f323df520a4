//! What a command reply means: success, or a server error with its code and labels.

use bson::{RawBsonRef, RawDocument, RawDocumentBuf};

use crate::error::{Error, ProtocolErrorKind, ServerError};
use crate::protocol::ServerAddress;

/// Reads `ok`, which servers send as a double, an int32/int64 or (rarely) a bool.
pub fn is_ok(body: &RawDocument) -> bool {
    match body.get("ok") {
        Ok(Some(RawBsonRef::Double(ok))) => ok == 1.0,
        Ok(Some(RawBsonRef::Int32(ok))) => ok == 1,
        Ok(Some(RawBsonRef::Int64(ok))) => ok == 1,
        Ok(Some(RawBsonRef::Boolean(ok))) => ok,
        _ => false,
    }
}

/// A number field of any numeric BSON type, as `i64`.
pub fn get_number(body: &RawDocument, key: &str) -> Option<i64> {
    match body.get(key).ok()?? {
        RawBsonRef::Int32(n) => Some(i64::from(n)),
        RawBsonRef::Int64(n) => Some(n),
        RawBsonRef::Double(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
            // Exact: the value is integral and well inside f64's 53-bit integer range.
            #[allow(clippy::cast_possible_truncation)]
            Some(n as i64)
        }
        _ => None,
    }
}

fn get_str<'a>(body: &'a RawDocument, key: &str) -> Option<&'a str> {
    match body.get(key).ok()?? {
        RawBsonRef::String(s) => Some(s),
        _ => None,
    }
}

fn labels(body: &RawDocument) -> Vec<String> {
    let Ok(Some(RawBsonRef::Array(array))) = body.get("errorLabels") else {
        return Vec::new();
    };
    array
        .into_iter()
        .filter_map(|label| label.ok()?.as_str().map(str::to_owned))
        .collect()
}

/// The server error a reply describes: `ok: 0`, or (for writes acknowledged with `ok: 1`) a
/// `writeConcernError` or the first of `writeErrors`. `None` when the command succeeded.
pub fn server_error(body: &RawDocument, address: Option<&ServerAddress>) -> Option<ServerError> {
    let make = |source: &RawDocument, labels: Vec<String>| ServerError {
        code: get_number(source, "code")
            .and_then(|c| i32::try_from(c).ok())
            .unwrap_or(0),
        code_name: get_str(source, "codeName").unwrap_or_default().to_owned(),
        message: get_str(source, "errmsg").unwrap_or_default().to_owned(),
        labels,
        address: address.cloned(),
        reply: body.to_owned(),
    };
    if !is_ok(body) {
        return Some(make(body, labels(body)));
    }
    if let Ok(Some(RawBsonRef::Array(errors))) = body.get("writeErrors")
        && let Some(Ok(RawBsonRef::Document(first))) = errors.into_iter().next()
    {
        return Some(make(first, labels(body)));
    }
    if let Ok(Some(RawBsonRef::Document(concern_error))) = body.get("writeConcernError") {
        // The server puts labels for write concern errors at the top level of the reply.
        let mut all = labels(body);
        all.extend(labels(concern_error));
        return Some(make(concern_error, all));
    }
    None
}

/// Turns a reply into `Ok` or the server error it carries.
pub fn check(body: &RawDocument, address: Option<&ServerAddress>) -> Result<(), Error> {
    match server_error(body, address) {
        None => Ok(()),
        Some(error) => Err(error.into()),
    }
}

/// The `$clusterTime` a reply gossips, if any.
pub fn cluster_time(body: &RawDocument) -> Option<RawDocumentBuf> {
    match body.get("$clusterTime") {
        Ok(Some(RawBsonRef::Document(doc))) => Some(doc.to_owned()),
        _ => None,
    }
}

/// The `operationTime` of a reply, if any.
pub fn operation_time(body: &RawDocument) -> Option<bson::Timestamp> {
    body.get_timestamp("operationTime").ok()
}

/// A required sub-document, or a protocol error naming it.
pub fn required_document<'a>(body: &'a RawDocument, key: &'static str) -> Result<&'a RawDocument, Error> {
    match body.get(key) {
        Ok(Some(RawBsonRef::Document(doc))) => Ok(doc),
        Ok(None) => Err(Error::protocol("command reply", ProtocolErrorKind::MissingField(key))),
        Ok(Some(other)) => Err(Error::protocol(
            "command reply",
            ProtocolErrorKind::InvalidField {
                field: key,
                problem: format!("expected a document, got {:?}", other.element_type()),
            },
        )),
        Err(error) => Err(Error::protocol(
            "command reply",
            ProtocolErrorKind::InvalidBson(error.to_string()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use super::*;

    #[test]
    fn ok_in_every_numeric_form() {
        for doc in [
            rawdoc! { "ok": 1.0 },
            rawdoc! { "ok": 1 },
            rawdoc! { "ok": 1_i64 },
            rawdoc! { "ok": true },
        ] {
            assert!(is_ok(&doc), "{doc:?}");
            assert!(check(&doc, None).is_ok());
        }
        for doc in [rawdoc! { "ok": 0.0 }, rawdoc! {}, rawdoc! { "ok": "1" }] {
            assert!(!is_ok(&doc), "{doc:?}");
        }
    }

    #[test]
    fn command_error_has_code_name_message_labels_and_reply() {
        let reply = rawdoc! {
            "ok": 0.0, "errmsg": "cursor id 42 not found", "code": 43, "codeName": "CursorNotFound",
            "errorLabels": ["ResumableChangeStreamError"],
        };
        let address = ServerAddress::new("127.0.0.1", 27100);
        let error = server_error(&reply, Some(&address)).unwrap();
        assert_eq!((error.code, error.code_name.as_str()), (43, "CursorNotFound"));
        assert_eq!(error.message, "cursor id 42 not found");
        assert!(error.has_label("ResumableChangeStreamError"));
        assert_eq!(error.address, Some(address));
        assert_eq!(error.reply, reply);
    }

    #[test]
    fn code_as_double_and_missing_fields_do_not_fail() {
        let error = server_error(&rawdoc! { "ok": 0, "code": 11600.0 }, None).unwrap();
        assert_eq!(error.code, 11600);
        assert!(error.code_name.is_empty() && error.message.is_empty() && error.labels.is_empty());
    }

    #[test]
    fn write_errors_and_write_concern_errors_are_errors_despite_ok_1() {
        let dup = rawdoc! { "ok": 1.0, "n": 0, "writeErrors": [{ "index": 0, "code": 11000, "errmsg": "E11000 duplicate key" }] };
        let error = server_error(&dup, None).unwrap();
        assert_eq!((error.code, error.message.as_str()), (11000, "E11000 duplicate key"));

        let wce = rawdoc! {
            "ok": 1.0, "n": 1, "errorLabels": ["RetryableWriteError"],
            "writeConcernError": { "code": 91, "codeName": "ShutdownInProgress", "errmsg": "shutting down" },
        };
        let error = server_error(&wce, None).unwrap();
        assert_eq!(error.code, 91);
        assert!(error.has_label("RetryableWriteError"));
    }

    #[test]
    fn cluster_and_operation_time() {
        let ts = bson::Timestamp { time: 10, increment: 2 };
        let reply = rawdoc! { "ok": 1, "$clusterTime": { "clusterTime": ts, "signature": { "keyId": 0_i64 } }, "operationTime": ts };
        assert_eq!(operation_time(&reply), Some(ts));
        assert_eq!(cluster_time(&reply).unwrap().get_timestamp("clusterTime").unwrap(), ts);
        assert_eq!(cluster_time(&rawdoc! { "ok": 1 }), None);
    }

    #[test]
    fn required_document_errors_name_the_field() {
        let reply = rawdoc! { "cursor": 5 };
        let error = required_document(&reply, "cursor").unwrap_err();
        assert!(
            error.to_string().contains("field cursor: expected a document"),
            "{error}"
        );
        let missing = required_document(&reply, "other").unwrap_err();
        assert!(missing.to_string().contains("missing field other"), "{missing}");
    }
}
