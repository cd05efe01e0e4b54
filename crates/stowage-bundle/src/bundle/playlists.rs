//! What the bundle says about itself: the manifest and the local playlists, written at state boundaries
//! (after what they describe is durable), and renditions added to a bundle.

use super::{Bundle, State, lock_state};
use crate::entries::Ledger;
use crate::error::{Error, IoContext, Result};
use crate::id::{SegmentId, SegmentKind};
use crate::journal::JournalRecord;
use crate::ledger::{self, KEYS_DIR, MANIFEST_FILE, MASTER_FILE, SOURCE_DIR};
use crate::local::{EntryState, Listing};
use crate::manifest::{
    BundlePlan, ManifestChanges, ManifestRendition, RenditionPlan, RenditionState, StoragePolicy,
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
        check.renditions = (0..state.ledgers.len()).map(|ri| state.full_plan(ri)).collect();
        check.renditions.extend(renditions.iter().cloned());
        check.validate()?;
        let storage = &*self.inner.storage;
        let source = self.inner.dir.join(SOURCE_DIR);
        for r in &renditions {
            let rdir = self.inner.dir.join(r.id.as_str());
            storage.create_dir_all(&rdir).at(&rdir)?;
            ledger::write_atomic(storage, &source.join(format!("{}.m3u8", r.id)), r.playlist.as_bytes())?;
        }
        let recording = state.manifest.recording.is_some();
        for mut r in renditions {
            // A recorded rendition's source playlist grows: the manifest says how much of it the plan covers.
            let source_len = recording.then_some(r.playlist.len() as u64);
            r.playlist = String::new();
            state.ledgers.push(Ledger::new(std::mem::take(&mut r.segments)));
            state.manifest.renditions.push(ManifestRendition {
                plan: r,
                state: RenditionState::default(),
                source_len,
            });
        }
        self.save_manifest(&mut state)?;
        state.growing_tails.clear();
        self.write_whole_playlists(&state, Listing::AtRest)?;
        Ok(())
    }

    /// Starts a rendition again from a new plan, for a source media playlist that changed since the bundle
    /// was made (a re-encoded asset, a playlist regenerated with other segments): what is stored of the
    /// old one cannot be mixed with the new one. Every stored entry of the rendition is withdrawn from the
    /// journal and its file removed, its kept keys and its gaps go, and its plan, source playlist and local
    /// playlist are replaced; every entry of the new plan is pending and the bundle is no longer finished.
    /// The other renditions are untouched.
    ///
    /// A crash at any point leaves a consistent bundle: the withdrawals are durable before anything is
    /// removed, and the source playlist is replaced before the plan, so that a bundle still planned from
    /// the old playlist is found changed again when it is next compared with the source.
    ///
    /// Fails with [`Error::UnknownRendition`] when the bundle has no rendition `plan.id`, and with
    /// [`Error::InvalidPlan`] when the new plan is not usable.
    pub fn reset_rendition(&self, plan: RenditionPlan) -> Result<()> {
        // What is durable is what the withdrawals below follow.
        self.inner.flush()?;
        let storage = &*self.inner.storage;
        let mut state = lock_state(&self.inner.state);
        let ri = state
            .manifest
            .renditions
            .iter()
            .position(|r| r.plan.id == plan.id)
            .ok_or_else(|| Error::UnknownRendition { rendition: plan.id.to_string() })?;
        let mut check = BundlePlan::new(state.manifest.asset.clone());
        check.renditions = (0..state.ledgers.len()).map(|ri| state.full_plan(ri)).collect();
        check.renditions[ri] = plan.clone();
        check.validate()?;

        let old = state.full_plan(ri);
        let gaps: Vec<SegmentId> = state
            .manifest
            .gaps
            .iter()
            .filter(|g| g.segment.rendition == old.id)
            .map(|g| g.segment.clone())
            .collect();
        let recorded: Vec<SegmentId> =
            old.segment_ids().filter(|id| state.is_finished(id) || gaps.contains(id)).collect();
        for (i, id) in recorded.iter().enumerate() {
            // One sync for them all, with the last.
            let last = i + 1 == recorded.len();
            self.append_record(&mut state, &JournalRecord::Drop { id: id.clone() }, last)?;
            state.remove_finished(id);
        }
        state.manifest.gaps.retain(|g| g.segment.rendition != old.id);
        state.damaged.retain(|id, _| id.rendition != old.id);
        for id in old.segment_ids() {
            let path = ledger::segment_path(&self.inner.dir, &old, &id);
            match storage.remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::from_io(&path, e)),
            }
        }
        let keys = self.inner.dir.join(old.id.as_str()).join(KEYS_DIR);
        match storage.remove_dir_all(&keys) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::from_io(&keys, e)),
        }
        let source = self.inner.dir.join(SOURCE_DIR).join(format!("{}.m3u8", plan.id));
        ledger::write_atomic(storage, &source, plan.playlist.as_bytes())?;
        let source_len = state.manifest.recording.is_some().then_some(plan.playlist.len() as u64);
        let mut plan = plan;
        plan.playlist = String::new();
        state.ledgers[ri] = Ledger::new(std::mem::take(&mut plan.segments));
        state.manifest.renditions[ri] =
            ManifestRendition { plan, state: RenditionState::default(), source_len };
        self.save_manifest(&mut state)?;
        state.growing_tails.clear();
        self.write_whole_playlists(&state, Listing::AtRest)?;
        Ok(())
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
        state.refresh();
        write_manifest(
            &*self.inner.storage,
            &self.inner.dir.join(MANIFEST_FILE),
            &state.manifest,
            &state.ledgers,
        )
    }

    /// Writes every local playlist whole, from the plan entries and what is stored; returns where growing
    /// recorded playlists stand (see [`crate::local::write_all`]).
    pub(super) fn write_whole_playlists(
        &self,
        state: &State,
        listing: Listing,
    ) -> Result<Vec<Option<crate::local::GrowingTail>>> {
        // As the manifest was last written: whether the bundle is finished is what it said then.
        let manifest = state.with_entries();
        let stored = |id: &SegmentId| state.is_finished(id);
        crate::local::write_all(&*self.inner.storage, &self.inner.dir, &manifest, &stored, listing)
    }

    /// Writes the local playlists (`master.m3u8` and each rendition's `index.m3u8`) for what is stored
    /// now, and the manifest. Can be called at any time during a download so that players see progress.
    ///
    /// A finished recording's playlists are what its growing playlists become once every entry is settled:
    /// those written so far are appended to, not written whole, so that ending a long recording does not
    /// hold its whole playlist in memory.
    pub fn write_playlists(&self) -> Result<()> {
        let mut state = lock_state(&self.inner.state);
        self.save_manifest(&mut state)?;
        if state.manifest.recording.is_some() && state.manifest.finished {
            let listed = growing_listing(&mut state);
            if self.append_growing_playlists(&mut state, &listed, true)? {
                state.growing_listed = listed;
                return Ok(());
            }
        }
        // What a growing playlist would go on from is replaced.
        state.growing_tails.clear();
        self.write_whole_playlists(&state, Listing::AtRest)?;
        Ok(())
    }

    /// Writes the local playlists of a bundle being downloaded as they have grown, when they have: each
    /// rendition's `index.m3u8` lists the longest prefix of entries that are stored (or recorded as gaps),
    /// as an EVENT playlist without `EXT-X-ENDLIST` that starts at the beginning (`EXT-X-START`), so that a
    /// player started on it plays on to the end while the download appends segments. Each file is
    /// replaced atomically (a reader sees the old one or the new one), after what it lists is durable.
    /// A finished bundle gets its final playlists.
    ///
    /// Returns whether anything was written: nothing is when every rendition lists what it listed at the
    /// last call. A caller writes on growth, at the pace [`GrowthThrottle`](crate::GrowthThrottle) sets,
    /// not once per segment: each call rewrites whole playlists. A recording's are appended to instead
    /// once written: the playlist is copied up to its last listed segment and only the recorded source
    /// lines after it are read and parsed, so that memory and parsing do not grow with the recording
    /// (the bytes copied still do).
    pub fn write_growing_playlists(&self) -> Result<bool> {
        // What is listed must be durable first, journal included.
        self.inner.flush()?;
        let mut state = lock_state(&self.inner.state);
        if state.manifest.recording.is_some() && state.growing_tails.is_empty() {
            self.growing_tails_on_disk(&mut state)?;
        }
        let listed = growing_listing(&mut state);
        if listed == state.growing_listed && !state.manifest.finished {
            return Ok(false);
        }
        if !self.append_growing_playlists(&mut state, &listed, false)? {
            state.growing_tails = self.write_whole_playlists(&state, Listing::Growing)?;
        }
        state.growing_listed = listed;
        Ok(true)
    }

    /// Writes the growing local playlists of a recording by appending to each what it lists since its
    /// last write (see [`crate::local::append_growing`]), and whole those that cannot be appended to.
    /// Returns `false`, having written nothing, when every playlist is to be written whole: the first
    /// write, or any write but a recording's (growing, or `finished` and so settled).
    fn append_growing_playlists(&self, state: &mut State, listed: &[usize], finished: bool) -> Result<bool> {
        if state.manifest.recording.is_some() && state.growing_tails.is_empty() {
            self.growing_tails_on_disk(state)?;
        }
        if state.manifest.recording.is_none()
            || state.manifest.finished != finished
            || state.growing_tails.len() != state.manifest.renditions.len()
            || state.growing_listed.len() != state.manifest.renditions.len()
            || state.growing_tails.iter().all(Option::is_none)
        {
            return Ok(false);
        }
        let storage = &*self.inner.storage;
        let dir = &self.inner.dir;
        let mut tails = std::mem::take(&mut state.growing_tails);
        let result = (|| {
            let state = &*state;
            let gaps: std::collections::HashSet<&SegmentId> =
                state.manifest.gaps.iter().map(|g| &g.segment).collect();
            let entry = |id: &SegmentId| {
                if state.is_finished(id) {
                    EntryState::Stored
                } else if gaps.contains(id) {
                    EntryState::Gap
                } else {
                    EntryState::Pending
                }
            };
            let imports = crate::local::read_imports(storage, dir, &state.manifest)?;
            for (ri, (r, tail)) in state.manifest.renditions.iter().zip(tails.iter_mut()).enumerate() {
                // A playlist that lists what it listed at the last write is as that write left it.
                let listed = listed[ri];
                if state.growing_listed[ri] == listed && !finished {
                    continue;
                }
                let entries = &state.ledgers[ri].entries;
                let appended = match tail.as_ref() {
                    Some(t) => {
                        crate::local::append_growing(storage, dir, r, entries, &imports, t, listed, &entry)?
                    }
                    None => None,
                };
                *tail = match appended {
                    Some(appended) => Some(appended),
                    None => {
                        let whole = ManifestRendition { plan: state.full_plan(ri), ..r.clone() };
                        let listing = if finished { Listing::Final } else { Listing::Growing };
                        crate::local::write_media(
                            storage,
                            dir,
                            &state.manifest,
                            &whole,
                            &imports,
                            listing,
                            &entry,
                        )?
                    }
                };
            }
            Ok(())
        })();
        state.growing_tails = tails;
        result.map(|()| true)
    }

    /// Takes up the growing playlists a writer before left on disk (a recording opened again), so that
    /// its first write appends to them rather than building them whole (see
    /// [`crate::local::tail_on_disk`]); those that cannot be taken up are written whole. Nothing is taken
    /// up when opening found damage (its entries would be listed otherwise now) or the recording keeps its
    /// encryption (written whole always).
    fn growing_tails_on_disk(&self, state: &mut State) -> Result<()> {
        let report = &self.inner.report;
        if !report.damaged_segments.is_empty()
            || !report.unaccounted_segments.is_empty()
            || state.manifest.key_policy != crate::manifest::KeyPolicy::Decrypt
        {
            return Ok(());
        }
        let storage = &*self.inner.storage;
        let imports = crate::local::read_imports(storage, &self.inner.dir, &state.manifest)?;
        let gaps: std::collections::HashSet<&SegmentId> =
            state.manifest.gaps.iter().map(|g| &g.segment).collect();
        let mut tails = Vec::with_capacity(state.ledgers.len());
        for (r, ledger) in state.manifest.renditions.iter().zip(&state.ledgers) {
            let settled =
                |si: usize| ledger.stored.contains(si) || gaps.contains(&ledger.entries.id(&r.plan.id, si));
            // Walks the entries along with the media entries asked for, which come in order.
            let (mut si, mut next, mut init) = (0, 0, Some(true));
            let mut playable = |k: usize| {
                while si < ledger.entries.len() {
                    let at = si;
                    si += 1;
                    match ledger.entries.kind(at) {
                        SegmentKind::Init => init = settled(at).then(|| ledger.stored.contains(at)),
                        SegmentKind::Media => {
                            next += 1;
                            if next - 1 == k {
                                let stored = ledger.stored.contains(at);
                                return init.filter(|_| settled(at)).map(|init| init && stored);
                            }
                        }
                    }
                }
                None
            };
            tails.push(crate::local::tail_on_disk(
                storage,
                &self.inner.dir,
                r,
                &ledger.entries,
                &imports,
                &mut playable,
            )?);
        }
        state.growing_listed = tails.iter().map(|t| t.as_ref().map_or(usize::MAX, |t| t.listed())).collect();
        state.growing_tails = tails;
        Ok(())
    }

    /// Ends the download: checks that every planned segment is finished or recorded as a gap, then writes
    /// the final local playlists (with `EXT-X-ENDLIST`) and the manifest.
    ///
    /// Fails with [`Error::Incomplete`] when segments are still pending.
    pub fn mark_finished(&self) -> Result<()> {
        let missing = self.pending_segments().len();
        if missing > 0 {
            return Err(Error::Incomplete { path: self.inner.dir.clone(), missing });
        }
        self.write_playlists()
    }
}

/// How many media entries each rendition's growing playlist lists now.
fn growing_listing(state: &mut State) -> Vec<usize> {
    let State { manifest, ledgers, .. } = state;
    let gaps: std::collections::HashSet<&SegmentId> = manifest.gaps.iter().map(|g| &g.segment).collect();
    ledgers.iter_mut().zip(&manifest.renditions).map(|(l, r)| l.growing_prefix(&r.plan.id, &gaps)).collect()
}

/// Writes the manifest of an open bundle atomically, `manifest` (without plan entries) with each
/// rendition's entries streamed from its ledger rather than gathered into one document first: the manifest
/// of a long recording is megabytes.
pub(super) fn write_manifest(
    storage: &dyn crate::storage::Storage,
    path: &std::path::Path,
    manifest: &crate::manifest::Manifest,
    ledgers: &[Ledger],
) -> Result<()> {
    // The manifest without entries has one empty `segments` array per rendition, in order; a name cannot
    // hold the key as written here, since the quotes in a JSON string are escaped.
    let head = manifest.to_json();
    let marker: &[u8] = b"\"segments\": []";
    let mut parts = Vec::with_capacity(ledgers.len() + 1);
    let mut rest = &head[..];
    while let Some(at) = rest.windows(marker.len()).position(|w| w == marker) {
        parts.push(&rest[..at]);
        rest = &rest[at + marker.len()..];
    }
    parts.push(rest);
    if parts.len() != ledgers.len() + 1 {
        let mut whole = manifest.clone();
        for (r, ledger) in whole.renditions.iter_mut().zip(ledgers) {
            r.plan.segments = ledger.entries.iter().collect();
        }
        return ledger::write_atomic(storage, path, &whole.to_json());
    }
    ledger::write_atomic_with(storage, path, &mut |file| {
        let mut buf = Vec::with_capacity(64 * 1024);
        for (ri, part) in parts.iter().enumerate() {
            buf.extend_from_slice(part);
            let Some(ledger) = ledgers.get(ri) else { break };
            let indent = part.iter().rev().take_while(|&&b| b == b' ').count();
            buf.extend_from_slice(b"\"segments\": [");
            for si in 0..ledger.entries.len() {
                buf.extend_from_slice(if si == 0 { b"\n" } else { b",\n" });
                buf.resize(buf.len() + indent + 2, b' ');
                // Serializing a plan entry cannot fail: plain fields, durations checked finite.
                serde_json::to_writer(&mut buf, &ledger.entries.get(si)).map_err(std::io::Error::other)?;
                if buf.len() >= 60 * 1024 {
                    file.write_all(&buf)?;
                    buf.clear();
                }
            }
            if ledger.entries.len() > 0 {
                buf.push(b'\n');
                buf.resize(buf.len() + indent, b' ');
            }
            buf.push(b']');
        }
        file.write_all(&buf)
    })
}
