use std::io::Write;
use std::process::{Command, Stdio};

use crate::helpers::*;

fn user_add(app: &TestApp, name: &str, stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wicket"))
        .args(["--scrypt-log-n", "4", "user", "add", name])
        .arg("--data-dir")
        .arg(&app.config.data_dir)
        .arg("--sessions-dir")
        .arg(&app.config.sessions_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
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
