//! The OpenID Connect provider's routes.
//!
//! For browsers (session and CSRF layers): `GET /oidc/authorize` checks the request
//! and sends the browser through the login, the second step and the consent page as
//! needed (`GET /oidc/continue?request=…` picks it up again), `POST /oidc/consent`,
//! and `GET|POST /oidc/logout`. For apps, outside those layers (no cookies, no
//! forms of ours): the discovery document, `/oidc/jwks`, `POST /oidc/token`,
//! `/oidc/userinfo` and `POST /oidc/revoke`, all JSON.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use maud::{Markup, html};
use poem::http::{HeaderMap, StatusCode, header};
use poem::web::{Data, Query};
use poem::{IntoResponse, Response, Result, handler};
use serde::Deserialize;

use super::csrf::Csrf;
use super::form::{AppForm, Form};
use super::layout::{error_page, hx_form};
use super::{AppState, Hx, Member, auth};
use crate::error::AppError;
use crate::oidc::{AuthorizeParams, ClientAuth, Next, Provider, Refusal, TokenError};
use crate::session::CurrentSession;
use crate::store::EndReason;
use crate::store::grants::AuthRequest;

/// Authorization requests a browser nobody is logged in on may leave waiting, per
/// client address: a login needs one or two.
pub const ANONYMOUS_REQUESTS: crate::throttle::Limit = crate::throttle::Limit {
    max: 300,
    window: std::time::Duration::from_secs(600),
};

/// The provider, or a 404 when `--oidc-clients` is not given.
fn provider(state: &AppState) -> Result<&Arc<Provider>> {
    state
        .oidc
        .as_ref()
        .ok_or_else(|| poem::Error::from_status(StatusCode::NOT_FOUND))
}

/// The login form, coming back to a waiting request.
fn login_path(token: &str) -> String {
    super::login_url(&continue_path(token))
}

/// Where a browser picks up a waiting request.
fn continue_path(token: &str) -> String {
    format!("/oidc/continue?request={token}")
}

/// A JSON answer for an app. Any origin may read it: these routes take no cookies,
/// only what a client sends itself (a browser app, a public client, needs this).
fn json(status: StatusCode, body: String) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .body(body)
}

/// `OPTIONS` on the token, userinfo and revocation routes: a browser app's preflight.
#[handler]
pub fn preflight() -> Response {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .header(header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST")
        .header(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "Authorization, Content-Type",
        )
        .header(header::ACCESS_CONTROL_MAX_AGE, "600")
        .finish()
}

fn refused_page(hx: Hx, message: &str, status: StatusCode) -> Response {
    error_page(hx.0, "Wicket cannot log you in to this app", message)
        .with_status(status)
        .into_response()
}

/// `GET /.well-known/openid-configuration`.
#[handler]
pub fn discovery(state: Data<&Arc<AppState>>) -> Result<Response> {
    let provider = provider(&state)?;
    Ok(json(StatusCode::OK, provider.discovery().to_string())
        .with_header(header::CACHE_CONTROL, "public, max-age=300")
        .into_response())
}

/// `GET /oidc/jwks`.
#[handler]
pub fn jwks(state: Data<&Arc<AppState>>) -> Result<Response> {
    let provider = provider(&state)?;
    Ok(Response::builder()
        .content_type("application/jwk-set+json")
        .header(header::CACHE_CONTROL, "public, max-age=300")
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .body(provider.jwks()))
}

/// `GET /oidc/authorize`: a bad client or redirect URI is a page; any other fault
/// goes back to the app; a good request waits while the browser does what it needs.
#[handler]
pub async fn authorize(
    state: Data<&Arc<AppState>>,
    current: CurrentSession,
    csrf: Csrf,
    hx: Hx,
    client: super::client::Client,
    Query(params): Query<AuthorizeParams>,
) -> Result<Response> {
    let provider = provider(&state)?;
    let request = match provider.check_request(&params) {
        Ok(request) => request,
        Err(Refusal::Page(message)) => {
            tracing::warn!(client = %super::clipped(&params.client_id), "authorization request refused");
            return Ok(refused_page(hx, message, StatusCode::BAD_REQUEST));
        }
        Err(Refusal::Redirect(to)) => return Ok(hx.redirect(&to)),
    };
    if current.0.is_none() {
        let address = client.throttle_key(state.ipv6_prefix);
        if let Err(wait) = state.authorize_throttle.hit(&address).await? {
            tracing::warn!(address = %client.address, "authorization requests throttled");
            let page = error_page(
                hx.0,
                "Too many logins at once",
                &super::layout::wait_message(wait),
            );
            return Ok(super::too_many(page, wait));
        }
    }
    let token = provider
        .save_request(request.clone())
        .await
        .map_err(AppError::Unavailable)?;
    go_on(provider, &token, &request, current, &csrf, hx).await
}

/// `POST /oidc/authorize` (a form the app posts): the same request as a `GET`. Read
/// without the CSRF check of Wicket's own forms (another site's form is the point);
/// the `GET` it leads to changes nothing on its own.
#[handler]
pub fn authorize_posted(
    state: Data<&Arc<AppState>>,
    AppForm(fields): AppForm<std::collections::BTreeMap<String, String>>,
) -> Result<Response> {
    provider(&state)?;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter())
        .finish();
    Ok(poem::web::Redirect::see_other(format!("/oidc/authorize?{query}")).into_response())
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ContinueQuery {
    request: String,
}

/// `GET /oidc/continue?request=…`: back from the login or the second step.
#[handler]
pub async fn resume(
    state: Data<&Arc<AppState>>,
    current: CurrentSession,
    csrf: Csrf,
    hx: Hx,
    Query(query): Query<ContinueQuery>,
) -> Result<Response> {
    let provider = provider(&state)?;
    let Some(request) = waiting(provider, &query.request).await? else {
        return Ok(gone(hx));
    };
    go_on(provider, &query.request, &request, current, &csrf, hx).await
}

/// The request `token` names, if it is still waiting.
async fn waiting(provider: &Provider, token: &str) -> Result<Option<AuthRequest>> {
    Ok(provider
        .request(token)
        .await
        .map_err(AppError::Unavailable)?)
}

/// The page for a request that is no longer waiting.
fn gone(hx: Hx) -> Response {
    refused_page(
        hx,
        "This login to an app has expired or was already finished. Go back to the app and start again.",
        StatusCode::GONE,
    )
}

/// Takes the browser to whatever `request` needs next.
async fn go_on(
    provider: &Provider,
    token: &str,
    request: &AuthRequest,
    current: CurrentSession,
    csrf: &Csrf,
    hx: Hx,
) -> Result<Response> {
    let session = current.0;
    let changing = session
        .as_ref()
        .and_then(|s| s.account.as_deref())
        .is_some_and(|user| user.must_change_password);
    if changing {
        // The operator asked for a new password: that comes before any app.
        return Ok(hx.redirect(super::member::NEW_PASSWORD));
    }
    let next = provider
        .proceed(token, request, session.as_ref())
        .await
        .map_err(AppError::Unavailable)?;
    Ok(match next {
        Next::Redirect(to) => hx.redirect(&to),
        Next::Refused(message) => refused_page(hx, message, StatusCode::FORBIDDEN),
        Next::StepUp => hx.redirect(&super::with_next("/login/step-up", &continue_path(token))),
        Next::LogIn { end_session } => match session {
            // A fresher login means ending this one: asked, since a link alone must
            // never log anyone out.
            Some(session) if end_session => {
                let clients = provider.clients();
                let name = clients
                    .get(&request.client)
                    .map(|c| c.name.as_str())
                    .unwrap_or("This app");
                let content = html! {
                    section.card id="reauth" {
                        h1 { "Log in again?" }
                        p {
                            strong { (name) } " asks you to log in again before it lets you in. "
                            "You are logged in as " strong { (session.record.user) } "."
                        }
                        (hx_form("/oidc/reauth", csrf, html! {
                            input type="hidden" name="request" value=(token);
                            button type="submit" { "Log in again" }
                        }))
                        p.switch { a href="/account" { "Not now" } }
                    }
                };
                hx.page("Log in again", content).into_response()
            }
            _ => hx.redirect(&login_path(token)),
        },
        Next::Consent => {
            let clients = provider.clients();
            let name = clients
                .get(&request.client)
                .map(|c| c.name.as_str())
                .unwrap_or("This app");
            let user = session
                .as_ref()
                .map(|s| s.record.user.to_string())
                .unwrap_or_default();
            let view = consent_view(csrf, token, name, &user, request);
            hx.page("Allow this app?", view).into_response()
        }
    })
}

/// The consent page: which app, what it will learn, Allow or Deny.
fn consent_view(csrf: &Csrf, token: &str, app: &str, user: &str, request: &AuthRequest) -> Markup {
    let has = |s: &str| request.scopes.iter().any(|x| x == s);
    html! {
        section.card id="consent" {
            h1 { "Allow " (app) "?" }
            p { strong { (app) } " wants to log you in with your Wicket account " strong { (user) } ". It will learn:" }
            ul.learns {
                li { "an id for your account that stays the same (not your password)" }
                @if has("profile") { li { "your username" } }
                @if has("email") { li { "your email address, if you have confirmed one" } }
                @if has("groups") { li { "the groups you are in" } }
            }
            p.hint { "You can remove its access at any time on your account page." }
            (hx_form("/oidc/consent", csrf, html! {
                input type="hidden" name="request" value=(token);
                div.actions {
                    button type="submit" name="decision" value="allow" { "Allow" }
                    button.secondary type="submit" name="decision" value="deny" { "Deny" }
                }
            }))
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ConsentForm {
    request: String,
    decision: String,
}

/// `POST /oidc/consent`.
#[handler]
pub async fn consent(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    hx: Hx,
    Form(form): Form<ConsentForm>,
) -> Result<Response> {
    let provider = provider(&state)?;
    let Some(request) = waiting(provider, &form.request).await? else {
        return Ok(gone(hx));
    };
    if form.decision != "allow" {
        let to = provider
            .refuse(&form.request, &request)
            .await
            .map_err(AppError::Unavailable)?;
        return Ok(hx.redirect(&to));
    }
    let next = provider
        .agree(&form.request, &request, &session)
        .await
        .map_err(AppError::Unavailable)?;
    // Everything else was checked before the page was shown, and is checked again.
    match next {
        Next::Redirect(to) => Ok(hx.redirect(&to)),
        Next::Refused(message) => Ok(refused_page(hx, message, StatusCode::FORBIDDEN)),
        _ => Ok(hx.redirect(&continue_path(&form.request))),
    }
}

/// `POST /oidc/reauth`: the member agreed to log in again for an app
/// (`prompt=login`, `max_age`): this session ends, and the login form comes back to
/// the waiting request.
#[handler]
pub async fn reauth(
    state: Data<&Arc<AppState>>,
    current: CurrentSession,
    csrf: Csrf,
    hx: Hx,
    Form(form): Form<ContinueQuery>,
) -> Result<Response> {
    let provider = provider(&state)?;
    if waiting(provider, &form.request).await?.is_none() {
        return Ok(gone(hx));
    }
    let to = login_path(&form.request);
    match current.0 {
        Some(session) => {
            Ok(auth::log_out(&state, &session, &csrf, hx, EndReason::LoggedOut, &to).await?)
        }
        None => Ok(hx.redirect(&to)),
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct TokenForm {
    grant_type: String,
    code: String,
    redirect_uri: String,
    code_verifier: Option<String>,
    refresh_token: String,
    client_id: Option<String>,
    client_secret: Option<String>,
    token: String,
}

/// The client's credentials from `Authorization: Basic` (each part form-decoded, as
/// RFC 6749 §2.3.1 says) and the form; `Err` for a malformed header.
fn client_auth(headers: &HeaderMap, form: &TokenForm) -> Result<ClientAuth, TokenError> {
    let bad = TokenError {
        error: "invalid_client",
        description: "malformed Authorization header",
    };
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let text = value.to_str().map_err(|_| bad.clone())?;
            let encoded = text.strip_prefix("Basic ").ok_or(bad.clone())?;
            let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad.clone())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad.clone())?;
            let (id, secret) = decoded.split_once(':').ok_or(bad.clone())?;
            let unescape = |part: &str| -> String {
                url::form_urlencoded::parse(format!("x={part}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            Some((unescape(id), unescape(secret)))
        }
    };
    Ok(ClientAuth {
        basic,
        client_id: form.client_id.clone(),
        client_secret: form.client_secret.clone(),
    })
}

/// The form of a token or revocation request and the client it comes from, or why it
/// is refused (logged).
fn authenticated(
    provider: &Provider,
    headers: &HeaderMap,
    form: Result<AppForm<TokenForm>>,
) -> Result<(crate::oidc::Client, TokenForm), TokenError> {
    let Ok(AppForm(form)) = form else {
        return Err(MALFORMED);
    };
    let client = client_auth(headers, &form)
        .and_then(|auth| provider.authenticate(&auth))
        .inspect_err(|err| {
            tracing::warn!(
                error = err.error,
                "token request refused: client authentication"
            );
        })?;
    Ok((client, form))
}

/// A body that is not one url-encoded form of at most 16 KiB, each field once.
const MALFORMED: TokenError = TokenError {
    error: "invalid_request",
    description: "expected one application/x-www-form-urlencoded body of at most 16 KiB, each parameter once",
};

fn token_error(err: &TokenError, headers: &HeaderMap) -> Response {
    let body =
        serde_json::json!({"error": err.error, "error_description": err.description}).to_string();
    if err.error == "invalid_client" {
        let resp = json(StatusCode::UNAUTHORIZED, body);
        return if headers.contains_key(header::AUTHORIZATION) {
            resp.with_header(header::WWW_AUTHENTICATE, "Basic realm=\"wicket\"")
                .into_response()
        } else {
            resp
        };
    }
    json(StatusCode::BAD_REQUEST, body)
}

/// `POST /oidc/token`: the code and refresh-token grants.
#[handler]
pub async fn token_endpoint(
    state: Data<&Arc<AppState>>,
    headers: &HeaderMap,
    form: Result<AppForm<TokenForm>>,
) -> Result<Response> {
    let provider = provider(&state)?;
    let (client, form) = match authenticated(provider, headers, form) {
        Ok(found) => found,
        Err(err) => return Ok(token_error(&err, headers)),
    };
    let issued = match form.grant_type.as_str() {
        "authorization_code" => {
            provider
                .exchange_code(
                    &client,
                    &form.code,
                    &form.redirect_uri,
                    form.code_verifier.as_deref(),
                )
                .await
        }
        "refresh_token" => provider.refresh(&client, &form.refresh_token).await,
        _ => Ok(Err(TokenError {
            error: "unsupported_grant_type",
            description: "authorization_code or refresh_token",
        })),
    };
    match issued.map_err(AppError::Unavailable)? {
        Ok(tokens) => {
            let grant = match form.grant_type.as_str() {
                "authorization_code" => "authorization_code",
                _ => "refresh_token",
            };
            crate::metrics::metrics().oidc_tokens(grant);
            Ok(json(
                StatusCode::OK,
                serde_json::to_string(&tokens).map_err(AppError::internal)?,
            )
            .with_header(header::PRAGMA, "no-cache")
            .into_response())
        }
        Err(err) => {
            tracing::warn!(client = %client.id, error = err.error, why = err.description, "token request refused");
            Ok(token_error(&err, headers))
        }
    }
}

/// `GET|POST /oidc/userinfo` with `Authorization: Bearer`.
#[handler]
pub async fn userinfo(state: Data<&Arc<AppState>>, headers: &HeaderMap) -> Result<Response> {
    let provider = provider(&state)?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        // The scheme is case-insensitive (RFC 9110 §11.1).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let claims = match token {
        Some(token) => provider
            .userinfo(token)
            .await
            .map_err(AppError::Unavailable)?,
        None => None,
    };
    Ok(match claims {
        Some(claims) => json(StatusCode::OK, claims.to_string()),
        None => json(
            StatusCode::UNAUTHORIZED,
            r#"{"error":"invalid_token"}"#.to_owned(),
        )
        .with_header(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")
        .into_response(),
    })
}

/// `POST /oidc/revoke` (RFC 7009): `200` whatever the token was.
#[handler]
pub async fn revoke(
    state: Data<&Arc<AppState>>,
    headers: &HeaderMap,
    form: Result<AppForm<TokenForm>>,
) -> Result<Response> {
    let provider = provider(&state)?;
    let (client, form) = match authenticated(provider, headers, form) {
        Ok(found) => found,
        Err(err) => return Ok(token_error(&err, headers)),
    };
    provider
        .revoke(&client, &form.token)
        .await
        .map_err(AppError::Unavailable)?;
    Ok(json(StatusCode::OK, "{}".to_owned()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LogoutParams {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    client_id: Option<String>,
}

/// Where a logout may send the browser afterwards: the app's registered
/// `post_logout_redirect_uri` (with `state`), or nowhere; `Err` with a message when the
/// request is not to be trusted.
fn logout_target(
    provider: &Provider,
    params: &LogoutParams,
) -> Result<(Option<String>, Option<String>), &'static str> {
    let hinted = match params.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
        Some(hint) => Some(
            provider
                .hint_client(hint)
                .ok_or("The app sent a token that Wicket did not issue.")?,
        ),
        None => None,
    };
    let client_id = match (
        hinted,
        params.client_id.as_deref().filter(|c| !c.is_empty()),
    ) {
        (Some(hinted), Some(given)) if hinted != given => {
            return Err("The app's token and its name do not agree.");
        }
        (Some(hinted), _) => Some(hinted),
        (None, given) => given.map(str::to_owned),
    };
    let clients = provider.clients();
    let client = client_id.as_deref().and_then(|id| clients.get(id));
    let name = client.map(|c| c.name.clone());
    if params
        .state
        .as_ref()
        .is_some_and(|s| s.len() > crate::oidc::MAX_STATE)
    {
        return Err("The app sent a logout request too long to answer.");
    }
    let Some(uri) = params
        .post_logout_redirect_uri
        .as_deref()
        .filter(|u| !u.is_empty())
    else {
        return Ok((None, name));
    };
    let client =
        client.ok_or("The app asked to be returned to, but did not say which app it is.")?;
    if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
        return Err(
            "The app asked to send you to an address it has not registered, so Wicket will not.",
        );
    }
    let mut url = url::Url::parse(uri).map_err(|_| "The app's address is not valid.")?;
    if let Some(state) = params.state.as_deref().filter(|s| !s.is_empty()) {
        url.query_pairs_mut().append_pair("state", state);
    }
    Ok((Some(url.into()), name))
}

/// `GET /oidc/logout`: asks the member (a link alone never logs anyone out), or, with
/// nobody logged in, goes straight back to the app.
#[handler]
pub fn logout_page(
    state: Data<&Arc<AppState>>,
    current: CurrentSession,
    csrf: Csrf,
    hx: Hx,
    Query(params): Query<LogoutParams>,
) -> Result<Response> {
    let provider = provider(&state)?;
    let (target, app) = match logout_target(provider, &params) {
        Ok(found) => found,
        Err(message) => {
            return Ok(error_page(hx.0, "Wicket cannot do this logout", message)
                .with_status(StatusCode::BAD_REQUEST)
                .into_response());
        }
    };
    let Some(session) = current.0 else {
        return Ok(hx.redirect(target.as_deref().unwrap_or("/")));
    };
    let hidden = |name: &'static str, value: &Option<String>| {
        html! {
            @if let Some(value) = value { input type="hidden" name=(name) value=(value); }
        }
    };
    let content = html! {
        section.card id="logout" {
            h1 { "Log out of Wicket?" }
            p {
                @if let Some(app) = &app { strong { (app) } " asks to log you out. " }
                "You are logged in as " strong { (session.record.user) } ". Logging out ends this browser's Wicket session and the apps' access that came with it."
            }
            (hx_form("/oidc/logout", &csrf, html! {
                (hidden("id_token_hint", &params.id_token_hint))
                (hidden("post_logout_redirect_uri", &params.post_logout_redirect_uri))
                (hidden("state", &params.state))
                (hidden("client_id", &params.client_id))
                button type="submit" { "Log out" }
            }))
            p.switch { a href="/account" { "Stay logged in" } }
        }
    };
    Ok(hx.page("Log out", content).into_response())
}

/// `POST /oidc/logout`: ends the session, then back to the app (or home).
#[handler]
pub async fn logout_submit(
    state: Data<&Arc<AppState>>,
    current: CurrentSession,
    csrf: Csrf,
    hx: Hx,
    Form(params): Form<LogoutParams>,
) -> Result<Response> {
    let provider = provider(&state)?;
    let target = match logout_target(provider, &params) {
        Ok((target, _)) => target,
        Err(message) => {
            return Ok(error_page(hx.0, "Wicket cannot do this logout", message)
                .with_status(StatusCode::BAD_REQUEST)
                .into_response());
        }
    };
    let to = target.as_deref().unwrap_or("/");
    match current.0 {
        Some(session) => {
            Ok(auth::log_out(&state, &session, &csrf, hx, EndReason::LoggedOut, to).await?)
        }
        None => Ok(hx.redirect(to)),
    }
}
