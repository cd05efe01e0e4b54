//! Live capture side by side: streamlink, `ffmpeg -i URL -c copy` and yt-dlp (and any recorder given on
//! the command line, `stowage` once it records live streams) recording the same live stream from the
//! in-process live origin (`stowage_origin::live`), in real time, through the same script of faults: a
//! 120 s outage in the middle of a five-minute recording (black hole, refused connections, 503s), and
//! shorter scripts of blips, playlist stalls and stale copies.
//!
//! `cargo bench -p stowage-benches --bench live`; a name filter runs only the scenarios whose names
//! contain it (`outage`, `blackhole`, `refused`, `503`, `blips`, `stall`, `stale`). The whole run takes
//! about 25 minutes of wall time: the streams play in real time; the recorders of one scenario run at
//! once, each against its own origin started at the same moment with the same script. Prints Markdown
//! tables.
//!
//! Prerequisites: ffmpeg and ffprobe (Debian), and the Python peers, `pip install yt-dlp streamlink`
//! (measured with yt-dlp 2026.11.23 and streamlink 8.6.3). A recorder missing from the `PATH` is reported
//! and skipped.
//!
//! What is measured, for each recorder: whether and when it exited (a recorder still running 90 s after
//! the stream's `EXT-X-ENDLIST` is interrupted, then killed), whether it was still running when the
//! outage ended, and the seconds of media in its output: recorded, missing, lost to the outage and
//! duplicated. The source is a ten-minute ffmpeg-made asset (`testsrc2` at 25 frames per second and a
//! sine tone, 300 segments of 2 s, each starting with a key frame), longer than any recording, so that
//! every decoded video frame is unique: the output is decoded with `ffmpeg -f framemd5` and each frame's
//! hash is looked up in a table of the source's frames (made the same way, segment by segment), which
//! names the source segment and so, through the origin's timeline, the media sequence number it was
//! served as. "Missing" counts the frames of every segment from the first one the recorder stored to the
//! last one the stream made that are absent from the output; "lost to the outage" is the part of those
//! that no client could have had however often it reloaded (`Timeline::lost_to_outages`: segments listed
//! only while the origin was unreachable), the floor a recorder can reach; "duplicated" counts frames
//! found more than once. Seconds are frames / 25.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use stowage_origin::OriginConfig;
use stowage_origin::live::{LiveConfig, LiveOrigin, LiveSource, Script};

/// Segments of the source, and their length in seconds; frames per second.
const SOURCE_SEGMENTS: usize = 300;
const SEGMENT_SECONDS: u64 = 2;
const FPS: u64 = 25;
/// Segments in the live window: 30 s, a common DVR-less broadcast window.
const WINDOW: usize = 15;
/// How long after `EXT-X-ENDLIST` a recorder may take to finish before it is interrupted.
const GRACE: Duration = Duration::from_secs(90);

fn s(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

/// A recorder: a name and a command line with `{url}` and `{out}` (a folder to write into) in it.
#[derive(Clone, Debug)]
struct Recorder {
    name: String,
    program: String,
    args: Vec<String>,
}

impl Recorder {
    /// A recorder from a command line split on spaces; `{url}` and `{out}` are replaced at run time.
    fn from_command_line(name: &str, line: &str) -> Self {
        let mut words = line.split_whitespace().map(str::to_owned);
        let program = words.next().unwrap_or_default();
        Self { name: name.to_owned(), program, args: words.collect() }
    }

    fn command(&self, url: &str, out: &Path) -> Command {
        let out = out.to_string_lossy();
        let mut command = Command::new(&self.program);
        command.args(self.args.iter().map(|a| a.replace("{url}", url).replace("{out}", &out)));
        command
    }

    fn is_installed(&self) -> bool {
        Command::new("sh")
            .args(["-c", &format!("command -v {} >/dev/null", self.program)])
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// The peers, with their defaults and, for streamlink and ffmpeg, with the options their documentation
/// offers for riding out network trouble.
fn peers() -> Vec<Recorder> {
    vec![
        Recorder::from_command_line(
            "streamlink --hls-live-edge 3 --stream-segment-attempts 3 (defaults)",
            "streamlink --hls-live-edge 3 --stream-segment-attempts 3 -o {out}/out.ts {url} best",
        ),
        Recorder::from_command_line(
            "streamlink, tuned: --hls-live-edge 15 --stream-segment-attempts 100 --stream-timeout 600 \
             --hls-playlist-reload-attempts 100 --hls-segment-queue-threshold 0",
            "streamlink --hls-live-edge 15 --stream-segment-attempts 100 --stream-timeout 600 \
             --hls-playlist-reload-attempts 100 --hls-segment-queue-threshold 0 -o {out}/out.ts {url} best",
        ),
        Recorder::from_command_line(
            "ffmpeg -i URL -c copy",
            "ffmpeg -nostdin -v warning -i {url} -c copy {out}/out.ts",
        ),
        Recorder::from_command_line(
            "ffmpeg, tuned: -rw_timeout 10 s -reconnect_on_network_error -reconnect_on_http_error 5xx \
             -max_reload 1000",
            "ffmpeg -nostdin -v warning -rw_timeout 10000000 -reconnect 1 -reconnect_streamed 1 \
             -reconnect_on_network_error 1 -reconnect_on_http_error 5xx -reconnect_delay_max 10 \
             -max_reload 1000 -m3u8_hold_counters 1000 -i {url} -c copy {out}/out.ts",
        ),
        Recorder::from_command_line(
            "yt-dlp (hands live HLS to ffmpeg)",
            "yt-dlp --no-part -o {out}/out.%(ext)s {url}",
        ),
    ]
}

/// stowage's row: `stowage download` of the release build (`cargo build --release -p stowage` first; a
/// missing binary is reported and left out like a peer that is not installed), with its defaults: strict
/// integrity, no outage limit. `STOWAGE_LIVE_RECORDER="NAME=COMMAND LINE"` adds rows (`;` between them),
/// with `{url}` and `{out}` in the command line. A recorder that writes an HLS bundle is measured on the
/// first `.m3u8` found in its folder (a master playlist, preferably), others on their largest file.
fn stowage_recorders() -> Vec<Recorder> {
    let binary = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/stowage");
    let own = Recorder {
        name: "stowage (defaults)".to_owned(),
        program: binary.to_string_lossy().into_owned(),
        args: ["--store", "{out}", "download", "{url}", "--name", "live"].map(str::to_owned).to_vec(),
    };
    std::iter::once(own)
        .chain(
            std::env::var("STOWAGE_LIVE_RECORDER")
                .ok()
                .into_iter()
                .flat_map(|v| v.split(';').map(str::to_owned).collect::<Vec<_>>())
                .filter_map(|spec| {
                    spec.split_once('=').map(|(n, l)| Recorder::from_command_line(n.trim(), l.trim()))
                }),
        )
        .collect()
}

/// One script the recorders go through.
struct Scenario {
    name: &'static str,
    description: &'static str,
    script: Script,
    /// When `EXT-X-ENDLIST` appears (stream time = wall time from the origin's start).
    end: Duration,
    /// The span whose end tells whether a recorder survived, if the scenario has a long outage.
    outage: Option<(Duration, Duration)>,
}

fn scenarios() -> Vec<Scenario> {
    let outage = (s(60), s(120));
    vec![
        Scenario {
            name: "outage-blackhole",
            description: "black-holed (requests read, never answered) from 1:00 to 3:00; ENDLIST at 5:00",
            script: Script::new().black_hole(outage.0, outage.1).end_list(s(300)),
            end: s(300),
            outage: Some((outage.0, outage.0 + outage.1)),
        },
        Scenario {
            name: "outage-refused",
            description: "connections refused from 1:00 to 3:00; ENDLIST at 5:00",
            script: Script::new().refuse(outage.0, outage.1).end_list(s(300)),
            end: s(300),
            outage: Some((outage.0, outage.0 + outage.1)),
        },
        Scenario {
            name: "outage-503",
            description: "every request answered 503 from 1:00 to 3:00; ENDLIST at 5:00",
            script: Script::new().status(outage.0, outage.1, 503).end_list(s(300)),
            end: s(300),
            outage: Some((outage.0, outage.0 + outage.1)),
        },
        Scenario {
            name: "blips",
            description: "refused 5 s at 0:30, 503 for 10 s at 1:00, black-holed 8 s at 1:40; ENDLIST at 2:30",
            script: Script::new()
                .refuse(s(30), s(5))
                .status(s(60), s(10), 503)
                .black_hole(s(100), s(8))
                .end_list(s(150)),
            end: s(150),
            outage: None,
        },
        Scenario {
            name: "stall",
            description: "playlists frozen for 3 target durations (6 s) at 0:40 and for 6 (12 s) at 1:20; \
                          ENDLIST at 2:10",
            script: Script::new().stall(s(40), s(6)).stall(s(80), s(12)).end_list(s(130)),
            end: s(130),
            outage: None,
        },
        Scenario {
            name: "stale",
            description: "from 0:30 to 1:10 every second playlist request answered 40 s out of date (the \
                          media sequence goes back 20, to a window that has nothing in common with the \
                          fresh one); ENDLIST at 1:50",
            script: Script::new().stale(s(30), s(40), s(40), 2).end_list(s(110)),
            end: s(110),
            outage: None,
        },
    ]
}

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg is installed");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The ten-minute source (320x180 H.264 with AAC muxed, 300 segments of 2 s, a key frame every 2 s),
/// made once with ffmpeg and cached under the target directory with the table of its frames.
fn source_asset() -> PathBuf {
    let dir = support::target_dir().join("stowage-bench-assets/live-600");
    if dir.join("frames.txt").is_file() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    eprintln!("generating the live source with ffmpeg in {}", dir.display());
    let seconds = (SOURCE_SEGMENTS as u64 * SEGMENT_SECONDS).to_string();
    let gop = (SEGMENT_SECONDS * FPS).to_string();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size=320x180:rate={FPS}:duration={seconds}"),
        "-f",
        "lavfi",
        "-i",
        &format!("sine=frequency=440:sample_rate=48000:duration={seconds}"),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-b:v",
        "200k",
        "-g",
        &gop,
        "-keyint_min",
        &gop,
        "-sc_threshold",
        "0",
        "-c:a",
        "aac",
        "-b:a",
        "48k",
        "-f",
        "hls",
        "-hls_time",
        &SEGMENT_SECONDS.to_string(),
        "-hls_list_size",
        "0",
        "-hls_playlist_type",
        "vod",
        "-hls_segment_filename",
        dir.join("seg%03d.ts").to_str().unwrap(),
        dir.join("index.m3u8").to_str().unwrap(),
    ]);
    // Each segment starts with a key frame and has no B-frames, so decoding it alone gives the frames it
    // gives in sequence; the table maps every frame's hash to its segment.
    let mut table = String::new();
    for index in 0..SOURCE_SEGMENTS {
        let segment = dir.join(format!("seg{index:03}.ts"));
        for hash in frame_hashes(&segment) {
            table.push_str(&format!("{index} {hash}\n"));
        }
    }
    std::fs::write(dir.join("frames.txt.tmp"), table).unwrap();
    std::fs::rename(dir.join("frames.txt.tmp"), dir.join("frames.txt")).unwrap();
    dir
}

/// The MD5 of every decoded frame of the first video stream of `input`, in order (as far as it decodes).
fn frame_hashes(input: &Path) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "quiet", "-i"])
        .arg(input)
        .args(["-map", "0:v:0", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg is installed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_owned()))
        .filter(|h| !h.is_empty())
        .collect()
}

/// Source segment and frame index of every frame hash, and the frames per source segment.
struct FrameTable {
    frames: HashMap<String, (usize, u32)>,
    per_segment: Vec<u64>,
}

fn frame_table(dir: &Path) -> FrameTable {
    let text = std::fs::read_to_string(dir.join("frames.txt")).unwrap();
    let mut frames = HashMap::new();
    let mut per_segment = vec![0u64; SOURCE_SEGMENTS];
    for line in text.lines() {
        let (index, hash) = line.split_once(' ').unwrap();
        let index: usize = index.parse().unwrap();
        let previous = frames.insert(hash.to_owned(), (index, per_segment[index] as u32));
        assert!(
            previous.is_none(),
            "two source frames decode to the same picture: the method needs unique frames"
        );
        per_segment[index] += 1;
    }
    FrameTable { frames, per_segment }
}

/// The file to decode in a recorder's folder: a playlist (a bundle's master first), else the largest file.
fn output_of(dir: &Path) -> Option<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((current, depth)) = stack.pop() {
        for entry in std::fs::read_dir(&current).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() && depth < 2 {
                stack.push((path, depth + 1));
            } else if path.is_file() {
                files.push(path);
            }
        }
    }
    let playlist = |name: &str| files.iter().find(|p| p.file_name().is_some_and(|n| n == name)).cloned();
    playlist("master.m3u8")
        .or_else(|| files.iter().find(|p| p.extension().is_some_and(|e| e == "m3u8")).cloned())
        .or_else(|| files.iter().max_by_key(|p| std::fs::metadata(p).map_or(0, |m| m.len())).cloned())
}

/// How one recorder's run went.
struct Run {
    recorder: Recorder,
    origin: LiveOrigin,
    child: Option<Child>,
    out: PathBuf,
    exited: Option<(Duration, String)>,
    alive_after_outage: Option<bool>,
    playlist_requests: u64,
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit {code}"),
        None => "killed by a signal".to_owned(),
    }
}

fn signal(child: &Child, name: &str) {
    let _ = Command::new("kill").args([name, &child.id().to_string()]).status();
}

fn run_scenario(
    scenario: &Scenario,
    recorders: &[Recorder],
    source: &Path,
    table: &FrameTable,
    scratch: &Path,
) {
    println!("\n### {}: {}\n", scenario.name, scenario.description);
    let mut runs: Vec<Run> = Vec::new();
    for recorder in recorders {
        let config = LiveConfig::default().window(WINDOW).speed(1.0).script(scenario.script.clone());
        let live_source = LiveSource::from_dir(source, "index.m3u8").unwrap();
        let origin =
            LiveOrigin::start_with(live_source, config, OriginConfig::default().worker_threads(1)).unwrap();
        let out = scratch.join(format!("{}-{}", scenario.name, runs.len()));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(out.join("rec")).unwrap();
        // Its messages (streamlink writes them to standard output), to read what it made of the faults.
        let log = std::fs::File::create(out.join("log.txt")).unwrap();
        let child = recorder
            .command(&origin.url(), &out.join("rec"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", recorder.program));
        runs.push(Run {
            recorder: recorder.clone(),
            origin,
            child: Some(child),
            out,
            exited: None,
            alive_after_outage: None,
            playlist_requests: 0,
        });
    }
    let started = Instant::now();
    let deadline = scenario.end + GRACE;
    let mut interrupted = false;
    loop {
        let elapsed = started.elapsed();
        for run in &mut runs {
            if let Some(child) = &mut run.child
                && let Ok(Some(status)) = child.try_wait()
            {
                run.exited = Some((elapsed, describe(status)));
                run.child = None;
            }
            if let Some((_, end)) = scenario.outage
                && elapsed >= end
                && run.alive_after_outage.is_none()
            {
                run.alive_after_outage = Some(run.child.is_some());
            }
        }
        if runs.iter().all(|r| r.child.is_none()) {
            break;
        }
        if elapsed >= deadline && !interrupted {
            // Still running long after the end: interrupt (ffmpeg and the Python tools finish their files
            // on SIGINT), then kill what is left.
            for run in runs.iter().filter(|r| r.child.is_some()) {
                signal(run.child.as_ref().unwrap(), "-INT");
                run_note(&run.out, "interrupted after the grace period");
            }
            interrupted = true;
        }
        if elapsed >= deadline + Duration::from_secs(20) {
            for run in &mut runs {
                if let Some(mut child) = run.child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                    run.exited = Some((started.elapsed(), "killed".to_owned()));
                }
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for run in &mut runs {
        run.playlist_requests = run
            .origin
            .renditions()
            .iter()
            .filter_map(|r| run.origin.playlist_stats(&r.name))
            .map(|s| s.requests)
            .sum();
    }

    println!(
        "| recorder | ended | running when the outage ended | recorded | missing | of which lost to the outage \
         (no client could have it) | avoidable | duplicated | playlist requests | media sequences missing |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for run in &runs {
        let report = measure(run, table);
        let ended = match &run.exited {
            Some((at, how)) => {
                let interrupted = std::fs::read_to_string(run.out.join("note.txt")).is_ok();
                let how = if interrupted { format!("{how} (interrupted)") } else { how.clone() };
                format!("{how} at {}", clock(*at))
            }
            None => "still running".to_owned(),
        };
        let alive = match run.alive_after_outage {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        let gaps: Vec<String> = report
            .gaps
            .iter()
            .map(|r| {
                if r.start() == r.end() {
                    r.start().to_string()
                } else {
                    format!("{}–{}", r.start(), r.end())
                }
            })
            .collect();
        println!(
            "| {} | {ended} | {alive} | {} | {} | {} | {} | {} | {} | {} |",
            run.recorder.name,
            seconds(report.recorded),
            seconds(report.missing),
            seconds(report.unavoidable),
            seconds(report.missing.saturating_sub(report.unavoidable)),
            seconds(report.duplicated),
            run.playlist_requests,
            gaps.join(", "),
        );
        if report.unknown > 0 {
            eprintln!(
                "{}: {} frames not from the source (damaged output)",
                run.recorder.name, report.unknown
            );
        }
    }
}

fn run_note(out: &Path, note: &str) {
    let _ = std::fs::write(out.join("note.txt"), note);
}

fn clock(at: Duration) -> String {
    let secs = at.as_secs();
    format!("{}:{:02}", secs / 60, secs % 60)
}

fn seconds(frames: u64) -> String {
    if frames == 0 { "0 s".to_owned() } else { format!("{:.1} s", frames as f64 / FPS as f64) }
}

#[derive(Default)]
struct Report {
    recorded: u64,
    missing: u64,
    unavoidable: u64,
    duplicated: u64,
    unknown: u64,
    /// Media sequence numbers with frames missing, as ranges.
    gaps: Vec<std::ops::RangeInclusive<u64>>,
}

/// Compares a recorder's output with the origin's oracle, frame by frame.
fn measure(run: &Run, table: &FrameTable) -> Report {
    let mut report = Report::default();
    let Some(output) = output_of(&run.out.join("rec")) else { return report };
    let timeline = run.origin.timeline();
    let made = timeline.final_count().unwrap_or_else(|| timeline.published(run.origin.clock().now()));
    // No recording is longer than the source, so each source segment stands for one position.
    let position_of: HashMap<usize, u64> =
        (made.saturating_sub(SOURCE_SEGMENTS as u64)..made).map(|p| (timeline.source_index(p), p)).collect();
    let mut frames: BTreeMap<u64, std::collections::HashSet<u32>> = BTreeMap::new();
    for hash in frame_hashes(&output) {
        let Some(&(segment, frame)) = table.frames.get(&hash) else {
            report.unknown += 1;
            continue;
        };
        let Some(&position) = position_of.get(&segment) else { continue };
        if !frames.entry(position).or_default().insert(frame) {
            report.duplicated += 1;
        }
    }
    let Some(&first) = frames.keys().next() else { return report };
    let lost: Vec<std::ops::Range<u64>> =
        timeline.lost_to_outages().into_iter().map(|l| l.positions).collect();
    for position in first..made {
        let expected = table.per_segment[timeline.source_index(position)];
        let got = frames.get(&position).map_or(0, |f| f.len() as u64);
        report.recorded += got;
        let missing = expected.saturating_sub(got);
        report.missing += missing;
        if missing > 0 {
            let msn = timeline.media_sequence(position);
            match report.gaps.last_mut() {
                Some(last) if *last.end() + 1 == msn => *last = *last.start()..=msn,
                _ => report.gaps.push(msn..=msn),
            }
        }
        if lost.iter().any(|r| r.contains(&position)) {
            report.unavoidable += missing;
        }
    }
    report
}

fn main() {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let started = Instant::now();
    let source = source_asset();
    let table = frame_table(&source);
    let scratch = support::target_dir().join("stowage-bench-scratch/live");
    std::fs::create_dir_all(&scratch).unwrap();
    let mut recorders = Vec::new();
    for recorder in peers().into_iter().chain(stowage_recorders()) {
        if recorder.is_installed() {
            recorders.push(recorder);
        } else {
            eprintln!("{} is not installed: its row is left out", recorder.program);
        }
    }
    for (program, flag) in [("streamlink", "--version"), ("yt-dlp", "--version"), ("ffmpeg", "-version")] {
        if let Ok(out) = Command::new(program).arg(flag).output() {
            let text = String::from_utf8_lossy(&out.stdout);
            eprintln!("{}", text.lines().next().unwrap_or(program));
        }
    }
    println!(
        "source: {SOURCE_SEGMENTS} segments of {SEGMENT_SECONDS} s (320x180 H.264 at {FPS} fps + AAC), live \
         window {WINDOW} segments, real time"
    );
    for scenario in scenarios().iter().filter(|s| wanted(s.name)) {
        run_scenario(scenario, &recorders, &source, &table, &scratch);
    }
    eprintln!("live: done in {:.0} s", started.elapsed().as_secs_f64());
}
