//! Read and write concerns.

use std::time::Duration;

use bson::{RawDocumentBuf, raw::cstr, rawdoc};

/// A read concern level.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReadConcernLevel {
    /// `local`.
    Local,
    /// `majority`: only data acknowledged by a majority; what change streams read.
    Majority,
    /// `linearizable`.
    Linearizable,
    /// `available`.
    Available,
    /// `snapshot`.
    Snapshot,
    /// A level this version does not know; sent as is.
    Other(String),
}

impl ReadConcernLevel {
    /// The level as the server spells it.
    pub fn as_str(&self) -> &str {
        match self {
            ReadConcernLevel::Local => "local",
            ReadConcernLevel::Majority => "majority",
            ReadConcernLevel::Linearizable => "linearizable",
            ReadConcernLevel::Available => "available",
            ReadConcernLevel::Snapshot => "snapshot",
            ReadConcernLevel::Other(level) => level,
        }
    }

    /// The level with this name; unknown names are kept as [`ReadConcernLevel::Other`].
    pub fn from_name(name: &str) -> ReadConcernLevel {
        match name {
            "local" => ReadConcernLevel::Local,
            "majority" => ReadConcernLevel::Majority,
            "linearizable" => ReadConcernLevel::Linearizable,
            "available" => ReadConcernLevel::Available,
            "snapshot" => ReadConcernLevel::Snapshot,
            other => ReadConcernLevel::Other(other.to_owned()),
        }
    }
}

/// A read concern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReadConcern {
    /// The level.
    pub level: ReadConcernLevel,
}

impl ReadConcern {
    /// The `readConcern` document sent with a command.
    pub fn to_document(&self) -> RawDocumentBuf {
        rawdoc! { "level": self.level.as_str() }
    }
}

/// How many members must acknowledge a write (`w`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Acknowledgment {
    /// A number of members; 0 asks for no acknowledgment.
    Nodes(u32),
    /// A majority of voting members.
    Majority,
    /// A custom write concern defined by tags in the replica set configuration.
    Custom(String),
}

/// A write concern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct WriteConcern {
    /// `w`.
    pub w: Option<Acknowledgment>,
    /// `wtimeout`.
    pub w_timeout: Option<Duration>,
    /// `j`: wait for the journal.
    pub journal: Option<bool>,
}

impl WriteConcern {
    /// `{w: "majority"}`.
    pub fn majority() -> WriteConcern {
        WriteConcern {
            w: Some(Acknowledgment::Majority),
            ..WriteConcern::default()
        }
    }

    /// Whether the server will acknowledge writes (anything but `w: 0` without `j: true`).
    pub fn is_acknowledged(&self) -> bool {
        self.w != Some(Acknowledgment::Nodes(0)) || self.journal == Some(true)
    }

    /// The `writeConcern` document; empty when nothing is set (the server's default applies).
    pub fn to_document(&self) -> RawDocumentBuf {
        let mut doc = RawDocumentBuf::new();
        match &self.w {
            Some(Acknowledgment::Nodes(n)) => doc.append(cstr!("w"), i32::try_from(*n).unwrap_or(i32::MAX)),
            Some(Acknowledgment::Majority) => doc.append(cstr!("w"), "majority"),
            Some(Acknowledgment::Custom(tag)) => doc.append(cstr!("w"), tag.as_str()),
            None => {}
        }
        if let Some(timeout) = self.w_timeout {
            doc.append(
                cstr!("wtimeout"),
                i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX),
            );
        }
        if let Some(journal) = self.journal {
            doc.append(cstr!("j"), journal);
        }
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_concern_documents() {
        assert_eq!(WriteConcern::majority().to_document(), rawdoc! { "w": "majority" });
        let wc = WriteConcern {
            w: Some(Acknowledgment::Nodes(2)),
            w_timeout: Some(Duration::from_millis(1500)),
            journal: Some(true),
        };
        assert_eq!(wc.to_document(), rawdoc! { "w": 2, "wtimeout": 1500_i64, "j": true });
        assert!(WriteConcern::default().to_document().is_empty());
        assert!(
            !WriteConcern {
                w: Some(Acknowledgment::Nodes(0)),
                ..Default::default()
            }
            .is_acknowledged()
        );
    }

    #[test]
    fn read_concern_levels_round_trip() {
        for name in ["local", "majority", "linearizable", "available", "snapshot", "future"] {
            assert_eq!(ReadConcernLevel::from_name(name).as_str(), name);
        }
        let concern = ReadConcern {
            level: ReadConcernLevel::Majority,
        };
        assert_eq!(concern.to_document(), rawdoc! { "level": "majority" });
    }
}
