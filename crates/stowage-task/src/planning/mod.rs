//! From playlists to the plan: which renditions, which jobs, which policies. Plain functions on parsed
//! playlists and plain data; the driver fetches, and stores what these give.
//!
//! * `wanted`: the renditions a task wants, from its configuration, its bundle, or a fresh master playlist.
//! * `rendition`: a media playlist read into the bundle's rendition plan and the driver's jobs.
//! * `jobs`: the jobs themselves, the key jobs fetched ahead of the segments, and the engine's view of them.
//! * `policies`: the task's policies as the bundle records them.

mod jobs;
mod policies;
mod rendition;
mod wanted;

pub(crate) use jobs::{Crypto, Job, job_spec, key_jobs, merge_inits};
pub(crate) use policies::{bundle_key_policy, task_key_policy};
pub(crate) use rendition::{Built, build_rendition};
pub(crate) use wanted::{Wanted, rebind_to_master, wanted_from_manifest, wanted_from_selection};
