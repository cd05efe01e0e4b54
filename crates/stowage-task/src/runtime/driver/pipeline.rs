//! The pipeline of one job: fetch, then decrypt and store on a blocking thread, then report.
//!
//! Every `Start` of the engine becomes a spawned [`fetch_job`] that streams the body, chunk by chunk
//! through a bounded channel, to a blocking thread (see the `writer` module) that decrypts and writes it
//! with the bundle's segment writer. A success is reported to the engine only once the segment is durable
//! and journaled, by the blocking thread itself, so that a fetch aborted by a suspend after its last byte
//! still counts (stored work is never fetched again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use stowage_bundle::Bundle;
use stowage_fetch::RetryEvent;
use stowage_fetch::keys::KeyLoader;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::auth::Auth;
use super::errors::{classify, over_cap};
use super::writer::{Piece, store_init, write_segment};
use crate::engine::{Failure, JobId, Outcome};
use crate::planning::{Crypto, Job};
use crate::runtime::shared::{Hearer, SessionInner, lock};

/// Largest initialization section accepted, in bytes (it is held in memory to be stored once per map).
const MAX_INIT: u64 = 16 << 20;

/// Chunks in flight between a fetch and its writer thread: memory per segment stays a few chunks.
const CHUNKS_IN_FLIGHT: usize = 4;

/// What a job's pipeline reports: the job, the start (as the engine numbered it), and how it ended.
pub(super) type Report = (JobId, u32, Outcome);

/// What a spawned fetch needs.
#[derive(Clone)]
pub(super) struct FetchCtx {
    pub(super) session: Arc<SessionInner>,
    pub(super) bundle: Bundle,
    pub(super) loader: Arc<KeyLoader>,
    pub(super) auth: Arc<Mutex<Auth>>,
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
    pub(super) jobs: Vec<Job>,
}

/// Reads the binding, going on with one that a panic poisoned.
pub(super) fn read(bound: &RwLock<Bound>) -> RwLockReadGuard<'_, Bound> {
    bound.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Writes the binding, going on with one that a panic poisoned.
pub(super) fn write(bound: &RwLock<Bound>) -> RwLockWriteGuard<'_, Bound> {
    bound.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(super) async fn fetch_job(ctx: FetchCtx, job: JobId, attempt: u32) {
    // No request leaves with URLs that are being replaced: wait for a refresh under way to end, before
    // and after waiting for a request slot (a refresh may begin meanwhile).
    let mut refreshing = ctx.refreshing.subscribe();
    let _ = refreshing.wait_for(|r| !r).await;
    // A segment's key comes before a request slot is taken: its key job has normally loaded it already,
    // or is loading it, and a slot held while waiting for it would be a slot idle. A key that cannot be
    // had fails the attempt here, without asking for the segment.
    let early = {
        let bound = read(&ctx.bound);
        let spec = &bound.jobs[job.0 as usize];
        match &spec.crypto {
            Crypto::Aes128 { key_uri, .. } if !spec.key => Some((key_uri.clone(), bound.generation)),
            _ => None,
        }
    };
    if let Some((key_uri, generation)) = early
        && let Err(e) = ctx.loader.load(&key_uri).await
    {
        let failure = note_refusal(&ctx, job, generation, &key_uri, classify(&e, true));
        let _ = ctx.reports.send((job, attempt, Outcome::Failure(failure)));
        return;
    }
    let permit = ctx.session.request_slots.acquire().await;
    let _ = refreshing.wait_for(|r| !r).await;
    let (spec, generation) = {
        let bound = read(&ctx.bound);
        (bound.jobs[job.0 as usize].clone(), bound.generation)
    };
    let result = if spec.key {
        fetch_key(&ctx, job, attempt, &spec, generation).await
    } else {
        fetch_and_store(&ctx, job, attempt, &spec, generation).await
    };
    drop(permit);
    if let Err(failure) = result {
        let _ = ctx.reports.send((job, attempt, Outcome::Failure(failure)));
    }
}

/// Notes the URI a refused attempt asked for, with the binding generation it came from.
fn note_refusal(ctx: &FetchCtx, job: JobId, generation: u64, uri: &str, failure: Failure) -> Failure {
    if matches!(failure, Failure::NeedsRefresh { .. }) {
        lock(&ctx.refused).insert(job, (uri.to_owned(), generation));
    }
    failure
}

/// A key job: loads the key into the task's key loader, where the segments that need it find it (or,
/// when they start while it is on its way, wait for this one request instead of making their own).
async fn fetch_key(
    ctx: &FetchCtx,
    job: JobId,
    attempt: u32,
    spec: &Job,
    generation: u64,
) -> Result<(), Failure> {
    let _listening = ctx.session.listen(&spec.uri, Hearer::Job(job, ctx.retries.clone()));
    let key = ctx.loader.load(&spec.uri).await;
    let key = key.map_err(|e| note_refusal(ctx, job, generation, &spec.uri, classify(&e, true)))?;
    let _ = ctx.reports.send((job, attempt, Outcome::success(key.len() as u64)));
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
) -> Result<(), Failure> {
    let refused = |uri: &str, failure: Failure| note_refusal(ctx, job, generation, uri, failure);
    let key = match &spec.crypto {
        Crypto::AsIs => None,
        Crypto::Aes128 { key_uri, iv } => match ctx.loader.load(key_uri).await {
            Ok(key) => Some((key, *iv)),
            Err(e) => return Err(refused(key_uri, classify(&e, true))),
        },
    };
    let mut req = lock(&ctx.auth).request(&spec.uri).map_err(|e| Failure::fatal(e.to_string()))?;
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
    let failure_of = |e: &stowage_fetch::Error| match cap {
        Some(_) => over_cap(e, limit, ctx.bandwidth, spec.duration).unwrap_or_else(|| classify(e, false)),
        None => classify(e, false),
    };
    let _listening = ctx.session.listen(&spec.uri, Hearer::Job(job, ctx.retries.clone()));
    let response = ctx.session.client.get(req).await.map_err(|e| refused(&spec.uri, failure_of(&e)))?;
    let mut body = response.into_body();
    if spec.init {
        // Initialization sections are small and may be stored under several identities: read whole.
        let mut data = Vec::new();
        while let Some(chunk) = body.chunk().await.map_err(|e| failure_of(&e))? {
            data.extend_from_slice(&chunk);
        }
        let (bundle, ids, reports) = (ctx.bundle.clone(), spec.ids.clone(), ctx.reports.clone());
        let handle = tokio::task::spawn_blocking(move || {
            let outcome = match store_init(&bundle, &ids, &data, key) {
                Ok(bytes) => Outcome::success(bytes),
                Err(f) => Outcome::Failure(f),
            };
            let _ = reports.send((job, attempt, outcome));
        });
        lock(&ctx.writers).push(handle);
        return Ok(());
    }
    let (tx, rx) = mpsc::channel::<Piece>(CHUNKS_IN_FLIGHT);
    let (bundle, id, reports) = (ctx.bundle.clone(), spec.ids[0].clone(), ctx.reports.clone());
    let handle = tokio::task::spawn_blocking(move || {
        if let Some(outcome) = write_segment(&bundle, &id, key, rx) {
            let _ = reports.send((job, attempt, outcome));
        }
    });
    lock(&ctx.writers).push(handle);
    while let Some(chunk) = body.chunk().await.map_err(|e| failure_of(&e))? {
        if tx.send(Piece::Chunk(chunk)).await.is_err() {
            // The writer failed and reports it.
            return Ok(());
        }
    }
    let _ = tx.send(Piece::End).await;
    Ok(())
}
