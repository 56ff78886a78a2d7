//! `GET /logout` (a confirmation) and `POST /logout`.

use std::sync::Arc;

use maud::html;

use poem::web::Data;
use poem::{IntoResponse, Response, Result, handler};

use super::csrf::Csrf;
use super::form::{Form, NoFields};
use super::layout::hx_form;
use super::{AppState, Hx, auth};
use crate::session::CurrentSession;
use crate::store::EndReason;

/// `GET /logout`: asks for confirmation. A GET never logs out by itself, so a link
/// or image on another site cannot end someone's session.
#[handler]
pub fn confirm(current: CurrentSession, csrf: Csrf, hx: Hx) -> Response {
    let Some(session) = current.0 else {
        return hx.redirect("/");
    };
    let content = html! {
        section.card id="logout" {
            h1 { "Log out?" }
            p { "You are logged in as " strong { (session.record.user) } "." }
            (hx_form("/logout", &csrf, html! { button type="submit" { "Log out" } }))
            p.switch { a href="/cabinet" { "Back to your cabinet" } }
        }
    };
    hx.page("Log out", content).into_response()
}

/// `POST /logout`: deletes the session file and clears the cookie.
#[handler]
pub async fn submit(
    state: Data<&Arc<AppState>>,
    current: CurrentSession,
    csrf: Csrf,
    hx: Hx,
    _checked: Form<NoFields>,
) -> Result<Response> {
    match current.0 {
        Some(session) => {
            Ok(auth::log_out(&state, &session, &csrf, hx, EndReason::LoggedOut, "/").await?)
        }
        None => Ok(hx.redirect("/")),
    }
}
