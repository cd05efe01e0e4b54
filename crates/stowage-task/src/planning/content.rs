//! What a stored entry is expected to hold, from what its playlist says of it, so that an answer that is
//! something else (an empty body, an HTML page from a captive portal, a body cut short with nothing to tell
//! it was) is caught before it is stored as a segment.
//!
//! The playlist tells the container of an entry by, in this order: the extension of the entry's URI
//! (`.ts`, `.m4s`, `.mp4`, `.aac`, `.vtt` and their kin, query ignored); for a media segment without one,
//! the `EXT-X-MAP` it follows (ISO-BMFF, or MPEG-TS when the map's URI says `.ts`); for a segment of a
//! subtitles rendition without a map, WebVTT. `CODECS` is not used: it names codecs, not containers
//! (`avc1` and `mp4a` travel in MPEG-TS and in fragmented MP4 alike). Where none of these tells, the entry
//! is only expected to be one of the media containers a playlist can list. Ciphertext kept on purpose
//! (whole segments encrypted with AES-128) hides its container: only its length in whole 16-byte blocks
//! can be checked. Sample encryption (SAMPLE-AES, FairPlay) leaves the container in the clear, so it is
//! checked like clear content.

use stowage_bundle::{MediaFormat, RenditionKind};

/// A media container a playlist can list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Container {
    /// MPEG-2 transport stream: 188-byte packets, each starting with the sync byte 0x47.
    Ts,
    /// ISO base media file format (fragmented MP4, CMAF): a sequence of boxes.
    IsoBmff,
    /// Packed audio: ID3 tags, then ADTS (AAC), AC-3, E-AC-3 or MPEG audio frames.
    PackedAudio,
    /// WebVTT text, starting with `WEBVTT`.
    WebVtt,
}

impl Container {
    /// The container for people, with what is checked of it.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Ts => "MPEG-TS (sync byte 0x47 every 188 bytes)",
            Self::IsoBmff => "ISO-BMFF (fragmented MP4 boxes)",
            Self::PackedAudio => "packed audio (ID3, then ADTS, AC-3 or MPEG audio frames)",
            Self::WebVtt => "WebVTT (a `WEBVTT` header)",
        }
    }

    fn of_format(format: MediaFormat) -> Option<Self> {
        Some(match format {
            MediaFormat::Ts => Self::Ts,
            MediaFormat::Fmp4 => Self::IsoBmff,
            MediaFormat::Aac | MediaFormat::Ac3 | MediaFormat::Eac3 | MediaFormat::Mp3 => Self::PackedAudio,
            MediaFormat::WebVtt => Self::WebVtt,
            _ => return None,
        })
    }
}

/// What an entry's bytes are expected to be, once decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content {
    /// One container, as the playlist tells.
    One(Container),
    /// An initialization section whose URI names no container: ISO-BMFF or MPEG-TS (whose initialization
    /// section is a PAT and a PMT).
    InitSection,
    /// The playlist does not tell: any of the media containers.
    AnyMedia,
    /// Ciphertext kept as fetched (AES-128 of whole segments): whole 16-byte blocks.
    Ciphertext,
}

impl Content {
    /// The containers an entry expected to hold this may be; empty for ciphertext.
    pub(crate) fn containers(self) -> &'static [Container] {
        use Container::*;
        match self {
            Self::One(Ts) => &[Ts],
            Self::One(IsoBmff) => &[IsoBmff],
            Self::One(PackedAudio) => &[PackedAudio],
            Self::One(WebVtt) => &[WebVtt],
            Self::InitSection => &[IsoBmff, Ts],
            Self::AnyMedia => &[Ts, IsoBmff, PackedAudio, WebVtt],
            Self::Ciphertext => &[],
        }
    }

    /// The content of an initialization section at `uri`.
    pub(crate) fn of_init(uri: &str) -> Self {
        match MediaFormat::from_uri(uri).and_then(Container::of_format) {
            Some(c @ (Container::Ts | Container::IsoBmff)) => Self::One(c),
            _ => Self::InitSection,
        }
    }

    /// The content of a media segment at `uri` of a rendition of `kind`, after the initialization section
    /// at `map` when it has one.
    pub(crate) fn of_segment(uri: &str, map: Option<&str>, kind: RenditionKind) -> Self {
        if let Some(c) = MediaFormat::from_uri(uri).and_then(Container::of_format) {
            return Self::One(c);
        }
        match map.map(Self::of_init) {
            Some(Self::One(c)) => Self::One(c),
            // After a map that names no container, a segment is ISO-BMFF or MPEG-TS like its map.
            Some(_) => Self::InitSection,
            None if kind == RenditionKind::Subtitles => Self::One(Container::WebVtt),
            None => Self::AnyMedia,
        }
    }
}

/// Checks the bytes stored for an entry against what it is expected to hold, as they pass: only the first
/// bytes are kept, and ISO-BMFF box headers are followed to the end, so the cost is a few comparisons
/// per chunk and memory of a few hundred bytes.
///
/// What is checked of each container is what a body that is something else (an empty answer, an HTML
/// page, a body cut short) cannot pass by chance: an MPEG-TS body is whole 188-byte packets with the sync
/// byte at the start of the first two; an ISO-BMFF body is a chain of boxes whose sizes end exactly at its
/// end; packed audio starts with an ID3 tag or an audio frame's sync word; WebVTT starts with `WEBVTT`.
#[derive(Debug)]
pub(crate) struct Sniffer {
    content: Content,
    head: Vec<u8>,
    len: u64,
    /// Where the next ISO-BMFF box starts; `u64::MAX` once a box runs to the end (size 0).
    next_box: u64,
    /// The header of the box starting at `next_box`, as far as it has arrived.
    header: Vec<u8>,
    /// A box header that cannot be one (a size smaller than its header).
    bad_box: bool,
}

/// Bytes kept from the start of a body: two MPEG-TS packets and one byte.
const HEAD: usize = 189;

impl Sniffer {
    pub(crate) fn new(content: Content) -> Self {
        Self { content, head: Vec::new(), len: 0, next_box: 0, header: Vec::new(), bad_box: false }
    }

    /// Takes the next bytes of the body.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        if self.head.len() < HEAD {
            let take = (HEAD - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
        }
        let start = self.len;
        self.len += bytes.len() as u64;
        if self.content.containers().contains(&Container::IsoBmff) {
            self.follow_boxes(start, bytes);
        }
    }

    fn follow_boxes(&mut self, start: u64, bytes: &[u8]) {
        let end = self.len;
        while !self.bad_box && self.next_box != u64::MAX && self.next_box < end {
            // Offsets within this chunk fit in usize: they are below its length.
            let at = usize::try_from(self.next_box.saturating_sub(start)).unwrap_or(usize::MAX);
            let want = if self.header.len() >= 8 && self.header[..4] == [0, 0, 0, 1] { 16 } else { 8 };
            let take = (want - self.header.len()).min(bytes.len().saturating_sub(at));
            self.header.extend_from_slice(&bytes[at..at + take]);
            if self.header.len() < 8 || (self.header[..4] == [0, 0, 0, 1] && self.header.len() < 16) {
                if at + take >= bytes.len() {
                    // The header goes on in the next chunk; the box's start stays where it is.
                    return;
                }
                continue;
            }
            let size = u32::from_be_bytes([self.header[0], self.header[1], self.header[2], self.header[3]]);
            let kind_ok = self.header[4..8].iter().all(|c| c.is_ascii_graphic() || *c == b' ');
            let size = match size {
                0 => u64::MAX,
                1 => u64::from_be_bytes(self.header[8..16].try_into().unwrap_or([0; 8])),
                n => u64::from(n),
            };
            let header_len = self.header.len() as u64;
            if !kind_ok || size < header_len {
                self.bad_box = true;
                return;
            }
            self.next_box = if size == u64::MAX { u64::MAX } else { self.next_box.saturating_add(size) };
            self.header.clear();
        }
    }

    fn is(&self, container: Container) -> bool {
        let h = &self.head[..];
        match container {
            Container::Ts => {
                h.first() == Some(&0x47)
                    && h.get(188).is_none_or(|b| *b == 0x47)
                    && self.len.is_multiple_of(188)
            }
            Container::IsoBmff => {
                !self.bad_box
                    && self.header.is_empty()
                    && (self.next_box == self.len || self.next_box == u64::MAX)
            }
            Container::PackedAudio => match h {
                [b'I', b'D', b'3', ..] | [0x0B, 0x77, ..] => true,
                // ADTS (AAC) and MPEG audio frames: an 11-bit sync word, then a layer other than reserved.
                [0xFF, b, ..] => b & 0xE0 == 0xE0 && b & 0x06 != 0 || b & 0xF6 == 0xF0,
                _ => false,
            },
            Container::WebVtt => {
                let text = h.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(h);
                text.strip_prefix(b"WEBVTT")
                    .is_some_and(|rest| matches!(rest.first(), None | Some(b' ' | b'\t' | b'\n' | b'\r')))
            }
        }
    }

    /// Whether the body was what it was expected to be; else what it looks like instead, for people.
    pub(crate) fn finish(&self) -> Result<(), String> {
        if self.len == 0 {
            return Err("the body is empty".to_owned());
        }
        let fits = match self.content {
            Content::Ciphertext => self.len.is_multiple_of(16),
            other => other.containers().iter().any(|c| self.is(*c)),
        };
        if fits {
            return Ok(());
        }
        let expected = match self.content {
            Content::Ciphertext => "AES-128 ciphertext (whole 16-byte blocks)".to_owned(),
            other => other.containers().iter().map(|c| c.describe()).collect::<Vec<_>>().join(" or "),
        };
        Err(format!("{} bytes that are not {expected}: {}", self.len, self.looks_like()))
    }

    /// What the start of a body that failed the check looks like.
    fn looks_like(&self) -> String {
        let h = &self.head;
        let text_start = h.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(0);
        if h[text_start..].first() == Some(&b'<') {
            let shown: String = h[text_start..].iter().take(40).map(|b| char::from(*b)).collect();
            return format!("it starts like a web page ({shown:?})");
        }
        if self.content.containers().contains(&Container::Ts)
            && h.first() == Some(&0x47)
            && !self.len.is_multiple_of(188)
        {
            return format!("MPEG-TS cut short: {} bytes is not whole 188-byte packets", self.len);
        }
        if self.content.containers().contains(&Container::IsoBmff) && self.head.len() >= 8 {
            if self.bad_box {
                return format!("no ISO-BMFF box header at byte {}", self.next_box);
            }
            if !self.header.is_empty() {
                return format!("it ends inside the header of the box at byte {}", self.next_box);
            }
            if self.next_box > self.len {
                return format!("its boxes run to byte {}, past its end", self.next_box);
            }
        }
        if matches!(self.content, Content::Ciphertext) {
            return "its length is not whole blocks".to_owned();
        }
        let shown: Vec<String> = h.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("it starts with the bytes {}", shown.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_playlist_tells_the_container_by_extension_map_and_rendition_type() {
        let video = RenditionKind::Video;
        assert_eq!(Content::of_segment("a/seg1.ts?sig=x", None, video), Content::One(Container::Ts));
        assert_eq!(
            Content::of_segment("seg1.m4s", Some("init.mp4"), video),
            Content::One(Container::IsoBmff)
        );
        assert_eq!(
            Content::of_segment("seg1.aac", None, RenditionKind::Audio),
            Content::One(Container::PackedAudio)
        );
        assert_eq!(Content::of_segment("seg1", Some("init.mp4"), video), Content::One(Container::IsoBmff));
        assert_eq!(Content::of_segment("seg1", Some("init.ts"), video), Content::One(Container::Ts));
        assert_eq!(Content::of_segment("seg1", Some("init"), video), Content::InitSection);
        assert_eq!(
            Content::of_segment("cue1", None, RenditionKind::Subtitles),
            Content::One(Container::WebVtt)
        );
        assert_eq!(Content::of_segment("seg1.php", None, video), Content::AnyMedia);
        assert_eq!(Content::of_init("init.cmfv"), Content::One(Container::IsoBmff));
        assert_eq!(Content::of_init("init?x=1"), Content::InitSection);
        assert_eq!(Content::InitSection.containers(), [Container::IsoBmff, Container::Ts]);
        assert!(Content::Ciphertext.containers().is_empty());
    }

    fn sniff(content: Content, chunks: &[&[u8]]) -> Result<(), String> {
        let mut s = Sniffer::new(content);
        for c in chunks {
            s.feed(c);
        }
        s.finish()
    }

    #[test]
    fn bodies_are_checked_against_their_container() {
        let ts = Content::One(Container::Ts);
        let mut packets = vec![0u8; 188 * 3];
        packets[0] = 0x47;
        packets[188] = 0x47;
        packets[376] = 0x47;
        assert_eq!(sniff(ts, &[&packets[..100], &packets[100..]]), Ok(()));
        let cut = sniff(ts, &[&packets[..300]]).unwrap_err();
        assert!(cut.contains("cut short"), "{cut}");
        assert!(sniff(ts, &[]).unwrap_err().contains("empty"));
        let page = sniff(ts, &[b"\n<!DOCTYPE html><html>"]).unwrap_err();
        assert!(page.contains("web page"), "{page}");

        let boxes = [&[0, 0, 0, 16][..], b"ftypiso6", &[0; 4], &[0, 0, 0, 8], b"moov"].concat();
        let fmp4 = Content::One(Container::IsoBmff);
        // Box headers split across chunks are followed all the same.
        assert_eq!(sniff(fmp4, &[&boxes[..3], &boxes[3..18], &boxes[18..]]), Ok(()));
        let short = sniff(fmp4, &[&boxes[..12]]).unwrap_err();
        assert!(short.contains("past its end"), "{short}");
        let short = sniff(fmp4, &[&boxes[..20]]).unwrap_err();
        assert!(short.contains("inside the header of the box at byte 16"), "{short}");
        let page = sniff(fmp4, &[b"<html><body>Sign in</body></html>"]).unwrap_err();
        assert!(page.contains("web page"), "{page}");
        assert!(sniff(Content::InitSection, &[&boxes]).is_ok());

        let audio = Content::One(Container::PackedAudio);
        assert_eq!(sniff(audio, &[b"ID3\x04\x00rest"]), Ok(()));
        assert_eq!(sniff(audio, &[&[0xFF, 0xF1, 0x50, 0x80]]), Ok(()));
        assert!(sniff(audio, &[b"<html>"]).is_err());
        let vtt = Content::One(Container::WebVtt);
        assert_eq!(sniff(vtt, &[b"\xEF\xBB\xBFWEBVTT\n\n"]), Ok(()));
        assert!(sniff(vtt, &[b"WEBVTTX"]).is_err());
        assert_eq!(sniff(Content::Ciphertext, &[&[7; 32]]), Ok(()));
        assert!(sniff(Content::Ciphertext, &[&[7; 33]]).is_err());
        assert_eq!(sniff(Content::AnyMedia, &[b"WEBVTT\n"]), Ok(()));
    }
}
