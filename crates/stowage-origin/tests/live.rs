//! The live origin as a plain HTTP client sees it: the window sliding at its pace, every rendition in
//! step, discontinuities across loops, each scripted fault, blocking reloads, and the oracle (bytes per
//! media sequence number, what left the window unseen) agreeing with what was served.
//!
//! Most tests run on a manual clock, moved by the test, so that every assertion is exact.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
use stowage_origin::live::{
    KeyRotation, LiveConfig, LiveOrigin, LiveSource, LowLatency, OutageKind, PlaylistKind, Script,
};
use stowage_origin::{Fault, FaultRule, OriginConfig};
use support::{Conn, Raw, get};

fn s(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

fn fixtures() -> PathBuf {
    stowage_testkit::assets().join("clear")
}

/// The committed fixtures' master: 6 segments of 2 s per rendition (audio cut to 6), five variants, two
/// audio and two subtitle renditions.
fn source() -> LiveSource {
    LiveSource::from_dir(fixtures(), "master.m3u8").unwrap()
}

/// A live origin on a manual clock, at stream time 0.
fn manual(config: LiveConfig) -> LiveOrigin {
    LiveOrigin::start(source(), config.speed(0.0)).unwrap()
}

/// Moves the manual clock to stream time `t`.
fn at(live: &LiveOrigin, t: Duration) {
    let now = live.clock().now();
    assert!(t >= now, "the clock does not go back ({now:?} to {t:?})");
    live.clock().advance(t - now);
}

/// One segment as a client reads it from a playlist.
#[derive(Debug, Clone, PartialEq)]
struct Listed {
    msn: u64,
    discontinuity_sequence: u64,
    discontinuity: bool,
    program_date_time: String,
    key: Option<String>,
    uri: String,
}

#[derive(Debug)]
struct Playlist {
    text: String,
    media_sequence: u64,
    segments: Vec<Listed>,
    parts: Vec<String>,
    hint: Option<String>,
    ended: bool,
}

fn parse(text: &str) -> Playlist {
    let tag = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().parse::<u64>().unwrap())
    };
    let media_sequence = tag("#EXT-X-MEDIA-SEQUENCE:").unwrap();
    let mut discontinuity_sequence = tag("#EXT-X-DISCONTINUITY-SEQUENCE:").unwrap_or(0);
    let (mut discontinuity, mut program_date_time, mut key) = (false, String::new(), None);
    let (mut segments, mut parts, mut hint) = (Vec::new(), Vec::new(), None);
    for line in text.lines() {
        if line == "#EXT-X-DISCONTINUITY" {
            discontinuity = true;
            discontinuity_sequence += 1;
        } else if let Some(date) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            program_date_time = date.to_owned();
        } else if let Some(attributes) = line.strip_prefix("#EXT-X-KEY:") {
            key = Some(attributes.to_owned());
        } else if let Some(attributes) = line.strip_prefix("#EXT-X-PART:") {
            parts.push(attributes.split("URI=\"").nth(1).unwrap().split('"').next().unwrap().to_owned());
        } else if let Some(attributes) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            hint = Some(attributes.split("URI=\"").nth(1).unwrap().split('"').next().unwrap().to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            segments.push(Listed {
                msn: media_sequence + segments.len() as u64,
                discontinuity_sequence,
                discontinuity,
                program_date_time: program_date_time.clone(),
                key: key.clone(),
                uri: line.to_owned(),
            });
            discontinuity = false;
        }
    }
    Playlist {
        text: text.to_owned(),
        media_sequence,
        segments,
        parts,
        hint,
        ended: text.contains("#EXT-X-ENDLIST"),
    }
}

/// GET `path` on a fresh connection.
fn fetch(live: &LiveOrigin, path: &str) -> Raw {
    get(live.origin().addr(), path, "")
}

fn playlist(live: &LiveOrigin, rendition: &str) -> Playlist {
    let path = &live.renditions().into_iter().find(|r| r.name == rendition).unwrap().path;
    let answer = fetch(live, path);
    assert_eq!(answer.status, 200, "{path}: {}", String::from_utf8_lossy(&answer.body));
    parse(std::str::from_utf8(&answer.body).unwrap())
}

/// The path of a URI listed in `rendition`'s playlist.
fn beside(live: &LiveOrigin, rendition: &str, uri: &str) -> String {
    let path = live.renditions().into_iter().find(|r| r.name == rendition).unwrap().path;
    format!("{}{uri}", &path[..=path.rfind('/').unwrap()])
}

#[test]
fn the_window_slides_one_segment_per_segment_duration() {
    let live = manual(LiveConfig::default().window(6).first_media_sequence(1000));
    let first = playlist(&live, "video0/index.m3u8");
    assert_eq!((first.media_sequence, first.segments.len()), (1000, 6));
    assert!(!first.text.contains("#EXT-X-PLAYLIST-TYPE"), "a live playlist has no type");
    assert!(!first.ended);
    // Nothing changes until a whole segment duration has passed.
    at(&live, Duration::from_millis(1999));
    assert_eq!(playlist(&live, "video0/index.m3u8").text, first.text);
    at(&live, s(2));
    assert_eq!(playlist(&live, "video0/index.m3u8").media_sequence, 1001);
    at(&live, s(2 * 30));
    let later = playlist(&live, "video0/index.m3u8");
    assert_eq!((later.media_sequence, later.segments.len()), (1030, 6));
    assert_eq!(later.segments.last().unwrap().msn, 1035);
}

#[test]
fn the_window_keeps_pace_with_an_accelerated_clock() {
    // 2 s segments at 100 times real time: a new segment every 20 ms of wall time.
    let live = LiveOrigin::start(source(), LiveConfig::default().speed(100.0)).unwrap();
    let mut seen = Vec::new();
    for _ in 0..5 {
        let before = live.timeline().window(live.clock().now()).start;
        let msn = playlist(&live, "video0/index.m3u8").media_sequence;
        let after = live.timeline().window(live.clock().now()).start;
        assert!((before..=after).contains(&msn), "{before} <= {msn} <= {after}");
        seen.push(msn);
        std::thread::sleep(Duration::from_millis(150));
    }
    // At least 600 ms of wall time passed: 60 s of stream, 30 segments (less one for rounding).
    assert!(seen[4] >= seen[0] + 29, "{seen:?}");
    assert!(live.clock().now() >= s(60));
}

#[test]
fn renditions_stay_aligned_by_media_sequence_and_program_date_time() {
    let live = manual(LiveConfig::default().window(5));
    at(&live, s(2 * 9));
    let names: Vec<String> = live.renditions().into_iter().map(|r| r.name).collect();
    assert_eq!(names.len(), 9, "{names:?}");
    let video = playlist(&live, "video0/index.m3u8");
    for name in &names {
        let other = playlist(&live, name);
        let strip = |p: &Playlist| -> Vec<(u64, u64, bool, String)> {
            p.segments
                .iter()
                .map(|l| (l.msn, l.discontinuity_sequence, l.discontinuity, l.program_date_time.clone()))
                .collect()
        };
        assert_eq!(strip(&other), strip(&video), "{name}");
        // The same media sequence number plays the same source segment in every rendition.
        for l in &other.segments {
            let (mine, theirs) =
                (live.segment(name, l.msn).unwrap(), live.segment("video0/index.m3u8", l.msn).unwrap());
            assert_eq!(mine.source_index, theirs.source_index);
        }
    }
    // Program date times are 2 s apart and say when each segment starts.
    let segment = live.segment("audio-fr/index.m3u8", video.segments[1].msn).unwrap();
    let start = live.segment("audio-fr/index.m3u8", video.segments[0].msn).unwrap().program_date_time;
    assert_eq!(segment.program_date_time.duration_since(start).unwrap(), s(2));
}

#[test]
fn discontinuity_sequence_is_kept_right_across_loops() {
    // A window of 4 over a source of 6: loop points leave the window one by one.
    let live = manual(LiveConfig::default().window(4).first_media_sequence(50));
    let mut seen: std::collections::BTreeMap<u64, u64> = Default::default();
    let mut loops = 0;
    for step in 0..40 {
        at(&live, s(2 * step));
        let p = playlist(&live, "audio-en/index.m3u8");
        for l in &p.segments {
            let oracle = live.segment("audio-en/index.m3u8", l.msn).unwrap();
            // The client's count (header plus tags) is the oracle's, whichever playlist it came from.
            assert_eq!(
                l.discontinuity_sequence, oracle.discontinuity_sequence,
                "msn {} at step {step}",
                l.msn
            );
            assert_eq!(*seen.entry(l.msn).or_insert(l.discontinuity_sequence), l.discontinuity_sequence);
            // A tag is written before every loop point except at the top of the playlist.
            let first = l.msn == p.media_sequence;
            assert_eq!(l.discontinuity, oracle.discontinuity && !first, "msn {}", l.msn);
            if oracle.discontinuity {
                assert_eq!(oracle.source_index, 0);
            }
        }
        loops = p.segments.last().unwrap().discontinuity_sequence;
    }
    // 43 segments made over a source of 6: 7 loop points.
    assert_eq!(loops, 7);
}

#[test]
fn every_media_sequence_number_carries_the_source_bytes_the_oracle_names() {
    let live = manual(LiveConfig::default().window(6));
    at(&live, s(2 * 14));
    for rendition in live.renditions() {
        let p = playlist(&live, &rendition.name);
        for l in &p.segments {
            let answer = fetch(&live, &beside(&live, &rendition.name, &l.uri));
            assert_eq!(answer.status, 200, "{} {}", rendition.name, l.uri);
            let oracle = live.segment(&rendition.name, l.msn).unwrap();
            assert_eq!(answer.body, oracle.body, "{} msn {}", rendition.name, l.msn);
            assert_eq!(oracle.body, oracle.clear);
            assert_eq!(oracle.path, beside(&live, &rendition.name, &l.uri));
            // The source segment as ffmpeg wrote it (a byte range of one file for `single`).
            let file = std::fs::read(fixtures().join(oracle.source_path.trim_start_matches('/'))).unwrap();
            if rendition.name.starts_with("single") {
                assert!(file.windows(oracle.clear.len()).any(|w| w == &oracle.clear[..]));
            } else {
                assert_eq!(file, oracle.clear, "{}", oracle.source_path);
            }
        }
    }
    // The fMP4 rendition's initialisation section is served as the source's.
    let fmp4 = playlist(&live, "fmp4/index.m3u8");
    assert!(fmp4.text.contains("#EXT-X-MAP:URI=\"index-init.mp4\""));
    let init = fetch(&live, &beside(&live, "fmp4/index.m3u8", "index-init.mp4"));
    assert_eq!(init.body, std::fs::read(fixtures().join("fmp4/init.mp4")).unwrap());
}

#[test]
fn segments_are_fetchable_from_made_until_retention_after_they_leave() {
    let live = manual(LiveConfig::default().window(3).retention(s(4)));
    let path = |msn: u64| live.segment("video1/index.m3u8", msn).unwrap().path;
    // Position 3 is made at 2 s.
    assert_eq!(fetch(&live, &path(3)).status, 404);
    at(&live, s(2));
    assert_eq!(fetch(&live, &path(3)).status, 200);
    // Position 0 leaves the window at 2 s and stays for 4 s more.
    at(&live, s(6));
    assert_eq!(fetch(&live, &path(0)).status, 200);
    at(&live, Duration::from_millis(6001));
    assert_eq!(fetch(&live, &path(0)).status, 404);
    assert_eq!(fetch(&live, "/live/video1/index-x.ts").status, 404);
}

#[test]
fn a_hundred_thousand_segments_loop_with_a_growing_media_sequence() {
    let live = LiveOrigin::start_with(
        source(),
        LiveConfig::default().window(6).speed(0.0),
        OriginConfig::default().log_limit(100),
    )
    .unwrap();
    at(&live, s(2 * 100_000));
    let p = playlist(&live, "video2/index.m3u8");
    assert_eq!(p.media_sequence, 100_000);
    let last = p.segments.last().unwrap();
    assert_eq!(last.msn, 100_005);
    // 100,005 over a source of 6: it is its 16,667th loop, at source segment 3.
    let oracle = live.segment("video2/index.m3u8", last.msn).unwrap();
    assert_eq!((oracle.source_index, oracle.discontinuity_sequence), (3, 16_667));
    assert_eq!(fetch(&live, &oracle.path).body, oracle.body);
    for _ in 0..150 {
        fetch(&live, "/live/master.m3u8");
    }
    assert_eq!(live.origin().log().len(), 100, "the log keeps only the latest requests");
}

#[test]
fn event_playlists_grow_and_end_at_the_scripted_time() {
    let live = manual(
        LiveConfig::default().kind(PlaylistKind::Event).window(3).script(Script::new().end_list(s(11))),
    );
    let first = playlist(&live, "subs-en/index.m3u8");
    assert!(first.text.contains("#EXT-X-PLAYLIST-TYPE:EVENT"));
    assert_eq!(first.segments.len(), 3);
    at(&live, s(10));
    let grown = playlist(&live, "subs-en/index.m3u8");
    assert_eq!((grown.media_sequence, grown.segments.len(), grown.ended), (0, 8, false));
    assert_eq!(grown.segments[..3], first.segments[..]);
    at(&live, s(11));
    let ended = playlist(&live, "subs-en/index.m3u8");
    assert!(ended.ended);
    at(&live, s(100));
    assert_eq!(playlist(&live, "subs-en/index.m3u8").text, ended.text, "nothing is made after the end");
    assert_eq!(live.timeline().final_count(), Some(8));
}

#[test]
fn a_stopped_stream_gets_its_endlist_late() {
    let live = manual(LiveConfig::default().window(4).script(Script::new().stop(s(5)).end_list(s(20))));
    at(&live, s(5));
    let stopped = playlist(&live, "video0/index.m3u8");
    at(&live, s(19));
    let still = playlist(&live, "video0/index.m3u8");
    assert_eq!(still.text, stopped.text, "the playlist stops changing");
    assert!(!still.ended);
    // Position 6 would have been made at 6 s; it never is.
    assert_eq!(live.segment("video0/index.m3u8", 6), None);
    assert_eq!(fetch(&live, "/live/video0/index-6.ts").status, 404);
    at(&live, s(20));
    let ended = playlist(&live, "video0/index.m3u8");
    assert!(ended.ended);
    assert_eq!(ended.segments, stopped.segments);
}

/// Sends a GET on `stream` without reading the answer.
fn send(stream: &mut TcpStream, path: &str) {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
}

/// What a read of `stream` sees within `wait`: bytes, an end of file, or nothing yet.
fn read_within(stream: &mut TcpStream, wait: Duration) -> Result<Vec<u8>, ErrorKind> {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buffer = vec![0u8; 65536];
    match stream.read(&mut buffer) {
        Ok(n) => Ok(buffer[..n].to_vec()),
        Err(e) => Err(e.kind()),
    }
}

#[test]
fn a_black_hole_reads_requests_and_never_answers_them() {
    let live = manual(LiveConfig::default().script(Script::new().black_hole(s(10), s(10))));
    let path = live.renditions()[0].path.clone();
    let mut before = TcpStream::connect(live.origin().addr()).unwrap();
    at(&live, s(10));
    let mut during = TcpStream::connect(live.origin().addr()).unwrap();
    send(&mut during, &path);
    send(&mut before, &path);
    for stream in [&mut during, &mut before] {
        let got = read_within(stream, Duration::from_millis(300));
        assert!(matches!(got, Err(ErrorKind::WouldBlock | ErrorKind::TimedOut)), "{got:?}");
    }
    // When the black hole closes, the held requests die unanswered: their connections close.
    at(&live, s(20));
    for stream in [&mut during, &mut before] {
        assert_eq!(read_within(stream, Duration::from_secs(5)), Ok(Vec::new()));
    }
    assert_eq!(fetch(&live, &path).status, 200);
    let log = live.origin().log();
    let held: Vec<_> = log.iter().filter(|r| r.status == 0).collect();
    assert_eq!(held.len(), 2);
    assert!(held.iter().all(|r| r.faults == ["black hole"]));
}

/// Connects until `want` says the outcome is the awaited one, for up to 5 s (the accept loop notices a
/// moved clock on its own task).
fn connect_until(live: &LiveOrigin, want: impl Fn(&std::io::Result<TcpStream>) -> bool) {
    for _ in 0..500 {
        if want(&TcpStream::connect(live.origin().addr())) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the origin did not change how it takes connections");
}

#[test]
fn refused_connections_while_the_window_lasts() {
    let live = manual(LiveConfig::default().script(Script::new().refuse(s(10), s(5))));
    let mut open = Conn::open(live.origin().addr());
    assert_eq!(open.get("/live/master.m3u8", "").status, 200);
    at(&live, s(10));
    connect_until(&live, |c| matches!(c, Err(e) if e.kind() == ErrorKind::ConnectionRefused));
    assert!(open.is_closed(), "connections open when the refusal starts are closed");
    at(&live, s(15));
    connect_until(&live, Result::is_ok);
    assert_eq!(fetch(&live, "/live/master.m3u8").status, 200);
}

#[test]
fn bursts_of_5xx_and_other_faults_on_the_script() {
    let live = manual(LiveConfig::default().script(Script::new().status(s(10), s(4), 503).fault(
        s(20),
        s(2),
        FaultRule::new(Fault::status(404)).glob("*.ts"),
    )));
    let path = live.renditions()[0].path.clone();
    let statuses = |live: &LiveOrigin| {
        let segment = live.segment("video0/index.m3u8", 0).unwrap().path;
        (fetch(live, &path).status, fetch(live, &segment).status, fetch(live, "/live/master.m3u8").status)
    };
    assert_eq!(statuses(&live), (200, 200, 200));
    at(&live, s(10));
    assert_eq!(statuses(&live), (503, 503, 503));
    at(&live, Duration::from_millis(13_999));
    assert_eq!(statuses(&live), (503, 503, 503));
    at(&live, s(14));
    assert_eq!(statuses(&live).0, 200);
    at(&live, s(20));
    let segment = live.segment("video0/index.m3u8", 7).unwrap().path;
    assert_eq!((fetch(&live, &path).status, fetch(&live, &segment).status), (200, 404));
    assert_eq!(live.timeline().outages().len(), 1, "only the burst makes the origin unreachable");
    assert_eq!(live.timeline().outages()[0].kind, OutageKind::Status(503));
}

#[test]
fn a_stall_freezes_the_playlist_for_three_target_durations() {
    let live = manual(LiveConfig::default().window(6).script(Script::new().stall(s(10), s(6))));
    at(&live, s(10));
    let frozen = playlist(&live, "video1/index.m3u8");
    for t in [12, 14, 15] {
        at(&live, s(t));
        assert_eq!(playlist(&live, "video1/index.m3u8").text, frozen.text, "at {t} s");
    }
    at(&live, s(16));
    let moved = playlist(&live, "video1/index.m3u8");
    assert_eq!(moved.media_sequence, frozen.media_sequence + 3);
    let stats = live.playlist_stats("video1/index.m3u8").unwrap();
    assert_eq!((stats.requests, stats.stalled), (5, 4));
}

#[test]
fn stale_copies_send_the_media_sequence_backwards() {
    // From 20 s to 40 s, every second request is answered with the playlist of 6 s earlier.
    let live = manual(LiveConfig::default().window(6).script(Script::new().stale(s(20), s(20), s(6), 2)));
    at(&live, s(20));
    let sequences: Vec<u64> = (0..4).map(|_| playlist(&live, "audio-en/index.m3u8").media_sequence).collect();
    assert_eq!(sequences, [10, 7, 10, 7]);
    at(&live, s(40));
    assert_eq!(playlist(&live, "audio-en/index.m3u8").media_sequence, 20);
    let stats = live.playlist_stats("audio-en/index.m3u8").unwrap();
    assert_eq!(stats.stale, 2);
    // What the answered playlists listed, stale copies included.
    assert_eq!(live.listed("audio-en/index.m3u8"), [7..16, 20..26]);
}

#[test]
fn a_content_switch_is_a_discontinuity() {
    // At 5 s: position 8 (made at 6 s) plays the source from its segment 4.
    let live = manual(LiveConfig::default().window(6).script(Script::new().switch_content(s(5), 4)));
    at(&live, s(8));
    let p = playlist(&live, "video0/index.m3u8");
    let switched: Vec<&Listed> = p.segments.iter().filter(|l| l.discontinuity).collect();
    // Position 6 is the first loop point; position 8 the switch.
    assert_eq!(switched.iter().map(|l| l.msn).collect::<Vec<_>>(), [6, 8]);
    let oracle = live.segment("video0/index.m3u8", 8).unwrap();
    assert_eq!((oracle.source_index, oracle.discontinuity_sequence), (4, 2));
    assert_eq!(live.segment("video0/index.m3u8", 9).unwrap().source_index, 5);
    assert!(live.segment("video0/index.m3u8", 10).unwrap().discontinuity, "and loops from there");
}

#[test]
fn a_media_sequence_jump_skips_numbers_and_restarts_the_window() {
    let live = manual(LiveConfig::default().window(6).script(Script::new().jump(s(3), 100)));
    let msns = |live: &LiveOrigin| -> Vec<u64> {
        playlist(live, "video0/index.m3u8").segments.iter().map(|l| l.msn).collect()
    };
    at(&live, s(2));
    assert_eq!(msns(&live), [1, 2, 3, 4, 5, 6]);
    // Position 7 (made at 4 s) is the first after the jump: 107, not 7. A playlist numbers its segments
    // by their place in it, so it cannot hold both sides: it starts again from 107.
    at(&live, s(4));
    assert_eq!(msns(&live), [107]);
    at(&live, s(6));
    let p = playlist(&live, "video0/index.m3u8");
    assert_eq!(p.segments.iter().map(|l| l.msn).collect::<Vec<_>>(), [107, 108]);
    assert!(p.text.contains("index-107.ts\n"));
    // No discontinuity: the content goes on.
    assert!(!p.segments[0].discontinuity);
    assert_eq!(live.segment("video0/index.m3u8", 7), None);
    assert_eq!(fetch(&live, "/live/video0/index-50.ts").status, 404);
    let after = live.segment("video0/index.m3u8", 107).unwrap();
    assert_eq!((after.position, after.source_index), (7, 1));
    assert_eq!(fetch(&live, &after.path).body, after.body);
    // What the jump dropped left the window when 107 was made.
    assert_eq!(live.segment("video0/index.m3u8", 6).unwrap().leaves_window_at, Some(s(4)));
    at(&live, s(20));
    assert_eq!(msns(&live), (110..116).collect::<Vec<_>>());
    // EVENT playlists only grow: they cannot jump.
    let err = LiveOrigin::start(
        source(),
        LiveConfig::default().kind(PlaylistKind::Event).script(Script::new().jump(s(3), 1)),
    )
    .unwrap_err();
    assert!(err.to_string().contains("EVENT"), "{err}");
}

fn decrypt(key: &[u8], iv: &[u8; 16], body: &[u8]) -> Vec<u8> {
    cbc::Decryptor::<aes::Aes128>::new(key.into(), iv.into()).decrypt_padded_vec_mut::<Pkcs7>(body).unwrap()
}

#[test]
fn keys_rotate_every_n_segments_and_are_served() {
    let live = manual(LiveConfig::default().window(6).keys(KeyRotation::every(4)));
    at(&live, s(2 * 7));
    let p = playlist(&live, "video2/index.m3u8");
    // Window 7..13: keys 1 (7), 2 (8-11), 3 (12).
    let keys: Vec<&str> = p.text.lines().filter(|l| l.starts_with("#EXT-X-KEY")).collect();
    assert_eq!(
        keys,
        [
            "#EXT-X-KEY:METHOD=AES-128,URI=\"index-key1.key\"",
            "#EXT-X-KEY:METHOD=AES-128,URI=\"index-key2.key\"",
            "#EXT-X-KEY:METHOD=AES-128,URI=\"index-key3.key\""
        ]
    );
    for l in &p.segments {
        let oracle = live.segment("video2/index.m3u8", l.msn).unwrap();
        let key_uri = l.key.as_ref().unwrap().split('"').nth(1).unwrap();
        let key = fetch(&live, &beside(&live, "video2/index.m3u8", key_uri));
        let expected = oracle.key.as_ref().unwrap();
        assert_eq!((key.status, &key.body[..]), (200, &expected.key[..]));
        assert_eq!(expected.iv, stowage_origin::hls::sequence_iv(l.msn));
        let body = fetch(&live, &beside(&live, "video2/index.m3u8", &l.uri)).body;
        assert_eq!(body, oracle.body);
        assert_eq!(decrypt(&key.body, &expected.iv, &body), oracle.clear);
    }
    // Keys are served once a segment needs them; subtitles stay clear.
    assert_eq!(fetch(&live, &beside(&live, "video2/index.m3u8", "index-key4.key")).status, 404);
    assert!(!playlist(&live, "subs-fr/index.m3u8").text.contains("EXT-X-KEY"));
    assert!(!live.renditions().iter().find(|r| r.name == "subs-fr/index.m3u8").unwrap().encrypted);
    // Explicit IVs are written on every segment.
    let explicit = manual(LiveConfig::default().keys(KeyRotation::every(4).explicit_ivs()));
    let p = playlist(&explicit, "audio-en/index.m3u8");
    assert_eq!(p.text.matches("IV=0x").count(), 6);
    let oracle = explicit.segment("audio-en/index.m3u8", 0).unwrap();
    let key = oracle.key.unwrap();
    assert_eq!(decrypt(&key.key, &key.iv, &oracle.body), oracle.clear);
}

fn low_latency() -> LiveConfig {
    // 2 s segments in four parts of 0.5 s.
    LiveConfig::default().window(6).low_latency(LowLatency::part_target(Duration::from_millis(500)))
}

#[test]
fn low_latency_playlists_list_parts_and_hint_the_next() {
    let live = manual(low_latency());
    at(&live, Duration::from_millis(20_700));
    let p = playlist(&live, "video0/index.m3u8");
    assert!(p.text.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500\n"));
    assert!(p.text.contains("#EXT-X-PART-INF:PART-TARGET=0.50000\n"));
    // Made by 20.7 s: positions up to 15; position 16 has one part done (0.5 s) and its second hinted.
    assert_eq!(p.segments.last().unwrap().msn, 15);
    assert_eq!(p.parts.iter().filter(|u| u.starts_with("index-16.")).collect::<Vec<_>>(), ["index-16.0.ts"]);
    assert_eq!(p.hint.as_deref(), Some("index-16.1.ts"));
    // Parts of the segments of the last three target durations (13, 14, 15) are listed.
    assert!(
        p.parts.contains(&"index-13.3.ts".to_owned()) && !p.parts.iter().any(|u| u.starts_with("index-12."))
    );
    // A segment's parts put together are the segment, cut at TS packet boundaries.
    let oracle = live.segment("video0/index.m3u8", 14).unwrap();
    let mut joined = Vec::new();
    for (j, range) in oracle.parts.iter().enumerate() {
        assert_eq!(range.start % 188, 0);
        let part = fetch(&live, &beside(&live, "video0/index.m3u8", &format!("index-14.{j}.ts")));
        assert_eq!(part.body, oracle.body[range.clone()]);
        joined.extend(part.body);
    }
    assert_eq!(joined, oracle.body);
    assert_eq!(oracle.parts.len(), 4);
    // Parts not made yet and not hinted are not there.
    assert_eq!(fetch(&live, "/live/video0/index-16.3.ts").status, 404);
}

/// Sends a request on its own thread and returns the handle to its answer.
fn request_in_background(live: &LiveOrigin, path: String) -> std::thread::JoinHandle<Raw> {
    let addr = live.origin().addr();
    std::thread::spawn(move || get(addr, &path, ""))
}

/// Waits until the origin has `n` blocking reloads held or answered for `rendition`.
fn wait_for_held(live: &LiveOrigin, rendition: &str, n: u64) {
    for _ in 0..500 {
        if live.playlist_stats(rendition).unwrap().held >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the blocking reload never arrived");
}

#[test]
fn blocking_reloads_are_held_until_the_part_exists() {
    let live = manual(low_latency());
    at(&live, Duration::from_millis(20_700));
    // Segment 16 is made from 20 s to 22 s in parts of 0.5 s: its part 2 is done at 21.5 s.
    let path = "/live/video0/index.m3u8?_HLS_msn=16&_HLS_part=2".to_owned();
    let answer = request_in_background(&live, path);
    wait_for_held(&live, "video0/index.m3u8", 1);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!answer.is_finished(), "answered before the part existed");
    at(&live, Duration::from_millis(21_499));
    std::thread::sleep(Duration::from_millis(100));
    assert!(!answer.is_finished(), "answered before the part existed");
    at(&live, Duration::from_millis(21_500));
    let answer = answer.join().unwrap();
    assert_eq!(answer.status, 200);
    let p = parse(std::str::from_utf8(&answer.body).unwrap());
    assert!(p.parts.contains(&"index-16.2.ts".to_owned()), "{}", p.text);
    assert_eq!(p.hint.as_deref(), Some("index-16.3.ts"));

    // A whole segment: `_HLS_msn=17` waits for segment 17 to be complete, at 24 s.
    let answer = request_in_background(&live, "/live/video0/index.m3u8?_HLS_msn=17".to_owned());
    wait_for_held(&live, "video0/index.m3u8", 2);
    at(&live, Duration::from_millis(23_500));
    std::thread::sleep(Duration::from_millis(100));
    assert!(!answer.is_finished());
    at(&live, s(24));
    assert_eq!(
        parse(std::str::from_utf8(&answer.join().unwrap().body).unwrap()).segments.last().unwrap().msn,
        17
    );
    let stats = live.playlist_stats("video0/index.m3u8").unwrap();
    assert_eq!((stats.blocking, stats.held, stats.timed_out), (2, 2, 0));
}

#[test]
fn blocking_reloads_for_what_exists_are_answered_at_once() {
    let live = manual(low_latency());
    at(&live, Duration::from_millis(20_700));
    for query in ["_HLS_msn=15", "_HLS_msn=16&_HLS_part=0", "_HLS_msn=3&_HLS_part=1"] {
        let answer = fetch(&live, &format!("/live/video0/index.m3u8?{query}"));
        assert_eq!(answer.status, 200, "{query}");
    }
    let stats = live.playlist_stats("video0/index.m3u8").unwrap();
    assert_eq!((stats.blocking, stats.held), (3, 0));
}

#[test]
fn blocking_reloads_time_out_with_503_and_bad_ones_get_400() {
    // The playlist stalls from 20 s to 40 s, so a request for the next part cannot be satisfied in the
    // 6 s (three target durations) a request is held.
    let live = manual(low_latency().script(Script::new().stall(s(20), s(20))));
    at(&live, Duration::from_millis(20_700));
    let answer = request_in_background(&live, "/live/video0/index.m3u8?_HLS_msn=16&_HLS_part=1".to_owned());
    wait_for_held(&live, "video0/index.m3u8", 1);
    at(&live, Duration::from_millis(26_699));
    std::thread::sleep(Duration::from_millis(100));
    assert!(!answer.is_finished());
    at(&live, Duration::from_millis(26_700));
    assert_eq!(answer.join().unwrap().status, 503);
    // More than two segments ahead of the playlist, a part without a segment, garbage.
    for query in ["_HLS_msn=18", "_HLS_part=1", "_HLS_msn=x"] {
        assert_eq!(fetch(&live, &format!("/live/video0/index.m3u8?{query}")).status, 400, "{query}");
    }
    let stats = live.playlist_stats("video0/index.m3u8").unwrap();
    assert_eq!((stats.timed_out, stats.rejected), (1, 3));
}

#[test]
fn the_hinted_part_is_held_until_it_is_made() {
    let live = manual(low_latency());
    at(&live, Duration::from_millis(20_700));
    let hinted = playlist(&live, "video0/index.m3u8").hint.unwrap();
    let answer = request_in_background(&live, beside(&live, "video0/index.m3u8", &hinted));
    std::thread::sleep(Duration::from_millis(200));
    assert!(!answer.is_finished());
    at(&live, s(21));
    let answer = answer.join().unwrap();
    let oracle = live.segment("video0/index.m3u8", 16).unwrap();
    assert_eq!((answer.status, answer.body), (200, oracle.body[oracle.parts[1].clone()].to_vec()));
}

#[test]
fn a_blocking_client_costs_one_playlist_request_per_part() {
    // 0.5 s parts at 10 times real time: a part every 50 ms of wall time. A client that always asks for
    // the next part makes one request per part.
    let live = LiveOrigin::start(source(), low_latency().speed(10.0)).unwrap();
    let p = playlist(&live, "audio-fr/index.m3u8");
    let mut next = match p.hint {
        Some(hint) => {
            let (msn, part) =
                hint.trim_start_matches("index-").trim_end_matches(".ts").split_once('.').unwrap();
            (msn.parse::<u64>().unwrap(), part.parse::<u64>().unwrap())
        }
        None => unreachable!("a live low-latency playlist hints"),
    };
    let started = live.clock().now();
    let mut conn = Conn::open(live.origin().addr());
    for _ in 0..40 {
        let answer =
            conn.get(&format!("/live/audio-fr/index.m3u8?_HLS_msn={}&_HLS_part={}", next.0, next.1), "");
        assert_eq!(answer.status, 200);
        let p = parse(std::str::from_utf8(&answer.body).unwrap());
        let hint = p.hint.unwrap();
        let (msn, part) = hint.trim_start_matches("index-").trim_end_matches(".ts").split_once('.').unwrap();
        next = (msn.parse().unwrap(), part.parse().unwrap());
    }
    let elapsed = live.clock().now() - started;
    let stats = live.playlist_stats("audio-fr/index.m3u8").unwrap();
    // 40 blocking requests (plus the first plain one) took about 40 parts of stream time.
    assert_eq!((stats.requests, stats.blocking, stats.timed_out), (41, 40, 0));
    let parts = elapsed.as_secs_f64() / 0.5;
    assert!(stats.blocking as f64 <= parts + 1.0, "{} requests in {parts:.1} parts", stats.blocking);
}

#[test]
fn the_oracle_knows_what_left_the_window_while_the_origin_was_unreachable() {
    // Window 4 of 2 s; unreachable from 10 s to 30 s. A client reloads every second whenever the origin
    // answers.
    let live = manual(LiveConfig::default().window(4).script(Script::new().black_hole(s(10), s(20))));
    for t in 0..50 {
        at(&live, s(t));
        if !(10..30).contains(&t) {
            playlist(&live, "audio-en/index.m3u8");
        }
    }
    let lost = live.timeline().lost_to_outages();
    assert_eq!(lost.len(), 1);
    // Just before 10 s the window is 4..8; at 30 s it is 15..19.
    assert_eq!(lost[0].positions, 8..15);
    assert_eq!(lost[0].unreachable, s(10)..s(30));
    let unlisted = live.unlisted("audio-en/index.m3u8");
    assert_eq!(unlisted.len(), 1);
    assert_eq!(unlisted[0].positions, lost[0].positions);
    assert_eq!(unlisted[0].media_sequences, [8..=14]);
    assert_eq!(unlisted[0].outages.len(), 1);
    assert_eq!(unlisted[0].outages[0].kind, OutageKind::BlackHole);
    let start = live.segment("audio-en/index.m3u8", 8).unwrap().program_date_time;
    assert_eq!(unlisted[0].program_date_times.end.duration_since(start).unwrap(), s(14));
    // Of what left the window during the outage, the first three (5, 6, 7) were listed before it.
    assert_eq!(live.timeline().left_window_during(s(10), s(30)), 5..15);
    // The other renditions, never asked for, have no record.
    assert!(live.listed("video0/index.m3u8").is_empty());
    assert!(live.unlisted("video0/index.m3u8").is_empty());

    // A client that reloads too seldom misses segments with no outage to blame.
    let live = manual(LiveConfig::default().window(2));
    for t in [0, 10] {
        at(&live, s(t));
        playlist(&live, "video0/index.m3u8");
    }
    let unlisted = live.unlisted("video0/index.m3u8");
    assert_eq!(unlisted[0].positions, 2..5);
    assert!(unlisted[0].outages.is_empty());
}

#[test]
fn wall_time_scripts_follow_the_clock_speed() {
    use stowage_origin::live::At;
    let live = LiveOrigin::start(
        source(),
        LiveConfig::default().speed(50.0).script(Script::new().status(At::wall(s(1)), s(1), 503)),
    )
    .unwrap();
    let outage = live.timeline().outages()[0];
    assert_eq!((outage.from, outage.until), (s(50), s(100)));
    let err = LiveOrigin::start(
        source(),
        LiveConfig::default().speed(0.0).script(Script::new().refuse(At::wall(s(1)), s(1))),
    )
    .unwrap_err();
    assert!(err.to_string().contains("manual clock"), "{err}");
}

#[test]
fn bad_configurations_are_refused_with_the_reason() {
    let err = LiveOrigin::start(source(), low_latency().keys(KeyRotation::every(2))).unwrap_err();
    assert!(err.to_string().contains("low latency and encryption"), "{err}");
    let err =
        LiveOrigin::start(source(), LiveConfig::default().segment_duration(Duration::ZERO)).unwrap_err();
    assert!(err.to_string().contains("segment duration"), "{err}");
    let err = LiveSource::from_dir(fixtures(), "missing.m3u8").unwrap_err();
    assert!(err.to_string().contains("missing.m3u8"), "{err}");
}
