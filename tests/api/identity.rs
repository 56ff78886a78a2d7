//! An account is its id, not its name: a name deleted and registered again inherits
//! nothing; what ends with an account (its sessions) ends at once; one member can
//! never reach another's sessions; a password change retires the old CSRF token.

use reqwest::{Client, StatusCode};

use crate::helpers::*;

/// The handles of the sessions `browser`'s account page lists (other browsers').
async fn listed_handles(app: &TestApp, browser: &Client) -> Vec<String> {
    let page = app.get_by(browser, "/account").await;
    let text = page.text().await.unwrap();
    hidden_values(&text, "session")
        .into_iter()
        .filter(|handle| handle != "others")
        .collect()
}

#[tokio::test]
async fn a_name_registered_again_inherits_no_session_and_no_known_browser() {
    let app = spawn_app().await;
    // Alice's browser: a session and a device cookie for her account.
    let old = client();
    app.register_by(&old, "alice", PASSWORD).await;
    assert_eq!(app.get_by(&old, "/cabinet").await.status(), StatusCode::OK);
    // Her record goes out of band (a restore, an operator's rm); the name is taken anew.
    std::fs::remove_file(app.config.data_dir.join("users/alice.json")).unwrap();
    let new_owner = client();
    app.register_by(&new_owner, "alice", PASSWORD).await;
    // Her old session does not open the new account …
    let cabinet = app.get_by(&old, "/cabinet").await;
    assert_see_other(&cabinet, "/?next=/cabinet");
    // … and her browser is not one the new account knows: locked out like a stranger.
    for _ in 0..5 {
        let form = [("username", "alice"), ("password", "not it at all")];
        let resp = app.post_form_by(&client(), "/login", &form).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let form = [("username", "alice"), ("password", PASSWORD)];
    let resp = app.post_form_by(&old, "/login", &form).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    // The new owner's own browser is known to the new account and logs in.
    new_owner.post(app.url("/logout")).send().await.unwrap();
    let resp = app.post_form_by(&new_owner, "/login", &form).await;
    assert_see_other(&resp, "/cabinet");
}

#[tokio::test]
async fn deleting_an_account_ends_its_other_sessions_at_once() {
    let app = spawn_app().await;
    app.register("dora", PASSWORD).await;
    let other = client();
    app.login_by(&other, "dora").await;
    let files_before = app.session_files();
    assert_eq!(files_before.len(), 2);
    let form = [("current_password", PASSWORD)];
    assert_see_other(&app.post_form("/account/delete", &form).await, "/");
    // Before the other browser asks anything, its session is already ended (a
    // tombstone that tells it why), not merely orphaned.
    let left: Vec<String> = app
        .session_files()
        .iter()
        .map(|file| std::fs::read_to_string(file).unwrap())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0].contains(r#""reason": "account_deleted""#),
        "{}",
        left[0]
    );
    // Registered again, the name gives the old browser nothing.
    app.register_by(&client(), "dora", PASSWORD).await;
    let cabinet = app.get_by(&other, "/cabinet").await;
    assert_see_other(&cabinet, "/?next=/cabinet");
}

#[tokio::test]
async fn a_member_cannot_end_another_members_session_by_its_handle() {
    let app = spawn_app().await;
    app.register("ann", PASSWORD).await;
    let anns_phone = client();
    app.login_by(&anns_phone, "ann").await;
    let handles = listed_handles(&app, &app.client).await;
    assert_eq!(handles.len(), 1, "the phone's session is listed");
    // Bob posts the handle of Ann's phone (it leaked, or he guessed it).
    let bob = client();
    app.register_by(&bob, "bob", PASSWORD).await;
    let form = [("session", handles[0].as_str())];
    let resp = app.post_form_by(&bob, "/account/sessions/end", &form).await;
    assert_see_other(&resp, "/account?done=ended");
    let phone = app.get_by(&anns_phone, "/cabinet").await;
    assert_eq!(phone.status(), StatusCode::OK, "Ann's phone is still in");
    // Ann herself can end it.
    let resp = app.post_form("/account/sessions/end", &form).await;
    assert_see_other(&resp, "/account?done=ended");
    let phone = app.get_by(&anns_phone, "/cabinet").await;
    assert_see_other(&phone, "/?next=/cabinet");
}

#[tokio::test]
async fn a_csrf_token_from_before_a_password_change_is_refused_after_it() {
    let app = spawn_app().await;
    app.register("cato", PASSWORD).await;
    let before = app.csrf_token().await;
    let new = "another horse battery 9";
    let form = [
        ("current_password", PASSWORD),
        ("password", new),
        ("confirm", new),
    ];
    assert_see_other(
        &app.post_form("/account/password", &form).await,
        "/account?done=password",
    );
    let stale = app
        .client
        .post(app.url("/logout"))
        .form(&[("csrf", before.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get("/cabinet").await.status(), StatusCode::OK);
    // The page's new token works.
    assert_see_other(&app.logout().await, "/");
}

/// Rewrites the JSON file at `path` without its field `field`, as an older Wicket
/// wrote it.
fn strip_field(path: &std::path::Path, field: &str) {
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert!(
        record.as_object_mut().unwrap().remove(field).is_some(),
        "{field}"
    );
    std::fs::write(path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
}

#[tokio::test]
async fn records_from_before_account_ids_keep_working_and_get_an_id_once() {
    let app = spawn_app().await;
    app.register("olga", PASSWORD).await;
    let sessions = app.session_files();
    assert_eq!(sessions.len(), 1);
    strip_field(&app.config.data_dir.join("users/olga.json"), "id");
    strip_field(&sessions[0], "account");
    // The old session holds (its account is older than it), and the account is given
    // an id on the way, stored once and kept.
    assert_eq!(app.get("/cabinet").await.status(), StatusCode::OK);
    let id = account_id(&app, "olga");
    assert_eq!(id.len(), 32);
    assert_eq!(app.get("/account").await.status(), StatusCode::OK);
    assert_eq!(account_id(&app, "olga"), id);
    // An old session of a name registered again after it opens nothing.
    let old = client();
    app.login_by(&old, "olga").await;
    let newest = app
        .session_files()
        .into_iter()
        .find(|f| f != &sessions[0])
        .unwrap();
    strip_field(&newest, "account");
    set_session_time(&newest, "created", time::Duration::minutes(5));
    std::fs::remove_file(app.config.data_dir.join("users/olga.json")).unwrap();
    app.register_by(&client(), "olga", PASSWORD).await;
    let cabinet = app.get_by(&old, "/cabinet").await;
    assert_see_other(&cabinet, "/?next=/cabinet");
}

#[tokio::test]
async fn wrong_passwords_on_the_delete_form_are_throttled_like_a_login() {
    let app = spawn_app().await;
    app.register("gus", PASSWORD).await;
    for _ in 0..5 {
        let form = [("current_password", "not the password")];
        let resp = app.post_form("/account/delete", &form).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let form = [("current_password", PASSWORD)];
    let resp = app.post_form("/account/delete", &form).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    assert!(app.config.data_dir.join("users/gus.json").exists());
}
