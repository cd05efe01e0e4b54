//! The options of a bundle writer: how segments are made durable.

use std::time::Duration;

/// How [`SegmentWriter::finish`] makes a segment durable.
///
/// Both modes keep the promise that matters: a segment's bytes are synced before its final name and its
/// journal record exist, so no record can ever point at partial data, and a crash of the process loses
/// nothing. They differ in what a power loss (or a kernel crash) may cost: with [`Full`](Self::Full),
/// nothing that `finish` returned; with [`Batched`](Self::Batched) (the default), the last few segments,
/// which are then fetched again.
///
/// [`SegmentWriter::finish`]: crate::SegmentWriter::finish
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Every segment: sync the file, rename it into place, sync the folder, append the journal record, sync
    /// the journal. When `finish` returns, the segment survives a power loss. Three syncs per segment
    /// (the folder and journal syncs are shared between writers finishing at the same time).
    Full,
    /// Every segment: sync the file, rename it into place, append the journal record. The folders and the
    /// journal are synced by a background thread once for many segments (group commit), so a segment
    /// usually costs one sync, like a plain write.
    ///
    /// Two bounds limit what a power loss may cost: at most `max_unsynced` finished segments are ever not
    /// yet durable (a background sync starts when half that many are waiting, and `finish` waits only if
    /// the bound would be passed), and none stays so for longer than
    /// [`BundleOptions::max_sync_delay`] (plus the time of the sync). Everything is also synced at every
    /// state boundary: when a rendition completes, when the manifest is written ([`Bundle::save`],
    /// [`Bundle::write_playlists`], [`Bundle::mark_finished`], policy changes, added renditions), by
    /// [`Bundle::sync`], and when the last handle is dropped.
    ///
    /// Never less safe against corruption: a segment's bytes are durable before its name and its record
    /// exist, and a record whose file did not survive a power loss is found when the bundle is opened
    /// (that segment counts as not finished).
    ///
    /// Built with [`Durability::batched`] (or the default); more bounds may be added as fields.
    ///
    /// [`Bundle::mark_finished`]: crate::Bundle::mark_finished
    /// [`Bundle::save`]: crate::Bundle::save
    /// [`Bundle::sync`]: crate::Bundle::sync
    /// [`Bundle::write_playlists`]: crate::Bundle::write_playlists
    #[non_exhaustive]
    Batched {
        /// Finished segments that may be not yet durable at any moment; 0 syncs every segment before
        /// `finish` returns (in the background thread, after the record is appended).
        max_unsynced: u32,
    },
}

impl Durability {
    /// The default bound of [`Durability::Batched`]: 32 segments.
    pub const DEFAULT_MAX_UNSYNCED: u32 = 32;

    /// [`Durability::Batched`] with at most `max_unsynced` segments not yet durable.
    pub const fn batched(max_unsynced: u32) -> Self {
        Self::Batched { max_unsynced }
    }
}

impl Default for Durability {
    /// [`Durability::Batched`] with [`Durability::DEFAULT_MAX_UNSYNCED`].
    fn default() -> Self {
        Self::batched(Self::DEFAULT_MAX_UNSYNCED)
    }
}

/// Options of a bundle writer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BundleOptions {
    /// How segments are made durable. Default: [`Durability::Batched`] with
    /// [`Durability::DEFAULT_MAX_UNSYNCED`].
    pub durability: Durability,
    /// With [`Durability::Batched`], the longest a finished segment waits for the background sync that
    /// makes it durable. Default: one second.
    pub max_sync_delay: Duration,
}

impl Default for BundleOptions {
    fn default() -> Self {
        Self { durability: Durability::default(), max_sync_delay: Self::DEFAULT_MAX_SYNC_DELAY }
    }
}

impl BundleOptions {
    /// The default of [`BundleOptions::max_sync_delay`]: one second.
    pub const DEFAULT_MAX_SYNC_DELAY: Duration = Duration::from_secs(1);

    /// Sets the durability.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets the longest a finished segment waits for its background sync ([`Durability::Batched`]).
    #[must_use]
    pub fn max_sync_delay(mut self, delay: Duration) -> Self {
        self.max_sync_delay = delay;
        self
    }
}
