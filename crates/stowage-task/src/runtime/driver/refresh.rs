//! Fresh URLs, headers and cookies: asking the caller's hook, and re-binding the task's jobs to its
//! answer.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stowage_bundle::SegmentId;
use stowage_playlist::{PlaylistKind, detect};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

use super::auth::{Auth, apply_auth};
use super::errors::panic_message;
use super::pipeline::{read, write};
use super::playlists::{build_all, fetch_text, parse_master};
use super::runner::Runner;
use crate::Error;
use crate::config::{LiveStart, RecordingConfiguration};
use crate::engine::{Failure, JobId, Outcome};
use crate::planning::{Crypto, rebind_to_master};
use crate::runtime::refresh_hook::{Refresh, RefreshHook, RefreshRequest};
use crate::runtime::shared::{SessionInner, lock};
use crate::runtime::task::{Control, Ending, TaskShared};

/// Asks the refresh hook, on a task of its own so that a panic in it is caught: a panicking hook fails the
/// task with [`Error::RefreshHookPanicked`] instead of leaving it hanging. A hook that does not answer
/// within `timeout` counts as having no fresh URLs; its task is aborted then, and also when the caller
/// stops waiting (the task was suspended or cancelled meanwhile).
pub(super) async fn call_refresh_hook(
    hook: Arc<dyn RefreshHook>,
    request: RefreshRequest,
    timeout: Duration,
) -> Result<Option<Refresh>, Error> {
    /// Aborts the hook's task when dropped, whether it answered, timed out or was abandoned.
    struct AbortOnDrop(AbortHandle);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let refused_uri = request.refused_uri.clone();
    let mut handle = tokio::spawn(async move { hook.refresh(&request).await });
    let _abort = AbortOnDrop(handle.abort_handle());
    let Ok(joined) = tokio::time::timeout(timeout, &mut handle).await else {
        return Ok(None);
    };
    match joined {
        Ok(answer) => Ok(answer),
        Err(e) if e.is_panic() => {
            Err(Error::RefreshHookPanicked { refused_uri, message: panic_message(e.into_panic()) })
        }
        // The runtime is shutting down: no fresh URLs.
        Err(_) => Ok(None),
    }
}

/// Asks the refresh hook for a fresh playlist URL after the task's own was refused with `status`, and
/// takes its answer (headers and cookies too). Returns the URL to fetch the playlist from now.
pub(super) async fn refresh_playlist_url(
    session: &SessionInner,
    task: &TaskShared,
    auth: &Mutex<Auth>,
    hook: Arc<dyn RefreshHook>,
    url: &str,
    refused: Error,
) -> Result<String, Error> {
    let status = refused.status().unwrap_or_default();
    let request = RefreshRequest {
        asset: task.asset.clone(),
        url: url.to_owned(),
        refused_uri: url.to_owned(),
        status,
    };
    // Without a fresh URL, the refusal is the task's error.
    let Some(refreshed) = call_refresh_hook(hook, request, session.config.refresh_timeout).await? else {
        return Err(refused);
    };
    apply_auth(auth, &refreshed)?;
    let fresh = refreshed.url.unwrap_or_else(|| url.to_owned());
    *lock(&task.url) = fresh.clone();
    Ok(fresh)
}

/// Holds [`FetchCtx::refreshing`](super::pipeline::FetchCtx::refreshing) up while fresh URLs are being obtained, and lowers it when dropped.
struct Refreshing(Arc<watch::Sender<bool>>);

impl Refreshing {
    fn raise(flag: &Arc<watch::Sender<bool>>) -> Self {
        flag.send_replace(true);
        Self(Arc::clone(flag))
    }
}

impl Drop for Refreshing {
    fn drop(&mut self) {
        self.0.send_replace(false);
    }
}

impl<'a> Runner<'a> {
    /// Obtains fresh URLs for the refusal of `job` (with `status`), while honouring the task's orders:
    /// the hook may take long, so a suspend, a cancel and the session's end are carried out while it
    /// runs (the refresh is then dropped unanswered); a resume or an augment waits for its answer, in
    /// `deferred`. `Some` when the task ends.
    pub(super) async fn refresh_while_listening(
        &mut self,
        job: JobId,
        status: u16,
        control: &mut mpsc::UnboundedReceiver<Control>,
        shutdown: &mut watch::Receiver<bool>,
        deferred: &mut VecDeque<Control>,
    ) -> Option<Ending> {
        let interrupted = {
            let mut refreshing = std::pin::pin!(self.refresh(job, status));
            loop {
                tokio::select! {
                    done = &mut refreshing => match done {
                        Ok(()) => break None,
                        Err(e) => break Some(Err(e)),
                    },
                    c = control.recv() => match c {
                        Some(Control::Resume | Control::Augment(..)) => deferred.extend(c),
                        other => break Some(Ok(other)),
                    },
                    _ = shutdown.changed() => break Some(Ok(None)),
                }
            }
        };
        match interrupted {
            None => None,
            Some(Err(e)) => Some(self.fail_with(e).await),
            Some(Ok(c)) => {
                // The refresh was dropped unanswered. Suspended, the task asks again when a refusal comes
                // after the resume; cancelled or closed, it ends.
                if matches!(c, Some(Control::Suspend)) {
                    self.engine.suspend();
                    self.engine.handle_refresh_abandoned(Instant::now());
                }
                self.on_control(c).await
            }
        }
    }

    /// Asks the caller's hook for fresh URLs, headers or cookies, and re-binds pending jobs by identity.
    ///
    /// Fetches wait while this runs, so that no request leaves with a URL about to be replaced. Only a
    /// panicking hook is an error: it ends the task. A hook past the session's `refresh_timeout` counts as
    /// no answer.
    pub(super) async fn refresh(&mut self, job: JobId, status: u16) -> Result<(), Error> {
        let Some(hook) = self.session.config.refresh.clone() else {
            self.engine.handle_refresh_failed(Instant::now());
            return Ok(());
        };
        let refused = lock(&self.ctx.refused).remove(&job).map(|(uri, _)| uri);
        let refused_uri = refused.unwrap_or_else(|| {
            read(&self.ctx.bound).jobs.get(job).map(|j| j.uri.clone()).unwrap_or_default()
        });
        let request = RefreshRequest {
            asset: self.task.asset.clone(),
            url: lock(&self.task.url).clone(),
            refused_uri,
            status,
        };
        // Fetches wait while this flag is up; the guard lowers it also when this future is dropped
        // (the task was suspended or cancelled while the hook ran).
        let refreshing = Refreshing::raise(&self.ctx.refreshing);
        let applied = match call_refresh_hook(hook, request, self.session.config.refresh_timeout).await? {
            Some(answer) => self.apply_refresh(answer).await.is_ok(),
            None => false,
        };
        drop(refreshing);
        if applied {
            self.engine.handle_refreshed(Instant::now());
        } else {
            self.engine.handle_refresh_failed(Instant::now());
        }
        Ok(())
    }

    /// Takes a refresh's answer: headers and cookies, and with a fresh playlist URL, the playlists read
    /// again and every job re-bound by identity to its fresh URI (and key URI). A fresh master playlist
    /// is resolved to the same renditions: variants by their attributes, renditions by type, group, name
    /// and language, so that URIs signed anew in the master are the ones used.
    async fn apply_refresh(&mut self, answer: Refresh) -> Result<(), Error> {
        apply_auth(&self.ctx.auth, &answer)?;
        let Some(url) = answer.url else {
            write(&self.ctx.bound).generation += 1;
            return Ok(());
        };
        let (text, final_url) = fetch_text(self.session, self.task, &self.ctx.auth, &url).await?;
        let master = detect(text.as_bytes()) == Some(PlaylistKind::Master);
        if master != self.master {
            return Err(Error::Playlist {
                uri: final_url,
                message: "the fresh playlist is not of the same kind as the first".to_owned(),
                source: None,
            });
        }
        let mut wanted = self.wanted.clone();
        if master {
            // The fresh master playlist's variables (its own QUERYPARAM values among them) are what the
            // fresh media playlists import.
            let parsed = parse_master(&text, &final_url)?;
            rebind_to_master(&mut wanted, &parsed.playlist, &final_url, &parsed.variables)?;
        } else {
            for w in &mut wanted {
                w.url.clone_from(&final_url);
            }
        }
        // A live playlist read again binds every segment it lists.
        let all = RecordingConfiguration::new().start(LiveStart::Oldest);
        let built =
            build_all(self.session, self.task, &self.ctx.auth, &wanted, 0, self.key_policy, &all).await?;
        let fresh: HashMap<SegmentId, (String, Crypto)> =
            built.into_iter().flat_map(|b| b.jobs).map(|j| (j.ids[0].clone(), (j.uri, j.crypto))).collect();
        {
            let mut bound = write(&self.ctx.bound);
            for job in bound.jobs.iter_mut() {
                let Some((uri, crypto)) = job.ids.first().and_then(|id| fresh.get(id)) else { continue };
                if !job.key {
                    job.uri.clone_from(uri);
                    job.crypto = crypto.clone();
                } else if let Crypto::Aes128 { key_uri, .. } = crypto {
                    // A key job follows the key of the first segment that needs it.
                    job.uri.clone_from(key_uri);
                }
            }
            bound.generation += 1;
        }
        self.index_key_jobs();
        self.wanted = wanted;
        *lock(&self.task.url) = url;
        Ok(())
    }

    /// A refusal of a URI that a refresh has replaced since it was sent says nothing about the fresh
    /// one: the engine retries the job with its current binding instead of asking for another refresh.
    pub(super) fn superseded(&self, job: JobId, outcome: Outcome) -> Outcome {
        let Outcome::Failure(Failure::NeedsRefresh { status }) = outcome else { return outcome };
        let generation = read(&self.ctx.bound).generation;
        let mut refused = lock(&self.ctx.refused);
        match refused.get(&job) {
            Some((_, used)) if *used < generation => {
                refused.remove(&job);
                Outcome::Failure(Failure::Superseded { status })
            }
            _ => outcome,
        }
    }
}
