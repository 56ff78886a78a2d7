//! Builds the poem application from a `Config`: stores, routes, middleware and the
//! background sweep. `main` and the tests start Wicket the same way.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use poem::{EndpointExt, Response, Route, get};

use crate::accounts::Passkeys;
use crate::accounts::{Accounts, DeviceCookies, SecondFactorKeys};
use crate::config::Config;
use crate::cookies::CookiePolicy;
use crate::guard::Guard;
use crate::mail::{Destination, Mailer, Outbox};
use crate::oidc::Provider;
use crate::password::Hasher;
use crate::secret::SecretKey;
use crate::session::{SessionLayer, Sessions};
use crate::store::{self, Stores};
use crate::throttle::{LoginThrottle, Throttle};
use crate::web::csrf::{CsrfKeys, CsrfLayer};
use crate::web::reset::{ForgotThrottle, LinkCookie};
use crate::web::two_step::TwoStep;
use crate::web::{self, AppState};

/// A bound, ready-to-run Wicket: the one way both `main` and the tests start it.
pub struct Application {
    listener: tokio::net::TcpListener,
    state: AppState,
    config: Config,
    addr: SocketAddr,
    endpoint: poem::endpoint::BoxEndpoint<'static, Response>,
    /// `--metrics-addr`'s listener, and what its scrapes read.
    metrics: Option<(tokio::net::TcpListener, web::metrics::Scrape)>,
}

impl Application {
    /// Opens the stores `config` names (creating directories and the secret key as
    /// needed), builds the routes and binds the listening socket.
    pub async fn build(config: &Config) -> io::Result<Self> {
        let stores = open_stores(config)?;
        Self::build_with(config, stores).await
    }

    /// The same, on stores opened by the caller (tests wrap the real ones to stage
    /// races and failures).
    pub async fn build_with(config: &Config, stores: Stores) -> io::Result<Self> {
        crate::brand::set_name(&config.site_name);
        let logo = match &config.site_logo {
            Some(path) => Some(crate::brand::Logo::read(path).map_err(|err| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("--site-logo {err}"))
            })?),
            None => None,
        };
        if let Some(logo) = &logo {
            crate::brand::set_logo(logo);
        }
        let state = state_with(config, stores.clone())?;
        crate::metrics::set_backend(&config.store);
        let counters = stores.counters.clone();
        let edge = Arc::new(web::respond::Edge::of(config, state.guard.clone()));
        // Static files skip the session and CSRF layers: they need neither. Nor do
        // the health checks.
        let shared = Arc::new(state.clone());
        let pages = web::pages()
            .with(CsrfLayer(state.csrf.clone()))
            .with(SessionLayer(state.sessions.clone()))
            .data(shared.clone());
        // Forward-auth runs before every request to every guarded app: straight to
        // its endpoint, which reads the session itself.
        let check = |kind| web::forward::Checks::new(shared.clone(), kind);
        let endpoint = Route::new()
            .nest(
                "/static",
                web::statics::StaticFiles::load_with(&config.static_dir, logo.as_ref())?,
            )
            .at("/healthz", get(web::health::live))
            .at(
                "/.well-known/change-password",
                get(web::well_known::change_password),
            )
            .at("/readyz", get(web::health::ready).data(stores))
            .at("/auth/request", check(web::forward::Check::Request))
            .at("/auth/forward", check(web::forward::Check::Forward))
            .at(
                "/auth/forbidden",
                get(web::forward::forbidden).data(shared.clone()),
            )
            // The provider's routes for apps: JSON, no cookies, no forms of ours.
            .at(
                "/.well-known/openid-configuration",
                get(web::oidc::discovery).data(shared.clone()),
            )
            .at("/oidc/jwks", get(web::oidc::jwks).data(shared.clone()))
            .at(
                "/oidc/token",
                poem::post(web::oidc::token_endpoint)
                    .options(web::oidc::preflight)
                    .data(shared.clone()),
            )
            .at(
                "/oidc/userinfo",
                get(web::oidc::userinfo)
                    .post(web::oidc::userinfo)
                    .options(web::oidc::preflight)
                    .data(shared.clone()),
            )
            .at(
                "/oidc/revoke",
                poem::post(web::oidc::revoke)
                    .options(web::oidc::preflight)
                    .data(shared.clone()),
            )
            .at(
                "/.well-known/security.txt",
                match &config.security_contact {
                    Some(contact) => get(web::well_known::security_txt)
                        .data(web::well_known::SecurityTxt {
                            contact: contact.clone(),
                            origin: config.public_url.as_ref().map(|u| u.origin().to_owned()),
                        })
                        .boxed(),
                    None => poem::endpoint::make_sync(|_| poem::http::StatusCode::NOT_FOUND)
                        .map_to_response()
                        .boxed(),
                },
            )
            .nest("/", pages)
            .around(move |ep, req| web::respond::outermost(ep, req, edge.clone()))
            .boxed();
        let listener = crate::net::server::bind(&config.addr)
            .await
            .map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!("--addr {}: cannot listen: {err}", config.addr),
                )
            })?;
        let addr = listener.local_addr()?;
        let metrics = match &config.metrics_addr {
            Some(at) => {
                let listener = tokio::net::TcpListener::bind(at).await.map_err(|err| {
                    io::Error::new(
                        err.kind(),
                        format!("--metrics-addr {at}: cannot listen: {err}"),
                    )
                })?;
                let scrape = web::metrics::Scrape {
                    sessions: state.sessions.clone(),
                    counters,
                    outbox: state.mail.as_ref().map(|mail| mail.outbox.clone()),
                    counted: std::sync::Mutex::new(None),
                };
                Some((listener, scrape))
            }
            None => None,
        };
        if let Some(provider) = &state.oidc {
            match &config.public_url {
                Some(url) => provider.set_issuer(url.origin()),
                None => provider.set_issuer(&format!("http://{addr}")),
            }
        }
        Ok(Self {
            listener,
            state,
            config: config.clone(),
            addr,
            endpoint,
            metrics,
        })
    }

    /// Where `/metrics` is served (`--metrics-addr`, as bound), if anywhere.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
    }

    /// The shared state, e.g. to read the scrypt work done.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The address actually bound (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves, then lets requests in flight finish.
    /// Meanwhile ended sessions are swept every `--sweep-interval`.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        tracing::info!(addr = %self.addr, "listening on http://{}", self.addr);
        warn_about_exposure(&self.config, self.addr);
        let limits = self.config.limits();
        if let Some(descriptors) = crate::net::server::descriptor_limit()
            && limits.max_connections as u64 + 64 > descriptors
        {
            tracing::warn!(
                max_connections = limits.max_connections,
                descriptors,
                "--max-connections leaves no room under the descriptor limit; \
                 accepts will back off when descriptors run out"
            );
        }
        let clients = self.config.per_client();
        let outbox = self.state.mail.as_ref().map(|mail| mail.outbox.clone());
        let sweeper = tokio::spawn(sweep_forever(
            self.state.sessions,
            self.state.tokens,
            self.state.oidc.clone(),
            self.config.sweep_interval,
        ));
        let _stop_sweeping = AbortOnDrop(sweeper);
        let reloader = tokio::spawn(reload_on_hangup(
            self.state.guard.clone(),
            self.state.oidc.clone(),
        ));
        let _stop_reloading = AbortOnDrop(reloader);
        let _stop_metrics = match self.metrics {
            Some((listener, scrape)) => {
                let at = listener.local_addr()?;
                tracing::info!(addr = %at, "metrics on http://{at}/metrics");
                let acceptor = poem::listener::TcpAcceptor::from_tokio(listener)?;
                let server =
                    poem::Server::new_with_acceptor(acceptor).run(web::metrics::routes(scrape));
                Some(AbortOnDrop(tokio::spawn(async move {
                    if let Err(err) = server.await {
                        tracing::error!(error = %err, "the metrics listener stopped");
                    }
                })))
            }
            None => None,
        };
        tighten_files(&self.config);
        let served =
            crate::net::server::serve(self.listener, self.endpoint, limits, clients, shutdown)
                .await;
        if let Some(outbox) = outbox {
            finish_sending(&outbox).await;
        }
        served
    }
}

/// At shutdown, gives queued mail a few seconds to go; what is still waiting then is
/// lost, and the log says how much.
async fn finish_sending(outbox: &Outbox) {
    const GRACE: Duration = Duration::from_secs(5);
    if outbox.waiting() == 0 {
        return;
    }
    if tokio::time::timeout(GRACE, outbox.idle()).await.is_err() {
        let waiting = outbox.waiting();
        tracing::error!(
            waiting,
            "shutting down with mail not sent (the server did not accept it in time)"
        );
    }
}

/// Settings that are fine on a laptop and unsafe in production: say so at start-up.
/// Without `--public-url` any `Host` is answered and forms are checked against it
/// (DNS rebinding); an https site without `--secure-cookies` sends plain cookies.
fn warn_about_exposure(config: &Config, addr: SocketAddr) {
    if config
        .public_url
        .as_ref()
        .is_some_and(|url| url.is_https() && !config.secure_cookies)
    {
        tracing::warn!(
            "--public-url is https but --secure-cookies is off: cookies go without \
             Secure and __Host-, and no HSTS is sent"
        );
    }
    if config.public_url.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "listening beyond loopback without --public-url: any Host header is \
             answered; set --public-url to the site's address"
        );
    }
}

async fn sweep_forever(
    sessions: Sessions,
    tokens: Arc<dyn store::TokenStore>,
    oidc: Option<Arc<Provider>>,
    every: Duration,
) {
    // The first sweep waits one interval: start-up stays fast, and sessions that ended
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
                tracing::info!(removed, ms, "swept ended sessions");
            }
            Err(err) => tracing::warn!(error = %crate::error::chain(&err), "session sweep failed"),
        }
        match tokens.sweep_tokens(time::OffsetDateTime::now_utc()).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "swept expired mailed tokens"),
            Err(err) => tracing::warn!(error = %crate::error::chain(&err), "token sweep failed"),
        }
        if let Some(provider) = &oidc {
            match provider.sweep().await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "swept expired OpenID Connect grants"),
                Err(err) => {
                    tracing::warn!(error = %crate::error::chain(&err), "grant sweep failed")
                }
            }
        }
    }
}

/// Reloads the access rules, and the OpenID Connect clients and keys, on every
/// `SIGHUP`, for as long as the server runs; a bad file is logged and what is in force
/// stays.
async fn reload_on_hangup(guard: Guard, oidc: Option<Arc<Provider>>) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::warn!("cannot listen for SIGHUP: the access rules reload only at start-up");
        return;
    };
    while hangups.recv().await.is_some() {
        match guard.reload() {
            Ok(rules) => tracing::info!(rules, "access rules reloaded"),
            Err(err) => {
                tracing::error!(error = %err, "access rules not reloaded; the old ones stay");
            }
        }
        if let Some(provider) = &oidc {
            match provider.reload() {
                Ok(()) => {
                    guard.set_form_targets(provider.form_targets());
                    tracing::info!("OpenID Connect clients and keys reloaded");
                }
                Err(err) => {
                    tracing::error!(error = %err, "OpenID Connect clients and keys not reloaded; the old ones stay")
                }
            }
        }
    }
}

/// Tightens files that an older version or an operator left readable by others, on
/// the blocking pool: the directories are already owner-only (checked at start-up, so
/// nobody else can reach the files), and a million session files must not delay it.
fn tighten_files(config: &Config) {
    if config.store != store::StoreKind::Files {
        return;
    }
    let dirs = [config.sessions_dir.clone(), config.data_dir.join("users")];
    tokio::task::spawn_blocking(move || {
        for dir in dirs {
            if let Err(err) = crate::fsutil::private_files(&dir) {
                tracing::warn!(dir = %dir.display(), %err, "could not tighten file permissions");
            }
        }
    });
}

/// Aborts a background task when the server stops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The stores `config` names.
pub fn open_stores(config: &Config) -> io::Result<Stores> {
    Ok(store::open(
        &config.store,
        &config.sessions_dir,
        &config.data_dir,
        &config.store_prefix,
    )?)
}

fn state_with(config: &Config, stores: Stores) -> io::Result<AppState> {
    let key = SecretKey::load_or_create(&config.secret_key_path())?;
    let guard = guard(config)?;
    let policy = CookiePolicy::new(config.secure_cookies);
    let accounts = accounts_with(config, &stores, &key)?;
    let oidc = provider(config, &stores, &accounts.sessions, &guard)?;
    if let Some(provider) = &oidc {
        guard.set_form_targets(provider.form_targets());
    }
    Ok(AppState {
        oidc,
        sessions: accounts.sessions.clone(),
        users: accounts.users.clone(),
        hasher: accounts.hasher.clone(),
        csrf: CsrfKeys::new(key.derive("csrf-token"), policy),
        authorize_throttle: Arc::new(Throttle::new(
            "oidc-authorize",
            Some(web::oidc::ANONYMOUS_REQUESTS),
            stores.counters.clone(),
        )),
        register_throttle: Arc::new(Throttle::new(
            "register",
            config.throttle_register.0,
            stores.counters.clone(),
        )),
        forgot_throttle: Arc::new(ForgotThrottle::new(
            config.throttle_forgot.0,
            stores.counters.clone(),
        )),
        two_step: TwoStep::new(policy, stores.counters.clone()),
        passkeys: passkeys(config, stores.counters)?,
        ipv6_prefix: config.throttle_ipv6_prefix,
        public_url: config.public_url.clone(),
        tokens: stores.tokens,
        mail: accounts.mail.clone(),
        link_cookie: LinkCookie::new(policy),
        accounts,
        guard,
        trusted_proxies: config.trusted_proxies.clone(),
        registration: config.registration,
    })
}

/// The access rules `config` names, and its cookie domain checked against the rest:
/// a shared cookie is `Secure` (so `--secure-cookies`), and Wicket's own host must be
/// under the domain, or browsers would refuse the cookie.
pub fn guard(config: &Config) -> io::Result<Guard> {
    let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
    if let Some(domain) = &config.cookie_domain {
        if !config.secure_cookies {
            return Err(invalid(format!(
                "--cookie-domain {domain} needs --secure-cookies: a shared session \
                 cookie is __Secure- and is only sent over TLS"
            )));
        }
        if let Some(url) = &config.public_url {
            let host = url.host().to_ascii_lowercase();
            if host != *domain && !host.ends_with(&format!(".{domain}")) {
                return Err(invalid(format!(
                    "--cookie-domain {domain} does not cover --public-url's host {host}"
                )));
            }
        }
    }
    Guard::load(config.access_rules.clone(), config.cookie_domain.clone())
        .map_err(|err| invalid(format!("--access-rules: {err}")))
}

/// The OpenID Connect provider, when `--oidc-clients` names the apps it serves: at
/// `--public-url` (or the listening address), with its keys in the data directory.
fn provider(
    config: &Config,
    stores: &Stores,
    sessions: &Sessions,
    guard: &Guard,
) -> io::Result<Option<Arc<Provider>>> {
    let Some(file) = &config.oidc_clients else {
        return Ok(None);
    };
    let provider = Provider::open(
        file.clone(),
        config.data_dir.clone(),
        stores.grants.clone(),
        sessions.clone(),
        guard.clone(),
    )
    .map_err(|err| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--oidc-clients: {err}"),
        )
    })?;
    Ok(Some(Arc::new(provider)))
}

/// The account service on the stores and keys `config` names, for the site and the
/// command line alike.
pub fn open_accounts(config: &Config) -> io::Result<Accounts> {
    let key = SecretKey::load_or_create(&config.secret_key_path())?;
    accounts_with(config, &open_stores(config)?, &key)
}

fn accounts_with(config: &Config, stores: &Stores, key: &SecretKey) -> io::Result<Accounts> {
    let policy = CookiePolicy::new(config.secure_cookies);
    Ok(Accounts {
        sessions: Sessions::new(
            key,
            policy,
            config.cookie_domain.clone(),
            stores.sessions.clone(),
            stores.users.clone(),
            config.session_idle,
            config.session_lifetime,
        )
        .with_journal(stores.journal.clone()),
        users: stores.users.clone(),
        tokens: stores.tokens.clone(),
        hasher: Hasher::new(config.scrypt_log_n, config.scrypt_permits())
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?,
        guesses: Arc::new(LoginThrottle::new(
            config.throttle_login.0,
            stores.counters.clone(),
        )),
        devices: DeviceCookies::new(key.derive("device"), policy),
        second_factor: SecondFactorKeys::new(key.sealer("totp-key"), key.derive("recovery-code")),
        ipv6_prefix: config.throttle_ipv6_prefix,
        mail: mailer(config).map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?,
        journal: stores.journal.clone(),
    })
}

/// Passkeys for `--public-url`'s site, if it has one whose host is a domain name.
fn passkeys(
    config: &Config,
    counters: Arc<dyn crate::store::CounterStore>,
) -> io::Result<Option<Passkeys>> {
    let Some(site) = &config.public_url else {
        return Ok(None);
    };
    let passkeys = Passkeys::new(site, counters)
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
    if passkeys.is_none() {
        tracing::warn!(
            site = site.origin(),
            "passkeys are off: WebAuthn needs a domain name in --public-url, not an IP address"
        );
    }
    Ok(passkeys)
}

/// The outbox `config` asks for: SMTP (which needs `--public-url` for its links and
/// `--mail-from`), a mail directory (links to `--public-url` or the listening
/// address), or none.
fn mailer(config: &Config) -> Result<Option<Mailer>, String> {
    let destination = match (&config.smtp_url, &config.mail_dir) {
        (Some(url), _) => {
            if url.is_plain() && !smtp_is_local(url) {
                tracing::warn!(%url, "mail goes to a remote SMTP server without TLS; use ?tls=required or smtps://");
            }
            Destination::Smtp(url.clone(), Destination::credentials_from_env()?)
        }
        (None, Some(dir)) => Destination::Directory(dir.clone()),
        (None, None) => return Ok(None),
    };
    let site = match (&config.public_url, &destination) {
        (Some(url), _) => url.origin().to_owned(),
        (None, Destination::Directory(_)) => format!("http://{}", config.addr),
        (None, Destination::Smtp(..)) => {
            return Err("--smtp-url needs --public-url: the links in mails point there".into());
        }
    };
    let from = match (&config.mail_from, &destination) {
        (Some(from), _) => from.clone(),
        (None, Destination::Directory(_)) => "Wicket <wicket@localhost>".to_owned(),
        (None, Destination::Smtp(..)) => {
            return Err(
                "--smtp-url needs --mail-from, e.g. 'Wicket <no-reply@example.com>'".into(),
            );
        }
    };
    let outbox = Outbox::new(destination, &from)?;
    Ok(Some(Mailer { outbox, site }))
}

/// Whether `url` names this machine (plain SMTP to a local relay is fine).
fn smtp_is_local(url: &crate::mail::SmtpUrl) -> bool {
    let text = url.to_string();
    let host = text
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split([':', '/', '?']).next())
        .unwrap_or_default();
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}
