//! An authenticator app of the tests' own: RFC 6238 codes (checked against the RFC's
//! vectors in `two_step.rs`) and turning two-step login on as a member would.

use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use sha1::Sha1;

use super::*;

/// RFC 6238 TOTP with SHA-1: the code of `digits` digits for `step`.
pub fn totp(key: &[u8], step: u64, digits: u32) -> String {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(&step.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let at = (hash[19] & 0xf) as usize;
    let value = u32::from_be_bytes([hash[at] & 0x7f, hash[at + 1], hash[at + 2], hash[at + 3]]);
    format!(
        "{:0width$}",
        value % 10u32.pow(digits),
        width = digits as usize
    )
}

pub fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0u32, 0);
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        buffer = (buffer << 5) | ALPHABET.find(c).unwrap() as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

pub fn step_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30
}

/// What turning two-step login on gave the member.
pub struct Enabled {
    pub key: Vec<u8>,
    /// The key as the setup page showed it (base32).
    pub shown: String,
    pub recovery: Vec<String>,
}

pub fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in {text}"))
        + start.len();
    &text[from..from + text[from..].find(end).unwrap()]
}

/// Asks for a new key to set up, as the account page's button does: the QR code page.
pub async fn setup_page(app: &TestApp) -> String {
    let account = app.get("/account").await.text().await.unwrap();
    assert!(account.contains("Set up two-step login") && !account.contains("<svg"));
    let resp = app.post_form("/account/totp/setup", &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.unwrap()
}

/// Turns two-step login on for the app's logged-in member, confirming with the code
/// of `step` (the current one unless the test wants skew).
pub async fn enable(app: &TestApp, step: u64) -> Enabled {
    enable_with(app, step, PASSWORD).await
}

/// [`enable`] for a member whose password is `password`.
pub async fn enable_with(app: &TestApp, step: u64, password: &str) -> Enabled {
    let page = setup_page(app).await;
    assert!(
        page.contains("Two-step login") && page.contains("<svg"),
        "a QR code on the page"
    );
    let shown = between(&page, r#"<code class="key">"#, "</code>").to_owned();
    let key = base32_decode(&shown);
    let setup = between(&page, r#"name="setup" value=""#, r#"""#).to_owned();
    let code = totp(&key, step, 6);
    let form = [
        ("setup", setup.as_str()),
        ("code", code.as_str()),
        ("current_password", password),
    ];
    let resp = app.post_form("/account/totp", &form).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert!(text.contains("Two-step login is on."), "{text}");
    let recovery: Vec<String> = text
        .split("<li><code>")
        .skip(1)
        .map(|rest| rest[..rest.find("</code>").unwrap()].to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);
    Enabled {
        key,
        shown,
        recovery,
    }
}

/// Posts the setup form: the sealed `setup` key, `code` and the password.
pub async fn turn_on(app: &TestApp, setup: &str, code: &str) -> reqwest::Response {
    let form = [
        ("setup", setup),
        ("code", code),
        ("current_password", PASSWORD),
    ];
    app.post_form("/account/totp", &form).await
}

/// A login of `name` from `browser` with `password` and then `code`, ticking "Trust
/// this browser": the code step's answer.
pub async fn trusted_login(
    app: &TestApp,
    browser: &reqwest::Client,
    (name, password): (&str, &str),
    code: &str,
) -> reqwest::Response {
    let form = [("username", name), ("password", password)];
    app.post_form_by(browser, "/login", &form).await;
    app.post_form_by(browser, "/login/code", &[("code", code), ("trust", "on")])
        .await
}
