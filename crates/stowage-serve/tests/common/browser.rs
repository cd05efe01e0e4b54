//! What the browser tests need: Chromium, node and the npm dev-dependencies, ffprobe, and where their
//! artifacts go.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Where the screenshots go: `target/browser-artifacts/` of the workspace.
pub fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("browser-artifacts")
}

/// What the browser test needs, or why it cannot run.
pub fn prerequisites() -> Result<(PathBuf, PathBuf), String> {
    let chromium =
        std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if !chromium.exists() {
        return Err(format!(
            "no Chromium at {} (apt-get install chromium, or set CHROMIUM)",
            chromium.display()
        ));
    }
    let modules = browser_dir().join("node_modules");
    for package in ["playwright-core/package.json", "hls.js/dist/hls.min.js"] {
        if !modules.join(package).exists() {
            return Err(format!(
                "no {} (run `npm ci` in {})",
                modules.join(package).display(),
                browser_dir().display()
            ));
        }
    }
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => return Err("no node on the PATH".to_owned()),
    }
    match Command::new("ffprobe").arg("-version").output() {
        Ok(out) if out.status.success() => {}
        _ => return Err("no ffprobe on the PATH (apt-get install ffmpeg)".to_owned()),
    }
    Ok((chromium, modules.join("hls.js/dist/hls.min.js")))
}

/// Chromium and hls.js for a browser test, or `None` when they are missing and the test is to be skipped
/// (saying why). With `STOWAGE_REQUIRE_BROWSER=1` (CI sets it) a missing prerequisite fails the test.
pub fn browser_or_skip() -> Option<(PathBuf, PathBuf)> {
    match prerequisites() {
        Ok(found) => Some(found),
        Err(reason) if std::env::var("STOWAGE_REQUIRE_BROWSER").is_ok_and(|v| v == "1") => {
            panic!("the browser test is required (STOWAGE_REQUIRE_BROWSER=1): {reason}")
        }
        Err(reason) => {
            eprintln!("browser test skipped: {reason}");
            None
        }
    }
}

/// The frames of a video playlist of the fixtures, counted by decoding every one with ffprobe.
pub fn source_frames(playlist: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries"])
        .args(["stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(playlist)
        .output()
        .expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe {}: {}", playlist.display(), String::from_utf8_lossy(&out.stderr));
    // The HLS demuxer may list the stream once per program: the first count is the stream's.
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| l.trim().parse().ok())
        .expect("ffprobe prints a frame count")
}
