//! `verify` tells the truth about damage done to a bundle from outside: stored files cut short, deleted or
//! replaced by a link, journal records lost, the journal deleted. Each damaged entry is named, the report is
//! not ok, and a repair makes every one of them pending again.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use stowage_bundle::{Bundle, SegmentId, SegmentProblem};

/// A finished bundle of `count` segments of 4,000 bytes at `dir`, closed.
fn finished_bundle(dir: &Path, count: u64) -> Vec<SegmentId> {
    let bundle = Bundle::create(dir, simple_plan("a", count)).unwrap();
    let ids = bundle.pending_segments();
    for id in &ids {
        write_segment(&bundle, id, &segment_bytes(id, 9, 4000)).unwrap();
    }
    bundle.mark_finished().unwrap();
    ids
}

fn problems(report: &stowage_bundle::VerifyReport) -> Vec<(u64, &SegmentProblem)> {
    report.problems.iter().map(|(id, p)| (id.media_sequence, p)).collect()
}

fn manifest_finished(dir: &Path) -> bool {
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    json["finished"].as_bool().unwrap()
}

#[test]
fn truncated_deleted_and_linked_segments_are_named_every_time_until_repaired() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let ids = finished_bundle(&dir, 5);
    let outside = tmp.path().join("outside.ts");
    fs::write(&outside, segment_bytes(&ids[2], 9, 4000)).unwrap();
    let truncated = fs::OpenOptions::new().write(true).open(dir.join("video/seg-d0-s0.ts")).unwrap();
    truncated.set_len(100).unwrap();
    fs::remove_file(dir.join("video/seg-d0-s1.ts")).unwrap();
    // The same bytes, through a link out of the bundle: length and checksum match, the file type does not.
    fs::remove_file(dir.join("video/seg-d0-s2.ts")).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("video/seg-d0-s2.ts")).unwrap();

    for _ in 0..2 {
        // Opened twice: the damage found on opening is not forgotten by the next open.
        let bundle = Bundle::open(&dir).unwrap();
        let report = bundle.verify(false).unwrap();
        assert!(!report.is_ok());
        let found = problems(&report);
        assert_eq!(found.len(), 3, "{report:?}");
        assert!(matches!(found[0], (0, SegmentProblem::WrongLength { expected: 4000, actual: 100, .. })));
        assert!(matches!(found[1], (1, SegmentProblem::Missing { .. })));
        assert!(matches!(found[2], (2, SegmentProblem::NotAFile { .. })), "{found:?}");
        assert!(found[2].1.to_string().contains("seg-d0-s2.ts"), "{}", found[2].1);
        assert_eq!(report.checked, 2, "two intact segments re-hashed");
        assert!(!report.repaired);
    }

    let bundle = Bundle::open(&dir).unwrap();
    let report = bundle.verify(true).unwrap();
    assert!(report.repaired && report.problems.len() == 3);
    assert_eq!(bundle.pending_segments(), ids[..3].to_vec(), "every damaged entry is pending again");
    assert!(fs::symlink_metadata(dir.join("video/seg-d0-s2.ts")).is_err(), "the link is removed");
    assert_eq!(fs::read(&outside).unwrap().len(), 4000, "what the link pointed at is left alone");
    assert!(!dir.join("video/seg-d0-s0.ts").exists());
    drop(bundle);
    assert!(!manifest_finished(&dir), "the manifest says the download is not over");

    let bundle = Bundle::open(&dir).unwrap();
    let report = bundle.verify(false).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(bundle.pending_segments(), ids[..3].to_vec());
    for id in &ids[..3] {
        write_segment(&bundle, id, &segment_bytes(id, 9, 4000)).unwrap();
    }
    bundle.mark_finished().unwrap();
    assert!(bundle.verify(false).unwrap().is_ok());
}

#[test]
fn a_lost_journal_record_is_named_and_its_file_removed_on_repair() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let ids = finished_bundle(&dir, 4);
    // The journal loses the record of the third segment (a line cut out by a tool, a bad sector).
    let journal = fs::read_to_string(dir.join("journal.log")).unwrap();
    let kept: Vec<&str> =
        journal.lines().filter(|l| !l.contains(r#""media_sequence":2"#) || !l.contains("segment")).collect();
    assert_eq!(kept.len(), journal.lines().count() - 1);
    fs::write(dir.join("journal.log"), kept.join("\n") + "\n").unwrap();

    let bundle = Bundle::open(&dir).unwrap();
    let report = bundle.verify(false).unwrap();
    let found = problems(&report);
    assert_eq!(found.len(), 1, "{report:?}");
    assert!(matches!(found[0], (2, SegmentProblem::Unrecorded { .. })), "{found:?}");
    assert!(found[0].1.path().ends_with("video/seg-d0-s2.ts"));
    let report = bundle.verify(true).unwrap();
    assert!(report.repaired);
    assert!(!dir.join("video/seg-d0-s2.ts").exists());
    assert_eq!(bundle.pending_segments(), vec![ids[2].clone()]);
    assert!(bundle.verify(false).unwrap().is_ok());
}

#[test]
fn a_deleted_journal_is_named_with_every_entry_it_accounted_for() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let ids = finished_bundle(&dir, 4);
    fs::remove_file(dir.join("journal.log")).unwrap();
    // One file went with it: that entry has neither a file nor a record, and the manifest said the
    // download was over.
    fs::remove_file(dir.join("video/seg-d0-s3.ts")).unwrap();

    let bundle = Bundle::open(&dir).unwrap();
    assert!(bundle.open_report().journal_missing);
    let report = bundle.verify(false).unwrap();
    assert!(report.journal_missing && !report.is_ok());
    let found = problems(&report);
    assert_eq!(found.len(), 4, "{report:?}");
    for (seq, problem) in &found[..3] {
        assert!(matches!(problem, SegmentProblem::Unrecorded { .. }), "{seq}: {problem:?}");
    }
    assert!(matches!(found[3], (3, SegmentProblem::Unaccounted { .. })), "{found:?}");
    assert!(found[3].1.to_string().contains("the manifest said the download was over"));

    bundle.verify(true).unwrap();
    assert_eq!(bundle.pending_segments(), ids);
    drop(bundle);
    assert!(!manifest_finished(&dir));
    let bundle = Bundle::open(&dir).unwrap();
    assert!(bundle.verify(false).unwrap().is_ok());
}

#[test]
fn a_folder_where_a_segment_should_be_is_damage_and_repair_removes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let ids = finished_bundle(&dir, 2);
    let path = dir.join("video/seg-d0-s1.ts");
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    fs::write(path.join("x"), b"x").unwrap();
    let bundle = Bundle::open(&dir).unwrap();
    let report = bundle.verify(true).unwrap();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert!(!path.exists());
    assert_eq!(bundle.pending_segments(), vec![ids[1].clone()]);
}
