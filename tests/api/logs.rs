//! What the server writes to its log: enough to follow a request, never a secret.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::*;
use crate::redis::RedisServer;

/// The `wicket` binary on Redis, its log (stdout and stderr) collected as it runs.
struct Server {
    child: std::process::Child,
    log: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    base: String,
}

impl Server {
    fn start(dir: &std::path::Path, store: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wicket"))
            .args([
                "--addr",
                "127.0.0.1:0",
                "--scrypt-log-n",
                "4",
                "--store",
                store,
            ])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--sessions-dir")
            .arg(dir.join("sessions"))
            .arg("--static-dir")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/static"))
            .env("RUST_LOG", "info,wicket=trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let mut log = log.lock().unwrap();
                    log.push_str(&line.unwrap());
                    log.push('\n');
                }
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let base = loop {
            let text = log.lock().unwrap().clone();
            if let Some(at) = text.find("listening on http://") {
                let rest = &text[at + "listening on ".len()..];
                break rest.split_whitespace().next().unwrap().to_owned();
            }
            assert!(Instant::now() < deadline, "no listening line:\n{text}");
            std::thread::sleep(Duration::from_millis(10));
        };
        Self {
            child,
            log,
            readers,
            base,
        }
    }

    /// Stops the server and returns everything it logged.
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().unwrap();
        // The pipes close with the process: the readers end once they have read it all.
        for reader in std::mem::take(&mut self.readers) {
            reader.join().unwrap();
        }
        self.log.lock().unwrap().clone()
    }
}

/// A test that fails before `stop` still stops the server.
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let page = client.get(format!("{base}/")).send().await.unwrap();
    let page = if page.status() == StatusCode::OK {
        page.text().await.unwrap()
    } else {
        let logout = client.get(format!("{base}/logout")).send().await.unwrap();
        logout.text().await.unwrap()
    };
    let token = hidden_csrf(&page);
    let mut form = form.to_vec();
    form.push(("csrf", &token));
    client
        .post(format!("{base}{path}"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn logs_follow_each_request_but_never_show_passwords_keys_cookies_or_redis_urls() {
    const REDIS_PASSWORD: &str = "redis-secret-f00d";
    const WRONG: &str = "wrong-guess-c0ffee";
    const TYPED_IN_NAME: &str = "name-field-password-beef";
    let mut redis = RedisServer::start_with_password(REDIS_PASSWORD);
    let url = format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{}/0", redis.port);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &url);
    let base = server.base.clone();
    let browser = client();

    let form = [
        ("username", "alice"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    let registered = post(&browser, &base, "/register/", &form).await;
    assert_see_other(&registered, "/cabinet");
    let cookie = session_cookie(&registered).unwrap();
    post(&browser, &base, "/logout", &[]).await;
    let failed = post(
        &browser,
        &base,
        "/login",
        &[("username", "alice"), ("password", WRONG)],
    )
    .await;
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    post(
        &browser,
        &base,
        "/login",
        &[("username", TYPED_IN_NAME), ("password", WRONG)],
    )
    .await;
    let ok = post(
        &browser,
        &base,
        "/login",
        &[("username", "alice"), ("password", PASSWORD)],
    )
    .await;
    let second = session_cookie(&ok).unwrap();
    let csrf_cookie = browser.get(format!("{base}/cabinet")).send().await.unwrap();
    assert_eq!(csrf_cookie.status(), StatusCode::OK);
    // An outage: the error line carries its cause, never the URL.
    redis.stop();
    let down = browser.get(format!("{base}/cabinet")).send().await.unwrap();
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);

    let log = server.stop();
    let key = std::fs::read_to_string(dir.path().join("data/secret.key")).unwrap();
    let value = |c: &str| c.split_once('=').unwrap().1.to_owned();
    let (first_id, first_mac) = value(&cookie)
        .split_once('.')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    let (second_id, second_mac) = value(&second)
        .split_once('.')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    for secret in [
        PASSWORD,
        WRONG,
        key.trim(),
        &key.trim()[..16],
        &first_id,
        &first_mac,
        &second_id,
        &second_mac,
        REDIS_PASSWORD,
        "redis://",
        "$scrypt$",
    ] {
        assert!(!log.contains(secret), "the log shows {secret:?}:\n{log}");
    }
    // It did log: one line per request with an id, auth events inside their request's span.
    for expected in [
        "logged in",
        "password check failed",
        "logged out",
        "store unavailable",
        "request{id=",
    ] {
        assert!(log.contains(expected), "no {expected:?} in:\n{log}");
    }
    let failed_line = log
        .lines()
        .find(|l| l.contains("password check failed"))
        .unwrap();
    assert!(
        failed_line.contains("path=/login") && failed_line.contains("id="),
        "{failed_line}"
    );
}
