//! The store under stress: races, a store that refuses writes or reads, loose modes,
//! short timeouts. Each test fails if the behaviour it names is removed.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use tokio::sync::{Semaphore, mpsc};
use wicket::store::{SessionId, SessionRecord, SessionStore, StoreFuture, Stores};

use crate::helpers::*;

/// Holds the first touch that reaches the store once armed, until the test lets it
/// go; every other call goes straight through.
#[derive(Debug)]
struct HoldFirstTouch {
    inner: Arc<dyn SessionStore>,
    armed: Arc<AtomicBool>,
    reached: mpsc::UnboundedSender<()>,
    release: Arc<Semaphore>,
}

impl SessionStore for HoldFirstTouch {
    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<SessionRecord>> {
        self.inner.load(id)
    }
    fn create<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a SessionRecord,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        self.inner.create(id, record, ttl)
    }
    fn touch<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a SessionRecord,
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            if self.armed.swap(false, Ordering::SeqCst) {
                self.reached.send(()).unwrap();
                let _go = self.release.acquire().await.unwrap();
            }
            self.inner.touch(id, record, ttl).await
        })
    }
    fn remove<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, ()> {
        self.inner.remove(id)
    }
    fn sessions_of<'a>(
        &'a self,
        user: &'a str,
    ) -> StoreFuture<'a, Vec<(SessionId, SessionRecord)>> {
        self.inner.sessions_of(user)
    }
    fn sweep(&self, unused_for: Duration, keep_for: Duration) -> StoreFuture<'_, usize> {
        self.inner.sweep(unused_for, keep_for)
    }
    fn ready(&self) -> StoreFuture<'_, ()> {
        self.inner.ready()
    }
}

/// A request reads the session, then its activity write is held; meanwhile the member
/// logs out; then the write goes ahead. The session must stay ended.
#[tokio::test]
async fn a_logout_between_a_read_and_its_activity_write_stays_logged_out() {
    let (reached_tx, mut reached) = mpsc::unbounded_channel();
    let release = Arc::new(Semaphore::new(0));
    let armed = Arc::new(AtomicBool::new(false));
    let (gate, arm) = (release.clone(), armed.clone());
    let app = spawn_app_wrapping(
        |_| {},
        move |stores: Stores| Stores {
            sessions: Arc::new(HoldFirstTouch {
                inner: stores.sessions,
                armed: arm,
                reached: reached_tx,
                release: gate,
            }),
            ..stores
        },
    )
    .await;
    let cookie = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    let file = session_file(&app, &cookie);
    // Make the next request want to record activity.
    set_session_time(&file, "last_seen", time::Duration::minutes(5));
    armed.store(true, Ordering::SeqCst);
    let reader = {
        let (url, cookie) = (app.url("/cabinet"), cookie.clone());
        tokio::spawn(async move {
            let resp = client().get(url).header("cookie", cookie).send().await;
            resp.unwrap().status()
        })
    };
    let reached = tokio::time::timeout(Duration::from_secs(10), reached.recv()).await;
    assert!(
        matches!(reached, Ok(Some(()))),
        "the reader's write never reached the store"
    );
    assert_see_other(&app.logout().await, "/");
    assert!(!file.exists());
    release.add_permits(1);
    assert_eq!(
        reader.await.unwrap(),
        StatusCode::OK,
        "it read a live session"
    );
    assert!(!file.exists(), "the held write brought the session back");
    assert_see_other(
        &app.get_with_cookie("/cabinet", &cookie).await,
        "/?next=/cabinet",
    );
}

#[tokio::test]
async fn with_a_short_idle_timeout_an_active_member_stays_logged_in() {
    // Activity used to be recorded at most once a minute, so with a 40 s idle timeout
    // a member requesting every few seconds was logged out at 40 s.
    let app = spawn_app_with(|c| c.session_idle = Duration::from_secs(40)).await;
    let cookie = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    let file = session_file(&app, &cookie);
    set_session_time(&file, "last_seen", time::Duration::seconds(20));
    assert_eq!(
        app.get_with_cookie("/cabinet", &cookie).await.status(),
        StatusCode::OK
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let last_seen = time::OffsetDateTime::parse(
        json["last_seen"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let behind = time::OffsetDateTime::now_utc() - last_seen;
    assert!(
        behind < time::Duration::seconds(10),
        "activity 20 s into a 40 s idle window was not recorded ({behind} behind)"
    );
}

#[tokio::test]
async fn the_sweep_removes_sessions_past_their_lifetime_even_if_not_idle_long() {
    let app = spawn_app_with(|c| {
        c.session_lifetime = Duration::from_secs(600);
        c.session_idle = Duration::from_secs(1800);
        c.sweep_interval = Duration::from_secs(1);
    })
    .await;
    let cookie = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    let file = session_file(&app, &cookie);
    // Logged in 11 minutes ago and quiet since: past the 10-minute lifetime, though
    // not yet idle for 30 minutes.
    age_file(&file, Duration::from_secs(11 * 60));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while file.exists() {
        assert!(std::time::Instant::now() < deadline, "the sweep kept it");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn logout_when_the_store_cannot_delete_keeps_the_member_logged_in_and_says_so() {
    let app = spawn_app().await;
    let cookie = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    let Some(frozen) = Immutable::make(
        &app.config.sessions_dir,
        "faults::logout_when_the_store_cannot_delete_keeps_the_member_logged_in_and_says_so",
    ) else {
        return;
    };
    let resp = app.logout().await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        session_set_cookie(&resp).is_none(),
        "the cookie is kept: the session is still valid"
    );
    let body = resp.text().await.unwrap();
    assert!(body.contains("You are still logged in"), "{body}");
    assert_eq!(
        app.get_with_cookie("/cabinet", &cookie).await.status(),
        StatusCode::OK
    );
    drop(frozen);
    assert_see_other(&app.logout().await, "/");
    assert_see_other(
        &app.get_with_cookie("/cabinet", &cookie).await,
        "/?next=/cabinet",
    );
}

#[tokio::test]
async fn registration_when_no_session_can_start_says_the_account_exists() {
    let app = spawn_app().await;
    let Some(frozen) = Immutable::make(
        &app.config.sessions_dir,
        "faults::registration_when_no_session_can_start_says_the_account_exists",
    ) else {
        return;
    };
    let resp = app.register("alice", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(session_cookie(&resp).is_none());
    let body = resp.text().await.unwrap();
    assert!(
        body.contains("Your account was created") && body.contains("Please log in"),
        "{body}"
    );
    assert!(
        body.contains(r#"action="/login""#),
        "the login form is offered"
    );
    assert_eq!(app.user_files().len(), 1, "the account exists");
    drop(frozen);
    assert_see_other(&app.login("alice", PASSWORD).await, "/cabinet");
}

#[tokio::test]
async fn a_sessions_directory_that_cannot_be_read_is_a_503_not_a_logout() {
    let app = spawn_app().await;
    let cookie = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    let dir = &app.config.sessions_dir;
    let moved = dir.with_extension("moved");
    std::fs::rename(dir, &moved).unwrap();
    std::fs::write(dir, "a file where the directory was").unwrap(); // ENOTDIR
    let resp = app.get_with_cookie("/cabinet", &cookie).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(session_set_cookie(&resp).is_none(), "the cookie is kept");
    assert!(resp.headers().contains_key("retry-after"));
    std::fs::remove_file(dir).unwrap();
    std::fs::rename(&moved, dir).unwrap();
    assert_eq!(
        app.get_with_cookie("/cabinet", &cookie).await.status(),
        StatusCode::OK,
        "back as soon as the directory is"
    );
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn loose_directories_and_files_are_tightened_at_start_up() {
    let app = spawn_app().await;
    let cookie = session_cookie(&app.register("alice", PASSWORD).await).unwrap();
    let session = session_file(&app, &cookie);
    let user = app.user_files().pop().unwrap();
    let users = app.config.data_dir.join("users");
    let set = |p: &std::path::Path, m| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    for dir in [&app.config.sessions_dir, &app.config.data_dir, &users] {
        set(dir, 0o755);
    }
    for file in [&session, &user] {
        set(file, 0o644);
    }
    let app = app.restart().await;
    for dir in [&app.config.sessions_dir, &app.config.data_dir, &users] {
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
    }
    // Files are tightened in the background (a million of them must not delay start-up).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while mode(&session) != 0o600 || mode(&user) != 0o600 {
        assert!(std::time::Instant::now() < deadline, "files stayed loose");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_directory_that_cannot_be_tightened_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    std::fs::create_dir(&config.sessions_dir).unwrap();
    std::fs::set_permissions(&config.sessions_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let Some(_frozen) = Immutable::make(
        &config.sessions_dir,
        "faults::a_directory_that_cannot_be_tightened_stops_start_up_naming_it",
    ) else {
        return;
    };
    config.addr = "127.0.0.1:0".into();
    let err = wicket::app::Application::build(&config)
        .await
        .err()
        .expect("start-up refused");
    let said = err.to_string();
    assert!(
        said.contains(&format!(
            "sessions directory {}",
            config.sessions_dir.display()
        )),
        "{said}"
    );
}
