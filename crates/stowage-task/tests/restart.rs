//! Restart after SIGKILL: a child process downloads from the parent's origin and is killed in the middle;
//! a new session on the same store restores the task and fetches no segment the journal holds.

mod common;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stowage_bundle::Bundle;
use stowage_origin::{Fault, FaultRule, OriginConfig};
use stowage_task::config::MediaSelection;
use stowage_task::{ContentConfiguration, DownloadConfiguration, DownloadSession};

const URL_VAR: &str = "STOWAGE_TASK_CHILD_URL";
const STORE_VAR: &str = "STOWAGE_TASK_CHILD_STORE";

/// The child's side: run by the parent test in its own process, never on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by killed_mid_download_and_restored"]
async fn child_downloads_until_killed() {
    let (Ok(url), Ok(store)) = (std::env::var(URL_VAR), std::env::var(STORE_VAR)) else {
        panic!("run by the parent test only");
    };
    let session =
        DownloadSession::new(common::config(store.as_ref()).max_connections(2).adaptive(false)).unwrap();
    let config = DownloadConfiguration::new(
        ContentConfiguration::new().media_selection(MediaSelection::subtitles_language("en")),
    );
    let task = session.download_task(&url, config).unwrap();
    common::run(&task).await;
    panic!("the parent kills this process before the download ends");
}

#[test]
fn killed_mid_download_and_restored() {
    let origin = common::origin(OriginConfig::default());
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(60))).glob("/aes/*/seg*"));
    let store = tempfile::tempdir().unwrap();
    let url = origin.url("/aes/master.m3u8");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "child_downloads_until_killed", "--test-threads=1"])
        .env(URL_VAR, &url)
        .env(STORE_VAR, store.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once a few segments were served.
    let deadline = Instant::now() + Duration::from_secs(20);
    while origin.log().iter().filter(|r| r.path.contains("/seg") && r.completed).count() < 6 {
        assert!(Instant::now() < deadline, "the child downloads");
        assert!(child.try_wait().unwrap().is_none(), "the child is still running");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix.
    child.wait().unwrap();

    let dir = store.path().join(stowage_task::asset_id_for(&url));
    let finished: HashSet<String> = {
        let bundle = Bundle::open(&dir).unwrap();
        let manifest = bundle.manifest();
        assert!(!manifest.finished);
        let done: HashSet<_> = bundle.finished_segments().into_iter().collect();
        assert!(!done.is_empty() && done.len() < 19, "{} finished", done.len());
        manifest
            .renditions
            .iter()
            .flat_map(|r| r.plan.segments.iter().map(|s| (s.id(&r.plan.id), s.uri.clone())))
            .filter(|(id, _)| done.contains(id))
            .map(|(_, uri)| format!("/{}", uri.split_once("://").unwrap().1.split_once('/').unwrap().1))
            .collect()
    };
    origin.clear_log();

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let session = common::session(store.path());
        let restored = session.restore().unwrap();
        assert_eq!(restored.len(), 1);
        common::run(&restored[0]).await;
        let path = restored[0].wait().await.unwrap();
        assert_eq!(common::check_bundle(&path), 6 + 7 + 6);
    });
    let log = origin.log();
    for r in &log {
        assert!(!finished.contains(&r.path), "{} was journaled and fetched again", r.path);
    }
    assert_eq!(
        log.iter().filter(|r| r.path.contains("/seg") && r.status == 200).count(),
        19 - finished.len()
    );
}
