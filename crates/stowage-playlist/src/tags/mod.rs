//! Every tag this crate reads into a typed value, and the one table that says what each one is.
//!
//! [`table`] holds one row per tag of a media playlist ([`MediaTag`](crate::MediaTag)) and one per tag of a
//! master playlist ([`MasterTag`](crate::MasterTag)): its name, where it applies, how often it may appear and
//! the role of the URI it carries. Each row generates the tag's variant, its reading, its writing, its
//! `into_owned`, and what [`rewrite_uris`](crate::MediaPlaylist::rewrite_uris) and [`detect`](crate::detect)
//! know about it, every one an exhaustive `match` over the rows.
//!
//! A value is read and written by its type's [`TagValue`] implementation: the integers, decimals, dates and
//! enumerations of the simple tags are in [`value`], the attribute-list tags are made by `attribute_tag!` in
//! [`attribute`].
//!
//! Two checks run at compile time, so that a new URI cannot be left pointing at the origin inside an
//! offline copy: an attribute named `URI` or `...-URI` must be declared of kind `Uri`, and a row whose value
//! has a URI (a `Uri` attribute, or a URI line) must name its [`UriRole`](crate::UriRole), while a row
//! without one must say `uri: none`.

use std::borrow::Cow;

use crate::attr::AttributeList;
use crate::reader::{Ctx, Fail};

/// How the value of a tag (what follows `#NAME:`) is read and written. Implemented once per value type,
/// so that a row of the table needs nothing else.
pub(crate) trait TagValue<'a>: Sized {
    /// The same value borrowing nothing.
    type Owned;
    /// Whether the value carries a URI: the row of a tag whose value does must name the URI's role.
    const HAS_URI: bool = false;
    /// Reads the value from the text after the colon (`None` when the line has no colon).
    fn read(ctx: &mut Ctx<'a, '_>, value: Option<&'a str>) -> Result<Self, Fail>;
    /// Writes the value after the colon.
    fn write(&self, out: &mut String);
    /// A copy that borrows nothing.
    fn into_owned(self) -> Self::Owned;
    /// Where the URI is, for a value that carries one.
    fn uri_slot(&mut self) -> Option<UriSlot<'_, 'a>> {
        None
    }
}

/// Where the URI of a tag is written.
pub(crate) enum UriSlot<'t, 'a> {
    /// A quoted attribute: the list and the attribute's name.
    Attribute(&'t mut AttributeList<'a>, &'static str),
    /// A URI line of its own (a variant's, after EXT-X-STREAM-INF).
    Line(&'t mut Cow<'a, str>),
}

/// A tag without a value (`#EXT-X-ENDLIST`): anything after a colon is an error.
pub(crate) fn read_no_value(ctx: &Ctx<'_, '_>, value: Option<&str>) -> Result<(), Fail> {
    match value {
        None => Ok(()),
        Some(v) => Err(Fail::Tag { column: ctx.column_of(v) - 1, expected: "no value after this tag" }),
    }
}

/// Defines a playlist kind's tag enum from its table; see [`table`] for the columns. Every method it
/// generates matches every row, with no wildcard arm, so a row is all a new tag needs.
macro_rules! tag_table {
    // A media playlist's table: each row also says where the tag applies (`playlist` or `segment`, the
    // segment written after it) and whether a playlist may hold it `once` or `many` times.
    (
        $(#[$enum_doc:meta])*
        media $Enum:ident, rows $Row:ident {
            $(
                $(#[$doc:meta])*
                $V:ident $(($T:ty))? = $name:literal, $scope:ident, $count:ident, uri: $role:ident;
            )*
        }
    ) => {
        tag_table!(@common $(#[$enum_doc])* $Enum, $Row { $( $(#[$doc])* $V $(($T))? = $name, uri: $role; )* });

        impl $Enum<'_> {
            /// Whether the tag applies to the segment that follows it (rather than to the whole playlist).
            pub fn is_segment_tag(&self) -> bool {
                match self {
                    $( Self::$V { .. } => tag_table!(@segment $scope), )*
                    Self::Unknown(_) | Self::Comment(_) => false,
                }
            }

            /// For a tag a playlist may hold once (RFC 8216 4.4.3): a bit to track it by, and its name.
            pub(crate) fn once(&self) -> Option<(u64, &'static str)> {
                match self {
                    $( Self::$V { .. } => tag_table!(@once $count, $Row::$V, $name), )*
                    Self::Unknown(_) | Self::Comment(_) => None,
                }
            }
        }
    };

    // A master playlist's table.
    (
        $(#[$enum_doc:meta])*
        master $Enum:ident, rows $Row:ident {
            $( $(#[$doc:meta])* $V:ident $(($T:ty))? = $name:literal, uri: $role:ident; )*
        }
    ) => {
        tag_table!(@common $(#[$enum_doc])* $Enum, $Row { $( $(#[$doc])* $V $(($T))? = $name, uri: $role; )* });
    };

    (@common
        $(#[$enum_doc:meta])*
        $Enum:ident, $Row:ident {
            $( $(#[$doc:meta])* $V:ident $(($T:ty))? = $name:literal, uri: $role:ident; )*
        }
    ) => {
        $(#[$enum_doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $Enum<'a> {
            $( $(#[$doc])* $V $(($T))?, )*
            /// A tag this crate does not know (or, after a lenient parse, a malformed one): the whole line.
            Unknown(Cow<'a, str>),
            /// A comment: the whole line, with its `#`.
            Comment(Cow<'a, str>),
        }

        /// The rows of the table, numbered: a tag held once is tracked by the bit of its row.
        #[derive(Debug, Clone, Copy)]
        pub(crate) enum $Row {
            $( $V, )*
        }

        $(
            const _: () = {
                // One bit of a u64 per row tracks the tags a playlist holds once.
                assert!(($Row::$V as u32) < 64, "at most 64 rows per table");
                type Value<'a> = tag_table!(@type $($T)?);
                assert!(
                    tag_table!(@has_uri Value $(, $T)?) == tag_table!(@names_role $role),
                    concat!(
                        $name,
                        ": a tag whose value carries a URI names its role in the table (`uri: Role`), \
                         and only such a tag does (`uri: none`)"
                    )
                );
            };
        )*

        impl<'a> $Enum<'a> {
            /// A copy that borrows nothing.
            pub fn into_owned(self) -> $Enum<'static> {
                match self {
                    $( tag_table!(@pat $V, value $(, $T)?) => tag_table!(@owned $Enum, $V, value $(, $T)?), )*
                    Self::Unknown(s) => $Enum::Unknown(Cow::Owned(s.into_owned())),
                    Self::Comment(s) => $Enum::Comment(Cow::Owned(s.into_owned())),
                }
            }

            /// Whether `name` (without `#`) is a tag of this table.
            pub(crate) fn knows(name: &str) -> bool {
                matches!(name, $( $name )|*)
            }

            /// Reads the tag named `name` (without `#`) from its value; `None` when the table has no such
            /// tag.
            #[inline]
            pub(crate) fn read(
                ctx: &mut Ctx<'a, '_>,
                name: &str,
                value: Option<&'a str>,
            ) -> Option<Result<Self, Fail>> {
                Some(match name {
                    $( $name => tag_table!(@read ctx, value, $V $(, $T)?), )*
                    _ => return None,
                })
            }

            /// Writes the tag's line, with its line end.
            pub(crate) fn write(&self, out: &mut String) {
                match self {
                    $( tag_table!(@pat $V, value $(, $T)?) => tag_table!(@write out, $name, value $(, $T)?), )*
                    Self::Unknown(s) | Self::Comment(s) => out.push_str(s),
                }
                out.push('\n');
            }

            /// The URI the tag carries, with its role; `None` for a tag without one.
            pub(crate) fn uri_mut(&mut self) -> Option<(crate::UriRole, UriSlot<'_, 'a>)> {
                match self {
                    $( tag_table!(@pat $V, value $(, $T)?) => tag_table!(@uri value, $role $(, $T)?), )*
                    Self::Unknown(_) | Self::Comment(_) => None,
                }
            }
        }
    };

    // The pieces of one row.
    (@pat $V:ident, $value:ident) => { Self::$V };
    (@pat $V:ident, $value:ident, $T:ty) => { Self::$V($value) };
    (@owned $Enum:ident, $V:ident, $value:ident) => { $Enum::$V };
    (@owned $Enum:ident, $V:ident, $value:ident, $T:ty) => { $Enum::$V(TagValue::into_owned($value)) };
    (@read $ctx:ident, $value:ident, $V:ident) => {
        crate::tags::read_no_value($ctx, $value).map(|()| Self::$V)
    };
    (@read $ctx:ident, $value:ident, $V:ident, $T:ty) => {
        <$T as TagValue<'a>>::read($ctx, $value).map(Self::$V)
    };
    (@write $out:ident, $name:literal, $value:ident) => { $out.push_str(concat!("#", $name)) };
    (@write $out:ident, $name:literal, $value:ident, $T:ty) => {{
        $out.push_str(concat!("#", $name, ":"));
        TagValue::write($value, $out);
    }};
    (@uri $value:ident, none) => { None };
    (@uri $value:ident, none, $T:ty) => {{
        let _ = $value;
        None
    }};
    (@uri $value:ident, $role:ident, $T:ty) => {
        TagValue::uri_slot($value).map(|slot| (crate::UriRole::$role, slot))
    };
    (@type) => { () };
    (@type $T:ty) => { $T };
    (@has_uri $Value:ident) => {{
        // A tag without a value: `()`, which carries nothing.
        let _: Option<$Value<'static>> = None;
        false
    }};
    (@has_uri $Value:ident, $T:ty) => { <$Value<'static> as TagValue<'static>>::HAS_URI };
    (@names_role none) => { false };
    (@names_role $role:ident) => { true };
    (@segment segment) => { true };
    (@segment playlist) => { false };
    (@once once, $row:expr, $name:literal) => { Some((1u64 << ($row as u32), $name)) };
    (@once many, $row:expr, $name:literal) => { None };
}

pub(crate) mod attribute;
pub(crate) mod table;
pub(crate) mod value;

pub use table::{MasterTag, MediaTag};
