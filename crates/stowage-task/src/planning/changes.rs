//! Whether a rendition's media playlist, read again to continue its bundle, is still the one the bundle was
//! planned from: a playlist regenerated between an interrupt and a resume (other segments, durations or
//! files at the same sequence numbers) cannot be completed into the old plan without mixing both versions.

use std::collections::HashMap;
use std::fmt::Write as _;

use stowage_bundle::{PlannedSegment, RenditionPlan, SegmentId, SegmentKind};

/// How many differences of one kind are named before the rest are counted.
const EXAMPLES: usize = 3;

/// What differs between the plan a bundle holds for a rendition (`old`) and the plan made from its media
/// playlist read now (`new`), in words, or an empty list when nothing that identifies a segment differs.
///
/// Compared are the entries' identities (discontinuity and media sequence numbers, byte ranges, whether
/// each is an initialization section), their durations, and the paths of their URIs. Hosts and queries are
/// not compared: signed URLs and CDNs change them while the content stays the same.
pub(crate) fn playlist_changes(old: &RenditionPlan, new: &RenditionPlan) -> Vec<String> {
    let mut changes = Vec::new();
    let count =
        |plan: &RenditionPlan, kind: SegmentKind| plan.segments.iter().filter(|s| s.kind == kind).count();
    for (kind, what) in [(SegmentKind::Media, "segments"), (SegmentKind::Init, "initialization sections")] {
        let (before, now) = (count(old, kind), count(new, kind));
        if before != now {
            changes.push(format!("{before} {what} before, {now} now"));
        }
    }
    let before: HashMap<SegmentId, &PlannedSegment> =
        old.segments.iter().map(|s| (s.id(&old.id), s)).collect();
    let now: HashMap<SegmentId, &PlannedSegment> = new.segments.iter().map(|s| (s.id(&new.id), s)).collect();
    let mut gone = Vec::new();
    let mut added = Vec::new();
    let mut durations = Vec::new();
    let mut uris = Vec::new();
    for s in &old.segments {
        if !now.contains_key(&s.id(&old.id)) {
            gone.push(describe(s));
        }
    }
    for s in &new.segments {
        let Some(was) = before.get(&s.id(&new.id)) else {
            added.push(describe(s));
            continue;
        };
        if (was.duration - s.duration).abs() > 1e-9 {
            durations.push(format!("{}: {:.3} s before, {:.3} s now", describe(s), was.duration, s.duration));
        }
        if uri_path(&was.uri) != uri_path(&s.uri) {
            uris.push(format!("{}: {} before, {} now", describe(s), uri_path(&was.uri), uri_path(&s.uri)));
        }
    }
    for (list, what) in [
        (gone, "no longer listed"),
        (added, "new"),
        (durations, "other durations"),
        (uris, "other files at the same sequence number"),
    ] {
        if list.is_empty() {
            continue;
        }
        let mut line = format!("{what}: {}", list[..list.len().min(EXAMPLES)].join(", "));
        if list.len() > EXAMPLES {
            let _ = write!(line, " and {} more", list.len() - EXAMPLES);
        }
        changes.push(line);
    }
    changes
}

/// An entry for people: its kind and sequence numbers.
fn describe(s: &PlannedSegment) -> String {
    let kind = match s.kind {
        SegmentKind::Init => "initialization section",
        _ => "segment",
    };
    let mut text = format!("{kind} {}", s.media_sequence);
    if s.discontinuity_sequence != 0 {
        let _ = write!(text, " (discontinuity {})", s.discontinuity_sequence);
    }
    if let Some(r) = s.byte_range {
        let _ = write!(text, " (bytes {}@{})", r.length, r.offset);
    }
    text
}

/// The path of a URI: no scheme, host, query or fragment.
fn uri_path(uri: &str) -> &str {
    let without_query = uri.split(['?', '#']).next().unwrap_or(uri);
    match without_query.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => without_query,
    }
}

#[cfg(test)]
mod tests {
    use stowage_bundle::{MediaFormat, RenditionId, RenditionKind};

    use super::*;

    fn plan(entries: &[(u64, f64, &str)]) -> RenditionPlan {
        let segments = entries
            .iter()
            .map(|(seq, duration, uri)| PlannedSegment::media(0, *seq, *duration, *uri))
            .collect();
        RenditionPlan::new(
            RenditionId::new("video").unwrap(),
            RenditionKind::Video,
            MediaFormat::Ts,
            "https://cdn.example/v.m3u8",
            "",
            segments,
        )
    }

    #[test]
    fn hosts_and_queries_may_change_the_rest_may_not() {
        let old =
            plan(&[(0, 2.0, "https://a.example/v/0.ts?sig=1"), (1, 2.0, "https://a.example/v/1.ts?sig=1")]);
        let resigned =
            plan(&[(0, 2.0, "https://b.example/v/0.ts?sig=2"), (1, 2.0, "https://b.example/v/1.ts?sig=2")]);
        assert!(playlist_changes(&old, &resigned).is_empty());

        let new = plan(&[
            (0, 2.0, "https://a.example/v/9.ts"),
            (1, 4.0, "https://a.example/v/1.ts"),
            (2, 2.0, "https://a.example/v/2.ts"),
        ]);
        let changes = playlist_changes(&old, &new);
        assert_eq!(
            changes,
            [
                "2 segments before, 3 now",
                "new: segment 2",
                "other durations: segment 1: 2.000 s before, 4.000 s now",
                "other files at the same sequence number: segment 0: /v/0.ts before, /v/9.ts now",
            ]
        );
    }

    #[test]
    fn long_lists_are_cut_to_a_few_examples() {
        let old: Vec<(u64, f64, &str)> = (0..10).map(|i| (i, 2.0, "a.ts")).collect();
        let new: Vec<(u64, f64, &str)> = (20..30).map(|i| (i, 2.0, "a.ts")).collect();
        let changes = playlist_changes(&plan(&old), &plan(&new));
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(changes[0], "no longer listed: segment 0, segment 1, segment 2 and 7 more");
    }
}
