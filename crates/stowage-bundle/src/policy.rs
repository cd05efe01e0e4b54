//! The store-wide storage policy: a small file at the store root (`store-policy.json`), versioned like a
//! bundle's manifest and replaced atomically.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The store policy's file name at the store root.
pub const STORE_POLICY_FILE: &str = "store-policy.json";

/// The `format` field of the store policy file.
pub const STORE_POLICY_FORMAT: &str = "stowage-store-policy";

/// The store policy format version this crate writes, and the newest it reads.
pub const STORE_POLICY_VERSION: u32 = 1;

/// The largest store policy file read.
pub(crate) const MAX_STORE_POLICY_LEN: u64 = 64 * 1024;

/// How a whole store keeps itself within its means (Apple's storage management, for a store rather than
/// one asset): a quota, a floor of free space on the disk, an expiry given to new downloads that bring
/// none, and whether a download may purge other assets to make room. The default limits nothing.
///
/// Kept in the store ([`StorageManager::store_policy`](crate::StorageManager::store_policy)); downloads
/// check it before they start ([`StorageManager::admit`](crate::StorageManager::admit)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StorePolicy {
    /// The most bytes the store's bundles may take on disk.
    pub quota: Option<u64>,
    /// Bytes the volume must keep free: a download is admitted only if the disk keeps at least this much
    /// once it is stored.
    pub free_space_floor: Option<u64>,
    /// The expiry given to a new download that does not set its own: this long after it is made.
    pub default_expiry: Option<Duration>,
    /// Whether admission may purge (expired, then least recently used default-priority assets, never
    /// important, locked or playing ones) to make room for a download that does not fit. Without it, a
    /// download that does not fit is refused once expired assets are gone.
    pub purge_to_admit: bool,
}

impl StorePolicy {
    /// A policy that limits nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the quota in bytes.
    #[must_use]
    pub fn quota(mut self, bytes: u64) -> Self {
        self.quota = Some(bytes);
        self
    }

    /// Sets the free-space floor in bytes.
    #[must_use]
    pub fn free_space_floor(mut self, bytes: u64) -> Self {
        self.free_space_floor = Some(bytes);
        self
    }

    /// Sets the default expiry of new downloads.
    #[must_use]
    pub fn default_expiry(mut self, after: Duration) -> Self {
        self.default_expiry = Some(after);
        self
    }

    /// Allows admission to purge to make room.
    #[must_use]
    pub fn purge_to_admit(mut self, yes: bool) -> Self {
        self.purge_to_admit = yes;
        self
    }

    /// Whether the policy limits nothing and sets nothing (as when no policy file exists).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Reads a store policy file's bytes; `path` is for errors.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidStorePolicy { path: path.to_path_buf(), reason };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
        match value.get("format").and_then(serde_json::Value::as_str) {
            Some(STORE_POLICY_FORMAT) => {}
            Some(other) => {
                return Err(invalid(format!("format {other:?}, expected {STORE_POLICY_FORMAT:?}")));
            }
            None => return Err(invalid("no \"format\" field".to_owned())),
        }
        let version = value
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| invalid("no numeric \"version\" field".to_owned()))?;
        if version == 0 || version > u64::from(STORE_POLICY_VERSION) {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found: u32::try_from(version).unwrap_or(u32::MAX),
                supported: STORE_POLICY_VERSION,
            });
        }
        let file: PolicyFile = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            quota: file.quota,
            free_space_floor: file.free_space_floor,
            default_expiry: file.default_expiry_seconds.map(Duration::from_secs),
            purge_to_admit: file.purge_to_admit,
        })
    }

    /// The policy as the store keeps it: pretty-printed JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let file = PolicyFile {
            format: STORE_POLICY_FORMAT.to_owned(),
            version: STORE_POLICY_VERSION,
            quota: self.quota,
            free_space_floor: self.free_space_floor,
            default_expiry_seconds: self.default_expiry.map(|d| d.as_secs()),
            purge_to_admit: self.purge_to_admit,
        };
        let mut bytes = serde_json::to_vec_pretty(&file).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

/// The store policy file, field by field.
#[derive(Serialize, Deserialize)]
struct PolicyFile {
    format: String,
    version: u32,
    quota: Option<u64>,
    free_space_floor: Option<u64>,
    default_expiry_seconds: Option<u64>,
    #[serde(default)]
    purge_to_admit: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_it_cannot_read() {
        let path = Path::new("store-policy.json");
        let policy = StorePolicy::new()
            .quota(50 << 30)
            .free_space_floor(5 << 30)
            .default_expiry(Duration::from_secs(30 * 86_400))
            .purge_to_admit(true);
        assert_eq!(StorePolicy::parse(path, &policy.to_json()).unwrap(), policy);
        assert_eq!(StorePolicy::parse(path, &StorePolicy::new().to_json()).unwrap(), StorePolicy::new());
        let newer = br#"{"format":"stowage-store-policy","version":2,"quota":1}"#;
        assert!(matches!(
            StorePolicy::parse(path, newer),
            Err(Error::UnsupportedVersion { found: 2, supported: 1, .. })
        ));
        for (bad, says) in [
            (&br#"{"format":"stowage-bundle","version":1}"#[..], "format"),
            (br#"{"format":"stowage-store-policy"}"#, "version"),
            (br#"{"format":"stowage-store-policy","version":1,"quota":-5}"#, "-5"),
            (b"{\"format\"", "not JSON"),
        ] {
            match StorePolicy::parse(path, bad) {
                Err(Error::InvalidStorePolicy { reason, .. }) => assert!(reason.contains(says), "{reason}"),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(bad)),
            }
        }
    }
}
