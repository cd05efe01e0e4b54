//! The resolved view of a media playlist: per segment, everything a downloader needs, computed from the
//! tags in force at that point.

use std::borrow::Cow;

use crate::error::Error;
use crate::media::MediaPlaylist;
use crate::sequence::{map_byte_range, positions};
use crate::tags::MediaTag;
use crate::tags::attribute::{Key, KeyMethod, Map};
use crate::uri::resolve_uri;
use crate::value::{ByteRange, DateTime, Decimal};

/// A key in force for a segment.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ResolvedKey<'p> {
    /// The EXT-X-KEY tag.
    pub key: &'p Key<'p>,
    /// Its METHOD.
    pub method: KeyMethod,
    /// Its KEYFORMAT (`identity` by default).
    pub keyformat: &'p str,
    /// Its URI, resolved against the base URL when one was given.
    pub uri: Option<Cow<'p, str>>,
    /// The IV to use for this segment: the explicit IV, or the segment's media sequence number as a
    /// 128-bit big-endian integer.
    pub iv: [u8; 16],
    /// Whether the IV was written in the tag.
    pub iv_is_explicit: bool,
}

/// The media initialization section of a segment.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ResolvedMap<'p> {
    /// The EXT-X-MAP tag.
    pub map: &'p Map<'p>,
    /// Its URI, resolved against the base URL when one was given.
    pub uri: Cow<'p, str>,
    /// Its byte range with the offset made explicit (0 when not written).
    pub byte_range: Option<ByteRange>,
}

/// One segment with everything in force for it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ResolvedSegment<'p> {
    /// Index in the playlist, from 0.
    pub index: usize,
    /// Media sequence number: EXT-X-MEDIA-SEQUENCE, plus the segments an EXT-X-SKIP leaves out, plus the
    /// index.
    pub media_sequence: u64,
    /// Discontinuity sequence number: EXT-X-DISCONTINUITY-SEQUENCE plus the number of
    /// EXT-X-DISCONTINUITY tags written before the segment's URI, one before the first segment included
    /// (so that the numbers stay the same while a live playlist slides).
    pub discontinuity_sequence: u64,
    /// Whether an EXT-X-DISCONTINUITY precedes the segment.
    pub discontinuity: bool,
    /// Whether the segment is marked EXT-X-GAP.
    pub gap: bool,
    /// The URI, resolved against the base URL when one was given.
    pub uri: Cow<'p, str>,
    /// The URI as written.
    pub uri_as_written: &'p str,
    /// The #EXTINF duration, exact.
    pub duration: Decimal,
    /// The #EXTINF title.
    pub title: &'p str,
    /// Every key in force, one per KEYFORMAT, in the order they were given (empty when not encrypted).
    pub keys: Vec<ResolvedKey<'p>>,
    /// The media initialization section in force.
    pub map: Option<ResolvedMap<'p>>,
    /// The byte range with its offset resolved (an implicit offset follows on from the previous segment's
    /// sub-range of the same resource).
    pub byte_range: Option<ByteRange>,
    /// Start time in seconds from the start of the playlist.
    pub start: f64,
    /// The program date time: written, or extrapolated from the nearest written one.
    pub program_date_time: Option<DateTime>,
    /// EXT-X-BITRATE in force, in kbit/s.
    pub bitrate: Option<u64>,
}

/// The resolved view of a media playlist.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ResolvedMedia<'p> {
    /// The segments.
    pub segments: Vec<ResolvedSegment<'p>>,
    /// The sum of the segments' durations, in seconds.
    pub total_duration: f64,
}

impl MediaPlaylist<'_> {
    /// Computes the resolved view; URIs are resolved against `base_url` when given (the absolute URL
    /// the playlist was loaded from).
    pub fn resolve(&self, base_url: Option<&str>) -> Result<ResolvedMedia<'_>, Error> {
        resolve_media(self, base_url)
    }
}

fn resolve_media<'p>(pl: &'p MediaPlaylist<'p>, base_url: Option<&str>) -> Result<ResolvedMedia<'p>, Error> {
    {
        let abs = |u: &'_ str| -> Result<Option<String>, Error> {
            match base_url {
                Some(b) => resolve_uri(b, u).map(Some),
                None => Ok(None),
            }
        };
        // Keys in force, one per KEYFORMAT, with their URI already resolved.
        let mut keys: Vec<(&'p Key<'p>, Option<Cow<'p, str>>)> = Vec::new();
        let mut map: Option<ResolvedMap<'p>> = None;
        let mut bitrate = None;
        let mut elapsed: u128 = 0;
        let mut out = Vec::with_capacity(pl.segments().len());
        let mut first_pdt: Option<(usize, DateTime, u128)> = None;
        let mut last_pdt: Option<(DateTime, u128)> = None;

        let apply = |tag: &'p MediaTag<'p>,
                     keys: &mut Vec<(&'p Key<'p>, Option<Cow<'p, str>>)>|
         -> Result<(), Error> {
            if let MediaTag::Key(k) = tag {
                if k.method() == KeyMethod::None {
                    keys.clear();
                } else {
                    let uri = match k.uri() {
                        Some(u) => Some(abs(u)?.map_or(Cow::Borrowed(u), Cow::Owned)),
                        None => None,
                    };
                    match keys.iter_mut().find(|(old, _)| old.keyformat() == k.keyformat()) {
                        Some(slot) => *slot = (k, uri),
                        None => keys.push((k, uri)),
                    }
                }
            }
            Ok(())
        };
        for tag in pl.header() {
            apply(tag, &mut keys)?;
        }
        for ((i, seg), position) in pl.segments().iter().enumerate().zip(positions(pl)) {
            let tags = pl.segment_tags(i);
            let mut gap = false;
            let mut pdt = None;
            for tag in tags.iter() {
                apply(tag, &mut keys)?;
                match tag {
                    MediaTag::Gap => gap = true,
                    MediaTag::ProgramDateTime(d) => pdt = Some(*d),
                    MediaTag::Bitrate(b) => bitrate = Some(*b),
                    MediaTag::Map(m) => {
                        let Some(u) = m.uri() else { continue };
                        map = Some(ResolvedMap {
                            map: m,
                            uri: abs(u)?.map_or(Cow::Borrowed(u), Cow::Owned),
                            byte_range: map_byte_range(m.byte_range()),
                        });
                    }
                    _ => {}
                }
            }
            let byte_range = position.byte_range.map_err(|reason| Error::ByteRange { segment: i, reason })?;
            let msn = position.media_sequence;
            if let Some(d) = pdt {
                if first_pdt.is_none() {
                    first_pdt = Some((i, d, elapsed));
                }
                last_pdt = Some((d, elapsed));
            }
            let program_date_time = match (pdt, last_pdt) {
                (Some(d), _) => Some(d),
                (None, Some((d, at))) => Some(d.add_nanos((elapsed - at) as i128)),
                (None, None) => None,
            };
            let resolved_keys = keys
                .iter()
                .map(|(k, uri)| {
                    let explicit = k.iv();
                    ResolvedKey {
                        key: k,
                        method: k.method(),
                        keyformat: k.keyformat(),
                        uri: uri.clone(),
                        iv: explicit.unwrap_or_else(|| u128::from(msn).to_be_bytes()),
                        iv_is_explicit: explicit.is_some(),
                    }
                })
                .collect();
            let duration = seg.duration();
            out.push(ResolvedSegment {
                index: i,
                media_sequence: msn,
                discontinuity_sequence: position.discontinuity_sequence,
                discontinuity: position.discontinuity,
                gap,
                uri: abs(seg.uri())?.map_or_else(|| Cow::Borrowed(seg.uri()), Cow::Owned),
                uri_as_written: seg.uri(),
                duration,
                title: seg.title(),
                keys: resolved_keys,
                map: map.clone(),
                byte_range,
                start: elapsed as f64 / 1e9,
                program_date_time,
                bitrate,
            });
            elapsed += duration.to_nanos();
        }
        // Segments before the first written date get one extrapolated backwards.
        if let Some((first, d, at)) = first_pdt {
            for s in &mut out[..first] {
                let start = (s.start * 1e9).round() as i128;
                s.program_date_time = Some(d.add_nanos(start - at as i128));
            }
        }
        Ok(ResolvedMedia { segments: out, total_duration: elapsed as f64 / 1e9 })
    }
}
