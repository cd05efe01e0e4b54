//! The tokio driver: runs one task's engine and carries out its actions with the fetch and bundle crates.
//!
//! One driver future per task ([`run`]). It fetches and resolves the playlists, creates or opens the
//! bundle, then loops as the engine's module documentation describes, streaming every segment through
//! decryption into the bundle.

mod augment;
mod auth;
mod bundle_io;
mod ending;
mod errors;
mod kept_keys;
mod lifecycle;
mod pipeline;
mod playlists;
mod prepare;
mod recording;
mod refresh;
mod resume;
mod runner;
mod writer;

pub(crate) use errors::retry_failure;
pub(crate) use lifecycle::{Source, run};
