//! Access rules and groups from the command line, as an operator runs them: `wicket
//! rules check|explain`, `wicket user group`, `wicket group list`, `wicket invite …`,
//! and the rules reloaded by `SIGHUP` in a running server.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

use crate::forward_auth::RULES;
use crate::helpers::binary::Binary;
use crate::helpers::redis::RedisServer;
use crate::helpers::*;

/// Runs `wicket ARGS…` on `app`'s store (files or Redis).
fn wicket(app: &TestApp, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wicket"));
    command
        .arg("--data-dir")
        .arg(&app.config.data_dir)
        .arg("--sessions-dir")
        .arg(&app.config.sessions_dir);
    if let wicket::store::StoreKind::Redis(url) = &app.config.store {
        command.args(["--store", url, "--store-prefix", &app.config.store_prefix]);
    }
    command.args(args).stdin(Stdio::null()).output().unwrap()
}

fn ok(out: Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: Output) -> String {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn rules_file(app: &TestApp, text: &str) -> String {
    let file = app.config.data_dir.with_file_name("rules.toml");
    std::fs::write(&file, text).unwrap();
    file.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn rules_check_lists_good_rules_and_names_the_line_of_a_bad_one() {
    let app = spawn_app().await;
    let file = rules_file(&app, RULES);
    let said = ok(wicket(&app, &["rules", "check", &file]));
    assert!(said.contains("7 rule(s)"), "{said}");
    assert!(
        said.contains("line 12: host app.test, path /team → members, groups team"),
        "{said}"
    );
    let file = rules_file(
        &app,
        "[[rule]]\npolicy = \"members\"\ngroups = [\"bad group\"]\n",
    );
    let said = failed(wicket(&app, &["rules", "check", &file]));
    assert!(
        said.contains(&format!("{file}:1: groups: \"bad group\"")),
        "{said}"
    );
}

#[tokio::test]
async fn rules_explain_says_which_rule_applies_and_what_it_decides() {
    let app = spawn_app().await;
    let file = rules_file(&app, RULES);
    app.register("ann", PASSWORD).await;
    let explain = |url: &str, user: Option<&str>| {
        let mut args = vec!["--access-rules", &file, "rules", "explain", url];
        if let Some(user) = user {
            args.extend(["--user", user]);
        }
        ok(wicket(&app, &args))
    };
    let said = explain("https://app.test/team/x", Some("ann"));
    assert!(said.contains("GET app.test/team/x"), "{said}");
    assert!(said.contains("matches line 12:"), "{said}");
    assert!(said.contains("nobody logged in: sent to log in"), "{said}");
    assert!(
        said.contains("ann (no groups), without a second factor: denied (403)"),
        "{said}"
    );
    ok(wicket(&app, &["user", "group", "ann", "add", "Team"]));
    let said = explain("https://app.test/team/x", Some("ann"));
    assert!(
        said.contains("ann (team), without a second factor: allowed"),
        "{said}"
    );
    let said = explain("https://app.test/strong", Some("ann"));
    assert!(
        said.contains("without a second factor: asked for a second factor first"),
        "{said}"
    );
    assert!(said.contains("with a second factor: allowed"), "{said}");
    let said = explain("https://nowhere.test/", None);
    assert!(
        said.contains("matches no rule: denied to everyone"),
        "{said}"
    );
}

/// Groups and invitations from the command line, on files and on Redis.
async fn groups_and_invites_work_from_the_command_line(app: TestApp) {
    app.register("ann", PASSWORD).await;
    app.logout().await;
    ok(wicket(&app, &["user", "group", "ann", "add", "team"]));
    let said = ok(wicket(&app, &["user", "group", "ann", "add", "ops"]));
    assert!(said.contains("groups now: ops, team"), "{said}");
    let said = ok(wicket(&app, &["group", "list"]));
    assert!(
        said.contains("ops\tann") && said.contains("team\tann"),
        "{said}"
    );
    let said = ok(wicket(&app, &["user", "group", "ann", "remove", "ops"]));
    assert!(said.contains("groups now: team"), "{said}");
    let said = failed(wicket(&app, &["user", "group", "ann", "add", "no/slash"]));
    assert!(said.contains("group: "), "{said}");
    // The account page shows them, read-only.
    app.login("ann", PASSWORD).await;
    let page = app.get("/account").await.text().await.unwrap();
    assert!(page.contains(r#"<dd class="groups">team</dd>"#), "{page}");

    let link = ok(wicket(
        &app,
        &[
            "invite",
            "create",
            "--group",
            "wiki",
            "--uses",
            "2",
            "--expires",
            "1d",
        ],
    ));
    let token = link.trim().rsplit_once("invite=").unwrap().1.to_owned();
    assert_eq!(token.len(), 64, "{link}");
    let listed = ok(wicket(&app, &["invite", "list"]));
    assert!(
        listed.contains("used 0 of 2") && listed.contains("groups: wiki"),
        "{listed}"
    );
    let record = app
        .state
        .accounts
        .open_invite(&token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.groups.len(), 1);
    let id = listed.split('\t').next().unwrap().to_owned();
    assert!(
        !token.starts_with(&id),
        "the id is the hash's, not the token's"
    );
    let said = ok(wicket(&app, &["invite", "revoke", &id]));
    assert!(said.contains("revoked"), "{said}");
    assert!(
        app.state
            .accounts
            .open_invite(&token)
            .await
            .unwrap()
            .is_none()
    );
    assert!(ok(wicket(&app, &["invite", "list"])).contains("no open invitations"));
    let said = failed(wicket(&app, &["invite", "revoke", &id]));
    assert!(said.contains("no open invitation"), "{said}");
}

#[tokio::test]
async fn groups_and_invites_from_the_command_line_on_files() {
    groups_and_invites_work_from_the_command_line(spawn_app().await).await;
}

#[tokio::test]
async fn groups_and_invites_from_the_command_line_on_redis() {
    let redis = RedisServer::start();
    let url = redis.url();
    let app = spawn_app_with(move |c| {
        c.store = wicket::store::StoreKind::Redis(url);
        c.store_prefix = "cli-groups".into();
    })
    .await;
    groups_and_invites_work_from_the_command_line(app).await;
}

#[tokio::test]
async fn sighup_reloads_the_rules_and_a_bad_file_keeps_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    std::fs::write(&file, "[[rule]]\nhost = \"app.test\"\npolicy = \"deny\"\n").unwrap();
    let server = Binary::start(
        dir.path(),
        &[
            "--access-rules",
            file.to_str().unwrap(),
            "--trusted-proxies",
            "127.0.0.1",
        ],
    );
    let ask = || async {
        client()
            .get(format!("{}/auth/request", server.base))
            .header("X-Original-URL", "https://app.test/")
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(ask().await, StatusCode::FORBIDDEN);
    let hangup = || {
        let sent = Command::new("kill")
            .args(["-HUP", &server.pid().to_string()])
            .status();
        assert!(sent.unwrap().success());
    };
    std::fs::write(
        &file,
        "[[rule]]\nhost = \"app.test\"\npolicy = \"public\"\n",
    )
    .unwrap();
    hangup();
    server.wait_for_log("access rules reloaded", Duration::from_secs(10));
    assert_eq!(ask().await, StatusCode::OK);

    std::fs::write(
        &file,
        "[[rule]]\nhost = \"app.test\"\npolicy = \"open sesame\"\n",
    )
    .unwrap();
    hangup();
    let log = server.wait_for_log("access rules not reloaded", Duration::from_secs(10));
    assert!(log.contains("rules.toml:3:"), "{log}");
    assert_eq!(
        ask().await,
        StatusCode::OK,
        "the old rules stay, not none (which deny)"
    );
}
