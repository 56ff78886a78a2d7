//! `GET /cabinet`: the members-only page.

use maud::html;
use poem::handler;

use super::csrf::Csrf;
use super::layout::{hx_form, time};
use super::statics;
use super::{Hx, Member};

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
