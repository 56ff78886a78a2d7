use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use poem::http::{HeaderValue, header};
use poem::listener::TcpAcceptor;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, Server};

use crate::config::Config;
use crate::cookies::CookiePolicy;
use crate::error;
use crate::password::Hasher;
use crate::redis_store::RedisStore;
use crate::secret::SecretKey;
use crate::session::{CookieCodec, FileSessionStore, SessionLayer, SessionStore, Sessions};
use crate::store::StoreKind;
use crate::throttle::{LoginThrottle, Throttle};
use crate::users::{FileUserStore, UserStore};
use crate::web::csrf::{CsrfKeys, CsrfLayer};
use crate::web::{self, AppState};

/// A bound, ready-to-run Wicket: the one way both `main` and the tests start it.
pub struct Application {
    acceptor: TcpAcceptor,
    state: AppState,
    sweep_every: std::time::Duration,
    addr: SocketAddr,
    endpoint: poem::endpoint::BoxEndpoint<'static, Response>,
}

impl Application {
    /// Opens the stores (creating directories and the secret key as needed), builds the
    /// routes and binds the listening socket.
    pub async fn build(config: &Config) -> io::Result<Self> {
        let state = open_state(config)?;
        let secure = config.secure_cookies;
        // Static files skip the session and CSRF layers: they need neither.
        let pages = web::pages()
            .around(render_errors)
            .with(CsrfLayer(state.csrf.clone()))
            .with(SessionLayer(state.sessions.clone()))
            .data(Arc::new(state.clone()));
        let endpoint = Route::new()
            .nest(
                "/static",
                web::static_files(&config.static_dir)?.around(render_errors),
            )
            .nest("/", pages)
            .around(move |ep, req| finish(ep, req, secure))
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
            state,
            sweep_every: config.sweep_interval,
            addr,
            endpoint,
        })
    }

    /// The shared state, e.g. to read the scrypt run count.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The address actually bound (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves, then lets requests in flight finish.
    /// Meanwhile expired sessions are swept every `--sweep-interval`.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        tracing::info!(addr = %self.addr, "listening on http://{}", self.addr);
        let sweeper = tokio::spawn(sweep_forever(self.state.sessions, self.sweep_every));
        let _stop_sweeping = AbortOnDrop(sweeper);
        Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(
                self.endpoint,
                shutdown,
                Some(std::time::Duration::from_secs(10)),
            )
            .await
    }
}

async fn sweep_forever(sessions: Sessions, every: std::time::Duration) {
    // The first sweep waits one interval: start-up stays fast, and files that ended
    // while the server was down are refused when presented anyway.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let started = Instant::now();
        match sessions.sweep().await {
            Ok(0) => {}
            Ok(removed) => {
                let ms = started.elapsed().as_millis();
                tracing::info!(removed, ms, "swept expired sessions");
            }
            Err(err) => tracing::warn!(%err, "session sweep failed"),
        }
    }
}

/// Aborts a background task when the server stops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The session and user stores of `kind`.
pub fn open_stores(config: &Config, kind: &StoreKind) -> io::Result<(SessionStore, UserStore)> {
    Ok(match kind {
        StoreKind::Files => (
            SessionStore::Files(FileSessionStore::open(&config.sessions_dir)?),
            UserStore::Files(FileUserStore::open(&config.data_dir)?),
        ),
        StoreKind::Redis(url) => {
            let redis = RedisStore::open(url, &config.store_prefix)?;
            (SessionStore::Redis(redis.clone()), UserStore::Redis(redis))
        }
    })
}

/// The stores, the session machinery and the hasher, as `config` describes them.
pub fn open_state(config: &Config) -> io::Result<AppState> {
    let key = SecretKey::load_or_create(&config.secret_key_path())?;
    let (sessions, users) = open_stores(config, &config.store)?;
    let policy = CookiePolicy::new(config.secure_cookies);
    let codec = CookieCodec::new(key.derive("session-cookie"), policy);
    Ok(AppState {
        users,
        sessions: Sessions::new(
            codec,
            sessions,
            config.session_idle,
            config.session_lifetime,
        ),
        hasher: Hasher::new(config.scrypt_log_n, config.scrypt_permits())
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?,
        csrf: CsrfKeys::new(key.derive("csrf-token"), policy),
        login_throttle: Arc::new(LoginThrottle::new(config.throttle_login.0)),
        register_throttle: Arc::new(Throttle::new(config.throttle_register.0)),
    })
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
async fn finish<E: Endpoint>(inner: Arc<E>, req: Request, secure: bool) -> poem::Result<Response> {
    let is_static = req.uri().path().starts_with("/static/");
    // What the log line needs, taken only when it will be written.
    let logged = tracing::enabled!(target: "wicket::request", tracing::Level::INFO).then(|| {
        (
            Instant::now(),
            req.method().clone(),
            req.uri().path().to_owned(),
        )
    });
    let mut resp = match inner.call(req).await {
        Ok(resp) => resp.into_response(),
        Err(err) => error::render(err, false),
    };
    let headers = resp.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if secure {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    if !is_static {
        // Pages depend on the session and on whether htmx asked; none may be cached.
        headers.insert(header::VARY, HeaderValue::from_static("HX-Request, Cookie"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some((started, method, path)) = logged {
        tracing::info!(
            target: "wicket::request",
            %method,
            path = %path.escape_debug(),
            status = resp.status().as_u16(),
            ms = format_args!("{:.1}", started.elapsed().as_secs_f64() * 1e3),
            "request"
        );
    }
    Ok(resp)
}

/// Innermost layer: errors become pages (so the layers around always see a response).
async fn render_errors<E: Endpoint>(inner: Arc<E>, req: Request) -> poem::Result<Response> {
    let hx = web::wants_fragment(&req);
    match inner.call(req).await {
        Ok(resp) => Ok(resp.into_response()),
        Err(err) => Ok(error::render(err, hx)),
    }
}
