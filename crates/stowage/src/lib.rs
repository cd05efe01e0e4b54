//! stowage: download HLS assets for offline playback.
pub use stowage_playlist as playlist;
