//! Forward-auth: a proxy (nginx `auth_request`, Caddy `forward_auth`, Traefik
//! `ForwardAuth`) asks, before each request to an app, whether to let it through.
//!
//! Both checks are cheap: no page is rendered, one session is read (and touched no
//! more often than a page view touches it), and one rule matches.
//! Only `--trusted-proxies` peers are answered: anyone else could claim any URL.

use std::sync::Arc;

use poem::http::{HeaderValue, StatusCode, header};
use poem::web::Data;
use poem::{Endpoint, Request, Response, handler};

use super::AppState;
use crate::error::AppError;
use crate::guard::{Access, Asker, Target, plain_authority};
use crate::session::Session;

/// Which check a proxy asks for.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// `GET /auth/request`, for nginx `auth_request`.
    Request,
    /// `GET /auth/forward`, for Caddy `forward_auth` and Traefik `ForwardAuth`.
    Forward,
}

/// The forward-auth endpoint: it resumes the session itself (no session or data
/// layer, no page machinery), since it runs before every request to every app.
pub struct Checks {
    state: Arc<AppState>,
    check: Check,
}

impl Checks {
    /// The `check` endpoint on `state`.
    pub fn new(state: Arc<AppState>, check: Check) -> Self {
        Self { state, check }
    }
}

impl Endpoint for Checks {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let state = &self.state;
        if let Some(refused) = untrusted(&req, state) {
            return Ok(refused);
        }
        let session = session_of(&req, state).await?;
        Ok(match self.check {
            Check::Request => request(&req, state, session.as_ref()),
            Check::Forward => forward(&req, state, session.as_ref()),
        })
    }
}

/// The live session of the presented cookie(s), as the session layer finds it (an
/// ended one is no session here: the login page tells its browser why).
async fn session_of(req: &Request, state: &AppState) -> Result<Option<Session>, AppError> {
    let codec = state.sessions.codec();
    // Every signature is checked before its session is looked up, as in the layer.
    let genuine = crate::cookies::values(req, codec.name()).filter_map(|v| codec.verify(v));
    for id in genuine {
        if let Some(session) = state.sessions.live(id).await? {
            return Ok(Some(session));
        }
    }
    Ok(None)
}

/// `GET /auth/request`: the original request in `X-Original-URL` and
/// `X-Original-Method`. `200` with the identity headers, `401` with a `Location` to
/// log in (or step up) at, `403` when the member may not.
fn request(req: &Request, state: &AppState, session: Option<&Session>) -> Response {
    let Ok([url, method]) = single(req, ["x-original-url", "x-original-method"]) else {
        return status(StatusCode::BAD_REQUEST);
    };
    let method = method.unwrap_or("GET");
    let Some(url) = url else {
        tracing::warn!("/auth/request without X-Original-URL: set it in the proxy");
        return status(StatusCode::BAD_REQUEST);
    };
    match decide(state, session, url, method) {
        Decision::Allowed(resp) => resp,
        Decision::Elsewhere(location) => {
            let mut resp = status(StatusCode::UNAUTHORIZED);
            resp.headers_mut().insert(header::LOCATION, location);
            resp
        }
        Decision::Forbidden => status(StatusCode::FORBIDDEN),
    }
}

/// `GET /auth/forward`: the original request in `X-Forwarded-Method`, `-Proto`,
/// `-Host` and `-Uri`. `200` with the identity headers, a `302` to log in (a `401` for
/// other methods and htmx, which cannot follow one), or a `403` page.
fn forward(req: &Request, state: &AppState, session: Option<&Session>) -> Response {
    let names = [
        "x-forwarded-method",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-uri",
    ];
    let Ok([method, proto, host, uri]) = single(req, names) else {
        return status(StatusCode::BAD_REQUEST);
    };
    let (method, proto, host) = (
        method.unwrap_or("GET"),
        proto.unwrap_or_default(),
        host.unwrap_or_default(),
    );
    // A host and port, nothing else: `app?` or `app/x?` would move the path elsewhere.
    if !matches!(proto, "http" | "https") || !plain_authority(host) {
        tracing::warn!(
            "/auth/forward without a plain X-Forwarded-Proto and -Host: check the proxy"
        );
        return status(StatusCode::BAD_REQUEST);
    }
    let uri = uri.unwrap_or("/");
    if !uri.starts_with('/') {
        return status(StatusCode::BAD_REQUEST);
    }
    let url = format!("{proto}://{host}{uri}");
    match decide(state, session, &url, method) {
        Decision::Allowed(resp) => resp,
        Decision::Elsewhere(location) => {
            let navigates = matches!(method, "GET" | "HEAD") && req.header("hx-request").is_none();
            let mut resp = if navigates {
                status(StatusCode::FOUND)
            } else {
                status(StatusCode::UNAUTHORIZED)
            };
            resp.headers_mut().insert(header::LOCATION, location);
            resp
        }
        Decision::Forbidden => forbidden_page(state),
    }
}

/// What the rules said, ready to send.
enum Decision {
    /// `200` with the identity headers (none for nobody).
    Allowed(Response),
    /// Log in, or step up, there first.
    Elsewhere(HeaderValue),
    /// Not for this member.
    Forbidden,
}

fn decide(state: &AppState, session: Option<&Session>, url: &str, method: &str) -> Decision {
    let Some((target, original)) = Target::of_url(url, method) else {
        tracing::info!(url = %for_log(url), "forward-auth: unreadable URL refused");
        return Decision::Forbidden;
    };
    let account = session.and_then(|s| s.account.as_deref());
    // Asked for a new password: nobody, until it is chosen on Wicket's account page.
    let changing = account.is_some_and(|user| user.must_change_password);
    let account = account.filter(|_| !changing);
    let asker = session.zip(account).map(|(session, user)| Asker {
        groups: &user.groups,
        second_factor: session.record.second_factor,
    });
    let rules = state.guard.rules();
    let access = rules.access(&target, asker);
    crate::metrics::metrics().forward_auth(match access {
        Access::Allowed => "allowed",
        Access::LogIn => "login",
        Access::StepUp => "step_up",
        Access::Forbidden => "forbidden",
    });
    match access {
        Access::Allowed => Decision::Allowed(identity(account)),
        Access::LogIn if changing => {
            Decision::Elsewhere(elsewhere(state, super::member::NEW_PASSWORD, &original))
        }
        Access::LogIn => Decision::Elsewhere(elsewhere(state, "/", &original)),
        Access::StepUp => Decision::Elsewhere(elsewhere(state, "/login/step-up", &original)),
        Access::Forbidden => {
            let user = account.map(|u| u.name.as_str()).unwrap_or("nobody");
            tracing::info!(user, host = %target.host, path = %super::clipped(&target.path), "forward-auth: forbidden");
            Decision::Forbidden
        }
    }
}

/// `200` with `Remote-User`, `Remote-Groups` and `Remote-Email`: a member's, or empty
/// ones for nobody (a public page), so a proxy that copies them always overwrites
/// whatever a client sent under those names.
fn identity(user: Option<&crate::store::User>) -> Response {
    let mut resp = status(StatusCode::OK);
    let (name, groups, email) = match user {
        Some(user) => {
            let groups: Vec<&str> = user.groups.iter().map(|g| g.as_str()).collect();
            let email = user.verified_email().unwrap_or_default();
            (user.name.as_str(), groups.join(","), email)
        }
        None => ("", String::new(), ""),
    };
    let headers = resp.headers_mut();
    for (header, value) in [
        ("remote-user", name),
        ("remote-groups", &groups),
        ("remote-email", email),
    ] {
        // Names and groups are plain ASCII; an address may not be, and is sent as
        // its UTF-8 bytes (or left empty if even that will not go).
        let value = HeaderValue::from_bytes(value.as_bytes())
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        headers.insert(header, value);
    }
    resp
}

/// `GET /auth/forbidden`: the `403` page, for a proxy that shows its own error pages
/// (nginx: `error_page 403`) to show Wicket's instead.
#[handler]
pub fn forbidden(state: Data<&Arc<AppState>>) -> Response {
    forbidden_page(&state)
}

/// Wicket's `path` (the login form, the step-up page) with `rd` the original URL.
fn elsewhere(state: &AppState, path: &str, original: &str) -> HeaderValue {
    let origin = state.public_url.as_ref().map_or("", |url| url.origin());
    // A login returns to nothing longer (see `ReturnPolicy`): no use sending it.
    if original.len() > 2048 {
        return HeaderValue::from_str(&format!("{origin}{path}"))
            .expect("an origin is header-safe");
    }
    let rd: String = url::form_urlencoded::byte_serialize(original.as_bytes()).collect();
    let location = format!("{origin}{path}?rd={rd}");
    HeaderValue::from_str(&location).expect("an origin and an escaped URL are header-safe")
}

/// The headers `names`, each sent at most once (`Err` and a log line otherwise: a
/// proxy that adds its own after a client's must not let the client's count).
fn single<'a, const N: usize>(
    req: &'a Request,
    names: [&str; N],
) -> Result<[Option<&'a str>; N], ()> {
    let mut found = [None; N];
    for (slot, name) in found.iter_mut().zip(names) {
        let mut values = req.headers().get_all(name).iter();
        let first = values.next();
        if values.next().is_some() {
            tracing::warn!(header = name, "forward-auth: header sent twice, refused");
            return Err(());
        }
        *slot = match first {
            Some(value) => Some(value.to_str().map_err(|_| ())?),
            None => None,
        };
    }
    Ok(found)
}

/// An original URL as a log line shows it: no user info, query or fragment (they may
/// hold secrets), at most 200 characters.
fn for_log(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let shown = match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or_default();
            format!("{scheme}://{host}{path}")
        }
        None => url.to_owned(),
    };
    super::clipped(&shown).escape_debug().to_string()
}

/// `403` when the peer is not a trusted proxy (logged), else `None`.
fn untrusted(req: &Request, state: &AppState) -> Option<Response> {
    let peer = req.remote_addr().as_socket_addr().map(|addr| addr.ip());
    if peer.is_some_and(|ip| state.trusted_proxies.trusts(ip)) {
        return None;
    }
    tracing::warn!(
        peer = %req.remote_addr(),
        "forward-auth asked by a peer not in --trusted-proxies: refused"
    );
    Some(status(StatusCode::FORBIDDEN))
}

fn status(status: StatusCode) -> Response {
    let mut resp = Response::builder().status(status).finish();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The `403` page Caddy and Traefik show as it is, under the app's own address: so
/// it needs nothing from Wicket's (its style is inline, allowed by its own policy,
/// which runs no script at all) and links back to Wicket's account page.
fn forbidden_page(state: &AppState) -> Response {
    const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;background:#f4f1ea;color:#1f2328;\
        display:grid;place-items:center;min-height:100vh;margin:0}\
        main{background:#fff;border-radius:12px;padding:2rem 2.5rem;max-width:28rem;\
        box-shadow:0 1px 3px #0002}h1{margin-top:0}a{color:#1a5fb4}";
    let account = match &state.public_url {
        Some(url) => url.url("/account"),
        None => "/account".to_owned(),
    };
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Not allowed" }
                style { (STYLE) }
            }
            body {
                main {
                    h1 { "Not allowed" }
                    p { "Your account may not open this page. If you think it should, \
                         ask whoever runs this site to add you to the right group." }
                    p { a href=(account) { "Your account" } }
                }
            }
        }
    };
    let mut resp = status(StatusCode::FORBIDDEN);
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'",
        ),
    );
    resp.set_body(page.into_string());
    resp
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_logged_url_shows_no_user_info_query_or_fragment() {
        for (url, shown) in [
            (
                "https://user:secret@app.test/x%00?token=abc#f",
                "https://app.test/x%00",
            ),
            ("https://app.test/a?access_token=abc", "https://app.test/a"),
            ("not a url?secret", "not a url"),
        ] {
            assert_eq!(super::for_log(url), shown);
        }
        assert_eq!(super::for_log(&"a".repeat(1000)).len(), 200);
    }
}
