//! What the bundle says about itself: the manifest and the local playlists, written at state boundaries
//! (after what they describe is durable), and renditions added to a bundle.

use super::{Bundle, State, lock_state};
use crate::error::{Error, IoContext, Result};
use crate::ledger::{self, MANIFEST_FILE, MASTER_FILE, SOURCE_DIR};
use crate::manifest::{
    BundlePlan, Manifest, ManifestChanges, ManifestRendition, RenditionPlan, RenditionState, StoragePolicy,
};

impl Bundle {
    /// Adds renditions to the bundle (Apple's "complete or augment": more audio languages or subtitles for
    /// an asset already downloaded or being downloaded). Their segments become pending, the bundle is no
    /// longer finished, and the local playlists are rewritten (the master lists the new renditions when
    /// they carry a `master_uri` found in the source master playlist).
    ///
    /// Fails with [`Error::InvalidPlan`] when a rendition identifier is already in the bundle.
    pub fn add_renditions(&self, renditions: Vec<RenditionPlan>) -> Result<()> {
        let mut state = lock_state(&self.inner.state);
        let mut check = BundlePlan::new(state.manifest.asset.clone());
        check.renditions = state.manifest.renditions.iter().map(|r| r.plan.clone()).collect();
        check.renditions.extend(renditions.iter().cloned());
        check.validate()?;
        let storage = &*self.inner.storage;
        let source = self.inner.dir.join(SOURCE_DIR);
        for r in &renditions {
            let rdir = self.inner.dir.join(r.id.as_str());
            storage.create_dir_all(&rdir).at(&rdir)?;
            ledger::write_atomic(storage, &source.join(format!("{}.m3u8", r.id)), r.playlist.as_bytes())?;
        }
        for mut r in renditions {
            r.playlist = String::new();
            state.manifest.renditions.push(ManifestRendition { plan: r, state: RenditionState::default() });
        }
        state.index = ledger::index_plan(&state.manifest);
        state.rebuild_summaries();
        self.save_manifest(&mut state)?;
        crate::local::write_all(storage, &self.inner.dir, &state.manifest, &state.finished)
    }

    /// Stores the source master playlist of a bundle created before its playlists were read (see
    /// [`BundlePlan::new`]), with the URL it was read from (after redirects). The local master playlist
    /// is written from it from now on.
    ///
    /// Fails with [`Error::InvalidPlan`] when the bundle has one already.
    pub fn set_master_playlist(&self, text: String, url: String) -> Result<()> {
        let mut state = lock_state(&self.inner.state);
        if state.manifest.has_master_playlist {
            return Err(Error::InvalidPlan {
                reason: "the bundle has a source master playlist already".into(),
            });
        }
        let source = self.inner.dir.join(SOURCE_DIR);
        let storage = &*self.inner.storage;
        storage.create_dir_all(&source).at(&source)?;
        ledger::write_atomic(storage, &source.join(MASTER_FILE), text.as_bytes())?;
        state.manifest.has_master_playlist = true;
        state.manifest.master_url = Some(url);
        self.save_manifest(&mut state)
    }

    /// Changes the bundle's record of its download (URL, title, policies, request, cancelled), in one
    /// write of the manifest.
    pub fn update(&self, changes: ManifestChanges) -> Result<()> {
        let mut state = lock_state(&self.inner.state);
        changes.apply(&mut state.manifest);
        self.save_manifest(&mut state)
    }

    /// Changes the storage policy (expiry and priority).
    pub fn set_policy(&self, policy: StoragePolicy) -> Result<()> {
        let mut state = lock_state(&self.inner.state);
        state.manifest.policy = policy;
        self.save_manifest(&mut state)
    }

    /// Writes the manifest with up-to-date state fields.
    pub fn save(&self) -> Result<()> {
        let mut state = lock_state(&self.inner.state);
        self.save_manifest(&mut state)
    }

    pub(super) fn save_manifest(&self, state: &mut State) -> Result<()> {
        // A state boundary: what the manifest is about to say must be durable first.
        self.inner.flush()?;
        let State { manifest, finished, .. } = state;
        ledger::refresh_manifest(manifest, finished);
        ledger::write_atomic(&*self.inner.storage, &self.inner.dir.join(MANIFEST_FILE), &manifest.to_json())
    }

    /// Writes the local playlists (`master.m3u8` and each rendition's `index.m3u8`) for what is stored
    /// now, and the manifest. Can be called at any time during a download so that players see progress.
    pub fn write_playlists(&self) -> Result<()> {
        let mut state = lock_state(&self.inner.state);
        self.save_manifest(&mut state)?;
        crate::local::write_all(&*self.inner.storage, &self.inner.dir, &state.manifest, &state.finished)
    }

    /// Ends the download: checks that every planned segment is finished or recorded as a gap, then writes
    /// the final local playlists (with `EXT-X-ENDLIST`) and the manifest.
    ///
    /// Fails with [`Error::Incomplete`] when segments are still pending.
    pub fn mark_finished(&self) -> Result<Manifest> {
        let missing = self.pending_segments().len();
        if missing > 0 {
            return Err(Error::Incomplete { path: self.inner.dir.clone(), missing });
        }
        self.write_playlists()?;
        Ok(self.manifest())
    }
}
