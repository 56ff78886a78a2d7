//! "Trust this browser for 30 days" at the second step (issue 26): that browser skips
//! the code, another does not, and a password change, a second-factor change, "This
//! wasn't me" or "Forget" end it. On both stores.

use reqwest::{Client, StatusCode};

use crate::helpers::totp::{enable, step_now, trusted_login};
use crate::helpers::*;
use crate::toolbox::on_redis;

/// A password login from `browser`: `true` if it went straight in, `false` if it was
/// asked for a code.
async fn straight_in(app: &TestApp, browser: &Client) -> bool {
    let form = [("username", "tess"), ("password", PASSWORD)];
    let resp = app.post_form_by(browser, "/login", &form).await;
    match resp.status() {
        StatusCode::SEE_OTHER => true,
        StatusCode::OK => {
            assert!(resp.text().await.unwrap().contains("Two-step login"));
            false
        }
        other => panic!("a login answered {other}"),
    }
}

/// A browser whose cookie jar holds just `cookie` (`name=value`) for the app.
fn carrying(app: &TestApp, cookie: &str) -> Client {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str(cookie, &app.base.parse().unwrap());
    Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A login from `browser` finished with `code`, trusting the browser if `trust`.
async fn with_code(app: &TestApp, browser: &Client, code: &str, trust: bool) -> reqwest::Response {
    assert!(!straight_in(app, browser).await, "asked for a code");
    let mut form = vec![("code", code)];
    if trust {
        form.push(("trust", "on"));
    }
    app.post_form_by(browser, "/login/code", &form).await
}

async fn a_trusted_browser_skips_the_code_until_something_changes(app: TestApp) {
    app.register("tess", PASSWORD).await;
    let on = enable(&app, step_now()).await;
    let mut codes = on.recovery.iter();
    let laptop = client();
    let resp = with_code(&app, &laptop, codes.next().unwrap(), true).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("wicket_trust="))
        .expect("a trust cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Max-Age=2592000"),
        "{cookie}"
    );

    assert!(
        straight_in(&app, &laptop).await,
        "the trusted browser skips the code"
    );
    assert!(
        !straight_in(&app, &client()).await,
        "another browser does not"
    );
    let page = app.get("/account").await.text().await.unwrap();
    assert!(
        page.contains("Trusted browsers") && page.contains("Forget"),
        "{page}"
    );
    assert!(
        page.contains("Browser trusted for 30 days"),
        "in the journal: {page}"
    );

    // "Forget" ends it.
    let handle = hidden_values(&page, "browser").remove(0);
    assert_see_other(
        &app.post_form("/account/trusted/forget", &[("browser", &handle)])
            .await,
        "/account",
    );
    assert!(!straight_in(&app, &laptop).await, "forgotten");
    let page = app.get("/account/activity").await.text().await.unwrap();
    assert_eq!(
        page.matches("<strong>Trusted browser forgotten</strong>")
            .count(),
        1,
        "{page}"
    );
    app.post_form_by(
        &laptop,
        "/login/code",
        &[("code", codes.next().unwrap()), ("trust", "on")],
    )
    .await;
    assert!(straight_in(&app, &laptop).await);

    // New recovery codes (a second-factor change) end it.
    let form = [
        ("code", codes.next().unwrap().as_str()),
        ("current_password", PASSWORD),
    ];
    let renewed = app
        .post_form_hx("/account/totp/recovery", &form)
        .await
        .text()
        .await
        .unwrap();
    assert!(renewed.contains("New recovery codes made"), "{renewed}");
    assert!(
        !straight_in(&app, &laptop).await,
        "a second-factor change ends the trust"
    );
    let fresh: Vec<String> = renewed
        .split("<li><code>")
        .skip(1)
        .map(|r| r.split("</code>").next().unwrap().to_owned())
        .collect();
    app.post_form_by(
        &laptop,
        "/login/code",
        &[("code", &fresh[0]), ("trust", "on")],
    )
    .await;
    assert!(straight_in(&app, &laptop).await);

    // "This wasn't me" ends it, even before a new password is chosen.
    let other_code = fresh[1].clone();
    assert_see_other(&app.post_form("/account/activity/not-me", &[]).await, "/");
    assert!(
        !straight_in(&app, &laptop).await,
        "\"This wasn't me\" ends the trust"
    );
    app.post_form_by(
        &laptop,
        "/login/code",
        &[("code", &other_code), ("trust", "on")],
    )
    .await;
    assert!(straight_in(&app, &laptop).await);

    // A password change ends it (the trust is bound to the account, the cookie kept).
    let new = "another horse battery staple";
    let form = [
        ("current_password", PASSWORD),
        ("password", new),
        ("confirm", new),
    ];
    assert_see_other(
        &app.post_form_by(&laptop, "/account/password", &form).await,
        "/account?done=password",
    );
    let asked = app
        .post_form_by(
            &laptop,
            "/login",
            &[("username", "tess"), ("password", new)],
        )
        .await;
    assert_eq!(asked.status(), StatusCode::OK, "asked for a code again");
}

#[tokio::test]
async fn a_trusted_browser_skips_the_code_until_something_changes_on_files() {
    a_trusted_browser_skips_the_code_until_something_changes(spawn_app().await).await;
}

#[tokio::test]
async fn a_trusted_browser_skips_the_code_until_something_changes_on_redis() {
    let (app, _redis) = on_redis(|_| {}).await;
    a_trusted_browser_skips_the_code_until_something_changes(app).await;
}

#[tokio::test]
async fn a_forged_or_foreign_trust_cookie_skips_nothing() {
    let app = spawn_app().await;
    app.register("tess", PASSWORD).await;
    let on = enable(&app, step_now()).await;
    // The account trusts a browser: a cookie must name that one's secret, not any.
    let laptop = client();
    let trusted = with_code(&app, &laptop, &on.recovery[0], true).await;
    assert_eq!(trusted.status(), StatusCode::SEE_OTHER);
    assert!(straight_in(&app, &laptop).await);
    let id: serde_json::Value = serde_json::from_str(&crate::toolbox::run(
        &app,
        &["user", "show", "tess", "--json"],
    ))
    .unwrap();
    let forged = format!(
        "wicket_trust={}.{}",
        id["id"].as_str().unwrap(),
        "a".repeat(64)
    );
    let browser = carrying(&app, &forged);
    assert!(
        !straight_in(&app, &browser).await,
        "a made-up secret is no trust"
    );
}

/// The trust cookie `resp` set.
fn trust_cookie(resp: &reqwest::Response) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("wicket_trust="))
        .expect("a trust cookie")
}

/// `laptop` trusted with `code` (after a password login that asked for it).
async fn trust(app: &TestApp, laptop: &Client, code: &str) {
    let resp = with_code(app, laptop, code, true).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    trust_cookie(&resp);
    assert!(straight_in(app, laptop).await, "trusted");
}

/// How many browsers tess's account record (files store) trusts.
fn trusted_in_record(app: &TestApp) -> usize {
    let file = app.config.data_dir.join("users/tess.json");
    let user: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    user["trusted"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn trust_dies_with_two_step_off_the_operators_reset_a_reset_and_its_30_days() {
    use crate::helpers::smtp::{SmtpSink, mail_app, mailed_reset, path_of, register_confirmed};
    use crate::toolbox::run;
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    register_confirmed(&app, &sink, "tess", "tess@example.com").await;
    let on = enable(&app, step_now()).await;
    let laptop = client();
    trust(&app, &laptop, &on.recovery[0]).await;

    // Two-step login off (then on again): the old trust is gone.
    let form = [
        ("code", on.recovery[1].as_str()),
        ("current_password", PASSWORD),
    ];
    let off = app.post_form("/account/totp/off", &form).await;
    assert!(off.status().is_success() || off.status().is_redirection());
    assert_eq!(trusted_in_record(&app), 0, "two-step off forgets at once");
    let on = enable(&app, step_now()).await;
    assert!(!straight_in(&app, &laptop).await, "two-step off ends it");
    app.post_form_by(&laptop, "/login/code", &[("code", &on.recovery[0])])
        .await;
    trust(&app, &laptop, &on.recovery[1]).await;

    // The operator's reset of the second factors (then on again).
    run(&app, &["user", "reset-two-step", "tess"]);
    assert_eq!(
        trusted_in_record(&app),
        0,
        "the operator's reset forgets at once"
    );
    app.login_by(&app.client, "tess").await;
    let on = enable(&app, step_now()).await;
    assert!(
        !straight_in(&app, &laptop).await,
        "the operator's reset ends it"
    );
    app.post_form_by(&laptop, "/login/code", &[("code", &on.recovery[0])])
        .await;
    trust(&app, &laptop, &on.recovery[1]).await;

    // A reset by mailed link.
    let reset = mailed_reset(&app, &sink, "tess", "tess@example.com").await;
    let owner = client();
    app.get_by(&owner, path_of(&reset)).await;
    let mine = "a brand new horse battery";
    let form = [
        ("password", mine),
        ("confirm", mine),
        ("code", on.recovery[2].as_str()),
    ];
    let done = app.post_form_by(&owner, "/reset", &form).await;
    assert_eq!(
        done.status(),
        StatusCode::SEE_OTHER,
        "{}",
        done.text().await.unwrap()
    );
    let form = [("username", "tess"), ("password", mine)];
    let asked = app.post_form_by(&laptop, "/login", &form).await;
    assert_eq!(asked.status(), StatusCode::OK, "a reset ends it");
    let resp = trusted_login(&app, &laptop, ("tess", mine), &on.recovery[3]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let went = app.post_form_by(&laptop, "/login", &form).await;
    assert_eq!(went.status(), StatusCode::SEE_OTHER, "trusted again");

    // Thirty days on, the trust has run out (its end moved back in the record).
    let file = app.config.data_dir.join("users/tess.json");
    let mut user: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let past = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    for entry in user["trusted"].as_array_mut().unwrap() {
        entry["until"] = past
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
            .into();
    }
    std::fs::write(&file, user.to_string()).unwrap();
    let asked = app.post_form_by(&laptop, "/login", &form).await;
    assert_eq!(asked.status(), StatusCode::OK, "past its 30 days");
}

#[tokio::test]
async fn at_most_ten_browsers_are_trusted_and_another_accounts_trust_is_none() {
    let app = spawn_app().await;
    app.register("tess", PASSWORD).await;
    let on = enable(&app, step_now()).await;
    let browsers: Vec<Client> = (0..11).map(|_| client()).collect();
    let mut codes: Vec<String> = on.recovery.clone();
    codes.push(crate::helpers::totp::totp(&on.key, step_now() + 1, 6));
    for (browser, code) in browsers.iter().zip(&codes) {
        trust(&app, browser, code).await;
    }
    assert!(
        !straight_in(&app, &browsers[0]).await,
        "the oldest of eleven is forgotten"
    );
    for browser in &browsers[1..] {
        assert!(straight_in(&app, browser).await);
    }

    // A browser another account trusts is asked for this one's code.
    app.post_form("/logout", &[]).await;
    assert_see_other(&app.register("uma", PASSWORD).await, "/cabinet");
    let theirs = enable(&app, step_now()).await;
    let resp = trusted_login(&app, &client(), ("uma", PASSWORD), &theirs.recovery[0]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cookie = trust_cookie(&resp);
    assert!(
        !straight_in(&app, &carrying(&app, cookie.split(';').next().unwrap())).await,
        "uma's trust opens nothing of tess's"
    );
}

#[tokio::test]
async fn a_trusted_browser_still_has_only_one_factor_for_two_step_pages() {
    use crate::forward_auth::{guarding_app, nginx_asks};
    let app = guarding_app(|_| {}).await;
    app.register("tess", PASSWORD).await;
    let on = enable(&app, step_now()).await;
    let laptop = client();
    trust(&app, &laptop, &on.recovery[0]).await;
    // Logged in by the trust alone: members' pages open, two-step ones ask for a code.
    let members = nginx_asks(&app, &laptop, "GET", "https://app.test/x").await;
    assert_eq!(members.status(), StatusCode::OK);
    let strong = nginx_asks(&app, &laptop, "GET", "https://app.test/strong").await;
    assert_eq!(strong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        location(&strong),
        "/login/step-up?rd=https%3A%2F%2Fapp.test%2Fstrong"
    );
}
