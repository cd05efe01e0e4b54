//! Taking up a recording that was interrupted (the process killed, the machine down): its renditions are
//! those of its bundle, its limits those the bundle kept, and it goes on from the live playlist read now.
//!
//! What the bundle planned and did not store is fetched (if the origin still has it); what it stored is
//! never fetched again. Every segment still listed after the last one recorded is taken, and the segments
//! that left the live playlist while no recorder ran are recorded as a hole.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use stowage_bundle::{Bundle, Manifest};

use super::auth::Auth;
use super::bundle_io::blocking;
use super::playlists::fetch_text;
use crate::Error;
use crate::config::{KeyPolicy, RecordingConfiguration};
use crate::planning::{Batch, Job, LiveTrack, Wanted, common_end, pending_jobs};
use crate::runtime::shared::SessionInner;
use crate::runtime::task::TaskShared;

/// Why the segments missing between an interrupted recording and its resumption are missing.
pub(super) const NOT_RUNNING: &str = "they left the live playlist while the recorder was not running";

/// An interrupted recording taken up: each rendition's recording and pending jobs, and the batch its
/// live playlist read now brings.
pub(super) struct Resumed {
    pub(super) live: Vec<Option<LiveTrack>>,
    pub(super) jobs: Vec<Job>,
    /// Per rendition (by index), the new segments listed now, with the URL they were listed at.
    pub(super) batches: Vec<(usize, Batch, String)>,
    pub(super) recording: RecordingConfiguration,
}

/// Whether the bundle is a recording that was interrupted: it has renditions and did not end.
pub(super) fn interrupted(manifest: &Manifest) -> bool {
    manifest.recording.as_ref().is_some_and(|r| r.ended.is_none()) && !manifest.renditions.is_empty()
}

/// The limits the bundle kept, as the recording was configured.
fn limits(manifest: &Manifest) -> RecordingConfiguration {
    let mut config = RecordingConfiguration::new();
    let Some(recording) = &manifest.recording else { return config };
    if let Some(d) = recording.duration_limit.and_then(|d| Duration::try_from_secs_f64(d).ok()) {
        config = config.duration(d);
    }
    if let Some(at) = recording.until {
        config = config.until(at);
    }
    if let Some(d) = recording.max_outage.and_then(|d| Duration::try_from_secs_f64(d).ok()) {
        config = config.max_outage(d);
    }
    config.fail_on_expiry(recording.fail_on_expiry)
}

/// Takes up the interrupted recording of `bundle`, whose renditions are `wanted` (in its manifest's
/// order): reads each rendition's recorded playlist and its live playlist now.
pub(super) async fn resume_recording(
    session: &Arc<SessionInner>,
    task: &Arc<TaskShared>,
    auth: &Arc<Mutex<Auth>>,
    bundle: &Bundle,
    manifest: &Manifest,
    wanted: &[Wanted],
    key_policy: KeyPolicy,
) -> Result<Resumed, Error> {
    let recording = limits(manifest);
    let limit = recording.duration.map(|d| d.as_secs_f64());
    let gaps: std::collections::HashSet<&stowage_bundle::SegmentId> =
        manifest.gaps.iter().map(|g| &g.segment).collect();
    let mut resumed = Resumed { live: Vec::new(), jobs: Vec::new(), batches: Vec::new(), recording };
    for (index, w) in wanted.iter().enumerate() {
        let Some(r) = manifest.rendition(&w.id) else {
            return Err(Error::InvalidConfig {
                reason: "a resumed recording has only its bundle's renditions",
            });
        };
        let url = r.plan.url.clone();
        let recorded = {
            let (b, id) = (bundle.clone(), w.id.clone());
            blocking(&task.bundle_path, move || b.source_playlist(&id)).await?
        };
        // Entries recorded as gaps (holes, segments that expired) are settled too: never fetched again.
        let finished = |id: &stowage_bundle::SegmentId| bundle.is_finished(id) || gaps.contains(id);
        resumed.jobs.extend(pending_jobs(w, index, &recorded, &url, &r.plan.segments, key_policy, finished)?);
        let (text, final_url) = fetch_text(session, task, auth, &w.url).await?;
        resumed.live.push(Some(LiveTrack::resume(&recorded, &r.plan.segments, &text, &final_url, limit)?));
    }
    // What each rendition lists now is recorded up to the end every one listed, as at each reload: audio
    // and video taken up together cover the same span.
    let end = common_end(resumed.live.iter().flatten());
    for (index, track) in resumed.live.iter_mut().enumerate() {
        if let Some((batch, url)) = track.as_mut().and_then(|t| t.release(end)) {
            resumed.batches.push((index, batch, url));
        }
    }
    Ok(resumed)
}
