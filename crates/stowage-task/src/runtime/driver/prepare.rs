//! Preparing a task: its playlists read, its renditions chosen, its bundle created or opened, its jobs
//! planned.

use std::path::Path;
use std::sync::{Arc, Mutex};

use stowage_bundle::{Bundle, Manifest, Recording};
use stowage_fetch::keys::KeyLoader;
use stowage_playlist::{PlaylistKind, detect};

use super::auth::Auth;
use super::bundle_io::{blocking, record_source_gaps};
use super::errors::bundle_error;
use super::kept_keys::store_kept_keys;
use super::lifecycle::Source;
use super::playlists::{Master, build_all, fetch_text, parse_master, tell_tolerated};
use super::refresh::refresh_playlist_url;
use super::resume::{interrupted, resume_recording};
use crate::Error;
use crate::config::{DownloadConfiguration, IntegrityPolicy, KeyPolicy, LiveStart, RecordingConfiguration};
use crate::error::ChangedRendition;
use crate::events::TaskEvent;
use crate::planning::{
    Batch, Built, Job, LiveTrack, Wanted, add_selected, bundle_plan, configuration_of, merge_inits,
    playlist_changes, rebind_to_master, task_policies, wanted_for_media_playlist, wanted_from_manifest,
};
use crate::runtime::shared::{SessionInner, lock};
use crate::runtime::task::TaskShared;
use crate::selection::resolve;

/// What preparing a task gives: the bundle, the renditions and their jobs.
pub(super) struct Prepared {
    pub(super) bundle: Bundle,
    pub(super) wanted: Vec<Wanted>,
    pub(super) jobs: Vec<Job>,
    pub(super) integrity: IntegrityPolicy,
    pub(super) key_policy: KeyPolicy,
    pub(super) master: bool,
    /// For a recording: each rendition's recording (in the order of `wanted`), and its limits.
    pub(super) live: Vec<Option<LiveTrack>>,
    pub(super) recording: RecordingConfiguration,
    /// How far the download may grow before the store's policy is checked again.
    pub(super) admitted: Admitted,
    /// For an interrupted recording taken up: the segments its live playlists list now after the last
    /// ones recorded (and the holes before them), per rendition, with the URL they were listed at.
    pub(super) resumed: Option<Vec<(usize, Batch, String)>>,
}

/// How far a download may grow before the store's policy is checked again: a download stored beyond
/// what it was admitted for (its size could not be told, or was underestimated, or it is a recording) is
/// checked again each time it grows by `step` bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Admitted {
    /// The bundle's stored bytes up to which the download was admitted.
    pub(super) until: u64,
    /// How much more it may store between two checks beyond that; `None` when the store limits nothing.
    pub(super) step: Option<u64>,
}

impl Admitted {
    /// The step for limits of `limit` bytes (the quota, or the free-space floor, the smaller when both are
    /// set): a 64th of it, between 64 KiB and 64 MiB, so that a download goes past a limit by little and a
    /// large store is not listed too often.
    pub(super) fn step_for(limit: u64) -> u64 {
        (limit / 64).clamp(64 * 1024, 64 * 1024 * 1024)
    }
}

/// Prepares a task: reads its playlist, chooses its renditions (those of the bundle it continues, and
/// those its configuration selects), reads their media playlists, creates or extends the bundle, stores
/// the keys it keeps, and plans the jobs.
///
/// The bundle normally exists: a task records its download in the store when it is made, before any
/// playlist is read. A restored task takes the configuration its bundle recorded.
pub(super) async fn prepare(
    session: &Arc<SessionInner>,
    task: &Arc<TaskShared>,
    source: &Source,
    auth: &Arc<Mutex<Auth>>,
    loader: &Arc<KeyLoader>,
) -> Result<Prepared, Error> {
    let url = lock(&task.url).clone();
    let path = task.bundle_path.clone();
    let existing = open_existing_bundle(session, task).await?;
    let (text, final_url) = fetch_first_playlist(session, task, auth, &url).await?;
    let master = is_master(&text, &final_url)?;
    let manifest = existing.as_ref().map(Bundle::manifest);
    let config = match (source, &manifest) {
        (Source::New(config), _) => Some((**config).clone()),
        (Source::Restore, Some(manifest)) => configuration_of(manifest)?,
        (Source::Restore, None) => None,
    };
    let parsed = if master { Some(parse_master(&text, &final_url)?) } else { None };
    if let Some(parsed) = &parsed {
        tell_tolerated(session, task, &final_url, &parsed.tolerated);
    }
    let mut wanted = renditions_of_bundle(manifest.as_ref(), parsed.as_ref(), &final_url, master)?;
    let Some(policies) = task_policies(config.as_ref(), manifest.as_ref()) else {
        let gone = stowage_bundle::Error::NoSuchBundle {
            id: task.asset.clone(),
            store: session.store.dir().to_path_buf(),
        };
        return Err(bundle_error(&path, gone));
    };
    if let (Source::Restore, Some(bundle), Some(manifest)) = (source, &existing, &manifest)
        && interrupted(manifest)
    {
        task.emit(session, TaskEvent::WillDownloadTo { path: bundle.dir().to_path_buf() });
        let admitted = admit(session, task, bundle, &path).await?;
        let resumed =
            resume_recording(session, task, auth, bundle, manifest, &wanted, policies.key_policy).await?;
        // Segments marked EXT-X-GAP whose gaps a crash kept from being recorded are recorded now.
        record_source_gaps(&path, bundle, &resumed.jobs).await?;
        return Ok(Prepared {
            bundle: bundle.clone(),
            wanted,
            jobs: merge_inits(resumed.jobs),
            integrity: policies.integrity,
            key_policy: policies.key_policy,
            master,
            live: resumed.live,
            recording: resumed.recording,
            admitted,
            resumed: Some(resumed.batches),
        });
    }
    if let Some(config) = &config {
        add_configured_renditions(session, task, config, parsed.as_ref(), &final_url, &mut wanted)?;
    }
    let recording_config = config.as_ref().map(|c| c.recording.clone()).unwrap_or_default();
    let mut built =
        build_all(session, task, auth, &wanted, 0, policies.key_policy, &recording_config).await?;
    let recording = built.iter().any(|b| b.live.is_some());
    // An interrupted recording is resumed above; a live stream is not recorded into a download's bundle.
    if recording && manifest.as_ref().is_some_and(|m| !m.renditions.is_empty()) {
        return Err(Error::InvalidConfig {
            reason: "a live stream is recorded into a new bundle: this asset's bundle has renditions already",
        });
    }
    let live: Vec<Option<LiveTrack>> = built.iter_mut().map(|b| b.live.take()).collect();
    let bundle = match (existing, &manifest) {
        (Some(bundle), Some(manifest)) => {
            if recording {
                let (b, limits) = (bundle.clone(), recording_of(&recording_config));
                blocking(&path, move || b.start_recording(limits)).await?;
            }
            if master && !manifest.has_master_playlist {
                // A bundle recorded before its playlists were read keeps the master playlist now.
                let (b, text, final_url) = (bundle.clone(), text.clone(), final_url.clone());
                blocking(&path, move || b.set_master_playlist(text, final_url)).await?;
            }
            let known = manifest.renditions.len();
            restart_changed(session, &path, &bundle, Some(manifest), &built[..known]).await?;
            add_new_renditions(&path, bundle, &built[known..]).await?
        }
        // The bundle recorded when the task was made is gone (removed meanwhile): it is made again.
        _ => {
            let master_playlist = master.then_some((text.as_str(), final_url.as_str()));
            let mut plan =
                bundle_plan(&task.asset, &url, &policies, config.as_ref(), master_playlist, &built);
            if recording {
                plan = plan.recording(recording_of(&recording_config));
            }
            let store = session.store.clone();
            blocking(&path, move || store.create_bundle(plan)).await?
        }
    };
    task.emit(session, TaskEvent::WillDownloadTo { path: bundle.dir().to_path_buf() });
    let admitted = admit(session, task, &bundle, &path).await?;
    if policies.key_policy == KeyPolicy::KeepEncrypted {
        // Every key is stored before any segment.
        store_kept_keys(session, task, loader, &bundle, &built, &path).await?;
    }
    let jobs = merge_inits(built.into_iter().flat_map(|b| b.jobs).collect());
    record_source_gaps(&path, &bundle, &jobs).await?;
    Ok(Prepared {
        bundle,
        wanted,
        jobs,
        integrity: policies.integrity,
        key_policy: policies.key_policy,
        master,
        live,
        recording: recording_config,
        admitted,
        resumed: None,
    })
}

/// Checks the download against the store's policy before any segment is fetched (removing what the
/// policy lets go to make room), and tells what was removed.
async fn admit(
    session: &SessionInner,
    task: &TaskShared,
    bundle: &Bundle,
    path: &Path,
) -> Result<Admitted, Error> {
    let stored = bundle.progress().bytes_done;
    let needed = expected_bytes(&bundle.manifest()).saturating_sub(stored);
    let store = session.store.clone();
    let (policy, report) = blocking(path, move || Ok((store.store_policy()?, store.admit(needed)?))).await?;
    if !report.removed.is_empty() {
        task.emit(session, TaskEvent::AssetsRemoved { removed: report.removed });
    }
    let limit = match (policy.quota, policy.free_space_floor) {
        (Some(q), Some(f)) => Some(q.min(f)),
        (q, f) => q.or(f),
    };
    Ok(Admitted { until: stored.saturating_add(needed), step: limit.map(Admitted::step_for) })
}

/// The bytes a bundle's plan is expected to take: each planned entry's expected length when the playlist
/// gave it (a byte range), else its duration at its rendition's declared bandwidth. Entries of unknown
/// size (no range, no bandwidth: an audio rendition, say) count as nothing, so a download whose size
/// cannot be told is admitted on what the store holds when it starts. A recording's plan holds only what
/// its playlist listed when it started.
fn expected_bytes(manifest: &Manifest) -> u64 {
    let mut total: u64 = 0;
    for rendition in &manifest.renditions {
        let rate = rendition.plan.bandwidth.map(|bits| bits as f64 / 8.0);
        for segment in &rendition.plan.segments {
            // The float-to-int cast saturates, so an absurd bandwidth stays a number.
            let guess =
                rate.map_or(0, |bytes_per_second| (bytes_per_second * segment.duration).round() as u64);
            total = total.saturating_add(segment.expected_length.unwrap_or(guess));
        }
    }
    total
}

/// What the bundle of a recording keeps of its limits.
fn recording_of(config: &RecordingConfiguration) -> Recording {
    let mut recording = Recording::new();
    if let LiveStart::ProgramDateTime(at) = config.start {
        recording = recording.start_at(at);
    }
    if let Some(d) = config.duration {
        recording = recording.duration_limit(d.as_secs_f64());
    }
    if let Some(at) = config.until {
        recording = recording.until(at);
    }
    if let Some(d) = config.max_outage {
        recording = recording.max_outage(d.as_secs_f64());
    }
    recording.fail_on_expiry(config.fail_on_expiry)
}

/// The bundle of the task's asset in the store, if there is one already.
async fn open_existing_bundle(session: &SessionInner, task: &TaskShared) -> Result<Option<Bundle>, Error> {
    let store = session.store.clone();
    let asset = task.asset.clone();
    blocking(&task.bundle_path, move || match store.open_bundle(&asset) {
        Ok(b) => Ok(Some(b)),
        Err(stowage_bundle::Error::NoSuchBundle { .. }) => Ok(None),
        Err(e) => Err(e),
    })
    .await
}

/// Fetches the task's playlist at `url`; returns its text and its final URL (after redirects).
///
/// The playlist URL itself may have expired (a restore days later): a refusal asks the refresh hook,
/// once, for a fresh one.
async fn fetch_first_playlist(
    session: &SessionInner,
    task: &Arc<TaskShared>,
    auth: &Mutex<Auth>,
    url: &str,
) -> Result<(String, String), Error> {
    let first = fetch_text(session, task, auth, url).await;
    let refused = match &first {
        Err(e @ Error::Fetch { .. }) if matches!(e.status(), Some(401 | 403 | 410)) => e.clone(),
        _ => return first,
    };
    let Some(hook) = session.config.refresh.clone() else { return first };
    let fresh = refresh_playlist_url(session, task, auth, hook, url, refused).await?;
    fetch_text(session, task, auth, &fresh).await
}

/// Whether the playlist is a master playlist (else a media playlist).
fn is_master(text: &str, uri: &str) -> Result<bool, Error> {
    match detect(text.as_bytes()) {
        Some(PlaylistKind::Master) => Ok(true),
        Some(PlaylistKind::Media) => Ok(false),
        _ => Err(Error::Playlist {
            uri: uri.to_owned(),
            message: "neither a master nor a media playlist".to_owned(),
            source: None,
        }),
    }
}

/// The renditions of the bundle the task continues (none for a new bundle), with their media playlist
/// URLs taken from the playlist at `url` read now.
fn renditions_of_bundle(
    manifest: Option<&Manifest>,
    master: Option<&Master<'_>>,
    url: &str,
    has_master: bool,
) -> Result<Vec<Wanted>, Error> {
    let mut wanted = match manifest {
        Some(m) => wanted_from_manifest(m, url, has_master)?,
        None => Vec::new(),
    };
    // The master playlist read now may sign its URIs anew: the renditions of the bundle are found in it
    // by identity, not by the URIs written when the bundle was made.
    if let Some(master) = master {
        rebind_to_master(&mut wanted, &master.playlist, url, &master.variables)?;
    }
    Ok(wanted)
}

/// Adds the renditions a new task's configuration selects: from the master playlist, when there is one
/// (and reports the selection), else the media playlist itself, unless the bundle has it already.
fn add_configured_renditions(
    session: &SessionInner,
    task: &TaskShared,
    config: &DownloadConfiguration,
    master: Option<&Master<'_>>,
    url: &str,
    wanted: &mut Vec<Wanted>,
) -> Result<(), Error> {
    if let Some(master) = master {
        let selection = resolve(config, &master.playlist)?;
        task.emit(session, TaskEvent::MediaSelectionResolved(selection.clone()));
        add_selected(wanted, &selection, url, &master.variables)?;
    } else if wanted.is_empty() {
        wanted.push(wanted_for_media_playlist(url));
    }
    Ok(())
}

/// Compares the renditions of the bundle the task continues with their media playlists read now
/// (`built`, in the manifest's order). A changed one fails the task, naming what changed, unless the
/// session starts such renditions again.
async fn restart_changed(
    session: &SessionInner,
    path: &Path,
    bundle: &Bundle,
    manifest: Option<&Manifest>,
    built: &[Built],
) -> Result<(), Error> {
    let Some(manifest) = manifest else { return Ok(()) };
    let changed: Vec<(&Built, Vec<String>)> = manifest
        .renditions
        .iter()
        .zip(built)
        .map(|(r, b)| (b, playlist_changes(&r.plan, &b.plan)))
        .filter(|(_, changes)| !changes.is_empty())
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    if !session.config.restart_changed_renditions {
        let renditions = changed
            .into_iter()
            .map(|(b, changes)| ChangedRendition::new(b.plan.id.to_string(), b.plan.url.clone(), changes))
            .collect();
        return Err(Error::PlaylistChanged { renditions });
    }
    let plans: Vec<_> = changed.into_iter().map(|(b, _)| b.plan.clone()).collect();
    let bundle = bundle.clone();
    blocking(path, move || plans.into_iter().try_for_each(|plan| bundle.reset_rendition(plan))).await
}

/// Adds to the bundle the task continues the renditions it does not have yet.
async fn add_new_renditions(path: &Path, bundle: Bundle, added: &[Built]) -> Result<Bundle, Error> {
    let added: Vec<_> = added.iter().map(|b| b.plan.clone()).collect();
    if !added.is_empty() {
        let b = bundle.clone();
        blocking(path, move || b.add_renditions(added)).await?;
    }
    Ok(bundle)
}
