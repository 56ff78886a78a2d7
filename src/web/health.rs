//! `/healthz` and `/readyz` for load balancers and service managers: outside the
//! session and CSRF layers, plain text, cheap.

use poem::http::StatusCode;
use poem::web::Data;
use poem::{IntoResponse, Response, handler};

use crate::error::chain;
use crate::store::Stores;

/// The process answers. Touches no store, so a store outage does not get a healthy
/// process restarted.
#[handler]
pub fn live() -> &'static str {
    "ok\n"
}

/// The stores answer: `200`, else `503` (take this instance out of rotation).
#[handler]
pub async fn ready(stores: Data<&Stores>) -> Response {
    let (sessions, users) = tokio::join!(stores.sessions.ready(), stores.users.ready());
    match sessions.and(users) {
        Ok(()) => "ready\n".into_response(),
        Err(err) => {
            tracing::warn!(error = %chain(&err), "not ready: the store does not answer");
            "the store does not answer\n"
                .with_status(StatusCode::SERVICE_UNAVAILABLE)
                .into_response()
        }
    }
}
