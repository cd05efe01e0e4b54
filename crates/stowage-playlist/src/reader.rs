//! What the media and master readers share: the line scanner (one memchr pass over the input), the parse
//! context (options, warnings, variables), attribute lists checked against a tag's spec (read by the nom
//! grammar of [`attr`](crate::attr)), and error locations.

use std::borrow::Cow;

use crate::attr::{Attribute, AttributeList, AttributeValue, RawAttribute, RawError, Spec, parse_attributes};
use crate::error::{Error, LimitKind, PlaylistKind, Warning, WarningKind};
use crate::options::ParserOptions;

/// A playlist with the warnings of the (lenient) parse that produced it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Parsed<T> {
    /// The playlist.
    pub playlist: T,
    /// Every tolerance used, located; empty after a strict parse.
    pub warnings: Vec<Warning>,
    /// The variables the playlist defines with `EXT-X-DEFINE`, with the values they took (a `NAME`'s
    /// `VALUE`, an `IMPORT` from [`ParserOptions::import`], a `QUERYPARAM` from [`ParserOptions::query`]),
    /// in definition order. Those left undefined under
    /// [`allow_undefined_variables`](ParserOptions::allow_undefined_variables) are not listed.
    ///
    /// The variables of a multivariant playlist are what its media playlists may import: give each to
    /// [`ParserOptions::import`] when parsing them.
    pub variables: Vec<(String, String)>,
}

/// One line of input: its number, and its text (or its bytes when they are not UTF-8).
pub(crate) struct Line<'a> {
    pub(crate) number: usize,
    pub(crate) text: Result<&'a str, &'a [u8]>,
}

/// Splits the input into lines at LF or CRLF (and, when allowed, a lone CR). One memchr iterator runs over
/// the whole input: far cheaper than a fresh search per line on lines of 40 bytes.
pub(crate) struct Lines<'a> {
    bytes: &'a [u8],
    text: Option<&'a str>,
    ends: memchr::Memchr2<'a>,
    base: usize,
    pos: usize,
    number: usize,
    lone_cr: bool,
    max_line: usize,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(bytes: &'a [u8], start: usize, opts: &ParserOptions) -> Self {
        Self {
            bytes,
            text: std::str::from_utf8(bytes).ok(),
            ends: memchr::memchr2_iter(b'\n', b'\r', &bytes[start..]),
            base: start,
            pos: start,
            number: 0,
            lone_cr: opts.lone_cr,
            max_line: opts.limits.max_line_bytes,
        }
    }

    #[inline]
    pub(crate) fn next_line(&mut self, ctx: &mut Ctx<'a, '_>) -> Result<Option<Line<'a>>, Error> {
        if self.pos >= self.bytes.len() {
            return Ok(None);
        }
        self.number += 1;
        let start = self.pos;
        let (end, next) = match self.ends.next() {
            None => (self.bytes.len(), self.bytes.len()),
            Some(i) => {
                let at = self.base + i;
                if self.bytes[at] == b'\n' {
                    (at, at + 1)
                } else if self.bytes.get(at + 1) == Some(&b'\n') {
                    // The LF of this CRLF is the iterator's next hit.
                    self.ends.next();
                    (at, at + 2)
                } else if self.lone_cr {
                    ctx.warn_at(self.number, at - start + 1, WarningKind::LoneCarriageReturn);
                    (at, at + 1)
                } else {
                    return Err(Error::Syntax {
                        line: self.number,
                        column: at - start + 1,
                        expected: "a line feed after the carriage return",
                        context: shorten(&String::from_utf8_lossy(&self.bytes[start..at.min(start + 80)])),
                    });
                }
            }
        };
        if end - start > self.max_line {
            return Err(Error::Limit { limit: LimitKind::LineLength, max: self.max_line, line: self.number });
        }
        self.pos = next;
        let text = match self.text {
            Some(s) => Ok(&s[start..end]),
            None => std::str::from_utf8(&self.bytes[start..end]).map_err(|_| &self.bytes[start..end]),
        };
        Ok(Some(Line { number: self.number, text }))
    }
}

pub(crate) fn shorten(s: &str) -> String {
    if s.len() <= 80 {
        return s.to_owned();
    }
    let mut end = 80;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Where a tag failed to parse: a column and what was expected. Tolerated as an unknown tag in lenient
/// mode; everything else is an [`Error`] at once.
pub(crate) enum Fail {
    Tag { column: usize, expected: &'static str },
    Hard(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Self::Hard(e)
    }
}

pub(crate) struct Ctx<'a, 'o> {
    pub(crate) opts: &'o ParserOptions,
    pub(crate) warnings: Vec<Warning>,
    vars: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub(crate) has_defines: bool,
    pub(crate) line: usize,
    pub(crate) line_text: &'a str,
    raw: Vec<RawAttribute<'a>>,
    pub(crate) tag_count: usize,
}

impl<'a, 'o> Ctx<'a, 'o> {
    /// The variables defined so far, with their values, in definition order.
    pub(crate) fn variables(&self) -> Vec<(String, String)> {
        self.vars.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    pub(crate) fn new(opts: &'o ParserOptions) -> Self {
        Self {
            opts,
            warnings: Vec::new(),
            vars: Vec::new(),
            has_defines: false,
            line: 0,
            line_text: "",
            raw: Vec::new(),
            tag_count: 0,
        }
    }

    pub(crate) fn warn_at(&mut self, line: usize, column: usize, kind: WarningKind) {
        self.warnings.push(Warning { line, column, kind });
    }

    pub(crate) fn warn(&mut self, column: usize, kind: WarningKind) {
        self.warn_at(self.line, column, kind);
    }

    /// The column (from 1) of `sub`, a slice of the current line.
    pub(crate) fn column_of(&self, sub: &str) -> usize {
        (sub.as_ptr() as usize).saturating_sub(self.line_text.as_ptr() as usize) + 1
    }

    pub(crate) fn syntax(&self, column: usize, expected: &'static str) -> Error {
        Error::Syntax { line: self.line, column, expected, context: shorten(self.line_text) }
    }

    pub(crate) fn count_tag(&mut self) -> Result<(), Error> {
        self.tag_count += 1;
        if self.tag_count > self.opts.limits.max_tags {
            return Err(Error::Limit {
                limit: LimitKind::Tags,
                max: self.opts.limits.max_tags,
                line: self.line,
            });
        }
        Ok(())
    }

    /// A tag of the other kind of playlist than `expected`: an error when strict; a lenient read keeps the
    /// line as an unknown tag, with a warning.
    pub(crate) fn wrong_kind(&mut self, expected: PlaylistKind, tag: &str) -> Result<Cow<'a, str>, Error> {
        if !self.opts.malformed_tags {
            return Err(Error::WrongKind { expected, line: self.line, tag: tag.to_owned() });
        }
        self.warn(1, WarningKind::WrongKindTag { tag: tag.to_owned() });
        Ok(Cow::Borrowed(self.line_text))
    }

    /// A strict failure is an error; a lenient one keeps the line as an unknown tag, with a warning.
    pub(crate) fn tolerate(&mut self, fail: Fail, tag: &str) -> Result<Cow<'a, str>, Error> {
        match fail {
            Fail::Hard(e) => Err(e),
            Fail::Tag { column, expected } => {
                if self.opts.malformed_tags {
                    self.warn(column, WarningKind::MalformedTag { tag: tag.to_owned(), expected });
                    Ok(Cow::Borrowed(self.line_text))
                } else {
                    Err(self.syntax(column, expected))
                }
            }
        }
    }

    /// Skips stray whitespace at the start of a tag's value (lenient) or fails (strict).
    #[inline]
    pub(crate) fn trim_value(&mut self, value: &'a str) -> Result<&'a str, Fail> {
        let b = value.as_bytes();
        let is_ws = |c: Option<&u8>| matches!(c, Some(b' ' | b'\t'));
        if !is_ws(b.first()) && !is_ws(b.last()) {
            return Ok(value);
        }
        let trimmed = value.trim_matches([' ', '\t']);
        if trimmed.len() != value.len() {
            let column = self.column_of(value);
            if !self.opts.whitespace {
                return Err(Fail::Tag { column, expected: "no whitespace" });
            }
            self.warn(column, WarningKind::Whitespace);
        }
        Ok(trimmed)
    }

    /// Reads an attribute list, checks the known attributes' types and the required ones, and applies
    /// variable substitution to quoted-strings.
    pub(crate) fn attributes(&mut self, text: &'a str, spec: &Spec) -> Result<AttributeList<'a>, Fail> {
        let mut ws = Vec::new();
        self.raw.clear();
        let base = self.column_of(text);
        let max = self.opts.limits.max_attributes_per_tag;
        let res = parse_attributes(text, max, self.opts.whitespace, &mut self.raw, &mut |at| ws.push(at));
        for at in ws {
            self.warn(base + at, WarningKind::Whitespace);
        }
        match res {
            Ok(()) => {}
            Err(RawError::Syntax { offset, expected }) => {
                return Err(Fail::Tag { column: base + offset, expected });
            }
            Err(RawError::Whitespace { offset }) => {
                return Err(Fail::Tag {
                    column: base + offset,
                    expected: "no whitespace in the attribute list",
                });
            }
            Err(RawError::TooMany) => {
                return Err(Fail::Hard(Error::Limit {
                    limit: LimitKind::AttributesPerTag,
                    max,
                    line: self.line,
                }));
            }
        }
        let raw = std::mem::take(&mut self.raw);
        let mut attrs = Vec::with_capacity(raw.len());
        for a in &raw {
            if let Some(kind) = spec.kind_of(a.name) {
                kind.check(a.value, a.quoted)
                    .map_err(|expected| Fail::Tag { column: base + a.value_offset, expected })?;
            }
            let value = if a.quoted {
                AttributeValue::Quoted(self.substitute(a.value)?)
            } else {
                AttributeValue::Unquoted(Cow::Borrowed(a.value))
            };
            attrs.push(Attribute { name: Cow::Borrowed(a.name), value });
        }
        self.raw = raw;
        for req in spec.required {
            if !attrs.iter().any(|a| a.name == *req) {
                return Err(Fail::Tag { column: base, expected: required_message(req) });
            }
        }
        Ok(AttributeList::from_vec(attrs))
    }

    /// Registers an EXT-X-DEFINE.
    pub(crate) fn define(
        &mut self,
        define: &crate::tags::attribute::Define<'a>,
        column: usize,
    ) -> Result<(), Fail> {
        self.has_defines = true;
        let attrs = define.attributes();
        let (name, value): (Cow<'a, str>, Option<Cow<'a, str>>) = if let Some(AttributeValue::Quoted(n)) =
            attrs.get("NAME")
        {
            let v = match attrs.get("VALUE") {
                Some(AttributeValue::Quoted(v)) => v.clone(),
                _ => return Err(Fail::Tag { column, expected: "VALUE with NAME" }),
            };
            (n.clone(), Some(v))
        } else if let Some(n) = attrs.quoted("IMPORT") {
            let v = self.opts.imports.iter().find(|(k, _)| k == n).map(|(_, v)| Cow::Owned(v.to_string()));
            (Cow::Owned(n.to_owned()), v)
        } else if let Some(n) = attrs.quoted("QUERYPARAM") {
            (Cow::Owned(n.to_owned()), self.opts.query_param(n).map(Cow::Owned))
        } else {
            return Err(Fail::Tag { column, expected: "NAME, IMPORT or QUERYPARAM" });
        };
        if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
            return Err(Fail::Tag { column, expected: "a variable name of [a-zA-Z0-9_-]" });
        }
        match value {
            Some(v) => self.vars.push((name, v)),
            None if self.opts.undefined_variables => {
                self.warn(column, WarningKind::UndefinedVariable { name: name.into_owned() });
            }
            None => {
                return Err(Fail::Hard(Error::UndefinedVariable {
                    line: self.line,
                    column,
                    name: name.into_owned(),
                }));
            }
        }
        Ok(())
    }

    /// Replaces `{$name}` references (only in playlists that define variables).
    #[inline]
    pub(crate) fn substitute(&mut self, s: &'a str) -> Result<Cow<'a, str>, Error> {
        if !self.has_defines {
            return Ok(Cow::Borrowed(s));
        }
        self.substitute_slow(s)
    }

    fn substitute_slow(&mut self, s: &'a str) -> Result<Cow<'a, str>, Error> {
        let Some(first) = memchr::memmem::find(s.as_bytes(), b"{$") else {
            return Ok(Cow::Borrowed(s));
        };
        let mut out = String::with_capacity(s.len() + 16);
        out.push_str(&s[..first]);
        let mut rest = &s[first..];
        while let Some(i) = rest.find("{$") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(close) = after.find('}') else {
                out.push_str(&rest[i..]);
                return Ok(Cow::Owned(out));
            };
            let name = &after[..close];
            match self.vars.iter().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => {
                    let column = self.column_of(&rest[i..]);
                    if !self.opts.undefined_variables {
                        return Err(Error::UndefinedVariable {
                            line: self.line,
                            column,
                            name: name.to_owned(),
                        });
                    }
                    self.warn(column, WarningKind::UndefinedVariable { name: name.to_owned() });
                    out.push_str(&rest[i..i + 3 + close]);
                }
            }
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        Ok(Cow::Owned(out))
    }
}

fn required_message(name: &str) -> &'static str {
    match name {
        "METHOD" => "the required attribute METHOD",
        "URI" => "the required attribute URI",
        "ID" => "the required attribute ID",
        "TIME-OFFSET" => "the required attribute TIME-OFFSET",
        "PART-TARGET" => "the required attribute PART-TARGET",
        "DURATION" => "the required attribute DURATION",
        "TYPE" => "the required attribute TYPE",
        "SKIPPED-SEGMENTS" => "the required attribute SKIPPED-SEGMENTS",
        "GROUP-ID" => "the required attribute GROUP-ID",
        "NAME" => "the required attribute NAME",
        "BANDWIDTH" => "the required attribute BANDWIDTH",
        "DATA-ID" => "the required attribute DATA-ID",
        "SERVER-URI" => "the required attribute SERVER-URI",
        _ => "a required attribute",
    }
}

/// Splits `#NAME:value` into the name (without `#`) and the value.
/// Leniently, a tag without a value (`#EXT-X-ENDLIST`, `#EXT-X-DISCONTINUITY`) followed by spaces or tabs
/// is that tag, with a warning: kept as an unknown tag instead, it would silently stop meaning what it
/// says (an ended playlist read as live, a discontinuity lost). Tags with a value trim their value.
pub(crate) fn trim_valueless_tag<'a>(ctx: &mut Ctx<'a, '_>, text: &'a str) -> &'a str {
    let ends_in_space = matches!(text.as_bytes().last(), Some(b' ' | b'\t'));
    if !ctx.opts.whitespace || !ends_in_space || !text.starts_with("#EXT") || text.contains(':') {
        return text;
    }
    let trimmed = text.trim_end_matches([' ', '\t']);
    ctx.warn(trimmed.len() + 1, WarningKind::Whitespace);
    trimmed
}

pub(crate) fn split_tag(line: &str) -> (&str, Option<&str>) {
    let body = &line[1..];
    match memchr::memchr(b':', body.as_bytes()) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    }
}

/// Checks the start of the input: byte order mark and `#EXTM3U`. Returns the offset to start reading at
/// and whether the first line is the header.
pub(crate) fn header_start(input: &[u8], ctx: &mut Ctx<'_, '_>) -> Result<usize, Error> {
    if input.len() > ctx.opts.limits.max_input_bytes {
        return Err(Error::Limit {
            limit: LimitKind::InputSize,
            max: ctx.opts.limits.max_input_bytes,
            line: 0,
        });
    }
    let mut start = 0;
    if input.starts_with(b"\xEF\xBB\xBF") {
        if !ctx.opts.bom {
            return Err(Error::Syntax {
                line: 1,
                column: 1,
                expected: "#EXTM3U (without a byte order mark)",
                context: String::from("\u{FEFF}"),
            });
        }
        ctx.warn_at(1, 1, WarningKind::ByteOrderMark);
        start = 3;
    }
    Ok(start)
}

/// Whether `line` is the `#EXTM3U` header (trailing whitespace tolerated with a warning in lenient mode).
pub(crate) fn is_header(line: &str, ctx: &mut Ctx<'_, '_>) -> bool {
    if line == "#EXTM3U" {
        return true;
    }
    if ctx.opts.whitespace && line.trim_end_matches([' ', '\t']) == "#EXTM3U" {
        ctx.warn(8, WarningKind::Whitespace);
        return true;
    }
    false
}
