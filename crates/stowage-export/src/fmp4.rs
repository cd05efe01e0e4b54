//! Fragmented MP4: reading a rendition's initialization section and fragments, and writing several
//! renditions as the tracks of one fragmented MP4 file.
//!
//! Boxes are decoded and encoded with the `mp4-atom` crate; media data (`mdat`) is streamed through without
//! being looked at. What is rewritten:
//! - `moov`: one `trak` per rendition, from its initialization section, with a new track id, the language
//!   (ISO 639-2/T) in `mdhd`, the name in `hdlr`, the default flag as `tkhd`'s enabled flag (the convention
//!   players and ffmpeg read), audio and subtitle tracks in alternate groups; empty edits dropped (their
//!   delay moves into the decode times); `mvex` with one `trex` per track and a `mehd` giving the duration.
//!   A rendition whose initialization section changes at a discontinuity gets one sample description per
//!   distinct section.
//! - each `moof`: the sequence number, the track id, the decode time (`tfdt`) shifted onto the export's
//!   timeline, the sample description index, and the data offsets (now relative to the `moof`, whose size
//!   may have changed); `styp`, `sidx` and `prft` are dropped (they describe the segment, not the file).
//!
//! A box that `mp4-atom` cannot represent is never dropped silently: the boxes of every container level that
//! is rewritten are listed before and after, and any difference is an error naming the box.

use std::io::{self, Cursor, Read, Write};

use mp4_atom::{
    Atom, Decode, Encode, FourCC, Ftyp, Header, Mdat, Mehd, Moof, Moov, Mvex, ReadFrom, Trak, Trex,
};

/// Fragments larger than this are refused rather than read into memory (a `moof` is a few kilobytes).
const MAX_MOOF_LEN: usize = 64 * 1024 * 1024;

/// Initialization sections larger than this are refused.
pub(crate) const MAX_INIT_LEN: u64 = 16 * 1024 * 1024;

/// The container boxes whose children are compared before and after decoding (see the module docs).
const CONTAINERS: [&[u8; 4]; 10] =
    [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"edts", b"dinf", b"moof", b"traf"];

/// Boxes whose contents are deliberately not carried: metadata of the tool that packaged the segments, and
/// padding.
const NOT_CARRIED: [&[u8; 4]; 4] = [b"udta", b"meta", b"free", b"skip"];

fn kind(k: &[u8; 4]) -> FourCC {
    FourCC::new(k)
}

/// The boxes of `bytes` (a sequence of boxes) and, below the container boxes, of their children, each as
/// its path from the top (`moov/trak/tkhd`). Boxes that are not carried are left out.
fn box_tree(bytes: &[u8], parent: &str, out: &mut Vec<String>) -> Result<(), String> {
    let mut cursor = Cursor::new(bytes);
    while (cursor.position() as usize) < bytes.len() {
        let start = cursor.position() as usize;
        let header = Header::decode(&mut cursor).map_err(|e| format!("box at byte {start}: {e}"))?;
        let body = cursor.position() as usize;
        let end = match header.size {
            Some(size) => body.checked_add(size).filter(|&e| e <= bytes.len()),
            None => Some(bytes.len()),
        }
        .ok_or_else(|| format!("box {} at byte {start} overruns its parent", header.kind))?;
        if !NOT_CARRIED.iter().any(|k| kind(k) == header.kind) {
            let path =
                if parent.is_empty() { header.kind.to_string() } else { format!("{parent}/{}", header.kind) };
            if CONTAINERS.iter().any(|k| kind(k) == header.kind) {
                box_tree(&bytes[body..end], &path, out)
                    .map_err(|e| format!("in {} at byte {start}: {e}", header.kind))?;
            }
            out.push(path);
        }
        cursor.set_position(end as u64);
    }
    Ok(())
}

/// Checks that encoding `decoded` keeps every box of `original` (see the module docs). The order of
/// sibling boxes may change (`mp4-atom` writes them in a fixed order), nothing else.
fn check_carried<T: Encode>(original: &[u8], decoded: &T) -> Result<(), String> {
    let mut encoded = Vec::new();
    decoded.encode(&mut encoded).map_err(|e| format!("cannot encode it again: {e}"))?;
    let (mut before, mut after) = (Vec::new(), Vec::new());
    box_tree(original, "", &mut before)?;
    box_tree(&encoded, "", &mut after)?;
    before.sort_unstable();
    after.sort_unstable();
    if before == after {
        return Ok(());
    }
    let mut lost = before.clone();
    for path in &after {
        if let Some(i) = lost.iter().position(|p| p == path) {
            lost.remove(i);
        }
    }
    Err(format!(
        "it holds boxes that this export cannot carry into the output ({})",
        if lost.is_empty() { "their layout changes".to_owned() } else { lost.join(", ") }
    ))
}

/// A rendition's initialization section.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Init {
    pub(crate) ftyp: Option<Ftyp>,
    pub(crate) moov: Moov,
}

impl Init {
    /// Reads an initialization section: `ftyp` and a `moov` with exactly one track.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut cursor = Cursor::new(bytes);
        let (mut ftyp, mut moov) = (None, None);
        while (cursor.position() as usize) < bytes.len() {
            let start = cursor.position() as usize;
            let header = Header::decode(&mut cursor).map_err(|e| format!("box at byte {start}: {e}"))?;
            let body = cursor.position() as usize;
            let end = header.size.map_or(bytes.len(), |s| body.saturating_add(s));
            if end > bytes.len() {
                return Err(format!("box {} at byte {start} runs past the end", header.kind));
            }
            let mut inner = &bytes[body..end];
            if header.kind == Ftyp::KIND {
                ftyp = Some(Ftyp::decode_body(&mut inner).map_err(|e| format!("ftyp: {e}"))?);
            } else if header.kind == Moov::KIND {
                let decoded = Moov::decode_body(&mut inner).map_err(|e| format!("moov: {e}"))?;
                check_carried(&bytes[start..end], &decoded).map_err(|e| format!("moov: {e}"))?;
                moov = Some(decoded);
            }
            cursor.set_position(end as u64);
        }
        let moov = moov.ok_or("no moov box: not an fMP4 initialization section")?;
        if moov.trak.len() != 1 {
            return Err(format!(
                "the initialization section holds {} tracks; an fMP4 rendition is exported track by track, one \
                 track each",
                moov.trak.len()
            ));
        }
        let init = Self { ftyp, moov };
        init.trex()?;
        if init.trak().mdia.mdhd.timescale == 0 {
            return Err("the track's timescale (mdhd) is 0".to_owned());
        }
        Ok(init)
    }

    pub(crate) fn trak(&self) -> &Trak {
        // `parse` accepts only a moov with exactly one track.
        &self.moov.trak[0]
    }

    fn trex(&self) -> Result<&Trex, String> {
        let id = self.trak().tkhd.track_id;
        self.moov.mvex.as_ref().and_then(|m| m.trex.iter().find(|t| t.track_id == id)).ok_or_else(|| {
            "no trex for the track: the initialization section is not for fragments".to_owned()
        })
    }

    pub(crate) fn timescale(&self) -> u32 {
        self.trak().mdia.mdhd.timescale
    }

    /// The presentation delay the edit list gives: empty edits (seconds), and the media time the first
    /// non-empty edit starts at (track ticks).
    fn edits(&self) -> (f64, i64) {
        let movie = f64::from(self.moov.mvhd.timescale.max(1));
        let mut empty = 0.0;
        if let Some(elst) = self.trak().edts.as_ref().and_then(|e| e.elst.as_ref()) {
            for entry in &elst.entries {
                match entry.media_time {
                    None => empty += entry.segment_duration as f64 / movie,
                    Some(t) => return (empty, i64::try_from(t).unwrap_or(i64::MAX)),
                }
            }
        }
        (empty, 0)
    }

    /// The presentation time in seconds of a sample decoded at `dts` with composition offset `cts`.
    fn presentation(&self, dts: u64, cts: i64) -> f64 {
        let (empty, media_time) = self.edits();
        empty + (dts as f64 + cts as f64 - media_time as f64) / f64::from(self.timescale())
    }

    /// The empty-edit delay in track ticks, which moves into the decode times.
    fn empty_edit_ticks(&self) -> u64 {
        (self.edits().0 * f64::from(self.timescale())).round() as u64
    }
}

/// Fragments with more samples than this are refused: a count that large is a damaged or hostile box, and
/// walking it would take minutes.
const MAX_FRAGMENT_SAMPLES: usize = 1 << 22;

fn check_sample_count(moof: &Moof) -> Result<(), String> {
    let count: usize = moof.traf.iter().flat_map(|t| &t.trun).map(|r| r.samples.len()).sum();
    if count > MAX_FRAGMENT_SAMPLES {
        return Err(format!("a fragment of {count} samples"));
    }
    Ok(())
}

/// The samples of a track fragment, with the defaults of `tfhd` and `trex` applied.
fn samples<'a>(
    traf: &'a mp4_atom::Traf,
    trex: &'a Trex,
) -> impl Iterator<Item = (usize, u32, u32, i64)> + 'a {
    let tfhd = &traf.tfhd;
    let duration = tfhd.default_sample_duration.unwrap_or(trex.default_sample_duration);
    let size = tfhd.default_sample_size.unwrap_or(trex.default_sample_size);
    traf.trun.iter().enumerate().flat_map(move |(run, trun)| {
        trun.samples
            .iter()
            .map(move |s| (run, s.duration.unwrap_or(duration), s.size.unwrap_or(size), s.cts.unwrap_or(0)))
    })
}

/// Where a segment's samples start and end on the presentation timeline, in seconds; `None` for a segment
/// without samples.
pub(crate) fn probe(init: &Init, segment: &[u8]) -> Result<Option<(f64, f64)>, String> {
    let trex = init.trex()?;
    let id = init.trak().tkhd.track_id;
    let mut cursor = Cursor::new(segment);
    let (mut start, mut end): (Option<f64>, Option<f64>) = (None, None);
    while (cursor.position() as usize) < segment.len() {
        let at = cursor.position() as usize;
        let header = Header::decode(&mut cursor).map_err(|e| format!("box at byte {at}: {e}"))?;
        let body = cursor.position() as usize;
        let stop = header.size.map_or(segment.len(), |s| body.saturating_add(s)).min(segment.len());
        if header.kind == Moof::KIND {
            let mut inner = &segment[body..stop];
            let moof = Moof::decode_body(&mut inner).map_err(|e| format!("moof at byte {at}: {e}"))?;
            check_sample_count(&moof).map_err(|e| format!("moof at byte {at}: {e}"))?;
            for traf in moof.traf.iter().filter(|t| t.tfhd.track_id == id) {
                let tfdt =
                    traf.tfdt.as_ref().ok_or_else(|| format!("moof at byte {at}: a traf without tfdt"))?;
                let mut dts = tfdt.base_media_decode_time;
                for (_, duration, _, cts) in samples(traf, trex) {
                    let s = init.presentation(dts, cts);
                    let e = s + f64::from(duration) / f64::from(init.timescale());
                    start = Some(start.map_or(s, |v| v.min(s)));
                    end = Some(end.map_or(e, |v| v.max(e)));
                    dts += u64::from(duration);
                }
            }
        }
        cursor.set_position(stop as u64);
    }
    Ok(start.zip(end))
}

/// A track of the output: its renditions' initialization sections and how to tag it.
#[derive(Debug, Clone)]
pub(crate) struct TrackSpec {
    /// The rendition's distinct initialization sections, in the order they come into force.
    pub(crate) inits: Vec<Init>,
    /// ISO 639-2/T code for `mdhd` (`und` when unknown).
    pub(crate) language: String,
    pub(crate) name: Option<String>,
    pub(crate) default: bool,
    /// Tracks of one alternate group are alternatives of each other (0: none).
    pub(crate) alternate_group: u16,
}

struct TrackState {
    id: u32,
    timescale: u32,
    /// Per initialization section of the rendition: its trex and the sample description index it maps to.
    inits: Vec<(Init, u32)>,
    /// The end of the latest sample written, in track ticks.
    end: u64,
    multiple_descriptions: bool,
}

/// What a moof is rewritten with.
struct Rewrite {
    /// The track id in the source.
    source_id: u32,
    /// The track id in the output.
    id: u32,
    /// Added to decode times.
    shift: i64,
    /// The end of the track's samples so far, for a fragment without tfdt.
    running: u64,
    /// The sample description index, when the track has several.
    description: Option<u32>,
}

/// Counts what a reader yields, for byte offsets in errors and data offsets.
struct Counting<R> {
    inner: R,
    position: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.position += n as u64;
        Ok(n)
    }
}

/// Writes a fragmented MP4 file (see the module docs).
pub(crate) struct Muxer<W> {
    out: W,
    position: u64,
    tracks: Vec<TrackState>,
    sequence: u32,
    /// Where the `mehd` duration (a 64-bit field, movie timescale 1000) is in the output.
    mehd_at: u64,
    buffer: Vec<u8>,
}

/// The movie timescale of the output: milliseconds.
const MOVIE_TIMESCALE: u32 = 1000;

/// What went wrong while muxing: the output failed, or the input is not what it should be.
#[derive(Debug)]
pub(crate) enum MuxError {
    Output(io::Error),
    Input(String),
}

impl From<io::Error> for MuxError {
    fn from(e: io::Error) -> Self {
        Self::Output(e)
    }
}

fn output(e: mp4_atom::Error) -> MuxError {
    match e {
        mp4_atom::Error::Io(e) => MuxError::Output(e),
        other => MuxError::Input(other.to_string()),
    }
}

impl<W: Write> Muxer<W> {
    /// Starts the file: writes `ftyp` and `moov` for `tracks`, with `duration` (seconds) as the
    /// provisional duration.
    pub(crate) fn new(mut out: W, tracks: Vec<TrackSpec>, duration: f64) -> Result<Self, MuxError> {
        let first = tracks.first().and_then(|t| t.inits.first()).ok_or(MuxError::Input("no track".into()))?;
        let ftyp = Ftyp {
            major_brand: FourCC::new(b"isom"),
            minor_version: 0x200,
            compatible_brands: vec![FourCC::new(b"isom"), FourCC::new(b"iso6"), FourCC::new(b"mp41")],
        };
        let mut moov = Moov { mvhd: first.moov.mvhd.clone(), ..Default::default() };
        moov.mvhd.timescale = MOVIE_TIMESCALE;
        moov.mvhd.duration = 0;
        moov.mvhd.next_track_id = tracks.len() as u32 + 1;
        let mut mvex =
            Mvex { mehd: Some(Mehd { fragment_duration: seconds_to_movie(duration) }), trex: Vec::new() };
        let mut states = Vec::with_capacity(tracks.len());
        for (n, spec) in tracks.into_iter().enumerate() {
            let id = n as u32 + 1;
            let base = spec
                .inits
                .first()
                .cloned()
                .ok_or(MuxError::Input(format!("track {id} has no initialization section")))?;
            let mut trak = base.trak().clone();
            trak.tkhd.track_id = id;
            trak.tkhd.duration = 0;
            trak.tkhd.enabled = spec.default;
            trak.tkhd.in_movie = true;
            trak.tkhd.alternate_group = spec.alternate_group;
            trak.mdia.mdhd.language = spec.language.clone();
            trak.mdia.mdhd.duration = 0;
            if let Some(name) = &spec.name {
                trak.mdia.hdlr.name = name.clone();
            }
            trak.meta = None;
            trak.udta = None;
            // Empty edits become part of the decode times (see `Init::empty_edit_ticks`); what is left of
            // the edit list is the composition shift of the first non-empty edit.
            if let Some(edts) = &mut trak.edts {
                if let Some(elst) = &mut edts.elst {
                    elst.entries.retain(|e| e.media_time.is_some());
                    for entry in &mut elst.entries {
                        entry.segment_duration = 0;
                    }
                    if elst.entries.iter().all(|e| e.media_time == Some(0)) {
                        edts.elst = None;
                    }
                }
                if edts.elst.is_none() {
                    trak.edts = None;
                }
            }
            let timescale = base.timescale();
            let mut inits = Vec::with_capacity(spec.inits.len());
            for init in spec.inits {
                if init.timescale() != timescale || init.trak().mdia.hdlr.handler != trak.mdia.hdlr.handler {
                    return Err(MuxError::Input(format!(
                        "a later initialization section of track {id} changes its timescale or handler; export \
                         to .mkv instead"
                    )));
                }
                let codecs = &init.trak().mdia.minf.stbl.stsd.codecs;
                let stsd = &mut trak.mdia.minf.stbl.stsd.codecs;
                let mut indices = Vec::new();
                for codec in codecs {
                    let index = match stsd.iter().position(|c| c == codec) {
                        Some(i) => i,
                        None => {
                            stsd.push(codec.clone());
                            stsd.len() - 1
                        }
                    };
                    indices.push(index as u32 + 1);
                }
                let trex = init.trex().map_err(MuxError::Input)?;
                let index = indices
                    .get(trex.default_sample_description_index.saturating_sub(1) as usize)
                    .copied()
                    .unwrap_or(1);
                inits.push((init, index));
            }
            let trex = base.trex().map_err(MuxError::Input)?;
            mvex.trex.push(Trex { track_id: id, default_sample_description_index: 1, ..trex.clone() });
            let multiple_descriptions = trak.mdia.minf.stbl.stsd.codecs.len() > 1;
            moov.trak.push(trak);
            states.push(TrackState { id, timescale, inits, end: 0, multiple_descriptions });
        }
        moov.mvex = Some(mvex);
        let mut head = Vec::new();
        ftyp.encode(&mut head).map_err(output)?;
        let moov_at = head.len();
        moov.encode(&mut head).map_err(output)?;
        // The mvex box follows mvhd in the encoded moov; mehd is its first child, a full box of version 1.
        let mut mvhd = Vec::new();
        moov.mvhd.encode(&mut mvhd).map_err(output)?;
        let mehd_at = moov_at + 8 + mvhd.len() + 8;
        if head.get(mehd_at + 4..mehd_at + 8) != Some(b"mehd".as_slice()) {
            return Err(MuxError::Input("the movie header was not laid out as expected".into()));
        }
        out.write_all(&head)?;
        Ok(Self {
            out,
            position: head.len() as u64,
            tracks: states,
            sequence: 0,
            mehd_at: (mehd_at + 12) as u64,
            buffer: vec![0; 1024 * 1024],
        })
    }

    /// Copies the fragments of one segment of track `track` (an index into the specs), whose rendition's
    /// initialization section in force is `init` (an index into its `inits`), adding `shift` track ticks
    /// to every decode time. `len` is the segment's length. Returns the bytes read.
    pub(crate) fn write_segment<R: Read>(
        &mut self,
        track: usize,
        init: usize,
        shift: i64,
        reader: R,
        len: u64,
    ) -> Result<(), MuxError> {
        let mut input = Counting { inner: reader, position: 0 };
        let state = &self.tracks[track];
        let (source_init, description) = (&state.inits[init].0, state.inits[init].1);
        let source_id = source_init.trak().tkhd.track_id;
        let trex = source_init.trex().map_err(MuxError::Input)?.clone();
        let shift = shift + source_init.empty_edit_ticks() as i64;
        let (id, multiple) = (state.id, state.multiple_descriptions);
        loop {
            let at = input.position;
            let Some(header) = <Option<Header>>::read_from(&mut input).map_err(|e| input_error(at, e))?
            else {
                break;
            };
            let body = input.position;
            if header.kind == Moof::KIND {
                let size =
                    header.size.ok_or_else(|| MuxError::Input(format!("moof at byte {at} has no size")))?;
                if size > MAX_MOOF_LEN {
                    return Err(MuxError::Input(format!("moof at byte {at} is {size} bytes long")));
                }
                let mut raw = vec![0; size];
                input.read_exact(&mut raw).map_err(|e| MuxError::Input(format!("moof at byte {at}: {e}")))?;
                let moof = Moof::decode_body(&mut raw.as_slice()).map_err(|e| input_error(at, e))?;
                check_sample_count(&moof).map_err(|e| MuxError::Input(format!("moof at byte {at}: {e}")))?;
                let mut whole = Vec::with_capacity(size + 16);
                Header { kind: Moof::KIND, size: Some(size) }.encode(&mut whole).map_err(output)?;
                whole.extend_from_slice(&raw);
                check_carried(&whole, &moof)
                    .map_err(|e| MuxError::Input(format!("moof at byte {at}: {e}")))?;
                let at_mdat = input.position;
                let mdat = <Option<Header>>::read_from(&mut input).map_err(|e| input_error(at_mdat, e))?;
                let mdat = mdat.filter(|h| h.kind == Mdat::KIND).ok_or_else(|| {
                    MuxError::Input(format!("the moof at byte {at} is not followed by its mdat"))
                })?;
                let payload_at = input.position;
                let payload = match mdat.size {
                    Some(size) => size as u64,
                    None => len.saturating_sub(payload_at),
                };
                let running = self.tracks[track].end;
                let (moof, end) = self.rewrite(
                    moof,
                    Rewrite { source_id, id, shift, running, description: multiple.then_some(description) },
                    &trex,
                    at,
                    payload_at,
                    payload,
                )?;
                let state = &mut self.tracks[track];
                state.end = state.end.max(end);
                let mut head = moof;
                let mdat_header = Header { kind: Mdat::KIND, size: Some(payload as usize) };
                mdat_header.encode(&mut head).map_err(output)?;
                self.out.write_all(&head)?;
                self.position += head.len() as u64;
                self.copy(&mut input, payload).map_err(|e| match e {
                    MuxError::Input(e) => MuxError::Input(format!("mdat at byte {at_mdat}: {e}")),
                    other => other,
                })?;
            } else if header.kind == Mdat::KIND {
                return Err(MuxError::Input(format!("an mdat at byte {at} without a moof before it")));
            } else {
                // styp, sidx, prft, emsg, free...: they describe the segment, not the file.
                let size = match header.size {
                    Some(size) => size as u64,
                    None => len.saturating_sub(body),
                };
                io::copy(&mut (&mut input).take(size), &mut io::sink())
                    .map_err(|e| MuxError::Input(format!("box {} at byte {at}: {e}", header.kind)))?;
            }
        }
        if input.position != len {
            return Err(MuxError::Input(format!("read {} bytes of a {len}-byte segment", input.position)));
        }
        Ok(())
    }

    /// Rewrites a moof for the output (see the module docs); returns it encoded, and the end of its samples
    /// in track ticks.
    fn rewrite(
        &mut self,
        mut moof: Moof,
        how: Rewrite,
        trex: &Trex,
        moof_at: u64,
        payload_at: u64,
        payload: u64,
    ) -> Result<(Vec<u8>, u64), MuxError> {
        let Rewrite { source_id, id, shift, running, description } = how;
        let bad = |e: String| MuxError::Input(format!("moof at byte {moof_at}: {e}"));
        self.sequence += 1;
        moof.mfhd.sequence_number = self.sequence;
        if moof.traf.iter().any(|t| t.tfhd.track_id != source_id) {
            return Err(bad("a traf of another track than the initialization section's".into()));
        }
        let mut end = 0;
        // Where each run's samples are in the input, relative to the mdat payload.
        let mut positions: Vec<Vec<u64>> = Vec::new();
        let mut previous_end = moof_at;
        for (n, traf) in moof.traf.iter_mut().enumerate() {
            if traf.senc.is_some() || !traf.saio.is_empty() {
                return Err(bad(
                    "the samples are protected with Common Encryption, which export cannot decrypt".into(),
                ));
            }
            if traf.tfhd.base_data_offset.is_some() {
                return Err(bad(
                    "tfhd gives an absolute base data offset, which export does not handle".into()
                ));
            }
            let base = if traf.tfhd.default_base_is_moof || n == 0 { moof_at } else { previous_end };
            let mut runs = Vec::with_capacity(traf.trun.len());
            let mut run_end = base;
            let tfhd = &traf.tfhd;
            let size_default = tfhd.default_sample_size.unwrap_or(trex.default_sample_size);
            for trun in &traf.trun {
                let start = match trun.data_offset {
                    Some(offset) => base
                        .checked_add_signed(i64::from(offset))
                        .ok_or_else(|| bad("negative data offset".into()))?,
                    None => run_end,
                };
                let bytes: u64 = trun.samples.iter().map(|s| u64::from(s.size.unwrap_or(size_default))).sum();
                if start < payload_at || start + bytes > payload_at + payload {
                    return Err(bad("a run's samples lie outside the mdat that follows the moof".into()));
                }
                runs.push(start - payload_at);
                run_end = start + bytes;
            }
            previous_end = run_end;
            positions.push(runs);
            // Decode time and end; a fragment without tfdt follows the track's previous one.
            let decode = match &traf.tfdt {
                Some(tfdt) => tfdt.base_media_decode_time.checked_add_signed(shift).ok_or_else(|| {
                    bad("the decode time would be negative on the export's timeline".into())
                })?,
                None => running,
            };
            traf.tfdt = Some(mp4_atom::Tfdt { base_media_decode_time: decode });
            let duration: u64 = samples(traf, trex).map(|(_, d, _, _)| u64::from(d)).sum();
            end = end.max(decode + duration);
            // Track id, defaults made explicit (the output's trex is the first section's), description.
            let tfhd = &mut traf.tfhd;
            tfhd.track_id = id;
            tfhd.default_base_is_moof = true;
            tfhd.default_sample_duration.get_or_insert(trex.default_sample_duration);
            tfhd.default_sample_size.get_or_insert(trex.default_sample_size);
            tfhd.default_sample_flags.get_or_insert(trex.default_sample_flags);
            if let Some(d) = description {
                tfhd.sample_description_index = Some(d);
            }
        }
        // Data offsets are relative to the moof; its encoded size does not depend on their values.
        let mdat_header = if payload + 8 > u64::from(u32::MAX) { 16 } else { 8 };
        for _pass in 0..2 {
            let mut encoded = Vec::new();
            moof.encode(&mut encoded).map_err(output)?;
            let moof_size = encoded.len() as u64;
            let mut changed = false;
            for (traf, runs) in moof.traf.iter_mut().zip(&positions) {
                for (trun, at) in traf.trun.iter_mut().zip(runs) {
                    let offset = i32::try_from(moof_size + mdat_header + at)
                        .map_err(|_| bad("a data offset does not fit 32 bits".into()))?;
                    changed |= trun.data_offset != Some(offset);
                    trun.data_offset = Some(offset);
                }
            }
            if !changed {
                return Ok((encoded, end));
            }
        }
        let mut encoded = Vec::new();
        moof.encode(&mut encoded).map_err(output)?;
        Ok((encoded, end))
    }

    fn copy<R: Read>(&mut self, input: &mut R, mut remaining: u64) -> Result<(), MuxError> {
        while remaining > 0 {
            let want = self.buffer.len().min(usize::try_from(remaining).unwrap_or(usize::MAX));
            let n = input.read(&mut self.buffer[..want]).map_err(|e| MuxError::Input(e.to_string()))?;
            if n == 0 {
                return Err(MuxError::Input(format!("the segment ends {remaining} bytes early")));
            }
            self.out.write_all(&self.buffer[..n])?;
            self.position += n as u64;
            remaining -= n as u64;
        }
        Ok(())
    }

    /// The timescale of track `track`.
    pub(crate) fn timescale(&self, track: usize) -> u32 {
        self.tracks[track].timescale
    }

    /// The duration written so far, in seconds: the end of the latest sample of any track.
    pub(crate) fn duration(&self) -> f64 {
        self.tracks.iter().map(|t| t.end as f64 / f64::from(t.timescale)).fold(0.0, f64::max)
    }

    /// Where the `mehd` duration field is, and its value for the duration written, for a caller that can
    /// seek back and correct the provisional duration.
    pub(crate) fn duration_patch(&self) -> (u64, [u8; 8]) {
        (self.mehd_at, seconds_to_movie(self.duration()).to_be_bytes())
    }
}

/// Sets the enabled flag of each track of a finished (not fragmented) MP4 file, in track order: ffmpeg
/// enables the first track of every kind when none is marked default, which would turn on subtitles that the
/// source does not turn on. Only the flag bit changes, in place. Errors name what was not as expected.
pub(crate) fn set_enabled<F: Read + Write + io::Seek>(file: &mut F, enabled: &[bool]) -> io::Result<()> {
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
    let end = file.seek(io::SeekFrom::End(0))?;
    let mut at = 0;
    while at < end {
        file.seek(io::SeekFrom::Start(at))?;
        let header = <Option<Header>>::read_from(file).map_err(|e| invalid(e.to_string()))?;
        let Some(header) = header else { break };
        let body = file.stream_position()?;
        let size = header.size.map_or(end - body, |s| s as u64);
        if header.kind != Moov::KIND {
            at = body + size;
            continue;
        }
        if size > 256 * 1024 * 1024 {
            return Err(invalid(format!("a moov of {size} bytes")));
        }
        let mut moov = vec![0; size as usize];
        file.read_exact(&mut moov)?;
        let mut flags = Vec::new();
        for (kind, start, stop) in children(&moov).map_err(invalid)? {
            if kind != FourCC::new(b"trak") {
                continue;
            }
            let (_, tkhd, _) = children(&moov[start..stop])
                .map_err(invalid)?
                .into_iter()
                .find(|(k, _, _)| *k == FourCC::new(b"tkhd"))
                .ok_or_else(|| invalid("a trak without tkhd".into()))?;
            // A full box: one byte of version, then three of flags, the enabled flag being bit 0 of the last.
            flags.push(body + (start + tkhd + 3) as u64);
        }
        if flags.len() < enabled.len() {
            return Err(invalid(format!("{} tracks where {} were expected", flags.len(), enabled.len())));
        }
        for (offset, on) in flags.into_iter().zip(enabled) {
            let mut byte = [0u8];
            file.seek(io::SeekFrom::Start(offset))?;
            file.read_exact(&mut byte)?;
            byte[0] = if *on { byte[0] | 1 } else { byte[0] & !1 };
            file.seek(io::SeekFrom::Start(offset))?;
            file.write_all(&byte)?;
        }
        return Ok(());
    }
    Err(invalid("no moov box".into()))
}

/// The boxes in `bytes`: (kind, body start, body end).
fn children(bytes: &[u8]) -> Result<Vec<(FourCC, usize, usize)>, String> {
    let mut cursor = Cursor::new(bytes);
    let mut out = Vec::new();
    while (cursor.position() as usize) < bytes.len() {
        let start = cursor.position() as usize;
        let header = Header::decode(&mut cursor).map_err(|e| format!("box at byte {start}: {e}"))?;
        let body = cursor.position() as usize;
        let end = header.size.map_or(bytes.len(), |s| body.saturating_add(s));
        if end > bytes.len() {
            return Err(format!("box {} at byte {start} overruns its parent", header.kind));
        }
        out.push((header.kind, body, end));
        cursor.set_position(end as u64);
    }
    Ok(out)
}

fn seconds_to_movie(seconds: f64) -> u64 {
    (seconds.max(0.0) * f64::from(MOVIE_TIMESCALE)).round() as u64
}

fn input_error(at: u64, e: mp4_atom::Error) -> MuxError {
    match e {
        mp4_atom::Error::Io(e) if e.kind() != io::ErrorKind::UnexpectedEof => {
            MuxError::Input(format!("byte {at}: {e}"))
        }
        other => MuxError::Input(format!("box at byte {at}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn box_tree_lists_containers_and_leaves_out_metadata() {
        let mut bytes = Vec::new();
        let mut moov = Moov::default();
        moov.trak.push(Trak::default());
        moov.encode(&mut bytes).unwrap();
        let mut tree = Vec::new();
        box_tree(&bytes, "", &mut tree).unwrap();
        assert!(tree.contains(&"moov".to_owned()));
        assert!(tree.contains(&"moov/trak".to_owned()));
        assert!(tree.contains(&"moov/trak/tkhd".to_owned()));
        // A box mp4-atom does not know is reported, not dropped.
        let unknown = [0, 0, 0, 12, b'w', b'h', b'a', b't', 1, 2, 3, 4];
        let mut with_unknown = bytes.clone();
        with_unknown.extend_from_slice(&unknown);
        let size = (with_unknown.len() as u32).to_be_bytes();
        with_unknown[..4].copy_from_slice(&size);
        let decoded = Moov::decode(&mut with_unknown.as_slice()).unwrap();
        let e = check_carried(&with_unknown, &decoded).unwrap_err();
        assert!(e.contains("moov/what"), "{e}");
        assert!(check_carried(&bytes, &moov).is_ok());
    }

    fn fixture(path: &str) -> Vec<u8> {
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/assets/hls/cmaf").join(path))
            .unwrap()
    }

    /// The boxes of a file: (kind, body).
    fn top_level(bytes: &[u8]) -> Vec<(FourCC, &[u8])> {
        children(bytes).unwrap().into_iter().map(|(k, a, b)| (k, &bytes[a..b])).collect()
    }

    #[test]
    fn two_renditions_become_two_tracks_with_their_samples_where_the_offsets_say() {
        let video = Init::parse(&fixture("video0/init.mp4")).unwrap();
        let audio = Init::parse(&fixture("audio-fr/init.mp4")).unwrap();
        let spec = |init: Init, language: &str, default: bool, group: u16| TrackSpec {
            inits: vec![init],
            language: language.into(),
            name: Some(format!("{language} track")),
            default,
            alternate_group: group,
        };
        let tracks = vec![spec(video, "und", true, 0), spec(audio, "fra", false, 1)];
        let mut out = Vec::new();
        let mut muxer = Muxer::new(&mut out, tracks, 2.0).unwrap();
        let (v, a) = (fixture("video0/seg001.m4s"), fixture("audio-fr/seg001.m4s"));
        // Shift the video back by its 10 s of media time, the audio by 10 s less its priming.
        muxer.write_segment(0, 0, -128_000, v.as_slice(), v.len() as u64).unwrap();
        muxer.write_segment(1, 0, -478_976, a.as_slice(), a.len() as u64).unwrap();
        assert!((muxer.duration() - 4.0107).abs() < 1e-3, "{}", muxer.duration());
        let (at, patch) = muxer.duration_patch();
        drop(muxer);
        out[at as usize..at as usize + 8].copy_from_slice(&patch);

        let boxes = top_level(&out);
        let kinds: Vec<String> = boxes.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(kinds, ["ftyp", "moov", "moof", "mdat", "moof", "mdat"]);
        let moov = Moov::decode_body(&mut &*boxes[1].1).unwrap();
        assert_eq!(moov.trak.len(), 2);
        assert_eq!(moov.trak[1].mdia.mdhd.language, "fra");
        assert_eq!(moov.trak[1].mdia.hdlr.name, "fra track");
        assert!(moov.trak[0].tkhd.enabled && !moov.trak[1].tkhd.enabled);
        assert_eq!(moov.trak[1].tkhd.alternate_group, 1);
        // The audio fragment ends last: 2 x 96,256 samples at 48 kHz.
        assert_eq!(moov.mvex.as_ref().unwrap().mehd.as_ref().unwrap().fragment_duration, 4011);

        // Each run's data offset points, from its moof, at the bytes its input's offset pointed at.
        let mut position = boxes[0].1.len() + 8 + boxes[1].1.len() + 8;
        for (n, input) in [&v, &a].into_iter().enumerate() {
            let moof_body = boxes[2 + 2 * n].1;
            let moof = Moof::decode_body(&mut &*moof_body).unwrap();
            let traf = &moof.traf[0];
            assert_eq!(traf.tfhd.track_id, n as u32 + 1);
            assert_eq!(moof.mfhd.sequence_number, n as u32 + 1);
            let tfdt = traf.tfdt.as_ref().unwrap().base_media_decode_time;
            assert_eq!(tfdt, if n == 0 { 25_600 } else { 96_256 }, "two seconds in");
            let first = traf.trun[0].data_offset.unwrap() as usize;
            let size = traf.trun[0].samples.get(0).unwrap().size.unwrap() as usize;
            let written = &out[position + first..position + first + size];
            let input_boxes = top_level(input);
            let (_, input_moof) = input_boxes.iter().find(|(k, _)| *k == Moof::KIND).unwrap();
            let source = Moof::decode_body(&mut &**input_moof).unwrap();
            let input_moof_at = input.len()
                - input_boxes
                    .iter()
                    .skip_while(|(k, _)| *k != Moof::KIND)
                    .map(|(_, b)| b.len() + 8)
                    .sum::<usize>();
            let from = input_moof_at + source.traf[0].trun[0].data_offset.unwrap() as usize;
            assert_eq!(written, &input[from..from + size], "track {n}: the first sample");
            position += moof_body.len() + 8 + boxes[3 + 2 * n].1.len() + 8;
        }
    }

    #[test]
    fn an_init_section_with_two_tracks_is_refused() {
        let mut moov = Moov::default();
        moov.trak.push(Trak::default());
        moov.trak.push(Trak::default());
        let mut bytes = Vec::new();
        moov.encode(&mut bytes).unwrap();
        assert!(Init::parse(&bytes).unwrap_err().contains("2 tracks"));
        assert!(Init::parse(b"\0\0\0\x08free").unwrap_err().contains("no moov"));
    }
}
