//! Loading AES-128 keys: `http(s)` and `data:` URIs, one fetch per key, a hook for the caller, and early
//! errors for what cannot be decrypted.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::client::Client;
use crate::error::Error;
use crate::request::Request;
use crate::retry::full_jitter;

/// An AES-128 key.
pub type Key = [u8; 16];

/// What to do with the segments under an `EXT-X-KEY`, decided before anything is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyPlan {
    /// `METHOD=NONE`: segments are in the clear.
    Clear,
    /// `METHOD=AES-128`: load the key and decrypt whole segments (AES-128-CBC, PKCS#7).
    DecryptAes128,
    /// Store the segments as they are, still encrypted (asked for, for a method this crate cannot decrypt).
    KeepCiphertext,
}

/// The `KEYFORMAT` of FairPlay Streaming.
const FAIRPLAY_KEYFORMAT: &str = "com.apple.streamingkeydelivery";

/// Decides, from an `EXT-X-KEY`'s `METHOD`, `URI` and `KEYFORMAT`, how its segments are handled; fails
/// early with a clear error for what cannot be decrypted (FairPlay `skd://` keys, SAMPLE-AES,
/// SAMPLE-AES-CTR, unknown methods), unless `keep_ciphertext` asks to store such segments as they are.
pub fn plan_key(
    method: &str,
    uri: Option<&str>,
    keyformat: Option<&str>,
    keep_ciphertext: bool,
) -> Result<KeyPlan, Error> {
    let fairplay = uri.is_some_and(|u| u.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("skd://")))
        || keyformat == Some(FAIRPLAY_KEYFORMAT);
    if method == "NONE" {
        return Ok(KeyPlan::Clear);
    }
    if fairplay {
        return if keep_ciphertext {
            Ok(KeyPlan::KeepCiphertext)
        } else {
            Err(Error::FairPlay { uri: uri.unwrap_or_default().to_owned() })
        };
    }
    let identity = keyformat.is_none_or(|f| f == "identity");
    match method {
        "AES-128" if identity => match uri {
            Some(u) if !u.is_empty() => Ok(KeyPlan::DecryptAes128),
            _ => {
                Err(Error::InvalidUri { uri: String::new(), reason: "AES-128 key without a URI".to_owned() })
            }
        },
        _ if keep_ciphertext => Ok(KeyPlan::KeepCiphertext),
        _ => Err(Error::UnsupportedEncryption {
            method: if identity {
                method.to_owned()
            } else {
                format!("{method} (KEYFORMAT {})", keyformat.unwrap_or_default())
            },
            uri: uri.map(str::to_owned),
        }),
    }
}

/// What a [`KeyHook`] decides for a key URI. Its `Debug` output never shows a key.
#[derive(Clone)]
#[non_exhaustive]
pub enum KeyAction {
    /// Use this key; nothing is fetched.
    Use(Key),
    /// Fetch with this request instead (a signed URI, a token header, cookies).
    Fetch(Box<Request>),
    /// Load the URI as usual.
    Default,
}

impl fmt::Debug for KeyAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Keys do not belong in logs.
            Self::Use(_) => f.debug_tuple("Use").field(&format_args!("***")).finish(),
            Self::Fetch(req) => f.debug_tuple("Fetch").field(req).finish(),
            Self::Default => f.write_str("Default"),
        }
    }
}

/// The boxed future a [`KeyHook`] returns.
pub type KeyHookFuture<'a> = Pin<Box<dyn Future<Output = Result<KeyAction, Error>> + Send + 'a>>;

/// The caller's say over each key, asked once per key URI before anything is fetched. Services that
/// sign key requests, need a token, or hand out keys out of band plug in here.
pub trait KeyHook: Send + Sync {
    /// Decides how to obtain the key at `uri`.
    fn resolve<'a>(&'a self, uri: &'a str) -> KeyHookFuture<'a>;
}

/// A [`KeyHook`] from a plain function, for hooks that need no IO.
pub fn hook_fn<F>(f: F) -> Arc<dyn KeyHook>
where
    F: Fn(&str) -> KeyAction + Send + Sync + 'static,
{
    struct FnHook<F>(F);
    impl<F: Fn(&str) -> KeyAction + Send + Sync> KeyHook for FnHook<F> {
        fn resolve<'a>(&'a self, uri: &'a str) -> KeyHookFuture<'a> {
            let action = (self.0)(uri);
            Box::pin(async move { Ok(action) })
        }
    }
    Arc::new(FnHook(f))
}

/// How hard key requests are tried.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyConfig {
    /// Attempts for a key answered with 403 or 404, which CDNs give out transiently for keys (a lost key
    /// fails the whole asset, so it is worth a few tries). Default 3. Other failures follow the client's
    /// retry policy.
    pub attempts: u32,
    /// The backoff ceiling between those attempts, doubled each time. Default 500 ms.
    pub delay: Duration,
}

impl Default for KeyConfig {
    fn default() -> Self {
        Self { attempts: 3, delay: Duration::from_millis(500) }
    }
}

impl KeyConfig {
    /// Sets the attempts on 403 and 404.
    #[must_use]
    pub fn attempts(mut self, n: u32) -> Self {
        self.attempts = n.max(1);
        self
    }
    /// Sets the backoff ceiling between those attempts.
    #[must_use]
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

type Slot = Arc<OnceCell<Result<Key, Error>>>;

/// Loads and caches keys by URI: each key is fetched once, and concurrent requests for the same key wait
/// for that one fetch. Use one loader per asset (or share one where keys are the same across assets).
///
/// A failed load is not cached: a later call tries again.
pub struct KeyLoader {
    client: Client,
    cfg: KeyConfig,
    hook: Option<Arc<dyn KeyHook>>,
    cache: Mutex<HashMap<String, Slot>>,
}

impl fmt::Debug for KeyLoader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.cache.lock().map(|c| c.len()).unwrap_or_default();
        // Keys themselves are never printed.
        f.debug_struct("KeyLoader")
            .field("cfg", &self.cfg)
            .field("hook", &self.hook.is_some())
            .field("cached", &n)
            .finish()
    }
}

impl KeyLoader {
    /// A loader fetching through `client`.
    pub fn new(client: Client) -> Self {
        Self { client, cfg: KeyConfig::default(), hook: None, cache: Mutex::new(HashMap::new()) }
    }

    /// Sets the retry settings for key requests.
    #[must_use]
    pub fn with_config(mut self, cfg: KeyConfig) -> Self {
        self.cfg = cfg;
        self
    }

    /// Sets the hook asked for each key URI before it is loaded.
    #[must_use]
    pub fn with_hook(mut self, hook: Arc<dyn KeyHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Supplies a key for a URI: it will never be fetched.
    pub fn insert(&self, uri: &str, key: Key) {
        let slot: Slot = Arc::new(OnceCell::new_with(Some(Ok(key))));
        self.lock().insert(uri.to_owned(), slot);
    }

    /// The 16-byte key at `uri` (absolute `http`/`https`, or `data:`), from the cache or loaded once.
    pub async fn load(&self, uri: &str) -> Result<Key, Error> {
        let slot = self.lock().entry(uri.to_owned()).or_default().clone();
        let result = slot.get_or_init(|| self.fetch(uri)).await.clone();
        if result.is_err() {
            let mut cache = self.lock();
            if cache.get(uri).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                cache.remove(uri);
            }
        }
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn fetch(&self, uri: &str) -> Result<Key, Error> {
        let action = match &self.hook {
            Some(h) => h.resolve(uri).await?,
            None => KeyAction::Default,
        };
        let req = match action {
            KeyAction::Use(k) => return Ok(k),
            KeyAction::Fetch(r) => *r,
            KeyAction::Default => {
                let lower = uri.get(..5).map(str::to_ascii_lowercase);
                if lower.as_deref() == Some("data:") {
                    return key_from_bytes(&parse_data_uri(uri)?, shorten(uri));
                }
                if uri.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("skd://")) {
                    return Err(Error::FairPlay { uri: uri.to_owned() });
                }
                Request::get(uri)?
            }
        };
        // A key is 16 bytes; anything much larger is an error page or an attack, not a key.
        let req = req.max_size(1024);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.client.get_bytes(req.clone()).await {
                Ok(bytes) => return key_from_bytes(&bytes, uri.to_owned()),
                Err(Error::TooLarge { .. }) => {
                    return Err(Error::KeyLength { uri: uri.to_owned(), len: 1025 });
                }
                Err(e @ Error::Status { status: 403 | 404, .. }) if attempt < self.cfg.attempts => {
                    let ceiling = self.cfg.delay.saturating_mul(1 << (attempt - 1).min(16));
                    drop(e);
                    tokio::time::sleep(full_jitter(ceiling)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn shorten(uri: &str) -> String {
    match uri.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &uri[..i]),
        None => uri.to_owned(),
    }
}

fn key_from_bytes(bytes: &[u8], named: String) -> Result<Key, Error> {
    <Key>::try_from(bytes).map_err(|_| Error::KeyLength { uri: named, len: bytes.len() as u64 })
}

/// Decodes a `data:` URI (RFC 2397): `data:[<mediatype>][;base64],<data>`, percent-encoded or base64.
///
/// Never panics; errors name the URI (shortened to 64 characters).
pub fn parse_data_uri(uri: &str) -> Result<Vec<u8>, Error> {
    let bad = |reason: &str| Error::InvalidDataUri { uri: shorten(uri), reason: reason.to_owned() };
    let rest = match uri.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("data:") => &uri[5..],
        _ => return Err(bad("does not start with data:")),
    };
    let (meta, data) = rest.split_once(',').ok_or_else(|| bad("no comma before the data"))?;
    let base64 = meta.rsplit(';').next().is_some_and(|p| p.trim().eq_ignore_ascii_case("base64"));
    let raw = percent_decode(data.as_bytes()).ok_or_else(|| bad("invalid percent-encoding"))?;
    if base64 { base64_decode(&raw).ok_or_else(|| bad("invalid base64")) } else { Ok(raw) }
}

fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let h = crate::proxy::hex(*s.get(i + 1)?)?;
            let l = crate::proxy::hex(*s.get(i + 2)?)?;
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Standard or URL-safe base64, padding optional, whitespace ignored.
fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut padding = 0;
    for &c in s {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return None,
        };
        // Data after padding is malformed.
        if padding > 0 {
            return None;
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Six leftover bits cannot come from whole bytes.
    if bits == 6 || padding > 2 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_out_of_debug_output() {
        let debug = format!("{:?}", KeyAction::Use(*b"0123456789abcdef"));
        assert_eq!(debug, "Use(***)");
        assert!(!format!("{:?}", KeyAction::Use([0x42; 16])).contains("66"));
        let req = Request::get("https://keys.example/k1").unwrap();
        assert!(format!("{:?}", KeyAction::Fetch(Box::new(req))).contains("https://keys.example/k1"));
    }

    #[test]
    fn data_uris() {
        assert_eq!(parse_data_uri("data:,A%20brief%20note").unwrap(), b"A brief note");
        assert_eq!(parse_data_uri("data:text/plain;base64,SGVsbG8=").unwrap(), b"Hello");
        assert_eq!(parse_data_uri("DATA:;base64,SGVsbG8").unwrap(), b"Hello");
        assert_eq!(
            parse_data_uri("data:application/octet-stream;base64,AAECAwQFBgcICQoLDA0ODw==").unwrap(),
            (0u8..16).collect::<Vec<_>>()
        );
        assert!(parse_data_uri("data:;base64,SGVsbG8=x").is_err());
        assert!(parse_data_uri("data:;base64,S").is_err());
        assert!(parse_data_uri("data:no-comma").is_err());
        assert!(parse_data_uri("data:,%zz").is_err());
        assert!(parse_data_uri("http://x/").is_err());
    }

    #[test]
    fn plans() {
        assert_eq!(plan_key("NONE", None, None, false).unwrap(), KeyPlan::Clear);
        assert_eq!(plan_key("AES-128", Some("k.key"), None, false).unwrap(), KeyPlan::DecryptAes128);
        assert_eq!(
            plan_key("AES-128", Some("k.key"), Some("identity"), false).unwrap(),
            KeyPlan::DecryptAes128
        );
        assert!(matches!(plan_key("SAMPLE-AES", Some("skd://x"), None, false), Err(Error::FairPlay { .. })));
        assert!(matches!(
            plan_key("SAMPLE-AES", Some("https://k"), Some(FAIRPLAY_KEYFORMAT), false),
            Err(Error::FairPlay { .. })
        ));
        assert!(matches!(
            plan_key("SAMPLE-AES-CTR", Some("https://k"), None, false),
            Err(Error::UnsupportedEncryption { .. })
        ));
        assert_eq!(plan_key("SAMPLE-AES", Some("skd://x"), None, true).unwrap(), KeyPlan::KeepCiphertext);
        assert_eq!(plan_key("SAMPLE-AES", Some("https://k"), None, true).unwrap(), KeyPlan::KeepCiphertext);
        assert!(plan_key("AES-128", None, None, false).is_err());
    }
}
