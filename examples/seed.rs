//! Fills the stores with throwaway data for the benchmark (`bench/run.sh`).
//!
//! `cargo run --release --example seed -- SESSIONS_DIR DATA_DIR SESSIONS USERS [IDLE_SECS]`
//! adds SESSIONS session files (random ids, live for a week, dealt round-robin to the
//! users, each with its per-user index entry) and makes sure users `seed_0` ..
//! `seed_{USERS-1}` exist (all sharing one password hash: the store's work, not
//! scrypt's, is what is measured). With IDLE_SECS, the new session files look idle for
//! that long (their mtime is set back), so the sweep will take them. Files are not
//! fsynced: this is test data.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;
use wicket::domain::Username;
use wicket::store::{SessionId, SessionRecord, User};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [sessions_dir, data_dir, sessions, users, rest @ ..] = args.as_slice() else {
        eprintln!("usage: seed SESSIONS_DIR DATA_DIR SESSIONS USERS [IDLE_SECS]");
        std::process::exit(2);
    };
    let sessions: usize = sessions.parse().expect("SESSIONS is a number");
    let users: usize = users.parse().expect("USERS is a number");
    let idle = rest
        .first()
        .map(|s| Duration::from_secs(s.parse().expect("IDLE_SECS is a number")));
    let sessions_dir = PathBuf::from(sessions_dir);
    let users_dir = Path::new(data_dir).join("users");
    std::fs::create_dir_all(&sessions_dir).unwrap();
    std::fs::create_dir_all(&users_dir).unwrap();

    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (sessions_dir, users_dir) = (&sessions_dir, &users_dir);
            scope.spawn(move || {
                for i in (t..sessions).step_by(threads) {
                    write_session(sessions_dir, &format!("seed_{}", i % users.max(1)), idle);
                }
                for i in (t..users).step_by(threads) {
                    write_user(users_dir, i);
                }
            });
        }
    });
}

fn write_session(dir: &Path, owner: &str, idle: Option<Duration>) {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let owner = wicket::domain::Username::parse(owner).expect("a valid name");
    let record = SessionRecord::new(&owner, now, now + time::Duration::days(7));
    let id = SessionId::generate();
    let path = dir.join(format!("{}.json", id.as_str()));
    std::fs::write(&path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
    let index = dir.join("users").join(owner.as_str());
    std::fs::create_dir_all(&index).unwrap();
    let entry = index.join(id.as_str());
    std::fs::write(&entry, b"").unwrap();
    if let Some(idle) = idle {
        for path in [&path, &entry] {
            let file = std::fs::File::options().write(true).open(path).unwrap();
            file.set_modified(SystemTime::now() - idle).unwrap();
        }
    }
}

fn write_user(dir: &Path, i: usize) {
    let path = dir.join(format!("seed_{i}.json"));
    if path.exists() {
        return;
    }
    let name = Username::parse(&format!("seed_{i}")).unwrap();
    // scrypt ln=4 of "seed password": never used to log in.
    let hash =
        "$scrypt$ln=4,r=8,p=1$c2VlZHNhbHRzZWVkc2FsdA$Yxq3R7sM2xkqjQ1tS6m0u8b2cJ5r3pQ9aT1vW4yZ6nE";
    let user = User::new(&name, hash.into());
    std::fs::write(&path, serde_json::to_vec_pretty(&user).unwrap()).unwrap();
}
