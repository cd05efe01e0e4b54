//! Fault injection: what can go wrong, on which requests, and when.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::clock::Clock;
use crate::poison::lock;

/// Which request paths a [`FaultRule`] applies to. The query string is not part of the path.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathPattern {
    /// Every path.
    Any,
    /// Exactly this path.
    Exact(String),
    /// Paths starting with this prefix.
    Prefix(String),
    /// A glob: `*` matches any run of characters (`/` included), `?` matches one character.
    Glob(String),
}

impl PathPattern {
    /// Whether `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(exact) => path == exact,
            Self::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Self::Glob(glob) => glob_matches(glob.as_bytes(), path.as_bytes()),
        }
    }
}

/// Iterative glob matching with single-star backtracking: linear in practice, never exponential.
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// One kind of misbehaviour the origin can inject into a response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Wait this long before sending the response headers. Latencies of several matching rules add up.
    Latency(Duration),
    /// Answer with this status and a short text body instead of the file, with an optional `Retry-After`
    /// header value (seconds, or an HTTP date).
    Status {
        /// The status code, for example 503.
        status: u16,
        /// The `Retry-After` header value, if any.
        retry_after: Option<String>,
    },
    /// Answer with a redirect to `location` (a path such as `/b.ts`, or an absolute URL, for example one on
    /// another origin to test an https→http redirect).
    Redirect {
        /// 301, 302, 303, 307 or 308.
        status: u16,
        /// The `Location` header value.
        location: String,
    },
    /// Close the connection after this many body bytes. Exact on HTTP/1.1 (the bytes are flushed, then the
    /// TCP connection is closed); on HTTP/2 the stream is reset after at most this many bytes.
    CutAfter(u64),
    /// Like [`Fault::CutAfter`] at a point drawn from the seeded generator, uniformly in `0..body length`.
    CutAtRandom,
    /// Send the body no faster than this many bytes per second (a slow drip).
    Throttle {
        /// The rate in bytes per second (at least 1).
        bytes_per_second: u64,
    },
    /// Declare a `Content-Length` this many bytes longer (positive) or shorter (negative) than the body
    /// actually sent. On HTTP/1.1 a longer declaration ends with the connection closed after the real body;
    /// a shorter one sends the whole body anyway and then closes the connection.
    ContentLengthDelta(i64),
    /// Answer a range request with `200` and the full body, as servers without range support do.
    IgnoreRange,
    /// Send the body without a length: no `Content-Length`, no chunked encoding, the end of the body told
    /// only by the connection closing, as HTTP/1.0 servers and some proxies answer (RFC 9112, 6.3). The
    /// answer is an `HTTP/1.0` one on an HTTP/1 connection. Together with [`Fault::CutAfter`], the client
    /// sees a body that ends early with nothing to tell it was cut. HTTP/2 always frames its bodies, so
    /// there the answer only goes without `Content-Length`.
    CloseDelimited,
    /// Read the request and never answer it, as when packets to the server are lost: the request is held
    /// until the rule's [`window`](FaultRule::window) ends, then its connection is closed without a
    /// response (what a client eventually sees of a connection that died in an outage). Without a window
    /// the request is held until the client gives up or the origin stops. Other faults of the request do
    /// not apply.
    BlackHole,
    /// Refuse connections: while the rule's [`window`](FaultRule::window) lasts (or, without a window,
    /// until the rule is removed) the origin closes its listening socket, so that new connections are
    /// refused (`ECONNREFUSED`), and closes the connections already open; it listens again on the same
    /// port afterwards. This acts before any request is read, so only the window applies: the path, query,
    /// count and probability conditions of the rule are ignored.
    Refuse,
}

impl Fault {
    /// A plain status answer (for example 403, 404, 410 or 503) without `Retry-After`.
    pub fn status(status: u16) -> Self {
        Self::Status { status, retry_after: None }
    }

    /// `503 Service Unavailable`, with `Retry-After: seconds` when given.
    pub fn service_unavailable(retry_after_seconds: Option<u64>) -> Self {
        Self::Status { status: 503, retry_after: retry_after_seconds.map(|s| s.to_string()) }
    }

    /// `429 Too Many Requests` with `Retry-After: seconds`.
    pub fn too_many_requests(retry_after_seconds: u64) -> Self {
        Self::Status { status: 429, retry_after: Some(retry_after_seconds.to_string()) }
    }

    /// A `302 Found` redirect to `location`.
    pub fn redirect(location: impl Into<String>) -> Self {
        Self::Redirect { status: 302, location: location.into() }
    }

    /// A slow drip at `bytes_per_second`.
    pub fn throttle(bytes_per_second: u64) -> Self {
        Self::Throttle { bytes_per_second: bytes_per_second.max(1) }
    }
}

/// A fault plus the requests it applies to: a path pattern, an optional query substring, and conditions
/// on the request count, the time and chance. All conditions must hold for the fault to fire.
///
/// Two clocks are involved: [`FaultRule::after_time`] counts wall time from the moment the rule was added,
/// while [`FaultRule::during`] is a window of the origin's stream time ([`Clock`]), so that a script of
/// faults lines up with a live stream's timeline, at any clock speed.
///
/// Counting is per rule (or per path with [`FaultRule::per_path`]): every request whose path and query
/// match is counted, whether the fault fires or not, so "the first 2 requests fail" means exactly the
/// first two matching requests.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct FaultRule {
    /// The fault.
    pub fault: Fault,
    /// The paths it applies to.
    pub pattern: PathPattern,
    /// Only requests whose query string contains this text (for example an expired signature).
    pub query_contains: Option<String>,
    /// Fire only on the first `n` matching requests, then let requests succeed.
    pub first: Option<u64>,
    /// Fire only once `n` matching requests have been answered ("the URL expires after n uses").
    pub after_requests: Option<u64>,
    /// Fire only once this much time has passed since the rule was added ("the URL expires at t").
    pub after_time: Option<Duration>,
    /// Fire on this fraction (0.0 to 1.0) of matching requests, chosen by the origin's seeded generator.
    pub probability: Option<f64>,
    /// Count requests per path rather than for the rule as a whole.
    pub per_path: bool,
    /// Fire only while the origin's stream time ([`Clock::now`]) is within this window.
    pub window: Option<Range<Duration>>,
    /// Only requests whose header of this name (case-insensitive) is missing or does not contain this text:
    /// what a protected origin refuses. Boxed: rules are kept in scripts by value, and most have none.
    pub missing_header: Option<Box<(String, String)>>,
}

impl FaultRule {
    /// A rule that fires `fault` on every request.
    pub fn new(fault: Fault) -> Self {
        Self {
            fault,
            pattern: PathPattern::Any,
            query_contains: None,
            first: None,
            after_requests: None,
            after_time: None,
            probability: None,
            per_path: false,
            window: None,
            missing_header: None,
        }
    }

    /// Only this exact path.
    #[must_use]
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.pattern = PathPattern::Exact(path.into());
        self
    }

    /// Only paths starting with `prefix`.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.pattern = PathPattern::Prefix(prefix.into());
        self
    }

    /// Only paths matching the glob (`*` and `?`).
    #[must_use]
    pub fn glob(mut self, glob: impl Into<String>) -> Self {
        self.pattern = PathPattern::Glob(glob.into());
        self
    }

    /// Only requests whose query string contains `text`.
    #[must_use]
    pub fn query_contains(mut self, text: impl Into<String>) -> Self {
        self.query_contains = Some(text.into());
        self
    }

    /// Only the first `n` matching requests (then requests succeed).
    #[must_use]
    pub fn first(mut self, n: u64) -> Self {
        self.first = Some(n);
        self
    }

    /// Only after `n` matching requests have been served normally.
    #[must_use]
    pub fn after_requests(mut self, n: u64) -> Self {
        self.after_requests = Some(n);
        self
    }

    /// Only once `elapsed` has passed since the rule was added.
    #[must_use]
    pub fn after_time(mut self, elapsed: Duration) -> Self {
        self.after_time = Some(elapsed);
        self
    }

    /// Only on this fraction of matching requests (clamped to 0.0..=1.0), deterministically chosen.
    #[must_use]
    pub fn probability(mut self, fraction: f64) -> Self {
        self.probability = Some(fraction.clamp(0.0, 1.0));
        self
    }

    /// Only requests that lack a header `name` containing `text`: an origin that requires a token or a
    /// cookie, as in `FaultRule::new(Fault::status(403)).missing_header("cookie", "session=abc")`. Every
    /// header of that name is looked at.
    #[must_use]
    pub fn missing_header(mut self, name: impl Into<String>, text: impl Into<String>) -> Self {
        self.missing_header = Some(Box::new((name.into(), text.into())));
        self
    }

    /// Count requests per path (so `first(1)` fails the first request of every matching path).
    #[must_use]
    pub fn per_path(mut self) -> Self {
        self.per_path = true;
        self
    }

    /// Only while the origin's stream time is at least `from` and less than `until` (see [`Clock`]).
    #[must_use]
    pub fn during(mut self, from: Duration, until: Duration) -> Self {
        self.window = Some(from..until);
        self
    }

    /// Whether the rule's window (if any) contains stream time `now`.
    fn in_window(&self, now: Duration) -> bool {
        self.window.as_ref().is_none_or(|w| w.contains(&now))
    }
}

/// The seed used unless another is configured.
pub(crate) const DEFAULT_SEED: u64 = 0x5EED_0F0A;

/// Identifies a rule added to [`Faults`], for removing it later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RuleId(u64);

/// The origin's fault rules: a cheap handle that can be changed while the origin is running.
///
/// Decisions are deterministic: whether a probabilistic rule fires for the n-th request of a path depends
/// only on the seed, the rule, the path and n (never on the interleaving of concurrent requests), so a run
/// can be replayed exactly.
#[derive(Clone, Debug)]
pub struct Faults {
    inner: Arc<Mutex<FaultState>>,
    clock: Clock,
    /// Bumped whenever the rules change, so that the accept loop reconsiders refusals.
    changed: Arc<watch::Sender<u64>>,
}

#[derive(Debug)]
struct FaultState {
    seed: u64,
    next_id: u64,
    rules: Vec<ActiveRule>,
}

#[derive(Debug)]
struct ActiveRule {
    id: RuleId,
    rule: FaultRule,
    added: Instant,
    count: u64,
    per_path: HashMap<String, u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self::with_seed(DEFAULT_SEED)
    }
}

impl Faults {
    /// No rules, with the given seed for probabilistic decisions, on a real-time clock starting now.
    pub fn with_seed(seed: u64) -> Self {
        Self::with_clock(seed, Clock::real_time())
    }

    /// No rules, with the given seed, measuring [`FaultRule::during`] windows on `clock`.
    pub(crate) fn with_clock(seed: u64, clock: Clock) -> Self {
        let (changed, _) = watch::channel(0);
        Self {
            inner: Arc::new(Mutex::new(FaultState { seed, next_id: 0, rules: Vec::new() })),
            clock,
            changed: Arc::new(changed),
        }
    }

    /// The clock that [`FaultRule::during`] windows are measured on (the origin's).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Adds a rule; rules are evaluated in the order they were added.
    pub fn add(&self, rule: FaultRule) -> RuleId {
        let id = {
            let mut state = self.lock();
            let id = RuleId(state.next_id);
            state.next_id += 1;
            state.rules.push(ActiveRule {
                id,
                rule,
                added: Instant::now(),
                count: 0,
                per_path: HashMap::new(),
            });
            id
        };
        self.notify();
        id
    }

    /// Removes a rule; returns whether it was present.
    pub fn remove(&self, id: RuleId) -> bool {
        let removed = {
            let mut state = self.lock();
            let before = state.rules.len();
            state.rules.retain(|r| r.id != id);
            state.rules.len() != before
        };
        self.notify();
        removed
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.lock().rules.clear();
        self.notify();
    }

    /// Whether connections are refused at stream time `now`, and if so until when (`None`: until a rule
    /// is removed).
    pub(crate) fn refusing(&self, now: Duration) -> Option<Option<Duration>> {
        let state = self.lock();
        let mut until: Option<Option<Duration>> = None;
        for active in state.rules.iter().filter(|r| r.rule.fault == Fault::Refuse && r.rule.in_window(now)) {
            let end = active.rule.window.as_ref().map(|w| w.end);
            until = Some(match (until, end) {
                (None, end) => end,
                (Some(Some(a)), Some(b)) => Some(a.max(b)),
                _ => None,
            });
        }
        until
    }

    /// The earliest stream time after `now` at which a refusal window opens.
    pub(crate) fn next_refusal(&self, now: Duration) -> Option<Duration> {
        let state = self.lock();
        state
            .rules
            .iter()
            .filter(|r| r.rule.fault == Fault::Refuse)
            .filter_map(|r| r.rule.window.as_ref().map(|w| w.start))
            .filter(|&start| start > now)
            .min()
    }

    /// A receiver that sees every change of the rules.
    pub(crate) fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Changes the seed used for probabilistic decisions from now on.
    pub fn set_seed(&self, seed: u64) {
        self.lock().seed = seed;
    }

    /// The rules currently active, in evaluation order.
    pub fn rules(&self) -> Vec<(RuleId, FaultRule)> {
        self.lock().rules.iter().map(|r| (r.id, r.rule.clone())).collect()
    }

    /// Evaluates every rule against a request without headers.
    #[cfg(test)]
    pub(crate) fn evaluate(&self, path: &str, query: Option<&str>) -> Effects {
        self.evaluate_request(path, query, &http::HeaderMap::new())
    }

    /// Evaluates every rule against one request, updating the counters, and returns what to inject.
    pub(crate) fn evaluate_request(
        &self,
        path: &str,
        query: Option<&str>,
        headers: &http::HeaderMap,
    ) -> Effects {
        let now = self.clock.now();
        let mut state = self.lock();
        let seed = state.seed;
        let mut effects = Effects::default();
        for active in &mut state.rules {
            let rule = &active.rule;
            if rule.fault == Fault::Refuse || !rule.pattern.matches(path) {
                continue;
            }
            if let Some(needle) = &rule.query_contains
                && !query.is_some_and(|q| q.contains(needle.as_str()))
            {
                continue;
            }
            if let Some((name, text)) = rule.missing_header.as_deref()
                && headers
                    .get_all(name.as_str())
                    .iter()
                    .any(|v| v.to_str().is_ok_and(|v| v.contains(text.as_str())))
            {
                continue;
            }
            let path_index = {
                let n = active.per_path.entry(path.to_owned()).or_insert(0);
                *n += 1;
                *n - 1
            };
            let rule_index = active.count;
            active.count += 1;
            let index = if rule.per_path { path_index } else { rule_index };
            let mut rng = XorShift::new(seed, active.id.0, path, path_index);
            let fires = rule.first.is_none_or(|n| index < n)
                && rule.after_requests.is_none_or(|n| index >= n)
                && rule.after_time.is_none_or(|t| active.added.elapsed() >= t)
                && rule.in_window(now)
                && rule.probability.is_none_or(|p| rng.next_f64() < p);
            if fires {
                let until = rule.window.as_ref().map(|w| w.end);
                effects.apply(&rule.fault, rng.next_u64(), until);
            }
        }
        effects
    }

    fn lock(&self) -> MutexGuard<'_, FaultState> {
        // Every update of the state is a single push, retain or counter bump, so a poisoned lock still holds a
        // consistent state.
        lock(&self.inner)
    }
}

/// How a response body ends early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cut {
    /// After this many bytes.
    After(u64),
    /// After `draw % length` bytes.
    Random(u64),
}

/// What the rules that fired for one request want injected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Effects {
    pub(crate) latency: Duration,
    /// The first status or redirect fault that fired replaces the response.
    pub(crate) replace: Option<Fault>,
    pub(crate) cut: Option<Cut>,
    pub(crate) throttle: Option<u64>,
    pub(crate) length_delta: i64,
    pub(crate) ignore_range: bool,
    pub(crate) close_delimited: bool,
    /// Hold the request unanswered until this stream time (`Some(None)`: for good).
    pub(crate) black_hole: Option<Option<Duration>>,
    /// A short description of each fault that fired, for the request log.
    pub(crate) fired: Vec<String>,
}

impl Effects {
    fn apply(&mut self, fault: &Fault, draw: u64, window_end: Option<Duration>) {
        match fault {
            Fault::Latency(d) => self.latency += *d,
            Fault::Status { .. } | Fault::Redirect { .. } => {
                if self.replace.is_none() {
                    self.replace = Some(fault.clone());
                } else {
                    // A response can only be replaced once; later replacing rules do not count as fired.
                    return;
                }
            }
            Fault::CutAfter(n) => {
                self.cut = Some(match self.cut {
                    Some(Cut::After(m)) => Cut::After(m.min(*n)),
                    _ => Cut::After(*n),
                });
            }
            Fault::CutAtRandom => {
                if self.cut.is_none() {
                    self.cut = Some(Cut::Random(draw));
                }
            }
            Fault::Throttle { bytes_per_second } => {
                let rate = (*bytes_per_second).max(1);
                self.throttle = Some(self.throttle.map_or(rate, |r| r.min(rate)));
            }
            Fault::ContentLengthDelta(delta) => self.length_delta = *delta,
            Fault::IgnoreRange => self.ignore_range = true,
            Fault::CloseDelimited => self.close_delimited = true,
            Fault::BlackHole => {
                // Of several black holes, the request is held until the last one closes.
                self.black_hole = Some(match (self.black_hole, window_end) {
                    (None, end) => end,
                    (Some(Some(a)), Some(b)) => Some(a.max(b)),
                    _ => None,
                });
            }
            // Refusals act on the listening socket, not on requests; `evaluate` skips them.
            Fault::Refuse => return,
        }
        self.fired.push(describe(fault));
    }
}

fn describe(fault: &Fault) -> String {
    match fault {
        Fault::Latency(d) => format!("latency {}ms", d.as_millis()),
        Fault::Status { status, retry_after: Some(r) } => format!("status {status} retry-after {r}"),
        Fault::Status { status, retry_after: None } => format!("status {status}"),
        Fault::Redirect { status, location } => format!("redirect {status} {location}"),
        Fault::CutAfter(n) => format!("cut after {n}"),
        Fault::CutAtRandom => "cut at random".to_owned(),
        Fault::Throttle { bytes_per_second } => format!("throttle {bytes_per_second}B/s"),
        Fault::ContentLengthDelta(d) => format!("content-length {d:+}"),
        Fault::IgnoreRange => "ignore range".to_owned(),
        Fault::CloseDelimited => "close-delimited".to_owned(),
        Fault::BlackHole => "black hole".to_owned(),
        Fault::Refuse => "refuse connections".to_owned(),
    }
}

/// xorshift64* seeded from the origin seed, the rule, the path and the request's index on that path.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64, rule: u64, path: &str, index: u64) -> Self {
        // FNV-1a folds the path into the seed; the multiplications spread nearby indices apart.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
        for &b in path.as_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= rule.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= index.wrapping_add(1).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let mut rng = Self(if h == 0 { 0x2545_f491_4f6c_dd1d } else { h });
        // Discard a few outputs so that seeds differing in few bits diverge.
        for _ in 0..4 {
            rng.next_u64();
        }
        rng
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_shells() {
        let g = |p: &str, t: &str| PathPattern::Glob(p.into()).matches(t);
        assert!(g("*.key", "/keys/k1.key"));
        assert!(g("/v?/seg*.ts", "/v1/seg10.ts"));
        assert!(!g("/v?/seg*.ts", "/v10/seg1.ts"));
        assert!(!g("*.key", "/keys/k1.keys"));
        assert!(g("*", ""));
        assert!(g("/a/**/b", "/a/x/y/b"));
    }

    #[test]
    fn first_and_after_count_matching_requests() {
        let faults = Faults::default();
        faults.add(FaultRule::new(Fault::status(503)).path("/a").first(2));
        faults.add(FaultRule::new(Fault::status(403)).path("/b").after_requests(1));
        let fired = |p: &str| faults.evaluate(p, None).replace.is_some();
        assert_eq!([fired("/a"), fired("/a"), fired("/a")], [true, true, false]);
        assert_eq!([fired("/b"), fired("/b"), fired("/b")], [false, true, true]);
        assert!(!fired("/c"));
    }

    #[test]
    fn per_path_counting_and_query_filters() {
        let faults = Faults::default();
        faults.add(FaultRule::new(Fault::status(503)).prefix("/seg").first(1).per_path());
        faults.add(FaultRule::new(Fault::status(403)).prefix("/k").query_contains("sig=old"));
        let fired = |p: &str, q: Option<&str>| faults.evaluate(p, q).replace;
        assert_eq!(fired("/seg1", None), Some(Fault::status(503)));
        assert_eq!(fired("/seg2", None), Some(Fault::status(503)));
        assert_eq!(fired("/seg1", None), None);
        assert_eq!(fired("/k1", Some("sig=old&x=1")), Some(Fault::status(403)));
        assert_eq!(fired("/k1", Some("sig=new")), None);
        assert_eq!(fired("/k1", None), None);
    }

    #[test]
    fn a_required_header_or_cookie_lets_requests_through() {
        let faults = Faults::default();
        faults
            .add(FaultRule::new(Fault::status(401)).prefix("/p").missing_header("authorization", "Bearer t"));
        faults.add(FaultRule::new(Fault::status(403)).prefix("/c").missing_header("cookie", "session=abc"));
        let fired = |p: &str, headers: &[(&'static str, &str)]| {
            let mut map = http::HeaderMap::new();
            for (name, value) in headers {
                map.append(*name, http::HeaderValue::from_str(value).unwrap());
            }
            faults.evaluate_request(p, None, &map).replace
        };
        assert_eq!(fired("/p", &[]), Some(Fault::status(401)));
        assert_eq!(fired("/p", &[("authorization", "Bearer x")]), Some(Fault::status(401)));
        assert_eq!(fired("/p", &[("authorization", "Bearer t")]), None);
        assert_eq!(fired("/c", &[("cookie", "a=1; session=abc")]), None);
        assert_eq!(fired("/c", &[("cookie", "a=1"), ("cookie", "session=abc")]), None);
        assert_eq!(fired("/c", &[("cookie", "session=abd")]), Some(Fault::status(403)));
    }

    #[test]
    fn probabilities_are_deterministic_and_close_to_the_fraction() {
        let run = |seed| {
            let faults = Faults::with_seed(seed);
            faults.add(FaultRule::new(Fault::status(503)).probability(0.05));
            (0..4000).map(|i| faults.evaluate(&format!("/s{}", i % 400), None).replace.is_some()).collect()
        };
        let a: Vec<bool> = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        let hits = a.iter().filter(|&&h| h).count();
        assert!((120..=280).contains(&hits), "{hits} of 4000 fired for 5%");
    }

    #[test]
    fn effects_combine() {
        let faults = Faults::default();
        faults.add(FaultRule::new(Fault::Latency(Duration::from_millis(20))));
        faults.add(FaultRule::new(Fault::Latency(Duration::from_millis(30))).path("/a"));
        faults.add(FaultRule::new(Fault::CutAfter(100)).path("/a"));
        faults.add(FaultRule::new(Fault::CutAfter(50)).path("/a"));
        faults.add(FaultRule::new(Fault::status(404)).path("/a"));
        faults.add(FaultRule::new(Fault::status(410)).path("/a"));
        let e = faults.evaluate("/a", None);
        assert_eq!(e.latency, Duration::from_millis(50));
        assert_eq!(e.cut, Some(Cut::After(50)));
        assert_eq!(e.replace, Some(Fault::status(404)));
        assert_eq!(e.fired.len(), 5);
    }

    #[test]
    fn windows_follow_the_stream_clock() {
        let clock = Clock::manual();
        let faults = Faults::with_clock(1, clock.clone());
        let s = Duration::from_secs;
        faults.add(FaultRule::new(Fault::status(503)).during(s(10), s(20)));
        faults.add(FaultRule::new(Fault::BlackHole).prefix("/live").during(s(15), s(30)));
        faults.add(FaultRule::new(Fault::Refuse).during(s(40), s(45)));
        faults.add(FaultRule::new(Fault::Refuse).during(s(42), s(50)));
        let at = |t: u64, path: &str| {
            clock.advance(s(t) - clock.now());
            faults.evaluate(path, None)
        };
        assert_eq!(at(0, "/a").replace, None);
        assert_eq!(at(10, "/a").replace, Some(Fault::status(503)));
        let e = at(16, "/live/x");
        assert_eq!((e.replace.is_some(), e.black_hole), (true, Some(Some(s(30)))));
        assert_eq!(at(20, "/live/x").black_hole, Some(Some(s(30))));
        assert_eq!(at(20, "/a").replace, None);
        // Refusals are never request effects; the accept loop asks for them.
        assert!(at(43, "/a").fired.is_empty());
        assert_eq!(faults.refusing(s(43)), Some(Some(s(50))));
        assert_eq!(faults.refusing(s(50)), None);
        assert_eq!(faults.next_refusal(s(0)), Some(s(40)));
        assert_eq!(faults.next_refusal(s(41)), Some(s(42)));
        assert_eq!(faults.next_refusal(s(42)), None);
    }
}
