//! A task's life: wait for a resume and a task slot, prepare, run the engine, publish how it ended.

use std::sync::{Arc, Mutex};

use stowage_bundle::{Bundle, ManifestChanges};
use stowage_fetch::keys::KeyLoader;
use tokio::sync::{SemaphorePermit, mpsc, watch};

use super::auth::{Auth, key_loader};
use super::prepare::{Prepared, prepare};
use super::runner::Runner;
use crate::config::DownloadConfiguration;
use crate::events::TaskEvent;
use crate::runtime::shared::{SessionInner, lock};
use crate::runtime::task::{CancelMode, Control, Ending, TaskShared, TaskState};

/// Where a task's renditions come from.
pub(crate) enum Source {
    /// A new task with its configuration.
    New(Box<DownloadConfiguration>),
    /// An unfinished bundle found in the store: the renditions are those of its manifest, and those the
    /// configuration it recorded selects.
    Restore,
}

/// Runs a task to its end and publishes the ending: the task's state and ending first, then its summary
/// and its terminal event, so that a listener that receives the event finds the task ended; then the
/// task's event streams end.
pub(crate) async fn run(
    session: Arc<SessionInner>,
    task: Arc<TaskShared>,
    source: Source,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let ending = run_task(&session, &task, source, &mut control).await;
    let (state, event) = match &ending {
        Ending::Finished { path, complete } => (
            TaskState::Finished { complete: *complete },
            TaskEvent::Finished { path: path.clone(), complete: *complete },
        ),
        Ending::Failed(e) => (TaskState::Failed, TaskEvent::Failed(Arc::clone(e))),
        Ending::Cancelled { removed } => (TaskState::Cancelled, TaskEvent::Cancelled { removed: *removed }),
        Ending::Closed => (TaskState::Suspended, TaskEvent::Suspended { path: task.bundle_path.clone() }),
    };
    let summary = task.summary_now();
    *lock(&task.summary) = Some(summary.clone());
    task.state.send_replace(state);
    task.ending.send_replace(Some(ending));
    task.emit(&session, TaskEvent::Summary(summary));
    task.emit(&session, event);
    task.close_events();
}

/// The task's life until it ends: suspended until resumed (a new task starts suspended), waiting for one
/// of the session's task slots, then prepared and run. A suspend while waiting for a slot, or while the
/// task is being prepared, goes back to the start.
async fn run_task(
    session: &Arc<SessionInner>,
    task: &Arc<TaskShared>,
    source: Source,
    control: &mut mpsc::UnboundedReceiver<Control>,
) -> Ending {
    let mut shutdown = session.shutdown.clone();
    loop {
        task.state.send_replace(TaskState::Suspended);
        if let Some(ending) = wait_for_resume(session, task, control, &mut shutdown).await {
            return ending;
        }
        task.state.send_replace(TaskState::Waiting);
        let permit = match wait_for_task_slot(session, task, control, &mut shutdown).await {
            Slot::Taken(permit) => permit,
            Slot::Suspended => continue,
            Slot::End(ending) => return ending,
        };
        task.state.send_replace(TaskState::Running);
        task.mark_started();
        match prepare_and_run(session, task, &source, permit, control, &mut shutdown).await {
            Some(ending) => return ending,
            None => continue,
        }
    }
}

/// Waits for a resume; `Some` when the task ended first. A cancel before any start removes the bundle if
/// asked.
async fn wait_for_resume(
    session: &SessionInner,
    task: &TaskShared,
    control: &mut mpsc::UnboundedReceiver<Control>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Ending> {
    loop {
        tokio::select! {
            c = control.recv() => match c {
                Some(Control::Resume) => return None,
                Some(Control::Suspend | Control::Augment(..) | Control::StopRecording) => {}
                Some(Control::Cancel(mode)) => return Some(cancel_before_start(session, task, mode).await),
                None => return Some(Ending::Closed),
            },
            _ = shutdown.changed() => return Some(Ending::Closed),
        }
    }
}

/// What waiting for a task slot came to.
enum Slot<'s> {
    /// The slot, held while the task runs.
    Taken(SemaphorePermit<'s>),
    /// The task was suspended meanwhile.
    Suspended,
    /// The task ended meanwhile.
    End(Ending),
}

/// Waits for one of the session's task slots.
async fn wait_for_task_slot<'s>(
    session: &'s SessionInner,
    task: &TaskShared,
    control: &mut mpsc::UnboundedReceiver<Control>,
    shutdown: &mut watch::Receiver<bool>,
) -> Slot<'s> {
    loop {
        tokio::select! {
            p = session.task_slots.acquire() => match p {
                Ok(p) => return Slot::Taken(p),
                Err(_) => return Slot::End(Ending::Closed),
            },
            c = control.recv() => match c {
                // A resume while waiting keeps waiting; an augment before the start has nothing to add to.
                Some(Control::Resume | Control::Augment(..) | Control::StopRecording) => {}
                Some(Control::Suspend) => return Slot::Suspended,
                Some(Control::Cancel(mode)) => return Slot::End(cancel_before_start(session, task, mode).await),
                None => return Slot::End(Ending::Closed),
            },
            _ = shutdown.changed() => return Slot::End(Ending::Closed),
        }
    }
}

/// Prepares the task and runs its engine to the end; `None` when the task was suspended while being
/// prepared.
async fn prepare_and_run<'a>(
    session: &'a Arc<SessionInner>,
    task: &'a Arc<TaskShared>,
    source: &Source,
    permit: SemaphorePermit<'a>,
    control: &mut mpsc::UnboundedReceiver<Control>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<Ending> {
    let auth = match Auth::new(&session.config.headers, &session.config.cookies) {
        Ok(a) => Arc::new(Mutex::new(a)),
        Err(e) => return Some(Ending::Failed(Arc::new(e))),
    };
    let loader = key_loader(session, &auth, &task.counters);
    let prepared = match prepare_listening(session, task, source, &auth, &loader, control, shutdown).await {
        Ok(prepared) => prepared,
        Err(Interrupted::Suspended) => return None,
        Err(Interrupted::Ended(ending)) => return Some(ending),
    };
    let mut runner = match Runner::new(session, task, prepared, auth, loader, Some(permit)) {
        Ok(r) => r,
        Err(e) => return Some(Ending::Failed(Arc::new(e))),
    };
    Some(runner.run(control, shutdown).await)
}

/// Why a preparation did not come to its end.
enum Interrupted {
    /// The task was suspended.
    Suspended,
    /// The task ended.
    Ended(Ending),
}

/// Prepares the task while honouring its orders at once: a cancel or the session's end stops the
/// preparation and ends the task; a suspend stops it too, and the task waits for a resume, which prepares
/// it again (the playlists may have changed meanwhile). Dropping the preparation is safe at any point:
/// what it writes to the bundle (creating it, adding renditions, kept keys) is written by the bundle's
/// own atomic calls, which run to their end on their blocking threads, so the bundle is left as it was or
/// as the next preparation expects to find it.
async fn prepare_listening(
    session: &Arc<SessionInner>,
    task: &Arc<TaskShared>,
    source: &Source,
    auth: &Arc<Mutex<Auth>>,
    loader: &Arc<KeyLoader>,
    control: &mut mpsc::UnboundedReceiver<Control>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Prepared, Interrupted> {
    let mut preparing = Box::pin(prepare(session, task, source, auth, loader));
    let prepared = loop {
        tokio::select! {
            p = preparing.as_mut() => break p,
            c = control.recv() => match c {
                Some(Control::Cancel(mode)) => {
                    drop(preparing);
                    return Err(Interrupted::Ended(cancel_before_start(session, task, mode).await));
                }
                Some(Control::Suspend) => return Err(Interrupted::Suspended),
                Some(Control::Resume | Control::Augment(..) | Control::StopRecording) => {}
                None => return Err(Interrupted::Ended(Ending::Closed)),
            },
            _ = shutdown.changed() => return Err(Interrupted::Ended(Ending::Closed)),
        }
    };
    match prepared {
        Ok(prepared) => Ok(prepared),
        Err(e) => {
            if matches!(source, Source::New(_)) {
                forget_empty_record(session, &task.asset).await;
            }
            Err(Interrupted::Ended(Ending::Failed(Arc::new(e))))
        }
    }
}

/// Removes the record a new download made of itself when it was created, once its preparation failed
/// before anything was planned (a playlist that does not exist, say): a download that stored nothing and
/// cannot start leaves nothing behind, and nothing to resume. A record with renditions planned is kept,
/// and so is one that a restored task finds (a download queued earlier stays queued).
async fn forget_empty_record(session: &SessionInner, asset: &str) {
    let store = session.store.clone();
    let asset = asset.to_owned();
    // A record that cannot be read or locked is left as it is: that is the safe side.
    let _ = tokio::task::spawn_blocking(move || {
        let bundle = store.open_bundle(&asset)?;
        if bundle.manifest().renditions.is_empty() {
            bundle.delete()?;
        }
        Ok::<(), stowage_bundle::Error>(())
    })
    .await;
}

/// Ends a task cancelled before its engine ran, removing its bundle if asked, else recording that it was
/// cancelled (so that a restore does not take it up again).
async fn cancel_before_start(session: &SessionInner, task: &TaskShared, mode: CancelMode) -> Ending {
    let removed = mode == CancelMode::RemovePartial;
    if removed {
        remove_bundle(session, &task.asset).await;
    } else {
        let store = session.store.clone();
        let asset = task.asset.clone();
        // A bundle gone meanwhile has nothing to record; another failure leaves it restorable, which is
        // the safe side.
        let _ =
            tokio::task::spawn_blocking(move || store.update(&asset, ManifestChanges::new().cancelled(true)))
                .await;
    }
    Ending::Cancelled { removed }
}

async fn remove_bundle(session: &SessionInner, asset: &str) {
    let store = session.store.clone();
    let asset = asset.to_owned();
    let _ = tokio::task::spawn_blocking(move || store.open_bundle(&asset).and_then(Bundle::delete)).await;
}
