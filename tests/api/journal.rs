//! The account's journal (issue 26's first part): what happened, written by the
//! account service as it happens, shown on `/account` and `/account/activity`, the
//! latest 200 kept, on both stores.

use reqwest::StatusCode;
use wicket::domain::AccountId;
use wicket::store::journal::{Entry, Event, KEPT};

use crate::helpers::totp::{enable, step_now, trusted_login};
use crate::helpers::*;
use crate::toolbox::{on_redis, run};

/// The text of `page` between its first `<ol class="activity">` and `</ol>`.
fn activity(page: &str) -> &str {
    let start = page
        .find(r#"<ol class="activity">"#)
        .expect("an activity list");
    &page[start..start + page[start..].find("</ol>").unwrap()]
}

async fn what_happened_is_written_down(app: TestApp) {
    app.register("ann", PASSWORD).await;
    let wrong = [("username", "ann"), ("password", "not the password at all")];
    app.post_form_by(&client(), "/login", &wrong).await;
    app.login_by(&client(), "ann").await;
    enable(&app, step_now()).await;
    let form = [
        ("current_password", PASSWORD),
        ("password", "a new horse battery"),
        ("confirm", "a new horse battery"),
    ];
    assert_see_other(
        &app.post_form("/account/password", &form).await,
        "/account?done=password",
    );
    run(&app, &["user", "unlock", "ann"]);

    let page = app.get("/account").await.text().await.unwrap();
    let list = activity(&page);
    let order: Vec<usize> = [
        "Guessing counts cleared by the operator",
        "Password changed",
        "Two-step login turned on",
        "Logged in</strong> (password)",
        "Wrong password",
    ]
    .iter()
    .map(|said| {
        list.find(said)
            .unwrap_or_else(|| panic!("{said:?} in {list}"))
    })
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "newest first: {list}"
    );
    assert!(list.contains("127.0.0.1"), "where from: {list}");
    assert!(list.contains("by the site's operator"), "{list}");
    assert!(
        !list.contains(PASSWORD) && !list.contains("$scrypt$"),
        "{list}"
    );
    assert_eq!(list.matches("<li>").count(), 5);
    assert!(!page.contains("All activity"), "all of it is shown");
    // Two more wrong guesses: the page shows the latest five, and links to all.
    app.post_form_by(&client(), "/login", &wrong).await;
    app.post_form_by(&client(), "/login", &wrong).await;
    let page = app.get("/account").await.text().await.unwrap();
    let list = activity(&page);
    assert_eq!(list.matches("<li>").count(), 5);
    assert!(
        list.starts_with(r#"<ol class="activity"><li><strong>Wrong password</strong>"#),
        "{list}"
    );
    assert!(
        page.contains(r#"<a href="/account/activity">All activity (7 entries)</a>"#),
        "{page}"
    );
    let all = app.get("/account/activity").await.text().await.unwrap();
    assert_eq!(activity(&all).matches("<li>").count(), 7);
    assert!(all.contains("Page 1 of 1"), "{all}");
    // Nobody else's: the page is a member's.
    assert_eq!(
        app.get_by(&client(), "/account/activity").await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn what_happened_is_written_down_on_files() {
    what_happened_is_written_down(spawn_app().await).await;
}

#[tokio::test]
async fn what_happened_is_written_down_on_redis() {
    let (app, _redis) = on_redis(|_| {}).await;
    what_happened_is_written_down(app).await;
}

async fn the_journal_keeps_the_latest_200(app: TestApp) {
    app.register("bea", PASSWORD).await;
    let id = AccountId::from_hex(&{
        let json: serde_json::Value =
            serde_json::from_str(&run(&app, &["user", "show", "bea", "--json"])).unwrap();
        json["id"].as_str().unwrap().to_owned()
    });
    let stores = wicket::app::open_stores(&app.config).unwrap();
    for n in 0..KEPT + 5 {
        let entry = Entry {
            at: time::OffsetDateTime::now_utc(),
            event: Event::PasskeyAdded,
            browser: None,
            address: None,
            detail: Some(format!("key {n}")),
        };
        stores.journal.record(&id, &entry).await.unwrap();
    }
    let (newest, total) = stores.journal.entries(&id, 0, 1).await.unwrap();
    assert_eq!(total, KEPT);
    assert_eq!(newest[0].detail.as_deref(), Some("key 204"));
    let (oldest, _) = stores.journal.entries(&id, KEPT - 1, 5).await.unwrap();
    assert_eq!(oldest.len(), 1);
    assert_eq!(
        oldest[0].detail.as_deref(),
        Some("key 5"),
        "the five oldest dropped"
    );
    let last = app
        .get("/account/activity?page=10")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        last.contains("Page 10 of 10") && last.contains("(key 5)"),
        "{last}"
    );
    assert!(!last.contains("(key 4)"));
    let beyond = app
        .get("/account/activity?page=99")
        .await
        .text()
        .await
        .unwrap();
    assert!(beyond.contains("Page 10 of 10"), "the last page: {beyond}");

    // Deleting the account deletes its journal.
    let form = [("current_password", PASSWORD)];
    assert_see_other(&app.post_form("/account/delete", &form).await, "/");
    assert_eq!(stores.journal.entries(&id, 0, 10).await.unwrap().1, 0);
}

#[tokio::test]
async fn the_journal_keeps_the_latest_200_on_files() {
    the_journal_keeps_the_latest_200(spawn_app().await).await;
}

#[tokio::test]
async fn the_journal_keeps_the_latest_200_on_redis() {
    let (app, _redis) = on_redis(|_| {}).await;
    the_journal_keeps_the_latest_200(app).await;
}

#[tokio::test]
async fn this_wasnt_me_on_an_entry_of_another_browser_ends_every_session_then_a_reset() {
    use crate::helpers::smtp::{SmtpSink, mail_app, register_confirmed};
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    register_confirmed(&app, &sink, "cyd", "cyd@example.com").await;
    // Another browser logs in; this browser's own entries offer nothing.
    let other = client();
    app.post_form_by(
        &other,
        "/login",
        &[("username", "cyd"), ("password", PASSWORD)],
    )
    .await;
    let page = app.get("/account").await.text().await.unwrap();
    let list = activity(&page);
    assert_eq!(
        list.matches("This wasn't me").count(),
        0,
        "same browser and address: {list}"
    );
    // The same login, as seen by a browser that calls itself something else.
    let page = app
        .client
        .get(app.url("/account/activity"))
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(activity(&page).contains("This wasn't me"), "{page}");

    let resp = app.post_form("/account/activity/not-me", &[]).await;
    assert_see_other(&resp, "/reset");
    assert_eq!(
        app.get_by(&other, "/cabinet").await.status(),
        StatusCode::SEE_OTHER,
        "the other browser is out"
    );
    let json: serde_json::Value =
        serde_json::from_str(&run(&app, &["user", "show", "cyd", "--json"])).unwrap();
    assert_eq!(json["live_sessions"], 0);
    let mine = "a fresh horse battery staple";
    let reset = app
        .post_form("/reset", &[("password", mine), ("confirm", mine)])
        .await;
    let status = reset.status();
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "{}",
        reset.text().await.unwrap()
    );
    let page = app.get("/account/activity").await.text().await.unwrap();
    let reported = "&quot;This wasn't me&quot;: every session ended";
    assert!(activity(&page).contains(reported), "{page}");
}

async fn a_member_downloads_their_data_with_the_password_and_no_secret_in_it(app: TestApp) {
    let cookie = session_cookie(&app.register("dee", PASSWORD).await).unwrap();
    let on = enable(&app, step_now()).await;
    // Another browser, logged in and trusted: its session and trust are secrets too.
    let other = client();
    let trusted = trusted_login(&app, &other, ("dee", PASSWORD), &on.recovery[1]).await;
    let other_session = session_cookie(&trusted).expect("the other browser's session");
    let page = app.get("/account").await.text().await.unwrap();
    assert!(page.contains(r#"href="/account/export""#));
    let form = app.get("/account/export").await.text().await.unwrap();
    assert!(
        form.contains("Your password") && form.contains("Code from your authenticator app"),
        "{form}"
    );
    // The password, and a code: without them, the form again.
    let refused = app
        .post_form(
            "/account/export",
            &[("current_password", "not it at all"), ("code", "000000")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("That is not your current password")
    );
    let refused = app
        .post_form(
            "/account/export",
            &[("current_password", PASSWORD), ("code", "000000")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let code = crate::helpers::totp::totp(&on.key, step_now() + 1, 6);
    // A POST from another site (no form token) gets nothing.
    let forged = app
        .client
        .post(app.url("/account/export"))
        .form(&[("current_password", PASSWORD), ("code", &code)])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let resp = app
        .post_form(
            "/account/export",
            &[("current_password", PASSWORD), ("code", &code)],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(
        resp.headers()["content-disposition"],
        r#"attachment; filename="account-dee.json""#
    );
    let text = resp.text().await.unwrap();
    let data: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(data["account"]["name"], "dee");
    assert_eq!(data["account"]["two_step"], true);
    assert_eq!(
        data["account"]["recovery_codes_left"], 9,
        "one used by the other browser"
    );
    let here = data["sessions"].as_array().unwrap();
    assert_eq!(here.iter().filter(|s| s["this_browser"] == true).count(), 1);
    assert!(
        data["activity"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "two-step-on"),
        "{data}"
    );
    // Nothing that opens the account: no hash, key, recovery code, session id.
    let session_id = cookie
        .trim_start_matches("wicket_session=")
        .split('.')
        .next()
        .unwrap();
    let other_id = other_session
        .trim_start_matches("wicket_session=")
        .split('.')
        .next()
        .unwrap();
    assert_eq!(data["sessions"].as_array().unwrap().len(), 2, "{data}");
    let hex: String = on.key.iter().map(|b| format!("{b:02x}")).collect();
    let mut secrets = vec![
        "$scrypt$".to_owned(),
        session_id.to_owned(),
        other_id.to_owned(),
        hex,
        "\"key\"".to_owned(),
    ];
    secrets.extend(on.recovery.iter().cloned());
    // On files, every secret the account record holds: the password's hash, the sealed
    // key, the recovery codes' hashes, the trusted browser's digest.
    if let Ok(record) = std::fs::read_to_string(app.config.data_dir.join("users/dee.json")) {
        let user: serde_json::Value = serde_json::from_str(&record).unwrap();
        secrets.push(user["password_hash"].as_str().unwrap().to_owned());
        secrets.push(user["totp"]["key"].as_str().unwrap().to_owned());
        for hash in user["totp"]["recovery"].as_array().unwrap() {
            secrets.push(hash.as_str().unwrap().to_owned());
        }
        let digests = user["trusted"].as_array().unwrap();
        assert_eq!(digests.len(), 1);
        secrets.push(digests[0]["digest"].as_str().unwrap().to_owned());
    }
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "{secret:?} in {text}");
    }
}

#[tokio::test]
async fn a_login_from_another_address_with_the_same_browser_offers_this_wasnt_me() {
    let app = spawn_app_with(|c| c.trusted_proxies = "127.0.0.1".parse().unwrap()).await;
    app.register("abe", PASSWORD).await;
    // The same browser software, from another address (as the proxy says).
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", "198.51.100.23".parse().unwrap());
    let far = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap();
    app.login_by(&far, "abe").await;
    let page = app.get("/account").await.text().await.unwrap();
    let list = activity(&page);
    assert!(list.contains("198.51.100.23"), "{list}");
    assert_eq!(list.matches("This wasn't me").count(), 1, "{list}");
}

#[tokio::test]
async fn a_member_downloads_their_data_on_files() {
    a_member_downloads_their_data_with_the_password_and_no_secret_in_it(spawn_app().await).await;
}

#[tokio::test]
async fn a_member_downloads_their_data_on_redis() {
    let (app, _redis) = on_redis(|_| {}).await;
    a_member_downloads_their_data_with_the_password_and_no_secret_in_it(app).await;
}

/// How many entries of the member's whole journal say `said`.
async fn times(app: &TestApp, browser: &reqwest::Client, said: &str) -> usize {
    let mut count = 0;
    for page in 1..=10 {
        let text = app
            .get_by(browser, &format!("/account/activity?page={page}"))
            .await
            .text()
            .await
            .unwrap();
        count += activity_or_empty(&text)
            .matches(&format!("<strong>{said}</strong>"))
            .count();
        if !text.contains(r#"rel="next""#) {
            break;
        }
    }
    count
}

fn activity_or_empty(page: &str) -> &str {
    match page.find(r#"<ol class="activity">"#) {
        Some(_) => activity(page),
        None => "",
    }
}

async fn each_event_is_written_once(app: TestApp, sink: &crate::helpers::smtp::SmtpSink) {
    use crate::helpers::smtp::register_confirmed;
    register_confirmed(&app, sink, "eve", "eve@example.com").await;
    let wrong = [("username", "eve"), ("password", "not the password at all")];
    app.post_form_by(&client(), "/login", &wrong).await;
    let elsewhere = client();
    app.login_by(&elsewhere, "eve").await;
    app.post_form_by(&elsewhere, "/logout", &[]).await;
    let on = enable(&app, step_now()).await;
    let form = [
        ("code", on.recovery[0].as_str()),
        ("current_password", PASSWORD),
    ];
    app.post_form_hx("/account/totp/recovery", &form).await;
    run(&app, &["user", "reset-two-step", "eve"]);
    // The reset ended this browser's session too: log in again.
    app.login_by(&app.client, "eve").await;
    let form = [
        ("email", "eve2@example.com"),
        ("current_password", PASSWORD),
    ];
    app.post_form("/account/email", &form).await;
    let new = "eve's other horse battery";
    let form = [
        ("current_password", PASSWORD),
        ("password", new),
        ("confirm", new),
    ];
    app.post_form("/account/password", &form).await;
    for action in ["unlock", "disable", "enable"] {
        run(&app, &["user", action, "eve"]);
    }
    let browser = client();
    app.post_form_by(
        &browser,
        "/login",
        &[("username", "eve"), ("password", new)],
    )
    .await;
    for said in [
        "Wrong password",
        "Logged out",
        "Two-step login turned on",
        "New recovery codes made",
        "Two-step login and passkeys reset by the operator",
        "Email address set (waiting for confirmation)",
        "Password changed",
        "Guessing counts cleared by the operator",
        "Account disabled by the operator",
        "Account enabled by the operator",
    ] {
        assert_eq!(times(&app, &browser, said).await, 1, "{said}");
    }
    // Three logins: another browser, this one again, and the last.
    assert_eq!(times(&app, &browser, "Logged in").await, 3);
    // Never a secret: the codes, the key, the passwords.
    let all = app
        .get_by(&browser, "/account/activity")
        .await
        .text()
        .await
        .unwrap();
    let hex: String = on.key.iter().map(|b| format!("{b:02x}")).collect();
    let typed = "not the password at all";
    let mut secrets = vec![PASSWORD, new, typed, &on.shown, &hex];
    secrets.extend(on.recovery.iter().map(String::as_str));
    app.mail_settled().await;
    let mails = sink.messages();
    for secret in secrets {
        assert!(!all.contains(secret), "{secret:?}");
        for mail in &mails {
            assert!(!mail.contains(secret), "{secret:?} in {mail}");
        }
    }
}

#[tokio::test]
async fn each_event_is_written_once_on_files() {
    let sink = crate::helpers::smtp::SmtpSink::start();
    let app = crate::helpers::smtp::mail_app(&sink).await;
    each_event_is_written_once(app, &sink).await;
}

#[tokio::test]
async fn a_session_that_ran_out_is_written_down_when_its_browser_comes_back() {
    let app = spawn_app().await;
    let cookie = session_cookie(&app.register("ivo", PASSWORD).await).unwrap();
    let file = session_file(&app, &cookie);
    set_session_time(&file, "last_seen", time::Duration::hours(2));
    assert_eq!(app.get("/cabinet").await.status(), StatusCode::SEE_OTHER);
    app.login_by(&app.client, "ivo").await;
    let page = app.get("/account/activity").await.text().await.unwrap();
    assert!(
        activity(&page).contains(
            "<strong>A session ended by itself</strong> (no activity for the idle timeout)"
        ),
        "{page}"
    );
}

#[tokio::test]
async fn each_event_is_written_once_on_redis() {
    let sink = crate::helpers::smtp::SmtpSink::start();
    let (app, _redis) = on_redis(crate::helpers::smtp::mailing(&sink.url())).await;
    each_event_is_written_once(app, &sink).await;
}

/// The rest of the events, each written exactly once, each change told exactly once
/// (with "This wasn't me" where a browser made it), and never a secret in the
/// journal, the export or any mail: the key (as shown and as bytes), every recovery
/// code, the passwords, a wrong code typed.
async fn every_other_change_is_written_and_told_once_with_no_secret(
    app: TestApp,
    sink: &crate::helpers::smtp::SmtpSink,
) {
    use crate::helpers::smtp::{mailed_reset, path_of, register_confirmed};
    register_confirmed(&app, sink, "fay", "fay@example.com").await;
    let mut secrets: Vec<String> = vec![PASSWORD.to_owned()];

    // A reset by mailed link (before two-step login, so no code is asked).
    let reset = mailed_reset(&app, sink, "fay", "fay@example.com").await;
    let me = client();
    app.get_by(&me, path_of(&reset)).await;
    let mine = "fay's own new horse battery";
    let form = [("password", mine), ("confirm", mine)];
    assert_see_other(&app.post_form_by(&me, "/reset", &form).await, "/cabinet");
    secrets.push(mine.to_owned());

    // Two-step login on, a wrong code from another browser, new codes, then off.
    app.login_by_with(&app.client, "fay", mine).await;
    let on = crate::helpers::totp::enable_with(&app, step_now(), mine).await;
    secrets.push(on.shown.clone());
    secrets.push(on.shown.split_whitespace().collect());
    secrets.push(on.key.iter().map(|b| format!("{b:02x}")).collect());
    secrets.extend(on.recovery.iter().cloned());
    let other = client();
    app.post_form_by(&other, "/login", &[("username", "fay"), ("password", mine)])
        .await;
    let wrong_code = "314159";
    app.post_form_by(&other, "/login/code", &[("code", wrong_code)])
        .await;
    secrets.push(wrong_code.to_owned());
    let form = [
        ("code", on.recovery[0].as_str()),
        ("current_password", mine),
    ];
    let renewed = app
        .post_form_hx("/account/totp/recovery", &form)
        .await
        .text()
        .await
        .unwrap();
    let fresh: Vec<String> = renewed
        .split("<li><code>")
        .skip(1)
        .map(|r| r.split("</code>").next().unwrap().to_owned())
        .collect();
    assert_eq!(fresh.len(), 10, "{renewed}");
    secrets.extend(fresh.iter().cloned());
    let form = [("code", fresh[0].as_str()), ("current_password", mine)];
    let off = app.post_form("/account/totp/off", &form).await;
    assert!(off.status().is_success() || off.status().is_redirection());

    // Every other session ended, then the address removed.
    app.login_by_with(&other, "fay", mine).await;
    let ended = app
        .post_form("/account/sessions/end", &[("session", "others")])
        .await;
    assert!(ended.status().is_success() || ended.status().is_redirection());
    let form = [("email", ""), ("current_password", mine)];
    app.post_form("/account/email", &form).await;

    // The operator: every session ended, a new password asked for, then set.
    run(&app, &["user", "logout", "fay"]);
    run(&app, &["user", "require-password-change", "fay"]);
    let third = "the operator's chosen horse";
    let out = crate::cli::user_cmd(&app, &["passwd", "fay"], &format!("{third}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    secrets.push(third.to_owned());
    let browser = client();
    app.login_by_with(&browser, "fay", third).await;

    for said in [
        "Email address confirmed",
        "Password reset by mailed link",
        "Two-step login turned on",
        "Wrong second-factor code",
        "New recovery codes made",
        "Two-step login turned off",
        "Every other session ended",
        "Email address removed",
        "Every session ended by the operator",
        "New password asked for by the operator",
        "Password set by the operator",
    ] {
        assert_eq!(times(&app, &browser, said).await, 1, "{said}");
    }

    // Each change told once; those a browser made carry "This wasn't me".
    app.mail_settled().await;
    let mails = sink.messages();
    let told = |subject: &str| -> Vec<&String> {
        let header = format!("Subject: {subject}");
        mails.iter().filter(|m| m.contains(&header)).collect()
    };
    for (subject, link) in [
        (
            "Two-step login was turned on for your Wicket account",
            "/not-me/",
        ),
        ("New recovery codes for your Wicket account", "/not-me/"),
        (
            "Two-step login was turned off for your Wicket account",
            "/not-me/",
        ),
        (
            "The email address of your Wicket account was removed",
            "/restore-address/",
        ),
        ("Your Wicket password was changed", "/forgot"),
    ] {
        let found = told(subject);
        assert_eq!(found.len(), 1, "{subject}: {found:?}");
        assert!(found[0].contains(link), "{}", found[0]);
        assert!(found[0].contains("To: fay@example.com"), "{}", found[0]);
    }

    // No secret anywhere: the journal, the export, the mails.
    let mut journal = String::new();
    for page in 1..=3 {
        let path = format!("/account/activity?page={page}");
        journal.push_str(&app.get_by(&browser, &path).await.text().await.unwrap());
    }
    let export = app
        .post_form_by(&browser, "/account/export", &[("current_password", third)])
        .await
        .text()
        .await
        .unwrap();
    assert!(export.contains("\"fay\""), "{export}");
    for secret in &secrets {
        assert!(
            !journal.contains(secret.as_str()),
            "{secret:?} in the journal"
        );
        assert!(
            !export.contains(secret.as_str()),
            "{secret:?} in the export"
        );
        for mail in &mails {
            assert!(!mail.contains(secret.as_str()), "{secret:?} in {mail}");
        }
    }
}

#[tokio::test]
async fn every_other_change_is_written_and_told_once_on_files() {
    let sink = crate::helpers::smtp::SmtpSink::start();
    let app = crate::helpers::smtp::mail_app(&sink).await;
    every_other_change_is_written_and_told_once_with_no_secret(app, &sink).await;
}

#[tokio::test]
async fn every_other_change_is_written_and_told_once_on_redis() {
    let sink = crate::helpers::smtp::SmtpSink::start();
    let (app, _redis) = on_redis(crate::helpers::smtp::mailing(&sink.url())).await;
    every_other_change_is_written_and_told_once_with_no_secret(app, &sink).await;
}

#[tokio::test]
async fn a_session_ended_from_another_is_written_down_with_which_it_was() {
    let app = spawn_app().await;
    app.register("una", PASSWORD).await;
    let phone = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
        .build()
        .unwrap();
    app.login_by(&phone, "una").await;
    let page = app.get("/account").await.text().await.unwrap();
    // The first handle listed that is not "others" nor this browser's: the phone's
    // session is listed first (the most recently active).
    let handle = hidden_values(&page, "session")
        .into_iter()
        .find(|h| h != "others")
        .expect("a session to end");
    assert_see_other(
        &app.post_form("/account/sessions/end", &[("session", &handle)])
            .await,
        "/account?done=ended",
    );
    assert_eq!(
        app.get_by(&phone, "/cabinet").await.status(),
        StatusCode::SEE_OTHER
    );
    let page = app.get("/account/activity").await.text().await.unwrap();
    assert!(
        activity(&page).contains(
            "<strong>A session ended from another one</strong> (Safari on iOS · 127.0.0.1)"
        ),
        "{page}"
    );
}
