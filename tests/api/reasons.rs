//! Why a session ended, told once to the browser that held it, and to nobody else.

use std::time::Duration;

use reqwest::StatusCode;
use wicket::store::{EndReason, Ending, SessionId, StoreKind};

use crate::helpers::redis::RedisServer;
use crate::helpers::*;

const LOGGED_OUT: &str = "You are logged out.";
const IDLE: &str = "You were logged out after 30 minutes without activity.";
const LIFETIME: &str = "You were logged out because sessions last at most 7 days.";
const ELSEWHERE: &str = "You were logged out because the session was ended from another device.";

/// The login page `app`'s browser sees now.
async fn login_page(app: &TestApp) -> String {
    let resp = app.get("/").await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.unwrap()
}

/// Follows a members-only page to the login form, as a browser would.
async fn bounced_from_cabinet(app: &TestApp) -> String {
    assert_see_other(&app.get("/cabinet").await, "/?next=/cabinet");
    let resp = app.get("/?next=/cabinet").await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.unwrap()
}

#[tokio::test]
async fn after_a_logout_the_login_form_says_so_once() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    assert_see_other(&app.logout().await, "/");
    assert!(login_page(&app).await.contains(LOGGED_OUT));
    assert!(!login_page(&app).await.contains(LOGGED_OUT), "told once");
}

#[tokio::test]
async fn a_session_idle_too_long_says_so_on_the_login_form() {
    let app = spawn_app().await;
    let cookie = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    let file = session_file(&app, &cookie);
    set_session_time(&file, "last_seen", time::Duration::minutes(31));
    assert!(bounced_from_cabinet(&app).await.contains(IDLE));
    assert!(!file.exists(), "the ended session is gone");
    assert!(!login_page(&app).await.contains(IDLE), "told once");
}

#[tokio::test]
async fn a_session_past_its_lifetime_says_so() {
    let app = spawn_app().await;
    let cookie = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    set_session_time(
        &session_file(&app, &cookie),
        "expires",
        time::Duration::minutes(1),
    );
    assert!(
        login_page(&app).await.contains(LIFETIME),
        "said on the very page"
    );
    assert!(!login_page(&app).await.contains(LIFETIME), "and only there");
}

#[tokio::test]
async fn the_reason_waits_for_the_login_form_while_the_browser_looks_elsewhere() {
    let app = spawn_app().await;
    let cookie = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    let file = session_file(&app, &cookie);
    set_session_time(&file, "last_seen", time::Duration::minutes(31));
    assert_see_other(&app.get("/cabinet").await, "/?next=/cabinet");
    let elsewhere = app.get("/register/").await.text().await.unwrap();
    assert!(!elsewhere.contains(IDLE));
    assert!(
        login_page(&app).await.contains(IDLE),
        "still waiting for the login form"
    );
}

#[tokio::test]
async fn a_session_the_sweep_ended_still_says_why() {
    let app = spawn_app_with(|c| c.sweep_interval = Duration::from_secs(1)).await;
    let cookie = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    let file = session_file(&app, &cookie);
    set_session_time(&file, "last_seen", time::Duration::minutes(31));
    age_file(&file, Duration::from_secs(31 * 60));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while file.exists() {
        assert!(std::time::Instant::now() < deadline, "the sweep never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(bounced_from_cabinet(&app).await.contains(IDLE));
}

/// Ends `cookie`'s session through the store, as another device would.
async fn end_elsewhere(app: &TestApp, cookie: &str) {
    let id = cookie
        .trim_start_matches("wicket_session=")
        .split('.')
        .next()
        .unwrap();
    let id = SessionId::parse(id).unwrap();
    let stores = wicket::app::open_stores(&app.config).unwrap();
    let mut record = stores.sessions.load(&id).await.unwrap().unwrap();
    record.ended = Some(Ending {
        reason: EndReason::EndedElsewhere,
        at: time::OffsetDateTime::now_utc(),
    });
    stores
        .sessions
        .touch(&id, &record, Duration::from_secs(3600))
        .await
        .unwrap();
}

#[tokio::test]
async fn only_the_browser_that_held_the_session_is_told() {
    let app = spawn_app().await;
    let cookie = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    end_elsewhere(&app, &cookie).await;
    // Another browser, without that cookie, sees a plain login form.
    let stranger = client().get(app.url("/")).send().await.unwrap();
    assert!(!stranger.text().await.unwrap().contains("logged out"));
    // A notice cookie not signed by this server shows nothing either.
    for planted in [
        "wicket_notice=ended-elsewhere",
        "wicket_notice=ended-elsewhere.00ff",
    ] {
        let page = app
            .get_with_cookie("/", planted)
            .await
            .text()
            .await
            .unwrap();
        assert!(!page.contains("logged out"), "{planted}");
    }
    assert!(bounced_from_cabinet(&app).await.contains(ELSEWHERE));
}

#[tokio::test]
async fn with_htmx_an_ended_session_is_sent_to_the_login_form_and_told_there() {
    let app = spawn_app().await;
    let cookie = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    end_elsewhere(&app, &cookie).await;
    let resp = app.get_hx("/cabinet").await;
    assert_hx_redirect(&resp, "/?next=/cabinet");
    let page = app.get("/?next=/cabinet").await.text().await.unwrap();
    assert!(page.contains(ELSEWHERE), "{page}");
}

#[tokio::test]
async fn on_redis_the_reasons_are_told_too() {
    let redis = RedisServer::start();
    let url = redis.url();
    let app = spawn_app_with(move |c| c.store = StoreKind::Redis(url)).await;
    let cookie = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    end_elsewhere(&app, &cookie).await;
    assert!(bounced_from_cabinet(&app).await.contains(ELSEWHERE));
    app.login("alice", PASSWORD).await;
    assert_see_other(&app.logout().await, "/");
    assert!(login_page(&app).await.contains(LOGGED_OUT));
}
