//! Sessions: signed cookies, idle and absolute limits, the sweep, races with logout.

use std::os::unix::fs::PermissionsExt;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// Registers alice and returns her `wicket_session=...` cookie and session file.
async fn logged_in(app: &TestApp) -> (String, std::path::PathBuf) {
    let cookie = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    let file = app.session_files().pop().unwrap();
    (cookie, file)
}

fn edit_session(file: &std::path::Path, field: &str, value: &str) {
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    json[field] = Value::String(value.into());
    std::fs::write(file, serde_json::to_string(&json).unwrap()).unwrap();
}

#[tokio::test]
async fn a_session_file_is_readable_json_named_by_the_cookie_id() {
    let app = spawn_app().await;
    let (cookie, file) = logged_in(&app).await;
    let id = cookie
        .trim_start_matches("wicket_session=")
        .split('.')
        .next()
        .unwrap();
    assert_eq!(id.len(), 64, "256-bit id in hex");
    assert_eq!(
        file.file_name().unwrap().to_str().unwrap(),
        format!("{id}.json")
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(json["user"], "alice");
    for field in ["created", "last_seen", "expires"] {
        assert!(
            json[field].as_str().unwrap().ends_with('Z'),
            "{field}: {json}"
        );
    }
}

#[tokio::test]
async fn a_tampered_cookie_is_no_session_and_is_cleared() {
    let app = spawn_app().await;
    let (cookie, _) = logged_in(&app).await;
    let (id, mac) = cookie.split_once('.').unwrap();
    let flipped_mac = format!(
        "{id}.{}{}",
        if mac.starts_with('0') { '1' } else { '0' },
        &mac[1..]
    );
    let other_id = format!("wicket_session={}.{mac}", "0".repeat(64));
    let no_mac = id.to_owned();
    for forged in [flipped_mac, other_id, no_mac] {
        let resp = app.get_with_cookie("/cabinet", &forged).await;
        assert_see_other(&resp, "/?next=/cabinet");
        let cleared = session_set_cookie(&resp).expect("the bad cookie is cleared");
        assert!(cleared.contains("Max-Age=0"));
    }
    assert_eq!(app.session_files().len(), 1, "forgeries create nothing");
}

#[tokio::test]
async fn hostile_cookie_values_are_anonymous_never_an_error() {
    let app = spawn_app().await;
    let long = "a".repeat(10_000);
    let values = [
        "../../data/users/alice".to_owned(),
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd".to_owned(),
        "..\\..\\x".to_owned(),
        format!("{}.{}", "../".repeat(21) + "a", "0".repeat(64)),
        long,
        "\"quoted\"".to_owned(),
    ];
    for value in values {
        let resp = app
            .get_with_cookie("/cabinet", &format!("wicket_session={value}"))
            .await;
        assert_see_other(&resp, "/?next=/cabinet");
        let resp = app
            .get_with_cookie("/", &format!("wicket_session={value}"))
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    assert!(app.session_files().is_empty());
}

#[tokio::test]
async fn a_well_signed_id_without_a_file_is_no_session() {
    let app = spawn_app().await;
    let (cookie, file) = logged_in(&app).await;
    std::fs::remove_file(file).unwrap();
    assert_see_other(
        &app.get_with_cookie("/cabinet", &cookie).await,
        "/?next=/cabinet",
    );
    assert!(app.session_files().is_empty());
}

#[tokio::test]
async fn a_session_idle_past_the_timeout_is_over_and_its_file_deleted() {
    let app = spawn_app().await;
    let (cookie, file) = logged_in(&app).await;
    // Idle timeout is 30 minutes in tests: pretend the last request was 31 minutes ago.
    let then = time::OffsetDateTime::now_utc() - time::Duration::minutes(31);
    edit_session(
        &file,
        "last_seen",
        &then
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap(),
    );
    assert_see_other(
        &app.get_with_cookie("/cabinet", &cookie).await,
        "/?next=/cabinet",
    );
    assert!(!file.exists());
}

#[tokio::test]
async fn a_session_past_its_lifetime_is_over_however_active() {
    let app = spawn_app().await;
    let (cookie, file) = logged_in(&app).await;
    edit_session(&file, "expires", "2020-01-01T00:00:00Z");
    assert_see_other(
        &app.get_with_cookie("/cabinet", &cookie).await,
        "/?next=/cabinet",
    );
    assert!(!file.exists());
}

#[tokio::test]
async fn activity_slides_the_idle_window() {
    let app = spawn_app().await;
    let (cookie, file) = logged_in(&app).await;
    let then = time::OffsetDateTime::now_utc() - time::Duration::minutes(20);
    let then = then
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    edit_session(&file, "last_seen", &then);
    assert_eq!(
        app.get_with_cookie("/cabinet", &cookie).await.status(),
        StatusCode::OK
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_ne!(json["last_seen"], then.as_str(), "last_seen moved forward");
}

#[tokio::test]
async fn a_corrupt_session_file_is_anonymous_not_a_500() {
    let app = spawn_app().await;
    let (cookie, file) = logged_in(&app).await;
    for junk in ["", "{\"user\": \"alice\"", "not json", "{}"] {
        std::fs::write(&file, junk).unwrap();
        let resp = app.get_with_cookie("/cabinet", &cookie).await;
        assert_see_other(&resp, "/?next=/cabinet");
    }
}

#[tokio::test]
async fn users_and_sessions_survive_a_restart() {
    let app = spawn_app().await;
    let (cookie, _) = logged_in(&app).await;
    app.logout().await;
    let cookie_after_login = session_cookie(&app.login("alice", PASSWORD).await).unwrap();
    assert_ne!(cookie, cookie_after_login);
    let app = app.restart().await;
    let resp = app.get_with_cookie("/cabinet", &cookie_after_login).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("Welcome, alice!"));
    let fresh = client();
    let token = csrf_token_of(&fresh, &app).await;
    let resp = fresh
        .post(app.url("/login"))
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_see_other(&resp, "/cabinet");
}

#[tokio::test]
async fn the_secret_key_and_the_stores_are_private_to_the_owner() {
    let app = spawn_app().await;
    logged_in(&app).await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&app.config.data_dir.join("secret.key")), 0o600);
    assert_eq!(mode(&app.config.sessions_dir), 0o700);
    assert_eq!(mode(&app.config.data_dir.join("users")), 0o700);
    assert_eq!(mode(&app.session_files()[0]), 0o600);
    assert_eq!(mode(&app.user_files()[0]), 0o600);
}

#[tokio::test]
async fn anonymous_page_views_create_no_session_files() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/register/",
        "/cabinet",
        "/logout",
        "/static/style.css",
    ] {
        app.get(path).await;
    }
    app.login("nobody", "wrong password").await;
    assert!(app.session_files().is_empty());
}

#[tokio::test]
async fn reading_a_fresh_session_does_not_rewrite_its_file() {
    let app = spawn_app().await;
    let (cookie, file) = logged_in(&app).await;
    let before = std::fs::read_to_string(&file).unwrap();
    let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
    for _ in 0..5 {
        assert_eq!(
            app.get_with_cookie("/cabinet", &cookie).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        modified
    );
}
