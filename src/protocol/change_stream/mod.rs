//! Change streams, per the Change Streams specification, with no I/O: the options, the events,
//! and the state machine that decides what to send, which resume token to keep and when to
//! resume. The driver's `ChangeStream` runs it over connections.

mod event;
mod machine;
mod options;
#[cfg(test)]
mod tests;

pub use event::{
    ChangeEvent, ChangeStreamEvent, ChangeStreamNamespace, EventNamespace, OperationType, SplitEvent, TruncatedArray,
    UpdateDescription,
};
pub use machine::{Action, ChangeStreamMachine, RESUMABLE_CHANGE_STREAM_ERROR, is_resumable};
pub use options::{ChangeStreamOptions, FullDocument, FullDocumentBeforeChange, WatchTarget};
