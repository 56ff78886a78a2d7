//! Mail: an outbox that requests only ever add to. Each message is sent by its own
//! task through the transport (`--smtp-url`, or `--mail-dir` for development), with
//! retries and back-off, a log line per failed attempt, and a bound on how many wait:
//! a slow or dead mail server never holds up a page.
//!
//! Nothing says a message was sent before the transport accepted it: the pages word
//! their answers as "we are sending", and the log says what became of each message.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::{Notify, Semaphore};

pub mod texts;

use self::texts::Letter;
use tokio::time::Instant;

use crate::error::chain;

/// Messages waiting (queued or between attempts) at most; more are dropped (logged).
const CAPACITY: usize = 1000;
/// Messages handed to the transport at once.
const SENDING: usize = 4;
/// Waits between attempts: about 45 minutes from the first to the last.
const BACKOFF: [Duration; 6] = [
    Duration::from_secs(2),
    Duration::from_secs(8),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
    Duration::from_secs(1800),
];
/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// An SMTP server to send through: `smtp://host:port` (plain),
/// `smtp://host:port?tls=required` (STARTTLS, refused without it) or
/// `smtps://host:port` (TLS from the first byte). Credentials never go in the URL.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl(String);

impl FromStr for SmtpUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix("smtps://")
            .or_else(|| text.strip_prefix("smtp://"))
            .ok_or(
                "expected smtp://HOST:PORT, smtp://HOST:PORT?tls=required or smtps://HOST:PORT",
            )?;
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.trim_end_matches('/');
        if authority.contains('@') {
            return Err("no credentials in the URL: set WICKET_SMTP_USER and \
                        WICKET_SMTP_PASSWORD_FILE"
                .into());
        }
        if authority.is_empty() || authority.contains('/') {
            return Err("expected a host (and port) after the scheme".into());
        }
        match query {
            "" => {}
            "tls=required" if text.starts_with("smtp://") => {}
            _ => return Err("the only option is ?tls=required (with smtp://)".into()),
        }
        Ok(Self(text.to_owned()))
    }
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0) // never holds credentials (see from_str)
    }
}

impl std::fmt::Display for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl SmtpUrl {
    /// Whether the connection is plain text all the way.
    pub fn is_plain(&self) -> bool {
        self.0.starts_with("smtp://") && !self.0.ends_with("?tls=required")
    }
}

/// Where mail goes.
#[derive(Debug, Clone)]
pub enum Destination {
    /// An SMTP server, with credentials if it wants them.
    Smtp(SmtpUrl, Option<(String, String)>),
    /// One `.eml` file per message in a directory (development).
    Directory(PathBuf),
}

impl Destination {
    /// SMTP credentials from the environment: `WICKET_SMTP_USER` and the file named
    /// by `WICKET_SMTP_PASSWORD_FILE` (its first line), both or neither.
    pub fn credentials_from_env() -> Result<Option<(String, String)>, String> {
        let user = std::env::var("WICKET_SMTP_USER").ok();
        let file = std::env::var_os("WICKET_SMTP_PASSWORD_FILE");
        match (user, file) {
            (None, None) => Ok(None),
            (Some(user), Some(file)) => {
                let text = std::fs::read_to_string(&file).map_err(|err| {
                    format!(
                        "WICKET_SMTP_PASSWORD_FILE {}: {err}",
                        PathBuf::from(&file).display()
                    )
                })?;
                let password = text.lines().next().unwrap_or_default().to_owned();
                Ok(Some((user, password)))
            }
            _ => Err("set both WICKET_SMTP_USER and WICKET_SMTP_PASSWORD_FILE, or neither".into()),
        }
    }
}

/// What a message is, for the log (never its address or content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// "Confirm your address".
    Verify,
    /// "Reset your password".
    Reset,
    /// "Your password was changed".
    PasswordChanged,
    /// "A new login to your account".
    NewLogin,
    /// "Your two-step login was reset" (by the operator).
    SecondFactorReset,
    /// "Something changed on your account" (a second factor, a passkey, the address,
    /// the account deleted or disabled).
    AccountChanged,
}

/// One message to one address, plain text.
#[derive(Debug, Clone)]
pub struct Mail {
    /// What it is.
    pub kind: Kind,
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The text.
    pub body: String,
    /// Not worth sending after this (e.g. the link in it has expired).
    pub useless_after: Option<Instant>,
}

/// The sending side: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    from: Mailbox,
    waiting: AtomicUsize,
    /// Work that may still queue a message ([`Outbox::preparing`]); not counted
    /// against [`CAPACITY`], which bounds messages.
    preparing: AtomicUsize,
    /// Told when nothing is waiting or being prepared any more.
    idle: Notify,
    sending: Semaphore,
}

/// Held by work that may queue a message after the response has gone (see
/// [`Outbox::preparing`]): while it lives, the outbox is not idle.
#[must_use = "the outbox counts the work as done once this is dropped"]
pub struct Preparing {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Preparing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Preparing")
    }
}

impl Drop for Preparing {
    fn drop(&mut self) {
        if self.inner.preparing.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Directory(PathBuf),
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("from", &self.inner.from.to_string())
            .field("waiting", &self.inner.waiting.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// An outbox sending as `from` to `destination`.
    pub fn new(destination: Destination, from: &str) -> Result<Self, String> {
        let from: Mailbox = from
            .parse()
            .map_err(|err| format!("--mail-from {from:?}: {err}"))?;
        let transport = match destination {
            Destination::Smtp(url, credentials) => {
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url.0)
                    .map_err(|err| format!("--smtp-url {url}: {err}"))?
                    .timeout(Some(SMTP_TIMEOUT));
                if let Some((user, password)) = credentials {
                    builder = builder.credentials(Credentials::new(user, password));
                }
                Transport::Smtp(builder.build())
            }
            Destination::Directory(dir) => {
                crate::fsutil::private_dir(&dir)
                    .map_err(|err| format!("--mail-dir {}: {err}", dir.display()))?;
                Transport::Directory(dir)
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                transport,
                from,
                waiting: AtomicUsize::new(0),
                preparing: AtomicUsize::new(0),
                idle: Notify::new(),
                sending: Semaphore::new(SENDING),
            }),
        })
    }

    /// Queues `mail`; it is sent in the background. `false` (and a log line) if it
    /// cannot even be queued: a bad address, or the outbox full.
    pub fn send(&self, mail: Mail) -> bool {
        let message = match self.compose(&mail) {
            Ok(message) => message,
            Err(err) => {
                tracing::error!(kind = ?mail.kind, error = %err, "could not compose mail");
                return false;
            }
        };
        let waiting = self.inner.waiting.fetch_add(1, Ordering::AcqRel);
        if waiting >= CAPACITY {
            self.inner.waiting.fetch_sub(1, Ordering::AcqRel);
            tracing::error!(kind = ?mail.kind, waiting, "outbox full; mail dropped");
            return false;
        }
        let inner = self.inner.clone();
        tokio::spawn(async move {
            inner.deliver(&mail, message).await;
            if inner.waiting.fetch_sub(1, Ordering::AcqRel) == 1 {
                inner.idle.notify_waiters();
            }
        });
        true
    }

    fn compose(&self, mail: &Mail) -> Result<Message, String> {
        let to: Mailbox = mail.to.parse().map_err(|err| format!("recipient: {err}"))?;
        Message::builder()
            .from(self.inner.from.clone())
            .to(to)
            .subject(&mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body_of(&mail.body))
            .map_err(|err| err.to_string())
    }

    /// Messages not yet sent or given up.
    pub fn waiting(&self) -> usize {
        self.inner.waiting.load(Ordering::Acquire)
    }

    /// Marks work that may queue a message later, e.g. a task that looks an account
    /// up after the page has answered: [`Outbox::idle`] waits for it to be dropped,
    /// so "nothing was sent" can be told from "nothing was sent yet".
    pub fn preparing(&self) -> Preparing {
        self.inner.preparing.fetch_add(1, Ordering::AcqRel);
        Preparing {
            inner: self.inner.clone(),
        }
    }

    /// Returns once every queued message was sent or given up and no work that may
    /// queue one ([`Outbox::preparing`]) is left: at shutdown, and in tests before
    /// they count what was sent.
    pub async fn idle(&self) {
        loop {
            // Registered before the check, so a notification between the two is kept.
            // `preparing` is read first: work queues its message before it lets go,
            // so once it reads 0 that message already counts in `waiting`.
            let told = self.inner.idle.notified();
            let preparing = self.inner.preparing.load(Ordering::Acquire);
            if self.waiting() == 0 && preparing == 0 {
                return;
            }
            told.await;
        }
    }
}

/// The text as 7bit when it is ASCII in lines of at most 998 bytes (RFC 5322), so
/// links stay whole for every reader (lettre would wrap lines over 76 with
/// quoted-printable); anything else as lettre chooses.
fn body_of(text: &str) -> Body {
    let seven_bit = text.is_ascii() && text.lines().all(|line| line.len() <= 998);
    if !seven_bit {
        return Body::new(text.to_owned());
    }
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::SevenBit)
}

impl Inner {
    /// Sends `message`, retrying with back-off until it goes, it is useless, or the
    /// attempts run out.
    async fn deliver(&self, mail: &Mail, message: Message) {
        let domain = mail.to.rsplit('@').next().unwrap_or_default().to_owned();
        for attempt in 1..=BACKOFF.len() + 1 {
            let result = {
                let _permit = self.sending.acquire().await.expect("never closed");
                self.transport.send(&message).await
            };
            let err = match result {
                Ok(()) => {
                    tracing::info!(kind = ?mail.kind, %domain, attempt, "mail sent");
                    crate::metrics::metrics().mail(true);
                    return;
                }
                Err(err) => err,
            };
            let Some(&wait) = BACKOFF.get(attempt - 1) else {
                tracing::error!(kind = ?mail.kind, %domain, attempt, error = %err,
                    "could not send mail; giving up");
                crate::metrics::metrics().mail(false);
                return;
            };
            if mail
                .useless_after
                .is_some_and(|end| Instant::now() + wait >= end)
            {
                tracing::error!(kind = ?mail.kind, %domain, attempt, error = %err,
                    "could not send mail; giving up, its link expires before another try");
                crate::metrics::metrics().mail(false);
                return;
            }
            tracing::warn!(kind = ?mail.kind, %domain, attempt, retry_in_s = wait.as_secs(),
                error = %err, "could not send mail; will retry");
            tokio::time::sleep(wait).await;
        }
    }
}

impl Transport {
    async fn send(&self, message: &Message) -> Result<(), String> {
        match self {
            Self::Smtp(smtp) => smtp
                .send(message.clone())
                .await
                .map(drop)
                .map_err(|err| chain(&err)),
            Self::Directory(dir) => {
                let name = format!(
                    "{}-{}.eml",
                    time::OffsetDateTime::now_utc().unix_timestamp_nanos(),
                    crate::secret::hex(&crate::secret::random_bytes::<4>())
                );
                let (path, bytes) = (dir.join(name), message.formatted());
                tokio::task::spawn_blocking(move || crate::fsutil::create_atomic(&path, &bytes))
                    .await
                    .map_err(|err| err.to_string())?
                    .map_err(|err| err.to_string())
            }
        }
    }
}

/// The outbox and the site's address for links in mails.
#[derive(Debug, Clone)]
pub struct Mailer {
    /// Where messages go.
    pub outbox: Outbox,
    /// The site's origin, e.g. `https://login.example.com` (`--public-url`).
    pub site: String,
}

impl Mailer {
    /// The full URL of the site's `path`.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.site)
    }

    /// Hands `letter` for `to` to the outbox (never waits for the server); it is not
    /// worth sending after `useless_after` (a link that has expired).
    pub fn send(&self, kind: Kind, to: &str, letter: Letter, useless_after: Option<Instant>) {
        self.outbox.send(Mail {
            kind,
            to: to.to_owned(),
            subject: letter.subject,
            body: letter.body,
            useless_after,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_carry_no_credentials_and_no_weak_tls() {
        for good in [
            "smtp://127.0.0.1:2525",
            "smtp://mail.example.com:587?tls=required",
            "smtps://mail.example.com:465",
            "smtps://mail.example.com",
        ] {
            assert!(good.parse::<SmtpUrl>().is_ok(), "{good}");
        }
        for bad in [
            "smtp://user:secret@mail.example.com:587",
            "smtp://mail.example.com:587?tls=opportunistic",
            "smtps://mail.example.com?tls=required",
            "http://mail.example.com",
            "smtp://",
            "smtp:///path",
        ] {
            let err = bad.parse::<SmtpUrl>().unwrap_err();
            assert!(!err.contains("secret"), "{err}");
        }
        assert!("smtp://h:25".parse::<SmtpUrl>().unwrap().is_plain());
        assert!(
            !"smtp://h:25?tls=required"
                .parse::<SmtpUrl>()
                .unwrap()
                .is_plain()
        );
        assert!(!"smtps://h".parse::<SmtpUrl>().unwrap().is_plain());
    }

    #[tokio::test]
    async fn a_mail_directory_gets_one_complete_file_per_message() {
        let dir = tempfile::tempdir().unwrap();
        let mail_dir = dir.path().join("mail");
        let outbox = Outbox::new(
            Destination::Directory(mail_dir.clone()),
            "Wicket <wicket@example.com>",
        )
        .unwrap();
        let mail = Mail {
            kind: Kind::Reset,
            to: "ann@example.com".into(),
            subject: "Reset your password".into(),
            body: "https://example.com/reset/abc\n".into(),
            useless_after: None,
        };
        assert!(outbox.send(mail.clone()));
        let unaddressable = Mail {
            to: "not an address".into(),
            ..mail
        };
        assert!(!outbox.send(unaddressable));
        outbox.idle().await;
        let files: Vec<_> = std::fs::read_dir(&mail_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.contains("To: ann@example.com"), "{text}");
        assert!(text.contains("Subject: Reset your password"), "{text}");
        assert!(text.contains("https://example.com/reset/abc"), "{text}");
    }

    /// Whether `idle` is already done, polled once (no waiting).
    async fn idle_now(outbox: &Outbox) -> bool {
        tokio::select! {
            biased;
            () = outbox.idle() => true,
            () = std::future::ready(()) => false,
        }
    }

    #[tokio::test]
    async fn the_outbox_is_not_idle_while_work_that_may_mail_is_preparing() {
        let dir = tempfile::tempdir().unwrap();
        let destination = Destination::Directory(dir.path().join("mail"));
        let outbox = Outbox::new(destination, "wicket@example.com").unwrap();
        assert!(idle_now(&outbox).await, "nothing queued, nothing preparing");
        let preparing = outbox.preparing();
        let also = outbox.preparing();
        assert!(!idle_now(&outbox).await);
        drop(preparing);
        assert!(!idle_now(&outbox).await, "one is still preparing");
        drop(also);
        tokio::time::timeout(Duration::from_secs(5), outbox.idle())
            .await
            .expect("idle once the last one is dropped");
    }

    #[tokio::test]
    async fn a_message_nobody_accepts_settles_once_it_is_given_up() {
        // Nothing listens on the port; the link expires before a second attempt, so
        // the first refusal is the last.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("smtp://127.0.0.1:{port}").parse().unwrap();
        let outbox = Outbox::new(Destination::Smtp(url, None), "wicket@example.com").unwrap();
        assert!(outbox.send(Mail {
            kind: Kind::Reset,
            to: "ann@example.com".into(),
            subject: "Reset your password".into(),
            body: "https://example.com/reset/abc\n".into(),
            useless_after: Some(Instant::now() + Duration::from_secs(1)),
        }));
        assert!(!idle_now(&outbox).await, "queued, not yet tried");
        tokio::time::timeout(Duration::from_secs(10), outbox.idle())
            .await
            .expect("given up after the one attempt");
        assert_eq!(outbox.waiting(), 0);
    }
}
