//! A runner for the part of the Unified Test Format (mongodb/specifications,
//! `source/unified-test-format/unified-test-format.md`) that the Change Streams specification's
//! tests use: client, database, collection and change stream entities; the operations those
//! files run; `expectResult`, `expectError` and `expectEvents` (command started events); and
//! `runOnRequirements`. What is outside that subset is reported as unsupported, never guessed.

pub(crate) mod entities;
pub(crate) mod matching;
pub(crate) mod operations;
pub(crate) mod requirements;
pub(crate) mod runner;

/// Why a test did not pass.
#[derive(Debug)]
pub(crate) enum Failure {
    /// An assertion failed, an operation failed unexpectedly, or the test file is malformed.
    Failed(String),
    /// The test needs a part of the format this runner does not implement.
    Unsupported(String),
}

impl Failure {
    pub(crate) fn failed(message: impl Into<String>) -> Failure {
        Failure::Failed(message.into())
    }

    pub(crate) fn unsupported(message: impl Into<String>) -> Failure {
        Failure::Unsupported(message.into())
    }
}

/// Relaxed Extended JSON of a value, for messages.
pub(crate) fn show(value: &bson::Bson) -> String {
    value.clone().into_relaxed_extjson().to_string()
}
