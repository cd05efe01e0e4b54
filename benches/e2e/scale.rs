//! Scale: 100 tasks in one session (the library, in this process), and media playlists of 1,000 and
//! 100,000 tiny segments planned and downloaded by `stowage download` (a subprocess whose peak memory is
//! measured), giving the memory cost of one planned segment.
//!
//! `cargo bench -p stowage-benches --bench scale`. Prints Markdown tables.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use stowage_origin::{Files, Origin, OriginConfig, Resource};
use stowage_task::{ContentConfiguration, DownloadConfiguration, DownloadSession, SessionConfig};

fn fixtures() -> std::path::PathBuf {
    stowage_testkit::assets()
}

fn hundred_tasks(scratch: &Path) {
    const TASKS: usize = 100;
    let files = Files::new();
    files.load_dir("/aes", fixtures().join("aes")).unwrap();
    let origin = Origin::start(files, OriginConfig::default()).unwrap();
    let store = tempfile::tempdir_in(scratch).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (_, rss_before) = support::own_rss();
    let started = Instant::now();
    let finished = runtime.block_on(async {
        let session = DownloadSession::new(SessionConfig::new(store.path())).unwrap();
        let url = origin.url("/aes/master.m3u8");
        let mut tasks = Vec::new();
        for i in 0..TASKS {
            let config = DownloadConfiguration::new(ContentConfiguration::new());
            let task = session.download_task_named(&format!("asset-{i:03}"), &url, config).unwrap();
            task.resume();
            tasks.push(task);
        }
        let mut finished = 0;
        for task in &tasks {
            if task.wait().await.is_ok() {
                finished += 1;
            }
        }
        finished
    });
    let wall = started.elapsed();
    let (peak, _) = support::own_rss();
    let segments = origin.log().iter().filter(|r| r.path.ends_with(".ts") && r.status == 200).count();
    println!(
        "\n### {TASKS} tasks in one session (the fixture master: 640x360 + English audio, 13 segments each)\n"
    );
    println!("| tasks finished | segments | wall | segments/s | process peak RSS growth |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| {finished}/{TASKS} | {segments} | {:.2} s | {:.0} | {:.1} MB |",
        wall.as_secs_f64(),
        segments as f64 / wall.as_secs_f64(),
        peak.saturating_sub(rss_before) as f64 / 1e6,
    );
}

/// An origin serving `/many/index.m3u8`: `count` one-second segments of 188 bytes (one MPEG-TS packet),
/// one shared buffer.
fn many_origin(count: usize) -> Origin {
    let files = Files::new();
    let mut packet = vec![0xFFu8; 188];
    packet[0] = 0x47;
    let body = bytes::Bytes::from(packet);
    let mut playlist = String::with_capacity(count * 32);
    playlist.push_str("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    for i in 0..count {
        playlist.push_str(&format!("#EXTINF:1.000000,\ns{i:06}.ts\n"));
        files.insert(&format!("/many/s{i:06}.ts"), Resource::new(body.clone(), "video/mp2t"));
    }
    playlist.push_str("#EXT-X-ENDLIST\n");
    files.insert_bytes("/many/index.m3u8", playlist);
    Origin::start(files, OriginConfig::default()).unwrap()
}

fn many_segments(stowage: &Path, scratch: &Path) {
    println!("\n### Media playlists of tiny segments, `stowage download` with its defaults\n");
    println!(
        "| segments | exit | wall | segments/s | peak RSS | manifest.json | `stowage inspect` peak RSS |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut peaks = Vec::new();
    for count in [1_000usize, 100_000] {
        let origin = many_origin(count);
        let out = tempfile::tempdir_in(scratch).unwrap();
        let args: Vec<String> = vec![
            "--store".into(),
            out.path().to_string_lossy().into_owned(),
            "download".into(),
            origin.url("/many/index.m3u8"),
            "--name".into(),
            "many".into(),
            "--json".into(),
        ];
        let run = support::run_measured(stowage, &args, Duration::from_secs(900));
        let manifest = std::fs::metadata(out.path().join("many/manifest.json")).map_or(0, |m| m.len());
        // Parsing and summarising the same playlist, without planning or a bundle: the parser's share.
        let inspect = support::run_measured(
            stowage,
            &["inspect".to_owned(), origin.url("/many/index.m3u8")],
            Duration::from_secs(300),
        );
        println!(
            "| {count} | {} | {:.1} s | {:.0} | {:.1} MB | {:.1} MB | {:.1} MB |",
            if run.success { "0" } else { "failed" },
            run.wall.as_secs_f64(),
            count as f64 / run.wall.as_secs_f64(),
            run.max_rss as f64 / 1e6,
            manifest as f64 / 1e6,
            inspect.max_rss as f64 / 1e6,
        );
        if !run.success {
            eprintln!("{count} segments: {}", run.stderr_tail);
        }
        peaks.push((count, run.max_rss));
    }
    let (small, large) = (peaks[0], peaks[1]);
    println!(
        "\nMemory per planned segment (peak RSS difference / segment difference): {:.0} bytes",
        large.1.saturating_sub(small.1) as f64 / (large.0 - small.0) as f64
    );
}

fn main() {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wanted = |part: &str| filter.is_empty() || filter.iter().any(|f| part.contains(f.as_str()));
    let scratch = support::target_dir().join("stowage-bench-scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    if wanted("tasks") {
        hundred_tasks(&scratch);
    }
    if wanted("segments") {
        many_segments(&support::stowage_binary(), &scratch);
    }
}
