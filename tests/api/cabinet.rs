//! The members-only page: who may see it, what it shows, and how it is cached.

use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn you_must_be_logged_in_to_see_the_cabinet() {
    let app = spawn_app().await;
    assert_see_other(&app.get("/cabinet").await, "/?next=/cabinet");
    assert!(
        app.session_files().is_empty(),
        "anonymous views create no session"
    );
}

#[tokio::test]
async fn with_htmx_anonymous_visitors_get_an_hx_redirect() {
    let app = spawn_app().await;
    assert_hx_redirect(&app.get_hx("/cabinet").await, "/?next=/cabinet");
}

#[tokio::test]
async fn the_cabinet_greets_the_member_and_shows_the_session_times() {
    let app = spawn_app().await;
    app.register("Alice_99", PASSWORD).await;
    let resp = app.get("/cabinet").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body = resp.text().await.unwrap();
    assert!(body.contains("Welcome, Alice_99!"));
    assert!(
        body.contains(r#"src="/static/cabinet."#),
        "the fingerprinted image"
    );
    assert!(body.contains("Logged in") && body.contains("Session ends"));
    assert_eq!(body.matches("<time datetime=").count(), 4);
    assert!(body.contains(r#"action="/logout""#));
    assert!(body.contains(r#"hx-history="false""#));
}

#[tokio::test]
async fn with_htmx_the_cabinet_is_a_fragment() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    let body = app.get_hx("/cabinet").await.text().await.unwrap();
    assert!(body.starts_with("<section"));
    assert!(!body.contains("<html"));
    // A boosted request or a history restore wants the whole page.
    let full = app
        .client
        .get(app.url("/cabinet"))
        .header("HX-Request", "true")
        .header("HX-History-Restore-Request", "true")
        .send()
        .await
        .unwrap();
    assert!(full.text().await.unwrap().contains("<html"));
}
