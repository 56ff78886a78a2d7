//! Registering: names, passwords, the optional address, and the first session.

use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn the_registration_form_asks_for_a_new_password_twice() {
    let app = spawn_app().await;
    let resp = app.get("/register/").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.text().await.unwrap();
    assert!(body.contains(r#"action="/register/""#) && body.contains(r#"method="post""#));
    assert_eq!(body.matches(r#"autocomplete="new-password""#).count(), 2);
    assert!(body.contains(r#"name="confirm""#));
}

#[tokio::test]
async fn register_without_the_slash_redirects_to_it() {
    let app = spawn_app().await;
    let resp = app.get("/register").await;
    assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(location(&resp), "/register/");
    // 308, not 301: a browser repeats a POST as a POST, form and all.
    let resp = app.post_form("/register", &[("username", "alice")]).await;
    assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(location(&resp), "/register/");
}

#[tokio::test]
async fn registering_creates_the_user_logs_them_in_and_lands_on_the_cabinet() {
    let app = spawn_app().await;
    let resp = app.register("alice", PASSWORD).await;
    assert_see_other(&resp, "/cabinet");
    assert!(session_cookie(&resp).is_some());
    assert_eq!(app.session_files().len(), 1);
    let cabinet = app.get("/cabinet").await;
    assert_eq!(cabinet.status(), StatusCode::OK);
    assert!(cabinet.text().await.unwrap().contains("Welcome, alice!"));
}

#[tokio::test]
async fn the_password_is_stored_as_an_scrypt_hash_never_in_plain() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    let files = app.user_files();
    assert_eq!(files.len(), 1);
    let stored = std::fs::read_to_string(&files[0]).unwrap();
    assert!(stored.contains("$scrypt$ln=4,r=8,p=1$"), "{stored}");
    assert!(!stored.contains(PASSWORD));
}

#[tokio::test]
async fn a_taken_name_in_any_case_is_refused_inline_keeping_what_was_typed() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    let form = [
        ("username", "ALICE"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    let resp = app.post_form_by(&client(), "/register/", &form).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(session_cookie(&resp).is_none());
    let body = resp.text().await.unwrap();
    assert!(body.contains("That name is taken"));
    assert!(body.contains(r#"value="ALICE""#));
    assert_eq!(app.user_files().len(), 1);
}

#[tokio::test]
async fn each_invalid_field_gets_its_own_inline_error_and_nothing_is_created() {
    let app = spawn_app().await;
    let cases = [
        ("al", PASSWORD, PASSWORD, "3 to 32 characters"),
        ("bad name!", PASSWORD, PASSWORD, "Use only letters"),
        ("alice", "short", "short", "at least 8 characters"),
        ("alice", PASSWORD, "something else", "do not match"),
        ("", "", "", "3 to 32 characters"),
    ];
    for (name, password, confirm, message) in cases {
        let resp = app
            .post_form(
                "/register/",
                &[
                    ("username", name),
                    ("password", password),
                    ("confirm", confirm),
                ],
            )
            .await;
        assert_eq!(
            resp.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}/{message}"
        );
        let body = resp.text().await.unwrap();
        assert!(body.contains(message), "{message} missing from {body}");
        assert!(body.contains(r#"role="alert""#));
        assert!(body.contains(r#"aria-invalid="true""#));
        assert!(body.contains(&format!(r#"value="{}""#, name)));
    }
    assert!(app.user_files().is_empty());
    assert!(app.session_files().is_empty());
}

#[tokio::test]
async fn a_password_of_any_unicode_is_kept_exactly() {
    let app = spawn_app().await;
    let password = "  Pässwörd 🔑 ключ  ";
    assert_see_other(&app.register("unicode", password).await, "/cabinet");
    app.logout().await;
    assert_see_other(&app.login("unicode", password).await, "/cabinet");
    app.logout().await;
    let trimmed = password.trim();
    assert_eq!(
        app.login("unicode", trimmed).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn with_htmx_errors_come_back_as_the_form_fragment_alone() {
    let app = spawn_app().await;
    let resp = app
        .post_form_hx(
            "/register/",
            &[
                ("username", "al"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        resp.headers()["vary"]
            .to_str()
            .unwrap()
            .contains("HX-Request")
    );
    let body = resp.text().await.unwrap();
    assert!(
        body.starts_with(r#"<section class="card" id="register">"#),
        "{body}"
    );
    assert!(!body.contains("<html"));
    assert!(body.contains("3 to 32 characters"));
}

#[tokio::test]
async fn with_htmx_success_is_an_hx_redirect_to_the_cabinet() {
    let app = spawn_app().await;
    let resp = app
        .post_form_hx(
            "/register/",
            &[
                ("username", "bob"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_hx_redirect(&resp, "/cabinet");
    assert!(session_cookie(&resp).is_some());
}

#[tokio::test]
async fn two_concurrent_registrations_of_one_name_have_exactly_one_winner() {
    let app = spawn_app().await;
    let app = std::sync::Arc::new(app);
    for round in 0..5 {
        let name = format!("racer{round}");
        let attempts = (0..8).map(|i| {
            let app = app.clone();
            let name = if i % 2 == 0 {
                name.clone()
            } else {
                name.to_uppercase()
            };
            async move {
                let form = [
                    ("username", name.as_str()),
                    ("password", PASSWORD),
                    ("confirm", PASSWORD),
                ];
                app.post_form_by(&client(), "/register/", &form)
                    .await
                    .status()
            }
        });
        let statuses = futures_join_all(attempts).await;
        let winners = statuses
            .iter()
            .filter(|s| **s == StatusCode::SEE_OTHER)
            .count();
        let losers = statuses
            .iter()
            .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
            .count();
        assert_eq!((winners, losers), (1, 7), "round {round}: {statuses:?}");
    }
    assert_eq!(app.user_files().len(), 5);
}
