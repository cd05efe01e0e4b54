//! The engine recording live renditions, with a fake clock: when playlists are reloaded (RFC 8216bis
//! section 6.3.4, blocking reloads), that outages never end a recording by themselves, and how a recording
//! ends (its playlists, its end time, the outage limit, a stop) with what was listed fetched or recorded as
//! a gap.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use stowage_task::config::IntegrityPolicy;
use stowage_task::engine::{
    Action, Engine, EngineConfig, EngineState, Failure, GiveUpReason, JobId, JobSpec, LiveSpec, OriginState,
    Outcome, Plan, RecordingEnd, Reload, RenditionSpec, RetryPolicy,
};

const TD: Duration = Duration::from_secs(2);

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// A retry policy that never gives up on its own, as a recording's is.
fn endless() -> RetryPolicy {
    RetryPolicy::default().max_attempts(u32::MAX).max_retry_time(Duration::MAX).backoff(ms(250), TD)
}

struct Rec {
    engine: Engine,
    t0: Instant,
    now: Instant,
    /// Actions not looked at yet.
    pending: VecDeque<Action>,
    next_job: u64,
}

impl Rec {
    fn new(config: EngineConfig, renditions: &[LiveSpec]) -> Self {
        let mut plan = Plan::new();
        for spec in renditions {
            plan.add_rendition(RenditionSpec::new().live(spec.clone()));
        }
        let engine = Engine::new(config, plan).unwrap();
        let now = Instant::now();
        Self { engine, t0: now, now, pending: VecDeque::new(), next_job: 0 }
    }

    fn at(&self) -> Duration {
        self.now - self.t0
    }

    fn drain(&mut self) {
        while let Some(a) = self.engine.poll_action() {
            self.pending.push_back(a);
        }
    }

    /// Moves the clock to `t` from the start, waking the engine at every timeout on the way.
    fn advance_to(&mut self, t: Duration) {
        let until = self.t0 + t;
        loop {
            self.drain();
            match self.engine.poll_timeout() {
                Some(at) if at <= until => {
                    self.now = self.now.max(at);
                    self.engine.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = until;
        self.engine.handle_timeout(self.now);
        self.drain();
    }

    /// The reloads asked for since the last look, with the time they were asked at.
    fn reloads(&mut self) -> Vec<(usize, Option<u64>, Duration)> {
        let mut out = Vec::new();
        self.pending.retain(|a| match a {
            Action::ReloadPlaylist { rendition, block, timeout } => {
                out.push((*rendition, *block, *timeout));
                false
            }
            _ => true,
        });
        out
    }

    fn starts(&mut self) -> Vec<JobId> {
        let mut out = Vec::new();
        self.pending.retain(|a| match a {
            Action::Start { job, .. } => {
                out.push(*job);
                false
            }
            _ => true,
        });
        out
    }

    fn add_segments(&mut self, rendition: usize, count: u64) -> Vec<JobId> {
        let ids: Vec<JobId> = (0..count).map(|i| JobId(self.next_job + i)).collect();
        self.next_job += count;
        let specs = ids.iter().map(|&id| {
            JobSpec::new(id, rendition, Duration::from_secs(2 * id.0), TD, "live.example").expected_size(1000)
        });
        self.engine.add_jobs(self.now, specs).unwrap();
        ids
    }

    fn report(&mut self, rendition: usize, reload: Reload) {
        self.engine.handle_reload(self.now, rendition, reload);
        self.drain();
    }

    fn complete(&mut self, job: JobId, outcome: Outcome) {
        self.engine.handle_completed(self.now, job, outcome);
        self.drain();
    }

    fn take(&mut self, f: impl Fn(&Action) -> bool) -> Vec<Action> {
        let mut out = Vec::new();
        self.pending.retain(|a| {
            if f(a) {
                out.push(a.clone());
                false
            } else {
                true
            }
        });
        out
    }
}

fn config() -> EngineConfig {
    EngineConfig::default().retry(endless()).seed(7)
}

#[test]
fn polled_reloads_follow_the_target_duration() {
    let mut r = Rec::new(config(), &[LiveSpec::new(TD)]);
    r.engine.resume(r.now);
    r.drain();
    // The playlist was just read: the first reload waits half a target duration.
    assert!(r.reloads().is_empty());
    r.advance_to(ms(999));
    assert!(r.reloads().is_empty());
    r.advance_to(ms(1000));
    assert_eq!(r.reloads(), [(0, None, TD * 2)]);
    // While a reload is out, none other is asked for, however long it takes.
    r.advance_to(ms(1800));
    assert!(r.reloads().is_empty());
    // Changed: the next one target duration after this one started (at 1 s).
    r.add_segments(0, 1);
    r.report(0, Reload::Changed { next: 11 });
    r.advance_to(ms(2999));
    assert!(r.reloads().is_empty());
    r.advance_to(ms(3000));
    assert_eq!(r.reloads().len(), 1);
    // Unchanged: half a target duration after the answer.
    r.advance_to(ms(3200));
    r.report(0, Reload::Unchanged);
    r.advance_to(ms(4199));
    assert!(r.reloads().is_empty());
    r.advance_to(ms(4200));
    assert_eq!(r.reloads().len(), 1);
    // Failures back off: half a target duration, then doubling, never more than one.
    let mut asked = vec![];
    for _ in 0..5 {
        r.report(0, Reload::Failed(Failure::retryable("connection refused")));
        let from = r.at();
        while r.reloads().is_empty() {
            let next = r.engine.poll_timeout().unwrap() - r.t0;
            r.advance_to(next);
        }
        asked.push(r.at() - from);
    }
    assert_eq!(asked, [ms(1000), ms(2000), ms(2000), ms(2000), ms(2000)]);
    // A success ends the backoff.
    r.report(0, Reload::Unchanged);
    let from = r.at();
    r.advance_to(from + ms(1000));
    assert_eq!(r.reloads().len(), 1);
}

#[test]
fn blocking_reloads_ask_for_the_next_segment_at_once() {
    let mut r = Rec::new(config(), &[LiveSpec::new(TD).blocking(40)]);
    r.engine.resume(r.now);
    r.drain();
    assert_eq!(r.reloads(), [(0, Some(40), TD * 4)]);
    // The server holds the request until segment 40 is complete; the next asks for 41 as soon as it is
    // answered, and none goes out meanwhile: one request per segment.
    r.advance_to(ms(1700));
    assert!(r.reloads().is_empty());
    r.add_segments(0, 1);
    r.report(0, Reload::Changed { next: 41 });
    assert_eq!(r.reloads(), [(0, Some(41), TD * 4)]);
    let mut requests = 1;
    for msn in 42..142 {
        r.advance_to(r.at() + TD);
        r.add_segments(0, 1);
        r.report(0, Reload::Changed { next: msn });
        let asked = r.reloads();
        assert_eq!(asked, [(0, Some(msn), TD * 4)]);
        requests += asked.len();
    }
    assert_eq!(requests, 101, "one request per segment over 100 segments");
}

#[test]
fn an_outage_never_ends_a_recording_by_itself() {
    let mut r = Rec::new(config(), &[LiveSpec::new(TD), LiveSpec::new(TD)]);
    r.engine.resume(r.now);
    r.advance_to(ms(1000));
    assert_eq!(r.reloads().len(), 2);
    let jobs = r.add_segments(0, 2);
    r.report(0, Reload::Changed { next: 2 });
    r.report(1, Reload::Unchanged);
    let started = r.starts();
    assert_eq!(started, jobs);
    let news = r.now;
    // Six hours of refused connections: every reload fails, every segment fetch fails.
    for job in started {
        r.complete(job, Outcome::Failure(Failure::retryable("connection refused")));
    }
    let mut reloads = 0;
    let end = r.at() + Duration::from_secs(6 * 3600);
    while r.at() < end {
        let next = r.engine.poll_timeout().expect("a recording always has something to wait for") - r.t0;
        r.advance_to(next);
        for (rendition, _, _) in r.reloads() {
            reloads += 1;
            r.report(rendition, Reload::Failed(Failure::retryable("connection refused")));
        }
        for job in r.starts() {
            r.complete(job, Outcome::Failure(Failure::retryable("connection refused")));
        }
        assert!(
            r.take(|a| matches!(a, Action::GapRecorded(_) | Action::Failed(_) | Action::Finished { .. }))
                .is_empty()
        );
        // Retries and cancels are news for listeners only.
        r.pending.clear();
    }
    assert_eq!(r.engine.state(), EngineState::Running);
    // Two renditions reloading at most every target duration, at least every half of one.
    assert!((21_600..=43_200).contains(&reloads), "{reloads} reloads in six hours");
    let status = r.engine.recording_status(r.now).unwrap();
    assert_eq!(status.origin, OriginState::Unreachable { since: news + ms(1000) }, "{status:?}");
    assert_eq!((status.ended, status.max_outage), (None, None));
    // The origin comes back: the segments listed before the outage are fetched after all, and the playlists
    // answer, unchanged.
    let back = r.at();
    while r.at() < back + TD * 4 {
        let next = r.engine.poll_timeout().unwrap() - r.t0;
        r.advance_to(next);
        for (rendition, _, _) in r.reloads() {
            r.report(rendition, Reload::Unchanged);
        }
        for job in r.starts() {
            r.complete(job, Outcome::success(1000));
        }
        r.pending.clear();
    }
    assert!(jobs.iter().all(|j| r.engine.job_status(*j) == Some(stowage_task::engine::JobStatus::Done)));
    assert_eq!(r.engine.recording_status(r.now).unwrap().origin, OriginState::NotChanging { since: news });
}

#[test]
fn the_outage_limit_ends_a_recording_and_what_was_listed_becomes_gaps_even_under_strict_integrity() {
    let limit = Duration::from_secs(60);
    let mut r =
        Rec::new(config().integrity(IntegrityPolicy::Strict).max_outage(Some(limit)), &[LiveSpec::new(TD)]);
    r.engine.resume(r.now);
    r.advance_to(ms(1000));
    r.reloads();
    let jobs = r.add_segments(0, 3);
    r.report(0, Reload::Changed { next: 3 });
    // One segment is had; the others fail as the origin goes away.
    let started = r.starts();
    r.complete(started[0], Outcome::success(1000));
    for &job in &started[1..] {
        r.complete(job, Outcome::Failure(Failure::retryable("503")));
    }
    let news = r.now;
    loop {
        let next = r.engine.poll_timeout().unwrap() - r.t0;
        r.advance_to(next);
        for (rendition, _, _) in r.reloads() {
            r.report(rendition, Reload::Failed(Failure::retryable("connection refused")));
        }
        for job in r.starts() {
            r.complete(job, Outcome::Failure(Failure::retryable("connection refused")));
        }
        if r.engine.state() != EngineState::Running {
            break;
        }
        assert!(r.now < news + limit + TD, "still running at {:?}", r.at());
    }
    assert_eq!(r.now, news + limit, "ends exactly at the limit");
    let ended = r.take(|a| matches!(a, Action::RecordingEnded(_)));
    assert_eq!(ended, [Action::RecordingEnded(RecordingEnd::Outage(limit))]);
    let gaps = r.take(|a| matches!(a, Action::GapRecorded(_)));
    let gapped: Vec<JobId> = gaps
        .iter()
        .map(|a| match a {
            Action::GapRecorded(f) => {
                assert_eq!(f.reason, GiveUpReason::RecordingEnded);
                f.job
            }
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(gapped, jobs[1..]);
    assert!(r.take(|a| matches!(a, Action::Failed(_))).is_empty());
    assert_eq!(
        r.take(|a| matches!(a, Action::Finished { .. })),
        [Action::Finished { complete: false, gaps: 2 }]
    );
}

#[test]
fn expired_segments_are_holes_and_fatal_ones_fail_a_strict_recording() {
    let mut r = Rec::new(config(), &[LiveSpec::new(TD)]);
    r.engine.resume(r.now);
    r.advance_to(ms(1000));
    r.reloads();
    let jobs = r.add_segments(0, 2);
    r.report(0, Reload::Changed { next: 2 });
    r.starts();
    r.complete(jobs[0], Outcome::Failure(Failure::Expired { status: 404 }));
    let gap = r.take(|a| matches!(a, Action::GapRecorded(_)));
    assert!(
        matches!(&gap[..], [Action::GapRecorded(f)] if f.reason == GiveUpReason::Expired && f.job == jobs[0])
    );
    assert_eq!(r.engine.state(), EngineState::Running);
    // A segment that could not be had while the origin answered fails a strict recording.
    r.complete(jobs[1], Outcome::Failure(Failure::fatal("404 while listed")));
    assert!(
        matches!(&r.take(|a| matches!(a, Action::Failed(_)))[..], [Action::Failed(f)] if f.job == jobs[1])
    );
    assert_eq!(r.engine.state(), EngineState::Failed);
}

#[test]
fn a_recording_finishes_when_every_rendition_ended_and_what_they_listed_is_stored() {
    let mut r = Rec::new(config(), &[LiveSpec::new(TD), LiveSpec::new(TD)]);
    r.engine.resume(r.now);
    r.advance_to(ms(1000));
    r.reloads();
    let video = r.add_segments(0, 2);
    r.report(0, Reload::Ended(RecordingEnd::EndList));
    let audio = r.add_segments(1, 2);
    r.report(1, Reload::Changed { next: 2 });
    for job in r.starts() {
        r.complete(job, Outcome::success(1000));
    }
    assert!(
        video
            .iter()
            .chain(&audio)
            .all(|j| r.engine.job_status(*j) == Some(stowage_task::engine::JobStatus::Done))
    );
    // Every job is done, but the audio playlist goes on.
    assert!(r.take(|a| matches!(a, Action::Finished { .. })).is_empty());
    r.advance_to(ms(3000));
    assert_eq!(r.reloads(), [(1, None, TD * 2)]);
    let last = r.add_segments(1, 1);
    r.report(1, Reload::Ended(RecordingEnd::EndList));
    // The last live rendition ended: the recording's end is told once, before its last segment is had.
    assert_eq!(
        r.take(|a| matches!(a, Action::RecordingEnded(_))),
        [Action::RecordingEnded(RecordingEnd::EndList)]
    );
    assert!(r.take(|a| matches!(a, Action::Finished { .. })).is_empty());
    r.starts();
    r.complete(last[0], Outcome::success(1000));
    assert_eq!(
        r.take(|a| matches!(a, Action::Finished { .. })),
        [Action::Finished { complete: true, gaps: 0 }]
    );
    assert_eq!(r.engine.recording_status(r.now).unwrap().ended, Some(RecordingEnd::EndList));
    // No reload after the end.
    r.advance_to(ms(60_000));
    assert!(r.reloads().is_empty());
}

#[test]
fn an_end_time_or_a_stop_leaves_what_is_listed_its_grace() {
    for stop in [false, true] {
        let grace = Duration::from_secs(10);
        let mut r = Rec::new(config().stop_grace(grace), &[LiveSpec::new(TD)]);
        let end = r.t0 + Duration::from_secs(30);
        if !stop {
            r.engine.end_recording_at(end);
        }
        r.engine.resume(r.now);
        r.advance_to(ms(1000));
        r.reloads();
        let jobs = r.add_segments(0, 3);
        r.report(0, Reload::Changed { next: 3 });
        let started = r.starts();
        r.complete(started[0], Outcome::success(1000));
        for &job in &started[1..] {
            r.complete(job, Outcome::Failure(Failure::retryable("timeout")));
        }
        // Reloads go on until the end time (or the stop), answered unchanged.
        {
            while r.now < end {
                let next = r.engine.poll_timeout().unwrap() - r.t0;
                r.advance_to(next);
                for (rendition, _, _) in r.reloads() {
                    r.report(rendition, Reload::Unchanged);
                }
                for job in r.starts() {
                    r.complete(job, Outcome::Failure(Failure::retryable("timeout")));
                }
                if stop && r.engine.poll_timeout().is_some_and(|t| t >= end) {
                    r.advance_to(end - r.t0);
                    for (rendition, _, _) in r.reloads() {
                        r.report(rendition, Reload::Unchanged);
                    }
                    r.engine.end_recording(r.now, RecordingEnd::Stopped);
                    r.drain();
                }
            }
        }
        let why = if stop { RecordingEnd::Stopped } else { RecordingEnd::Until };
        assert_eq!(r.take(|a| matches!(a, Action::RecordingEnded(_))), [Action::RecordingEnded(why)]);
        assert_eq!(r.now, end);
        // Within the grace, one more segment is had; the last one never is.
        let mut had = false;
        while r.engine.state() == EngineState::Running {
            let next = r.engine.poll_timeout().unwrap() - r.t0;
            r.advance_to(next);
            assert!(r.reloads().is_empty(), "no reload after the end");
            for job in r.starts() {
                let outcome = if job == jobs[1] && !had {
                    Outcome::success(1000)
                } else {
                    Outcome::Failure(Failure::retryable("timeout"))
                };
                had |= job == jobs[1];
                r.complete(job, outcome);
            }
        }
        assert!(had);
        assert_eq!(r.now, end + grace);
        let gaps = r.take(|a| matches!(a, Action::GapRecorded(_)));
        assert!(
            matches!(&gaps[..], [Action::GapRecorded(f)] if f.job == jobs[2] && f.reason == GiveUpReason::RecordingEnded),
            "{gaps:?}"
        );
        assert_eq!(
            r.take(|a| matches!(a, Action::Finished { .. })),
            [Action::Finished { complete: false, gaps: 1 }]
        );
    }
}

#[test]
fn a_suspended_recording_reloads_at_once_when_resumed_and_ignores_old_answers() {
    let mut r = Rec::new(config(), &[LiveSpec::new(TD)]);
    r.engine.resume(r.now);
    r.advance_to(ms(1000));
    assert_eq!(r.reloads().len(), 1);
    r.engine.suspend();
    r.drain();
    // The answer of the reload abandoned by the suspend is not taken.
    r.report(0, Reload::Changed { next: 5 });
    r.advance_to(Duration::from_secs(600));
    assert!(r.reloads().is_empty());
    r.engine.resume(r.now);
    r.drain();
    assert_eq!(r.reloads().len(), 1, "at once after a resume");
    // The outage is measured from the resume, not from before the pause.
    assert_eq!(r.engine.recording_status(r.now).unwrap().origin, OriginState::Live);
}

#[test]
fn a_long_recording_keeps_records_only_of_jobs_not_over() {
    // 100,000 segments, listed ten per reload, each fetched once listed: the engine keeps the records of
    // what is listed and not over, not of the whole recording, while its progress counts every segment.
    let mut r = Rec::new(config(), &[LiveSpec::new(TD).blocking(0)]);
    r.engine.resume(r.now);
    r.drain();
    let mut most_kept = 0;
    let mut straggler = None;
    for batch in 0..10_000u64 {
        r.advance_to(r.at() + ms(1));
        r.reloads();
        let ids = r.add_segments(0, 10);
        r.report(0, Reload::Changed { next: 10 * (batch + 1) });
        most_kept = most_kept.max(r.engine.jobs_kept());
        for job in r.starts() {
            // One segment of the first batch takes long (its origin was slow): until it is over, the
            // records after it stay; once it is, they go at the next batch.
            if job == JobId(3) && batch < 100 {
                straggler = Some(job);
                continue;
            }
            r.complete(job, Outcome::success(1000));
        }
        if batch == 100
            && let Some(job) = straggler.take()
        {
            assert!(r.engine.jobs_kept() >= 1000, "the records after a job not over stay");
            r.complete(job, Outcome::success(1000));
        }
        assert!(ids.iter().all(|id| r.engine.job_status(*id).is_some()), "the newest jobs are known");
    }
    assert_eq!(r.engine.job_count(), 100_000);
    assert!(r.engine.jobs_kept() <= 20, "{} records kept after 100,000 jobs", r.engine.jobs_kept());
    assert!(most_kept <= 1020, "at most {most_kept} records kept at once");
    assert_eq!(r.engine.job_status(JobId(0)), None, "a job over long ago is forgotten");
    let progress = r.engine.progress();
    assert_eq!((progress.segments_done, progress.segments_total), (100_000, 100_000));
    r.report(0, Reload::Ended(RecordingEnd::EndList));
    assert!(r.take(|a| matches!(a, Action::Finished { complete: true, gaps: 0 })).len() == 1);
}
