//! `stowage download` against its peers (vsd, yt-dlp, streamlink, ffmpeg), each run as a subprocess on the
//! same asset and the same in-process origin, side by side in one run: wall time with 50 ms injected per
//! response and with none, completeness under a fault mix, and stowage's peak memory and CPU time per GB
//! (on the 300-segment asset and on a one-hour synthetic one).
//!
//! `cargo bench -p stowage-benches --bench peers`; a name filter (`speed`, `slow` (50 ms only),
//! `nolatency`, `strain`, `control`, `timeline`, `faults`, `memory`) runs only those parts; `STOWAGE_BENCH_RUNS` (default
//! 3) sets the runs per measurement, `STOWAGE_BENCH_SLOW_RUNS` (default 1) those of ffmpeg with latency
//! (about 20 s and 40 s per run, since it fetches one request at a time). `STOWAGE_BENCH_BASELINE`, the
//! path of another `stowage` binary (an older build), adds its runs with defaults beside the current
//! one's. Peers that are not installed are left out. Prints Markdown tables.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stowage_origin::{Fault, FaultRule, Files, Origin, OriginConfig, Resource};
use support::{ChildRun, median, run_measured};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Tool {
    /// `stowage download` with its defaults.
    Stowage,
    /// `stowage download --connections 4`.
    Stowage4,
    /// `stowage download --connections 64`: the per-host ceiling of the defaults, as a fixed limit.
    Stowage64,
    /// The binary named by `STOWAGE_BENCH_BASELINE`, with its defaults.
    Baseline,
    /// `stowage download --connections 4` under `eatmydata` (`fsync` made a no-op), for the control only:
    /// it tells what the bundle's durable writes cost.
    Stowage4NoSync,
    /// `vsd save -t 16`: 16 threads, its most.
    Vsd,
    YtDlp,
    Streamlink,
    Ffmpeg,
}

impl Tool {
    const ALL: [Self; 9] = [
        Self::Stowage,
        Self::Stowage4,
        Self::Stowage64,
        Self::Baseline,
        Self::Stowage4NoSync,
        Self::Vsd,
        Self::YtDlp,
        Self::Streamlink,
        Self::Ffmpeg,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Stowage => "stowage (defaults)",
            Self::Stowage4 => "stowage --connections 4",
            Self::Stowage64 => "stowage --connections 64",
            Self::Baseline => "baseline stowage (defaults)",
            Self::Stowage4NoSync => "eatmydata stowage --connections 4",
            Self::Vsd => "vsd save -t 16",
            Self::YtDlp => "yt-dlp --hls-prefer-native -N 4",
            Self::Streamlink => "streamlink --stream-segment-threads 4",
            Self::Ffmpeg => "ffmpeg -c copy",
        }
    }

    fn is_peer(self) -> bool {
        !matches!(
            self,
            Self::Stowage | Self::Stowage4 | Self::Stowage64 | Self::Baseline | Self::Stowage4NoSync
        )
    }

    /// The program this tool runs, for the check that it is installed.
    fn program(self) -> Option<PathBuf> {
        match self {
            Self::Stowage | Self::Stowage4 | Self::Stowage64 => None,
            Self::Baseline => std::env::var_os("STOWAGE_BENCH_BASELINE").map(PathBuf::from),
            Self::Stowage4NoSync => Some("eatmydata".into()),
            Self::Vsd => Some("vsd".into()),
            Self::YtDlp => Some("yt-dlp".into()),
            Self::Streamlink => Some("streamlink".into()),
            Self::Ffmpeg => Some("ffmpeg".into()),
        }
    }

    /// Whether the tool can run here: stowage always; the baseline when `STOWAGE_BENCH_BASELINE` names a
    /// file; a peer when its program answers `--version`.
    fn available(self) -> bool {
        match (self, self.program()) {
            (Self::Stowage | Self::Stowage4 | Self::Stowage64, _) => true,
            (Self::Baseline, path) => path.is_some_and(|p| p.is_file()),
            (_, Some(program)) => std::process::Command::new(program)
                .arg(if self == Self::Ffmpeg { "-version" } else { "--version" })
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            (_, None) => false,
        }
    }

    /// The program and arguments downloading `url` into `out`.
    fn command(self, stowage: &Path, url: &str, out: &Path) -> (PathBuf, Vec<String>) {
        let out_s = |name: &str| out.join(name).to_string_lossy().into_owned();
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        match self {
            Self::Stowage | Self::Stowage4 | Self::Stowage64 | Self::Baseline | Self::Stowage4NoSync => {
                let mut args = vec![
                    "--store".to_owned(),
                    out.to_string_lossy().into_owned(),
                    "download".to_owned(),
                    url.to_owned(),
                    "--name".to_owned(),
                    "bench".to_owned(),
                    "--json".to_owned(),
                ];
                match self {
                    Self::Stowage4 | Self::Stowage4NoSync => args.extend(owned(&["--connections", "4"])),
                    Self::Stowage64 => args.extend(owned(&["--connections", "64"])),
                    _ => {}
                }
                if let (Self::Baseline, Some(baseline)) = (self, self.program()) {
                    return (baseline, args);
                }
                if self == Self::Stowage4NoSync {
                    args.insert(0, stowage.to_string_lossy().into_owned());
                    return ("eatmydata".into(), args);
                }
                (stowage.to_path_buf(), args)
            }
            Self::Vsd => {
                // Without `-o` vsd joins each stream's segments into a file in the directory and does
                // not run ffmpeg to mux them, as stowage does not.
                let mut args = owned(&["save", url, "-t", "16", "--no-resume", "-q", "-d"]);
                args.push(out.to_string_lossy().into_owned());
                ("vsd".into(), args)
            }
            Self::YtDlp => {
                let mut args = owned(&["--hls-prefer-native", "-N", "4", "-q", "--no-progress", "-o"]);
                args.push(out_s("out.%(ext)s"));
                args.push(url.to_owned());
                ("yt-dlp".into(), args)
            }
            Self::Streamlink => {
                let mut args = owned(&["--stream-segment-threads", "4", "-o"]);
                args.push(out_s("out.ts"));
                args.extend([url.to_owned(), "best".to_owned()]);
                ("streamlink".into(), args)
            }
            Self::Ffmpeg => {
                let mut args = owned(&["-nostdin", "-v", "error", "-i", url, "-c", "copy"]);
                args.push(out_s("out.ts"));
                ("ffmpeg".into(), args)
            }
        }
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The most requests the origin was answering at once in its log, when every answer is held back by
/// `latency`: a request is in the origin's hands from its arrival until `latency` later (sending bodies of
/// tens of kilobytes on loopback takes far less), so the requests in flight when one arrives are those that
/// arrived less than `latency` before it.
fn peak_in_flight(origin: &Origin, latency: Duration) -> usize {
    peak_in_flight_since(origin, latency, None)
}

/// [`peak_in_flight`] among the requests that arrived at or after `since`.
fn peak_in_flight_since(origin: &Origin, latency: Duration, since: Option<Instant>) -> usize {
    let mut arrivals: Vec<Instant> =
        origin.log().iter().map(|r| r.received).filter(|&at| since.is_none_or(|since| at >= since)).collect();
    arrivals.sort();
    let mut first = 0;
    let mut peak = 0;
    for (i, &at) in arrivals.iter().enumerate() {
        while at.duration_since(arrivals[first]) >= latency {
            first += 1;
        }
        peak = peak.max(i + 1 - first);
    }
    peak
}

/// One download by `tool` into a fresh directory under `scratch`, with the origin's request count.
fn download(
    tool: Tool,
    stowage: &Path,
    origin: &Origin,
    url: &str,
    scratch: &Path,
) -> (ChildRun, usize, PathBuf) {
    let out = tempfile::tempdir_in(scratch).unwrap().keep();
    // Write back what earlier runs left dirty (their outputs, their deleted folders), so that a tool
    // that syncs does not pay for another tool's writes.
    let _ = std::process::Command::new("sync").status();
    origin.clear_log();
    let (program, args) = tool.command(stowage, url, &out);
    let run = run_measured(&program, &args, Duration::from_secs(300));
    (run, origin.log().len(), out)
}

/// The file to check after a download: the bundle's master playlist, or the peer's output file.
fn output_of(tool: Tool, out: &Path) -> Option<PathBuf> {
    if tool.is_peer() {
        support::largest_file(out)
    } else {
        Some(out.join("bench/master.m3u8")).filter(|p| p.is_file())
    }
}

struct Row {
    walls: Vec<f64>,
    requests: Vec<usize>,
    /// The most requests the origin answered at once, per run (with latency only).
    peaks: Vec<usize>,
    rss: Vec<u64>,
    cpu: Vec<f64>,
    failures: usize,
}

/// A download to time: a title, the playlist path on the origin, and whether the peers run it too.
type Task = (&'static str, &'static str, bool);

const PEER_TASKS: [Task; 2] = [
    ("media (720p variant)", "/a/video/index.m3u8", true),
    ("master (720p + en audio)", "/a/master.m3u8", true),
];

/// The control: the same variant without encryption, to tell what keys cost.
const CLEAR_TASK: [Task; 1] =
    [("media, the clear copy (no keys; stowage only)", "/c/video/index.m3u8", false)];

/// The control without latency: what durable writes cost when nothing else waits.
const MASTER_CONTROL: [Task; 1] = [("master (stowage only)", "/a/master.m3u8", false)];

fn speed(
    stowage: &Path,
    origin: &Origin,
    scratch: &Path,
    media_bytes: &BTreeMap<&str, u64>,
    tasks: &[Task],
    latencies: &[u64],
) {
    let runs = env_usize("STOWAGE_BENCH_RUNS", 3);
    let slow_runs = env_usize("STOWAGE_BENCH_SLOW_RUNS", 1);
    let tools: Vec<Tool> = Tool::ALL.into_iter().filter(|t| t.available()).collect();
    let mut rss_all = Vec::new();
    let mut cpu_per_gb = Vec::new();
    for &latency_ms in latencies {
        support::set_latency(origin, Duration::from_millis(latency_ms));
        for &(task, path, with_peers) in tasks {
            let url = origin.url(path);
            let bytes = if path.ends_with("master.m3u8") {
                media_bytes["video"] + media_bytes["audio-en"]
            } else {
                media_bytes["video"]
            };
            let mut rows: BTreeMap<Tool, Row> = BTreeMap::new();
            for round in 0..runs {
                for &tool in &tools {
                    if tool == Tool::Ffmpeg && latency_ms > 0 && round >= slow_runs
                        || tool.is_peer() && !with_peers
                        || tool == Tool::Stowage4NoSync && with_peers
                    {
                        continue;
                    }
                    let (run, requests, out) = download(tool, stowage, origin, &url, scratch);
                    let peak = peak_in_flight(origin, Duration::from_millis(latency_ms));
                    let row = rows.entry(tool).or_insert(Row {
                        walls: Vec::new(),
                        requests: Vec::new(),
                        peaks: Vec::new(),
                        rss: Vec::new(),
                        cpu: Vec::new(),
                        failures: 0,
                    });
                    if run.success {
                        row.walls.push(run.wall.as_secs_f64());
                        row.requests.push(requests);
                        row.peaks.push(peak);
                        row.rss.push(run.max_rss);
                        row.cpu.push(run.cpu.as_secs_f64());
                    } else {
                        row.failures += 1;
                        eprintln!("{} failed on {task}: {}", tool.name(), run.stderr_tail);
                    }
                    if !tool.is_peer() {
                        rss_all.push(run.max_rss);
                        if latency_ms == 0 {
                            cpu_per_gb.push(run.cpu.as_secs_f64() / (bytes as f64 / 1e9));
                        }
                    }
                    let _ = std::fs::remove_dir_all(out);
                }
            }
            let fastest_peer = if !with_peers {
                f64::NAN
            } else {
                rows.iter()
                    .filter(|(t, r)| t.is_peer() && !r.walls.is_empty())
                    .map(|(_, r)| median(&r.walls))
                    .fold(f64::INFINITY, f64::min)
            };
            println!("\n### {task}, {latency_ms} ms per response\n");
            println!(
                "| tool | runs | median wall | requests | most at once | fastest peer ÷ tool | vs bound at 4 connections |"
            );
            println!("| --- | --- | --- | --- | --- | --- | --- |");
            for (tool, row) in &rows {
                let wall = median(&row.walls);
                let requests = median(&row.requests.iter().map(|&r| r as f64).collect::<Vec<_>>());
                let bound = requests * latency_ms as f64 / 1000.0 / 4.0;
                let vs_bound = if latency_ms > 0 {
                    format!("{:.2}× (bound {bound:.2} s)", wall / bound)
                } else {
                    "".into()
                };
                let failed =
                    if row.failures > 0 { format!(" ({} failed)", row.failures) } else { String::new() };
                let peaks = if latency_ms > 0 {
                    let (low, high) = (row.peaks.iter().min(), row.peaks.iter().max());
                    low.zip(high).map_or(String::new(), |(l, h)| format!("{l} to {h}"))
                } else {
                    String::new()
                };
                println!(
                    "| {} | {}{failed} | {wall:.2} s | {requests:.0} | {peaks} | {:.2}× | {vs_bound} |",
                    tool.name(),
                    row.walls.len(),
                    fastest_peer / wall,
                );
            }
        }
    }
    // CPU time per GB is measured without latency only.
    let cpu = if cpu_per_gb.is_empty() {
        String::new()
    } else {
        format!("; CPU time per GB (no latency, decryption included): median {:.2} s", median(&cpu_per_gb))
    };
    println!(
        "\nstowage peak RSS over all its runs above: median {:.1} MB, max {:.1} MB{cpu}",
        median(&rss_all.iter().map(|&r| r as f64 / 1e6).collect::<Vec<_>>()),
        rss_all.iter().copied().max().unwrap_or(0) as f64 / 1e6,
    );
}

/// Where a `stowage download` spends its wall time: its `--json` events read as they arrive, with the
/// moment each milestone was seen (from spawn): the bundle created (`will_download_to`), the first segment
/// stored, a quarter, half, three quarters and all of the segments stored, the `finished` event, and exit.
fn timeline(stowage: &Path, origin: &Origin, scratch: &Path, latency_ms: u64) {
    use std::io::BufRead;
    let runs = env_usize("STOWAGE_BENCH_RUNS", 3);
    support::set_latency(origin, Duration::from_millis(latency_ms));
    println!("\n### Timeline of stowage runs, {latency_ms} ms per response (seconds from spawn)\n");
    println!(
        "| task | tool | bundle created | first segment | 25 % | 50 % | 75 % | all segments | finished | exit |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for &(task, path, _) in &PEER_TASKS {
        for tool in [Tool::Stowage, Tool::Stowage4] {
            for _ in 0..runs {
                let out = tempfile::tempdir_in(scratch).unwrap().keep();
                let _ = std::process::Command::new("sync").status();
                let (program, args) = tool.command(stowage, &origin.url(path), &out);
                let start = Instant::now();
                let mut child = std::process::Command::new(program)
                    .args(args)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("stowage runs");
                let stdout = child.stdout.take().unwrap();
                let mut created = f64::NAN;
                let mut finished = f64::NAN;
                // Seconds at which 1, 25 %, 50 %, 75 % and 100 % of the segments were stored.
                let mut marks = [f64::NAN; 5];
                for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                    let at = start.elapsed().as_secs_f64();
                    if line.contains("\"will_download_to\"") {
                        created = at;
                    } else if line.contains("\"finished\"") {
                        finished = at;
                    } else if line.contains("\"progress\"") {
                        // The task's totals come after its renditions' (the keys are in sorted order).
                        let number = |key: &str| -> Option<f64> {
                            let rest = &line[line.rfind(key)? + key.len()..];
                            let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
                            rest[..end].parse().ok()
                        };
                        if let (Some(done), Some(total)) =
                            (number("\"segments_done\":"), number("\"segments_total\":"))
                            && total > 0.0
                        {
                            for (i, fraction) in [1.0 / total, 0.25, 0.5, 0.75, 1.0].into_iter().enumerate() {
                                if marks[i].is_nan() && done / total >= fraction - 1e-9 {
                                    marks[i] = at;
                                }
                            }
                        }
                    }
                }
                let _ = child.wait();
                let exit = start.elapsed().as_secs_f64();
                println!(
                    "| {task} | {} | {created:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {finished:.2} | {exit:.2} |",
                    tool.name(),
                    marks[0],
                    marks[1],
                    marks[2],
                    marks[3],
                    marks[4]
                );
                let _ = std::fs::remove_dir_all(out);
            }
        }
    }
}

fn faults(stowage: &Path, origin: &Origin, scratch: &Path) {
    let expected = (support::SEGMENTS * 2 * support::FPS) as u64;
    println!(
        "\n### Under faults (5 % of requests 503, 5 % of bodies cut, 20 % of key requests 404), media task\n"
    );
    println!(
        "| tool | seed | exit | wall | video frames ({expected} expected) | decodes cleanly | complete |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let url = origin.url("/a/video/index.m3u8");
    let tools: Vec<Tool> = Tool::ALL
        .into_iter()
        .filter(|t| !matches!(t, Tool::Stowage4 | Tool::Stowage64 | Tool::Stowage4NoSync) && t.available())
        .collect();
    for seed in [11u64, 12, 13] {
        for &tool in &tools {
            support::set_fault_mix(origin, seed);
            let (run, _, out) = download(tool, stowage, origin, &url, scratch);
            let (frames, clean) = output_of(tool, &out).map_or((0, false), |p| support::count_frames(&p));
            println!(
                "| {} | {seed} | {} | {:.1} s | {frames} | {} | {} |",
                tool.name(),
                if run.success { "0" } else { "failed" },
                run.wall.as_secs_f64(),
                if clean { "yes" } else { "no" },
                if run.success && frames == expected && clean { "yes" } else { "**no**" },
            );
            if !run.success {
                let last = run.stderr_tail.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                eprintln!("{} seed {seed}: {last}", tool.name());
            }
            let _ = std::fs::remove_dir_all(out);
        }
    }
    origin.faults().clear();
}

/// An origin under strain: 50 ms before every answer, and 5 % of segment requests answered 503 (the
/// fetch layer retries those on its own). The media task with stowage's defaults, the baseline binary's,
/// `--connections 64` and vsd: how many requests the origin had at once, and the wall time. A download
/// should not take more connections to an origin that pushes back.
fn strain(stowage: &Path, origin: &Origin, scratch: &Path) {
    let runs = env_usize("STOWAGE_BENCH_RUNS", 3);
    let latency = Duration::from_millis(50);
    println!("\n### Strain: 50 ms per response, 5 % of segment requests answered 503, media task\n");
    println!(
        "| tool | seed | exit | wall | requests | 503 answered | most at once | most at once after the first 503 |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let url = origin.url("/a/video/index.m3u8");
    let tools: Vec<Tool> = [Tool::Stowage, Tool::Baseline, Tool::Stowage64, Tool::Vsd]
        .into_iter()
        .filter(|t| t.available())
        .collect();
    for seed in (21..).take(runs) {
        for &tool in &tools {
            support::set_latency(origin, latency);
            origin.faults().set_seed(seed);
            origin
                .faults()
                .add(FaultRule::new(Fault::service_unavailable(None)).glob("*.ts").probability(0.05));
            let (run, requests, out) = download(tool, stowage, origin, &url, scratch);
            let refused = origin.log().iter().filter(|r| r.status == 503).count();
            // The client has the first 503 once its latency is over: what it sent after that.
            let first_refusal =
                origin.log().iter().filter(|r| r.status == 503).map(|r| r.received + latency).min();
            println!(
                "| {} | {seed} | {} | {:.2} s | {requests} | {refused} | {} | {} |",
                tool.name(),
                if run.success { "0" } else { "failed" },
                run.wall.as_secs_f64(),
                peak_in_flight(origin, latency),
                peak_in_flight_since(origin, latency, first_refusal),
            );
            if !run.success {
                eprintln!("{} seed {seed}: {}", tool.name(), run.stderr_tail);
            }
            let _ = std::fs::remove_dir_all(out);
        }
    }
    origin.faults().clear();
}

/// A one-hour media playlist at 5 Mb/s: 1800 two-second segments of 1.25 MB, AES-128 with one key, every
/// segment the same ciphertext (the origin shares one buffer), so the asset costs the origin 1.25 MB.
fn long_origin() -> (Origin, u64) {
    const SEGMENT: usize = 1_250_000;
    const COUNT: usize = 1800;
    let clear: Vec<u8> = (0..SEGMENT).map(|i| (i * 31 % 251) as u8).collect();
    let key = [7u8; 16];
    let iv = [9u8; 16];
    let body = bytes::Bytes::from(stowage_origin::hls::encrypt_aes128_cbc(&key, &iv, &clear));
    let files = Files::new();
    let mut playlist = String::from(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n\
         #EXT-X-KEY:METHOD=AES-128,URI=\"k.key\",IV=0x09090909090909090909090909090909\n",
    );
    for i in 0..COUNT {
        playlist.push_str(&format!("#EXTINF:2.000000,\ns{i:05}.ts\n"));
        files.insert(&format!("/long/s{i:05}.ts"), Resource::new(body.clone(), "video/mp2t"));
    }
    playlist.push_str("#EXT-X-ENDLIST\n");
    files.insert_bytes("/long/index.m3u8", playlist);
    files.insert_bytes("/long/k.key", key.to_vec());
    (Origin::start(files, OriginConfig::default()).unwrap(), (SEGMENT * COUNT) as u64)
}

fn memory(stowage: &Path, scratch: &Path) {
    let (origin, bytes) = long_origin();
    println!("\n### One hour at 5 Mb/s (1800 segments, {:.2} GB), no latency\n", bytes as f64 / 1e9);
    println!("| tool | exit | wall | throughput | requests | peak RSS | CPU time | CPU per GB |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    // Defaults, then four connections: peak memory should follow the requests in flight, not the length.
    for tool in [Tool::Stowage, Tool::Stowage4] {
        long_run(tool, stowage, &origin, bytes, scratch);
    }
}

fn long_run(tool: Tool, stowage: &Path, origin: &Origin, bytes: u64, scratch: &Path) {
    let (run, requests, out) = download(tool, stowage, origin, &origin.url("/long/index.m3u8"), scratch);
    println!(
        "| {} | {} | {:.1} s | {:.0} MB/s | {requests} | {:.1} MB | {:.2} s | {:.2} s |",
        tool.name(),
        if run.success { "0" } else { "failed" },
        run.wall.as_secs_f64(),
        bytes as f64 / 1e6 / run.wall.as_secs_f64(),
        run.max_rss as f64 / 1e6,
        run.cpu.as_secs_f64(),
        run.cpu.as_secs_f64() / (bytes as f64 / 1e9),
    );
    if !run.success {
        eprintln!("long download failed: {}", run.stderr_tail);
    }
    let _ = std::fs::remove_dir_all(out);
}

fn main() {
    // `cargo bench` passes `--bench`; a name filter selects parts: speed, control, faults, memory.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wanted = |part: &str| filter.is_empty() || filter.iter().any(|f| part.contains(f.as_str()));
    let started = Instant::now();
    let stowage = support::stowage_binary();
    let asset = support::clear_asset();
    let media_bytes: BTreeMap<&str, u64> = [
        ("video", support::media_bytes(&asset, "video")),
        ("audio-en", support::media_bytes(&asset, "audio-en")),
    ]
    .into_iter()
    .collect();
    let scratch = support::target_dir().join("stowage-bench-scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let origin = support::encrypted_origin();
    println!(
        "asset: 720p H.264 {} x 2 s segments ({:.1} MB video, {:.1} MB audio), AES-128, a new key every 3 segments",
        support::SEGMENTS,
        media_bytes["video"] as f64 / 1e6,
        media_bytes["audio-en"] as f64 / 1e6
    );
    if wanted("speed") {
        speed(&stowage, &origin, &scratch, &media_bytes, &PEER_TASKS, &[50, 0]);
    } else if wanted("slow") {
        speed(&stowage, &origin, &scratch, &media_bytes, &PEER_TASKS, &[50]);
    } else if wanted("nolatency") {
        speed(&stowage, &origin, &scratch, &media_bytes, &PEER_TASKS, &[0]);
    }
    if wanted("strain") {
        strain(&stowage, &origin, &scratch);
    }
    if wanted("control") {
        speed(&stowage, &origin, &scratch, &media_bytes, &CLEAR_TASK, &[50]);
        speed(&stowage, &origin, &scratch, &media_bytes, &MASTER_CONTROL, &[0]);
    }
    if wanted("timeline") {
        timeline(&stowage, &origin, &scratch, 50);
    }
    if wanted("faults") {
        faults(&stowage, &origin, &scratch);
    }
    if wanted("memory") {
        memory(&stowage, &scratch);
    }
    eprintln!("peers: done in {:.0} s", started.elapsed().as_secs_f64());
}
