//! Links die with what they were for: a mailed link belongs to its account (by id),
//! the password it was issued under and the address it went to.

use reqwest::StatusCode;

use crate::helpers::smtp::{SmtpSink, link, mail_app, path_of, register_confirmed};
use crate::helpers::*;

/// Logs `name` in from a new browser; returns the "This wasn't me" link the notice
/// mailed to `address` carries.
async fn not_me_link(app: &TestApp, sink: &SmtpSink, name: &str, address: &str) -> String {
    app.mail_settled().await; // notices of what came before count as seen
    let seen = sink.messages().len();
    app.login_by(&client(), name).await;
    let notice = sink.next_to(seen, address).await;
    assert!(notice.contains("Subject: New login"), "{notice}");
    link(&notice, "/not-me/")
}

/// Asks `/forgot` for `name`; returns the reset link mailed to `address`.
async fn reset_link(app: &TestApp, sink: &SmtpSink, name: &str, address: &str) -> String {
    app.mail_settled().await; // notices of what came before count as seen
    let seen = sink.messages().len();
    app.post_form_by(&client(), "/forgot", &[("username", name)])
        .await;
    let message = sink.next_to(seen, address).await;
    assert!(message.contains("Subject: Reset your"), "{message}");
    link(&message, "/reset/")
}

/// Whether opening `url` in a fresh browser gets the page for unusable links.
async fn is_void(app: &TestApp, url: &str) -> bool {
    let resp = client().get(app.url(path_of(url))).send().await.unwrap();
    resp.status() == StatusCode::GONE
}

/// Changes the member's confirmed address to `new`, confirming it by its link.
async fn move_to(app: &TestApp, sink: &SmtpSink, new: &str) {
    app.mail_settled().await; // notices of what came before count as seen
    let seen = sink.messages().len();
    let form = [("email", new), ("current_password", PASSWORD)];
    let saved = app.post_form("/account/email", &form).await;
    assert_see_other(&saved, "/account?done=email");
    let message = sink.next_to(seen, new).await;
    let confirmed = app.get(path_of(&link(&message, "/verify-email/"))).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_not_me_link_of_a_deleted_account_does_nothing_to_the_next_owner_of_its_name() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    register_confirmed(&app, &sink, "alice", "alice@example.com").await;
    let old_link = not_me_link(&app, &sink, "alice", "alice@example.com").await;
    let form = [("current_password", PASSWORD)];
    assert_see_other(&app.post_form("/account/delete", &form).await, "/");
    // The name is taken again, even with the same (recycled) address, confirmed.
    register_confirmed(&app, &sink, "alice", "alice@example.com").await;
    assert!(is_void(&app, &old_link).await);
    let cabinet = app.get("/cabinet").await;
    assert_eq!(
        cabinet.status(),
        StatusCode::OK,
        "the new owner's session lives"
    );
}

#[tokio::test]
async fn a_not_me_link_dies_when_the_password_changes() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    register_confirmed(&app, &sink, "bob", "bo@example.com").await;
    let not_me = not_me_link(&app, &sink, "bob", "bo@example.com").await;
    assert!(!is_void(&app, &not_me).await, "good until then");
    let new = "a changed horse battery";
    let form = [
        ("current_password", PASSWORD),
        ("password", new),
        ("confirm", new),
    ];
    assert_see_other(
        &app.post_form("/account/password", &form).await,
        "/account?done=password",
    );
    assert!(is_void(&app, &not_me).await);
}

#[tokio::test]
async fn links_mailed_to_an_address_die_when_the_confirmed_address_changes() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    register_confirmed(&app, &sink, "cyd", "old@example.com").await;
    let not_me = not_me_link(&app, &sink, "cyd", "old@example.com").await;
    let reset = reset_link(&app, &sink, "cyd", "old@example.com").await;
    assert!(!is_void(&app, &not_me).await && !is_void(&app, &reset).await);
    // The owner moves to a new mailbox (the old one may be lost, or someone else's).
    move_to(&app, &sink, "new@example.com").await;
    assert!(is_void(&app, &not_me).await, "the not-me link died");
    assert!(is_void(&app, &reset).await, "the reset link died");
    // A link to the new address works.
    let fresh = reset_link(&app, &sink, "cyd", "new@example.com").await;
    assert!(!is_void(&app, &fresh).await);
}

#[tokio::test]
async fn the_reset_a_not_me_link_opens_dies_with_the_address_too() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    register_confirmed(&app, &sink, "dina", "di@example.com").await;
    let not_me = not_me_link(&app, &sink, "dina", "di@example.com").await;
    // The owner opens it and ends every session: a reset form waits in this browser.
    let owner = client();
    app.get_by(&owner, path_of(&not_me)).await;
    assert_see_other(&app.post_form_by(&owner, "/not-me", &[]).await, "/reset");
    assert_eq!(app.get_by(&owner, "/reset").await.status(), StatusCode::OK);
    // Meanwhile the address changes (from a session started after): the waiting
    // reset was for the old mailbox, and dies with it.
    app.login_by(&app.client, "dina").await;
    move_to(&app, &sink, "elsewhere@example.com").await;
    let form = app.get_by(&owner, "/reset").await;
    assert_eq!(form.status(), StatusCode::GONE);
}

#[tokio::test]
async fn a_token_works_only_for_its_own_purpose() {
    // A link confirming an address is no reset link, and a "not me" link is no
    // confirmation: each purpose's token opens nothing else.
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    let seen = sink.messages().len();
    let form = [
        ("username", "erin"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
        ("email", "erin@example.com"),
    ];
    assert_see_other(&app.post_form("/register/", &form).await, "/cabinet");
    let confirm = link(
        &sink.next_to(seen, "erin@example.com").await,
        "/verify-email/",
    );
    let token = confirm.rsplit('/').next().unwrap().to_owned();
    for path in [format!("/reset/{token}"), format!("/not-me/{token}")] {
        assert!(is_void(&app, &format!("http://x{path}")).await, "{path}");
    }
    // The token was not used up by those: it still confirms the address.
    let confirmed = app.get(path_of(&confirm)).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let not_me = not_me_link(&app, &sink, "erin", "erin@example.com").await;
    let token = not_me.rsplit('/').next().unwrap();
    let verify = app.get(&format!("/verify-email/{token}")).await;
    assert_eq!(verify.status(), StatusCode::GONE);
}
