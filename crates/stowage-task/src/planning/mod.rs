//! From playlists to the plan: which renditions, which jobs, which policies. Plain functions on parsed
//! playlists and plain data; the driver fetches, and stores what these give.
//!
//! * `wanted`: the renditions a task wants, from its configuration, its bundle, or a fresh master playlist.
//! * `rendition`: a media playlist read into the bundle's rendition plan and the driver's jobs.
//! * `content`: what a stored entry is expected to hold, and the cheap check of its bytes against it.
//! * `jobs`: the jobs themselves, the key jobs fetched ahead of the segments, and the engine's view of them.
//! * `live`: playlists still being written, refused until live capture exists.
//! * `policies`: the task's policies, from its configuration or its bundle, and a new bundle's plan.
//! * `tolerance`: which deviations a lenient parse tolerated are cosmetic, and which refuse a playlist.
//! * `live`: a live rendition's reloads turned into the segments and holes a recording appends.
//! * `changes`: what differs between a bundle's plan of a rendition and its media playlist read again.

mod changes;
mod content;
mod jobs;
mod live;
mod policies;
mod rendition;
mod tolerance;
mod wanted;

pub(crate) use changes::playlist_changes;
pub(crate) use content::{Content, Sniffer};
pub(crate) use jobs::{Crypto, Job, JobTable, engine_plan, job_spec, key_jobs, merge_inits};
pub(crate) use live::{
    Batch, BuiltBatch, Ended, LiveTrack, build_batch, common_end, common_start, is_live, pending_jobs,
};
pub(crate) use policies::{bundle_plan, configuration_of, new_bundle_policies, renewal, task_policies};
pub(crate) use rendition::{Built, build_rendition, check_segment_count, parser_options};
pub(crate) use tolerance::{Tolerated, judge};
pub(crate) use wanted::{
    Wanted, add_selected, rebind_to_master, wanted_for_media_playlist, wanted_from_manifest,
    wanted_from_selection,
};
