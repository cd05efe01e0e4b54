//! End-to-end downloads from library code against the in-process origin and the committed fixtures:
//! every stored segment is compared byte for byte with the clear source.

mod common;

use std::time::Duration;

use stowage_bundle::{AssetCache, Bundle, KeyPolicy as BundleKeyPolicy};
use stowage_origin::{Fault, FaultRule, HttpVersions, OriginConfig};
use stowage_task::config::{Artwork, KeyPolicy, MediaSelection, Resolution, VariantQualifier};
use stowage_task::{ContentConfiguration, DownloadConfiguration, DownloadSession, TaskEvent, TaskState};

fn primary(qualifier: Option<VariantQualifier>) -> ContentConfiguration {
    let mut c = ContentConfiguration::new().media_selection(MediaSelection::subtitles_language("en"));
    if let Some(q) = qualifier {
        c = c.variant_qualifier(q);
    }
    c
}

fn variant(width: u64, height: u64, max_bw: u64) -> Option<VariantQualifier> {
    Some(
        VariantQualifier::new()
            .min_resolution(Resolution::new(width, height))
            .max_resolution(Resolution::new(width, height))
            .max_bandwidth(max_bw),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artwork_given_in_the_configuration_is_kept_in_the_bundle() {
    let origin = common::origin(OriginConfig::default());
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let jpeg = [&[0xFF, 0xD8, 0xFF, 0xE0][..], b"a poster, as far as a test is concerned"].concat();
    let config = DownloadConfiguration::new(primary(variant(320, 180, 600_000)))
        .artwork(Artwork::new(jpeg.clone()).media_type("image/jpeg"));
    let task = session.download_task(&origin.url("/clear/master.m3u8"), config).unwrap();
    common::run(&task).await;
    let path = task.wait().await.unwrap();
    let cache = AssetCache::open(&path).unwrap();
    let file = cache.artwork().expect("the bundle records the artwork");
    assert_eq!((file.file.as_str(), file.media_type.as_str()), ("artwork.jpg", "image/jpeg"));
    assert_eq!(std::fs::read(path.join("artwork.jpg")).unwrap(), jpeg);
    assert_eq!(cache.read_artwork().unwrap().unwrap().data, jpeg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_master_with_audio_and_subtitles_is_stored_byte_for_byte() {
    let origin = common::origin(OriginConfig::default());
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let task = session
        .download_task(&origin.url("/clear/master.m3u8"), DownloadConfiguration::new(primary(None)))
        .unwrap();
    assert_eq!(task.state(), TaskState::Suspended);
    let events = common::run(&task).await;
    let path = task.wait().await.unwrap();
    assert_eq!(task.state(), TaskState::Finished { complete: true });

    // The events tell the story in order.
    let first_will = events.iter().position(|e| matches!(e, TaskEvent::WillDownloadTo { .. })).unwrap();
    let resolved = events.iter().position(|e| matches!(e, TaskEvent::MediaSelectionResolved(_))).unwrap();
    assert!(resolved < first_will);
    assert!(matches!(events.last(), Some(TaskEvent::Finished { complete: true, .. })));
    assert!(events.iter().any(|e| matches!(e, TaskEvent::LoadedTimeRangeAdded(_))));
    let TaskEvent::MediaSelectionResolved(selection) = &events[resolved] else { unreachable!() };
    // Automatic choice: the highest bandwidth (video2), English audio by default, English subtitles.
    assert_eq!(selection.contents[0].variant.uri, "video2/index.m3u8");

    // Before any segment is stored, expected bytes are estimated from the declared bandwidth.
    let first = events.iter().find_map(|e| match e {
        TaskEvent::Progress(p) => Some(p),
        _ => None,
    });
    let first = first.unwrap();
    assert!(!first.bytes_expected_exact && first.renditions[0].bytes_expected > 0, "{first:?}");
    let progress = task.progress();
    assert_eq!(progress.segments_done, progress.segments_total);
    assert_eq!(progress.segments_total, 6 + 7 + 6);
    assert!(progress.bytes_expected_exact);
    assert_eq!(progress.bytes_done, progress.bytes_expected);

    let compared = common::check_bundle(&path);
    assert_eq!(compared, 19);
    assert!(session.counters().bytes_received >= progress.bytes_done);
    assert_eq!(task.renditions(), ["video-2", "audio-en", "subs-en"]);
    assert_eq!(progress.renditions[1].segments_total, 7);
    let master = std::fs::read_to_string(path.join("master.m3u8")).unwrap();
    assert!(master.contains("video-2/index.m3u8"), "{master}");
    // No segment was fetched twice.
    let log = origin.log();
    let segments: Vec<_> =
        log.iter().filter(|r| r.path.ends_with(".ts") || r.path.ends_with(".vtt")).collect();
    assert_eq!(segments.len(), 19);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_fetched_ahead_of_the_segments_that_need_them() {
    let origin = common::origin(OriginConfig::default());
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(50))).glob("/aes/keys/*"));
    origin.faults().add(FaultRule::new(Fault::Latency(Duration::from_millis(300))).glob("/aes/video1/seg*"));
    let store = tempfile::tempdir().unwrap();
    // Two requests at a time: fetched inside the segments' jobs, the last key would only be asked for
    // once the segments before it were done.
    let session =
        DownloadSession::new(common::config(store.path()).max_connections(2).adaptive(false)).unwrap();
    let config = DownloadConfiguration::new(ContentConfiguration::new());
    let task = session.download_task(&origin.url("/aes/video1/index.m3u8"), config).unwrap();
    common::run(&task).await;
    let path = task.wait().await.unwrap();
    assert_eq!(common::check_bundle(&path), 6);
    // The origin logs a request when it answers it. Requests sent side by side reach it in any order
    // (which task the runtime polls first, which connection writes first), so what is checked is the
    // order of the answers: prefetched, the last key is asked for right after the first key came, and
    // answered before the second pair of slow segments is. Fetched inside the segments' jobs, it would be
    // asked for only once four segments were answered. (The first pair may take both request slots
    // before the keys do when the machine is busy, so one pair of answers ahead of it is allowed.)
    let log = origin.log();
    let mut keys: Vec<&str> =
        log.iter().filter(|r| r.path.starts_with("/aes/keys/")).map(|r| r.path.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["/aes/keys/k0.key", "/aes/keys/k1.key", "/aes/keys/k2.key"], "each key once");
    let last_key = log.iter().rposition(|r| r.path.starts_with("/aes/keys/")).unwrap();
    let third_segment = log.iter().enumerate().filter(|(_, r)| r.path.ends_with(".ts")).nth(2).unwrap().0;
    assert!(last_key < third_segment, "{:?}", log.iter().map(|r| &r.path).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aes_asset_with_key_rotation_is_stored_decrypted() {
    let origin = common::origin(OriginConfig::default());
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let config = DownloadConfiguration::new(
        ContentConfiguration::new()
            .variant_qualifier(variant(320, 180, 10_000_000).unwrap())
            .media_selection(MediaSelection::audio_all()),
    );
    let task = session.download_task(&origin.url("/aes/master.m3u8"), config).unwrap();
    common::run(&task).await;
    let path = task.wait().await.unwrap();
    assert_eq!(common::check_bundle(&path), 6 + 7 + 7);
    // Each of the four keys was fetched once for the whole asset.
    for k in 0..4 {
        assert_eq!(origin.request_count(&format!("/aes/keys/k{k}.key")), 1, "key {k}");
    }
    let local = std::fs::read_to_string(path.join("video-0/index.m3u8")).unwrap();
    assert!(!local.contains("EXT-X-KEY"), "{local}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_number_ivs_are_decrypted() {
    use stowage_origin::hls::{EncryptOptions, encrypt_rendition};
    let origin = common::origin(OriginConfig::default());
    // The origin serves a copy of the clear video1 encrypted with sequence-number IVs, keys rotating every 3.
    origin.files().load_dir("/seq", common::assets().join("clear")).unwrap();
    let encrypted = encrypt_rendition(
        origin.files(),
        "/seq/video1/index.m3u8",
        &EncryptOptions::default().rotate_every(3),
    )
    .unwrap();
    assert_eq!(encrypted.keys.len(), 2);
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let task = session
        .download_task(
            &origin.url("/seq/video1/index.m3u8"),
            DownloadConfiguration::new(ContentConfiguration::new()),
        )
        .unwrap();
    common::run(&task).await;
    let path = task.wait().await.unwrap();
    assert_eq!(common::check_bundle(&path), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fmp4_with_map_and_single_file_byte_ranges() {
    let origin = common::origin(OriginConfig::default());
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    for (asset, media) in [("fmp4", "/clear/fmp4/index.m3u8"), ("single", "/aes/single/index.m3u8")] {
        let task = session
            .download_task_named(
                asset,
                &origin.url(media),
                DownloadConfiguration::new(ContentConfiguration::new()),
            )
            .unwrap();
        common::run(&task).await;
        let path = task.wait().await.unwrap();
        let compared = common::check_bundle(&path);
        assert_eq!(compared, if asset == "fmp4" { 7 } else { 6 }, "{asset}");
    }
    assert_eq!(origin.request_count("/clear/fmp4/init.mp4"), 1);
    let ranged = origin.log().iter().filter(|r| r.path == "/aes/single/video.ts").count();
    assert_eq!(ranged, 6);
    assert!(origin.log().iter().filter(|r| r.path == "/aes/single/video.ts").all(|r| r.range.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_and_tls_with_the_origins_ca() {
    // h2c.
    let origin = common::origin(OriginConfig::default().versions(HttpVersions::Http2Only));
    let store = tempfile::tempdir().unwrap();
    let session =
        DownloadSession::new(common::config(store.path()).http(common::http().http2_prior_knowledge(true)))
            .unwrap();
    let task = session
        .download_task(
            &origin.url("/aes/video2/index.m3u8"),
            DownloadConfiguration::new(ContentConfiguration::new()),
        )
        .unwrap();
    common::run(&task).await;
    common::check_bundle(&task.wait().await.unwrap());
    assert!(origin.log().iter().all(|r| r.version == stowage_fetch::Version::HTTP_2));

    // HTTPS with HTTP/2 by ALPN, trusting the origin's authority only.
    let origin = common::origin(OriginConfig::default().tls(stowage_origin::TlsConfig::default()));
    let tls = stowage_fetch::TlsConfig::default()
        .webpki_roots(false)
        .add_root_certificates_pem(origin.ca_pem().unwrap());
    let store = tempfile::tempdir().unwrap();
    let session = DownloadSession::new(common::config(store.path()).http(common::http().tls(tls))).unwrap();
    let task = session
        .download_task(
            &origin.url("/aes/master.m3u8"),
            DownloadConfiguration::new(primary(variant(480, 270, 700_000))),
        )
        .unwrap();
    common::run(&task).await;
    common::check_bundle(&task.wait().await.unwrap());
    assert!(origin.log().iter().any(|r| r.version == stowage_fetch::Version::HTTP_2));

    // Without the authority, the task fails with a TLS error naming the URL.
    let store = tempfile::tempdir().unwrap();
    let session = DownloadSession::new(common::config(store.path())).unwrap();
    let task = session
        .download_task(
            &origin.url("/aes/master.m3u8"),
            DownloadConfiguration::new(ContentConfiguration::new()),
        )
        .unwrap();
    common::run(&task).await;
    let err = task.wait().await.unwrap_err();
    assert!(err.to_string().contains("TLS"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeping_ciphertext_stores_the_keys_in_the_bundle() {
    let origin = common::origin(OriginConfig::default());
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let config = DownloadConfiguration::new(ContentConfiguration::new()).keys(KeyPolicy::KeepEncrypted);
    let task = session.download_task(&origin.url("/aes/video0/index.m3u8"), config).unwrap();
    common::run(&task).await;
    let path = task.wait().await.unwrap();
    let bundle = Bundle::open(&path).unwrap();
    let manifest = bundle.manifest();
    assert_eq!(manifest.key_policy, BundleKeyPolicy::KeepEncrypted);
    let r = &manifest.renditions[0].plan;
    for s in &r.segments {
        let stored = std::fs::read(bundle.segment_path(&s.id(&r.id)).unwrap()).unwrap();
        let source =
            std::fs::read(common::assets().join("aes/video0").join(s.uri.rsplit('/').next().unwrap()))
                .unwrap();
        assert!(stored == source, "ciphertext kept as fetched");
    }
    let local = std::fs::read_to_string(path.join("media/index.m3u8")).unwrap();
    assert!(local.contains("keys/key-0.key"), "{local}");
    let key0 = std::fs::read(path.join("media/keys/key-0.key")).unwrap();
    assert_eq!(key0, std::fs::read(common::assets().join("aes/keys/k0.key")).unwrap());
    let _ = Duration::ZERO;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_aes_fails_early_unless_ciphertext_is_kept() {
    let origin = common::origin(OriginConfig::default());
    origin.files().insert_bytes(
        "/sa/index.m3u8",
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"/aes/keys/k0.key\"\n\
         #EXTINF:2,\n/clear/video0/seg000.ts\n#EXT-X-ENDLIST\n",
    );
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    let task = session
        .download_task(&origin.url("/sa/index.m3u8"), DownloadConfiguration::new(ContentConfiguration::new()))
        .unwrap();
    common::run(&task).await;
    let err = task.wait().await.unwrap_err();
    assert!(matches!(err, stowage_task::Error::UnsupportedEncryption { .. }), "{err}");
    assert_eq!(origin.request_count("/clear/video0/seg000.ts"), 0, "nothing fetched before the error");

    let config = DownloadConfiguration::new(ContentConfiguration::new()).keys(KeyPolicy::KeepEncrypted);
    let task = session.download_task_named("kept", &origin.url("/sa/index.m3u8"), config).unwrap();
    common::run(&task).await;
    task.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_task_has_released_its_bundle_when_wait_returns() {
    // Every fetch task holds the bundle (and its lock) until it is dropped; `wait` must not return
    // before the last one is gone, or opening the bundle right after a download fails with `Locked`.
    let origin = common::origin(OriginConfig::default());
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    for round in 0..12 {
        let config = DownloadConfiguration::new(
            ContentConfiguration::new()
                .variant_qualifier(variant(320, 180, 10_000_000).unwrap())
                .media_selection(MediaSelection::audio_all()),
        );
        let task = session
            .download_task_named(&format!("round-{round}"), &origin.url("/aes/master.m3u8"), config)
            .unwrap();
        task.resume();
        let path = task.wait().await.unwrap();
        let opened = Bundle::open(&path);
        assert!(opened.is_ok(), "round {round}: {:?}", opened.err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auxiliary_content_takes_the_primary_video_unless_told_not_to() {
    let origin = common::origin(OriginConfig::default());
    let url = origin.url("/clear/master.m3u8");
    let config = || {
        DownloadConfiguration::new(ContentConfiguration::new().variant_qualifier("lowest".parse().unwrap()))
            .auxiliary(ContentConfiguration::new().media_selection(MediaSelection::audio_language("fr")))
    };
    let store = tempfile::tempdir().unwrap();
    let session = common::session(store.path());
    // By default, the French audio comes with the primary's video: no second video.
    let task = session.download_task_named("shared", &url, config()).unwrap();
    common::run(&task).await;
    assert_eq!(common::check_bundle(&task.wait().await.unwrap()), 6 + 7 + 7);
    assert_eq!(task.renditions(), ["video-0", "audio-en", "audio-fr"]);
    assert!(origin.log().iter().all(|r| !r.path.starts_with("/clear/video2/")));
    // Told not to, the auxiliary content chooses its own variant: the highest.
    let task = session.download_task_named("own", &url, config().optimize_auxiliary_contents(false)).unwrap();
    common::run(&task).await;
    assert_eq!(common::check_bundle(&task.wait().await.unwrap()), 6 + 6 + 7 + 7);
    assert_eq!(task.renditions(), ["video-0", "video-2", "audio-en", "audio-fr"]);
}
