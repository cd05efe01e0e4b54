//! When an asset was last used, and until when it is being played: a small file per bundle, kept outside
//! the manifest so that marking an asset never needs the bundle's lock (a download may hold it while the
//! asset is played).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{IoContext, Result};
use crate::ledger::TEMP_SUFFIX;
use crate::storage::Storage;
use crate::time::serde_time;

/// The access record's file name in a bundle folder.
pub(crate) const ACCESS_FILE: &str = ".access.json";

/// The largest access record read: it holds two times.
const MAX_ACCESS_LEN: u64 = 4096;

/// What the access record holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AccessRecord {
    /// When the asset was last used (played, looked at).
    #[serde(default, with = "serde_time::option", skip_serializing_if = "Option::is_none")]
    pub(crate) accessed: Option<SystemTime>,
    /// Until when a player holds it: a server playing the asset renews this lease while requests come.
    #[serde(default, with = "serde_time::option", skip_serializing_if = "Option::is_none")]
    pub(crate) playing_until: Option<SystemTime>,
}

/// The access record of the bundle at `dir`; an empty one when there is none or it cannot be read (it
/// only orders purges: a damaged one must not make a bundle unusable).
pub(crate) fn read(storage: &dyn Storage, dir: &Path) -> AccessRecord {
    storage
        .read_limited(&dir.join(ACCESS_FILE), MAX_ACCESS_LEN)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Changes the access record of the bundle at `dir`, written atomically. Several processes may mark one
/// asset at once (a server and a command): each writes its own temporary file, so a reader sees one whole
/// record or the other, never a mix; the later time may lose to the earlier one, which only costs a purge
/// ordering by a few seconds.
pub(crate) fn update(
    storage: &dyn Storage,
    dir: &Path,
    change: impl FnOnce(&mut AccessRecord),
) -> Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut record = read(storage, dir);
    change(&mut record);
    let path = dir.join(ACCESS_FILE);
    // The temporary name ends like every temporary file of a bundle, so the next writer that opens the
    // bundle removes one a crash left.
    let temp: PathBuf = dir.join(format!(
        "{ACCESS_FILE}.{}-{}{TEMP_SUFFIX}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let bytes = serde_json::to_vec(&record).unwrap_or_default();
    let result = (|| {
        let mut file = storage.create(&temp).at(&temp)?;
        file.write_all(&bytes).at(&temp)?;
        // No sync: a record lost with a power cut only makes the asset look used a little earlier.
        drop(file);
        storage.rename(&temp, &path).at(&path)
    })();
    if result.is_err() {
        let _ = storage.remove_file(&temp);
    }
    result
}
