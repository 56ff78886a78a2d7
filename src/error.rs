use poem::error::ResponseError;
use poem::http::StatusCode;
use poem::{IntoResponse, Response};

use crate::web::layout;

/// Every failure a request can meet. The text shown to people is fixed per variant;
/// internal causes are logged, never sent.
#[derive(Debug)]
pub enum AppError {
    /// Malformed input the client should not have sent.
    BadRequest(&'static str),
    /// No such page.
    NotFound,
    /// A bug or an environment fault (disk, scrypt, corrupt store).
    Internal(String),
}

impl AppError {
    /// An internal error with its cause, for the log.
    pub fn internal(cause: impl Into<String>) -> Self {
        Self::Internal(cause.into())
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadRequest(what) => write!(f, "bad request: {what}"),
            Self::NotFound => f.write_str("not found"),
            Self::Internal(cause) => write!(f, "internal error: {cause}"),
        }
    }
}

impl std::error::Error for AppError {}

impl From<std::io::Error> for AppError {
    fn from(err: std::io::Error) -> Self {
        Self::Internal(err.to_string())
    }
}

impl ResponseError for AppError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn as_response(&self) -> Response {
        let status = self.status();
        let (title, message) = match self {
            Self::BadRequest(what) => ("Bad request", *what),
            Self::NotFound => ("Page not found", "There is nothing at this address."),
            Self::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                (
                    "Something went wrong",
                    "The server could not finish this request. Please try again.",
                )
            }
        };
        layout::error_page(title, message)
            .with_status(status)
            .into_response()
    }
}
