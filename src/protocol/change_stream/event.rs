//! Change events: the server's document as it came (no parsing until asked), with typed
//! accessors that read fields lazily, and full serde deserialization into any type.

use bson::{RawBsonRef, RawDocument, RawDocumentBuf, Timestamp};
use serde::Deserialize;

use crate::error::{Error, ProtocolErrorKind};
use crate::wire::{SharedDocument, for_each_owned};

/// The kind of a change event (`operationType`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(from = "String")]
pub enum OperationType {
    /// `insert`.
    Insert,
    /// `update`.
    Update,
    /// `replace`.
    Replace,
    /// `delete`.
    Delete,
    /// `drop`.
    Drop,
    /// `rename`.
    Rename,
    /// `dropDatabase`.
    DropDatabase,
    /// `invalidate`: the stream ends after this event.
    Invalidate,
    /// `create` (expanded events).
    Create,
    /// `createIndexes` (expanded events).
    CreateIndexes,
    /// `dropIndexes` (expanded events).
    DropIndexes,
    /// `modify` (expanded events).
    Modify,
    /// `shardCollection` (expanded events).
    ShardCollection,
    /// `reshardCollection` (expanded events).
    ReshardCollection,
    /// `refineCollectionShardKey` (expanded events).
    RefineCollectionShardKey,
    /// A type this version does not know.
    Other(String),
}

impl OperationType {
    /// The type for a server's `operationType` string.
    pub fn from_name(name: &str) -> OperationType {
        match name {
            "insert" => OperationType::Insert,
            "update" => OperationType::Update,
            "replace" => OperationType::Replace,
            "delete" => OperationType::Delete,
            "drop" => OperationType::Drop,
            "rename" => OperationType::Rename,
            "dropDatabase" => OperationType::DropDatabase,
            "invalidate" => OperationType::Invalidate,
            "create" => OperationType::Create,
            "createIndexes" => OperationType::CreateIndexes,
            "dropIndexes" => OperationType::DropIndexes,
            "modify" => OperationType::Modify,
            "shardCollection" => OperationType::ShardCollection,
            "reshardCollection" => OperationType::ReshardCollection,
            "refineCollectionShardKey" => OperationType::RefineCollectionShardKey,
            other => OperationType::Other(other.to_owned()),
        }
    }
}

impl From<String> for OperationType {
    fn from(name: String) -> OperationType {
        OperationType::from_name(&name)
    }
}

/// A namespace in an event (`ns`, `to`); `coll` is absent for database-level events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventNamespace<'a> {
    /// The database.
    pub db: &'a str,
    /// The collection.
    pub coll: Option<&'a str>,
}

/// An array an update shortened (`updateDescription.truncatedArrays`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TruncatedArray<'a> {
    /// The array's path.
    pub field: &'a str,
    /// Its new length.
    pub new_size: i64,
}

/// What an update changed.
#[derive(Debug, Clone, Copy)]
pub struct UpdateDescription<'a> {
    doc: &'a RawDocument,
}

impl<'a> UpdateDescription<'a> {
    /// `updatedFields`: the new values by dotted path.
    pub fn updated_fields(&self) -> Option<&'a RawDocument> {
        self.doc.get_document("updatedFields").ok()
    }

    /// `removedFields`: the paths removed.
    pub fn removed_fields(&self) -> Vec<&'a str> {
        let Ok(array) = self.doc.get_array("removedFields") else {
            return Vec::new();
        };
        array.into_iter().filter_map(|v| v.ok()?.as_str()).collect()
    }

    /// `truncatedArrays`.
    pub fn truncated_arrays(&self) -> Vec<TruncatedArray<'a>> {
        let Ok(array) = self.doc.get_array("truncatedArrays") else {
            return Vec::new();
        };
        array
            .into_iter()
            .filter_map(|v| {
                let entry = v.ok()?.as_document()?;
                let new_size = match entry.get("newSize").ok()?? {
                    RawBsonRef::Int32(n) => i64::from(n),
                    RawBsonRef::Int64(n) => n,
                    _ => return None,
                };
                Some(TruncatedArray {
                    field: entry.get_str("field").ok()?,
                    new_size,
                })
            })
            .collect()
    }

    /// `disambiguatedPaths` (servers 6.1+, with `showExpandedEvents`): for each ambiguous
    /// dotted path, its components.
    pub fn disambiguated_paths(&self) -> Option<&'a RawDocument> {
        self.doc.get_document("disambiguatedPaths").ok()
    }

    /// The whole `updateDescription` document.
    pub fn raw(&self) -> &'a RawDocument {
        self.doc
    }
}

/// Where a fragment of a split event stands (`splitEvent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct SplitEvent {
    /// This fragment's number, from 1.
    pub fragment: i32,
    /// How many fragments the event has.
    pub of: i32,
}

/// A change event exactly as the server sent it. Nothing is parsed until an accessor asks; the
/// document shares the buffer of the reply it came in. Its `_id` (the resume token) is always
/// present: the stream refuses events without one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    doc: SharedDocument,
}

fn event_error(problem: impl Into<String>) -> Error {
    Error::protocol(
        "change event",
        ProtocolErrorKind::InvalidField {
            field: "_id",
            problem: problem.into(),
        },
    )
}

impl ChangeEvent {
    /// An event from a document, which must have an `_id` document (the resume token). Streams
    /// make their events; this is for events from elsewhere, such as a recorded batch.
    pub fn new(doc: SharedDocument) -> Result<ChangeEvent, Error> {
        match doc.get("_id") {
            Ok(Some(RawBsonRef::Document(_))) => Ok(ChangeEvent { doc }),
            Ok(None) => Err(event_error(
                "Cannot provide resume functionality when the resume token is missing",
            )),
            Ok(Some(other)) => Err(event_error(format!(
                "the resume token is a {:?}, not a document",
                other.element_type()
            ))),
            Err(e) => Err(Error::protocol(
                "change event",
                ProtocolErrorKind::InvalidBson(e.to_string()),
            )),
        }
    }

    /// The event as the server sent it.
    pub fn raw(&self) -> &RawDocument {
        self.doc.as_document()
    }

    /// The event, sharing the reply's buffer.
    pub fn shared(&self) -> &SharedDocument {
        &self.doc
    }

    /// An owned copy of the event's bytes.
    pub fn to_raw_document_buf(&self) -> RawDocumentBuf {
        self.doc.to_raw_document_buf()
    }

    /// The resume token (`_id`).
    pub fn resume_token(&self) -> &RawDocument {
        match self.raw().get("_id") {
            Ok(Some(RawBsonRef::Document(token))) => token,
            // `new` refused events without an `_id` document.
            _ => self.raw(),
        }
    }

    /// `operationType`; `Other("")` if absent.
    pub fn operation_type(&self) -> OperationType {
        OperationType::from_name(self.raw().get_str("operationType").unwrap_or_default())
    }

    fn namespace_at(&self, key: &str) -> Option<EventNamespace<'_>> {
        let ns = self.raw().get_document(key).ok()?;
        Some(EventNamespace {
            db: ns.get_str("db").ok()?,
            coll: ns.get_str("coll").ok(),
        })
    }

    /// `ns`: where the change happened.
    pub fn ns(&self) -> Option<EventNamespace<'_>> {
        self.namespace_at("ns")
    }

    /// `to`: the new name, for rename events.
    pub fn to(&self) -> Option<EventNamespace<'_>> {
        self.namespace_at("to")
    }

    /// `documentKey`: `_id` (and the shard key, on sharded collections).
    pub fn document_key(&self) -> Option<&RawDocument> {
        self.raw().get_document("documentKey").ok()
    }

    /// `fullDocument`, when present and not null.
    pub fn full_document(&self) -> Option<&RawDocument> {
        self.raw().get_document("fullDocument").ok()
    }

    /// `fullDocumentBeforeChange` (the pre-image), when present and not null.
    pub fn full_document_before_change(&self) -> Option<&RawDocument> {
        self.raw().get_document("fullDocumentBeforeChange").ok()
    }

    /// `updateDescription`, on update events.
    pub fn update_description(&self) -> Option<UpdateDescription<'_>> {
        self.raw()
            .get_document("updateDescription")
            .ok()
            .map(|doc| UpdateDescription { doc })
    }

    /// `clusterTime`: when the change happened in the oplog.
    pub fn cluster_time(&self) -> Option<Timestamp> {
        self.raw().get_timestamp("clusterTime").ok()
    }

    /// `wallTime` (servers 6.0+): the server's clock when the change happened.
    pub fn wall_time(&self) -> Option<bson::DateTime> {
        self.raw().get_datetime("wallTime").ok()
    }

    /// `txnNumber`, for changes made in a transaction.
    pub fn txn_number(&self) -> Option<i64> {
        self.raw().get_i64("txnNumber").ok()
    }

    /// `lsid`, for changes made in a transaction.
    pub fn lsid(&self) -> Option<&RawDocument> {
        self.raw().get_document("lsid").ok()
    }

    /// `collectionUUID` (with `showExpandedEvents`).
    pub fn collection_uuid(&self) -> Option<&[u8]> {
        self.raw().get_binary("collectionUUID").ok().map(|b| b.bytes)
    }

    /// `splitEvent`: present on fragments of an event split by `$changeStreamSplitLargeEvent`
    /// (not on events the stream reassembled).
    pub fn split_event(&self) -> Option<SplitEvent> {
        let split = self.raw().get_document("splitEvent").ok()?;
        Some(SplitEvent {
            fragment: split.get_i32("fragment").ok()?,
            of: split.get_i32("of").ok()?,
        })
    }

    /// The whole event in owned, typed fields, documents as [`bson::Document`]: the same value as
    /// `deserialize::<ChangeStreamEvent<bson::Document>>()`, built directly from the bytes in
    /// one pass, at a fraction of serde's cost (see README, Performance).
    pub fn to_typed(&self) -> Result<ChangeStreamEvent<bson::Document>, Error> {
        use bson::Bson;
        let invalid = |field: &'static str, problem: String| {
            Error::protocol("change event", ProtocolErrorKind::InvalidField { field, problem })
        };
        let mut id = None;
        let mut operation_type = None;
        let mut problem = None;
        let mut event = ChangeStreamEvent {
            id: bson::Document::new(),
            operation_type: OperationType::Other(String::new()),
            ns: None,
            to: None,
            document_key: None,
            update_description: None,
            full_document: None,
            full_document_before_change: None,
            cluster_time: None,
            wall_time: None,
            txn_number: None,
            lsid: None,
            collection_uuid: None,
            split_event: None,
        };
        let mut document = |field: &'static str, value: Bson| match value {
            Bson::Document(d) => Some(d),
            Bson::Null => None,
            other => {
                problem = Some(invalid(field, format!("a {:?}, not a document", other.element_type())));
                None
            }
        };
        for_each_owned(self.raw(), |key, value| match key {
            "_id" => id = document("_id", value),
            "operationType" => {
                if let Bson::String(name) = value {
                    operation_type = Some(OperationType::from(name));
                }
            }
            "ns" => event.ns = document("ns", value).and_then(owned_namespace),
            "to" => event.to = document("to", value).and_then(owned_namespace),
            "documentKey" => event.document_key = document("documentKey", value),
            "updateDescription" => event.update_description = document("updateDescription", value),
            "fullDocument" => event.full_document = document("fullDocument", value),
            "fullDocumentBeforeChange" => {
                event.full_document_before_change = document("fullDocumentBeforeChange", value);
            }
            "clusterTime" => event.cluster_time = value.as_timestamp(),
            "wallTime" => event.wall_time = value.as_datetime().copied(),
            "txnNumber" => event.txn_number = value.as_i64(),
            "lsid" => event.lsid = document("lsid", value),
            "collectionUUID" => {
                if let Bson::Binary(uuid) = value {
                    event.collection_uuid = Some(uuid);
                }
            }
            "splitEvent" => {
                event.split_event = document("splitEvent", value).and_then(|split| {
                    Some(SplitEvent {
                        fragment: split.get_i32("fragment").ok()?,
                        of: split.get_i32("of").ok()?,
                    })
                });
            }
            _ => {}
        })
        .map_err(|e| Error::protocol("change event", ProtocolErrorKind::InvalidBson(e.to_string())))?;
        if let Some(problem) = problem {
            return Err(problem);
        }
        event.id = id.ok_or_else(|| invalid("_id", "missing".into()))?;
        event.operation_type =
            operation_type.ok_or_else(|| invalid("operationType", "missing or not a string".into()))?;
        Ok(event)
    }

    /// Deserializes the event into any serde type, such as [`ChangeStreamEvent`] or one of the
    /// user's own.
    pub fn deserialize<'de, T: Deserialize<'de>>(&'de self) -> Result<T, Error> {
        bson::deserialize_from_slice(self.raw().as_bytes())
            .map_err(|e| Error::protocol("change event", ProtocolErrorKind::InvalidBson(e.to_string())))
    }
}

/// A change event deserialized in full, for those who want owned, typed fields; `T` is the
/// type of the documents (`fullDocument`, `fullDocumentBeforeChange`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeStreamEvent<T> {
    /// The resume token.
    #[serde(rename = "_id")]
    pub id: bson::Document,
    /// The kind of change.
    pub operation_type: OperationType,
    /// Where it happened.
    pub ns: Option<ChangeStreamNamespace>,
    /// The new name, for renames.
    pub to: Option<ChangeStreamNamespace>,
    /// `documentKey`.
    pub document_key: Option<bson::Document>,
    /// `updateDescription`.
    pub update_description: Option<bson::Document>,
    /// `fullDocument`.
    pub full_document: Option<T>,
    /// `fullDocumentBeforeChange`.
    pub full_document_before_change: Option<T>,
    /// `clusterTime`.
    pub cluster_time: Option<Timestamp>,
    /// `wallTime`.
    pub wall_time: Option<bson::DateTime>,
    /// `txnNumber`.
    pub txn_number: Option<i64>,
    /// `lsid`.
    pub lsid: Option<bson::Document>,
    /// `collectionUUID`.
    #[serde(rename = "collectionUUID")]
    pub collection_uuid: Option<bson::Binary>,
    /// `splitEvent`.
    pub split_event: Option<SplitEvent>,
}

/// An owned `ns` or `to` document as a [`ChangeStreamNamespace`]; none without a string `db`.
fn owned_namespace(ns: bson::Document) -> Option<ChangeStreamNamespace> {
    let mut db = None;
    let mut coll = None;
    for (key, value) in ns {
        match (key.as_str(), value) {
            ("db", bson::Bson::String(name)) => db = Some(name),
            ("coll", bson::Bson::String(name)) => coll = Some(name),
            _ => {}
        }
    }
    Some(ChangeStreamNamespace { db: db?, coll })
}

/// A namespace in a [`ChangeStreamEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChangeStreamNamespace {
    /// The database.
    pub db: String,
    /// The collection.
    pub coll: Option<String>,
}
