//! Managing downloads from the page, in Chromium: with the download API's token in the page's address,
//! a download is started from the page's field, suspended, resumed, followed to the end and removed, over
//! a real download session of the store served (stowage-task against stowage-origin). Checked: the page
//! shows no controls without the token and drops the token from its address; each step is confirmed by
//! the page and done in the store; nothing leaves loopback. A screenshot of the page is kept in
//! `target/browser-artifacts/page-manage.png`.
//!
//! Needs what `tests/browser.rs` needs (see there); skipped without it unless `STOWAGE_REQUIRE_BROWSER=1`.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::browser::{artifacts_dir, browser_dir, browser_or_skip};
use serde_json::{Value, json};
use stowage_bundle::StorageManager;
use stowage_origin::{Fault, FaultRule, Files, Origin, OriginConfig};
use stowage_serve::{Downloads, DownloadsError, ServeConfig, Server};
use stowage_task::{CancelMode, ContentConfiguration, DownloadConfiguration, DownloadSession, SessionConfig};
use stowage_testkit::assets;
use tokio::sync::broadcast;

/// Downloads over a session of the store, as an application embedding the server hands them to it.
#[derive(Debug)]
struct SessionDownloads {
    session: DownloadSession,
    events: broadcast::Sender<String>,
}

impl SessionDownloads {
    fn task(&self, asset: &str) -> Result<stowage_task::DownloadTask, DownloadsError> {
        self.session
            .tasks()
            .into_iter()
            .rev()
            .find(|t| t.asset() == asset && !t.state().is_terminal())
            .ok_or_else(|| DownloadsError::NotFound { asset: asset.to_owned() })
    }
}

impl Downloads for SessionDownloads {
    fn start(&self, url: &str, name: Option<&str>) -> Result<String, DownloadsError> {
        let asset = name.unwrap_or("asset").to_owned();
        let config = DownloadConfiguration::new(ContentConfiguration::new());
        let task = self
            .session
            .download_task_named(&asset, url, config)
            .map_err(|e| DownloadsError::Invalid { reason: e.to_string() })?;
        task.resume();
        Ok(asset)
    }

    fn suspend(&self, asset: &str) -> Result<(), DownloadsError> {
        self.task(asset)?.suspend();
        Ok(())
    }

    fn resume(&self, asset: &str) -> Result<(), DownloadsError> {
        self.task(asset)?.resume();
        Ok(())
    }

    fn remove(&self, asset: &str) -> Result<(), DownloadsError> {
        if let Ok(task) = self.task(asset) {
            task.cancel(CancelMode::RemovePartial);
            let handle = tokio::runtime::Handle::current();
            tokio::task::block_in_place(|| handle.block_on(task.wait_for_state(|s| s.is_terminal())));
            return Ok(());
        }
        self.session
            .store()
            .remove(asset)
            .map(drop)
            .map_err(|e| DownloadsError::Failed { reason: e.to_string() })
    }

    fn events(&self) -> broadcast::Receiver<String> {
        self.events.subscribe()
    }
}

#[test]
fn downloads_are_managed_from_the_page_with_the_token() {
    let Some((chromium, _)) = browser_or_skip() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _entered = runtime.enter();
    let files = Files::new();
    files.load_dir("/clear", assets().join("clear")).unwrap();
    let origin = Origin::start(files, OriginConfig::default()).unwrap();
    // Slow enough that the download is still running when the page suspends it.
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(1000))).glob("*.ts"));

    let session = DownloadSession::new(SessionConfig::new(&store_dir).max_connections(2)).unwrap();
    let (events, _) = broadcast::channel(1024);
    let mut source = session.events();
    let sender = events.clone();
    runtime.spawn(async move {
        while let Some(event) = source.recv().await {
            let kind = if event.event.is_terminal() { "finished" } else { "progress" };
            let _ = sender.send(json!({"asset": event.asset, "event": kind}).to_string());
        }
    });
    let downloads = Arc::new(SessionDownloads { session, events });
    let config = ServeConfig::default().downloads(downloads);
    let server = runtime
        .block_on(Server::bind_with("127.0.0.1:0".parse().unwrap(), StorageManager::new(&store_dir), config))
        .unwrap();
    let token = server.api_token().unwrap().to_owned();

    let artifacts = artifacts_dir();
    std::fs::create_dir_all(&artifacts).unwrap();
    let config = json!({
        "base": server.url().trim_end_matches('/'),
        "chromium": chromium,
        "artifacts": artifacts,
        "token": token,
        "id": "managed",
        "url": origin.url("/clear/video0/index.m3u8"),
    });
    let out = Command::new("node")
        .arg(browser_dir().join("manage.mjs"))
        .current_dir(browser_dir())
        .env("STOWAGE_BROWSER_CONFIG", config.to_string())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| {
        panic!("the browser run printed no report ({e}): {stdout}\n{}", String::from_utf8_lossy(&out.stderr))
    });
    runtime.block_on(server.shutdown());
    std::fs::write(artifacts.join("report-manage.json"), serde_json::to_vec_pretty(&report).unwrap())
        .unwrap();

    assert!(report.get("failure").is_none(), "the browser run failed: {}", report["failure"]);
    assert_eq!(report["offLoopback"], json!([]), "requests left loopback");
    assert_eq!(report["pageErrors"], json!([]), "the page raised errors");
    assert_eq!(report["controlsWithoutToken"], 0, "no controls without the token");
    assert_eq!(report["hashAfter"], "", "the token leaves the address bar");
    let steps: Vec<&str> =
        report["steps"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(steps, ["start", "suspend", "resume", "remove"], "{report}");
    assert_ne!(
        report["stateShown"], "complete",
        "the page showed the asset before it was complete: {report}"
    );
    assert_eq!(report["stateAtEnd"], "complete", "{report}");
    assert_eq!(
        report["summaryAtEnd"].as_str(),
        Some(format!("1 asset, {} on disk", report["sizeAtEnd"].as_str().unwrap()).as_str()),
        "the summary line follows the download: {report}"
    );
    assert_eq!(report["removeAsks"], "Remove for good", "removing asks for a second click");
    assert_eq!(report["cardsLeft"], 0);
    assert_eq!(report["footer"].as_str().map(|f| f.starts_with("Served from")), Some(true), "{report}");
    assert!(!store_dir.join("managed").exists(), "removed from the store");
    let segments = origin.log().iter().filter(|r| r.path.ends_with(".ts")).count();
    assert!(segments >= 6, "the download fetched its segments: {segments}");
}
