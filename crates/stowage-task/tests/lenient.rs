//! Playlists that a lenient parse would read with something left out: an origin serves each one, and the
//! download either fails naming the line or, for what only concerns how the playlist is written, goes on
//! and tells what it tolerated. Nothing is ever called complete with a segment missing, and ciphertext is
//! never stored as clear.

mod common;

use stowage_bundle::Bundle;
use stowage_origin::{Origin, OriginConfig};
use stowage_playlist::WarningKind;
use stowage_task::config::IntegrityPolicy;
use stowage_task::{ContentConfiguration, DownloadConfiguration, Error, TaskEvent};

fn media() -> DownloadConfiguration {
    DownloadConfiguration::new(ContentConfiguration::new())
}

/// The fixture's media playlist at `fixture` (under the origin's `/clear` or `/aes`) with `from` replaced by
/// `to`, served beside it as `hostile.m3u8`; returns its URL.
fn hostile(origin: &Origin, fixture: &str, from: &str, to: &str) -> String {
    let source = std::fs::read_to_string(common::assets().join(fixture).join("index.m3u8")).unwrap();
    let text = source.replacen(from, to, 1);
    assert_ne!(text, source, "{from:?} is in {fixture}");
    let path = format!("/{fixture}/hostile.m3u8");
    origin.files().insert_bytes(&path, text);
    origin.url(&path)
}

/// Downloads `url` under `integrity` into a fresh store; returns the task's error, which it must end with.
async fn refused(url: &str, integrity: IntegrityPolicy) -> Error {
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let task = session.download_task(url, media().integrity(integrity)).unwrap();
    let events = common::run(&task).await;
    let err = task.wait().await.expect_err("the download must fail");
    assert!(matches!(events.last(), Some(TaskEvent::Failed(_))), "{events:?}");
    assert!(!events.iter().any(|e| matches!(e, TaskEvent::Finished { .. })));
    err
}

/// Checks that `err` refuses the playlist at `url` naming `line`, and says `why`.
fn names_the_line(err: &Error, url: &str, line: usize, why: &str) {
    let text = err.to_string();
    assert!(matches!(err, Error::Playlist { .. }), "{err:?}");
    assert_eq!(err.uri(), Some(url), "{text}");
    assert!(text.contains(&format!("line {line},")), "{text}");
    assert!(text.contains(why), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_cannot_be_read_fails_naming_the_line_instead_of_storing_ciphertext_as_clear() {
    let origin = common::origin(OriginConfig::default());
    let first_key = "#EXT-X-KEY:METHOD=AES-128,URI=\"../keys/k0.key\",IV=0xD603197A8CFAAD0DDEAD87DBEDAC4C7D";
    let cases = [
        // Not hexadecimal.
        "#EXT-X-KEY:METHOD=AES-128,URI=\"../keys/k0.key\",IV=0xZZ03197A8CFAAD0DDEAD87DBEDAC4C7D",
        // Hexadecimal without its 0x.
        "#EXT-X-KEY:METHOD=AES-128,URI=\"../keys/k0.key\",IV=D603197A8CFAAD0DDEAD87DBEDAC4C7D",
        // No key to decrypt with.
        "#EXT-X-KEY:METHOD=AES-128,IV=0xD603197A8CFAAD0DDEAD87DBEDAC4C7D",
        // An IV of 20 bytes, which the implicit IV used to replace.
        "#EXT-X-KEY:METHOD=AES-128,URI=\"../keys/k0.key\",IV=0xD603197A8CFAAD0DDEAD87DBEDAC4C7D01020304",
    ];
    for (i, bad) in cases.into_iter().enumerate() {
        let url = hostile(&origin, "aes/video0", first_key, bad);
        // Under both policies: a gap cannot stand for segments whose encryption is unknown, and storing
        // them as they came would keep ciphertext as if it were clear.
        for integrity in [IntegrityPolicy::Strict, IntegrityPolicy::Tolerant] {
            let err = refused(&url, integrity).await;
            names_the_line(&err, &url, 6, "stored as clear");
        }
        assert_eq!(origin.request_count("/aes/video0/seg000.ts"), 0, "case {i}: no segment was fetched");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duration_that_cannot_be_read_fails_naming_the_line_instead_of_dropping_the_segment() {
    let origin = common::origin(OriginConfig::default());
    // `2.000s` is an encoder's bug seen in the wild; the others are what a hostile origin tries.
    for bad in ["2.000s", "inf", "nan", "-5", "1e308", "NaN", "+2"] {
        let url = hostile(
            &origin,
            "clear/video0",
            "#EXTINF:2.000000,\nseg003.ts",
            &format!("#EXTINF:{bad},\nseg003.ts"),
        );
        let err = refused(&url, IntegrityPolicy::Strict).await;
        names_the_line(&err, &url, 12, "the segment it starts would be left out");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uri_line_without_its_extinf_fails_naming_the_line() {
    let origin = common::origin(OriginConfig::default());
    let url = hostile(&origin, "clear/video0", "#EXTINF:2.000000,\nseg002.ts", "seg002.ts");
    let err = refused(&url, IntegrityPolicy::Strict).await;
    names_the_line(&err, &url, 10, "media would be left out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_media_sequence_out_of_range_fails_naming_the_line() {
    let origin = common::origin(OriginConfig::default());
    for bad in ["18446744073709551616", "-1", "0x10"] {
        let url = hostile(
            &origin,
            "clear/video0",
            "#EXT-X-MEDIA-SEQUENCE:0",
            &format!("#EXT-X-MEDIA-SEQUENCE:{bad}"),
        );
        let err = refused(&url, IntegrityPolicy::Strict).await;
        names_the_line(&err, &url, 4, "misnumbered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_media_playlist_listing_no_segment_is_not_a_complete_download() {
    let origin = common::origin(OriginConfig::default());
    let source = std::fs::read_to_string(common::assets().join("clear/video0/index.m3u8")).unwrap();
    let header_end = source.find("#EXTINF").unwrap();
    origin
        .files()
        .insert_bytes("/clear/video0/empty.m3u8", format!("{}#EXT-X-ENDLIST\n", &source[..header_end]));
    let url = origin.url("/clear/video0/empty.m3u8");
    for integrity in [IntegrityPolicy::Strict, IntegrityPolicy::Tolerant] {
        let err = refused(&url, integrity).await;
        assert!(err.to_string().contains("lists no segment"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_variant_whose_media_playlist_is_an_html_page_fails() {
    let origin = common::origin(OriginConfig::default());
    let page = "<!DOCTYPE html>\n<html><head><title>Sign in to the network</title></head>\n\
                <body><a href=\"https://portal.example/login\">Sign in</a></body></html>\n";
    origin.files().insert_bytes("/portal/video0/index.m3u8", page);
    origin.files().insert_bytes(
        "/portal/master.m3u8",
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=549529,CODECS=\"avc1.64000c,mp4a.40.2\"\nvideo0/index.m3u8\n",
    );
    let err = refused(&origin.url("/portal/master.m3u8"), IntegrityPolicy::Tolerant).await;
    names_the_line(&err, &origin.url("/portal/video0/index.m3u8"), 1, "not a playlist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_variant_uri_climbing_out_of_the_site_stays_a_url_on_the_origin() {
    let origin = common::origin(OriginConfig::default());
    let name = format!("stowage-hostile-{}.m3u8", std::process::id());
    // Dot segments past the root of a URL stay at the root (RFC 3986 5.2.4): the variant is the origin's
    // `/tmp/<name>`, fetched from the origin, never a file of this machine.
    origin.files().insert_bytes(
        "/hostile/a/b/master.m3u8",
        format!("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=549529\n../../../tmp/{name}\n"),
    );
    let local = std::env::temp_dir().join(&name);
    assert!(!local.exists());

    // Where the origin has nothing, the download fails naming the URL it asked for.
    let err = refused(&origin.url("/hostile/a/b/master.m3u8"), IntegrityPolicy::Tolerant).await;
    assert_eq!(err.status(), Some(404), "{err}");
    assert_eq!(err.uri(), Some(origin.url(&format!("/tmp/{name}")).as_str()), "{err}");

    // Where it has a media playlist, that is what is downloaded, into the store.
    origin.files().insert_bytes(&format!("/tmp/{name}"), common::signed_playlist("t"));
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let task = session.download_task(&origin.url("/hostile/a/b/master.m3u8"), media()).unwrap();
    common::run(&task).await;
    let path = task.wait().await.unwrap();
    assert!(path.starts_with(store.path()));
    assert_eq!(common::check_bundle(&path), 6);
    assert!(!local.exists(), "nothing is written outside the store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosmetic_deviations_are_read_and_told_once_as_an_event() {
    let origin = common::origin(OriginConfig::default());
    let source = std::fs::read_to_string(common::assets().join("clear/video0/index.m3u8")).unwrap();
    // A byte order mark, CRLF line ends, stray spaces and a decimal target duration: nothing a player
    // misreads.
    let text = format!(
        "\u{feff}{}",
        source.replace("TARGETDURATION:2", "TARGETDURATION:2.0").replace('\n', " \r\n")
    );
    origin.files().insert_bytes("/clear/video0/cosmetic.m3u8", text);
    let url = origin.url("/clear/video0/cosmetic.m3u8");
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let task = session.download_task(&url, media()).unwrap();
    let events = common::run(&task).await;
    let path = task.wait().await.unwrap();
    assert_eq!(common::check_bundle(&path), 6);
    assert!(Bundle::open(&path).unwrap().manifest().complete);

    let told: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            TaskEvent::PlaylistTolerated { uri, warnings, more } => Some((uri, warnings, more)),
            _ => None,
        })
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    let (uri, warnings, more) = told[0];
    assert_eq!(uri, &url);
    let kinds: Vec<&WarningKind> = warnings.iter().map(|w| &w.kind).collect();
    assert!(kinds.contains(&&WarningKind::ByteOrderMark), "{kinds:?}");
    assert!(kinds.contains(&&WarningKind::DecimalTargetDuration), "{kinds:?}");
    assert!(kinds.contains(&&WarningKind::Whitespace), "{kinds:?}");
    assert_eq!(kinds.len(), 3, "one of each kind: {kinds:?}");
    assert!(*more > 5, "the other stray spaces are counted: {more}");
}
