//! Playlists that use variables (`EXT-X-DEFINE`): a tokenised master playlist defines a variable and takes
//! the token from its URL's query; its media playlists import the first and take their own token from
//! theirs, in the URIs of their segments, keys and initialization sections. The download is byte for byte
//! the clear source, and a refresh that hands a URL with a new token has every later request use it.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use stowage_origin::{Fault, FaultRule, Origin, OriginConfig, RequestRecord};
use stowage_task::{
    ContentConfiguration, DownloadConfiguration, DownloadSession, Refresh, RefreshRequest, refresh_fn,
};
use stowage_testkit::{decode, have_ffmpeg};

/// Serves the encrypted fMP4 fixture under `/cmaf-aes`, with `/def/master.m3u8` and a `def.m3u8` beside
/// each rendition's playlist that reach every URI through variables.
fn origin_with_variables() -> Origin {
    let origin = common::origin(OriginConfig::default());
    let files = origin.files();
    files.load_dir("/cmaf-aes", common::assets().join("cmaf-aes")).unwrap();
    for rendition in ["video0", "audio-en"] {
        let source =
            std::fs::read_to_string(common::assets().join(format!("cmaf-aes/{rendition}/index.m3u8")))
                .unwrap();
        let mut text = String::new();
        for line in source.lines() {
            let line = line
                .replace("#EXT-X-VERSION:7", "#EXT-X-VERSION:8")
                .replace("URI=\"../keys/", "URI=\"{$base}/keys/")
                .replace(".key\"", ".key?token={$token}\"")
                .replace(
                    "URI=\"init.mp4\"",
                    &format!("URI=\"{{$base}}/{rendition}/init.mp4?token={{$token}}\""),
                );
            let line = if line.ends_with(".m4s") {
                format!("{{$base}}/{rendition}/{line}?token={{$token}}")
            } else {
                line
            };
            text.push_str(&line);
            text.push('\n');
            if line.starts_with("#EXT-X-VERSION") {
                text.push_str("#EXT-X-DEFINE:IMPORT=\"base\"\n#EXT-X-DEFINE:QUERYPARAM=\"token\"\n");
            }
        }
        assert!(
            text.contains("{$base}/keys/k0.key?token={$token}") && text.contains("init.mp4?token={$token}")
        );
        files.insert_bytes(&format!("/cmaf-aes/{rendition}/def.m3u8"), text);
    }
    files.insert_bytes(
        "/def/master.m3u8",
        "#EXTM3U\n#EXT-X-VERSION:8\n#EXT-X-DEFINE:NAME=\"base\",VALUE=\"/cmaf-aes\"\n\
         #EXT-X-DEFINE:QUERYPARAM=\"token\"\n\
         #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=YES,\
         URI=\"{$base}/audio-en/def.m3u8?token={$token}\"\n\
         #EXT-X-STREAM-INF:BANDWIDTH=404164,RESOLUTION=480x270,CODECS=\"avc1.640015,mp4a.40.2\",AUDIO=\"aud\"\n\
         {$base}/video0/def.m3u8?token={$token}\n",
    );
    origin
}

fn token(record: &RequestRecord) -> Option<&str> {
    record.query.as_deref()?.split('&').find_map(|pair| pair.strip_prefix("token="))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variables_from_the_query_and_the_master_playlist_reach_every_uri_and_a_refresh_renews_them() {
    let origin = origin_with_variables();
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(10))).prefix("/cmaf-aes/"));
    // The old token is refused for the video's initialization section, the last key and the last segments,
    // whatever order they are asked for in: the playlists and a few segments and keys are fetched with it,
    // and each kind of file is fetched again with the new one.
    for path in ["/cmaf-aes/video0/init.mp4", "/cmaf-aes/keys/k2.key"] {
        origin.faults().add(FaultRule::new(Fault::status(403)).query_contains("token=old").path(path));
    }
    origin
        .faults()
        .add(FaultRule::new(Fault::status(403)).query_contains("token=old").glob("/cmaf-aes/*/seg004.m4s"));
    let asked: Arc<Mutex<Vec<RefreshRequest>>> = Arc::default();
    let seen = Arc::clone(&asked);
    let fresh = origin.url("/def/master.m3u8?token=new");
    let hook = refresh_fn(move |request| {
        seen.lock().unwrap().push(request.clone());
        Some(Refresh::new().url(fresh.clone()))
    });
    let store = tempfile::tempdir().unwrap();
    let session = DownloadSession::new(common::config(store.path()).refresh_hook(hook)).unwrap();
    let url = origin.url("/def/master.m3u8?token=old");
    let task = session
        .download_task_named("variables", &url, DownloadConfiguration::new(ContentConfiguration::new()))
        .unwrap();
    common::run(&task).await;
    let path = task.wait().await.unwrap();
    // Video and English audio, each an initialization section and its segments, byte for byte.
    assert_eq!(common::check_bundle(&path), 5 + 6);

    let asked = asked.lock().unwrap();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].refused_uri.contains("token=old"), "{:?}", asked[0]);
    let mut log = origin.log();
    log.sort_by_key(|r| r.received);
    // Every request of the asset went where the variables say, with a token.
    let asset: Vec<&RequestRecord> = log.iter().filter(|r| r.path.starts_with("/cmaf-aes/")).collect();
    assert!(asset.iter().all(|r| matches!(token(r), Some("old" | "new"))), "{asset:?}");
    assert!(log.iter().all(|r| r.path.starts_with("/cmaf-aes/") || r.path == "/def/master.m3u8"), "{log:?}");
    // Once the fresh media playlists are asked for, every request carries the new token: segments, keys
    // and initialization sections alike.
    let first_fresh = log
        .iter()
        .position(|r| r.path.ends_with("/def.m3u8") && token(r) == Some("new"))
        .expect("the fresh media playlists were fetched");
    let after = &log[first_fresh..];
    let stale: Vec<&RequestRecord> = after.iter().filter(|r| token(r) == Some("old")).collect();
    assert!(stale.is_empty(), "the old token used after the refresh: {stale:?}");
    for kind in [".m4s", ".key", "init.mp4"] {
        assert!(
            after.iter().any(|r| r.path.ends_with(kind) && token(r) == Some("new") && r.status == 200),
            "no {kind} fetched with the new token: {after:?}"
        );
    }
    // The bundle's own playlists define no variables and play.
    for file in ["master.m3u8", "video-0/index.m3u8", "audio-en/index.m3u8"] {
        let text = std::fs::read_to_string(path.join(file)).unwrap();
        assert!(!text.contains("EXT-X-DEFINE") && !text.contains("{$"), "{file}: {text}");
    }
    if have_ffmpeg() {
        let decoded = decode(&path);
        assert!(decoded.has("video", "") && decoded.has("audio", "en"), "{decoded:?}");
    }
}
