//! A store of bundles: listing, policies, purge and admission (Apple's `AVAssetDownloadStorageManager`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::access;
use crate::bundle::{Bundle, BundleOptions};
use crate::error::{Error, IoContext, Result};
use crate::id::check_local_name;
use crate::ledger::{self, INDEX_FILE, JOURNAL_FILE, LOCK_FILE, MANIFEST_FILE, MASTER_FILE, SOURCE_DIR};
use crate::manifest::{AssetInfo, BundlePlan, ManifestChanges, Priority, StoragePolicy};
use crate::policy::{MAX_STORE_POLICY_LEN, STORE_POLICY_FILE, StorePolicy};
use crate::storage::{LocalFs, Storage};

/// A directory of bundles, one folder per asset (named by the asset's identifier).
#[derive(Debug, Clone)]
pub struct StorageManager {
    dir: PathBuf,
    storage: Arc<dyn Storage>,
    options: BundleOptions,
}

/// One bundle of a store, as listed by [`StorageManager::list`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BundleSummary {
    /// The bundle directory.
    pub path: PathBuf,
    /// The asset.
    pub asset: AssetInfo,
    /// Bytes on disk (every file of the bundle folder).
    pub size: u64,
    /// Whether the download is over (every segment finished or recorded as a gap), as of the manifest's
    /// last write.
    pub finished: bool,
    /// Whether every planned segment is stored.
    pub complete: bool,
    /// Segments recorded as gaps, as of the manifest's last write (a bundle being written may have
    /// journaled more; [`AssetCache`](crate::AssetCache) reads both).
    pub gaps: usize,
    /// Expiry and priority.
    pub policy: StoragePolicy,
    /// When it was created.
    pub created: SystemTime,
    /// When it was last used: opened for writing, or marked as accessed
    /// ([`StorageManager::mark_accessed`]), whichever is later.
    pub accessed: SystemTime,
    /// Whether a writer holds it now.
    pub in_use: bool,
    /// Until when a player holds it ([`StorageManager::mark_playing`]); purge and expiry leave it alone
    /// until then.
    pub playing_until: Option<SystemTime>,
    /// Whether its download was cancelled, its partial content kept (see
    /// [`Manifest::cancelled`](crate::Manifest::cancelled)).
    pub cancelled: bool,
}

impl BundleSummary {
    /// Whether a player holds the bundle at `now` (its lease has not run out).
    pub fn is_playing(&self, now: SystemTime) -> bool {
        self.playing_until.is_some_and(|until| until > now)
    }
}

/// A folder of the store that holds a bundle, or what is left of one, that cannot be used: its manifest
/// is corrupt, cut short, of a newer format or names unsafe paths, its lock file is not a file, or it has
/// no manifest at all (a creation that did not finish).
#[derive(Debug)]
#[non_exhaustive]
pub struct DamagedBundle {
    /// The folder.
    pub path: PathBuf,
    /// The folder's name: the identifier of the asset it holds (or held).
    pub id: String,
    /// Bytes on disk (every file of the folder; 0 when it cannot be listed).
    pub size: u64,
    /// What is wrong with it.
    pub error: Error,
}

/// What [`StorageManager::list`] found.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct StoreListing {
    /// The bundles, sorted by asset identifier.
    pub bundles: Vec<BundleSummary>,
    /// Folders that hold a bundle, or what is left of one, that cannot be used, sorted by identifier.
    /// `purge` removes those without a manifest (the leftovers of a creation that did not finish), and
    /// never the others: [`StorageManager::remove`] does, when asked.
    pub damaged: Vec<DamagedBundle>,
}

/// How much space a purge must free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PurgeOptions {
    /// Remove bundles until the store's total size is at most this many bytes.
    pub quota: Option<u64>,
    /// Remove bundles until the volume has at least this many bytes available.
    pub free_space: Option<u64>,
    /// Also remove important bundles (last, least recently accessed first) when the target needs it.
    pub include_important: bool,
    /// Remove every expired bundle even when the target is already met (the default: an expired asset is
    /// not meant to be kept).
    pub keep_expired_within_target: bool,
    /// The time expiry is judged against; `None` means now.
    pub now: Option<SystemTime>,
}

impl PurgeOptions {
    /// Remove bundles until the store is at most `bytes` large.
    pub fn quota(bytes: u64) -> Self {
        Self { quota: Some(bytes), ..Self::default() }
    }

    /// Remove bundles until at least `bytes` are available on the volume.
    pub fn free_space(bytes: u64) -> Self {
        Self { free_space: Some(bytes), ..Self::default() }
    }

    /// Allows removing important bundles when the target needs it.
    #[must_use]
    pub fn include_important(mut self, yes: bool) -> Self {
        self.include_important = yes;
        self
    }

    /// Keeps expired bundles when the target is met without removing them.
    #[must_use]
    pub fn keep_expired_within_target(mut self, yes: bool) -> Self {
        self.keep_expired_within_target = yes;
        self
    }

    /// Judges expiry at `now` instead of the current time.
    #[must_use]
    pub fn now(mut self, now: SystemTime) -> Self {
        self.now = Some(now);
        self
    }
}

/// Why a bundle was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PurgeReason {
    /// Its expiry date had passed.
    Expired,
    /// Space was needed; it had default priority and the least recent access among the rest.
    LeastRecentlyAccessed,
    /// Space was needed and important bundles were allowed to go; it had the least recent access.
    ImportantAllowed,
}

/// A bundle removed by [`StorageManager::purge`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Removed {
    /// The asset.
    pub asset: AssetInfo,
    /// Where it was.
    pub path: PathBuf,
    /// Bytes freed.
    pub size: u64,
    /// Why it was chosen.
    pub reason: PurgeReason,
}

/// What [`StorageManager::purge`] did.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct PurgeReport {
    /// Bundles removed, in removal order.
    pub removed: Vec<Removed>,
    /// Folders without a manifest removed first (the leftovers of a creation that did not finish), with
    /// the bytes each freed.
    pub leftovers: Vec<(PathBuf, u64)>,
    /// Bundles skipped because a writer holds them.
    pub skipped_in_use: Vec<PathBuf>,
    /// Bundles skipped because a player holds them ([`BundleSummary::playing_until`]).
    pub skipped_playing: Vec<PathBuf>,
    /// Bytes freed.
    pub freed: u64,
    /// Whether the target is met.
    pub target_met: bool,
}

/// The answer of [`StorageManager::check_admission`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admission {
    /// The download fits.
    Fits,
    /// The download fits only once purge removes `reclaim` bytes of default-priority or expired bundles.
    FitsAfterPurge {
        /// Bytes that must be freed.
        reclaim: u64,
    },
    /// The download does not fit even if every purgeable bundle goes.
    Refused {
        /// The store's size now.
        used: u64,
        /// The estimated size of the download.
        estimated: u64,
        /// The quota or the space available, whichever is tighter.
        limit: u64,
    },
}

impl StorageManager {
    /// A store in `dir` on the local filesystem (created when the first bundle is).
    pub fn new(dir: impl AsRef<Path>) -> Self {
        Self::with_storage(Arc::new(LocalFs::new()), dir)
    }

    /// A store in `dir` with `storage`.
    pub fn with_storage(storage: Arc<dyn Storage>, dir: impl AsRef<Path>) -> Self {
        Self { dir: dir.as_ref().to_path_buf(), storage, options: BundleOptions::default() }
    }

    /// Sets the options of the bundles this store creates and opens for writing.
    #[must_use]
    pub fn bundle_options(mut self, options: BundleOptions) -> Self {
        self.options = options;
        self
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Bytes on disk of the bundle folder at `path` (every file in it, as [`BundleSummary::size`] counts
    /// them), without reading its manifest.
    pub fn size_on_disk(&self, path: &Path) -> Result<u64> {
        dir_size(&*self.storage, path)
    }

    /// The folder of the asset `id`'s bundle.
    pub fn bundle_path(&self, id: &str) -> Result<PathBuf> {
        check_local_name(id)?;
        Ok(self.dir.join(id))
    }

    /// Creates a bundle for `plan` in its folder (named by the asset identifier).
    pub fn create_bundle(&self, plan: BundlePlan) -> Result<Bundle> {
        let path = self.bundle_path(&plan.asset.id)?;
        // Space that removals cut short still hold is given back before more is taken.
        self.finish_removals()?;
        Bundle::create_with(Arc::clone(&self.storage), path, plan, self.options.clone())
    }

    /// Opens the bundle of asset `id` for writing (to resume it).
    pub fn open_bundle(&self, id: &str) -> Result<Bundle> {
        let path = self.existing(id)?;
        Bundle::open_with(Arc::clone(&self.storage), path, self.options.clone())
    }

    fn existing(&self, id: &str) -> Result<PathBuf> {
        let path = self.bundle_path(id)?;
        let manifest = path.join(MANIFEST_FILE);
        if self.storage.exists(&manifest).at(&manifest)? {
            Ok(path)
        } else {
            Err(Error::NoSuchBundle { id: id.to_owned(), store: self.dir.clone() })
        }
    }

    /// Lists the bundles of the store, and the folders that hold a damaged bundle or what is left of one.
    /// Removals that were cut short (a crash, a kill) are finished first. A store folder that does not
    /// exist yet lists as empty.
    pub fn list(&self) -> Result<StoreListing> {
        let mut listing = StoreListing::default();
        let entries = match self.storage.list_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(listing),
            Err(e) => return Err(Error::from_io(&self.dir, e)),
        };
        for entry in entries.into_iter().filter(|e| e.is_dir) {
            let path = self.dir.join(&entry.name);
            let Some(name) = entry.name.to_str() else { continue };
            if let Some(id) = name.strip_prefix(REMOVING_PREFIX) {
                if let Err(error) = remove_marked(&*self.storage, &path) {
                    let size = dir_size(&*self.storage, &path).unwrap_or(0);
                    listing.damaged.push(DamagedBundle { id: id.to_owned(), size, error, path });
                }
                continue;
            }
            let manifest_path = path.join(MANIFEST_FILE);
            if !self.storage.exists(&manifest_path).at(&manifest_path)? {
                if let Some(damaged) = self.leftover(&path, name)? {
                    listing.damaged.push(damaged);
                }
                continue;
            }
            match self.summary(&path) {
                Ok(summary) => listing.bundles.push(summary),
                Err(error) => {
                    let size = dir_size(&*self.storage, &path).unwrap_or(0);
                    listing.damaged.push(DamagedBundle { id: name.to_owned(), size, error, path });
                }
            }
        }
        listing.bundles.sort_by(|a, b| a.asset.id.cmp(&b.asset.id));
        listing.damaged.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(listing)
    }

    /// A folder without a manifest that holds what a bundle leaves: its lock file, journal, source
    /// playlists or local master playlist, or a rendition folder. Folders of other kinds are not the
    /// store's and are left out; so is a bundle being created (its writer holds the lock).
    fn leftover(&self, path: &Path, name: &str) -> Result<Option<DamagedBundle>> {
        if check_local_name(name).is_err() {
            return Ok(None);
        }
        let entries = match self.storage.list_dir(path) {
            Ok(entries) => entries,
            Err(e) => return Err(Error::from_io(path, e)),
        };
        let mut bundle_like = entries.iter().any(|e| {
            [LOCK_FILE, JOURNAL_FILE, SOURCE_DIR, MASTER_FILE].iter().any(|known| e.name == **known)
        });
        for e in entries.iter().filter(|e| e.is_dir) {
            if bundle_like {
                break;
            }
            let index = path.join(&e.name).join(INDEX_FILE);
            bundle_like = self.storage.exists(&index).at(&index)?;
        }
        if !bundle_like || self.is_in_use(path).unwrap_or(false) {
            return Ok(None);
        }
        let size = dir_size(&*self.storage, path)?;
        let error = Error::Leftover { path: path.to_path_buf() };
        Ok(Some(DamagedBundle { path: path.to_path_buf(), id: name.to_owned(), size, error }))
    }

    /// Finishes the removals that were cut short: folders marked for removal are deleted.
    fn finish_removals(&self) -> Result<()> {
        let entries = match self.storage.list_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::from_io(&self.dir, e)),
        };
        for entry in entries.into_iter().filter(|e| e.is_dir) {
            if entry.name.to_str().is_some_and(|n| n.starts_with(REMOVING_PREFIX)) {
                remove_marked(&*self.storage, &self.dir.join(&entry.name))?;
            }
        }
        Ok(())
    }

    fn summary(&self, path: &Path) -> Result<BundleSummary> {
        let manifest = ledger::read_manifest(&*self.storage, path)?;
        let size = dir_size(&*self.storage, path)?;
        let in_use = self.is_in_use(path)?;
        let record = access::read(&*self.storage, path);
        let accessed = record.accessed.map_or(manifest.accessed, |at| at.max(manifest.accessed));
        Ok(BundleSummary {
            path: path.to_path_buf(),
            finished: manifest.finished,
            complete: manifest.complete,
            gaps: manifest.gaps.len(),
            policy: manifest.policy,
            created: manifest.created,
            accessed,
            asset: manifest.asset,
            size,
            in_use,
            playing_until: record.playing_until,
            cancelled: manifest.cancelled,
        })
    }

    fn is_in_use(&self, path: &Path) -> Result<bool> {
        let lock = path.join(LOCK_FILE);
        // Probing takes the lock for an instant; a writer starting at that very instant gets `Locked` and
        // can retry, which is better than a purge removing a bundle under a writer.
        Ok(self.storage.try_lock(&lock).at(&lock)?.is_none())
    }

    /// Changes the storage policy of asset `id`. Fails with [`Error::Locked`] while a writer holds it: the
    /// writer changes it with [`Bundle::set_policy`].
    pub fn set_policy(&self, id: &str, policy: StoragePolicy) -> Result<()> {
        self.update_manifest(id, |m| m.policy = policy)
    }

    /// Changes the record of asset `id`'s download (URL, title, policies, request, cancelled). Fails with
    /// [`Error::Locked`] while a writer holds it: the writer changes it with [`Bundle::update`].
    pub fn update(&self, id: &str, changes: ManifestChanges) -> Result<()> {
        self.update_manifest(id, |m| changes.apply(m))
    }

    /// The storage policy of asset `id` (its expiry and priority; Apple's
    /// `storageManagementPolicy(for:)`), read from its manifest without waiting for a writer.
    pub fn storage_management_policy(&self, id: &str) -> Result<StoragePolicy> {
        let path = self.existing(id)?;
        Ok(ledger::read_manifest(&*self.storage, &path)?.policy)
    }

    /// Records that asset `id` was used now (played, looked at), for least-recently-used ordering in purge.
    ///
    /// The time is kept in a small file of the bundle beside its manifest (`.access.json`, written
    /// atomically), not in the manifest: marking needs no lock, so an asset played while it downloads is
    /// marked too.
    pub fn mark_accessed(&self, id: &str) -> Result<()> {
        let path = self.existing(id)?;
        let now = SystemTime::now();
        access::update(&*self.storage, &path, |r| r.accessed = Some(now))
    }

    /// Records that a player holds asset `id` until `until` (a lease, renewed while it plays): purge,
    /// admission and expiry leave it alone until then. A server marks what it serves this way.
    pub fn mark_playing(&self, id: &str, until: SystemTime) -> Result<()> {
        let path = self.existing(id)?;
        access::update(&*self.storage, &path, |r| r.playing_until = Some(until))
    }

    /// When asset `id` was last used: opened for writing, or marked as accessed, whichever is later.
    pub fn last_accessed(&self, id: &str) -> Result<SystemTime> {
        let path = self.existing(id)?;
        let manifest = ledger::read_manifest(&*self.storage, &path)?;
        let record = access::read(&*self.storage, &path);
        Ok(record.accessed.map_or(manifest.accessed, |at| at.max(manifest.accessed)))
    }

    /// The store-wide policy (see [`StorePolicy`]); the default, which limits nothing, when the store has
    /// none.
    pub fn store_policy(&self) -> Result<StorePolicy> {
        let path = self.dir.join(STORE_POLICY_FILE);
        match self.storage.read_limited(&path, MAX_STORE_POLICY_LEN) {
            Ok(bytes) => StorePolicy::parse(&path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StorePolicy::default()),
            Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => Err(Error::InvalidStorePolicy {
                path,
                reason: format!("larger than {MAX_STORE_POLICY_LEN} bytes"),
            }),
            Err(e) => Err(Error::from_io(&path, e)),
        }
    }

    /// Sets the store-wide policy: `store-policy.json` at the store root, replaced atomically (the store
    /// folder is created when missing).
    pub fn set_store_policy(&self, policy: &StorePolicy) -> Result<()> {
        self.storage.create_dir_all(&self.dir).at(&self.dir)?;
        ledger::write_atomic(&*self.storage, &self.dir.join(STORE_POLICY_FILE), &policy.to_json())
    }

    /// Removes the store-wide policy: nothing is limited any more. A store without one is left as it is.
    pub fn clear_store_policy(&self) -> Result<()> {
        let path = self.dir.join(STORE_POLICY_FILE);
        match self.storage.remove_file(&path) {
            Ok(()) => self.storage.sync_dir(&self.dir).at(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::from_io(&path, e)),
        }
    }

    fn update_manifest(&self, id: &str, change: impl FnOnce(&mut crate::Manifest)) -> Result<()> {
        let path = self.existing(id)?;
        let lock_path = path.join(LOCK_FILE);
        let _lock = self
            .storage
            .try_lock(&lock_path)
            .at(&lock_path)?
            .ok_or_else(|| Error::Locked { path: path.clone() })?;
        let mut manifest = ledger::read_manifest(&*self.storage, &path)?;
        change(&mut manifest);
        ledger::write_atomic(&*self.storage, &path.join(MANIFEST_FILE), &manifest.to_json())
    }

    /// Removes the bundle of asset `id`, or the folder of a damaged one (as [`list`](Self::list) reports
    /// it). Fails with [`Error::Locked`] while a writer holds it.
    ///
    /// A removal is resumable: the folder is first renamed to a name marked for removal, then deleted. A
    /// removal cut short leaves only a marked folder, which the next [`list`](Self::list),
    /// [`purge`](Self::purge), `remove` or [`create_bundle`](Self::create_bundle) deletes.
    pub fn remove(&self, id: &str) -> Result<u64> {
        self.finish_removals()?;
        let path = match self.existing(id) {
            Ok(path) => path,
            Err(missing @ Error::NoSuchBundle { .. }) => {
                let path = self.bundle_path(id)?;
                match self.leftover(&path, id) {
                    Ok(Some(_)) => path,
                    _ => return Err(missing),
                }
            }
            Err(e) => return Err(e),
        };
        self.remove_path(&path)?.ok_or(Error::Locked { path })
    }

    /// Removes a bundle folder under its lock; `None` when a writer holds it.
    fn remove_path(&self, path: &Path) -> Result<Option<u64>> {
        let lock_path = path.join(LOCK_FILE);
        let lock = match self.storage.try_lock(&lock_path) {
            Ok(Some(lock)) => Some(lock),
            Ok(None) => return Ok(None),
            // A lock file that is a folder can be held by no writer: nothing stands in the way.
            Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => None,
            Err(e) => return Err(Error::from_io(&lock_path, e)),
        };
        let size = dir_size(&*self.storage, path)?;
        remove_bundle_dir(&*self.storage, path)?;
        drop(lock);
        Ok(Some(size))
    }

    /// The store's total size in bytes (all bundle folders, damaged ones included).
    pub fn used(&self) -> Result<u64> {
        let listing = self.list()?;
        Ok(listing.bundles.iter().map(|b| b.size).chain(listing.damaged.iter().map(|d| d.size)).sum())
    }

    /// Removes bundles until the target is met: expired ones first, then default-priority ones by least
    /// recent access, then (only with [`PurgeOptions::include_important`]) important ones by least recent
    /// access. A bundle a writer holds is never removed.
    pub fn purge(&self, options: PurgeOptions) -> Result<PurgeReport> {
        let now = options.now.unwrap_or_else(SystemTime::now);
        let listing = self.list()?;
        let mut used: u64 = listing.bundles.iter().map(|b| b.size).sum::<u64>()
            + listing.damaged.iter().map(|d| d.size).sum::<u64>();
        let mut available = match options.free_space {
            Some(_) => self.available_space()?,
            None => None,
        };
        let met = |used: u64, available: Option<u64>| {
            options.quota.is_none_or(|q| used <= q)
                && options.free_space.is_none_or(|want| available.is_some_and(|a| a >= want))
        };
        let mut candidates: Vec<(BundleSummary, PurgeReason)> = Vec::new();
        let mut rest: Vec<&BundleSummary> = Vec::new();
        for b in &listing.bundles {
            if b.policy.is_expired(now) {
                candidates.push((b.clone(), PurgeReason::Expired));
            } else {
                rest.push(b);
            }
        }
        candidates.sort_by_key(|(b, _)| b.accessed);
        rest.sort_by_key(|b| b.accessed);
        for b in rest.iter().filter(|b| b.policy.priority == Priority::Default) {
            candidates.push(((*b).clone(), PurgeReason::LeastRecentlyAccessed));
        }
        if options.include_important {
            for b in rest.iter().filter(|b| b.policy.priority == Priority::Important) {
                candidates.push(((*b).clone(), PurgeReason::ImportantAllowed));
            }
        }
        let mut report = PurgeReport::default();
        // What is left of creations that did not finish holds no asset: it goes first, whatever the target.
        for d in listing.damaged.iter().filter(|d| matches!(d.error, Error::Leftover { .. })) {
            if let Some(size) = self.remove_path(&d.path)? {
                used = used.saturating_sub(size);
                available = available.map(|a| a.saturating_add(size));
                report.freed += size;
                report.leftovers.push((d.path.clone(), size));
            }
        }
        for (b, reason) in candidates {
            let needed = !met(used, available);
            let expired_anyway = reason == PurgeReason::Expired && !options.keep_expired_within_target;
            if !needed && !expired_anyway {
                break;
            }
            if b.in_use {
                report.skipped_in_use.push(b.path.clone());
                continue;
            }
            // The lease is read again just before the removal: a player may have started since the
            // listing.
            if access::read(&*self.storage, &b.path).playing_until.is_some_and(|t| t > SystemTime::now()) {
                report.skipped_playing.push(b.path.clone());
                continue;
            }
            match self.remove_path(&b.path)? {
                Some(size) => {
                    used = used.saturating_sub(size);
                    available = available.map(|a| a.saturating_add(size));
                    report.freed += size;
                    report.removed.push(Removed { asset: b.asset, path: b.path, size, reason });
                }
                None => report.skipped_in_use.push(b.path),
            }
        }
        if options.free_space.is_some() && !report.removed.is_empty() {
            // Measure again rather than trust the arithmetic: the filesystem frees blocks, not bytes.
            available = self.available_space()?;
        }
        report.target_met = met(used, available);
        Ok(report)
    }

    /// Removes every expired bundle that no writer and no player holds (and what is left of creations that
    /// did not finish), as sessions and servers do when they start.
    pub fn remove_expired(&self) -> Result<PurgeReport> {
        self.purge(PurgeOptions::default())
    }

    /// Makes room for a download expected to add `needed` bytes, as the store's policy
    /// ([`store_policy`](Self::store_policy)) says: when the store would go over its quota, or the disk
    /// under its free-space floor, expired bundles are removed first; then, when the policy allows purging
    /// to admit, default-priority bundles by least recent use, but only if that is enough (nothing is
    /// removed for a download that would be refused anyway). Bundles a writer or a player holds, and
    /// important ones, are never removed.
    ///
    /// Returns what was removed; fails with [`Error::QuotaExceeded`] or [`Error::FreeSpaceFloor`] when the
    /// download does not fit. A store without a quota or a floor admits everything and removes nothing.
    pub fn admit(&self, needed: u64) -> Result<PurgeReport> {
        let policy = self.store_policy()?;
        let mut report = PurgeReport { target_met: true, ..PurgeReport::default() };
        if policy.quota.is_none() && policy.free_space_floor.is_none() {
            return Ok(report);
        }
        let mut shortfall = self.shortfall(&policy, needed)?;
        if shortfall.fits() {
            return Ok(report);
        }
        merge(&mut report, self.remove_expired()?);
        shortfall = self.shortfall(&policy, needed)?;
        if shortfall.fits() {
            return Ok(report);
        }
        if policy.purge_to_admit
            && shortfall.quota <= shortfall.purgeable
            && shortfall.space <= shortfall.purgeable
        {
            let options = PurgeOptions {
                quota: policy.quota.map(|q| q.saturating_sub(needed)),
                free_space: policy.free_space_floor.map(|f| f.saturating_add(needed)),
                ..PurgeOptions::default()
            };
            merge(&mut report, self.purge(options)?);
            shortfall = self.shortfall(&policy, needed)?;
            if shortfall.fits() {
                return Ok(report);
            }
        }
        let purgeable = if policy.purge_to_admit { shortfall.purgeable } else { 0 };
        let store = self.dir.clone();
        match (policy.quota, policy.free_space_floor) {
            (Some(quota), _) if shortfall.quota > 0 => {
                Err(Error::QuotaExceeded { store, quota, used: shortfall.used, needed, purgeable })
            }
            (_, Some(floor)) => Err(Error::FreeSpaceFloor {
                store,
                floor,
                available: shortfall.available.unwrap_or(0),
                needed,
                purgeable,
            }),
            // Unreachable by construction (a shortfall needs a limit), but answered rather than assumed.
            (Some(quota), None) => {
                Err(Error::QuotaExceeded { store, quota, used: shortfall.used, needed, purgeable })
            }
            (None, None) => Ok(report),
        }
    }

    /// How far a download of `needed` bytes is from fitting `policy` now.
    fn shortfall(&self, policy: &StorePolicy, needed: u64) -> Result<Shortfall> {
        let (used, purgeable) = self.used_and_purgeable()?;
        let available = match policy.free_space_floor {
            Some(_) => self.available_space()?,
            None => None,
        };
        let quota = policy.quota.map_or(0, |q| used.saturating_add(needed).saturating_sub(q));
        // A volume that cannot tell its free space is not held to the floor.
        let space = match (policy.free_space_floor, available) {
            (Some(floor), Some(a)) => floor.saturating_add(needed).saturating_sub(a),
            _ => 0,
        };
        Ok(Shortfall { used, available, purgeable, quota, space })
    }

    /// The bytes the store holds (damaged bundles included), and those a purge could free now: expired
    /// and default-priority bundles neither being written nor played.
    fn used_and_purgeable(&self) -> Result<(u64, u64)> {
        let listing = self.list()?;
        let now = SystemTime::now();
        let used = listing.bundles.iter().map(|b| b.size).chain(listing.damaged.iter().map(|d| d.size)).sum();
        let purgeable = listing
            .bundles
            .iter()
            .filter(|b| {
                !b.in_use
                    && !b.is_playing(now)
                    && (b.policy.is_expired(now) || b.policy.priority == Priority::Default)
            })
            .map(|b| b.size)
            .sum();
        Ok((used, purgeable))
    }

    fn available_space(&self) -> Result<Option<u64>> {
        // The store folder may not exist yet: ask about the nearest existing ancestor.
        let mut probe: &Path = &self.dir;
        loop {
            match self.storage.available_space(probe) {
                Ok(space) => return Ok(space),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => match probe.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => probe = parent,
                    _ => return Ok(None),
                },
                Err(e) => return Err(Error::from_io(probe, e)),
            }
        }
    }

    /// Whether a download of `estimated` bytes fits under `quota` (and in the space available on the
    /// volume), counting what purge could free (expired and default-priority bundles not in use).
    pub fn check_admission(&self, estimated: u64, quota: Option<u64>) -> Result<Admission> {
        let (used, reclaimable) = self.used_and_purgeable()?;
        let available = self.available_space()?;
        // Shortfall against each limit: bytes that must be freed for the download to fit.
        let quota_short = quota.map(|q| (used + estimated).saturating_sub(q));
        let space_short = available.map(|a| estimated.saturating_sub(a));
        let short = quota_short.unwrap_or(0).max(space_short.unwrap_or(0));
        if short == 0 {
            return Ok(Admission::Fits);
        }
        if short <= reclaimable {
            return Ok(Admission::FitsAfterPurge { reclaim: short });
        }
        let limit = match (quota, available) {
            (Some(q), Some(a)) => q.min(used + a),
            (Some(q), None) => q,
            (None, Some(a)) => used + a,
            (None, None) => u64::MAX,
        };
        Ok(Admission::Refused { used, estimated, limit })
    }
}

/// Where the store stands against its policy for one download.
struct Shortfall {
    used: u64,
    available: Option<u64>,
    /// Bytes purge could free (expired or default priority, held by no writer and no player).
    purgeable: u64,
    /// Bytes over the quota the download would take the store.
    quota: u64,
    /// Bytes under the free-space floor the download would take the disk.
    space: u64,
}

impl Shortfall {
    fn fits(&self) -> bool {
        self.quota == 0 && self.space == 0
    }
}

/// Adds what a later purge did to a report.
fn merge(report: &mut PurgeReport, more: PurgeReport) {
    report.removed.extend(more.removed);
    report.leftovers.extend(more.leftovers);
    report.skipped_in_use.extend(more.skipped_in_use);
    report.skipped_playing.extend(more.skipped_playing);
    report.freed += more.freed;
    report.target_met = more.target_met;
}

/// The prefix of a folder being removed: a removal renames the bundle folder to this prefix and the asset
/// identifier (a name no asset can have) before deleting it, so that a removal cut short leaves a folder
/// that is plainly not a bundle and that the next pass deletes.
pub(crate) const REMOVING_PREFIX: &str = ".removing-";

/// Removes a bundle folder so that a crash at any point leaves either the whole bundle or a folder marked
/// for removal: renamed first (the rename made durable), then deleted.
pub(crate) fn remove_bundle_dir(storage: &dyn Storage, path: &Path) -> Result<()> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut marked = std::ffi::OsString::from(REMOVING_PREFIX);
    marked.push(path.file_name().unwrap_or_default());
    let marked = parent.join(marked);
    // An earlier removal of a bundle of the same name that was cut short is finished first.
    remove_marked(storage, &marked)?;
    storage.rename(path, &marked).at(path)?;
    storage.sync_dir(parent).at(parent)?;
    remove_marked(storage, &marked)
}

/// Deletes a folder marked for removal; one already gone (another process finished it) is fine.
fn remove_marked(storage: &dyn Storage, marked: &Path) -> Result<()> {
    match storage.remove_dir_all(marked) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::from_io(marked, e)),
    }
}

/// Bytes of every file under `dir`, not following links.
pub(crate) fn dir_size(storage: &dyn Storage, dir: &Path) -> Result<u64> {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in storage.list_dir(&d).at(&d)? {
            if entry.is_dir {
                stack.push(d.join(&entry.name));
            } else {
                total += entry.len;
            }
        }
    }
    Ok(total)
}
