//! Server-side sessions: how they start, resume and end.
//!
//! The cookie holds `<id>.<mac>`: a 256-bit random id and its HMAC-SHA256 under a key
//! derived from the server secret, both hex. The MAC is checked in constant time and the
//! id's characters are checked before the id ever reaches a store; the session's data
//! lives only in the store (`<sessions dir>/<id>.json` by default).
//!
//! Writes flow one way: handlers start or end sessions through [`Sessions`] (which
//! writes the store) and say what they did with a [`SessionChange`] on the response;
//! the [`SessionLayer`] alone turns that into `Set-Cookie`.
//!
//! A session ended by an event (password changed, ended from another device, account
//! deleted) becomes a tombstone: its record with `ended` set, kept until it is told to
//! its browser or swept. Ended by time, the record itself says why.

mod cookie;
mod middleware;
mod notice;

use std::sync::Arc;
use std::time::Duration;

use hmac::Mac;
use time::OffsetDateTime;

pub use self::cookie::CookieCodec;
pub use self::middleware::{CurrentSession, Notice, NoticeShown, SessionChange, SessionLayer};
pub use self::notice::NoticeCodec;
use crate::cookies::CookiePolicy;
use crate::error::chain;
use crate::secret::{SecretKey, SubKey, hex};
use crate::store::{
    EndReason, Ending, SessionId, SessionRecord, SessionStore, StoreError, User, UserStore,
};

/// Activity is recorded at most this often (each record is a file write); with short
/// idle timeouts, more often: see [`Sessions::touch_every`].
const TOUCH_AT_MOST_EVERY: Duration = Duration::from_secs(60);

/// A live session of a logged-in user.
#[derive(Debug, Clone)]
pub struct Session {
    /// Its id (the file name).
    pub id: SessionId,
    /// Its stored data.
    pub record: SessionRecord,
    /// When it ends if no further request comes.
    pub ends: OffsetDateTime,
    /// The account, as read when this request resumed (or started) the session, so a
    /// handler need not read it again; `None` in a list of sessions.
    pub account: Option<Arc<User>>,
}

/// What a presented cookie turned out to be.
#[derive(Debug)]
pub enum Resumed {
    /// A live session.
    Live(Box<Session>),
    /// A session that has ended, and why (its browser is told once: the record goes).
    Ended(EndReason),
    /// Forged, unknown, or long gone.
    Unknown,
}

/// Where a login came from, kept with its session.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The browser and system, in a few words.
    pub browser: String,
    /// The client address.
    pub address: String,
    /// "Keep me logged in" was ticked.
    pub remember: bool,
    /// The login used a second factor (a code or a passkey).
    pub second_factor: bool,
    /// How (`pwd`, `otp`, `hwk`), for the ID tokens issued under the session.
    pub amr: Vec<&'static str>,
}

/// Starts, resumes and ends sessions: the cookie codecs, the stores and the timeouts.
#[derive(Clone)]
pub struct Sessions {
    codec: CookieCodec,
    notices: NoticeCodec,
    handles: SubKey,
    store: Arc<dyn SessionStore>,
    users: Arc<dyn UserStore>,
    idle: Duration,
    lifetime: Duration,
    /// Where a session that ran out is written down, for its member (when set).
    journal: Option<Arc<dyn crate::store::JournalStore>>,
}

impl Sessions {
    /// The same, writing sessions that ran out (idle, lifetime) in their accounts'
    /// journals as their browsers come back and are told.
    pub fn with_journal(mut self, journal: Arc<dyn crate::store::JournalStore>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Sessions signed with keys derived from `secret`, kept in `store` for users of
    /// `users`, ending after `idle` without requests or `lifetime` after login.
    pub fn new(
        secret: &SecretKey,
        policy: CookiePolicy,
        cookie_domain: Option<String>,
        store: Arc<dyn SessionStore>,
        users: Arc<dyn UserStore>,
        idle: Duration,
        lifetime: Duration,
    ) -> Self {
        Self {
            codec: CookieCodec::new(secret.derive("session-cookie"), policy, cookie_domain),
            notices: NoticeCodec::new(secret.derive("session-notice"), policy),
            handles: secret.derive("session-handle"),
            store,
            users,
            idle,
            lifetime,
            journal: None,
        }
    }

    /// How stale `last_seen` may get before a request records activity: a minute, or
    /// a quarter of the idle timeout if that is shorter, so a member who keeps
    /// requesting is never taken for idle.
    pub fn touch_every(&self) -> Duration {
        TOUCH_AT_MOST_EVERY.min(self.idle / 4)
    }

    /// The ids of the presented cookie values whose signature is genuine, each once,
    /// in the order sent. Only these may be [resumed](Self::resume): checking an HMAC
    /// costs no store access, so any number of forged values is cheap to refuse and
    /// none of them reaches the store (the 64 KiB head bounds how many there are).
    pub fn genuine(&self, cookie_values: &[String]) -> Vec<SessionId> {
        let mut ids: Vec<SessionId> = Vec::new();
        for id in cookie_values.iter().filter_map(|v| self.codec.verify(v)) {
            // The same cookie sent twice is one store read, not two.
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    /// What a genuine id (from [`genuine`](Self::genuine)) names: a live session, one
    /// that has ended (and why), or nothing. An error means the store could not be
    /// asked (not "no session").
    pub async fn resume(&self, id: SessionId) -> Result<Resumed, StoreError> {
        self.resume_telling(id, true).await
    }

    /// The live session a genuine id names, if any, as [`resume`](Self::resume) finds
    /// it; an ended one is left as it is, for the login page to tell its browser why
    /// (forward-auth asks first, before the browser is sent there).
    pub async fn live(&self, id: SessionId) -> Result<Option<Session>, StoreError> {
        Ok(match self.resume_telling(id, false).await? {
            Resumed::Live(session) => Some(*session),
            _ => None,
        })
    }

    /// [`resume`](Self::resume); an ended session's record is deleted only if `tell`
    /// (its browser is told now).
    async fn resume_telling(&self, id: SessionId, tell: bool) -> Result<Resumed, StoreError> {
        let Some(record) = self.store.load(&id).await? else {
            return Ok(Resumed::Unknown);
        };
        let now = now();
        let mut ended = record.ended_by(self.idle, now);
        let account = match ended {
            Some(_) => None,
            None => self.account_of(&record).await?,
        };
        if ended.is_none() && account.is_none() {
            // The account was deleted (out of band, or its sessions were not all
            // ended), and perhaps its name registered again: not this session's.
            ended = Some(EndReason::AccountDeleted);
        }
        if account.as_ref().is_some_and(|user| user.disabled.is_some()) {
            // Disabled while this session was live (its tombstone not yet written).
            ended = Some(EndReason::AccountDisabled);
        }
        if let Some(reason) = ended {
            if !tell {
                return Ok(Resumed::Ended(reason));
            }
            tracing::info!(user = %record.user, ?reason, "session over");
            self.journal_ran_out(&record, reason).await;
            // Told once: the record goes now, the reason travels in a notice cookie.
            if let Err(err) = self.store.remove(&id).await {
                tracing::warn!(error = %chain(&err), "could not delete an ended session");
            }
            return Ok(Resumed::Ended(reason));
        }
        let ends = record.ends(self.idle);
        let mut session = Session {
            id,
            record,
            ends,
            account,
        };
        if now - session.record.last_seen >= self.touch_every() {
            session.record.last_seen = now;
            session.ends = session.record.ends(self.idle);
            let ttl = self.keep_until(session.ends);
            if let Err(err) = self.store.touch(&session.id, &session.record, ttl).await {
                tracing::warn!(error = %chain(&err), "could not record session activity");
            }
        }
        Ok(Resumed::Live(Box::new(session)))
    }

    /// Writes a session that ran out (not one ended by an event, which its cause
    /// writes) in its account's journal.
    async fn journal_ran_out(&self, record: &SessionRecord, reason: EndReason) {
        use crate::store::journal::{Entry, Event};
        let (Some(journal), Some(account)) = (&self.journal, &record.account) else {
            return;
        };
        let detail = match reason {
            EndReason::Idle => "no activity for the idle timeout",
            EndReason::Lifetime => "its longest lifetime was reached",
            _ => return,
        };
        let entry = Entry {
            at: now(),
            event: Event::SessionExpired,
            browser: record.browser.clone(),
            address: record.address.clone(),
            detail: Some(detail.to_owned()),
        };
        if let Err(err) = journal.record(account, &entry).await {
            tracing::warn!(error = %chain(&err), "could not write the journal");
        }
    }

    /// The account `record` was started for, if it still exists: the user named in it
    /// has the id it was started for. A session from before accounts had ids holds
    /// for an account older than itself (one registered later is another account).
    async fn account_of(&self, record: &SessionRecord) -> Result<Option<Arc<User>>, StoreError> {
        let user = self.users.get_shared(&record.user).await?;
        Ok(user.filter(|user| match &record.account {
            Some(id) => *id == user.id,
            // Session times are kept to the second: so is the comparison.
            None => user.created.replace_nanosecond(0).unwrap_or(user.created) <= record.created,
        }))
    }

    /// How long a store keeps a session that ends at `ends`: until then, and one
    /// lifetime more, so a browser returning late can still be told why it ended.
    fn keep_until(&self, ends: OffsetDateTime) -> Duration {
        ttl_until(ends) + self.lifetime
    }

    /// Logs `user` in from `origin`: a brand-new session of the account (the
    /// `replacing` one, if any, is deleted first). The caller puts
    /// [`SessionChange::Started`] on its response.
    pub async fn start(
        &self,
        user: &User,
        replacing: Option<&Session>,
        origin: Origin,
    ) -> Result<Session, StoreError> {
        if let Some(old) = replacing {
            self.store.remove(&old.id).await?;
        }
        let now = now();
        let mut record = SessionRecord::new(&user.name, now, now + self.lifetime);
        record.account = Some(user.id.clone());
        record.browser = Some(origin.browser);
        record.address = Some(origin.address);
        record.remember = origin.remember;
        record.second_factor = origin.second_factor;
        record.amr = origin.amr.iter().map(|&m| m.to_owned()).collect();
        let id = SessionId::generate();
        let ends = record.ends(self.idle);
        if !self
            .store
            .create(&id, &record, self.keep_until(ends))
            .await?
        {
            // 256 random bits do not collide; if they did, refuse rather than share.
            return Err(StoreError::Io(std::io::ErrorKind::AlreadyExists.into()));
        }
        Ok(Session {
            id,
            record,
            ends,
            account: Some(Arc::new(user.clone())),
        })
    }

    /// Logs out: deletes the session. The caller puts [`SessionChange::Ended`] on its
    /// response; if this fails, the session is still valid and the cookie must stay.
    pub async fn end(&self, session: &Session) -> Result<(), StoreError> {
        self.store.remove(&session.id).await
    }

    /// The live sessions of `user`, most recently active first.
    pub async fn of_user(&self, user: &str) -> Result<Vec<Session>, StoreError> {
        let now = now();
        let mut live: Vec<Session> = self
            .store
            .sessions_of(user)
            .await?
            .into_iter()
            .filter(|(_, record)| record.ended_by(self.idle, now).is_none())
            .map(|(id, record)| Session {
                account: None,
                ends: record.ends(self.idle),
                id,
                record,
            })
            .collect();
        live.sort_by_key(|s| std::cmp::Reverse(s.record.last_seen));
        Ok(live)
    }

    /// How many stored sessions are live now (every record is read: for metrics).
    pub async fn count_live(&self) -> Result<usize, StoreError> {
        let now = now();
        let records = self.store.all().await?;
        Ok(records
            .iter()
            .filter(|record| record.ended_by(self.idle, now).is_none())
            .count())
    }

    /// Ends `user`'s live sessions but `except` for `reason`: each becomes a tombstone
    /// that tells its browser why. Returns how many ended.
    pub async fn end_all(
        &self,
        user: &str,
        except: Option<&SessionId>,
        reason: EndReason,
    ) -> Result<usize, StoreError> {
        let mut ended = 0;
        for session in self.of_user(user).await? {
            if Some(&session.id) != except {
                self.end_for(session, reason).await?;
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Ends the live session of `user` whose handle is `handle`, if there is one; its
    /// record as it was.
    pub async fn end_by_handle(
        &self,
        user: &str,
        handle: &str,
        reason: EndReason,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let found = self
            .of_user(user)
            .await?
            .into_iter()
            .find(|s| self.handle(&s.id) == handle);
        match found {
            Some(session) => {
                let record = session.record.clone();
                self.end_for(session, reason).await?;
                Ok(Some(record))
            }
            None => Ok(None),
        }
    }

    /// Turns a session into a tombstone for `reason` (never recreating one gone).
    async fn end_for(&self, mut session: Session, reason: EndReason) -> Result<(), StoreError> {
        session.record.ended = Some(Ending { reason, at: now() });
        let keep = self.keep_until(session.ends);
        self.store.touch(&session.id, &session.record, keep).await
    }

    /// A session's public handle: a keyed hash of its id, safe to show in a page and
    /// to post back, and useless as a cookie.
    pub fn handle(&self, id: &SessionId) -> String {
        let mut mac = self.handles.mac();
        mac.update(id.as_str().as_bytes());
        hex(&mac.finalize().into_bytes()[..16])
    }

    /// Ends every stored session that has certainly ended, by either limit: nothing
    /// has written it for the shorter of the idle timeout and the lifetime. What is
    /// left to tell its browser why is kept one lifetime more.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        self.store
            .sweep(self.idle.min(self.lifetime), self.lifetime)
            .await
    }

    /// The cookie codec (for the middleware).
    pub fn codec(&self) -> &CookieCodec {
        &self.codec
    }

    /// The notice codec (for the middleware).
    pub fn notices(&self) -> &NoticeCodec {
        &self.notices
    }

    /// The idle timeout.
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// How long a session lasts at most (and a remembered cookie).
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }
}

/// The time left until `ends` (at least a second): a store's TTL for the session.
pub fn ttl_until(ends: OffsetDateTime) -> Duration {
    Duration::try_from(ends - now())
        .unwrap_or_default()
        .max(Duration::from_secs(1))
}

/// The current time, to the second (session files need no more).
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}
