//! The other segment formats of the fixtures, through the whole stack and under the fault mix: the fMP4
//! variant (`EXT-X-MAP` init section, `.m4s` segments) and the single-file variant addressed by
//! `EXT-X-BYTERANGE`, each with the encrypted English audio and the subtitles, stored byte-identical to
//! the clear source and decoded by ffmpeg; and the other assets: fMP4 (CMAF) audio and video, and a TS
//! asset with a discontinuity in every rendition, each AES-128 encrypted and downloaded with all of its
//! audio and subtitle renditions.

mod common;

use common::Transport;
use stowage_task::config::{MediaSelection, VariantQualifier};
use stowage_task::{ContentConfiguration, DownloadConfiguration};
use stowage_testkit::{Compared, check_bundle, decode, run};

/// The variant with exactly this `BANDWIDTH` (the fMP4 and single-file variants have the same resolution
/// as another one, so bandwidth tells them apart), with English audio and subtitles.
fn variant_with_bandwidth(bandwidth: u64) -> DownloadConfiguration {
    DownloadConfiguration::new(
        ContentConfiguration::new()
            .variant_qualifier(VariantQualifier::new().min_bandwidth(bandwidth).max_bandwidth(bandwidth))
            .media_selection(MediaSelection::audio_language("en"))
            .media_selection(MediaSelection::subtitles_language("en")),
    )
}

async fn download_and_decode(transport: Transport, bandwidth: u64, variant_path: &str) -> Compared {
    let origin = common::origin(transport, 7);
    common::add_fault_mix(&origin);
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path(), &origin, transport);
    let task =
        session.download_task(&origin.url("/aes/master.m3u8"), variant_with_bandwidth(bandwidth)).unwrap();
    run(&task).await;
    let path = task.wait().await.unwrap_or_else(|e| panic!("{variant_path}: {e}"));
    let compared = check_bundle(&path);
    let decoded = decode(&path);
    for (kind, language) in [("video", ""), ("audio", "en"), ("subtitle", "en")] {
        assert!(decoded.has(kind, language), "no {kind} {language:?} stream in {:?}", decoded.streams);
    }
    assert!((decoded.duration - 12.0).abs() < 0.2, "duration {}", decoded.duration);
    // Only the chosen variant's media was fetched.
    let log = origin.log();
    assert!(log.iter().any(|r| r.path.starts_with(variant_path)), "{variant_path} was not fetched");
    assert!(!log.iter().any(|r| r.path.starts_with("/aes/video")), "another variant was fetched");
    compared
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fmp4_with_init_section_over_h2_tls() {
    let compared = download_and_decode(Transport::H2Tls, 630_293, "/aes/fmp4/").await;
    // One init section and 6 fragments, 7 audio segments, 6 subtitle segments.
    assert_eq!(compared, Compared { media: 7 + 7, subtitles: 6 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_file_byte_ranges_over_http1() {
    let compared = download_and_decode(Transport::Http1, 664_585, "/aes/single/").await;
    assert_eq!(compared, Compared { media: 6 + 7, subtitles: 6 });
}

/// Downloads `master` (a master playlist of the fixtures) with every audio and subtitle rendition, and
/// checks the bundle against the clear sources and ffmpeg's decoding of it.
async fn download_everything(transport: Transport, master: &str) -> (Compared, f64) {
    let origin = common::origin(transport, 11);
    common::add_fault_mix(&origin);
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path(), &origin, transport);
    let config = DownloadConfiguration::new(
        ContentConfiguration::new()
            .media_selection(MediaSelection::audio_all())
            .media_selection(MediaSelection::subtitles_all()),
    );
    let task = session.download_task(&origin.url(master), config).unwrap();
    run(&task).await;
    let path = task.wait().await.unwrap_or_else(|e| panic!("{master}: {e}"));
    let compared = check_bundle(&path);
    let decoded = decode(&path);
    for (kind, language) in
        [("video", ""), ("audio", "en"), ("audio", "fr"), ("subtitle", "en"), ("subtitle", "fr")]
    {
        assert!(decoded.has(kind, language), "no {kind} {language:?} stream in {:?}", decoded.streams);
    }
    (compared, decoded.duration)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cmaf_audio_and_video_over_h2c() {
    let (compared, duration) = download_everything(Transport::H2c, "/cmaf-aes/master.m3u8").await;
    // Video: an init section and 4 fragments; audio: an init section and 5 fragments in each language;
    // subtitles: 4 segments in each language.
    assert_eq!(compared, Compared { media: 5 + 6 + 6, subtitles: 4 + 4 });
    assert!((duration - 8.0).abs() < 0.1, "duration {duration}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discontinuity_in_every_rendition_over_http1() {
    let (compared, duration) = download_everything(Transport::Http1, "/disc-aes/master.m3u8").await;
    // Video: 3 + 2 segments; audio: 4 + 3 in each language; subtitles: 3 + 2 in each language.
    assert_eq!(compared, Compared { media: 5 + 7 + 7, subtitles: 5 + 5 });
    assert!((duration - 10.0).abs() < 0.1, "duration {duration}");
}
