//! Media selection resolved against real master playlists, data-driven.
//!
//! Each `tests/selection/NAME.case` names a master playlist and a configuration; the resolved selection
//! (or the error) is rendered as text and compared with `NAME.expected`. Adding a case is adding a file;
//! `STOWAGE_BLESS=1 cargo test -p stowage-task --test selection` writes the expected files of new or
//! changed cases for review.
//!
//! A case file holds `key: value` lines (`#` starts a comment):
//!
//! * `master: assets/hls/…` is a playlist of this repository's committed fixtures; `master: peer/…` one of
//!   the peer corpus kept outside the repository (when it is missing those cases are skipped with the
//!   reason printed, unless `STOWAGE_REQUIRE_CORPUS` is set, in which case the test fails).
//! * `variant:` a variant qualifier in the text syntax of `VariantQualifier::from_str` (repeatable, in order).
//! * `audio:`, `subtitles:`, `closed-captions:`, `video:` selections as `MediaSelection::parse_list` reads them.
//! * `auxiliary` alone on a line starts an auxiliary content configuration.
//! * `optimize: no` lets each auxiliary content choose its variant on its own (the default, `yes`, lets
//!   one take the primary content's video).

use std::fmt::Write as _;
use std::path::PathBuf;

use stowage_playlist::{MasterPlaylist, ParserOptions};
use stowage_task::config::{ContentConfiguration, DownloadConfiguration, MediaKind, MediaSelection};
use stowage_task::selection::{ChosenBy, ResolvedSelection, resolve};
use stowage_testkit::Snapshots;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Reads a case into the master playlist's path and the configuration.
fn read_case(text: &str) -> (String, DownloadConfiguration) {
    let mut master = None;
    let mut optimize = true;
    let mut contents = vec![ContentConfiguration::new()];
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap().trim();
        if line.is_empty() {
            continue;
        }
        if line == "auxiliary" {
            contents.push(ContentConfiguration::new());
            continue;
        }
        let (key, value) =
            line.split_once(':').unwrap_or_else(|| panic!("line {}: expected key: value", number + 1));
        let value = value.trim();
        let content = contents.last_mut().unwrap();
        let selections = |kind| MediaSelection::parse_list(kind, value).expect("a valid selection");
        match key.trim() {
            "master" => master = Some(value.to_owned()),
            "optimize" => optimize = value == "yes",
            "variant" => content.variant_qualifiers.push(value.parse().expect("a valid qualifier")),
            "audio" => content.media_selections.extend(selections(MediaKind::Audio)),
            "subtitles" => content.media_selections.extend(selections(MediaKind::Subtitles)),
            "closed-captions" => content.media_selections.extend(selections(MediaKind::ClosedCaptions)),
            "video" => content.media_selections.extend(selections(MediaKind::Video)),
            other => panic!("line {}: unknown key {other:?}", number + 1),
        }
    }
    let mut contents = contents.into_iter();
    let mut config =
        DownloadConfiguration::new(contents.next().unwrap()).optimize_auxiliary_contents(optimize);
    for content in contents {
        config = config.auxiliary(content);
    }
    (master.expect("a master: line"), config)
}

fn render(resolved: &ResolvedSelection) -> String {
    let mut out = String::new();
    for (i, content) in resolved.contents.iter().enumerate() {
        let v = &content.variant;
        let label = if i == 0 { "primary".to_owned() } else { format!("auxiliary {i}") };
        let by = match v.chosen_by {
            ChosenBy::Qualifier(q) => format!("qualifier {q}"),
            ChosenBy::Automatic => "automatic".to_owned(),
            ChosenBy::PrimaryVideo => "the primary's video".to_owned(),
            other => format!("{other:?}"),
        };
        write!(out, "{label}: variant #{} {} BANDWIDTH={}", v.index, v.uri, v.bandwidth).unwrap();
        if let Some(avg) = v.average_bandwidth {
            write!(out, " AVERAGE-BANDWIDTH={avg}").unwrap();
        }
        if let Some(r) = v.resolution {
            write!(out, " RESOLUTION={r}").unwrap();
        }
        if let Some(c) = &v.codecs {
            write!(out, " CODECS={c:?}").unwrap();
        }
        if let Some(f) = v.frame_rate {
            write!(out, " FRAME-RATE={f}").unwrap();
        }
        writeln!(out, ", chosen by {by}").unwrap();
        for r in &content.renditions {
            write!(out, "  {} #{} group {:?} name {:?}", r.kind.as_str(), r.index, r.group_id, r.name)
                .unwrap();
            if let Some(l) = &r.language {
                write!(out, " language {l:?}").unwrap();
            }
            match &r.uri {
                Some(uri) => write!(out, " uri {uri}").unwrap(),
                None => write!(out, " (in the variant's stream)").unwrap(),
            }
            match r.selected_by {
                Some(s) => writeln!(out, ", selection {s}").unwrap(),
                None => writeln!(out, ", default audio").unwrap(),
            }
        }
    }
    out
}

#[test]
fn selection_cases() {
    let dir = manifest_dir().join("tests/selection");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "the case files are missing from {}", dir.display());
    let corpus = stowage_testkit::peer_corpus();
    let mut snapshots = Snapshots::new();
    let mut skipped = 0;
    for case in &cases {
        let (master_path, config) = read_case(&std::fs::read_to_string(case).unwrap());
        let path: PathBuf = if let Some(rest) = master_path.strip_prefix("peer/") {
            let Some(corpus) = &corpus else {
                skipped += 1;
                continue;
            };
            corpus.join(rest)
        } else if let Some(rest) = master_path.strip_prefix("assets/hls/") {
            stowage_testkit::assets().join(rest)
        } else {
            panic!("{}: master must start with assets/hls/ or peer/", case.display());
        };
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Playlists from the wild need the parser's tolerances (spaces after commas, say).
        let master = MasterPlaylist::parse_with(&text, &ParserOptions::lenient())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .playlist;
        let actual = match resolve(&config, &master) {
            Ok(resolved) => render(&resolved),
            Err(error) => format!("error: {error}\n"),
        };
        snapshots.check(&case.with_extension("expected"), &actual);
    }
    println!("{} selection cases, {skipped} skipped (peer corpus missing)", cases.len());
    snapshots.finish();
}
