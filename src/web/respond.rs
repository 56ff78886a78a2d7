//! The outermost layer: every request runs in a span with an id, every error becomes
//! a page here (and only here), every answer gets the security headers and one log line.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use poem::http::{HeaderValue, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

use super::{errors, wants_fragment};

/// Security headers that every answer carries.
const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
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

/// Wraps every route: span, error page, headers, access log.
pub async fn outermost<E: Endpoint>(
    inner: Arc<E>,
    req: Request,
    secure: bool,
) -> poem::Result<Response> {
    let is_static = req.uri().path().starts_with("/static/");
    let hx = wants_fragment(&req);
    // The span and the log line cost something: build them only when they are written.
    let logged = tracing::enabled!(target: "wicket::request", tracing::Level::INFO);
    let span = if logged {
        tracing::info_span!(
            target: "wicket::request",
            "request",
            id = format_args!("{:016x}", next_request_id()),
            method = %req.method(),
            path = %req.uri().path().escape_debug(),
        )
    } else {
        tracing::Span::none()
    };
    let started = Instant::now();
    let work = async move {
        let mut resp = match inner.call(req).await {
            Ok(resp) => resp.into_response(),
            Err(err) => errors::render(err, hx),
        };
        let headers = resp.headers_mut();
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
