//! Email: verification, password reset, new-login notices, against a real SMTP server
//! (Debian's python3-aiosmtpd writing each message into a Maildir) on a free loopback
//! port, stopped when the test ends.

use std::time::Duration;

use reqwest::{Client, StatusCode};

use crate::helpers::smtp::*;
use crate::helpers::*;

/// Changes the app's member's password from [`PASSWORD`] to `new` on `/account`.
async fn change_password(app: &TestApp, new: &str) {
    let form = [
        ("current_password", PASSWORD),
        ("password", new),
        ("confirm", new),
    ];
    let changed = app.post_form("/account/password", &form).await;
    assert_see_other(&changed, "/account?done=password");
}

/// Asks `/forgot` for `who` from a fresh browser; returns the mailed reset link.
async fn reset_link(app: &TestApp, sink: &SmtpSink, who: &str) -> String {
    app.post_form_by(&client(), "/forgot", &[("username", who)])
        .await;
    link(
        &sink.with_subject("Reset your Wicket password").await,
        "/reset/",
    )
}

#[tokio::test]
async fn a_registered_address_is_confirmed_by_its_mailed_link_once() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    let form = app.get("/register/").await.text().await.unwrap();
    assert!(form.contains(r#"name="email""#) && form.contains(r#"autocomplete="email""#));
    register_confirmed(&app, &sink, "ann", "Ann@Example.com").await;
    let account = app.get("/account").await.text().await.unwrap();
    assert!(
        account.contains("Ann@Example.com</strong> is confirmed"),
        "{account}"
    );
    // The link worked once.
    let message = sink.messages().pop().unwrap();
    let again = app.get(path_of(&link(&message, "/verify-email/"))).await;
    assert_eq!(again.status(), StatusCode::GONE);
    // Stored as typed; the token only as its hash.
    let user = std::fs::read_to_string(app.config.data_dir.join("users/ann.json")).unwrap();
    assert!(
        user.contains("Ann@Example.com") && user.contains("\"verified\": true"),
        "{user}"
    );
}

#[tokio::test]
async fn without_mail_there_is_no_email_field_and_no_reset() {
    let app = spawn_app().await;
    let form = app.get("/register/").await.text().await.unwrap();
    assert!(!form.contains(r#"name="email""#));
    let login = app.get("/").await.text().await.unwrap();
    assert!(!login.contains("/forgot"));
    assert_eq!(app.get("/forgot").await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_forgotten_password_is_reset_through_the_mailed_link() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    register_confirmed(&app, &sink, "bob", "bob@example.com").await;
    // Logged in elsewhere too: that session must end.
    let elsewhere = client();
    app.login_by(&elsewhere, "bob").await;
    let browser = client();
    let asked = app
        .post_form_by(&browser, "/forgot", &[("username", "bob")])
        .await;
    assert_eq!(asked.status(), StatusCode::OK);
    // (The login from `elsewhere` mailed a new-login notice first.)
    let message = sink.with_subject("Reset your Wicket password").await;
    let reset = link(&message, "/reset/");
    // Opening the link moves the token out of the address bar.
    let opened = app.get_by(&browser, path_of(&reset)).await;
    assert_see_other(&opened, "/reset");
    let form = app.get_by(&browser, "/reset").await;
    assert_eq!(form.status(), StatusCode::OK);
    let form = form.text().await.unwrap();
    assert!(form.contains("Choose a new password") && !form.contains(&reset[reset.len() - 64..]));
    // Same rules as registration.
    let weak = app
        .post_form_by(
            &browser,
            "/reset",
            &[("password", "aaaaaaaa"), ("confirm", "aaaaaaaa")],
        )
        .await;
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let new = "a fresh correct horse 42";
    let done = app
        .post_form_by(&browser, "/reset", &[("password", new), ("confirm", new)])
        .await;
    assert_see_other(&done, "/cabinet");
    assert_eq!(
        app.get_by(&browser, "/cabinet").await.status(),
        StatusCode::OK
    );
    // Every other session ended, with the reason.
    let ended = app.get_by(&elsewhere, "/cabinet").await;
    assert_see_other(&ended, "/?next=/cabinet");
    let told = app.get_by(&elsewhere, "/").await.text().await.unwrap();
    assert!(told.contains("because your password was reset"), "{told}");
    // Old password refused, new one works.
    let other = client();
    let old = app
        .post_form_by(
            &other,
            "/login",
            &[("username", "bob"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    assert_see_other(
        &app.post_form_by(&other, "/login", &[("username", "bob"), ("password", new)])
            .await,
        "/cabinet",
    );
    // The link is dead (the new password alone would void it, so single use itself is
    // shown by a_not_me_link_works_once_though_its_use_leaves_the_password_as_it_was).
    let again = client().get(app.url(path_of(&reset))).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(again.text().await.unwrap().contains("/forgot"));
    // And the address was told.
    let told = sink.with_subject("Your Wicket password was changed").await;
    assert!(
        told.contains("To: bob@example.com") && told.contains("was reset"),
        "{told}"
    );
}

#[tokio::test]
async fn unknown_names_and_unconfirmed_addresses_get_the_same_answer_and_no_mail() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    register_confirmed(&app, &sink, "cat", "cat@example.com").await;
    app.post_form(
        "/register/",
        &[
            ("username", "dan"),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
            ("email", "dan@example.com"),
        ],
    )
    .await;
    app.mail_settled().await; // dan's confirmation went
    let seen = sink.messages().len();
    let mut answers = Vec::new();
    for typed in [
        "cat",
        "CAT@example.com",
        "nobody",
        "nobody@example.com",
        "dan",
        "dan@example.com",
        "<script>",
    ] {
        let resp = app
            .post_form_by(&client(), "/forgot", &[("username", typed)])
            .await;
        answers.push((resp.status(), resp.text().await.unwrap()));
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, StatusCode::OK);
    // Exactly the two for cat (by name and by address), none for the others: counted
    // once every lookup is done and its mail, if any, handed over.
    app.mail_settled().await;
    let resets: Vec<_> = sink.messages()[seen..].to_vec();
    assert_eq!(resets.len(), 2, "{resets:?}");
    assert!(resets.iter().all(|m| m.contains("To: cat@example.com")));
}

#[tokio::test]
async fn a_reset_link_dies_when_the_password_changes_by_another_route() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    register_confirmed(&app, &sink, "eve", "eve@example.com").await;
    let reset = reset_link(&app, &sink, "eve").await;
    let new = "another correct horse 7";
    change_password(&app, new).await;
    let opened = client().get(app.url(path_of(&reset))).send().await.unwrap();
    assert_eq!(opened.status(), StatusCode::GONE);
}

#[tokio::test]
async fn a_login_from_a_new_browser_mails_a_notice_whose_link_ends_every_session() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    register_confirmed(&app, &sink, "fay", "fay@example.com").await;
    // The registering browser is known: logging in again there mails nothing.
    app.logout().await;
    app.mail_settled().await;
    let seen = sink.messages().len();
    assert_see_other(&app.login("fay", PASSWORD).await, "/cabinet");
    app.mail_settled().await;
    assert_eq!(
        sink.messages().len(),
        seen,
        "the known browser got no notice"
    );
    // A new browser: one notice; the same browser again: none.
    let intruder = client();
    app.login_by(&intruder, "fay").await;
    let notice = sink.next_to(seen, "fay@example.com").await;
    assert!(
        notice.contains("Subject: New login to your Wicket account"),
        "{notice}"
    );
    app.mail_settled().await;
    assert_eq!(sink.messages().len(), seen + 1, "one notice");
    intruder.post(app.url("/logout")).send().await.unwrap();
    app.login_by(&intruder, "fay").await;
    // "This wasn't me": confirm, every session ends, the reset form opens.
    let owner = client();
    let opened = owner
        .get(app.url(path_of(&link(&notice, "/not-me/"))))
        .send()
        .await
        .unwrap();
    assert_see_other(&opened, "/not-me");
    let page = app.get_by(&owner, "/not-me").await.text().await.unwrap();
    assert!(page.contains("End every session"), "{page}");
    let ended = app.post_form_by(&owner, "/not-me", &[]).await;
    assert_see_other(&ended, "/reset");
    assert_see_other(&app.get_by(&intruder, "/cabinet").await, "/?next=/cabinet");
    assert_see_other(&app.get("/cabinet").await, "/?next=/cabinet");
    let form = app.get_by(&owner, "/reset").await;
    assert_eq!(form.status(), StatusCode::OK);
    app.mail_settled().await;
    assert_eq!(sink.messages().len(), seen + 1, "still the one notice");
}

#[tokio::test]
async fn a_not_me_link_works_once_though_its_use_leaves_the_password_as_it_was() {
    // Ending the sessions changes nothing the link is bound to (account, password,
    // address), so only single use stops a second go: two browsers open one link.
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    register_confirmed(&app, &sink, "ola", "ola@example.com").await;
    app.mail_settled().await;
    let seen = sink.messages().len();
    app.login_by(&client(), "ola").await;
    let notice = sink.next_to(seen, "ola@example.com").await;
    let not_me = path_of(&link(&notice, "/not-me/")).to_owned();
    let (first, second) = (client(), client());
    for browser in [&first, &second] {
        let opened = app.get_by(browser, &not_me).await;
        assert_see_other(&opened, "/not-me");
    }
    assert_see_other(&app.post_form_by(&first, "/not-me", &[]).await, "/reset");
    assert_see_other(&app.get("/cabinet").await, "/?next=/cabinet");
    // The owner logs in again; the second browser's go must end nothing and issue
    // no new reset.
    assert_see_other(&app.login("ola", PASSWORD).await, "/cabinet");
    let tokens = std::fs::read_dir(app.config.data_dir.join("tokens"))
        .unwrap()
        .count();
    let again = app.post_form_by(&second, "/not-me", &[]).await;
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("This link cannot be used")
    );
    assert_eq!(app.get("/cabinet").await.status(), StatusCode::OK);
    let now = std::fs::read_dir(app.config.data_dir.join("tokens"))
        .unwrap()
        .count();
    assert_eq!(now, tokens, "no new reset token");
    let form = app.get_by(&second, "/reset").await;
    assert_eq!(form.status(), StatusCode::GONE, "no reset form either");
}

#[tokio::test]
async fn a_confirmed_address_belongs_to_one_account() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    register_confirmed(&app, &sink, "gil", "same@example.com").await;
    let other = client();
    let seen = sink.messages().len();
    app.post_form_by(
        &other,
        "/register/",
        &[
            ("username", "hal"),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
            ("email", "SAME@example.com"),
        ],
    )
    .await;
    let message = sink.next_to(seen, "SAME@example.com").await;
    let taken = other
        .get(app.url(path_of(&link(&message, "/verify-email/"))))
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    let account = app.get_by(&other, "/account").await.text().await.unwrap();
    assert!(account.contains("waiting for confirmation"), "{account}");
}

#[tokio::test]
async fn the_account_page_changes_the_address_with_the_password() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    register_confirmed(&app, &sink, "ida", "ida@example.com").await;
    let wrong = app
        .post_form(
            "/account/email",
            &[("email", "new@example.com"), ("current_password", "nope")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let bad = app
        .post_form(
            "/account/email",
            &[("email", "not an address"), ("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.text()
            .await
            .unwrap()
            .contains("Enter an email address like")
    );
    let seen = sink.messages().len();
    let saved = app
        .post_form(
            "/account/email",
            &[("email", "new@example.com"), ("current_password", PASSWORD)],
        )
        .await;
    assert_see_other(&saved, "/account?done=email");
    let message = sink.next_to(seen, "new@example.com").await;
    // The old address is free at once; the new one waits for its link.
    let page = app.get("/account?done=email").await.text().await.unwrap();
    assert!(
        page.contains("new@example.com</strong> is waiting for confirmation"),
        "{page}"
    );
    app.get(path_of(&link(&message, "/verify-email/"))).await;
    let page = app.get("/account").await.text().await.unwrap();
    assert!(
        page.contains("new@example.com</strong> is confirmed"),
        "{page}"
    );
    // Removing it.
    let removed = app
        .post_form_hx(
            "/account/email",
            &[("email", ""), ("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(removed.status(), StatusCode::OK);
    assert!(
        removed
            .text()
            .await
            .unwrap()
            .contains("The address was removed.")
    );
}

#[tokio::test]
async fn reset_requests_are_throttled_per_account_with_the_same_answer_for_all() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    for _ in 0..3 {
        let resp = app
            .post_form_by(&client(), "/forgot", &[("username", "nobody")])
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let fourth = app
        .post_form_by(&client(), "/forgot", &[("username", "NOBODY")])
        .await;
    assert_eq!(fourth.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(fourth.headers().contains_key("retry-after"));
    let other = app
        .post_form_by(&client(), "/forgot", &[("username", "somebody")])
        .await;
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test]
async fn reset_requests_from_one_address_are_limited_to_four_accounts_worth() {
    // 3 an hour per account, 12 per client address: the thirteenth name is refused.
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    for i in 0..12 {
        let name = format!("nobody{i}");
        let resp = app
            .post_form_by(&client(), "/forgot", &[("username", &name)])
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "{name}");
    }
    let over = app
        .post_form_by(&client(), "/forgot", &[("username", "nobody12")])
        .await;
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(over.headers().contains_key("retry-after"));
}

/// The real binary mailing through `smtp_url` (anything after it as extra flags), its
/// public URL its own address; returns it with that URL.
fn mail_binary(
    dir: &std::path::Path,
    smtp_url: &str,
    extra: &[&str],
) -> (crate::helpers::binary::Binary, String) {
    let port = free_port();
    let (addr, public) = (
        format!("127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}"),
    );
    let mut args = vec![
        "--addr",
        &addr,
        "--public-url",
        &public,
        "--smtp-url",
        smtp_url,
    ];
    args.extend_from_slice(&["--mail-from", "Wicket <wicket@example.com>"]);
    args.extend_from_slice(extra);
    (crate::helpers::binary::Binary::start(dir, &args), public)
}

/// POSTs `form` to `base` + `path` from `browser`, with the CSRF token a form page gave it.
async fn post_as(
    browser: &Client,
    base: &str,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let page = browser.get(format!("{base}/forgot")).send().await.unwrap();
    let token = hidden_csrf(&page.text().await.unwrap());
    let mut form = form.to_vec();
    form.push(("csrf", &token));
    browser
        .post(format!("{base}{path}"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn with_the_smtp_server_down_the_visitor_sees_the_same_and_the_mail_goes_later() {
    let mut sink = SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let (server, public) = mail_binary(dir.path(), &sink.url(), &["--throttle-forgot", "off"]);
    let browser = client();
    let post =
        async |path: &str, form: &[(&str, &str)]| post_as(&browser, &public, path, form).await;
    let registered = post(
        "/register/",
        &[
            ("username", "joe"),
            ("password", PASSWORD),
            ("confirm", PASSWORD),
            ("email", "joe@example.com"),
        ],
    )
    .await;
    assert_eq!(registered.status(), StatusCode::SEE_OTHER);
    let message = sink.next_to(0, "joe@example.com").await;
    let confirmed = browser
        .get(format!(
            "{public}{}",
            path_of(&link(&message, "/verify-email/"))
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), StatusCode::OK);

    sink.stop();
    let known = post("/forgot", &[("username", "joe")]).await;
    let (status, text) = (known.status(), known.text().await.unwrap());
    let unknown = post("/forgot", &[("username", "nobody")]).await;
    assert_eq!(
        (status, text),
        (unknown.status(), unknown.text().await.unwrap())
    );
    assert_eq!(status, StatusCode::OK);
    let log = server.wait_for_log("could not send mail; will retry", Duration::from_secs(10));
    let line = log
        .lines()
        .find(|l| l.contains("could not send mail"))
        .unwrap();
    assert!(
        line.contains("kind=Reset") && line.contains("domain=example.com"),
        "{line}"
    );
    assert!(!line.contains("joe@"), "no addresses in the log: {line}");

    let seen = sink.messages().len();
    sink.resume();
    let reset = sink.message_after(seen, Duration::from_secs(20)).await;
    assert!(
        reset.contains("Subject: Reset your Wicket password"),
        "{reset}"
    );
    server.wait_for_log("mail sent", Duration::from_secs(5));
    server.stop();
}

#[tokio::test]
async fn on_redis_tokens_are_hashed_keys_with_a_ttl_and_the_reset_works_once() {
    use redis_client::*;
    let redis = crate::helpers::redis::RedisServer::start();
    let sink = SmtpSink::start();
    let (smtp, port, store) = (sink.url().parse().unwrap(), free_port(), redis.url());
    let app = spawn_app_with(move |c| {
        c.addr = format!("127.0.0.1:{port}");
        c.public_url = Some(format!("http://127.0.0.1:{port}").parse().unwrap());
        c.smtp_url = Some(smtp);
        c.mail_from = Some("Wicket <wicket@example.com>".into());
        c.store = wicket::store::StoreKind::Redis(store);
        c.store_prefix = "mail".into();
    })
    .await;
    register_confirmed(&app, &sink, "kim", "kim@example.com").await;
    assert!(
        !app.config.data_dir.join("tokens").exists(),
        "no token files on Redis"
    );
    let reset = reset_link(&app, &sink, "kim@example.com").await;
    let token = &reset[reset.len() - 64..];
    let keys = keys(&redis, "mail:token:*");
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(!keys[0].contains(token), "stored by its hash");
    let ttl = ttl(&redis, &keys[0]);
    assert!(
        (1..=1800).contains(&ttl),
        "expires within 30 minutes: {ttl}"
    );
    assert_eq!(
        keys_of(&redis, "mail:email:*"),
        1,
        "the confirmed address is indexed"
    );

    let browser = client();
    assert_see_other(&app.get_by(&browser, path_of(&reset)).await, "/reset");
    let new = "a redis correct horse 9";
    let done = app
        .post_form_by(&browser, "/reset", &[("password", new), ("confirm", new)])
        .await;
    assert_see_other(&done, "/cabinet");
    assert!(keys_of(&redis, "mail:token:*") == 0, "used up");
    let again = client().get(app.url(path_of(&reset))).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::GONE);
}

/// Just enough RESP to look at keys (the test does not trust the app's own client).
mod redis_client {
    use std::io::{BufRead, BufReader, Write};

    fn command(redis: &crate::helpers::redis::RedisServer, args: &[&str]) -> Vec<String> {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
        let mut out = format!("*{}\r\n", args.len());
        for arg in args {
            out.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        conn.write_all(out.as_bytes()).unwrap();
        let mut reader = BufReader::new(conn);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let read_bulk = |reader: &mut BufReader<std::net::TcpStream>| {
            let mut head = String::new();
            reader.read_line(&mut head).unwrap();
            let mut value = String::new();
            reader.read_line(&mut value).unwrap();
            value.trim_end().to_owned()
        };
        match line.as_bytes()[0] {
            b'*' => {
                let n: usize = line[1..].trim().parse().unwrap();
                (0..n).map(|_| read_bulk(&mut reader)).collect()
            }
            b':' => vec![line[1..].trim().to_owned()],
            _ => panic!("unexpected reply {line:?}"),
        }
    }

    pub fn keys(redis: &crate::helpers::redis::RedisServer, pattern: &str) -> Vec<String> {
        command(redis, &["KEYS", pattern])
    }

    pub fn keys_of(redis: &crate::helpers::redis::RedisServer, pattern: &str) -> usize {
        keys(redis, pattern).len()
    }

    pub fn ttl(redis: &crate::helpers::redis::RedisServer, key: &str) -> i64 {
        command(redis, &["TTL", key])[0].parse().unwrap()
    }
}

#[tokio::test]
async fn an_expired_reset_link_gets_the_one_page_and_a_password_change_is_told() {
    let sink = SmtpSink::start();
    let app = mail_app(&sink).await;
    register_confirmed(&app, &sink, "lea", "lea@example.com").await;
    let reset = reset_link(&app, &sink, "lea").await;
    // Age this link's stored token past its 30 minutes (the file holds its expiry).
    expire_token(&app, &reset);
    let opened = client().get(app.url(path_of(&reset))).send().await.unwrap();
    assert_eq!(opened.status(), StatusCode::GONE);
    assert!(
        opened
            .text()
            .await
            .unwrap()
            .contains("This link cannot be used")
    );

    let new = "yet another correct horse";
    change_password(&app, new).await;
    let told = sink.with_subject("Your Wicket password was changed").await;
    assert!(
        told.contains("was changed at") && told.contains("To: lea@example.com"),
        "{told}"
    );
}

#[tokio::test]
async fn at_shutdown_unsent_mail_is_waited_for_and_then_counted_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let dead_smtp = format!("smtp://127.0.0.1:{}", free_port()); // nothing listens there
    let (server, public) = mail_binary(dir.path(), &dead_smtp, &[]);
    let form = [
        ("username", "max"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
        ("email", "max@example.com"),
    ];
    let registered = post_as(&client(), &public, "/register/", &form).await;
    assert_eq!(registered.status(), StatusCode::SEE_OTHER);
    server.wait_for_log("could not send mail; will retry", Duration::from_secs(10));
    let log = server.stop();
    assert!(
        log.contains("shutting down with mail not sent") && log.contains("waiting=1"),
        "{log}"
    );
}

/// An SMTP server that holds each message until the test lets it take it: it reports
/// the message as soon as its DATA is in, and answers only after a `go`.
struct GatedSmtp {
    port: u16,
    arrived: tokio::sync::mpsc::UnboundedReceiver<String>,
    go: std::sync::Arc<tokio::sync::Semaphore>,
    server: tokio::task::JoinHandle<()>,
}

impl GatedSmtp {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tell, arrived) = tokio::sync::mpsc::unbounded_channel();
        let go = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let gate = go.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(Self::converse(stream, tell.clone(), gate.clone()));
            }
        });
        Self {
            port,
            arrived,
            go,
            server,
        }
    }

    /// Just enough SMTP for lettre: every command is fine, DATA waits for a `go`.
    async fn converse(
        stream: tokio::net::TcpStream,
        tell: tokio::sync::mpsc::UnboundedSender<String>,
        go: std::sync::Arc<tokio::sync::Semaphore>,
    ) -> std::io::Result<()> {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 gated ESMTP\r\n").await?;
        while let Some(line) = lines.next_line().await? {
            let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "DATA" => {
                    write.write_all(b"354 go ahead\r\n").await?;
                    let mut message = String::new();
                    while let Some(line) = lines.next_line().await? {
                        if line == "." {
                            break;
                        }
                        message.push_str(&line);
                        message.push('\n');
                    }
                    let _ = tell.send(message);
                    go.acquire().await.expect("never closed").forget();
                    b"250 taken\r\n"
                }
                "QUIT" => b"221 bye\r\n",
                _ => b"250 ok\r\n",
            };
            write.write_all(reply).await?;
        }
        Ok(())
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The next message to reach the server (not yet taken).
    async fn next(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(10), self.arrived.recv())
            .await
            .expect("a message reaches the server within 10 s")
            .unwrap()
    }
}

impl Drop for GatedSmtp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Whether the app's outbox is settled right now (polled once, no waiting).
async fn settled_now(app: &TestApp) -> bool {
    let outbox = &app.state.mail.as_ref().unwrap().outbox;
    tokio::select! {
        biased;
        () = outbox.idle() => true,
        () = std::future::ready(()) => false,
    }
}

#[tokio::test]
async fn mail_is_settled_only_once_a_slow_server_has_taken_it() {
    let mut smtp = GatedSmtp::start().await;
    let app = mail_app_via(&smtp.url()).await;
    let form = [
        ("username", "nia"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
        ("email", "nia@example.com"),
    ];
    assert_see_other(&app.post_form("/register/", &form).await, "/cabinet");
    // The confirmation is at the server, which has not taken it yet.
    let verify = smtp.next().await;
    assert!(!settled_now(&app).await, "the server has not taken it");
    smtp.go.add_permits(1);
    app.mail_settled().await;
    let confirmed = app.get(path_of(&link(&verify, "/verify-email/"))).await;
    assert_eq!(confirmed.status(), StatusCode::OK);

    // A reset is looked up and mailed after /forgot answers: from that answer until
    // the server took the mail, the outbox is not settled.
    let asked = app
        .post_form_by(&client(), "/forgot", &[("username", "nia")])
        .await;
    assert_eq!(asked.status(), StatusCode::OK);
    assert!(!settled_now(&app).await, "the lookup may still mail");
    let reset = smtp.next().await;
    assert!(
        reset.contains("Subject: Reset your Wicket password"),
        "{reset}"
    );
    assert!(!settled_now(&app).await, "the server has not taken it");
    smtp.go.add_permits(1);
    app.mail_settled().await;
}
