//! Helpers shared by the driver's integration tests: an origin serving the committed HLS fixtures, a
//! session with short backoffs, and a byte-for-byte check of a bundle against the clear sources.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use stowage_bundle::{Bundle, SegmentKind};
use stowage_fetch::{ClientConfig, RetryConfig};
use stowage_origin::{Files, Origin, OriginConfig};
use stowage_task::engine::RetryPolicy;
use stowage_task::{DownloadSession, DownloadTask, SessionConfig, TaskEvent};

/// The committed fixtures: `clear/` and `aes/`.
pub fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/assets/hls")
}

/// An origin serving `clear/` under `/clear` and `aes/` under `/aes`.
pub fn origin(config: OriginConfig) -> Origin {
    let files = Files::new();
    files.load_dir("/clear", assets().join("clear")).unwrap();
    files.load_dir("/aes", assets().join("aes")).unwrap();
    Origin::start(files, config).unwrap()
}

/// Fetch-layer settings with short backoffs, so that fault tests take milliseconds per retry.
pub fn http() -> ClientConfig {
    ClientConfig::default().retry(
        RetryConfig::default()
            .base_delay(Duration::from_millis(5))
            .max_delay(Duration::from_millis(50))
            .max_retry_after(Duration::from_secs(1)),
    )
}

/// A session config on `store` with short backoffs.
pub fn config(store: &Path) -> SessionConfig {
    SessionConfig::new(store)
        .http(http())
        .retry(RetryPolicy::default().backoff(Duration::from_millis(5), Duration::from_millis(100)))
}

pub fn session(store: &Path) -> DownloadSession {
    DownloadSession::new(config(store)).unwrap()
}

/// Resumes `task` and collects its events until it ends (30 s at most).
pub async fn run(task: &DownloadTask) -> Vec<TaskEvent> {
    let mut events = task.events();
    task.resume();
    let mut seen = Vec::new();
    let collect = async {
        while let Some(event) = events.recv().await {
            let end = matches!(event, TaskEvent::Finished { .. } | TaskEvent::Failed(_));
            seen.push(event);
            if end {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), collect).await.expect("the task ends within 30 s");
    seen
}

/// The clear source file of a planned URI served by the origin: `/aes/x/y` and `/clear/x/y` both map to
/// `clear/x/y`.
pub fn clear_source(uri: &str) -> PathBuf {
    let path = uri.split_once("://").unwrap().1;
    let path = &path[path.find('/').unwrap() + 1..];
    let path = path.split('?').next().unwrap();
    let rest = path.split_once('/').unwrap().1;
    assets().join("clear").join(rest)
}

/// Opens the finished bundle at `dir` and checks every stored entry byte for byte against the clear
/// sources; returns how many entries were compared.
pub fn check_bundle(dir: &Path) -> usize {
    let bundle = Bundle::open(dir).unwrap();
    let manifest = bundle.manifest();
    assert!(manifest.finished, "the bundle is finished");
    let mut compared = 0;
    for r in &manifest.renditions {
        for s in &r.plan.segments {
            let id = s.id(&r.plan.id);
            assert!(bundle.is_finished(&id), "{id:?} is stored");
            let stored = std::fs::read(bundle.segment_path(&id).unwrap()).unwrap();
            let source = std::fs::read(clear_source(&s.uri)).unwrap();
            let expected = match s.byte_range {
                Some(range) => &source[range.offset as usize..(range.offset + range.length) as usize],
                None => &source[..],
            };
            assert!(stored == expected, "{:?} {:?} differs from {}", id.kind, id, s.uri);
            if id.kind == SegmentKind::Media || id.kind == SegmentKind::Init {
                compared += 1;
            }
        }
    }
    compared
}
