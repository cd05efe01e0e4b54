//! `stowage export` run as a user runs it, on the bundle `stowage demo` leaves: one file with every track
//! tagged, the report, the refusals; and an export interrupted by Ctrl-C or killed never leaves a file
//! that looks finished.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use stowage_testkit::have_ffmpeg;

fn stowage(store: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stowage"));
    command.arg("--store").arg(store).stdin(Stdio::null());
    command
}

fn ok(output: Output) -> String {
    assert!(output.status.success(), "stowage failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// A store holding the demo asset, `stowage-demo`.
fn demo_store() -> tempfile::TempDir {
    let store = tempfile::tempdir().unwrap();
    ok(stowage(store.path()).args(["demo", "--json"]).output().unwrap());
    store
}

#[test]
fn export_writes_one_file_with_every_track_tagged_and_says_so() {
    if !have_ffmpeg() {
        return;
    }
    let store = demo_store();
    let out = store.path().join("demo.mkv");
    let text =
        ok(stowage(store.path()).args(["export", "stowage-demo"]).arg(&out).arg("--json").output().unwrap());
    let report: Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(report["method"], "remuxed by ffmpeg");
    let tracks: Vec<(String, String, bool)> = report["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["kind"].as_str().unwrap().into(),
                t["language_code"].as_str().unwrap().into(),
                t["default"] == true,
            )
        })
        .collect();
    let expected = [
        ("video", "und", true),
        ("audio", "eng", true),
        ("audio", "fre", false),
        ("subtitles", "eng", false),
        ("subtitles", "fre", false),
    ];
    assert_eq!(tracks, expected.map(|(k, l, d)| (k.to_owned(), l.to_owned(), d)));
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json", "-show_streams"])
        .arg(&out)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&probe.stdout).unwrap();
    let languages: Vec<&str> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .map(|s| s["tags"]["language"].as_str().unwrap())
        .collect();
    assert_eq!(languages, ["eng", "fre", "eng", "fre"]);

    // Without --json: a summary. An existing output is not replaced without --force.
    let again = stowage(store.path()).args(["export", "stowage-demo"]).arg(&out).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let text = ok(stowage(store.path())
        .args(["export", "stowage-demo", "--force", "--audio", "fr"])
        .arg(&out)
        .output()
        .unwrap());
    assert!(
        text.starts_with(&format!("exported {}", out.display())) && text.contains("Français [default]"),
        "{text}"
    );

    // One subtitle rendition to .srt, without ffmpeg.
    let srt = store.path().join("fr.srt");
    let text = ok(stowage(store.path())
        .args(["export", "stowage-demo", "--subs", "fr", "--ffmpeg", "/nonexistent"])
        .arg(&srt)
        .output()
        .unwrap());
    assert!(text.contains("cues joined"), "{text}");
    assert!(std::fs::read_to_string(&srt).unwrap().starts_with("1\n00:00:00,250 --> "));
}

#[test]
fn refusals_name_what_is_wrong() {
    let store = demo_store();
    let fail = |args: &[&str]| {
        let out = stowage(store.path()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let out = store.path().join("x.mkv");
    let e = fail(&["export", "stowage-demo", out.to_str().unwrap(), "--ffmpeg", "/nonexistent/ffmpeg"]);
    assert!(e.contains("apt-get install ffmpeg"), "{e}");
    let e = fail(&["export", "stowage-demo", out.to_str().unwrap(), "--audio", "de"]);
    assert!(e.contains("no audio rendition matches \"de\""), "{e}");
    let e = fail(&["export", "nothing-here", out.to_str().unwrap()]);
    assert!(e.contains("nothing-here"), "{e}");
    assert!(!out.exists());
}

#[cfg(unix)]
/// A stand-in for ffmpeg that answers `-version` and otherwise does nothing for a few seconds, so that an
/// export is still running when it is interrupted.
fn slow_ffmpeg(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("slow-ffmpeg");
    std::fs::write(&path, "#!/bin/sh\n[ \"$1\" = -version ] && exit 0\nexec sleep 5\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(unix)]
#[test]
fn an_interrupted_export_leaves_no_file_that_looks_finished() {
    let store = demo_store();
    let ffmpeg = slow_ffmpeg(store.path());
    let out = store.path().join("movie.mkv");
    let part = store.path().join("movie.mkv.part");

    // Ctrl-C: the export stops, removes what it wrote, and exits with 130.
    let child = stowage(store.path())
        .args(["export", "stowage-demo", "--ffmpeg"])
        .arg(&ffmpeg)
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&part);
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let result = child.wait_with_output().unwrap();
    assert_eq!(result.status.code(), Some(130), "{}", String::from_utf8_lossy(&result.stderr));
    assert!(String::from_utf8_lossy(&result.stderr).contains("nothing was written"));
    assert!(!out.exists() && !part.exists());

    // SIGKILL: no chance to clean up, but what is left does not look finished.
    let mut child = stowage(store.path())
        .args(["export", "stowage-demo", "--ffmpeg"])
        .arg(&ffmpeg)
        .arg(&out)
        .spawn()
        .unwrap();
    wait_for(&part);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.exists(), "a killed export left {}", out.display());
}
