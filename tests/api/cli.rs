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
