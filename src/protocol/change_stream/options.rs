//! What a change stream watches and how.

use std::time::Duration;

use bson::{RawBson, RawDocumentBuf, Timestamp};

use crate::protocol::cursor::Namespace;
use crate::protocol::{ReadConcern, ReadPreference};

/// What a change stream watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchTarget {
    /// One collection: `aggregate: "<coll>"` on its database.
    Collection(Namespace),
    /// Every collection of a database: `aggregate: 1` on it.
    Database(String),
    /// Every database of the deployment: `aggregate: 1` on `admin` with `allChangesForCluster`.
    Cluster,
}

impl WatchTarget {
    /// The database the aggregate runs on.
    pub fn db(&self) -> &str {
        match self {
            WatchTarget::Collection(ns) => &ns.db,
            WatchTarget::Database(db) => db,
            WatchTarget::Cluster => "admin",
        }
    }
}

/// `fullDocument`: whether update events carry the whole document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FullDocument {
    /// `default`: updates carry only their delta.
    Default,
    /// `updateLookup`: the current version of the document, looked up when the event is read.
    UpdateLookup,
    /// `whenAvailable`: the post-image, when the collection records them.
    WhenAvailable,
    /// `required`: the post-image, or an error.
    Required,
    /// Any other value the server accepts; sent as is.
    Other(String),
}

impl FullDocument {
    /// The value sent to the server.
    pub fn as_str(&self) -> &str {
        match self {
            FullDocument::Default => "default",
            FullDocument::UpdateLookup => "updateLookup",
            FullDocument::WhenAvailable => "whenAvailable",
            FullDocument::Required => "required",
            FullDocument::Other(value) => value,
        }
    }

    /// The option for a value; unknown values are kept, for the server to judge.
    pub fn from_name(name: &str) -> FullDocument {
        match name {
            "default" => FullDocument::Default,
            "updateLookup" => FullDocument::UpdateLookup,
            "whenAvailable" => FullDocument::WhenAvailable,
            "required" => FullDocument::Required,
            other => FullDocument::Other(other.to_owned()),
        }
    }
}

/// `fullDocumentBeforeChange`: whether events carry the pre-image.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FullDocumentBeforeChange {
    /// `off`.
    Off,
    /// `whenAvailable`.
    WhenAvailable,
    /// `required`.
    Required,
    /// Any other value the server accepts; sent as is.
    Other(String),
}

impl FullDocumentBeforeChange {
    /// The value sent to the server.
    pub fn as_str(&self) -> &str {
        match self {
            FullDocumentBeforeChange::Off => "off",
            FullDocumentBeforeChange::WhenAvailable => "whenAvailable",
            FullDocumentBeforeChange::Required => "required",
            FullDocumentBeforeChange::Other(value) => value,
        }
    }

    /// The option for a value; unknown values are kept, for the server to judge.
    pub fn from_name(name: &str) -> FullDocumentBeforeChange {
        match name {
            "off" => FullDocumentBeforeChange::Off,
            "whenAvailable" => FullDocumentBeforeChange::WhenAvailable,
            "required" => FullDocumentBeforeChange::Required,
            other => FullDocumentBeforeChange::Other(other.to_owned()),
        }
    }
}

/// Every option of a change stream. Those of the `$changeStream` stage and the aggregate are
/// sent only when set; `max_await_time` goes on getMore only; the rest shape the client side.
#[derive(Debug, Clone, Default)]
pub struct ChangeStreamOptions {
    /// `fullDocument`.
    pub full_document: Option<FullDocument>,
    /// `fullDocumentBeforeChange`.
    pub full_document_before_change: Option<FullDocumentBeforeChange>,
    /// `resumeAfter`: start after this resume token.
    pub resume_after: Option<RawDocumentBuf>,
    /// `startAfter`: like `resumeAfter`, but also after an invalidate event.
    pub start_after: Option<RawDocumentBuf>,
    /// `startAtOperationTime`: start at this cluster time.
    pub start_at_operation_time: Option<Timestamp>,
    /// `maxTimeMS` of each getMore: how long the server waits for events before answering
    /// with an empty batch.
    pub max_await_time: Option<Duration>,
    /// `batchSize`, on the aggregate and every getMore.
    pub batch_size: Option<u32>,
    /// `collation` of the aggregate.
    pub collation: Option<RawDocumentBuf>,
    /// `comment`, on the aggregate and (servers 4.4+) every getMore.
    pub comment: Option<RawBson>,
    /// `showExpandedEvents` (servers 6.0+): DDL events such as create and createIndexes.
    pub show_expanded_events: Option<bool>,
    /// `readConcern` of the aggregate (the server accepts only `majority`, or none).
    pub read_concern: Option<ReadConcern>,
    /// The read preference for the first server selection and for every resume; the client's
    /// when unset.
    pub read_preference: Option<ReadPreference>,
    /// Reassemble events that `$changeStreamSplitLargeEvent` split into fragments, so the user
    /// sees one event (its resume token is the last fragment's); a resume in the middle of an
    /// event starts again from its first fragment.
    pub reassemble_split_events: bool,
    /// Send the next getMore as soon as a batch arrives, so the server gathers the next batch
    /// while the user handles this one.
    pub prefetch: bool,
}
