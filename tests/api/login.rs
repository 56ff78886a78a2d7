//! Logging in: the form, wrong and right passwords, `next`, htmx and plain posts.

use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn the_login_form_has_labelled_fields_with_autocomplete_and_a_register_link() {
    let app = spawn_app().await;
    let resp = app.get("/").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.text().await.unwrap();
    assert!(
        body.contains(r#"<label for="username">"#) && body.contains(r#"<label for="password">"#)
    );
    assert!(body.contains(r#"autocomplete="username""#));
    assert!(body.contains(r#"autocomplete="current-password""#));
    assert!(body.contains(r#"href="/register/""#));
    assert!(body.contains(r#"<script src="/static/htmx.min."#));
}

#[tokio::test]
async fn the_right_password_starts_a_session_and_lands_on_the_cabinet() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    app.logout().await;
    assert!(app.session_files().is_empty());
    let resp = app.login("Alice", PASSWORD).await;
    assert_see_other(&resp, "/cabinet");
    assert_eq!(app.session_files().len(), 1);
    assert_eq!(app.get("/cabinet").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_look_exactly_alike() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    app.logout().await;
    let wrong = app.login("alice", "not the password").await;
    let unknown = app.login("nobody", "not the password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), wrong.status());
    assert!(session_cookie(&wrong).is_none() && session_cookie(&unknown).is_none());
    let wrong = wrong.text().await.unwrap().replace("alice", "NAME");
    let unknown = unknown.text().await.unwrap().replace("nobody", "NAME");
    assert!(wrong.contains("Invalid username or password"));
    assert_eq!(wrong, unknown);
    assert!(app.session_files().is_empty());
}

#[tokio::test]
async fn a_failed_login_keeps_the_username_but_never_the_password() {
    let app = spawn_app().await;
    let body = app
        .login("someone", "secret-typed")
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains(r#"value="someone""#));
    assert!(!body.contains("secret-typed"));
}

#[tokio::test]
async fn login_returns_to_a_safe_local_next_path() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    app.logout().await;
    let resp = app
        .post_form(
            "/login",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("next", "/cabinet?tab=1"),
            ],
        )
        .await;
    assert_see_other(&resp, "/cabinet?tab=1");
}

#[tokio::test]
async fn the_login_form_carries_next_from_the_query() {
    let app = spawn_app().await;
    let body = app.get("/?next=/cabinet").await.text().await.unwrap();
    assert!(body.contains(r#"<input type="hidden" name="next" value="/cabinet">"#));
    let body = app.get("/?next=//evil.example").await.text().await.unwrap();
    assert!(!body.contains("evil.example"));
}

#[tokio::test]
async fn with_htmx_a_failed_login_returns_the_form_fragment() {
    let app = spawn_app().await;
    let resp = app
        .post_form_hx("/login", &[("username", "x"), ("password", "y")])
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body = resp.text().await.unwrap();
    assert!(
        body.starts_with(r#"<section class="card" id="login">"#),
        "{body}"
    );
    assert!(body.contains("Invalid username or password"));
}

#[tokio::test]
async fn with_htmx_a_successful_login_is_an_hx_redirect() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    app.logout().await;
    let resp = app
        .post_form_hx("/login", &[("username", "alice"), ("password", PASSWORD)])
        .await;
    assert_hx_redirect(&resp, "/cabinet");
}

#[tokio::test]
async fn logging_in_again_replaces_the_old_session() {
    let app = spawn_app().await;
    let first = app.register("alice", PASSWORD).await;
    let old_cookie = session_cookie(&first).unwrap();
    let old_files = app.session_files();
    let again = app.login("alice", PASSWORD).await;
    let new_cookie = session_cookie(&again).unwrap();
    assert_ne!(old_cookie, new_cookie);
    let new_files = app.session_files();
    assert_eq!(new_files.len(), 1);
    assert_ne!(old_files, new_files);
    assert_see_other(
        &app.get_with_cookie("/cabinet", &old_cookie).await,
        "/?next=/cabinet",
    );
}

#[tokio::test]
async fn someone_logged_in_visiting_the_login_form_goes_to_the_cabinet() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    assert_see_other(&app.get("/").await, "/cabinet");
    assert_see_other(&app.get("/register/").await, "/cabinet");
}

#[tokio::test]
async fn get_login_sends_people_to_the_form() {
    let app = spawn_app().await;
    assert_see_other(&app.get("/login").await, "/");
}

#[tokio::test]
async fn keep_me_logged_in_decides_whether_the_cookie_outlives_the_browser() {
    let app = spawn_app().await;
    let registered = app.register("alice", PASSWORD).await;
    let cookie = session_set_cookie(&registered).unwrap();
    assert!(
        !cookie.contains("Max-Age"),
        "a new account's session ends with the browser: {cookie}"
    );
    app.logout().await;

    let resp = app
        .post_form("/login", &[("username", "alice"), ("password", PASSWORD)])
        .await;
    let cookie = session_set_cookie(&resp).unwrap();
    assert!(
        !cookie.contains("Max-Age") && !cookie.contains("Expires"),
        "{cookie}"
    );
    app.logout().await;

    let form = [
        ("username", "alice"),
        ("password", PASSWORD),
        ("remember", "on"),
    ];
    let resp = app.post_form("/login", &form).await;
    assert_see_other(&resp, "/cabinet");
    let cookie = session_set_cookie(&resp).unwrap();
    assert!(
        cookie.contains("Max-Age=604800"),
        "a week, the session's lifetime: {cookie}"
    );
}

#[tokio::test]
async fn the_login_form_offers_keep_me_logged_in_and_keeps_the_tick_after_a_failure() {
    let app = spawn_app().await;
    let body = app.get("/").await.text().await.unwrap();
    assert!(
        body.contains(r#"name="remember" type="checkbox""#),
        "{body}"
    );
    assert!(!body.contains("checked"));
    let form = [
        ("username", "alice"),
        ("password", "wrong guess!"),
        ("remember", "on"),
    ];
    let body = app.post_form("/login", &form).await.text().await.unwrap();
    assert!(body.contains(r#"type="checkbox" checked"#), "{body}");
}
