//! Signed URLs that expire in the middle of a download, across the session, the fetch layer and the
//! bundle: the master, media playlists, keys and segments all carry a token; the origin starts answering
//! 403 to the old token's keys and then to its segments; the session's refresh hook hands back a fresh
//! master URL, every job is re-bound to the new URLs by identity, and the bundle is complete, identical
//! to the clear source and playable.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::Transport;
use stowage_origin::{Fault, FaultRule, Origin};
use stowage_task::config::MediaSelection;
use stowage_task::engine::RetryPolicy;
use stowage_task::{
    ContentConfiguration, DownloadConfiguration, DownloadSession, Refresh, TaskState, refresh_fn,
};

/// A copy of the fixture's encrypted media playlist `aes/{name}/index.m3u8` whose key and segment URIs
/// are absolute paths carrying `?token={token}`.
fn signed_media(name: &str, token: &str) -> String {
    let text = std::fs::read_to_string(common::assets().join("aes").join(name).join("index.m3u8")).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("#EXT-X-KEY") {
            let (head, rest) = line.split_once("URI=\"../keys/").unwrap();
            let (key, tail) = rest.split_once('"').unwrap();
            out.push_str(&format!("{head}URI=\"/aes/keys/{key}?token={token}\"{tail}\n"));
        } else if !line.is_empty() && !line.starts_with('#') {
            out.push_str(&format!("/aes/{name}/{line}?token={token}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Serves `/signed/{token}/master.m3u8` with the 480x270 variant and English audio, every URI signed.
fn publish(origin: &Origin, token: &str) -> String {
    let files = origin.files();
    files.insert_bytes(&format!("/signed/{token}/video1.m3u8"), signed_media("video1", token));
    files.insert_bytes(&format!("/signed/{token}/audio-en.m3u8"), signed_media("audio-en", token));
    let master = format!(
        "#EXTM3U\n#EXT-X-VERSION:6\n\
         #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=YES,\
         AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio-en.m3u8?token={token}\"\n\
         #EXT-X-STREAM-INF:BANDWIDTH=718729,RESOLUTION=480x270,CODECS=\"avc1.640015,mp4a.40.2\",AUDIO=\"aud\"\n\
         video1.m3u8?token={token}\n"
    );
    let path = format!("/signed/{token}/master.m3u8");
    files.insert_bytes(&path, master);
    origin.url(&path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_keys_and_segments_are_refreshed_through_a_new_master_over_h2_tls() {
    let transport = Transport::H2Tls;
    let origin = common::origin(transport, 3);
    let old = publish(&origin, "old");
    let fresh = publish(&origin, "new");
    // The old token's keys expire after two key requests, its segments after five segment requests.
    let faults = origin.faults();
    faults.add(
        FaultRule::new(Fault::status(403)).prefix("/aes/keys/").query_contains("token=old").after_requests(2),
    );
    faults.add(
        FaultRule::new(Fault::status(403)).glob("/aes/*.ts").query_contains("token=old").after_requests(5),
    );

    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let hook = refresh_fn(move |request| {
        assert_eq!(request.status, 403);
        assert!(request.refused_uri.contains("token=old"), "{}", request.refused_uri);
        counted.fetch_add(1, Ordering::SeqCst);
        Some(Refresh::new().url(fresh.clone()))
    });
    let store = tempfile::tempdir().unwrap();
    let session = DownloadSession::new(
        common::config(store.path(), &origin, transport)
            .refresh_hook(hook)
            .retry(RetryPolicy::default().max_refreshes(4)),
    )
    .unwrap();
    let config = DownloadConfiguration::new(
        ContentConfiguration::new().media_selection(MediaSelection::audio_language("en")),
    );
    let task = session.download_task(&old, config).unwrap();
    common::run(&task).await;
    let path = task.wait().await.unwrap_or_else(|e| panic!("the refreshed download failed: {e}"));
    assert_eq!(task.state(), TaskState::Finished { complete: true });
    assert!(calls.load(Ordering::SeqCst) >= 1, "the refresh hook was called");
    assert!(task.url().contains("/signed/new/"), "the task now points at the fresh master: {}", task.url());

    // 6 video and 7 audio segments, decrypted with keys fetched under both tokens.
    assert_eq!(common::check_bundle(&path), common::Compared { media: 13, subtitles: 0 });
    let decoded = common::decode(&path);
    assert!(decoded.has("video", "") && decoded.has("audio", "en"), "{:?}", decoded.streams);
    assert!((decoded.duration - 12.0).abs() < 0.2, "duration {}", decoded.duration);

    let log = origin.log();
    let refused = log.iter().filter(|r| r.status == 403).count();
    assert!(refused >= 1, "an old URL was refused");
    let new_token = |r: &&stowage_origin::RequestRecord| r.query.as_deref() == Some("token=new");
    assert!(
        log.iter().filter(new_token).any(|r| r.path.starts_with("/aes/keys/")),
        "keys re-fetched signed anew"
    );
    assert!(log.iter().filter(new_token).any(|r| r.path.ends_with(".ts")), "segments re-fetched signed anew");
    // No segment was stored twice: each was answered 200 exactly once.
    for name in ["video1", "audio-en"] {
        let count = if name == "video1" { 6 } else { 7 };
        for i in 0..count {
            let p = format!("/aes/{name}/seg{i:03}.ts");
            let ok = log.iter().filter(|r| r.path == p && r.status == 200).count();
            assert_eq!(ok, 1, "{p} answered 200 {ok} times");
        }
    }
}
