//! MPEG-2 transport stream segments: what their timestamps are, and joining them into one stream.
//!
//! Only packet headers, adaptation fields and PES headers are looked at; payloads pass through untouched.
//! Two jobs:
//! - [`probe`] finds where a segment starts and ends on its 90 kHz clock (first and last presentation
//!   timestamps of each elementary stream), which is what lines up the parts of an asset that
//!   `EXT-X-DISCONTINUITY` separates;
//! - [`Retimer`] carries segments into one stream: it shifts PCR, PTS and DTS by the offset of their part,
//!   so that timestamps that restart after a discontinuity continue instead, and renumbers continuity
//!   counters where a gap or a discontinuity broke them, so that a demuxer sees one continuous stream
//!   rather than corrupt packets.

/// The size of a transport stream packet.
pub(crate) const PACKET: usize = 188;

const SYNC: u8 = 0x47;
const NULL_PID: usize = 0x1fff;

/// Timestamps are 33-bit counts of a 90 kHz clock.
pub(crate) const WRAP: u64 = 1 << 33;

/// The 90 kHz clock of PTS and DTS.
pub(crate) const CLOCK: f64 = 90_000.0;

/// `a - b` on the 33-bit clock, as the shortest signed distance.
pub(crate) fn ts_diff(a: u64, b: u64) -> i64 {
    let d = (a.wrapping_sub(b)) % WRAP;
    if d >= WRAP / 2 { d as i64 - WRAP as i64 } else { d as i64 }
}

/// The fields of one packet this module needs.
struct Header {
    pid: usize,
    payload_start: bool,
    has_payload: bool,
    cc: u8,
    /// Offset of the PCR in the packet, when there is one.
    pcr: Option<usize>,
    /// Offset of the payload.
    payload: usize,
}

fn header(p: &[u8]) -> Result<Header, String> {
    if p[0] != SYNC {
        return Err(format!("no sync byte (0x47) where a packet starts: found {:#04x}", p[0]));
    }
    let pid = usize::from(p[1] & 0x1f) << 8 | usize::from(p[2]);
    let control = (p[3] >> 4) & 3;
    let mut payload = 4;
    let mut pcr = None;
    if control & 2 != 0 {
        let len = usize::from(p[4]);
        if 5 + len > PACKET {
            return Err(format!("adaptation field of {len} bytes overruns its packet"));
        }
        if len >= 7 && p[5] & 0x10 != 0 {
            pcr = Some(6);
        }
        payload = 5 + len;
    }
    Ok(Header {
        pid,
        payload_start: p[1] & 0x40 != 0,
        has_payload: control & 1 != 0,
        cc: p[3] & 0x0f,
        pcr,
        payload,
    })
}

/// Stream ids whose PES packets carry no optional header (and so no timestamps).
fn has_pes_header(stream_id: u8) -> bool {
    !matches!(stream_id, 0xbc | 0xbe | 0xbf | 0xf0 | 0xf1 | 0xf2 | 0xf8 | 0xff)
}

/// Where a PES header starting at `pes` in packet `p` keeps its PTS and DTS (offsets into `p`).
fn pes_timestamps(p: &[u8], pes: usize) -> Result<(Option<usize>, Option<usize>), String> {
    let rest = &p[pes..];
    if rest.len() < 9 || rest[..3] != [0, 0, 1] || !has_pes_header(rest[3]) {
        return Ok((None, None));
    }
    let flags = rest[7] >> 6;
    let needed = match flags {
        2 => 14,
        3 => 19,
        _ => return Ok((None, None)),
    };
    if rest.len() < needed {
        return Err("a PES header is split across packets, which this export does not handle".to_owned());
    }
    let pts = Some(pes + 9);
    let dts = (flags == 3).then_some(pes + 14);
    Ok((pts, dts))
}

fn read_timestamp(b: &[u8]) -> u64 {
    (u64::from(b[0] >> 1) & 7) << 30
        | u64::from(b[1]) << 22
        | u64::from(b[2] >> 1) << 15
        | u64::from(b[3]) << 7
        | u64::from(b[4] >> 1)
}

fn write_timestamp(b: &mut [u8], ts: u64) {
    // The marker bits and the 4-bit prefix are kept as they were.
    b[0] = (b[0] & 0xf1) | ((ts >> 29) as u8 & 0x0e);
    b[1] = (ts >> 22) as u8;
    b[2] = ((ts >> 14) as u8 & 0xfe) | (b[2] & 1);
    b[3] = (ts >> 7) as u8;
    b[4] = ((ts << 1) as u8 & 0xfe) | (b[4] & 1);
}

fn read_pcr_base(b: &[u8]) -> u64 {
    u64::from(b[0]) << 25
        | u64::from(b[1]) << 17
        | u64::from(b[2]) << 9
        | u64::from(b[3]) << 1
        | u64::from(b[4] >> 7)
}

fn write_pcr_base(b: &mut [u8], base: u64) {
    b[0] = (base >> 25) as u8;
    b[1] = (base >> 17) as u8;
    b[2] = (base >> 9) as u8;
    b[3] = (base >> 1) as u8;
    b[4] = ((base & 1) as u8) << 7 | (b[4] & 0x7f);
}

/// Where a segment starts and ends on its 90 kHz clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extent {
    /// The earliest first PTS among its elementary streams.
    pub(crate) start: u64,
    /// The latest end among its elementary streams, on the same clock as `start` (it may be past the
    /// 33-bit wrap): a stream's last PTS plus the length of its last PES packet, which is the AAC frames it
    /// holds for ADTS audio (an encoder packs several into one PES packet, and the last one of a segment
    /// often holds fewer), else one frame (the smallest step between two PTS of that stream).
    pub(crate) end: u64,
}

#[derive(Debug, Clone, Copy)]
struct StreamTimes {
    pid: usize,
    first: u64,
    /// Latest PTS, relative to `first`.
    last: i64,
    /// The smallest positive step between consecutive PTS.
    step: Option<i64>,
    previous: i64,
    /// The packet where its last PES packet with a PTS starts, and the offset of that packet's payload.
    last_pes: (usize, usize),
}

/// Finds the extent of a whole segment. `None` when it holds no timestamp at all.
pub(crate) fn probe(data: &[u8]) -> Result<Option<Extent>, String> {
    check_length(data.len())?;
    let mut streams: Vec<StreamTimes> = Vec::new();
    for (n, p) in data.chunks_exact(PACKET).enumerate() {
        let at = |e: String| format!("byte {}: {e}", n * PACKET);
        let h = header(p).map_err(at)?;
        if !h.payload_start || !h.has_payload || h.payload >= PACKET {
            continue;
        }
        let (Some(pts), _) = pes_timestamps(p, h.payload).map_err(at)? else { continue };
        let pts = read_timestamp(&p[pts..]);
        match streams.iter_mut().find(|s| s.pid == h.pid) {
            None => streams.push(StreamTimes {
                pid: h.pid,
                first: pts,
                last: 0,
                step: None,
                previous: 0,
                last_pes: (n, h.payload),
            }),
            Some(s) => {
                s.last_pes = (n, h.payload);
                let rel = ts_diff(pts, s.first);
                let step = (rel - s.previous).abs();
                if step > 0 {
                    s.step = Some(s.step.map_or(step, |m| m.min(step)));
                }
                s.previous = rel;
                s.last = s.last.max(rel);
            }
        }
    }
    let Some(reference) = streams.first().map(|s| s.first) else { return Ok(None) };
    let start = streams.iter().map(|s| ts_diff(s.first, reference)).min().unwrap_or(0);
    let end = streams
        .iter()
        .map(|s| {
            let tail = adts_length(data, s).or(s.step).unwrap_or(0);
            ts_diff(s.first, reference) + s.last + tail
        })
        .max()
        .unwrap_or(0);
    let start_ts = (reference as i64 + start).rem_euclid(WRAP as i64) as u64;
    Ok(Some(Extent { start: start_ts, end: start_ts + (end - start) as u64 }))
}

/// The sampling rates of ADTS headers, by index.
const ADTS_RATES: [i64; 13] =
    [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/// The length, on the 90 kHz clock, of the AAC frames in stream `s`'s last PES packet, when its payload
/// is whole ADTS frames; `None` for anything else (video, other audio), whose length is then taken to be
/// one step.
fn adts_length(data: &[u8], s: &StreamTimes) -> Option<i64> {
    let (first, pes) = s.last_pes;
    let mut payload = Vec::new();
    for (n, p) in data.chunks_exact(PACKET).enumerate().skip(first) {
        let h = header(p).ok()?;
        if h.pid != s.pid || !h.has_payload || h.payload >= PACKET {
            continue;
        }
        if n == first {
            // The PES header: nine bytes and its optional fields.
            let start = pes + 9 + usize::from(*p.get(pes + 8)?);
            payload.extend_from_slice(p.get(start..)?);
        } else if h.payload_start {
            break;
        } else {
            payload.extend_from_slice(&p[h.payload..]);
        }
    }
    let (mut at, mut samples, mut rate) = (0, 0, 0);
    while at < payload.len() {
        let f = payload.get(at..at + 7)?;
        if f[0] != 0xff || f[1] & 0xf0 != 0xf0 {
            return None;
        }
        rate = *ADTS_RATES.get(usize::from((f[2] >> 2) & 0x0f))?;
        let len = usize::from(f[3] & 3) << 11 | usize::from(f[4]) << 3 | usize::from(f[5] >> 5);
        let frames = i64::from(f[6] & 3) + 1;
        if len < 7 {
            return None;
        }
        samples += frames * 1024;
        at += len;
    }
    (at == payload.len() && samples > 0).then(|| samples * 90_000 / rate)
}

fn check_length(len: usize) -> Result<(), String> {
    if !len.is_multiple_of(PACKET) {
        return Err(format!("{len} bytes is not a whole number of 188-byte transport stream packets"));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, Default)]
struct PidState {
    last_cc: Option<u8>,
    delta: u8,
    epoch: u32,
}

/// Carries transport stream segments into one stream (see the module documentation).
pub(crate) struct Retimer {
    pids: Vec<PidState>,
    /// Added to every PCR, PTS and DTS of the current segment, modulo 2^33.
    offset: u64,
    /// Incremented at each splice; a PID whose state is of an older epoch renumbers from its next packet.
    epoch: u32,
    /// Bytes of the current segment seen, for error messages.
    position: u64,
}

impl Retimer {
    pub(crate) fn new() -> Self {
        Self { pids: vec![PidState::default(); 8192], offset: 0, epoch: 0, position: 0 }
    }

    /// Starts a segment. `offset` (90 kHz ticks) is added to its timestamps; `splice` says that it does not
    /// follow the previous segment in the source (a gap or a discontinuity lies between them), so that
    /// continuity counters are made to continue.
    pub(crate) fn begin_segment(&mut self, offset: u64, splice: bool) {
        self.offset = offset % WRAP;
        if splice {
            self.epoch += 1;
        }
        self.position = 0;
    }

    /// Rewrites whole packets in place.
    pub(crate) fn process(&mut self, packets: &mut [u8]) -> Result<(), String> {
        check_length(packets.len())?;
        for p in packets.chunks_exact_mut(PACKET) {
            let at = |e: String| format!("byte {}: {e}", self.position);
            let h = header(p).map_err(at)?;
            if h.pid != NULL_PID {
                let state = &mut self.pids[h.pid];
                if state.epoch != self.epoch {
                    if let Some(last) = state.last_cc {
                        let expected = if h.has_payload { (last + 1) & 0x0f } else { last };
                        state.delta = expected.wrapping_sub(h.cc) & 0x0f;
                    }
                    state.epoch = self.epoch;
                }
                let cc = (h.cc + state.delta) & 0x0f;
                if state.delta != 0 {
                    p[3] = (p[3] & 0xf0) | cc;
                }
                state.last_cc = Some(cc);
            }
            if self.offset != 0 {
                if let Some(at_pcr) = h.pcr {
                    let base = read_pcr_base(&p[at_pcr..]);
                    write_pcr_base(&mut p[at_pcr..], (base + self.offset) % WRAP);
                }
                if h.payload_start && h.has_payload && h.payload < PACKET {
                    let (pts, dts) = pes_timestamps(p, h.payload).map_err(at)?;
                    for field in [pts, dts].into_iter().flatten() {
                        let ts = read_timestamp(&p[field..]);
                        write_timestamp(&mut p[field..], (ts + self.offset) % WRAP);
                    }
                }
            }
            self.position += PACKET as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A packet of `pid` with continuity counter `cc`; with `pts` (and `dts`), a PES start carrying them;
    /// with `pcr`, an adaptation field carrying it.
    pub(crate) fn packet(pid: u16, cc: u8, pts: Option<(u64, Option<u64>)>, pcr: Option<u64>) -> Vec<u8> {
        let mut p = vec![0xffu8; PACKET];
        p[0] = SYNC;
        p[1] = (pid >> 8) as u8 & 0x1f | if pts.is_some() { 0x40 } else { 0 };
        p[2] = pid as u8;
        let mut at = 4;
        if let Some(pcr) = pcr {
            p[3] = 0x30 | cc;
            p[4] = 7;
            p[5] = 0x10;
            p[6..12].fill(0);
            write_pcr_base(&mut p[6..], pcr);
            p[10] |= 0x7e;
            at = 12;
        } else {
            p[3] = 0x10 | cc;
        }
        if let Some((pts, dts)) = pts {
            let header = [0, 0, 1, 0xe0, 0, 0, 0x80, if dts.is_some() { 0xc0 } else { 0x80 }, 10];
            p[at..at + 9].copy_from_slice(&header);
            p[at + 9] = 0x31;
            p[at + 11] = 1;
            p[at + 13] = 1;
            write_timestamp(&mut p[at + 9..], pts);
            if let Some(dts) = dts {
                p[at + 14] = 0x11;
                p[at + 16] = 1;
                p[at + 18] = 1;
                write_timestamp(&mut p[at + 14..], dts);
            }
        }
        p
    }

    fn pts_of(p: &[u8]) -> (u64, Option<u64>) {
        let h = header(p).unwrap();
        let (pts, dts) = pes_timestamps(p, h.payload).unwrap();
        (read_timestamp(&p[pts.unwrap()..]), dts.map(|d| read_timestamp(&p[d..])))
    }

    #[test]
    fn timestamps_round_trip_through_their_bit_fields() {
        for ts in [0, 1, 126_000, WRAP - 1, 0x1_2345_6789] {
            let p = packet(256, 0, Some((ts, Some(ts ^ 0x5555))), Some(ts));
            assert_eq!(pts_of(&p), (ts, Some(ts ^ 0x5555)));
            assert_eq!(read_pcr_base(&p[6..]), ts);
        }
    }

    #[test]
    fn probe_finds_the_extent_across_streams() {
        let mut data = Vec::new();
        for k in 0..5u64 {
            data.extend(packet(256, k as u8, Some((126_000 + 3600 * k, None)), None));
            data.extend(packet(257, k as u8, Some((124_080 + 1920 * k, None)), None));
        }
        data.extend(packet(258, 0, None, None));
        let extent = probe(&data).unwrap().unwrap();
        assert_eq!(extent.start, 124_080);
        assert_eq!(extent.end, 126_000 + 3600 * 5);
        assert_eq!(probe(&packet(258, 0, None, None)).unwrap(), None);
        assert!(probe(&data[..100]).unwrap_err().contains("not a whole number"));
        let mut bad = data.clone();
        bad[PACKET] = 0;
        assert!(probe(&bad).unwrap_err().starts_with("byte 188: no sync byte"));
    }

    /// A packet of audio `pid` starting a PES packet at `pts` whose payload is `frames` ADTS frames (48 kHz,
    /// 20 bytes each), the rest of the packet stuffed in its adaptation field.
    fn adts_packet(pid: u16, cc: u8, pts: u64, frames: usize) -> Vec<u8> {
        let mut pes = vec![0, 0, 1, 0xc0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1];
        write_timestamp(&mut pes[9..], pts);
        for _ in 0..frames {
            let mut frame = vec![0xff, 0xf1, 0x4c, 0x80, 20 >> 3, (20 & 7) << 5 | 0x1f, 0xfc];
            frame.resize(20, 0x55);
            pes.extend(frame);
        }
        let stuffing = PACKET - 4 - pes.len();
        let mut p = vec![SYNC, 0x40 | (pid >> 8) as u8, pid as u8, 0x30 | cc, (stuffing - 1) as u8];
        if stuffing > 1 {
            p.push(0);
            p.resize(4 + stuffing, 0xff);
        }
        p.extend(pes);
        p
    }

    #[test]
    fn an_audio_segment_ends_with_the_frames_of_its_last_pes_packet() {
        // Two PES packets of eight AAC frames each, then one of three: the segment ends three frames after
        // the last PTS, not eight.
        let frame = 1920;
        let mut data = adts_packet(257, 0, 1000, 8);
        data.extend(adts_packet(257, 1, 1000 + 8 * frame, 8));
        data.extend(adts_packet(257, 2, 1000 + 16 * frame, 3));
        let extent = probe(&data).unwrap().unwrap();
        assert_eq!((extent.start, extent.end), (1000, 1000 + 19 * frame));
        // Video (no ADTS payload) still ends one step after its last PTS.
        let mut video = packet(256, 0, Some((0, None)), None);
        video.extend(packet(256, 1, Some((3600, None)), None));
        assert_eq!(probe(&video).unwrap().unwrap().end, 7200);
    }

    #[test]
    fn probe_unwraps_the_33_bit_clock() {
        let mut data = packet(256, 0, Some((WRAP - 3600, None)), None);
        data.extend(packet(256, 1, Some((0, None)), None));
        let extent = probe(&data).unwrap().unwrap();
        assert_eq!((extent.start, extent.end), (WRAP - 3600, WRAP + 3600));
    }

    #[test]
    fn retimer_shifts_timestamps_and_continues_counters_after_a_splice() {
        let mut retimer = Retimer::new();
        let mut first =
            [packet(256, 14, Some((1000, Some(900))), Some(900)), packet(256, 15, None, None)].concat();
        retimer.begin_segment(0, false);
        retimer.process(&mut first).unwrap();
        assert_eq!(first[3] & 0x0f, 14, "nothing changes before a splice");
        assert_eq!(pts_of(&first), (1000, Some(900)));
        // The next part restarts its clock and its counters.
        let mut next =
            [packet(256, 3, Some((500, Some(400))), Some(400)), packet(256, 4, None, None)].concat();
        retimer.begin_segment(WRAP - 100, true);
        retimer.process(&mut next).unwrap();
        assert_eq!(next[3] & 0x0f, 0, "continues from 15");
        assert_eq!(next[PACKET + 3] & 0x0f, 1);
        assert_eq!(pts_of(&next), (400, Some(300)));
        assert_eq!(read_pcr_base(&next[6..]), 300);
        // The renumbering holds for the rest of the part, without another splice.
        let mut more = packet(256, 5, None, None);
        retimer.begin_segment(0, false);
        retimer.process(&mut more).unwrap();
        assert_eq!(more[3] & 0x0f, 2);
    }
}
