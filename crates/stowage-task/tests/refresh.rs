//! Signed URLs that expire: what the refresh hook is told, how often it is asked, how a fresh master
//! playlist is read again, and what a hook that panics does to the task.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stowage_origin::{Fault, FaultRule, Origin, OriginConfig, RequestRecord};
use stowage_task::config::MediaSelection;
use stowage_task::{
    CancelMode, ContentConfiguration, DownloadConfiguration, DownloadSession, Error, Refresh, RefreshFuture,
    RefreshHook, RefreshRequest, TaskState, refresh_fn,
};

fn media() -> DownloadConfiguration {
    DownloadConfiguration::new(ContentConfiguration::new())
}

/// The origin's log in order of arrival (a slow answer is logged when it is given).
fn log_in_order(origin: &Origin) -> Vec<RequestRecord> {
    let mut log = origin.log();
    log.sort_by_key(|r| r.received);
    log
}

fn has_token(record: &RequestRecord, token: &str) -> bool {
    record.query.as_deref().is_some_and(|q| q.contains(&format!("token={token}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_at_once_ask_for_one_refresh_naming_the_refused_url() {
    let origin = common::signed_origin();
    // Slow segments, so that several are in flight when the old signature expires after the first.
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(30))).glob("/clear/video0/seg*"));
    origin.faults().add(FaultRule::new(Fault::status(403)).query_contains("token=old").after_requests(1));
    let asked: Arc<Mutex<Vec<RefreshRequest>>> = Arc::default();
    let seen = Arc::clone(&asked);
    let fresh = origin.url("/signed/new.m3u8");
    let hook = refresh_fn(move |request| {
        seen.lock().unwrap().push(request.clone());
        Some(Refresh::new().url(fresh.clone()))
    });
    let store = tempfile::tempdir().unwrap();
    let session = DownloadSession::new(
        common::config(store.path()).refresh_hook(hook).max_connections(3).adaptive(false),
    )
    .unwrap();
    let task = session.download_task_named("signed", &origin.url("/signed/old.m3u8"), media()).unwrap();
    common::run(&task).await;
    let path = task.wait().await.unwrap();
    assert_eq!(common::check_bundle(&path), 6);

    let log = log_in_order(&origin);
    let refused: Vec<&RequestRecord> =
        log.iter().filter(|r| r.status == 403 && r.path.starts_with("/clear/")).collect();
    assert!(refused.len() >= 2, "several segments were refused together: {refused:?}");
    let asked = asked.lock().unwrap();
    assert_eq!(asked.len(), 1, "one refresh for one expired signature: {asked:?}");
    // The hook is told the URL the origin refused, not the job's URL after the refresh.
    let told = &asked[0].refused_uri;
    assert!(told.contains("token=old"), "{told}");
    assert!(
        refused.iter().any(|r| told.ends_with(&format!("{}?{}", r.path, r.query.as_deref().unwrap()))),
        "{told} is one of the refused requests"
    );
    assert_eq!(asked[0].status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_refresh_hook_fails_the_task_instead_of_hanging() {
    let origin = expiring_origin();
    let hook = refresh_fn(|_| panic!("no credentials for the CDN"));
    let store = tempfile::tempdir().unwrap();
    let session = DownloadSession::new(common::config(store.path()).refresh_hook(hook)).unwrap();
    let task = session.download_task_named("panics", &origin.url("/signed/old.m3u8"), media()).unwrap();
    task.resume();
    let ended = tokio::time::timeout(Duration::from_secs(20), task.wait()).await;
    let err = ended.expect("the task ends instead of hanging").unwrap_err();
    match &err {
        Error::RefreshHookPanicked { refused_uri, message } => {
            assert!(refused_uri.contains("token=old"), "{refused_uri}");
            assert!(message.contains("no credentials for the CDN"), "{message}");
        }
        other => panic!("expected the hook's panic, got {other}"),
    }
    assert!(err.to_string().contains("refresh hook panicked"), "{err}");
}

/// The encrypted fixtures under `/tok/`, with a master playlist `/tok/master-{token}.m3u8` whose media
/// playlists, segments and keys all carry `token`. The fresh master lists its variants in another order,
/// so that only their attributes tell them apart.
fn tokenised(origin: &Origin, token: &str, reversed: bool) {
    let files = origin.files();
    for rendition in ["video0", "video1", "audio-en", "audio-fr"] {
        let source =
            std::fs::read_to_string(common::assets().join(format!("aes/{rendition}/index.m3u8"))).unwrap();
        let text = source
            .replace(".ts\n", &format!(".ts?token={token}\n"))
            .replace(".key\"", &format!(".key?token={token}\""));
        assert_ne!(text, source);
        files.insert_bytes(&format!("/tok/{rendition}/{token}.m3u8"), text);
    }
    let media = |lang: &str, name: &str, default: &str| {
        format!(
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",LANGUAGE=\"{lang}\",NAME=\"{name}\",DEFAULT={default},\
             AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio-{lang}/{token}.m3u8?token={token}\"\n"
        )
    };
    let variants = [
        format!(
            "#EXT-X-STREAM-INF:BANDWIDTH=549529,AVERAGE-BANDWIDTH=258116,RESOLUTION=320x180,\
             CODECS=\"avc1.64000c,mp4a.40.2\",AUDIO=\"aud\"\nvideo0/{token}.m3u8?token={token}\n"
        ),
        format!(
            "#EXT-X-STREAM-INF:BANDWIDTH=718729,AVERAGE-BANDWIDTH=417791,RESOLUTION=480x270,\
             CODECS=\"avc1.640015,mp4a.40.2\",AUDIO=\"aud\"\nvideo1/{token}.m3u8?token={token}\n"
        ),
    ];
    let mut text = String::from("#EXTM3U\n#EXT-X-VERSION:6\n");
    text.push_str(&media("en", "English", "YES"));
    text.push_str(&media("fr", "French", "NO"));
    if reversed {
        text.extend(variants.iter().rev().cloned());
    } else {
        text.extend(variants.iter().cloned());
    }
    files.insert_bytes(&format!("/tok/master-{token}.m3u8"), text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_master_playlist_is_read_again_and_no_old_signature_is_used_after_it() {
    let origin = common::origin(OriginConfig::default());
    origin.files().load_dir("/tok", common::assets().join("aes")).unwrap();
    tokenised(&origin, "old", false);
    tokenised(&origin, "new", true);
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(10))).prefix("/tok/"));
    // The old signature expires once the playlists and a few segments and keys have been fetched.
    origin.faults().add(FaultRule::new(Fault::status(403)).query_contains("token=old").after_requests(8));
    let asked: Arc<Mutex<Vec<RefreshRequest>>> = Arc::default();
    let seen = Arc::clone(&asked);
    let fresh = origin.url("/tok/master-new.m3u8?token=new");
    let hook = refresh_fn(move |request| {
        seen.lock().unwrap().push(request.clone());
        Some(Refresh::new().url(fresh.clone()))
    });
    let store = tempfile::tempdir().unwrap();
    let session = DownloadSession::new(common::config(store.path()).refresh_hook(hook)).unwrap();
    let config = DownloadConfiguration::new(
        ContentConfiguration::new().media_selection(MediaSelection::audio_language("en")),
    );
    let url = origin.url("/tok/master-old.m3u8?token=old");
    let task = session.download_task_named("tokens", &url, config).unwrap();
    common::run(&task).await;
    let path = task.wait().await.unwrap();
    // Video 1 (the highest) and English audio, six and seven segments, byte for byte.
    assert_eq!(common::check_bundle(&path), 13);
    assert_eq!(task.url(), origin.url("/tok/master-new.m3u8?token=new"));

    let asked = asked.lock().unwrap();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].refused_uri.contains("token=old"), "{:?}", asked[0]);
    let log = log_in_order(&origin);
    assert!(log.iter().any(|r| r.status == 403), "the old signature expired during the download");
    // Once the fresh media playlists are asked for, every request carries the fresh signature.
    let first_fresh = log
        .iter()
        .position(|r| r.path.ends_with("/new.m3u8"))
        .expect("the fresh media playlists were fetched");
    let fresh_playlists: Vec<&str> =
        log.iter().filter(|r| r.path.ends_with("/new.m3u8")).map(|r| r.path.as_str()).collect();
    assert_eq!(fresh_playlists.len(), 2, "{fresh_playlists:?}");
    assert!(fresh_playlists.contains(&"/tok/video1/new.m3u8"), "{fresh_playlists:?}");
    assert!(fresh_playlists.contains(&"/tok/audio-en/new.m3u8"), "{fresh_playlists:?}");
    let stale: Vec<&RequestRecord> = log[first_fresh..].iter().filter(|r| has_token(r, "old")).collect();
    assert!(stale.is_empty(), "old signatures used after the refresh: {stale:?}");
    // Every segment was stored once.
    for rendition in ["video1", "audio-en"] {
        for i in 0..6 {
            let path = format!("/tok/{rendition}/seg{i:03}.ts");
            let ok = log.iter().filter(|r| r.path == path && r.status == 200).count();
            assert_eq!(ok, 1, "{path}");
        }
    }
}

/// A refresh hook whose first `hanging` answers never come; later ones hand back `fresh`. Counts its calls.
struct Stalling {
    calls: AtomicUsize,
    hanging: usize,
    fresh: String,
}

impl Stalling {
    fn new(hanging: usize, fresh: String) -> Arc<Self> {
        Arc::new(Self { calls: AtomicUsize::new(0), hanging, fresh })
    }

    /// Waits (20 s at most) until the hook has been asked once.
    async fn asked(&self) {
        tokio::time::timeout(Duration::from_secs(20), async {
            while self.calls.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the hook is asked");
    }
}

impl RefreshHook for Stalling {
    fn refresh<'a>(&'a self, _request: &'a RefreshRequest) -> RefreshFuture<'a> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if call < self.hanging {
                std::future::pending::<()>().await;
            }
            Some(Refresh::new().url(self.fresh.clone()))
        })
    }
}

/// An origin whose `old` signature expires after the first segment, with a fresh playlist at `new`.
fn expiring_origin() -> Origin {
    let origin = common::signed_origin();
    origin.faults().add(FaultRule::new(Fault::status(403)).query_contains("token=old").after_requests(2));
    origin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_that_never_answers_fails_the_task_after_the_refresh_timeout() {
    let origin = expiring_origin();
    let hook = Stalling::new(usize::MAX, String::new());
    let store = tempfile::tempdir().unwrap();
    let config =
        common::config(store.path()).refresh_hook(hook.clone()).refresh_timeout(Duration::from_millis(300));
    let session = DownloadSession::new(config).unwrap();
    let task = session.download_task_named("stalls", &origin.url("/signed/old.m3u8"), media()).unwrap();
    task.resume();
    let ended = tokio::time::timeout(Duration::from_secs(20), task.wait()).await;
    let err = ended.expect("the task ends instead of waiting for the hook for ever").unwrap_err();
    // Strict integrity: the refused segment is named, with what happened to it.
    let text = err.to_string();
    assert!(text.contains("token=old") && text.contains("403"), "{text}");
    assert!(hook.calls.load(Ordering::SeqCst) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_is_honoured_while_the_hook_runs() {
    let origin = expiring_origin();
    let hook = Stalling::new(usize::MAX, String::new());
    let store = tempfile::tempdir().unwrap();
    let session = DownloadSession::new(common::config(store.path()).refresh_hook(hook.clone())).unwrap();
    let task = session.download_task_named("cancelled", &origin.url("/signed/old.m3u8"), media()).unwrap();
    task.resume();
    // Wait until the hook has been asked (and hangs), then cancel.
    hook.asked().await;
    task.cancel(CancelMode::KeepPartial);
    let ended = tokio::time::timeout(Duration::from_secs(5), task.wait()).await;
    let err = ended.expect("cancel does not wait for the hook").unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert_eq!(task.state(), TaskState::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_while_the_hook_runs_then_resume_asks_again_and_completes() {
    let origin = expiring_origin();
    let fresh = origin.url("/signed/new.m3u8");
    let hook = Stalling::new(1, fresh);
    let store = tempfile::tempdir().unwrap();
    let session = DownloadSession::new(common::config(store.path()).refresh_hook(hook.clone())).unwrap();
    let task = session.download_task_named("suspended", &origin.url("/signed/old.m3u8"), media()).unwrap();
    task.resume();
    hook.asked().await;
    task.suspend();
    let state =
        tokio::time::timeout(Duration::from_secs(5), task.wait_for_state(|s| s == TaskState::Suspended))
            .await
            .expect("suspend does not wait for the hook");
    assert_eq!(state, TaskState::Suspended);
    // Resumed, the refused segment is refused again and the hook, asked a second time, answers.
    common::run(&task).await;
    let path = tokio::time::timeout(Duration::from_secs(20), task.wait()).await.unwrap().unwrap();
    assert_eq!(common::check_bundle(&path), 6);
    assert_eq!(hook.calls.load(Ordering::SeqCst), 2, "asked again after the resume, once");
}
