//! Makes the store the serving benchmark reads (`benches/serve/compare.sh`): one finished asset, `big`,
//! whose video rendition holds 32 segments of 2 MB (`big/video/seg-d0-s0.ts` to `seg-d0-s31.ts`).
//!
//! `cargo run --release -p stowage-serve --example bench_store -- DIR`

use stowage_bundle::{AssetInfo, BundlePlan, RenditionId, RenditionKind, RenditionPlan, StorageManager};

/// Segments of the asset.
const SEGMENTS: usize = 32;
/// Bytes per segment.
const SEGMENT_LEN: usize = 2 * 1000 * 1000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: bench_store DIR")?;
    let mut text =
        String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:8\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    for i in 0..SEGMENTS {
        text.push_str(&format!("#EXTINF:8.000,\nseg{i}.ts\n"));
    }
    text.push_str("#EXT-X-ENDLIST\n");
    let video = RenditionPlan::from_playlist(
        RenditionId::new("video")?,
        RenditionKind::Video,
        "https://cdn.example/video/index.m3u8",
        text,
    )?
    .primary(true);
    let store = StorageManager::new(&dir);
    let bundle = store
        .create_bundle(BundlePlan::new(AssetInfo::new("big").title("2 MB segments")).rendition(video))?;
    // TS-like bytes: a sync byte every 188, the rest varying so that nothing compresses them.
    let mut state: u32 = 0x1234_5678;
    for id in bundle.pending_segments() {
        let bytes: Vec<u8> = (0..SEGMENT_LEN)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                if i % 188 == 0 { 0x47 } else { state as u8 }
            })
            .collect();
        let mut writer = bundle.segment_writer(&id)?;
        writer.write(&bytes)?;
        writer.finish()?;
    }
    bundle.mark_finished()?;
    println!("{}", bundle.dir().display());
    Ok(())
}
