//! "Trust this browser for 30 days" at the second step (issue 26): that browser skips
//! the code, another does not, and a password change, a second-factor change, "This
//! wasn't me" or "Forget" end it. On both stores.

use reqwest::{Client, StatusCode};

use crate::helpers::totp::{enable, step_now};
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
    let handle = page
        .split(r#"name="browser" value=""#)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert_see_other(
        &app.post_form("/account/trusted/forget", &[("browser", &handle)])
            .await,
        "/account",
    );
    assert!(!straight_in(&app, &laptop).await, "forgotten");
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
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let url: reqwest::Url = app.base.parse().unwrap();
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
    jar.add_cookie_str(&forged, &url);
    let browser = Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert!(
        !straight_in(&app, &browser).await,
        "a made-up secret is no trust"
    );
}
