//! Choosing a proxy for a URI: explicit settings or the usual environment variables.

use crate::config::ProxyConfig;
use crate::error::Error;

/// A parsed proxy: where to connect, whether to speak TLS to it, and its Basic credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Proxy {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
    pub(crate) authorization: Option<String>,
}

/// The resolved proxy settings of a client.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProxyRules {
    http: Option<Proxy>,
    https: Option<Proxy>,
    no_proxy: Vec<String>,
    bypass_loopback: bool,
}

impl ProxyRules {
    pub(crate) fn from_config(cfg: &ProxyConfig) -> Result<Self, Error> {
        match cfg {
            ProxyConfig::None => Ok(Self::default()),
            ProxyConfig::Explicit { http, https, no_proxy } => Ok(Self {
                http: http.as_deref().map(parse_proxy).transpose()?,
                https: https.as_deref().map(parse_proxy).transpose()?,
                no_proxy: parse_no_proxy(no_proxy),
                bypass_loopback: false,
            }),
            ProxyConfig::FromEnv => Self::from_env_with(|name| std::env::var(name).ok()),
        }
    }

    /// The rules the environment gives, with `lookup` reading a variable (the process environment, or a
    /// map in tests).
    fn from_env_with(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let var = |names: &[&str]| names.iter().find_map(|n| lookup(n).filter(|v| !v.trim().is_empty()));
        let all = var(&["ALL_PROXY", "all_proxy"]);
        // The upper-case HTTP_PROXY is honoured as most tools do; CGI servers that set it from a request
        // header are not a setting this library runs in.
        let http = var(&["http_proxy", "HTTP_PROXY"]).or_else(|| all.clone());
        let https = var(&["https_proxy", "HTTPS_PROXY"]).or(all);
        let no_proxy = var(&["no_proxy", "NO_PROXY"]).unwrap_or_default();
        Ok(Self {
            http: http.as_deref().map(parse_proxy).transpose()?,
            https: https.as_deref().map(parse_proxy).transpose()?,
            no_proxy: parse_no_proxy(&no_proxy),
            bypass_loopback: true,
        })
    }

    /// The proxy to use for this scheme and host, if any.
    pub(crate) fn for_target(&self, https: bool, host: &str) -> Option<&Proxy> {
        let proxy = if https { self.https.as_ref() } else { self.http.as_ref() }?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        if self.bypass_loopback && is_loopback(&host) {
            return None;
        }
        if self.no_proxy.iter().any(|rule| no_proxy_matches(rule, &host)) {
            return None;
        }
        Some(proxy)
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn parse_no_proxy(s: &str) -> Vec<String> {
    s.split(',')
        .map(|r| r.trim().to_ascii_lowercase())
        .filter(|r| !r.is_empty())
        // A port in a rule is ignored, as curl does; the host part decides.
        .map(|r| match r.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h.to_owned(),
            _ => r,
        })
        .collect()
}

/// `*` matches everything; `example.com` and `.example.com` match the domain and its subdomains; an IP
/// matches itself; `10.0.0.0/8` matches a CIDR block.
fn no_proxy_matches(rule: &str, host: &str) -> bool {
    if rule == "*" {
        return true;
    }
    if let Some((net, bits)) = rule.split_once('/') {
        let (Ok(net), Ok(bits), Ok(ip)) =
            (net.parse::<std::net::IpAddr>(), bits.parse::<u32>(), host.parse::<std::net::IpAddr>())
        else {
            return false;
        };
        return match (net, ip) {
            (std::net::IpAddr::V4(n), std::net::IpAddr::V4(i)) if bits <= 32 => {
                let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
                u32::from(n) & mask == u32::from(i) & mask
            }
            (std::net::IpAddr::V6(n), std::net::IpAddr::V6(i)) if bits <= 128 => {
                let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
                u128::from(n) & mask == u128::from(i) & mask
            }
            _ => false,
        };
    }
    let domain = rule.trim_start_matches("*.").trim_start_matches('.');
    host == domain || host.strip_suffix(domain).is_some_and(|rest| rest.ends_with('.'))
}

/// A proxy URI as it may be printed: its `user:password@`, if any, replaced by `***@`, so that credentials
/// never reach logs or error messages.
pub(crate) fn redacted(uri: &str) -> String {
    // The same split as `parse_proxy`: the authority runs to the first '/' after the scheme, and its
    // credentials end at its last '@'.
    let start = uri.find("://").map_or(0, |i| i + 3);
    let end = uri[start..].find('/').map_or(uri.len(), |i| start + i);
    match uri[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &uri[..start], &uri[start + at..]),
        None => uri.to_owned(),
    }
}

fn parse_proxy(s: &str) -> Result<Proxy, Error> {
    let bad = |reason: &str| Error::Config(format!("proxy {:?}: {reason}", redacted(s)));
    let s = s.trim();
    // A bare `host:port` is taken as an http proxy, as curl does.
    let (tls, rest) = if let Some(r) = s.strip_prefix("http://") {
        (false, r)
    } else if let Some(r) = s.strip_prefix("https://") {
        (true, r)
    } else if s.contains("://") {
        return Err(bad("only http:// and https:// proxies are supported"));
    } else {
        (false, s)
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed IPv6 bracket"))?;
        (h.to_owned(), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| bad("invalid port"))?,
        None if tls => 443,
        None => 80,
    };
    let authorization = userinfo.map(|u| {
        let (user, pass) = u.split_once(':').unwrap_or((u, ""));
        let creds = format!("{}:{}", percent_decode(user), percent_decode(pass));
        format!("Basic {}", base64_encode(creds.as_bytes()))
    });
    Ok(Proxy { host, port, tls, authorization })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn base64_encode(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for c in input.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 { T[(n >> 6) as usize & 63] as char } else { '=' });
        out.push(if c.len() > 2 { T[n as usize & 63] as char } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_uris() {
        let p = parse_proxy("http://us%40er:p%3Ass@proxy.example:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port, p.tls), ("proxy.example", 3128, false));
        assert_eq!(
            p.authorization.as_deref(),
            Some(format!("Basic {}", base64_encode(b"us@er:p:ss")).as_str())
        );
        assert_eq!(base64_encode(b"Aladdin:open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        let p = parse_proxy("https://[::1]").unwrap();
        assert_eq!((p.host.as_str(), p.port, p.tls), ("::1", 443, true));
        assert_eq!(parse_proxy("proxy:8080").unwrap().port, 8080);
        assert!(parse_proxy("socks5://proxy:1080").is_err());
        assert!(parse_proxy("http://:80").is_err());
    }

    #[test]
    fn credentials_are_never_printed() {
        assert_eq!(redacted("http://user:secret@proxy.example:3128"), "http://***@proxy.example:3128");
        assert_eq!(redacted("https://us%40er:p@ss@proxy/x@y"), "https://***@proxy/x@y");
        assert_eq!(redacted("user:secret@proxy:8080"), "***@proxy:8080");
        assert_eq!(redacted("http://proxy.example:3128/a@b"), "http://proxy.example:3128/a@b");
        assert_eq!(redacted("proxy:8080"), "proxy:8080");
        let err = parse_proxy("http://user:secret@:3128").unwrap_err().to_string();
        assert!(err.contains("***@:3128") && !err.contains("secret"), "{err}");
        let debug = format!("{:?}", ProxyConfig::all("http://user:secret@proxy.example:3128"));
        assert!(debug.contains("***@proxy.example:3128") && !debug.contains("secret"), "{debug}");
        let debug =
            format!("{:?}", crate::ClientConfig::default().proxy(ProxyConfig::all("http://u:secret@p:1")));
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn environment_variables() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
        };
        let rules = ProxyRules::from_env_with(env(&[
            ("HTTPS_PROXY", "http://secure-proxy:3128"),
            ("http_proxy", "plain-proxy:8080"),
            ("NO_PROXY", "internal.example"),
        ]))
        .unwrap();
        assert_eq!(rules.for_target(true, "cdn.example").unwrap().host, "secure-proxy");
        assert_eq!(rules.for_target(false, "cdn.example").unwrap().port, 8080);
        assert!(rules.for_target(true, "internal.example").is_none());
        assert!(rules.for_target(false, "localhost").is_none(), "loopback bypasses environment proxies");
        let rules =
            ProxyRules::from_env_with(env(&[("ALL_PROXY", "http://all:1"), ("https_proxy", " ")])).unwrap();
        assert_eq!(rules.for_target(true, "a.example").unwrap().host, "all");
        assert_eq!(rules.for_target(false, "a.example").unwrap().host, "all");
        assert!(ProxyRules::from_env_with(env(&[])).unwrap().for_target(true, "a.example").is_none());
        assert!(ProxyRules::from_env_with(env(&[("HTTPS_PROXY", "socks5://x:1")])).is_err());
    }

    #[test]
    fn no_proxy_rules() {
        let rules = ProxyRules {
            http: Some(parse_proxy("http://p:1").unwrap()),
            https: None,
            no_proxy: parse_no_proxy(" .example.com, internal:8080 ,10.0.0.0/8,::1"),
            bypass_loopback: true,
        };
        assert!(rules.for_target(false, "cdn.example.com").is_none());
        assert!(rules.for_target(false, "example.com").is_none());
        assert!(rules.for_target(false, "notexample.com").is_some());
        assert!(rules.for_target(false, "internal").is_none());
        assert!(rules.for_target(false, "10.1.2.3").is_none());
        assert!(rules.for_target(false, "11.1.2.3").is_some());
        assert!(rules.for_target(false, "127.0.0.1").is_none());
        assert!(rules.for_target(false, "[::1]").is_none());
        assert!(rules.for_target(true, "cdn.other.org").is_none(), "no https proxy configured");
    }
}
