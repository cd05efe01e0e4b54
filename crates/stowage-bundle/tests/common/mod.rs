//! Helpers shared by the integration tests: plans with matching source playlists, and segment bytes.

#![allow(dead_code, unreachable_pub)]

use stowage_bundle::{
    AssetInfo, Bundle, BundlePlan, ByteRange, MediaFormat, PlannedSegment, RenditionId, RenditionKind,
    RenditionPlan, SegmentId,
};

/// A rendition identifier (panics on a bad literal: test input).
pub fn rid(name: &str) -> RenditionId {
    RenditionId::new(name).unwrap()
}

/// A transport-stream rendition of `count` segments of `duration` seconds, media sequence from `first`.
pub fn ts_rendition(name: &str, kind: RenditionKind, count: u64, first: u64, duration: f64) -> RenditionPlan {
    let mut text = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{first}\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n",
        duration.ceil()
    );
    let mut segments = Vec::new();
    for i in 0..count {
        text.push_str(&format!("#EXTINF:{duration:.3},\nhttps://cdn.example/{name}/s{i}.ts?sig=abc\n"));
        let uri = format!("https://cdn.example/{name}/s{i}.ts?sig=abc");
        segments.push(PlannedSegment::media(0, first + i, duration, uri));
    }
    text.push_str("#EXT-X-ENDLIST\n");
    RenditionPlan::new(
        rid(name),
        kind,
        MediaFormat::Ts,
        format!("https://cdn.example/{name}.m3u8"),
        text,
        segments,
    )
}

/// An fMP4 rendition with an initialization section and `count` segments.
pub fn fmp4_rendition(name: &str, count: u64) -> RenditionPlan {
    let mut text = String::from(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n\
         #EXT-X-MAP:URI=\"init.mp4\"\n",
    );
    let mut segments = vec![PlannedSegment::init(0, 0, "https://cdn.example/init.mp4")];
    for i in 0..count {
        text.push_str(&format!("#EXTINF:4.0,\nseg{i}.m4s\n"));
        segments.push(PlannedSegment::media(0, i, 4.0, format!("https://cdn.example/seg{i}.m4s")));
    }
    text.push_str("#EXT-X-ENDLIST\n");
    RenditionPlan::new(
        rid(name),
        RenditionKind::Video,
        MediaFormat::Fmp4,
        "https://cdn.example/f.m3u8",
        text,
        segments,
    )
    .primary(true)
}

/// A single-file rendition: `count` byte ranges of `len` bytes each in `main.ts`.
pub fn byte_range_rendition(name: &str, count: u64, len: u64) -> RenditionPlan {
    let mut text = String::from("#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:2\n");
    let mut segments = Vec::new();
    for i in 0..count {
        if i == 0 {
            text.push_str(&format!("#EXTINF:2.0,\n#EXT-X-BYTERANGE:{len}@0\nmain.ts\n"));
        } else {
            text.push_str(&format!("#EXTINF:2.0,\n#EXT-X-BYTERANGE:{len}\nmain.ts\n"));
        }
        segments.push(
            PlannedSegment::media(0, i, 2.0, "https://cdn.example/main.ts")
                .byte_range(ByteRange::new(i * len, len))
                .expected_length(len),
        );
    }
    text.push_str("#EXT-X-ENDLIST\n");
    RenditionPlan::new(
        rid(name),
        RenditionKind::Video,
        MediaFormat::Ts,
        "https://cdn.example/br.m3u8",
        text,
        segments,
    )
    .primary(true)
}

/// A plan of one primary video rendition of `count` segments.
pub fn simple_plan(asset: &str, count: u64) -> BundlePlan {
    BundlePlan::new(AssetInfo::new(asset).title(format!("Asset {asset}")))
        .rendition(ts_rendition("video", RenditionKind::Video, count, 0, 6.0).primary(true))
}

/// Deterministic bytes of a segment, different for each identity and seed.
pub fn segment_bytes(id: &SegmentId, seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed ^ id.media_sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (id.is_init() as u64);
    for b in id.rendition.as_str().bytes() {
        state = state.wrapping_mul(31).wrapping_add(u64::from(b));
    }
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Writes a segment in chunks of 64 KiB and finishes it.
pub fn write_segment(bundle: &Bundle, id: &SegmentId, bytes: &[u8]) -> stowage_bundle::Result<()> {
    let mut writer = bundle.segment_writer(id)?;
    for chunk in bytes.chunks(64 * 1024) {
        writer.write(chunk)?;
    }
    writer.finish().map(|_| ())
}

/// A small seeded generator (xorshift), so that tests need no random-number crate.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
