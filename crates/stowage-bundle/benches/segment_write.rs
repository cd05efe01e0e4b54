//! Segment write throughput: the bundle's durable segment writer (temporary file, checksum, fsync, rename,
//! fsync of the folder, journal record with fsync; and the batched variant with one sync per segment)
//! next to a plain `dd`-style write + fsync of the same 2 MB on the same disk, measured side by side in one
//! run. All write in 64 KiB chunks, as bytes arrive from the network.
//!
//! Run with `cargo bench -p stowage-bundle --bench segment_write`. The files live in a temporary folder in
//! the system's temporary folder (set `STOWAGE_BENCH_DIR` to measure another disk).

// criterion's macros generate undocumented public items.
#![allow(missing_docs)]

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stowage_bundle::{
    AssetInfo, Bundle, BundleOptions, BundlePlan, Durability, LocalFs, MediaFormat, PlannedSegment,
    RenditionId, RenditionKind, RenditionPlan,
};

const SEGMENT: usize = 2 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var_os("STOWAGE_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    tempfile::tempdir_in(base).expect("bench folder")
}

fn plan(count: u64) -> BundlePlan {
    let mut text = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:4\n");
    let mut segments = Vec::new();
    for i in 0..count {
        text.push_str(&format!("#EXTINF:4.0,\ns{i}.ts\n"));
        segments.push(PlannedSegment::media(0, i, 4.0, format!("s{i}.ts")));
    }
    text.push_str("#EXT-X-ENDLIST\n");
    let id = RenditionId::new("video").expect("valid id");
    let rendition = RenditionPlan::new(id, RenditionKind::Video, MediaFormat::Ts, "v.m3u8", text, segments);
    BundlePlan::new(AssetInfo::new("bench")).rendition(rendition.primary(true))
}

fn data() -> Vec<u8> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..SEGMENT)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn segment_write(c: &mut Criterion) {
    let bytes = data();
    let tmp = bench_dir();
    let mut group = c.benchmark_group("segment_write_2MB_fsync");
    group.throughput(Throughput::Bytes(SEGMENT as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(15));

    let mut run = 0u32;
    group.bench_function("plain_write_fsync", |b| {
        b.iter_custom(|iters| {
            run += 1;
            let dir = tmp.path().join(format!("plain-{run}"));
            std::fs::create_dir_all(&dir).expect("folder");
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let path = dir.join(format!("s{i}.ts"));
                let start = Instant::now();
                let mut file = File::create(&path).expect("create");
                for chunk in bytes.chunks(CHUNK) {
                    file.write_all(chunk).expect("write");
                }
                file.sync_all().expect("fsync");
                drop(file);
                total += start.elapsed();
            }
            std::fs::remove_dir_all(&dir).expect("cleanup");
            total
        });
    });

    for (name, durability) in [
        ("bundle_segment_writer_full", Durability::Full),
        ("bundle_segment_writer_batched16", Durability::Batched { max_unsynced: 16 }),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                run += 1;
                let dir = tmp.path().join(format!("bundle-{run}"));
                let options = BundleOptions::default().durability(durability);
                let bundle = Bundle::create_with(Arc::new(LocalFs::new()), &dir, plan(iters), options)
                    .expect("bundle");
                let ids = bundle.pending_segments();
                let mut total = Duration::ZERO;
                for id in &ids {
                    let start = Instant::now();
                    let mut writer = bundle.segment_writer(id).expect("writer");
                    for chunk in bytes.chunks(CHUNK) {
                        writer.write(chunk).expect("write");
                    }
                    writer.finish().expect("finish");
                    total += start.elapsed();
                }
                // The last batch's sync is part of the cost.
                let start = Instant::now();
                bundle.sync().expect("sync");
                total += start.elapsed();
                drop(bundle);
                std::fs::remove_dir_all(&dir).expect("cleanup");
                total
            });
        });
    }
    group.finish();
}

criterion_group!(benches, segment_write);
criterion_main!(benches);
