//! Logging out: the session goes, the cookie is cleared, the browser is told.

use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn logging_out_deletes_the_session_file_and_expires_the_cookie() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    assert_eq!(app.session_files().len(), 1);
    let resp = app.logout().await;
    assert_see_other(&resp, "/");
    let set_cookie = session_set_cookie(&resp).unwrap();
    assert!(set_cookie.contains("Max-Age=0"), "{set_cookie}");
    assert_eq!(
        resp.headers()["clear-site-data"],
        r#""cache", "storage""#,
        "what the browser kept goes, but not the site's other cookies"
    );
    assert!(app.session_files().is_empty());
    assert_see_other(&app.get("/cabinet").await, "/?next=/cabinet");
}

#[tokio::test]
async fn an_old_cookie_is_worthless_after_logout() {
    let app = spawn_app().await;
    let cookie = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    app.logout().await;
    assert_see_other(
        &app.get_with_cookie("/cabinet", &cookie).await,
        "/?next=/cabinet",
    );
}

#[tokio::test]
async fn get_logout_asks_first_and_does_not_log_out_by_itself() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    let resp = app.get("/logout").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.text().await.unwrap();
    assert!(body.contains("Log out?") && body.contains(r#"action="/logout""#));
    assert_eq!(app.session_files().len(), 1);
    assert_eq!(app.get("/cabinet").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn get_logout_without_a_session_goes_home() {
    let app = spawn_app().await;
    assert_see_other(&app.get("/logout").await, "/");
}

#[tokio::test]
async fn with_htmx_logout_is_an_hx_redirect_home() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    let resp = app.post_form_hx("/logout", &[]).await;
    assert_hx_redirect(&resp, "/");
    assert!(app.session_files().is_empty());
}
