//! The Redis store: a real `redis-server` (Debian's package) per test, on a free
//! loopback port, stopped when the test ends.

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use wicket::store::StoreKind;

use crate::helpers::redis::RedisServer;
use crate::helpers::*;

/// An app on `redis` with its own key prefix and, if given, a shared secret key file.
async fn redis_app(redis: &RedisServer, prefix: &str, secret: Option<&std::path::Path>) -> TestApp {
    let (url, prefix) = (redis.url(), prefix.to_owned());
    let secret = secret.map(|p| p.to_path_buf());
    spawn_app_with(move |c| {
        c.store = StoreKind::Redis(url);
        c.store_prefix = prefix;
        if let Some(secret) = secret {
            c.secret_key_file = Some(secret);
        }
    })
    .await
}

#[tokio::test]
async fn the_whole_flow_works_on_redis_and_writes_no_files() {
    let redis = RedisServer::start();
    let app = redis_app(&redis, "flow", None).await;
    assert_see_other(&app.register("alice", PASSWORD).await, "/cabinet");
    let cabinet = app.get("/cabinet").await;
    assert_eq!(cabinet.status(), StatusCode::OK);
    assert!(cabinet.text().await.unwrap().contains("Welcome, alice!"));
    assert!(app.session_files().is_empty() && app.user_files().is_empty());
    assert_see_other(&app.logout().await, "/");
    assert_see_other(&app.get("/cabinet").await, "/?next=/cabinet");
    assert_eq!(
        app.login("ALICE", "wrong password!").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_see_other(&app.login("ALICE", PASSWORD).await, "/cabinet");
    let form = [
        ("username", "Alice"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    let taken = app.post_form_by(&client(), "/register/", &form).await;
    assert_eq!(taken.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn two_instances_share_users_and_sessions_through_redis() {
    let redis = RedisServer::start();
    let shared = tempfile::tempdir().unwrap();
    let secret = shared.path().join("secret.key");
    let a = redis_app(&redis, "pair", Some(&secret)).await;
    let b = redis_app(&redis, "pair", Some(&secret)).await;
    assert_ne!(a.base, b.base);

    assert_see_other(&a.register("alice", PASSWORD).await, "/cabinet");
    a.logout().await;
    let cookie = session_cookie(&a.login("alice", PASSWORD).await).unwrap();

    // The cabinet opens on B with A's cookie.
    let on_b = b.get_with_cookie("/cabinet", &cookie).await;
    assert_eq!(on_b.status(), StatusCode::OK);
    assert!(on_b.text().await.unwrap().contains("Welcome, alice!"));

    // Logging out on B (a browser carrying A's cookies) ends the session on A.
    let browser = client();
    let page = browser
        .get(b.url("/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let csrf_cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let token = hidden_csrf(&page.text().await.unwrap());
    let resp = browser
        .post(b.url("/logout"))
        .header("cookie", format!("{cookie}; {csrf_cookie}"))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_see_other(&resp, "/");
    assert_see_other(
        &a.get_with_cookie("/cabinet", &cookie).await,
        "/?next=/cabinet",
    );
}

#[tokio::test]
async fn when_redis_is_down_members_get_a_503_and_service_resumes_by_itself() {
    let mut redis = RedisServer::start();
    let port = redis.port;
    let app = redis_app(&redis, "down", None).await;
    let cookie = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    assert_eq!(
        app.get_with_cookie("/cabinet", &cookie).await.status(),
        StatusCode::OK
    );

    redis.stop();
    let resp = app.get_with_cookie("/cabinet", &cookie).await;
    assert_eq!(
        resp.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "not silently logged out"
    );
    assert!(resp.headers().contains_key("retry-after"));
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Temporarily unavailable")
    );
    // A forged cookie is checked before the store is asked: it is simply anonymous.
    let (id, mac) = cookie.split_once('.').unwrap();
    let forged = format!("{id}.{}", mac.chars().rev().collect::<String>());
    assert_see_other(
        &app.get_with_cookie("/cabinet", &forged).await,
        "/?next=/cabinet",
    );
    // A visitor without a session still gets the login form (it needs no store), but
    // logging in does need it.
    let visitor = client();
    let page = app.get_by(&visitor, "/").await;
    assert_eq!(page.status(), StatusCode::OK);
    let form = [("username", "alice"), ("password", PASSWORD)];
    let login = app.post_form_by(&visitor, "/login", &form).await;
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Redis comes back (empty: it kept nothing). Wicket reconnects on its own.
    let _redis = RedisServer::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut resp = app.register("bob", PASSWORD).await;
    while resp.status() == StatusCode::SERVICE_UNAVAILABLE && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        resp = app.register("bob", PASSWORD).await;
    }
    assert_see_other(&resp, "/cabinet");
    assert_eq!(app.get("/cabinet").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn migrate_copies_users_and_live_sessions_from_files_to_redis() {
    let redis = RedisServer::start();
    let files = spawn_app().await;
    let alice = session_cookie(&files.register("alice", PASSWORD).await).unwrap();
    let other = client();
    let form = [
        ("username", "bob"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    let bob = session_cookie(&files.post_form_by(&other, "/register/", &form).await).unwrap();
    // Bob's session is over (idle for an hour): it is not worth copying.
    let bob_id = bob
        .trim_start_matches("wicket_session=")
        .split('.')
        .next()
        .unwrap();
    let bob_file = files.config.sessions_dir.join(format!("{bob_id}.json"));
    let text = std::fs::read_to_string(&bob_file).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let stale = json["last_seen"].as_str().unwrap();
    std::fs::write(&bob_file, text.replace(stale, "2020-01-01T00:00:00Z")).unwrap();

    let migrate = |prefix: &str| {
        Command::new(env!("CARGO_BIN_EXE_wicket"))
            .args([
                "migrate",
                "--from",
                "files",
                "--to",
                &redis.url(),
                "--store-prefix",
                prefix,
            ])
            .arg("--data-dir")
            .arg(&files.config.data_dir)
            .arg("--sessions-dir")
            .arg(&files.config.sessions_dir)
            .output()
            .unwrap()
    };
    let out = migrate("moved");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("users: 2 copied")
            && said.contains("sessions: 1 copied")
            && said.contains("1 ended"),
        "{said}"
    );
    // Running it again copies nothing twice and loses nothing.
    let again = migrate("moved");
    assert!(String::from_utf8_lossy(&again.stdout).contains("users: 0 copied, 2 already there"));

    let secret = files.config.data_dir.join("secret.key");
    let moved = redis_app(&redis, "moved", Some(&secret)).await;
    let resp = moved.get_with_cookie("/cabinet", &alice).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "alice's session moved with her"
    );
    assert_see_other(
        &moved.get_with_cookie("/cabinet", &bob).await,
        "/?next=/cabinet",
    );
    assert_see_other(&moved.login("bob", PASSWORD).await, "/cabinet");
}
