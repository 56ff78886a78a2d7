use poem::error::ResponseError;
use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};

use crate::web::layout;

/// Every failure a request can meet. The text shown to people is fixed per variant;
/// internal causes are logged, never sent.
#[derive(Debug)]
pub enum AppError {
    /// A forged or stale form: another site's request, or no valid CSRF token.
    Forbidden,
    /// No such page.
    NotFound,
    /// Overloaded: too many password checks are already waiting.
    Busy,
    /// The session or user store cannot be reached (e.g. Redis is down).
    Unavailable(String),
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
            Self::Forbidden => f.write_str("forbidden"),
            Self::NotFound => f.write_str("not found"),
            Self::Busy => f.write_str("busy"),
            Self::Unavailable(why) => write!(f, "store unavailable: {why}"),
            Self::Internal(cause) => write!(f, "internal error: {cause}"),
        }
    }
}

impl std::error::Error for AppError {}

impl From<crate::store::StoreError> for AppError {
    fn from(err: crate::store::StoreError) -> Self {
        match err {
            crate::store::StoreError::Unavailable(why) => Self::Unavailable(why),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// Lets handlers use `?` on store calls: a store error becomes our error, then poem's.
impl From<crate::store::StoreError> for poem::Error {
    fn from(err: crate::store::StoreError) -> Self {
        AppError::from(err).into()
    }
}

impl From<crate::password::HashError> for AppError {
    fn from(err: crate::password::HashError) -> Self {
        match err {
            crate::password::HashError::Busy => Self::Busy,
            other => Self::Internal(other.to_string()),
        }
    }
}

/// Lets handlers use `?` on hasher calls.
impl From<crate::password::HashError> for poem::Error {
    fn from(err: crate::password::HashError) -> Self {
        AppError::from(err).into()
    }
}

impl From<std::io::Error> for AppError {
    fn from(err: std::io::Error) -> Self {
        Self::Internal(err.to_string())
    }
}

impl ResponseError for AppError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Busy | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn as_response(&self) -> Response {
        let (title, message) = self.public_text();
        layout::error_page(false, title, message)
            .with_status(self.status())
            .into_response()
    }
}

impl AppError {
    /// The title and message shown to people; logs an internal cause.
    pub fn public_text(&self) -> (&'static str, &'static str) {
        match self {
            Self::Forbidden => (
                "This form has expired",
                "The form was out of date or did not come from this site, so nothing was \
                 changed. Please reload the page and try again.",
            ),
            Self::NotFound => ("Page not found", "There is nothing at this address."),
            Self::Busy => (
                "The server is busy",
                "Too many people are logging in right now. Please try again in a few seconds.",
            ),
            Self::Unavailable(why) => {
                tracing::error!(%why, "store unavailable");
                (
                    "Temporarily unavailable",
                    "Wicket cannot reach its data right now. Nothing was changed; please try \
                     again in a moment.",
                )
            }
            Self::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                (
                    "Something went wrong",
                    "The server could not finish this request. Please try again.",
                )
            }
        }
    }
}

/// Any error as a page (or, for htmx, a card): ours show their fixed text; poem's
/// (404, 405, 413, bad forms) get a generic text for their status, never their own.
pub fn render(err: poem::Error, hx: bool) -> Response {
    let (status, (title, message)) = match err.downcast_ref::<AppError>() {
        Some(app) => (app.status(), app.public_text()),
        None => {
            let resp = err.into_response();
            let status = resp.status();
            if !(status.is_client_error() || status.is_server_error()) {
                return resp; // a redirect carried as an error, e.g. by the Member extractor
            }
            (status, generic_text(status))
        }
    };
    let mut resp = layout::error_page(hx, title, message)
        .with_status(status)
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    resp
}

fn generic_text(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::NOT_FOUND => ("Page not found", "There is nothing at this address."),
        StatusCode::METHOD_NOT_ALLOWED => (
            "Method not allowed",
            "This page does not accept that kind of request.",
        ),
        StatusCode::FORBIDDEN => ("Forbidden", "This request is not allowed."),
        StatusCode::PAYLOAD_TOO_LARGE => ("Too large", "The form sent was too large."),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "Unsupported form",
            "The form was sent in an unexpected format.",
        ),
        s if s.is_client_error() => ("Bad request", "The request could not be understood."),
        _ => {
            tracing::error!(%status, "request failed inside the framework");
            (
                "Something went wrong",
                "The server could not finish this request. Please try again.",
            )
        }
    }
}
