//! The generated inputs the benchmarks share, sized like the inputs other parsers publish figures for.

use std::fmt::Write as _;

/// Segments in the large media playlists.
pub(crate) const SEGMENTS: usize = 100_000;

fn date(seconds: f64) -> String {
    // 2024-01-01T00:00:00Z plus `seconds`, always within the same month for this input size.
    let ms = (seconds * 1000.0).round() as u64;
    let (s, ms) = (ms / 1000, ms % 1000);
    let day = 1 + s / 86_400;
    let (h, m, s) = (s / 3600 % 24, s / 60 % 60, s % 60);
    format!("2024-01-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

/// A VOD media playlist of 100,000 segments: a key every 1000 segments, a date every 10, titled #EXTINF
/// lines and absolute URIs; with `byte_ranges`, an EXT-X-BYTERANGE on every segment too.
pub(crate) fn media(byte_ranges: bool) -> String {
    let mut out = String::with_capacity(SEGMENTS * 100);
    out.push_str("#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:7\n#EXT-X-MEDIA-SEQUENCE:0\n");
    out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n");
    let mut offset = 0u64;
    for i in 0..SEGMENTS {
        if i % 1000 == 0 {
            let _ = writeln!(
                out,
                "#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example.com/k/{}\",IV=0x{:032x}",
                i / 1000,
                i
            );
        }
        if i % 10 == 0 {
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", date(i as f64 * 6.006));
        }
        let _ = writeln!(out, "#EXTINF:6.006,Segment title {i}");
        if byte_ranges {
            let length = 1_000_000 + (i as u64 * 7919) % 500_000;
            let _ = writeln!(out, "#EXT-X-BYTERANGE:{length}@{offset}");
            offset += length;
            let _ = writeln!(out, "https://cdn.example.com/video/1080p/stream-{:03}.ts", i / 1000);
        } else {
            let _ = writeln!(out, "https://cdn.example.com/video/1080p/segment-{i:06}.ts");
        }
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

/// A master playlist with 64 variants and 20 renditions.
pub(crate) fn master() -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let langs = ["en", "fr", "de", "es", "it", "pt", "nl", "sv", "ja", "ko"];
    for (i, l) in langs.iter().enumerate() {
        let _ = writeln!(
            out,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",LANGUAGE=\"{l}\",NAME=\"Audio {l}\",DEFAULT={},\
             AUTOSELECT=YES,CHANNELS=\"2\",URI=\"https://cdn.example.com/audio/{l}/index.m3u8\"",
            if i == 0 { "YES" } else { "NO" }
        );
        let _ = writeln!(
            out,
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",LANGUAGE=\"{l}\",NAME=\"Subtitles {l}\",\
             DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI=\"https://cdn.example.com/subs/{l}/index.m3u8\""
        );
    }
    let sizes = [
        (416, 234),
        (640, 360),
        (768, 432),
        (960, 540),
        (1280, 720),
        (1920, 1080),
        (2560, 1440),
        (3840, 2160),
    ];
    for i in 0..64 {
        let (w, h) = sizes[i % sizes.len()];
        let bandwidth = 200_000 + i * 250_000;
        let _ = writeln!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},AVERAGE-BANDWIDTH={},CODECS=\"avc1.640028,mp4a.40.2\",\
             RESOLUTION={w}x{h},FRAME-RATE=29.970,AUDIO=\"aac\",SUBTITLES=\"subs\",CLOSED-CAPTIONS=NONE,\
             VIDEO-RANGE=SDR\nhttps://cdn.example.com/video/{i}/index.m3u8",
            bandwidth * 9 / 10
        );
    }
    out
}
