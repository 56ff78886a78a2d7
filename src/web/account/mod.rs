//! `/account`: who you are, where you are logged in, your password, and leaving.
//!
//! Every form is a plain POST that htmx enhances: with htmx the answer is the form's
//! own section (and, when sessions change, the sessions list as an out-of-band swap);
//! without it, a `303` back to `/account` or the whole page with the errors in place.

mod view;

use std::sync::Arc;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::http::header::SET_COOKIE;
use poem::web::{Data, Query};
use poem::{IntoResponse, Response, Result, handler};
use serde::Deserialize;

use self::view::{AccountView, EmailState, FormState};
use super::Member;
use super::auth;
use super::client::Client;
use super::csrf::Csrf;
use super::form::Form;
use super::layout::wait_message;
use super::messages::{MISMATCH, WRONG_CODE, WRONG_PASSWORD};
use super::{AppState, Hx, throttled};
use crate::accounts::{Checked, PasswordSet, Refusal};
use crate::error::AppError;
use crate::session::{Origin, Session, SessionChange};
use crate::store::{EndReason, User};

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
}

impl Shown {
    async fn load(state: &AppState, session: &Session) -> Result<Self, AppError> {
        let name = crate::domain::Username::parse(&session.record.user)
            .map_err(|_| AppError::internal("a session names an impossible user"))?;
        let user = state
            .users
            .get(&name)
            .await?
            .ok_or_else(|| AppError::internal("the member's account is gone"))?;
        let sessions = state.sessions.of_user(&user.name).await?;
        Ok(Self {
            user,
            sessions,
            sessions_notice: None,
            two_step_notice: None,
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
            current,
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

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct PasswordForm {
    current_password: String,
    password: String,
    confirm: String,
}

/// `POST /account/password`: checks the current password like a login, sets the new
/// one, ends every other session, and moves this browser to a new session id.
///
/// Each store is read once: the account comes with the session, the sessions are read
/// where they are ended, and afterwards this browser's is the only one left. Only a
/// refused form without htmx (which redraws the whole page) reads the page's data.
#[handler]
pub async fn change_password(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Form(form): Form<PasswordForm>,
) -> Result<Response> {
    let user = session
        .account
        .clone()
        .ok_or_else(|| AppError::internal("a member's session without its account"))?;
    let answer = PasswordAnswer {
        state: &state,
        csrf: &csrf,
        session: &session,
        hx,
    };
    // The new password first: it costs no scrypt work to refuse.
    let new = auth::new_password(form.password.clone(), &user.name)
        .await
        .map_err(|err| err.to_string())
        .and_then(|new| match form.password == form.current_password {
            true => Err(SAME.to_owned()),
            false => Ok(new),
        });
    let mismatch = form.password != form.confirm;
    let new = match (new, mismatch) {
        (Ok(new), false) => new,
        (new, mismatch) => {
            let error = new.err();
            let errors = FormState {
                password: error.as_deref(),
                confirm: mismatch.then_some(MISMATCH),
                ..FormState::default()
            };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(answer.refused(errors, status, None).await?);
        }
    };
    let checked = state
        .accounts
        .check_password_of(&user, &form.current_password, &client)
        .await?;
    let checked_user = match checked.right() {
        Ok(user) => user,
        Err(Refusal::Wrong) => {
            let errors = FormState {
                current: Some(WRONG_PASSWORD),
                ..FormState::default()
            };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(answer.refused(errors, status, None).await?);
        }
        Err(Refusal::Throttled(wait)) => {
            let message = wait_message(wait);
            let errors = FormState {
                alert: Some(&message),
                ..FormState::default()
            };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(answer.refused(errors, status, Some(wait)).await?);
        }
    };
    let how = PasswordSet::Changed(&client);
    let keep = Some(&session.id);
    let Some((updated, ended)) = state
        .accounts
        .set_password(&checked_user, new, keep, how)
        .await?
    else {
        // Changed by another route meanwhile: that one stands; this form starts over.
        let errors = FormState {
            alert: Some(CHANGED_MEANWHILE),
            ..FormState::default()
        };
        return Ok(answer.refused(errors, StatusCode::CONFLICT, None).await?);
    };
    // This browser goes on under a new id; the old one is deleted.
    let origin = Origin {
        browser: client.browser.clone(),
        address: client.address.clone(),
        remember: session.record.remember,
    };
    let fresh = state
        .sessions
        .start(&updated, Some(&session), origin)
        .await?;
    tracing::info!(user = %updated.name, ended, "password changed; this browser under a new id");
    let (csrf, csrf_cookie) = csrf.rotated();
    let mut resp = if hx.0 {
        // Every other session ended: this browser's is the only one left.
        let shown = Shown {
            user: updated,
            sessions: vec![fresh.clone()],
            sessions_notice: None,
            two_step_notice: None,
        };
        let done = FormState {
            notice: Some(PASSWORD_CHANGED),
            ..FormState::default()
        };
        let view = shown.view(&state, &csrf, &fresh, done, FormState::default());
        // The sessions list changed too: swap it out of band.
        html! {
            (view::password(&csrf, &done))
            div hx-swap-oob="outerHTML:#sessions" { (view::sessions(&csrf, &view)) }
        }
        .into_response()
    } else {
        Hx(false).redirect("/account?done=password")
    };
    resp.extensions_mut().insert(SessionChange::Started {
        id: fresh.id,
        remember: fresh.record.remember,
    });
    resp.headers_mut().append(SET_COOKIE, csrf_cookie);
    Ok(resp)
}

/// What a refused password form needs to answer.
struct PasswordAnswer<'a> {
    state: &'a AppState,
    csrf: &'a Csrf,
    session: &'a Session,
    hx: Hx,
}

impl PasswordAnswer<'_> {
    /// The form with `errors`: alone for htmx (nothing more to read), else on the
    /// whole account page; `429` with `Retry-After` when refused for `wait`.
    async fn refused(
        &self,
        errors: FormState<'_>,
        status: StatusCode,
        wait: Option<std::time::Duration>,
    ) -> Result<Response, AppError> {
        let part = view::password(self.csrf, &errors);
        let resp = if self.hx.0 {
            part.with_status(status).into_response()
        } else {
            let shown = Shown::load(self.state, self.session).await?;
            let view = shown.view(
                self.state,
                self.csrf,
                self.session,
                errors,
                FormState::default(),
            );
            section(self.hx, self.csrf, &view, part, status)
        };
        Ok(throttled(resp, wait))
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct EndForm {
    session: String,
    /// With two-step login on, ending every other session needs a code.
    code: String,
}

/// `POST /account/sessions/end`: ends one session (by its handle) or all others.
#[handler]
pub async fn end_session(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Form(form): Form<EndForm>,
) -> Result<Response> {
    let name = session.record.user.clone();
    let (notice, done) = if form.session == "others" {
        let user = Shown::load(&state, &session).await?.user;
        // A stolen session must not end the owner's others by guessing: a code is
        // counted like a login.
        let refused = match user.totp.is_some() {
            true => match state
                .accounts
                .check_code(&user, &form.code, &client)
                .await?
            {
                Checked::Right(_) => None,
                Checked::Wrong => Some((CODE_NEEDED.to_owned(), None)),
                Checked::Throttled(wait) => Some((wait_message(wait), Some(wait))),
            },
            false => None,
        };
        if let Some((message, wait)) = refused {
            let mut shown = Shown::load(&state, &session).await?;
            shown.sessions_notice = Some(message.into());
            let view = shown.view(
                &state,
                &csrf,
                &session,
                FormState::default(),
                FormState::default(),
            );
            let resp = section(
                hx,
                &csrf,
                &view,
                view::sessions(&csrf, &view),
                StatusCode::UNPROCESSABLE_ENTITY,
            );
            return Ok(throttled(resp, wait));
        }
        let ended = state
            .sessions
            .end_all(&name, Some(&session.id), EndReason::EndedElsewhere)
            .await?;
        tracing::info!(user = %name, ended, "ended every other session");
        (OTHERS_ENDED, "others")
    } else if form.session == state.sessions.handle(&session.id) {
        // This browser's own session: that is a logout.
        return Ok(auth::log_out(&state, &session, &csrf, hx, EndReason::LoggedOut).await?);
    } else if state
        .sessions
        .end_by_handle(&name, &form.session, EndReason::EndedElsewhere)
        .await?
    {
        tracing::info!(user = %name, "ended a session from elsewhere");
        (ONE_ENDED, "ended")
    } else {
        (ALREADY_ENDED, "ended")
    };
    if !hx.0 {
        return Ok(Hx(false).redirect(&format!("/account?done={done}")));
    }
    let mut shown = Shown::load(&state, &session).await?;
    shown.sessions_notice = Some(notice.into());
    let view = shown.view(
        &state,
        &csrf,
        &session,
        FormState::default(),
        FormState::default(),
    );
    Ok(view::sessions(&csrf, &view).into_response())
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct DeleteForm {
    current_password: String,
    /// With two-step login on, deleting needs a code.
    code: String,
}

/// `POST /account/delete`: with the password, removes the user and every session;
/// every browser that held one is told why.
#[handler]
pub async fn delete(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Form(form): Form<DeleteForm>,
) -> Result<Response> {
    let shown = Shown::load(&state, &session).await?;
    let refuse = |errors: FormState, status| {
        let view = shown.view(&state, &csrf, &session, FormState::default(), errors);
        section(
            hx,
            &csrf,
            &view,
            view::delete(&csrf, &errors, shown.user.totp.is_some()),
            status,
        )
    };
    let name = shown.user.name.clone();
    let checked = state
        .accounts
        .check_password(&name, &form.current_password, &client)
        .await?;
    if let Err(refusal) = checked.right() {
        return Ok(refused(refusal, refuse));
    }
    if shown.user.totp.is_some() {
        match state
            .accounts
            .check_code(&shown.user, &form.code, &client)
            .await?
        {
            Checked::Right(_) => {}
            Checked::Wrong => {
                let errors = FormState {
                    code: Some(WRONG_CODE),
                    ..FormState::default()
                };
                return Ok(refuse(errors, StatusCode::UNPROCESSABLE_ENTITY));
            }
            Checked::Throttled(wait) => return Ok(refused(Refusal::Throttled(wait), refuse)),
        }
    }
    state
        .accounts
        .delete(&shown.user, Some(&session.id))
        .await?;
    Ok(auth::log_out(&state, &session, &csrf, hx, EndReason::AccountDeleted).await?)
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct EmailForm {
    email: String,
    current_password: String,
}

/// `POST /account/email`: with the password, sets, changes or (empty) removes the
/// address; a new address is mailed a link to confirm it.
#[handler]
pub async fn change_email(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Form(form): Form<EmailForm>,
) -> Result<Response> {
    if state.mail.is_none() {
        return Err(poem::Error::from_status(StatusCode::NOT_FOUND));
    }
    let shown = Shown::load(&state, &session).await?;
    let answer = |user: &User, email: EmailState, status| {
        let mut view = shown.view(
            &state,
            &csrf,
            &session,
            FormState::default(),
            FormState::default(),
        );
        view.user = user;
        view.email = Some(email);
        section(hx, &csrf, &view, view::email(&csrf, user, &email), status)
    };
    let typed = form.email.trim();
    let address = match typed {
        "" => None,
        typed => match crate::domain::EmailAddress::parse(typed) {
            Ok(address) => Some(address),
            Err(err) => {
                let message = err.to_string();
                let errors = EmailState {
                    typed: Some(typed),
                    email: Some(&message),
                    ..EmailState::default()
                };
                return Ok(answer(
                    &shown.user,
                    errors,
                    StatusCode::UNPROCESSABLE_ENTITY,
                ));
            }
        },
    };
    let name = shown.user.name.clone();
    let checked = state
        .accounts
        .check_password(&name, &form.current_password, &client)
        .await?;
    let member = match checked.right() {
        Ok(member) => member,
        Err(refusal) => {
            return Ok(match refusal {
                Refusal::Wrong => {
                    let errors = EmailState {
                        typed: Some(typed),
                        current: Some(WRONG_PASSWORD),
                        ..EmailState::default()
                    };
                    answer(&shown.user, errors, StatusCode::UNPROCESSABLE_ENTITY)
                }
                Refusal::Throttled(wait) => {
                    let message = wait_message(wait);
                    let errors = EmailState {
                        typed: Some(typed),
                        alert: Some(&message),
                        ..EmailState::default()
                    };
                    let resp = answer(&shown.user, errors, StatusCode::UNPROCESSABLE_ENTITY);
                    throttled(resp, Some(wait))
                }
            });
        }
    };
    let address = address.as_ref().map(crate::domain::EmailAddress::as_str);
    let user = state.accounts.change_address(&member, address).await?;
    if !hx.0 {
        return Ok(Hx(false).redirect("/account?done=email"));
    }
    let done = EmailState {
        notice: Some(email_saved(user.email.as_ref())),
        ..EmailState::default()
    };
    Ok(answer(&user, done, StatusCode::OK))
}
