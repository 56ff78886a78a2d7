//! "Recent activity" on `/account` (the latest few entries of the account's journal)
//! and `GET /account/activity?page=N`: all of them, newest first, a page at a time.

use std::sync::Arc;

use maud::{Markup, html};
use poem::web::{Data, Query};
use poem::{Response, Result, handler};
use serde::Deserialize;

use crate::error::AppError;
use crate::session::SessionChange;
use crate::store::EndReason;
use crate::store::journal::Entry;
use crate::web::client::Client;
use crate::web::csrf::Csrf;
use crate::web::form::{Form, NoFields};
use crate::web::layout::{hx_form, time};
use crate::web::{AppState, Hx, Member, account_of};

/// How many entries `/account` shows.
pub const ON_ACCOUNT_PAGE: usize = 5;
/// How many entries a page of `/account/activity` shows.
const PER_PAGE: usize = 20;

/// Where this browser is, as the journal writes it: its browser and address.
pub type Here<'a> = (&'a str, &'a str);

/// The section on `/account`: the latest entries, and a link to all of them.
pub fn section(csrf: &Csrf, entries: &[Entry], total: usize, here: Here<'_>) -> Markup {
    html! {
        section.card id="activity" {
            h2 { "Recent activity" }
            p.lead { "What happened to your account lately, newest first." }
            (list(csrf, entries, here))
            @if total > entries.len() {
                p { a href="/account/activity" { "All activity (" (total) " entries)" } }
            }
        }
    }
}

/// The entries as a list (a note when there are none); one made from another browser
/// (or address) than `here` offers "This wasn't me".
fn list(csrf: &Csrf, entries: &[Entry], here: Here<'_>) -> Markup {
    html! {
        @if entries.is_empty() {
            p { "Nothing yet." }
        } @else {
            ol.activity {
                @for entry in entries {
                    li {
                        strong { (entry.event.said()) }
                        @if let Some(detail) = &entry.detail { " (" (detail) ")" }
                        br;
                        small.hint {
                            (time(entry.at)) " · "
                            @match (&entry.browser, &entry.address) {
                                (Some(browser), Some(address)) => { (browser) " · " (address) }
                                _ => "by the site's operator, or a mailed link",
                            }
                        }
                        @if elsewhere(entry, here) {
                            (hx_form("/account/activity/not-me", csrf, html! {
                                button type="submit" { "This wasn't me" }
                            }))
                        }
                    }
                }
            }
        }
    }
}

/// Whether `entry` was made from a browser other than `here` (by its description or
/// its address): those are what "This wasn't me" is for.
fn elsewhere(entry: &Entry, here: Here<'_>) -> bool {
    match (&entry.browser, &entry.address) {
        (Some(browser), Some(address)) => (browser.as_str(), address.as_str()) != here,
        _ => false,
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct PageQuery {
    page: usize,
}

/// `GET /account/activity?page=N` (from 1): a page of the journal.
#[handler]
pub async fn page(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    hx: Hx,
    client: Client,
    Query(query): Query<PageQuery>,
) -> Result<maud::Markup> {
    let user = account_of(&session)?;
    let journal = &state.accounts.journal;
    let (_, total) = journal
        .entries(&user.id, 0, 0)
        .await
        .map_err(AppError::from)?;
    let pages = total.div_ceil(PER_PAGE).max(1);
    // A page past the end is the last one.
    let page = query.page.clamp(1, pages);
    let skip = (page - 1) * PER_PAGE;
    let (entries, _) = journal
        .entries(&user.id, skip, PER_PAGE)
        .await
        .map_err(AppError::from)?;
    let body = html! {
        section.card id="activity" {
            h1 { "Your account's activity" }
            p.lead {
                "Everything that happened to your account, newest first (the latest "
                (crate::store::journal::KEPT) " entries are kept). Page " (page) " of " (pages) "."
            }
            (list(&csrf, &entries, (&client.browser, &client.address)))
            nav.pages aria-label="Pages" {
                @if page > 1 { a href={ "/account/activity?page=" (page - 1) } rel="prev" { "Newer" } " " }
                @if page < pages { a href={ "/account/activity?page=" (page + 1) } rel="next" { "Older" } " " }
                a href="/account" { "Back to your account" }
            }
        }
    };
    Ok(hx.page("Activity", body))
}

/// `POST /account/activity/not-me`: "This wasn't me" on an entry of another browser.
/// Ends every session of the account (this one too) and opens the reset form for the
/// confirmed address, as the mailed link does; without one, the browser is logged out
/// and told why.
#[handler]
pub async fn not_me(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    client: Client,
    hx: Hx,
    Form(_): Form<NoFields>,
) -> Result<Response> {
    let user = account_of(&session)?;
    let address = user.verified_email().map(str::to_owned);
    let mut resp =
        crate::web::not_me::end_everything(&state, hx, &client, &user, address.as_deref()).await?;
    let reason = EndReason::ReportedNotMe;
    resp.extensions_mut().insert(SessionChange::Ended(reason));
    Ok(resp)
}
