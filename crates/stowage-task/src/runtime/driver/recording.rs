//! A recording's reloads: each live rendition's playlist fetched when the engine asks, what it brought
//! appended to the bundle (segments, holes) and to the engine (jobs), and the engine told.

use std::sync::Arc;
use std::time::{Duration, Instant};

use stowage_bundle::{Hole, SegmentId, TimeRange};

use super::bundle_io::{blocking, record_gaps, record_source_gaps};
use super::kept_keys::store_rendition_keys;
use super::pipeline::{read, write};
use super::playlists::fetch_text;
use super::resume::NOT_RUNNING;
use super::runner::Runner;
use crate::Error;
use crate::config::KeyPolicy;
use crate::engine::{
    Failure, GiveUpReason, JobFailure, JobId, JobSpec, OriginState, Outcome, RecordingEnd, Reload,
};
use crate::events::{RecordingOrigin, RecordingProgress, TaskEvent};
use crate::planning::{Batch, BuiltBatch, Ended, Job, LiveTrack, build_batch, common_end, job_spec};

/// Why a segment listed before an outage (or an interruption) is missing when the origin said it is gone.
const EXPIRED: &str = "expired: it was listed, then gone from the origin (HTTP 404 or 410) before the \
                       outage or the interruption of the recording ended";

/// What a reload of a rendition's playlist gave: its text and final URL, or why it failed.
pub(super) type Reloaded = (usize, Result<(String, String), Error>);

/// The URL of a reload: for a blocking reload, the playlist's URL asking for media sequence `msn`.
fn reload_url(url: &str, block: Option<u64>) -> String {
    let Some(msn) = block else { return url.to_owned() };
    let (base, fragment) = url.split_once('#').map_or((url, None), |(b, f)| (b, Some(f)));
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut out = format!("{base}{sep}_HLS_msn={msn}");
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

impl<'a> Runner<'a> {
    /// Whether the task records a live stream.
    pub(super) fn is_recording(&self) -> bool {
        self.live.iter().any(Option::is_some)
    }

    /// Fetches the playlist of live rendition `rendition` (the engine asked), reporting on the reload
    /// channel within `timeout`.
    pub(super) fn start_reload(&mut self, rendition: usize, block: Option<u64>, timeout: Duration) {
        let Some(w) = self.wanted.get(rendition) else { return };
        let url = reload_url(self.playlist_urls.get(rendition).unwrap_or(&w.url), block);
        let (session, task, auth) =
            (Arc::clone(&self.ctx.session), Arc::clone(self.task), Arc::clone(&self.ctx.auth));
        let sender = self.reloads_tx.clone();
        let handle = tokio::spawn(async move {
            let fetched = match tokio::time::timeout(timeout, fetch_text(&session, &task, &auth, &url)).await
            {
                Ok(r) => r,
                Err(_) => Err(Error::Playlist {
                    uri: url,
                    message: format!("no answer within {:.1} s", timeout.as_secs_f64()),
                    source: None,
                }),
            };
            let _ = sender.send((rendition, fetched));
        });
        if let Some(old) = self.reloading.insert(rendition, handle.abort_handle()) {
            old.abort();
        }
    }

    /// The recording ended (the engine said why): reloads out are dropped.
    pub(super) fn recording_ended(&mut self, why: RecordingEnd) {
        self.recording_end.get_or_insert(why);
        for (_, handle) in self.reloading.drain() {
            handle.abort();
        }
    }

    /// A reload came back: what it brought is recorded and the engine told. A reload that cannot be
    /// recorded (the bundle refuses) fails the task.
    pub(super) async fn on_reload(&mut self, (rendition, fetched): Reloaded) -> Option<Error> {
        self.reloading.remove(&rendition);
        if self.recording_end.is_some() {
            return None;
        }
        let now = Instant::now();
        let track = self.live.get_mut(rendition).and_then(Option::as_mut)?;
        let reload = match fetched {
            Err(e) => Reload::Failed(Failure::retryable(e.to_string())),
            Ok((text, final_url)) => match track.see(&text, &final_url) {
                Err(e) => Reload::Failed(Failure::retryable(e.to_string())),
                Ok(false) => Reload::Unchanged,
                Ok(true) => {
                    if let Some(news) = self.news.get_mut(rendition) {
                        *news = now;
                    }
                    Reload::Changed { next: track.next() }
                }
            },
        };
        if let Err(e) = self.release_listed(now).await {
            return Some(e);
        }
        // The rendition's recording may be over: its playlist ended, or the span asked for is recorded
        // (by what this reload brought, or by what another's let it record).
        let reload = match self.live.get(rendition).and_then(Option::as_ref).and_then(LiveTrack::ended_by) {
            Some(Ended::EndList) => Reload::Ended(RecordingEnd::EndList),
            Some(Ended::Duration) => Reload::Ended(RecordingEnd::Duration),
            None => reload,
        };
        self.engine.handle_reload(now, rendition, reload);
        self.emit_recording();
        None
    }

    /// Records, for every live rendition, what it listed up to the end every rendition listed (see
    /// [`common_end`]): audio and video of one recording cover the same span, whenever it ends. What a
    /// rendition listed past that end waits for the others' reloads, and is never recorded if the
    /// recording ends first (at its end time, its outage limit, a stop), so nothing past it is planned,
    /// fetched, or left to be recorded as missing.
    ///
    /// A rendition whose reloads have brought nothing new for two of its target durations while another's
    /// did (its playlist failing or stuck on its own) bounds nothing any more: the others' segments would
    /// otherwise wait until they left the origin's window. When every rendition's reloads bring nothing
    /// (an outage of the whole origin), each still bounds the others, so the recording ends aligned if the
    /// outage outlasts its limit.
    async fn release_listed(&mut self, now: Instant) -> Result<(), Error> {
        let newest = self.news.iter().copied().max().unwrap_or(now);
        let end = {
            let keeping_up = self.live.iter().zip(&self.news).filter_map(|(track, news)| {
                track.as_ref().filter(|t| newest.saturating_duration_since(*news) < t.target * 2)
            });
            common_end(keeping_up)
        };
        for rendition in 0..self.live.len() {
            let released = self.live[rendition].as_mut().and_then(|t| t.release(end));
            if let Some((batch, url)) = released {
                self.record_batch(rendition, &batch, &url, None).await?;
            }
        }
        Ok(())
    }

    /// A failed attempt of a live rendition's segment that the origin says is gone (404, 410), listed
    /// before an outage or an interruption of the recording: the segment expired while no recorder could
    /// fetch it, and is a hole of the recording rather than a failure of it (unless the recording was
    /// told to fail for that). Any other outcome is returned as it is.
    pub(super) fn expired(&self, job: JobId, outcome: Outcome, cause: Option<&Error>) -> Outcome {
        let Outcome::Failure(Failure::Fatal { .. } | Failure::NeedsRefresh { .. }) = &outcome else {
            return outcome;
        };
        let Some(status @ (404 | 410)) = cause.and_then(Error::status) else { return outcome };
        if self.fail_on_expiry || (job.0 as usize) >= self.listed_before_outage {
            return outcome;
        }
        let live = {
            let bound = read(&self.ctx.bound);
            bound
                .jobs
                .get(job)
                .is_some_and(|j| !j.key && self.live.get(j.rendition).is_some_and(Option::is_some))
        };
        if live { Outcome::Failure(Failure::Expired { status }) } else { outcome }
    }

    /// A segment of a live rendition given up as expired: recorded as a hole of its own, and told.
    pub(super) async fn record_expired(&mut self, failure: &JobFailure) -> Result<(), Error> {
        if failure.reason != GiveUpReason::Expired {
            return Ok(());
        }
        let (rendition, id, start, duration, date) = {
            let bound = read(&self.ctx.bound);
            let Some(job) = bound.jobs.get(failure.job) else { return Ok(()) };
            (job.rendition, job.ids[0].clone(), job.start, job.duration, job.program_date_time)
        };
        let Some(w) = self.wanted.get(rendition) else { return Ok(()) };
        let msn = id.media_sequence;
        let hole = Hole::new(
            w.id.clone(),
            (msn, msn),
            1,
            TimeRange::of_segment(start.as_secs_f64(), duration.as_secs_f64()),
            EXPIRED,
        );
        // Its program dates are those the live playlist gave it.
        let hole = match date.and_then(|from| Some((from, from.checked_add(duration)?))) {
            Some((from, to)) => hole.program_date_times(from, to),
            None => hole,
        };
        let event = TaskEvent::HoleRecorded {
            rendition: w.id.to_string(),
            media_sequences: hole.media_sequences,
            cause: hole.cause.clone(),
        };
        let bundle = self.ctx.bundle.clone();
        blocking(&self.task.bundle_path, move || bundle.record_hole(hole)).await?;
        self.holes += 1;
        self.expired += 1;
        self.emit(event);
        self.emit_recording();
        Ok(())
    }

    /// How far the recording is behind the live edge, in the live rendition furthest behind: the newest
    /// segment listed ends at the rendition's recorded span, the newest stored where `stored_end` says.
    fn live_edge_delay(&self) -> Duration {
        let behind = self
            .live
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                t.as_ref().map(|t| t.recorded - self.stored_end.get(i).copied().unwrap_or(0.0))
            })
            .fold(0.0, f64::max);
        Duration::try_from_secs_f64(behind.max(0.0)).unwrap_or(Duration::ZERO)
    }

    /// A segment of `job` was stored: where the newest stored segment of its rendition ends moves on.
    pub(super) fn stored(&mut self, job: JobId) {
        let end = {
            let bound = read(&self.ctx.bound);
            let Some(j) = bound.jobs.get(job).filter(|j| !j.init && !j.key) else { return };
            (j.rendition, (j.start + j.duration).as_secs_f64())
        };
        let (rendition, end) = end;
        if self.stored_end.len() <= rendition {
            self.stored_end.resize(rendition + 1, 0.0);
        }
        if end > self.stored_end[rendition] {
            self.stored_end[rendition] = end;
        }
    }

    /// Tells listeners where the recording stands.
    pub(super) fn emit_recording(&mut self) {
        let now = Instant::now();
        let Some(status) = self.engine.recording_status(now) else { return };
        if matches!(status.origin, OriginState::Unreachable { .. } | OriginState::NotChanging { .. }) {
            // What is listed now may expire before the origin answers again.
            self.listed_before_outage = read(&self.ctx.bound).jobs.next_id() as usize;
        }
        let origin = match (status.ended, status.origin) {
            (Some(why), _) => RecordingOrigin::Ended(why.to_string()),
            (None, OriginState::Unreachable { since }) => RecordingOrigin::Unreachable(now - since),
            (None, OriginState::NotChanging { since }) => RecordingOrigin::NotChanging(now - since),
            (None, _) => RecordingOrigin::Live,
        };
        let recorded = self.live.iter().flatten().map(|t| t.recorded).fold(0.0, f64::max);
        let mut progress = RecordingProgress::new(recorded, self.holes, origin);
        progress.max_outage = status.max_outage;
        progress.live_edge_delay = self.live_edge_delay();
        progress.expired = self.expired;
        self.emit(TaskEvent::Recording(progress));
    }

    /// Records what the live playlists of an interrupted recording listed when it was taken up: the
    /// segments after the last ones recorded, after the hole of what left them while no recorder ran.
    pub(super) async fn record_resumed(&mut self) -> Result<(), Error> {
        let mut ended = None;
        for (rendition, batch, url) in std::mem::take(&mut self.resumed) {
            self.record_batch(rendition, &batch, &url, Some(NOT_RUNNING)).await?;
            ended = ended.or(batch.ended);
        }
        if self.live.iter().flatten().all(LiveTrack::is_ended) {
            // Nothing is reloaded any more: the recording ends when what is listed is fetched.
            self.recording_end.get_or_insert(match ended {
                Some(Ended::EndList) => RecordingEnd::EndList,
                _ => RecordingEnd::Duration,
            });
        }
        self.emit_recording();
        Ok(())
    }

    /// Appends a batch of new segments (and the hole before it, if any, missing for `cause` when it is
    /// known) to the bundle, then their jobs to the engine.
    async fn record_batch(
        &mut self,
        rendition: usize,
        batch: &Batch,
        url: &str,
        cause: Option<&'static str>,
    ) -> Result<(), Error> {
        let w = &self.wanted[rendition];
        let BuiltBatch { segments, jobs, keys } = build_batch(w, rendition, batch, url, self.key_policy)?;
        let id = w.id.clone();
        if self.key_policy == KeyPolicy::KeepEncrypted && !keys.is_empty() {
            // The keys a batch brings are stored before its segments are planned, so that every segment
            // planned has its key (a crash in between leaves a key no segment names yet, which is harmless).
            let (session, task, loader) =
                (Arc::clone(&self.ctx.session), Arc::clone(self.task), Arc::clone(&self.ctx.loader));
            store_rendition_keys(
                &session,
                &task,
                &loader,
                &self.ctx.bundle,
                &id,
                &keys,
                &self.task.bundle_path,
            )
            .await?;
        }
        let bundle = self.ctx.bundle.clone();
        let hole = batch.hole.map(|(first, last)| {
            let count = last - first + 1;
            let cause =
                cause.unwrap_or(match self.engine.recording_status(Instant::now()).map(|s| s.origin) {
                    Some(OriginState::Unreachable { .. }) => {
                        "they left the live playlist while the origin could not be reached"
                    }
                    Some(OriginState::NotChanging { .. }) => {
                        "they left the live playlist while its reloads brought nothing new"
                    }
                    _ => "they left the live playlist between two reloads",
                });
            let hole = Hole::new(
                id.clone(),
                (first, last),
                count,
                TimeRange::of_segment(batch.start, batch.hole_span),
                cause,
            );
            match batch.hole_dates {
                Some((from, to)) => hole.program_date_times(from, to),
                None => hole,
            }
        });
        let path = self.task.bundle_path.clone();
        let recorded = segments;
        let hole_of = hole.as_ref().map(|h| (h.media_sequences, h.cause.clone()));
        let told = hole.as_ref().map(|h| TaskEvent::HoleRecorded {
            rendition: h.rendition.to_string(),
            media_sequences: h.media_sequences,
            cause: h.cause.clone(),
        });
        blocking(&path, move || {
            if let Some(hole) = hole {
                bundle.record_hole(hole)?;
            }
            bundle.record_segments(&id, recorded)
        })
        .await?;
        // The hole's `EXT-X-GAP` segments are gaps for the hole's cause; other segments the source marks
        // `EXT-X-GAP` are gaps for that.
        let in_hole = |job: &Job| {
            job.source_gap
                && hole_of.as_ref().is_some_and(|((first, last), _)| {
                    job.ids.iter().all(|i| (*first..=*last).contains(&i.media_sequence))
                })
        };
        let (missing, declared): (Vec<Job>, Vec<Job>) = jobs.iter().cloned().partition(|j| in_hole(j));
        if let Some((_, cause)) = &hole_of {
            let ids: Vec<SegmentId> = missing.iter().flat_map(|j| j.ids.iter().cloned()).collect();
            record_gaps(&path, &self.ctx.bundle, ids, cause.clone()).await?;
        }
        if let Some(event) = told {
            self.holes += 1;
            self.emit(event);
        }
        record_source_gaps(&path, &self.ctx.bundle, &declared).await?;
        let first = read(&self.ctx.bound).jobs.next_id();
        let specs: Vec<JobSpec<'_>> = jobs
            .iter()
            .enumerate()
            .filter(|(_, job)| !job.source_gap)
            .map(|(i, job)| job_spec(JobId(first + i as u64), job))
            .collect();
        self.engine.add_jobs(Instant::now(), specs)?;
        // The hole's EXT-X-GAP segments are over as soon as they are recorded: their jobs are let go at
        // once, so that they keep no memory for the rest of the recording.
        let over: Vec<JobId> = jobs
            .iter()
            .enumerate()
            .filter(|(_, job)| in_hole(job))
            .map(|(i, _)| JobId(first + i as u64))
            .collect();
        let mut bound = write(&self.ctx.bound);
        bound.jobs.extend(jobs);
        for job in over {
            bound.jobs.forget(job);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::reload_url;

    #[test]
    fn a_blocking_reload_asks_for_the_next_segment() {
        assert_eq!(reload_url("http://o/a.m3u8", None), "http://o/a.m3u8");
        assert_eq!(reload_url("http://o/a.m3u8", Some(7)), "http://o/a.m3u8?_HLS_msn=7");
        assert_eq!(reload_url("http://o/a.m3u8?t=1#x", Some(7)), "http://o/a.m3u8?t=1&_HLS_msn=7#x");
    }
}
