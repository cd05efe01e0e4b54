//! Attribute lists (`NAME=value,NAME="quoted"`): storage in written order, typed getters, and the nom
//! grammar that reads them.

use std::borrow::Cow;

use nom::{
    IResult, Parser,
    bytes::complete::{take_till, take_while1},
    character::complete::char,
    sequence::delimited,
};

use crate::value::{ByteRange, DateTime, Resolution, parse_float, parse_u64};

/// An attribute's value as written: quoted-string or not (decimal-integer, hexadecimal-sequence,
/// decimal-floating-point, enumerated-string, decimal-resolution, all kept as their text).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums, reason = "an attribute value is quoted or not, by the grammar")]
pub enum AttributeValue<'a> {
    /// A quoted-string, without its quotes (after EXT-X-DEFINE substitution).
    Quoted(Cow<'a, str>),
    /// Any other value, as written.
    Unquoted(Cow<'a, str>),
}

impl AttributeValue<'_> {
    /// The text of the value, without quotes.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Quoted(s) | Self::Unquoted(s) => s,
        }
    }

    /// Whether the value was a quoted-string.
    pub fn is_quoted(&self) -> bool {
        matches!(self, Self::Quoted(_))
    }

    /// A copy that borrows nothing.
    pub fn into_owned(self) -> AttributeValue<'static> {
        match self {
            Self::Quoted(s) => AttributeValue::Quoted(Cow::Owned(s.into_owned())),
            Self::Unquoted(s) => AttributeValue::Unquoted(Cow::Owned(s.into_owned())),
        }
    }
}

/// One `NAME=value` pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_structs, reason = "an attribute is a name and a value, by the grammar")]
pub struct Attribute<'a> {
    /// The attribute's name (`[A-Z0-9-]+`).
    pub name: Cow<'a, str>,
    /// Its value.
    pub value: AttributeValue<'a>,
}

/// An attribute list, every attribute (known or not) kept in the order written, so that writing it back
/// reproduces it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AttributeList<'a> {
    attrs: Vec<Attribute<'a>>,
}

impl<'a> AttributeList<'a> {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads an attribute list on its own (the text after a tag's colon), strictly, with the default
    /// limit on the number of attributes. No type checks: any name may have any value.
    ///
    /// ```
    /// use stowage_playlist::AttributeList;
    /// let list = AttributeList::parse(r#"BANDWIDTH=800000,CODECS="avc1.4d401e,mp4a.40.2""#)?;
    /// assert_eq!(list.integer("BANDWIDTH"), Some(800000));
    /// assert_eq!(list.quoted("CODECS"), Some("avc1.4d401e,mp4a.40.2"));
    /// # Ok::<(), stowage_playlist::Error>(())
    /// ```
    pub fn parse(text: &'a str) -> Result<Self, crate::Error> {
        let max = crate::Limits::default().max_attributes_per_tag;
        let mut raw = Vec::new();
        let context = || crate::reader::shorten(text);
        match parse_attributes(text, max, false, &mut raw, &mut |_| {}) {
            Ok(()) => Ok(Self {
                attrs: raw
                    .into_iter()
                    .map(|a| Attribute {
                        name: Cow::Borrowed(a.name),
                        value: if a.quoted {
                            AttributeValue::Quoted(Cow::Borrowed(a.value))
                        } else {
                            AttributeValue::Unquoted(Cow::Borrowed(a.value))
                        },
                    })
                    .collect(),
            }),
            Err(RawError::Syntax { offset, expected }) => {
                Err(crate::Error::Syntax { line: 1, column: offset + 1, expected, context: context() })
            }
            Err(RawError::Whitespace { offset }) => Err(crate::Error::Syntax {
                line: 1,
                column: offset + 1,
                expected: "no whitespace in the attribute list",
                context: context(),
            }),
            Err(RawError::TooMany) => {
                Err(crate::Error::Limit { limit: crate::LimitKind::AttributesPerTag, max, line: 1 })
            }
        }
    }

    /// Writes the list as `NAME=value,...`.
    pub fn write_to(&self, out: &mut String) {
        self.write(out);
    }

    /// The attributes in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Attribute<'a>> {
        self.attrs.iter()
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.attrs.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }

    /// The value of the first attribute named `name`.
    pub fn get(&self, name: &str) -> Option<&AttributeValue<'a>> {
        self.attrs.iter().find(|a| a.name == name).map(|a| &a.value)
    }

    /// The text of attribute `name`, quoted or not.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).map(AttributeValue::as_str)
    }

    /// Sets attribute `name`, replacing its value in place or appending it at the end.
    pub fn set(&mut self, name: impl Into<Cow<'a, str>>, value: AttributeValue<'a>) {
        let name = name.into();
        match self.attrs.iter_mut().find(|a| a.name == name) {
            Some(a) => a.value = value,
            None => self.attrs.push(Attribute { name, value }),
        }
    }

    /// Sets attribute `name` to a quoted-string.
    pub fn set_quoted(&mut self, name: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) {
        self.set(name, AttributeValue::Quoted(value.into()));
    }

    /// Removes attribute `name`; returns its value if it was there.
    pub fn remove(&mut self, name: &str) -> Option<AttributeValue<'a>> {
        let i = self.attrs.iter().position(|a| a.name == name)?;
        Some(self.attrs.remove(i).value)
    }

    /// Appends an attribute without looking for an existing one of the same name.
    pub fn push(&mut self, attribute: Attribute<'a>) {
        self.attrs.push(attribute);
    }

    /// A copy that borrows nothing.
    pub fn into_owned(self) -> AttributeList<'static> {
        AttributeList {
            attrs: self
                .attrs
                .into_iter()
                .map(|a| Attribute { name: Cow::Owned(a.name.into_owned()), value: a.value.into_owned() })
                .collect(),
        }
    }

    /// A decimal-integer attribute.
    pub fn integer(&self, name: &str) -> Option<u64> {
        parse_u64(self.text(name)?)
    }

    /// A decimal-floating-point attribute (signed-decimal-floating-point accepted).
    pub fn float(&self, name: &str) -> Option<f64> {
        parse_float(self.text(name)?, true)
    }

    /// A quoted-string attribute.
    pub fn quoted(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            AttributeValue::Quoted(s) => Some(s),
            AttributeValue::Unquoted(_) => None,
        }
    }

    /// An enumerated-string attribute.
    pub fn enumerated(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            AttributeValue::Unquoted(s) => Some(s),
            AttributeValue::Quoted(_) => None,
        }
    }

    /// A `YES`/`NO` attribute.
    pub fn yes_no(&self, name: &str) -> Option<bool> {
        match self.text(name)? {
            "YES" => Some(true),
            "NO" => Some(false),
            _ => None,
        }
    }

    /// A decimal-resolution attribute.
    pub fn resolution(&self, name: &str) -> Option<Resolution> {
        Resolution::parse(self.text(name)?)
    }

    /// A hexadecimal-sequence attribute, as bytes.
    pub fn hex(&self, name: &str) -> Option<Vec<u8>> {
        parse_hex(self.text(name)?)
    }

    /// A quoted date attribute.
    pub fn date(&self, name: &str) -> Option<DateTime> {
        DateTime::read(self.quoted(name)?).ok()
    }

    /// A quoted `<n>[@<o>]` byte range attribute.
    pub fn byte_range(&self, name: &str) -> Option<ByteRange> {
        ByteRange::parse(self.quoted(name)?)
    }

    pub(crate) fn from_vec(attrs: Vec<Attribute<'a>>) -> Self {
        Self { attrs }
    }

    pub(crate) fn write(&self, out: &mut String) {
        for (i, a) in self.attrs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&a.name);
            out.push('=');
            match &a.value {
                AttributeValue::Quoted(s) => {
                    out.push('"');
                    out.push_str(s);
                    out.push('"');
                }
                AttributeValue::Unquoted(s) => out.push_str(s),
            }
        }
    }
}

impl<'l, 'a> IntoIterator for &'l AttributeList<'a> {
    type Item = &'l Attribute<'a>;
    type IntoIter = std::slice::Iter<'l, Attribute<'a>>;
    fn into_iter(self) -> Self::IntoIter {
        self.attrs.iter()
    }
}

pub(crate) fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if digits.is_empty() {
        return None;
    }
    let b = digits.as_bytes();
    let val = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len().div_ceil(2));
    let mut i = 0;
    if b.len() % 2 == 1 {
        out.push(val(b[0])?);
        i = 1;
    }
    while i < b.len() {
        out.push(val(b[i])? << 4 | val(b[i + 1])?);
        i += 2;
    }
    Some(out)
}

/// One attribute as read by the grammar, before variable substitution.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawAttribute<'a> {
    pub(crate) name: &'a str,
    pub(crate) value: &'a str,
    pub(crate) quoted: bool,
    /// Byte offset of the value within the attribute-list text.
    pub(crate) value_offset: usize,
}

/// Why an attribute list did not parse: the byte offset within its text and what was expected there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawError {
    Syntax { offset: usize, expected: &'static str },
    TooMany,
    Whitespace { offset: usize },
}

fn attribute_name(i: &str) -> IResult<&str, &str> {
    take_while1(|c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-').parse(i)
}

fn quoted_string(i: &str) -> IResult<&str, &str> {
    delimited(char('"'), take_till(|c| c == '"' || c == '\n' || c == '\r'), char('"')).parse(i)
}

fn unquoted_value(i: &str) -> IResult<&str, &str> {
    take_while1(|c: char| c != ',' && c != '"' && !c.is_ascii_whitespace()).parse(i)
}

/// Reads an attribute list. With `whitespace`, spaces and tabs around names, `=` and `,` are skipped and
/// reported through `on_whitespace`; otherwise they are a syntax error.
pub(crate) fn parse_attributes<'a>(
    text: &'a str,
    max: usize,
    whitespace: bool,
    out: &mut Vec<RawAttribute<'a>>,
    on_whitespace: &mut dyn FnMut(usize),
) -> Result<(), RawError> {
    let offset_of = |rest: &str| text.len() - rest.len();
    let mut rest = text;
    let mut skip_ws = |rest: &mut &'a str| -> Result<(), RawError> {
        let trimmed = rest.trim_start_matches([' ', '\t']);
        if trimmed.len() != rest.len() {
            let at = text.len() - rest.len();
            if !whitespace {
                return Err(RawError::Whitespace { offset: at });
            }
            on_whitespace(at);
            *rest = trimmed;
        }
        Ok(())
    };
    if text.is_empty() {
        return Err(RawError::Syntax { offset: 0, expected: "an attribute list" });
    }
    loop {
        skip_ws(&mut rest)?;
        let (r, name) = attribute_name(rest).map_err(|_| RawError::Syntax {
            offset: offset_of(rest),
            expected: "an attribute name [A-Z0-9-]",
        })?;
        rest = r;
        skip_ws(&mut rest)?;
        rest = rest.strip_prefix('=').ok_or_else(|| RawError::Syntax {
            offset: offset_of(rest),
            expected: "'=' after the attribute name",
        })?;
        skip_ws(&mut rest)?;
        let value_offset = offset_of(rest);
        let (r, value, quoted) = if rest.starts_with('"') {
            let (r, v) = quoted_string(rest)
                .map_err(|_| RawError::Syntax { offset: value_offset, expected: "a closing '\"'" })?;
            (r, v, true)
        } else {
            let (r, v) = unquoted_value(rest)
                .map_err(|_| RawError::Syntax { offset: value_offset, expected: "an attribute value" })?;
            (r, v, false)
        };
        rest = r;
        if out.len() >= max {
            return Err(RawError::TooMany);
        }
        out.push(RawAttribute { name, value, quoted, value_offset });
        skip_ws(&mut rest)?;
        if rest.is_empty() {
            return Ok(());
        }
        rest = rest.strip_prefix(',').ok_or_else(|| RawError::Syntax {
            offset: offset_of(rest),
            expected: "',' between attributes or the end of the line",
        })?;
        if rest.is_empty() && whitespace {
            // A trailing comma is a common slip; the lenient parse drops it with a warning.
            on_whitespace(offset_of(rest));
            return Ok(());
        }
    }
}

/// The value type an attribute must have, checked when a known tag is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Hex,
    Float,
    SignedFloat,
    Quoted,
    /// A quoted-string that is a URI: offered to the URI rewrite.
    Uri,
    Enum,
    Resolution,
    YesNo,
    QuotedDate,
    QuotedByteRange,
    /// CLOSED-CAPTIONS: a quoted group id or the enumerated `NONE`.
    QuotedOrNone,
}

impl Kind {
    pub(crate) fn check(self, value: &str, quoted: bool) -> Result<(), &'static str> {
        let ok = match self {
            Self::Int => !quoted && parse_u64(value).is_some(),
            Self::Hex => !quoted && parse_hex(value).is_some(),
            Self::Float => !quoted && parse_float(value, false).is_some(),
            Self::SignedFloat => !quoted && parse_float(value, true).is_some(),
            Self::Quoted | Self::Uri => quoted,
            Self::Enum => !quoted && !value.is_empty(),
            Self::Resolution => !quoted && Resolution::parse(value).is_some(),
            Self::YesNo => !quoted && matches!(value, "YES" | "NO"),
            Self::QuotedDate => quoted && DateTime::read(value).is_ok(),
            Self::QuotedByteRange => quoted && ByteRange::parse(value).is_some(),
            Self::QuotedOrNone => quoted || value == "NONE",
        };
        if ok { Ok(()) } else { Err(self.expected()) }
    }

    fn expected(self) -> &'static str {
        match self {
            Self::Int => "a decimal-integer",
            Self::Hex => "a hexadecimal-sequence (0x...)",
            Self::Float => "a decimal-floating-point",
            Self::SignedFloat => "a signed-decimal-floating-point",
            Self::Quoted | Self::Uri => "a quoted-string",
            Self::Enum => "an enumerated-string",
            Self::Resolution => "a decimal-resolution (WIDTHxHEIGHT)",
            Self::YesNo => "YES or NO",
            Self::QuotedDate => "a quoted RFC 3339 date",
            Self::QuotedByteRange => "a quoted byte range \"<n>[@<o>]\"",
            Self::QuotedOrNone => "a quoted-string or NONE",
        }
    }
}

/// The attributes a tag knows, with their types, and which are required.
pub(crate) struct Spec {
    pub(crate) attrs: &'static [(&'static str, Kind)],
    pub(crate) required: &'static [&'static str],
}

impl Spec {
    pub(crate) fn kind_of(&self, name: &str) -> Option<Kind> {
        self.attrs.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }

    /// The name of the attribute of kind [`Kind::Uri`], if the tag has one.
    pub(crate) const fn uri_attribute(&self) -> Option<&'static str> {
        let mut i = 0;
        while i < self.attrs.len() {
            if matches!(self.attrs[i].1, Kind::Uri) {
                return Some(self.attrs[i].0);
            }
            i += 1;
        }
        None
    }

    /// Whether every attribute named `URI` or `...-URI` is of kind [`Kind::Uri`] and no other is, and
    /// there is one at most: checked at compile time for every tag, so that the URI rewrite cannot miss a
    /// URI.
    pub(crate) const fn uri_kinds_are_consistent(&self) -> bool {
        let mut uris = 0;
        let mut i = 0;
        while i < self.attrs.len() {
            let (name, kind) = self.attrs[i];
            let (b, n) = (name.as_bytes(), name.len());
            let named_uri = n >= 3
                && b[n - 3] == b'U'
                && b[n - 2] == b'R'
                && b[n - 1] == b'I'
                && (n == 3 || b[n - 4] == b'-');
            if named_uri != matches!(kind, Kind::Uri) {
                return false;
            }
            if named_uri {
                uris += 1;
            }
            i += 1;
        }
        uris <= 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str, ws: bool) -> Result<Vec<(String, String, bool)>, RawError> {
        let mut v = Vec::new();
        parse_attributes(s, 16, ws, &mut v, &mut |_| {})?;
        Ok(v.iter().map(|a| (a.name.to_owned(), a.value.to_owned(), a.quoted)).collect())
    }

    #[test]
    fn reads_quoted_and_unquoted_values() {
        let v = parse(r#"METHOD=AES-128,URI="a,b=c",IV=0x1F"#, false).unwrap();
        assert_eq!(v[1], ("URI".into(), "a,b=c".into(), true));
        assert_eq!(v[2], ("IV".into(), "0x1F".into(), false));
    }

    #[test]
    fn reports_where_it_fails() {
        assert_eq!(
            parse("A=1,B", false),
            Err(RawError::Syntax { offset: 5, expected: "'=' after the attribute name" })
        );
        assert_eq!(parse(r#"A="x"#, false), Err(RawError::Syntax { offset: 2, expected: "a closing '\"'" }));
        assert_eq!(parse("A=1, B=2", false), Err(RawError::Whitespace { offset: 4 }));
        assert_eq!(parse("A=1, B=2", true).unwrap().len(), 2);
        assert_eq!(
            parse("a=1", false).unwrap_err(),
            RawError::Syntax { offset: 0, expected: "an attribute name [A-Z0-9-]" }
        );
    }

    #[test]
    fn enforces_the_attribute_limit() {
        let s = (0..17).map(|i| format!("A{i}=1")).collect::<Vec<_>>().join(",");
        assert_eq!(parse(&s, false), Err(RawError::TooMany));
    }

    #[test]
    fn hex_sequences() {
        assert_eq!(parse_hex("0x0102"), Some(vec![1, 2]));
        assert_eq!(parse_hex("0xABC"), Some(vec![0xA, 0xBC]));
        assert_eq!(parse_hex("0x"), None);
        assert_eq!(parse_hex("12"), None);
    }
}
