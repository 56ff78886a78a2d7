//! Stores that count their reads: what a request costs in store round trips.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use wicket::domain::Username;
use wicket::store::{
    NameTaken, SessionId, SessionRecord, SessionStore, StoreFuture, Stores, User, UserChange,
    UserStore,
};

/// How many reads each store has answered since the last [`Reads::take`].
#[derive(Debug, Default)]
pub struct Reads {
    /// `UserStore::get`.
    pub users: AtomicUsize,
    /// `SessionStore::load`.
    pub sessions: AtomicUsize,
    /// `SessionStore::sessions_of`.
    pub lists: AtomicUsize,
}

impl Reads {
    /// The counts so far (users, sessions, lists), starting again from zero.
    pub fn take(&self) -> (usize, usize, usize) {
        (
            self.users.swap(0, Ordering::SeqCst),
            self.sessions.swap(0, Ordering::SeqCst),
            self.lists.swap(0, Ordering::SeqCst),
        )
    }

    /// `stores` with their reads counted here.
    pub fn around(self: &Arc<Self>, stores: Stores) -> Stores {
        Stores {
            users: Arc::new(CountUsers(stores.users, self.clone())),
            sessions: Arc::new(CountSessions(stores.sessions, self.clone())),
            ..stores
        }
    }
}

#[derive(Debug)]
struct CountUsers(Arc<dyn UserStore>, Arc<Reads>);

impl UserStore for CountUsers {
    fn get<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, Option<User>> {
        self.1.users.fetch_add(1, Ordering::SeqCst);
        self.0.get(name)
    }
    fn create<'a>(&'a self, user: &'a User) -> StoreFuture<'a, Result<(), NameTaken>> {
        self.0.create(user)
    }
    fn exists<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, bool> {
        self.0.exists(name)
    }
    fn update<'a>(
        &'a self,
        name: &'a Username,
        change: &'a UserChange,
    ) -> StoreFuture<'a, Option<User>> {
        self.0.update(name, change)
    }
    fn delete<'a>(&'a self, name: &'a Username) -> StoreFuture<'a, bool> {
        self.0.delete(name)
    }
    fn names(&self) -> StoreFuture<'_, Vec<String>> {
        self.0.names()
    }
    fn ready(&self) -> StoreFuture<'_, ()> {
        self.0.ready()
    }
}

#[derive(Debug)]
struct CountSessions(Arc<dyn SessionStore>, Arc<Reads>);

impl SessionStore for CountSessions {
    fn load<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<SessionRecord>> {
        self.1.sessions.fetch_add(1, Ordering::SeqCst);
        self.0.load(id)
    }
    fn create<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a SessionRecord,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        self.0.create(id, record, ttl)
    }
    fn touch<'a>(
        &'a self,
        id: &'a SessionId,
        record: &'a SessionRecord,
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        self.0.touch(id, record, ttl)
    }
    fn remove<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, ()> {
        self.0.remove(id)
    }
    fn sessions_of<'a>(
        &'a self,
        user: &'a str,
    ) -> StoreFuture<'a, Vec<(SessionId, SessionRecord)>> {
        self.1.lists.fetch_add(1, Ordering::SeqCst);
        self.0.sessions_of(user)
    }
    fn sweep(&self, unused_for: Duration, keep_for: Duration) -> StoreFuture<'_, usize> {
        self.0.sweep(unused_for, keep_for)
    }
    fn ready(&self) -> StoreFuture<'_, ()> {
        self.0.ready()
    }
}
