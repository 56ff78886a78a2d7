//! `wicket backup` and `wicket restore`, on both stores: a populated store comes back
//! whole in a new one (the same people log in with the same passwords, codes and
//! passkeys), a backup taken under a write load holds every registration acknowledged
//! before it began, and a restore refuses what it should.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::Value;
use wicket::config::Config;
use wicket::store::StoreKind;

use crate::cli::said;
use crate::helpers::redis::RedisServer;
use crate::helpers::smtp::free_port;
use crate::helpers::totp::{enable, step_now, totp};
use crate::helpers::*;
use crate::passkeys::{SoftKey, add, log_in_with, passkey_app};
use crate::toolbox::run;

/// Where a restored Wicket lives: its settings, and the directory that holds them.
struct Target {
    config: Config,
    _dir: tempfile::TempDir,
}

/// Settings for a new, empty Wicket (files, or `redis` under a new prefix) whose site
/// is `http://localhost:PORT`.
fn new_target(redis: Option<&RedisServer>) -> Target {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    let port = free_port();
    config.addr = format!("127.0.0.1:{port}");
    config.public_url = Some(format!("http://localhost:{port}").parse().unwrap());
    if let Some(redis) = redis {
        config.store = StoreKind::Redis(redis.url());
        // A prefix of its own: several targets share one Redis.
        static TARGETS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = TARGETS.fetch_add(1, Ordering::Relaxed);
        config.store_prefix = format!("restored{n}");
    }
    Target { config, _dir: dir }
}

/// `wicket ARGS…` with `config`'s store and key (no server needed).
fn wicket_on(config: &Config, args: &[&str]) -> std::process::Output {
    wicket_with(config, args, "")
}

/// Starts Wicket on `target`'s settings.
async fn serve(target: &Target) -> TestApp {
    let config = target.config.clone();
    let mut app = spawn_app_with(move |c| *c = config).await;
    app.base = target
        .config
        .public_url
        .as_ref()
        .unwrap()
        .origin()
        .to_owned();
    app
}

fn path(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

async fn a_backup_restores_whole(redis: Option<RedisServer>) {
    let source_redis = redis.as_ref().map(|r| r.url());
    let app = passkey_app(move |c| {
        if let Some(url) = source_redis {
            c.store = StoreKind::Redis(url);
            c.store_prefix = "source".into();
        }
    })
    .await;
    // ann: a password, two-step login and a passkey; logged in (her browser is the app's).
    app.register("ann", PASSWORD).await;
    let mut key = SoftKey::new(&app);
    let handle = add(&app, &key, "Ann's key").await;
    let on = enable(&app, step_now()).await;
    // ben: a password and a group.
    app.register_by(&client(), "ben", PASSWORD).await;
    run(&app, &["user", "group", "ben", "add", "team"]);
    let ids: Vec<Value> = ["ann", "ben"]
        .iter()
        .map(|n| {
            serde_json::from_str::<Value>(&run(&app, &["user", "show", n, "--json"])).unwrap()["id"]
                .clone()
        })
        .collect();

    let backups = tempfile::tempdir().unwrap();
    let backup = backups.path().join("monday");
    let out = run(&app, &["backup", path(&backup), "--sessions"]);
    assert!(
        out.contains("WARNING: This backup holds the server's secret key"),
        "{out}"
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["wicket_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["counts"]["users"], 2, "{manifest}");
    assert_eq!(manifest["counts"]["sessions"], 2, "{manifest}");
    assert!(
        manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["sha256"].as_str().unwrap().len() == 64)
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&backup).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "owner-only: it holds the key");
    let mut pending = vec![backup.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let mode =
                std::os::unix::fs::PermissionsExt::mode(&entry.metadata().unwrap().permissions());
            assert_eq!(mode & 0o077, 0, "{} is owner-only", entry.path().display());
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            }
        }
    }

    let target = new_target(redis.as_ref());
    let restored = wicket_on(&target.config, &["restore", path(&backup)]);
    let out = said(&restored);
    assert!(out.contains("restored the backup of"), "{out}");
    let new = serve(&target).await;

    // The same people, the same ids, the same groups.
    for (name, id) in ["ann", "ben"].iter().zip(&ids) {
        let json: Value =
            serde_json::from_str(&run(&new, &["user", "show", name, "--json"])).unwrap();
        assert_eq!(&json["id"], id, "{name}");
    }
    assert!(run(&new, &["user", "show", "ben"]).contains("groups:               team"));
    // ann's browser is still logged in (sessions were backed up), under the same key.
    assert_eq!(
        new.get_by(&app.client, "/cabinet").await.status(),
        StatusCode::OK
    );
    // The password and the next code from her app (its key was sealed under the
    // restored secret key).
    let browser = client();
    let first = new
        .post_form_by(
            &browser,
            "/login",
            &[("username", "ann"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(first.status(), StatusCode::OK, "the code form");
    let code = totp(&on.key, step_now() + 1, 6);
    let second = new
        .post_form_by(&browser, "/login/code", &[("code", &code)])
        .await;
    assert_see_other(&second, "/cabinet");
    // A recovery code (hashed under the restored key).
    let browser = client();
    new.post_form_by(
        &browser,
        "/login",
        &[("username", "ann"), ("password", PASSWORD)],
    )
    .await;
    let third = new
        .post_form_by(&browser, "/login/code", &[("code", &on.recovery[0])])
        .await;
    assert_see_other(&third, "/account?done=recovery");
    // Her passkey.
    key.origin = new.base.clone();
    assert_see_other(&log_in_with(&new, &mut key, &handle).await, "/cabinet");
    assert_see_other(&new.login("ben", PASSWORD).await, "/cabinet");

    // A store that is not empty is refused, unless --force (which replaces it).
    let again = wicket_on(&target.config, &["restore", path(&backup)]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("the store is not empty"));
    new.register_by(&client(), "cid", PASSWORD).await;
    said(&wicket_on(
        &target.config,
        &["restore", path(&backup), "--force"],
    ));
    let listed = run(&new, &["user", "list"]);
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        ["ann", "ben"],
        "cid was replaced"
    );

    // A damaged backup restores nothing.
    let users = backup.join(if redis.is_some() {
        "redis.jsonl"
    } else {
        "data/users/ben.json"
    });
    let mut bytes = std::fs::read(&users).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    std::fs::write(&users, bytes).unwrap();
    let empty = new_target(redis.as_ref());
    let damaged = wicket_on(&empty.config, &["restore", path(&backup)]);
    assert!(!damaged.status.success());
    let said = String::from_utf8_lossy(&damaged.stderr);
    assert!(said.contains("does not match the manifest"), "{said}");
    let listed =
        String::from_utf8_lossy(&wicket_on(&empty.config, &["user", "list"]).stdout).into_owned();
    assert!(listed.trim().is_empty(), "nothing restored: {listed}");
}

#[tokio::test]
async fn a_backup_restores_whole_on_files() {
    a_backup_restores_whole(None).await;
}

#[tokio::test]
async fn a_backup_restores_whole_on_redis() {
    a_backup_restores_whole(Some(RedisServer::start())).await;
}

/// Whether `name` logs in with the password, from a new browser.
async fn logs_in(app: &TestApp, name: &str) -> bool {
    let form = [("username", name), ("password", PASSWORD)];
    let resp = app.post_form_by(&client(), "/login", &form).await;
    resp.status() == StatusCode::SEE_OTHER && location(&resp) == "/cabinet"
}

/// Registers and logs in new members, one after another, until `stop`; each name
/// whose registration was acknowledged goes into `acked`, and `count` says how many.
async fn write_load(
    app: Arc<TestApp>,
    acked: Arc<Mutex<Vec<String>>>,
    count: tokio::sync::watch::Sender<usize>,
    stop: Arc<AtomicBool>,
) {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let name = format!("load{n}");
        let resp = app.register_by(&client(), &name, PASSWORD).await;
        if resp.status() == StatusCode::SEE_OTHER {
            let mut acked = acked.lock().unwrap();
            acked.push(name.clone());
            count.send_replace(acked.len());
        }
        assert!(logs_in(&app, &name).await, "{name}");
    }
}

async fn a_backup_under_write_load_holds_every_acknowledged_registration(
    redis: Option<RedisServer>,
) {
    let url = redis.as_ref().map(|r| r.url());
    let app = Arc::new(
        spawn_app_with(move |c| {
            if let Some(url) = url {
                c.store = StoreKind::Redis(url);
                c.store_prefix = "busy".into();
            }
        })
        .await,
    );
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let (count, mut counted) = tokio::sync::watch::channel(0);
    let load = tokio::spawn(write_load(app.clone(), acked.clone(), count, stop.clone()));
    // The load under way: some registrations acknowledged.
    counted.wait_for(|&n| n >= 20).await.unwrap();
    let backups = tempfile::tempdir().unwrap();
    let backup = backups.path().join("busy");
    let before: Vec<String> = acked.lock().unwrap().clone();
    let (runner, dir) = (app.clone(), backup.clone());
    let out = tokio::task::spawn_blocking(move || wicket(&runner, &["backup", path(&dir)], ""))
        .await
        .unwrap();
    let during = acked.lock().unwrap().len() - before.len();
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    said(&out);
    assert!(during > 0, "registrations went on while the backup ran");

    let target = new_target(redis.as_ref());
    said(&wicket_on(&target.config, &["restore", path(&backup)]));
    let new = serve(&target).await;
    for name in &before {
        assert!(
            logs_in(&new, name).await,
            "{name} was acknowledged before the backup"
        );
    }
    // Whatever else it holds is whole: every account in it logs in.
    let listed = run(&new, &["user", "list"]);
    for name in listed.lines() {
        assert!(logs_in(&new, name).await, "{name}");
    }
    assert!(listed.lines().count() >= before.len());
}

#[tokio::test]
async fn a_backup_under_write_load_holds_every_acknowledged_registration_on_files() {
    a_backup_under_write_load_holds_every_acknowledged_registration(None).await;
}

#[tokio::test]
async fn a_backup_under_write_load_holds_every_acknowledged_registration_on_redis() {
    a_backup_under_write_load_holds_every_acknowledged_registration(Some(RedisServer::start()))
        .await;
}

#[tokio::test]
async fn a_manifest_naming_a_file_outside_its_backup_restores_nothing() {
    let app = spawn_app().await;
    app.register("ann", PASSWORD).await;
    let backups = tempfile::tempdir().unwrap();
    let backup = backups.path().join("b");
    run(&app, &["backup", path(&backup)]);
    // A file beside the backup, named in its manifest with the right checksum.
    let outside = backups.path().join("planted");
    std::fs::write(&outside, b"{}").unwrap();
    let manifest_path = backup.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest["files"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "path": "data/../../planted",
            "bytes": 2,
            "sha256": "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        }));
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let target = new_target(None);
    let refused = wicket_on(&target.config, &["restore", path(&backup)]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("is not a path inside the backup"), "{said}");
    assert!(
        !target.config.data_dir.join("users").exists(),
        "nothing written"
    );
}

/// Rewrites `file`'s entry in the manifest of `backup` to match what it holds now.
fn resum(backup: &Path, file: &str) {
    use sha2::Digest;
    let bytes = std::fs::read(backup.join(file)).unwrap();
    let manifest_path = backup.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    for entry in manifest["files"].as_array_mut().unwrap() {
        if entry["path"] == file {
            entry["bytes"] = bytes.len().into();
            let sum: String = sha2::Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            entry["sha256"] = sum.into();
        }
    }
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
}

#[tokio::test]
async fn a_redis_backup_holds_this_sites_keys_only() {
    let redis = RedisServer::start();
    let url = redis.url();
    let (ours, theirs) = (url.clone(), url);
    let app = spawn_app_with(move |c| {
        c.store = StoreKind::Redis(ours);
        c.store_prefix = "site".into();
    })
    .await;
    // Another site on the same Redis, whose prefix begins with this one's.
    let other = spawn_app_with(move |c| {
        c.store = StoreKind::Redis(theirs);
        c.store_prefix = "site:other".into();
    })
    .await;
    app.register("ann", PASSWORD).await;
    assert_see_other(&other.register("zed", PASSWORD).await, "/cabinet");

    let backups = tempfile::tempdir().unwrap();
    let backup = backups.path().join("b");
    run(&app, &["backup", path(&backup)]);
    let lines = std::fs::read_to_string(backup.join("redis.jsonl")).unwrap();
    assert!(
        lines.contains("user:ann") && !lines.contains("zed"),
        "{lines}"
    );
    // --force clears this site only.
    app.register_by(&client(), "cid", PASSWORD).await;
    said(&wicket(&app, &["restore", path(&backup), "--force"], ""));
    assert_eq!(run(&app, &["user", "list"]).trim(), "ann");
    assert_eq!(run(&other, &["user", "list"]).trim(), "zed");

    // A key of a kind no backup holds (a planted throttle count) refuses the file.
    let planted = format!("{lines}{}\n", r#"{"key":"count:account:ann","value":"99"}"#);
    std::fs::write(backup.join("redis.jsonl"), planted).unwrap();
    resum(&backup, "redis.jsonl");
    let target = new_target(Some(&redis));
    let refused = wicket_on(&target.config, &["restore", path(&backup)]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("not a kind of key a backup holds: nothing was restored"),
        "{err}"
    );
    let listed = wicket_on(&target.config, &["user", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).trim().is_empty());
}
