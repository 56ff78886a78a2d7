//! `wicket export` and `wicket import`, on both stores: accounts move between
//! Wickets as JSON Lines, and in from Apache's htpasswd (bcrypt, made by Debian's
//! `htpasswd`) and Authelia's users_database.yml (argon2id, made by Python's
//! argon2-cffi); the next login checks the foreign hash and replaces it by scrypt.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;

use crate::cli::said;
use crate::helpers::totp::{enable, step_now, totp};
use crate::helpers::*;
use crate::toolbox::{on_redis, run};

/// What `wicket export` printed, one account per line.
fn exported(app: &TestApp, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["export"];
    all.extend_from_slice(args);
    said(&wicket(app, &all, ""))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// `wicket import ARGS…` with `file` written next to the app's data.
fn import(app: &TestApp, name: &str, text: &str, args: &[&str]) -> std::process::Output {
    let file = app.config.data_dir.with_file_name(name);
    std::fs::write(&file, text).unwrap();
    let mut all = vec!["import", file.to_str().unwrap()];
    all.extend_from_slice(args);
    wicket(app, &all, "")
}

/// The stored hash of `name`, as an export shows it.
fn stored_hash(app: &TestApp, name: &str) -> String {
    let lines = exported(app, &[]);
    let line = lines.iter().find(|l| l["name"] == name).expect("exported");
    line["password_hash"].as_str().unwrap().to_owned()
}

/// Whether `name` logs in with `password` from a new browser (to the cabinet).
async fn logs_in(app: &TestApp, name: &str, password: &str) -> bool {
    let resp = app
        .post_form_by(
            &client(),
            "/login",
            &[("username", name), ("password", password)],
        )
        .await;
    resp.status() == StatusCode::SEE_OTHER && location(&resp) == "/cabinet"
}

async fn accounts_move_between_wickets(from: TestApp, to: TestApp) {
    from.register("ann", PASSWORD).await;
    let on = enable(&from, step_now()).await;
    from.register_by(&client(), "ben", PASSWORD).await;
    run(&from, &["user", "group", "ben", "add", "team"]);

    let plain = exported(&from, &[]);
    assert_eq!(plain.len(), 2);
    let ann = plain.iter().find(|l| l["name"] == "ann").unwrap();
    assert!(
        ann["password_hash"]
            .as_str()
            .unwrap()
            .starts_with("$scrypt$")
    );
    assert!(
        ann.get("two_step").is_none(),
        "no secrets without --with-secrets: {ann}"
    );
    let secret: String = on.key.iter().map(|b| format!("{b:02x}")).collect();
    let with = exported(&from, &["--with-secrets"]);
    let ann_with = with.iter().find(|l| l["name"] == "ann").unwrap();
    assert!(
        ann_with["two_step"]["key"].as_str().unwrap().len() >= 16,
        "{ann_with}"
    );
    assert!(
        !ann_with.to_string().contains(&secret),
        "base32, as apps take it"
    );

    let text: String = with.iter().map(|l| format!("{l}\n")).collect();
    let out = said(&import(&to, "accounts.jsonl", &text, &[]));
    assert!(out.contains("imported 2 account(s)"), "{out}");
    // The same ids (the apps' `sub`), groups, and second factor.
    let moved = exported(&to, &[]);
    for line in &plain {
        let there = moved.iter().find(|l| l["name"] == line["name"]).unwrap();
        assert_eq!(there["id"], line["id"]);
        assert_eq!(there["groups"], line["groups"]);
    }
    assert!(logs_in(&to, "ben", PASSWORD).await);
    let browser = client();
    let first = to
        .post_form_by(
            &browser,
            "/login",
            &[("username", "ann"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(first.status(), StatusCode::OK, "ann is asked for her code");
    let code = totp(&on.key, step_now() + 1, 6);
    assert_see_other(
        &to.post_form_by(&browser, "/login/code", &[("code", &code)])
            .await,
        "/cabinet",
    );
    // Once more: existing names are left alone, and said so.
    let out = said(&import(&to, "accounts.jsonl", &text, &[]));
    assert!(
        out.contains("imported 0 account(s)") && out.contains("line 1: ann already exists"),
        "{out}"
    );
}

#[tokio::test]
async fn accounts_move_from_files_to_redis() {
    let (to, _redis) = on_redis(|_| {}).await;
    accounts_move_between_wickets(spawn_app().await, to).await;
}

#[tokio::test]
async fn accounts_move_from_redis_to_files() {
    let (from, _redis) = on_redis(|_| {}).await;
    accounts_move_between_wickets(from, spawn_app().await).await;
}

/// `name:hash` as Debian's `htpasswd -nbB` makes it (bcrypt at cost 5, quick).
fn htpasswd_line(name: &str, password: &str) -> String {
    let out = Command::new("htpasswd")
        .args(["-nbB", "-C", "5", name, password])
        .output()
        .expect("htpasswd (apache2-utils) is installed");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// An argon2id hash with Authelia's default parameters, made by argon2-cffi.
fn argon2id(password: &str) -> String {
    let script = "import argon2, sys\n\
        h = argon2.PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4, hash_len=32, salt_len=16)\n\
        print(h.hash(sys.argv[1]))";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script, password])
        .output()
        .expect("python3-argon2 is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn members_move_in_from_htpasswd(app: TestApp) {
    // A password today's rules refuse (one of the most common), as old systems allowed.
    let dana = "password1";
    assert!(wicket::domain::Password::parse(dana.into(), "dana").is_err());
    let file = format!(
        "# the old intranet\n{}\n\n{}\n",
        htpasswd_line("dana", dana),
        htpasswd_line("eli", PASSWORD)
    );
    assert!(file.contains(":$2y$05$"), "{file}");
    // Unknown formats (MD5, SHA-1) refuse the whole file, by line, never quoting a hash.
    let md5 = "frank:$apr1$xyz$0123456789abcdefghijkl";
    let sha = "gina:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=";
    let refused = import(
        &app,
        "bad.htpasswd",
        &format!("{file}{md5}\n{sha}\n"),
        &["--htpasswd"],
    );
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("bad.htpasswd:5: frank: an unknown hash format"),
        "{err}"
    );
    assert!(
        err.contains("bad.htpasswd:6: gina: an unknown hash format"),
        "{err}"
    );
    assert!(
        !err.contains("$apr1$") && !err.contains("{SHA}") && !err.contains("$2y$"),
        "{err}"
    );
    assert!(
        run(&app, &["user", "list"]).trim().is_empty(),
        "nothing imported"
    );

    let out = said(&import(&app, "users.htpasswd", &file, &["--htpasswd"]));
    assert!(out.contains("imported 2 account(s)"), "{out}");
    assert!(!out.contains("$2y$"), "{out}");
    assert!(
        stored_hash(&app, "dana").starts_with("$2y$05$"),
        "kept until the next login"
    );
    assert!(!logs_in(&app, "dana", "not dana's password").await);
    assert!(
        stored_hash(&app, "dana").starts_with("$2y$"),
        "a wrong password changes nothing"
    );
    // A password weaker than today's rules still logs in, and is rehashed all the same.
    assert!(logs_in(&app, "dana", dana).await);
    assert!(
        stored_hash(&app, "dana").starts_with("$scrypt$"),
        "rehashed at login"
    );
    assert!(
        logs_in(&app, "dana", dana).await,
        "and the scrypt hash verifies"
    );
    assert!(logs_in(&app, "eli", PASSWORD).await);
}

#[tokio::test]
async fn members_move_in_from_htpasswd_on_files() {
    members_move_in_from_htpasswd(spawn_app().await).await;
}

#[tokio::test]
async fn members_move_in_from_htpasswd_on_redis() {
    let (app, _redis) = on_redis(|_| {}).await;
    members_move_in_from_htpasswd(app).await;
}

async fn members_move_in_from_authelia(app: TestApp) {
    let yaml = format!(
        "---\n\
         users:\n\
         \x20 fay:\n\
         \x20   disabled: false\n\
         \x20   displayname: \"Fay Doe\"\n\
         \x20   password: \"{fay}\"\n\
         \x20   email: fay@example.com\n\
         \x20   groups:\n\
         \x20     - admins\n\
         \x20     - dev\n\
         \x20 gus:\n\
         \x20   disabled: true\n\
         \x20   displayname: \"Gus\"\n\
         \x20   password: \"{gus}\"\n\
         \x20   email: gus@example.com\n\
         ...\n",
        fay = argon2id(PASSWORD),
        gus = argon2id(PASSWORD),
    );
    let bad = yaml.replacen("$argon2id$", "$argon2d$", 1);
    let refused = import(&app, "bad.yml", &bad, &["--authelia"]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("bad.yml:6: fay: an unknown hash format"),
        "{err}"
    );
    assert!(!err.contains("$argon2"), "{err}");
    assert!(run(&app, &["user", "list"]).trim().is_empty());

    let out = said(&import(&app, "users_database.yml", &yaml, &["--authelia"]));
    assert!(out.contains("imported 2 account(s)"), "{out}");
    let fay: Value = serde_json::from_str(&run(&app, &["user", "show", "fay", "--json"])).unwrap();
    assert_eq!(fay["groups"], serde_json::json!(["admins", "dev"]));
    assert_eq!(fay["email"], "fay@example.com");
    assert_eq!(fay["email_confirmed"], true);
    assert!(stored_hash(&app, "fay").starts_with("$argon2id$v=19$m=65536,t=3,p=4$"));
    assert!(logs_in(&app, "fay", PASSWORD).await);
    assert!(
        stored_hash(&app, "fay").starts_with("$scrypt$"),
        "rehashed at login"
    );
    let resp = app
        .post_form_by(
            &client(),
            "/login",
            &[("username", "gus"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "disabled in Authelia, disabled here"
    );
}

#[tokio::test]
async fn members_move_in_from_authelia_on_files() {
    members_move_in_from_authelia(spawn_app().await).await;
}

#[tokio::test]
async fn members_move_in_from_authelia_on_redis() {
    let (app, _redis) = on_redis(|_| {}).await;
    members_move_in_from_authelia(app).await;
}

#[tokio::test]
async fn an_export_refuses_nothing_it_wrote_and_an_import_refuses_bad_lines_by_number() {
    let app = spawn_app().await;
    let text = "{\"name\":\"x\",\"password_hash\":\"$scrypt$ln=4,r=8,p=1$c2FsdA$aGFzaA\"}\n\
                not json\n\
                {\"name\":\"ivy\",\"password_hash\":\"x\",\"groups\":\"$2y$05$c2VjcmV0c2VjcmV0\"}\n\
                {\"name\":\"hal\",\"password_hash\":\"$scrypt$ln=4,r=8,p=1$c2FsdA$aGFzaA\",\"colour\":1}\n";
    let refused = import(&app, "bad.jsonl", text, &[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        err.contains("bad.jsonl:1: username: Usernames are 3 to 32 characters long."),
        "{err}"
    );
    assert!(err.contains("bad.jsonl:2: not a line of JSON"), "{err}");
    assert!(err.contains("bad.jsonl:3: not an export line"), "{err}");
    assert!(err.contains("bad.jsonl:4: not an export line"), "{err}");
    assert!(
        !err.contains("aGFzaA") && !err.contains("c2VjcmV0"),
        "{err}"
    );
}

#[tokio::test]
async fn an_import_never_gives_an_account_an_id_another_one_has() {
    let app = spawn_app().await;
    app.register("ann", PASSWORD).await;
    let ann = &exported(&app, &[])[0];
    let mut twin = ann.clone();
    twin["name"] = "anna".into();
    let out = said(&import(&app, "twin.jsonl", &format!("{twin}\n"), &[]));
    assert!(
        out.contains("imported 0 account(s)") && out.contains("anna: another account has this id"),
        "{out}"
    );
    let mut other = twin.clone();
    other["name"] = "bob".into();
    let both = format!("{twin}\n{other}\n").replace(ann["id"].as_str().unwrap(), &"c".repeat(32));
    let refused = import(&app, "twins.jsonl", &both, &[]);
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("twins.jsonl:2: bob: an account id given twice")
    );
}

#[tokio::test]
async fn an_export_without_secrets_holds_no_passkey() {
    let (app, _key, _handle) = crate::passkeys::member_with_passkey("pia", "Pia's key").await;
    let plain = exported(&app, &[]);
    assert!(
        plain[0].get("passkeys").is_none() && plain[0].get("passkey_handle").is_none(),
        "{}",
        plain[0]
    );
    let with = exported(&app, &["--with-secrets"]);
    assert_eq!(with[0]["passkeys"][0]["name"], "Pia's key");
    assert!(with[0]["passkey_handle"].is_string());
}
