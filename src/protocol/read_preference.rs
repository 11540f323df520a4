//! Read preferences: which members of a replica set a read may go to.

use std::collections::BTreeMap;
use std::time::Duration;

use bson::{RawArrayBuf, RawDocumentBuf, rawdoc};

/// The read preference modes of the Server Selection specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReadPreferenceMode {
    /// Only the primary.
    #[default]
    Primary,
    /// The primary if there is one, else a secondary.
    PrimaryPreferred,
    /// Only secondaries.
    Secondary,
    /// A secondary if there is one, else the primary.
    SecondaryPreferred,
    /// Any data-bearing member within the latency window.
    Nearest,
}

impl ReadPreferenceMode {
    /// The name in connection strings and `$readPreference` (`secondaryPreferred`).
    pub fn name(self) -> &'static str {
        match self {
            ReadPreferenceMode::Primary => "primary",
            ReadPreferenceMode::PrimaryPreferred => "primaryPreferred",
            ReadPreferenceMode::Secondary => "secondary",
            ReadPreferenceMode::SecondaryPreferred => "secondaryPreferred",
            ReadPreferenceMode::Nearest => "nearest",
        }
    }

    /// The mode with this name, case-insensitively.
    pub fn from_name(name: &str) -> Option<ReadPreferenceMode> {
        [
            ReadPreferenceMode::Primary,
            ReadPreferenceMode::PrimaryPreferred,
            ReadPreferenceMode::Secondary,
            ReadPreferenceMode::SecondaryPreferred,
            ReadPreferenceMode::Nearest,
        ]
        .into_iter()
        .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

/// A set of tags a member must all carry, such as `{dc: "east", use: "reporting"}`. The empty
/// tag set matches every member.
pub type TagSet = BTreeMap<String, String>;

/// A read preference: a mode, optional tag sets tried in order, and an optional staleness bound.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadPreference {
    /// The mode.
    pub mode: ReadPreferenceMode,
    /// Tag sets, tried in order; the first that matches any eligible member wins.
    pub tag_sets: Vec<TagSet>,
    /// Members more stale than this are not eligible (at least 90 seconds, per the spec).
    pub max_staleness: Option<Duration>,
}

impl ReadPreference {
    /// The primary only.
    pub fn primary() -> ReadPreference {
        ReadPreference::with_mode(ReadPreferenceMode::Primary)
    }

    /// A read preference with this mode and no tags or staleness bound.
    pub fn with_mode(mode: ReadPreferenceMode) -> ReadPreference {
        ReadPreference {
            mode,
            ..ReadPreference::default()
        }
    }

    /// The `$readPreference` document sent with a command.
    pub fn to_document(&self) -> RawDocumentBuf {
        let mut doc = rawdoc! { "mode": self.mode.name() };
        if !self.tag_sets.is_empty() {
            let tags: RawArrayBuf = self
                .tag_sets
                .iter()
                .map(|set| {
                    let mut tag_doc = RawDocumentBuf::new();
                    for (key, value) in set {
                        if let Ok(key) = bson::raw::CString::try_from(key.as_str()) {
                            tag_doc.append(key, value.as_str());
                        }
                    }
                    tag_doc
                })
                .collect();
            doc.append(bson::raw::cstr!("tags"), tags);
        }
        if let Some(staleness) = self.max_staleness {
            doc.append(
                bson::raw::cstr!("maxStalenessSeconds"),
                i64::try_from(staleness.as_secs()).unwrap_or(i64::MAX),
            );
        }
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive() {
        assert_eq!(
            ReadPreferenceMode::from_name("SECONDARYpreferred"),
            Some(ReadPreferenceMode::SecondaryPreferred)
        );
        assert_eq!(ReadPreferenceMode::from_name("any"), None);
    }

    #[test]
    fn document_has_mode_tags_and_staleness() {
        let preference = ReadPreference {
            mode: ReadPreferenceMode::Secondary,
            tag_sets: vec![TagSet::from([("dc".to_owned(), "east".to_owned())]), TagSet::new()],
            max_staleness: Some(Duration::from_secs(120)),
        };
        let expected = rawdoc! { "mode": "secondary", "tags": [{ "dc": "east" }, {}], "maxStalenessSeconds": 120_i64 };
        assert_eq!(preference.to_document(), expected);
        assert_eq!(ReadPreference::primary().to_document(), rawdoc! { "mode": "primary" });
    }
}
