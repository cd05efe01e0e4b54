//! Resolving a redirect's `Location` against the URI that answered (RFC 3986, section 5.2).

use http::Uri;

/// Resolves `reference` against the absolute `base`.
pub(crate) fn resolve(base: &Uri, reference: &str) -> Result<Uri, String> {
    let reference = reference.trim();
    if reference.is_empty() {
        return Err("empty Location".to_owned());
    }
    let scheme = base.scheme_str().ok_or("base URI has no scheme")?;
    let authority = base.authority().ok_or("base URI has no authority")?.as_str();
    let has_scheme = reference.split_once(':').is_some_and(|(s, _)| {
        !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            && s.as_bytes()[0].is_ascii_alphabetic()
    });
    let target = if has_scheme {
        let (s, rest) = reference.split_once(':').unwrap_or_default();
        // The scheme is case-insensitive; the rest is kept as is.
        format!("{}:{rest}", s.to_ascii_lowercase())
    } else if let Some(rest) = reference.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else {
        let ref_path_query = reference.split('#').next().unwrap_or_default();
        let base_path = base.path();
        let (ref_path, ref_query) = match ref_path_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (ref_path_query, None),
        };
        let path = if ref_path.is_empty() {
            base_path.to_owned()
        } else if ref_path.starts_with('/') {
            remove_dot_segments(ref_path)
        } else {
            let dir = match base_path.rfind('/') {
                Some(i) => &base_path[..=i],
                None => "/",
            };
            remove_dot_segments(&format!("{dir}{ref_path}"))
        };
        let query = match (ref_query, ref_path.is_empty()) {
            (Some(q), _) => format!("?{q}"),
            (None, true) => base.query().map(|q| format!("?{q}")).unwrap_or_default(),
            (None, false) => String::new(),
        };
        format!("{scheme}://{authority}{path}{query}")
    };
    // A fragment never goes on the wire.
    let target = target.split('#').next().unwrap_or_default();
    target.parse::<Uri>().map_err(|e| format!("invalid Location {reference:?}: {e}"))
}

fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if joined.starts_with('/') { joined } else { format!("/{joined}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3986_examples() {
        let base: Uri = "http://a/b/c/d;p?q".parse().unwrap();
        let cases = [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g/"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            ("g#s", "http://a/b/c/g"),
            ("..", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("g/../h", "http://a/b/c/h"),
            ("HTTPS://x.example/y", "https://x.example/y"),
        ];
        for (r, want) in cases {
            assert_eq!(resolve(&base, r).unwrap().to_string(), want, "{r}");
        }
        assert!(resolve(&base, "").is_err());
    }
}
