//! `wicket migrate --from files --to redis://…`: copies every user and every live
//! session, losing none. It can be run again: what is already there is skipped, and a
//! user that exists in the target with different data is reported, not overwritten.

use std::io;

use time::OffsetDateTime;

use crate::config::Config;
use crate::domain::Username;
use crate::session::ttl_until;
use crate::store::{
    FileSessionStore, FileUserStore, RedisStore, SessionStore, StoreKind, UserStore,
};

/// What a migration did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Users written to the target.
    pub users_copied: usize,
    /// Users the target already had, identical.
    pub users_present: usize,
    /// Users the target has with other data (left alone).
    pub users_conflicting: Vec<String>,
    /// Live sessions written to the target.
    pub sessions_copied: usize,
    /// Sessions the target already had.
    pub sessions_present: usize,
    /// Sessions already over (not copied).
    pub sessions_ended: usize,
}

/// Copies users and live sessions from the file stores to `to`.
pub async fn migrate(config: &Config, from: &StoreKind, to: &StoreKind) -> io::Result<Report> {
    let (StoreKind::Files, StoreKind::Redis(url)) = (from, to) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "only --from files --to redis://… is supported",
        ));
    };
    let file_sessions = FileSessionStore::open(&config.sessions_dir)?;
    let file_users = FileUserStore::open(&config.data_dir)?;
    let redis = RedisStore::open(url, &config.store_prefix)?;
    redis.ping().await?;
    let mut report = Report::default();

    let users = tokio::task::spawn_blocking(move || file_users.all_blocking())
        .await
        .map_err(io::Error::other)??;
    for user in users {
        let name = Username::parse(&user.name).map_err(|err| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("user {}: {err}", user.name),
            )
        })?;
        match UserStore::create(&redis, &user).await? {
            Ok(()) => report.users_copied += 1,
            Err(_taken) => match redis.get(&name).await? {
                Some(existing) if existing == user => report.users_present += 1,
                _ => report.users_conflicting.push(user.name.to_string()),
            },
        }
    }

    let lister = file_sessions.clone();
    let ids = tokio::task::spawn_blocking(move || lister.ids_blocking())
        .await
        .map_err(io::Error::other)??;
    let now = OffsetDateTime::now_utc();
    for id in ids {
        let Some(record) = file_sessions.load(&id).await? else {
            continue; // deleted meanwhile, or corrupt (and logged)
        };
        let ends = record.ends(config.session_idle);
        if ends <= now {
            report.sessions_ended += 1;
        } else if SessionStore::create(&redis, &id, &record, ttl_until(ends)).await? {
            report.sessions_copied += 1;
        } else {
            report.sessions_present += 1;
        }
    }
    Ok(report)
}
