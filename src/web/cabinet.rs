//! `GET /cabinet`: the members-only page, and the `Member` extractor that guards it.

use maud::html;
use poem::{FromRequest, Request, RequestBody, handler};

use super::csrf::Csrf;
use super::layout::{hx_form, time};
use super::statics;
use super::{Hx, login_url};
use crate::session::{CurrentSession, Session};

/// A logged-in member. Extracting it sends anyone else to the login form,
/// with `next` pointing back here.
pub struct Member(pub Session);

impl<'a> FromRequest<'a> for Member {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        if let CurrentSession(Some(session)) = CurrentSession::from_request(req, body).await? {
            return Ok(Self(session));
        }
        let hx = Hx::from_request(req, body).await?;
        // After logging in, come back here; a form's target is no page to come back to.
        let path = req.original_uri().path();
        let back = match *req.method() {
            poem::http::Method::GET | poem::http::Method::HEAD => path,
            _ if path.starts_with("/account") => "/account",
            _ => "/cabinet",
        };
        let location = login_url(back);
        Err(poem::Error::from_response(hx.redirect(&location)))
    }
}

/// `GET /cabinet`: the members-only page.
#[handler]
pub fn page(Member(session): Member, csrf: Csrf, hx: Hx) -> maud::Markup {
    let record = &session.record;
    let content = html! {
        // hx-history="false": htmx must never keep a copy of this page.
        section.card.cabinet id="cabinet" hx-history="false" {
            img.hero src=(statics::url("/cabinet.svg")) alt="A cricket wicket: three stumps and two bails"
                width="160" height="120";
            h1 { "Welcome, " (record.user) "!" }
            p.lead { "You are logged in. This page is for members only." }
            dl.facts {
                dt { "Logged in" } dd { (time(record.created)) }
                dt { "Last active" } dd { (time(record.last_seen)) }
                dt { "Session ends" } dd { (time(session.ends)) }
            }
            p.note { "Sessions end after a period without activity, and at the latest on "
                (time(record.expires)) "." }
            p { a.button href="/account" { "Your account" } }
            (hx_form("/logout", &csrf, html! { button.secondary type="submit" { "Log out" } }))
        }
    };
    hx.page("Your cabinet", content)
}
