//! Helpers shared by the driver's integration tests: an origin serving the committed HLS fixtures and a
//! session with short backoffs. The checks shared with the other suites come from `stowage-testkit`.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::time::Duration;

use stowage_fetch::{ClientConfig, RetryConfig};
use stowage_origin::{Files, Origin, OriginConfig};
use stowage_task::engine::RetryPolicy;
use stowage_task::{DownloadSession, SessionConfig};
// Not every test file uses every helper.
#[allow(unused_imports)]
pub use stowage_testkit::{assets, clear_source, run};

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

/// A media playlist of the six clear segments of `video0`, each URI carrying `token`, as a CDN's signed
/// URLs do.
pub fn signed_playlist(token: &str) -> String {
    let mut text =
        String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n");
    for i in 0..6 {
        text.push_str(&format!("#EXTINF:2.000000,\n/clear/video0/seg{i:03}.ts?token={token}\n"));
    }
    text.push_str("#EXT-X-ENDLIST\n");
    text
}

/// An origin with the signed playlists `/signed/old.m3u8` and `/signed/new.m3u8` (tokens `old` and
/// `new`). Tests add the rule that makes the old token expire.
pub fn signed_origin() -> Origin {
    let origin = origin(OriginConfig::default());
    origin.files().insert_bytes("/signed/old.m3u8", signed_playlist("old"));
    origin.files().insert_bytes("/signed/new.m3u8", signed_playlist("new"));
    origin
}

pub fn session(store: &Path) -> DownloadSession {
    DownloadSession::new(config(store)).unwrap()
}

/// Checks the finished, complete bundle at `dir` byte for byte against the clear sources; returns how
/// many media, init and subtitle entries were compared.
pub fn check_bundle(dir: &Path) -> usize {
    let compared = stowage_testkit::check_bundle(dir);
    compared.media + compared.subtitles
}
