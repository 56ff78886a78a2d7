//! One contract, two backends: the same checks run against the file stores and Redis.

use std::time::Duration;

use time::OffsetDateTime;
use wicket::domain::Username;
use wicket::store::tokens::{ClaimKey, Purpose, Token, TokenRecord};
use wicket::store::{
    self, Allowance, NameTaken, SessionId, SessionRecord, StoreKind, Stores, User,
};

use crate::helpers::redis::RedisServer;
use crate::helpers::test_config;

fn record(user: &str) -> SessionRecord {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    SessionRecord::new(
        &Username::parse(user).unwrap(),
        now,
        now + time::Duration::days(1),
    )
}

fn user(name: &str, hash: &str) -> User {
    User::new(&Username::parse(name).unwrap(), hash.into())
}

/// Opens the stores of `kind` on throwaway directories, as the server would.
fn open(kind: StoreKind, dir: &tempfile::TempDir) -> Stores {
    let config = test_config(dir.path());
    store::open(
        &kind,
        &config.sessions_dir,
        &config.data_dir,
        &config.store_prefix,
    )
    .unwrap()
}

/// The whole contract, the same for every backend.
async fn stores_keep_the_contract(stores: Stores) {
    users_keep_the_contract(&stores).await;
    sessions_keep_the_contract(&stores).await;
    counters_keep_the_contract(&stores).await;
    tokens_keep_the_contract(&stores).await;
}

async fn tokens_keep_the_contract(stores: &Stores) {
    let tokens = &stores.tokens;
    let ann = user("Ann", "$scrypt$ann");
    let expires = OffsetDateTime::now_utc() + time::Duration::minutes(30);
    let token = Token::generate();
    let record = TokenRecord {
        email: "ann@example.com".into(),
        ..TokenRecord::new(Purpose::ResetPassword, Some(&ann), expires)
    };
    tokens.put_token(&token.key(), &record).await.unwrap();
    // Peeking leaves it; of two takes, one gets it (and the same record).
    let peeked = tokens.peek_token(&token.key()).await.unwrap();
    assert_eq!(peeked.as_ref(), Some(&record));
    let key = token.key();
    let (one, two) = tokio::join!(tokens.take_token(&key), tokens.take_token(&key));
    let taken: Vec<TokenRecord> = [one.unwrap(), two.unwrap()].into_iter().flatten().collect();
    assert_eq!(taken, vec![record.clone()], "taken exactly once");
    assert_eq!(tokens.peek_token(&token.key()).await.unwrap(), None);
    let unknown = Token::generate().key();
    assert_eq!(tokens.take_token(&unknown).await.unwrap(), None);

    // An index entry belongs to one account at a time, names compared in any case.
    let address = ClaimKey::email("Ann@Example.com");
    assert!(tokens.claim(&address, "Ann").await.unwrap());
    assert!(
        tokens.claim(&address, "ann").await.unwrap(),
        "her own again"
    );
    assert!(
        !tokens
            .claim(&ClaimKey::email("ann@example.com"), "bob")
            .await
            .unwrap()
    );
    assert_eq!(
        tokens.owner(&address).await.unwrap().as_deref(),
        Some("Ann")
    );
    tokens.release(&address, "bob").await.unwrap();
    assert!(
        tokens.owner(&address).await.unwrap().is_some(),
        "not bob's to free"
    );
    tokens.release(&address, "ANN").await.unwrap();
    assert_eq!(tokens.owner(&address).await.unwrap(), None);
    // Two concurrent claims of one passkey: exactly one wins.
    let key = ClaimKey::passkey(b"credential id");
    let (a, b) = tokio::join!(tokens.claim(&key, "ann"), tokens.claim(&key, "bob"));
    assert_ne!(a.unwrap(), b.unwrap(), "one wins");
}

async fn counters_keep_the_contract(stores: &Stores) {
    let counters = &stores.counters;
    let three = Allowance {
        max: 3,
        window: Duration::from_secs(600),
    };
    for _ in 0..3 {
        assert_eq!(counters.hit("account:alice", three).await.unwrap(), Ok(()));
    }
    let wait = counters
        .hit("account:alice", three)
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        wait > Duration::from_secs(590) && wait <= Duration::from_secs(600),
        "{wait:?}"
    );
    // A refused hit stored nothing: one event taken back makes room for exactly one.
    for _ in 0..100 {
        assert!(counters.hit("account:alice", three).await.unwrap().is_err());
    }
    counters.forgive("account:alice").await.unwrap();
    assert_eq!(counters.hit("account:alice", three).await.unwrap(), Ok(()));
    assert!(counters.hit("account:alice", three).await.unwrap().is_err());
    // Keys are apart; a reset key starts again.
    assert_eq!(counters.hit("account:bob", three).await.unwrap(), Ok(()));
    counters.reset("account:alice").await.unwrap();
    assert_eq!(counters.hit("account:alice", three).await.unwrap(), Ok(()));
    // Taken back to zero, a counter is gone: a forgiveness too many changes nothing.
    counters.forgive("account:bob").await.unwrap();
    counters.forgive("account:bob").await.unwrap();
    for _ in 0..3 {
        assert_eq!(counters.hit("account:bob", three).await.unwrap(), Ok(()));
    }
    assert!(counters.hit("account:bob", three).await.unwrap().is_err());
    // A window ends by itself.
    let brief = Allowance {
        max: 1,
        window: Duration::from_millis(300),
    };
    assert_eq!(counters.hit("brief", brief).await.unwrap(), Ok(()));
    let wait = counters.hit("brief", brief).await.unwrap().unwrap_err();
    tokio::time::sleep(wait + Duration::from_millis(50)).await;
    assert_eq!(counters.hit("brief", brief).await.unwrap(), Ok(()));
}

async fn users_keep_the_contract(stores: &Stores) {
    let users = &stores.users;
    let alice = Username::parse("Alice").unwrap();
    users
        .create(&user("Alice", "$scrypt$first"))
        .await
        .unwrap()
        .unwrap();
    let found = users
        .get(&Username::parse("aLICE").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.name.as_str(), found.password_hash.as_str()),
        ("Alice", "$scrypt$first")
    );
    assert_eq!(
        users
            .get(&Username::parse("nobody").unwrap())
            .await
            .unwrap(),
        None
    );
    let again = users
        .create(&user("ALICE", "$scrypt$second"))
        .await
        .unwrap();
    assert_eq!(again, Err(NameTaken));
    assert_eq!(
        users.get(&alice).await.unwrap().unwrap().password_hash,
        "$scrypt$first"
    );

    // Eight concurrent registrations of one name: exactly one wins.
    let racers = (0..8).map(|i| {
        let users = stores.users.clone();
        tokio::spawn(async move {
            let name = if i % 2 == 0 { "racer" } else { "RACER" };
            users
                .create(&user(name, &format!("$scrypt${i}")))
                .await
                .unwrap()
                .is_ok()
        })
    });
    let mut winners = 0;
    for racer in racers.collect::<Vec<_>>() {
        winners += usize::from(racer.await.unwrap());
    }
    assert_eq!(winners, 1);

    // An update changes the one record; a missing user is not created.
    let changed = users
        .update(&Username::parse("ALICE").unwrap(), &|u| {
            u.password_hash = "$scrypt$changed".into()
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.name.as_str(), "Alice");
    let found = users.get(&alice).await.unwrap().unwrap();
    assert_eq!(found.password_hash, "$scrypt$changed");
    let ghost = Username::parse("ghost").unwrap();
    assert_eq!(
        users
            .update(&ghost, &|u| u.failed_logins = 9)
            .await
            .unwrap(),
        None
    );
    assert_eq!(users.get(&ghost).await.unwrap(), None);
    assert!(users.exists(&alice).await.unwrap());
    assert!(!users.exists(&ghost).await.unwrap());

    // Concurrent updates lose nothing: each one sees the others' changes.
    let updates = (0..8).map(|_| {
        let users = stores.users.clone();
        tokio::spawn(async move {
            let name = Username::parse("alice").unwrap();
            users
                .update(&name, &|u| u.failed_logins += 1)
                .await
                .unwrap();
        })
    });
    for update in updates.collect::<Vec<_>>() {
        update.await.unwrap();
    }
    assert_eq!(users.get(&alice).await.unwrap().unwrap().failed_logins, 8);

    let names = users.names().await.unwrap();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"Alice".to_owned()), "{names:?}");

    // A deleted name is free again.
    assert!(
        users
            .delete(&Username::parse("aLiCe").unwrap())
            .await
            .unwrap()
    );
    assert!(!users.delete(&alice).await.unwrap());
    assert_eq!(users.get(&alice).await.unwrap(), None);
    users
        .create(&user("alice", "$scrypt$again"))
        .await
        .unwrap()
        .unwrap();
}

async fn sessions_keep_the_contract(stores: &Stores) {
    let sessions = &stores.sessions;
    let id = SessionId::generate();
    let ttl = Duration::from_secs(60);
    assert!(sessions.create(&id, &record("alice"), ttl).await.unwrap());
    assert!(
        !sessions.create(&id, &record("mallory"), ttl).await.unwrap(),
        "never replaced"
    );
    assert_eq!(
        sessions.load(&id).await.unwrap().unwrap().user.as_str(),
        "alice"
    );
    let mut later = record("alice");
    later.last_seen += time::Duration::minutes(1);
    sessions.touch(&id, &later, ttl).await.unwrap();
    assert_eq!(
        sessions.load(&id).await.unwrap().unwrap().last_seen,
        later.last_seen
    );
    sessions.remove(&id).await.unwrap();
    assert_eq!(sessions.load(&id).await.unwrap(), None);
    sessions.touch(&id, &later, ttl).await.unwrap();
    assert_eq!(
        sessions.load(&id).await.unwrap(),
        None,
        "a touch never resurrects"
    );
    sessions.remove(&id).await.unwrap();
    assert_eq!(sessions.load(&SessionId::generate()).await.unwrap(), None);

    // The per-user index: every session of a user, in any case, and only theirs.
    let ids: Vec<SessionId> = (0..3).map(|_| SessionId::generate()).collect();
    for id in &ids {
        assert!(sessions.create(id, &record("Bob"), ttl).await.unwrap());
    }
    let carol = SessionId::generate();
    sessions
        .create(&carol, &record("carol"), ttl)
        .await
        .unwrap();
    let listed = |list: Vec<(SessionId, SessionRecord)>| {
        let mut ids: Vec<String> = list
            .into_iter()
            .map(|(id, _)| id.as_str().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let mut expected: Vec<String> = ids.iter().map(|id| id.as_str().to_owned()).collect();
    expected.sort();
    assert_eq!(listed(sessions.sessions_of("bob").await.unwrap()), expected);
    assert_eq!(sessions.sessions_of("carol").await.unwrap().len(), 1);
    assert!(sessions.sessions_of("nobody").await.unwrap().is_empty());
    // An ended session stays listed (as a tombstone) until removed; a removed one goes.
    let mut tombstone = record("Bob");
    tombstone.ended = Some(wicket::store::Ending {
        reason: wicket::store::EndReason::EndedElsewhere,
        at: OffsetDateTime::now_utc(),
    });
    sessions.touch(&ids[0], &tombstone, ttl).await.unwrap();
    let now_listed = sessions.sessions_of("Bob").await.unwrap();
    let ended = now_listed.iter().find(|(id, _)| id == &ids[0]).unwrap();
    assert!(ended.1.ended.is_some());
    sessions.remove(&ids[1]).await.unwrap();
    assert_eq!(sessions.sessions_of("bob").await.unwrap().len(), 2);

    // Logins, logouts and activity racing each other leave the index true.
    let racers = (0..24).map(|i| {
        let sessions = stores.sessions.clone();
        tokio::spawn(async move {
            let id = SessionId::generate();
            sessions.create(&id, &record("dave"), ttl).await.unwrap();
            match i % 3 {
                0 => {
                    sessions.remove(&id).await.unwrap();
                    None
                }
                1 => {
                    let mut later = record("dave");
                    later.last_seen += time::Duration::seconds(1);
                    sessions.touch(&id, &later, ttl).await.unwrap();
                    Some(id)
                }
                _ => Some(id),
            }
        })
    });
    let mut kept = Vec::new();
    for racer in racers.collect::<Vec<_>>() {
        kept.extend(racer.await.unwrap().map(|id| id.as_str().to_owned()));
    }
    kept.sort();
    assert_eq!(listed(sessions.sessions_of("dave").await.unwrap()), kept);
}

#[tokio::test]
async fn file_stores_keep_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    stores_keep_the_contract(open(StoreKind::Files, &dir)).await;
}

#[tokio::test]
async fn redis_stores_keep_the_contract() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    stores_keep_the_contract(open(StoreKind::Redis(redis.url()), &dir)).await;
}

#[tokio::test]
async fn redis_drops_a_session_when_its_time_is_up() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let sessions = open(StoreKind::Redis(redis.url()), &dir).sessions;
    let id = SessionId::generate();
    sessions
        .create(&id, &record("alice"), Duration::from_millis(1))
        .await
        .unwrap();
    // The TTL is rounded up to a second by Sessions; here the store is asked directly.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while sessions.load(&id).await.unwrap().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "redis kept an expired session"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
