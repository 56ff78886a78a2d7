//! The one error type of a request, and the status each kind maps to.
//!
//! Causes are kept as `source()`s for the log; what people see is chosen by kind alone
//! (in `web::errors`), so no cause ever reaches a page.

use std::error::Error;
use std::fmt;

use poem::error::ResponseError;
use poem::http::StatusCode;

use crate::password::HashError;
use crate::store::StoreError;

/// A boxed cause.
pub type Cause = Box<dyn Error + Send + Sync>;

/// Every failure a request can meet.
#[derive(Debug)]
pub enum AppError {
    /// A forged or stale form: another site's request, or no valid CSRF token.
    Forbidden,
    /// Overloaded: too many password checks are already waiting.
    Busy,
    /// The session or user store cannot be asked right now (e.g. Redis is down).
    Unavailable(StoreError),
    /// Logging out failed: the session could not be deleted, so it is still valid.
    LogoutFailed(StoreError),
    /// A bug or an environment fault (disk, scrypt, corrupt store).
    Internal(Cause),
}

impl AppError {
    /// An internal error with its cause.
    pub fn internal(cause: impl Into<Cause>) -> Self {
        Self::Internal(cause.into())
    }

    /// The store backend (`files`, `redis`) whose failure this is, if it is one.
    pub fn store_backend(&self) -> Option<&'static str> {
        let from_store = match self {
            Self::Unavailable(_) | Self::LogoutFailed(_) => true,
            Self::Internal(cause) => cause.downcast_ref::<StoreError>().is_some(),
            Self::Forbidden | Self::Busy => false,
        };
        from_store.then(crate::metrics::backend)
    }

    /// Whether the cause is worth an error line in the log (a fault, not a refusal).
    pub fn is_fault(&self) -> bool {
        !matches!(self, Self::Forbidden | Self::Busy)
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Forbidden => "forbidden",
            Self::Busy => "busy",
            Self::Unavailable(_) => "store unavailable",
            Self::LogoutFailed(_) => "logout failed",
            Self::Internal(_) => "internal error",
        })
    }
}

impl Error for AppError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Unavailable(cause) | Self::LogoutFailed(cause) => Some(cause),
            Self::Internal(cause) => Some(cause.as_ref()),
            Self::Forbidden | Self::Busy => None,
        }
    }
}

/// The status; the page itself is rendered by `web::errors` (poem's default text
/// response is never used: every error passes through that one renderer).
impl ResponseError for AppError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Busy | Self::Unavailable(_) | Self::LogoutFailed(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => Self::Unavailable(err),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<HashError> for AppError {
    fn from(err: HashError) -> Self {
        match err {
            HashError::Busy => Self::Busy,
            other => Self::Internal(other.into()),
        }
    }
}

impl From<std::io::Error> for AppError {
    fn from(err: std::io::Error) -> Self {
        Self::Internal(err.into())
    }
}

/// Lets handlers use `?` on store calls.
impl From<StoreError> for poem::Error {
    fn from(err: StoreError) -> Self {
        AppError::from(err).into()
    }
}

/// Lets handlers use `?` on hasher calls.
impl From<HashError> for poem::Error {
    fn from(err: HashError) -> Self {
        AppError::from(err).into()
    }
}

/// An error and its causes on one line: `store unavailable: Connection refused`.
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(err) = cause {
        text.push_str(": ");
        text.push_str(&err.to_string());
        cause = err.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_kept_and_chained_for_the_log() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "no entry");
        let err = AppError::from(StoreError::unavailable(io));
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            chain(&err),
            "store unavailable: backend unreachable: no entry"
        );
        let err = AppError::from(StoreError::Io(std::io::ErrorKind::Other.into()));
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(err.source().is_some());
    }
}
