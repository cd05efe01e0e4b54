//! The values of the tags without an attribute list: how each is read and written.

use crate::error::WarningKind;
use crate::reader::{Ctx, Fail};
use crate::tags::TagValue;
use crate::value::{DateTime, Decimal, parse_u64, push_u64};

/// EXT-X-PLAYLIST-TYPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums, reason = "EXT-X-PLAYLIST-TYPE has two values, EVENT and VOD")]
pub enum PlaylistType {
    /// `EVENT`: segments are only added at the end.
    Event,
    /// `VOD`: the playlist never changes.
    Vod,
}

/// The text after the colon of a tag that must have one.
pub(crate) fn require_value<'a>(
    ctx: &Ctx<'a, '_>,
    value: Option<&'a str>,
    expected: &'static str,
) -> Result<&'a str, Fail> {
    value.ok_or(Fail::Tag { column: ctx.line_text.len() + 1, expected })
}

/// The text of an attribute list, after the colon.
pub(crate) fn attribute_text<'a>(ctx: &Ctx<'a, '_>, value: Option<&'a str>) -> Result<&'a str, Fail> {
    require_value(ctx, value, "':' and an attribute list")
}

/// A decimal-integer: EXT-X-VERSION, EXT-X-MEDIA-SEQUENCE, EXT-X-DISCONTINUITY-SEQUENCE, EXT-X-BITRATE.
impl<'a> TagValue<'a> for u64 {
    type Owned = Self;

    fn read(ctx: &mut Ctx<'a, '_>, value: Option<&'a str>) -> Result<Self, Fail> {
        let v = ctx.trim_value(require_value(ctx, value, "':' and a decimal-integer")?)?;
        parse_u64(v).ok_or_else(|| Fail::Tag { column: ctx.column_of(v), expected: "a decimal-integer" })
    }

    fn write(&self, out: &mut String) {
        push_u64(out, *self);
    }

    fn into_owned(self) -> Self {
        self
    }
}

/// EXT-X-TARGETDURATION, the one tag with a decimal value: a decimal-integer, or, when the options allow
/// it, a decimal with a fraction (with a warning).
impl<'a> TagValue<'a> for Decimal {
    type Owned = Self;

    fn read(ctx: &mut Ctx<'a, '_>, value: Option<&'a str>) -> Result<Self, Fail> {
        let v = ctx.trim_value(require_value(ctx, value, "':' and a decimal-integer")?)?;
        let column = ctx.column_of(v);
        match Self::parse(v) {
            Some(d) if d.scale() == 0 => Ok(d),
            Some(d) if ctx.opts.decimal_target_duration => {
                ctx.warn(column, WarningKind::DecimalTargetDuration);
                Ok(d)
            }
            _ => Err(Fail::Tag { column, expected: "a decimal-integer" }),
        }
    }

    fn write(&self, out: &mut String) {
        Self::write(*self, out);
    }

    fn into_owned(self) -> Self {
        self
    }
}

/// EXT-X-PROGRAM-DATE-TIME.
impl<'a> TagValue<'a> for DateTime {
    type Owned = Self;

    fn read(ctx: &mut Ctx<'a, '_>, value: Option<&'a str>) -> Result<Self, Fail> {
        let value = require_value(ctx, value, "':' and an RFC 3339 date")?;
        let v = ctx.trim_value(value)?;
        Self::read(v).map_err(|_| Fail::Tag { column: ctx.column_of(value), expected: "an RFC 3339 date" })
    }

    fn write(&self, out: &mut String) {
        Self::write(self, out);
    }

    fn into_owned(self) -> Self {
        self
    }
}

impl<'a> TagValue<'a> for PlaylistType {
    type Owned = Self;

    fn read(ctx: &mut Ctx<'a, '_>, value: Option<&'a str>) -> Result<Self, Fail> {
        let v = ctx.trim_value(attribute_text(ctx, value)?)?;
        match v {
            "EVENT" => Ok(Self::Event),
            "VOD" => Ok(Self::Vod),
            _ => Err(Fail::Tag { column: ctx.column_of(v), expected: "EVENT or VOD" }),
        }
    }

    fn write(&self, out: &mut String) {
        out.push_str(match self {
            Self::Event => "EVENT",
            Self::Vod => "VOD",
        });
    }

    fn into_owned(self) -> Self {
        self
    }
}
