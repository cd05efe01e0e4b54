//! Serving a store of offline HLS bundles to players and browsers: the playback half of stowage.
//!
//! **What it is.** A [`Server`] on hyper (HTTP/1.1 and HTTP/2; HTTPS with a given certificate through
//! rustls) that serves a store of bundles read-only (unless given downloads to drive, below), and a page that
//! plays them:
//!
//! - each bundle's local playlists, segments, initialization sections, kept keys and artwork at
//!   `/asset/<id>/<path>`, with their media types, byte ranges (`206` with `Content-Range`, suffix ranges,
//!   `416` past the end), `HEAD`, entity tags (`304` for `If-None-Match`), and `Cache-Control: no-store` for
//!   the playlists of a bundle whose download is not finished;
//! - for players that cannot switch renditions (a browser's own HLS player): a master playlist per audio
//!   choice (`/asset/<id>/master.m3u8?audio=<rendition>`) and each subtitle rendition as one WebVTT file
//!   (`/asset/<id>/<rendition>/subtitles.vtt`) with cue times right across segments;
//! - `GET /`: the store as a person wants it (title, artwork, duration, size, state and progress, gaps,
//!   expiry, priority) with a player per asset and its audio and subtitle choices; `/api/assets`: the same
//!   as JSON, which the page polls while downloads run.
//!
//! Playing marks access: a playlist request marks the bundle as accessed, so a purge of the least
//! recently used removes what was least recently played, and every playlist, segment, key or subtitle
//! request renews the bundle's play lease (two minutes), so that purge and expiry never remove an asset
//! being played. Both are kept beside the manifest
//! ([`mark_accessed`](stowage_bundle::StorageManager::mark_accessed),
//! [`mark_playing`](stowage_bundle::StorageManager::mark_playing)), written at most every 30 seconds per
//! asset, also while a download holds the bundle. A server removes the store's expired assets when it
//! starts ([`Server::removed_at_start`]).
//!
//! **Safe by construction.** Only the files a bundle's manifest and local playlists name are served: the
//! path is decoded one segment at a time (no `..`, no encoded slash) and parsed back into what it names
//! by [`stowage_bundle::BundleReader`], which opens files from the store folder down without following
//! symbolic links. The manifest, journal, lock and source playlists are never served, nor are folders
//! listed. The server binds loopback unless told otherwise ([`ServeConfig::allow_remote`]), and then also
//! answers only requests addressed to a loopback name, which defeats DNS rebinding. Every connection is
//! bounded: header size, time to send a header, time without progress, connections at once (see
//! [`ServeConfig`] for the defaults).
//!
//! **The download API** (optional, [`ServeConfig::downloads`]): `POST /api/downloads` starts a download,
//! `POST /api/downloads/<id>/suspend` and `.../resume` suspend and resume one, `DELETE /api/assets/<id>`
//! removes an asset (stopping its download), and `GET /api/events` streams every download's events as
//! server-sent events. Requests whose `Origin` is not the server's own are refused, so that another web
//! site cannot drive a local stowage, and those that change the store need the token the server makes when
//! it starts ([`Server::api_token`], sent as `Authorization: Bearer <token>`). The server downloads
//! nothing itself: it drives the [`Downloads`] it is given (`stowage serve` gives it a download session of
//! the store it serves).
//!
//! **What it does not do.** Without the download API, it changes nothing in the store (beyond access
//! times, play leases and the removal of expired assets when it starts), downloads nothing,
//! and transcodes nothing. It reads bundles only through `stowage-bundle`, the one crate that touches the
//! disk.
//!
//! **Where it sits.** Beside `stowage-task`, above `stowage-bundle` (and `stowage-playlist`, for the
//! playlists it derives); the facade's `stowage serve` command runs it.
//!
//! # Quick start
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use stowage_serve::{ServeConfig, Server};
//!
//! let dir = std::env::temp_dir().join(format!("stowage-serve-doc-{}", std::process::id()));
//! let store = stowage_bundle::StorageManager::new(&dir);
//! let config = ServeConfig::default().max_connections(32);
//! let server = Server::bind_with("127.0.0.1:0".parse()?, store, config).await?;
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//!
//! // Non-loopback addresses need an explicit allowance.
//! let refused = Server::bind("0.0.0.0:0".parse()?, stowage_bundle::StorageManager::new(&dir)).await;
//! assert!(matches!(refused, Err(stowage_serve::Error::NotLoopback { .. })));
//! server.shutdown().await;
//! # Ok(()) }
//! ```

// A public crate: every public type may grow (`#[non_exhaustive]`) unless it is closed by definition, which
// its `#[allow]` says.
#![warn(clippy::exhaustive_enums, clippy::exhaustive_structs)]

mod api;
mod assets;
mod body;
mod config;
mod derived;
mod error;
mod http;
mod master;
mod page;
mod path;
mod pts;
mod server;
mod service;
mod webvtt;

pub use api::{Downloads, DownloadsError};
pub use config::{ServeConfig, TlsConfig};
pub use error::{Error, Result};
pub use server::Server;
