//! Passkeys, black-box: the tests play the browser and the authenticator (a P-256 key
//! of their own, "none" attestation, CBOR written by hand), so they can also send what
//! a real authenticator never would: a replayed challenge, a falling counter, a
//! signature without user verification, another site's origin.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use wicket::domain::Username;
use wicket::store::{NameTaken, StoreFuture, Stores, User, UserChange, UserStore};

use crate::helpers::smtp::free_port;
use crate::helpers::totp::{enable, step_now, totp};
use crate::helpers::*;

/// Flags in authenticator data: user present, user verified, credential data attached.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

/// A software authenticator holding one discoverable credential.
pub struct SoftKey {
    signing: SigningKey,
    id: Vec<u8>,
    counter: u32,
    pub origin: String,
}

/// A CBOR head: major type and length (or value).
fn head(major: u8, n: usize) -> Vec<u8> {
    let major = major << 5;
    match n {
        0..=23 => vec![major | n as u8],
        24..=0xff => vec![major | 24, n as u8],
        _ => {
            let mut out = vec![major | 25];
            out.extend_from_slice(&(n as u16).to_be_bytes());
            out
        }
    }
}

fn cbor_bytes(bytes: &[u8]) -> Vec<u8> {
    [head(2, bytes.len()), bytes.to_vec()].concat()
}

fn cbor_text(text: &str) -> Vec<u8> {
    [head(3, text.len()), text.as_bytes().to_vec()].concat()
}

impl SoftKey {
    pub fn new(app: &TestApp) -> Self {
        Self {
            signing: SigningKey::from_slice(&random::<32>()).unwrap(),
            id: random::<32>().to_vec(),
            counter: 0,
            origin: app.base.replace("127.0.0.1", "localhost"),
        }
    }

    fn rp_hash(&self) -> Vec<u8> {
        Sha256::digest(b"localhost").to_vec()
    }

    /// The public key as COSE: EC2, ES256, P-256, x, y.
    fn cose_key(&self) -> Vec<u8> {
        let point = self.signing.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        let (x, y) = (&bytes[1..33], &bytes[33..65]);
        let mut out = head(5, 5);
        out.extend([0x01, 0x02]); // kty: EC2
        out.extend([0x03, 0x26]); // alg: -7 (ES256)
        out.extend([0x20, 0x01]); // crv (-1): P-256
        out.push(0x21); // x (-2)
        out.extend(cbor_bytes(x));
        out.push(0x22); // y (-3)
        out.extend(cbor_bytes(y));
        out
    }

    fn client_data(&self, kind: &str, options: &Value) -> Vec<u8> {
        let challenge = options["publicKey"]["challenge"].as_str().unwrap();
        json!({ "type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": false })
            .to_string()
            .into_bytes()
    }

    /// `navigator.credentials.create`'s answer to `options`, as the script posts it.
    fn attest(&self, options: &Value, flags: u8) -> String {
        let mut auth_data = self.rp_hash();
        auth_data.push(flags | AT);
        auth_data.extend(self.counter.to_be_bytes());
        auth_data.extend([0u8; 16]); // AAGUID
        auth_data.extend((self.id.len() as u16).to_be_bytes());
        auth_data.extend(&self.id);
        auth_data.extend(self.cose_key());
        let mut object = head(5, 3);
        object.extend(cbor_text("fmt"));
        object.extend(cbor_text("none"));
        object.extend(cbor_text("attStmt"));
        object.extend(head(5, 0));
        object.extend(cbor_text("authData"));
        object.extend(cbor_bytes(&auth_data));
        json!({
            "id": B64.encode(&self.id),
            "rawId": B64.encode(&self.id),
            "type": "public-key",
            "response": {
                "attestationObject": B64.encode(object),
                "clientDataJSON": B64.encode(self.client_data("webauthn.create", options)),
            },
            "extensions": {},
        })
        .to_string()
    }

    /// `navigator.credentials.get`'s answer, signed with this key's counter moved on.
    fn sign(&mut self, options: &Value, handle: &[u8], flags: u8) -> String {
        self.counter += 1;
        self.sign_at(options, handle, flags, self.counter)
    }

    /// The same with a counter of the caller's choosing.
    fn sign_at(&self, options: &Value, handle: &[u8], flags: u8, counter: u32) -> String {
        let mut auth_data = self.rp_hash();
        auth_data.push(flags);
        auth_data.extend(counter.to_be_bytes());
        let client_data = self.client_data("webauthn.get", options);
        let signed = [auth_data.clone(), Sha256::digest(&client_data).to_vec()].concat();
        let signature: Signature = self.signing.sign(&signed);
        json!({
            "id": B64.encode(&self.id),
            "rawId": B64.encode(&self.id),
            "type": "public-key",
            "response": {
                "authenticatorData": B64.encode(auth_data),
                "clientDataJSON": B64.encode(client_data),
                "signature": B64.encode(signature.to_der().as_bytes()),
                "userHandle": B64.encode(handle),
            },
            "extensions": {},
        })
        .to_string()
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).unwrap();
    bytes
}

/// A Wicket whose public URL is `http://localhost:PORT` (WebAuthn needs a domain name).
pub async fn passkey_app(change: impl FnOnce(&mut wicket::config::Config)) -> TestApp {
    let port = free_port();
    let mut app = spawn_app_with(move |c| {
        c.addr = format!("127.0.0.1:{port}");
        c.public_url = Some(format!("http://localhost:{port}").parse().unwrap());
        change(c);
    })
    .await;
    app.base = format!("http://localhost:{port}");
    app
}

/// A user store that, once armed, holds the next two updates until both have come:
/// two requests that read an account then both reach their writes.
#[derive(Debug)]
struct MeetAtUpdate {
    inner: Arc<dyn UserStore>,
    armed: Arc<AtomicU32>,
    meet: Arc<tokio::sync::Barrier>,
}

impl UserStore for MeetAtUpdate {
    fn get<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, Option<User>> {
        self.inner.get(name)
    }
    fn create<'a>(&'a self, user: &'a User) -> StoreFuture<'a, Result<(), NameTaken>> {
        self.inner.create(user)
    }
    fn exists<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, bool> {
        self.inner.exists(name)
    }
    fn update<'a>(
        &'a self,
        name: &'a Username,
        change: &'a UserChange,
    ) -> StoreFuture<'a, Option<User>> {
        Box::pin(async move {
            let held = self
                .armed
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            if held.is_ok() {
                self.meet.wait().await;
            }
            self.inner.update(name, change).await
        })
    }
    fn delete<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, bool> {
        self.inner.delete(name)
    }
    fn names(&self) -> StoreFuture<'_, Vec<String>> {
        self.inner.names()
    }
    fn ready(&self) -> StoreFuture<'_, ()> {
        self.inner.ready()
    }
}

/// A passkey app whose user store holds the next `n` updates, once armed with `n`,
/// until two have come.
async fn racing_app() -> (TestApp, Arc<AtomicU32>) {
    let port = free_port();
    let armed = Arc::new(AtomicU32::new(0));
    let arm = armed.clone();
    let mut app = spawn_app_wrapping(
        move |c| {
            c.addr = format!("127.0.0.1:{port}");
            c.public_url = Some(format!("http://localhost:{port}").parse().unwrap());
        },
        move |stores: Stores| Stores {
            users: Arc::new(MeetAtUpdate {
                inner: stores.users,
                armed: arm,
                meet: Arc::new(tokio::sync::Barrier::new(2)),
            }),
            ..stores
        },
    )
    .await;
    app.base = format!("http://localhost:{port}");
    (app, armed)
}

#[tokio::test]
async fn of_two_signatures_racing_with_one_counter_only_one_logs_in() {
    let (app, armed) = racing_app().await;
    app.register("ray", PASSWORD).await;
    let key = SoftKey::new(&app);
    let handle = add(&app, &key, "Phone").await;
    // A clone and its original sign with the same counter, each its own challenge.
    let (one, two) = (client(), client());
    let (first, second) = (
        login_options(&app, &one).await,
        login_options(&app, &two).await,
    );
    let a = key.sign_at(&first.options, &handle, UP | UV, 7);
    let b = key.sign_at(&second.options, &handle, UP | UV, 7);
    // Both read the account (counter 0) before either writes counter 7.
    armed.store(2, Ordering::SeqCst);
    let (x, y) = tokio::join!(
        finish_login(&app, &one, &first, &a),
        finish_login(&app, &two, &second, &b)
    );
    let mut statuses = [x.status(), y.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::SEE_OTHER, StatusCode::UNAUTHORIZED]);
}

/// What a ceremony's options answer holds.
struct Started {
    ceremony: String,
    options: Value,
}

async fn started(resp: reqwest::Response) -> Started {
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    Started {
        ceremony: body["ceremony"].as_str().unwrap().to_owned(),
        options: body["options"].clone(),
    }
}

/// Asks for a new passkey's options with the password (and `code`).
async fn add_options(app: &TestApp, name: &str, code: Option<&str>) -> reqwest::Response {
    let mut form = vec![("name", name), ("current_password", PASSWORD)];
    form.extend(code.map(|c| ("code", c)));
    app.post_form_hx("/account/passkeys/options", &form).await
}

/// Adds `key` to the logged-in member's account; returns the user handle.
pub async fn add(app: &TestApp, key: &SoftKey, name: &str) -> Vec<u8> {
    let (resp, handle) = try_add(app, &app.client, key, name).await;
    let text = resp.text().await.unwrap();
    assert!(text.contains("Passkey added."), "{text}");
    handle
}

/// Tries to add `key` as the member logged in at `browser`: the answer, and the handle.
async fn try_add(
    app: &TestApp,
    browser: &Client,
    key: &SoftKey,
    name: &str,
) -> (reqwest::Response, Vec<u8>) {
    let form = [("name", name), ("current_password", PASSWORD)];
    let start = started(
        app.post_form_as_hx(browser, "/account/passkeys/options", &form)
            .await,
    )
    .await;
    let credential = key.attest(&start.options, UP | UV);
    let form = [
        ("ceremony", start.ceremony.as_str()),
        ("credential", &credential),
    ];
    let resp = app
        .post_form_as_hx(browser, "/account/passkeys", &form)
        .await;
    (resp, handle_of(&start.options))
}

async fn finish_add(app: &TestApp, start: &Started, credential: &str) -> reqwest::Response {
    let form = [
        ("ceremony", start.ceremony.as_str()),
        ("credential", credential),
    ];
    app.post_form_hx("/account/passkeys", &form).await
}

fn handle_of(options: &Value) -> Vec<u8> {
    B64.decode(options["publicKey"]["user"]["id"].as_str().unwrap())
        .unwrap()
}

async fn login_options(app: &TestApp, browser: &Client) -> Started {
    started(
        app.post_form_by(browser, "/login/passkey/options", &[])
            .await,
    )
    .await
}

async fn finish_login(
    app: &TestApp,
    browser: &Client,
    start: &Started,
    credential: &str,
) -> reqwest::Response {
    let form = [
        ("ceremony", start.ceremony.as_str()),
        ("credential", credential),
    ];
    app.post_form_by(browser, "/login/passkey", &form).await
}

/// A passkey app with a member `name` logged in (its browser is the app's client)
/// who has added a passkey called `passkey`: the app, the key, and its user handle.
pub async fn member_with_passkey(name: &str, passkey: &str) -> (TestApp, SoftKey, Vec<u8>) {
    let app = passkey_app(|_| {}).await;
    app.register(name, PASSWORD).await;
    let key = SoftKey::new(&app);
    let handle = add(&app, &key, passkey).await;
    (app, key, handle)
}

/// A login ceremony started by `browser`, and `key`'s signature for it.
async fn signed(
    app: &TestApp,
    browser: &Client,
    key: &mut SoftKey,
    handle: &[u8],
) -> (Started, String) {
    let start = login_options(app, browser).await;
    let credential = key.sign(&start.options, handle, UP | UV);
    (start, credential)
}

/// A fresh browser logs in with `key`; returns the answer.
pub async fn log_in_with(app: &TestApp, key: &mut SoftKey, handle: &[u8]) -> reqwest::Response {
    let browser = client();
    let (start, credential) = signed(app, &browser, key, handle).await;
    finish_login(app, &browser, &start, &credential).await
}

#[tokio::test]
async fn a_passkey_logs_in_with_no_name_typed_and_counts_as_both_factors() {
    let app = passkey_app(|_| {}).await;
    app.register("pia", PASSWORD).await;
    let on = enable(&app, step_now()).await;
    let mut key = SoftKey::new(&app);
    // With two-step login on, adding a passkey takes a code as well as the password.
    let refused = add_options(&app, "Laptop", None).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = refused.text().await.unwrap();
    assert!(text.contains("That code is not right."), "{text}");
    assert!(
        text.contains(r#"value="Laptop""#),
        "the name is kept: {text}"
    );
    let code = totp(&on.key, step_now() + 1, 6);
    let start = started(add_options(&app, "Laptop", Some(&code)).await).await;
    // Discoverable and user-verified, under a random handle (not the name).
    let selection = &start.options["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required");
    assert_eq!(selection["userVerification"], "required");
    let handle = handle_of(&start.options);
    assert_eq!(handle.len(), 16);
    let added = finish_add(&app, &start, &key.attest(&start.options, UP | UV)).await;
    assert_eq!(added.status(), StatusCode::OK);
    let file = std::fs::read_to_string(app.config.data_dir.join("users/pia.json")).unwrap();
    assert!(
        file.contains("\"passkeys\"") && file.contains("Laptop"),
        "{file}"
    );

    // No name, no password, no code: the passkey alone opens the account.
    let resp = log_in_with(&app, &mut key, &handle).await;
    assert_see_other(&resp, "/cabinet");
    let cookie = session_cookie(&resp).expect("a session");
    let account = app.get_with_cookie("/account", &cookie).await;
    let text = account.text().await.unwrap();
    assert!(
        text.contains("Laptop") && text.contains("last used"),
        "{text}"
    );
    let file = std::fs::read_to_string(app.config.data_dir.join("users/pia.json")).unwrap();
    assert!(
        file.contains("\"counter\": 1"),
        "the counter is kept: {file}"
    );
}

#[tokio::test]
async fn a_challenge_works_once_and_not_after_it_expires() {
    let (app, mut key, handle) = member_with_passkey("cai", "Phone").await;
    let browser = client();
    let (start, credential) = signed(&app, &browser, &mut key, &handle).await;
    assert_see_other(
        &finish_login(&app, &browser, &start, &credential).await,
        "/cabinet",
    );
    let replay = finish_login(&app, &client(), &start, &credential).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert!(replay.text().await.unwrap().contains("That took too long"));

    // A ceremony past its five minutes is refused, even signed right.
    let start = login_options(&app, &browser).await;
    let tokens = app.config.data_dir.join("tokens");
    for entry in std::fs::read_dir(&tokens).unwrap() {
        let path = entry.unwrap().path();
        let mut record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        record["expires"] = json!("2020-01-01T00:00:00Z");
        std::fs::write(&path, record.to_string()).unwrap();
    }
    let credential = key.sign(&start.options, &handle, UP | UV);
    let late = finish_login(&app, &browser, &start, &credential).await;
    assert_eq!(late.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_falling_counter_a_missing_verification_or_another_origin_is_refused() {
    let (app, mut key, handle) = member_with_passkey("ned", "Key").await;
    assert_see_other(&log_in_with(&app, &mut key, &handle).await, "/cabinet");
    assert_see_other(&log_in_with(&app, &mut key, &handle).await, "/cabinet");

    let browser = client();
    let refused = |resp: reqwest::Response| async move {
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(session_cookie(&resp).is_none());
        resp.text().await.unwrap()
    };
    // A clone of the authenticator signs with a counter it has used already.
    let start = login_options(&app, &browser).await;
    let cloned = key.sign_at(&start.options, &handle, UP | UV, key.counter);
    let text = refused(finish_login(&app, &browser, &start, &cloned).await).await;
    assert!(text.contains("That passkey did not work."), "{text}");
    // Presence without verification (no fingerprint, no PIN).
    let start = login_options(&app, &browser).await;
    let unverified = key.sign(&start.options, &handle, UP);
    refused(finish_login(&app, &browser, &start, &unverified).await).await;
    // Signed for another site.
    let start = login_options(&app, &browser).await;
    let phished = SoftKey {
        origin: "http://localhost.evil.example".into(),
        signing: key.signing.clone(),
        id: key.id.clone(),
        counter: key.counter + 5,
    }
    .sign_at(&start.options, &handle, UP | UV, key.counter + 10);
    refused(finish_login(&app, &browser, &start, &phished).await).await;
    // Another key under this passkey's id.
    let start = login_options(&app, &browser).await;
    let mut forger = SoftKey::new(&app);
    forger.id = key.id.clone();
    let forged = forger.sign_at(&start.options, &handle, UP | UV, key.counter + 20);
    refused(finish_login(&app, &browser, &start, &forged).await).await;
    // The real key still works: none of that moved its counter.
    assert_see_other(&log_in_with(&app, &mut key, &handle).await, "/cabinet");

    // Registration without user verification is refused too.
    let start = started(add_options(&app, "Second", None).await).await;
    let other = SoftKey::new(&app);
    let resp = finish_add(&app, &start, &other.attest(&start.options, UP)).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.unwrap().contains("was not added"));
}

#[tokio::test]
async fn one_passkey_cannot_belong_to_two_accounts_until_it_is_removed() {
    let (app, mut key, handle) = member_with_passkey("amy", "Shared").await;

    let bob = member_browser(&app, "bob").await;
    let (taken, _) = try_add(&app, &bob, &key, "Mine").await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    assert!(
        taken
            .text()
            .await
            .unwrap()
            .contains("registered to another account")
    );
    // It still opens amy's account, not bob's.
    let resp = log_in_with(&app, &mut key, &handle).await;
    let cookie = session_cookie(&resp).unwrap();
    let cabinet = app
        .get_with_cookie("/cabinet", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(cabinet.contains("Welcome, amy!"), "{cabinet}");

    // Removing asks for the password, then frees the passkey.
    let id = first_passkey_id(&app.get("/account").await.text().await.unwrap());
    let wrong = app
        .post_form_hx(
            "/account/passkeys/remove",
            &[("id", &id), ("current_password", "nope")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let removed = app
        .post_form_hx(
            "/account/passkeys/remove",
            &[("id", &id), ("current_password", PASSWORD)],
        )
        .await;
    assert!(removed.text().await.unwrap().contains("Passkey removed."));
    let gone = log_in_with(&app, &mut key, &handle).await;
    assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);
    assert!(
        gone.text()
            .await
            .unwrap()
            .contains("no longer) registered here")
    );
    let (resp, _) = try_add(&app, &bob, &key, "Mine").await;
    assert_eq!(resp.status(), StatusCode::OK);
}

/// The hidden `id` of the first passkey's removal form.
fn first_passkey_id(page: &str) -> String {
    let start = page.find(r#"name="id" value=""#).expect("a removal form") + 17;
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

/// Registers `name` from a browser of its own; returns that browser, logged in.
async fn member_browser(app: &TestApp, name: &str) -> Client {
    let browser = client();
    app.register_by(&browser, name, PASSWORD).await;
    browser
}

#[tokio::test]
async fn a_ceremony_belongs_to_the_account_that_started_it() {
    let app = passkey_app(|_| {}).await;
    app.register("eve", PASSWORD).await;
    let key = SoftKey::new(&app);
    let start = started(add_options(&app, "Hers", None).await).await;
    let credential = key.attest(&start.options, UP | UV);
    // Another member cannot finish eve's ceremony (and so cannot use it up).
    let other = member_browser(&app, "zed").await;
    let form = [
        ("ceremony", start.ceremony.as_str()),
        ("credential", credential.as_str()),
    ];
    let resp = app
        .post_form_as_hx(&other, "/account/passkeys", &form)
        .await;
    assert_eq!(resp.status(), StatusCode::GONE);
    // Nor can a wrong password or a name already used start one.
    let wrong = app
        .post_form_hx(
            "/account/passkeys/options",
            &[("name", "X"), ("current_password", "nope")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        wrong.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let blank = app
        .post_form_hx(
            "/account/passkeys/options",
            &[("name", " "), ("current_password", PASSWORD)],
        )
        .await;
    assert!(blank.text().await.unwrap().contains("Give it a name"));
}

#[tokio::test]
async fn passkeys_are_off_without_a_domain_name_for_the_site() {
    let app = spawn_app().await;
    let page = app.get("/").await.text().await.unwrap();
    assert!(!page.contains("Log in with a passkey"), "{page}");
    let resp = app.post_form("/login/passkey/options", &[]).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let app = spawn_app_with(|c| {
        c.public_url = Some("http://127.0.0.1:5000".parse().unwrap());
    })
    .await;
    let page = app
        .client
        .get(app.url("/"))
        .header("Host", "127.0.0.1:5000")
        .send()
        .await
        .unwrap();
    assert!(!page.text().await.unwrap().contains("Log in with a passkey"));
}

#[tokio::test]
async fn passkeys_work_on_redis() {
    let redis = crate::helpers::redis::RedisServer::start();
    let url = redis.url();
    let app = passkey_app(move |c| {
        c.store = wicket::store::StoreKind::Redis(url);
        c.store_prefix = "passkeys".into();
    })
    .await;
    app.register("rey", PASSWORD).await;
    let mut key = SoftKey::new(&app);
    let handle = add(&app, &key, "Phone").await;
    let browser = client();
    let (start, credential) = signed(&app, &browser, &mut key, &handle).await;
    assert_see_other(
        &finish_login(&app, &browser, &start, &credential).await,
        "/cabinet",
    );
    assert_eq!(
        finish_login(&app, &client(), &start, &credential)
            .await
            .status(),
        StatusCode::UNAUTHORIZED,
        "single use on Redis too"
    );
}

#[tokio::test]
async fn deleting_an_account_on_the_site_or_the_command_line_frees_its_passkeys() {
    let app = passkey_app(|_| {}).await;
    let claims = app.config.data_dir.join("passkeys");
    let held = || std::fs::read_dir(&claims).unwrap().count();
    app.register("dot", PASSWORD).await;
    add(&app, &SoftKey::new(&app), "Phone").await;
    add(&app, &SoftKey::new(&app), "Laptop").await;
    assert_eq!(held(), 2);
    let resp = app
        .post_form("/account/delete", &[("current_password", PASSWORD)])
        .await;
    assert_see_other(&resp, "/");
    assert_eq!(held(), 0);

    app.register("cyd", PASSWORD).await;
    add(&app, &SoftKey::new(&app), "Phone").await;
    assert_eq!(held(), 1);
    let out = crate::cli::user_cmd(&app, &["delete", "cyd"], "");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(held(), 0);
}

#[tokio::test]
async fn a_passkey_login_goes_where_it_was_asked_and_can_be_kept() {
    let (app, mut key, handle) = member_with_passkey("kip", "Phone").await;
    let browser = client();
    let (start, credential) = signed(&app, &browser, &mut key, &handle).await;
    let form = [
        ("ceremony", start.ceremony.as_str()),
        ("credential", credential.as_str()),
        ("next", "/account"),
        ("remember", "on"),
    ];
    let resp = app.post_form_by(&browser, "/login/passkey", &form).await;
    assert_see_other(&resp, "/account");
    let set = session_set_cookie(&resp).expect("a session cookie");
    assert!(
        set.contains("Max-Age="),
        "kept past the browser's closing: {set}"
    );

    // Without "Keep me logged in", and with a `next` that leaves the site.
    let (start, credential) = signed(&app, &browser, &mut key, &handle).await;
    let form = [
        ("ceremony", start.ceremony.as_str()),
        ("credential", credential.as_str()),
        ("next", "//evil.example"),
    ];
    let resp = app.post_form_by(&browser, "/login/passkey", &form).await;
    assert_see_other(&resp, "/cabinet");
    assert!(!session_set_cookie(&resp).unwrap().contains("Max-Age="));
}

#[tokio::test]
async fn adding_checks_the_name_and_keeps_it_through_a_refusal() {
    let app = passkey_app(|c| c.throttle_login = "2/15m".parse().unwrap()).await;
    app.register("nia", PASSWORD).await;
    let options = |name: String, password: &'static str| {
        let app = &app;
        async move {
            let form = [("name", name.as_str()), ("current_password", password)];
            app.post_form_hx("/account/passkeys/options", &form).await
        }
    };
    let json = |resp: &reqwest::Response| {
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    };
    // 1 to 64 characters, no control characters.
    for bad in ["x".repeat(65), "tab\there".into(), "   ".into()] {
        let resp = options(bad.clone(), PASSWORD).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
        assert!(
            resp.text().await.unwrap().contains("Give it a name"),
            "{bad:?}"
        );
    }
    let longest = options("é".repeat(64), PASSWORD).await;
    assert!(json(&longest), "64 characters (not bytes) is a name");
    // Names tell passkeys apart: one per account.
    add(&app, &SoftKey::new(&app), "Phone").await;
    let twice = options("Phone".into(), PASSWORD).await;
    assert_eq!(twice.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = twice.text().await.unwrap();
    assert!(
        text.contains("You already have a passkey by that name."),
        "{text}"
    );
    assert!(
        text.contains(r#"value="Phone""#),
        "the name is kept: {text}"
    );
    // A wrong password keeps the name typed, and so does being throttled.
    let wrong = options("Work laptop".into(), "nope").await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = wrong.text().await.unwrap();
    assert!(text.contains(r#"value="Work laptop""#), "{text}");
    assert!(text.contains(r#"id="passkey_password-error""#), "{text}");
    options("Work laptop".into(), "nope").await;
    let throttled = options("Work laptop".into(), PASSWORD).await;
    let text = throttled.text().await.unwrap();
    assert!(text.contains("Too many attempts"), "{text}");
    assert!(text.contains(r#"value="Work laptop""#), "{text}");
}

#[tokio::test]
async fn a_registration_started_before_a_password_change_is_void() {
    let app = passkey_app(|_| {}).await;
    app.register("ivy", PASSWORD).await;
    let key = SoftKey::new(&app);
    let start = started(add_options(&app, "Phone", None).await).await;
    let new = "a different long passphrase";
    let form = [
        ("current_password", PASSWORD),
        ("password", new),
        ("confirm", new),
    ];
    let changed = app.post_form("/account/password", &form).await;
    assert_see_other(&changed, "/account?done=password");
    let resp = finish_add(&app, &start, &key.attest(&start.options, UP | UV)).await;
    assert_eq!(resp.status(), StatusCode::GONE);
    assert!(
        app.config
            .data_dir
            .join("passkeys")
            .read_dir()
            .unwrap()
            .next()
            .is_none()
    );
}

#[tokio::test]
async fn a_refused_removal_says_so_on_the_passkey_it_was_for() {
    let app = passkey_app(|_| {}).await;
    app.register("ora", PASSWORD).await;
    add(&app, &SoftKey::new(&app), "First").await;
    add(&app, &SoftKey::new(&app), "Second").await;
    let page = app.get("/account").await.text().await.unwrap();
    let ids = hidden_values(&page, "id");
    assert_eq!(ids.len(), 2);
    let form = [("id", ids[1].as_str()), ("current_password", "nope")];
    let resp = app.post_form_hx("/account/passkeys/remove", &form).await;
    let text = resp.text().await.unwrap();
    // The second passkey's form is open with the error; the first stays closed.
    let open = text.find("<details open").expect("an open form");
    assert!(text[open..].starts_with("<details open"));
    assert!(
        text[open..].contains(&ids[1]) && !text[open..].contains(&ids[0]),
        "{text}"
    );
    assert!(text[open..].contains(r#"aria-invalid="true""#));
    assert_eq!(text.matches("<details open").count(), 1);

    // The right password removes that one only.
    let form = [("id", ids[1].as_str()), ("current_password", PASSWORD)];
    let text = app
        .post_form_hx("/account/passkeys/remove", &form)
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains("Passkey removed."), "{text}");
    assert!(text.contains("First") && !text.contains("Second"), "{text}");
    assert!(text.contains(&ids[0]) && !text.contains(&ids[1]));
    // A second try finds it gone.
    let again = app.post_form_hx("/account/passkeys/remove", &form).await;
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("That passkey was removed already.")
    );
}

#[tokio::test]
async fn removing_is_throttled_like_a_login_and_a_key_is_added_once() {
    let app = passkey_app(|c| c.throttle_login = "2/15m".parse().unwrap()).await;
    app.register("uma", PASSWORD).await;
    let key = SoftKey::new(&app);
    add(&app, &key, "Phone").await;
    // The same credential again (a browser would exclude it): refused, listed once.
    let (again, _) = try_add(&app, &app.client, &key, "Phone again").await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = app.get("/account").await.text().await.unwrap();
    assert_eq!(page.matches(r#"name="id" value=""#).count(), 1);
    let id = first_passkey_id(&page);
    let form = [("id", id.as_str()), ("current_password", "nope")];
    for _ in 0..2 {
        app.post_form_hx("/account/passkeys/remove", &form).await;
    }
    let form = [("id", id.as_str()), ("current_password", PASSWORD)];
    let resp = app.post_form_hx("/account/passkeys/remove", &form).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    let text = resp.text().await.unwrap();
    assert!(text.contains("Too many attempts"), "{text}");
    assert!(text.contains("Phone"), "still there: {text}");
}

#[tokio::test]
async fn starting_ceremonies_is_limited_per_address() {
    let app = passkey_app(|_| {}).await;
    let browser = client();
    for _ in 0..wicket::accounts::passkeys::STARTS_PER_MINUTE {
        login_options(&app, &browser).await;
    }
    let resp = app
        .post_form_by(&browser, "/login/passkey/options", &[])
        .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("Too many attempts")
    );
}

#[tokio::test]
async fn a_refused_passkey_login_keeps_where_it_was_going_and_the_forgot_link() {
    let mail = tempfile::tempdir().unwrap();
    let dir = mail.path().to_owned();
    let app = passkey_app(move |c| c.mail_dir = Some(dir)).await;
    let browser = client();
    let start = login_options(&app, &browser).await;
    let form = [
        ("ceremony", start.ceremony.as_str()),
        ("credential", "{}"),
        ("next", "/account"),
    ];
    let resp = app.post_form_by(&browser, "/login/passkey", &form).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let text = resp.text().await.unwrap();
    assert!(text.contains("That passkey did not work."), "{text}");
    assert!(text.contains(r#"name="next" value="/account""#), "{text}");
    assert!(text.contains("Forgot your password?"), "{text}");
    assert!(text.contains("Log in with a passkey"), "{text}");
}

#[tokio::test]
async fn of_two_registrations_racing_only_one_is_kept_when_they_clash() {
    let (app, armed) = racing_app().await;
    app.register("rue", PASSWORD).await;
    let statuses = |x: &reqwest::Response, y: &reqwest::Response| {
        let mut both = [x.status(), y.status()];
        both.sort();
        both
    };
    // Two first passkeys at once: each ceremony made its own random handle, and an
    // account has one, so the second to write is refused.
    let (one, two) = (SoftKey::new(&app), SoftKey::new(&app));
    let first = started(add_options(&app, "One", None).await).await;
    let second = started(add_options(&app, "Two", None).await).await;
    let (a, b) = (
        one.attest(&first.options, UP | UV),
        two.attest(&second.options, UP | UV),
    );
    armed.store(2, Ordering::SeqCst);
    let (x, y) = tokio::join!(finish_add(&app, &first, &a), finish_add(&app, &second, &b));
    assert_eq!(statuses(&x, &y), [StatusCode::OK, StatusCode::CONFLICT]);

    // The same new credential twice at once: kept once.
    let three = SoftKey::new(&app);
    let first = started(add_options(&app, "Three", None).await).await;
    let second = started(add_options(&app, "Three again", None).await).await;
    let (a, b) = (
        three.attest(&first.options, UP | UV),
        three.attest(&second.options, UP | UV),
    );
    armed.store(2, Ordering::SeqCst);
    let (x, y) = tokio::join!(finish_add(&app, &first, &a), finish_add(&app, &second, &b));
    assert_eq!(statuses(&x, &y), [StatusCode::OK, StatusCode::CONFLICT]);
    let page = app.get("/account").await.text().await.unwrap();
    assert_eq!(page.matches(r#"name="id" value=""#).count(), 2, "{page}");
}

#[tokio::test]
async fn an_authenticator_without_a_counter_logs_in_every_time() {
    // Synced passkeys sign with a counter of 0 each time, which WebAuthn allows.
    let (app, key, handle) = member_with_passkey("syd", "Synced").await;
    for _ in 0..2 {
        let browser = client();
        let start = login_options(&app, &browser).await;
        let credential = key.sign_at(&start.options, &handle, UP | UV, 0);
        let resp = finish_login(&app, &browser, &start, &credential).await;
        assert_see_other(&resp, "/cabinet");
    }
}

#[tokio::test]
async fn a_passkey_login_from_a_new_browser_mails_the_notice() {
    let sink = crate::helpers::smtp::SmtpSink::start();
    let url = sink.url();
    let app = passkey_app(move |c| {
        c.smtp_url = Some(url.parse().unwrap());
        c.mail_from = Some("Wicket <wicket@example.com>".into());
    })
    .await;
    crate::helpers::smtp::register_confirmed(&app, &sink, "gus", "gus@example.com").await;
    let mut key = SoftKey::new(&app);
    let handle = add(&app, &key, "Phone").await;
    app.mail_settled().await;
    let seen = sink.messages().len();
    // This browser is known: no notice.
    let (start, credential) = signed(&app, &app.client, &mut key, &handle).await;
    let resp = finish_login(&app, &app.client, &start, &credential).await;
    assert_see_other(&resp, "/cabinet");
    app.mail_settled().await;
    assert_eq!(sink.messages().len(), seen, "the known browser got none");
    // Another browser: one.
    assert_see_other(&log_in_with(&app, &mut key, &handle).await, "/cabinet");
    let notice = sink.next_to(seen, "gus@example.com").await;
    assert!(
        notice.contains("Subject: New login to your Wicket account"),
        "{notice}"
    );
    app.mail_settled().await;
    assert_eq!(sink.messages().len(), seen + 1, "exactly one");
}

#[tokio::test]
async fn wrong_codes_when_adding_a_passkey_are_throttled_like_a_login() {
    let app = passkey_app(|c| c.throttle_login = "2/15m".parse().unwrap()).await;
    app.register("una", PASSWORD).await;
    let on = enable(&app, step_now()).await;
    for _ in 0..2 {
        let refused = add_options(&app, "Laptop", Some("000000")).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let code = totp(&on.key, step_now() + 1, 6);
    let resp = add_options(&app, "Laptop", Some(&code)).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    assert!(resp.text().await.unwrap().contains("Too many attempts"));
}

#[tokio::test]
async fn a_passkey_login_returns_to_a_guarded_app_and_counts_as_a_second_factor() {
    let app = passkey_app(|c| {
        let file = c.data_dir.with_file_name("rules.toml");
        std::fs::write(&file, crate::forward_auth::RULES).unwrap();
        c.access_rules = Some(file);
        c.trusted_proxies = "127.0.0.1".parse().unwrap();
    })
    .await;
    app.register("rae", PASSWORD).await;
    let mut key = SoftKey::new(&app);
    let handle = add(&app, &key, "Phone").await;
    let browser = client();
    let (start, credential) = signed(&app, &browser, &mut key, &handle).await;
    let form = [
        ("ceremony", start.ceremony.as_str()),
        ("credential", credential.as_str()),
        ("next", "https://app.test/strong"),
    ];
    let resp = app.post_form_by(&browser, "/login/passkey", &form).await;
    assert_see_other(&resp, "https://app.test/strong");
    let check = browser
        .get(app.url("/auth/request"))
        .header("X-Original-URL", "https://app.test/strong")
        .send()
        .await
        .unwrap();
    assert_eq!(
        check.status(),
        StatusCode::OK,
        "a passkey is a second factor"
    );
}
