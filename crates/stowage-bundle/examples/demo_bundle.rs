//! Writes a small bundle to show the format: `cargo run -p stowage-bundle --example demo_bundle -- DIR
//! [partial]`. The segment bytes are synthetic (not decodable media): the point is the layout, the
//! manifest, the journal and the local playlists, which `docs/bundle-format.md` describes.

use stowage_bundle::{
    AssetInfo, Bundle, BundlePlan, ByteRange, IntegrityPolicy, MediaFormat, PlannedSegment, RenditionId,
    RenditionKind, RenditionPlan, Result,
};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: demo_bundle DIR [partial]");
        std::process::exit(2);
    };
    let partial = args.next().as_deref() == Some("partial");

    let video_playlist = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n\
        #EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.0,\nv0.m4s\n#EXT-X-DISCONTINUITY\n\
        #EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:04.000Z\n#EXTINF:4.0,\nv1.m4s\n#EXT-X-ENDLIST\n";
    let video = RenditionPlan::new(
        RenditionId::new("video")?,
        RenditionKind::Video,
        MediaFormat::Fmp4,
        "https://media.example/video.m3u8",
        video_playlist,
        vec![
            PlannedSegment::init(0, 0, "https://media.example/init.mp4"),
            PlannedSegment::media(0, 0, 4.0, "https://media.example/v0.m4s"),
            PlannedSegment::media(1, 1, 4.0, "https://media.example/v1.m4s"),
        ],
    )
    .primary(true)
    .bandwidth(2_000_000)
    .codecs("avc1.64001f,mp4a.40.2")
    .resolution(1280, 720);
    let audio_playlist = "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:4\n\
        #EXTINF:4.0,\n#EXT-X-BYTERANGE:1000@0\naudio.aac\n#EXTINF:4.0,\n#EXT-X-BYTERANGE:1000\naudio.aac\n\
        #EXT-X-ENDLIST\n";
    let audio = RenditionPlan::new(
        RenditionId::new("audio-fr")?,
        RenditionKind::Audio,
        MediaFormat::Aac,
        "https://media.example/audio.m3u8",
        audio_playlist,
        vec![
            PlannedSegment::media(0, 0, 4.0, "https://media.example/audio.aac")
                .byte_range(ByteRange::new(0, 1000))
                .expected_length(1000),
            PlannedSegment::media(0, 1, 4.0, "https://media.example/audio.aac")
                .byte_range(ByteRange::new(1000, 1000))
                .expected_length(1000),
        ],
    )
    .language("fr")
    .name("Français");
    let plan =
        BundlePlan::new(AssetInfo::new("demo").title("Demo asset").url("https://media.example/master.m3u8"))
            .rendition(video)
            .rendition(audio)
            .integrity(IntegrityPolicy::Tolerant);

    let bundle = Bundle::create(&dir, plan)?;
    let pending = bundle.pending_segments();
    let count = if partial { pending.len() / 2 } else { pending.len() };
    for (n, id) in pending.iter().take(count).enumerate() {
        let len = if id.byte_range.is_some() { 1000 } else { 500 + n * 10 };
        let mut writer = bundle.segment_writer(id)?;
        writer.write(&vec![n as u8; len])?;
        writer.finish()?;
    }
    if partial {
        bundle.record_gap(&pending[count], "HTTP 404 Not Found")?;
        bundle.write_playlists()?;
    } else {
        bundle.mark_finished()?;
    }
    println!("{}", bundle.master_playlist_path().display());
    Ok(())
}
