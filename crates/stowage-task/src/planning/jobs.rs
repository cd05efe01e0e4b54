//! The driver's jobs: what to fetch for each entry of the plan, and how the engine sees each of them.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use stowage_bundle::{ByteRange, SegmentId};

use super::Wanted;
use super::content::Content;
use crate::engine::{JobId, JobSpec, LiveSpec, Plan, RenditionSpec};
use crate::events::SegmentRef;

/// How the bytes of a job are turned into what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Crypto {
    /// Stored as fetched (clear content, or ciphertext kept on purpose).
    AsIs,
    /// Decrypted with AES-128-CBC: the key at this URI, this IV.
    Aes128 { key_uri: String, iv: [u8; 16] },
}

/// One fetch: a media segment, or an initialization section stored under one or more identities.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    /// Index of the rendition (in the task's rendition list, which is also the engine's).
    pub(crate) rendition: usize,
    /// The bundle entries the bytes are stored as (several for an initialization section shared by
    /// several `EXT-X-MAP` tags).
    pub(crate) ids: Vec<SegmentId>,
    pub(crate) uri: String,
    pub(crate) range: Option<ByteRange>,
    pub(crate) crypto: Crypto,
    pub(crate) start: Duration,
    pub(crate) duration: Duration,
    /// The stored length, when known before fetching (a clear byte range).
    pub(crate) expected: Option<u64>,
    pub(crate) init: bool,
    /// A decryption key fetched ahead of the segments that need it: `uri` is the key's, `ids` holds the
    /// identity of the first segment that needs it (to re-bind the key URI after a refresh), and nothing
    /// is stored.
    pub(crate) key: bool,
    /// Marked `EXT-X-GAP` in the source playlist: there is nothing to fetch, and the bundle records a gap.
    pub(crate) source_gap: bool,
    /// What the stored bytes are expected to be, from what the playlist says of the entry.
    pub(crate) content: Content,
    /// A recorded media segment's program date time, from the live playlist that listed it, when the
    /// stream gives program dates: a segment that expires before it is fetched is a hole with its dates.
    /// Kept only while the job is (a recording lets go of its jobs once they are over); `None` for a
    /// download's jobs.
    pub(crate) program_date_time: Option<SystemTime>,
}

impl Job {
    /// What the job fetches, for events and errors: its segment's rendition, identity and URI.
    pub(crate) fn segment(&self) -> SegmentRef {
        SegmentRef { key: self.key, ..SegmentRef::new(self.ids[0].clone(), self.uri.clone()) }
    }
}

/// Merges initialization sections that are the same resource (URI and byte range) into one job, so that
/// each distinct `EXT-X-MAP` is fetched once, and returns the jobs in plan order.
pub(crate) fn merge_inits(jobs: Vec<Job>) -> Vec<Job> {
    let mut out: Vec<Job> = Vec::with_capacity(jobs.len());
    let mut seen: HashMap<(String, Option<ByteRange>), usize> = HashMap::new();
    for job in jobs {
        if job.init {
            let key = (job.uri.clone(), job.range);
            if let Some(&i) = seen.get(&key)
                && out[i].crypto == job.crypto
            {
                out[i].ids.extend(job.ids);
                continue;
            }
            seen.insert(key, out.len());
        }
        out.push(job);
    }
    out
}

/// The key jobs for `jobs`: one per distinct key URI of the jobs `needed` says are still to fetch, at the
/// earliest start among them, in the order the keys are first needed. `data:` keys need no request and get
/// no job.
pub(crate) fn key_jobs(jobs: &[Job], needed: impl Fn(usize) -> bool) -> Vec<Job> {
    let mut keys: Vec<Job> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, job) in jobs.iter().enumerate() {
        let Crypto::Aes128 { key_uri, .. } = &job.crypto else { continue };
        if job.key || job.source_gap || key_uri.starts_with("data:") || !needed(i) {
            continue;
        }
        match seen.get(key_uri.as_str()) {
            Some(&k) => {
                if job.start < keys[k].start {
                    keys[k].start = job.start;
                    keys[k].rendition = job.rendition;
                    keys[k].ids = vec![job.ids[0].clone()];
                }
            }
            None => {
                seen.insert(key_uri, keys.len());
                keys.push(Job {
                    rendition: job.rendition,
                    ids: vec![job.ids[0].clone()],
                    uri: key_uri.clone(),
                    range: None,
                    crypto: Crypto::AsIs,
                    start: job.start,
                    duration: Duration::ZERO,
                    expected: None,
                    init: false,
                    key: true,
                    source_gap: false,
                    // A key is loaded, not stored: nothing is checked of it here.
                    content: Content::Ciphertext,
                    program_date_time: None,
                });
            }
        }
    }
    // Stable: keys first needed at the same time keep the order of the plan.
    keys.sort_by_key(|k| k.start);
    keys
}

/// The engine's view of a job.
pub(crate) fn job_spec(id: JobId, job: &Job) -> JobSpec<'_> {
    let mut spec = JobSpec::new(id, job.rendition, job.start, job.duration, host_of(&job.uri));
    if let Some(e) = job.expected {
        spec = spec.expected_size(e);
    }
    if job.key {
        spec = spec.prefetch();
    }
    spec
}

/// The engine's plan for `jobs` (the job at index `i` is `JobId(i)`), one rendition per wanted one, live
/// when `live` says so.
///
/// Jobs whose entries `finished` says are stored already are marked done. Per-segment lengths of a
/// resumed bundle are not kept apart from its journal, so each rendition's stored bytes and segments
/// (`stored`, in the order of `wanted`) are spread over its finished jobs, so that totals are exact.
/// Gaps the source declared get no job.
pub(crate) fn engine_plan<'j>(
    wanted: &[Wanted],
    jobs: &'j [Job],
    mut stored: Vec<(u64, usize)>,
    finished: impl Fn(&SegmentId) -> bool,
    live: &[Option<LiveSpec>],
) -> Plan<'j> {
    let mut plan = Plan::new();
    for (i, w) in wanted.iter().enumerate() {
        let mut spec = match w.estimate {
            Some(b) => RenditionSpec::new().bandwidth(b),
            None => RenditionSpec::new(),
        };
        if let Some(Some(live)) = live.get(i) {
            spec = spec.live(live.clone());
        }
        plan.add_rendition(spec);
    }
    for (i, job) in jobs.iter().enumerate() {
        if job.source_gap {
            continue;
        }
        let mut spec = job_spec(JobId(i as u64), job);
        if !job.key && job.ids.iter().all(&finished) {
            let (bytes, count) = &mut stored[job.rendition];
            let share = if *count > 0 { *bytes / *count as u64 } else { 0 };
            let share = if *count <= job.ids.len() { *bytes } else { share * job.ids.len() as u64 };
            *bytes -= share.min(*bytes);
            *count = count.saturating_sub(job.ids.len());
            spec = spec.finished(share);
        }
        plan.add_job(spec);
    }
    plan
}

/// The host of an absolute URI, for per-host limits.
pub(crate) fn host_of(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
}

/// The driver's jobs by id: job `i` is `JobId(i)`. A job that is over (its bytes stored, or recorded as a
/// gap) can be forgotten: a recording's jobs keep coming for as long as it runs, and what is done lives on
/// in the bundle's journal, so only the jobs not yet over are kept, from the oldest of them on.
#[derive(Debug, Default)]
pub(crate) struct JobTable {
    /// The id of the first slot kept.
    base: u64,
    /// The jobs from `base` on; `None` for one forgotten while an older one is still kept.
    slots: std::collections::VecDeque<Option<Job>>,
}

impl JobTable {
    pub(crate) fn new(jobs: Vec<Job>) -> Self {
        Self { base: 0, slots: jobs.into_iter().map(Some).collect() }
    }

    /// The id the next job added gets.
    pub(crate) fn next_id(&self) -> u64 {
        self.base + self.slots.len() as u64
    }

    /// The job `id`, unless it was forgotten (or never added).
    pub(crate) fn get(&self, id: JobId) -> Option<&Job> {
        let slot = id.0.checked_sub(self.base)?;
        self.slots.get(usize::try_from(slot).ok()?)?.as_ref()
    }

    /// Adds jobs, numbered from [`next_id`](Self::next_id) on.
    pub(crate) fn extend(&mut self, jobs: impl IntoIterator<Item = Job>) {
        self.slots.extend(jobs.into_iter().map(Some));
    }

    /// The jobs kept, with their ids.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (JobId, &Job)> {
        let base = self.base;
        self.slots.iter().enumerate().filter_map(move |(i, j)| Some((JobId(base + i as u64), j.as_ref()?)))
    }

    /// The jobs kept, to re-bind them.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Job> {
        self.slots.iter_mut().flatten()
    }

    /// Forgets job `id`, which is over; the slots of the oldest jobs, once all forgotten, are let go.
    pub(crate) fn forget(&mut self, id: JobId) {
        let Some(slot) = id.0.checked_sub(self.base).and_then(|s| usize::try_from(s).ok()) else { return };
        if let Some(job) = self.slots.get_mut(slot) {
            *job = None;
        }
        while self.slots.front().is_some_and(Option::is_none) {
            self.slots.pop_front();
            self.base += 1;
        }
    }

    /// How many slots are kept (jobs not forgotten, and forgotten ones after the oldest kept): what the
    /// table costs in memory.
    #[cfg(test)]
    pub(crate) fn kept(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(media_sequence: u64) -> Job {
        let rendition = stowage_bundle::RenditionId::new("v").unwrap();
        Job {
            rendition: 0,
            ids: vec![SegmentId::media(rendition, 0, media_sequence)],
            uri: format!("http://o/s{media_sequence}.ts"),
            range: None,
            crypto: Crypto::AsIs,
            start: Duration::from_secs(media_sequence),
            duration: Duration::from_secs(1),
            expected: None,
            init: false,
            key: false,
            source_gap: false,
            content: Content::Ciphertext,
            program_date_time: None,
        }
    }

    #[test]
    fn a_table_of_jobs_keeps_what_is_not_over_from_the_oldest_on() {
        let mut table = JobTable::new((0..3).map(job).collect());
        // Over out of order: the slot of job 1 stays while job 0 is kept.
        table.forget(JobId(1));
        assert_eq!((table.kept(), table.get(JobId(1)).is_none()), (3, true));
        table.forget(JobId(0));
        assert_eq!((table.kept(), table.next_id()), (1, 3));
        // A long recording: 100,000 jobs added in batches, each over soon after, keep a bounded table.
        for batch in 0..10_000u64 {
            let first = table.next_id();
            table.extend((0..10).map(|i| job(first + i)));
            for id in first.saturating_sub(5)..first + 5 {
                table.forget(JobId(id));
            }
            assert!(table.kept() <= 16, "batch {batch}: {} slots kept", table.kept());
        }
        assert_eq!(table.next_id(), 100_003);
        assert_eq!(table.get(JobId(100_002)).map(|j| j.ids[0].media_sequence), Some(100_002));
        assert!(table.get(JobId(5)).is_none());
        let kept: Vec<u64> = table.iter().map(|(id, _)| id.0).collect();
        assert_eq!(kept, (99_998..100_003).collect::<Vec<_>>());
    }
}
