//! Language tags: HLS gives RFC 5646 tags (`en`, `fr-CA`, `yue`), containers want ISO 639-2 codes.

use isolang::Language;

/// The ISO 639-2/T code of an RFC 5646 tag's primary language (`fr-CA` gives `fra`), as MP4's `mdhd`
/// wants it; `und` when the tag names no known language.
pub(crate) fn iso639_2t(tag: Option<&str>) -> String {
    let Some(primary) = tag.and_then(|t| t.split(['-', '_']).next()).map(str::to_ascii_lowercase) else {
        return "und".to_owned();
    };
    let language = match primary.len() {
        2 => Language::from_639_1(&primary),
        3 => Language::from_639_3(&primary).or_else(|| {
            BIBLIOGRAPHIC.iter().find(|(b, _)| *b == primary).and_then(|(_, t)| Language::from_639_3(t))
        }),
        _ => None,
    };
    language.map_or_else(|| "und".to_owned(), |l| l.to_639_3().to_owned())
}

/// The ISO 639-2/B code (`fre` for French), as Matroska and MPEG-TS descriptors conventionally carry it.
pub(crate) fn iso639_2b(tag: Option<&str>) -> String {
    let t = iso639_2t(tag);
    BIBLIOGRAPHIC.iter().find(|(_, tc)| *tc == t).map_or(t, |(b, _)| (*b).to_owned())
}

/// The languages whose ISO 639-2 bibliographic code differs from the terminology one: (B, T).
const BIBLIOGRAPHIC: [(&str, &str); 20] = [
    ("alb", "sqi"),
    ("arm", "hye"),
    ("baq", "eus"),
    ("bur", "mya"),
    ("chi", "zho"),
    ("cze", "ces"),
    ("dut", "nld"),
    ("fre", "fra"),
    ("geo", "kat"),
    ("ger", "deu"),
    ("gre", "ell"),
    ("ice", "isl"),
    ("mac", "mkd"),
    ("mao", "mri"),
    ("may", "msa"),
    ("per", "fas"),
    ("rum", "ron"),
    ("slo", "slk"),
    ("tib", "bod"),
    ("wel", "cym"),
];

/// Whether a rendition's `LANGUAGE` matches what a user asked for: the same tag, or the same primary
/// language (`en` matches `en-US`), compared without case; or the same ISO 639-2 language (`fre` matches
/// `fr`).
pub(crate) fn matches(rendition: Option<&str>, wanted: &str) -> bool {
    let Some(have) = rendition else { return false };
    if have.eq_ignore_ascii_case(wanted) {
        return true;
    }
    let primary = |t: &str| t.split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
    if primary(have) == primary(wanted) {
        return true;
    }
    let t = iso639_2t(Some(wanted));
    t != "und" && iso639_2t(Some(have)) == t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_become_iso_639_2() {
        assert_eq!(iso639_2t(Some("en")), "eng");
        assert_eq!(iso639_2t(Some("fr-CA")), "fra");
        assert_eq!(iso639_2b(Some("fr")), "fre");
        assert_eq!(iso639_2t(Some("ger")), "deu");
        assert_eq!(iso639_2b(Some("de")), "ger");
        assert_eq!(iso639_2t(Some("zh-Hant")), "zho");
        assert_eq!(iso639_2t(Some("x-klingon")), "und");
        assert_eq!(iso639_2t(None), "und");
    }

    #[test]
    fn languages_match_by_tag_primary_language_or_code() {
        assert!(matches(Some("en-US"), "en"));
        assert!(matches(Some("FR"), "fr"));
        assert!(matches(Some("fr"), "fre"));
        assert!(matches(Some("de"), "deu"));
        assert!(!matches(Some("en"), "fr"));
        assert!(!matches(None, "en"));
    }
}
