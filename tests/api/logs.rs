//! What the server writes to its log: enough to follow a request, never a secret.

use std::io::{Read, Write};

use reqwest::StatusCode;

use crate::helpers::binary::Binary;
use crate::helpers::redis::RedisServer;
use crate::helpers::*;

pub async fn post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let page = client.get(format!("{base}/")).send().await.unwrap();
    let page = if page.status() == StatusCode::OK {
        page.text().await.unwrap()
    } else {
        let logout = client.get(format!("{base}/logout")).send().await.unwrap();
        logout.text().await.unwrap()
    };
    let token = hidden_csrf(&page);
    let mut form = form.to_vec();
    form.push(("csrf", &token));
    client
        .post(format!("{base}{path}"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn logs_follow_each_request_but_never_show_passwords_keys_cookies_or_redis_urls() {
    const REDIS_PASSWORD: &str = "redis-secret-f00d";
    const WRONG: &str = "wrong-guess-c0ffee";
    const TYPED_IN_NAME: &str = "name-field-password-beef";
    let mut redis = RedisServer::start_with_password(REDIS_PASSWORD);
    let url = format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{}/0", redis.port);
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::start(dir.path(), &["--store", &url]);
    let base = server.base.clone();
    let browser = client();

    let form = [
        ("username", "alice"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    let registered = post(&browser, &base, "/register/", &form).await;
    assert_see_other(&registered, "/cabinet");
    let cookie = session_cookie(&registered).unwrap();
    post(&browser, &base, "/logout", &[]).await;
    let failed = post(
        &browser,
        &base,
        "/login",
        &[("username", "alice"), ("password", WRONG)],
    )
    .await;
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    post(
        &browser,
        &base,
        "/login",
        &[("username", TYPED_IN_NAME), ("password", WRONG)],
    )
    .await;
    let ok = post(
        &browser,
        &base,
        "/login",
        &[("username", "alice"), ("password", PASSWORD)],
    )
    .await;
    let second = session_cookie(&ok).unwrap();
    let csrf_cookie = browser.get(format!("{base}/cabinet")).send().await.unwrap();
    assert_eq!(csrf_cookie.status(), StatusCode::OK);
    // An outage: the error line carries its cause, never the URL.
    redis.stop();
    let down = browser.get(format!("{base}/cabinet")).send().await.unwrap();
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);

    let log = server.stop();
    let key = std::fs::read_to_string(dir.path().join("data/secret.key")).unwrap();
    let value = |c: &str| c.split_once('=').unwrap().1.to_owned();
    let (first_id, first_mac) = value(&cookie)
        .split_once('.')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    let (second_id, second_mac) = value(&second)
        .split_once('.')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    for secret in [
        PASSWORD,
        WRONG,
        key.trim(),
        &key.trim()[..16],
        &first_id,
        &first_mac,
        &second_id,
        &second_mac,
        REDIS_PASSWORD,
        "redis://",
        "$scrypt$",
    ] {
        assert!(!log.contains(secret), "the log shows {secret:?}:\n{log}");
    }
    // It did log: one line per request with an id, auth events inside their request's span.
    for expected in [
        "logged in",
        "password check failed",
        "logged out",
        "store unavailable",
        "request{id=",
    ] {
        assert!(log.contains(expected), "no {expected:?} in:\n{log}");
    }
    let failed_line = log
        .lines()
        .find(|l| l.contains("password check failed"))
        .unwrap();
    assert!(
        failed_line.contains("path=/login") && failed_line.contains("id="),
        "{failed_line}"
    );
}

#[tokio::test]
async fn json_logs_hold_one_object_per_line_with_the_request_fields_and_the_real_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::start(
        dir.path(),
        &["--log-format", "json", "--trusted-proxies", "127.0.0.1"],
    );
    let browser = client();
    let page = browser
        .get(format!("{}/", server.base))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    for probe in ["/healthz", "/readyz"] {
        let resp = browser
            .get(format!("{}{probe}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let log = server.stop();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["timestamp"].is_string() && l["level"].is_string())
    );
    let request = lines
        .iter()
        .find(|l| l["message"] == "request" && l["span"]["path"] == "/")
        .unwrap_or_else(|| panic!("no request line for /:\n{log}"));
    assert_eq!(request["status"], 200);
    assert_eq!(request["span"]["method"], "GET");
    assert_eq!(request["span"]["client"], "203.0.113.9");
    assert_eq!(request["span"]["id"].as_str().map(str::len), Some(16));
    assert!(request["ms"].is_string(), "{request}");
    // Health checks come every few seconds: not at info.
    assert!(
        !lines
            .iter()
            .any(|l| l["span"]["path"] == "/healthz" || l["span"]["path"] == "/readyz"),
        "{log}"
    );
}

/// Answers one request, so everything logged at start-up has been logged, then stops.
fn served_then_stopped(server: Binary) -> String {
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server.stop()
}

#[test]
fn listening_beyond_loopback_without_a_public_url_is_warned_about() {
    const WARNING: &str = "listening beyond loopback without --public-url";
    let dir = tempfile::tempdir().unwrap();
    let open = served_then_stopped(Binary::start(dir.path(), &["--addr", "0.0.0.0:0"]));
    assert!(open.contains(WARNING), "{open}");
    let loopback = served_then_stopped(Binary::start(dir.path(), &[]));
    assert!(!loopback.contains(WARNING), "{loopback}");
    let pinned = served_then_stopped(Binary::start(
        dir.path(),
        &[
            "--addr",
            "0.0.0.0:0",
            "--public-url",
            "http://login.example.com",
        ],
    ));
    assert!(!pinned.contains(WARNING), "{pinned}");
}

#[tokio::test]
async fn no_input_makes_a_log_line_long_or_puts_a_password_typed_as_a_name_in_it() {
    const TYPED_AS_NAME: &str = "my secret passphrase";
    let dir = tempfile::tempdir().unwrap();
    let server = Binary::start(dir.path(), &[]);
    let base = server.base.clone();
    let browser = client();
    let huge = "x".repeat(10_000);
    for name in [huge.as_str(), TYPED_AS_NAME, "real.name"] {
        let resp = post(
            &browser,
            &base,
            "/login",
            &[("username", name), ("password", "wrong guess here")],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let long_path = format!("{base}/{}", "p".repeat(10_000));
    let missing = browser.get(long_path).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let huge_origin = browser
        .post(format!("{base}/login"))
        .header("origin", format!("http://{}", "o".repeat(8_000)))
        .form(&[("username", "a")])
        .send()
        .await
        .unwrap();
    assert_eq!(huge_origin.status(), StatusCode::FORBIDDEN);
    let log = server.stop();
    assert!(!log.contains(TYPED_AS_NAME), "{log}");
    assert!(log.contains("<not a name: 10000 characters>"), "{log}");
    assert!(
        log.contains("username=real.name"),
        "a valid name is logged as itself:\n{log}"
    );
    let longest = log.lines().map(str::len).max().unwrap();
    assert!(longest <= 1024, "a log line of {longest} bytes");
}
