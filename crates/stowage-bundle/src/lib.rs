//! The offline bundle of stowage: an HLS asset stored on disk so that any player can play it.
//!
//! A bundle is a folder per asset (format in `docs/bundle-format.md`): a `manifest.json` describing the
//! asset, its renditions and its storage policy; an append-only, checksummed `journal.log` of finished
//! segments; a local `master.m3u8`; and one folder per rendition with its `index.m3u8`, initialization
//! sections and segments, named from segment identities (never from remote URIs).
//!
//! What it does:
//! - [`Bundle`]: create a bundle from a [`BundlePlan`] or open one to resume; stream segments in with
//!   [`SegmentWriter`] (temporary file, length check, checksum, sync, rename, journal record: a record
//!   never points at partial data, and one whose file did not survive is found on opening); record gaps;
//!   report progress and loaded time ranges; write local playlists, at state boundaries and, while a
//!   download runs, as they grow ([`Bundle::write_growing_playlists`], paced by [`GrowthThrottle`]);
//!   [`verify`](Bundle::verify) and repair;
//!   add renditions later. One writer at a time, through a lock file. [`Durability`] chooses what a power
//!   loss may cost: by default one sync per segment, the folder and journal syncs being done in the
//!   background for many segments at once (a power loss may cost the last few segments again, at most 32
//!   and at most a second's worth, never corruption); or three syncs per segment, after which a finished
//!   segment survives a power loss. A crash of the process loses nothing in either mode.
//! - [`RenditionPlan::from_playlist`]: the plan of a rendition made from its source media playlist, with the
//!   identities the local playlists are written against.
//! - [`StorageManager`]: a store of bundles with listing, per-asset expiry and priority, `purge` to a quota
//!   or a free-space target, a store-wide [`StorePolicy`] (quota, free-space floor, default expiry,
//!   purge to admit) with [`admit`](StorageManager::admit) to check a download against it, and access
//!   times and play leases kept beside each manifest, so that least recently used means used.
//! - [`AssetCache`]: read-only queries for players: playable offline, media selections available offline,
//!   loaded time ranges, the artwork kept with the asset; and reading what is stored (segments, local
//!   playlists, kept keys) for tools that turn a bundle into something else, such as an exporter.
//! - [`BundleReader`] (from [`StorageManager::reader`]): read-only access to the files a player is handed,
//!   for servers and exporters: a path resolves only to a file the manifest and local playlists name (never
//!   the manifest, journal, lock or source playlists, no `..`), opened without following symbolic links,
//!   read at any offset; and the bundle's [`BundleStatus`] as a listing shows it.
//! - [`Manifest::parse`] and [`parse_journal`]: a bundle's manifest and journal read from bytes, for tools
//!   that inspect bundles from outside (and for the fuzz targets).
//!
//! What it does not do: fetch anything (that is `stowage-fetch`), decide what to fetch (`stowage-task`), or
//! decrypt. It is the only stowage crate that touches the disk, and it does so only through the small
//! [`Storage`] trait ([`LocalFs`] by default), so that an object-storage backend can be added, and tests can
//! inject failures such as a full disk. All IO is blocking; async callers use a blocking thread.
//!
//! Layers: `stowage-task` joins this crate and `stowage-fetch`; this crate depends on no other stowage
//! crate.
//!
//! # Quick start
//!
//! Describing an asset and its segments needs no disk; file names come from the identities:
//!
//! ```
//! use stowage_bundle::{
//!     AssetInfo, BundlePlan, MediaFormat, PlannedSegment, RenditionId, RenditionKind, RenditionPlan,
//! };
//!
//! let video = RenditionId::new("video-720p")?;
//! let playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\na.ts\n#EXTINF:4,\nb.ts\n#EXT-X-ENDLIST\n";
//! let segments = vec![
//!     PlannedSegment::media(0, 0, 6.0, "https://example.com/a.ts"),
//!     PlannedSegment::media(0, 1, 4.0, "https://example.com/b.ts"),
//! ];
//! let rendition = RenditionPlan::new(
//!     video.clone(), RenditionKind::Video, MediaFormat::Ts, "https://example.com/v.m3u8", playlist, segments,
//! )
//! .primary(true);
//! let plan = BundlePlan::new(AssetInfo::new("my-asset").title("My asset")).rendition(rendition);
//!
//! let second = plan.renditions[0].segments[1].id(&video);
//! assert_eq!(second.file_name("ts"), "seg-d0-s1.ts");
//! assert_eq!(plan.renditions[0].duration(), 10.0);
//! # Ok::<(), stowage_bundle::Error>(())
//! ```
//!
//! Writing it:
//!
//! ```
//! # use stowage_bundle::*;
//! # let video = RenditionId::new("video-720p")?;
//! # let playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\na.ts\n#EXTINF:4,\nb.ts\n#EXT-X-ENDLIST\n";
//! # let segments = vec![
//! #     PlannedSegment::media(0, 0, 6.0, "https://example.com/a.ts"),
//! #     PlannedSegment::media(0, 1, 4.0, "https://example.com/b.ts"),
//! # ];
//! # let rendition = RenditionPlan::new(
//! #     video, RenditionKind::Video, MediaFormat::Ts, "https://example.com/v.m3u8", playlist, segments,
//! # )
//! # .primary(true);
//! # let plan = BundlePlan::new(AssetInfo::new("my-asset").title("My asset")).rendition(rendition);
//! # let downloads = tempfile::tempdir()?;
//! # let downloads = downloads.path();
//! let store = StorageManager::new(downloads);
//! let bundle = store.create_bundle(plan)?; // or store.open_bundle("my-asset")? to resume
//! for id in bundle.pending_segments() {
//!     let mut writer = bundle.segment_writer(&id)?;
//!     for chunk in [&b"the segment's bytes"[..], b", as they arrive"] {
//!         writer.write(chunk)?;
//!     }
//!     writer.finish()?; // durable and journaled
//! }
//! bundle.mark_finished()?;
//! assert!(AssetCache::open(bundle.dir())?.is_playable_offline());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// A public crate: every public type may grow (`#[non_exhaustive]`) unless it is closed by definition, which
// its `#[allow]` says.
#![warn(clippy::exhaustive_enums, clippy::exhaustive_structs)]

mod access;
mod artwork;
mod batch;
mod bundle;
mod cache;
mod entries;
mod error;
mod growing;
mod id;
mod journal;
mod ledger;
mod local;
mod manifest;
mod poison;
mod policy;
mod progress;
mod ranges;
mod reader;
mod storage;
mod store;
mod stored;
mod time;

pub use artwork::{Artwork, ArtworkFile, MAX_ARTWORK_LEN, sniff_image};
pub use bundle::{
    Bundle, BundleOptions, Durability, FinishedSegment, OpenReport, RecordedSegment, SegmentWriter,
    VerifyReport,
};
pub use cache::{AssetCache, MediaSelectionOption};
pub use error::{Error, Result};
pub use growing::GrowthThrottle;
pub use id::{ByteRange, MAX_RENDITION_ID_LEN, RenditionId, SegmentId, SegmentKind};
pub use journal::{JOURNAL_HEADER, JournalContents, JournalRecord, MAX_RECORD_LEN, parse_journal};
pub use ledger::SegmentProblem;
pub use manifest::{
    AssetInfo, BundlePlan, ContentRequest, DownloadRequest, FORMAT_NAME, FORMAT_VERSION, Gap, Hole,
    IntegrityPolicy, KeyPolicy, MAX_MANIFEST_LEN, Manifest, ManifestChanges, ManifestRendition, MediaFormat,
    PlannedSegment, Priority, Recording, RenditionKind, RenditionPlan, RenditionState, StoragePolicy,
    TimeRange,
};
pub use policy::{STORE_POLICY_FILE, STORE_POLICY_FORMAT, STORE_POLICY_VERSION, StorePolicy};
pub use progress::{Progress, RenditionProgress};
pub use ranges::TimeRanges;
pub use reader::{BundleFile, BundleFileKind, BundleReader, BundleStatus, OpenFile};
pub use storage::{DirEntry, LocalFs, Storage, StorageFile, StorageLock, StorageReadAt};
pub use store::{
    Admission, BundleSummary, DamagedBundle, PurgeOptions, PurgeReason, PurgeReport, Removed, StorageManager,
    StoreListing,
};
pub use stored::StoredReader;
