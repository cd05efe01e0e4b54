//! The adaptive window against the in-process origin: how many requests the origin answers at once when
//! it answers slowly but steadily, and when it pushes back.

mod common;

use std::time::{Duration, Instant};

use stowage_origin::{Fault, FaultRule, Origin, OriginConfig};
use stowage_task::{DownloadConfiguration, DownloadSession};

const LATENCY: Duration = Duration::from_millis(50);
const SEGMENTS: usize = 300;

/// An origin serving `/w/index.m3u8`: `SEGMENTS` two-second segments, each a copy of the first segment
/// of a committed fixture, every answer held back by `LATENCY`.
fn slow_origin() -> Origin {
    let origin = common::origin(OriginConfig::default());
    let segment = std::fs::read(common::assets().join("clear/video0/seg000.ts")).unwrap();
    let mut playlist = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n");
    for i in 0..SEGMENTS {
        playlist.push_str(&format!("#EXTINF:2.000000,\ns{i:04}.ts\n"));
        origin.files().insert_bytes(&format!("/w/s{i:04}.ts"), segment.clone());
    }
    playlist.push_str("#EXT-X-ENDLIST\n");
    origin.files().insert_bytes("/w/index.m3u8", playlist);
    origin.faults().add(FaultRule::new(Fault::Latency(LATENCY)));
    origin
}

/// The most segment requests the origin was answering at once: each one is in the origin's hands from
/// its arrival until `LATENCY` later (sending a body of a few hundred kilobytes on loopback takes well
/// under a millisecond), so the requests in flight when one arrives are those that arrived less than
/// `LATENCY` before it.
fn peak_in_flight(origin: &Origin) -> usize {
    let mut arrivals: Vec<Instant> =
        origin.log().iter().filter(|r| r.path.ends_with(".ts")).map(|r| r.received).collect();
    arrivals.sort();
    let mut first = 0;
    let mut peak = 0;
    for (i, &at) in arrivals.iter().enumerate() {
        while at.duration_since(arrivals[first]) >= LATENCY {
            first += 1;
        }
        peak = peak.max(i + 1 - first);
    }
    peak
}

/// Downloads `/w/index.m3u8` with the session's defaults (short backoffs aside) and checks that every
/// segment was stored.
async fn download(origin: &Origin) {
    let store = tempfile::tempdir().unwrap();
    let session = DownloadSession::new(common::config(store.path())).unwrap();
    let task = session
        .download_task(&origin.url("/w/index.m3u8"), DownloadConfiguration::new(Default::default()))
        .unwrap();
    common::run(&task).await;
    task.wait().await.unwrap();
    let progress = task.progress();
    assert_eq!((progress.segments_done, progress.segments_total), (SEGMENTS, SEGMENTS), "{progress:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_slow_origin_gets_more_requests_at_once_than_the_per_host_limit() {
    // Every answer takes 50 ms however many requests are in flight: round trips hold as the window
    // grows, so it goes past the per-host limit of 16, and never past the ceiling of 64.
    let origin = slow_origin();
    download(&origin).await;
    let peak = peak_in_flight(&origin);
    assert!(peak > 16, "at most {peak} requests at once: the window stayed at the per-host limit");
    assert!(peak <= 64, "{peak} requests at once, over the ceiling of 64");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_that_pushes_back_is_held_to_the_per_host_limit() {
    // The same origin answers the eleventh segment request with a 503 (then a 429, in a second run),
    // which the HTTP client retries on its own: the task is told, and for the rest of the download the
    // origin never has more than the per-host limit of 16 requests at once, though it then answers as
    // steadily as before.
    for fault in [Fault::service_unavailable(None), Fault::too_many_requests(0)] {
        let origin = slow_origin();
        origin.faults().add(FaultRule::new(fault.clone()).glob("*.ts").after_requests(10).first(11));
        download(&origin).await;
        let pushed_back = origin.log().iter().filter(|r| r.status == 503 || r.status == 429).count();
        assert_eq!(pushed_back, 1, "{fault:?}");
        let peak = peak_in_flight(&origin);
        assert!(peak <= 16, "{fault:?}: {peak} requests at once after the origin pushed back");
    }
}
