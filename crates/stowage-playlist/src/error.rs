//! The crate's error type and the warnings of a lenient parse.

use std::fmt;

/// Which kind of playlist an input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums, reason = "HLS has two kinds of playlist")]
pub enum PlaylistKind {
    /// A multivariant ("master") playlist: variants and renditions.
    Master,
    /// A media playlist: a list of segments.
    Media,
}

impl fmt::Display for PlaylistKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Master => "master playlist",
            Self::Media => "media playlist",
        })
    }
}

/// A limit of [`Limits`](crate::Limits) that an input went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitKind {
    /// The whole input, in bytes.
    InputSize,
    /// One line, in bytes.
    LineLength,
    /// Segments in a media playlist.
    Segments,
    /// Attributes in one tag's attribute list.
    AttributesPerTag,
    /// Tags and comments in one playlist, apart from the segment lines.
    Tags,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InputSize => "input size in bytes",
            Self::LineLength => "line length in bytes",
            Self::Segments => "number of segments",
            Self::AttributesPerTag => "attributes per tag",
            Self::Tags => "number of tags",
        })
    }
}

/// Everything that can go wrong when parsing, resolving or rewriting a playlist.
///
/// Lines and columns count from 1; columns count bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input does not follow the playlist grammar at this place.
    Syntax {
        /// Line, from 1.
        line: usize,
        /// Column in bytes, from 1.
        column: usize,
        /// What the grammar expected here.
        expected: &'static str,
        /// The tag (or line start) being parsed, shortened to 80 bytes.
        context: String,
    },
    /// The input went over a configured limit.
    Limit {
        /// Which limit.
        limit: LimitKind,
        /// The configured maximum.
        max: usize,
        /// Line where it was exceeded, from 1 (0 when it concerns the whole input).
        line: usize,
    },
    /// The input is a playlist of the other kind (a master tag in a media playlist or the reverse).
    WrongKind {
        /// The kind that was asked for.
        expected: PlaylistKind,
        /// Line of the tag that belongs to the other kind, from 1.
        line: usize,
        /// That tag's name.
        tag: String,
    },
    /// A `{$name}` reference to a variable no EXT-X-DEFINE declared.
    UndefinedVariable {
        /// Line, from 1.
        line: usize,
        /// Column in bytes, from 1.
        column: usize,
        /// The variable's name.
        name: String,
    },
    /// The segments' byte ranges cannot be resolved (an implicit offset without a previous sub-range of
    /// the same resource).
    ByteRange {
        /// Index of the segment in the playlist, from 0.
        segment: usize,
        /// Why.
        reason: &'static str,
    },
    /// A date and time that is not a valid RFC 3339 date and time ([`DateTime::parse`](crate::DateTime::parse),
    /// [`DateTime::from_utc`](crate::DateTime::from_utc)).
    InvalidDateTime {
        /// The text, as given (or as built from the parts given).
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A base URL given to resolve URIs is not an absolute URL.
    InvalidBaseUrl {
        /// The URL as given.
        url: String,
    },
    /// A rewrite asked to remove something that cannot be removed without losing media (a segment or its
    /// initialization section).
    CannotRemove {
        /// What could not be removed.
        what: &'static str,
        /// Its index among the segments, from 0.
        segment: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax { line, column, expected, context } => {
                write!(f, "line {line}, column {column}: expected {expected} (in `{context}`)")
            }
            Self::Limit { limit, max, line } => {
                if *line > 0 {
                    write!(f, "line {line}: {limit} is over the limit of {max}")
                } else {
                    write!(f, "{limit} is over the limit of {max}")
                }
            }
            Self::WrongKind { expected, line, tag } => {
                write!(f, "line {line}: tag {tag} does not belong in a {expected}")
            }
            Self::UndefinedVariable { line, column, name } => {
                write!(f, "line {line}, column {column}: variable `{name}` is not defined by EXT-X-DEFINE")
            }
            Self::ByteRange { segment, reason } => write!(f, "segment {segment}: {reason}"),
            Self::InvalidDateTime { text, reason } => write!(f, "`{text}` is not a date and time: {reason}"),
            Self::InvalidBaseUrl { url } => write!(f, "base URL `{url}` is not an absolute URL"),
            Self::CannotRemove { what, segment } => {
                write!(f, "cannot remove the {what} of segment {segment}: its media would be lost")
            }
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// The line the error is on, from 1, when it concerns one line.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Syntax { line, .. }
            | Self::WrongKind { line, .. }
            | Self::UndefinedVariable { line, .. } => Some(*line),
            Self::Limit { line, .. } if *line > 0 => Some(*line),
            _ => None,
        }
    }
}

/// What a lenient parse tolerated, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Warning {
    /// Line, from 1.
    pub line: usize,
    /// Column in bytes, from 1.
    pub column: usize,
    /// What was tolerated.
    pub kind: WarningKind,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.kind)
    }
}

/// The tolerances of [`ParserOptions`](crate::ParserOptions), one per kind of deviation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarningKind {
    /// A UTF-8 byte order mark before `#EXTM3U`; skipped.
    ByteOrderMark,
    /// The first line is not `#EXTM3U`; parsed on as if it were there.
    MissingHeader,
    /// Whitespace where the grammar has none; ignored.
    Whitespace,
    /// A lone carriage return ended a line.
    LoneCarriageReturn,
    /// A decimal EXT-X-TARGETDURATION; kept as written, rounded where an integer is needed.
    DecimalTargetDuration,
    /// Blank lines between EXT-X-STREAM-INF and its URI; skipped.
    BlankLineBeforeUri,
    /// Invalid UTF-8 in an #EXTINF title; replaced by U+FFFD.
    InvalidUtf8InTitle,
    /// An #EXTINF without the comma after the duration; a comma is written back.
    MissingExtinfComma,
    /// A known tag whose value does not parse; kept verbatim as an unknown tag.
    MalformedTag {
        /// The tag's name.
        tag: String,
        /// What the grammar expected.
        expected: &'static str,
    },
    /// A tag that belongs to the other kind of playlist; kept verbatim as an unknown tag.
    WrongKindTag {
        /// The tag's name.
        tag: String,
    },
    /// A URI line with no EXT-X-STREAM-INF (master) or #EXTINF (media) before it; kept verbatim, not as
    /// a variant or segment.
    StrayUri,
    /// A `{$name}` reference to an undefined variable; left as written.
    UndefinedVariable {
        /// The variable's name.
        name: String,
    },
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ByteOrderMark => f.write_str("byte order mark skipped"),
            Self::MissingHeader => f.write_str("#EXTM3U missing on the first line"),
            Self::Whitespace => f.write_str("stray whitespace ignored"),
            Self::LoneCarriageReturn => f.write_str("lone carriage return taken as a line end"),
            Self::DecimalTargetDuration => f.write_str("decimal EXT-X-TARGETDURATION"),
            Self::BlankLineBeforeUri => f.write_str("blank line between EXT-X-STREAM-INF and its URI"),
            Self::InvalidUtf8InTitle => f.write_str("invalid UTF-8 in #EXTINF title replaced"),
            Self::MissingExtinfComma => f.write_str("#EXTINF without a comma after the duration"),
            Self::MalformedTag { tag, expected } => {
                write!(f, "malformed {tag} kept as an unknown tag (expected {expected})")
            }
            Self::WrongKindTag { tag } => {
                write!(f, "{tag} belongs to the other playlist kind; kept as unknown")
            }
            Self::StrayUri => f.write_str("URI line without EXT-X-STREAM-INF or #EXTINF kept verbatim"),
            Self::UndefinedVariable { name } => write!(f, "undefined variable `{name}` left as written"),
        }
    }
}
