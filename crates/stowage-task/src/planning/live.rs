//! Playlists still being written: a live playlist (no EXT-X-ENDLIST) or an EVENT playlist that has not
//! ended. Downloading one as it stands would save a finished-looking asset that stops wherever the
//! playlist happened to be when it was read, so until live capture exists such a download is refused.
//! This is the one place that decides it.

use stowage_playlist::{MediaPlaylist, PlaylistType};

use crate::Error;

/// Refuses the media playlist fetched from `uri` unless it has ended (EXT-X-ENDLIST).
pub(crate) fn refuse_unfinished(playlist: &MediaPlaylist<'_>, uri: &str) -> Result<(), Error> {
    if playlist.is_ended() {
        return Ok(());
    }
    let event = playlist.playlist_type() == Some(PlaylistType::Event);
    Err(Error::LiveNotSupported { uri: uri.to_owned(), event })
}
