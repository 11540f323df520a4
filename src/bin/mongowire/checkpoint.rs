//! `--checkpoint FILE`: where a watcher got to, kept so that a crash at any moment loses nothing.
//!
//! The file holds one JSON object, `{"resumeToken": <canonical Extended JSON>}`, so a person can
//! read it and pass the token to `--resume-after`. It is replaced atomically: written to a
//! sibling file, fsynced, renamed over the old one, and the directory fsynced, so a crash leaves
//! either the old token or the new one, never a torn file. A lock on a sibling `.lock` file,
//! held while the watcher runs, keeps two watchers from sharing one checkpoint (each would
//! overwrite the other's position).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bson::{Bson, Document, RawDocument, RawDocumentBuf};

/// A resume token is a few hundred bytes; anything this large is not a checkpoint.
const MAX_CHECKPOINT: u64 = 1 << 20;

/// The checkpoint file and the token last stored in it.
pub(crate) struct Checkpoint {
    path: PathBuf,
    stored: Option<RawDocumentBuf>,
    /// Holds the exclusive lock until the watcher ends.
    _lock: File,
}

impl Checkpoint {
    /// Opens the checkpoint at `path` and returns the token it holds, if the file exists.
    pub(crate) fn open(path: &Path) -> Result<(Checkpoint, Option<RawDocumentBuf>), String> {
        let lock = lock(path)?;
        let stored = read(path)?;
        let checkpoint = Checkpoint {
            path: path.to_owned(),
            stored: stored.clone(),
            _lock: lock,
        };
        Ok((checkpoint, stored))
    }

    /// Stores `token` durably, unless it is the one already stored.
    pub(crate) fn store(&mut self, token: &RawDocument) -> Result<(), String> {
        if self.stored.as_deref() == Some(token) {
            return Ok(());
        }
        write(&self.path, token).map_err(|e| format!("cannot write checkpoint {}: {e}", self.path.display()))?;
        self.stored = Some(token.to_owned());
        Ok(())
    }
}

/// `path` with `suffix` added to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

fn lock(path: &Path) -> Result<File, String> {
    let lock_path = sibling(path, ".lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "checkpoint {} is in use by another process (it holds {})",
            path.display(),
            lock_path.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", lock_path.display())),
    }
}

fn read(path: &Path) -> Result<Option<RawDocumentBuf>, String> {
    let name = path.display();
    let mut text = String::new();
    match File::open(path) {
        Ok(file) => file
            .take(MAX_CHECKPOINT)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read checkpoint {name}: {e}"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read checkpoint {name}: {e}")),
    };
    let broken = |why: String| format!("checkpoint {name} {why}; remove it to start from now");
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| broken(format!("is not JSON ({e})")))?;
    let token = value
        .get("resumeToken")
        .cloned()
        .ok_or_else(|| broken("has no \"resumeToken\"".into()))?;
    match Bson::try_from(token) {
        Ok(Bson::Document(document)) => RawDocumentBuf::try_from(&document)
            .map(Some)
            .map_err(|e| broken(format!("holds a token that is not BSON ({e})"))),
        _ => Err(broken("holds a \"resumeToken\" that is not a document".into())),
    }
}

fn write(path: &Path, token: &RawDocument) -> std::io::Result<()> {
    let token = Document::try_from(token).map_err(std::io::Error::other)?;
    let line = serde_json::json!({ "resumeToken": Bson::Document(token).into_canonical_extjson() });
    let temporary = sibling(path, ".writing");
    {
        let mut file = File::create(&temporary)?;
        writeln!(file, "{line}")?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)?;
    let directory = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(directory)?.sync_all()
}

#[cfg(test)]
mod tests {
    use bson::rawdoc;

    use super::*;

    #[test]
    fn a_stored_token_reads_back_and_no_temporary_file_is_left() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("orders.checkpoint");
        let (mut checkpoint, token) = Checkpoint::open(&path).unwrap();
        assert_eq!(token, None);
        let stored = rawdoc! { "_data": "8263F0A1B2000000012B0229296E04" };
        checkpoint.store(&stored).unwrap();
        checkpoint.store(&stored).unwrap();
        drop(checkpoint);
        let (_, token) = Checkpoint::open(&path).unwrap();
        assert_eq!(token, Some(stored));
        let mut names: Vec<_> = std::fs::read_dir(directory.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["orders.checkpoint", "orders.checkpoint.lock"]);
    }

    #[test]
    fn a_checkpoint_has_one_owner_at_a_time() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("c");
        let (first, _) = Checkpoint::open(&path).unwrap();
        let error = Checkpoint::open(&path).err().unwrap();
        assert!(error.contains("is in use by another process"), "{error}");
        drop(first);
        assert!(Checkpoint::open(&path).is_ok());
    }

    #[test]
    fn a_broken_checkpoint_says_how_to_recover() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("c");
        for (content, expected) in [
            ("{\"resumeToken\":", "is not JSON"),
            ("{}", "has no \"resumeToken\""),
            ("{\"resumeToken\": 7}", "not a document"),
        ] {
            std::fs::write(&path, content).unwrap();
            let error = Checkpoint::open(&path).err().unwrap();
            assert!(
                error.contains(expected) && error.ends_with("remove it to start from now"),
                "{error}"
            );
        }
    }
}
