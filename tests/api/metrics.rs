//! `/metrics` on `--metrics-addr`, scraped by Debian's Prometheus (started here on a
//! free loopback port, stopped after), checked by `promtool check metrics`, and moved
//! by a login burst as it should be. The real binary, so the counts are its alone.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::binary::Binary;
use crate::helpers::redis::RedisServer;
use crate::helpers::smtp::free_port;
use crate::helpers::*;
use crate::logs::post;

/// A Prometheus server scraping `target` every second, killed when dropped.
struct Prometheus {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n\
                 scrape_configs:\n  - job_name: wicket\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian's package) is installed");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }

    /// The value of `query` once Prometheus has one that `good` accepts (it scrapes
    /// every second; panics after 60 s).
    async fn value_once(&self, query: &str, good: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::new();
        loop {
            let answer = reqwest::Client::new()
                .get(format!("{}/api/v1/query", self.base))
                .query(&[("query", query)])
                .send()
                .await;
            if let Ok(answer) = answer {
                last = answer.text().await.unwrap_or_default();
                let json: serde_json::Value = serde_json::from_str(&last).unwrap_or_default();
                let value = json["data"]["result"][0]["value"][1]
                    .as_str()
                    .and_then(|v| v.parse::<f64>().ok());
                if let Some(value) = value.filter(|&v| good(v)) {
                    return value;
                }
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus never had {query}: {last}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The samples of a scrape, by series (`name{labels}`), comments left out.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(at: &str) -> String {
    let resp = reqwest::get(format!("http://{at}/metrics")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.unwrap()
}

/// `promtool check metrics` on `text`: its verdict.
fn promtool(text: &str) -> std::process::Output {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package) is installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn prometheus_scrapes_the_metrics_listener_and_a_login_burst_moves_the_counters() {
    a_login_burst_moves_the_counters(&[], true).await;
}

#[tokio::test]
async fn a_login_burst_moves_the_counters_on_redis() {
    let redis = RedisServer::start();
    let url = redis.url();
    a_login_burst_moves_the_counters(&["--store", &url, "--store-prefix", "metrics"], false).await;
}

/// Wicket with `store` (and `/metrics`), a login burst, the counters it moved; and if
/// `prometheus`, a real Prometheus scraping it all along.
async fn a_login_burst_moves_the_counters(store: &[&str], prometheus: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["--metrics-addr", "127.0.0.1:0"];
    args.extend_from_slice(store);
    let server = Binary::start(dir.path(), &args);
    let log = server.wait_for_log("metrics on http://", Duration::from_secs(10));
    let at = log[log.find("metrics on http://").unwrap() + "metrics on http://".len()..]
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let base = server.base.clone();
    // Never on the site's listener.
    let site = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(site.status(), StatusCode::NOT_FOUND);
    let prometheus = prometheus.then(|| Prometheus::start(&at));

    let browser = client();
    let form = [
        ("username", "alice"),
        ("password", PASSWORD),
        ("confirm", PASSWORD),
    ];
    assert_see_other(
        &post(&browser, &base, "/register/", &form).await,
        "/cabinet",
    );
    let before = samples(&scrape(&at).await);
    let ok = r#"wicket_logins_total{method="password",outcome="ok"}"#;
    let wrong = r#"wicket_logins_total{method="password",outcome="wrong"}"#;
    let throttled = r#"wicket_logins_total{method="password",outcome="throttled"}"#;
    let refusals = r#"wicket_throttle_refusals_total{kind="account"}"#;
    let of = |s: &BTreeMap<String, f64>, k: &str| s.get(k).copied().unwrap_or(0.0);

    // The burst: two right, five wrong (the account's limit for this browser), then
    // one more that the throttle refuses unchecked.
    for password in [PASSWORD, PASSWORD] {
        let resp = post(
            &client(),
            &base,
            "/login",
            &[("username", "alice"), ("password", password)],
        )
        .await;
        assert_see_other(&resp, "/cabinet");
    }
    let guesser = client();
    for _ in 0..5 {
        let resp = post(
            &guesser,
            &base,
            "/login",
            &[("username", "alice"), ("password", "wrong guess here")],
        )
        .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = post(
        &guesser,
        &base,
        "/login",
        &[("username", "alice"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);

    let text = scrape(&at).await;
    let after = samples(&text);
    assert_eq!(of(&after, ok) - of(&before, ok), 2.0, "{text}");
    assert_eq!(of(&after, wrong) - of(&before, wrong), 5.0, "{text}");
    assert_eq!(
        of(&after, throttled) - of(&before, throttled),
        1.0,
        "{text}"
    );
    assert!(
        of(&after, refusals) - of(&before, refusals) >= 1.0,
        "{text}"
    );
    assert!(of(&after, "wicket_sessions_live") >= 1.0, "{text}");
    assert!(of(&after, "wicket_throttle_entries") >= 1.0, "{text}");
    assert!(
        of(&after, "wicket_scrypt_queue_wait_seconds_count") >= 8.0,
        "{text}"
    );
    assert!(
        of(
            &after,
            r#"wicket_request_duration_seconds_count{route="/login"}"#
        ) >= 8.0,
        "{text}"
    );
    for name in [
        "wicket_mails_total",
        "wicket_store_errors_total",
        "wicket_forward_auth_decisions_total",
        "wicket_oidc_tokens_issued_total",
        "wicket_mail_queue",
        "wicket_second_factor_checks_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {}", name.trim_end_matches("_total"))),
            "{name} in {text}"
        );
    }
    let checked = promtool(&text);
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // Prometheus itself scraped it and holds the burst.
    let Some(prometheus) = prometheus else {
        server.stop();
        return;
    };
    let up = prometheus
        .value_once(r#"up{job="wicket"}"#, |v| v == 1.0)
        .await;
    assert_eq!(up, 1.0);
    let seen = prometheus
        .value_once(
            r#"wicket_logins_total{method="password",outcome="wrong"}"#,
            |v| v >= 5.0,
        )
        .await;
    assert_eq!(seen, 5.0);
    server.stop();
}
