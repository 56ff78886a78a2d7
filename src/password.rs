use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use scrypt::password_hash::phc::PasswordHash;
use scrypt::password_hash::{PasswordHasher, PasswordVerifier};
use scrypt::{Params, Scrypt};
use tokio::sync::Semaphore;

use crate::domain::Password;
use crate::error::AppError;

/// The longest a login or registration waits for a free scrypt slot.
const PERMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// scrypt block size and parallelism; only `log_n` is configurable.
const R: u32 = 8;
const P: u32 = 1;

/// Hashes and verifies passwords with scrypt, off the async threads and a few at a time.
///
/// Each scrypt run holds `128 * r * 2^log_n` bytes (128 MiB at the default), so a
/// semaphore bounds how many run at once: a flood of logins queues instead of
/// exhausting memory, and the async threads keep serving everything else.
#[derive(Clone)]
pub struct Hasher {
    scrypt: Scrypt,
    log_n: u8,
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when the user does not exist.
    dummy: Arc<OnceLock<String>>,
    /// How many scrypt runs have started (for tests and metrics).
    runs: Arc<AtomicU64>,
}

impl Hasher {
    /// A hasher at cost `2^log_n` (r=8, p=1) running at most `permits` hashes at once.
    pub fn new(log_n: u8, permits: usize) -> Result<Self, AppError> {
        let params = Params::new(log_n, R, P)
            .map_err(|err| AppError::internal(format!("scrypt parameters: {err}")))?;
        Ok(Self {
            scrypt: Scrypt::new_with_params(params),
            log_n,
            permits: Arc::new(Semaphore::new(permits.max(1))),
            dummy: Arc::default(),
            runs: Arc::default(),
        })
    }

    /// Hashes a new password to a PHC string (`$scrypt$ln=17,r=8,p=1$salt$hash`).
    pub async fn hash(&self, password: Password) -> Result<String, AppError> {
        let scrypt = self.scrypt;
        self.run(move || {
            scrypt
                .hash_password(password.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|err| AppError::internal(format!("scrypt hash: {err}")))
        })
        .await?
    }

    /// Checks `password` against `stored`, or against a dummy hash when there is no user,
    /// so that "no such user" and "wrong password" cost the same time.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, AppError> {
        if password.chars().count() > *crate::domain::PASSWORD_LEN.end() {
            // Never spend scrypt work on input no account can have.
            return Ok(false);
        }
        if let Some(stored) = &stored {
            // Refuse a malformed or too costly hash before taking a permit.
            self.check_cost(&parse_hash(stored)?)?;
        }
        let this = self.clone();
        self.run(move || {
            let (stored, exists) = match stored {
                Some(stored) => (stored, true),
                None => (this.dummy_hash()?.to_owned(), false),
            };
            let hash = parse_hash(&stored)?;
            Ok(this
                .scrypt
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
                && exists)
        })
        .await?
    }

    /// Refuses hashes whose parameters cost more than this server is configured to spend,
    /// so a tampered user file cannot make one login allocate gigabytes.
    fn check_cost(&self, hash: &PasswordHash) -> Result<(), AppError> {
        let params = Params::try_from(hash)
            .map_err(|err| AppError::internal(format!("stored hash parameters: {err}")))?;
        if params.log_n() > self.log_n || params.r() > R || params.p() > P {
            return Err(AppError::internal(format!(
                "stored hash costs more than configured (ln={}, r={}, p={})",
                params.log_n(),
                params.r(),
                params.p()
            )));
        }
        Ok(())
    }

    fn dummy_hash(&self) -> Result<&str, AppError> {
        if let Some(hash) = self.dummy.get() {
            return Ok(hash);
        }
        let random = crate::secret::hex(&crate::secret::random_bytes::<16>());
        let hash = self
            .scrypt
            .hash_password(random.as_bytes())
            .map_err(|err| AppError::internal(format!("scrypt hash: {err}")))?
            .to_string();
        Ok(self.dummy.get_or_init(|| hash))
    }

    /// How many hash or verify runs have started since the server began.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Runs `work` on the blocking pool while holding one of the permits.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        // Past this wait the server is overloaded: say so (503) instead of queueing
        // without end while clients time out.
        let permit = tokio::time::timeout(PERMIT_WAIT, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| AppError::Busy)?
            .map_err(|_| AppError::internal("scrypt semaphore closed"))?;
        self.runs.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|err| AppError::internal(format!("scrypt task failed: {err}")))
    }
}

fn parse_hash(stored: &str) -> Result<PasswordHash, AppError> {
    PasswordHash::new(stored)
        .map_err(|err| AppError::internal(format!("stored hash is malformed: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(text: &str) -> Password {
        Password::parse(text.to_owned()).unwrap()
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
    async fn an_unknown_user_never_verifies() {
        let hasher = Hasher::new(4, 1).unwrap();
        assert!(!hasher.verify("anything at all".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_costlier_than_configured_are_refused() {
        let strong = Hasher::new(6, 1).unwrap();
        let stored = strong.hash(password("correct horse")).await.unwrap();
        let weak = Hasher::new(5, 1).unwrap();
        assert!(
            weak.verify("correct horse".into(), Some(stored))
                .await
                .is_err()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn when_every_slot_stays_busy_the_caller_gets_busy_not_a_queue() {
        let hasher = Hasher::new(4, 1).unwrap();
        let _held = Arc::clone(&hasher.permits).acquire_owned().await.unwrap();
        let result = hasher.verify("correct horse".into(), None).await;
        assert!(matches!(result, Err(AppError::Busy)), "{result:?}");
        assert_eq!(hasher.runs(), 0);
    }
}
