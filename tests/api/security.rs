//! Attack tests: each fails if the protection it names is removed.

use reqwest::StatusCode;

use crate::helpers::*;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

async fn post_raw(app: &TestApp, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .form(form)
        .send()
        .await
        .unwrap()
}

// --- Forged requests -------------------------------------------------------------

#[tokio::test]
async fn posts_without_a_csrf_token_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    app.get("/").await; // the browser has its CSRF cookie, but the form lacks the field
    let register = [
        ("username", "mallory"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    let resp = post_raw(&app, "/register/", &register).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.text().await.unwrap().contains("This form has expired"));
    assert!(app.user_files().is_empty());

    app.register("alice", PASSWORD).await;
    let resp = post_raw(&app, "/logout", &[]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.session_files().len(), 1, "still logged in");
    assert_eq!(app.get("/cabinet").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_or_another_visitors_token_is_refused() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    app.logout().await;
    let other = client();
    let theirs = csrf_token_of(&other, &app).await;
    let mine = app.csrf_token().await;
    assert_ne!(theirs, mine);
    for token in [theirs.as_str(), "", "00", &"0".repeat(64), &mine[..63]] {
        let form = [
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf", token),
        ];
        let resp = post_raw(&app, "/login", &form).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "token {token:?}");
        assert!(session_cookie(&resp).is_none());
    }
    assert!(app.session_files().is_empty());
}

#[tokio::test]
async fn the_csrf_token_rotates_at_login() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    app.logout().await;
    let before = app.csrf_token().await;
    let resp = app.login("alice", PASSWORD).await;
    assert_see_other(&resp, "/cabinet");
    let after = app.csrf_token().await;
    assert_ne!(before, after);
    let resp = post_raw(&app, "/logout", &[("csrf", &before)]).await;
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "a pre-login token is dead"
    );
    assert_see_other(&post_raw(&app, "/logout", &[("csrf", &after)]).await, "/");
}

#[tokio::test]
async fn the_csrf_token_rotates_at_logout() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    let before = app.csrf_token().await;
    assert_see_other(&post_raw(&app, "/logout", &[("csrf", &before)]).await, "/");
    let after = app.csrf_token().await;
    assert_ne!(before, after);
    let form = [
        ("username", "alice"),
        ("password", PASSWORD),
        ("csrf", before.as_str()),
    ];
    let resp = post_raw(&app, "/login", &form).await;
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "a pre-logout token is dead"
    );
    assert!(app.session_files().is_empty());
}

#[tokio::test]
async fn the_csrf_token_rotates_at_registration() {
    let app = spawn_app().await;
    let before = app.csrf_token().await;
    let form = [
        ("username", "alice"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
        ("csrf", before.as_str()),
    ];
    assert_see_other(&post_raw(&app, "/register/", &form).await, "/cabinet");
    let after = app.csrf_token().await;
    assert_ne!(before, after);
    let resp = post_raw(&app, "/logout", &[("csrf", &before)]).await;
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "a pre-registration token is dead"
    );
    assert_eq!(app.session_files().len(), 1, "still logged in");
}

#[tokio::test]
async fn failures_count_against_the_account_whatever_its_case_or_spacing() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    app.logout().await;
    for typed in ["ALICE", " alice", "Alice ", "aLiCe", "alice"] {
        assert_eq!(
            app.login(typed, "wrong guess!").await.status(),
            StatusCode::UNAUTHORIZED,
            "{typed:?}"
        );
    }
    assert_eq!(
        app.login("alice", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "five failures in any spelling lock the one account"
    );
}

#[tokio::test]
async fn a_post_from_another_origin_is_refused_even_with_a_valid_token() {
    let app = spawn_app().await;
    let token = app.csrf_token().await;
    let form = [
        ("username", "mallory"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
        ("csrf", &token),
    ];
    for (header, value) in [
        ("origin", "http://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let resp = app
            .client
            .post(app.url("/register/"))
            .header(header, value)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{header}: {value}");
    }
    assert!(app.user_files().is_empty());
    let own_origin = app.base.clone();
    let resp = app
        .client
        .post(app.url("/register/"))
        .header("origin", own_origin)
        .header("sec-fetch-site", "same-origin")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_see_other(&resp, "/cabinet");
}

#[tokio::test]
async fn get_and_head_change_nothing_and_unused_methods_get_405() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    for path in ["/logout", "/cabinet", "/", "/register/", "/login"] {
        let resp = app.client.head(app.url(path)).send().await.unwrap();
        assert!(
            resp.status().as_u16() < 400,
            "HEAD {path}: {}",
            resp.status()
        );
    }
    assert_eq!(app.session_files().len(), 1);
    assert_eq!(app.get("/cabinet").await.status(), StatusCode::OK);
    for (method, path) in [
        ("DELETE", "/cabinet"),
        ("PUT", "/"),
        ("POST", "/cabinet"),
        ("PATCH", "/logout"),
        ("DELETE", "/register"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
}

// --- Guessing passwords ----------------------------------------------------------

#[tokio::test]
async fn repeated_failures_on_one_account_are_throttled_with_retry_after() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    app.register("bob", PASSWORD).await;
    app.logout().await;
    for _ in 0..5 {
        assert_eq!(
            app.login("alice", "wrong guess!").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let runs = app.state.hasher.work();
    let resp = app.login("alice", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    let body = resp.text().await.unwrap();
    assert!(body.contains("Too many attempts"), "{body}");
    assert_eq!(
        app.state.hasher.work(),
        runs,
        "no scrypt work while throttled"
    );
    assert_see_other(&app.login("bob", PASSWORD).await, "/cabinet");
}

#[tokio::test]
async fn one_address_guessing_many_accounts_is_throttled_too() {
    let app = spawn_app_with(|c| c.throttle_login = "2/15m".parse().unwrap()).await;
    for i in 0..8 {
        let resp = app.login(&format!("victim{}", i / 2), "wrong guess!").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    assert_eq!(
        app.login("fresh-name", "wrong guess!").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn throttling_can_be_switched_off() {
    let app = spawn_app_with(|c| c.throttle_login = "off".parse().unwrap()).await;
    for _ in 0..30 {
        assert_eq!(
            app.login("alice", "wrong guess!").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn registrations_are_limited_per_address() {
    let app = spawn_app_with(|c| c.throttle_register = "2/1h".parse().unwrap()).await;
    for name in ["first", "second"] {
        let visitor = client();
        let form = [
            ("username", name),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
        ];
        assert_see_other(
            &app.post_form_by(&visitor, "/register/", &form).await,
            "/cabinet",
        );
    }
    let form = [
        ("username", "third"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    let resp = app.post_form_by(&client(), "/register/", &form).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    assert!(resp.text().await.unwrap().contains("Too many attempts"));
    assert_eq!(app.user_files().len(), 2);
}

#[tokio::test]
async fn an_unknown_user_costs_the_same_scrypt_work_as_a_wrong_password() {
    // The first unknown-user login of a fresh server: the dummy hash must already exist
    // (made lazily, this login would cost two scrypt runs).
    let app = spawn_app().await;
    let per_run = app.state.hasher.work_per_run();
    let work = |before: u64| app.state.hasher.work() - before;
    let before = app.state.hasher.work();
    app.login("nobody-here", "wrong guess!").await;
    let unknown = work(before);
    let before = app.state.hasher.work();
    app.login("bad name!", "wrong guess!").await;
    let malformed = work(before);
    app.register("alice", PASSWORD).await;
    app.logout().await;
    let before = app.state.hasher.work();
    app.login("alice", "wrong guess!").await;
    let wrong = work(before);
    assert_eq!(
        wrong, per_run,
        "a wrong password costs one run at the configured cost"
    );
    assert_eq!((unknown, malformed), (wrong, wrong));
}

#[tokio::test]
async fn very_common_passwords_are_refused_with_a_reason() {
    let app = spawn_app().await;
    let form = [
        ("username", "alice"),
        ("password", "Password123"),
        ("confirm", "Password123"),
    ];
    let resp = app.post_form("/register/", &form).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("one of the most commonly used")
    );
    assert!(app.user_files().is_empty());
}

#[tokio::test]
async fn a_password_of_exactly_the_longest_length_works() {
    let app = spawn_app().await;
    // 1024 characters, 2 bytes each, with no pattern a strength estimate would find.
    let mut state: u32 = 0x9e37_79b9;
    let longest: String = (0..1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            char::from_u32(0xe0 + state % 30).unwrap()
        })
        .collect();
    assert_eq!(longest.chars().count(), 1024);
    assert_see_other(&app.register("alice", &longest).await, "/cabinet");
    app.logout().await;
    assert_see_other(&app.login("alice", &longest).await, "/cabinet");
}

#[tokio::test]
async fn overlong_passwords_are_refused_before_any_hashing() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    app.logout().await;
    let long = "x".repeat(1025);
    let before = app.state.hasher.work();
    assert_eq!(
        app.login("alice", &long).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let form = [
        ("username", "bob"),
        ("password", long.as_str()),
        ("confirm", long.as_str()),
    ];
    assert_eq!(
        app.post_form("/register/", &form).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(app.state.hasher.work(), before);
}

#[tokio::test]
async fn a_stored_hash_costlier_than_the_ceiling_is_refused_before_hashing() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    app.logout().await;
    let file = app.user_files().pop().unwrap();
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("ln=4,", "ln=21,");
    std::fs::write(&file, text).unwrap();
    let before = app.state.hasher.work();
    let resp = app.login("alice", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(session_cookie(&resp).is_none());
    assert_eq!(app.state.hasher.work(), before);
    let body = resp.text().await.unwrap();
    assert!(body.contains("Something went wrong") && !body.contains("ln=21"));
}

#[tokio::test]
async fn a_hash_made_at_another_cost_logs_in_and_is_replaced_at_the_configured_one() {
    let app = spawn_app().await;
    for (name, other) in [("older", 6), ("cheaper", 2)] {
        app.register(name, PASSWORD).await;
        app.logout().await;
        let hash = wicket::password::Hasher::new(other, 1)
            .unwrap()
            .hash(wicket::domain::Password::parse(PASSWORD.into(), "alice").unwrap())
            .await
            .unwrap();
        let file = app.config.data_dir.join(format!("users/{name}.json"));
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        json["password_hash"] = serde_json::Value::String(hash);
        std::fs::write(&file, json.to_string()).unwrap();

        assert_see_other(&app.login(name, PASSWORD).await, "/cabinet");
        let stored = std::fs::read_to_string(&file).unwrap();
        assert!(stored.contains("$scrypt$ln=4,r=8,p=1$"), "{name}: {stored}");
        app.logout().await;
        assert_see_other(&app.login(name, PASSWORD).await, "/cabinet");
        app.logout().await;
    }
}

// --- Headers and cookies ---------------------------------------------------------

#[tokio::test]
async fn every_page_carries_the_security_headers() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    for path in ["/cabinet", "/logout", "/nope"] {
        let resp = app.get(path).await;
        let h = resp.headers();
        assert_eq!(h["content-security-policy"], CSP, "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["cache-control"], "no-store");
        assert!(h["vary"].to_str().unwrap().contains("Cookie"));
        assert!(!h.contains_key("strict-transport-security"));
    }
    app.logout().await;
    for path in ["/", "/register/"] {
        assert_eq!(
            app.get(path).await.headers()["cache-control"],
            "no-store",
            "{path}"
        );
    }
}

#[tokio::test]
async fn cookies_are_http_only_lax_and_site_wide() {
    let app = spawn_app().await;
    let resp = app.register("alice", PASSWORD).await;
    let cookie = session_set_cookie(&resp).unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let csrf = client().get(app.url("/")).send().await.unwrap();
    let csrf = csrf.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        csrf.starts_with("wicket_csrf=") && csrf.contains("HttpOnly"),
        "{csrf}"
    );
}

#[tokio::test]
async fn secure_mode_uses_host_prefixed_secure_cookies_and_hsts() {
    let app = spawn_app_with(|c| c.secure_cookies = true).await;
    let resp = client().get(app.url("/")).send().await.unwrap();
    assert!(
        resp.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let csrf = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        csrf.starts_with("__Host-wicket_csrf=") && csrf.contains("Secure"),
        "{csrf}"
    );
    // The browser would hold the cookie; replay it by hand, as over TLS.
    let secret = csrf.split(';').next().unwrap().to_owned();
    let token = hidden_csrf(&resp.text().await.unwrap());
    let resp = client()
        .post(app.url("/register/"))
        .header("cookie", &secret)
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
            ("csrf", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_see_other(&resp, "/cabinet");
    let session = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("__Host-wicket_session="))
        .expect("a __Host- session cookie");
    assert!(
        session.contains("Secure") && session.contains("Path=/") && !session.contains("Domain")
    );
}

// --- Hostile input ---------------------------------------------------------------

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let app = spawn_app().await;
    let token = app.csrf_token().await;
    let padding = "x".repeat(17 * 1024);
    let form = [
        ("username", "alice"),
        ("password", padding.as_str()),
        ("csrf", token.as_str()),
    ];
    let resp = post_raw(&app, "/login", &form).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Without Content-Length (chunked), the limit still holds while reading.
    assert_eq!(
        chunked_post_status(&app, "/login", padding.as_bytes()).await,
        413
    );
}

#[tokio::test]
async fn a_body_of_exactly_the_limit_is_read() {
    let app = spawn_app().await;
    let token = app.csrf_token().await;
    let head = format!("username=alice&csrf={token}&password=");
    let body = format!("{head}{}", "x".repeat(16 * 1024 - head.len()));
    assert_eq!(body.len(), 16 * 1024);
    let resp = app
        .client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "read, and simply wrong"
    );
    // Chunked, without this browser's cookies: read in full, then refused for its token.
    assert_eq!(
        chunked_post_status(&app, "/login", body.as_bytes()).await,
        403
    );
}

#[tokio::test]
async fn a_malformed_csrf_cookie_is_replaced() {
    let app = spawn_app().await;
    for planted in ["abc", &"z".repeat(64), &"a".repeat(63)] {
        let resp = app
            .get_with_cookie("/", &format!("wicket_csrf={planted}"))
            .await;
        let fresh = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|v| v.starts_with("wicket_csrf="))
            .unwrap_or_else(|| panic!("{planted:?} was kept"));
        let value = fresh["wicket_csrf=".len()..].split(';').next().unwrap();
        assert_ne!(value, planted, "{fresh}");
        assert_eq!(value.len(), 64, "{fresh}");
    }
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_reading_the_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let host = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    // Declares 1 MB, sends 9 bytes and stops sending. Refused from the header: 413.
    // Read instead, the body ends early, which is a 400.
    let head = format!(
        "POST /login HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 1000000\r\nConnection: close\r\n\r\nusername="
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
}

/// Sends `body` in 4 KiB chunks with no Content-Length; returns the status code.
async fn chunked_post_status(app: &TestApp, path: &str, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(4096) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        if stream.write_all(&framed).await.is_err() {
            break; // the server may answer and close before reading it all
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line")
}

#[tokio::test]
async fn bad_encodings_and_content_types_are_refused() {
    let app = spawn_app().await;
    let token = app.csrf_token().await;
    let cases: [(&str, String, StatusCode); 4] = [
        (
            "application/x-www-form-urlencoded",
            format!("username=%zz&password=x&csrf={token}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "application/x-www-form-urlencoded",
            format!("username=%C3%28&password=x&csrf={token}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "application/json",
            format!(r#"{{"username":"a","csrf":"{token}"}}"#),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "multipart/form-data; boundary=x",
            "--x--".into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ];
    for (content_type, body, status) in cases {
        let resp = app
            .client
            .post(app.url("/login"))
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{content_type} {body}");
        assert!(
            resp.text().await.unwrap().contains("<html"),
            "a page, not a stack trace"
        );
    }
}

#[tokio::test]
async fn typed_names_are_escaped_when_shown_back() {
    let app = spawn_app().await;
    let resp = app.login("<script>alert(1)</script>", "whatever!").await;
    let body = resp.text().await.unwrap();
    assert!(!body.contains("<script>alert(1)"));
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[tokio::test]
async fn next_never_leads_off_site_in_any_encoding() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    for next in [
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
        "javascript:alert(1)",
        "/%2f%2fevil.example",
        "%2F%2Fevil.example",
        "/%5Cevil.example",
        "/\tevil",
        "/%0d%0aX:y",
        "\u{0}/x",
        "/x\u{7f}",
    ] {
        app.logout().await;
        let form = [
            ("username", "alice"),
            ("password", PASSWORD),
            ("next", next),
        ];
        assert_see_other(&app.post_form("/login", &form).await, "/cabinet");
        // Already logged in: `/` sends the member on, and never to a raw `next`.
        let page = app
            .client
            .get(app.url("/"))
            .query(&[("next", next)])
            .send()
            .await
            .unwrap();
        assert_see_other(&page, "/cabinet");
        let page = app
            .client
            .get(app.url("/"))
            .query(&[("next", next)])
            .header("HX-Request", "true")
            .send()
            .await
            .unwrap();
        assert_hx_redirect(&page, "/cabinet");
        // Logged out: the form never carries it either.
        app.logout().await;
        let page = app
            .client
            .get(app.url("/"))
            .query(&[("next", next)])
            .send()
            .await
            .unwrap();
        assert!(
            !page.text().await.unwrap().contains("evil.example"),
            "{next:?}"
        );
        app.login("alice", PASSWORD).await;
    }
}

#[tokio::test]
async fn a_safe_next_is_followed_by_a_member_visiting_the_login_page() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    let page = app
        .client
        .get(app.url("/"))
        .query(&[("next", "/cabinet?tab=1")])
        .send()
        .await
        .unwrap();
    assert_see_other(&page, "/cabinet?tab=1");
}

#[tokio::test]
async fn internal_errors_show_a_generic_page() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    app.logout().await;
    std::fs::write(app.user_files().pop().unwrap(), "{ not json").unwrap();
    let resp = app.login("alice", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = resp.text().await.unwrap();
    assert!(body.contains("Something went wrong"));
    assert!(!body.contains("json") && !body.contains("users/"), "{body}");
}

// --- Sessions over their lifetime --------------------------------------------------

#[tokio::test]
async fn the_background_sweep_deletes_idle_session_files() {
    let app = spawn_app_with(|c| c.sweep_interval = std::time::Duration::from_secs(1)).await;
    app.register("alice", PASSWORD).await;
    let client_b = client();
    let form = [
        ("username", "bob"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    app.post_form_by(&client_b, "/register/", &form).await;
    let files = app.session_files();
    assert_eq!(files.len(), 2);
    // Make alice's session idle past the timeout, as if 31 minutes had passed.
    let alice = files
        .iter()
        .find(|f| std::fs::read_to_string(f).unwrap().contains("\"alice\""))
        .unwrap()
        .clone();
    let file = std::fs::File::options().write(true).open(&alice).unwrap();
    file.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(31 * 60))
        .unwrap();
    // Wait for the sweeper (it runs every second) by watching the directory.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while alice.exists() {
        assert!(std::time::Instant::now() < deadline, "the sweep never ran");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(app.session_files().len(), 1, "bob's live session stays");
}

#[tokio::test]
async fn every_post_route_refuses_a_form_without_its_csrf_token() {
    // The route table's POST routes, asked by a logged-in member whose forms lack the
    // token: each is refused before its handler runs.
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    for path in [
        "/login",
        "/register/",
        "/logout",
        "/account/password",
        "/account/sessions/end",
        "/account/delete",
        "/account/email",
        "/forgot",
        "/reset",
        "/not-me",
        "/login/code",
        "/account/totp/setup",
        "/account/totp",
        "/account/totp/recovery",
        "/account/totp/off",
        "/login/passkey/options",
        "/login/passkey",
        "/account/passkeys/options",
        "/account/passkeys",
        "/account/passkeys/remove",
    ] {
        let resp = post_raw(&app, path, &[("current_password", PASSWORD)]).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(app.get("/cabinet").await.status(), StatusCode::OK);
    assert_eq!(app.user_files().len(), 1, "nothing deleted");
}
