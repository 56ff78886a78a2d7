//! Wicket behind a reverse proxy: whose forwarding headers count, the one `Host`
//! and origin it answers to, and the health checks a load balancer uses.

use std::io::{Read, Write};

use reqwest::StatusCode;
use reqwest::header::{HOST, ORIGIN};

use crate::helpers::redis::RedisServer;
use crate::helpers::*;

async fn register_via(app: &TestApp, name: &str, forwarded: &str) -> reqwest::Response {
    register_from(app, &client(), name, forwarded).await
}

/// The address the account page shows for this browser's own session.
async fn address_listed(app: &TestApp, name: &str, forwarded: &str) -> String {
    let browser = client();
    let resp = register_from(app, &browser, name, forwarded).await;
    assert_see_other(&resp, "/cabinet");
    let page = app.get_by(&browser, "/account").await.text().await.unwrap();
    let sessions = &page[page.find("id=\"sessions\"").expect("a sessions list")..];
    ["203.0.113.7", "198.51.100.1", "127.0.0.1"]
        .into_iter()
        .find(|ip| sessions.contains(ip))
        .unwrap_or("none")
        .to_owned()
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client_and_the_sessions_list_shows_it() {
    let app = spawn_app_with(|c| c.trusted_proxies = "127.0.0.1".parse().unwrap()).await;
    // The client claimed 198.51.100.1; the proxy appended what it saw.
    let shown = address_listed(&app, "alice", "198.51.100.1, 203.0.113.7").await;
    assert_eq!(shown, "203.0.113.7");
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let app = spawn_app().await;
    let shown = address_listed(&app, "alice", "203.0.113.7").await;
    assert_eq!(shown, "127.0.0.1");
    let elsewhere = spawn_app_with(|c| c.trusted_proxies = "10.0.0.0/8".parse().unwrap()).await;
    let shown = address_listed(&elsewhere, "bob", "203.0.113.7").await;
    assert_eq!(shown, "127.0.0.1");
}

#[tokio::test]
async fn per_address_limits_count_each_client_behind_the_proxy_apart() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = "127.0.0.1".parse().unwrap();
        c.throttle_register = "2/1h".parse().unwrap();
    })
    .await;
    for name in ["ann", "amy"] {
        assert_see_other(&register_via(&app, name, "203.0.113.7").await, "/cabinet");
    }
    let third = register_via(&app, "ada", "203.0.113.7").await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy is not held back by the first …
    assert_see_other(&register_via(&app, "ben", "198.51.100.1").await, "/cabinet");
    // … and the first cannot get round its limit by claiming another address itself.
    let claimed = register_via(&app, "abe", "198.51.100.9, 203.0.113.7").await;
    assert_eq!(claimed.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn without_trusted_proxies_a_forged_header_does_not_escape_the_limit() {
    let app = spawn_app_with(|c| c.throttle_register = "1/1h".parse().unwrap()).await;
    assert_see_other(&register_via(&app, "ann", "203.0.113.1").await, "/cabinet");
    let again = register_via(&app, "amy", "203.0.113.2").await;
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
}

fn pinned() -> impl FnOnce(&mut wicket::config::Config) {
    |c| c.public_url = Some("https://login.example.com".parse().unwrap())
}

/// `GET path` with the `Host` header set to `host`.
async fn get_on(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    host: &str,
) -> reqwest::Response {
    browser
        .get(app.url(path))
        .header(HOST, host)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn with_a_public_url_other_hosts_are_misdirected() {
    let app = spawn_app_with(pinned()).await;
    let browser = client();
    let ours = get_on(&app, &browser, "/", "login.example.com").await;
    assert_eq!(ours.status(), StatusCode::OK);
    for other in ["evil.example", "login.example.com:8443", "127.0.0.1"] {
        let resp = get_on(&app, &browser, "/", other).await;
        assert_eq!(resp.status(), StatusCode::MISDIRECTED_REQUEST, "{other}");
        assert!(resp.headers().get("set-cookie").is_none(), "{other}");
    }
    // The health checks answer whatever the Host: load balancers probe by address.
    let health = app.get_by(&browser, "/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
    assert!(app.session_files().is_empty());
}

/// A raw HTTP exchange, for what a well-behaved client cannot send.
async fn raw(app: &TestApp, request: &'static str) -> String {
    let addr = app.base.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn with_a_public_url_a_request_without_a_host_or_naming_another_is_refused() {
    let app = spawn_app_with(pinned()).await;
    let hostless = raw(&app, "GET / HTTP/1.0\r\n\r\n").await;
    assert!(hostless.starts_with("HTTP/1.0 400"), "{hostless}");
    let absolute = raw(
        &app,
        "GET http://evil.example/ HTTP/1.1\r\nHost: login.example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(absolute.starts_with("HTTP/1.1 421"), "{absolute}");
}

#[tokio::test]
async fn with_a_public_url_forms_must_come_from_exactly_that_origin() {
    let app = spawn_app_with(pinned()).await;
    let browser = client();
    let page = get_on(&app, &browser, "/register/", "login.example.com")
        .await
        .text()
        .await
        .unwrap();
    let token = hidden_csrf(&page);
    let form = [
        ("username", "alice"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
        ("csrf", token.as_str()),
    ];
    for (host, origin) in [
        ("login.example.com", "https://evil.example"),
        ("login.example.com", "http://login.example.com"),
        ("login.example.com", "https://login.example.com:8443"),
        ("login.example.com", "null"),
    ] {
        let resp = browser
            .post(app.url("/register/"))
            .header(HOST, host)
            .header(ORIGIN, origin)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{origin}");
    }
    // DNS rebinding: the attacker's name resolving to this server; its own Host and
    // Origin agree with each other, but not with the site.
    let rebound = browser
        .post(app.url("/register/"))
        .header(HOST, "evil.example")
        .header(ORIGIN, "http://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), StatusCode::MISDIRECTED_REQUEST);
    assert!(app.user_files().is_empty(), "nothing was registered");
    let ours = browser
        .post(app.url("/register/"))
        .header(HOST, "login.example.com")
        .header(ORIGIN, "https://login.example.com")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_see_other(&ours, "/cabinet");
}

#[tokio::test]
async fn health_checks_answer_without_a_session_and_readiness_follows_the_file_store() {
    let app = spawn_app().await;
    let live = app.get("/healthz").await;
    assert_eq!(live.status(), StatusCode::OK);
    assert!(live.headers().get("set-cookie").is_none());
    assert_eq!(live.text().await.unwrap(), "ok\n");
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    assert!(app.session_files().is_empty());
    // The sessions directory goes away (a lost mount): not ready, but alive.
    let moved = app.config.sessions_dir.with_extension("gone");
    std::fs::rename(&app.config.sessions_dir, &moved).unwrap();
    assert_eq!(
        app.get("/readyz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    std::fs::rename(&moved, &app.config.sessions_dir).unwrap();
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn readiness_follows_redis_and_liveness_does_not() {
    let mut redis = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}/0", redis.port);
    let app = spawn_app_with(|c| c.store = url.parse().unwrap()).await;
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    redis.stop();
    assert_eq!(
        app.get("/readyz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}
