//! Tags with attribute lists: each keeps its list as written and offers a typed getter per attribute.

use std::borrow::Cow;

use crate::attr::{AttributeList, Kind, Spec};
use crate::reader::{Ctx, Fail};
use crate::tags::value::attribute_text;
use crate::tags::{TagValue, UriSlot};
use crate::value::{ByteRange, DateTime, Resolution};

/// Declares an attribute-list tag: its type, its name, the attributes it requires, an optional check run
/// after its attributes are read, and one typed getter per known attribute with the attribute's kind. An
/// attribute that is a URI is of kind `Uri`, so that the URI rewrite reaches it; the build fails when an
/// attribute named `URI` or `...-URI` is declared otherwise, or when a tag declares two.
macro_rules! attribute_tag {
    (
        $(#[$doc:meta])*
        $name:ident = $tag:literal, required: [$($req:literal),*], $(check: $check:path,)?
        { $( $fn:ident : $attr:literal => $kind:ident, $getter:ident -> $ret:ty; )* }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name<'a> {
            pub(crate) attributes: AttributeList<'a>,
        }

        impl<'a> $name<'a> {
            /// The tag's name, without `#`.
            pub const TAG: &'static str = $tag;

            pub(crate) const SPEC: Spec = Spec {
                attrs: &[$(($attr, Kind::$kind)),*],
                required: &[$($req),*],
            };

            /// Makes the tag from an attribute list (as built by hand; the parser checks what it reads).
            pub fn from_attributes(attributes: AttributeList<'a>) -> Self {
                Self { attributes }
            }

            /// Every attribute, known or not, in written order.
            pub fn attributes(&self) -> &AttributeList<'a> {
                &self.attributes
            }

            /// The attributes, for changing them.
            pub fn attributes_mut(&mut self) -> &mut AttributeList<'a> {
                &mut self.attributes
            }

            /// A copy that borrows nothing.
            pub fn into_owned(self) -> $name<'static> {
                $name { attributes: self.attributes.into_owned() }
            }

            $(
                #[doc = concat!("The `", $attr, "` attribute.")]
                pub fn $fn(&self) -> Option<$ret> {
                    self.attributes.$getter($attr)
                }
            )*
        }

        const _: () = assert!(
            $name::SPEC.uri_kinds_are_consistent(),
            concat!(
                $tag,
                ": an attribute named URI or ...-URI is of kind Uri (so that the URI rewrite reaches it), \
                 and a tag has one at most"
            )
        );

        impl<'a> TagValue<'a> for $name<'a> {
            type Owned = $name<'static>;

            const HAS_URI: bool = Self::SPEC.uri_attribute().is_some();

            fn read(ctx: &mut Ctx<'a, '_>, value: Option<&'a str>) -> Result<Self, Fail> {
                let text = attribute_text(ctx, value)?;
                let tag = Self { attributes: ctx.attributes(text, &Self::SPEC)? };
                $(
                    let column = ctx.column_of(text);
                    $check(&tag, ctx, column)?;
                )?
                Ok(tag)
            }

            fn write(&self, out: &mut String) {
                self.attributes.write(out);
            }

            fn into_owned(self) -> $name<'static> {
                Self::into_owned(self)
            }

            fn uri_slot(&mut self) -> Option<UriSlot<'_, 'a>> {
                Self::SPEC.uri_attribute().map(|name| UriSlot::Attribute(&mut self.attributes, name))
            }
        }
    };
}

attribute_tag! {
    /// EXT-X-KEY (and EXT-X-SESSION-KEY in a master playlist): how the following segments are encrypted.
    Key = "EXT-X-KEY", required: ["METHOD"], check: check_key, {
        method_text: "METHOD" => Enum, enumerated -> &str;
        uri: "URI" => Uri, quoted -> &str;
        iv_bytes: "IV" => Hex, hex -> Vec<u8>;
        keyformat_text: "KEYFORMAT" => Quoted, quoted -> &str;
        keyformat_versions_text: "KEYFORMATVERSIONS" => Quoted, quoted -> &str;
    }
}

/// The METHOD of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyMethod {
    /// Not encrypted.
    None,
    /// AES-128 CBC of whole segments, PKCS#7 padded.
    Aes128,
    /// Sample encryption (AES-128 CBC, per elementary stream samples).
    SampleAes,
    /// Sample encryption with AES-128 CTR (`SAMPLE-AES-CTR`).
    SampleAesCtr,
    /// A method this crate does not know.
    Other,
}

/// A key other than NONE needs a URI; NONE takes no other attribute; an IV is at most 128 bits (a longer
/// one cannot be an AES block, and ignoring it would decrypt with another IV than the one written).
fn check_key<'a>(key: &Key<'a>, _: &mut Ctx<'a, '_>, column: usize) -> Result<(), Fail> {
    if key.iv_bytes().is_some_and(|iv| iv.len() > 16) {
        return Err(Fail::Tag { column, expected: "an IV of at most 128 bits" });
    }
    let none = key.method_text() == Some("NONE");
    if !none && key.uri().is_none() {
        return Err(Fail::Tag { column, expected: "the required attribute URI (METHOD is not NONE)" });
    }
    if none && key.attributes().len() > 1 {
        return Err(Fail::Tag { column, expected: "no attribute other than METHOD=NONE" });
    }
    Ok(())
}

impl Key<'_> {
    /// The METHOD.
    pub fn method(&self) -> KeyMethod {
        match self.method_text() {
            Some("NONE") => KeyMethod::None,
            Some("AES-128") => KeyMethod::Aes128,
            Some("SAMPLE-AES") => KeyMethod::SampleAes,
            Some("SAMPLE-AES-CTR") => KeyMethod::SampleAesCtr,
            _ => KeyMethod::Other,
        }
    }

    /// The KEYFORMAT, `identity` when absent.
    pub fn keyformat(&self) -> &str {
        self.keyformat_text().unwrap_or("identity")
    }

    /// The KEYFORMATVERSIONS, `[1]` when absent.
    pub fn keyformat_versions(&self) -> Vec<u64> {
        match self.keyformat_versions_text() {
            Some(s) => s.split('/').filter_map(crate::value::parse_u64).collect(),
            None => vec![1],
        }
    }

    /// The explicit IV as 16 bytes (shorter hex values are left-padded with zeros), if given and not
    /// longer than 128 bits.
    pub fn iv(&self) -> Option<[u8; 16]> {
        let bytes = self.iv_bytes()?;
        if bytes.len() > 16 {
            return None;
        }
        let mut iv = [0u8; 16];
        iv[16 - bytes.len()..].copy_from_slice(&bytes);
        Some(iv)
    }
}

attribute_tag! {
    /// EXT-X-MAP: the media initialization section of the following segments.
    Map = "EXT-X-MAP", required: ["URI"], {
        uri: "URI" => Uri, quoted -> &str;
        byte_range: "BYTERANGE" => QuotedByteRange, byte_range -> ByteRange;
    }
}

attribute_tag! {
    /// EXT-X-DATERANGE: a range of time with attributes (ad breaks, SCTE-35, interstitials). Client
    /// attributes (`X-...`) are read with [`AttributeList::get`].
    DateRange = "EXT-X-DATERANGE", required: ["ID"], {
        id: "ID" => Quoted, quoted -> &str;
        class: "CLASS" => Quoted, quoted -> &str;
        start_date: "START-DATE" => QuotedDate, date -> DateTime;
        cue: "CUE" => Quoted, quoted -> &str;
        end_date: "END-DATE" => QuotedDate, date -> DateTime;
        duration: "DURATION" => Float, float -> f64;
        planned_duration: "PLANNED-DURATION" => Float, float -> f64;
        scte35_cmd: "SCTE35-CMD" => Hex, hex -> Vec<u8>;
        scte35_out: "SCTE35-OUT" => Hex, hex -> Vec<u8>;
        scte35_in: "SCTE35-IN" => Hex, hex -> Vec<u8>;
        end_on_next_text: "END-ON-NEXT" => Enum, enumerated -> &str;
    }
}

impl DateRange<'_> {
    /// Whether END-ON-NEXT=YES.
    pub fn end_on_next(&self) -> bool {
        self.end_on_next_text() == Some("YES")
    }

    /// The client attributes (`X-...`), in order.
    pub fn client_attributes(&self) -> impl Iterator<Item = &crate::attr::Attribute<'_>> {
        self.attributes.iter().filter(|a| a.name.starts_with("X-"))
    }
}

attribute_tag! {
    /// EXT-X-START: the preferred point to start playing.
    Start = "EXT-X-START", required: ["TIME-OFFSET"], {
        time_offset: "TIME-OFFSET" => SignedFloat, float -> f64;
        precise: "PRECISE" => YesNo, yes_no -> bool;
    }
}

attribute_tag! {
    /// EXT-X-DEFINE: a variable for `{$name}` substitution (NAME/VALUE, IMPORT or QUERYPARAM).
    Define = "EXT-X-DEFINE", required: [], check: register_define, {
        name: "NAME" => Quoted, quoted -> &str;
        value: "VALUE" => Quoted, quoted -> &str;
        import: "IMPORT" => Quoted, quoted -> &str;
        query_param: "QUERYPARAM" => Quoted, quoted -> &str;
    }
}

/// Makes the variable of an EXT-X-DEFINE known to the rest of the parse.
fn register_define<'a>(define: &Define<'a>, ctx: &mut Ctx<'a, '_>, column: usize) -> Result<(), Fail> {
    ctx.define(define, column)
}

attribute_tag! {
    /// EXT-X-PART-INF: the part target duration of a low-latency playlist.
    PartInf = "EXT-X-PART-INF", required: ["PART-TARGET"], {
        part_target: "PART-TARGET" => Float, float -> f64;
    }
}

attribute_tag! {
    /// EXT-X-SERVER-CONTROL: what the server supports (delta updates, blocking reloads).
    ServerControl = "EXT-X-SERVER-CONTROL", required: [], {
        can_skip_until: "CAN-SKIP-UNTIL" => Float, float -> f64;
        can_skip_dateranges: "CAN-SKIP-DATERANGES" => YesNo, yes_no -> bool;
        hold_back: "HOLD-BACK" => Float, float -> f64;
        part_hold_back: "PART-HOLD-BACK" => Float, float -> f64;
        can_block_reload: "CAN-BLOCK-RELOAD" => YesNo, yes_no -> bool;
    }
}

attribute_tag! {
    /// EXT-X-PART: a partial segment of a low-latency playlist.
    Part = "EXT-X-PART", required: ["URI", "DURATION"], {
        uri: "URI" => Uri, quoted -> &str;
        duration: "DURATION" => Float, float -> f64;
        independent: "INDEPENDENT" => YesNo, yes_no -> bool;
        byte_range: "BYTERANGE" => QuotedByteRange, byte_range -> ByteRange;
        gap: "GAP" => YesNo, yes_no -> bool;
    }
}

attribute_tag! {
    /// EXT-X-PRELOAD-HINT: a resource the client may request before it is listed.
    PreloadHint = "EXT-X-PRELOAD-HINT", required: ["TYPE", "URI"], {
        hint_type: "TYPE" => Enum, enumerated -> &str;
        uri: "URI" => Uri, quoted -> &str;
        byte_range_start: "BYTERANGE-START" => Int, integer -> u64;
        byte_range_length: "BYTERANGE-LENGTH" => Int, integer -> u64;
    }
}

attribute_tag! {
    /// EXT-X-RENDITION-REPORT: the last segment and part of another rendition.
    RenditionReport = "EXT-X-RENDITION-REPORT", required: ["URI"], {
        uri: "URI" => Uri, quoted -> &str;
        last_msn: "LAST-MSN" => Int, integer -> u64;
        last_part: "LAST-PART" => Int, integer -> u64;
    }
}

attribute_tag! {
    /// EXT-X-SKIP: segments left out of a playlist delta update.
    Skip = "EXT-X-SKIP", required: ["SKIPPED-SEGMENTS"], {
        skipped_segments: "SKIPPED-SEGMENTS" => Int, integer -> u64;
        recently_removed_dateranges: "RECENTLY-REMOVED-DATERANGES" => Quoted, quoted -> &str;
    }
}

attribute_tag! {
    /// EXT-X-MEDIA: an alternative rendition (audio, video, subtitles, closed captions).
    Rendition = "EXT-X-MEDIA", required: ["TYPE", "GROUP-ID", "NAME"], {
        media_type_text: "TYPE" => Enum, enumerated -> &str;
        uri: "URI" => Uri, quoted -> &str;
        group_id: "GROUP-ID" => Quoted, quoted -> &str;
        language: "LANGUAGE" => Quoted, quoted -> &str;
        assoc_language: "ASSOC-LANGUAGE" => Quoted, quoted -> &str;
        name: "NAME" => Quoted, quoted -> &str;
        stable_rendition_id: "STABLE-RENDITION-ID" => Quoted, quoted -> &str;
        default: "DEFAULT" => YesNo, yes_no -> bool;
        autoselect: "AUTOSELECT" => YesNo, yes_no -> bool;
        forced: "FORCED" => YesNo, yes_no -> bool;
        instream_id: "INSTREAM-ID" => Quoted, quoted -> &str;
        bit_depth: "BIT-DEPTH" => Int, integer -> u64;
        sample_rate: "SAMPLE-RATE" => Int, integer -> u64;
        characteristics: "CHARACTERISTICS" => Quoted, quoted -> &str;
        channels: "CHANNELS" => Quoted, quoted -> &str;
    }
}

/// The TYPE of a rendition.
///
/// Matched exhaustively by the crates above: RFC 8216 defines exactly four values, and `Other` stands for
/// every other text ([`Rendition::media_type_text`] keeps it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(
    clippy::exhaustive_enums,
    reason = "the RFC's four TYPE values and Other for the rest: closed by definition"
)]
pub enum MediaType {
    /// AUDIO.
    Audio,
    /// VIDEO.
    Video,
    /// SUBTITLES.
    Subtitles,
    /// CLOSED-CAPTIONS.
    ClosedCaptions,
    /// A type this crate does not know.
    Other,
}

impl Rendition<'_> {
    /// The TYPE.
    pub fn media_type(&self) -> MediaType {
        match self.media_type_text() {
            Some("AUDIO") => MediaType::Audio,
            Some("VIDEO") => MediaType::Video,
            Some("SUBTITLES") => MediaType::Subtitles,
            Some("CLOSED-CAPTIONS") => MediaType::ClosedCaptions,
            _ => MediaType::Other,
        }
    }
}

attribute_tag! {
    /// The attributes of EXT-X-STREAM-INF (a variant's URI is in [`Variant`]).
    StreamInf = "EXT-X-STREAM-INF", required: ["BANDWIDTH"], {
        bandwidth: "BANDWIDTH" => Int, integer -> u64;
        average_bandwidth: "AVERAGE-BANDWIDTH" => Int, integer -> u64;
        score: "SCORE" => Float, float -> f64;
        codecs: "CODECS" => Quoted, quoted -> &str;
        supplemental_codecs: "SUPPLEMENTAL-CODECS" => Quoted, quoted -> &str;
        resolution: "RESOLUTION" => Resolution, resolution -> Resolution;
        frame_rate: "FRAME-RATE" => Float, float -> f64;
        hdcp_level: "HDCP-LEVEL" => Enum, enumerated -> &str;
        allowed_cpc: "ALLOWED-CPC" => Quoted, quoted -> &str;
        video_range: "VIDEO-RANGE" => Enum, enumerated -> &str;
        req_video_layout: "REQ-VIDEO-LAYOUT" => Quoted, quoted -> &str;
        stable_variant_id: "STABLE-VARIANT-ID" => Quoted, quoted -> &str;
        audio: "AUDIO" => Quoted, quoted -> &str;
        video: "VIDEO" => Quoted, quoted -> &str;
        subtitles: "SUBTITLES" => Quoted, quoted -> &str;
        closed_captions: "CLOSED-CAPTIONS" => QuotedOrNone, text -> &str;
        pathway_id: "PATHWAY-ID" => Quoted, quoted -> &str;
        program_id: "PROGRAM-ID" => Int, integer -> u64;
    }
}

attribute_tag! {
    /// EXT-X-I-FRAME-STREAM-INF: a variant of I-frames only.
    IFrameStreamInf = "EXT-X-I-FRAME-STREAM-INF", required: ["BANDWIDTH", "URI"], {
        uri: "URI" => Uri, quoted -> &str;
        bandwidth: "BANDWIDTH" => Int, integer -> u64;
        average_bandwidth: "AVERAGE-BANDWIDTH" => Int, integer -> u64;
        score: "SCORE" => Float, float -> f64;
        codecs: "CODECS" => Quoted, quoted -> &str;
        supplemental_codecs: "SUPPLEMENTAL-CODECS" => Quoted, quoted -> &str;
        resolution: "RESOLUTION" => Resolution, resolution -> Resolution;
        hdcp_level: "HDCP-LEVEL" => Enum, enumerated -> &str;
        allowed_cpc: "ALLOWED-CPC" => Quoted, quoted -> &str;
        video_range: "VIDEO-RANGE" => Enum, enumerated -> &str;
        req_video_layout: "REQ-VIDEO-LAYOUT" => Quoted, quoted -> &str;
        stable_variant_id: "STABLE-VARIANT-ID" => Quoted, quoted -> &str;
        video: "VIDEO" => Quoted, quoted -> &str;
        pathway_id: "PATHWAY-ID" => Quoted, quoted -> &str;
        program_id: "PROGRAM-ID" => Int, integer -> u64;
    }
}

attribute_tag! {
    /// EXT-X-SESSION-DATA: arbitrary session data.
    SessionData = "EXT-X-SESSION-DATA", required: ["DATA-ID"], {
        data_id: "DATA-ID" => Quoted, quoted -> &str;
        value: "VALUE" => Quoted, quoted -> &str;
        uri: "URI" => Uri, quoted -> &str;
        format: "FORMAT" => Enum, enumerated -> &str;
        language: "LANGUAGE" => Quoted, quoted -> &str;
    }
}

attribute_tag! {
    /// EXT-X-CONTENT-STEERING: the content steering server.
    ContentSteering = "EXT-X-CONTENT-STEERING", required: ["SERVER-URI"], {
        server_uri: "SERVER-URI" => Uri, quoted -> &str;
        pathway_id: "PATHWAY-ID" => Quoted, quoted -> &str;
    }
}

/// A variant stream: EXT-X-STREAM-INF and the URI line after it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(
    clippy::exhaustive_structs,
    reason = "a variant stream is its EXT-X-STREAM-INF and its URI line, by the grammar"
)]
pub struct Variant<'a> {
    /// The EXT-X-STREAM-INF attributes.
    pub stream_inf: StreamInf<'a>,
    /// The media playlist's URI.
    pub uri: Cow<'a, str>,
}

impl Variant<'_> {
    /// A copy that borrows nothing.
    pub fn into_owned(self) -> Variant<'static> {
        Variant { stream_inf: self.stream_inf.into_owned(), uri: Cow::Owned(self.uri.into_owned()) }
    }
}

/// A variant is read in two steps: its EXT-X-STREAM-INF here, with an empty URI, and its URI line by the
/// master reader, from the line that follows.
impl<'a> TagValue<'a> for Variant<'a> {
    type Owned = Variant<'static>;

    const HAS_URI: bool = true;

    fn read(ctx: &mut Ctx<'a, '_>, value: Option<&'a str>) -> Result<Self, Fail> {
        Ok(Self { stream_inf: StreamInf::read(ctx, value)?, uri: Cow::Borrowed("") })
    }

    fn write(&self, out: &mut String) {
        self.stream_inf.write(out);
        out.push('\n');
        out.push_str(&self.uri);
    }

    fn into_owned(self) -> Variant<'static> {
        Self::into_owned(self)
    }

    fn uri_slot(&mut self) -> Option<UriSlot<'_, 'a>> {
        Some(UriSlot::Line(&mut self.uri))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::AttributeValue;

    #[test]
    fn key_defaults_and_iv() {
        let mut a = AttributeList::new();
        a.set("METHOD", AttributeValue::Unquoted("SAMPLE-AES-CTR".into()));
        a.set("IV", AttributeValue::Unquoted("0x01".into()));
        let k = Key::from_attributes(a);
        assert_eq!(k.method(), KeyMethod::SampleAesCtr);
        assert_eq!(k.keyformat(), "identity");
        assert_eq!(k.keyformat_versions(), vec![1]);
        assert_eq!(k.iv().unwrap()[15], 1);
    }
}
