//! The caller's hook for fresh URLs, headers or cookies when the ones a task uses expire.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What the [`RefreshHook`] is asked about.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RefreshRequest {
    /// The task's asset identifier.
    pub asset: String,
    /// The master (or media) playlist URL the task uses now.
    pub url: String,
    /// The URI that was refused: the segment's or the key's, exactly as it was asked for (with the
    /// signature that expired), not the one the job is bound to after an earlier refresh.
    pub refused_uri: String,
    /// The HTTP status it was refused with (401, 403 or 410).
    pub status: u16,
}

/// What a [`RefreshHook`] hands back. Everything is optional; what is given replaces what the task used.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Refresh {
    /// A fresh master (or media) playlist URL: the playlists are fetched again and every pending segment
    /// and key is re-bound, by identity, to its fresh URI. A fresh master playlist is read again and the
    /// same renditions found in it by identity (variants by bandwidth, codecs and resolution, renditions
    /// by type, group, name and language), so that the media playlists' own fresh signatures are used;
    /// segments are then matched by discontinuity sequence, media sequence and byte range, never by URI.
    pub url: Option<String>,
    /// Headers to send from now on (replacing the session's and earlier refreshes').
    pub headers: Option<Vec<(String, String)>>,
    /// Cookies to send from now on.
    pub cookies: Option<Vec<(String, String)>>,
}

impl Refresh {
    /// Nothing new yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a fresh playlist URL.
    #[must_use]
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Sets the headers to send from now on.
    #[must_use]
    pub fn headers(mut self, headers: Vec<(String, String)>) -> Self {
        self.headers = Some(headers);
        self
    }

    /// Sets the cookies to send from now on.
    #[must_use]
    pub fn cookies(mut self, cookies: Vec<(String, String)>) -> Self {
        self.cookies = Some(cookies);
        self
    }
}

/// The boxed future a [`RefreshHook`] returns: `None` when no fresh URLs can be had (the refused
/// segments then fail, or become gaps under the tolerant policy).
pub type RefreshFuture<'a> = Pin<Box<dyn Future<Output = Option<Refresh>> + Send + 'a>>;

/// The caller's way to renew signed URLs, headers or cookies when they expire.
///
/// The hook is asked once per expiry: segments and keys refused together wait for the same answer, and a
/// refusal of a URI that an answer has already replaced just retries with the fresh one. While it runs,
/// no request leaves with the URIs being replaced. A hook that panics fails the task with
/// [`Error::RefreshHookPanicked`](crate::Error::RefreshHookPanicked); one that takes longer than
/// [`SessionConfig::refresh_timeout`](crate::SessionConfig::refresh_timeout) counts as having no fresh URLs. Suspending or cancelling the task
/// while the hook runs stops waiting for it (after a suspend, the next refusal asks again).
pub trait RefreshHook: Send + Sync {
    /// Called when a segment or key URL is refused with 401, 403 or 410.
    fn refresh<'a>(&'a self, request: &'a RefreshRequest) -> RefreshFuture<'a>;
}

/// A [`RefreshHook`] from a plain function, for hooks that need no IO.
pub fn refresh_fn<F>(f: F) -> Arc<dyn RefreshHook>
where
    F: Fn(&RefreshRequest) -> Option<Refresh> + Send + Sync + 'static,
{
    struct FnHook<F>(F);
    impl<F: Fn(&RefreshRequest) -> Option<Refresh> + Send + Sync> RefreshHook for FnHook<F> {
        fn refresh<'a>(&'a self, request: &'a RefreshRequest) -> RefreshFuture<'a> {
            let answer = (self.0)(request);
            Box::pin(async move { answer })
        }
    }
    Arc::new(FnHook(f))
}
