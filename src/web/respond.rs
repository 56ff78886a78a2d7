//! The outermost layer: every request learns its client's address and is checked
//! for the right `Host`, runs in a span with an id, every error becomes a page here
//! (and only here), every answer gets the security headers and one log line.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

use super::client::ClientAddr;
use super::{clipped, errors, wants_fragment};
use crate::config::Config;
use crate::net::{ForwardedHeader, PublicUrl, TrustedProxies};

/// What the outermost layer needs to know about where Wicket stands on the network.
#[derive(Debug, Clone)]
pub struct Edge {
    /// Served over TLS: send HSTS.
    pub secure: bool,
    /// Whose forwarding headers are believed, and which header.
    pub proxies: TrustedProxies,
    /// See [`ForwardedHeader`].
    pub forwarded: ForwardedHeader,
    /// The one site address answered, if pinned.
    pub public_url: Option<PublicUrl>,
    /// The access rules: the page policy names the apps a login may return to.
    pub guard: crate::guard::Guard,
}

impl Edge {
    /// The edge settings of `config`.
    pub fn of(config: &Config, guard: crate::guard::Guard) -> Self {
        Self {
            secure: config.secure_cookies,
            proxies: config.trusted_proxies.clone(),
            forwarded: config.forwarded_header,
            public_url: config.public_url.clone(),
            guard,
        }
    }

    fn client_of(&self, req: &Request) -> Option<IpAddr> {
        let peer = req.remote_addr().as_socket_addr()?.ip();
        Some(self.proxies.client_of(peer, req.headers(), self.forwarded))
    }

    /// Whether the request is for another site than the pinned one: `400` without
    /// any host, `421` for another.
    fn misdirected(&self, req: &Request) -> Option<StatusCode> {
        let url = self.public_url.as_ref()?;
        // An absolute-form target (`GET http://host/ HTTP/1.1`) names the host itself.
        let host = match req.uri().authority() {
            Some(authority) => Some(authority.as_str()),
            None => req.header(header::HOST),
        };
        match host {
            None => Some(StatusCode::BAD_REQUEST),
            Some(host) if url.is_host(host) => None,
            Some(_) => Some(StatusCode::MISDIRECTED_REQUEST),
        }
    }
}

/// Health checks and forward-auth checks: answered for any `Host` (load balancers
/// probe by address; a proxy asks under the app's name, and the checks answer only
/// trusted proxies) and not logged at info (they come with every request or every few
/// seconds; forward-auth logs its refusals itself).
fn is_health_check(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/auth/request" | "/auth/forward" | "/auth/forbidden"
    )
}

/// Security headers that every answer carries (and the page policy, from the guard).
const SECURITY_HEADERS: [(&str, &str); 3] = [
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
];

/// A request id: a per-process random start plus a counter, so lines of one request
/// match and ids from several instances rarely collide.
fn next_request_id() -> u64 {
    static NEXT: std::sync::LazyLock<AtomicU64> = std::sync::LazyLock::new(|| {
        AtomicU64::new(u64::from_ne_bytes(crate::secret::random_bytes::<8>()))
    });
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Wraps every route: client address, host check, span, error page, headers, access log.
pub async fn outermost<E: Endpoint>(
    inner: Arc<E>,
    mut req: Request,
    edge: Arc<Edge>,
) -> poem::Result<Response> {
    let client = edge.client_of(&req);
    if let Some(ip) = client {
        req.extensions_mut().insert(ClientAddr(ip));
    }
    let is_health = is_health_check(req.uri().path());
    let misdirected = if is_health {
        None
    } else {
        edge.misdirected(&req)
    };
    let secure = edge.secure;
    // A forward-auth check's "yes" goes to the proxy alone, never to a browser: it
    // needs none of a page's headers (its other answers may reach one, and get them).
    let check = matches!(req.uri().path(), "/auth/request" | "/auth/forward");
    let is_static = req.uri().path().starts_with("/static/");
    let hx = wants_fragment(&req);
    // The span and the log line cost something: build them only when they are written.
    let logged = !is_health && tracing::enabled!(target: "wicket::request", tracing::Level::INFO);
    let span = if logged {
        tracing::info_span!(
            target: "wicket::request",
            "request",
            id = format_args!("{:016x}", next_request_id()),
            method = %req.method(),
            path = %clipped(req.uri().path()).escape_debug(),
            client = client.map(tracing::field::display),
        )
    } else {
        tracing::Span::none()
    };
    let started = Instant::now();
    let route = crate::metrics::route_of(req.uri().path());
    let work = async move {
        let mut resp = match misdirected {
            Some(status) => errors::render(poem::Error::from_status(status), hx),
            None => match inner.call(req).await {
                Ok(resp) => resp.into_response(),
                Err(err) => errors::render(err, hx),
            },
        };
        if check && resp.status().is_success() {
            return resp;
        }
        let headers = resp.headers_mut();
        // A page that states its own policy (forward-auth's 403) keeps it.
        if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
            headers.insert(header::CONTENT_SECURITY_POLICY, edge.guard.content_policy());
        }
        for (name, value) in SECURITY_HEADERS {
            headers.insert(name, HeaderValue::from_static(value));
        }
        if secure {
            headers.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=63072000; includeSubDomains"),
            );
        }
        if !is_static {
            // Pages depend on the session and on whether htmx asked; none may be cached.
            headers.insert(header::VARY, HeaderValue::from_static("HX-Request, Cookie"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        crate::metrics::metrics().answered(route, started.elapsed());
        if logged {
            tracing::info!(
                target: "wicket::request",
                status = resp.status().as_u16(),
                ms = format_args!("{:.1}", started.elapsed().as_secs_f64() * 1e3),
                "request"
            );
        }
        resp
    };
    Ok(work.instrument(span).await)
}
