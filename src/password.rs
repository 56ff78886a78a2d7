//! scrypt hashing and verification, off the async threads and a few at a time; and
//! the foreign hashes an import brings (bcrypt from htpasswd, argon2id from Authelia),
//! verified until the member's next login replaces them by scrypt.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use scrypt::password_hash::phc::{Output, PasswordHash, Salt};
use scrypt::password_hash::{PasswordHasher, PasswordVerifier};
use scrypt::{Params, Scrypt};
use tokio::sync::Semaphore;

use crate::domain::{PASSWORD_LEN, Password};
use crate::secret::random_bytes;

/// The longest a login or registration waits for a free scrypt slot.
const PERMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// scrypt block size and parallelism; only `log_n` is configurable.
const R: u32 = 8;
const P: u32 = 1;
/// The costliest stored hash this server verifies (1 GiB at r=8), whatever it is
/// configured for, so lowering `--scrypt-log-n` locks nobody out: such hashes are
/// verified and replaced at login. A costlier one is refused before any work.
pub const MAX_LOG_N: u8 = 20;

/// Why hashing or verifying failed. The web layer decides what people see.
#[derive(Debug)]
pub enum HashError {
    /// Every scrypt slot stayed busy for too long: the server is overloaded.
    Busy,
    /// The stored hash is malformed or costs more than this server spends.
    BadStoredHash(String),
    /// scrypt itself or its thread failed.
    Failed(String),
}

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Busy => f.write_str("every scrypt slot is busy"),
            Self::BadStoredHash(why) => write!(f, "stored hash refused: {why}"),
            Self::Failed(why) => write!(f, "scrypt failed: {why}"),
        }
    }
}

impl std::error::Error for HashError {}

/// Hashes and verifies passwords with scrypt, off the async threads and a few at a time.
///
/// Each scrypt run holds `128 * r * 2^log_n` bytes (128 MiB at the default), so a
/// semaphore bounds how many run at once: a flood of logins queues instead of
/// exhausting memory, and the async threads keep serving everything else.
#[derive(Clone)]
pub struct Hasher {
    scrypt: Scrypt,
    log_n: u8,
    /// One permit is the memory of one run at the configured cost; a costlier run
    /// takes more (at most all of them), so memory stays bounded by
    /// `max(permits × configured cost, one run at MAX_LOG_N)`.
    permits: Arc<Semaphore>,
    /// How many permits there are.
    total_permits: u32,
    /// A well-formed hash at this server's cost that no password matches, verified
    /// against when the user does not exist. Made at start-up from random bytes (no
    /// scrypt run needed), so even the first unknown-user login costs one run.
    dummy: Arc<str>,
    /// scrypt work finished so far, in units of N (`2^log_n`) per run.
    work: Arc<AtomicU64>,
}

impl Hasher {
    /// A hasher at cost `2^log_n` (r=8, p=1) running at most `permits` hashes at once.
    pub fn new(log_n: u8, permits: usize) -> Result<Self, HashError> {
        let params = Params::new(log_n, R, P)
            .map_err(|err| HashError::Failed(format!("scrypt parameters: {err}")))?;
        let salt =
            Salt::new(&random_bytes::<16>()).map_err(|e| HashError::Failed(e.to_string()))?;
        let output =
            Output::new(&random_bytes::<32>()).map_err(|e| HashError::Failed(e.to_string()))?;
        Ok(Self {
            scrypt: Scrypt::new_with_params(params),
            log_n,
            permits: Arc::new(Semaphore::new(permits.max(1))),
            total_permits: u32::try_from(permits.max(1)).unwrap_or(u32::MAX),
            dummy: format!("$scrypt$ln={log_n},r={R},p={P}${salt}${output}").into(),
            work: Arc::default(),
        })
    }

    /// Hashes a new password to a PHC string (`$scrypt$ln=17,r=8,p=1$salt$hash`).
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        let this = self.clone();
        self.run(self.log_n, move || {
            let hash = this
                .scrypt
                .hash_password(password.as_bytes())
                .map_err(|err| HashError::Failed(format!("hash: {err}")))?;
            this.record_work(this.log_n);
            Ok(hash.to_string())
        })
        .await?
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is no
    /// user, so that "no such user" and "wrong password" cost the same time.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        if password.chars().count() > *PASSWORD_LEN.end() {
            // Never spend scrypt work on input no account can have.
            return Ok(false);
        }
        let exists = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy.to_string());
        match Scheme::of(&stored).map_err(|why| HashError::BadStoredHash(why.into()))? {
            Scheme::Scrypt => {}
            foreign => return self.verify_foreign(foreign, password, stored).await,
        }
        // Refuse a malformed or too costly hash before taking a permit.
        let log_n = self.check_cost(&parse_hash(&stored)?)?;
        let this = self.clone();
        self.run(log_n, move || {
            let hash = parse_hash(&stored)?;
            let matches = this
                .scrypt
                .verify_password(password.as_bytes(), &hash)
                .is_ok();
            this.record_work(log_n);
            Ok(matches && exists)
        })
        .await?
    }

    /// Checks `password` against an imported bcrypt or argon2id hash (its cost
    /// already bounded by [`Scheme::of`]), holding the permits of its memory.
    async fn verify_foreign(
        &self,
        scheme: Scheme,
        password: String,
        stored: String,
    ) -> Result<bool, HashError> {
        let scrypt_bytes = (128u64 * u64::from(R)) << self.log_n;
        let needed_bytes = match scheme {
            Scheme::Argon2id { kib } => u64::from(kib) * 1024,
            _ => scrypt_bytes,
        };
        // Permits double with each step of log_n: round up to the next power of two.
        let runs = needed_bytes
            .div_ceil(scrypt_bytes)
            .max(1)
            .next_power_of_two();
        let log_n = self.log_n + runs.ilog2() as u8;
        self.run(log_n, move || match scheme {
            Scheme::Bcrypt => Ok(bcrypt::verify(password.as_bytes(), &stored).unwrap_or(false)),
            Scheme::Argon2id { .. } => {
                use argon2::password_hash::{PasswordHash, PasswordVerifier};
                let hash = PasswordHash::new(&stored)
                    .map_err(|err| HashError::BadStoredHash(format!("argon2id: {err}")))?;
                Ok(argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok())
            }
            Scheme::Scrypt => unreachable!("scrypt is verified above"),
        })
        .await?
    }

    /// Whether a stored hash (already verified) should be replaced by one at this
    /// server's cost: it was made at another cost, or is not a hash this server makes.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let params = parse_hash(stored)
            .ok()
            .and_then(|hash| Params::try_from(&hash).ok());
        params.is_none_or(|p| (p.log_n(), p.r(), p.p()) != (self.log_n, R, P))
    }

    /// Refuses hashes that cost more than the ceiling (or than this server's own cost,
    /// if that is higher), so a tampered user file cannot make one login allocate
    /// gigabytes. Returns `log_n`.
    fn check_cost(&self, hash: &PasswordHash) -> Result<u8, HashError> {
        let params = Params::try_from(hash)
            .map_err(|err| HashError::BadStoredHash(format!("parameters: {err}")))?;
        if params.log_n() > MAX_LOG_N.max(self.log_n) || params.r() > R || params.p() > P {
            return Err(HashError::BadStoredHash(format!(
                "costs more than configured (ln={}, r={}, p={})",
                params.log_n(),
                params.r(),
                params.p()
            )));
        }
        Ok(params.log_n())
    }

    fn record_work(&self, log_n: u8) {
        self.work.fetch_add(1 << log_n, Ordering::Relaxed);
    }

    /// scrypt work finished since the server began, in units of N: a run at `log_n`
    /// adds `2^log_n`. Counted after each run, from the parameters it actually used.
    pub fn work(&self) -> u64 {
        self.work.load(Ordering::Relaxed)
    }

    /// The work of one run at this server's cost (what [`Hasher::work`] grows by).
    pub fn work_per_run(&self) -> u64 {
        1 << self.log_n
    }

    /// Runs `work`, an scrypt run at `log_n`, on the blocking pool while holding the
    /// permits its memory needs.
    async fn run<T: Send + 'static>(
        &self,
        log_n: u8,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let needed = 1u32
            .checked_shl(u32::from(log_n.saturating_sub(self.log_n)))
            .unwrap_or(u32::MAX)
            .min(self.total_permits);
        // Past this wait the server is overloaded: say so (503) instead of queueing
        // without end while clients time out.
        let permits = Arc::clone(&self.permits).acquire_many_owned(needed);
        let asked = std::time::Instant::now();
        let permit = tokio::time::timeout(PERMIT_WAIT, permits).await;
        crate::metrics::metrics().scrypt_waited(asked.elapsed());
        let permit = permit
            .map_err(|_| HashError::Busy)?
            .map_err(|_| HashError::Failed("semaphore closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|err| HashError::Failed(format!("task: {err}")))
    }
}

/// The kinds of stored hash this server verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `$scrypt$…`: what Wicket makes.
    Scrypt,
    /// `$2y$…` (or `$2a$`, `$2b$`): bcrypt, from Apache's `htpasswd -B`.
    Bcrypt,
    /// `$argon2id$…`: Authelia's default; `kib` of memory per check.
    Argon2id {
        /// Memory per check, in KiB.
        kib: u32,
    },
}

/// The costliest bcrypt hash verified (cost 14 takes about a second).
pub const MAX_BCRYPT_COST: u32 = 14;
/// The costliest argon2id hash verified: 1 GiB, as for scrypt ([`MAX_LOG_N`]), and
/// at most 10 passes over 16 lanes.
pub const MAX_ARGON2_KIB: u32 = 1 << 20;

impl Scheme {
    /// Which scheme `stored` is, if it is a well-formed hash this server verifies at
    /// a bounded cost; otherwise why not (never quoting the hash).
    pub fn of(stored: &str) -> Result<Self, &'static str> {
        if stored.starts_with("$scrypt$") {
            let hash = PasswordHash::new(stored).map_err(|_| "a malformed scrypt hash")?;
            let params = Params::try_from(&hash).map_err(|_| "a malformed scrypt hash")?;
            if params.log_n() > MAX_LOG_N || params.r() > R || params.p() > P {
                return Err("an scrypt hash costlier than this server checks");
            }
            return Ok(Self::Scrypt);
        }
        if let Some(rest) = ["$2y$", "$2b$", "$2a$"]
            .iter()
            .find_map(|tag| stored.strip_prefix(tag))
        {
            let (cost, digest) = rest.split_once('$').ok_or("a malformed bcrypt hash")?;
            let cost: u32 = cost.parse().map_err(|_| "a malformed bcrypt hash")?;
            let alphabet = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '/');
            if cost < 4 || digest.len() != 53 || !digest.chars().all(alphabet) {
                return Err("a malformed bcrypt hash");
            }
            if cost > MAX_BCRYPT_COST {
                return Err("a bcrypt hash costlier than this server checks (cost over 14)");
            }
            return Ok(Self::Bcrypt);
        }
        if stored.starts_with("$argon2id$") {
            use argon2::password_hash::PasswordHash as Phc;
            let hash = Phc::new(stored).map_err(|_| "a malformed argon2id hash")?;
            let params =
                argon2::Params::try_from(&hash).map_err(|_| "a malformed argon2id hash")?;
            if params.m_cost() > MAX_ARGON2_KIB || params.t_cost() > 10 || params.p_cost() > 16 {
                return Err("an argon2id hash costlier than this server checks");
            }
            return Ok(Self::Argon2id {
                kib: params.m_cost(),
            });
        }
        Err("an unknown hash format (expected scrypt, bcrypt or argon2id)")
    }
}

fn parse_hash(stored: &str) -> Result<PasswordHash, HashError> {
    PasswordHash::new(stored).map_err(|err| HashError::BadStoredHash(format!("malformed: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_hashes_are_known_by_their_form_and_bounded_in_cost() {
        let bcrypt = "$2y$05$kBQ6nVFnu.1gzVODf0HccOf/0jOGZThnAADlsQuY7lGs5cNZG9tMa";
        assert_eq!(Scheme::of(bcrypt), Ok(Scheme::Bcrypt));
        assert!(
            Scheme::of(&bcrypt.replace("$05$", "$15$"))
                .unwrap_err()
                .contains("costlier")
        );
        assert!(Scheme::of(&bcrypt[..40]).unwrap_err().contains("malformed"));
        let argon = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhcw";
        assert_eq!(Scheme::of(argon), Ok(Scheme::Argon2id { kib: 65536 }));
        for costly in ["m=2097152,t=3,p=4", "m=65536,t=11,p=4", "m=65536,t=3,p=17"] {
            let huge = argon.replace("m=65536,t=3,p=4", costly);
            assert!(
                Scheme::of(&huge).unwrap_err().contains("costlier"),
                "{costly}"
            );
        }
        let scrypt =
            "$scrypt$ln=17,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhcw";
        assert_eq!(Scheme::of(scrypt), Ok(Scheme::Scrypt));
        let scrypt = scrypt.replace("ln=17", &format!("ln={}", MAX_LOG_N + 1));
        assert!(Scheme::of(&scrypt).unwrap_err().contains("costlier"));
        for unknown in [
            "$apr1$xyz$0123",
            "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
            "$argon2d$v=19$x",
            "plain",
        ] {
            let why = Scheme::of(unknown).unwrap_err();
            assert!(
                why.contains("unknown hash format") && !why.contains(unknown),
                "{why}"
            );
        }
    }

    #[tokio::test]
    async fn an_imported_bcrypt_hash_verifies_its_password_and_asks_to_be_replaced() {
        let hasher = Hasher::new(4, 2).unwrap();
        let stored = bcrypt::hash_with_result("correct horse", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        assert!(stored.starts_with("$2y$04$"));
        assert!(
            hasher
                .verify("correct horse".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("correct horsf".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(hasher.needs_rehash(&stored));
    }

    fn password(text: &str) -> Password {
        Password::parse(text.to_owned(), "alice").unwrap()
    }

    #[tokio::test]
    async fn a_hash_verifies_its_own_password_only() {
        let hasher = Hasher::new(4, 2).unwrap();
        let stored = hasher.hash(password("correct horse")).await.unwrap();
        assert!(stored.starts_with("$scrypt$ln=4,r=8,p=1$"), "{stored}");
        assert!(!stored.contains("correct horse"));
        let ok = hasher
            .verify("correct horse".into(), Some(stored.clone()))
            .await;
        assert!(ok.unwrap());
        let wrong = hasher.verify("correct horsf".into(), Some(stored)).await;
        assert!(!wrong.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies_yet_costs_one_full_run() {
        let hasher = Hasher::new(4, 1).unwrap();
        assert!(!hasher.verify("anything at all".into(), None).await.unwrap());
        assert_eq!(hasher.work(), hasher.work_per_run());
    }

    #[test]
    fn the_dummy_hash_is_made_at_start_up_at_the_configured_cost() {
        let hasher = Hasher::new(5, 1).unwrap();
        let dummy = PasswordHash::new(&hasher.dummy).unwrap();
        let params = Params::try_from(&dummy).unwrap();
        assert_eq!((params.log_n(), params.r(), params.p()), (5, R, P));
        assert_eq!(hasher.work(), 0, "no scrypt run was needed to make it");
        assert_ne!(hasher.dummy, Hasher::new(5, 1).unwrap().dummy);
    }

    #[tokio::test]
    async fn hashes_at_another_cost_verify_and_ask_to_be_replaced() {
        let weak = Hasher::new(5, 2).unwrap();
        for other in [3, 7] {
            let stored = Hasher::new(other, 1)
                .unwrap()
                .hash(password("correct horse"))
                .await
                .unwrap();
            assert!(
                weak.verify("correct horse".into(), Some(stored.clone()))
                    .await
                    .unwrap()
            );
            assert!(weak.needs_rehash(&stored), "ln={other}");
        }
        let own = weak.hash(password("correct horse")).await.unwrap();
        assert!(!weak.needs_rehash(&own));
        assert!(weak.needs_rehash("not a hash at all"));
    }

    #[tokio::test]
    async fn hashes_costlier_than_the_ceiling_are_refused_before_any_work() {
        let hasher = Hasher::new(4, 1).unwrap();
        let stored = hasher.hash(password("correct horse")).await.unwrap();
        let before = hasher.work();
        let over = stored.replace("ln=4,", &format!("ln={},", MAX_LOG_N + 1));
        let refused = hasher.verify("correct horse".into(), Some(over)).await;
        assert!(
            matches!(refused, Err(HashError::BadStoredHash(_))),
            "{refused:?}"
        );
        assert_eq!(hasher.work(), before);
    }

    #[tokio::test(start_paused = true)]
    async fn a_costlier_run_takes_the_memory_of_several_permits() {
        let hasher = Hasher::new(4, 4).unwrap();
        let stored = Hasher::new(6, 1)
            .unwrap()
            .hash(password("correct horse"))
            .await
            .unwrap();
        // One permit busy: a run at 4x the configured memory cannot start.
        let _held = Arc::clone(&hasher.permits).acquire_owned().await.unwrap();
        let result = hasher.verify("correct horse".into(), Some(stored)).await;
        assert!(matches!(result, Err(HashError::Busy)), "{result:?}");
        assert!(hasher.verify("anything at all".into(), None).await.is_ok());
    }

    #[tokio::test]
    async fn hashes_with_a_larger_block_size_or_parallelism_are_refused() {
        let hasher = Hasher::new(5, 1).unwrap();
        let stored = hasher.hash(password("correct horse")).await.unwrap();
        for to in ["r=16,p=1", "r=8,p=2"] {
            let costlier = stored.replace("r=8,p=1", to);
            let refused = hasher.verify("correct horse".into(), Some(costlier)).await;
            assert!(
                matches!(refused, Err(HashError::BadStoredHash(_))),
                "{to}: {refused:?}"
            );
        }
        assert!(
            hasher
                .verify("correct horse".into(), Some(stored))
                .await
                .unwrap()
        );
        assert_eq!(
            HashError::BadStoredHash("x".into()).to_string(),
            "stored hash refused: x"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn when_every_slot_stays_busy_the_caller_gets_busy_not_a_queue() {
        let hasher = Hasher::new(4, 1).unwrap();
        let _held = Arc::clone(&hasher.permits).acquire_owned().await.unwrap();
        let result = hasher.verify("correct horse".into(), None).await;
        assert!(matches!(result, Err(HashError::Busy)), "{result:?}");
        assert_eq!(hasher.work(), 0);
    }
}
