//! Forward-auth: `/auth/request` (nginx) and `/auth/forward` (Caddy, Traefik) asked
//! as a proxy asks, every policy and matching case, the identity headers, who may
//! ask, and where a login returns to (`rd`). The real proxies are in the browser suite.

use reqwest::{Client, Response, StatusCode};
use wicket::domain::{Group, Username};

use crate::helpers::totp::{enable, step_now, totp};
use crate::helpers::*;

pub const RULES: &str = r#"
[[rule]]
host = "app.test"
path = "/admin"
policy = "deny"

[[rule]]
host = "app.test"
path = "/open"
policy = "public"

[[rule]]
host = "app.test"
path = "/team"
groups = ["team"]

[[rule]]
host = "app.test"
path = "/strong"
policy = "two-step"

[[rule]]
host = "app.test"
path = "/api/**"
methods = ["POST"]
policy = "deny"

[[rule]]
host = "*.apps.test"
policy = "members"

[[rule]]
host = "app.test"
policy = "members"
"#;

/// An app that trusts loopback proxies and guards `app.test` with [`RULES`].
pub async fn guarding_app(change: impl FnOnce(&mut wicket::config::Config)) -> TestApp {
    spawn_app_with(|c| {
        let file = c.data_dir.with_file_name("rules.toml");
        std::fs::write(&file, RULES).unwrap();
        c.access_rules = Some(file);
        c.trusted_proxies = "127.0.0.1".parse().unwrap();
        change(c);
    })
    .await
}

/// `GET /auth/request` as nginx asks it, for `method url`, from `browser`'s cookies.
pub async fn nginx_asks(app: &TestApp, browser: &Client, method: &str, url: &str) -> Response {
    browser
        .get(app.url("/auth/request"))
        .header("X-Original-URL", url)
        .header("X-Original-Method", method)
        .send()
        .await
        .unwrap()
}

/// `GET /auth/forward` as Caddy asks it.
async fn caddy_asks(
    app: &TestApp,
    browser: &Client,
    method: &str,
    uri: &str,
    extra: &[(&str, &str)],
) -> Response {
    let mut request = browser
        .get(app.url("/auth/forward"))
        .header("X-Forwarded-Method", method)
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "app.test")
        .header("X-Forwarded-Uri", uri);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn identity(resp: &Response) -> (String, String, String) {
    let get = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no {name} in {:?}", resp.headers()))
    };
    (
        get("remote-user"),
        get("remote-groups"),
        get("remote-email"),
    )
}

#[tokio::test]
async fn each_policy_decides_for_nobody_and_for_a_member() {
    let app = guarding_app(|_| {}).await;
    let nobody = client();
    let ann = client();
    app.register_by(&ann, "ann", PASSWORD).await;
    let ask = |browser, method, path: &str| {
        let url = format!("https://app.test{path}");
        let app = &app;
        async move { nginx_asks(app, browser, method, &url).await.status() }
    };
    use StatusCode as S;
    for (method, path, for_nobody, for_ann) in [
        ("GET", "/open/x", S::OK, S::OK),
        ("GET", "/", S::UNAUTHORIZED, S::OK),
        ("GET", "/wiki/page", S::UNAUTHORIZED, S::OK),
        ("GET", "/admin", S::FORBIDDEN, S::FORBIDDEN),
        ("GET", "/admin/users", S::FORBIDDEN, S::FORBIDDEN),
        ("GET", "/team/board", S::UNAUTHORIZED, S::FORBIDDEN),
        ("GET", "/strong", S::UNAUTHORIZED, S::UNAUTHORIZED),
        ("POST", "/api/v1/items", S::FORBIDDEN, S::FORBIDDEN),
        ("GET", "/api/v1/items", S::UNAUTHORIZED, S::OK),
    ] {
        assert_eq!(
            ask(&nobody, method, path).await,
            for_nobody,
            "nobody {method} {path}"
        );
        assert_eq!(
            ask(&ann, method, path).await,
            for_ann,
            "ann {method} {path}"
        );
    }
    // Hosts: a wildcard covers names below it; an unnamed host is denied.
    let on = |host: &str| format!("https://{host}/");
    assert_eq!(
        nginx_asks(&app, &ann, "GET", &on("x.apps.test"))
            .await
            .status(),
        S::OK
    );
    assert_eq!(
        nginx_asks(&app, &ann, "GET", &on("apps.test"))
            .await
            .status(),
        S::FORBIDDEN
    );
    assert_eq!(
        nginx_asks(&app, &ann, "GET", &on("evil.test"))
            .await
            .status(),
        S::FORBIDDEN
    );
    assert_eq!(
        nginx_asks(&app, &ann, "GET", &on("APP.test."))
            .await
            .status(),
        S::OK
    );

    // In the group, the group's pages open; out of it again, they close.
    join(&app, "ann", "team").await;
    assert_eq!(ask(&ann, "GET", "/team/board").await, S::OK);
    let user = app
        .state
        .users
        .get(&Username::parse("ann").unwrap())
        .await
        .unwrap()
        .unwrap();
    let team = Group::parse("team").unwrap();
    app.state
        .accounts
        .set_group(&user, &team, false)
        .await
        .unwrap();
    assert_eq!(ask(&ann, "GET", "/team/board").await, S::FORBIDDEN);
}

#[tokio::test]
async fn a_member_is_named_to_the_app_and_nobody_is_not() {
    let app = guarding_app(|_| {}).await;
    let ann = client();
    app.register_by(&ann, "Ann", PASSWORD).await;
    join(&app, "ann", "team").await;
    join(&app, "ann", "Ops").await;
    let resp = nginx_asks(&app, &ann, "GET", "https://app.test/team").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        identity(&resp),
        ("Ann".into(), "ops,team".into(), String::new())
    );
    let text: String = format!("{:?}", resp.headers());
    let file = app.session_files().pop().unwrap();
    let id = file.file_stem().unwrap().to_str().unwrap();
    assert!(!text.contains(&id[..16]), "nothing of the session: {text}");

    // Only a confirmed address is named.
    let user = Username::parse("ann").unwrap();
    let set = |verified: bool| {
        move |u: &mut wicket::store::User| {
            u.email = Some(wicket::store::Email {
                address: "ann@example.com".into(),
                verified,
            });
        }
    };
    app.state.users.update(&user, &set(false)).await.unwrap();
    let resp = caddy_asks(&app, &ann, "GET", "/team", &[]).await;
    assert_eq!(identity(&resp).2, "");
    app.state.users.update(&user, &set(true)).await.unwrap();
    let resp = caddy_asks(&app, &ann, "GET", "/team", &[]).await;
    assert_eq!(identity(&resp).2, "ann@example.com");

    // A public page lets nobody through, naming nobody: empty headers, which
    // overwrite any a client sent.
    let resp = nginx_asks(&app, &client(), "GET", "https://app.test/open").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(identity(&resp), Default::default());
}

#[tokio::test]
async fn nobody_is_sent_to_log_in_with_the_page_to_return_to() {
    let app =
        guarding_app(|c| c.public_url = Some("http://login.test:5000".parse().unwrap())).await;
    let nobody = client();
    let resp = nginx_asks(&app, &nobody, "GET", "https://app.test/wiki/a b?x=1&y=2").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        location(&resp),
        "http://login.test:5000/?rd=https%3A%2F%2Fapp.test%2Fwiki%2Fa%2520b%3Fx%3D1%26y%3D2"
    );
    // Caddy: a navigation is redirected; a form post or an htmx request cannot follow one.
    let resp = caddy_asks(&app, &nobody, "GET", "/wiki", &[]).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(
        location(&resp),
        "http://login.test:5000/?rd=https%3A%2F%2Fapp.test%2Fwiki"
    );
    for (method, extra) in [("POST", None), ("GET", Some(("HX-Request", "true")))] {
        let extra: Vec<_> = extra.into_iter().collect();
        let resp = caddy_asks(&app, &nobody, method, "/wiki", &extra).await;
        assert_eq!(
            resp.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {extra:?}"
        );
    }
    // Caddy shows Wicket's 403 as it is: a page of its own, styled inline.
    let resp = caddy_asks(&app, &nobody, "GET", "/admin", &[]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let page = resp.text().await.unwrap();
    assert!(page.contains("Not allowed") && page.contains("http://login.test:5000/account"));
}

#[tokio::test]
async fn only_trusted_proxies_may_ask() {
    let app = spawn_app_with(|c| {
        let file = c.data_dir.with_file_name("rules.toml");
        std::fs::write(&file, RULES).unwrap();
        c.access_rules = Some(file);
        c.trusted_proxies = "10.0.0.1".parse().unwrap();
    })
    .await;
    let ann = client();
    app.register_by(&ann, "ann", PASSWORD).await;
    let resp = nginx_asks(&app, &ann, "GET", "https://app.test/open").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.headers().get("remote-user").is_none());
    let resp = caddy_asks(&app, &ann, "GET", "/wiki", &[]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.headers().get("remote-user").is_none());
}

#[tokio::test]
async fn paths_are_matched_as_the_app_will_read_them() {
    let app = guarding_app(|_| {}).await;
    let ann = client();
    app.register_by(&ann, "ann", PASSWORD).await;
    for path in [
        "/admin",
        "/open/../admin",
        "/open/%2e%2e/admin",
        "/open%2F..%2Fadmin",
        "/%61dmin",
        "//admin",
        "/./admin",
        "/open/..%5cadmin",
        "/admin;x",
        "/x/..;/admin",
        "/;/admin",
    ] {
        let resp = nginx_asks(&app, &ann, "GET", &format!("https://app.test{path}")).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
        let resp = caddy_asks(&app, &ann, "GET", path, &[]).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "caddy {path}");
    }
    // What no app should get is refused outright.
    for path in ["/open/%00", "/open/%zz", "/open/%0d%0aX:1"] {
        let resp = nginx_asks(&app, &ann, "GET", &format!("https://app.test{path}")).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
    }
}

#[tokio::test]
async fn a_check_touches_the_session_no_more_often_than_a_page_view() {
    let app = guarding_app(|_| {}).await;
    let ann = client();
    app.register_by(&ann, "ann", PASSWORD).await;
    let file = app.session_files().pop().unwrap();
    let seen = || {
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        record["last_seen"].as_str().unwrap().to_owned()
    };
    set_session_time(&file, "last_seen", time::Duration::seconds(10));
    let before = seen();
    for _ in 0..3 {
        let resp = nginx_asks(&app, &ann, "GET", "https://app.test/").await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    assert_eq!(seen(), before, "within a minute: not written");
    set_session_time(&file, "last_seen", time::Duration::seconds(120));
    let stale = seen();
    nginx_asks(&app, &ann, "GET", "https://app.test/").await;
    assert_ne!(
        seen(),
        stale,
        "a minute on: activity recorded, as a page view would"
    );
}

#[tokio::test]
async fn a_login_returns_to_a_guarded_page_and_anywhere_else_falls_back() {
    let app = guarding_app(|c| c.cookie_domain = None).await;
    app.register("ann", PASSWORD).await;
    app.logout().await;
    let login = |next: String| {
        let app = &app;
        async move {
            let browser = client();
            let form = [
                ("username", "ann"),
                ("password", PASSWORD),
                ("next", next.as_str()),
            ];
            app.post_form_by(&browser, "/login", &form).await
        }
    };
    for (next, to) in [
        ("https://app.test/wiki?x=1", "https://app.test/wiki?x=1"),
        ("https://x.apps.test/", "https://x.apps.test/"),
        ("/account", "/account"),
    ] {
        assert_see_other(&login(next.into()).await, to);
    }
    for trick in [
        "https://evil.test/",
        "//app.test/",
        "https://app.test@evil.test/",
        "https://evil.test\\@app.test/",
        "https:\\\\app.test",
        "https://app.test.evil.test/",
        "https://app.test./",
        "javascript://app.test/%0aalert(1)",
        "ftp://app.test/",
        "https://аpp.test/",
    ] {
        assert_see_other(&login(trick.into()).await, "/cabinet");
    }
    // The login page carries a good rd into its form, and drops a bad one.
    let page = app
        .get_by(&client(), "/?rd=https%3A%2F%2Fapp.test%2Fwiki")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"name="next" value="https://app.test/wiki""#),
        "{page}"
    );
    let page = app
        .get_by(&client(), "/?rd=https%3A%2F%2Fevil.test%2F")
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("evil.test"));
    // `/login` (where the form posts) sends a browser to the form with its rd.
    let resp = app
        .get_by(&client(), "/login?rd=https%3A%2F%2Fapp.test%2Fwiki")
        .await;
    assert_see_other(&resp, "/?rd=https%3A%2F%2Fapp.test%2Fwiki");
    // htmx is told the same place.
    let browser = client();
    let form = [
        ("username", "ann"),
        ("password", PASSWORD),
        ("next", "https://app.test/x"),
    ];
    let resp = app.post_form_as_hx(&browser, "/login", &form).await;
    assert_hx_redirect(&resp, "https://app.test/x");
}

#[tokio::test]
async fn a_login_with_a_code_returns_to_rd_and_counts_as_a_second_factor() {
    let app = guarding_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let enabled = enable(&app, step_now()).await;
    // This session logged in with a password only: the two-step page needs a step up.
    let resp = nginx_asks(&app, &app.client, "GET", "https://app.test/strong").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        location(&resp),
        "/login/step-up?rd=https%3A%2F%2Fapp.test%2Fstrong"
    );

    let browser = client();
    let form = [
        ("username", "ann"),
        ("password", PASSWORD),
        ("next", "https://app.test/strong"),
    ];
    let resp = app.post_form_by(&browser, "/login", &form).await;
    assert!(resp.text().await.unwrap().contains("Two-step login"));
    let code = totp(&enabled.key, step_now() + 1, 6);
    let resp = app
        .post_form_by(&browser, "/login/code", &[("code", &code)])
        .await;
    assert_see_other(&resp, "https://app.test/strong");
    let resp = nginx_asks(&app, &browser, "GET", "https://app.test/strong").await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn stepping_up_with_a_code_opens_two_step_pages_under_a_new_session_id() {
    let app = guarding_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let enabled = enable(&app, step_now()).await;
    let strong = "https://app.test/strong";
    assert_eq!(
        nginx_asks(&app, &app.client, "GET", strong).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let page = app
        .get("/login/step-up?rd=https%3A%2F%2Fapp.test%2Fstrong")
        .await;
    let page = page.text().await.unwrap();
    assert!(
        page.contains("Confirm it is you") && page.contains(r#"name="code""#),
        "{page}"
    );
    let before = app.session_files();
    let form = [("code", "000000"), ("next", strong)];
    let resp = app.post_form("/login/step-up", &form).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        nginx_asks(&app, &app.client, "GET", strong).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let code = totp(&enabled.key, step_now() + 1, 6);
    let resp = app
        .post_form(
            "/login/step-up",
            &[("code", code.as_str()), ("next", strong)],
        )
        .await;
    assert_see_other(&resp, strong);
    assert!(session_set_cookie(&resp).is_some(), "a new session id");
    let after = app.session_files();
    assert_eq!(after.len(), 1);
    assert!(!before.contains(&after[0]), "the old id is gone");
    let resp = nginx_asks(&app, &app.client, "GET", strong).await;
    assert_eq!(resp.status(), StatusCode::OK);
    // Stepped up already: the page sends the browser straight on.
    assert_see_other(
        &app.get("/login/step-up?rd=https%3A%2F%2Fapp.test%2Fstrong")
            .await,
        strong,
    );
}

#[tokio::test]
async fn a_member_without_a_second_factor_is_told_how_to_get_one() {
    let app = guarding_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    let page = app
        .get("/login/step-up?rd=https%3A%2F%2Fapp.test%2Fstrong")
        .await;
    let page = page.text().await.unwrap();
    assert!(page.contains("does not have yet") && !page.contains(r#"name="code""#));
    // Nobody logged in is sent to log in first, and back here after.
    let resp = app.get_by(&client(), "/login/step-up").await;
    assert_see_other(&resp, "/?next=/login/step-up");
}

#[tokio::test]
async fn logging_out_ends_access_to_every_app_at_once() {
    let app = guarding_app(|_| {}).await;
    app.register("ann", PASSWORD).await;
    for host in ["app.test", "x.apps.test"] {
        let url = format!("https://{host}/");
        assert_eq!(
            nginx_asks(&app, &app.client, "GET", &url).await.status(),
            StatusCode::OK
        );
    }
    app.logout().await;
    for host in ["app.test", "x.apps.test"] {
        let url = format!("https://{host}/");
        assert_eq!(
            nginx_asks(&app, &app.client, "GET", &url).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn a_cookie_domain_shares_a_secure_session_cookie_and_logout_clears_it_there() {
    let app = guarding_app(|c| {
        c.secure_cookies = true;
        c.cookie_domain = Some("wicket.test".into());
    })
    .await;
    let resp = app.register("ann", PASSWORD).await;
    let set: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session = set
        .iter()
        .find(|c| c.starts_with("__Secure-wicket_session="))
        .unwrap_or_else(|| panic!("{set:?}"));
    assert!(
        session.contains("Domain=wicket.test") && session.contains("Secure"),
        "{session}"
    );
    // The CSRF cookie stays on Wicket's own host.
    assert!(set.iter().any(|c| c.starts_with("__Host-")), "{set:?}");
}

#[tokio::test]
async fn a_cookie_domain_without_tls_or_not_covering_the_site_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.cookie_domain = Some("wicket.test".into());
    let err = wicket::app::Application::build(&config)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("needs --secure-cookies"), "{err}");
    config.secure_cookies = true;
    config.public_url = Some("https://login.other.test".parse().unwrap());
    let err = wicket::app::Application::build(&config)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("does not cover"), "{err}");
}

#[tokio::test]
async fn a_bad_rules_file_stops_start_up_naming_file_line_and_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    let file = dir.path().join("rules.toml");
    std::fs::write(
        &file,
        "[[rule]]\nhost = \"app.test\"\npolicy = \"sometimes\"\n",
    )
    .unwrap();
    config.access_rules = Some(file.clone());
    let err = wicket::app::Application::build(&config)
        .await
        .err()
        .unwrap();
    let said = err.to_string();
    assert!(said.contains(&format!("{}:3: ", file.display())), "{said}");
    assert!(said.contains("public") && said.contains("deny"), "{said}");
}

#[tokio::test]
async fn two_instances_on_one_redis_decide_alike() {
    let redis = crate::helpers::redis::RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.key");
    let instance = |secret: std::path::PathBuf| {
        let url = redis.url();
        guarding_app(move |c| {
            c.store = wicket::store::StoreKind::Redis(url);
            c.store_prefix = "guard".into();
            c.secret_key_file = Some(secret);
        })
    };
    let a = instance(secret.clone()).await;
    let b = instance(secret).await;
    let ann = client();
    a.register_by(&ann, "ann", PASSWORD).await;
    join(&a, "ann", "team").await;
    // Cookies ignore ports: the browser sends a's cookie to b (both on 127.0.0.1).
    let resp = nginx_asks(&b, &ann, "GET", "https://app.test/team").await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "b reads a's session and groups"
    );
    assert_eq!(identity(&resp).1, "team");
    a.post_form_by(&ann, "/logout", &[]).await;
    let resp = nginx_asks(&b, &ann, "GET", "https://app.test/team").await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "logged out on a: out on b"
    );
}

#[tokio::test]
async fn the_page_policy_lets_forms_lead_to_guarded_apps_and_nowhere_else() {
    let csp = |resp: &Response| {
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let plain = spawn_app().await;
    assert!(csp(&plain.get("/").await).contains("form-action 'self';"));
    let app = guarding_app(|c| {
        c.secure_cookies = true;
        c.cookie_domain = Some("wicket.test".into());
    })
    .await;
    let policy = csp(&app.get("/").await);
    let form_action = policy
        .split("; ")
        .find(|d| d.starts_with("form-action"))
        .unwrap();
    for source in [
        "'self'",
        "https://wicket.test:*",
        "https://*.wicket.test:*",
        "https://app.test:*",
        "https://*.apps.test:*",
    ] {
        assert!(
            form_action.split(' ').any(|s| s == source),
            "{source} not in {form_action}"
        );
    }
    assert!(!form_action.contains("evil"), "{form_action}");
    assert!(
        policy.contains("script-src 'self';"),
        "the rest is as strict: {policy}"
    );
}

#[tokio::test]
async fn a_host_that_is_not_only_a_host_or_a_header_sent_twice_is_refused() {
    let app = guarding_app(|_| {}).await;
    let ann = client();
    app.register_by(&ann, "ann", PASSWORD).await;
    // `?`, `#` or `/` in the host would move the real path into a query or elsewhere.
    for url in [
        "https://app.test?/admin",
        "https://app.test#/admin",
        "https://app.test\\x?/admin",
        "https://app.test:443?/admin",
    ] {
        let resp = nginx_asks(&app, &ann, "GET", url).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{url}");
    }
    for host in [
        "app.test?",
        "app.test#",
        "app.test/x?",
        "app.test\\x?",
        "app.test ?",
    ] {
        let resp = ann
            .get(app.url("/auth/forward"))
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", host)
            .header("X-Forwarded-Uri", "/admin")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{host}");
    }
    let resp = caddy_asks(&app, &ann, "GET", "admin", &[]).await;
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "a URI without its slash"
    );
    // A proxy that appends its header after the client's must not let the first count.
    let resp = ann
        .get(app.url("/auth/request"))
        .header("X-Original-URL", "https://app.test/wiki")
        .header("X-Original-URL", "https://app.test/admin")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = caddy_asks(&app, &ann, "GET", "/wiki", &[("X-Forwarded-Uri", "/admin")]).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // A URL too long to return to is sent to log in without it.
    let long = format!("https://app.test/{}", "a".repeat(3000));
    let resp = nginx_asks(&app, &client(), "GET", &long).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(location(&resp), "/");
}
