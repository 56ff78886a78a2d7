//! The guessing defence under attack: device cookies keep the owner in, the throttle
//! table cannot be flushed, IPv6 clients are counted per network, and one limit holds
//! across instances.

use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::cookie::Jar;
use wicket::store::{MemoryCounters, Stores};

use crate::helpers::redis::RedisServer;
use crate::helpers::*;

const WRONG: &str = "not the password at all";

/// A login attempt as `browser` would make it.
async fn login_by(
    app: &TestApp,
    browser: &reqwest::Client,
    name: &str,
    password: &str,
) -> StatusCode {
    app.post_form_by(
        browser,
        "/login",
        &[("username", name), ("password", password)],
    )
    .await
    .status()
}

/// Five wrong guesses from `attacker`: the account's limit for unknown browsers.
async fn lock(app: &TestApp, attacker: &reqwest::Client, name: &str) {
    for _ in 0..5 {
        assert_eq!(
            login_by(app, attacker, name, WRONG).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_by(app, attacker, name, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "locked for unknown browsers, even with the right password"
    );
}

/// The device cookie a response sets, as `name=value`.
fn device_cookie(resp: &reqwest::Response) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("wicket_device="))
        .expect("a device cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// A fresh browser holding `cookie` (`name=value`).
fn browser_with(app: &TestApp, cookie: &str) -> reqwest::Client {
    let jar = Arc::new(Jar::default());
    jar.add_cookie_str(&format!("{cookie}; Path=/"), &app.base.parse().unwrap());
    reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_attack_on_an_account_locks_out_unknown_browsers_but_not_the_owners() {
    let app = spawn_app().await;
    let registered = app.register("alice", PASSWORD).await;
    let text = registered
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains("wicket_device=") && text.contains("Max-Age=31536000"),
        "{text}"
    );
    app.logout().await;

    lock(&app, &client(), "alice").await;
    assert_eq!(
        login_by(&app, &client(), "alice", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "another unknown browser is locked out too"
    );
    // The owner's browser, known to the account, logs in.
    assert_see_other(&app.login("alice", PASSWORD).await, "/cabinet");
    app.logout().await;
    // It has a limit of its own.
    for _ in 0..5 {
        assert_eq!(
            login_by(&app, &app.client, "alice", WRONG).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_by(&app, &app.client, "alice", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_device_cookie_counts_only_for_its_own_account_and_cannot_be_forged() {
    let app = spawn_app().await;
    app.register("bob", PASSWORD).await;
    let alices = device_cookie(&app.register_by(&client(), "alice", PASSWORD).await);
    lock(&app, &client(), "bob").await;
    // Alice's genuine device cookie is nothing to bob's account …
    let alices_browser = browser_with(&app, &alices);
    assert_eq!(
        login_by(&app, &alices_browser, "bob", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // … and rewriting it to name bob's account breaks its signature.
    let (alice_id, bob_id) = (account_id(&app, "alice"), account_id(&app, "bob"));
    let forged = alices.replacen(
        &format!("wicket_device={alice_id}"),
        &format!("wicket_device={bob_id}"),
        1,
    );
    assert_ne!(forged, alices);
    assert_eq!(
        login_by(&app, &browser_with(&app, &forged), "bob", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The real one still works for alice.
    assert_eq!(
        login_by(&app, &alices_browser, "alice", PASSWORD).await,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_flood_of_refused_guesses_from_one_address_does_not_flush_a_lockout() {
    // A small table, so that a flood would overflow it.
    let app = spawn_app_wrapping(
        |_| {},
        |stores| Stores {
            counters: Arc::new(MemoryCounters::new(100)),
            ..stores
        },
    )
    .await;
    app.register_by(&client(), "alice", PASSWORD).await;
    let attacker = client();
    lock(&app, &attacker, "alice").await;
    // The address may fail 20 times: 15 more names, then every new name is refused
    // without a key being stored — 300 of them, three times the table.
    let mut refused = 0;
    for i in 0..315 {
        let status = login_by(&app, &attacker, &format!("victim{i}"), WRONG).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert_eq!(refused, 300);
    for _ in 0..5 {
        assert_eq!(
            login_by(&app, &client(), "alice", WRONG).await,
            StatusCode::TOO_MANY_REQUESTS,
            "the lockout held"
        );
    }
}

#[tokio::test]
async fn a_flood_from_many_addresses_fills_the_table_without_evicting_a_lockout() {
    let app = spawn_app_wrapping(
        |c| c.trusted_proxies = "127.0.0.1".parse().unwrap(),
        |stores| Stores {
            counters: Arc::new(MemoryCounters::new(100)),
            ..stores
        },
    )
    .await;
    app.register_by(&client(), "alice", PASSWORD).await;
    lock(&app, &client(), "alice").await;
    // 150 addresses, one wrong guess each on a name of its own: 300 new keys.
    for i in 0..150 {
        let browser = client();
        let token = csrf_token_of(&browser, &app).await;
        let status = browser
            .post(app.url("/login"))
            .header("x-forwarded-for", format!("198.51.100.{}", i % 250 + 1))
            .form(&[
                ("username", format!("victim{i}").as_str()),
                ("password", WRONG),
                ("csrf", &token),
            ])
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "room is made for newcomers"
        );
    }
    assert_eq!(
        login_by(&app, &client(), "alice", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the lockout was not evicted"
    );
}

#[tokio::test]
async fn ipv6_clients_are_counted_per_network() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = "127.0.0.1".parse().unwrap();
        c.throttle_register = "2/1h".parse().unwrap();
    })
    .await;
    let register_from = |name: &'static str, address: &'static str| {
        let app = &app;
        async move { register_from(app, &client(), name, address).await.status() }
    };
    assert_eq!(
        register_from("ann", "2001:db8:1:2::1").await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        register_from("amy", "2001:db8:1:2::2").await,
        StatusCode::SEE_OTHER
    );
    // Another address of the same /64: the same client.
    assert_eq!(
        register_from("ada", "2001:db8:1:2:ffff:ffff:ffff:3").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        register_from("abe", "2001:db8:1:3::1").await,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn guesses_spread_over_two_instances_meet_one_limit() {
    let redis = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}/0", redis.port);
    let first = spawn_app_with(|c| c.store = url.parse().unwrap()).await;
    let second = spawn_app_with(|c| c.store = url.parse().unwrap()).await;
    first.register_by(&client(), "alice", PASSWORD).await;
    let attacker = client();
    for app in [&first, &second, &first, &second, &first] {
        assert_eq!(
            login_by(app, &attacker, "alice", WRONG).await,
            StatusCode::UNAUTHORIZED
        );
    }
    for app in [&first, &second] {
        assert_eq!(
            login_by(app, &client(), "alice", PASSWORD).await,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    drop(redis);
}

#[tokio::test]
async fn a_planted_session_cookie_beside_the_real_one_logs_nobody_out() {
    let app = spawn_app().await;
    let cookie = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    let forged =
        "wicket_session=0000000000000000000000000000000000000000000000000000000000000000.00";
    for planted in [format!("{forged}; {cookie}"), format!("{cookie}; {forged}")] {
        let resp = app.get_with_cookie("/cabinet", &planted).await;
        assert_eq!(resp.status(), StatusCode::OK, "{planted}");
        let cleared = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap().starts_with("wicket_session="));
        assert!(!cleared, "the real cookie was cleared: {planted}");
    }
    // A stale cookie alone is still cleared.
    let alone = app.get_with_cookie("/cabinet", forged).await;
    assert_see_other(&alone, "/?next=/cabinet");
}

#[tokio::test]
async fn any_number_of_bogus_session_cookies_ahead_of_the_real_one_logs_nobody_out() {
    let app = spawn_app().await;
    let cookie = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    let (id, mac) = cookie
        .trim_start_matches("wicket_session=")
        .split_once('.')
        .unwrap();
    // Sessions that were genuine once and have ended: their signatures hold, their
    // records are gone. Nine of them, more than any small cap on genuine ids.
    app.register_by(&client(), "bobby", PASSWORD).await;
    let mut ended = Vec::new();
    for _ in 0..9 {
        let other = client();
        let form = [("username", "bobby"), ("password", PASSWORD)];
        let resp = app.post_form_by(&other, "/login", &form).await;
        ended.push(session_cookie(&resp).unwrap());
        app.post_form_by(&other, "/logout", &[]).await;
    }
    // Well-formed but forged (an unknown id with a MAC of the right shape, the real id
    // with a wrong MAC), garbage, and nine genuine but ended: 28 ahead of the real one.
    let mut bogus: Vec<String> = (0..19)
        .map(|n| match n % 3 {
            0 => format!("wicket_session={n:064x}.{mac}"),
            1 => format!("wicket_session={id}.{n:064x}"),
            _ => format!("wicket_session=garbage-{n}"),
        })
        .collect();
    bogus.extend(ended);
    let header = format!("{}; {cookie}", bogus.join("; "));
    let resp = app.get_with_cookie("/cabinet", &header).await;
    assert_eq!(resp.status(), StatusCode::OK, "alice was logged out");
    assert!(
        session_set_cookie(&resp).is_none(),
        "the real cookie was cleared"
    );
    assert!(resp.text().await.unwrap().contains("alice"));
}

#[tokio::test]
async fn easily_guessed_passwords_are_refused_everywhere_with_a_reason() {
    let app = spawn_app().await;
    for (name, weak) in [
        ("alice", "aaaaaaaaaaaa"),
        ("alice", "alicealice"),
        ("bobby", "bobbybobby1"),
    ] {
        let resp = app.register(name, weak).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{weak}");
        let page = resp.text().await.unwrap();
        assert!(
            page.contains("This password would be easy to guess."),
            "{weak}: {page}"
        );
    }
    assert!(app.user_files().is_empty());
    assert_see_other(&app.register("alice", PASSWORD).await, "/cabinet");
    let changed = app
        .post_form(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("password", "alicealicealice"),
                ("confirm", "alicealicealice"),
            ],
        )
        .await;
    assert_eq!(changed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(changed.text().await.unwrap().contains("easy to guess"));
}

/// POSTs `form` to `path` from a fresh browser whose requests a trusted proxy says
/// came from `forwarded`.
async fn post_from(
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
    forwarded: &str,
) -> StatusCode {
    let browser = client();
    let token = csrf_token_of(&browser, app).await;
    let mut fields = form.to_vec();
    fields.push(("csrf", &token));
    browser
        .post(app.url(path))
        .header("x-forwarded-for", forwarded)
        .form(&fields)
        .send()
        .await
        .unwrap()
        .status()
}

/// An app behind a trusted proxy on 127.0.0.1 whose memory counters keep 100 keys of
/// a kind exactly (a scaled-down table), mailing into a directory.
async fn small_table_app() -> (TestApp, tempfile::TempDir) {
    let mail = tempfile::tempdir().unwrap();
    let dir = mail.path().to_owned();
    let app = spawn_app_wrapping(
        |c| {
            c.trusted_proxies = "127.0.0.1".parse().unwrap();
            c.mail_dir = Some(dir);
        },
        |stores| Stores {
            counters: Arc::new(MemoryCounters::new(100)),
            ..stores
        },
    )
    .await;
    (app, mail)
}

/// `n` distinct client addresses, each asking for reset links until its limit (12 an
/// hour) refuses it: a table full of live lockouts.
async fn forgot_flood(app: &TestApp, n: usize) {
    for i in 0..n {
        let address = format!("10.{}.{}.{}", i / 65_536, i / 256 % 256, i % 256);
        let browser = client();
        let token = csrf_token_of(&browser, app).await;
        for _ in 0..13 {
            let status = browser
                .post(app.url("/forgot"))
                .header("x-forwarded-for", &address)
                .form(&[("username", "nobody"), ("csrf", &token)])
                .send()
                .await
                .unwrap()
                .status();
            assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR);
        }
    }
}

#[tokio::test]
async fn a_forgot_flood_from_many_addresses_leaves_every_login_limit_whole() {
    // Finding 1 of the attack pass, scaled down: a flood of new counters (3x the
    // table) from distinct addresses, then guesses on one account from one address.
    let (app, _mail) = small_table_app().await;
    app.register_by(&client(), "alice", PASSWORD).await;
    forgot_flood(&app, 150).await;
    let attacker = client();
    let mut checked = 0;
    for _ in 0..12 {
        if login_by(&app, &attacker, "alice", WRONG).await == StatusCode::UNAUTHORIZED {
            checked += 1;
        }
    }
    assert_eq!(checked, 5, "the account's limit of 5 held after the flood");
}

#[tokio::test]
async fn guesses_before_and_after_a_flood_of_new_names_share_one_window() {
    // 4 guesses, a flood of new account keys through many addresses, then more
    // guesses: the account's window was not evicted, so only one more is checked.
    let (app, _mail) = small_table_app().await;
    app.register_by(&client(), "alice", PASSWORD).await;
    let attacker = client();
    for _ in 0..4 {
        assert_eq!(
            login_by(&app, &attacker, "alice", WRONG).await,
            StatusCode::UNAUTHORIZED
        );
    }
    for i in 0..300 {
        let (name, address) = (
            format!("victim{i}"),
            format!("10.9.{}.{}", i / 256, i % 256),
        );
        let form = [("username", name.as_str()), ("password", WRONG)];
        let status = post_from(&app, "/login", &form, &address).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "newcomers are still served"
        );
    }
    let mut checked = 0;
    for _ in 0..5 {
        if login_by(&app, &attacker, "alice", WRONG).await == StatusCode::UNAUTHORIZED {
            checked += 1;
        }
    }
    assert_eq!(checked, 1, "5 per window in all");
}
