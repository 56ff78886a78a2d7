//! Email addresses: `GET /verify-email/<token>`, which confirms one, changing one, and
//! the page every unusable link gets. (The mails and their tokens are the account
//! service's: [`crate::accounts::links`], [`crate::mail::texts`].)

use std::sync::Arc;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{IntoResponse, Response, Result, handler};

use super::{AppState, Hx};
use crate::accounts::links::still_good;
use crate::domain::Username;
use crate::error::AppError;
use crate::store::tokens::{ClaimKey, Purpose, Token};
use crate::store::{Email, StoreError, User};

/// `GET /verify-email/<token>`: confirms the address the link was mailed to, if it is
/// still the account's and no other account holds it.
#[handler]
pub async fn verify(
    state: Data<&Arc<AppState>>,
    hx: Hx,
    Path(token): Path<String>,
) -> Result<Response> {
    let record = match Token::parse(&token) {
        Some(token) => state.tokens.take_token(&token.key()).await?,
        None => None,
    };
    let user = match &record {
        Some(record) => state.accounts.user_of(record).await?,
        None => None,
    };
    let (Some(record), Some(user)) = (record, user) else {
        return Ok(unusable(hx, "/account", "Go to your account"));
    };
    let current = user.email.as_ref().map(|e| e.address.as_str());
    let same_address = current.is_some_and(|a| a.eq_ignore_ascii_case(&record.email));
    if !still_good(&record, Purpose::VerifyEmail, &user) || !same_address {
        return Ok(unusable(hx, "/account", "Go to your account"));
    }
    if !state
        .tokens
        .claim(&ClaimKey::email(&record.email), &user.name)
        .await?
    {
        let body = message_card(
            "Address already in use",
            "That email address is already confirmed for another account, so it cannot \
             be used for this one. You can enter another address on your account page.",
            "/account",
            "Go to your account",
        );
        return Ok(hx
            .page("Address already in use", body)
            .with_status(StatusCode::CONFLICT)
            .into_response());
    }
    let address = record.email.clone();
    let confirm = move |u: &mut User| {
        if let Some(email) = u
            .email
            .as_mut()
            .filter(|e| e.address.eq_ignore_ascii_case(&address))
        {
            email.verified = true;
        }
    };
    let name = Username::parse(&user.name).map_err(|_| AppError::internal("impossible name"))?;
    let updated = state.users.update(&name, &confirm).await?;
    if updated.as_ref().and_then(User::verified_email).is_none() {
        // Changed or deleted meanwhile: the address is not theirs any more.
        state
            .tokens
            .release(&ClaimKey::email(&record.email), &user.name)
            .await?;
        return Ok(unusable(hx, "/account", "Go to your account"));
    }
    tracing::info!(user = %user.name, "email address verified");
    let body = message_card(
        "Address confirmed",
        &format!(
            "{} is now confirmed as the address of {}. If you forget your password, a \
             link to choose a new one can be sent there.",
            record.email, user.name
        ),
        "/account",
        "Go to your account",
    );
    Ok(hx.page("Address confirmed", body).into_response())
}

/// Sets (or, with `None`, removes) `user`'s address: a new one waits for its link; a
/// verified one given up is freed for other accounts. Returns the new record.
pub async fn change_address(
    state: &AppState,
    name: &Username,
    address: Option<&str>,
) -> Result<Option<User>, StoreError> {
    let new = address.map(|a| Email {
        address: a.to_owned(),
        verified: false,
    });
    let before = state.users.get(name).await?;
    let unchanged = |u: &User| match (&u.email, address) {
        (Some(old), Some(new)) => old.address.eq_ignore_ascii_case(new) && old.verified,
        (None, None) => true,
        _ => false,
    };
    if before.as_ref().is_none_or(unchanged) {
        return Ok(before);
    }
    let set = move |u: &mut User| u.email.clone_from(&new);
    let after = state.users.update(name, &set).await?;
    if let Some(old) = before.as_ref().and_then(User::verified_email) {
        state
            .tokens
            .release(&ClaimKey::email(old), name.as_str())
            .await?;
    }
    if let (Some(user), Some(address)) = (&after, address) {
        state.accounts.send_verification(user, address).await;
    }
    Ok(after)
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
