//! A cache of things read from one directory's files, kept honest by the kernel's
//! change notifications (Linux inotify) instead of a `stat` per read.
//!
//! The kernel queues an event for a file before the call that created, changed,
//! renamed or removed it returns, and every lookup first drains that queue under the
//! cache's lock. So a change finished before a request began is seen by that request,
//! exactly as a `stat` would see it, for one non-blocking `read` (and no path walk).
//!
//! - A value read from disk is cached only if no event arrived while it was read (the
//!   [`Ticket`] carries the generation the lookup saw).
//! - A queue overflow (events lost) drops every entry: all are read afresh.
//! - Without a watch (no inotify, the instance limit reached, or the directory itself
//!   removed or moved) lookups say so, and the caller checks the file itself.
//!
//! Not seen: changes through a hard link in another directory, and changes made by
//! another machine on a network file system. Neither is how Wicket's files are edited.

use std::collections::HashMap;
use std::hash::Hash;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

#[cfg(target_os = "linux")]
use rustix::fs::inotify;

/// What a lookup found.
pub struct Lookup<V> {
    /// The cached value, if any.
    pub value: Option<V>,
    /// Hand this back to [`Watched::insert`] with what was read from disk.
    pub ticket: Ticket,
}

/// Proof of when a lookup missed: what is read after it may be cached only if nothing
/// in the directory changed meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    generation: u64,
    watched: bool,
}

impl Ticket {
    /// Whether the directory was watched at the lookup: a value found then is current.
    /// Without a watch a cached value may be stale, and the caller must check the file.
    pub fn watched(&self) -> bool {
        self.watched
    }
}

/// Values derived from the files of one directory, keyed by what each file name says
/// (`key_of` returns `None` for names that are not the cache's, e.g. temp files).
pub struct Watched<K, V> {
    state: Mutex<State<K, V>>,
    key_of: fn(&str) -> Option<K>,
    capacity: usize,
}

struct State<K, V> {
    /// The inotify descriptor; `None` when the directory is not watched.
    notify: Option<OwnedFd>,
    /// Bumped by every event drained: a value read before may be stale.
    generation: u64,
    entries: HashMap<K, V>,
}

impl<K: Hash + Eq, V: Clone> std::fmt::Debug for Watched<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("watching", &self.is_watching())
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq, V: Clone> Watched<K, V> {
    /// A cache of at most `capacity` entries for the files in `dir`, watched if the
    /// system allows (a warning says why not otherwise).
    pub fn new(dir: &Path, key_of: fn(&str) -> Option<K>, capacity: usize) -> Self {
        let notify = watch(dir)
            .inspect_err(|err| {
                tracing::warn!(dir = %dir.display(), %err,
                    "cannot watch the directory for changes; checking each file on every read instead");
            })
            .ok();
        Self {
            state: Mutex::new(State {
                notify,
                generation: 0,
                entries: HashMap::new(),
            }),
            key_of,
            capacity,
        }
    }

    /// A cache that is not watched (as when inotify is unavailable): every value
    /// found is checked by the caller.
    #[cfg(test)]
    pub fn unwatched(key_of: fn(&str) -> Option<K>, capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                notify: None,
                generation: 0,
                entries: HashMap::new(),
            }),
            key_of,
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<K, V>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The locked state with every change notified so far applied.
    fn current(&self) -> MutexGuard<'_, State<K, V>> {
        let mut state = self.lock();
        state.drain(self.key_of);
        state
    }

    /// The cached value for `key`, as of now.
    pub fn get(&self, key: &K) -> Lookup<V> {
        let state = self.current();
        Lookup {
            value: state.entries.get(key).cloned(),
            ticket: Ticket {
                generation: state.generation,
                watched: state.notify.is_some(),
            },
        }
    }

    /// Caches `value`, read from disk after the lookup that gave `ticket`, unless a
    /// change may have come in between (when watched).
    pub fn insert(&self, ticket: Ticket, key: K, value: V) {
        let mut state = self.current();
        if state.notify.is_some() && state.generation != ticket.generation {
            return;
        }
        if state.entries.len() >= self.capacity {
            state.entries.clear(); // crude but bounded; it refills from the hot entries
        }
        state.entries.insert(key, value);
    }

    /// Drops `key`'s entry (the caller is changing the file).
    pub fn remove(&self, key: &K) {
        self.lock().entries.remove(key);
    }

    /// Entries cached.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is cached.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the directory is watched.
    pub fn is_watching(&self) -> bool {
        self.lock().notify.is_some()
    }
}

impl<K: Hash + Eq, V> State<K, V> {
    /// Applies the queued events: each drops its file's entry.
    #[cfg(target_os = "linux")]
    fn drain(&mut self, key_of: fn(&str) -> Option<K>) {
        use inotify::ReadFlags;
        let Some(notify) = &self.notify else { return };
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut events = inotify::Reader::new(notify, &mut buf);
        let lost = loop {
            let event = match events.next() {
                Ok(event) => event,
                Err(rustix::io::Errno::WOULDBLOCK) => break None,
                Err(rustix::io::Errno::INTR) => continue,
                Err(err) => break Some(format!("reading change notifications failed: {err}")),
            };
            self.generation += 1;
            let flags = event.events();
            if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                tracing::info!("change notifications overflowed; reading every file afresh");
                self.entries.clear();
            } else if flags.intersects(ReadFlags::IGNORED | ReadFlags::MOVE_SELF) {
                break Some("the directory was removed, moved or unmounted".to_owned());
            } else if let Some(key) = event
                .file_name()
                .and_then(|name| name.to_str().ok())
                .and_then(key_of)
            {
                self.entries.remove(&key);
            }
        };
        if let Some(why) = lost {
            tracing::warn!(%why, "no longer watching for changes; checking each file on every read instead");
            self.notify = None;
            self.entries.clear();
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn drain(&mut self, _key_of: fn(&str) -> Option<K>) {}
}

/// A non-blocking inotify descriptor watching what happens to `dir`'s entries.
#[cfg(target_os = "linux")]
fn watch(dir: &Path) -> std::io::Result<OwnedFd> {
    use inotify::{CreateFlags, WatchFlags};
    let notify = inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC)?;
    let changes = WatchFlags::CREATE
        | WatchFlags::MODIFY
        | WatchFlags::ATTRIB
        | WatchFlags::DELETE
        | WatchFlags::MOVED_FROM
        | WatchFlags::MOVED_TO
        | WatchFlags::DELETE_SELF
        | WatchFlags::MOVE_SELF
        | WatchFlags::ONLYDIR;
    inotify::add_watch(&notify, dir, changes)?;
    Ok(notify)
}

#[cfg(not(target_os = "linux"))]
fn watch(_dir: &Path) -> std::io::Result<OwnedFd> {
    Err(std::io::Error::other("change notifications are Linux-only"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stem(name: &str) -> Option<String> {
        name.strip_suffix(".txt").map(str::to_owned)
    }

    fn cache(dir: &Path) -> Watched<String, String> {
        let cache = Watched::new(dir, stem, 100);
        assert!(cache.is_watching());
        cache
    }

    /// What a store does on a miss: read the file and cache it.
    fn read_through(cache: &Watched<String, String>, dir: &Path, key: &str) -> String {
        let lookup = cache.get(&key.to_owned());
        if let Some(value) = lookup.value {
            return value;
        }
        let value = std::fs::read_to_string(dir.join(format!("{key}.txt"))).unwrap_or_default();
        cache.insert(lookup.ticket, key.to_owned(), value.clone());
        value
    }

    #[test]
    fn every_kind_of_change_is_seen_by_the_next_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, path) = (cache(dir.path()), dir.path().join("a.txt"));
        std::fs::write(&path, "one").unwrap();
        assert_eq!(read_through(&cache, dir.path(), "a"), "one");
        assert_eq!(cache.len(), 1, "cached");
        assert_eq!(read_through(&cache, dir.path(), "a"), "one");

        // Written in place.
        std::fs::write(&path, "two").unwrap();
        assert_eq!(read_through(&cache, dir.path(), "a"), "two");
        // Replaced by a rename (how Wicket itself writes).
        std::fs::write(dir.path().join("a.tmp"), "three").unwrap();
        std::fs::rename(dir.path().join("a.tmp"), &path).unwrap();
        assert_eq!(read_through(&cache, dir.path(), "a"), "three");
        // Permissions changed.
        assert_eq!(read_through(&cache, dir.path(), "a"), "three");
        assert_eq!(cache.len(), 1);
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        assert!(cache.get(&"a".into()).value.is_none());
        // Removed.
        assert_eq!(read_through(&cache, dir.path(), "a"), "three");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(read_through(&cache, dir.path(), "a"), "");
        // Other names leave the entry alone.
        std::fs::write(&path, "four").unwrap();
        assert_eq!(read_through(&cache, dir.path(), "a"), "four");
        std::fs::write(dir.path().join("b.txt"), "b").unwrap();
        assert_eq!(cache.get(&"a".into()).value.as_deref(), Some("four"));
    }

    #[test]
    fn a_value_read_while_the_file_changed_is_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let (cache, path) = (cache(dir.path()), dir.path().join("a.txt"));
        std::fs::write(&path, "old").unwrap();
        let lookup = cache.get(&"a".into());
        let read = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, "new").unwrap();
        // Another request drains the event before this one caches what it read.
        assert!(cache.get(&"b".into()).value.is_none());
        cache.insert(lookup.ticket, "a".into(), read);
        assert!(cache.is_empty(), "the old value must not be cached");
        assert_eq!(read_through(&cache, dir.path(), "a"), "new");
    }

    #[test]
    fn an_overflowing_queue_drops_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        let cache = cache(dir.path());
        for key in ["a", "b"] {
            std::fs::write(dir.path().join(format!("{key}.txt")), key).unwrap();
            read_through(&cache, dir.path(), key);
        }
        assert_eq!(cache.len(), 2);
        let queued: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Each change to an unrelated file queues one event (two files in turn, as the
        // kernel merges an event into an identical one before it); one more than fits.
        let others = [dir.path().join("x.tmp"), dir.path().join("y.tmp")];
        for other in &others {
            std::fs::write(other, "").unwrap();
        }
        for i in 0..=queued {
            let mode = std::os::unix::fs::PermissionsExt::from_mode(0o600);
            std::fs::set_permissions(&others[i % 2], mode).unwrap();
        }
        assert!(cache.get(&"a".into()).value.is_none());
        assert!(cache.is_empty());
        assert!(
            cache.is_watching(),
            "an overflow loses events, not the watch"
        );
    }

    #[test]
    fn a_removed_directory_ends_the_watch_and_lookups_say_so() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("d");
        std::fs::create_dir(&dir).unwrap();
        let cache = cache(&dir);
        std::fs::write(dir.join("a.txt"), "a").unwrap();
        read_through(&cache, &dir, "a");
        assert!(cache.get(&"a".into()).ticket.watched());
        std::fs::rename(&dir, parent.path().join("moved")).unwrap();
        let lookup = cache.get(&"a".into());
        assert!(!lookup.ticket.watched());
        assert!(lookup.value.is_none());
        assert!(!cache.is_watching());
    }
}
