//! Error pages: the one place an error becomes a response (and a log line).

use poem::error::ResponseError;
use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};

use super::layout;
use crate::error::{AppError, chain};

/// Any error as a page (or, for htmx, a card). Ours show the fixed text of their
/// kind; poem's (404, 405, 413, bad forms) a generic text for their status, never
/// their own. Faults are logged here with their causes; refusals are not errors.
pub fn render(err: poem::Error, hx: bool) -> Response {
    let (status, (title, message)) = match err.downcast_ref::<AppError>() {
        Some(app) => {
            if let Some(backend) = app.store_backend() {
                crate::metrics::metrics().store_error(backend);
            }
            if app.is_fault() {
                tracing::error!(error = %chain(app), "request failed");
            }
            (app.status(), public_text(app))
        }
        None => {
            let resp = err.into_response();
            let status = resp.status();
            if !(status.is_client_error() || status.is_server_error()) {
                return resp; // a redirect carried as an error, e.g. by the Member extractor
            }
            if status.is_server_error() {
                tracing::error!(%status, "request failed inside the framework");
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

/// The title and message shown to people for one of our errors.
fn public_text(err: &AppError) -> (&'static str, &'static str) {
    match err {
        AppError::Forbidden => (
            "This form has expired",
            "The form was out of date or did not come from this site, so nothing was \
             changed. Please reload the page and try again.",
        ),
        AppError::Busy => (
            "The server is busy",
            "Too many people are logging in right now. Please try again in a few seconds.",
        ),
        AppError::Unavailable(_) => (
            "Temporarily unavailable",
            "Wicket cannot reach its data right now. Nothing was changed; please try \
             again in a moment.",
        ),
        AppError::LogoutFailed(_) => (
            "You are still logged in",
            "Wicket could not end your session just now, so you are still logged in. \
             Please try again in a moment.",
        ),
        AppError::Internal(_) => (
            "Something went wrong",
            "The server could not finish this request. Please try again.",
        ),
    }
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
        StatusCode::REQUEST_TIMEOUT => (
            "Too slow",
            "The form did not arrive in time, so nothing was changed. Please try again.",
        ),
        StatusCode::MISDIRECTED_REQUEST => (
            "Wrong address",
            "This server does not serve the site at that address.",
        ),
        s if s.is_client_error() => ("Bad request", "The request could not be understood."),
        _ => (
            "Something went wrong",
            "The server could not finish this request. Please try again.",
        ),
    }
}
