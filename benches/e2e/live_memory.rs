//! Live capture: memory and disk writes against the length of a recording.
//!
//! A live stream of tiny segments (one-second segments of two MPEG-TS packets each, a window of 3,000) is
//! played by the in-process live origin at 1,000 times real time, and recorded over HTTP on loopback by
//! the library in a child process (this executable run again), from its live edge to its `EXT-X-ENDLIST`:
//! 1,000 and 100,000 segments. The child samples its own resident memory as segments finish, and watches
//! `manifest.json` and the local `index.m3u8` for rewrites (each atomic rewrite is a new file), so that
//! what a recording writes per segment can be told apart from what it writes once.
//!
//! `cargo bench -p stowage-benches --bench live_memory` (a filter `1000`, `10000` or `100000` runs one size; 10,000 segments fill the live window of 3,000, so
//! what grows from there on is what grows with the recording's length). Prints
//! Markdown tables. `STOWAGE_LIVE_MEMORY_WRAPPER` runs the recording child under a profiler
//! (`STOWAGE_LIVE_MEMORY_WRAPPER="heaptrack -o FILE"`).

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use stowage_origin::live::{LiveConfig, LiveOrigin, LiveSource, Script};
use stowage_origin::{Files, OriginConfig};
use stowage_task::config::RecordingConfiguration;
use stowage_task::events::TaskEvent;
use stowage_task::{ContentConfiguration, DownloadConfiguration, DownloadSession, SessionConfig};

/// Stream seconds per wall second.
const SPEED: f64 = 1000.0;
/// Segments listed by the live playlist: three seconds of wall time at this speed, so that a recorder
/// reloading once per target duration (one second) keeps up with room to spare.
const WINDOW: usize = 3000;

/// Ten one-second source segments of two MPEG-TS packets each, looped by the live origin.
fn source() -> LiveSource {
    let files = Files::new();
    let mut playlist = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n");
    for i in 0..10u8 {
        let mut body = vec![i; 376];
        body[0] = 0x47;
        body[188] = 0x47;
        files.insert_bytes(&format!("/src/s{i}.ts"), body);
        playlist.push_str(&format!("#EXTINF:1.000000,\ns{i}.ts\n"));
    }
    playlist.push_str("#EXT-X-ENDLIST\n");
    files.insert_bytes("/src/index.m3u8", playlist);
    LiveSource::from_files(&files, "/src/index.m3u8").expect("a valid source")
}

/// What a child reports, one line each: `sample DONE RSS`, then `end KEY VALUE` lines.
fn child(url: &str, store: &Path, count: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let watch = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (watch, dir) = (Arc::clone(&watch), store.join("live"));
        std::thread::spawn(move || watch_rewrites(&dir, &watch))
    };
    runtime.block_on(async {
        let session = DownloadSession::new(SessionConfig::new(store)).unwrap();
        let config =
            DownloadConfiguration::new(ContentConfiguration::new()).recording(RecordingConfiguration::new());
        let task = session.download_task_named("live", url, config).unwrap();
        let mut events = task.events();
        task.resume();
        let step = (count / 20).max(1);
        let mut next = step;
        let mut holes = 0;
        while let Some(event) = events.recv().await {
            match event {
                TaskEvent::Progress(p) if p.segments_done >= next => {
                    next = (p.segments_done / step + 1) * step;
                    println!("sample {} {}", p.segments_done, support::own_rss().1);
                }
                TaskEvent::HoleRecorded { .. } => holes += 1,
                _ => {}
            }
        }
        let finished = task.wait().await;
        println!("end finished {}", u8::from(finished.is_ok()));
        println!("end holes {holes}");
    });
    watch.store(false, Ordering::Relaxed);
    let (manifest, index) = watcher.join().unwrap();
    let dir = store.join("live");
    let len = |p: PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
    let segments = rendition_dir(&dir)
        .and_then(|r| std::fs::read_dir(r).ok())
        .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".ts")).count())
        .unwrap_or(0);
    println!("end segments {segments}");
    println!("end peak {}", support::own_rss().0);
    println!("end manifest_len {}", len(dir.join("manifest.json")));
    println!("end journal_len {}", len(dir.join("journal.log")));
    println!("end manifest_writes {} {}", manifest.0, manifest.1);
    println!("end index_writes {} {}", index.0, index.1);
}

/// Polls the bundle's `manifest.json` and its rendition's local `index.m3u8` every 2 ms until told to
/// stop; returns, for each, the rewrites seen (a new inode) and the bytes they held. Rewrites closer
/// together than the poll are counted once, so the counts are a floor.
fn watch_rewrites(dir: &Path, watch: &AtomicBool) -> ((u64, u64), (u64, u64)) {
    let mut seen = [(0u64, 0u64); 2];
    let mut counts = [(0u64, 0u64); 2];
    let mut poll = || {
        let files = [Some(dir.join("manifest.json")), rendition_dir(dir).map(|r| r.join("index.m3u8"))];
        for (i, path) in files.iter().enumerate() {
            if let Some(m) = path.as_ref().and_then(|p| std::fs::metadata(p).ok())
                && (m.ino(), m.len()) != seen[i]
            {
                seen[i] = (m.ino(), m.len());
                counts[i].0 += 1;
                counts[i].1 += m.len();
            }
        }
    };
    while watch.load(Ordering::Relaxed) {
        poll();
        std::thread::sleep(Duration::from_millis(2));
    }
    poll();
    (counts[0], counts[1])
}

/// The folder of the bundle's one rendition.
fn rendition_dir(bundle: &Path) -> Option<PathBuf> {
    std::fs::read_dir(bundle)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "source"))
}

struct Run {
    count: usize,
    wall: Duration,
    peak: u64,
    samples: Vec<(u64, u64)>,
    values: std::collections::HashMap<String, Vec<u64>>,
}

impl Run {
    fn value(&self, key: &str, i: usize) -> u64 {
        self.values.get(key).and_then(|v| v.get(i)).copied().unwrap_or(0)
    }

    /// Resident memory growth per finished segment over the second half of the recording, where the
    /// process has reached its steady state.
    fn slope(&self) -> f64 {
        let half = self.samples.len() / 2;
        match (self.samples.get(half), self.samples.last()) {
            (Some(a), Some(b)) if b.0 > a.0 => (b.1 as f64 - a.1 as f64) / (b.0 - a.0) as f64,
            _ => f64::NAN,
        }
    }
}

fn parent(count: usize, scratch: &Path) -> Run {
    // The stream ends `count` segments after the live edge the recorder starts from (three segments back).
    let end = Duration::from_secs(count as u64 - 3);
    let config = LiveConfig::default().window(WINDOW).speed(SPEED).script(Script::new().end_list(end));
    let live = LiveOrigin::start_with(source(), config, OriginConfig::default().log_limit(1000)).unwrap();
    let store = tempfile::tempdir_in(scratch).unwrap();
    let exe = std::env::current_exe().unwrap();
    let started = std::time::Instant::now();
    // `STOWAGE_LIVE_MEMORY_WRAPPER` runs the child under a profiler: `heaptrack -o FILE`, say.
    let wrapper = std::env::var("STOWAGE_LIVE_MEMORY_WRAPPER").unwrap_or_default();
    let mut command = match wrapper.split_whitespace().collect::<Vec<_>>().split_first() {
        Some((program, args)) => {
            let mut c = std::process::Command::new(program);
            c.args(args).arg(exe);
            c
        }
        None => std::process::Command::new(exe),
    };
    let out = command
        .env("STOWAGE_LIVE_MEMORY_CHILD", count.to_string())
        .arg(live.url())
        .arg(store.path())
        .output()
        .expect("the child runs");
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        eprintln!("{count}: the child failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut run = Run { count, wall, peak: 0, samples: Vec::new(), values: Default::default() };
    for line in stdout.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("sample") => {
                let n: Vec<u64> = fields.filter_map(|f| f.parse().ok()).collect();
                if let [done, rss] = n[..] {
                    run.samples.push((done, rss));
                }
            }
            Some("end") => {
                let key = fields.next().unwrap_or_default().to_owned();
                run.values.insert(key, fields.filter_map(|f| f.parse().ok()).collect());
            }
            _ => {}
        }
    }
    run.peak = run.value("peak", 0);
    run
}

fn main() {
    if let Ok(count) = std::env::var("STOWAGE_LIVE_MEMORY_CHILD") {
        let args: Vec<String> = std::env::args().skip(1).collect();
        child(&args[0], Path::new(&args[1]), count.parse().unwrap());
        return;
    }
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let scratch = support::target_dir().join("stowage-bench-scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let mut runs = Vec::new();
    for count in [1_000usize, 10_000, 100_000] {
        if filter.is_empty() || filter.iter().any(|f| f == &count.to_string()) {
            runs.push(parent(count, &scratch));
        }
    }
    println!(
        "\n| segments (target) | recorded | holes | wall | peak RSS | RSS growth per finished segment (second half) | manifest.json at the end | manifest writes seen (bytes) | index.m3u8 rewrites seen (bytes) | journal |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in &runs {
        let recorded = r.value("segments", 0);
        println!(
            "| {} | {} | {} | {:.1} s | {:.1} MB | {:.0} B | {:.2} MB | {} ({:.2} MB, {:.0} B per segment) | {} ({:.1} MB, {:.0} B per segment) | {:.1} MB |",
            r.count,
            recorded,
            r.value("holes", 0),
            r.wall.as_secs_f64(),
            r.peak as f64 / 1e6,
            r.slope(),
            r.value("manifest_len", 0) as f64 / 1e6,
            r.value("manifest_writes", 0),
            r.value("manifest_writes", 1) as f64 / 1e6,
            r.value("manifest_writes", 1) as f64 / recorded.max(1) as f64,
            r.value("index_writes", 0),
            r.value("index_writes", 1) as f64 / 1e6,
            r.value("index_writes", 1) as f64 / recorded.max(1) as f64,
            r.value("journal_len", 0) as f64 / 1e6,
        );
    }
    for pair in runs.windows(2) {
        let [small, large] = pair else { continue };
        println!(
            "\nPeak RSS per recorded segment from {} to {} segments: {:.0} bytes",
            small.count,
            large.count,
            (large.peak as f64 - small.peak as f64)
                / (large.value("segments", 0) as f64 - small.value("segments", 0) as f64)
        );
    }
    for r in &runs {
        println!("\nRSS samples, {} segments: {:?}", r.count, r.samples);
    }
}
