//! The SCRAM key cache the Authentication spec requires, so that opening another connection
//! with the same credential does not repeat `Hi()`, thousands of HMAC iterations.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};

use super::scram::ScramHash;

/// Keys derived from salted passwords, shared by every connection of a client.
///
/// An entry is found by mechanism, salt, iteration count and a SHA-256 fingerprint of the
/// prepared password; it holds the SCRAM `ClientKey` and `ServerKey` (one of the two forms the
/// spec allows). The plaintext password is never stored. Thread-safe; at most `capacity`
/// entries, the least recently used going first. Two connections that miss at the same time
/// both derive the keys (the lock is never held during the derivation) and store one entry.
pub struct ScramCache {
    capacity: usize,
    /// Least recently used first.
    entries: Mutex<VecDeque<(CacheKey, ScramKeys)>>,
}

impl ScramCache {
    /// How many entries [`ScramCache::default`] keeps. A client has one credential, and one salt
    /// per mechanism in a deployment, so a handful is plenty.
    pub const DEFAULT_CAPACITY: usize = 16;

    /// A cache of at most `capacity` entries; 0 turns caching off.
    pub fn with_capacity(capacity: usize) -> ScramCache {
        ScramCache {
            capacity,
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// The keys for `key`: from the cache, else from `derive` (then cached).
    pub(super) fn get_or_derive(&self, key: CacheKey, derive: impl FnOnce() -> ScramKeys) -> ScramKeys {
        {
            let mut entries = self.lock();
            if let Some(position) = entries.iter().position(|(k, _)| *k == key)
                && let Some(entry) = entries.remove(position)
            {
                let keys = entry.1.clone();
                entries.push_back(entry);
                return keys;
            }
        }
        let keys = derive();
        if self.capacity > 0 {
            let mut entries = self.lock();
            if !entries.iter().any(|(k, _)| *k == key) {
                while entries.len() >= self.capacity {
                    entries.pop_front();
                }
                entries.push_back((key, keys.clone()));
            }
        }
        keys
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }

    /// The entries. A panic while the lock was held cannot leave them inconsistent (every
    /// change is a single push or pop), so a poisoned lock is used as is.
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(CacheKey, ScramKeys)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for ScramCache {
    fn default() -> ScramCache {
        ScramCache::with_capacity(ScramCache::DEFAULT_CAPACITY)
    }
}

impl fmt::Debug for ScramCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCache")
            .field("capacity", &self.capacity)
            .field("entries", &self.lock().len())
            .finish()
    }
}

/// What identifies a derivation: the same inputs give the same keys.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct CacheKey {
    hash: ScramHash,
    /// SHA-256 of the prepared password (SASLprepped for SHA-256, the MD5 digest for SHA-1). The
    /// client keeps the plaintext in its credential anyway; this keeps it out of the cache.
    password: [u8; 32],
    salt: Vec<u8>,
    iterations: u32,
}

impl CacheKey {
    pub(super) fn new(hash: ScramHash, prepared_password: &[u8], salt: &[u8], iterations: u32) -> CacheKey {
        CacheKey {
            hash,
            password: Sha256::digest(prepared_password).into(),
            salt: salt.to_vec(),
            iterations,
        }
    }
}

/// `ClientKey` and `ServerKey` (RFC 5802 section 3), what the rest of a conversation needs.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct ScramKeys {
    pub(super) client_key: Vec<u8>,
    pub(super) server_key: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn key(password: &str, salt: &[u8], iterations: u32) -> CacheKey {
        CacheKey::new(ScramHash::Sha256, password.as_bytes(), salt, iterations)
    }

    fn keys(tag: u8) -> ScramKeys {
        ScramKeys {
            client_key: vec![tag; 32],
            server_key: vec![tag.wrapping_add(1); 32],
        }
    }

    #[test]
    fn a_hit_does_not_derive_again() {
        let cache = ScramCache::default();
        let derivations = Cell::new(0);
        let derive = |tag| {
            derivations.set(derivations.get() + 1);
            keys(tag)
        };
        let first = cache.get_or_derive(key("pw", b"salt", 4096), || derive(1));
        let again = cache.get_or_derive(key("pw", b"salt", 4096), || derive(2));
        assert_eq!(derivations.get(), 1);
        assert!(first == keys(1) && again == keys(1));

        // Any other input is another entry.
        cache.get_or_derive(key("pw2", b"salt", 4096), || derive(3));
        cache.get_or_derive(key("pw", b"salt2", 4096), || derive(4));
        cache.get_or_derive(key("pw", b"salt", 4097), || derive(5));
        let sha1 = CacheKey::new(ScramHash::Sha1, b"pw", b"salt", 4096);
        cache.get_or_derive(sha1, || derive(6));
        assert_eq!(derivations.get(), 5);
        assert_eq!(cache.len(), 5);
    }

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let cache = ScramCache::with_capacity(2);
        cache.get_or_derive(key("a", b"s", 4096), || keys(1));
        cache.get_or_derive(key("b", b"s", 4096), || keys(2));
        cache.get_or_derive(key("a", b"s", 4096), || keys(9)); // "a" is now the most recent
        cache.get_or_derive(key("c", b"s", 4096), || keys(3)); // evicts "b"
        assert_eq!(cache.len(), 2);
        assert!(cache.get_or_derive(key("a", b"s", 4096), || keys(9)) == keys(1));
        assert!(cache.get_or_derive(key("b", b"s", 4096), || keys(7)) == keys(7));
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let cache = ScramCache::with_capacity(0);
        cache.get_or_derive(key("a", b"s", 4096), || keys(1));
        assert_eq!(cache.len(), 0);
        assert!(cache.get_or_derive(key("a", b"s", 4096), || keys(2)) == keys(2));
    }

    #[test]
    fn debug_shows_neither_keys_nor_passwords() {
        let cache = ScramCache::default();
        cache.get_or_derive(key("s3cr3t-pw", b"s", 4096), || keys(0x41));
        assert_eq!(format!("{cache:?}"), "ScramCache { capacity: 16, entries: 1 }");
    }
}
