//! Keys kept in the bundle, for content stored encrypted (`KeyPolicy::KeepEncrypted`): every key is
//! loaded and written before any segment is fetched.

use std::path::Path;
use std::sync::Arc;

use stowage_bundle::{Bundle, RenditionId};
use stowage_fetch::keys::KeyLoader;

use super::bundle_io::blocking;
use super::errors::{classify, fetch_error, join_error};
use crate::Error;
use crate::engine::Failure;
use crate::planning::Built;
use crate::runtime::shared::{Hearer, SessionInner};
use crate::runtime::task::TaskShared;

/// Loads every key of `built` and writes it into `bundle`. The keys are loaded side by side (one request
/// each, since the loader shares a key among the renditions that use it), within the per-host limit.
pub(super) async fn store_kept_keys(
    session: &Arc<SessionInner>,
    task: &Arc<TaskShared>,
    loader: &Arc<KeyLoader>,
    bundle: &Bundle,
    built: &[Built],
    path: &Path,
) -> Result<(), Error> {
    let slots = Arc::new(tokio::sync::Semaphore::new(session.config.max_connections_per_host.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for b in built {
        for (index, uri) in &b.keys {
            let (session, loader, slots) = (Arc::clone(session), Arc::clone(loader), Arc::clone(&slots));
            let task = Arc::clone(task);
            let (bundle, path, id, index, uri) =
                (bundle.clone(), path.to_path_buf(), b.plan.id.clone(), *index, uri.clone());
            set.spawn(async move {
                let key = {
                    let _slot = slots.acquire().await;
                    let _listening = session.listen(&uri, Hearer::Task(task));
                    load_kept_key(&session, &loader, &uri).await?
                };
                blocking(&path, move || bundle.write_key(&id, index, &key)).await
            });
        }
    }
    while let Some(stored) = set.join_next().await {
        stored.map_err(|e| join_error("the load of a key to keep", e))??;
    }
    Ok(())
}

/// Loads the keys `keys` (each with the number the bundle gives it) of rendition `id` and writes them
/// into `bundle`, one after the other: a recording's batch brings a key or two at a time.
pub(super) async fn store_rendition_keys(
    session: &Arc<SessionInner>,
    task: &Arc<TaskShared>,
    loader: &Arc<KeyLoader>,
    bundle: &Bundle,
    id: &RenditionId,
    keys: &[(u32, String)],
    path: &Path,
) -> Result<(), Error> {
    for (index, uri) in keys {
        let key = {
            let _listening = session.listen(uri, Hearer::Task(Arc::clone(task)));
            load_kept_key(session, loader, uri).await?
        };
        let (bundle, id, index) = (bundle.clone(), id.clone(), *index);
        blocking(path, move || bundle.write_key(&id, index, &key)).await?;
    }
    Ok(())
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
                    return Err(fetch_error(uri, e));
                }
                tokio::time::sleep(retry.backoff_ceiling(failures)).await;
            }
        }
    }
}
