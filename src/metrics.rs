//! What `/metrics` tells Prometheus (on `--metrics-addr`, never the public listener):
//! counters the code bumps where things happen, gauges read when scraped.
//!
//! One set per process ([`metrics`]), as a process is what Prometheus scrapes. Every
//! label takes a value from a short fixed list (a route's pattern, never its path; a
//! kind of throttle, never a key), so no request can grow the output.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// How a login was tried.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Method {
    /// The login form's password.
    password,
    /// A passkey.
    passkey,
}

/// What came of a login or a check.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Outcome {
    /// Right.
    ok,
    /// Wrong (or no such account).
    wrong,
    /// Refused unchecked: too many guesses lately.
    throttled,
    /// Right, but the account is disabled.
    disabled,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    method: Method,
    outcome: Outcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: Outcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MailLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabel {
    backend: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabel {
    decision: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabel {
    grant: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    logins: Family<LoginLabels, Counter>,
    second_factor: Family<OutcomeLabel, Counter>,
    throttled: Family<KindLabel, Counter>,
    throttle_entries: Gauge,
    scrypt_wait: Timings,
    sessions_live: Gauge,
    mails: Family<MailLabel, Counter>,
    mail_queue: Gauge,
    store_errors: Family<BackendLabel, Counter>,
    forward_auth: Family<DecisionLabel, Counter>,
    oidc_tokens: Family<GrantLabel, Counter>,
    latency: Family<RouteLabel, Timings>,
    /// `latency`'s histograms by route index (shared with the family): no lookup.
    by_route: Vec<Timings>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's store backend, the label of its store errors.
static BACKEND: OnceLock<&'static str> = OnceLock::new();

/// Names the process's store backend (the first call wins: one process, one store).
pub fn set_backend(kind: &crate::store::StoreKind) {
    let _ = BACKEND.set(match kind {
        crate::store::StoreKind::Files => "files",
        crate::store::StoreKind::Redis(_) => "redis",
    });
}

/// The process's store backend, as [`set_backend`] named it.
pub fn backend() -> &'static str {
    BACKEND.get().copied().unwrap_or("files")
}

/// This process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// Seconds, from 0.5 ms to about 16 s.
fn latency_histogram() -> Timings {
    Timings::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("wicket");
        let this = Self {
            logins: Family::default(),
            second_factor: Family::default(),
            throttled: Family::default(),
            throttle_entries: Gauge::default(),
            scrypt_wait: Timings::new(exponential_buckets(0.0001, 4.0, 10)),
            sessions_live: Gauge::default(),
            mails: Family::default(),
            mail_queue: Gauge::default(),
            store_errors: Family::default(),
            forward_auth: Family::default(),
            oidc_tokens: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            by_route: Vec::new(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "logins",
            "Logins, by method and outcome",
            this.logins.clone(),
        );
        r.register(
            "second_factor_checks",
            "Second-factor codes checked (app or recovery codes), by outcome",
            this.second_factor.clone(),
        );
        r.register(
            "throttle_refusals",
            "Attempts refused by a rate limit, by kind",
            this.throttled.clone(),
        );
        r.register(
            "throttle_entries",
            "Rate-limit counters held (this instance's table, or Redis' keys)",
            this.throttle_entries.clone(),
        );
        r.register(
            "scrypt_queue_wait_seconds",
            "Time a password check or hash waited for a free scrypt slot",
            this.scrypt_wait.clone(),
        );
        r.register(
            "sessions_live",
            "Live sessions in the store",
            this.sessions_live.clone(),
        );
        r.register(
            "mails",
            "Mails handed to the mail server (sent) or given up (failed)",
            this.mails.clone(),
        );
        r.register(
            "mail_queue",
            "Mails waiting to be sent",
            this.mail_queue.clone(),
        );
        r.register(
            "store_errors",
            "Requests failed by the store (unreachable, or a read or write failed), by backend",
            this.store_errors.clone(),
        );
        r.register(
            "forward_auth_decisions",
            "Forward-auth answers, by decision",
            this.forward_auth.clone(),
        );
        r.register(
            "oidc_tokens_issued",
            "OpenID Connect token responses, by grant",
            this.oidc_tokens.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time to answer a request, by route",
            this.latency.clone(),
        );
        // Every known series starts at zero: an alert on a rate needs the series
        // before the first event.
        for method in [Method::password, Method::passkey] {
            for outcome in [
                Outcome::ok,
                Outcome::wrong,
                Outcome::throttled,
                Outcome::disabled,
            ] {
                let _ = this.logins.get_or_create(&LoginLabels { method, outcome });
            }
        }
        for outcome in [Outcome::ok, Outcome::wrong, Outcome::throttled] {
            let _ = this.second_factor.get_or_create(&OutcomeLabel { outcome });
        }
        for outcome in ["sent", "failed"] {
            let _ = this.mails.get_or_create(&MailLabel { outcome });
        }
        for decision in ["allowed", "login", "step_up", "forbidden"] {
            let _ = this.forward_auth.get_or_create(&DecisionLabel { decision });
        }
        for grant in ["authorization_code", "refresh_token"] {
            let _ = this.oidc_tokens.get_or_create(&GrantLabel { grant });
        }
        let by_route = Route::labels()
            .map(|route| this.latency.get_or_create(&RouteLabel { route }).clone())
            .collect();
        Self {
            registry,
            by_route,
            ..this
        }
    }

    /// A login tried with `method` came to `outcome`.
    pub fn login(&self, method: Method, outcome: Outcome) {
        self.logins
            .get_or_create(&LoginLabels { method, outcome })
            .inc();
    }

    /// A second-factor code came to `outcome`.
    pub fn second_factor(&self, outcome: Outcome) {
        self.second_factor
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// A rate limit of `kind` refused an attempt.
    pub fn throttled(&self, kind: &'static str) {
        self.throttled.get_or_create(&KindLabel { kind }).inc();
    }

    /// An scrypt run waited `wait` for its slot.
    pub fn scrypt_waited(&self, wait: Duration) {
        self.scrypt_wait.observe(wait);
    }

    /// A mail was handed over (`true`) or given up.
    pub fn mail(&self, sent: bool) {
        let outcome = if sent { "sent" } else { "failed" };
        self.mails.get_or_create(&MailLabel { outcome }).inc();
    }

    /// A request failed because the `backend` store did.
    pub fn store_error(&self, backend: &'static str) {
        self.store_errors
            .get_or_create(&BackendLabel { backend })
            .inc();
    }

    /// Forward-auth answered `decision` (`allowed`, `login`, `step_up`, `forbidden`).
    pub fn forward_auth(&self, decision: &'static str) {
        self.forward_auth
            .get_or_create(&DecisionLabel { decision })
            .inc();
    }

    /// The token endpoint issued tokens for `grant`.
    pub fn oidc_tokens(&self, grant: &'static str) {
        self.oidc_tokens.get_or_create(&GrantLabel { grant }).inc();
    }

    /// A request to `route` took `took`.
    pub fn answered(&self, route: Route, took: Duration) {
        if let Some(timings) = self.by_route.get(route.0) {
            timings.observe(took);
        }
    }

    /// The OpenMetrics text Prometheus scrapes, with the gauges as given.
    pub fn render(&self, now: Gauges) -> String {
        let _ = self
            .store_errors
            .get_or_create(&BackendLabel { backend: backend() });
        self.throttle_entries.set(gauge(now.throttle_entries));
        self.sessions_live.set(gauge(now.sessions_live));
        self.mail_queue.set(gauge(now.mail_queue));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// OpenMetrics text in Prometheus' classic text format (`text/plain; version=0.0.4`),
/// for what asks for that (`curl`, `promtool check metrics`): a counter's help and
/// type name its samples' `_total` name, and there is no `# EOF`.
pub fn classic(open_metrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = open_metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open_metrics.len());
    for line in open_metrics.lines().filter(|line| *line != "# EOF") {
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|tag| Some((tag, line.strip_prefix(tag)?.split_once(' ')?)));
        match meta {
            Some((tag, (name, rest))) if counters.contains(name) => {
                out.push_str(&format!("{tag}{name}_total {rest}"));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// What is measured when scraped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Rate-limit counters held.
    pub throttle_entries: usize,
    /// Live sessions.
    pub sessions_live: usize,
    /// Mails waiting.
    pub mail_queue: usize,
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Routes matched exactly, as labels.
const EXACT: [&str; 22] = [
    "/",
    "/login",
    "/login/step-up",
    "/login/passkey",
    "/login/passkey/options",
    "/register/",
    "/cabinet",
    "/account",
    "/logout",
    "/forgot",
    "/reset",
    "/auth/request",
    "/auth/forward",
    "/healthz",
    "/readyz",
    "/.well-known/openid-configuration",
    "/oidc/authorize",
    "/oidc/token",
    "/oidc/userinfo",
    "/oidc/jwks",
    "/oidc/revoke",
    "/oidc/logout",
];
/// Routes matched by their start, after the exact ones.
const UNDER: [&str; 6] = [
    "/static/",
    "/account/",
    "/reset/",
    "/verify-email/",
    "/not-me/",
    "/oidc/",
];

/// A route, as a label: one of [`EXACT`], then [`UNDER`], then `other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route(usize);

impl Route {
    /// Every route's label, in order.
    fn labels() -> impl Iterator<Item = &'static str> {
        EXACT.into_iter().chain(UNDER).chain(["other"])
    }

    /// This route's label.
    pub fn label(self) -> &'static str {
        Self::labels().nth(self.0).unwrap_or("other")
    }
}

/// The route `path` belongs to: one of a fixed list (`other` for the rest), so that
/// no request makes a new series.
pub fn route_of(path: &str) -> Route {
    if let Some(at) = EXACT.iter().position(|r| *r == path) {
        return Route(at);
    }
    match UNDER.iter().position(|r| path.starts_with(r)) {
        Some(at) => Route(EXACT.len() + at),
        None => Route(EXACT.len() + UNDER.len()),
    }
}

/// A histogram of durations on atomics: observing takes no lock (the crate's own
/// `Histogram` takes a write lock per observation, and every request makes one).
#[derive(Debug, Clone)]
pub struct Timings(Arc<TimingsInner>);

#[derive(Debug)]
struct TimingsInner {
    /// Upper bounds in seconds, ascending; one more bucket above the last.
    bounds: Vec<f64>,
    counts: Vec<AtomicU64>,
    nanos: AtomicU64,
}

impl Timings {
    /// Buckets with these upper bounds (seconds, ascending), and `+Inf`.
    fn new(bounds: impl IntoIterator<Item = f64>) -> Self {
        let bounds: Vec<f64> = bounds.into_iter().collect();
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Self(Arc::new(TimingsInner {
            bounds,
            counts,
            nanos: AtomicU64::new(0),
        }))
    }

    fn observe(&self, took: Duration) {
        let inner = &*self.0;
        let secs = took.as_secs_f64();
        let bucket = inner.bounds.partition_point(|&bound| bound < secs);
        inner.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        inner.nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl TypedMetric for Timings {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Timings {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let inner = &*self.0;
        let counts: Vec<u64> = inner
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let bounds = inner.bounds.iter().copied().chain([f64::MAX]);
        let buckets: Vec<(f64, u64)> = bounds.zip(counts.iter().copied()).collect();
        let sum = inner.nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, counts.iter().sum(), &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_a_fixed_list_whatever_the_path() {
        let label = |path| route_of(path).label();
        assert_eq!(label("/oidc/token"), "/oidc/token");
        assert_eq!(label("/"), "/");
        assert_eq!(label("/static/style.3f2a.css"), "/static/");
        assert_eq!(label("/reset/0123abcd"), "/reset/");
        assert_eq!(label("/no/such/page"), "other");
        assert_eq!(label("/account/passkeys/remove"), "/account/");
    }

    #[test]
    fn the_text_names_every_metric_with_the_prefix() {
        let metrics = Metrics::new();
        metrics.login(Method::password, Outcome::throttled);
        metrics.answered(route_of("/"), Duration::from_millis(3));
        metrics.answered(route_of("/"), Duration::from_secs(100));
        let text = metrics.render(Gauges {
            throttle_entries: 7,
            ..Gauges::default()
        });
        assert!(
            text.contains(r#"wicket_logins_total{method="password",outcome="throttled"} 1"#),
            "{text}"
        );
        assert!(text.contains("wicket_throttle_entries 7"), "{text}");
        assert!(
            text.contains(r#"wicket_request_duration_seconds_count{route="/"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"wicket_request_duration_seconds_sum{route="/"} 100.003"#),
            "{text}"
        );
        // 3 ms is in the bucket up to 4 ms (cumulative), 100 s only in +Inf.
        assert!(
            text.contains(r#"wicket_request_duration_seconds_bucket{le="0.004",route="/"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"wicket_request_duration_seconds_bucket{le="+Inf",route="/"} 2"#),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
        let plain = classic(&text);
        assert!(
            plain.contains("# TYPE wicket_logins_total counter\n"),
            "{plain}"
        );
        assert!(
            plain.contains("# HELP wicket_logins_total Logins"),
            "{plain}"
        );
        assert!(
            plain.contains("# TYPE wicket_throttle_entries gauge\n"),
            "{plain}"
        );
        assert!(!plain.contains("# EOF"));
    }
}
