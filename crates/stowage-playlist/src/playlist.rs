//! Either kind of playlist, and the detector that tells which kind an input is.

use std::fmt;

use crate::error::{Error, PlaylistKind};
use crate::master::MasterPlaylist;
use crate::media::MediaPlaylist;
use crate::options::ParserOptions;
use crate::reader::Parsed;
use crate::tags::table::{is_master_tag, is_media_tag};

/// A parsed playlist of either kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums, reason = "HLS has two kinds of playlist")]
pub enum Playlist<'a> {
    /// A master (multivariant) playlist.
    Master(MasterPlaylist<'a>),
    /// A media playlist.
    Media(MediaPlaylist<'a>),
}

impl<'a> Playlist<'a> {
    /// Detects the kind and parses strictly.
    ///
    /// ```
    /// use stowage_playlist::Playlist;
    /// let p = Playlist::parse("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n")?;
    /// assert!(matches!(p, Playlist::Master(_)));
    /// # Ok::<(), stowage_playlist::Error>(())
    /// ```
    pub fn parse<I: AsRef<[u8]> + ?Sized>(input: &'a I) -> Result<Self, Error> {
        Ok(Self::parse_with(input, &ParserOptions::default())?.playlist)
    }

    /// Detects the kind and parses with options. An input with neither master nor media tags is parsed
    /// as a media playlist (and so, strictly, fails for want of EXT-X-TARGETDURATION).
    pub fn parse_with<I: AsRef<[u8]> + ?Sized>(
        input: &'a I,
        options: &ParserOptions,
    ) -> Result<Parsed<Self>, Error> {
        let input = input.as_ref();
        match detect(input) {
            Some(PlaylistKind::Master) => {
                let p = MasterPlaylist::parse_with(input, options)?;
                Ok(Parsed {
                    playlist: Self::Master(p.playlist),
                    warnings: p.warnings,
                    variables: p.variables,
                })
            }
            _ => {
                let p = MediaPlaylist::parse_with(input, options)?;
                Ok(Parsed { playlist: Self::Media(p.playlist), warnings: p.warnings, variables: p.variables })
            }
        }
    }

    /// The kind.
    pub fn kind(&self) -> PlaylistKind {
        match self {
            Self::Master(_) => PlaylistKind::Master,
            Self::Media(_) => PlaylistKind::Media,
        }
    }

    /// A copy that borrows nothing.
    pub fn into_owned(self) -> Playlist<'static> {
        match self {
            Self::Master(p) => Playlist::Master(p.into_owned()),
            Self::Media(p) => Playlist::Media(p.into_owned()),
        }
    }

    /// Writes the playlist to `out`.
    pub fn write_to(&self, out: &mut String) {
        match self {
            Self::Master(p) => p.write_to(out),
            Self::Media(p) => p.write_to(out),
        }
    }
}

impl fmt::Display for Playlist<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Master(p) => p.fmt(f),
            Self::Media(p) => p.fmt(f),
        }
    }
}

/// Tells whether an input is a master or a media playlist from its first tag that only one kind has;
/// `None` when no such tag is there (an empty or truncated input, or not a playlist). Cheap: it stops at
/// the first telling tag and allocates nothing.
///
/// ```
/// use stowage_playlist::{PlaylistKind, detect};
/// assert_eq!(detect(b"#EXTM3U\n#EXT-X-TARGETDURATION:6\n"), Some(PlaylistKind::Media));
/// assert_eq!(detect(b"#EXTM3U\n"), None);
/// ```
pub fn detect(input: &[u8]) -> Option<PlaylistKind> {
    // A byte order mark is skipped, as a lenient parse skips it.
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    // A lone carriage return ends a line here too, as in a lenient parse, so that detection agrees with
    // every parse of the same input.
    for line in input.split(|&b| b == b'\n' || b == b'\r') {
        let Some(body) = line.strip_prefix(b"#") else { continue };
        let end = memchr::memchr(b':', body).unwrap_or(body.len());
        let Ok(name) = std::str::from_utf8(&body[..end]) else { continue };
        let name = name.trim_end();
        if is_master_tag(name) {
            return Some(PlaylistKind::Master);
        }
        // EXT-X-BYTERANGE does not decide: it always comes with an #EXTINF (which does), and the writer
        // moves it after that #EXTINF, so deciding on it could make a written playlist detect otherwise.
        if is_media_tag(name) && name != "EXT-X-BYTERANGE" {
            return Some(PlaylistKind::Media);
        }
    }
    None
}
