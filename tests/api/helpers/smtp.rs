//! A real SMTP server (Debian's python3-aiosmtpd, writing each message into a Maildir)
//! per test, on a free loopback port, stopped when the test ends; and an app mailing
//! through it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tempfile::TempDir;

use super::*;

/// A throwaway SMTP server that keeps every message it accepts.
pub struct SmtpSink {
    pub port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl SmtpSink {
    pub fn start() -> Self {
        let port = free_port();
        let mut sink = Self {
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        sink.resume();
        sink
    }

    pub fn resume(&mut self) {
        let maildir = self.dir.path();
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        // Debian's interpreter: the one with the python3-aiosmtpd package.
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd is installed (the test command installs it)");
        self.child = Some(child);
        self.wait_until_ready();
    }

    fn wait_until_ready(&self) {
        use std::io::Read;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let mut greeting = [0u8; 3];
                if conn.read_exact(&mut greeting).is_ok() && &greeting == b"220" {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "the SMTP server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> =
            std::fs::read_dir(self.dir.path().join("new"))
                .map(|dir| {
                    dir.map(|e| e.unwrap())
                        .map(|e| (e.metadata().unwrap().modified().unwrap(), e.path()))
                        .collect()
                })
                .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .map(|(_, path)| std::fs::read_to_string(path).unwrap())
            .collect()
    }

    /// Waits (up to `within`) until more than `seen` messages arrived; returns the
    /// newest.
    pub async fn message_after(&self, seen: usize, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let messages = self.messages();
            if messages.len() > seen {
                return messages.into_iter().next_back().unwrap();
            }
            assert!(Instant::now() < deadline, "no mail arrived ({seen} before)");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The first message after the first `seen` that is addressed to `to` (others,
    /// e.g. the notice to an address given up, may come between, in any order).
    pub async fn next_to(&self, seen: usize, to: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let header = format!("To: {to}");
        loop {
            let messages = self.messages();
            if let Some(found) = messages.iter().skip(seen).find(|m| m.contains(&header)) {
                return found.clone();
            }
            assert!(Instant::now() < deadline, "no mail to {to} ({seen} before)");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for a message with `subject`; returns the first.
    pub async fn with_subject(&self, subject: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let header = format!("Subject: {subject}");
            if let Some(found) = self.messages().into_iter().find(|m| m.contains(&header)) {
                return found;
            }
            assert!(Instant::now() < deadline, "no mail {subject:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The file the file store keeps a mailed link's token in: named by the SHA-256 of
/// the token (the link's last segment) in hex, as the store names it; it must exist.
pub fn token_file(app: &TestApp, link: &str) -> std::path::PathBuf {
    use sha2::{Digest, Sha256};
    let token = link.rsplit('/').next().unwrap();
    let hash: String = Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let file = app.config.data_dir.join(format!("tokens/{hash}.json"));
    assert!(file.is_file(), "no token file {}", file.display());
    file
}

/// Asks `/forgot` for `name` from a fresh browser: the reset link mailed to `to`.
pub async fn mailed_reset(app: &TestApp, sink: &SmtpSink, name: &str, to: &str) -> String {
    app.mail_settled().await;
    let seen = sink.messages().len();
    app.post_form_by(&client(), "/forgot", &[("username", name)])
        .await;
    link(&sink.next_to(seen, to).await, "/reset/")
}

/// The stored end of the mailed link's token (file store).
pub fn token_expiry(app: &TestApp, link: &str) -> time::OffsetDateTime {
    let text = std::fs::read_to_string(token_file(app, link)).unwrap();
    let record: serde_json::Value = serde_json::from_str(&text).unwrap();
    let expires = record["expires"].as_str().unwrap();
    time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339).unwrap()
}

/// Moves the end of the mailed link's token (file store) a second into the past.
pub fn expire_token(app: &TestApp, link: &str) {
    let file = token_file(app, link);
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let past = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    record["expires"] = past
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
        .into();
    std::fs::write(&file, record.to_string()).unwrap();
}

/// The first link in `message` whose path starts with `path`.
pub fn link(message: &str, path: &str) -> String {
    let start = message
        .find("http://")
        .filter(|_| message.contains(path))
        .unwrap_or_else(|| panic!("no {path} link in {message}"));
    let from = &message[start..];
    let found = from
        .split_whitespace()
        .find(|word| word.contains(path))
        .unwrap_or_else(|| panic!("no {path} link in {message}"));
    found.to_owned()
}

/// The path of a link (what the test client asks its app for).
pub fn path_of(link: &str) -> &str {
    let rest = link.strip_prefix("http://").unwrap();
    &rest[rest.find('/').unwrap()..]
}

/// An app mailing through `sink`, its public URL (where links point) its own address.
pub async fn mail_app(sink: &SmtpSink) -> TestApp {
    mail_app_via(&sink.url()).await
}

/// An app mailing through the SMTP server at `smtp_url`.
pub async fn mail_app_via(smtp_url: &str) -> TestApp {
    spawn_app_with(mailing(smtp_url)).await
}

/// The settings of an app mailing through the SMTP server at `smtp_url`, its public
/// URL (where links point) its own address: for any store.
pub fn mailing(smtp_url: &str) -> impl FnOnce(&mut wicket::config::Config) + use<> {
    let url = smtp_url.parse().unwrap();
    let port = free_port();
    move |c| {
        c.addr = format!("127.0.0.1:{port}");
        c.public_url = Some(format!("http://127.0.0.1:{port}").parse().unwrap());
        c.smtp_url = Some(url);
        c.mail_from = Some("Wicket <wicket@example.com>".into());
    }
}

/// Registers `name` with `email` and confirms the address through the mailed link.
pub async fn register_confirmed(app: &TestApp, sink: &SmtpSink, name: &str, email: &str) {
    // Mail still on its way (a notice of what came before) is counted as seen.
    app.mail_settled().await;
    let seen = sink.messages().len();
    let resp = app
        .post_form(
            "/register/",
            &[
                ("username", name),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
                ("email", email),
            ],
        )
        .await;
    assert_see_other(&resp, "/cabinet");
    let message = sink.next_to(seen, email).await;
    assert!(
        message.contains("Subject: Confirm your email address"),
        "{message}"
    );
    let verify = link(&message, "/verify-email/");
    let page = app.get(path_of(&verify)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let text = page.text().await.unwrap();
    assert!(text.contains("is now confirmed"), "{text}");
}
