//! The headers and cookies a task sends with every request, playlists, segments and keys alike.

use std::sync::{Arc, Mutex};

use stowage_fetch::keys::{KeyAction, KeyConfig, KeyHook, KeyHookFuture, KeyLoader};
use stowage_fetch::{HeaderName, HeaderValue};

use crate::Error;
use crate::runtime::counters::TaskCounters;
use crate::runtime::refresh_hook::Refresh;
use crate::runtime::shared::{SessionInner, lock};

/// Headers and cookies sent with every request of a task, replaced by refreshes.
#[derive(Debug, Clone, Default)]
pub(super) struct Auth {
    headers: Vec<(HeaderName, HeaderValue)>,
    cookies: Vec<(String, String)>,
}

impl Auth {
    pub(super) fn new(headers: &[(String, String)], cookies: &[(String, String)]) -> Result<Self, Error> {
        let mut auth = Self { headers: Vec::new(), cookies: cookies.to_vec() };
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::InvalidConfig { reason: "a header name is invalid" })?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| Error::InvalidConfig { reason: "a header value is invalid" })?;
            auth.headers.push((name, value));
        }
        Ok(auth)
    }

    pub(super) fn request(&self, uri: &str) -> Result<stowage_fetch::Request, stowage_fetch::Error> {
        let mut req = stowage_fetch::Request::get(uri)?;
        for (name, value) in &self.headers {
            req = req.header(name.clone(), value.clone());
        }
        for (name, value) in &self.cookies {
            req = req.cookie(name.clone(), value.clone());
        }
        Ok(req)
    }
}

/// Sends the task's headers and cookies with key requests, when the caller installed no key hook.
struct AuthKeys(Arc<Mutex<Auth>>);

impl KeyHook for AuthKeys {
    fn resolve<'a>(&'a self, uri: &'a str) -> KeyHookFuture<'a> {
        let action = if uri.starts_with("data:") {
            KeyAction::Default
        } else {
            match lock(&self.0).request(uri) {
                Ok(req) => KeyAction::Fetch(Box::new(req)),
                Err(_) => KeyAction::Default,
            }
        };
        Box::pin(async move { Ok(action) })
    }
}

/// Counts the key requests of a task: the loader asks its hook once for each key it loads (never for one
/// it holds), so an answer that leads to a request is one request.
struct CountedKeys {
    hook: Arc<dyn KeyHook>,
    counters: Arc<TaskCounters>,
}

impl KeyHook for CountedKeys {
    fn resolve<'a>(&'a self, uri: &'a str) -> KeyHookFuture<'a> {
        Box::pin(async move {
            let action = self.hook.resolve(uri).await?;
            let fetched = match &action {
                KeyAction::Fetch(_) => true,
                // Loaded as usual: requested when it is an http(s) URI (a `data:` key is decoded).
                KeyAction::Default => uri.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("http")),
                _ => false,
            };
            if fetched {
                self.counters.request();
            }
            Ok(action)
        })
    }
}

/// The task's key loader: the caller's key hook, or else one that sends the task's headers and cookies.
pub(super) fn key_loader(
    session: &SessionInner,
    auth: &Arc<Mutex<Auth>>,
    counters: &Arc<TaskCounters>,
) -> Arc<KeyLoader> {
    let hook: Arc<dyn KeyHook> = match &session.config.key_hook {
        Some(h) => Arc::clone(h),
        None => Arc::new(AuthKeys(Arc::clone(auth))),
    };
    let hook = Arc::new(CountedKeys { hook, counters: Arc::clone(counters) });
    // One try per load: a refused key goes to the refresh hook at once (rather than being asked again
    // with a signature known to have expired), and a lost key (404) is retried by the engine under the
    // task's retry policy, like any other job.
    let config = KeyConfig::default().attempts(1);
    Arc::new(KeyLoader::new(session.client.clone()).with_config(config).with_hook(hook))
}

/// Takes the headers and cookies of a refresh.
pub(super) fn apply_auth(auth: &Mutex<Auth>, answer: &Refresh) -> Result<(), Error> {
    let mut auth = lock(auth);
    if let Some(headers) = &answer.headers {
        auth.headers = Auth::new(headers, &[])?.headers;
    }
    if let Some(cookies) = &answer.cookies {
        auth.cookies.clone_from(cookies);
    }
    Ok(())
}
