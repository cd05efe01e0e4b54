//! Export: `stowage export` writing a one-hour, 5 Mb/s bundle as one `.ts` (MPEG-TS segments joined) and
//! as one `.mp4` (fMP4 fragments muxed), both without ffmpeg, side by side in one sitting with `ffmpeg -f
//! concat -c copy` (MPEG-TS) or ffmpeg reading the bundle's playlist (fMP4) and with a plain `cat` of the
//! same files; wall time, CPU time and peak RSS of each process, at two lengths.
//!
//! The bundle is synthesized, not downloaded: a 10-second 720p clip (H.264 with noise, 5 Mb/s) is encoded
//! once with ffmpeg, looped with `-stream_loop` and `-c copy` into an HLS rendition of two-second segments
//! (so the timestamps run on for the whole hour, as in a real recording), and written into a bundle through
//! `stowage-bundle`, journal and all. Every tool gets the same stored segment files; each output is synced to
//! disk before the clock stops (the export syncs before its rename; `cat` and ffmpeg are followed by
//! `sync FILE`), so that the comparison is of durable files.
//!
//! `cargo bench -p stowage-benches --bench export [ts|mp4] [rounds=N]`. Prints Markdown tables. Needs ffmpeg,
//! python3 and about 8 GB of free disk under the target directory.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use stowage_bundle::{AssetInfo, BundlePlan, RenditionKind, RenditionPlan, StorageManager};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Ts,
    Fmp4,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Self::Ts => "ts",
            Self::Fmp4 => "mp4",
        }
    }
}

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The 10-second 720p clip at about 5 Mb/s, made once.
fn clip() -> PathBuf {
    let path = support::target_dir().join("stowage-bench-assets/export-clip-720p-5M.ts");
    if !path.is_file() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let temp = path.with_extension("tmp.ts");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=25:duration=10",
            "-vf",
            "noise=alls=12:allf=t",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-b:v",
            "5M",
            "-maxrate",
            "5M",
            "-bufsize",
            "10M",
            "-g",
            "50",
            "-keyint_min",
            "50",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-f",
            "mpegts",
            temp.to_str().unwrap(),
        ]);
        std::fs::rename(&temp, &path).unwrap();
    }
    path
}

/// A bundle of one video rendition, `minutes` long, in `format`, under `scratch/store`.
fn bundle(format: Format, minutes: usize, scratch: &Path) -> PathBuf {
    let hls = scratch.join("hls");
    let _ = std::fs::remove_dir_all(&hls);
    std::fs::create_dir_all(&hls).unwrap();
    let loops = (minutes * 6 - 1).to_string();
    let clip = clip();
    let mut args = vec!["-stream_loop", &loops, "-i", clip.to_str().unwrap(), "-c", "copy", "-f", "hls"];
    args.extend(["-hls_time", "2", "-hls_list_size", "0", "-hls_playlist_type", "vod"]);
    let segments = hls.join(if format == Format::Ts { "s%05d.ts" } else { "s%05d.m4s" });
    if format == Format::Fmp4 {
        args.extend(["-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4"]);
    }
    let index = hls.join("index.m3u8");
    args.extend(["-hls_segment_filename", segments.to_str().unwrap(), index.to_str().unwrap()]);
    ffmpeg(&args);

    let text = std::fs::read_to_string(&index).unwrap();
    let url = format!("file://{}", index.display());
    let id = stowage_bundle::RenditionId::new("video").unwrap();
    let rendition =
        RenditionPlan::from_playlist(id.clone(), RenditionKind::Video, &url, text).unwrap().primary(true);
    let sources: Vec<(stowage_bundle::SegmentId, PathBuf)> = rendition
        .segments
        .iter()
        .map(|s| (s.id(&id), PathBuf::from(s.uri.strip_prefix("file://").unwrap())))
        .collect();
    let name = format!("long-{}-{minutes}", format.name());
    let plan = BundlePlan::new(AssetInfo::new(&name)).rendition(rendition);
    let store = StorageManager::new(scratch.join("store"));
    let _ = store.remove(&name);
    let bundle = store.create_bundle(plan).unwrap();
    for (id, source) in &sources {
        let mut writer = bundle.segment_writer(id).unwrap();
        writer.write(&std::fs::read(source).unwrap()).unwrap();
        writer.finish().unwrap();
    }
    bundle.mark_finished().unwrap();
    let dir = bundle.dir().to_path_buf();
    drop(bundle);
    std::fs::remove_dir_all(&hls).unwrap();
    dir
}

/// The stored files of the bundle's rendition in order: the init section first, then the segments.
fn stored_files(bundle: &Path) -> Vec<PathBuf> {
    let folder = bundle.join("video");
    let text = std::fs::read_to_string(folder.join("index.m3u8")).unwrap();
    let mut files = Vec::new();
    for line in text.lines() {
        if let Some(map) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
            files.push(folder.join(map.trim_end_matches('"')));
        } else if !line.starts_with('#') && !line.is_empty() {
            files.push(folder.join(line));
        }
    }
    files
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tool {
    Stowage,
    Ffmpeg,
    Cat,
}

impl Tool {
    fn name(self, format: Format) -> &'static str {
        match (self, format) {
            (Self::Stowage, Format::Ts) => "`stowage export` .ts (joined, no ffmpeg)",
            (Self::Stowage, Format::Fmp4) => "`stowage export` .mp4 (fMP4 muxed, no ffmpeg)",
            (Self::Ffmpeg, Format::Ts) => "`ffmpeg -f concat -c copy` .ts",
            (Self::Ffmpeg, Format::Fmp4) => "`ffmpeg -i index.m3u8 -c copy` .mp4",
            (Self::Cat, _) => "`cat` of the same files",
        }
    }
}

/// Runs one tool once; returns the measured run and the output.
fn run(
    tool: Tool,
    format: Format,
    stowage: &Path,
    bundle: &Path,
    scratch: &Path,
) -> (support::ChildRun, PathBuf) {
    let out = scratch.join(format!("out-{tool:?}.{}", format.name()));
    let _ = std::fs::remove_file(&out);
    let files = stored_files(bundle);
    let (program, args): (PathBuf, Vec<String>) = match tool {
        Tool::Stowage => (
            stowage.to_path_buf(),
            vec!["export".into(), bundle.display().to_string(), out.display().to_string(), "--force".into()],
        ),
        Tool::Ffmpeg => {
            let input = match format {
                Format::Ts => {
                    let list = scratch.join("concat.txt");
                    let text: String = files.iter().map(|f| format!("file '{}'\n", f.display())).collect();
                    std::fs::write(&list, text).unwrap();
                    format!("-f concat -safe 0 -i {}", list.display())
                }
                Format::Fmp4 => format!("-i {}", bundle.join("video/index.m3u8").display()),
            };
            let muxer = if format == Format::Ts { "mpegts" } else { "mp4" };
            let script =
                format!("ffmpeg -nostdin -v error -y {input} -c copy -f {muxer} \"$1\" && sync \"$1\"");
            ("sh".into(), vec!["-c".into(), script, "sh".into(), out.display().to_string()])
        }
        Tool::Cat => {
            let mut args = vec![
                "-c".into(),
                "out=$1; shift; cat \"$@\" > \"$out\" && sync \"$out\"".into(),
                "sh".into(),
            ];
            args.push(out.display().to_string());
            args.extend(files.iter().map(|f| f.display().to_string()));
            ("sh".into(), args)
        }
    };
    let measured = support::run_measured(&program, &args, Duration::from_secs(900));
    assert!(measured.success, "{tool:?}: {}", measured.stderr_tail);
    (measured, out)
}

fn sitting(format: Format, minutes: usize, rounds: usize, stowage: &Path, scratch: &Path) {
    let bundle = bundle(format, minutes, scratch);
    let bytes: u64 = stored_files(&bundle).iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    let tools = [Tool::Stowage, Tool::Ffmpeg, Tool::Cat];
    let mut walls = vec![Vec::new(); 3];
    let mut cpus = vec![Vec::new(); 3];
    let mut rss = [0u64; 3];
    let mut frames = [0u64; 3];
    for round in 0..rounds {
        // Rotating order, so that no tool always runs first after the page cache was warmed by another.
        for k in 0..3 {
            let t = (round + k) % 3;
            let (measured, out) = run(tools[t], format, stowage, &bundle, scratch);
            walls[t].push(measured.wall.as_secs_f64());
            cpus[t].push(measured.cpu.as_secs_f64());
            rss[t] = rss[t].max(measured.max_rss);
            if round == 0 && tools[t] != Tool::Cat {
                let (n, clean) = support::count_frames(&out);
                assert!(clean, "{tools:?}: the output does not decode cleanly");
                frames[t] = n;
            }
            let _ = std::fs::remove_file(&out);
        }
    }
    let wall: Vec<f64> = walls.iter().map(|w| support::median(w)).collect();
    println!(
        "\n### {} min, {:.2} GB, {} segments of 2 s ({}), {rounds} rounds\n",
        minutes,
        bytes as f64 / 1e9,
        minutes * 30,
        if format == Format::Ts { "MPEG-TS" } else { "fMP4" }
    );
    println!(
        "| tool | median wall | throughput | vs stowage | CPU time (median) | peak RSS | video frames |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for t in 0..3 {
        println!(
            "| {} | {:.2} s | {:.0} MB/s | {:.2}x | {:.2} s | {:.1} MB | {} |",
            tools[t].name(format),
            wall[t],
            bytes as f64 / 1e6 / wall[t],
            wall[t] / wall[0],
            support::median(&cpus[t]),
            rss[t] as f64 / 1e6,
            if tools[t] == Tool::Cat { "-".to_owned() } else { frames[t].to_string() },
        );
    }
    std::fs::remove_dir_all(&bundle).unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let rounds =
        args.iter().find_map(|a| a.strip_prefix("rounds=")).and_then(|n| n.parse().ok()).unwrap_or(3);
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with("rounds=")).collect();
    let wanted = |part: &str| filter.is_empty() || filter.iter().any(|f| f.as_str() == part);
    let stowage = support::stowage_binary();
    let scratch = support::target_dir().join("stowage-bench-scratch/export");
    std::fs::create_dir_all(&scratch).unwrap();
    for format in [Format::Ts, Format::Fmp4] {
        if !wanted(format.name()) {
            continue;
        }
        for minutes in [10, 60] {
            sitting(format, minutes, rounds, &stowage, &scratch);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
