//! Preparing a task: its playlists read, its renditions chosen, its bundle created or opened, its jobs
//! planned.

use std::sync::{Arc, Mutex};

use stowage_bundle::{Bundle, RenditionId, RenditionKind};
use stowage_fetch::keys::KeyLoader;
use stowage_playlist::{MasterPlaylist, ParserOptions, PlaylistKind, detect};

use super::auth::{Auth, apply_auth};
use super::bundle_io::{blocking, record_source_gaps};
use super::errors::{classify, fetch_error};
use super::lifecycle::Source;
use super::playlists::{build_all, fetch_text};
use super::refresh::call_refresh_hook;
use crate::Error;
use crate::config::{DownloadConfiguration, IntegrityPolicy, KeyPolicy, Priority};
use crate::engine::Failure;
use crate::events::TaskEvent;
use crate::planning::{
    Job, Wanted, bundle_key_policy, merge_inits, rebind_to_master, task_key_policy, wanted_from_manifest,
    wanted_from_selection,
};
use crate::runtime::refresh_hook::RefreshRequest;
use crate::runtime::shared::{SessionInner, lock};
use crate::runtime::task::TaskShared;
use crate::selection::resolve;

/// What preparing a task gives: the bundle, the renditions and their jobs.
pub(super) struct Prepared {
    /// The configuration of a new task; `None` for a restored one.
    pub(super) config: Option<DownloadConfiguration>,
    pub(super) bundle: Bundle,
    pub(super) wanted: Vec<Wanted>,
    pub(super) jobs: Vec<Job>,
    pub(super) integrity: IntegrityPolicy,
    pub(super) key_policy: KeyPolicy,
    pub(super) master: bool,
}

pub(super) async fn prepare(
    session: &Arc<SessionInner>,
    task: &Arc<TaskShared>,
    source: &Source,
    auth: &Arc<Mutex<Auth>>,
    loader: &Arc<KeyLoader>,
) -> Result<Prepared, Error> {
    let url = lock(&task.url).clone();
    let path = task.bundle_path.clone();
    let store = session.store.clone();
    let asset = task.asset.clone();
    let existing = blocking(&path, move || match store.open_bundle(&asset) {
        Ok(b) => Ok(Some(b)),
        Err(stowage_bundle::Error::NoSuchBundle { .. }) => Ok(None),
        Err(e) => Err(e),
    })
    .await?;
    let (text, final_url) = match fetch_text(session, auth, &url).await {
        // The playlist URL itself may have expired (a restore days later): ask the refresh hook once.
        Err(Error::Fetch { status: Some(status @ (401 | 403 | 410)), .. })
            if session.config.refresh.is_some() =>
        {
            let hook = session.config.refresh.clone().expect("checked");
            let request = RefreshRequest {
                asset: task.asset.clone(),
                url: url.clone(),
                refused_uri: url.clone(),
                status,
            };
            let refreshed = call_refresh_hook(hook, request, session.config.refresh_timeout)
                .await?
                .ok_or_else(|| Error::Fetch {
                    uri: url.clone(),
                    status: Some(status),
                    message: format!(
                        "the playlist URL was refused with HTTP {status} and no fresh one was given"
                    ),
                })?;
            apply_auth(auth, &refreshed)?;
            let fresh = refreshed.url.unwrap_or_else(|| url.clone());
            *lock(&task.url) = fresh.clone();
            fetch_text(session, auth, &fresh).await?
        }
        other => other?,
    };
    let master = match detect(text.as_bytes()) {
        Some(PlaylistKind::Master) => true,
        Some(PlaylistKind::Media) => false,
        _ => {
            return Err(Error::Playlist {
                uri: final_url,
                message: "neither a master nor a media playlist".to_owned(),
            });
        }
    };
    let manifest = existing.as_ref().map(Bundle::manifest);
    let parsed = if master {
        let parsed = MasterPlaylist::parse_with(&text, &ParserOptions::lenient())
            .map_err(|e| Error::Playlist { uri: final_url.clone(), message: e.to_string() })?;
        Some(parsed.playlist)
    } else {
        None
    };
    let mut wanted = match &manifest {
        Some(m) => wanted_from_manifest(m, &final_url, master)?,
        None => Vec::new(),
    };
    // The master playlist read now may sign its URIs anew: the renditions of the bundle are found in it
    // by identity, not by the URIs written when the bundle was made.
    if let Some(master) = &parsed {
        rebind_to_master(&mut wanted, master, &final_url)?;
    }
    let (key_policy, integrity, storage, title) = match (source, &manifest) {
        // A bundle keeps the key policy it was made with: mixing clear and encrypted segments in one
        // rendition would make its local playlist wrong.
        (Source::New(config), Some(m)) => {
            (task_key_policy(m.key_policy), config.integrity, None, config.title.clone())
        }
        (Source::New(config), None) => {
            (config.keys, config.integrity, Some(config.storage), config.title.clone())
        }
        (Source::Restore, Some(m)) => (
            task_key_policy(m.key_policy),
            match m.integrity {
                stowage_bundle::IntegrityPolicy::Tolerant => IntegrityPolicy::Tolerant,
                _ => IntegrityPolicy::Strict,
            },
            None,
            None,
        ),
        (Source::Restore, None) => {
            return Err(Error::Bundle { path, message: "the bundle to restore is gone".to_owned() });
        }
    };
    if let Source::New(config) = source {
        if let Some(master) = &parsed {
            let selection = resolve(config, master)?;
            task.emit(session, TaskEvent::MediaSelectionResolved(selection.clone()));
            let mut taken: Vec<RenditionId> = wanted.iter().map(|w| w.id.clone()).collect();
            for w in wanted_from_selection(&selection, &final_url, &mut taken)? {
                if !wanted.iter().any(|have| have.master_uri == w.master_uri) {
                    wanted.push(w);
                }
            }
        } else if wanted.is_empty() {
            wanted.push(Wanted {
                id: RenditionId::new("media").expect("a valid name"),
                kind: RenditionKind::Video,
                primary: true,
                url: final_url.clone(),
                master_uri: None,
                name: None,
                language: None,
                group_id: None,
                characteristics: None,
                bandwidth: None,
                estimate: None,
                codecs: None,
                resolution: None,
            });
        }
    }
    let built = build_all(session, auth, &wanted, 0, key_policy).await?;

    let known = manifest.as_ref().map(|m| m.renditions.len()).unwrap_or(0);
    let bundle = match existing {
        Some(bundle) => {
            let added: Vec<_> = built[known..].iter().map(|b| b.plan.clone()).collect();
            if !added.is_empty() {
                let b = bundle.clone();
                blocking(&path, move || b.add_renditions(added)).await?;
            }
            bundle
        }
        None => {
            let mut info = stowage_bundle::AssetInfo::new(task.asset.clone()).url(url.clone());
            if let Some(title) = title {
                info = info.title(title);
            }
            let mut plan = stowage_bundle::BundlePlan::new(info)
                .key_policy(bundle_key_policy(key_policy))
                .integrity(match integrity {
                    IntegrityPolicy::Tolerant => stowage_bundle::IntegrityPolicy::Tolerant,
                    _ => stowage_bundle::IntegrityPolicy::Strict,
                });
            if let Some(storage) = storage {
                let mut policy = stowage_bundle::StoragePolicy::default();
                if let Some(at) = storage.expires {
                    policy = policy.expires(at);
                }
                if storage.priority == Priority::Important {
                    policy = policy.priority(stowage_bundle::Priority::Important);
                }
                plan = plan.policy(policy);
            }
            if master {
                plan = plan.master_playlist(text.clone());
            }
            for b in &built {
                plan = plan.rendition(b.plan.clone());
            }
            let store = session.store.clone();
            blocking(&path, move || store.create_bundle(plan)).await?
        }
    };
    task.emit(session, TaskEvent::WillDownloadTo { path: bundle.dir().to_path_buf() });

    if key_policy == KeyPolicy::KeepEncrypted {
        // Every key is stored before any segment: they are loaded side by side (one request each, since
        // the loader shares a key among the renditions that use it), within the per-host limit.
        let slots = Arc::new(tokio::sync::Semaphore::new(session.config.max_connections_per_host.max(1)));
        let mut set = tokio::task::JoinSet::new();
        for b in &built {
            for (index, uri) in &b.keys {
                let (session, loader, slots) = (Arc::clone(session), Arc::clone(loader), Arc::clone(&slots));
                let (bundle, path, id, index, uri) =
                    (bundle.clone(), path.clone(), b.plan.id.clone(), *index, uri.clone());
                set.spawn(async move {
                    let key = {
                        let _slot = slots.acquire().await;
                        load_kept_key(&session, &loader, &uri).await?
                    };
                    blocking(&path, move || bundle.write_key(&id, index, &key)).await
                });
            }
        }
        while let Some(stored) = set.join_next().await {
            stored.map_err(|e| Error::Bundle {
                path: path.clone(),
                message: format!("key task failed: {e}"),
            })??;
        }
    }
    let jobs = merge_inits(built.into_iter().flat_map(|b| b.jobs).collect());
    record_source_gaps(&path, &bundle, &jobs).await?;
    let config = match source {
        Source::New(config) => Some((**config).clone()),
        Source::Restore => None,
    };
    Ok(Prepared { config, bundle, wanted, jobs, integrity, key_policy, master })
}

/// Loads a key to keep in the bundle. CDNs lose keys now and then (404): such a key is asked for again
/// under the task's retry policy before the task fails.
async fn load_kept_key(session: &SessionInner, loader: &KeyLoader, uri: &str) -> Result<[u8; 16], Error> {
    let retry = &session.config.retry;
    let mut failures = 0;
    loop {
        match loader.load(uri).await {
            Ok(key) => return Ok(key),
            Err(e) => {
                failures += 1;
                let lost =
                    matches!(classify(&e, true), Failure::Retryable { .. } | Failure::Throttled { .. });
                if !lost || failures >= retry.max_attempts {
                    return Err(fetch_error(uri, &e));
                }
                tokio::time::sleep(retry.backoff_ceiling(failures)).await;
            }
        }
    }
}
