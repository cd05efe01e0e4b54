//! Local playlists: they parse back with stowage-playlist, point only at stored files, keep every line
//! that is not a URI, and show a partly downloaded bundle as it is.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use stowage_bundle::{
    AssetInfo, Bundle, BundlePlan, KeyPolicy, MediaFormat, PlannedSegment, RenditionKind, RenditionPlan,
};
use stowage_playlist::{MasterPlaylist, MediaPlaylist, MediaTag};

fn fill(bundle: &Bundle) {
    for id in bundle.pending_segments() {
        write_segment(bundle, &id, &segment_bytes(&id, 4, 777)).unwrap();
    }
}

/// Every segment URI and MAP URI of a local media playlist is a file in its folder.
fn assert_points_at_files(folder: &Path, text: &str) {
    let playlist = MediaPlaylist::parse(text).unwrap();
    for s in playlist.segments() {
        assert!(!s.uri().contains('/') && folder.join(s.uri()).is_file(), "{} missing", s.uri());
    }
    for tag in playlist.tags() {
        if let MediaTag::Map(m) = tag {
            let uri = m.attributes().quoted("URI").unwrap();
            assert!(folder.join(uri).is_file(), "{uri}");
            assert!(m.attributes().get("BYTERANGE").is_none());
        }
    }
}

#[test]
fn finished_bundle_playlists_parse_and_point_at_stored_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let plan = BundlePlan::new(AssetInfo::new("a"))
        .rendition(fmp4_rendition("video", 3))
        .rendition(ts_rendition("audio", RenditionKind::Audio, 2, 5, 6.0).language("en").name("English"));
    let bundle = Bundle::create(&dir, plan).unwrap();
    fill(&bundle);
    bundle.mark_finished().unwrap();
    for r in ["video", "audio"] {
        let text = fs::read_to_string(dir.join(r).join("index.m3u8")).unwrap();
        assert_points_at_files(&dir.join(r), &text);
        let playlist = MediaPlaylist::parse(text.as_str()).unwrap();
        assert!(playlist.is_ended());
        assert!(!text.contains("https://"), "{text}");
    }
    let audio = fs::read_to_string(dir.join("audio/index.m3u8")).unwrap();
    assert!(audio.contains("#EXT-X-MEDIA-SEQUENCE:5\n") && audio.contains("seg-d0-s6.ts\n"), "{audio}");
    // No source master: one is generated from the renditions.
    let master = fs::read_to_string(dir.join("master.m3u8")).unwrap();
    let parsed = MasterPlaylist::parse(master.as_str()).unwrap();
    let variant = parsed.variants().next().unwrap();
    assert_eq!(&*variant.uri, "video/index.m3u8");
    assert_eq!(parsed.renditions().count(), 1);
    assert!(dir.join(&*variant.uri).is_file());
}

#[test]
fn partial_bundle_lists_what_is_there_with_gaps_and_no_endlist() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let bundle = Bundle::create(&dir, simple_plan("a", 5)).unwrap();
    let empty = fs::read_to_string(dir.join("video/index.m3u8")).unwrap();
    assert_eq!(MediaPlaylist::parse(empty.as_str()).unwrap().segments().len(), 0);
    assert!(!empty.contains("#EXT-X-ENDLIST") && empty.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{empty}");
    let ids = bundle.pending_segments();
    write_segment(&bundle, &ids[0], b"zero").unwrap();
    write_segment(&bundle, &ids[2], b"two").unwrap();
    bundle.write_playlists().unwrap();
    let text = fs::read_to_string(dir.join("video/index.m3u8")).unwrap();
    let playlist = MediaPlaylist::parse(text.as_str()).unwrap();
    assert_eq!(playlist.segments().len(), 3, "{text}");
    assert!(!playlist.is_ended());
    let gaps: Vec<bool> =
        (0..3).map(|i| playlist.segment_tags(i).iter().any(|t| matches!(t, MediaTag::Gap))).collect();
    assert_eq!(gaps, vec![false, true, false]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!((manifest["finished"].as_bool(), manifest["complete"].as_bool()), (Some(false), Some(false)));
    // Finished with a recorded gap: everything listed, the gap marked, and the end.
    bundle.record_gap(&ids[1], "404").unwrap();
    write_segment(&bundle, &ids[3], b"three").unwrap();
    write_segment(&bundle, &ids[4], b"four").unwrap();
    bundle.mark_finished().unwrap();
    let text = fs::read_to_string(dir.join("video/index.m3u8")).unwrap();
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD") && text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    assert_eq!(text.matches("#EXT-X-GAP").count(), 1);
}

#[test]
fn byte_ranges_become_files_of_their_own() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let plan = BundlePlan::new(AssetInfo::new("a")).rendition(byte_range_rendition("main", 4, 500));
    let bundle = Bundle::create(&dir, plan).unwrap();
    for id in bundle.pending_segments() {
        write_segment(&bundle, &id, &segment_bytes(&id, 1, 500)).unwrap();
    }
    bundle.mark_finished().unwrap();
    let text = fs::read_to_string(dir.join("main/index.m3u8")).unwrap();
    assert!(!text.contains("BYTERANGE"), "{text}");
    assert!(text.contains("seg-d0-s1-r500-500.ts"), "{text}");
    assert_points_at_files(&dir.join("main"), &text);
}

#[test]
fn keys_are_removed_or_pointed_at_the_bundle() {
    let source = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n\
        #EXT-X-KEY:METHOD=AES-128,URI=\"https://k.example/k1?t=1\",IV=0x00000000000000000000000000000001\n\
        #EXTINF:4.0,\na.ts\n#EXT-X-KEY:METHOD=AES-128,URI=\"https://k.example/k2\"\n#EXTINF:4.0,\nb.ts\n\
        #EXT-X-ENDLIST\n";
    for policy in [KeyPolicy::Decrypt, KeyPolicy::KeepEncrypted] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a");
        let segments = vec![PlannedSegment::media(0, 0, 4.0, "a"), PlannedSegment::media(0, 1, 4.0, "b")];
        let r = RenditionPlan::new(rid("v"), RenditionKind::Video, MediaFormat::Ts, "u", source, segments);
        let plan = BundlePlan::new(AssetInfo::new("a")).rendition(r.primary(true)).key_policy(policy);
        let bundle = Bundle::create(&dir, plan).unwrap();
        fill(&bundle);
        if policy == KeyPolicy::KeepEncrypted {
            bundle.write_key(&rid("v"), 0, &[1; 16]).unwrap();
            bundle.write_key(&rid("v"), 1, &[2; 16]).unwrap();
        }
        bundle.mark_finished().unwrap();
        let text = fs::read_to_string(dir.join("v/index.m3u8")).unwrap();
        let playlist = MediaPlaylist::parse(text.as_str()).unwrap();
        let keys: Vec<_> = playlist
            .tags()
            .filter_map(|t| match t {
                MediaTag::Key(k) => Some(k.attributes().quoted("URI").unwrap().to_owned()),
                _ => None,
            })
            .collect();
        match policy {
            KeyPolicy::Decrypt => assert!(keys.is_empty(), "{text}"),
            _ => {
                assert_eq!(keys, vec!["keys/key-0.key", "keys/key-1.key"]);
                assert!(text.contains("IV=0x00000000000000000000000000000001"), "the IV stays: {text}");
                assert_eq!(fs::read(dir.join("v/keys/key-1.key")).unwrap(), [2; 16]);
            }
        }
    }
}

#[test]
fn master_lists_only_what_was_downloaded() {
    let master = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n\
        #EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"https://k.example/s\"\n\
        #EXT-X-SESSION-DATA:DATA-ID=\"com.example.title\",VALUE=\"Film\"\n\
        #X-VENDOR-THING:42\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,URI=\"a/en.m3u8\"\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"French\",LANGUAGE=\"fr\",URI=\"a/fr.m3u8\"\n\
        #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"English\",LANGUAGE=\"en\",URI=\"s/en.m3u8\"\n\
        #EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC\",INSTREAM-ID=\"CC1\"\n\
        #EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,AUDIO=\"aud\",SUBTITLES=\"subs\",CLOSED-CAPTIONS=\"cc\",VIDEO-RANGE=SDR\n\
        v/360.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720,AUDIO=\"aud\",SUBTITLES=\"subs\",CLOSED-CAPTIONS=\"cc\",VIDEO-RANGE=SDR\n\
        v/720.m3u8\n\
        #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,URI=\"v/iframes.m3u8\"\n";
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let plan = BundlePlan::new(AssetInfo::new("a"))
        .master_playlist(master)
        .rendition(
            ts_rendition("video-720", RenditionKind::Video, 2, 0, 4.0).primary(true).master_uri("v/720.m3u8"),
        )
        .rendition(
            ts_rendition("audio-en", RenditionKind::Audio, 2, 0, 4.0).primary(true).master_uri("a/en.m3u8"),
        );
    let bundle = Bundle::create(&dir, plan).unwrap();
    fill(&bundle);
    bundle.mark_finished().unwrap();
    let text = fs::read_to_string(dir.join("master.m3u8")).unwrap();
    let expected = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n\
        #EXT-X-SESSION-DATA:DATA-ID=\"com.example.title\",VALUE=\"Film\"\n\
        #X-VENDOR-THING:42\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,URI=\"audio-en/index.m3u8\"\n\
        #EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC\",INSTREAM-ID=\"CC1\"\n\
        #EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720,AUDIO=\"aud\",CLOSED-CAPTIONS=\"cc\",VIDEO-RANGE=SDR\n\
        video-720/index.m3u8\n";
    assert_eq!(text, expected);
    let parsed = MasterPlaylist::parse(text.as_str()).unwrap();
    for v in parsed.variants() {
        assert!(dir.join(&*v.uri).is_file());
    }
}

#[test]
fn a_playlist_that_does_not_match_its_plan_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = ts_rendition("v", RenditionKind::Video, 3, 0, 4.0).primary(true);
    r.segments.pop();
    let err =
        Bundle::create(tmp.path().join("a"), BundlePlan::new(AssetInfo::new("a")).rendition(r)).unwrap_err();
    assert!(matches!(err, stowage_bundle::Error::Playlist { .. }), "{err}");
    assert!(err.to_string().contains("3 media segments, 2 planned"), "{err}");
}

#[test]
fn plans_made_from_the_playlist_write_back_consistently() {
    let source = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:10\n\
        #EXT-X-DISCONTINUITY-SEQUENCE:3\n#EXT-X-PLAYLIST-TYPE:VOD\n\
        #EXT-X-MAP:URI=\"main.mp4\",BYTERANGE=\"700@0\"\n\
        #EXTINF:4.0,\n#EXT-X-BYTERANGE:1000@700\nmain.mp4\n#EXTINF:4.0,\n#EXT-X-BYTERANGE:1200\nmain.mp4\n\
        #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init2.mp4\"\n#EXTINF:3.5,\nother.m4s?x=1\n#EXT-X-ENDLIST\n";
    let r =
        RenditionPlan::from_playlist(rid("v"), RenditionKind::Video, "https://cdn.example/p/v.m3u8", source)
            .unwrap()
            .primary(true);
    assert_eq!(r.format, MediaFormat::Fmp4);
    let ids: Vec<String> = r.segment_ids().map(|id| id.file_name("x")).collect();
    assert_eq!(
        ids,
        vec![
            "init-d3-s10-r0-700.x",
            "seg-d3-s10-r700-1000.x",
            "seg-d3-s11-r1700-1200.x",
            "init-d4-s12.x",
            "seg-d4-s12.x"
        ]
    );
    assert_eq!(r.segments[1].uri, "https://cdn.example/p/main.mp4");
    assert_eq!(r.segments[2].expected_length, Some(1200));
    assert_eq!(r.duration(), 11.5);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let bundle = Bundle::create(&dir, BundlePlan::new(AssetInfo::new("a")).rendition(r)).unwrap();
    for id in bundle.pending_segments() {
        let len = id.byte_range.map_or(300, |r| r.length as usize);
        write_segment(&bundle, &id, &segment_bytes(&id, 2, len)).unwrap();
    }
    bundle.mark_finished().unwrap();
    let text = fs::read_to_string(dir.join("v/index.m3u8")).unwrap();
    assert_points_at_files(&dir.join("v"), &text);
    assert!(text.contains("#EXT-X-MAP:URI=\"init-d4-s12.mp4\"\n"), "{text}");
    assert!(text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
}

#[test]
fn variables_are_read_with_their_values_and_the_local_copies_read_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vars");
    // The master defines a variable of its own and takes one from its URL's query; the media playlist
    // imports the first and takes its own token from its URL.
    let master = "#EXTM3U\n#EXT-X-DEFINE:NAME=\"cdn\",VALUE=\"https://cdn.example\"\n\
                  #EXT-X-DEFINE:QUERYPARAM=\"token\"\n\
                  #EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=640x360\n{$cdn}/v.m3u8?token={$token}\n";
    let media = "#EXTM3U\n#EXT-X-VERSION:8\n#EXT-X-TARGETDURATION:4\n#EXT-X-DEFINE:IMPORT=\"cdn\"\n\
                 #EXT-X-DEFINE:QUERYPARAM=\"token\"\n#EXT-X-PLAYLIST-TYPE:VOD\n\
                 #EXT-X-MAP:URI=\"{$cdn}/init.mp4?token={$token}\"\n\
                 #EXTINF:4.0,\n{$cdn}/seg0.m4s?token={$token}\n#EXTINF:4.0,\n{$cdn}/seg1.m4s?token={$token}\n\
                 #EXT-X-ENDLIST\n";
    let segments = vec![
        PlannedSegment::init(0, 0, "https://cdn.example/init.mp4?token=m"),
        PlannedSegment::media(0, 0, 4.0, "https://cdn.example/seg0.m4s?token=m"),
        PlannedSegment::media(0, 1, 4.0, "https://cdn.example/seg1.m4s?token=m"),
    ];
    let video = RenditionPlan::new(
        rid("video"),
        RenditionKind::Video,
        MediaFormat::Fmp4,
        "https://cdn.example/v.m3u8?token=m",
        media,
        segments,
    )
    .primary(true)
    .master_uri("https://cdn.example/v.m3u8?token=abc");
    let plan = BundlePlan::new(AssetInfo::new("vars").url("https://origin.example/master.m3u8?token=old"))
        .master_playlist(master)
        .master_url("https://origin.example/master.m3u8?token=abc")
        .rendition(video);
    let bundle = Bundle::create(&dir, plan).unwrap();
    fill(&bundle);
    bundle.mark_finished().unwrap();
    // The variant was found by its URI as the download read it, with the master URL's token.
    let local_master = fs::read_to_string(dir.join("master.m3u8")).unwrap();
    let parsed = MasterPlaylist::parse(local_master.as_str()).unwrap();
    assert_eq!(parsed.variants().map(|v| v.uri.to_string()).collect::<Vec<_>>(), ["video/index.m3u8"]);
    // The local copies define no variables (a player reading them has no query to take a token from) and
    // parse strictly, with nothing left undefined.
    let local_media = fs::read_to_string(dir.join("video/index.m3u8")).unwrap();
    for text in [&local_master, &local_media] {
        assert!(!text.contains("EXT-X-DEFINE") && !text.contains("{$"), "{text}");
    }
    assert_points_at_files(&dir.join("video"), &local_media);
    assert!(MediaPlaylist::parse(local_media.as_str()).unwrap().is_ended());
}

/// The media segment URIs a local playlist lists, and whether each is marked `EXT-X-GAP`.
fn listed(text: &str) -> Vec<(String, bool)> {
    let playlist = MediaPlaylist::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (0..playlist.segments().len())
        .map(|i| {
            let gap = playlist.segment_tags(i).iter().any(|t| matches!(t, MediaTag::Gap));
            (playlist.segments()[i].uri().to_owned(), gap)
        })
        .collect()
}

/// A download stores segments out of order; after each, the growing playlists list exactly the prefix of
/// settled entries (stored, or a recorded gap marked `EXT-X-GAP`), only ever by appending to what they
/// listed before, as EVENT playlists that start at the beginning, without an end until the bundle is
/// finished; a call with nothing new writes nothing.
#[test]
fn growing_playlists_list_the_settled_prefix_and_only_append() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let plan = BundlePlan::new(AssetInfo::new("a"))
        .rendition(fmp4_rendition("video", 8).primary(true))
        .rendition(ts_rendition("audio", RenditionKind::Audio, 8, 0, 4.0).language("en"));
    let bundle = Bundle::create(&dir, plan).unwrap();
    // The master exists before any segment, for a player started early.
    let master = fs::read_to_string(dir.join("master.m3u8")).unwrap();
    assert_eq!(MasterPlaylist::parse(master.as_str()).unwrap().variants().count(), 1);

    let ids = bundle.pending_segments();
    // An order a concurrent download might take: the init section late, later segments before earlier.
    let mut order: Vec<usize> = (0..ids.len()).collect();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for i in (1..order.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
    let gap = ids.iter().position(|id| id.rendition.as_str() == "audio" && id.media_sequence == 5).unwrap();

    let mut before: Vec<String> = vec![String::new(); 2];
    let mut grew = 0;
    for (step, &i) in order.iter().enumerate() {
        if i == gap {
            bundle.record_gap(&ids[i], "the origin answered 404").unwrap();
        } else {
            write_segment(&bundle, &ids[i], &segment_bytes(&ids[i], 4, 500)).unwrap();
        }
        let wrote = bundle.write_growing_playlists().unwrap();
        for (r, name) in ["video", "audio"].into_iter().enumerate() {
            let text = fs::read_to_string(dir.join(name).join("index.m3u8")).unwrap();
            let entries = listed(&text);
            // What the test expects: the prefix of the plan's media entries that are settled, an fMP4
            // entry only with its initialization section stored.
            let plan_ids: Vec<_> = ids.iter().filter(|id| id.rendition.as_str() == name).collect();
            let init_ok = plan_ids.iter().filter(|id| id.is_init()).all(|id| bundle.is_finished(id));
            let settled = |id: &&&stowage_bundle::SegmentId| {
                bundle.is_finished(id) || bundle.gaps().iter().any(|g| &g.segment == **id)
            };
            let expected = if init_ok {
                plan_ids.iter().filter(|id| !id.is_init()).take_while(settled).count()
            } else {
                0
            };
            assert_eq!(entries.len(), expected, "step {step}, {name}:\n{text}");
            for (uri, is_gap) in &entries {
                let id = plan_ids
                    .iter()
                    .find(|id| id.file_name(if name == "video" { "m4s" } else { "ts" }) == *uri);
                let id = id.unwrap_or_else(|| panic!("{uri} is not planned"));
                assert_eq!(*is_gap, !bundle.is_finished(id), "step {step}: {uri}");
                if !is_gap {
                    assert!(dir.join(name).join(uri).is_file(), "{uri}");
                }
            }
            assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"), "{text}");
            assert!(text.contains("#EXT-X-START:TIME-OFFSET=0\n"), "{text}");
            assert!(!text.contains("#EXT-X-ENDLIST"), "{text}");
            assert!(!MediaPlaylist::parse(text.as_str()).unwrap().is_ended());
            // Appended to, never changed: what a player read before is the start of what it reads now.
            assert!(text.starts_with(&before[r]), "step {step}, {name}: was\n{}\nnow\n{text}", before[r]);
            before[r] = text;
        }
        grew += usize::from(wrote);
        if !wrote {
            // Nothing new was settled at the front: the files were left alone.
            assert!(!bundle.write_growing_playlists().unwrap());
        }
    }
    assert!(grew > 2 && grew < order.len(), "{grew} rewrites for {} entries", order.len());
    assert_eq!(listed(&before[0]).len(), 8);
    assert_eq!(listed(&before[1]).iter().filter(|(_, gap)| *gap).count(), 1);
    bundle.mark_finished().unwrap();
    for name in ["video", "audio"] {
        let text = fs::read_to_string(dir.join(name).join("index.m3u8")).unwrap();
        assert!(MediaPlaylist::parse(text.as_str()).unwrap().is_ended(), "{text}");
        assert_eq!(listed(&text).len(), 8);
    }
}
