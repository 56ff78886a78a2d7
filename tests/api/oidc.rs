//! The OpenID Connect provider, black-box: an app's requests as a relying party sends
//! them, and what a browser sees on the way.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use wicket::domain::{Group, Username};
use wicket::store::grants::{Grant, GrantStore, Shelf};
use wicket::store::{StoreFuture, Stores};

use crate::helpers::redis::RedisServer;
use crate::helpers::totp::*;
use crate::helpers::*;

/// The confidential client's secret (its hash is in [`CLIENTS`]).
const SECRET: &str = "the-web-apps-secret-0123456789abcdefghijklmnop";

/// Every kind of client the tests need.
fn clients() -> String {
    let hash = wicket::oidc::clients::secret_hash(SECRET);
    format!(
        r#"
[[client]]
id = "web"
name = "Web App"
redirect_uris = ["http://app.test/cb"]
post_logout_redirect_uris = ["http://app.test/bye"]
secret_hash = "{hash}"
trusted = true

[[client]]
id = "spa"
name = "Single Page"
redirect_uris = ["http://spa.test/cb"]
public = true

[[client]]
id = "staff"
name = "Staff Only"
redirect_uris = ["http://staff.test/cb"]
secret_hash = "{hash}"
trusted = true
groups = ["staff"]

[[client]]
id = "strict"
name = "Strict"
redirect_uris = ["http://strict.test/cb"]
secret_hash = "{hash}"
trusted = true
two_step = true

[[client]]
id = "ed"
name = "Edwards"
redirect_uris = ["http://ed.test/cb"]
secret_hash = "{hash}"
trusted = true
id_token_signed_response_alg = "EdDSA"
"#
    )
}

/// One signing key file for every test (an RSA key takes a while to make), so two
/// instances on one Redis also sign alike.
fn key_file() -> &'static [u8] {
    static KEYS: OnceLock<Vec<u8>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        wicket::oidc::KeySet::load_or_create(dir.path()).unwrap();
        std::fs::read(dir.path().join(wicket::oidc::keys::KEY_FILE)).unwrap()
    })
}

pub async fn oidc_app(change: impl FnOnce(&mut wicket::config::Config)) -> TestApp {
    spawn_app_with(|c| {
        let file = c.data_dir.with_file_name("clients.toml");
        std::fs::write(&file, clients()).unwrap();
        c.oidc_clients = Some(file);
        std::fs::create_dir_all(&c.data_dir).unwrap();
        let keys = c.data_dir.join(wicket::oidc::keys::KEY_FILE);
        std::fs::write(&keys, key_file()).unwrap();
        let private = std::os::unix::fs::PermissionsExt::from_mode(0o600);
        std::fs::set_permissions(&keys, private).unwrap();
        change(c);
    })
    .await
}

/// A PKCE verifier and its S256 challenge.
fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand_bytes());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn rand_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).unwrap();
    bytes
}

/// `/oidc/authorize` for `client` with the usual parameters and `extra`.
fn authorize_url(client: &str, redirect: &str, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse("http://x/oidc/authorize").unwrap();
    let usual = [
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", redirect),
        ("scope", "openid profile email groups"),
        ("state", "the-state"),
        ("nonce", "the-nonce"),
    ];
    for (k, v) in usual
        .iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .chain(extra)
    {
        url.query_pairs_mut().append_pair(k, v);
    }
    format!("{}?{}", url.path(), url.query().unwrap())
}

/// The waiting request the public client's consent page names (it must be shown).
async fn consent_request(app: &TestApp, pkce: &[(&str, &str)]) -> String {
    let page = app
        .get(&authorize_url("spa", "http://spa.test/cb", pkce))
        .await;
    let page = page.text().await.unwrap();
    assert!(page.contains("Allow Single Page?"), "{page}");
    between(&page, r#"name="request" value=""#, "\"").to_owned()
}

/// The member's answer on the consent page.
async fn decide(app: &TestApp, request: &str, decision: &str) -> Response {
    let form = [("request", request), ("decision", decision)];
    app.post_form("/oidc/consent", &form).await
}

/// The query parameters of a redirect's `Location`.
fn params(resp: &Response) -> Vec<(String, String)> {
    let url = url::Url::parse(location(resp)).expect("an absolute redirect");
    url.query_pairs().into_owned().collect()
}

fn param(resp: &Response, name: &str) -> Option<String> {
    params(resp)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// A code for `web`, from a browser already logged in.
async fn code_for(
    app: &TestApp,
    browser: &Client,
    client: &str,
    redirect: &str,
    extra: &[(&str, &str)],
) -> String {
    let resp = app
        .get_by(browser, &authorize_url(client, redirect, extra))
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::SEE_OTHER,
        "{}",
        resp.text().await.unwrap()
    );
    assert!(location(&resp).starts_with(redirect), "{}", location(&resp));
    assert_eq!(param(&resp, "state").as_deref(), Some("the-state"));
    assert_eq!(param(&resp, "iss").as_deref(), Some(app.base.as_str()));
    param(&resp, "code").expect("a code")
}

/// `POST /oidc/token` as the `web` client (`client_secret_basic`).
async fn token(app: &TestApp, client: &str, form: &[(&str, &str)]) -> Response {
    Client::new()
        .post(app.url("/oidc/token"))
        .basic_auth(client, Some(SECRET))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// Tokens for `client` through a whole login in the app's own browser.
async fn tokens_for(app: &TestApp, client: &str, redirect: &str) -> Value {
    let code = code_for(app, &app.client, client, redirect, &[]).await;
    json(exchange(app, client, &code, redirect).await).await
}

async fn exchange(app: &TestApp, client: &str, code: &str, redirect: &str) -> Response {
    token(
        app,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
        ],
    )
    .await
}

async fn refresh(app: &TestApp, client: &str, refresh_token: &str) -> Response {
    token(
        app,
        client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

async fn json(resp: Response) -> Value {
    serde_json::from_str(&resp.text().await.unwrap()).expect("JSON")
}

/// Neither token works any more: the refresh is refused, and so is the access token.
async fn assert_dead(app: &TestApp, client: &str, tokens: &Value) {
    let refreshed = refresh(app, client, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        refreshed.status(),
        StatusCode::BAD_REQUEST,
        "the refresh token still works"
    );
    let info = userinfo(app, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(
        info.status(),
        StatusCode::UNAUTHORIZED,
        "the access token still works"
    );
}

async fn userinfo(app: &TestApp, access: &str) -> Response {
    Client::new()
        .get(app.url("/oidc/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
}

/// The ID token's claims, checked against the provider's JWKS with the algorithm its
/// key names.
async fn verified_claims(app: &TestApp, id_token: &str, audience: &str) -> Value {
    let jwks = app
        .client
        .get(app.url("/oidc/jwks"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&jwks).unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the token's key is published");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[&app.base]);
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    jsonwebtoken::decode::<Value>(id_token, &key, &validation)
        .expect("a valid ID token")
        .claims
}

#[tokio::test]
async fn discovery_and_the_jwks_describe_the_provider_and_no_private_key() {
    let app = oidc_app(|_| {}).await;
    let doc = json(app.get("/.well-known/openid-configuration").await).await;
    assert_eq!(doc["issuer"], app.base);
    assert_eq!(doc["token_endpoint"], app.url("/oidc/token"));
    assert_eq!(doc["end_session_endpoint"], app.url("/oidc/logout"));
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256", "EdDSA"])
    );
    let jwks = json(app.get("/oidc/jwks").await).await;
    let keys = jwks["keys"].as_array().unwrap();
    let algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    assert_eq!(algs, ["RS256", "EdDSA"]);
    for key in keys {
        assert!(
            key.get("d").is_none() && key.get("p").is_none(),
            "a public key only: {key}"
        );
    }
    // Without --oidc-clients there is no provider.
    let plain = spawn_app().await;
    assert_eq!(
        plain
            .get("/.well-known/openid-configuration")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        plain.get("/oidc/jwks").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_login_through_the_provider_ends_with_tokens_that_say_who_and_how() {
    let app = oidc_app(|_| {}).await;
    let browser = client();
    // Nobody logged in: to the login form, which comes back here.
    let resp = app
        .get_by(&browser, &authorize_url("web", "http://app.test/cb", &[]))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let login = location(&resp).to_owned();
    assert!(
        login.starts_with("/?next=/oidc/continue%3Frequest%3D"),
        "{login}"
    );
    let next = login
        .trim_start_matches("/?next=")
        .replace("%3F", "?")
        .replace("%3D", "=");
    app.register_by(&browser, "ann", PASSWORD).await;
    join(&app, "ann", "staff").await;
    let resp = app.get_by(&browser, &next).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        param(&resp, "state").as_deref(),
        Some("the-state"),
        "state kept"
    );
    let code = param(&resp, "code").unwrap();

    let tokens = exchange(&app, "web", &code, "http://app.test/cb").await;
    assert_eq!(tokens.status(), StatusCode::OK);
    assert_eq!(tokens.headers()["cache-control"], "no-store");
    let tokens = json(tokens).await;
    assert_eq!(tokens["token_type"], "Bearer");
    let claims = verified_claims(&app, tokens["id_token"].as_str().unwrap(), "web").await;
    let id = account_id(&app, "ann");
    assert_eq!(
        claims["sub"],
        id.as_str(),
        "sub is the account id, not the name"
    );
    assert_eq!(claims["nonce"], "the-nonce", "nonce echoed");
    assert_eq!(claims["preferred_username"], "ann");
    assert_eq!(claims["groups"], serde_json::json!(["staff"]));
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert!(claims.get("acr").is_none(), "no second factor, no acr");
    assert!(claims.get("email").is_none(), "no confirmed address");
    assert!(claims["auth_time"].as_i64().unwrap() <= claims["iat"].as_i64().unwrap());

    let info = userinfo(&app, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(info.status(), StatusCode::OK);
    let info = json(info).await;
    assert_eq!(info["sub"], id.as_str());
    assert_eq!(info["preferred_username"], "ann");
    assert_eq!(info["groups"], serde_json::json!(["staff"]));
    let access = tokens["access_token"].as_str().unwrap();
    let forged = format!(
        "{}{}",
        &access[..access.len() - 1],
        if access.ends_with('0') { '1' } else { '0' }
    );
    assert_eq!(
        userinfo(&app, &forged).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(userinfo(&app, "").await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_unknown_client_or_redirect_uri_gets_a_page_never_a_redirect() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    for url in [
        authorize_url("nobody", "http://app.test/cb", &[]),
        authorize_url("web", "http://evil.test/cb", &[]),
        authorize_url("web", "http://app.test/cb/../evil", &[]),
        authorize_url("web", "http://app.test/cb?x=1", &[]),
        authorize_url("web", "", &[]),
    ] {
        let resp = app.get(&url).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(resp.headers().get("location").is_none(), "{url}");
        assert!(
            resp.text()
                .await
                .unwrap()
                .contains("Wicket cannot log you in to this app")
        );
    }
    // A good client and address: faults go back to the app, with the state.
    let resp = app
        .get(&authorize_url(
            "web",
            "http://app.test/cb",
            &[("response_type", "token")],
        ))
        .await;
    assert!(location(&resp).starts_with("http://app.test/cb?"));
    assert_eq!(
        param(&resp, "error").as_deref(),
        Some("unsupported_response_type")
    );
    assert_eq!(param(&resp, "state").as_deref(), Some("the-state"));
}

#[tokio::test]
async fn a_code_works_once_and_a_replay_revokes_what_it_issued() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let code = code_for(&app, &app.client, "web", "http://app.test/cb", &[]).await;
    let first = json(exchange(&app, "web", &code, "http://app.test/cb").await).await;
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&app, access).await.status(), StatusCode::OK);

    let again = exchange(&app, "web", &code, "http://app.test/cb").await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(again).await["error"], "invalid_grant");
    assert_eq!(
        userinfo(&app, access).await.status(),
        StatusCode::UNAUTHORIZED,
        "the first use's tokens are revoked"
    );
    let refreshed = refresh(&app, "web", first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_redirect_uri_and_lifetime() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let code = code_for(&app, &app.client, "web", "http://app.test/cb", &[]).await;
    let wrong_uri = exchange(&app, "web", &code, "http://app.test/other").await;
    assert_eq!(json(wrong_uri).await["error"], "invalid_grant");
    let other_client = exchange(&app, "staff", &code, "http://app.test/cb").await;
    assert_eq!(json(other_client).await["error"], "invalid_grant");

    // 60 seconds later the code is dead.
    let code = code_for(&app, &app.client, "web", "http://app.test/cb", &[]).await;
    let dir = app.config.data_dir.join("oidc/codes");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let mut grant: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let past = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
        grant["expires"] = past
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
            .into();
        std::fs::write(&path, serde_json::to_vec(&grant).unwrap()).unwrap();
    }
    let expired = exchange(&app, "web", &code, "http://app.test/cb").await;
    assert_eq!(json(expired).await["error"], "invalid_grant");
}

#[tokio::test]
async fn a_public_client_must_use_pkce_and_the_verifier_must_match() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    // Trust the app first (it is not trusted: a consent).
    let resp = app
        .get(&authorize_url("spa", "http://spa.test/cb", &[]))
        .await;
    assert_eq!(
        param(&resp, "error").as_deref(),
        Some("invalid_request"),
        "no PKCE"
    );
    let plain = [
        ("code_challenge", "abc"),
        ("code_challenge_method", "plain"),
    ];
    let resp = app
        .get(&authorize_url("spa", "http://spa.test/cb", &plain))
        .await;
    assert_eq!(
        param(&resp, "error").as_deref(),
        Some("invalid_request"),
        "plain PKCE"
    );

    let (verifier, challenge) = pkce();
    let with = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let page = app
        .get(&authorize_url("spa", "http://spa.test/cb", &with))
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("Allow Single Page?"), "{page}");
    let request = between(&page, r#"name="request" value=""#, "\"").to_owned();
    let resp = decide(&app, &request, "allow").await;
    let code = param(&resp, "code").unwrap();

    let exchange_with = |verifier: String, code: String| {
        let app = &app;
        async move {
            Client::new()
                .post(app.url("/oidc/token"))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", "http://spa.test/cb"),
                    ("client_id", "spa"),
                    ("code_verifier", verifier.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let (other_verifier, _) = pkce();
    let wrong = exchange_with(other_verifier, code.clone()).await;
    assert_eq!(json(wrong).await["error"], "invalid_grant");
    // A mismatch spent nothing: the code is still good for the right verifier? No:
    // it was not exchanged, so the right verifier still works once.
    let right = exchange_with(verifier.clone(), code.clone()).await;
    assert_eq!(right.status(), StatusCode::OK);
    let claims =
        verified_claims(&app, json(right).await["id_token"].as_str().unwrap(), "spa").await;
    assert_eq!(claims["aud"], "spa");
    // A public client cannot pretend to have a secret, nor skip its verifier.
    let code = code_for(&app, &app.client, "spa", "http://spa.test/cb", &with).await;
    let none = exchange_with(String::new(), code).await;
    assert_eq!(json(none).await["error"], "invalid_grant");
}

#[tokio::test]
async fn a_wrong_secret_or_two_ways_of_authenticating_are_refused() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let code = code_for(&app, &app.client, "web", "http://app.test/cb", &[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://app.test/cb"),
    ];
    let wrong = Client::new()
        .post(app.url("/oidc/token"))
        .basic_auth("web", Some("not-the-secret"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().contains_key("www-authenticate"));
    assert_eq!(json(wrong).await["error"], "invalid_client");
    let no_secret = Client::new()
        .post(app.url("/oidc/token"))
        .form(&[form.as_slice(), &[("client_id", "web")]].concat())
        .send()
        .await
        .unwrap();
    assert_eq!(json(no_secret).await["error"], "invalid_client");
    let both = Client::new()
        .post(app.url("/oidc/token"))
        .basic_auth("web", Some(SECRET))
        .form(&[form.as_slice(), &[("client_secret", SECRET)]].concat())
        .send()
        .await
        .unwrap();
    assert_eq!(json(both).await["error"], "invalid_request");
    // client_secret_post works, and the refused tries spent nothing.
    let post = Client::new()
        .post(app.url("/oidc/token"))
        .form(
            &[
                form.as_slice(),
                &[("client_id", "web"), ("client_secret", SECRET)],
            ]
            .concat(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::OK);
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_its_family() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let first = tokens_for(&app, "web", "http://app.test/cb").await;
    let r1 = first["refresh_token"].as_str().unwrap();
    let second = refresh(&app, "web", r1).await;
    assert_eq!(second.status(), StatusCode::OK);
    let second = json(second).await;
    let r2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2, "rotated");
    let claims = verified_claims(&app, second["id_token"].as_str().unwrap(), "web").await;
    assert_eq!(claims["sub"], account_id(&app, "ann").as_str());
    assert_eq!(
        userinfo(&app, first["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED,
        "the old access token went with its refresh"
    );
    let a2 = second["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&app, a2).await.status(), StatusCode::OK);
    // Another client cannot use it.
    assert_eq!(
        json(refresh(&app, "staff", r2).await).await["error"],
        "invalid_grant"
    );

    // The old one comes back: the whole family goes.
    let reused = refresh(&app, "web", r1).await;
    assert_eq!(json(reused).await["error"], "invalid_grant");
    assert_eq!(
        refresh(&app, "web", r2).await.status(),
        StatusCode::BAD_REQUEST,
        "the newest too"
    );
    assert_eq!(userinfo(&app, a2).await.status(), StatusCode::UNAUTHORIZED);
    // A new login is a new family.
    let code = code_for(&app, &app.client, "web", "http://app.test/cb", &[]).await;
    assert_eq!(
        exchange(&app, "web", &code, "http://app.test/cb")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_family() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let tokens = tokens_for(&app, "web", "http://app.test/cb").await;
    let (access, refresh_token) = (
        tokens["access_token"].as_str().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
    );
    // Another client's revocation changes nothing.
    let resp = Client::new()
        .post(app.url("/oidc/revoke"))
        .basic_auth("staff", Some(SECRET))
        .form(&[("token", refresh_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(userinfo(&app, access).await.status(), StatusCode::OK);
    let resp = Client::new()
        .post(app.url("/oidc/revoke"))
        .basic_auth("web", Some(SECRET))
        .form(&[("token", refresh_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        userinfo(&app, access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refresh(&app, "web", refresh_token).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_member_outside_the_clients_groups_gets_a_refusal_page() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let resp = app
        .get(&authorize_url("staff", "http://staff.test/cb", &[]))
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.headers().get("location").is_none());
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("not in a group that may use this app")
    );
    join(&app, "ann", "staff").await;
    code_for(&app, &app.client, "staff", "http://staff.test/cb", &[]).await;
}

#[tokio::test]
async fn a_two_step_client_sends_the_member_to_step_up_first() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let enabled = enable(&app, step_now()).await;
    let resp = app
        .get(&authorize_url("strict", "http://strict.test/cb", &[]))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let step_up = location(&resp).to_owned();
    assert!(
        step_up.starts_with("/login/step-up?next=/oidc/continue%3Frequest%3D"),
        "{step_up}"
    );
    let next = step_up
        .trim_start_matches("/login/step-up?next=")
        .replace("%3F", "?")
        .replace("%3D", "=");
    let code = totp(&enabled.key, step_now() + 1, 6);
    let resp = app
        .post_form(
            "/login/step-up",
            &[("code", code.as_str()), ("next", next.as_str())],
        )
        .await;
    assert_see_other(&resp, &next);
    let resp = app.get(&next).await;
    let code = param(&resp, "code").expect("a code after the step up");
    let tokens = json(exchange(&app, "strict", &code, "http://strict.test/cb").await).await;
    let claims = verified_claims(&app, tokens["id_token"].as_str().unwrap(), "strict").await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["acr"], wicket::oidc::ACR_MFA);
}

#[tokio::test]
async fn consent_is_asked_once_and_the_account_page_can_take_it_back() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let (verifier, challenge) = pkce();
    let with = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let page = app
        .get(&authorize_url("spa", "http://spa.test/cb", &with))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("your username") && page.contains("the groups you are in"));
    let request = between(&page, r#"name="request" value=""#, "\"").to_owned();
    // No: the app is told, and nothing is remembered.
    let resp = app
        .post_form(
            "/oidc/consent",
            &[("request", &request), ("decision", "deny")],
        )
        .await;
    assert_eq!(param(&resp, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&resp, "state").as_deref(), Some("the-state"));
    let resp = decide(&app, &request, "allow").await;
    assert_eq!(resp.status(), StatusCode::GONE, "a request answered once");

    let request = consent_request(&app, &with).await;
    // Without the CSRF token, no consent.
    let forged = app
        .client
        .post(app.url("/oidc/consent"))
        .form(&[("request", request.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let resp = decide(&app, &request, "allow").await;
    let code = param(&resp, "code").unwrap();
    let tokens = Client::new()
        .post(app.url("/oidc/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://spa.test/cb"),
            ("client_id", "spa"),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let tokens = json(tokens).await;
    // Agreed once: the next login goes straight back.
    code_for(&app, &app.client, "spa", "http://spa.test/cb", &with).await;
    // prompt=consent asks again.
    let again = app
        .get(&authorize_url(
            "spa",
            "http://spa.test/cb",
            &[with[0], with[1], ("prompt", "consent")],
        ))
        .await;
    assert!(again.text().await.unwrap().contains("Allow Single Page?"));

    let account = app.get("/account").await.text().await.unwrap();
    assert!(
        account.contains("Single Page") && account.contains("Remove access"),
        "{account}"
    );
    let resp = app
        .post_form("/account/apps/remove", &[("client", "spa")])
        .await;
    assert_see_other(&resp, "/account?done=app");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        userinfo(&app, access).await.status(),
        StatusCode::UNAUTHORIZED,
        "its tokens are revoked"
    );
    let account = app.get("/account?done=app").await.text().await.unwrap();
    assert!(
        account.contains("No app logs you in") && account.contains("access was removed"),
        "{account}"
    );
    let page = app
        .get(&authorize_url("spa", "http://spa.test/cb", &with))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Allow Single Page?"), "asked again");
}

#[tokio::test]
async fn prompt_none_login_and_max_age_are_honoured() {
    let app = oidc_app(|_| {}).await;
    let resp = app
        .get(&authorize_url(
            "web",
            "http://app.test/cb",
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(param(&resp, "error").as_deref(), Some("login_required"));
    app.register("ann", PASSWORD).await;
    // Logged in a while ago (session times are whole seconds).
    set_session_time(
        &app.session_files()[0],
        "created",
        time::Duration::seconds(5),
    );
    let before = code_for(
        &app,
        &app.client,
        "web",
        "http://app.test/cb",
        &[("prompt", "none")],
    )
    .await;
    let first = json(exchange(&app, "web", &before, "http://app.test/cb").await).await;
    let first = verified_claims(&app, first["id_token"].as_str().unwrap(), "web").await;

    // prompt=login: this session is not fresh enough. Asked first: a link alone logs
    // nobody out.
    let page = app
        .get(&authorize_url(
            "web",
            "http://app.test/cb",
            &[("prompt", "login")],
        ))
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("Log in again?") && page.contains("Web App"),
        "{page}"
    );
    assert_eq!(
        app.get("/cabinet").await.status(),
        StatusCode::OK,
        "still logged in"
    );
    let request = between(&page, r#"name="request" value=""#, "\"").to_owned();
    let forged = app
        .client
        .post(app.url("/oidc/reauth"))
        .form(&[("request", request.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        forged.status(),
        StatusCode::FORBIDDEN,
        "no CSRF token, no logout"
    );
    assert_eq!(
        app.get("/cabinet").await.status(),
        StatusCode::OK,
        "still logged in"
    );
    let resp = app
        .post_form("/oidc/reauth", &[("request", &request)])
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let login = location(&resp).to_owned();
    assert!(login.starts_with("/?next=/oidc/continue"), "{login}");
    assert_eq!(
        app.get("/cabinet").await.status(),
        StatusCode::SEE_OTHER,
        "logged out"
    );
    let next = login
        .trim_start_matches("/?next=")
        .replace("%3F", "?")
        .replace("%3D", "=");
    let resp = app
        .post_form(
            "/login",
            &[("username", "ann"), ("password", PASSWORD), ("next", &next)],
        )
        .await;
    assert_see_other(&resp, &next);
    let resp = app.get(&next).await;
    let code = param(&resp, "code").unwrap();
    let fresh = json(exchange(&app, "web", &code, "http://app.test/cb").await).await;
    let fresh = verified_claims(&app, fresh["id_token"].as_str().unwrap(), "web").await;
    assert!(fresh["auth_time"].as_i64() > first["auth_time"].as_i64());
    // max_age=2 with prompt=none: a login 5 seconds old is too old, and nothing may
    // be shown.
    for file in app.session_files() {
        set_session_time(&file, "created", time::Duration::seconds(5));
    }
    let resp = app
        .get(&authorize_url(
            "web",
            "http://app.test/cb",
            &[("prompt", "none"), ("max_age", "10")],
        ))
        .await;
    assert!(
        param(&resp, "code").is_some(),
        "young enough for max_age=10"
    );
    let resp = app
        .get(&authorize_url(
            "web",
            "http://app.test/cb",
            &[("prompt", "none"), ("max_age", "2")],
        ))
        .await;
    assert_eq!(param(&resp, "error").as_deref(), Some("login_required"));
}

#[tokio::test]
async fn logout_through_the_provider_asks_then_returns_to_the_app() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let tokens = tokens_for(&app, "web", "http://app.test/cb").await;
    let hint = tokens["id_token"].as_str().unwrap();
    let query = |uri: &str| {
        let mut url = url::Url::parse("http://x/oidc/logout").unwrap();
        url.query_pairs_mut()
            .append_pair("id_token_hint", hint)
            .append_pair("post_logout_redirect_uri", uri)
            .append_pair("state", "bye-state");
        format!("/oidc/logout?{}", url.query().unwrap())
    };
    // Not a registered address: a page, no redirect.
    let resp = app.get(&query("http://evil.test/")).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("location").is_none());
    // A forged hint (alg none, or HS256 keyed with the public key): refused.
    let body = hint.split('.').nth(1).unwrap();
    let none = format!(
        "{}.{body}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#)
    );
    let resp = app
        .get(&format!(
            "/oidc/logout?id_token_hint={none}&post_logout_redirect_uri=http%3A%2F%2Fapp.test%2Fbye"
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let jwks = json(app.get("/oidc/jwks").await).await;
    let n = jwks["keys"][0]["n"].as_str().unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = jwks["keys"][0]["kid"].as_str().map(str::to_owned);
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
    let hs = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(n.as_bytes()),
    )
    .unwrap();
    let resp = app
        .get(&format!(
            "/oidc/logout?id_token_hint={hs}&post_logout_redirect_uri=http%3A%2F%2Fapp.test%2Fbye"
        ))
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "alg confusion refused"
    );

    // The real thing: a question first (a link alone logs nobody out).
    let page = app.get(&query("http://app.test/bye")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("Log out of Wicket?") && page.contains("Web App"),
        "{page}"
    );
    assert_eq!(
        app.get("/cabinet").await.status(),
        StatusCode::OK,
        "still logged in"
    );
    let form = [
        ("id_token_hint", hint),
        ("post_logout_redirect_uri", "http://app.test/bye"),
        ("state", "bye-state"),
    ];
    let resp = app.post_form("/oidc/logout", &form).await;
    assert_see_other(&resp, "http://app.test/bye?state=bye-state");
    assert_eq!(
        app.get("/cabinet").await.status(),
        StatusCode::SEE_OTHER,
        "logged out"
    );
    // The session's end ended the app's tokens.
    assert_dead(&app, "web", &tokens).await;
    // Logged out already: straight back.
    assert_see_other(
        &app.get(&query("http://app.test/bye")).await,
        "http://app.test/bye?state=bye-state",
    );
}

#[tokio::test]
async fn a_password_change_ends_the_families_issued_before_it() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let tokens = tokens_for(&app, "web", "http://app.test/cb").await;
    let new_password = "a different horse staple";
    let form = [
        ("current_password", PASSWORD),
        ("password", new_password),
        ("confirm", new_password),
    ];
    assert_see_other(
        &app.post_form("/account/password", &form).await,
        "/account?done=password",
    );
    assert_dead(&app, "web", &tokens).await;
    // The browser stays logged in, and a new login for the app works.
    let code = code_for(&app, &app.client, "web", "http://app.test/cb", &[]).await;
    assert_eq!(
        exchange(&app, "web", &code, "http://app.test/cb")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_app_may_ask_for_eddsa_signed_id_tokens() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let tokens = tokens_for(&app, "ed", "http://ed.test/cb").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(id_token).unwrap().alg,
        jsonwebtoken::Algorithm::EdDSA
    );
    verified_claims(&app, id_token, "ed").await;
}

#[tokio::test]
async fn a_bad_clients_file_stops_start_up_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    let file = dir.path().join("clients.toml");
    std::fs::write(
        &file,
        "[[client]]\nid = \"a\"\nname = \"A\"\nredirect_uris = [\"ftp://x/cb\"]\npublic = true\n",
    )
    .unwrap();
    config.oidc_clients = Some(file);
    let err = wicket::app::Application::build(&config)
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("clients.toml:1: redirect URI"),
        "{err}"
    );
}

#[tokio::test]
async fn the_provider_works_across_two_instances_on_redis() {
    let redis = RedisServer::start();
    let shared = tempfile::tempdir().unwrap();
    let secret = shared.path().join("secret.key");
    let on = |redis: &RedisServer| {
        let (url, secret) = (redis.url(), secret.clone());
        move |c: &mut wicket::config::Config| {
            c.store = wicket::store::StoreKind::Redis(url);
            c.store_prefix = "oidc".into();
            c.secret_key_file = Some(secret);
        }
    };
    let a = oidc_app(on(&redis)).await;
    let b = oidc_app(on(&redis)).await;
    let cookie = session_cookie(&a.register("ann", PASSWORD).await).unwrap();
    let code = code_for(&a, &a.client, "web", "http://app.test/cb", &[]).await;
    // B's issuer is its own address in tests; the tokens are the same store's.
    let tokens = json(exchange(&b, "web", &code, "http://app.test/cb").await).await;
    assert_eq!(
        exchange(&a, "web", &code, "http://app.test/cb")
            .await
            .status(),
        StatusCode::BAD_REQUEST,
        "a code works once across instances"
    );
    assert_eq!(
        userinfo(&a, tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::UNAUTHORIZED,
        "and its replay revoked the family"
    );

    let tokens = tokens_for(&a, "web", "http://app.test/cb").await;
    let r1 = tokens["refresh_token"].as_str().unwrap();
    let rotated = json(refresh(&b, "web", r1).await).await;
    let a2 = rotated["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&a, a2).await.status(), StatusCode::OK);
    assert_eq!(
        refresh(&a, "web", r1).await.status(),
        StatusCode::BAD_REQUEST,
        "reuse seen on the other instance"
    );
    assert_eq!(
        userinfo(&b, a2).await.status(),
        StatusCode::UNAUTHORIZED,
        "family revoked everywhere"
    );
    // A new login's app is listed on the account page of either instance.
    let code = code_for(&a, &a.client, "web", "http://app.test/cb", &[]).await;
    assert_eq!(
        exchange(&a, "web", &code, "http://app.test/cb")
            .await
            .status(),
        StatusCode::OK
    );
    let account = b
        .get_with_cookie("/account", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(account.contains("Web App"), "{account}");
}

#[tokio::test]
async fn a_rotated_key_signs_after_a_reload_and_the_old_one_still_verifies() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let before = tokens_for(&app, "web", "http://app.test/cb").await;
    let old = before["id_token"].as_str().unwrap().to_owned();
    let old_kid = jsonwebtoken::decode_header(&old).unwrap().kid.unwrap();

    // The operator's command, on the running site's data directory; then SIGHUP's reload.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wicket"))
        .args([
            "--data-dir",
            app.config.data_dir.to_str().unwrap(),
            "oidc",
            "rotate-key",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("reload the server"));
    app.state.oidc.as_ref().unwrap().reload().unwrap();

    let jwks = json(app.get("/oidc/jwks").await).await;
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        4,
        "old and new, both algorithms"
    );
    let after = tokens_for(&app, "web", "http://app.test/cb").await;
    let new = after["id_token"].as_str().unwrap();
    assert_ne!(
        jsonwebtoken::decode_header(new).unwrap().kid.unwrap(),
        old_kid,
        "signed with the new key"
    );
    verified_claims(&app, new, "web").await;
    verified_claims(&app, &old, "web").await;
}

#[test]
fn the_client_secret_command_prints_a_secret_and_its_hash() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wicket"))
        .args(["oidc", "client-secret"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let secret = text.lines().next().unwrap().rsplit(": ").next().unwrap();
    let hash = text
        .split("secret_hash = \"")
        .nth(1)
        .unwrap()
        .trim_end()
        .trim_end_matches('"');
    assert_eq!(secret.len(), 43, "256 bits, base64url");
    assert_eq!(wicket::oidc::clients::secret_hash(secret), hash);
}

#[tokio::test]
async fn an_authorization_request_may_come_as_a_form_post() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let query = authorize_url("web", "http://app.test/cb", &[]);
    let form: Vec<(String, String)> =
        url::form_urlencoded::parse(query.split_once('?').unwrap().1.as_bytes())
            .into_owned()
            .collect();
    let resp = app
        .client
        .post(app.url("/oidc/authorize"))
        .header("origin", "http://app.test")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let again = location(&resp).to_owned();
    assert!(again.starts_with("/oidc/authorize?"), "{again}");
    let resp = app.get(&again).await;
    assert_eq!(param(&resp, "state").as_deref(), Some("the-state"));
    assert!(param(&resp, "code").is_some());
}

#[tokio::test]
async fn an_access_rule_naming_an_apps_address_applies_to_its_logins() {
    let app = oidc_app(|c| {
        let file = c.data_dir.with_file_name("rules.toml");
        let rules = "[[rule]]\nhost = \"app.test\"\npolicy = \"two-step\"\n\n\
                     [[rule]]\nhost = \"spa.test\"\npolicy = \"deny\"\n";
        std::fs::write(&file, rules).unwrap();
        c.access_rules = Some(file);
    })
    .await;
    app.register("ann", PASSWORD).await;
    // A two-step rule on the app's address: step up first.
    let resp = app
        .get(&authorize_url("web", "http://app.test/cb", &[]))
        .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&resp).starts_with("/login/step-up?next=/oidc/continue"),
        "{}",
        location(&resp)
    );
    // A deny rule: a page, no code.
    let (_, challenge) = pkce();
    let with = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let resp = app
        .get(&authorize_url("spa", "http://spa.test/cb", &with))
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("access rules do not let your account")
    );
    // An app no rule names is as its client entry says.
    code_for(&app, &app.client, "ed", "http://ed.test/cb", &[]).await;
}

/// A grant store whose first two reads matching `gated` each wait for the other, so
/// two requests are sure to have read the same grant before either goes on: the race
/// a spent mark must decide, staged every time.
#[derive(Debug)]
struct Gate {
    inner: Arc<dyn GrantStore>,
    gated: fn(&Shelf, &str) -> bool,
    left: AtomicUsize,
    both: tokio::sync::Barrier,
}

impl Gate {
    fn around(stores: Stores, gated: fn(&Shelf, &str) -> bool) -> Stores {
        let gate = Gate {
            inner: stores.grants.clone(),
            gated,
            left: AtomicUsize::new(2),
            both: tokio::sync::Barrier::new(2),
        };
        Stores {
            grants: Arc::new(gate),
            ..stores
        }
    }
}

impl GrantStore for Gate {
    fn put_grant<'a>(
        &'a self,
        shelf: &'a Shelf,
        name: &'a str,
        grant: &'a Grant,
    ) -> StoreFuture<'a, ()> {
        self.inner.put_grant(shelf, name, grant)
    }
    fn add_grant<'a>(
        &'a self,
        shelf: &'a Shelf,
        name: &'a str,
        grant: &'a Grant,
    ) -> StoreFuture<'a, bool> {
        self.inner.add_grant(shelf, name, grant)
    }
    fn get_grant<'a>(&'a self, shelf: &'a Shelf, name: &'a str) -> StoreFuture<'a, Option<Grant>> {
        Box::pin(async move {
            let found = self.inner.get_grant(shelf, name).await?;
            let gated = (self.gated)(shelf, name)
                && self
                    .left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
            if gated {
                self.both.wait().await;
            }
            Ok(found)
        })
    }
    fn take_grant<'a>(&'a self, shelf: &'a Shelf, name: &'a str) -> StoreFuture<'a, Option<Grant>> {
        self.inner.take_grant(shelf, name)
    }
    fn grants_on<'a>(&'a self, shelf: &'a Shelf) -> StoreFuture<'a, Vec<(String, Grant)>> {
        self.inner.grants_on(shelf)
    }
    fn sweep_grants(&self, now: time::OffsetDateTime) -> StoreFuture<'_, usize> {
        self.inner.sweep_grants(now)
    }
}

/// A code read by two exchanges at once.
fn code_reads(shelf: &Shelf, _: &str) -> bool {
    *shelf == Shelf::Codes
}

/// A family read by two refreshes at once (a family's name is 32 characters; the
/// revocation marks beside it are 64).
fn family_reads(shelf: &Shelf, name: &str) -> bool {
    matches!(shelf, Shelf::Account(_)) && name.len() == 32
}

/// An app on the file store, or on `redis`, whose grant reads are gated.
async fn gated_app(redis: Option<&RedisServer>, gated: fn(&Shelf, &str) -> bool) -> TestApp {
    let url = redis.map(RedisServer::url);
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    spawn_app_wrapping(
        |c| {
            let file = c.data_dir.with_file_name("clients.toml");
            std::fs::write(&file, clients()).unwrap();
            c.oidc_clients = Some(file);
            std::fs::create_dir_all(&c.data_dir).unwrap();
            std::fs::write(c.data_dir.join(wicket::oidc::keys::KEY_FILE), key_file()).unwrap();
            if let Some(url) = url {
                c.store = wicket::store::StoreKind::Redis(url);
                c.store_prefix = format!("gate{}", rand_bytes()[0]);
            }
        },
        |stores| Gate::around(stores, gated),
    )
    .await
}

/// Two token requests at once; their answers (status, body).
async fn both_at_once(
    app: &TestApp,
    form: [(&'static str, String); 3],
) -> Vec<(StatusCode, Value)> {
    let url = app.url("/oidc/token");
    let tries = (0..2).map(|_| {
        let (url, form) = (url.clone(), form.clone());
        async move {
            let resp = Client::new()
                .post(url)
                .basic_auth("web", Some(SECRET))
                .form(&form)
                .send()
                .await
                .unwrap();
            let status = resp.status();
            (
                status,
                serde_json::from_str::<Value>(&resp.text().await.unwrap()).unwrap(),
            )
        }
    });
    futures_join_all(tries).await
}

/// Of two uses at once at most one gets tokens, and none of what it got works: the
/// other's use revoked it (or the revocation came first and it got nothing).
async fn one_wins_and_is_revoked(app: &TestApp, answers: Vec<(StatusCode, Value)>) {
    let statuses: Vec<StatusCode> = answers.iter().map(|(s, _)| *s).collect();
    let won: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .map(|(_, v)| v)
        .collect();
    assert!(won.len() <= 1, "both uses at once got tokens: {statuses:?}");
    assert!(statuses.contains(&StatusCode::BAD_REQUEST), "{statuses:?}");
    for tokens in won {
        assert_eq!(
            userinfo(app, tokens["access_token"].as_str().unwrap())
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            refresh(app, "web", tokens["refresh_token"].as_str().unwrap())
                .await
                .status(),
            StatusCode::BAD_REQUEST
        );
    }
}

async fn code_race(redis: Option<&RedisServer>) {
    let app = gated_app(redis, code_reads).await;
    app.register("ann", PASSWORD).await;
    let code = code_for(&app, &app.client, "web", "http://app.test/cb", &[]).await;
    let form = [
        ("grant_type", "authorization_code".to_owned()),
        ("code", code),
        ("redirect_uri", "http://app.test/cb".to_owned()),
    ];
    let answers = both_at_once(&app, form).await;
    one_wins_and_is_revoked(&app, answers).await;
}

async fn refresh_race(redis: Option<&RedisServer>) {
    let app = gated_app(redis, family_reads).await;
    app.register("ann", PASSWORD).await;
    let tokens = tokens_for(&app, "web", "http://app.test/cb").await;
    let form = [
        ("grant_type", "refresh_token".to_owned()),
        (
            "refresh_token",
            tokens["refresh_token"].as_str().unwrap().to_owned(),
        ),
        ("redirect_uri", String::new()),
    ];
    let answers = both_at_once(&app, form).await;
    one_wins_and_is_revoked(&app, answers).await;
}

#[tokio::test]
async fn a_code_exchanged_twice_at_once_works_once_and_its_tokens_are_revoked() {
    code_race(None).await;
    let redis = RedisServer::start();
    code_race(Some(&redis)).await;
}

#[tokio::test]
async fn a_refresh_token_used_twice_at_once_works_once_and_its_family_ends() {
    refresh_race(None).await;
    let redis = RedisServer::start();
    refresh_race(Some(&redis)).await;
}

#[tokio::test]
async fn only_a_confirmed_address_is_told_to_apps() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let users = app.state.users.clone();
    let set_email = |verified: bool| {
        let users = users.clone();
        let change = move |u: &mut wicket::store::User| {
            u.email = Some(wicket::store::Email {
                address: "ann@example.com".into(),
                verified,
            });
        };
        async move {
            users
                .update(&Username::parse("ann").unwrap(), &change)
                .await
                .unwrap()
                .unwrap();
        }
    };
    set_email(false).await;
    let tokens = tokens_for(&app, "web", "http://app.test/cb").await;
    let claims = verified_claims(&app, tokens["id_token"].as_str().unwrap(), "web").await;
    assert!(
        claims.get("email").is_none(),
        "an unconfirmed address: {claims}"
    );
    let info = json(userinfo(&app, tokens["access_token"].as_str().unwrap()).await).await;
    assert!(info.get("email").is_none(), "{info}");

    set_email(true).await;
    let tokens = tokens_for(&app, "web", "http://app.test/cb").await;
    let claims = verified_claims(&app, tokens["id_token"].as_str().unwrap(), "web").await;
    assert_eq!(claims["email"], "ann@example.com");
    assert_eq!(claims["email_verified"], true);
    let info = json(userinfo(&app, tokens["access_token"].as_str().unwrap()).await).await;
    assert_eq!(info["email"], "ann@example.com");
}

#[tokio::test]
async fn a_password_changed_behind_the_sessions_back_still_ends_the_family() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let tokens = tokens_for(&app, "web", "http://app.test/cb").await;
    // As a restore or another tool might: the hash changes, the session stays.
    let change = |u: &mut wicket::store::User| u.password_hash = "$scrypt$other".into();
    app.state
        .users
        .update(&Username::parse("ann").unwrap(), &change)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        app.get("/cabinet").await.status(),
        StatusCode::OK,
        "the session lives on"
    );
    assert_dead(&app, "web", &tokens).await;
}

#[tokio::test]
async fn an_access_token_stops_working_when_it_expires() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let tokens = tokens_for(&app, "web", "http://app.test/cb").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&app, access).await.status(), StatusCode::OK);
    let mut parts = access.split('.');
    let (account, family) = (parts.next().unwrap(), parts.next().unwrap());
    let path = app
        .config
        .data_dir
        .join(format!("oidc/account-{account}/{family}.json"));
    let mut grant: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let past = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    grant["access_expires"] = past
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
        .into();
    std::fs::write(&path, serde_json::to_vec(&grant).unwrap()).unwrap();
    assert_eq!(
        userinfo(&app, access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The refresh token still works, and brings a new one.
    let fresh = json(refresh(&app, "web", tokens["refresh_token"].as_str().unwrap()).await).await;
    assert_eq!(
        userinfo(&app, fresh["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn prompt_none_never_shows_the_consent_or_step_up_page() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let (_, challenge) = pkce();
    let silent = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("prompt", "none"),
    ];
    let resp = app
        .get(&authorize_url("spa", "http://spa.test/cb", &silent))
        .await;
    assert_eq!(param(&resp, "error").as_deref(), Some("consent_required"));
    let resp = app
        .get(&authorize_url(
            "strict",
            "http://strict.test/cb",
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(
        param(&resp, "error").as_deref(),
        Some("interaction_required")
    );
}

#[tokio::test]
async fn leaving_a_clients_groups_ends_its_tokens() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    join(&app, "ann", "staff").await;
    let tokens = tokens_for(&app, "staff", "http://staff.test/cb").await;
    let user = app
        .state
        .users
        .get(&Username::parse("ann").unwrap())
        .await
        .unwrap()
        .unwrap();
    app.state
        .accounts
        .set_group(&user, &Group::parse("staff").unwrap(), false)
        .await
        .unwrap();
    assert_dead(&app, "staff", &tokens).await;
}

#[tokio::test]
async fn removing_an_apps_access_voids_the_codes_it_was_given() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let (verifier, challenge) = pkce();
    let with = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let request = consent_request(&app, &with).await;
    let resp = decide(&app, &request, "allow").await;
    let code = param(&resp, "code").unwrap();
    assert_see_other(
        &app.post_form("/account/apps/remove", &[("client", "spa")])
            .await,
        "/account?done=app",
    );
    let exchange_spa = |code: String, verifier: String| {
        let url = app.url("/oidc/token");
        async move {
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", "http://spa.test/cb"),
                ("client_id", "spa"),
                ("code_verifier", verifier.as_str()),
            ];
            Client::new().post(url).form(&form).send().await.unwrap()
        }
    };
    let late = exchange_spa(code, verifier.clone()).await;
    assert_eq!(
        json(late).await["error"],
        "invalid_grant",
        "a code from before the removal"
    );
    // Asked and allowed again: a new code works.
    let request = consent_request(&app, &with).await;
    let resp = decide(&app, &request, "allow").await;
    let fresh = exchange_spa(param(&resp, "code").unwrap(), verifier).await;
    assert_eq!(fresh.status(), StatusCode::OK);
}

#[tokio::test]
async fn oversized_or_odd_requests_are_refused_plainly_and_browsers_may_call_the_api() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    // A form body over 16 KiB: refused before anything is built from it.
    let big = format!("client_id=web&state={}", "A".repeat(20_000));
    let posted = app
        .client
        .post(app.url("/oidc/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let token = Client::new()
        .post(app.url("/oidc/token"))
        .basic_auth("web", Some(SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(token).await["error"], "invalid_request");
    // A state too long to send back is not sent back: a page.
    let long_state = "s".repeat(wicket::oidc::MAX_STATE + 1);
    let resp = app
        .get(&authorize_url(
            "web",
            "http://app.test/cb",
            &[("state", &long_state)],
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.headers().get("location").is_none());
    let resp = app.get(&format!("/oidc/logout?client_id=web&post_logout_redirect_uri=http%3A%2F%2Fapp.test%2Fbye&state={long_state}")).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // The Bearer scheme in any case; the API readable from any origin, preflight included.
    let tokens = tokens_for(&app, "web", "http://app.test/cb").await;
    let access = tokens["access_token"].as_str().unwrap();
    let info = Client::new()
        .get(app.url("/oidc/userinfo"))
        .header("authorization", format!("bearer {access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), StatusCode::OK);
    assert_eq!(info.headers()["access-control-allow-origin"], "*");
    let preflight = Client::new()
        .request(reqwest::Method::OPTIONS, app.url("/oidc/token"))
        .header("origin", "http://spa.test")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    assert!(
        preflight.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("Authorization")
    );
}

#[tokio::test]
async fn a_disabled_account_or_one_asked_for_a_new_password_loses_its_app_tokens() {
    use crate::toolbox::run;
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let tokens = tokens_for(&app, "web", "http://app.test/cb").await;
    assert!(run(&app, &["user", "disable", "ann"]).contains("disabled ann"));
    assert_dead(&app, "web", &tokens).await;

    run(&app, &["user", "enable", "ann"]);
    assert_see_other(&app.login("ann", PASSWORD).await, "/cabinet");
    let tokens = tokens_for(&app, "web", "http://app.test/cb").await;
    run(&app, &["user", "require-password-change", "ann"]);
    assert_dead(&app, "web", &tokens).await;
    // Logged in again, the app waits until the new password is chosen.
    assert_see_other(&app.login("ann", PASSWORD).await, "/cabinet");
    let asked = app
        .get(&authorize_url("web", "http://app.test/cb", &[]))
        .await;
    assert_see_other(&asked, "/account");
}

#[tokio::test]
async fn an_app_token_is_refused_once_a_new_password_is_required_even_with_the_session_live() {
    let app = oidc_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let tokens = tokens_for(&app, "web", "http://app.test/cb").await;
    crate::toolbox::behind_the_back(&app, "ann", &|u| u.must_change_password = true).await;
    assert_dead(&app, "web", &tokens).await;
}
