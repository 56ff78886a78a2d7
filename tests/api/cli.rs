//! The command line: `wicket user …` on either store, as an operator runs it.

use std::process::{Command, Stdio};

use crate::helpers::*;

fn user_add(app: &TestApp, name: &str, stdin: &str) -> std::process::Output {
    user_cmd(app, &["add", name], stdin)
}

#[tokio::test]
async fn a_user_added_from_the_command_line_can_log_in() {
    let app = spawn_app().await;
    let out = user_add(&app, "operator", &format!("{PASSWORD}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_see_other(&app.login("operator", PASSWORD).await, "/cabinet");
}

#[tokio::test]
async fn the_command_line_refuses_bad_names_short_passwords_and_duplicates() {
    let app = spawn_app().await;
    let refused = |out: std::process::Output, reason: &str| {
        assert!(!out.status.success());
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains(reason), "{said}");
    };
    refused(
        user_add(&app, "x", &format!("{PASSWORD}\n")),
        "username: Usernames are 3 to 32 characters long.",
    );
    refused(
        user_add(&app, "shorty", "short\n"),
        "password: Use at least 8 characters.",
    );
    assert!(
        user_add(&app, "dup", &format!("{PASSWORD}\n"))
            .status
            .success()
    );
    let again = user_add(&app, "DUP", &format!("{PASSWORD}\n"));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(app.user_files().len(), 1);
}

/// Runs `wicket ARGS` against `app`'s directories and returns its stderr, expecting failure.
fn refused(app: &TestApp, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_wicket"))
        .env("WICKET_ADDR", "127.0.0.1:0")
        .arg("--data-dir")
        .arg(&app.config.data_dir)
        .arg("--sessions-dir")
        .arg(&app.config.sessions_dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} was accepted");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn bad_settings_and_files_stop_start_up_with_a_message_naming_them() {
    let app = spawn_app().await;
    let key = app.config.data_dir.join("bad.key");
    std::fs::write(&key, b"\xff\xfe not hex").unwrap();
    let key_arg = key.to_str().unwrap();
    let said = refused(&app, &["--secret-key-file", key_arg]);
    assert!(
        said.contains(&format!(
            "secret key file {key_arg}: expected hex, at least 64 characters"
        )),
        "{said}"
    );
    for (flag, value) in [
        ("--session-idle", "30"),
        ("--throttle-login", "lots"),
        ("--store", "postgres://db"),
        ("--scrypt-log-n", "40"),
    ] {
        let said = refused(&app, &[flag, value]);
        assert!(said.contains(flag), "{flag}: {said}");
    }
    let said = refused(&app, &["--static-dir", "/nonexistent/static"]);
    assert!(
        said.contains("--static-dir /nonexistent/static: "),
        "{said}"
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let said = refused(&app, &["--addr", &addr]);
    assert!(
        said.contains(&format!("--addr {addr}: cannot listen")),
        "{said}"
    );
}

/// Runs `wicket user ARGS…` against `app`'s store (files or Redis), feeding `stdin`.
pub fn user_cmd(app: &TestApp, args: &[&str], stdin: &str) -> std::process::Output {
    let mut all = vec!["user"];
    all.extend_from_slice(args);
    wicket(app, &all, stdin)
}

pub fn said(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Where a browser holding `cookie` lands now, and what the login form tells it.
pub async fn told(app: &TestApp, cookie: &str) -> String {
    let resp = app.get_with_cookie("/cabinet", cookie).await;
    assert_see_other(&resp, "/?next=/cabinet");
    let notice = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|v| v.starts_with("wicket_notice="))
        .expect("a notice");
    let page = app.get_with_cookie("/", &notice).await;
    page.text().await.unwrap()
}

/// The stored record of session `id`, as text, on either store.
async fn stored_session(app: &TestApp, id: &str) -> String {
    let id = wicket::store::SessionId::parse(id).unwrap();
    let stores = wicket::app::open_stores(&app.config).unwrap();
    let record = stores
        .sessions
        .load(&id)
        .await
        .unwrap()
        .expect("a stored session");
    serde_json::to_string(&record).unwrap()
}

async fn operators_manage_users_from_the_command_line(app: TestApp) {
    let alice = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    app.post_form_by(
        &client(),
        "/register/",
        &[
            ("username", "Bob"),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
        ],
    )
    .await;
    let listed = said(&user_cmd(&app, &["list"], ""));
    assert_eq!(listed.lines().collect::<Vec<_>>(), ["alice", "Bob"]);

    let sessions = said(&user_cmd(&app, &["sessions", "alice"], ""));
    assert_eq!(sessions.lines().count(), 1, "{sessions}");
    assert!(
        sessions.contains("127.0.0.1") && sessions.contains("started "),
        "{sessions}"
    );

    assert!(
        said(&user_cmd(&app, &["logout", "ALICE"], "")).contains("ended 1 session(s) of alice")
    );
    assert!(
        told(&app, &alice)
            .await
            .contains("ended from another device")
    );

    let alice = session_cookie(&app.login("alice", PASSWORD).await).unwrap();
    let new = "operator chose this one";
    let out = said(&user_cmd(&app, &["passwd", "alice"], &format!("{new}\n")));
    assert!(
        out.contains("changed the password of alice; ended 1 session(s)"),
        "{out}"
    );
    assert!(
        told(&app, &alice)
            .await
            .contains("your password was changed")
    );
    assert_eq!(
        app.login("alice", PASSWORD).await.status(),
        reqwest::StatusCode::UNAUTHORIZED
    );
    let alice = session_cookie(&app.login("alice", new).await).unwrap();

    assert!(
        said(&user_cmd(&app, &["delete", "alice"], ""))
            .contains("deleted alice; ended 1 session(s)")
    );
    // Ended at once (a tombstone that tells the browser why), not merely orphaned.
    let id = alice
        .trim_start_matches("wicket_session=")
        .split('.')
        .next()
        .unwrap();
    let record = stored_session(&app, id).await;
    assert!(record.contains("account_deleted"), "{record}");
    assert!(told(&app, &alice).await.contains("the account was deleted"));
    assert_eq!(said(&user_cmd(&app, &["list"], "")).trim(), "Bob");
    assert_see_other(&app.register("alice", PASSWORD).await, "/cabinet");

    for action in ["sessions", "logout", "passwd", "delete"] {
        let out = user_cmd(&app, &[action, "nobody"], "whatever password\n");
        assert!(!out.status.success(), "{action}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("there is no user called nobody"),
            "{action}: {err}"
        );
    }
    let weak = user_cmd(&app, &["passwd", "Bob"], "short\n");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("password: Use at least 8 characters."));
}

#[tokio::test]
async fn operators_manage_users_on_files() {
    operators_manage_users_from_the_command_line(spawn_app().await).await;
}

#[tokio::test]
async fn operators_manage_users_on_redis() {
    let redis = crate::helpers::redis::RedisServer::start();
    let url = redis.url();
    let app = spawn_app_with(move |c| c.store = wicket::store::StoreKind::Redis(url)).await;
    operators_manage_users_from_the_command_line(app).await;
}
