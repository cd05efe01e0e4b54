//! The first presentation time of a media segment, in 90 kHz units: where a player's timeline starts, to
//! which WebVTT `X-TIMESTAMP-MAP` values are relative. Plain functions on bytes.

use stowage_bundle::MediaFormat;

/// MPEG timestamps are 33-bit numbers of a 90 kHz clock.
pub(crate) const PTS_MODULO: u64 = 1 << 33;

/// The first presentation time in a segment (with its initialization section, for fMP4), if the format
/// carries one that can be read: MPEG-TS (the earliest first PES timestamp of its streams), fMP4 (the
/// earliest `tfdt` base decode time, scaled to 90 kHz), packed audio (the ID3 `PRIV` transport stream
/// timestamp). `None` for anything else, including encrypted segments.
pub(crate) fn first_pts(format: MediaFormat, segment: &[u8], init: Option<&[u8]>) -> Option<u64> {
    match format {
        MediaFormat::Ts => ts_first_pts(segment),
        MediaFormat::Fmp4 => fmp4_first_pts(init?, segment),
        MediaFormat::Aac | MediaFormat::Ac3 | MediaFormat::Eac3 | MediaFormat::Mp3 => id3_timestamp(segment),
        _ => None,
    }
}

/// The smallest PTS among the first PES packet of each elementary stream.
fn ts_first_pts(data: &[u8]) -> Option<u64> {
    const PACKET: usize = 188;
    let mut seen: Vec<u16> = Vec::new();
    let mut first: Option<u64> = None;
    for packet in data.chunks_exact(PACKET).take(4096) {
        if packet[0] != 0x47 {
            return first;
        }
        let start = packet[1] & 0x40 != 0;
        let pid = u16::from(packet[1] & 0x1f) << 8 | u16::from(packet[2]);
        let control = (packet[3] >> 4) & 0x3;
        if !start || control & 0x1 == 0 || seen.contains(&pid) {
            continue;
        }
        let offset = if control == 0x3 { 5 + usize::from(packet[4]) } else { 4 };
        let Some(pes) = packet.get(offset..) else { continue };
        // A PES packet of an audio or video stream (or private stream 1) with a PTS.
        if pes.len() < 14 || pes[..3] != [0, 0, 1] {
            continue;
        }
        let stream = pes[3];
        if !matches!(stream, 0xC0..=0xEF | 0xBD) || pes[7] & 0x80 == 0 {
            continue;
        }
        seen.push(pid);
        let p = &pes[9..14];
        let pts = (u64::from(p[0] >> 1) & 0x7) << 30
            | u64::from(p[1]) << 22
            | u64::from(p[2] >> 1) << 15
            | u64::from(p[3]) << 7
            | u64::from(p[4] >> 1);
        first = Some(first.map_or(pts, |f: u64| f.min(pts)));
    }
    first
}

/// ISO BMFF boxes at the top level of `data`: (type, payload).
fn boxes(data: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.len() < 8 {
            return None;
        }
        let size = u32::from_be_bytes(rest[..4].try_into().ok()?) as u64;
        let kind = &rest[4..8];
        let (header, size) = match size {
            1 => (16, u64::from_be_bytes(rest.get(8..16)?.try_into().ok()?)),
            0 => (8, rest.len() as u64),
            n => (8, n),
        };
        let size = usize::try_from(size).ok().filter(|s| *s >= header && *s <= rest.len())?;
        let payload = &rest[header..size];
        rest = &rest[size..];
        Some((kind, payload))
    })
}

fn child<'a>(data: &'a [u8], kind: &[u8]) -> Option<&'a [u8]> {
    boxes(data).find(|(k, _)| *k == kind).map(|(_, p)| p)
}

fn be_u32(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?)))
}

fn be_u64(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?))
}

/// The earliest `tfdt` of the segment's track fragments, in 90 kHz units, using each track's `mdhd`
/// timescale from the initialization section.
fn fmp4_first_pts(init: &[u8], segment: &[u8]) -> Option<u64> {
    let moov = child(init, b"moov")?;
    let mut timescales: Vec<(u64, u64)> = Vec::new();
    for (kind, trak) in boxes(moov) {
        if kind != b"trak" {
            continue;
        }
        let tkhd = child(trak, b"tkhd")?;
        let track = if tkhd.first() == Some(&1) { be_u32(tkhd, 20)? } else { be_u32(tkhd, 12)? };
        let mdhd = child(child(trak, b"mdia")?, b"mdhd")?;
        let timescale = if mdhd.first() == Some(&1) { be_u32(mdhd, 20)? } else { be_u32(mdhd, 12)? };
        timescales.push((track, timescale));
    }
    let mut first: Option<u64> = None;
    for (kind, moof) in boxes(segment) {
        if kind != b"moof" {
            continue;
        }
        for (kind, traf) in boxes(moof) {
            if kind != b"traf" {
                continue;
            }
            let track = be_u32(child(traf, b"tfhd")?, 4)?;
            let tfdt = child(traf, b"tfdt")?;
            let decode = if tfdt.first() == Some(&1) { be_u64(tfdt, 4)? } else { be_u32(tfdt, 4)? };
            let timescale = timescales.iter().find(|(t, _)| *t == track)?.1;
            if timescale == 0 {
                return None;
            }
            let pts = u64::try_from(u128::from(decode) * 90_000 / u128::from(timescale)).ok()? % PTS_MODULO;
            first = Some(first.map_or(pts, |f: u64| f.min(pts)));
        }
        // The first fragment is enough.
        break;
    }
    first
}

/// The `com.apple.streaming.transportStreamTimestamp` of an ID3 tag at the start of packed audio.
fn id3_timestamp(data: &[u8]) -> Option<u64> {
    const OWNER: &[u8] = b"com.apple.streaming.transportStreamTimestamp\0";
    if data.len() < 10 || &data[..3] != b"ID3" {
        return None;
    }
    let syncsafe = |b: &[u8]| b.iter().fold(0usize, |acc, &x| acc << 7 | usize::from(x & 0x7f));
    let size = syncsafe(&data[6..10]);
    let tag = data.get(10..10 + size)?;
    let mut frames = tag;
    while frames.len() >= 10 {
        let id = &frames[..4];
        let len = u32::from_be_bytes(frames[4..8].try_into().ok()?) as usize;
        let body = frames.get(10..10 + len)?;
        if id == b"PRIV" && body.starts_with(OWNER) {
            return Some(be_u64(body, OWNER.len())? % PTS_MODULO);
        }
        frames = &frames[10 + len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One TS packet starting a PES packet of `stream` on `pid` with this PTS.
    fn ts_packet(pid: u16, stream: u8, pts: u64) -> Vec<u8> {
        let mut p = vec![0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10];
        p.extend([0, 0, 1, stream, 0, 0, 0x80, 0x80, 5]);
        p.push(0x21 | ((pts >> 29) & 0x0e) as u8);
        p.push((pts >> 22) as u8);
        p.push(0x01 | ((pts >> 14) & 0xfe) as u8);
        p.push((pts >> 7) as u8);
        p.push(0x01 | ((pts << 1) & 0xfe) as u8);
        p.resize(188, 0xff);
        p
    }

    #[test]
    fn ts_gives_the_earliest_first_pes_timestamp() {
        let mut data = ts_packet(0x100, 0xE0, 126_000);
        data.extend(ts_packet(0x101, 0xC0, 125_000));
        data.extend(ts_packet(0x100, 0xE0, 1_000));
        assert_eq!(first_pts(MediaFormat::Ts, &data, None), Some(125_000));
        assert_eq!(first_pts(MediaFormat::Ts, &[0x12; 188], None), None);
    }

    fn mp4_box(kind: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend(kind);
        b.extend(payload);
        b
    }

    #[test]
    fn fmp4_scales_the_base_decode_time() {
        let mut tkhd = vec![0; 24];
        tkhd[12..16].copy_from_slice(&1u32.to_be_bytes());
        let mut mdhd = vec![0; 24];
        mdhd[12..16].copy_from_slice(&12_800u32.to_be_bytes());
        let trak = [mp4_box(b"tkhd", &tkhd), mp4_box(b"mdia", &mp4_box(b"mdhd", &mdhd))].concat();
        let init = [mp4_box(b"ftyp", b"iso6"), mp4_box(b"moov", &mp4_box(b"trak", &trak))].concat();
        let tfhd = [0, 0, 0, 0, 0, 0, 0, 1];
        let mut tfdt = vec![1, 0, 0, 0];
        tfdt.extend(25_600u64.to_be_bytes());
        let traf = [mp4_box(b"tfhd", &tfhd), mp4_box(b"tfdt", &tfdt)].concat();
        let segment = [mp4_box(b"moof", &mp4_box(b"traf", &traf)), mp4_box(b"mdat", &[0; 4])].concat();
        assert_eq!(first_pts(MediaFormat::Fmp4, &segment, Some(&init)), Some(180_000));
        assert_eq!(first_pts(MediaFormat::Fmp4, &segment, None), None);
    }

    #[test]
    fn packed_audio_reads_the_id3_timestamp() {
        let mut priv_body = b"com.apple.streaming.transportStreamTimestamp\0".to_vec();
        priv_body.extend(126_000u64.to_be_bytes());
        let mut frame = b"PRIV".to_vec();
        frame.extend((priv_body.len() as u32).to_be_bytes());
        frame.extend([0, 0]);
        frame.extend(&priv_body);
        let mut tag = b"ID3\x04\x00\x00".to_vec();
        let n = frame.len();
        tag.extend([(n >> 21) as u8 & 0x7f, (n >> 14) as u8 & 0x7f, (n >> 7) as u8 & 0x7f, n as u8 & 0x7f]);
        tag.extend(frame);
        tag.extend([0xff, 0xf1]);
        assert_eq!(first_pts(MediaFormat::Aac, &tag, None), Some(126_000));
        assert_eq!(first_pts(MediaFormat::WebVtt, &tag, None), None);
    }
}
