//! Request paths: split and percent-decoded one segment at a time, refusing what could name anything but
//! a plain file name (`..`, `.`, empty segments, encoded slashes, backslashes, control characters).

/// The decoded segments of an absolute request path (`/asset/a/master.m3u8` gives `asset`, `a`,
/// `master.m3u8`; `/` gives none), or `None` when the path is refused.
pub(crate) fn segments(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix('/')?;
    if rest.is_empty() {
        return Some(Vec::new());
    }
    rest.split('/').map(decode_segment).collect()
}

/// Percent-decodes one segment and checks that it is a plain name.
fn decode_segment(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                out.push(value);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    let name = String::from_utf8(out).ok()?;
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control);
    plain.then_some(name)
}

/// The value of `name` in a query string (`audio=fr&x=1`), percent-decoded; `+` stays a plus.
pub(crate) fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| decode_segment(value)).flatten()
    })
}

/// Whether a query string has the key `name` (with any value, even one that does not decode).
pub(crate) fn has_query_key(query: Option<&str>, name: &str) -> bool {
    query.is_some_and(|q| q.split('&').any(|pair| pair.split('=').next() == Some(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_split_and_decode() {
        assert_eq!(segments("/"), Some(vec![]));
        assert_eq!(segments("/asset/a/master.m3u8").unwrap(), ["asset", "a", "master.m3u8"]);
        assert_eq!(segments("/asset/a%2Db/x").unwrap(), ["asset", "a-b", "x"]);
    }

    #[test]
    fn traversal_and_odd_names_are_refused() {
        for bad in [
            "",
            "asset",
            "/asset/../x",
            "/asset/%2e%2e/x",
            "/asset/%2E%2E/x",
            "/asset/./x",
            "/asset/%2e/x",
            "/asset//x",
            "/asset/a/",
            "/asset/a%2fb",
            "/asset/a%2Fb",
            "/asset/a%5cb",
            "/asset/a\\b",
            "/asset/a%00b",
            "/asset/a%0ab",
            "/asset/%",
            "/asset/%4",
            "/asset/%zz",
            "/asset/%ff",
            "//etc/passwd",
        ] {
            assert_eq!(segments(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn query_values() {
        assert_eq!(query_value(Some("audio=audio-fr"), "audio").as_deref(), Some("audio-fr"));
        assert_eq!(query_value(Some("x=1&audio=a%2Db"), "audio").as_deref(), Some("a-b"));
        assert_eq!(query_value(Some("audio=..%2f"), "audio"), None);
        assert_eq!(query_value(None, "audio"), None);
    }
}
