//! Calls into the bundle, which touch the disk, made on blocking threads.

use stowage_bundle::{Bundle, SegmentId};

use super::errors::{bundle_error, join_error};
use crate::Error;
use crate::planning::Job;

/// Runs `f`, a call into the bundle, on a blocking thread; its error names the bundle at `path` (or the
/// file concerned).
pub(super) async fn blocking<T: Send + 'static>(
    path: &std::path::Path,
    f: impl FnOnce() -> stowage_bundle::Result<T> + Send + 'static,
) -> Result<T, Error> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| bundle_error(path, e)),
        Err(e) => Err(join_error(format!("a call into the bundle {}", path.display()), e)),
    }
}

/// Records the segments the source marks `EXT-X-GAP` as gaps: nobody can serve them, so they are never
/// fetched, and the bundle says they are missing.
pub(super) async fn record_source_gaps(
    path: &std::path::Path,
    bundle: &Bundle,
    jobs: &[Job],
) -> Result<(), Error> {
    let declared: Vec<SegmentId> =
        jobs.iter().filter(|j| j.source_gap).flat_map(|j| j.ids.iter().cloned()).collect();
    if declared.is_empty() {
        return Ok(());
    }
    record_gaps(path, bundle, declared, "marked EXT-X-GAP in the source playlist".to_owned()).await
}

/// Records the entries `ids` as gaps in the bundle, for `reason`, except those stored meanwhile.
pub(super) async fn record_gaps(
    path: &std::path::Path,
    bundle: &Bundle,
    ids: Vec<SegmentId>,
    reason: String,
) -> Result<(), Error> {
    let bundle = bundle.clone();
    blocking(path, move || {
        for id in &ids {
            if !bundle.is_finished(id) {
                bundle.record_gap(id, reason.clone())?;
            }
        }
        Ok(())
    })
    .await
}
