//! Crash tests that really crash: a child process (this test binary, re-invoked) writes segments and is
//! killed with SIGKILL at random moments, hundreds of times. After each kill the bundle must open, every
//! journaled segment must be intact and byte-identical, nothing finished may have been rewritten, and the
//! download must resume to completion.

#![cfg(unix)]

mod common;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use std::sync::Arc;

use stowage_bundle::{Bundle, BundleOptions, Durability, LocalFs, SegmentId};

const CHILD_ENV: &str = "STOWAGE_BUNDLE_CRASH_CHILD";
const BATCHED_ENV: &str = "STOWAGE_BUNDLE_CRASH_BATCHED";
const SEGMENTS: u64 = 48;
const SEED: u64 = 0xC0FFEE;

fn segment_len(id: &SegmentId) -> usize {
    // Lengths vary so that a record pointing at the wrong file would be caught by the length check too.
    64 * 1024 + (id.media_sequence as usize % 7) * 9000
}

/// The child: opens (or creates) the bundle and writes every pending segment from two threads.
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // Not a child run.
    };
    let dir = Path::new(&dir);
    let durability = match std::env::var(BATCHED_ENV) {
        Ok(_) => Durability::batched(8),
        Err(_) => Durability::Full,
    };
    let options = BundleOptions::default().durability(durability);
    let storage = Arc::new(LocalFs::new());
    let bundle = if dir.join("manifest.json").exists() {
        Bundle::open_with(storage, dir, options).unwrap()
    } else {
        Bundle::create_with(storage, dir, simple_plan("crash", SEGMENTS), options).unwrap()
    };
    let pending = bundle.pending_segments();
    std::thread::scope(|s| {
        for lane in 0..2 {
            let bundle = bundle.clone();
            let pending = &pending;
            s.spawn(move || {
                for id in pending.iter().skip(lane).step_by(2) {
                    write_segment(&bundle, id, &segment_bytes(id, SEED, segment_len(id))).unwrap();
                }
            });
        }
    });
    bundle.mark_finished().unwrap();
}

fn spawn_child(dir: &Path, batched: bool) -> std::process::Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    if batched {
        command.env(BATCHED_ENV, "1");
    }
    command
        .args(["crash_child_writer", "--exact", "--test-threads=1", "--quiet"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Opens the bundle and checks every promise; returns the finished segments with their inode numbers.
fn check(dir: &Path, before: &HashMap<SegmentId, u64>) -> HashMap<SegmentId, u64> {
    let bundle = Bundle::open(dir).unwrap();
    let report = bundle.open_report().clone();
    assert!(report.damaged_segments.is_empty(), "a journaled segment is damaged: {report:?}");
    assert!(report.corrupt_journal_lines.is_empty(), "{report:?}");
    let mut after = HashMap::new();
    for id in bundle.finished_segments() {
        let path = bundle.segment_path(&id).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes == segment_bytes(&id, SEED, segment_len(&id)), "{id} is not byte-identical");
        after.insert(id, std::fs::metadata(&path).unwrap().ino());
    }
    for (id, ino) in before {
        assert_eq!(after.get(id), Some(ino), "{id} was finished before the crash and is lost or rewritten");
    }
    after
}

#[test]
fn sigkill_at_random_points_never_corrupts_the_bundle() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x5EED_1234_ABCD);
    let started = Instant::now();
    let (mut runs, mut bundles, mut kills_mid_bundle) = (0u32, 0u32, 0u32);
    let mut dir = tmp.path().join("b0");
    let mut finished: HashMap<SegmentId, u64> = HashMap::new();
    // Bounded in time and in runs: enough kills to land in every step of a write, few enough for CI.
    while runs < 400 && started.elapsed() < Duration::from_secs(15) {
        // Bundles alternate between the two durability modes: a kill must cost neither anything.
        let mut child = spawn_child(&dir, bundles % 2 == 1);
        std::thread::sleep(Duration::from_micros(rng.below(25_000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        runs += 1;
        if !dir.join("manifest.json").exists() {
            continue; // Killed before the bundle existed.
        }
        finished = check(&dir, &finished);
        if (finished.len() as u64) < SEGMENTS {
            kills_mid_bundle += 1;
        } else {
            bundles += 1;
            dir = tmp.path().join(format!("b{bundles}"));
            finished.clear();
        }
    }
    assert!(runs >= 60, "only {runs} runs in the time bound");
    assert!(kills_mid_bundle >= 30, "only {kills_mid_bundle} kills landed during a download");

    // Resume without a kill: the download completes and keeps every finished segment as it was.
    if dir.join("manifest.json").exists() {
        let status = spawn_child(&dir, bundles % 2 == 1).wait().unwrap();
        assert!(status.success());
        let all = check(&dir, &finished);
        assert_eq!(all.len() as u64, SEGMENTS);
        let bundle = Bundle::open(&dir).unwrap();
        assert!(bundle.manifest().complete);
        assert!(bundle.verify(false).unwrap().is_ok());
    }
    eprintln!(
        "{runs} kills, {kills_mid_bundle} during a download, {bundles} bundles completed between kills"
    );
}
