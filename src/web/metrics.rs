//! `GET /metrics` on `--metrics-addr`: its own listener and route table, so nothing
//! of the site answers there and `/metrics` is never on the site's.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use poem::http::header;
use poem::web::Data;
use poem::{EndpointExt, Response, Route, get, handler};

use crate::error::AppError;
use crate::mail::Outbox;
use crate::metrics::{Gauges, metrics};
use crate::session::Sessions;
use crate::store::CounterStore;

/// Live sessions are counted by reading every stored one, and on Redis the counters
/// by listing their keys: at most this often, however often anyone scrapes.
const COUNTED_EVERY: Duration = Duration::from_secs(30);

/// What a scrape measures besides the counters.
pub struct Scrape {
    /// Sessions, to count the live ones.
    pub sessions: Sessions,
    /// The rate limits' counters.
    pub counters: Arc<dyn CounterStore>,
    /// The mail outbox, if the site sends mail.
    pub outbox: Option<Outbox>,
    /// The last count of live sessions and of counters held, and when it was made.
    pub counted: Mutex<Option<(Instant, (usize, usize))>>,
}

/// The metrics listener's routes: `/metrics` only.
pub fn routes(scrape: Scrape) -> impl poem::Endpoint<Output = Response> {
    Route::new()
        .at("/metrics", get(scrape_now))
        .data(Arc::new(scrape))
        .map_to_response()
}

/// Prometheus asks for OpenMetrics; anything else (`curl`, `promtool`) gets the
/// classic text format.
#[handler]
async fn scrape_now(req: &poem::Request, scrape: Data<&Arc<Scrape>>) -> poem::Result<Response> {
    let counted = *scrape.counted.lock().unwrap_or_else(|p| p.into_inner());
    let (sessions_live, throttle_entries) = match counted {
        Some((at, counts)) if at.elapsed() < COUNTED_EVERY => counts,
        _ => {
            let counts = (
                scrape.sessions.count_live().await.map_err(AppError::from)?,
                scrape.counters.held().await.map_err(AppError::from)?,
            );
            *scrape.counted.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((Instant::now(), counts));
            counts
        }
    };
    let gauges = Gauges {
        throttle_entries,
        sessions_live,
        mail_queue: scrape.outbox.as_ref().map_or(0, Outbox::waiting),
    };
    let text = metrics().render(gauges);
    let accepts = req.header(header::ACCEPT).unwrap_or_default();
    Ok(if accepts.contains("application/openmetrics-text") {
        Response::builder()
            .header(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
            .body(text)
    } else {
        Response::builder()
            .header(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )
            .body(crate::metrics::classic(&text))
    })
}
