//! Parser configuration: strictness, tolerances, limits and variables.

use std::borrow::Cow;

/// Upper bounds on what an input may contain, each a clear [`Error::Limit`](crate::Error::Limit) when
/// exceeded. The defaults admit every real playlist seen so far with a wide margin.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest input in bytes (default 256 MiB).
    pub max_input_bytes: usize,
    /// Longest line in bytes (default 1 MiB).
    pub max_line_bytes: usize,
    /// Most segments in a media playlist (default 2,000,000).
    pub max_segments: usize,
    /// Most attributes in one attribute list (default 256).
    pub max_attributes_per_tag: usize,
    /// Most tags and comments, segment lines aside (default 4,000,000).
    pub max_tags: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 256 << 20,
            max_line_bytes: 1 << 20,
            max_segments: 2_000_000,
            max_attributes_per_tag: 256,
            max_tags: 4_000_000,
        }
    }
}

impl Limits {
    /// Sets [`Limits::max_input_bytes`].
    #[must_use]
    pub fn max_input_bytes(mut self, n: usize) -> Self {
        self.max_input_bytes = n;
        self
    }
    /// Sets [`Limits::max_line_bytes`].
    #[must_use]
    pub fn max_line_bytes(mut self, n: usize) -> Self {
        self.max_line_bytes = n;
        self
    }
    /// Sets [`Limits::max_segments`].
    #[must_use]
    pub fn max_segments(mut self, n: usize) -> Self {
        self.max_segments = n;
        self
    }
    /// Sets [`Limits::max_attributes_per_tag`].
    #[must_use]
    pub fn max_attributes_per_tag(mut self, n: usize) -> Self {
        self.max_attributes_per_tag = n;
        self
    }
    /// Sets [`Limits::max_tags`].
    #[must_use]
    pub fn max_tags(mut self, n: usize) -> Self {
        self.max_tags = n;
        self
    }
}

/// How to parse: strict by default (the RFC 8216bis grammar, any deviation a typed error), with each
/// tolerance of a lenient parse switched on explicitly. Every tolerance used is reported as a located
/// [`Warning`](crate::Warning); nothing is skipped silently.
///
/// Line endings: RFC 8216 §4.1 allows both LF and CRLF, so both are accepted in strict mode too.
///
/// ```
/// use stowage_playlist::ParserOptions;
/// let strict = ParserOptions::default();
/// let lenient = ParserOptions::lenient();
/// let custom = ParserOptions::default().allow_byte_order_mark(true).allow_whitespace(true);
/// # let _ = (strict, lenient, custom);
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ParserOptions {
    pub(crate) bom: bool,
    pub(crate) missing_header: bool,
    pub(crate) whitespace: bool,
    pub(crate) lone_cr: bool,
    pub(crate) decimal_target_duration: bool,
    pub(crate) blank_line_before_uri: bool,
    pub(crate) invalid_utf8_in_title: bool,
    pub(crate) missing_extinf_comma: bool,
    pub(crate) malformed_tags: bool,
    pub(crate) undefined_variables: bool,
    pub(crate) limits: Limits,
    pub(crate) imports: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    pub(crate) query: Option<String>,
}

impl ParserOptions {
    /// Strict parsing (the default).
    pub fn strict() -> Self {
        Self::default()
    }

    /// Every tolerance on: for playlists from the wild that players accept anyway.
    pub fn lenient() -> Self {
        Self {
            bom: true,
            missing_header: true,
            whitespace: true,
            lone_cr: true,
            decimal_target_duration: true,
            blank_line_before_uri: true,
            invalid_utf8_in_title: true,
            missing_extinf_comma: true,
            malformed_tags: true,
            undefined_variables: true,
            ..Self::default()
        }
    }

    /// Skip a UTF-8 byte order mark at the start of the input.
    #[must_use]
    pub fn allow_byte_order_mark(mut self, yes: bool) -> Self {
        self.bom = yes;
        self
    }
    /// Accept an input whose first line is not `#EXTM3U`.
    #[must_use]
    pub fn allow_missing_header(mut self, yes: bool) -> Self {
        self.missing_header = yes;
        self
    }
    /// Ignore stray spaces and tabs: after a tag's colon (`#EXTINF: 4.0`), around attribute separators,
    /// at the end of a line, and lines of only whitespace.
    #[must_use]
    pub fn allow_whitespace(mut self, yes: bool) -> Self {
        self.whitespace = yes;
        self
    }
    /// Treat a lone carriage return (without line feed) as a line end.
    #[must_use]
    pub fn allow_lone_carriage_return(mut self, yes: bool) -> Self {
        self.lone_cr = yes;
        self
    }
    /// Accept a decimal EXT-X-TARGETDURATION (kept as written).
    #[must_use]
    pub fn allow_decimal_target_duration(mut self, yes: bool) -> Self {
        self.decimal_target_duration = yes;
        self
    }
    /// Accept blank lines between EXT-X-STREAM-INF / an #EXTINF and the URI it applies to.
    #[must_use]
    pub fn allow_blank_line_before_uri(mut self, yes: bool) -> Self {
        self.blank_line_before_uri = yes;
        self
    }
    /// Accept invalid UTF-8 in an #EXTINF title (replaced by U+FFFD); invalid UTF-8 anywhere else stays an
    /// error.
    #[must_use]
    pub fn allow_invalid_utf8_in_title(mut self, yes: bool) -> Self {
        self.invalid_utf8_in_title = yes;
        self
    }
    /// Accept `#EXTINF:<duration>` without the comma.
    #[must_use]
    pub fn allow_missing_extinf_comma(mut self, yes: bool) -> Self {
        self.missing_extinf_comma = yes;
        self
    }
    /// Keep a known tag whose value does not parse (or that belongs to the other playlist kind) verbatim as
    /// an unknown tag, instead of failing. Malformed #EXTINF and segment URIs stay errors: a segment is
    /// never invented nor dropped.
    #[must_use]
    pub fn allow_malformed_tags(mut self, yes: bool) -> Self {
        self.malformed_tags = yes;
        self
    }
    /// Leave `{$name}` references to undefined variables as written instead of failing.
    #[must_use]
    pub fn allow_undefined_variables(mut self, yes: bool) -> Self {
        self.undefined_variables = yes;
        self
    }
    /// Sets the limits.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    /// Provides the value of a variable that the playlist imports with `EXT-X-DEFINE:IMPORT="name"` (the
    /// value defined in the multivariant playlist that referenced it).
    #[must_use]
    pub fn import(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.imports.push((Cow::Owned(name.into()), Cow::Owned(value.into())));
        self
    }
    /// Provides the query string (after `?`, without the `#fragment`) of the URL the playlist was loaded
    /// from, for `EXT-X-DEFINE:QUERYPARAM="name"`.
    #[must_use]
    pub fn query(mut self, query: impl Into<String>) -> Self {
        self.query = Some(query.into());
        self
    }

    pub(crate) fn query_param(&self, name: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v))
        })
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
