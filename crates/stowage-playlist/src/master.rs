//! Master (multivariant) playlists: the model, its parser and its writer.

use std::borrow::Cow;
use std::fmt;

use crate::error::{Error, PlaylistKind, WarningKind};
use crate::media::check_key;
use crate::options::ParserOptions;
use crate::parse::{Ctx, Fail, Lines, Parsed, header_start, is_header, is_media_tag, shorten, split_tag};
use crate::tags::{
    ContentSteering, Define, IFrameStreamInf, Key, Rendition, SessionData, Start, StreamInf, Variant,
};
use crate::value::{parse_u64, push_u64};

/// A line of a master playlist: a tag (a variant is its EXT-X-STREAM-INF with the URI line after it),
/// or a comment. Tags this crate does not know are kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MasterTag<'a> {
    /// EXT-X-VERSION.
    Version(u64),
    /// EXT-X-INDEPENDENT-SEGMENTS.
    IndependentSegments,
    /// EXT-X-START.
    Start(Start<'a>),
    /// EXT-X-DEFINE.
    Define(Define<'a>),
    /// EXT-X-MEDIA.
    Rendition(Rendition<'a>),
    /// EXT-X-STREAM-INF and its URI.
    Variant(Variant<'a>),
    /// EXT-X-I-FRAME-STREAM-INF.
    IFrameVariant(IFrameStreamInf<'a>),
    /// EXT-X-SESSION-DATA.
    SessionData(SessionData<'a>),
    /// EXT-X-SESSION-KEY.
    SessionKey(Key<'a>),
    /// EXT-X-CONTENT-STEERING.
    ContentSteering(ContentSteering<'a>),
    /// A tag this crate does not know (or, after a lenient parse, a malformed one): the whole line.
    Unknown(Cow<'a, str>),
    /// A comment: the whole line, with its `#`.
    Comment(Cow<'a, str>),
}

impl MasterTag<'_> {
    /// A copy that borrows nothing.
    pub fn into_owned(self) -> MasterTag<'static> {
        match self {
            Self::Version(v) => MasterTag::Version(v),
            Self::IndependentSegments => MasterTag::IndependentSegments,
            Self::Start(t) => MasterTag::Start(t.into_owned()),
            Self::Define(t) => MasterTag::Define(t.into_owned()),
            Self::Rendition(t) => MasterTag::Rendition(t.into_owned()),
            Self::Variant(t) => MasterTag::Variant(t.into_owned()),
            Self::IFrameVariant(t) => MasterTag::IFrameVariant(t.into_owned()),
            Self::SessionData(t) => MasterTag::SessionData(t.into_owned()),
            Self::SessionKey(t) => MasterTag::SessionKey(t.into_owned()),
            Self::ContentSteering(t) => MasterTag::ContentSteering(t.into_owned()),
            Self::Unknown(s) => MasterTag::Unknown(Cow::Owned(s.into_owned())),
            Self::Comment(s) => MasterTag::Comment(Cow::Owned(s.into_owned())),
        }
    }

    pub(crate) fn write(&self, out: &mut String) {
        let attrs = |out: &mut String, name: &str, list: &crate::attr::AttributeList<'_>| {
            out.push('#');
            out.push_str(name);
            out.push(':');
            list.write(out);
        };
        match self {
            Self::Version(v) => {
                out.push_str("#EXT-X-VERSION:");
                push_u64(out, *v);
            }
            Self::IndependentSegments => out.push_str("#EXT-X-INDEPENDENT-SEGMENTS"),
            Self::Start(t) => attrs(out, Start::TAG, &t.attributes),
            Self::Define(t) => attrs(out, Define::TAG, &t.attributes),
            Self::Rendition(t) => attrs(out, Rendition::TAG, &t.attributes),
            Self::Variant(v) => {
                attrs(out, StreamInf::TAG, &v.stream_inf.attributes);
                out.push('\n');
                out.push_str(&v.uri);
            }
            Self::IFrameVariant(t) => attrs(out, IFrameStreamInf::TAG, &t.attributes),
            Self::SessionData(t) => attrs(out, SessionData::TAG, &t.attributes),
            Self::SessionKey(t) => attrs(out, "EXT-X-SESSION-KEY", &t.attributes),
            Self::ContentSteering(t) => attrs(out, ContentSteering::TAG, &t.attributes),
            Self::Unknown(s) | Self::Comment(s) => out.push_str(s),
        }
        out.push('\n');
    }
}

/// A master (multivariant) playlist: every line in written order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MasterPlaylist<'a> {
    tags: Vec<MasterTag<'a>>,
}

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
        parse_master(input.as_ref(), options)
    }

    /// An empty playlist, to build one by hand.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every tag in written order.
    pub fn tags(&self) -> &[MasterTag<'a>] {
        &self.tags
    }

    /// The tags, for changing them.
    pub fn tags_mut(&mut self) -> &mut Vec<MasterTag<'a>> {
        &mut self.tags
    }

    /// The variants (EXT-X-STREAM-INF), in order.
    pub fn variants(&self) -> impl Iterator<Item = &Variant<'a>> {
        self.tags.iter().filter_map(|t| if let MasterTag::Variant(v) = t { Some(v) } else { None })
    }

    /// The I-frame variants, in order.
    pub fn i_frame_variants(&self) -> impl Iterator<Item = &IFrameStreamInf<'a>> {
        self.tags.iter().filter_map(|t| if let MasterTag::IFrameVariant(v) = t { Some(v) } else { None })
    }

    /// The renditions (EXT-X-MEDIA), in order.
    pub fn renditions(&self) -> impl Iterator<Item = &Rendition<'a>> {
        self.tags.iter().filter_map(|t| if let MasterTag::Rendition(v) = t { Some(v) } else { None })
    }

    /// The EXT-X-SESSION-DATA tags.
    pub fn session_data(&self) -> impl Iterator<Item = &SessionData<'a>> {
        self.tags.iter().filter_map(|t| if let MasterTag::SessionData(v) = t { Some(v) } else { None })
    }

    /// The EXT-X-SESSION-KEY tags.
    pub fn session_keys(&self) -> impl Iterator<Item = &Key<'a>> {
        self.tags.iter().filter_map(|t| if let MasterTag::SessionKey(v) = t { Some(v) } else { None })
    }

    /// The EXT-X-DEFINE tags.
    pub fn defines(&self) -> impl Iterator<Item = &Define<'a>> {
        self.tags.iter().filter_map(|t| if let MasterTag::Define(v) = t { Some(v) } else { None })
    }

    /// EXT-X-CONTENT-STEERING.
    pub fn content_steering(&self) -> Option<&ContentSteering<'a>> {
        self.tags.iter().find_map(|t| if let MasterTag::ContentSteering(v) = t { Some(v) } else { None })
    }

    /// EXT-X-VERSION.
    pub fn version(&self) -> Option<u64> {
        self.tags.iter().find_map(|t| if let MasterTag::Version(v) = t { Some(*v) } else { None })
    }

    /// Whether EXT-X-INDEPENDENT-SEGMENTS is present.
    pub fn has_independent_segments(&self) -> bool {
        self.tags.iter().any(|t| matches!(t, MasterTag::IndependentSegments))
    }

    /// EXT-X-START.
    pub fn start(&self) -> Option<&Start<'a>> {
        self.tags.iter().find_map(|t| if let MasterTag::Start(v) = t { Some(v) } else { None })
    }

    /// Keeps only the variants for which `keep` is true (the other tags stay).
    pub fn retain_variants(&mut self, mut keep: impl FnMut(&Variant<'a>) -> bool) {
        self.tags.retain(|t| if let MasterTag::Variant(v) = t { keep(v) } else { true });
    }

    /// Keeps only the I-frame variants for which `keep` is true.
    pub fn retain_i_frame_variants(&mut self, mut keep: impl FnMut(&IFrameStreamInf<'a>) -> bool) {
        self.tags.retain(|t| if let MasterTag::IFrameVariant(v) = t { keep(v) } else { true });
    }

    /// Keeps only the renditions for which `keep` is true.
    pub fn retain_renditions(&mut self, mut keep: impl FnMut(&Rendition<'a>) -> bool) {
        self.tags.retain(|t| if let MasterTag::Rendition(v) = t { keep(v) } else { true });
    }

    /// A copy that borrows nothing.
    pub fn into_owned(self) -> MasterPlaylist<'static> {
        MasterPlaylist { tags: self.tags.into_iter().map(MasterTag::into_owned).collect() }
    }

    /// Writes the playlist (LF line ends) to `out`.
    pub fn write_to(&self, out: &mut String) {
        out.push_str("#EXTM3U\n");
        for t in &self.tags {
            t.write(out);
        }
    }
}

impl fmt::Display for MasterPlaylist<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write_to(&mut s);
        f.write_str(&s)
    }
}

fn attrs_of<'a>(ctx: &Ctx<'a, '_>, value: Option<&'a str>) -> Result<&'a str, Fail> {
    value.ok_or(Fail::Tag { column: ctx.line_text.len() + 1, expected: "':' and an attribute list" })
}

fn parse_master<'a>(input: &'a [u8], opts: &ParserOptions) -> Result<Parsed<MasterPlaylist<'a>>, Error> {
    let mut ctx = Ctx::new(opts);
    let start = header_start(input, &mut ctx)?;
    let mut lines = Lines::new(input, start, opts);
    let mut pl = MasterPlaylist::default();
    let mut first = true;
    // An EXT-X-STREAM-INF waiting for its URI line: its attributes, its line and its text.
    let mut pending: Option<(StreamInf<'a>, usize, &'a str)> = None;

    while let Some(line) = lines.next_line(&mut ctx)? {
        ctx.line = line.number;
        let text = match line.text {
            Ok(t) => t,
            Err(bytes) => {
                let valid_up_to = std::str::from_utf8(bytes).err().map_or(0, |e| e.valid_up_to());
                return Err(Error::Syntax {
                    line: ctx.line,
                    column: valid_up_to + 1,
                    expected: "valid UTF-8",
                    context: shorten(&String::from_utf8_lossy(bytes)),
                });
            }
        };
        ctx.line_text = text;
        if first {
            first = false;
            if is_header(text, &mut ctx) {
                continue;
            }
            if !opts.missing_header {
                return Err(ctx.syntax(1, "#EXTM3U on the first line"));
            }
            ctx.warn(1, WarningKind::MissingHeader);
        }
        // Leading whitespace is trimmed before the line is classified (see the media parser).
        let text = if opts.whitespace && matches!(text.as_bytes().first(), Some(b' ' | b'\t')) {
            let t = text.trim_start_matches([' ', '\t']);
            if !t.is_empty() {
                ctx.warn(1, WarningKind::Whitespace);
            }
            t
        } else {
            text
        };
        let trimmed = text.trim_matches([' ', '\t']);
        if trimmed.is_empty() {
            if !ctx.line_text.is_empty() && !opts.whitespace {
                return Err(ctx.syntax(1, "an empty line (no whitespace)"));
            }
            if pending.is_some() {
                if !opts.blank_line_before_uri {
                    return Err(ctx.syntax(1, "the URI line right after EXT-X-STREAM-INF"));
                }
                ctx.warn(1, WarningKind::BlankLineBeforeUri);
            }
            continue;
        }
        if let Some((stream_inf, inf_line, inf_text)) = pending.take() {
            if text.starts_with('#') {
                // The URI line is missing: strict parsing fails, lenient keeps the tag verbatim.
                if !opts.malformed_tags {
                    return Err(Error::Syntax {
                        line: inf_line,
                        column: inf_text.len() + 1,
                        expected: "a URI line after EXT-X-STREAM-INF",
                        context: shorten(inf_text),
                    });
                }
                ctx.warn_at(
                    inf_line,
                    1,
                    WarningKind::MalformedTag {
                        tag: String::from("EXT-X-STREAM-INF"),
                        expected: "a URI line after it",
                    },
                );
                pl.tags.push(MasterTag::Unknown(Cow::Borrowed(inf_text)));
            } else {
                let uri = if trimmed.len() != text.len() {
                    if !opts.whitespace {
                        return Err(ctx.syntax(1, "a URI without surrounding whitespace"));
                    }
                    ctx.warn(1, WarningKind::Whitespace);
                    trimmed
                } else {
                    text
                };
                let uri = ctx.substitute(uri)?;
                pl.tags.push(MasterTag::Variant(Variant { stream_inf, uri }));
                continue;
            }
        }
        ctx.count_tag()?;
        if !text.starts_with('#') {
            if !opts.malformed_tags {
                return Err(ctx.syntax(1, "EXT-X-STREAM-INF before a URI line"));
            }
            ctx.warn(1, WarningKind::StrayUri);
            pl.tags.push(MasterTag::Unknown(Cow::Borrowed(text)));
            continue;
        }
        if !text.starts_with("#EXT") {
            pl.tags.push(MasterTag::Comment(Cow::Borrowed(text)));
            continue;
        }
        let (name, value) = split_tag(text);
        if name == "EXT-X-STREAM-INF" {
            match attrs_of(&ctx, value).and_then(|v| ctx.attributes(v, &StreamInf::SPEC)) {
                Ok(attributes) => pending = Some((StreamInf { attributes }, ctx.line, text)),
                Err(fail) => {
                    let kept = ctx.tolerate(fail, name)?;
                    pl.tags.push(MasterTag::Unknown(kept));
                }
            }
            continue;
        }
        let tag = match master_tag(&mut ctx, name, value) {
            Ok(Some(tag)) => tag,
            Ok(None) => MasterTag::Unknown(Cow::Borrowed(text)),
            Err(fail) => MasterTag::Unknown(ctx.tolerate(fail, name)?),
        };
        pl.tags.push(tag);
    }
    if first && !opts.missing_header {
        return Err(Error::Syntax {
            line: 1,
            column: 1,
            expected: "#EXTM3U on the first line",
            context: String::new(),
        });
    }
    if let Some((_, inf_line, inf_text)) = pending {
        if !opts.malformed_tags {
            return Err(Error::Syntax {
                line: inf_line,
                column: inf_text.len() + 1,
                expected: "a URI line after EXT-X-STREAM-INF",
                context: shorten(inf_text),
            });
        }
        ctx.warn_at(
            inf_line,
            1,
            WarningKind::MalformedTag {
                tag: String::from("EXT-X-STREAM-INF"),
                expected: "a URI line after it",
            },
        );
        pl.tags.push(MasterTag::Unknown(Cow::Borrowed(inf_text)));
    }
    let variables = ctx.variables();
    Ok(Parsed { playlist: pl, warnings: ctx.warnings, variables })
}

fn master_tag<'a>(
    ctx: &mut Ctx<'a, '_>,
    name: &'a str,
    value: Option<&'a str>,
) -> Result<Option<MasterTag<'a>>, Fail> {
    let tag = match name {
        "EXT-X-VERSION" => {
            let Some(v) = value else {
                return Err(Fail::Tag {
                    column: ctx.line_text.len() + 1,
                    expected: "':' and a decimal-integer",
                });
            };
            let v = ctx.trim_value(v)?;
            MasterTag::Version(
                parse_u64(v)
                    .ok_or_else(|| Fail::Tag { column: ctx.column_of(v), expected: "a decimal-integer" })?,
            )
        }
        "EXT-X-INDEPENDENT-SEGMENTS" => {
            if let Some(v) = value {
                return Err(Fail::Tag { column: ctx.column_of(v) - 1, expected: "no value after this tag" });
            }
            MasterTag::IndependentSegments
        }
        "EXT-X-START" => {
            MasterTag::Start(Start { attributes: ctx.attributes(attrs_of(ctx, value)?, &Start::SPEC)? })
        }
        "EXT-X-DEFINE" => {
            let v = attrs_of(ctx, value)?;
            let d = Define { attributes: ctx.attributes(v, &Define::SPEC)? };
            ctx.define(&d, ctx.column_of(v))?;
            MasterTag::Define(d)
        }
        "EXT-X-MEDIA" => MasterTag::Rendition(Rendition {
            attributes: ctx.attributes(attrs_of(ctx, value)?, &Rendition::SPEC)?,
        }),
        "EXT-X-I-FRAME-STREAM-INF" => MasterTag::IFrameVariant(IFrameStreamInf {
            attributes: ctx.attributes(attrs_of(ctx, value)?, &IFrameStreamInf::SPEC)?,
        }),
        "EXT-X-SESSION-DATA" => MasterTag::SessionData(SessionData {
            attributes: ctx.attributes(attrs_of(ctx, value)?, &SessionData::SPEC)?,
        }),
        "EXT-X-SESSION-KEY" => {
            let v = attrs_of(ctx, value)?;
            let key = Key { attributes: ctx.attributes(v, &Key::SPEC)? };
            check_key(&key, ctx.column_of(v))?;
            MasterTag::SessionKey(key)
        }
        "EXT-X-CONTENT-STEERING" => MasterTag::ContentSteering(ContentSteering {
            attributes: ctx.attributes(attrs_of(ctx, value)?, &ContentSteering::SPEC)?,
        }),
        "EXTM3U" => return Ok(None),
        _ if is_media_tag(name) => {
            if ctx.opts.malformed_tags {
                ctx.warn(1, WarningKind::WrongKindTag { tag: name.to_owned() });
                MasterTag::Unknown(Cow::Borrowed(ctx.line_text))
            } else {
                return Err(Fail::Hard(Error::WrongKind {
                    expected: PlaylistKind::Master,
                    line: ctx.line,
                    tag: name.to_owned(),
                }));
            }
        }
        _ => MasterTag::Unknown(Cow::Borrowed(ctx.line_text)),
    };
    Ok(Some(tag))
}
