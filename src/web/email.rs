//! Email addresses: `GET /verify-email/<token>`, which confirms one, and the page every
//! unusable link gets. (The mails and their tokens are the account
//! service's: [`crate::accounts::links`], [`crate::mail::texts`].)

use std::sync::Arc;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{IntoResponse, Response, Result, handler};

use super::{AppState, Hx};
use crate::accounts::Confirmed;
use crate::store::tokens::Token;

/// `GET /verify-email/<token>`: confirms the address the link was mailed to, if it is
/// still the account's and no other account holds it.
#[handler]
pub async fn verify(
    state: Data<&Arc<AppState>>,
    hx: Hx,
    Path(token): Path<String>,
) -> Result<Response> {
    let confirmed = match Token::parse(&token) {
        Some(token) => state.accounts.confirm_address(&token).await?,
        None => Confirmed::Unusable,
    };
    Ok(match confirmed {
        Confirmed::Done { address, name } => {
            let body = message_card(
                "Address confirmed",
                &format!(
                    "{address} is now confirmed as the address of {name}. If you forget \
                     your password, a link to choose a new one can be sent there."
                ),
                "/account",
                "Go to your account",
            );
            hx.page("Address confirmed", body).into_response()
        }
        Confirmed::Taken => {
            let body = message_card(
                "Address already in use",
                "That email address is already confirmed for another account, so it \
                 cannot be used for this one. You can enter another address on your \
                 account page.",
                "/account",
                "Go to your account",
            );
            hx.page("Address already in use", body)
                .with_status(StatusCode::CONFLICT)
                .into_response()
        }
        Confirmed::Unusable => unusable(hx, "/account", "Go to your account"),
    })
}

/// A card with a title, a sentence and one link.
pub fn message_card(title: &str, text: &str, href: &str, link: &str) -> Markup {
    html! {
        section.card id="message" {
            h1 { (title) }
            p { (text) }
            p { a.button href=(href) { (link) } }
        }
    }
}

/// The one page for a link that is used, expired, unknown or void.
pub fn unusable(hx: Hx, href: &str, link: &str) -> Response {
    let body = message_card(
        "This link cannot be used",
        "It was already used, it has expired, or it was replaced by a newer one. \
         Links in Wicket's mails work once, for a limited time.",
        href,
        link,
    );
    hx.page("This link cannot be used", body)
        .with_status(StatusCode::GONE)
        .into_response()
}
