//! What the end-to-end benchmarks share: where the target directory is, the `stowage` release binary,
//! the generated 720p asset, the origin serving it, and running a child process with its peak memory and
//! CPU time measured.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stowage_origin::hls::{EncryptOptions, encrypt_master};
use stowage_origin::{Fault, FaultRule, Files, Origin, OriginConfig};

/// The cargo target directory this benchmark was built into: the executable lives in
/// `TARGET/release/deps/`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the benchmark knows its own path");
    exe.ancestors().nth(3).expect("the benchmark runs from TARGET/PROFILE/deps").to_path_buf()
}

/// The `stowage` release binary beside this benchmark (`TARGET/release/stowage`), built with
/// `cargo build --release -p stowage` into the same target directory when it is missing or when
/// `STOWAGE_BENCH_REBUILD` is set.
pub fn stowage_binary() -> PathBuf {
    let bin = target_dir().join("release/stowage");
    if !bin.is_file() || std::env::var_os("STOWAGE_BENCH_REBUILD").is_some() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        eprintln!("building the stowage release binary into {}", target_dir().display());
        let status = Command::new(cargo)
            .args(["build", "--release", "-p", "stowage"])
            .env("CARGO_TARGET_DIR", target_dir())
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .status()
            .expect("run cargo");
        assert!(status.success(), "cargo build --release -p stowage failed");
    }
    bin
}

/// Segments of the generated asset, and their length in seconds.
pub const SEGMENTS: usize = 300;
/// Video frames per second of the generated asset.
pub const FPS: usize = 10;

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg is installed");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The clear 720p asset (H.264 `testsrc2` at a low bitrate, 300 two-second segments, and an English AAC
/// rendition), made once with ffmpeg and cached under the target directory.
pub fn clear_asset() -> PathBuf {
    let dir = target_dir().join("stowage-bench-assets/720p-300");
    if dir.join("master.m3u8").is_file() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("video")).unwrap();
    std::fs::create_dir_all(dir.join("audio-en")).unwrap();
    let seconds = (SEGMENTS * 2).to_string();
    eprintln!("generating the 720p asset with ffmpeg in {}", dir.display());
    let video = dir.join("video");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size=1280x720:rate={FPS}:duration={seconds}"),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-b:v",
        "300k",
        "-g",
        &(2 * FPS).to_string(),
        "-keyint_min",
        &(2 * FPS).to_string(),
        "-sc_threshold",
        "0",
        "-f",
        "hls",
        "-hls_time",
        "2",
        "-hls_list_size",
        "0",
        "-hls_playlist_type",
        "vod",
        "-hls_segment_filename",
        video.join("seg%03d.ts").to_str().unwrap(),
        video.join("index.m3u8").to_str().unwrap(),
    ]);
    let audio = dir.join("audio-en");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("sine=frequency=440:sample_rate=48000:duration={seconds}"),
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-f",
        "hls",
        "-hls_time",
        "2",
        "-hls_list_size",
        "0",
        "-hls_playlist_type",
        "vod",
        "-hls_segment_filename",
        audio.join("seg%03d.ts").to_str().unwrap(),
        audio.join("index.m3u8").to_str().unwrap(),
    ]);
    let master = "#EXTM3U\n#EXT-X-VERSION:3\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=YES,AUTOSELECT=YES,\
        URI=\"audio-en/index.m3u8\"\n\
        #EXT-X-STREAM-INF:BANDWIDTH=450000,RESOLUTION=1280x720,CODECS=\"avc1.42c01f,mp4a.40.2\",AUDIO=\"aud\"\n\
        video/index.m3u8\n";
    std::fs::write(dir.join("master.m3u8.tmp"), master).unwrap();
    std::fs::rename(dir.join("master.m3u8.tmp"), dir.join("master.m3u8")).unwrap();
    dir
}

/// Bytes of the clear media segments under `dir/rendition`.
pub fn media_bytes(dir: &Path, rendition: &str) -> u64 {
    std::fs::read_dir(dir.join(rendition))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ts"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

/// An origin serving the asset under `/a/`, every rendition AES-128 encrypted with a new key every three
/// segments (100 keys for the 720p variant), explicit IVs; and the clear asset under `/c/`, to tell the
/// cost of keys apart.
pub fn encrypted_origin() -> Origin {
    let files = Files::new();
    files.load_dir("/a", clear_asset()).unwrap();
    files.load_dir("/c", clear_asset()).unwrap();
    encrypt_master(&files, "/a/master.m3u8", &EncryptOptions::default().rotate_every(3).explicit_ivs())
        .unwrap();
    Origin::start(files, OriginConfig::default()).unwrap()
}

/// Injects `latency` before every response (nothing when zero), replacing any other fault.
pub fn set_latency(origin: &Origin, latency: Duration) {
    origin.faults().clear();
    if !latency.is_zero() {
        origin.faults().add(FaultRule::new(Fault::Latency(latency)));
    }
}

/// The fault mix: 5 % of all requests 503 (keys included), 5 % of bodies cut, 20 % of key requests 404.
pub fn set_fault_mix(origin: &Origin, seed: u64) {
    let faults = origin.faults();
    faults.clear();
    faults.set_seed(seed);
    faults.add(FaultRule::new(Fault::service_unavailable(None)).probability(0.05));
    faults.add(FaultRule::new(Fault::CutAtRandom).probability(0.05));
    faults.add(FaultRule::new(Fault::status(404)).glob("*.key").probability(0.2));
}

/// How one child process went.
#[derive(Clone, Debug)]
pub struct ChildRun {
    /// Wall time from spawn to exit.
    pub wall: Duration,
    /// Whether it exited with status 0.
    pub success: bool,
    /// Peak resident set size in bytes (`ru_maxrss` of the child).
    pub max_rss: u64,
    /// User plus system CPU time.
    pub cpu: Duration,
    /// The end of its standard error, for reports.
    pub stderr_tail: String,
}

/// Runs `program args` under a small Python wrapper that reports the child's `ru_maxrss` and CPU time
/// from `getrusage(RUSAGE_CHILDREN)`; standard output is discarded.
pub fn run_measured(program: &Path, args: &[String], timeout: Duration) -> ChildRun {
    const WRAPPER: &str = "import resource, subprocess, sys\n\
        p = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=float(sys.argv[1]))\n\
        u = resource.getrusage(resource.RUSAGE_CHILDREN)\n\
        sys.stderr.buffer.write(p.stderr[-2000:])\n\
        print(p.returncode, u.ru_maxrss, u.ru_utime + u.ru_stime)\n";
    let start = Instant::now();
    let out = Command::new("python3")
        .arg("-c")
        .arg(WRAPPER)
        .arg(timeout.as_secs_f64().to_string())
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("python3 is installed");
    let wall = start.elapsed();
    let stderr_tail = String::from_utf8_lossy(&out.stderr).into_owned();
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut fields = line.split_whitespace();
    let (Some(code), Some(rss), Some(cpu)) = (fields.next(), fields.next(), fields.next()) else {
        // The wrapper itself failed, for example on a timeout.
        return ChildRun { wall, success: false, max_rss: 0, cpu: Duration::ZERO, stderr_tail };
    };
    ChildRun {
        wall,
        success: code == "0",
        max_rss: rss.parse::<u64>().unwrap_or(0) * 1024,
        cpu: Duration::from_secs_f64(cpu.parse().unwrap_or(0.0)),
        stderr_tail,
    }
}

/// The median of `values` (the mean of the two middle ones for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// Video frames (packets of the first video stream) ffprobe counts in `input`, with whether ffmpeg
/// decoded all of it without an error.
pub fn count_frames(input: &Path) -> (u64, bool) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(input)
        .output()
        .expect("ffprobe is installed");
    // Transport streams list the stream once per program too: the first line is the count.
    let text = String::from_utf8_lossy(&out.stdout);
    let frames = text.lines().next().unwrap_or("").trim().trim_end_matches(',').parse().unwrap_or(0);
    let decode = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(input)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg is installed");
    (frames, decode.status.success() && decode.stderr.is_empty())
}

/// The largest regular file under `dir` (a peer's output), if any.
pub fn largest_file(dir: &Path) -> Option<PathBuf> {
    let mut best: Option<(u64, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        let len = std::fs::metadata(&path).ok()?.len();
        if path.is_file() && best.as_ref().is_none_or(|(l, _)| len > *l) {
            best = Some((len, path));
        }
    }
    best.map(|(_, p)| p)
}

/// Peak and current resident set size of this process, from `/proc/self/status` (bytes).
pub fn own_rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}
