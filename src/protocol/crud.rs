//! The minimal CRUD an embedded driver needs: command builders and result parsing for insert,
//! find, update, replace, delete, drop and create.
//!
//! Builders return a [`Command`]: the body plus kind-1 document sequences, so the documents of
//! an insert travel as they are and are never copied into an array. The driver appends session
//! and cluster-time fields to the body before sending.

use bson::oid::ObjectId;
use bson::{RawArrayBuf, RawBson, RawBsonRef, RawDocument, RawDocumentBuf, raw::cstr, rawdoc};

use crate::error::{Error, ProtocolErrorKind};
use crate::protocol::cursor::Namespace;
use crate::protocol::{ReadConcern, WriteConcern, reply};
use crate::wire::{DocumentSequence, HEADER_LEN, OpMsg};

/// A command to send: the body (without `$db` and session fields yet) and document sequences.
#[derive(Debug, Clone)]
pub struct Command {
    /// The database the command runs on.
    pub db: String,
    /// The command document.
    pub body: RawDocumentBuf,
    /// Kind-1 sequences (`documents`, `updates`, `deletes`).
    pub sequences: Vec<DocumentSequence>,
}

impl Command {
    /// A command on `db` with no sequences.
    pub fn new(db: impl Into<String>, body: RawDocumentBuf) -> Command {
        Command {
            db: db.into(),
            body,
            sequences: Vec::new(),
        }
    }

    /// The OP_MSG to send, with `$db` appended.
    pub fn into_op_msg(mut self) -> OpMsg {
        self.body.append(cstr!("$db"), self.db.as_str());
        self.sequences
            .into_iter()
            .fold(OpMsg::new(self.body), OpMsg::with_sequence)
    }

    /// The command as command monitoring shows it: the body with `$db`, and each document
    /// sequence folded back in as an array under its identifier.
    pub fn monitored_document(&self) -> RawDocumentBuf {
        let mut document = self.body.clone();
        for sequence in &self.sequences {
            let array: RawArrayBuf = sequence.documents().map(ToOwned::to_owned).collect();
            if let Ok(key) = bson::raw::CString::try_from(sequence.identifier()) {
                document.append(key, array);
            }
        }
        document.append(cstr!("$db"), self.db.as_str());
        document
    }

    /// The command name: the body's first key.
    pub fn name(&self) -> &str {
        self.body
            .iter()
            .next()
            .and_then(|e| e.ok())
            .map_or("", |(key, _)| key.as_str())
    }
}

/// The server's size limits for writes, from the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteLimits {
    /// `maxWriteBatchSize`: documents per command.
    pub max_batch_count: usize,
    /// `maxMessageSizeBytes`.
    pub max_message_size: usize,
    /// `maxBsonObjectSize`: the largest single document.
    pub max_document_size: usize,
}

impl Default for WriteLimits {
    fn default() -> WriteLimits {
        WriteLimits {
            max_batch_count: 100_000,
            max_message_size: 48_000_000,
            max_document_size: 16 * 1024 * 1024,
        }
    }
}

/// Room left in a message for the command body and framing besides the documents.
const COMMAND_OVERHEAD: usize = 16 * 1024;

/// The document with an `_id` (a new ObjectId first, if it had none) and that `_id`.
pub fn with_id(document: &RawDocument) -> Result<(RawDocumentBuf, RawBson), Error> {
    match document.get("_id") {
        Ok(Some(id)) => Ok((document.to_owned(), RawBson::from(id))),
        Ok(None) => {
            let id = ObjectId::new();
            let mut out = rawdoc! { "_id": id };
            for element in document {
                let (key, value) = element.map_err(|e| Error::usage(format!("invalid document: {e}")))?;
                out.append(key, value);
            }
            Ok((out, RawBson::ObjectId(id)))
        }
        Err(e) => Err(Error::usage(format!("invalid document: {e}"))),
    }
}

/// An insert command and the ids of the documents it carries, by their index in the call.
#[derive(Debug, Clone)]
pub struct InsertBatch {
    /// The command.
    pub command: Command,
    /// `(index, _id)` of each document in this batch.
    pub ids: Vec<(usize, RawBson)>,
}

/// Splits an insert into commands that respect the server's limits; documents get `_id`s.
pub fn insert_batches(
    ns: &Namespace,
    documents: impl IntoIterator<Item = impl AsRef<RawDocument>>,
    ordered: bool,
    write_concern: Option<&WriteConcern>,
    limits: WriteLimits,
) -> Result<Vec<InsertBatch>, Error> {
    let mut batches = Vec::new();
    let mut current: Vec<RawDocumentBuf> = Vec::new();
    let mut ids = Vec::new();
    let mut size = 0;
    let budget = limits.max_message_size.saturating_sub(HEADER_LEN + COMMAND_OVERHEAD);
    let finish = |docs: &mut Vec<RawDocumentBuf>, ids: &mut Vec<(usize, RawBson)>| -> Result<InsertBatch, Error> {
        let mut body = rawdoc! { "insert": ns.coll.as_str(), "ordered": ordered };
        append_write_concern(&mut body, write_concern);
        let sequence = DocumentSequence::new("documents", docs.drain(..))
            .map_err(|e| Error::usage(format!("cannot encode insert: {e}")))?;
        Ok(InsertBatch {
            command: Command {
                db: ns.db.clone(),
                body,
                sequences: vec![sequence],
            },
            ids: std::mem::take(ids),
        })
    };
    for (index, document) in documents.into_iter().enumerate() {
        let (document, id) = with_id(document.as_ref())?;
        let len = document.as_bytes().len();
        if len > limits.max_document_size {
            return Err(Error::usage(format!(
                "document {index} is {len} bytes, over the server's {}-byte limit",
                limits.max_document_size
            )));
        }
        if !current.is_empty() && (current.len() >= limits.max_batch_count || size + len > budget) {
            batches.push(finish(&mut current, &mut ids)?);
            size = 0;
        }
        size += len;
        current.push(document);
        ids.push((index, id));
    }
    if current.is_empty() && batches.is_empty() {
        return Err(Error::usage("insert needs at least one document"));
    }
    if !current.is_empty() {
        batches.push(finish(&mut current, &mut ids)?);
    }
    Ok(batches)
}

fn append_write_concern(body: &mut RawDocumentBuf, write_concern: Option<&WriteConcern>) {
    if let Some(concern) = write_concern {
        let doc = concern.to_document();
        if !doc.is_empty() {
            body.append(cstr!("writeConcern"), doc);
        }
    }
}

fn first_key(document: &RawDocument) -> Option<&str> {
    document.iter().next().and_then(|e| e.ok()).map(|(key, _)| key.as_str())
}

/// What an update applies.
#[derive(Debug, Clone)]
pub enum UpdateModifications {
    /// An update document of `$` operators (`{$set: {...}}`).
    Document(RawDocumentBuf),
    /// An aggregation pipeline (`[{$set: ...}, ...]`).
    Pipeline(RawArrayBuf),
}

/// The update command for one statement. `multi` updates every match; `replacement` documents
/// must not contain operators, update documents must contain only operators.
pub fn update_command(
    ns: &Namespace,
    filter: RawDocumentBuf,
    modifications: UpdateModifications,
    multi: bool,
    upsert: bool,
    write_concern: Option<&WriteConcern>,
) -> Result<Command, Error> {
    let u = match modifications {
        UpdateModifications::Document(update) => {
            if !first_key(&update).is_some_and(|k| k.starts_with('$')) {
                return Err(Error::usage(
                    "an update document must contain only $-operators (use replace_one to replace)",
                ));
            }
            RawBson::Document(update)
        }
        UpdateModifications::Pipeline(pipeline) => RawBson::Array(pipeline),
    };
    statement_command(
        ns,
        "update",
        "updates",
        rawdoc! { "q": filter, "u": u, "multi": multi, "upsert": upsert },
        write_concern,
    )
}

/// The update command that replaces the first match with `replacement`.
pub fn replace_command(
    ns: &Namespace,
    filter: RawDocumentBuf,
    replacement: RawDocumentBuf,
    upsert: bool,
    write_concern: Option<&WriteConcern>,
) -> Result<Command, Error> {
    if first_key(&replacement).is_some_and(|k| k.starts_with('$')) {
        return Err(Error::usage(
            "a replacement document must not contain $-operators (use update_one)",
        ));
    }
    let statement = rawdoc! { "q": filter, "u": replacement, "multi": false, "upsert": upsert };
    statement_command(ns, "update", "updates", statement, write_concern)
}

/// The delete command: the first match (`many == false`) or every match.
pub fn delete_command(
    ns: &Namespace,
    filter: RawDocumentBuf,
    many: bool,
    write_concern: Option<&WriteConcern>,
) -> Result<Command, Error> {
    let statement = rawdoc! { "q": filter, "limit": if many { 0 } else { 1 } };
    statement_command(ns, "delete", "deletes", statement, write_concern)
}

fn statement_command(
    ns: &Namespace,
    name: &str,
    identifier: &str,
    statement: RawDocumentBuf,
    write_concern: Option<&WriteConcern>,
) -> Result<Command, Error> {
    let mut body = RawDocumentBuf::new();
    body.append(
        bson::raw::CString::try_from(name).map_err(|e| Error::usage(e.to_string()))?,
        ns.coll.as_str(),
    );
    body.append(cstr!("ordered"), true);
    append_write_concern(&mut body, write_concern);
    let sequence = DocumentSequence::new(identifier, [statement])
        .map_err(|e| Error::usage(format!("cannot encode {name}: {e}")))?;
    Ok(Command {
        db: ns.db.clone(),
        body,
        sequences: vec![sequence],
    })
}

/// Options of a find.
#[derive(Debug, Clone, Default)]
pub struct FindOptions {
    /// `sort`.
    pub sort: Option<RawDocumentBuf>,
    /// `projection`.
    pub projection: Option<RawDocumentBuf>,
    /// `skip`.
    pub skip: Option<u64>,
    /// `limit`; negative values are not accepted (use `single_batch`).
    pub limit: Option<u64>,
    /// `batchSize` for the first batch and every getMore.
    pub batch_size: Option<u32>,
    /// `singleBatch`: return one batch and close the cursor.
    pub single_batch: bool,
    /// `readConcern`.
    pub read_concern: Option<ReadConcern>,
    /// `comment`.
    pub comment: Option<RawBson>,
}

/// The find command.
pub fn find_command(ns: &Namespace, filter: RawDocumentBuf, options: &FindOptions) -> Command {
    let mut body = rawdoc! { "find": ns.coll.as_str(), "filter": filter };
    let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    if let Some(sort) = &options.sort {
        body.append(cstr!("sort"), sort.clone());
    }
    if let Some(projection) = &options.projection {
        body.append(cstr!("projection"), projection.clone());
    }
    if let Some(skip) = options.skip {
        body.append(cstr!("skip"), to_i64(skip));
    }
    if let Some(limit) = options.limit {
        body.append(cstr!("limit"), to_i64(limit));
    }
    if let Some(size) = options.batch_size {
        body.append(cstr!("batchSize"), i64::from(size));
    }
    if options.single_batch {
        body.append(cstr!("singleBatch"), true);
    }
    if let Some(concern) = &options.read_concern {
        body.append(cstr!("readConcern"), concern.to_document());
    }
    if let Some(comment) = &options.comment {
        body.append(cstr!("comment"), comment.clone());
    }
    Command::new(ns.db.clone(), body)
}

/// The drop command.
pub fn drop_command(ns: &Namespace, write_concern: Option<&WriteConcern>) -> Command {
    let mut body = rawdoc! { "drop": ns.coll.as_str() };
    append_write_concern(&mut body, write_concern);
    Command::new(ns.db.clone(), body)
}

/// The create command; `options` are appended as given (`capped`, `size`,
/// `changeStreamPreAndPostImages`, `validator`, ...).
pub fn create_command(ns: &Namespace, options: Option<&RawDocument>, write_concern: Option<&WriteConcern>) -> Command {
    let mut body = rawdoc! { "create": ns.coll.as_str() };
    if let Some(options) = options {
        for (key, value) in options.iter().flatten() {
            body.append(key, value);
        }
    }
    append_write_concern(&mut body, write_concern);
    Command::new(ns.db.clone(), body)
}

/// What an update or replace did.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateResult {
    /// Documents that matched the filter.
    pub matched_count: u64,
    /// Documents actually changed.
    pub modified_count: u64,
    /// The `_id` of the document an upsert inserted.
    pub upserted_id: Option<RawBson>,
}

/// What a delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeleteResult {
    /// Documents deleted.
    pub deleted_count: u64,
}

fn count(body: &RawDocument, key: &'static str) -> Result<u64, Error> {
    reply::get_number(body, key)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| {
            Error::protocol(
                "write reply",
                ProtocolErrorKind::InvalidField {
                    field: key,
                    problem: "missing or negative".into(),
                },
            )
        })
}

/// Reads an update reply (`n`, `nModified`, `upserted`).
pub fn parse_update_reply(body: &RawDocument) -> Result<UpdateResult, Error> {
    let upserted_id = match body.get("upserted") {
        Ok(Some(RawBsonRef::Array(upserted))) => upserted
            .into_iter()
            .next()
            .and_then(|entry| entry.ok()?.as_document()?.get("_id").ok()?.map(RawBson::from)),
        _ => None,
    };
    let n = count(body, "n")?;
    let matched_count = if upserted_id.is_some() { n.saturating_sub(1) } else { n };
    Ok(UpdateResult {
        matched_count,
        modified_count: count(body, "nModified")?,
        upserted_id,
    })
}

/// Reads a delete reply (`n`).
pub fn parse_delete_reply(body: &RawDocument) -> Result<DeleteResult, Error> {
    Ok(DeleteResult {
        deleted_count: count(body, "n")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns() -> Namespace {
        Namespace::new("db", "c")
    }

    #[test]
    fn missing_ids_are_generated_first_and_existing_ones_kept() {
        let (doc, id) = with_id(&rawdoc! { "a": 1 }).unwrap();
        assert_eq!(doc.iter().next().unwrap().unwrap().0.as_str(), "_id");
        assert!(matches!(id, RawBson::ObjectId(_)));
        assert_eq!(doc.get_i32("a").unwrap(), 1);
        let (doc, id) = with_id(&rawdoc! { "a": 1, "_id": 5 }).unwrap();
        assert_eq!(id, RawBson::Int32(5));
        assert_eq!(doc, rawdoc! { "a": 1, "_id": 5 });
    }

    #[test]
    fn inserts_split_by_count_and_by_size() {
        let docs: Vec<_> = (0..10).map(|i| rawdoc! { "_id": i, "pad": "x".repeat(100) }).collect();
        let by_count = WriteLimits {
            max_batch_count: 4,
            ..WriteLimits::default()
        };
        let batches = insert_batches(&ns(), &docs, true, None, by_count).unwrap();
        let sizes: Vec<usize> = batches.iter().map(|b| b.ids.len()).collect();
        assert_eq!(sizes, [4, 4, 2]);
        assert_eq!(batches[1].ids[0].0, 4, "indexes continue across batches");
        let sequence = &batches[0].command.sequences[0];
        assert_eq!((sequence.identifier(), sequence.len()), ("documents", 4));
        assert_eq!(batches[0].command.body, rawdoc! { "insert": "c", "ordered": true });

        let doc_len = docs[0].as_bytes().len();
        let by_size = WriteLimits {
            max_message_size: HEADER_LEN + COMMAND_OVERHEAD + 3 * doc_len,
            ..WriteLimits::default()
        };
        let sizes: Vec<usize> = insert_batches(&ns(), &docs, false, None, by_size)
            .unwrap()
            .iter()
            .map(|b| b.ids.len())
            .collect();
        assert_eq!(sizes, [3, 3, 3, 1]);
    }

    #[test]
    fn oversized_documents_and_empty_inserts_are_usage_errors() {
        let limits = WriteLimits {
            max_document_size: 50,
            ..WriteLimits::default()
        };
        let big = [rawdoc! { "pad": "x".repeat(100) }];
        let error = insert_batches(&ns(), &big, true, None, limits).unwrap_err();
        assert!(error.to_string().contains("over the server's 50-byte limit"), "{error}");
        let none: [RawDocumentBuf; 0] = [];
        assert!(insert_batches(&ns(), &none, true, None, WriteLimits::default()).is_err());
    }

    #[test]
    fn write_concern_goes_in_the_body() {
        let batches = insert_batches(
            &ns(),
            [rawdoc! { "_id": 1 }],
            true,
            Some(&WriteConcern::majority()),
            WriteLimits::default(),
        )
        .unwrap();
        assert_eq!(
            batches[0].command.body.get_document("writeConcern").unwrap(),
            rawdoc! { "w": "majority" }.as_ref()
        );
    }

    #[test]
    fn update_and_replace_documents_are_validated() {
        let update = update_command(
            &ns(),
            rawdoc! { "a": 1 },
            UpdateModifications::Document(rawdoc! { "$set": { "b": 2 } }),
            true,
            false,
            None,
        )
        .unwrap();
        let statement = update.sequences[0].documents().next().unwrap().to_owned();
        assert_eq!(
            statement,
            rawdoc! { "q": { "a": 1 }, "u": { "$set": { "b": 2 } }, "multi": true, "upsert": false }
        );
        assert!(
            update_command(
                &ns(),
                rawdoc! {},
                UpdateModifications::Document(rawdoc! { "b": 2 }),
                false,
                false,
                None
            )
            .is_err()
        );
        assert!(replace_command(&ns(), rawdoc! {}, rawdoc! { "$set": { "b": 2 } }, false, None).is_err());
        let pipeline: RawArrayBuf = [rawdoc! { "$set": { "b": 1 } }].into_iter().collect();
        assert!(
            update_command(
                &ns(),
                rawdoc! {},
                UpdateModifications::Pipeline(pipeline),
                false,
                false,
                None
            )
            .is_ok()
        );
        let delete = delete_command(&ns(), rawdoc! { "a": 1 }, false, None).unwrap();
        assert_eq!(delete.name(), "delete");
        assert_eq!(
            delete.sequences[0]
                .documents()
                .next()
                .unwrap()
                .get_i32("limit")
                .unwrap(),
            1
        );
    }

    #[test]
    fn find_sends_only_what_is_set() {
        assert_eq!(
            find_command(&ns(), rawdoc! {}, &FindOptions::default()).body,
            rawdoc! { "find": "c", "filter": {} }
        );
        let options = FindOptions {
            sort: Some(rawdoc! { "_id": 1 }),
            limit: Some(5),
            batch_size: Some(2),
            ..FindOptions::default()
        };
        let command = find_command(&ns(), rawdoc! { "x": 1 }, &options);
        assert_eq!(
            command.body,
            rawdoc! { "find": "c", "filter": { "x": 1 }, "sort": { "_id": 1 }, "limit": 5_i64, "batchSize": 2_i64 }
        );
        let msg = command.into_op_msg();
        assert_eq!(msg.body().get_str("$db").unwrap(), "db");
    }

    #[test]
    fn create_appends_options() {
        let options = rawdoc! { "changeStreamPreAndPostImages": { "enabled": true } };
        let command = create_command(&ns(), Some(&options), None);
        assert_eq!(
            command.body,
            rawdoc! { "create": "c", "changeStreamPreAndPostImages": { "enabled": true } }
        );
    }

    #[test]
    fn write_results() {
        let upsert = rawdoc! { "n": 1, "nModified": 0, "upserted": [{ "index": 0, "_id": 7 }], "ok": 1.0 };
        assert_eq!(
            parse_update_reply(&upsert).unwrap(),
            UpdateResult {
                matched_count: 0,
                modified_count: 0,
                upserted_id: Some(RawBson::Int32(7))
            }
        );
        let update = rawdoc! { "n": 3, "nModified": 2, "ok": 1.0 };
        assert_eq!(parse_update_reply(&update).unwrap().matched_count, 3);
        assert_eq!(
            parse_delete_reply(&rawdoc! { "n": 4_i64, "ok": 1.0 })
                .unwrap()
                .deleted_count,
            4
        );
        assert!(parse_delete_reply(&rawdoc! { "ok": 1.0 }).is_err());
    }
}
