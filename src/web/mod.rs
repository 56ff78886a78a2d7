//! Routes, handlers and views: this file is the route table and the map. Each flow
//! owns its module (handlers, and views that take what they show); `layout` holds the
//! page frame, `hx` how an answer is shaped for htmx or a plain post, `next` where a
//! login returns to, `member` the extractor that guards members-only routes,
//! `messages` what several forms say, `errors` the error pages and `respond` the
//! layer around everything.

mod account;
mod auth;
mod cabinet;
mod client;
pub mod csrf;
pub mod email;
mod errors;
mod form;
pub mod forward;
pub mod health;
mod hx;
pub mod layout;
mod login;
mod logout;
mod member;
mod messages;
pub mod metrics;
mod next;
mod not_me;
pub mod oidc;
pub mod passkey;
mod register;
pub mod reset;
pub mod respond;
mod restore_address;
pub mod statics;
mod step_up;
pub mod two_step;
pub mod well_known;

use std::sync::Arc;

pub use self::hx::{Hx, throttled, too_many, wants_fragment};
pub use self::member::{Member, account_of};
pub use self::next::{CABINET, login_url, return_to, safe_next, with_next};

use poem::web::Redirect;
use poem::{Route, get, post};

use crate::password::Hasher;
use crate::session::Sessions;
use crate::store::UserStore;
use crate::throttle::Throttle;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The user store.
    pub users: Arc<dyn UserStore>,
    /// Session lifecycle.
    pub sessions: Sessions,
    /// scrypt.
    pub hasher: Hasher,
    /// CSRF token keys.
    pub csrf: csrf::CsrfKeys,
    /// The account service: checks and changes of accounts.
    pub accounts: crate::accounts::Accounts,
    /// Registration limits per client address.
    pub register_throttle: Arc<Throttle>,
    /// IPv6 clients are throttled per network of this many bits.
    pub ipv6_prefix: u8,
    /// The site's one address, if pinned (`--public-url`): forms must come from it.
    pub public_url: Option<crate::net::PublicUrl>,
    /// Mailed tokens and the confirmed-address index.
    pub tokens: Arc<dyn crate::store::TokenStore>,
    /// Where mail goes, if anywhere (`--smtp-url`, `--mail-dir`).
    pub mail: Option<crate::mail::Mailer>,
    /// The cookie a mailed link's token waits in.
    pub link_cookie: reset::LinkCookie,
    /// Limits on reset mails.
    pub forgot_throttle: Arc<reset::ForgotThrottle>,
    /// Two-step login's keys and cookie.
    pub two_step: two_step::TwoStep,
    /// Passkeys' relying party, when `--public-url` names a domain.
    pub passkeys: Option<crate::accounts::Passkeys>,
    /// The access rules and where a login may return to.
    pub guard: crate::guard::Guard,
    /// Who may ask the forward-auth checks.
    pub trusted_proxies: crate::net::TrustedProxies,
    /// Who may register.
    pub registration: crate::config::Registration,
    /// The OpenID Connect provider, when `--oidc-clients` is given.
    pub oidc: Option<Arc<crate::oidc::Provider>>,
    /// Authorization requests from browsers nobody is logged in on, per address
    /// (each is kept until its login): [`oidc::ANONYMOUS_REQUESTS`].
    pub authorize_throttle: Arc<Throttle>,
}

/// The pages: every route but `/static`.
pub fn pages() -> Route {
    Route::new()
        .at("/", get(login::page))
        .at("/login", get(login::elsewhere).post(login::submit))
        .at("/register", get(to_register).post(to_register))
        .at("/register/", get(register::page).post(register::submit))
        .at("/cabinet", get(cabinet::page))
        .at("/account", get(account::page))
        .at("/account/activity", get(account::activity::page))
        .at("/account/activity/not-me", post(account::activity::not_me))
        .at("/account/trusted/forget", post(account::trusted::forget))
        .at(
            "/account/export",
            get(account::export::page).post(account::export::download),
        )
        .at("/account/password", post(account::change_password))
        .at("/account/sessions/end", post(account::end_session))
        .at("/account/delete", post(account::delete))
        .at("/logout", get(logout::confirm).post(logout::submit))
        .at("/account/email", post(account::change_email))
        .at("/verify-email/:token", get(email::verify))
        .at(
            "/forgot",
            get(reset::forgot_page).post(reset::forgot_submit),
        )
        .at("/reset/:token", get(reset::open_reset_link))
        .at("/reset", get(reset::reset_page).post(reset::reset_submit))
        .at("/not-me/:token", get(not_me::open_not_me_link))
        .at(
            "/not-me",
            get(not_me::not_me_page).post(not_me::not_me_submit),
        )
        .at(
            "/restore-address/:token",
            get(restore_address::open_restore_link),
        )
        .at(
            "/restore-address",
            get(restore_address::restore_page).post(restore_address::restore_submit),
        )
        .at(
            "/login/code",
            get(two_step::code_page).post(two_step::code_submit),
        )
        .at("/login/step-up", get(step_up::page).post(step_up::submit))
        .at("/account/totp/setup", post(two_step::start_setup))
        .at("/account/totp", post(two_step::enable))
        .at("/account/totp/recovery", post(two_step::regenerate))
        .at("/account/totp/off", post(two_step::disable))
        .at("/login/passkey/options", post(passkey::login_options))
        .at("/login/passkey", post(passkey::login))
        .at("/account/passkeys/options", post(passkey::add_options))
        .at("/account/passkeys", post(passkey::add))
        .at("/account/passkeys/remove", post(passkey::remove))
        .at(
            "/oidc/authorize",
            get(oidc::authorize).post(oidc::authorize_posted),
        )
        .at("/oidc/continue", get(oidc::resume))
        .at("/oidc/consent", post(oidc::consent))
        .at("/oidc/reauth", post(oidc::reauth))
        .at(
            "/oidc/logout",
            get(oidc::logout_page).post(oidc::logout_submit),
        )
        .at("/account/apps/remove", post(account::remove_app))
}

/// Client-supplied text (a path, an `Origin`) cut for a log line: at most 200
/// characters, so no request makes a line longer than about 1 KB.
pub fn clipped(text: &str) -> &str {
    match text.char_indices().nth(200) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// `/register` (no slash): `308` keeps a POST a POST.
#[poem::handler]
fn to_register() -> Redirect {
    Redirect::permanent("/register/")
}
