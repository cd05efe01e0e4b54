//! Reading a master playlist: the line scanner feeds [`MasterReader`], which has one method per kind of
//! line (the #EXTM3U header, blank lines, a variant's URI line, tags through the tag table, comments, and
//! stray URI lines).

use std::borrow::Cow;

use super::model::MasterPlaylist;
use crate::error::{Error, PlaylistKind, WarningKind};
use crate::options::ParserOptions;
use crate::reader::{Ctx, Lines, Parsed, header_start, is_header, shorten, split_tag, trim_valueless_tag};
use crate::tags::MasterTag;
use crate::tags::attribute::Variant;
use crate::tags::table::is_media_tag;

impl<'a> MasterPlaylist<'a> {
    /// Parses a master playlist strictly.
    ///
    /// ```
    /// use stowage_playlist::MasterPlaylist;
    /// let text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1280000,RESOLUTION=640x360\nlow.m3u8\n";
    /// let master = MasterPlaylist::parse(text)?;
    /// let v = master.variants().next().unwrap();
    /// assert_eq!((v.stream_inf.bandwidth(), &*v.uri), (Some(1280000), "low.m3u8"));
    /// # Ok::<(), stowage_playlist::Error>(())
    /// ```
    pub fn parse<I: AsRef<[u8]> + ?Sized>(input: &'a I) -> Result<Self, Error> {
        Ok(Self::parse_with(input, &ParserOptions::default())?.playlist)
    }

    /// Parses a master playlist with options, returning the warnings of a lenient parse.
    pub fn parse_with<I: AsRef<[u8]> + ?Sized>(
        input: &'a I,
        options: &ParserOptions,
    ) -> Result<Parsed<Self>, Error> {
        MasterReader::read(input.as_ref(), options)
    }
}

/// A master playlist being read, line by line.
struct MasterReader<'a, 'o> {
    ctx: Ctx<'a, 'o>,
    opts: &'o ParserOptions,
    playlist: MasterPlaylist<'a>,
    /// A variant waiting for its URI line: its EXT-X-STREAM-INF, read with an empty URI, and the line it
    /// was read from (number and text).
    pending: Option<(Variant<'a>, usize, &'a str)>,
}

impl<'a, 'o> MasterReader<'a, 'o> {
    fn read(input: &'a [u8], opts: &'o ParserOptions) -> Result<Parsed<MasterPlaylist<'a>>, Error> {
        let mut ctx = Ctx::new(opts);
        let start = header_start(input, &mut ctx)?;
        let mut lines = Lines::new(input, start, opts);
        let mut reader = Self { ctx, opts, playlist: MasterPlaylist::default(), pending: None };
        let mut first = true;
        while let Some(line) = lines.next_line(&mut reader.ctx)? {
            reader.ctx.line = line.number;
            let text = match line.text {
                Ok(text) => text,
                Err(bytes) => {
                    let valid_up_to = std::str::from_utf8(bytes).err().map_or(0, |e| e.valid_up_to());
                    return Err(Error::Syntax {
                        line: reader.ctx.line,
                        column: valid_up_to + 1,
                        expected: "valid UTF-8",
                        context: shorten(&String::from_utf8_lossy(bytes)),
                    });
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
    fn line(&mut self, text: &'a str) -> Result<(), Error> {
        // Leading whitespace is trimmed before the line is classified (see the media reader).
        let text = if self.opts.whitespace && matches!(text.as_bytes().first(), Some(b' ' | b'\t')) {
            let t = text.trim_start_matches([' ', '\t']);
            if !t.is_empty() {
                self.ctx.warn(1, WarningKind::Whitespace);
            }
            t
        } else {
            text
        };
        let trimmed = text.trim_matches([' ', '\t']);
        if trimmed.is_empty() {
            return self.blank_line();
        }
        if let Some(pending) = self.pending.take() {
            if !text.starts_with('#') {
                return self.variant_uri(pending, text, trimmed);
            }
            self.variant_without_uri(pending)?;
        }
        self.ctx.count_tag()?;
        if !text.starts_with('#') {
            return self.stray_uri(text);
        }
        if !text.starts_with("#EXT") {
            self.playlist.tags.push(MasterTag::Comment(Cow::Borrowed(text)));
            return Ok(());
        }
        let text = trim_valueless_tag(&mut self.ctx, text);
        self.tag(text)
    }

    /// A blank line (or one of whitespace only, when the options allow whitespace).
    fn blank_line(&mut self) -> Result<(), Error> {
        if !self.ctx.line_text.is_empty() && !self.opts.whitespace {
            return Err(self.ctx.syntax(1, "an empty line (no whitespace)"));
        }
        if self.pending.is_some() {
            if !self.opts.blank_line_before_uri {
                return Err(self.ctx.syntax(1, "the URI line right after EXT-X-STREAM-INF"));
            }
            self.ctx.warn(1, WarningKind::BlankLineBeforeUri);
        }
        Ok(())
    }

    /// The URI line of the variant whose EXT-X-STREAM-INF was just read.
    fn variant_uri(
        &mut self,
        (mut variant, _, _): (Variant<'a>, usize, &'a str),
        text: &'a str,
        trimmed: &'a str,
    ) -> Result<(), Error> {
        let uri = if trimmed.len() != text.len() {
            if !self.opts.whitespace {
                return Err(self.ctx.syntax(1, "a URI without surrounding whitespace"));
            }
            self.ctx.warn(1, WarningKind::Whitespace);
            trimmed
        } else {
            text
        };
        variant.uri = self.ctx.substitute(uri)?;
        self.playlist.tags.push(MasterTag::Variant(variant));
        Ok(())
    }

    /// An EXT-X-STREAM-INF followed by a tag, or by the end of the input, instead of its URI line: an
    /// error, or leniently the tag is kept verbatim.
    fn variant_without_uri(&mut self, (_, line, text): (Variant<'a>, usize, &'a str)) -> Result<(), Error> {
        if !self.opts.malformed_tags {
            return Err(Error::Syntax {
                line,
                column: text.len() + 1,
                expected: "a URI line after EXT-X-STREAM-INF",
                context: shorten(text),
            });
        }
        self.ctx.warn_at(
            line,
            1,
            WarningKind::MalformedTag {
                tag: String::from("EXT-X-STREAM-INF"),
                expected: "a URI line after it",
            },
        );
        self.playlist.tags.push(MasterTag::Unknown(Cow::Borrowed(text)));
        Ok(())
    }

    /// A URI line that no EXT-X-STREAM-INF announced: an error, or leniently kept verbatim.
    fn stray_uri(&mut self, text: &'a str) -> Result<(), Error> {
        if !self.opts.malformed_tags {
            return Err(self.ctx.syntax(1, "EXT-X-STREAM-INF before a URI line"));
        }
        self.ctx.warn(1, WarningKind::StrayUri);
        self.playlist.tags.push(MasterTag::Unknown(Cow::Borrowed(text)));
        Ok(())
    }

    /// A tag (`#EXT...`), read through the tag table; a tag the table does not know is kept verbatim,
    /// unless it belongs in media playlists only. An EXT-X-STREAM-INF waits for its URI line.
    fn tag(&mut self, text: &'a str) -> Result<(), Error> {
        let (name, value) = split_tag(text);
        let tag = match MasterTag::read(&mut self.ctx, name, value) {
            Some(Ok(MasterTag::Variant(variant))) => {
                self.pending = Some((variant, self.ctx.line, text));
                return Ok(());
            }
            Some(Ok(tag)) => tag,
            Some(Err(fail)) => MasterTag::Unknown(self.ctx.tolerate(fail, name)?),
            // A second #EXTM3U: harmless, but not canonical; kept as an unknown line.
            None if name == "EXTM3U" => MasterTag::Unknown(Cow::Borrowed(text)),
            None if is_media_tag(name) => {
                MasterTag::Unknown(self.ctx.wrong_kind(PlaylistKind::Master, name)?)
            }
            None => MasterTag::Unknown(Cow::Borrowed(self.ctx.line_text)),
        };
        self.playlist.tags.push(tag);
        Ok(())
    }

    /// The end of the input.
    fn finish(mut self, empty: bool) -> Result<Parsed<MasterPlaylist<'a>>, Error> {
        if empty && !self.opts.missing_header {
            return Err(Error::Syntax {
                line: 1,
                column: 1,
                expected: "#EXTM3U on the first line",
                context: String::new(),
            });
        }
        if let Some(pending) = self.pending.take() {
            self.variant_without_uri(pending)?;
        }
        let variables = self.ctx.variables();
        Ok(Parsed { playlist: self.playlist, warnings: self.ctx.warnings, variables })
    }
}
