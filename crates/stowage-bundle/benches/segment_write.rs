//! Segment write throughput: the bundle's segment writer next to a plain `dd`-style write + fsync of the
//! same 2 MB on the same disk, measured side by side in one run. All write in 64 KiB chunks, as bytes
//! arrive from the network.
//!
//! - `plain_write_fsync`: create, write, `fsync`: the floor.
//! - `bundle_full`: [`Durability::Full`]: temporary file, CRC-32, `fdatasync`, rename, `fsync` of the folder,
//!   journal record, `fdatasync` of the journal (three syncs).
//! - `bundle_default`: the default options, [`Durability::Batched`]: temporary file, CRC-32, `fdatasync`,
//!   rename, journal record; the folder and the journal are synced by the bundle's background thread once
//!   for many segments (at most 32 unsynced, at most 1 s). The final sync is included in the time.
//!
//! Disk timings drift with whatever else the machine does, so every benchmark writes segments of all
//! three kinds, taking turns in blocks of 64 segments in rotating order, and times only its own blocks:
//! the three see the same disk at nearly the same moments. Each block ends with all it wrote durable (the
//! default writer's block with `Bundle::sync`, timed), because a sync commits the filesystem's journal
//! for everything pending: with finer interleaving, one kind's sync pays for another's pending renames
//! and appends. The `_4_writers` group does the same with four segments written at once by four threads
//! (as a download with four connections does), where the bundle's folder and journal syncs are shared.
//!
//! Criterion's medians of the three benchmarks come from their own samples, taken one benchmark after the
//! other, so from different moments. Every sample times all three kinds, though, and after each group the
//! bench prints the medians over all samples and the median of each kind's ratio to the plain write
//! within the same sample: the paired ratio, the one to quote when the machine's load drifts.
//!
//! Run with `cargo bench -p stowage-bundle --bench segment_write`. Files go to a temporary folder in the
//! system's temporary folder (set `STOWAGE_BENCH_DIR` to measure another disk).

// criterion's macros generate undocumented public items.
#![allow(missing_docs)]

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stowage_bundle::{
    AssetInfo, Bundle, BundleOptions, BundlePlan, Durability, LocalFs, MediaFormat, PlannedSegment,
    RenditionId, RenditionKind, RenditionPlan, SegmentId,
};

const SEGMENT: usize = 2 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
/// The kinds, and their benchmark names, in this order everywhere.
const KINDS: [Kind; 3] = [Kind::Plain, Kind::Full, Kind::Default];
const NAMES: [&str; 3] = ["plain_write_fsync", "bundle_full", "bundle_default"];

/// Segments written by one kind before the next kind takes its turn.
const BLOCK: usize = 64;

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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Full,
    Default,
}

/// One batch of `iters` writes of each kind, in fresh folders.
struct Rig {
    dir: PathBuf,
    full: Bundle,
    default: Bundle,
    ids: Vec<SegmentId>,
}

impl Rig {
    fn new(base: &Path, run: u32, segments: u64) -> Self {
        let dir = base.join(format!("run-{run}"));
        std::fs::create_dir_all(dir.join("plain")).expect("folder");
        let open = |name: &str, options| {
            Bundle::create_with(Arc::new(LocalFs::new()), dir.join(name), plan(segments), options)
                .expect("bundle")
        };
        let full = open("full", BundleOptions::default().durability(Durability::Full));
        let default = open("default", BundleOptions::default());
        let ids = full.pending_segments();
        Self { dir, full, default, ids }
    }

    fn write_one(&self, kind: Kind, i: usize, bytes: &[u8]) {
        match kind {
            Kind::Plain => {
                let mut file = File::create(self.dir.join("plain").join(format!("s{i}.ts"))).expect("create");
                for chunk in bytes.chunks(CHUNK) {
                    file.write_all(chunk).expect("write");
                }
                file.sync_all().expect("fsync");
            }
            Kind::Full | Kind::Default => {
                let bundle = if kind == Kind::Full { &self.full } else { &self.default };
                let mut writer = bundle.segment_writer(&self.ids[i]).expect("writer");
                for chunk in bytes.chunks(CHUNK) {
                    writer.write(chunk).expect("write");
                }
                writer.finish().expect("finish");
            }
        }
    }

    /// Writes segments `first..first + n` of `kind` from `n` threads at once.
    fn write_parallel(&self, kind: Kind, first: usize, n: usize, bytes: &[u8]) {
        std::thread::scope(|s| {
            for i in first..first + n {
                s.spawn(move || self.write_one(kind, i, bytes));
            }
        });
    }

    /// Writes the segments of each kind in blocks of [`BLOCK`] segments, the kinds taking turns block by
    /// block, and returns the time of each kind's blocks (in [`KINDS`] order). Every block ends with
    /// everything it wrote durable (the default writer's with [`Bundle::sync`], timed), so that no kind
    /// pays for syncs another left pending.
    fn measure(self, writers: usize, bytes: &[u8], run: u32) -> [Duration; 3] {
        let order = KINDS;
        let steps = self.ids.len() / writers;
        let per_block = (BLOCK / writers).max(1);
        let mut totals = [Duration::ZERO; 3];
        for (b, first) in (0..steps).step_by(per_block).enumerate() {
            for k in 0..3 {
                let kind = order[(b + k + run as usize) % 3];
                let start = Instant::now();
                for step in first..(first + per_block).min(steps) {
                    if writers == 1 {
                        self.write_one(kind, step, bytes);
                    } else {
                        self.write_parallel(kind, step * writers, writers, bytes);
                    }
                }
                if kind == Kind::Default {
                    self.default.sync().expect("sync");
                }
                totals[order.iter().position(|&o| o == kind).unwrap_or(0)] += start.elapsed();
            }
        }
        let dir = self.dir.clone();
        let base = dir.parent().expect("base folder").to_path_buf();
        drop(self);
        std::fs::remove_dir_all(dir).expect("cleanup");
        // The removal is made durable before the next batch, which would otherwise pay for it.
        File::open(base).and_then(|f| f.sync_all()).expect("sync of the bench folder");
        totals
    }
}

fn segment_write(c: &mut Criterion) {
    let bytes = data();
    let base = std::env::var_os("STOWAGE_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::tempdir_in(base).expect("bench folder");
    let mut run = 0u32;
    for (group_name, writers) in
        [("segment_write_2MB_fsync", 1usize), ("segment_write_2MB_fsync_4_writers", 4)]
    {
        let mut group = c.benchmark_group(group_name);
        group.throughput(Throughput::Bytes((SEGMENT * writers) as u64));
        group.sample_size(20);
        group.measurement_time(Duration::from_secs(12));
        // Every sample of every benchmark times all three kinds; all are kept here, per segment, so that
        // ratios can be taken within each sample (paired) as well as between the benchmarks' medians.
        let mut paired: Vec<[f64; 3]> = Vec::new();
        for (k, name) in NAMES.iter().enumerate() {
            group.bench_function(*name, |b| {
                b.iter_custom(|iters| {
                    run += 1;
                    let times =
                        Rig::new(tmp.path(), run, iters * writers as u64).measure(writers, &bytes, run);
                    let per = (iters * writers as u64) as f64;
                    paired.push(times.map(|t| t.as_secs_f64() / per * writers as f64));
                    times[k]
                });
            });
        }
        group.finish();
        report_paired(group_name, writers, &paired);
    }
}

/// Prints, for each kind, the median time per segment (per four segments with four writers) over every
/// sample of the group, and the median of its ratio to the plain write taken within each sample.
fn report_paired(group: &str, writers: usize, paired: &[[f64; 3]]) {
    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
    }
    println!("{group}: paired, {} samples", paired.len());
    for (k, name) in NAMES.iter().enumerate() {
        let time = median(paired.iter().map(|p| p[k]).collect());
        let ratio = median(paired.iter().map(|p| p[k] / p[0]).collect());
        let mb_s = (SEGMENT * writers) as f64 / time / 1e6;
        println!("  {name:<18} {:>8.2} ms {mb_s:>7.0} MB/s  ratio to plain {ratio:.2}", time * 1e3);
    }
}

criterion_group!(benches, segment_write);
criterion_main!(benches);
