//! `--site-name` and `--site-logo`: the real binary (a site's name is the process's),
//! its pages, its mail, the authenticator app's entry and the passkeys' relying party.

use reqwest::StatusCode;

use crate::helpers::binary::Binary;
use crate::helpers::smtp::free_port;
use crate::helpers::*;
use crate::logs::post;

#[tokio::test]
async fn a_site_named_and_with_its_logo_says_so_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("acme.svg");
    std::fs::write(
        &logo,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 90 30"><rect width="90" height="30"/></svg>"#,
    )
    .unwrap();
    let mail = dir.path().join("mail");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let site = format!("http://localhost:{port}");
    let server = Binary::start(
        dir.path(),
        &[
            "--addr",
            &addr,
            "--public-url",
            &site,
            "--site-name",
            "Acme Login",
            "--site-logo",
            logo.to_str().unwrap(),
            "--mail-dir",
            mail.to_str().unwrap(),
            "--mail-from",
            "Acme <login@acme.example>",
        ],
    );
    let base = site.clone();
    let page = reqwest::get(format!("{base}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<title>Log in · Acme Login</title>"),
        "{page}"
    );
    assert!(page.contains("<span>Acme Login</span>"), "{page}");
    assert!(page.contains("Acme Login · sessions on disk"), "{page}");
    assert!(!page.contains("Wicket"), "{page}");
    // The logo, fingerprinted, as wide as its proportions say at 28 px high.
    let at = page.find("/static/logo.").expect("the logo in the header");
    let src = &page[at..at + page[at..].find('"').unwrap()];
    assert!(page.contains(r#"height="28" width="84""#), "{page}");
    let served = reqwest::get(format!("{base}{src}")).await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()["content-type"], "image/svg+xml");
    assert!(
        served.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    // The operator's SVG runs no script, even opened on its own: the site's policy.
    let policy = served.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");

    // A mail's subject and body, the authenticator app's entry, the passkeys' name.
    let browser = client();
    let form = [
        ("username", "ann"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
        ("email", "ann@example.com"),
    ];
    assert_see_other(
        &post(&browser, &base, "/register/", &form).await,
        "/cabinet",
    );
    server.wait_for_log("mail sent", std::time::Duration::from_secs(10));
    let eml = std::fs::read_dir(&mail)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let eml = std::fs::read_to_string(eml).unwrap();
    assert!(
        eml.contains("Subject: Confirm your email address for Acme Login"),
        "{eml}"
    );
    assert!(
        eml.contains("If you did not give this address to Acme Login"),
        "{eml}"
    );
    let setup = post(&browser, &base, "/account/totp/setup", &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        setup.contains("otpauth://totp/Acme%20Login:ann?"),
        "{setup}"
    );
    assert!(setup.contains("issuer=Acme%20Login"), "{setup}");
    let options = post(
        &browser,
        &base,
        "/account/passkeys/options",
        &[("name", "key"), ("current_password", PASSWORD)],
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(options.contains(r#""name":"Acme Login""#), "{options}");
    server.stop();
}

#[tokio::test]
async fn a_logo_that_is_not_an_svg_or_a_png_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let gif = dir.path().join("logo.gif");
    std::fs::write(&gif, b"GIF89a").unwrap();
    let mut out = std::process::Command::new(env!("CARGO_BIN_EXE_wicket"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--site-logo",
            gif.to_str().unwrap(),
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--sessions-dir")
        .arg(dir.path().join("sessions"))
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // It must stop by itself: a server that started anyway is killed, and fails here.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while out.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            out.kill().unwrap();
            panic!("started with a GIF logo");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = out.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--site-logo") && err.contains("expected an SVG or a PNG"),
        "{err}"
    );
}

#[tokio::test]
async fn a_site_name_is_text_in_every_page_never_markup() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let server = Binary::start(
        dir.path(),
        &["--addr", &addr, "--site-name", "<i>Acme</i> & \"Co\""],
    );
    let page = reqwest::get(format!("http://{addr}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let escaped = "&lt;i&gt;Acme&lt;/i&gt; &amp; &quot;Co&quot;";
    assert!(
        page.contains(&format!("<title>Log in · {escaped}</title>")),
        "{page}"
    );
    assert!(page.contains(&format!("<span>{escaped}</span>")), "{page}");
    assert!(!page.contains("<i>Acme"), "{page}");
    server.stop();
}
