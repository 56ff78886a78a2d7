//! `/account`: who you are, where you are logged in, your password, and leaving.
//!
//! Every form is a plain POST that htmx enhances: with htmx the answer is the form's
//! own section (and, when sessions change, the sessions list as an out-of-band swap);
//! without it, a `303` back to `/account` or the whole page with the errors in place.
//!
//! This file is the page and what its forms share (the data one answer shows, the
//! refusal answers); each form's handler has a file of its own, the views `view.rs`.

pub mod activity;
mod apps;
mod email;
pub mod export;
mod leave;
mod password;
mod sessions;
pub mod trusted;
mod view;

pub use self::apps::remove_app;
pub use self::email::change_email;
pub use self::leave::delete;
pub use self::password::change_password;
pub use self::sessions::end_session;

use std::sync::Arc;

use maud::Markup;
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{IntoResponse, Response, Result, handler};
use serde::Deserialize;

use self::view::{AccountView, EmailState, FormState};
use super::Member;
use super::csrf::Csrf;
use super::layout::wait_message;
use super::messages::WRONG_PASSWORD;
use super::{AppState, Hx, throttled};
use crate::accounts::Refusal;
use crate::error::AppError;
use crate::session::Session;
use crate::store::User;

const SAME: &str = "Choose a password other than the current one.";

/// What `?done=` says after a no-JS form succeeded.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Done {
    done: String,
}

/// `GET /account`.
#[handler]
pub async fn page(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    hx: Hx,
    Query(done): Query<Done>,
) -> Result<Markup> {
    let mut shown = Shown::load(&state, &session).await?;
    let mut password = FormState::default();
    let mut email = EmailState::default();
    match done.done.as_str() {
        "password" => password.notice = Some(PASSWORD_CHANGED),
        "email" => email.notice = Some(email_saved(shown.user.email.as_ref())),
        "recovery" => shown.two_step_notice = Some(RECOVERY_USED),
        "ended" => shown.sessions_notice = Some(ONE_ENDED.into()),
        "others" => shown.sessions_notice = Some(OTHERS_ENDED.into()),
        "app" => shown.apps_notice = Some(apps::APP_REMOVED),
        _ => {}
    }
    let mut view = shown.view(&state, &csrf, &session, password, FormState::default());
    view.email = view.email.map(|_| email);
    Ok(hx.page("Your account", view::page(&csrf, &view)))
}

const CODE_NEEDED: &str = "To end every other session, enter a code from your authenticator \
                           app (or a recovery code): that code was not right.";
const RECOVERY_USED: &str = "You logged in with a recovery code; it no longer works. \
                             Make new codes below if few are left.";
const PASSWORD_CHANGED: &str = "Your password was changed. Every other session was ended.";
const ONE_ENDED: &str = "The session was ended.";
const OTHERS_ENDED: &str = "Every other session was ended.";
const ALREADY_ENDED: &str = "That session had already ended.";
const CHANGED_MEANWHILE: &str =
    "Your password was changed in the meantime (by a reset, or another browser). Try again.";

/// The account and its live sessions, read for one answer.
struct Shown {
    user: User,
    sessions: Vec<Session>,
    sessions_notice: Option<std::borrow::Cow<'static, str>>,
    two_step_notice: Option<&'static str>,
    /// The apps let in, when the provider is on.
    apps: Option<Vec<crate::oidc::App>>,
    apps_notice: Option<&'static str>,
    /// The latest entries of the account's journal, and how many it holds.
    activity: (Vec<crate::store::journal::Entry>, usize),
}

impl Shown {
    async fn load(state: &AppState, session: &Session) -> Result<Self, AppError> {
        // The account as the session was resumed with; only the sessions are read.
        let user = super::account_of(session)?;
        let sessions = state.sessions.of_user(&user.name).await?;
        let apps = match &state.oidc {
            Some(provider) => Some(provider.apps_of(&user.id).await?),
            None => None,
        };
        let activity = state
            .accounts
            .journal
            .entries(&user.id, 0, activity::ON_ACCOUNT_PAGE)
            .await?;
        Ok(Self {
            activity,
            user,
            sessions,
            sessions_notice: None,
            two_step_notice: None,
            apps,
            apps_notice: None,
        })
    }

    fn view<'a>(
        &'a self,
        state: &AppState,
        csrf: &Csrf,
        current: &'a Session,
        password: FormState<'a>,
        leaving: FormState<'a>,
    ) -> AccountView<'a> {
        AccountView {
            user: &self.user,
            handles: self
                .sessions
                .iter()
                .map(|s| state.sessions.handle(&s.id))
                .collect(),
            sessions: &self.sessions,
            apps: self
                .apps
                .as_ref()
                .map(|apps| apps::section(csrf, apps, self.apps_notice)),
            current,
            activity: activity::section(
                csrf,
                &self.activity.0,
                self.activity.1,
                (
                    current.record.browser.as_deref().unwrap_or_default(),
                    current.record.address.as_deref().unwrap_or_default(),
                ),
            ),
            sessions_notice: self.sessions_notice.as_deref(),
            password,
            delete: leaving,
            email: state.mail.as_ref().map(|_| EmailState::default()),
            passkeys: super::passkey::section(
                state.passkeys.is_some(),
                csrf,
                &self.user,
                &super::passkey::SectionState::default(),
            ),
            two_step: super::two_step::section(
                csrf,
                &self.user,
                &super::two_step::SectionState {
                    notice: self.two_step_notice,
                    ..Default::default()
                },
            ),
        }
    }
}

/// What the email section says once an address was saved.
fn email_saved(email: Option<&crate::store::Email>) -> &'static str {
    match email {
        Some(email) if email.verified => "The address is saved.",
        Some(_) => "The address is saved. We mailed it a link: open it to confirm the address.",
        None => "The address was removed.",
    }
}

/// A form section's answer: the section alone for htmx, the page otherwise.
fn section(hx: Hx, csrf: &Csrf, view: &AccountView, part: Markup, status: StatusCode) -> Response {
    let body = if hx.0 {
        part
    } else {
        super::layout::page("Your account", view::page(csrf, view))
    };
    body.with_status(status).into_response()
}

/// A form's answer when the current password (or a code) was refused, drawn by
/// `render` with the error in place: `422`, or `429` with `Retry-After`.
fn refused(refusal: Refusal, render: impl FnOnce(FormState, StatusCode) -> Response) -> Response {
    match refusal {
        Refusal::Wrong => {
            let errors = FormState {
                current: Some(WRONG_PASSWORD),
                ..FormState::default()
            };
            render(errors, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Refusal::Throttled(wait) => {
            let message = wait_message(wait);
            let errors = FormState {
                alert: Some(&message),
                ..FormState::default()
            };
            let resp = render(errors, StatusCode::UNPROCESSABLE_ENTITY);
            throttled(resp, Some(wait))
        }
    }
}
