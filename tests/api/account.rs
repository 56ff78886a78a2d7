//! `/account`: the password, the sessions list, deleting the account — with two and
//! three browsers at once, on both stores.

use reqwest::{Client, StatusCode};
use wicket::store::StoreKind;

use crate::helpers::redis::RedisServer;
use crate::helpers::*;

const NEW_PASSWORD: &str = "a brand new secret phrase";
const CHANGED: &str = "You were logged out because your password was changed.";
const ELSEWHERE: &str = "You were logged out because the session was ended from another device.";
const DELETED: &str = "You were logged out because the account was deleted.";

/// Another browser logged in as `name`.
async fn browser(app: &TestApp, name: &str) -> Client {
    let other = client();
    let form = [("username", name), ("password", PASSWORD)];
    assert_see_other(&app.post_form_by(&other, "/login", &form).await, "/cabinet");
    other
}

/// What `browser` sees when it next asks for the cabinet and follows to the login form.
async fn told(app: &TestApp, browser: &Client) -> String {
    let resp = app.get_by(browser, "/cabinet").await;
    assert_see_other(&resp, "/?next=/cabinet");
    let page = app.get_by(browser, "/?next=/cabinet").await;
    page.text().await.unwrap()
}

async fn account_page(app: &TestApp, browser: &Client) -> String {
    account_page_at(app, browser, "/account").await
}

async fn account_page_at(app: &TestApp, browser: &Client, path: &str) -> String {
    let resp = app.get_by(browser, path).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.unwrap()
}

/// The handles of the sessions listed as endable (every one but this browser's).
fn handles(page: &str) -> Vec<String> {
    let marker = r#"name="session" value=""#;
    page.match_indices(marker)
        .map(|(at, _)| {
            page[at + marker.len()..]
                .split('"')
                .next()
                .unwrap()
                .to_owned()
        })
        .filter(|v| v != "others")
        .collect()
}

fn change_password_form(current: &str) -> [(&str, &str); 3] {
    [
        ("current_password", current),
        ("password", NEW_PASSWORD),
        ("confirm", NEW_PASSWORD),
    ]
}

#[tokio::test]
async fn the_account_page_is_for_members_only() {
    let app = spawn_app().await;
    assert_see_other(&app.get("/account").await, "/?next=/account");
    assert_hx_redirect(&app.get_hx("/account").await, "/?next=/account");
    // A form posted without a session goes to the login form, then back to the page.
    let resp = app
        .post_form("/account/delete", &[("current_password", PASSWORD)])
        .await;
    assert_see_other(&resp, "/?next=/account");
}

#[tokio::test]
async fn the_account_page_shows_the_member_and_the_last_login() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    app.logout().await;
    app.login("alice", "wrong guess!").await;
    let resp = app
        .client
        .post(app.url("/login"))
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        )
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf", &app.csrf_token().await),
        ])
        .send()
        .await
        .unwrap();
    assert_see_other(&resp, "/cabinet");
    let cabinet = app.get("/cabinet").await.text().await.unwrap();
    assert!(
        cabinet.contains(r#"href="/account""#),
        "the cabinet links to it"
    );
    app.login("alice", "wrong again!").await; // a browser logged in can still try
    let page = account_page(&app, &app.client).await;
    for expected in [
        "Your account",
        "alice",
        "Member since",
        "Firefox on Linux",
        "127.0.0.1",
    ] {
        assert!(page.contains(expected), "{expected}: {page}");
    }
    assert!(
        page.contains("<dt>Failed logins since</dt><dd>1</dd>"),
        "{page}"
    );
}

#[tokio::test]
async fn a_password_change_keeps_this_browser_and_ends_every_other() {
    let app = spawn_app().await;
    let before = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    let (b, c) = (browser(&app, "alice").await, browser(&app, "alice").await);
    let resp = app
        .post_form("/account/password", &change_password_form(PASSWORD))
        .await;
    assert_see_other(&resp, "/account?done=password");
    let after = session_cookie(&resp).expect("a new session id");
    assert_ne!(before, after);
    assert_see_other(
        &app.get_with_cookie("/cabinet", &before).await,
        "/?next=/cabinet",
    );
    let page = account_page_at(&app, &app.client, "/account?done=password").await;
    assert!(page.contains("Your password was changed"), "{page}");
    assert!(handles(&page).is_empty(), "only this browser is left");
    for other in [&b, &c] {
        assert!(told(&app, other).await.contains(CHANGED));
    }
    app.logout().await;
    assert_eq!(
        app.login("alice", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_see_other(&app.login("alice", NEW_PASSWORD).await, "/cabinet");
}

#[tokio::test]
async fn a_wrong_current_password_or_a_bad_new_one_changes_nothing() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    let b = browser(&app, "alice").await;
    let cases = [
        (
            change_password_form("not my password"),
            "That is not your current password.",
        ),
        (
            [
                ("current_password", PASSWORD),
                ("password", "short"),
                ("confirm", "short"),
            ],
            "Use at least 8 characters.",
        ),
        (
            [
                ("current_password", PASSWORD),
                ("password", NEW_PASSWORD),
                ("confirm", "something else"),
            ],
            "The passwords do not match.",
        ),
        (
            [
                ("current_password", PASSWORD),
                ("password", "password123"),
                ("confirm", "password123"),
            ],
            "most commonly used",
        ),
        (
            [
                ("current_password", PASSWORD),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
            "other than the current one",
        ),
    ];
    for (form, message) in cases {
        let resp = app.post_form("/account/password", &form).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{message}");
        assert!(session_cookie(&resp).is_none());
        let body = resp.text().await.unwrap();
        assert!(body.contains(message), "{message}: {body}");
    }
    assert_eq!(app.get_by(&b, "/cabinet").await.status(), StatusCode::OK);
    app.logout().await;
    assert_see_other(&app.login("alice", PASSWORD).await, "/cabinet");
}

#[tokio::test]
async fn the_current_password_is_throttled_like_a_login() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    for _ in 0..5 {
        let resp = app
            .post_form("/account/password", &change_password_form("guess guess"))
            .await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let runs = app.state.hasher.work();
    let resp = app
        .post_form("/account/password", &change_password_form(PASSWORD))
        .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    assert!(resp.text().await.unwrap().contains("Too many attempts"));
    assert_eq!(
        app.state.hasher.work(),
        runs,
        "no scrypt work while throttled"
    );
}

#[tokio::test]
async fn with_htmx_a_password_change_swaps_its_section_and_the_sessions_list() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    let resp = app
        .post_form_hx(
            "/account/password",
            &change_password_form("not my password"),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = resp.text().await.unwrap();
    assert!(
        body.starts_with(r#"<section class="card" id="change-password">"#),
        "{body}"
    );
    let resp = app
        .post_form_hx("/account/password", &change_password_form(PASSWORD))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(session_cookie(&resp).is_some());
    let body = resp.text().await.unwrap();
    assert!(
        body.contains("Your password was changed")
            && body.contains(r#"hx-swap-oob="outerHTML:#sessions""#),
        "{body}"
    );
    // The forms in the answer carry the new CSRF token: the next post works.
    let resp = app
        .post_form_hx("/account/sessions/end", &[("session", "others")])
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn ending_one_session_from_the_list_tells_that_browser_only() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    let b = browser(&app, "alice").await;
    let c = browser(&app, "alice").await;
    let page = account_page(&app, &app.client).await;
    assert!(page.contains("This browser"));
    let listed = handles(&page);
    assert_eq!(listed.len(), 2, "{page}");
    // A handle is not a session id and opens nothing as a cookie.
    for handle in &listed {
        assert!(
            app.session_files()
                .iter()
                .all(|f| !f.to_string_lossy().contains(handle.as_str()))
        );
        let forged = format!("wicket_session={handle}");
        assert_see_other(
            &app.get_with_cookie("/cabinet", &forged).await,
            "/?next=/cabinet",
        );
    }
    // B's page lists its own session as "This browser": A ends the other one.
    let b_page = account_page(&app, &b).await;
    let b_handles = handles(&b_page);
    let c_handle = listed
        .iter()
        .find(|h| b_handles.contains(h))
        .unwrap()
        .clone();
    let b_handle = listed.iter().find(|h| **h != c_handle).unwrap().clone();
    let resp = app
        .post_form("/account/sessions/end", &[("session", &b_handle)])
        .await;
    assert_see_other(&resp, "/account?done=ended");
    assert!(told(&app, &b).await.contains(ELSEWHERE));
    assert_eq!(app.get_by(&c, "/cabinet").await.status(), StatusCode::OK);
    // Ending it again says it had already ended.
    let resp = app
        .post_form_hx("/account/sessions/end", &[("session", &b_handle)])
        .await;
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("That session had already ended.")
    );
    // With htmx, "others" refreshes the list in place.
    let resp = app
        .post_form_hx("/account/sessions/end", &[("session", "others")])
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.text().await.unwrap();
    assert!(
        body.starts_with(r#"<section class="card" id="sessions""#),
        "{body}"
    );
    assert!(body.contains("Every other session was ended.") && handles(&body).is_empty());
    assert!(told(&app, &c).await.contains(ELSEWHERE));
}

#[tokio::test]
async fn deleting_the_account_needs_the_password_and_tells_every_browser() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    let b = browser(&app, "alice").await;
    let resp = app
        .post_form(
            "/account/delete",
            &[("current_password", "not my password")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("That is not your current password.")
    );
    assert_eq!(app.user_files().len(), 1);

    let resp = app
        .post_form("/account/delete", &[("current_password", PASSWORD)])
        .await;
    assert_see_other(&resp, "/");
    assert!(app.user_files().is_empty());
    let page = app.get("/").await.text().await.unwrap();
    assert!(page.contains(DELETED), "{page}");
    assert!(told(&app, &b).await.contains(DELETED));
    // The name is free again.
    assert_see_other(&app.register("alice", PASSWORD).await, "/cabinet");
}

#[tokio::test]
async fn a_user_removed_behind_the_servers_back_opens_nothing() {
    let app = spawn_app().await;
    let cookie = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    std::fs::remove_file(app.user_files().pop().unwrap()).unwrap();
    assert_see_other(
        &app.get_with_cookie("/cabinet", &cookie).await,
        "/?next=/cabinet",
    );
    assert!(app.session_files().is_empty());
}

#[tokio::test]
async fn on_redis_the_account_page_works_the_same() {
    let redis = RedisServer::start();
    let url = redis.url();
    let app = spawn_app_with(move |c| c.store = StoreKind::Redis(url)).await;
    app.register("alice", PASSWORD).await;
    let (b, c) = (browser(&app, "alice").await, browser(&app, "alice").await);
    let page = account_page(&app, &app.client).await;
    assert_eq!(handles(&page).len(), 2, "{page}");
    let resp = app
        .post_form("/account/sessions/end", &[("session", "others")])
        .await;
    assert_see_other(&resp, "/account?done=others");
    for other in [&b, &c] {
        assert!(told(&app, other).await.contains(ELSEWHERE));
    }
    let b = browser(&app, "alice").await;
    let resp = app
        .post_form("/account/password", &change_password_form(PASSWORD))
        .await;
    assert_see_other(&resp, "/account?done=password");
    assert!(told(&app, &b).await.contains(CHANGED));
    let b = {
        let other = client();
        let form = [("username", "alice"), ("password", NEW_PASSWORD)];
        assert_see_other(&app.post_form_by(&other, "/login", &form).await, "/cabinet");
        other
    };
    let resp = app
        .post_form("/account/delete", &[("current_password", NEW_PASSWORD)])
        .await;
    assert_see_other(&resp, "/");
    assert!(told(&app, &b).await.contains(DELETED));
    assert_see_other(&app.register("alice", PASSWORD).await, "/cabinet");
}

#[tokio::test]
async fn a_password_change_reads_each_store_once() {
    use crate::helpers::counting::Reads;
    let reads = std::sync::Arc::new(Reads::default());
    let counted = reads.clone();
    let app = spawn_app_wrapping(|_| {}, move |stores| counted.around(stores)).await;
    app.register("pat", PASSWORD).await;
    let other = client();
    app.login_by(&other, "pat").await;
    let token = app.csrf_token().await;
    reads.take();
    let new = "another horse battery 9";
    let resp = app
        .client
        .post(app.url("/account/password"))
        .header("HX-Request", "true")
        .form(&[
            ("current_password", PASSWORD),
            ("password", new),
            ("confirm", new),
            ("csrf", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Your password was changed")
    );
    // The account with the session; the session itself; the list where it is ended.
    assert_eq!(reads.take(), (1, 1, 1), "(users, sessions, lists) read");
    assert_see_other(&app.get_by(&other, "/cabinet").await, "/?next=/cabinet");
}
