//! The tokio half of the crate: the session and task API and the driver that runs each task.
//!
//! Everything IO-bound lives here; the modules beside this one (configuration, selection, planning, the
//! engine, events) are plain data and plain functions. The dependencies between the files point one way:
//!
//! ```text
//! session ──> driver ──> task ──> shared ──> session_config ──> refresh_hook
//!                          │        └──> counters
//!                          └──> event_streams
//! ```
//!
//! (each file may also use any file to its right; none uses one to its left).
//!
//! * `session`: [`DownloadSession`], which makes tasks and spawns their drivers.
//! * `task`: [`DownloadTask`], the handle of one task, and what it shares with its driver (the orders it
//!   sends, the state and ending the driver publishes).
//! * `shared`: what the tasks of a session share (the HTTP client, the store, the limits).
//! * `session_config`, `refresh_hook`, `event_streams`: the session's settings, the caller's hook for fresh
//!   URLs, and the streams of events listeners read.
//! * `counters`: what a task counts of its requests (requests, retries, bytes) for its summary.
//! * `driver`: one future per task that runs the engine and carries out its actions, one file per role:
//!   `lifecycle` (suspended, waiting for a slot, prepared, run, ended), `prepare` (playlists read,
//!   renditions chosen, bundle created or opened), `playlists`, `auth`, `refresh` (the caller's hook and
//!   re-binding to its answer), `kept_keys`, `pipeline` and `writer` (fetch, then decrypt and store),
//!   `runner` (the engine loop), `ending`, `augment`, `errors` (what the layers below report, as the
//!   task's errors and the engine's failures) and `bundle_io` (calls into the bundle on blocking threads).

mod counters;
mod driver;
mod event_streams;
mod refresh_hook;
mod session;
mod session_config;
mod shared;
mod task;

pub use event_streams::{SessionEvents, TaskEvents};
pub use refresh_hook::{Refresh, RefreshFuture, RefreshHook, RefreshRequest, refresh_fn};
pub use session::{DownloadSession, asset_id_for};
pub use session_config::SessionConfig;
pub use task::{CancelMode, DownloadTask, TaskState};
