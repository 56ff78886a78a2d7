//! A mail for every change that matters (issue 26's first part): two-step login on
//! and off, new recovery codes, a passkey added or removed, an address changed (the
//! old one told, with a link that puts it back), the account deleted or disabled.
//! Each exactly once, through the real SMTP server, with no secret in it.

use reqwest::StatusCode;

use crate::helpers::smtp::{
    SmtpSink, expire_token, free_port, link, mail_app, path_of, register_confirmed, token_expiry,
};
use crate::helpers::totp::{enable, step_now, totp};
use crate::helpers::*;
use crate::toolbox::run;

/// How many mails with `subject` the sink holds, once the app's outbox is idle.
async fn count(app: &TestApp, sink: &SmtpSink, subject: &str) -> usize {
    app.mail_settled().await;
    let header = format!("Subject: {subject}");
    sink.messages()
        .iter()
        .filter(|m| m.contains(&header))
        .count()
}

#[tokio::test]
async fn second_factor_changes_and_a_deletion_are_each_mailed_once_with_no_secret() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    register_confirmed(&app, &sink, "ann", "ann@example.com").await;

    let on = enable(&app, step_now()).await;
    let subject = "Two-step login was turned on for your Wicket account";
    assert_eq!(count(&app, &sink, subject).await, 1);
    let mail = sink.with_subject(subject).await;
    let hex: String = on.key.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        !mail.contains(&hex) && !mail.contains(&on.recovery[0]),
        "{mail}"
    );
    assert!(
        mail.contains("from ") && mail.contains("/not-me/"),
        "{mail}"
    );

    let code = totp(&on.key, step_now() + 1, 6);
    let renewed = app
        .post_form_hx(
            "/account/totp/recovery",
            &[("code", &code), ("current_password", PASSWORD)],
        )
        .await
        .text()
        .await
        .unwrap();
    let subject = "New recovery codes for your Wicket account";
    assert_eq!(count(&app, &sink, subject).await, 1);
    let mail = sink.with_subject(subject).await;
    let fresh = renewed
        .split("<li><code>")
        .nth(1)
        .unwrap()
        .split("</code>")
        .next()
        .unwrap();
    assert!(!mail.contains(fresh), "{mail}");
    // The old codes died with the renewal: turn it off with a new one.
    let second = renewed
        .split("<li><code>")
        .nth(2)
        .unwrap()
        .split("</code>")
        .next()
        .unwrap()
        .to_owned();

    let off = app
        .post_form_hx(
            "/account/totp/off",
            &[("code", &second), ("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(off.status(), StatusCode::OK);
    assert_eq!(
        count(
            &app,
            &sink,
            "Two-step login was turned off for your Wicket account"
        )
        .await,
        1
    );

    let deleted = app
        .post_form("/account/delete", &[("current_password", PASSWORD)])
        .await;
    assert_see_other(&deleted, "/");
    let mail = sink.with_subject("Your Wicket account was deleted").await;
    assert!(
        mail.contains("To: ann@example.com") && !mail.contains("/not-me/"),
        "{mail}"
    );
    assert_eq!(
        count(&app, &sink, "Your Wicket account was deleted").await,
        1
    );
}

#[tokio::test]
async fn a_passkey_added_or_removed_is_mailed_with_its_name() {
    use crate::passkeys::{SoftKey, add};
    let sink = SmtpSink::start();
    let smtp = sink.url().parse().unwrap();
    let port = free_port();
    let mut app = spawn_app_with(move |c| {
        c.addr = format!("127.0.0.1:{port}");
        c.public_url = Some(format!("http://localhost:{port}").parse().unwrap());
        c.smtp_url = Some(smtp);
        c.mail_from = Some("Wicket <wicket@example.com>".into());
    })
    .await;
    app.base = format!("http://localhost:{port}");
    register_confirmed(&app, &sink, "pia", "pia@example.com").await;
    let key = SoftKey::new(&app);
    add(&app, &key, "Pia's phone").await;
    let mail = sink
        .with_subject("A passkey was added to your Wicket account")
        .await;
    assert!(mail.contains("Pia's phone"), "{mail}");
    let page = app.get("/account").await.text().await.unwrap();
    let id = hidden_values(&page, "id").remove(0);
    let removed = app
        .post_form_hx(
            "/account/passkeys/remove",
            &[("id", &id), ("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(removed.status(), StatusCode::OK);
    let mail = sink
        .with_subject("A passkey was removed from your Wicket account")
        .await;
    assert!(mail.contains("Pia's phone"), "{mail}");
    assert_eq!(
        count(&app, &sink, "A passkey was added to your Wicket account").await,
        1
    );
    assert_eq!(
        count(
            &app,
            &sink,
            "A passkey was removed from your Wicket account"
        )
        .await,
        1
    );
    // Both made from a browser: each carries "This wasn't me", never the credential
    // (in hex, as the page has it, or base64url, as WebAuthn writes it).
    let bytes: Vec<u8> = (0..id.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&id[i..i + 2], 16).unwrap())
        .collect();
    let id64 = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes)
    };
    for subject in [
        "A passkey was added to your Wicket account",
        "A passkey was removed from your Wicket account",
    ] {
        let mail = sink.with_subject(subject).await;
        assert!(mail.contains("/not-me/"), "{mail}");
        assert!(!mail.contains(&id) && !mail.contains(&id64), "{mail}");
    }
    // Written down once each, with the passkey's name and not its id.
    let page = app.get("/account/activity").await.text().await.unwrap();
    for said in [
        "Passkey added</strong> (Pia",
        "Passkey removed</strong> (Pia",
    ] {
        assert_eq!(page.matches(said).count(), 1, "{said} in {page}");
    }
    assert!(!page.contains(&id) && !page.contains(&id64), "{page}");
}

#[tokio::test]
async fn the_address_given_up_is_told_and_its_link_puts_it_back_once() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    register_confirmed(&app, &sink, "ann", "ann@example.com").await;
    // Whoever holds the session changes the address, then the password.
    let form = [
        ("email", "thief@example.com"),
        ("current_password", PASSWORD),
    ];
    assert_see_other(
        &app.post_form("/account/email", &form).await,
        "/account?done=email",
    );
    let subject = "The email address of your Wicket account was changed";
    let mail = sink.with_subject(subject).await;
    assert!(
        mail.contains("To: ann@example.com") && !mail.contains("thief@"),
        "{mail}"
    );
    let back = link(&mail, "/restore-address/");
    let new = "the thief's own password";
    let form = [
        ("current_password", PASSWORD),
        ("password", new),
        ("confirm", new),
    ];
    app.post_form("/account/password", &form).await;

    // The owner, in another browser, puts it back: every session ends, then a reset.
    let owner = client();
    let opened = app.get_by(&owner, path_of(&back)).await;
    assert_see_other(&opened, "/restore-address");
    let page = app
        .get_by(&owner, "/restore-address")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Put my address back"), "{page}");
    let restored = app.post_form_by(&owner, "/restore-address", &[]).await;
    assert_see_other(&restored, "/reset");
    let json: serde_json::Value =
        serde_json::from_str(&run(&app, &["user", "show", "ann", "--json"])).unwrap();
    assert_eq!(json["email"], "ann@example.com");
    assert_eq!(json["email_confirmed"], true);
    assert_eq!(json["live_sessions"], 0, "the thief is logged out");
    assert_eq!(app.get("/cabinet").await.status(), StatusCode::SEE_OTHER);
    // The reset form is open for the owner.
    let mine = "the owner's new password";
    let reset = app
        .post_form_by(&owner, "/reset", &[("password", mine), ("confirm", mine)])
        .await;
    assert_see_other(&reset, "/cabinet");
    let page = app
        .get_by(&owner, "/account/activity")
        .await
        .text()
        .await
        .unwrap();
    let said = "<strong>Email address put back (&quot;This wasn't me&quot;)</strong>";
    assert_eq!(page.matches(said).count(), 1, "{page}");
    // The link worked once.
    let again = app.get_by(&client(), path_of(&back)).await;
    assert_ne!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(count(&app, &sink, subject).await, 1);
}

/// `name` (with `name@example.com` confirmed) has the address changed to the thief's
/// by whoever holds the session: the link the old address was mailed to put it back.
async fn taken_over(app: &TestApp, sink: &SmtpSink, name: &str) -> String {
    register_confirmed(app, sink, name, &format!("{name}@example.com")).await;
    let form = [
        ("email", "thief@example.com"),
        ("current_password", PASSWORD),
    ];
    app.post_form("/account/email", &form).await;
    let mail = sink
        .with_subject("The email address of your Wicket account was changed")
        .await;
    link(&mail, "/restore-address/")
}

#[tokio::test]
async fn the_link_to_put_an_address_back_lasts_7_days_for_its_account_only() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    let back = taken_over(&app, &sink, "amy").await;
    let left = token_expiry(&app, &back) - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::days(7) - time::Duration::minutes(1)
            && left <= time::Duration::days(7),
        "valid 7 days: {left}"
    );

    // The holder deletes the account, and a new one takes the name: the link is not
    // theirs to be put back on.
    let deleted = app
        .post_form("/account/delete", &[("current_password", PASSWORD)])
        .await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    assert_see_other(&app.register("amy", PASSWORD).await, "/cabinet");
    let opened = app.get_by(&client(), path_of(&back)).await;
    assert_eq!(opened.status(), StatusCode::GONE);
    let json: serde_json::Value =
        serde_json::from_str(&run(&app, &["user", "show", "amy", "--json"])).unwrap();
    assert_eq!(json["email"], serde_json::Value::Null, "nothing put back");
    assert_eq!(json["live_sessions"], 1, "the new account's session stays");
}

#[tokio::test]
async fn a_link_to_put_an_address_back_works_no_more_after_its_7_days() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    let back = taken_over(&app, &sink, "aya").await;
    // Seven days on (the stored token's end moved back): nothing is put back.
    expire_token(&app, &back);
    let opened = app.get_by(&client(), path_of(&back)).await;
    assert_eq!(opened.status(), StatusCode::GONE);
    let json: serde_json::Value =
        serde_json::from_str(&run(&app, &["user", "show", "aya", "--json"])).unwrap();
    assert_eq!(json["email"], "thief@example.com");
    assert_eq!(json["live_sessions"], 1);
}

#[tokio::test]
async fn a_disabled_account_is_told_without_a_link() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    register_confirmed(&app, &sink, "dan", "dan@example.com").await;
    run(&app, &["user", "disable", "dan"]);
    let mail = sink.with_subject("Your Wicket account was disabled").await;
    assert!(!mail.contains("http://"), "{mail}");
    run(&app, &["user", "disable", "dan"]);
    assert_eq!(
        count(&app, &sink, "Your Wicket account was disabled").await,
        1,
        "told once"
    );
    // Deleted by the operator: told too, once, without a link.
    register_confirmed(&app, &sink, "del", "del@example.com").await;
    run(&app, &["user", "delete", "del"]);
    let mail = sink.with_subject("Your Wicket account was deleted").await;
    assert!(
        mail.contains("To: del@example.com") && !mail.contains("http://"),
        "{mail}"
    );
    assert_eq!(
        count(&app, &sink, "Your Wicket account was deleted").await,
        1
    );
}
