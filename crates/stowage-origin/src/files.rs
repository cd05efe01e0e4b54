//! The in-memory file map the origin serves from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::OriginError;
use crate::poison::{read, write};

/// One file the origin can serve: its bytes, content type and validators.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resource {
    /// The full body.
    pub body: Bytes,
    /// The `Content-Type` header value.
    pub content_type: String,
    /// The `ETag` header value, quotes included (for example `"5d41402a"`), or `None` to send no ETag.
    pub etag: Option<String>,
    /// The `Last-Modified` time, or `None` to send no Last-Modified header.
    pub last_modified: Option<SystemTime>,
}

impl Resource {
    /// A resource with a strong ETag derived from its bytes and a fixed Last-Modified time, so that the
    /// same bytes always get the same validators (tests can then predict `If-Range` outcomes).
    pub fn new(body: impl Into<Bytes>, content_type: impl Into<String>) -> Self {
        let body = body.into();
        let etag = Some(strong_etag(&body));
        Self {
            body,
            content_type: content_type.into(),
            etag,
            last_modified: Some(UNIX_EPOCH + Duration::from_secs(FIXED_LAST_MODIFIED)),
        }
    }

    /// Sets the ETag (quotes included); `None` sends none.
    #[must_use]
    pub fn with_etag(mut self, etag: Option<String>) -> Self {
        self.etag = etag;
        self
    }

    /// Replaces the body and its ETag (quotes included), keeping the other fields.
    pub(crate) fn with_body(mut self, body: Bytes, etag: Option<String>) -> Self {
        self.body = body;
        self.etag = etag;
        self
    }

    /// Sets the Last-Modified time; `None` sends none.
    #[must_use]
    pub fn with_last_modified(mut self, last_modified: Option<SystemTime>) -> Self {
        self.last_modified = last_modified;
        self
    }

    /// The `Last-Modified` header value (an IMF-fixdate), if any.
    pub fn last_modified_header(&self) -> Option<String> {
        self.last_modified.map(http_date)
    }
}

/// 2024-01-01T00:00:00Z: an arbitrary fixed time, so validators are reproducible across runs.
const FIXED_LAST_MODIFIED: u64 = 1_704_067_200;

/// The map of URL paths to resources that an origin serves.
///
/// `Files` is a cheap handle: clones share the same map, so a test can add, replace or remove files while
/// the origin is running (for example to change a file's bytes and so its ETag between two requests).
/// Paths are matched exactly against the request path (the query string is ignored) and always start with
/// `/`.
#[derive(Clone, Debug, Default)]
pub struct Files {
    map: Arc<RwLock<HashMap<String, Resource>>>,
}

impl Files {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the resource at `path` (a leading `/` is added when missing).
    pub fn insert(&self, path: &str, resource: Resource) {
        let path = normalise(path);
        self.write().insert(path, resource);
    }

    /// Adds or replaces `path` with `body`, using the content type guessed from the path's extension.
    pub fn insert_bytes(&self, path: &str, body: impl Into<Bytes>) {
        self.insert(path, Resource::new(body, content_type_for(path)));
    }

    /// Builder form of [`Files::insert_bytes`].
    #[must_use]
    pub fn with_bytes(self, path: &str, body: impl Into<Bytes>) -> Self {
        self.insert_bytes(path, body);
        self
    }

    /// Removes the resource at `path`, returning it.
    pub fn remove(&self, path: &str) -> Option<Resource> {
        self.write().remove(&normalise(path))
    }

    /// A copy of the resource at `path` (cheap: the body is reference-counted).
    pub fn get(&self, path: &str) -> Option<Resource> {
        self.read().get(&normalise(path)).cloned()
    }

    /// Every path in the map, sorted.
    pub fn paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = self.read().keys().cloned().collect();
        paths.sort();
        paths
    }

    /// The number of resources.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Loads every regular file under `dir` (recursively) and serves it under `mount` (for example `/` or
    /// `/clear`), with content types guessed from extensions. Returns how many files were loaded.
    pub fn load_dir(&self, mount: &str, dir: impl AsRef<Path>) -> Result<usize, OriginError> {
        let dir = dir.as_ref();
        let mount = normalise(mount);
        let mount = mount.trim_end_matches('/');
        let mut stack = vec![dir.to_path_buf()];
        let mut loaded = Vec::new();
        while let Some(current) = stack.pop() {
            let entries = std::fs::read_dir(&current).map_err(|e| io_error(&current, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| io_error(&current, e))?;
                let path = entry.path();
                let kind = entry.file_type().map_err(|e| io_error(&path, e))?;
                if kind.is_dir() {
                    stack.push(path);
                } else if kind.is_file() {
                    let body = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
                    let relative = path.strip_prefix(dir).unwrap_or(&path);
                    let mut url_path = String::from(mount);
                    for part in relative.components() {
                        url_path.push('/');
                        url_path.push_str(&part.as_os_str().to_string_lossy());
                    }
                    loaded.push((url_path, body));
                }
            }
        }
        let count = loaded.len();
        for (url_path, body) in loaded {
            self.insert_bytes(&url_path, body);
        }
        Ok(count)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Resource>> {
        // A panic while holding the lock cannot leave the map half-updated (each operation is a single
        // insert or remove), so a poisoned lock is still safe to use.
        read(&self.map)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Resource>> {
        write(&self.map)
    }
}

fn io_error(path: &Path, source: std::io::Error) -> OriginError {
    OriginError::Io { path: PathBuf::from(path), source }
}

fn normalise(path: &str) -> String {
    if path.starts_with('/') { path.to_owned() } else { format!("/{path}") }
}

/// The content type for a path, guessed from its extension (HLS, media and common text types).
pub fn content_type_for(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "m3u8" | "m3u" => "application/vnd.apple.mpegurl",
        "ts" => "video/mp2t",
        "mp4" | "m4s" | "m4v" | "cmfv" => "video/mp4",
        "m4a" | "cmfa" => "audio/mp4",
        "aac" => "audio/aac",
        "mp3" => "audio/mpeg",
        "vtt" | "webvtt" => "text/vtt",
        "json" => "application/json",
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

/// A strong ETag from the FNV-1a hash of the bytes and their length.
fn strong_etag(body: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in body {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{hash:016x}-{:x}\"", body.len())
}

/// Formats a time as an HTTP IMF-fixdate, for example `Mon, 01 Jan 2024 00:00:00 GMT`.
pub(crate) fn http_date(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let (year, month, day) = civil_from_days(days as i64);
    let month_name = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        [month as usize - 1];
    format!("{weekday}, {day:02} {month_name} {year} {hour:02}:{minute:02}:{second:02} GMT")
}

/// Days since 1970-01-01 to a (year, month, day) civil date (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_imf_fixdates() {
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            http_date(UNIX_EPOCH + Duration::from_secs(FIXED_LAST_MODIFIED)),
            "Mon, 01 Jan 2024 00:00:00 GMT"
        );
        assert_eq!(http_date(UNIX_EPOCH + Duration::from_secs(951_782_400)), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn etags_follow_the_bytes() {
        let a = Resource::new(&b"hello"[..], "text/plain");
        let b = Resource::new(&b"hello"[..], "text/plain");
        let c = Resource::new(&b"hellp"[..], "text/plain");
        assert_eq!(a.etag, b.etag);
        assert_ne!(a.etag, c.etag);
    }

    #[test]
    fn load_dir_mounts_files_under_a_prefix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("v1")).unwrap();
        std::fs::write(dir.path().join("master.m3u8"), "#EXTM3U\n").unwrap();
        std::fs::write(dir.path().join("v1").join("seg0.ts"), [0x47u8; 188]).unwrap();
        let files = Files::new();
        assert_eq!(files.load_dir("/clear/", dir.path()).unwrap(), 2);
        assert_eq!(files.paths(), vec!["/clear/master.m3u8", "/clear/v1/seg0.ts"]);
        assert_eq!(files.get("/clear/v1/seg0.ts").unwrap().content_type, "video/mp2t");
        assert!(matches!(files.load_dir("/", dir.path().join("missing")), Err(OriginError::Io { .. })));
    }
}
