//! Zero-copy parser and writer for HLS playlists.
