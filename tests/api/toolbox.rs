//! The operator's toolbox, run as an operator runs it beside a serving Wicket, on
//! both stores: `wicket user show|disable|enable|unlock|reset-two-step|
//! require-password-change`.

use reqwest::StatusCode;
use serde_json::Value;
use wicket::store::StoreKind;

use crate::cli::{said, told};
use crate::helpers::redis::RedisServer;
use crate::helpers::smtp::{SmtpSink, register_confirmed};
use crate::helpers::totp::{enable, step_now};
use crate::helpers::*;

const WRONG: &str = "not the password at all";

/// `wicket ARGS…` that must succeed: its stdout.
pub fn run(app: &TestApp, args: &[&str]) -> String {
    said(&wicket(app, args, ""))
}

/// A login by a fresh browser: its status.
async fn login_status(app: &TestApp, name: &str, password: &str) -> (StatusCode, String) {
    let resp = app
        .post_form_by(
            &client(),
            "/login",
            &[("username", name), ("password", password)],
        )
        .await;
    (resp.status(), resp.text().await.unwrap())
}

/// An app on a fresh Redis (kept alive by the returned server) under its own prefix.
pub async fn on_redis(change: impl FnOnce(&mut wicket::config::Config)) -> (TestApp, RedisServer) {
    let redis = RedisServer::start();
    let url = redis.url();
    let app = spawn_app_with(move |c| {
        c.store = StoreKind::Redis(url);
        c.store_prefix = "toolbox".into();
        change(c);
    })
    .await;
    (app, redis)
}

async fn show_disable_enable_and_unlock(app: TestApp) {
    let alice = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    app.post_form_by(
        &client(),
        "/register/",
        &[
            ("username", "bob"),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
        ],
    )
    .await;

    let shown = run(&app, &["user", "show", "ALICE"]);
    for line in [
        "name:                 alice",
        "email:                none",
        "two-step login:       off",
        "passkeys:             none",
        "failed logins since:  0",
        "live sessions:        1",
        "disabled:             no",
        "must change password: no",
    ] {
        assert!(shown.contains(line), "{line:?} in\n{shown}");
    }
    assert!(!shown.contains("$scrypt$"), "never a hash: {shown}");
    let json: Value =
        serde_json::from_str(&run(&app, &["user", "show", "alice", "--json"])).unwrap();
    assert_eq!(json["name"], "alice");
    assert_eq!(json["live_sessions"], 1);
    assert_eq!(json["two_step"], false);
    assert_eq!(json["disabled"], Value::Null);
    assert_eq!(json["id"].as_str().unwrap().len(), 32);
    assert!(json.get("password_hash").is_none(), "{json}");

    // Disabled during a live session: its next request is anonymous, and told why.
    let out = run(&app, &["user", "disable", "alice"]);
    assert!(out.contains("disabled alice; ended 1 session(s)"), "{out}");
    assert!(
        told(&app, &alice)
            .await
            .contains("the site's operator disabled this account")
    );
    // Only the right password learns it is disabled; a guess learns nothing new.
    let (status, page) = login_status(&app, "alice", WRONG).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!page.contains("disabled"), "{page}");
    let (status, page) = login_status(&app, "alice", PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("This account is disabled."), "{page}");
    let json: Value =
        serde_json::from_str(&run(&app, &["user", "show", "alice", "--json"])).unwrap();
    assert!(json["disabled"].is_string(), "{json}");
    assert_eq!(json["live_sessions"], 0);
    assert_eq!(
        login_status(&app, "bob", PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );

    assert!(run(&app, &["user", "enable", "alice"]).contains("enabled alice"));
    assert_eq!(
        login_status(&app, "alice", PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );

    // Locked for unknown browsers by a guesser; the unlock clears it and says so.
    for _ in 0..5 {
        assert_eq!(
            login_status(&app, "alice", WRONG).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_status(&app, "alice", PASSWORD).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "locked, even with the right password"
    );
    let out = run(&app, &["user", "unlock", "alice"]);
    assert!(
        out.contains("unlocked alice: cleared 5 failed login(s)"),
        "{out}"
    );
    assert_eq!(
        login_status(&app, "alice", PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );
    let json: Value =
        serde_json::from_str(&run(&app, &["user", "show", "alice", "--json"])).unwrap();
    assert_eq!(json["failed_logins"], 0);

    for action in [
        "show",
        "disable",
        "enable",
        "unlock",
        "reset-two-step",
        "require-password-change",
    ] {
        let out = wicket(&app, &["user", action, "nobody"], "");
        assert!(!out.status.success(), "{action}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("there is no user called nobody"),
            "{action}: {err}"
        );
    }
}

#[tokio::test]
async fn operators_show_disable_enable_and_unlock_accounts_on_files() {
    show_disable_enable_and_unlock(spawn_app().await).await;
}

#[tokio::test]
async fn operators_show_disable_enable_and_unlock_accounts_on_redis() {
    let (app, _redis) = on_redis(|_| {}).await;
    show_disable_enable_and_unlock(app).await;
}

async fn reset_two_step_and_require_a_new_password(app: TestApp, sink: &SmtpSink) {
    register_confirmed(&app, sink, "carol", "carol@example.com").await;
    let enabled = enable(&app, step_now()).await;

    // The notice that two-step login was turned on is counted as seen.
    app.mail_settled().await;
    let seen = sink.messages().len();
    let out = run(&app, &["user", "reset-two-step", "carol"]);
    assert!(
        out.contains("reset carol: removed the authenticator app and its recovery codes, no passkeys; ended 1 session(s); mailed the member"),
        "{out}"
    );
    let mail = sink.next_to(seen, "carol@example.com").await;
    assert!(
        mail.contains("Subject: Your Wicket two-step login was reset"),
        "{mail}"
    );
    assert!(
        !mail.contains(&enabled.recovery[0]),
        "no secret in it: {mail}"
    );
    // The password alone logs in now.
    assert_see_other(&app.login("carol", PASSWORD).await, "/cabinet");
    let json: Value =
        serde_json::from_str(&run(&app, &["user", "show", "carol", "--json"])).unwrap();
    assert_eq!(json["two_step"], false);

    // A new password required: every session ends, and the next login leads to the form.
    let live = session_cookie(&app.login("carol", PASSWORD).await).unwrap();
    let out = run(&app, &["user", "require-password-change", "carol"]);
    assert!(
        out.contains("carol must choose a new password at the next login; ended"),
        "{out}"
    );
    assert!(told(&app, &live).await.contains("asks for a new password"));
    assert_see_other(&app.login("carol", PASSWORD).await, "/cabinet");
    assert_see_other(&app.get("/cabinet").await, "/account");
    let page = app.get("/account").await.text().await.unwrap();
    assert!(
        page.contains("Choose a new password") && page.contains("current_password"),
        "{page}"
    );
    assert!(
        !page.contains("Delete account"),
        "nothing else on the page until then"
    );
    let hx = app.get_hx("/cabinet").await;
    assert_eq!(hx.headers()["hx-redirect"], "/account");
    let new = "a brand new passphrase here";
    let wrong = [
        ("current_password", WRONG),
        ("password", new),
        ("confirm", new),
    ];
    for hx in [false, true] {
        let refused = match hx {
            false => app.post_form("/account/password", &wrong).await,
            true => app.post_form_hx("/account/password", &wrong).await,
        };
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = refused.text().await.unwrap();
        assert!(
            page.contains("Choose a new password") && page.contains("not your current password"),
            "{page}"
        );
    }
    let resp = app
        .post_form(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("password", new),
                ("confirm", new),
            ],
        )
        .await;
    assert_see_other(&resp, "/account?done=password");
    assert_eq!(app.get("/cabinet").await.status(), StatusCode::OK);
    let json: Value =
        serde_json::from_str(&run(&app, &["user", "show", "carol", "--json"])).unwrap();
    assert_eq!(json["must_change_password"], false);
}

#[tokio::test]
async fn operators_reset_two_step_and_require_a_new_password_on_files() {
    let sink = SmtpSink::start();
    let app = crate::helpers::smtp::mail_app(&sink).await;
    reset_two_step_and_require_a_new_password(app, &sink).await;
}

#[tokio::test]
async fn operators_reset_two_step_and_require_a_new_password_on_redis() {
    let sink = SmtpSink::start();
    let (app, _redis) = on_redis(crate::helpers::smtp::mailing(&sink.url())).await;
    reset_two_step_and_require_a_new_password(app, &sink).await;
}

async fn forward_auth_denies_disabled_members_and_those_asked_for_a_new_password(app: TestApp) {
    use crate::forward_auth::nginx_asks;
    app.register("dora", PASSWORD).await;
    let ok = nginx_asks(&app, &app.client, "GET", "http://app.test/page").await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["remote-user"], "dora");

    run(&app, &["user", "disable", "dora"]);
    let denied = nginx_asks(&app, &app.client, "GET", "http://app.test/page").await;
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    assert!(
        location(&denied).starts_with("/?rd="),
        "{}",
        location(&denied)
    );

    run(&app, &["user", "enable", "dora"]);
    run(&app, &["user", "require-password-change", "dora"]);
    assert_see_other(&app.login("dora", PASSWORD).await, "/cabinet");
    let held = nginx_asks(&app, &app.client, "GET", "http://app.test/page").await;
    assert_eq!(
        held.status(),
        StatusCode::UNAUTHORIZED,
        "no identity until then"
    );
    assert!(held.headers().get("remote-user").is_none());
    assert!(
        location(&held).starts_with("/account?rd="),
        "{}",
        location(&held)
    );
    let new = "a brand new passphrase here";
    let form = [
        ("current_password", PASSWORD),
        ("password", new),
        ("confirm", new),
    ];
    assert_see_other(
        &app.post_form("/account/password", &form).await,
        "/account?done=password",
    );
    let ok = nginx_asks(&app, &app.client, "GET", "http://app.test/page").await;
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn forward_auth_denies_disabled_members_and_those_asked_for_a_new_password_on_files() {
    let app = crate::forward_auth::guarding_app(|_| {}).await;
    forward_auth_denies_disabled_members_and_those_asked_for_a_new_password(app).await;
}

#[tokio::test]
async fn forward_auth_denies_disabled_members_and_those_asked_for_a_new_password_on_redis() {
    let redis = RedisServer::start();
    let url = redis.url();
    let app = crate::forward_auth::guarding_app(move |c| {
        c.store = StoreKind::Redis(url);
        c.store_prefix = "toolbox".into();
    })
    .await;
    forward_auth_denies_disabled_members_and_those_asked_for_a_new_password(app).await;
}

#[tokio::test]
async fn a_disabled_account_cannot_log_in_with_its_passkey_either() {
    use crate::passkeys::{log_in_with, member_with_passkey};
    let (app, mut key, handle) = member_with_passkey("pat", "Pat's key").await;
    run(&app, &["user", "disable", "pat"]);
    let refused = log_in_with(&app, &mut key, &handle).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("This account is disabled.")
    );
    run(&app, &["user", "enable", "pat"]);
    assert_see_other(&log_in_with(&app, &mut key, &handle).await, "/cabinet");
}

/// Changes `name`'s record behind the sessions' back, as a write from another
/// instance (or one that ended no session) would.
pub async fn behind_the_back(app: &TestApp, name: &str, change: &wicket::store::UserChange) {
    let stores = wicket::app::open_stores(&app.config).unwrap();
    let name = wicket::domain::Username::parse(name).unwrap();
    stores.users.update(&name, change).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_session_of_an_account_disabled_behind_its_back_is_over_at_its_next_request() {
    let app = spawn_app().await;
    let cookie = session_cookie(&app.register("ivy", PASSWORD).await).unwrap();
    assert_eq!(app.get("/cabinet").await.status(), StatusCode::OK);
    let now = time::OffsetDateTime::now_utc();
    behind_the_back(&app, "ivy", &move |u| u.disabled = Some(now)).await;
    assert!(
        told(&app, &cookie)
            .await
            .contains("the site's operator disabled this account")
    );
}

#[tokio::test]
async fn a_passkey_goes_with_a_second_factor_reset() {
    use crate::passkeys::{log_in_with, member_with_passkey};
    let (app, mut key, handle) = member_with_passkey("rex", "Rex's key").await;
    let out = run(&app, &["user", "reset-two-step", "rex"]);
    assert!(
        out.contains("passkeys Rex's key; ended 1 session(s)"),
        "{out}"
    );
    let refused = log_in_with(&app, &mut key, &handle).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let json: Value = serde_json::from_str(&run(&app, &["user", "show", "rex", "--json"])).unwrap();
    assert_eq!(json["passkeys"], serde_json::json!([]));
}
