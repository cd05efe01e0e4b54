//! Signed URLs that expire in the middle of a download, across the session, the fetch layer and the
//! bundle: the master, media playlists, keys and segments all carry a token; the origin starts answering
//! 403 to the old token's keys (or, in a second test, its segments); the session's refresh hook hands back a fresh
//! master URL, every job is re-bound to the new URLs by identity, and the bundle is complete, identical
//! to the clear source and playable.

mod common;

use std::sync::{Arc, Mutex};

use common::Transport;
use stowage_origin::{Fault, FaultRule, Origin};
use stowage_task::config::MediaSelection;
use stowage_task::engine::RetryPolicy;
use stowage_task::{
    ContentConfiguration, DownloadConfiguration, DownloadSession, Refresh, TaskState, refresh_fn,
};
use stowage_testkit::{Compared, assets, check_bundle, decode, run};

/// A copy of the fixture's encrypted media playlist `aes/{name}/index.m3u8` whose key and segment URIs
/// are absolute paths carrying `?token={token}`.
fn signed_media(name: &str, token: &str) -> String {
    let text = std::fs::read_to_string(assets().join("aes").join(name).join("index.m3u8")).unwrap();
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

/// What expires: key URLs (after the first key request) or segment URLs (after three segment requests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiring {
    Keys,
    Segments,
}

async fn refreshed_through_a_new_master(transport: Transport, expiring: Expiring) {
    let origin = common::origin(transport, 3);
    let old = publish(&origin, "old");
    let fresh = publish(&origin, "new");
    // Only one kind expires in a run, so that which one the origin refuses first is not left to chance:
    // the old token's keys after the first key request, or its segments after three segment requests.
    let rule = match expiring {
        Expiring::Keys => FaultRule::new(Fault::status(403)).prefix("/aes/keys/").after_requests(1),
        Expiring::Segments => FaultRule::new(Fault::status(403)).glob("/aes/*.ts").after_requests(3),
    };
    origin.faults().add(rule.query_contains("token=old"));

    // The hook only records what it was asked: a panic inside it would take the driver down with it.
    let asked = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&asked);
    let hook = refresh_fn(move |request| {
        recorded.lock().unwrap().push((request.status, request.refused_uri.clone()));
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
    run(&task).await;
    let path = task.wait().await.unwrap_or_else(|e| panic!("the refreshed download failed: {e}"));
    assert_eq!(task.state(), TaskState::Finished { complete: true });
    let asked = asked.lock().unwrap().clone();
    assert!(!asked.is_empty(), "the refresh hook was called");
    assert!(asked.iter().all(|(status, _)| *status == 403), "{asked:?}");
    // The origin refused the expiring kind under the old token, and served it again under the new one.
    let log = origin.log();
    let kind = |path: &str| match expiring {
        Expiring::Keys => path.starts_with("/aes/keys/"),
        Expiring::Segments => path.ends_with(".ts"),
    };
    let refused_kind = match expiring {
        Expiring::Keys => "/aes/keys/",
        Expiring::Segments => ".ts?",
    };
    assert!(
        asked.iter().any(|(_, uri)| uri.contains(refused_kind) && uri.contains("token=old")),
        "{asked:?}"
    );
    let token = |r: &stowage_origin::RequestRecord, t: &str| r.query.as_deref() == Some(t);
    assert!(log.iter().any(|r| kind(&r.path) && r.status == 403 && token(r, "token=old")), "no refusal");
    assert!(!log.iter().any(|r| !kind(&r.path) && r.status == 403), "only the expiring kind was refused");
    assert!(log.iter().any(|r| kind(&r.path) && r.status == 200 && token(r, "token=new")), "not signed anew");
    assert!(task.url().contains("/signed/new/"), "the task now points at the fresh master: {}", task.url());

    // 6 video and 7 audio segments, decrypted with keys fetched under both tokens.
    assert_eq!(check_bundle(&path), Compared { media: 13, subtitles: 0 });
    let decoded = decode(&path);
    assert!(decoded.has("video", "") && decoded.has("audio", "en"), "{:?}", decoded.streams);
    assert!((decoded.duration - 12.0).abs() < 0.2, "duration {}", decoded.duration);

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_key_urls_are_refreshed_through_a_new_master_over_h2_tls() {
    refreshed_through_a_new_master(Transport::H2Tls, Expiring::Keys).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_segment_urls_are_refreshed_through_a_new_master_over_http1() {
    refreshed_through_a_new_master(Transport::Http1, Expiring::Segments).await;
}
