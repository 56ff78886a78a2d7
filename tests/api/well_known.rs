//! The well-known addresses: `/.well-known/change-password` for password managers,
//! `/.well-known/security.txt` (RFC 9116) with `--security-contact`.

use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn password_managers_find_the_change_password_form() {
    let app = spawn_app().await;
    assert_see_other(&app.get("/.well-known/change-password").await, "/account");
    app.register("ann", PASSWORD).await;
    let page = app.get("/account").await.text().await.unwrap();
    assert!(
        page.contains(r#"id="change-password""#),
        "the form is there"
    );
}

#[tokio::test]
async fn security_txt_is_served_only_with_a_contact_and_expires_within_a_year() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/.well-known/security.txt").await.status(),
        StatusCode::NOT_FOUND
    );

    let app = spawn_app_with(|c| {
        c.security_contact = Some("security@example.com".parse().unwrap());
        c.public_url = Some("https://login.example.com".parse().unwrap());
    })
    .await;
    let resp = reqwest::Client::new()
        .get(app.url("/.well-known/security.txt"))
        .header("host", "login.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    let text = resp.text().await.unwrap();
    assert!(
        text.starts_with("Contact: mailto:security@example.com\n"),
        "{text}"
    );
    assert!(
        text.contains("Canonical: https://login.example.com/.well-known/security.txt\n"),
        "{text}"
    );
    let expires = text
        .lines()
        .find_map(|l| l.strip_prefix("Expires: "))
        .expect("an Expires line");
    let expires =
        time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let ahead = expires - time::OffsetDateTime::now_utc();
    assert!(
        ahead > time::Duration::days(30) && ahead < time::Duration::days(365),
        "{ahead}"
    );
}

#[tokio::test]
async fn a_bad_security_contact_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wicket"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--security-contact", "javascript:alert(1)", "user", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--security-contact") && err.contains("mailto:"),
        "{err}"
    );
}
