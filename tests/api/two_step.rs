//! Two-step login: authenticator-app codes (computed here by a TOTP of the test's own,
//! checked against RFC 6238's vectors) and recovery codes.

use reqwest::{Client, StatusCode};

use crate::helpers::totp::*;
use crate::helpers::*;

#[test]
fn the_tests_own_totp_matches_rfc_6238() {
    let key = b"12345678901234567890";
    for (time, code) in [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ] {
        assert_eq!(totp(key, time / 30, 8), code);
    }
    assert_eq!(base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), key);
}

/// Logs `name` in with the password from `client`; returns the answer (the code form).
async fn password_step(app: &TestApp, client: &Client, name: &str) -> String {
    let resp = app
        .post_form_by(
            client,
            "/login",
            &[("username", name), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the code form, not a redirect"
    );
    assert!(session_cookie(&resp).is_none(), "no session yet");
    let text = resp.text().await.unwrap();
    assert!(
        text.contains(r#"autocomplete="one-time-code""#) && text.contains(r#"inputmode="numeric""#)
    );
    text
}

async fn code_step(app: &TestApp, client: &Client, code: &str) -> reqwest::Response {
    app.post_form_by(client, "/login/code", &[("code", code)])
        .await
}

#[tokio::test]
async fn with_two_step_login_a_password_alone_opens_nothing_and_a_code_works_once() {
    let app = spawn_app().await;
    app.register("tia", PASSWORD).await;
    let on = enable(&app, step_now()).await;
    // Stored sealed: neither the key nor its base32 is in the user's file.
    let file = std::fs::read_to_string(app.config.data_dir.join("users/tia.json")).unwrap();
    assert!(file.contains("\"totp\""));
    let hex: String = on.key.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!file.contains(&hex));
    assert!(!on.recovery.iter().any(|code| file.contains(code.as_str())));

    let browser = client();
    password_step(&app, &browser, "tia").await;
    let cabinet = app.get_by(&browser, "/cabinet").await;
    assert_see_other(&cabinet, "/?next=/cabinet");
    let wrong = code_step(&app, &browser, "000000").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // The enabling code's step is used: the next step's code (one step of skew) works.
    let code = totp(&on.key, step_now() + 1, 6);
    assert_see_other(&code_step(&app, &browser, &code).await, "/cabinet");
    assert_eq!(
        app.get_by(&browser, "/cabinet").await.status(),
        StatusCode::OK
    );
    // A replay from another browser is refused.
    let other = client();
    password_step(&app, &other, "tia").await;
    let replay = code_step(&app, &other, &code).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    // The pending login is single use: the finished one's cookie does nothing more.
    let again = code_step(&app, &browser, &totp(&on.key, step_now() + 1, 6)).await;
    assert_eq!(again.status(), StatusCode::GONE);
}

#[tokio::test]
async fn a_recovery_code_works_once_and_the_page_says_how_many_are_left() {
    let app = spawn_app().await;
    app.register("uma", PASSWORD).await;
    let on = enable(&app, step_now()).await;
    let browser = client();
    password_step(&app, &browser, "uma").await;
    let used = code_step(&app, &browser, &on.recovery[3].to_uppercase()).await;
    assert_see_other(&used, "/account?done=recovery");
    let page = app
        .get_by(&browser, "/account?done=recovery")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("You logged in with a recovery code")
            && page.contains("9 unused recovery codes left."),
        "{page}"
    );
    let other = client();
    password_step(&app, &other, "uma").await;
    assert_eq!(
        code_step(&app, &other, &on.recovery[3]).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// `n` wrong codes on this browser's pending login, each checked (401).
async fn wrong_codes(app: &TestApp, browser: &Client, n: usize) {
    for _ in 0..n {
        let resp = code_step(app, browser, "123456").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "checked");
    }
}

/// A `429` with `Retry-After`.
fn assert_throttled(resp: &reqwest::Response) {
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn wrong_codes_are_throttled_per_pending_login() {
    // Three per pending login, fewer than the account's five: this limit alone stops
    // the fourth, even the right code.
    let app = spawn_app().await;
    app.register("val", PASSWORD).await;
    let on = enable(&app, step_now()).await;
    let browser = client();
    password_step(&app, &browser, "val").await;
    wrong_codes(&app, &browser, 3).await;
    let refused = code_step(&app, &browser, &totp(&on.key, step_now() + 1, 6)).await;
    assert_throttled(&refused);
    // A new pending login has tries of its own (the account has two left).
    let again = client();
    password_step(&app, &again, "val").await;
    let right = code_step(&app, &again, &totp(&on.key, step_now() + 1, 6)).await;
    assert_see_other(&right, "/cabinet");
}

#[tokio::test]
async fn wrong_codes_count_against_the_account_and_a_right_password_does_not_clear_them() {
    // Whoever knows the password may not earn fresh code guesses by logging in again:
    // five wrong codes per account in all (from unknown browsers), however many
    // pending logins they are spread over.
    let app = spawn_app().await;
    app.register("vic", PASSWORD).await;
    let on = enable(&app, step_now()).await;
    let first = client();
    password_step(&app, &first, "vic").await;
    wrong_codes(&app, &first, 3).await;
    let second = client();
    password_step(&app, &second, "vic").await;
    wrong_codes(&app, &second, 2).await;
    assert_throttled(&code_step(&app, &second, "123456").await);
    let third = client();
    password_step(&app, &third, "vic").await;
    let right = code_step(&app, &third, &totp(&on.key, step_now() + 1, 6)).await;
    assert_throttled(&right);
    // The owner's own browser (it logged in before) counts apart and gets in.
    let owner = app.client.clone();
    app.logout().await;
    password_step(&app, &owner, "vic").await;
    let right = code_step(&app, &owner, &totp(&on.key, step_now() + 1, 6)).await;
    assert_see_other(&right, "/cabinet");
}

#[tokio::test]
async fn codes_on_account_forms_are_throttled_like_logins() {
    // A stolen session must not guess its way to ending the owner's other sessions,
    // turning two-step login off, new recovery codes or deleting the account.
    let app = spawn_app().await;
    app.register("cyd", PASSWORD).await;
    let on = enable(&app, step_now()).await;
    let others = [("session", "others"), ("code", "000000")];
    for _ in 0..5 {
        let resp = app.post_form("/account/sessions/end", &others).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let right = [("session", "others"), ("code", on.recovery[0].as_str())];
    assert_throttled(&app.post_form("/account/sessions/end", &right).await);
    let confirmed = [
        ("current_password", PASSWORD),
        ("code", on.recovery[0].as_str()),
    ];
    for form in [
        "/account/totp/off",
        "/account/totp/recovery",
        "/account/delete",
    ] {
        let resp = app.post_form(form, &confirmed).await;
        assert_throttled(&resp);
    }
    let file = std::fs::read_to_string(app.config.data_dir.join("users/cyd.json")).unwrap();
    assert!(file.contains("\"totp\""), "nothing changed");
}

#[tokio::test]
async fn skew_of_one_step_is_accepted_and_two_are_not() {
    let app = spawn_app().await;
    app.register("wes", PASSWORD).await;
    let page = setup_page(&app).await;
    let key = base32_decode(between(&page, r#"<code class="key">"#, "</code>"));
    let setup = between(&page, r#"name="setup" value=""#, r#"""#).to_owned();
    let far = totp(&key, step_now() - 2, 6);
    let refused = turn_on(&app, &setup, &far).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let again = refused.text().await.unwrap();
    assert!(
        again.contains(&setup) && again.contains("That code is not right."),
        "the same key, to try again"
    );
    let near = totp(&key, step_now() - 1, 6);
    let accepted = turn_on(&app, &setup, &near).await;
    assert_eq!(accepted.status(), StatusCode::OK);
    // A key sealed for another account's setup does not open here.
    let stranger = client();
    app.register_by(&stranger, "xia", PASSWORD).await;
    let stolen = app
        .post_form_by(
            &stranger,
            "/account/totp",
            &[
                ("setup", &setup),
                ("code", &totp(&key, step_now(), 6)),
                ("current_password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(stolen.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn turning_it_off_needs_the_password_and_a_code() {
    let app = spawn_app().await;
    app.register("yan", PASSWORD).await;
    let on = enable(&app, step_now()).await;
    let no_code = app
        .post_form(
            "/account/totp/off",
            &[("code", "000000"), ("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(no_code.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let off = app
        .post_form(
            "/account/totp/off",
            &[("code", &on.recovery[0]), ("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(off.status(), StatusCode::OK);
    assert!(off.text().await.unwrap().contains("Two-step login is off."));
    // Logging in is one step again.
    let browser = client();
    let resp = app
        .post_form_by(
            &browser,
            "/login",
            &[("username", "yan"), ("password", PASSWORD)],
        )
        .await;
    assert_see_other(&resp, "/cabinet");
}

/// `name`, with a confirmed address and two-step login on, asked for a reset: a
/// browser holding the mailed link, on the reset form.
async fn reset_form_on_two_step(
    name: &str,
) -> (TestApp, crate::helpers::smtp::SmtpSink, Enabled, Client) {
    use crate::helpers::smtp::*;
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    register_confirmed(&app, &sink, name, &format!("{name}@example.com")).await;
    let on = enable(&app, step_now()).await;
    app.post_form_by(&client(), "/forgot", &[("username", name)])
        .await;
    let reset = link(
        &sink.with_subject("Reset your Wicket password").await,
        "/reset/",
    );
    let browser = client();
    app.get_by(&browser, path_of(&reset)).await;
    (app, sink, on, browser)
}

#[tokio::test]
async fn a_reset_by_mail_asks_for_the_code_before_it_changes_anything() {
    let (app, _sink, on, browser) = reset_form_on_two_step("zed").await;
    let page = app.get_by(&browser, "/reset").await;
    assert!(page.text().await.unwrap().contains(r#"id="reset_code""#));
    // With the mailbox alone nothing changes: not the password, not the sessions.
    let file = app.config.data_dir.join("users/zed.json");
    let before = std::fs::read_to_string(&file).unwrap();
    let new = "a second factor horse 5";
    for code in ["", "000000"] {
        let form = [("password", new), ("confirm", new), ("code", code)];
        let refused = app.post_form_by(&browser, "/reset", &form).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(session_cookie(&refused).is_none());
        let text = refused.text().await.unwrap();
        assert!(text.contains("That code is not right."), "{text}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    assert_eq!(
        app.get("/cabinet").await.status(),
        StatusCode::OK,
        "still logged in"
    );
    // The code first, then the change: and this browser is logged in at once.
    let code = totp(&on.key, step_now() + 1, 6);
    let form = [("password", new), ("confirm", new), ("code", code.as_str())];
    let done = app.post_form_by(&browser, "/reset", &form).await;
    assert_see_other(&done, "/cabinet");
    assert_ne!(std::fs::read_to_string(&file).unwrap(), before);
    assert_see_other(&app.get("/cabinet").await, "/?next=/cabinet");
}

#[tokio::test]
async fn two_step_login_works_on_redis() {
    let redis = crate::helpers::redis::RedisServer::start();
    let url = redis.url();
    let app = spawn_app_with(move |c| {
        c.store = wicket::store::StoreKind::Redis(url);
        c.store_prefix = "twostep".into();
    })
    .await;
    app.register("ada", PASSWORD).await;
    let on = enable(&app, step_now()).await;
    let browser = client();
    password_step(&app, &browser, "ada").await;
    assert_see_other(
        &code_step(&app, &browser, &totp(&on.key, step_now() + 1, 6)).await,
        "/cabinet",
    );
}

#[tokio::test]
async fn ending_every_other_session_and_deleting_the_account_ask_for_a_code() {
    let app = spawn_app().await;
    app.register("bea", PASSWORD).await;
    let on = enable(&app, step_now()).await;
    // Another session to end.
    let other = client();
    password_step(&app, &other, "bea").await;
    assert_see_other(
        &code_step(&app, &other, &on.recovery[0]).await,
        "/account?done=recovery",
    );
    let page = app.get("/account").await.text().await.unwrap();
    assert!(page.contains(r#"id="others_code""#) && page.contains(r#"id="delete_code""#));
    let without = app
        .post_form(
            "/account/sessions/end",
            &[("session", "others"), ("code", "")],
        )
        .await;
    assert_eq!(without.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.get_by(&other, "/cabinet").await.status(),
        StatusCode::OK
    );
    let with = app
        .post_form(
            "/account/sessions/end",
            &[("session", "others"), ("code", &on.recovery[1])],
        )
        .await;
    assert_see_other(&with, "/account?done=others");
    assert_see_other(&app.get_by(&other, "/cabinet").await, "/?next=/cabinet");

    let no_code = app
        .post_form(
            "/account/delete",
            &[("current_password", PASSWORD), ("code", "999999")],
        )
        .await;
    assert_eq!(no_code.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(app.config.data_dir.join("users/bea.json").exists());
    let deleted = app
        .post_form(
            "/account/delete",
            &[("current_password", PASSWORD), ("code", &on.recovery[2])],
        )
        .await;
    assert_see_other(&deleted, "/");
    assert!(!app.config.data_dir.join("users/bea.json").exists());
}

#[tokio::test]
async fn a_pending_login_dies_when_the_password_changes() {
    let app = spawn_app().await;
    app.register("cal", PASSWORD).await;
    let on = enable(&app, step_now()).await;
    let browser = client();
    password_step(&app, &browser, "cal").await;
    let new = "a changed correct horse 3";
    let form = [
        ("current_password", PASSWORD),
        ("password", new),
        ("confirm", new),
    ];
    assert_see_other(
        &app.post_form("/account/password", &form).await,
        "/account?done=password",
    );
    let late = code_step(&app, &browser, &totp(&on.key, step_now() + 1, 6)).await;
    assert_eq!(late.status(), StatusCode::GONE);
}

#[tokio::test]
async fn new_recovery_codes_retire_every_old_one() {
    let app = spawn_app().await;
    app.register("rex", PASSWORD).await;
    let on = enable(&app, step_now()).await;
    let form = [
        ("current_password", PASSWORD),
        ("code", on.recovery[0].as_str()),
    ];
    let resp = app.post_form("/account/totp/recovery", &form).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert!(text.contains("the old ones no longer work"), "{text}");
    let renewed: Vec<String> = text
        .split("<li><code>")
        .skip(1)
        .map(|rest| rest[..rest.find("</code>").unwrap()].to_owned())
        .collect();
    assert_eq!(renewed.len(), 10);
    assert!(renewed.iter().all(|code| !on.recovery.contains(code)));
    // An old, unused code opens nothing; a new one does.
    let browser = client();
    password_step(&app, &browser, "rex").await;
    let old = code_step(&app, &browser, &on.recovery[5]).await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new = code_step(&app, &browser, &renewed[5]).await;
    assert_see_other(&new, "/account?done=recovery");
}

#[tokio::test]
async fn wrong_codes_on_the_reset_form_are_throttled_like_a_login() {
    let (app, _sink, on, browser) = reset_form_on_two_step("rhea").await;
    let new = "a second factor horse 7";
    for _ in 0..5 {
        let form = [("password", new), ("confirm", new), ("code", "000000")];
        let resp = app.post_form_by(&browser, "/reset", &form).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let code = totp(&on.key, step_now() + 1, 6);
    let form = [("password", new), ("confirm", new), ("code", code.as_str())];
    assert_throttled(&app.post_form_by(&browser, "/reset", &form).await);
}
