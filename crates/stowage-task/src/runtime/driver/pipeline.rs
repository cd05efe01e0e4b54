//! The pipeline of one job: fetch, then decrypt and store on a blocking thread, then report.
//!
//! Every `Start` of the engine becomes a spawned [`fetch_job`] that streams the body, chunk by chunk
//! through a bounded channel, to a blocking thread (see the `writer` module) that decrypts and writes it
//! with the bundle's segment writer. A success is reported to the engine only once the segment is durable
//! and journaled, by the blocking thread itself, so that a fetch aborted by a suspend after its last byte
//! still counts (stored work is never fetched again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use stowage_bundle::Bundle;
use stowage_fetch::RetryEvent;
use stowage_fetch::keys::KeyLoader;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::auth::Auth;
use super::errors::{CatchUnwind, Failed, classify, fetch_error, over_cap, panic_message};
use super::writer::{Piece, Writer};
use crate::Error;
use crate::engine::{Failure, JobId, Outcome};
use crate::planning::{Crypto, Job, JobTable};
/// The binding is read and written going on with one that a panic poisoned.
pub(super) use crate::poison::{read, write};
use crate::runtime::counters::TaskCounters;
use crate::runtime::shared::{Hearer, SessionInner, lock};

/// Largest initialization section accepted, in bytes (it is held in memory to be stored once per map).
const MAX_INIT: u64 = 16 << 20;

/// Chunks in flight between a fetch and its writer thread: memory per segment stays a few chunks.
const CHUNKS_IN_FLIGHT: usize = 4;

/// What a job's pipeline reports: the job, the start (as the engine numbered it), how it ended, and for
/// a failure, the typed error behind it.
#[derive(Debug)]
pub(super) struct Report {
    pub(super) job: JobId,
    pub(super) attempt: u32,
    pub(super) outcome: Outcome,
    pub(super) cause: Option<Box<Error>>,
    /// For a stored segment: the time from sending its request to its last byte, without the time taken
    /// to store it, which is what the adaptive window judges an origin by.
    pub(super) round_trip: Option<Duration>,
}

impl Report {
    /// The start succeeded: `bytes` are stored (or a key was loaded).
    pub(super) fn success(job: JobId, attempt: u32, bytes: u64) -> Self {
        Self { job, attempt, outcome: Outcome::success(bytes), cause: None, round_trip: None }
    }

    /// The start succeeded, its request and response having taken `round_trip`.
    pub(super) fn success_in(job: JobId, attempt: u32, bytes: u64, round_trip: Option<Duration>) -> Self {
        Self { round_trip, ..Self::success(job, attempt, bytes) }
    }

    /// The start failed.
    pub(super) fn failed(job: JobId, attempt: u32, failed: Failed) -> Self {
        Self {
            job,
            attempt,
            outcome: Outcome::Failure(failed.failure),
            cause: failed.cause,
            round_trip: None,
        }
    }
}

/// What a spawned fetch needs.
#[derive(Clone)]
pub(super) struct FetchCtx {
    pub(super) session: Arc<SessionInner>,
    pub(super) bundle: Bundle,
    pub(super) loader: Arc<KeyLoader>,
    pub(super) auth: Arc<Mutex<Auth>>,
    /// The task's counters of requests and bytes.
    pub(super) counters: Arc<TaskCounters>,
    pub(super) reports: mpsc::UnboundedSender<Report>,
    pub(super) retries: mpsc::UnboundedSender<(JobId, RetryEvent)>,
    pub(super) writers: Arc<Mutex<Vec<JoinHandle<()>>>>,
    /// The URI each job's latest refused attempt asked for (a segment's or its key's), with the binding
    /// generation it came from: the refresh hook is told the URI that was refused, and a refusal of a URI
    /// an earlier refresh already replaced asks for no refresh of its own.
    pub(super) refused: Arc<Mutex<HashMap<JobId, (String, u64)>>>,
    /// The jobs with the URIs they are bound to now.
    pub(super) bound: Arc<RwLock<Bound>>,
    /// Whether fresh URLs are being obtained: fetches wait for the fresh binding instead of sending
    /// requests with URLs about to be replaced.
    pub(super) refreshing: Arc<watch::Sender<bool>>,
    /// The `BANDWIDTH` the task's media segments are held to (see [`SegmentSizeLimit`](crate::config::SegmentSizeLimit)); `None` when no
    /// rendition declares one.
    pub(super) bandwidth: Option<u64>,
}

/// The jobs and the URIs they are fetched from, as the latest refresh bound them.
pub(super) struct Bound {
    /// Refreshes applied so far.
    pub(super) generation: u64,
    pub(super) jobs: JobTable,
}

/// Runs the fetch of a start of `job`, reporting a panic in it (in this crate, or in a hook of the
/// caller's it calls) as a failure of the job instead of leaving the engine waiting for a report that
/// would never come.
pub(super) async fn fetch_job_guarded(ctx: FetchCtx, job: JobId, attempt: u32) {
    let reports = ctx.reports.clone();
    let Some(what) = read(&ctx.bound).jobs.get(job).map(Job::segment) else {
        // Only a job that is over is forgotten, and the engine starts none of those.
        let failed = Failed::crashed(format!("{job}"), "it is not a job of this task".to_owned());
        let _ = reports.send(Report::failed(job, attempt, failed));
        return;
    };
    if let Err(message) = CatchUnwind::new(fetch_job(ctx, job, attempt)).await {
        let _ = reports.send(Report::failed(
            job,
            attempt,
            Failed::crashed(format!("the fetch of {what}"), message),
        ));
    }
}

async fn fetch_job(ctx: FetchCtx, job: JobId, attempt: u32) {
    // No request leaves with URLs that are being replaced: wait for a refresh under way to end, before
    // and after waiting for a request slot (a refresh may begin meanwhile).
    let mut refreshing = ctx.refreshing.subscribe();
    let _ = refreshing.wait_for(|r| !r).await;
    // A segment's key comes before a request slot is taken: its key job has normally loaded it already,
    // or is loading it, and a slot held while waiting for it would be a slot idle. A key that cannot be
    // had fails the attempt here, without asking for the segment.
    let early = {
        let bound = read(&ctx.bound);
        match bound.jobs.get(job) {
            Some(spec @ Job { crypto: Crypto::Aes128 { key_uri, .. }, .. }) if !spec.key => {
                Some((key_uri.clone(), bound.generation))
            }
            _ => None,
        }
    };
    if let Some((key_uri, generation)) = early
        && let Err(e) = ctx.loader.load(&key_uri).await
    {
        let failed = note_refusal(&ctx, job, generation, &key_uri, Failed::fetch(&key_uri, e, true));
        let _ = ctx.reports.send(Report::failed(job, attempt, failed));
        return;
    }
    let permit = ctx.session.request_slots.acquire().await;
    let _ = refreshing.wait_for(|r| !r).await;
    let Some((spec, generation)) = ({
        let bound = read(&ctx.bound);
        bound.jobs.get(job).map(|spec| (spec.clone(), bound.generation))
    }) else {
        return;
    };
    let result = if spec.key {
        fetch_key(&ctx, job, attempt, &spec, generation).await
    } else {
        fetch_and_store(&ctx, job, attempt, &spec, generation).await
    };
    drop(permit);
    if let Err(failed) = result {
        let _ = ctx.reports.send(Report::failed(job, attempt, failed));
    }
}

/// Notes the URI a refused attempt asked for, with the binding generation it came from.
fn note_refusal(ctx: &FetchCtx, job: JobId, generation: u64, uri: &str, failed: Failed) -> Failed {
    if matches!(failed.failure, Failure::NeedsRefresh { .. }) {
        lock(&ctx.refused).insert(job, (uri.to_owned(), generation));
    }
    failed
}

/// A key job: loads the key into the task's key loader, where the segments that need it find it (or,
/// when they start while it is on its way, wait for this one request instead of making their own).
async fn fetch_key(
    ctx: &FetchCtx,
    job: JobId,
    attempt: u32,
    spec: &Job,
    generation: u64,
) -> Result<(), Failed> {
    let hearer = Hearer::Job(job, ctx.retries.clone(), Arc::clone(&ctx.counters));
    let _listening = ctx.session.listen(&spec.uri, hearer);
    let key = ctx.loader.load(&spec.uri).await;
    let key =
        key.map_err(|e| note_refusal(ctx, job, generation, &spec.uri, Failed::fetch(&spec.uri, e, true)))?;
    let _ = ctx.reports.send(Report::success(job, attempt, key.len() as u64));
    Ok(())
}

/// Fetches a segment or an initialization section, decrypting it as it arrives, and stores it.
///
/// Its key comes first, from the loader (where [`fetch_job`] has had it loaded before taking a request
/// slot; a refresh since may have bound a fresh key URI, loaded here). A segment is never asked for
/// before its key is in hand, so that a key refused or lost does not cost its segment's bytes.
async fn fetch_and_store(
    ctx: &FetchCtx,
    job: JobId,
    attempt: u32,
    spec: &Job,
    generation: u64,
) -> Result<(), Failed> {
    let refused = |uri: &str, failed: Failed| note_refusal(ctx, job, generation, uri, failed);
    let key = match &spec.crypto {
        Crypto::AsIs => None,
        Crypto::Aes128 { key_uri, iv } => match ctx.loader.load(key_uri).await {
            Ok(key) => Some((key, *iv)),
            Err(e) => return Err(refused(key_uri, Failed::fetch(key_uri, e, true))),
        },
    };
    let mut req = lock(&ctx.auth).request(&spec.uri).map_err(|e| Failed::fetch(&spec.uri, e, false))?;
    if let Some(r) = spec.range {
        req = req.range(stowage_fetch::ByteRange::new(r.offset, r.length));
    }
    // A media segment without a byte range gets the cap its duration and BANDWIDTH allow; a byte range
    // is delivered exactly as the playlist says.
    let limit = &ctx.session.config.segment_size_limit;
    let cap = (!spec.init && spec.range.is_none()).then(|| limit.cap(ctx.bandwidth, spec.duration));
    if spec.init {
        req = req.max_size(MAX_INIT);
    } else if let Some(cap) = cap {
        req = req.max_size(cap);
    }
    // A body over the cap fails with the numbers; other failures as the fetch layer classifies them.
    let failed_of = |e: stowage_fetch::Error| {
        let failure = match cap {
            Some(_) => {
                over_cap(&e, limit, ctx.bandwidth, spec.duration).unwrap_or_else(|| classify(&e, false))
            }
            None => classify(&e, false),
        };
        Failed { failure, cause: Some(Box::new(fetch_error(&spec.uri, e))) }
    };
    let hearer = Hearer::Job(job, ctx.retries.clone(), Arc::clone(&ctx.counters));
    let _listening = ctx.session.listen(&spec.uri, hearer);
    ctx.counters.request();
    let sent = Instant::now();
    let response = ctx.session.client.get(req).await.map_err(|e| refused(&spec.uri, failed_of(e)))?;
    let mut body = response.into_body();
    let mut next_chunk = async || {
        let chunk = body.chunk().await.map_err(&failed_of)?;
        if let Some(chunk) = &chunk {
            ctx.counters.received(chunk.len() as u64);
        }
        Ok::<_, Failed>(chunk)
    };
    let writer = Writer { bundle: ctx.bundle.clone(), uri: spec.uri.clone(), key, content: spec.content };
    if spec.init {
        // Initialization sections are small and may be stored under several identities: read whole.
        let mut data = Vec::new();
        while let Some(chunk) = next_chunk().await? {
            data.extend_from_slice(&chunk);
        }
        let round_trip = Some(sent.elapsed());
        let (ids, reports) = (spec.ids.clone(), ctx.reports.clone());
        let handle = tokio::task::spawn_blocking(move || {
            let report = match catch_unwind(|| writer.store_init(&ids, &data)) {
                Ok(bytes) => Report::success_in(job, attempt, bytes, round_trip),
                Err(failed) => Report::failed(job, attempt, failed),
            };
            let _ = reports.send(report);
        });
        lock(&ctx.writers).push(handle);
        return Ok(());
    }
    let (tx, rx) = mpsc::channel::<Piece>(CHUNKS_IN_FLIGHT);
    let (id, reports) = (spec.ids[0].clone(), ctx.reports.clone());
    // Set when the last byte is in, before the writer is told the body is complete, so the writer finds
    // it set once it has stored the segment.
    let round_trip = Arc::new(OnceLock::new());
    let measured = Arc::clone(&round_trip);
    let handle = tokio::task::spawn_blocking(move || {
        let report = match catch_unwind(|| writer.write_segment(&id, rx)) {
            Ok(Some(bytes)) => Report::success_in(job, attempt, bytes, measured.get().copied()),
            Ok(None) => return,
            Err(failed) => Report::failed(job, attempt, failed),
        };
        let _ = reports.send(report);
    });
    lock(&ctx.writers).push(handle);
    while let Some(chunk) = next_chunk().await? {
        if tx.send(Piece::Chunk(chunk)).await.is_err() {
            // The writer failed and reports it.
            return Ok(());
        }
    }
    let _ = round_trip.set(sent.elapsed());
    let _ = tx.send(Piece::End).await;
    Ok(())
}

/// Runs a writer's work, its panics caught and reported as a failure of the job.
fn catch_unwind<T>(f: impl FnOnce() -> Result<T, Failed>) -> Result<T, Failed> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        Err(Failed::crashed("the writer of a segment".to_owned(), panic_message(panic)))
    })
}
