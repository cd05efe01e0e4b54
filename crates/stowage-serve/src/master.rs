//! A master playlist per audio choice, for players that cannot switch renditions themselves.
//!
//! A browser's own HLS player (Chromium's, Safari's) plays the rendition marked `DEFAULT=YES` and offers no
//! way to choose another; Chromium shows no text tracks either. So the server derives, from a bundle's
//! local master playlist, one that holds a single audio rendition, the chosen one, marked `DEFAULT=YES`,
//! and no subtitle renditions (a page adds subtitles as WebVTT `<track>`s instead, see
//! [`webvtt`](crate::webvtt)). Variants that use another audio group are left out; everything else
//! (variants, closed captions, unknown tags) is kept as it is.

use stowage_playlist::{AttributeValue, MasterPlaylist, MasterTag, ParserOptions};

/// The local master playlist `master` with `audio` (a rendition identifier of the bundle) as its only
/// audio rendition and without subtitle renditions. `Err` names what is wrong: the playlist does not
/// parse, or no audio rendition of it is the rendition `audio`.
pub(crate) fn with_audio(master: &str, audio: &str) -> Result<String, String> {
    let parsed = MasterPlaylist::parse_with(master, &ParserOptions::lenient()).map_err(|e| e.to_string())?;
    let mut playlist = parsed.playlist;
    // Local master playlists point at `<rendition>/index.m3u8`.
    let uri = format!("{audio}/index.m3u8");
    let is_type = |attrs: &stowage_playlist::AttributeList<'_>, kind: &str| attrs.text("TYPE") == Some(kind);
    let group = playlist
        .renditions()
        .find(|r| is_type(r.attributes(), "AUDIO") && r.attributes().text("URI") == Some(uri.as_str()))
        .and_then(|r| r.attributes().text("GROUP-ID").map(str::to_owned))
        .ok_or_else(|| format!("no audio rendition {audio} in the master playlist"))?;
    playlist.retain_renditions(|r| {
        let attrs = r.attributes();
        if is_type(attrs, "AUDIO") {
            attrs.text("URI") == Some(uri.as_str())
        } else {
            !is_type(attrs, "SUBTITLES")
        }
    });
    playlist.retain_variants(|v| v.stream_inf.attributes().text("AUDIO").is_none_or(|g| g == group));
    for tag in playlist.tags_mut() {
        match tag {
            MasterTag::Rendition(r) if is_type(r.attributes(), "AUDIO") => {
                let attrs = r.attributes_mut();
                attrs.set("DEFAULT", AttributeValue::Unquoted("YES".into()));
                attrs.set("AUTOSELECT", AttributeValue::Unquoted("YES".into()));
            }
            MasterTag::Variant(v) => {
                v.stream_inf.attributes_mut().remove("SUBTITLES");
            }
            _ => {}
        }
    }
    if playlist.variants().next().is_none() {
        return Err(format!("no variant of the master playlist plays with audio {audio}"));
    }
    Ok(playlist.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:6\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=YES,AUTOSELECT=YES,URI=\"audio-en/index.m3u8\"\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",LANGUAGE=\"fr\",NAME=\"Français\",DEFAULT=NO,URI=\"audio-fr/index.m3u8\"\n\
        #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",LANGUAGE=\"en\",NAME=\"English\",URI=\"subs-en/index.m3u8\"\n\
        #EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC\",INSTREAM-ID=\"CC1\"\n\
        #EXT-X-STREAM-INF:BANDWIDTH=500000,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"aud\",SUBTITLES=\"subs\",CLOSED-CAPTIONS=\"cc\"\n\
        video/index.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=400000,AUDIO=\"other\"\n\
        other/index.m3u8\n";

    #[test]
    fn the_chosen_audio_is_the_only_one_and_default() {
        let text = with_audio(MASTER, "audio-fr").unwrap();
        assert!(text.contains("LANGUAGE=\"fr\""), "{text}");
        let parsed = MasterPlaylist::parse(text.as_str()).unwrap();
        let audio = parsed.renditions().next().unwrap().attributes();
        assert_eq!(audio.text("URI"), Some("audio-fr/index.m3u8"));
        assert_eq!((audio.text("DEFAULT"), audio.text("AUTOSELECT")), (Some("YES"), Some("YES")));
        assert!(!text.contains("audio-en"), "{text}");
        assert!(!text.contains("SUBTITLES"), "{text}");
        assert!(text.contains("CLOSED-CAPTIONS=\"cc\""), "{text}");
        assert!(text.contains("video/index.m3u8") && !text.contains("other/index.m3u8"), "{text}");
        assert_eq!(parsed.renditions().count(), 2);
    }

    #[test]
    fn an_unknown_or_non_audio_rendition_is_refused() {
        assert!(with_audio(MASTER, "audio-de").is_err());
        assert!(with_audio(MASTER, "subs-en").is_err());
        assert!(with_audio("not a playlist", "audio-en").is_err());
    }
}
