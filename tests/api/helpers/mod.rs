//! What every black-box test starts from: an app on throwaway directories and a
//! browser-like client, a method per kind of request, and the real components some
//! tests need (`redis`, `smtp`, a `totp` app, the real `binary`), each started on a
//! free loopback port;
//! and stores that count their reads (`counting`).

pub mod binary;
pub mod counting;
pub mod redis;
pub mod smtp;
pub mod totp;

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{COOKIE, HeaderMap, SET_COOKIE};
use reqwest::{Client, Response, StatusCode};
use tempfile::TempDir;
use tokio::sync::oneshot;
use wicket::app::Application;
use wicket::config::Config;
use wicket::store::Stores;

/// A running Wicket and a browser-like client with its own cookie jar.
pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub config: Config,
    pub state: wicket::web::AppState,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: std::sync::Arc<TempDir>,
}

/// The settings every test starts from: the binary's defaults, with port 0, temp
/// dirs and a cheap scrypt.
pub fn test_config(dir: &Path) -> Config {
    use clap::Parser;
    let mut config = wicket::config::Cli::try_parse_from(["wicket"])
        .expect("the defaults parse")
        .config;
    config.addr = "127.0.0.1:0".into();
    config.sessions_dir = dir.join("sessions");
    config.data_dir = dir.join("data");
    config.static_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("static");
    config.scrypt_log_n = 4;
    config.scrypt_concurrency = Some(4);
    // The tests register many users from 127.0.0.1; the limit has its own tests.
    config.throttle_register = "off".parse().unwrap();
    config.sweep_interval = Duration::from_secs(3600);
    config
}

/// Starts a fresh app.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a fresh app with some settings changed.
pub async fn spawn_app_with(change: impl FnOnce(&mut Config)) -> TestApp {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let mut config = test_config(dir.path());
    change(&mut config);
    start(config, dir).await
}

/// Starts a fresh app on its real stores as wrapped by `wrap` (to stage races and faults).
pub async fn spawn_app_wrapping(
    change: impl FnOnce(&mut Config),
    wrap: impl FnOnce(Stores) -> Stores,
) -> TestApp {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let mut config = test_config(dir.path());
    change(&mut config);
    let stores = wrap(wicket::app::open_stores(&config).unwrap());
    let app = Application::build_with(&config, stores)
        .await
        .expect("app builds");
    serve(app, config, dir)
}

async fn start(config: Config, dir: std::sync::Arc<TempDir>) -> TestApp {
    let app = Application::build(&config).await.expect("app builds");
    serve(app, config, dir)
}

fn serve(app: Application, config: Config, dir: std::sync::Arc<TempDir>) -> TestApp {
    let base = format!("http://{}", app.addr());
    let state = app.state().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        base,
        client: client(),
        config,
        state,
        stop: Some(stop),
        server: Some(server),
        _dir: dir,
    }
}

/// A client that keeps cookies but never follows redirects, so tests see each hop.
pub fn client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl TestApp {
    /// Stops this server (letting it finish) and starts another on the same dirs.
    pub async fn restart(mut self) -> TestApp {
        self.stop.take().unwrap().send(()).unwrap();
        self.server.take().unwrap().await.unwrap().unwrap();
        let dir = self._dir.clone();
        start(self.config.clone(), dir).await
    }

    /// Waits until the app's outbox has handed over every message (sent or given up)
    /// and no request's work may still queue one: only then is a count of mail final.
    pub async fn mail_settled(&self) {
        let mailer = self.state.mail.as_ref().expect("an app that sends mail");
        tokio::time::timeout(Duration::from_secs(30), mailer.outbox.idle())
            .await
            .expect("the outbox settles within 30 s");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// A GET of `path` by `browser` (its own cookie jar).
    pub async fn get_by(&self, browser: &Client, path: &str) -> Response {
        browser.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_hx(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .header("HX-Request", "true")
            .send()
            .await
            .unwrap()
    }

    /// The CSRF token this client's forms carry, read from a page as a browser would.
    pub async fn csrf_token(&self) -> String {
        csrf_token_of(&self.client, self).await
    }

    /// POSTs a form with this client's CSRF token, as a browser would.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.post_form_as(&self.client, path, form, false).await
    }

    /// The same, as htmx sends it.
    pub async fn post_form_hx(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.post_form_as(&self.client, path, form, true).await
    }

    /// POSTs a form as another browser (`client`), with that browser's CSRF token.
    pub async fn post_form_by(
        &self,
        client: &Client,
        path: &str,
        form: &[(&str, &str)],
    ) -> Response {
        self.post_form_as(client, path, form, false).await
    }

    /// POSTs a form as another browser (`client`), as htmx sends it.
    pub async fn post_form_as_hx(
        &self,
        client: &Client,
        path: &str,
        form: &[(&str, &str)],
    ) -> Response {
        self.post_form_as(client, path, form, true).await
    }

    async fn post_form_as(
        &self,
        client: &Client,
        path: &str,
        form: &[(&str, &str)],
        hx: bool,
    ) -> Response {
        let token = csrf_token_of(client, self).await;
        let mut form = form.to_vec();
        form.push(("csrf", &token));
        let mut request = client.post(self.url(path)).form(&form);
        if hx {
            request = request.header("HX-Request", "true");
        }
        request.send().await.unwrap()
    }

    pub async fn register(&self, name: &str, password: &str) -> Response {
        self.post_form(
            "/register/",
            &[
                ("username", name),
                ("password", password),
                ("confirm", password),
            ],
        )
        .await
    }

    /// Registers `name` from another browser than the app's own.
    pub async fn register_by(&self, client: &Client, name: &str, password: &str) -> Response {
        self.post_form_by(
            client,
            "/register/",
            &[
                ("username", name),
                ("password", password),
                ("confirm", password),
            ],
        )
        .await
    }

    /// Logs `name` in from another browser (`client`) and expects the cabinet.
    pub async fn login_by(&self, client: &Client, name: &str) {
        self.login_by_with(client, name, PASSWORD).await;
    }

    /// [`Self::login_by`] with `password`.
    pub async fn login_by_with(&self, client: &Client, name: &str, password: &str) {
        let form = [("username", name), ("password", password)];
        let resp = self.post_form_by(client, "/login", &form).await;
        assert_see_other(&resp, "/cabinet");
    }

    pub async fn login(&self, name: &str, password: &str) -> Response {
        self.post_form("/login", &[("username", name), ("password", password)])
            .await
    }

    pub async fn logout(&self) -> Response {
        self.post_form("/logout", &[]).await
    }

    /// A request with exactly this `Cookie` header and no jar.
    pub async fn get_with_cookie(&self, path: &str, cookie: &str) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, cookie.parse().unwrap());
        client()
            .get(self.url(path))
            .headers(headers)
            .send()
            .await
            .unwrap()
    }

    /// The live session files (`<id>.json`; the sweep leaves `<id>.ended` behind).
    pub fn session_files(&self) -> Vec<PathBuf> {
        let mut files = files_in(&self.config.sessions_dir);
        files.retain(|f| f.extension().is_some_and(|e| e == "json"));
        files
    }

    pub fn user_files(&self) -> Vec<PathBuf> {
        files_in(&self.config.data_dir.join("users"))
    }
}

/// Reads the hidden `csrf` field from the login form (or, when logged in, the
/// logout confirmation) as `client` sees it.
pub async fn csrf_token_of(client: &Client, app: &TestApp) -> String {
    for path in ["/", "/logout"] {
        let resp = client.get(app.url(path)).send().await.unwrap();
        if resp.status() == StatusCode::OK {
            return hidden_csrf(&resp.text().await.unwrap());
        }
    }
    panic!("no page offered a form");
}

/// The value of `<input type="hidden" name="csrf" value="...">` in `html`.
pub fn hidden_csrf(html: &str) -> String {
    hidden_values(html, "csrf")
        .into_iter()
        .next()
        .expect("a csrf field")
}

/// The values of every `<input … name="{name}" value="...">` in `html`, in order.
pub fn hidden_values(html: &str, name: &str) -> Vec<String> {
    html.split(&format!(r#"name="{name}" value=""#))
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// The session file a `wicket_session=<id>.<mac>` cookie names.
pub fn session_file(app: &TestApp, cookie: &str) -> PathBuf {
    let id = cookie
        .trim_start_matches("wicket_session=")
        .split('.')
        .next()
        .unwrap();
    app.config.sessions_dir.join(format!("{id}.json"))
}

/// Sets a field of a session file to a time `ago` in the past.
pub fn set_session_time(file: &Path, field: &str, ago: time::Duration) {
    let text = std::fs::read_to_string(file).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let then = (time::OffsetDateTime::now_utc() - ago)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    json[field] = serde_json::Value::String(then);
    std::fs::write(file, serde_json::to_string(&json).unwrap()).unwrap();
}

/// Sets a file's mtime `ago` in the past.
pub fn age_file(path: &Path, ago: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(std::time::SystemTime::now() - ago)
        .unwrap();
}

/// Makes `path` immutable (`chattr +i`, which stops even root) until dropped.
pub struct Immutable(PathBuf);

impl Immutable {
    /// `None` where the file system or the user cannot do that: then `test` (its
    /// name as cargo prints it) is reported as skipped ([`skipped`]) and the caller
    /// returns.
    pub fn make(path: &Path, test: &str) -> Option<Self> {
        let done = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if done {
            Some(Self(path.to_owned()))
        } else {
            skipped(test, "chattr +i not permitted here");
            None
        }
    }
}

/// Reports `test` as not run, where the test command shows it: the line
/// `SKIPPED: <test>: <reason>` is appended to the file `WICKET_TEST_SKIPS` names
/// (test.sh sets it and prints the file at the end). Without that variable nobody
/// would see the line (cargo hides a passing test's output), so the test fails: a
/// test that cannot run must never look like one that passed.
pub fn skipped(test: &str, reason: &str) {
    use std::io::Write;
    let line = format!("SKIPPED: {test}: {reason}");
    eprintln!("{line}");
    let Some(file) = std::env::var_os("WICKET_TEST_SKIPS") else {
        panic!("{line}; set WICKET_TEST_SKIPS to a file to record skips there (test.sh does)");
    };
    let mut skips = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .expect("WICKET_TEST_SKIPS names a file that can be written");
    // One write of the whole line: test binaries append to the file at once.
    skips.write_all(format!("{line}\n").as_bytes()).unwrap();
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

/// The `wicket_session=...` pair a response sets, e.g. to replay it elsewhere.
pub fn session_cookie(resp: &Response) -> Option<String> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("wicket_session="))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

/// The full `Set-Cookie` header for the session cookie.
pub fn session_set_cookie(resp: &Response) -> Option<String> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("wicket_session="))
        .map(str::to_owned)
}

pub fn location(resp: &Response) -> &str {
    resp.headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .unwrap()
}

pub fn assert_see_other(resp: &Response, to: &str) {
    assert_eq!(
        resp.status(),
        StatusCode::SEE_OTHER,
        "expected a 303 to {to}"
    );
    assert_eq!(location(resp), to);
}

pub fn assert_hx_redirect(resp: &Response, to: &str) {
    assert!(
        resp.status().is_success(),
        "htmx redirects are 2xx, got {}",
        resp.status()
    );
    assert_eq!(
        resp.headers()
            .get("hx-redirect")
            .expect("HX-Redirect")
            .to_str()
            .unwrap(),
        to
    );
}

/// Registers `name` from `browser`, the request carrying `X-Forwarded-For: forwarded`
/// (as a trusted proxy would add it).
pub async fn register_from(
    app: &TestApp,
    browser: &Client,
    name: &str,
    forwarded: &str,
) -> Response {
    let token = csrf_token_of(browser, app).await;
    browser
        .post(app.url("/register/"))
        .header("x-forwarded-for", forwarded)
        .form(&[
            ("username", name),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
            ("csrf", &token),
        ])
        .send()
        .await
        .unwrap()
}

pub const PASSWORD: &str = "correct horse battery";

/// The account id the file store keeps for `name` (lower case).
pub fn account_id(app: &TestApp, name: &str) -> String {
    let path = app.config.data_dir.join(format!("users/{name}.json"));
    let user: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    user["id"].as_str().expect("an account id").to_owned()
}

/// Runs futures concurrently on the runtime and collects their results in order.
pub async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

/// Puts the account `name` into `group`, as `wicket user group NAME add GROUP` does.
pub async fn join(app: &TestApp, name: &str, group: &str) {
    let name = wicket::domain::Username::parse(name).unwrap();
    let user = app.state.users.get(&name).await.unwrap().unwrap();
    let group = wicket::domain::Group::parse(group).unwrap();
    app.state
        .accounts
        .set_group(&user, &group, true)
        .await
        .unwrap();
}

/// Runs `wicket ARGS…` as an operator would beside `app`: on its store (files or
/// Redis, its prefix), its key, its mail settings and its site address; `stdin` fed in.
pub fn wicket(app: &TestApp, args: &[&str], stdin: &str) -> std::process::Output {
    wicket_with(&app.config, args, stdin)
}

/// The same with `config`'s settings, whether or not a server runs on them.
pub fn wicket_with(config: &Config, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut command = Command::new(env!("CARGO_BIN_EXE_wicket"));
    command
        .args(["--scrypt-log-n", "4"])
        .arg("--data-dir")
        .arg(&config.data_dir)
        .arg("--sessions-dir")
        .arg(&config.sessions_dir)
        .args(["--store-prefix", &config.store_prefix]);
    if let wicket::store::StoreKind::Redis(url) = &config.store {
        command.args(["--store", url]);
    }
    if let Some(key) = &config.secret_key_file {
        command.arg("--secret-key-file").arg(key);
    }
    if let Some(url) = &config.smtp_url {
        command.args(["--smtp-url", &url.to_string()]);
    }
    if let Some(from) = &config.mail_from {
        command.args(["--mail-from", from]);
    }
    if let Some(url) = &config.public_url {
        command.args(["--public-url", url.origin()]);
    }
    let mut child = command
        .args(args)
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
