//! What the driver lets a lenient parse get away with.
//!
//! Playlists are read leniently, because players accept what encoders get slightly wrong. But a lenient
//! parse keeps a line it cannot read as an unknown line, and what it keeps that way is no longer a
//! segment, a key, an initialization section, a byte range or a number: downloading on would give an
//! asset called complete that lacks a segment, or ciphertext stored as if it were clear. So every warning
//! is judged here. Those that only concern how the text is written (a byte order mark, stray whitespace, a
//! decimal target duration, a missing comma) are cosmetic: the download goes on, and they are told once
//! as an event. Every other one refuses the playlist with an error naming the line.

use stowage_playlist::{Warning, WarningKind};

use crate::Error;

/// Tags whose value may be malformed (and so kept as an unknown line) without changing what is
/// downloaded: none carries a URI the download fetches, a duration, a key, a byte range or a number of
/// the timeline. Every other tag is judged as touching the media.
const COSMETIC_TAGS: &[&str] = &[
    "EXT-X-VERSION",
    "EXT-X-INDEPENDENT-SEGMENTS",
    "EXT-X-START",
    "EXT-X-TARGETDURATION",
    "EXT-X-PROGRAM-DATE-TIME",
    "EXT-X-DATERANGE",
    "EXT-X-ALLOW-CACHE",
    "EXT-X-SESSION-DATA",
    "EXT-X-CONTENT-STEERING",
    "EXT-X-SERVER-CONTROL",
    "EXT-X-PART-INF",
    "EXT-X-PART",
    "EXT-X-PRELOAD-HINT",
    "EXT-X-RENDITION-REPORT",
    "EXT-X-SKIP",
    "EXT-X-BITRATE",
    // The playlist type is told by EXT-X-ENDLIST, which ends the list either way.
    "EXT-X-PLAYLIST-TYPE",
    "EXT-X-ENDLIST",
    // I-frame playlists are not downloaded.
    "EXT-X-I-FRAME-STREAM-INF",
];

/// Tags of the other playlist kind that a playlist cannot hold without its reading changing what is
/// downloaded: variants and renditions in a media playlist (it is a master playlist, misread), segments
/// in a master playlist. Others (EXT-X-SESSION-KEY in a media playlist, say) are ignored harmlessly.
const MISPLACED_MEDIA: &[&str] = &["EXT-X-STREAM-INF", "EXT-X-MEDIA", "EXTINF", "EXT-X-KEY", "EXT-X-MAP"];

/// Whether a warning only concerns how the playlist is written, not what it lists.
pub(crate) fn is_cosmetic(kind: &WarningKind) -> bool {
    match kind {
        WarningKind::ByteOrderMark
        | WarningKind::Whitespace
        | WarningKind::LoneCarriageReturn
        | WarningKind::DecimalTargetDuration
        | WarningKind::BlankLineBeforeUri
        | WarningKind::InvalidUtf8InTitle
        | WarningKind::MissingExtinfComma => true,
        WarningKind::MalformedTag { tag, .. } => COSMETIC_TAGS.contains(&tag.as_str()),
        WarningKind::WrongKindTag { tag } => !MISPLACED_MEDIA.contains(&tag.as_str()),
        // A body without #EXTM3U is most likely not a playlist at all (an error page), a URI line that
        // is no segment or variant is media left out, an undefined variable leaves a URI that names
        // nothing: none of these is cosmetic. Kinds added later are judged the same way until they are
        // looked at.
        _ => false,
    }
}

/// Judges the warnings of a lenient parse of the playlist at `uri`: the first one that touches the media
/// is an error naming its line; the cosmetic ones are returned, summarised (the first of each kind, and
/// how many more there were), for the task to tell.
pub(crate) fn judge(uri: &str, warnings: Vec<Warning>) -> Result<Tolerated, Error> {
    if let Some(w) = warnings.iter().find(|w| !is_cosmetic(&w.kind)) {
        return Err(Error::Playlist { uri: uri.to_owned(), message: refusal(w), source: None });
    }
    let total = warnings.len();
    let mut firsts: Vec<Warning> = Vec::new();
    for w in warnings {
        if !firsts.iter().any(|f| std::mem::discriminant(&f.kind) == std::mem::discriminant(&w.kind)) {
            firsts.push(w);
        }
    }
    let more = total - firsts.len();
    Ok(Tolerated { warnings: firsts, more })
}

/// The cosmetic deviations of one playlist: the first of each kind, and how many more there were.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tolerated {
    pub(crate) warnings: Vec<Warning>,
    pub(crate) more: usize,
}

fn refusal(w: &Warning) -> String {
    let consequence = match &w.kind {
        WarningKind::MissingHeader => "this is not a playlist (no #EXTM3U on its first line)",
        WarningKind::StrayUri => "this URI is neither a segment nor a variant, so media would be left out",
        WarningKind::UndefinedVariable { .. } => "a URI would name nothing",
        WarningKind::MalformedTag { tag, .. } => match tag.as_str() {
            "EXT-X-KEY" | "EXT-X-SESSION-KEY" => {
                "the encryption of the segments after it is unknown, and their ciphertext would be stored \
                 as clear"
            }
            "EXTINF" => "the segment it starts would be left out",
            "EXT-X-MEDIA-SEQUENCE" | "EXT-X-DISCONTINUITY-SEQUENCE" => "the segments would be misnumbered",
            "EXT-X-BYTERANGE" | "EXT-X-MAP" => "a segment or its initialization section would be misread",
            "EXT-X-STREAM-INF" | "EXT-X-MEDIA" | "EXT-X-I-FRAME-STREAM-INF" => {
                "a variant or rendition would be left out"
            }
            _ => "what it says of the media would be lost",
        },
        _ => "what it says of the media would be lost",
    };
    format!("{w}: {consequence}")
}

#[cfg(test)]
mod tests {
    use stowage_playlist::{MediaPlaylist, ParserOptions};

    use super::*;

    fn judged(text: &str) -> Result<Tolerated, Error> {
        let parsed = MediaPlaylist::parse_with(text, &ParserOptions::lenient()).unwrap();
        judge("https://cdn.example/v.m3u8", parsed.warnings)
    }

    #[test]
    fn cosmetic_deviations_are_summarised_and_the_rest_refused() {
        let cosmetic = "\u{feff}#EXTM3U\n#EXT-X-TARGETDURATION:2.5\n#EXTINF: 2,\na.ts \n#EXTINF: 2,\nb.ts\n\
                        #EXT-X-ENDLIST\n";
        let told = judged(cosmetic).unwrap();
        let kinds: Vec<String> = told.warnings.iter().map(|w| w.kind.to_string()).collect();
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        assert_eq!(told.more, 2);

        let key = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-KEY:METHOD=AES-128\n#EXTINF:2,\na.ts\n";
        let err = judged(key).unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("stored as clear"), "{err}");
    }
}
