use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use poem::http::{HeaderValue, StatusCode, header};
use poem::listener::TcpAcceptor;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Server};

use crate::config::Config;
use crate::error::AppError;
use crate::password::Hasher;
use crate::secret::SecretKey;
use crate::session::{CookieCodec, FileSessionStore, SessionLayer, Sessions};
use crate::users::UserStore;
use crate::web::{self, AppState, layout};

/// A bound, ready-to-run Wicket: the one way both `main` and the tests start it.
pub struct Application {
    acceptor: TcpAcceptor,
    addr: SocketAddr,
    endpoint: poem::endpoint::BoxEndpoint<'static, Response>,
}

impl Application {
    /// Opens the stores (creating directories and the secret key as needed), builds the
    /// routes and binds the listening socket.
    pub async fn build(config: &Config) -> io::Result<Self> {
        let state = open_state(config)?;
        let sessions = state.sessions.clone();
        let endpoint = web::routes(&config.static_dir)
            .catch_all_error(|err| async move { error_response(err) })
            .with(SessionLayer(sessions))
            .data(state)
            .around(finish)
            .boxed();
        let listener = tokio::net::TcpListener::bind(&config.addr)
            .await
            .map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!("cannot listen on {}: {err}", config.addr),
                )
            })?;
        let addr = listener.local_addr()?;
        Ok(Self {
            acceptor: TcpAcceptor::from_tokio(listener)?,
            addr,
            endpoint,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves, then lets requests in flight finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        tracing::info!(addr = %self.addr, "listening on http://{}", self.addr);
        Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(
                self.endpoint,
                shutdown,
                Some(std::time::Duration::from_secs(10)),
            )
            .await
    }
}

/// The stores, the session machinery and the hasher, as `config` describes them.
pub fn open_state(config: &Config) -> io::Result<AppState> {
    let key = SecretKey::load_or_create(&config.secret_key_path())?;
    let store = FileSessionStore::open(&config.sessions_dir)?;
    let codec = CookieCodec::new(key.derive("session-cookie"), false);
    Ok(AppState {
        users: UserStore::open(&config.data_dir)?,
        sessions: Sessions::new(codec, store, config.session_idle, config.session_lifetime),
        hasher: hasher(config)?,
    })
}

/// The scrypt hasher `config` asks for.
pub fn hasher(config: &Config) -> io::Result<Hasher> {
    Hasher::new(config.scrypt_log_n, config.scrypt_permits())
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err.to_string()))
}

/// Security headers that every answer carries.
const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("x-frame-options", "DENY"),
];

/// Outermost layer: adds headers and logs one line per request.
async fn finish<E: Endpoint>(inner: std::sync::Arc<E>, req: Request) -> poem::Result<Response> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let is_static = path.starts_with("/static/");
    let mut resp = match inner.call(req).await {
        Ok(resp) => resp.into_response(),
        Err(err) => error_response(err),
    };
    let headers = resp.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !is_static {
        // Pages depend on the session and on whether htmx asked; none may be cached.
        headers.insert(header::VARY, HeaderValue::from_static("HX-Request, Cookie"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    tracing::info!(
        %method,
        path = %path.escape_debug(),
        status = resp.status().as_u16(),
        ms = format_args!("{:.1}", started.elapsed().as_secs_f64() * 1e3),
        "request"
    );
    Ok(resp)
}

/// Innermost layer: errors become pages (so the session layer always sees a response).
///
/// Ours render themselves; poem's (404, 405, bad forms) get
/// a generic page with their status, never their internal text.
fn error_response(err: poem::Error) -> Response {
    if err.is::<AppError>() {
        return err.into_response();
    }
    let resp = err.into_response();
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp; // a redirect carried as an error, e.g. by the Member extractor
    }
    let (title, message) = match status {
        StatusCode::NOT_FOUND => ("Page not found", "There is nothing at this address."),
        StatusCode::METHOD_NOT_ALLOWED => (
            "Method not allowed",
            "This page does not accept that kind of request.",
        ),
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
    };
    layout::error_page(title, message)
        .with_status(status)
        .into_response()
}
