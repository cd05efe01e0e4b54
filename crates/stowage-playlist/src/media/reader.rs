//! Reading a media playlist: the line scanner feeds [`MediaReader`], which has one method per kind of
//! line (the #EXTM3U header, #EXTINF, EXT-X-BYTERANGE, the other tags through the tag table, comments,
//! URI lines, and lines that are not UTF-8), and checks what only the whole playlist can tell at the end.

use std::borrow::Cow;

use super::model::{MediaPlaylist, Segment, pack_duration};
use crate::error::{Error, LimitKind, PlaylistKind, WarningKind};
use crate::options::ParserOptions;
use crate::reader::{
    Ctx, Fail, Lines, Parsed, header_start, is_header, shorten, split_tag, trim_valueless_tag,
};
use crate::tags::MediaTag;
use crate::tags::table::is_master_tag;
use crate::value::{ByteRange, Decimal};

impl<'a> MediaPlaylist<'a> {
    /// Parses a media playlist strictly.
    ///
    /// ```
    /// use stowage_playlist::MediaPlaylist;
    /// let text = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:5.5,\na.ts\n#EXT-X-ENDLIST\n";
    /// let playlist = MediaPlaylist::parse(text)?;
    /// assert_eq!(playlist.segments()[0].uri(), "a.ts");
    /// assert_eq!(playlist.to_string(), text);
    /// # Ok::<(), stowage_playlist::Error>(())
    /// ```
    pub fn parse<I: AsRef<[u8]> + ?Sized>(input: &'a I) -> Result<Self, Error> {
        Ok(Self::parse_with(input, &ParserOptions::default())?.playlist)
    }

    /// Parses a media playlist with options, returning the warnings of a lenient parse.
    pub fn parse_with<I: AsRef<[u8]> + ?Sized>(
        input: &'a I,
        options: &ParserOptions,
    ) -> Result<Parsed<Self>, Error> {
        MediaReader::read(input.as_ref(), options)
    }
}

/// State of the segment being read (tags seen since the previous URI).
#[derive(Default)]
struct Pending<'a> {
    inf: Option<(Decimal, Cow<'a, str>)>,
    inf_line: usize,
    inf_text: Cow<'a, str>,
    range: Option<ByteRange>,
    range_text: &'a str,
    /// Where in the side list the pending EXT-X-BYTERANGE was read.
    range_at: u32,
    /// The line it was read on: with no tag between it and the #EXTINF, both stand at the same place in
    /// the side list, and only their lines tell which came first.
    range_line: usize,
    mid: Option<u32>,
}

impl<'a> Pending<'a> {
    /// Lenient parsing: an #EXTINF that gets no URI is kept verbatim where it was, as an unknown line,
    /// so that nothing is lost and no segment is invented.
    fn demote_inf(&mut self, ctx: &mut Ctx<'a, '_>, tags: &mut Vec<MediaTag<'a>>, expected: &'static str) {
        if self.inf.take().is_some() {
            let at = self.mid.take().map_or(tags.len(), |m| m as usize);
            ctx.warn_at(
                self.inf_line,
                1,
                WarningKind::MalformedTag { tag: String::from("EXTINF"), expected },
            );
            tags.insert(at, MediaTag::Unknown(std::mem::take(&mut self.inf_text)));
            let range_at = self.range_at as usize;
            if self.range.is_some() && (range_at > at || (range_at == at && self.range_line > self.inf_line))
            {
                self.range_at += 1;
            }
        }
    }

    /// Lenient parsing: an EXT-X-BYTERANGE that gets no URI is kept verbatim where it was.
    fn demote_range(&mut self, ctx: &mut Ctx<'a, '_>, tags: &mut Vec<MediaTag<'a>>) {
        if self.range.take().is_some() {
            let at = (self.range_at as usize).min(tags.len());
            ctx.warn(
                1,
                WarningKind::MalformedTag {
                    tag: String::from("EXT-X-BYTERANGE"),
                    expected: "a segment URI line after it",
                },
            );
            tags.insert(at, MediaTag::Unknown(Cow::Borrowed(self.range_text)));
            let before_inf = self.range_line < self.inf_line;
            if let Some(mid) =
                self.mid.as_mut().filter(|m| **m as usize > at || (**m as usize == at && before_inf))
            {
                *mid += 1;
            }
        }
    }
}

/// A media playlist being read, line by line.
struct MediaReader<'a, 'o> {
    ctx: Ctx<'a, 'o>,
    opts: &'o ParserOptions,
    playlist: MediaPlaylist<'a>,
    /// The #EXTINF and EXT-X-BYTERANGE read since the last URI line.
    pending: Pending<'a>,
    /// Whether no segment-level line was read yet: until one is, tags are header tags.
    in_header: bool,
    /// Where the tags of the segment being read start in the side list.
    seg_start: u32,
    target_seen: bool,
    /// The tags a playlist may hold once that were read, one bit per row of the tag table.
    seen: u64,
}

impl<'a, 'o> MediaReader<'a, 'o> {
    fn read(input: &'a [u8], opts: &'o ParserOptions) -> Result<Parsed<MediaPlaylist<'a>>, Error> {
        let mut ctx = Ctx::new(opts);
        let start = header_start(input, &mut ctx)?;
        let mut lines = Lines::new(input, start, opts);
        let mut reader = Self {
            ctx,
            opts,
            playlist: MediaPlaylist::default(),
            pending: Pending::default(),
            in_header: true,
            seg_start: 0,
            target_seen: false,
            seen: 0,
        };
        reader.reserve_segments(&input[start..])?;
        let mut first = true;
        while let Some(line) = lines.next_line(&mut reader.ctx)? {
            reader.ctx.line = line.number;
            let text = match line.text {
                Ok(text) => text,
                Err(bytes) => {
                    reader.non_utf8_line(bytes)?;
                    continue;
                }
            };
            reader.ctx.line_text = text;
            if first {
                first = false;
                if reader.first_line(text)? {
                    continue;
                }
            }
            reader.line(text)?;
        }
        reader.finish(first)
    }

    /// Every segment has exactly one URI line, so counting the lines that start with neither `#` nor a
    /// line end bounds the segment count from above (exactly, for a well-formed playlist). One memchr
    /// pass is far cheaper than growing the segment vector, and reserving exactly keeps the peak heap at
    /// the final size instead of the 1.5x to 2x of a doubling growth.
    fn reserve_segments(&mut self, body: &[u8]) -> Result<(), Error> {
        let is_uri_start = |b: Option<&u8>| !matches!(b, None | Some(b'#' | b'\n' | b'\r'));
        let expected = usize::from(is_uri_start(body.first()))
            + memchr::memchr_iter(b'\n', body).filter(|&i| is_uri_start(body.get(i + 1))).count();
        let max = self.opts.limits.max_segments;
        if expected > max {
            return Err(Error::Limit { limit: LimitKind::Segments, max, line: 0 });
        }
        self.playlist.segments.reserve_exact(expected);
        Ok(())
    }

    /// The first line: whether it is the #EXTM3U header (it must be, unless the options tolerate it
    /// missing).
    fn first_line(&mut self, text: &'a str) -> Result<bool, Error> {
        if is_header(text, &mut self.ctx) {
            return Ok(true);
        }
        if !self.opts.missing_header {
            return Err(self.ctx.syntax(1, "#EXTM3U on the first line"));
        }
        self.ctx.warn(1, WarningKind::MissingHeader);
        Ok(false)
    }

    /// Any line after the header, sent to the method for its kind.
    #[inline]
    fn line(&mut self, text: &'a str) -> Result<(), Error> {
        // Leading whitespace is trimmed before the line is classified, so that `  #EXTINF` stays a tag
        // and is never taken for a URI that would read back as a tag.
        let text = if self.opts.whitespace && matches!(text.as_bytes().first(), Some(b' ' | b'\t')) {
            self.ctx.warn(1, WarningKind::Whitespace);
            text.trim_start_matches([' ', '\t'])
        } else {
            text
        };
        let b = text.as_bytes();
        if b.is_empty() {
            return Ok(());
        }
        if b[0] != b'#' {
            return self.uri(text);
        }
        // The hot lines first, recognised by their prefix without a general tag dispatch.
        if let Some(rest) = text.strip_prefix("#EXTINF:") {
            return self.extinf(text, rest);
        }
        if let Some(rest) = text.strip_prefix("#EXT-X-BYTERANGE:") {
            return self.byte_range(text, rest);
        }
        self.ctx.count_tag()?;
        let text = trim_valueless_tag(&mut self.ctx, text);
        let tag =
            if b.starts_with(b"#EXT") { self.tag(text)? } else { MediaTag::Comment(Cow::Borrowed(text)) };
        self.push_tag(tag)
    }

    /// A line that is not UTF-8: an error, unless the options tolerate invalid UTF-8 in an #EXTINF title.
    fn non_utf8_line(&mut self, bytes: &'a [u8]) -> Result<(), Error> {
        if self.opts.invalid_utf8_in_title && bytes.starts_with(b"#EXTINF:") {
            let comma = memchr::memchr(b',', bytes);
            let valid = comma.and_then(|c| std::str::from_utf8(&bytes[..c]).ok());
            if let (Some(c), Some(head)) = (comma, valid) {
                self.ctx.line_text = head;
                self.ctx.warn(c + 2, WarningKind::InvalidUtf8InTitle);
                let title = Cow::Owned(String::from_utf8_lossy(&bytes[c + 1..]).into_owned());
                let duration = parse_duration(&mut self.ctx, &head[8..])?;
                self.close_pending_inf()?;
                self.begin_segment(duration, title, String::from_utf8_lossy(bytes));
                self.in_header = false;
                return Ok(());
            }
        }
        let valid_up_to = std::str::from_utf8(bytes).err().map_or(0, |e| e.valid_up_to());
        Err(Error::Syntax {
            line: self.ctx.line,
            column: valid_up_to + 1,
            expected: "valid UTF-8",
            context: shorten(&String::from_utf8_lossy(bytes)),
        })
    }

    /// `#EXTINF:<duration>,[<title>]`: starts a segment.
    fn extinf(&mut self, text: &'a str, rest: &'a str) -> Result<(), Error> {
        self.in_header = false;
        self.close_pending_inf()?;
        // The duration is a few bytes: a plain scan beats a vectorised search here.
        let (duration, title) = match rest.bytes().position(|c| c == b',') {
            Some(c) => (&rest[..c], &rest[c + 1..]),
            None => {
                if !self.opts.missing_extinf_comma {
                    return Err(self.ctx.syntax(text.len() + 1, "',' after the #EXTINF duration"));
                }
                self.ctx.warn(text.len() + 1, WarningKind::MissingExtinfComma);
                (rest, "")
            }
        };
        let duration = match parse_duration(&mut self.ctx, duration) {
            Ok(d) => d,
            Err(Error::Syntax { column, expected, .. }) if self.opts.malformed_tags => {
                // Kept verbatim; the URI line after it is then kept verbatim too.
                self.ctx.warn(column, WarningKind::MalformedTag { tag: String::from("EXTINF"), expected });
                self.ctx.count_tag()?;
                self.playlist.tags.push(MediaTag::Unknown(Cow::Borrowed(text)));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        self.begin_segment(duration, Cow::Borrowed(title), Cow::Borrowed(text));
        Ok(())
    }

    /// An #EXTINF while another one still waits for its URI line: an error, or leniently the earlier one
    /// is kept verbatim.
    fn close_pending_inf(&mut self) -> Result<(), Error> {
        if self.pending.inf.is_some() {
            if !self.opts.malformed_tags {
                return Err(self.ctx.syntax(1, "a URI line before the next #EXTINF"));
            }
            let expected = "a URI line before the next #EXTINF";
            self.pending.demote_inf(&mut self.ctx, &mut self.playlist.tags, expected);
        }
        Ok(())
    }

    fn begin_segment(&mut self, duration: Decimal, title: Cow<'a, str>, text: Cow<'a, str>) {
        self.pending.inf = Some((duration, title));
        self.pending.inf_line = self.ctx.line;
        self.pending.inf_text = text;
        self.pending.mid = Some(self.playlist.tags.len() as u32);
    }

    /// `#EXT-X-BYTERANGE:<n>[@<o>]` of the segment being read.
    fn byte_range(&mut self, text: &'a str, rest: &'a str) -> Result<(), Error> {
        // The header does not end here: the writer puts EXT-X-BYTERANGE after the #EXTINF, so the lines
        // read between the two must stay where a second reading puts them.
        let value = trim_or_fail(&mut self.ctx, rest)?;
        let fail = match ByteRange::parse(value) {
            Some(r) if self.pending.range.is_none() || self.opts.malformed_tags => {
                // Leniently, of two the later applies and the earlier is kept verbatim where it was, as
                // with two #EXTINF: the written playlist then reads back the same.
                self.pending.demote_range(&mut self.ctx, &mut self.playlist.tags);
                self.pending.range = Some(r);
                self.pending.range_text = text;
                self.pending.range_at = self.playlist.tags.len() as u32;
                self.pending.range_line = self.ctx.line;
                return Ok(());
            }
            Some(_) => Fail::Tag { column: 1, expected: "one EXT-X-BYTERANGE per segment" },
            None => Fail::Tag { column: self.ctx.column_of(value), expected: "a byte range <n>[@<o>]" },
        };
        self.ctx.count_tag()?;
        let kept = self.ctx.tolerate(fail, "EXT-X-BYTERANGE")?;
        self.playlist.tags.push(MediaTag::Unknown(kept));
        Ok(())
    }

    /// Any other tag (`#EXT...`), read through the tag table; a tag the table does not know is kept
    /// verbatim, unless it belongs in master playlists only.
    fn tag(&mut self, text: &'a str) -> Result<MediaTag<'a>, Error> {
        let (name, value) = split_tag(text);
        Ok(match MediaTag::read(&mut self.ctx, name, value) {
            Some(Ok(tag)) => tag,
            Some(Err(fail)) => MediaTag::Unknown(self.ctx.tolerate(fail, name)?),
            // A second #EXTM3U: harmless, but not canonical; kept as an unknown line.
            None if name == "EXTM3U" => MediaTag::Unknown(Cow::Borrowed(text)),
            None if is_master_tag(name) => MediaTag::Unknown(self.ctx.wrong_kind(PlaylistKind::Media, name)?),
            None => MediaTag::Unknown(Cow::Borrowed(self.ctx.line_text)),
        })
    }

    /// Files a tag or comment in the header or in the side list of the segment being read.
    fn push_tag(&mut self, tag: MediaTag<'a>) -> Result<(), Error> {
        // Playlist-level tags may appear once (RFC 8216 4.4.3): a second one is an error, or, leniently,
        // kept verbatim so that the first one stays the one reported.
        let tag = match tag.once() {
            Some((bit, name)) if self.seen & bit != 0 => {
                let fail = Fail::Tag { column: 1, expected: "at most one such tag per playlist" };
                MediaTag::Unknown(self.ctx.tolerate(fail, name)?)
            }
            Some((bit, _)) => {
                self.seen |= bit;
                tag
            }
            None => tag,
        };
        if let MediaTag::TargetDuration(_) = tag {
            self.target_seen = true;
        }
        if tag.is_segment_tag() {
            self.in_header = false;
        }
        if self.in_header {
            self.playlist.header.push(tag);
        } else {
            self.playlist.tags.push(tag);
        }
        Ok(())
    }

    /// A URI line: ends the segment being read.
    fn uri(&mut self, text: &'a str) -> Result<(), Error> {
        let b = text.as_bytes();
        let uri = if matches!(b[0], b' ' | b'\t') || matches!(b[b.len() - 1], b' ' | b'\t') {
            if !self.opts.whitespace {
                return Err(self.ctx.syntax(1, "a URI line without surrounding whitespace"));
            }
            let t = text.trim_matches([' ', '\t']);
            self.ctx.warn(1, WarningKind::Whitespace);
            if t.is_empty() {
                return Ok(());
            }
            t
        } else {
            text
        };
        let Some((duration, title)) = self.pending.inf.take() else {
            if !self.opts.malformed_tags {
                return Err(self.ctx.syntax(1, "#EXTINF before the segment URI"));
            }
            // Not a segment: without a duration it cannot be one, and inventing one is worse.
            self.ctx.warn(1, WarningKind::StrayUri);
            self.ctx.count_tag()?;
            self.in_header = false;
            self.playlist.tags.push(MediaTag::Unknown(Cow::Borrowed(text)));
            return Ok(());
        };
        let max = self.opts.limits.max_segments;
        if self.playlist.segments.len() >= max {
            return Err(Error::Limit { limit: LimitKind::Segments, max, line: self.ctx.line });
        }
        let uri = if self.ctx.has_defines { self.ctx.substitute(uri)? } else { Cow::Borrowed(uri) };
        let tags_end = self.playlist.tags.len() as u32;
        let mut segment = Segment {
            uri,
            title,
            packed: pack_duration(duration),
            range_length: 0,
            range_offset: 0,
            tags_mid: self.pending.mid.take().unwrap_or(self.seg_start),
            tags_end,
        };
        if let Some(r) = self.pending.range.take() {
            segment.set_byte_range(Some(r));
        }
        self.seg_start = tags_end;
        self.playlist.segments.push(segment);
        self.in_header = false;
        Ok(())
    }

    /// The end of the input: what only the whole playlist can tell.
    fn finish(mut self, empty: bool) -> Result<Parsed<MediaPlaylist<'a>>, Error> {
        if empty {
            if !self.opts.missing_header {
                return Err(Error::Syntax {
                    line: 1,
                    column: 1,
                    expected: "#EXTM3U on the first line",
                    context: String::new(),
                });
            }
            self.ctx.warn_at(1, 1, WarningKind::MissingHeader);
        }
        if self.opts.malformed_tags {
            // Both are put back where they were read, so that the written playlist keeps the order.
            self.pending.demote_range(&mut self.ctx, &mut self.playlist.tags);
            let expected = "a segment URI line after #EXTINF";
            self.pending.demote_inf(&mut self.ctx, &mut self.playlist.tags, expected);
        }
        if self.pending.inf.is_some() || self.pending.range.is_some() {
            let line = if self.pending.inf.is_some() { self.pending.inf_line } else { self.ctx.line };
            return Err(Error::Syntax {
                line,
                column: 1,
                expected: "a segment URI line after #EXTINF",
                context: String::from("#EXTINF"),
            });
        }
        self.playlist.trailer = self.playlist.tags.split_off(self.seg_start as usize);
        if !self.target_seen {
            if !self.opts.malformed_tags {
                return Err(Error::Syntax {
                    line: 1,
                    column: 1,
                    expected: "an EXT-X-TARGETDURATION tag (required in a media playlist)",
                    context: String::from("#EXTM3U"),
                });
            }
            self.ctx.warn_at(
                1,
                1,
                WarningKind::MalformedTag {
                    tag: String::from("EXT-X-TARGETDURATION"),
                    expected: "the required tag",
                },
            );
        }
        let variables = self.ctx.variables();
        Ok(Parsed { playlist: self.playlist, warnings: self.ctx.warnings, variables })
    }
}

fn trim_or_fail<'a>(ctx: &mut Ctx<'a, '_>, value: &'a str) -> Result<&'a str, Error> {
    match ctx.trim_value(value) {
        Ok(v) => Ok(v),
        Err(Fail::Tag { column, expected }) => Err(ctx.syntax(column, expected)),
        Err(Fail::Hard(e)) => Err(e),
    }
}

fn parse_duration<'a>(ctx: &mut Ctx<'a, '_>, text: &'a str) -> Result<Decimal, Error> {
    let value = trim_or_fail(ctx, text)?;
    Decimal::parse(value).ok_or_else(|| ctx.syntax(ctx.column_of(value), "a non-negative decimal duration"))
}
