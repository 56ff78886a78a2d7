//! Who may register: `--registration open|invite|closed`, and invitations (single and
//! counted uses, expiry, groups, races for the last use).

use reqwest::StatusCode;
use wicket::config::Registration;
use wicket::domain::{Group, Username};

use crate::helpers::*;

async fn invite_app() -> TestApp {
    spawn_app_with(|c| c.registration = Registration::Invite).await
}

async fn invite(app: &TestApp, groups: &[&str], uses: u32) -> String {
    let groups = groups.iter().map(|g| Group::parse(g).unwrap()).collect();
    let week = std::time::Duration::from_secs(7 * 24 * 3600);
    let token = app
        .state
        .accounts
        .create_invite(groups, week, uses)
        .await
        .unwrap();
    token.as_str().to_owned()
}

/// Registers `name` from a fresh browser with the invitation `token`.
async fn register_invited(app: &TestApp, token: &str, name: &str) -> reqwest::Response {
    register_at(app.base.clone(), token.to_owned(), name.to_owned()).await
}

/// The same on the app at `base`, owning its arguments (to run on a task of its own).
async fn register_at(base: String, token: String, name: String) -> reqwest::Response {
    let browser = client();
    // The login page always has a form: its token, whatever the invitation's page says.
    let page = browser.get(format!("{base}/")).send().await.unwrap();
    let page = page.text().await.unwrap();
    let csrf = hidden_csrf(&page);
    let form = [
        ("csrf", csrf.as_str()),
        ("username", name.as_str()),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
        ("invite", token.as_str()),
    ];
    browser
        .post(format!("{base}/register/"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn groups_of(app: &TestApp, name: &str) -> Vec<String> {
    let user = app
        .state
        .users
        .get(&Username::parse(name).unwrap())
        .await
        .unwrap()
        .unwrap();
    user.groups.iter().map(|g| g.to_string()).collect()
}

#[tokio::test]
async fn without_an_invitation_there_is_no_form_and_no_account() {
    let app = invite_app().await;
    let resp = app.get("/register/").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Registration is by invitation"), "{page}");
    assert!(!page.contains(r#"name="password""#));
    let login = app.get("/").await.text().await.unwrap();
    assert!(
        !login.contains("Create an account"),
        "the login page hides the link"
    );
    // A post without one (or with a made-up one) creates nothing.
    for token in ["", "0".repeat(64).as_str(), "../../etc"] {
        let csrf = app.csrf_token().await;
        let form = [
            ("csrf", csrf.as_str()),
            ("username", "sneaky"),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
            ("invite", token),
        ];
        let resp = app
            .client
            .post(app.url("/register/"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{token:?}");
    }
    assert!(app.user_files().is_empty());
}

#[tokio::test]
async fn an_invitation_registers_into_its_groups_once() {
    let app = invite_app().await;
    let token = invite(&app, &["team", "wiki"], 1).await;
    let page = app.get(&format!("/register/?invite={token}")).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains(&format!(r#"name="invite" value="{token}""#))
    );

    let resp = register_invited(&app, &token, "ann").await;
    assert_see_other(&resp, "/cabinet");
    assert_eq!(groups_of(&app, "ann").await, ["team", "wiki"]);

    let page = app
        .get_by(&client(), &format!("/register/?invite={token}"))
        .await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("This invitation does not work")
    );
    let resp = register_invited(&app, &token, "bob").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.user_files().len(), 1);
}

#[tokio::test]
async fn of_registrations_racing_for_the_last_use_exactly_one_wins() {
    let app = invite_app().await;
    let token = invite(&app, &[], 2).await;
    assert_see_other(&register_invited(&app, &token, "first").await, "/cabinet");
    let racers: Vec<_> = (0..6)
        .map(|i| {
            tokio::spawn(register_at(
                app.base.clone(),
                token.clone(),
                format!("racer{i}"),
            ))
        })
        .collect();
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.unwrap().status());
    }
    let won = statuses
        .iter()
        .filter(|s| **s == StatusCode::SEE_OTHER)
        .count();
    assert_eq!(won, 1, "{statuses:?}");
    assert_eq!(app.user_files().len(), 2);
}

#[tokio::test]
async fn a_name_already_taken_gives_the_use_back() {
    let app = invite_app().await;
    let first = invite(&app, &[], 1).await;
    assert_see_other(&register_invited(&app, &first, "ann").await, "/cabinet");
    let token = invite(&app, &[], 1).await;
    let resp = register_invited(&app, &token, "ANN").await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_see_other(&register_invited(&app, &token, "bob").await, "/cabinet");
}

#[tokio::test]
async fn a_withdrawn_or_expired_invitation_works_no_more() {
    let app = invite_app().await;
    let token = invite(&app, &[], 5).await;
    let listed = app.state.accounts.invites().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        app.state
            .accounts
            .revoke_invite(&listed[0].id)
            .await
            .unwrap()
    );
    assert_eq!(
        register_invited(&app, &token, "ann").await.status(),
        StatusCode::FORBIDDEN
    );

    let groups = Vec::new();
    let gone = app
        .state
        .accounts
        .create_invite(groups, std::time::Duration::ZERO, 1)
        .await
        .unwrap();
    assert_eq!(
        register_invited(&app, gone.as_str(), "bob").await.status(),
        StatusCode::FORBIDDEN
    );
    assert!(app.user_files().is_empty());
}

#[tokio::test]
async fn closed_registration_shows_no_form_and_creates_nothing() {
    let app = spawn_app_with(|c| c.registration = Registration::Closed).await;
    let resp = app.get("/register/").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Registration is closed") && !page.contains(r#"name="password""#));
    let token = invite(&app, &[], 1).await;
    let resp = register_invited(&app, &token, "ann").await;
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "an invitation opens nothing when closed"
    );
    assert!(app.user_files().is_empty());
    assert!(
        !app.get("/")
            .await
            .text()
            .await
            .unwrap()
            .contains("Create an account")
    );
}
