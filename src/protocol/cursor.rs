//! Cursors: the `cursor` sub-document of find and aggregate replies, and the getMore and
//! killCursors commands that continue and close them (Find, getMore and killCursors commands
//! specification).

use std::fmt;
use std::time::Duration;

use bson::{RawBson, RawBsonRef, RawDocument, raw::cstr, rawdoc};

use crate::error::{Error, ProtocolErrorKind};
use crate::protocol::crud::Command;
use crate::protocol::reply;
use crate::wire::SharedDocument;

/// A `db.collection` namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace {
    /// The database.
    pub db: String,
    /// The collection (may contain dots; `$cmd.aggregate` for database-level aggregates).
    pub coll: String,
}

impl Namespace {
    /// A namespace from its parts.
    pub fn new(db: impl Into<String>, coll: impl Into<String>) -> Namespace {
        Namespace {
            db: db.into(),
            coll: coll.into(),
        }
    }

    /// Splits `db.coll` at the first dot; `None` without one.
    pub fn parse(ns: &str) -> Option<Namespace> {
        let (db, coll) = ns.split_once('.')?;
        (!db.is_empty() && !coll.is_empty()).then(|| Namespace::new(db, coll))
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.db, self.coll)
    }
}

/// One batch of a cursor: its documents share the reply's buffer.
#[derive(Debug, Clone)]
pub struct Batch {
    documents: std::vec::IntoIter<SharedDocument>,
}

impl Batch {
    /// An empty batch.
    pub fn empty() -> Batch {
        Batch {
            documents: Vec::new().into_iter(),
        }
    }

    /// Documents not yet taken.
    pub fn len(&self) -> usize {
        self.documents.len()
    }

    /// Whether every document has been taken.
    pub fn is_empty(&self) -> bool {
        self.documents.len() == 0
    }
}

impl Iterator for Batch {
    type Item = SharedDocument;

    fn next(&mut self) -> Option<SharedDocument> {
        self.documents.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.documents.size_hint()
    }
}

impl ExactSizeIterator for Batch {}

/// What a cursor reply says.
#[derive(Debug, Clone)]
pub struct CursorReply {
    /// The cursor id; 0 when the server closed the cursor.
    pub id: i64,
    /// The namespace to send getMore to (for aggregates on a database, the server's choice).
    pub ns: Namespace,
    /// The documents of this batch.
    pub batch: Batch,
    /// `postBatchResumeToken`, on change-stream batches.
    pub post_batch_resume_token: Option<SharedDocument>,
}

fn invalid(field: &'static str, problem: impl Into<String>) -> Error {
    Error::protocol(
        "cursor reply",
        ProtocolErrorKind::InvalidField {
            field,
            problem: problem.into(),
        },
    )
}

/// A cursor reply's fields, checked for type but with the batch's elements not yet read.
struct CursorFields<'a> {
    id: i64,
    ns: Namespace,
    batch: &'a bson::RawArray,
    post_batch_resume_token: Option<&'a RawDocument>,
}

fn cursor_fields(body: &RawDocument) -> Result<CursorFields<'_>, Error> {
    let cursor = reply::required_document(body, "cursor")?;
    let id = match cursor.get("id") {
        Ok(Some(RawBsonRef::Int64(id))) => id,
        Ok(Some(RawBsonRef::Int32(id))) => i64::from(id),
        Ok(None) => {
            return Err(Error::protocol(
                "cursor reply",
                ProtocolErrorKind::MissingField("cursor.id"),
            ));
        }
        _ => return Err(invalid("cursor.id", "not an integer")),
    };
    let ns = match cursor.get("ns") {
        Ok(Some(RawBsonRef::String(ns))) => {
            Namespace::parse(ns).ok_or_else(|| invalid("cursor.ns", format!("{ns:?} is not db.collection")))?
        }
        _ => {
            return Err(Error::protocol(
                "cursor reply",
                ProtocolErrorKind::MissingField("cursor.ns"),
            ));
        }
    };
    let batch = match (cursor.get("firstBatch"), cursor.get("nextBatch")) {
        (Ok(Some(RawBsonRef::Array(array))), _) | (_, Ok(Some(RawBsonRef::Array(array)))) => array,
        (Ok(Some(_)), _) | (_, Ok(Some(_))) => {
            return Err(invalid("cursor.nextBatch", "not an array"));
        }
        _ => {
            return Err(Error::protocol(
                "cursor reply",
                ProtocolErrorKind::MissingField("cursor.nextBatch"),
            ));
        }
    };
    let post_batch_resume_token = match cursor.get("postBatchResumeToken") {
        Ok(Some(RawBsonRef::Document(token))) => Some(token),
        Ok(None) => None,
        _ => return Err(invalid("cursor.postBatchResumeToken", "not a document")),
    };
    Ok(CursorFields {
        id,
        ns,
        batch,
        post_batch_resume_token,
    })
}

/// Checks that a reply carrying `cursor` has a cursor's shape (id, ns, a batch that is an array,
/// a postBatchResumeToken that is a document), without reading the batch. The driver runs this
/// while it still holds the connection, so a server that sends a malformed cursor loses the
/// connection as well as the command.
pub fn check_cursor_shape(body: &RawDocument) -> Result<(), Error> {
    cursor_fields(body).map(|_| ())
}

/// Reads `cursor.{id, ns, firstBatch | nextBatch, postBatchResumeToken}` from a reply body,
/// sharing `body`'s buffer for every document. Each batch element must be a document.
pub fn parse_cursor_reply(body: &SharedDocument) -> Result<CursorReply, Error> {
    let CursorFields {
        id,
        ns,
        batch: array,
        post_batch_resume_token,
    } = cursor_fields(body)?;
    let mut documents = Vec::new();
    for element in array {
        match element {
            Ok(RawBsonRef::Document(doc)) => documents.push(SharedDocument::within(body.bytes(), doc)),
            Ok(other) => {
                return Err(invalid(
                    "cursor.nextBatch",
                    format!("element of type {:?}", other.element_type()),
                ));
            }
            Err(e) => {
                return Err(Error::protocol(
                    "cursor reply",
                    ProtocolErrorKind::InvalidBson(e.to_string()),
                ));
            }
        }
    }
    // Copied, unlike the batch: the token outlives the batch (it is where a resumed stream
    // starts), and a slice would keep the whole reply buffer alive, so the connection could not
    // reuse it for the next reply.
    let post_batch_resume_token = post_batch_resume_token.map(SharedDocument::copy_of);
    Ok(CursorReply {
        id,
        ns,
        batch: Batch {
            documents: documents.into_iter(),
        },
        post_batch_resume_token,
    })
}

/// How to continue a cursor.
#[derive(Debug, Clone, Default)]
pub struct GetMoreOptions {
    /// `batchSize`, sent only when set.
    pub batch_size: Option<u32>,
    /// `maxTimeMS` on getMore: how long a tailable await cursor waits for new data.
    pub max_await_time: Option<Duration>,
    /// `comment`, sent on getMore too (servers 4.4+).
    pub comment: Option<RawBson>,
}

/// The getMore command for cursor `id` on `ns`.
pub fn get_more_command(id: i64, ns: &Namespace, options: &GetMoreOptions) -> Command {
    let mut command = rawdoc! { "getMore": id, "collection": ns.coll.as_str() };
    if let Some(size) = options.batch_size {
        command.append(cstr!("batchSize"), i64::from(size));
    }
    if let Some(wait) = options.max_await_time {
        command.append(cstr!("maxTimeMS"), i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
    }
    if let Some(comment) = &options.comment {
        command.append(cstr!("comment"), comment.clone());
    }
    Command::new(ns.db.clone(), command)
}

/// The killCursors command for cursor `id` on `ns`.
pub fn kill_cursors_command(id: i64, ns: &Namespace) -> Command {
    Command::new(
        ns.db.clone(),
        rawdoc! { "killCursors": ns.coll.as_str(), "cursors": [id] },
    )
}

/// Whether a killCursors reply confirms the cursor was killed (or was already gone).
pub fn kill_confirmed(body: &RawDocument, id: i64) -> bool {
    ["cursorsKilled", "cursorsNotFound"].into_iter().any(|key| {
        body.get_array(key)
            .map(|ids| {
                ids.into_iter()
                    .any(|v| matches!(v, Ok(RawBsonRef::Int64(k)) if k == id))
            })
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use bson::{RawArrayBuf, RawDocumentBuf};
    use bytes::Bytes;

    use super::*;

    fn shared(doc: RawDocumentBuf) -> SharedDocument {
        SharedDocument::from_bytes(Bytes::from(doc.into_bytes())).unwrap()
    }

    #[test]
    fn namespaces_split_at_the_first_dot() {
        assert_eq!(Namespace::parse("db.a.b"), Some(Namespace::new("db", "a.b")));
        assert_eq!(Namespace::parse("admin.$cmd.aggregate").unwrap().coll, "$cmd.aggregate");
        for bad in ["nodot", ".c", "db."] {
            assert_eq!(Namespace::parse(bad), None, "{bad}");
        }
        assert_eq!(Namespace::new("d", "c").to_string(), "d.c");
    }

    #[test]
    fn first_batch_documents_share_the_reply_buffer() {
        let batch: RawArrayBuf = (0..3).map(|i| rawdoc! { "_id": i }).collect();
        let body = shared(rawdoc! { "cursor": { "firstBatch": batch, "id": 42_i64, "ns": "db.c" }, "ok": 1.0 });
        let reply = parse_cursor_reply(&body).unwrap();
        assert_eq!((reply.id, reply.ns.to_string()), (42, "db.c".to_owned()));
        assert_eq!(reply.batch.len(), 3);
        let range = body.bytes().as_ptr_range();
        for (i, doc) in reply.batch.enumerate() {
            assert_eq!(doc.get_i32("_id").unwrap(), i as i32);
            assert!(range.contains(&doc.bytes().as_ptr()));
        }
        assert!(reply.post_batch_resume_token.is_none());
    }

    #[test]
    fn next_batch_with_post_batch_resume_token() {
        let body = shared(rawdoc! {
            "cursor": { "nextBatch": [], "postBatchResumeToken": { "_data": "82" }, "id": 7_i64, "ns": "db.c" },
            "ok": 1.0,
        });
        let reply = parse_cursor_reply(&body).unwrap();
        assert!(reply.batch.is_empty());
        assert_eq!(reply.post_batch_resume_token.unwrap().get_str("_data").unwrap(), "82");
    }

    #[test]
    fn malformed_cursor_replies_are_protocol_errors() {
        let cases = [
            (rawdoc! { "ok": 1.0 }, "missing field cursor"),
            (
                rawdoc! { "cursor": { "ns": "db.c", "firstBatch": [] } },
                "missing field cursor.id",
            ),
            (
                rawdoc! { "cursor": { "id": "x", "ns": "db.c", "firstBatch": [] } },
                "cursor.id: not an integer",
            ),
            (
                rawdoc! { "cursor": { "id": 0_i64, "firstBatch": [] } },
                "missing field cursor.ns",
            ),
            (
                rawdoc! { "cursor": { "id": 0_i64, "ns": "nodot", "firstBatch": [] } },
                "is not db.collection",
            ),
            (
                rawdoc! { "cursor": { "id": 0_i64, "ns": "d.c", "nextBatch": 5 } },
                "cursor.nextBatch: not an array",
            ),
            (
                rawdoc! { "cursor": { "id": 0_i64, "ns": "d.c" } },
                "missing field cursor.nextBatch",
            ),
            (
                rawdoc! { "cursor": { "id": 0_i64, "ns": "d.c", "nextBatch": [1] } },
                "element of type Int32",
            ),
            (
                rawdoc! { "cursor": { "id": 0_i64, "ns": "d.c", "nextBatch": [], "postBatchResumeToken": 1 } },
                "postBatchResumeToken: not a document",
            ),
        ];
        for (body, expected) in cases {
            let error = parse_cursor_reply(&shared(body)).unwrap_err();
            assert!(matches!(error, Error::Protocol(_)), "{error}");
            assert!(
                error.to_string().contains(expected),
                "{error} should contain {expected}"
            );
        }
    }

    #[test]
    fn get_more_sends_optional_fields_only_when_set() {
        let ns = Namespace::new("db", "c");
        let plain = get_more_command(5, &ns, &GetMoreOptions::default());
        assert_eq!(
            (plain.db.as_str(), plain.body),
            ("db", rawdoc! { "getMore": 5_i64, "collection": "c" })
        );
        let options = GetMoreOptions {
            batch_size: Some(10),
            max_await_time: Some(Duration::from_millis(250)),
            comment: Some(RawBson::String("tail".into())),
        };
        assert_eq!(
            get_more_command(5, &ns, &options).body,
            rawdoc! { "getMore": 5_i64, "collection": "c", "batchSize": 10_i64, "maxTimeMS": 250_i64, "comment": "tail" }
        );
    }

    #[test]
    fn kill_cursors_and_its_confirmation() {
        let ns = Namespace::new("db", "c");
        let kill = kill_cursors_command(9, &ns);
        assert_eq!(
            (kill.db.as_str(), kill.body),
            ("db", rawdoc! { "killCursors": "c", "cursors": [9_i64] })
        );
        assert!(kill_confirmed(
            &rawdoc! { "cursorsKilled": [9_i64], "cursorsNotFound": [] },
            9
        ));
        assert!(kill_confirmed(
            &rawdoc! { "cursorsKilled": [], "cursorsNotFound": [9_i64] },
            9
        ));
        assert!(!kill_confirmed(&rawdoc! { "cursorsKilled": [8_i64] }, 9));
    }
}
