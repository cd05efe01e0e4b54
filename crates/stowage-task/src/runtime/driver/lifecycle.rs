//! A task's life: wait for a resume and a task slot, prepare, run the engine, publish how it ended.

use std::sync::{Arc, Mutex};

use stowage_bundle::Bundle;
use stowage_fetch::keys::{KeyConfig, KeyHook, KeyLoader};
use tokio::sync::{mpsc, watch};

use super::auth::{Auth, AuthKeys};
use super::prepare::prepare;
use super::runner::Runner;
use crate::config::DownloadConfiguration;
use crate::events::TaskEvent;
use crate::runtime::shared::SessionInner;
use crate::runtime::task::{CancelMode, Control, Ending, TaskShared, TaskState};

/// Where a task's renditions come from.
pub(crate) enum Source {
    /// A new task with its configuration.
    New(Box<DownloadConfiguration>),
    /// An unfinished bundle found in the store: the renditions are those of its manifest.
    Restore,
}

/// Runs a task to its end and publishes the ending.
pub(crate) async fn run(
    session: Arc<SessionInner>,
    task: Arc<TaskShared>,
    source: Source,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let ending = run_task(&session, &task, source, &mut control).await;
    let state = match &ending {
        Ending::Finished { complete, .. } => TaskState::Finished { complete: *complete },
        Ending::Failed(e) => {
            task.emit(&session, TaskEvent::Failed(Arc::clone(e)));
            TaskState::Failed
        }
        Ending::Cancelled => TaskState::Cancelled,
        Ending::Closed => TaskState::Suspended,
    };
    task.state.send_replace(state);
    task.ending.send_replace(Some(ending));
}

enum Wait {
    Go,
    End(Ending),
}

/// Waits for a resume (a new task starts suspended). A cancel before any start removes the bundle if asked.
async fn wait_for_resume(
    session: &SessionInner,
    task: &TaskShared,
    control: &mut mpsc::UnboundedReceiver<Control>,
    shutdown: &mut watch::Receiver<bool>,
) -> Wait {
    loop {
        tokio::select! {
            c = control.recv() => match c {
                Some(Control::Resume) => return Wait::Go,
                Some(Control::Suspend | Control::Augment(..)) => {}
                Some(Control::Cancel(mode)) => {
                    if mode == CancelMode::RemovePartial {
                        remove_bundle(session, &task.asset).await;
                    }
                    return Wait::End(Ending::Cancelled);
                }
                None => return Wait::End(Ending::Closed),
            },
            _ = shutdown.changed() => return Wait::End(Ending::Closed),
        }
    }
}

async fn remove_bundle(session: &SessionInner, asset: &str) {
    let store = session.store.clone();
    let asset = asset.to_owned();
    let _ = tokio::task::spawn_blocking(move || store.open_bundle(&asset).and_then(Bundle::delete)).await;
}

async fn run_task(
    session: &Arc<SessionInner>,
    task: &Arc<TaskShared>,
    source: Source,
    control: &mut mpsc::UnboundedReceiver<Control>,
) -> Ending {
    let mut shutdown = session.shutdown.clone();
    loop {
        task.state.send_replace(TaskState::Suspended);
        if let Wait::End(ending) = wait_for_resume(session, task, control, &mut shutdown).await {
            return ending;
        }
        task.state.send_replace(TaskState::Waiting);
        let mut suspended = false;
        let permit = loop {
            tokio::select! {
                p = session.task_slots.acquire() => match p {
                    Ok(p) => break Some(p),
                    Err(_) => return Ending::Closed,
                },
                c = control.recv() => match c {
                    // A resume while waiting keeps waiting; an augment before the start has nothing to add to.
                    Some(Control::Resume | Control::Augment(..)) => {}
                    Some(Control::Suspend) => {
                        suspended = true;
                        break None;
                    }
                    Some(Control::Cancel(mode)) => {
                        if mode == CancelMode::RemovePartial {
                            remove_bundle(session, &task.asset).await;
                        }
                        return Ending::Cancelled;
                    }
                    None => return Ending::Closed,
                },
                _ = shutdown.changed() => return Ending::Closed,
            }
        };
        let Some(permit) = permit.filter(|_| !suspended) else { continue };
        task.state.send_replace(TaskState::Running);
        let auth = match Auth::new(&session.config.headers, &session.config.cookies) {
            Ok(a) => Arc::new(Mutex::new(a)),
            Err(e) => return Ending::Failed(Arc::new(e)),
        };
        let loader = {
            let hook: Arc<dyn KeyHook> = match &session.config.key_hook {
                Some(h) => Arc::clone(h),
                None => Arc::new(AuthKeys(Arc::clone(&auth))),
            };
            // One try per load: a refused key goes to the refresh hook at once (rather than being asked
            // again with a signature known to have expired), and a lost key (404) is retried by the
            // engine under the task's retry policy, like any other job.
            let config = KeyConfig::default().attempts(1);
            Arc::new(KeyLoader::new(session.client.clone()).with_config(config).with_hook(hook))
        };
        let mut preparing = Box::pin(prepare(session, task, &source, &auth, &loader));
        let mut suspend_after = false;
        let prepared = loop {
            tokio::select! {
                p = preparing.as_mut() => break p,
                c = control.recv() => match c {
                    Some(Control::Cancel(mode)) => {
                        if mode == CancelMode::RemovePartial {
                            remove_bundle(session, &task.asset).await;
                        }
                        return Ending::Cancelled;
                    }
                    // A suspend while the playlists load takes effect once the bundle is open.
                    Some(Control::Suspend) => suspend_after = true,
                    Some(Control::Resume) => suspend_after = false,
                    Some(Control::Augment(..)) => {}
                    None => return Ending::Closed,
                },
                _ = shutdown.changed() => return Ending::Closed,
            }
        };
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => return Ending::Failed(Arc::new(e)),
        };
        drop(preparing);
        let mut runner = match Runner::new(session, task, prepared, auth, loader, Some(permit)) {
            Ok(r) => r,
            Err(e) => return Ending::Failed(Arc::new(e)),
        };
        return runner.run(control, &mut shutdown, suspend_after).await;
    }
}
