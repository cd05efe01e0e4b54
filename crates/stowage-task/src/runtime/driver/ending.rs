//! How a task's run ends: finished, failed, cancelled, or closed with its session. Every ending stops the
//! fetches and waits for their writers, so that the bundle is left consistent and its lock released.

use std::sync::Arc;
use std::time::Instant;

use stowage_bundle::ManifestChanges;
use tokio::task::JoinHandle;

use super::bundle_io::blocking;
use super::runner::Runner;
use crate::Error;
use crate::engine::JobFailure;
use crate::runtime::shared::lock;
use crate::runtime::task::{CancelMode, Ending};

impl<'a> Runner<'a> {
    /// Aborts every fetch in flight and waits until each has stopped, so that none sends a request
    /// afterwards. Their writer threads go on: a segment whose last byte arrived is still stored, and
    /// reported.
    pub(super) async fn stop_fetches(&mut self) {
        for (_, (_, handle)) in self.inflight.drain() {
            handle.abort();
        }
        for fetch in std::mem::take(&mut self.fetches) {
            let _ = fetch.await;
        }
    }

    /// Stops every fetch and waits for their writer threads, so that the bundle is left consistent and
    /// its lock released once the task's handles are dropped.
    async fn stop_all(&mut self) {
        self.stop_fetches().await;
        // Retries the fetch layer made before the end are told before the end.
        while let Ok((job, event)) = self.retries.try_recv() {
            self.on_retry(job, &event);
        }
        let writers: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.ctx.writers));
        for w in writers {
            let _ = w.await;
        }
    }

    /// Writes the bundle's local playlists as they stand, so that what is stored plays (a suspended or
    /// failed task's bundle included).
    pub(super) async fn save_playlists(&self) {
        let bundle = self.ctx.bundle.clone();
        let _ = blocking(&self.task.bundle_path, move || bundle.write_playlists()).await;
    }

    /// Rewrites the bundle's local playlists as they have grown (see
    /// [`Bundle::write_growing_playlists`](stowage_bundle::Bundle::write_growing_playlists)). A failure
    /// does not stop the download: the segments are stored, and the playlists are written again at the
    /// next growth and when the task ends.
    pub(super) async fn write_growing_playlists(&mut self) {
        let bundle = self.ctx.bundle.clone();
        let started = Instant::now();
        let _ = blocking(&self.task.bundle_path, move || bundle.write_growing_playlists()).await;
        self.growth.written(started, Instant::now());
    }

    /// Every job is done or a gap: the bundle is marked finished (complete unless gaps were recorded).
    pub(super) async fn finish(&mut self, complete: bool) -> Ending {
        self.stop_all().await;
        let bundle = self.ctx.bundle.clone();
        let path = self.task.bundle_path.clone();
        // A recording is closed with why it ended: its local playlists become VOD playlists.
        let ended = self.is_recording().then(|| {
            self.recording_end.map_or_else(|| "every live playlist ended".to_owned(), |why| why.to_string())
        });
        let finished = move || {
            match ended {
                Some(why) => bundle.end_recording(why)?,
                None => bundle.mark_finished()?,
            }
            Ok(bundle.gaps().is_empty())
        };
        let complete = match blocking(&path, finished).await {
            // Gaps the source declared are the bundle's too.
            Ok(no_gaps) => complete && no_gaps,
            Err(e) => return Ending::Failed(Arc::new(e)),
        };
        self.emit_progress();
        Ending::Finished { path: self.ctx.bundle.dir().to_path_buf(), complete }
    }

    /// Under the strict policy, a job gave up: the task fails, naming it, with the error of its last
    /// attempt as the cause.
    pub(super) async fn fail(&mut self, failure: JobFailure) -> Ending {
        let segment = self.segment(failure.job);
        let cause = self.causes.remove(&failure.job);
        let what = segment.as_ref().map_or_else(|| failure.job.to_string(), ToString::to_string);
        self.fail_with(Error::JobFailed { what, failure, segment: segment.map(Box::new), cause }).await
    }

    /// The task fails with `error`; what is stored stays, with its playlists.
    pub(super) async fn fail_with(&mut self, error: Error) -> Ending {
        self.stop_all().await;
        self.save_playlists().await;
        Ending::Failed(Arc::new(error))
    }

    /// The task was cancelled: the bundle is removed or kept, as `mode` says.
    pub(super) async fn cancelled(&mut self, mode: CancelMode) -> Ending {
        self.stop_all().await;
        let removed = mode == CancelMode::RemovePartial;
        let bundle = self.ctx.bundle.clone();
        if removed {
            let _ = blocking(&self.task.bundle_path, move || bundle.delete()).await;
        } else {
            // Recorded, so that a restore does not take the download up again (a new task for the asset
            // continues it); the local playlists show what is stored.
            let _ = blocking(&self.task.bundle_path, move || {
                bundle.update(ManifestChanges::new().cancelled(true))
            })
            .await;
            self.save_playlists().await;
        }
        Ending::Cancelled { removed }
    }

    /// The task's handles or its session are gone: it stops where it is, its bundle resumable.
    pub(super) async fn closed(&mut self) -> Ending {
        self.engine.suspend();
        self.stop_all().await;
        self.save_playlists().await;
        Ending::Closed
    }
}
