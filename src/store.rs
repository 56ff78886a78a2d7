//! The storage seam: which backend holds sessions and users, and how it fails.

use std::fmt;

/// Where sessions and users live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// JSON files in the sessions and data directories (the default).
    Files,
    /// A Redis server shared by several instances: `redis://HOST:PORT/DB`.
    Redis(String),
}

impl std::str::FromStr for StoreKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "files" => Ok(Self::Files),
            url if url.starts_with("redis://") => Ok(Self::Redis(url.to_owned())),
            other => Err(format!("'{other}' is neither 'files' nor a redis:// URL")),
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Files => f.write_str("files"),
            Self::Redis(url) => f.write_str(url),
        }
    }
}

/// A store operation that failed.
#[derive(Debug)]
pub enum StoreError {
    /// The backend cannot be reached right now (a 503; it may come back).
    Unavailable(String),
    /// A file-system or data error (a 500).
    Io(std::io::Error),
    /// The store is misconfigured (at start-up).
    Config(String),
}

impl StoreError {
    /// Wraps an error from a backend that could not be reached.
    pub fn unavailable(err: impl fmt::Display) -> Self {
        Self::Unavailable(err.to_string())
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(why) => write!(f, "store unavailable: {why}"),
            Self::Io(err) => write!(f, "store error: {err}"),
            Self::Config(why) => write!(f, "store configuration: {why}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<std::io::Error> for StoreError {
    fn from(err: std::io::Error) -> Self {
        Self::Io(err)
    }
}

impl From<StoreError> for std::io::Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Io(err) => err,
            other => std::io::Error::other(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_settings_parse() {
        assert_eq!("files".parse(), Ok(StoreKind::Files));
        assert_eq!(
            "redis://127.0.0.1:6379/0".parse(),
            Ok(StoreKind::Redis("redis://127.0.0.1:6379/0".into()))
        );
        assert!("postgres://x".parse::<StoreKind>().is_err());
        assert!(
            "rediss://x".parse::<StoreKind>().is_err(),
            "built without TLS"
        );
    }
}
