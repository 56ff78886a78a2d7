//! Email addresses: the mails Wicket sends, the tokens their links carry, and
//! `GET /verify-email/<token>`, which confirms an address.
//!
//! A token is 256 random bits, mailed once and stored only as its SHA-256
//! ([`crate::store::tokens`]); each works once, for one purpose, until it expires.

use std::sync::Arc;
use std::time::Duration;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{IntoResponse, Response, Result, handler};
use time::OffsetDateTime;

use super::client::Client;
use super::{AppState, Hx};
use crate::domain::Username;
use crate::error::{AppError, chain};
use crate::mail::{Kind, Mail, Outbox};
use crate::store::tokens::{ClaimKey, Purpose, Token, TokenRecord};
use crate::store::{Email, StoreError, User};

/// How long a link in a mail works.
pub fn valid_for(purpose: Purpose) -> Duration {
    match purpose {
        Purpose::ResetPassword => Duration::from_secs(30 * 60),
        Purpose::PendingLogin | Purpose::PasskeyRegistration | Purpose::PasskeyLogin => {
            Duration::from_secs(5 * 60)
        }
        Purpose::VerifyEmail | Purpose::NotMe => Duration::from_secs(24 * 60 * 60),
    }
}

/// The outbox and the site's address for links in mails.
#[derive(Debug, Clone)]
pub struct Mailer {
    /// Where messages go.
    pub outbox: Outbox,
    /// The site's origin, e.g. `https://login.example.com` (`--public-url`).
    pub site: String,
}

impl Mailer {
    fn link(&self, path: &str) -> String {
        format!("{}{path}", self.site)
    }
}

/// Stores a new token for `purpose` on `user`'s account, for the mail to `email`.
pub async fn issue(
    state: &AppState,
    purpose: Purpose,
    user: &User,
    email: &str,
) -> Result<Token, StoreError> {
    let token = Token::generate();
    let expires = OffsetDateTime::now_utc() + valid_for(purpose);
    let record = TokenRecord {
        email: email.to_owned(),
        ..TokenRecord::new(purpose, Some(user), expires)
    };
    state.tokens.put_token(&token.key(), &record).await?;
    Ok(token)
}

/// Whether `record` still stands for `user` now: live for `purpose`, made for this
/// account (its id, not its name) under the password it has now, and — for a link
/// mailed to the confirmed address (a reset, "This wasn't me") — that address is still
/// the account's confirmed one. So a link dies with what it was for: the account, the
/// password, or the mailbox it was sent to.
pub fn still_good(record: &TokenRecord, purpose: Purpose, user: &User) -> bool {
    let mailed_to_confirmed = matches!(purpose, Purpose::ResetPassword | Purpose::NotMe);
    let address_same = !mailed_to_confirmed
        || user
            .verified_email()
            .is_some_and(|a| a.eq_ignore_ascii_case(&record.email));
    record.is_live(purpose, OffsetDateTime::now_utc()) && record.belongs_to(user) && address_same
}

/// The account a token names, if it still exists.
pub async fn user_of(state: &AppState, record: &TokenRecord) -> Result<Option<User>, StoreError> {
    match Username::parse(&record.user) {
        Ok(name) => state.users.get(&name).await,
        Err(_) => Ok(None),
    }
}

/// What `token` stands for and the account it opens, if it still works for `purpose`;
/// the token stays in place (its use takes it).
pub async fn peek_good(
    state: &AppState,
    token: &Token,
    purpose: Purpose,
) -> Result<Option<(TokenRecord, User)>, StoreError> {
    let Some(record) = state.tokens.peek_token(&token.key()).await? else {
        return Ok(None);
    };
    let user = user_of(state, &record).await?;
    Ok(user
        .filter(|user| still_good(&record, purpose, user))
        .map(|user| (record, user)))
}

/// Sends `user` a link to confirm `address` (a new or changed address). Logged, never
/// an error for the page: the address is saved either way, and can be sent again.
pub async fn send_verification(state: &AppState, user: &User, address: &str) {
    let Some(mailer) = &state.mail else { return };
    let token = match issue(state, Purpose::VerifyEmail, user, address).await {
        Ok(token) => token,
        Err(err) => {
            tracing::error!(user = %user.name, error = %chain(&err), "could not store a verification token");
            return;
        }
    };
    let link = mailer.link(&format!("/verify-email/{}", token.as_str()));
    mailer.outbox.send(Mail {
        kind: Kind::Verify,
        to: address.to_owned(),
        subject: "Confirm your email address for Wicket".into(),
        body: format!(
            "Hello {name},\n\n\
             please confirm that this is your address by opening this link:\n\n\
             {link}\n\n\
             It works once, within 24 hours. Once confirmed, the address can be used to \
             reset your password if you forget it.\n\n\
             If you did not give this address to Wicket, ignore this message.\n",
            name = user.name
        ),
        useless_after: None,
    });
}

/// Tells `user` their password was just changed or reset, if they have a verified
/// address.
pub fn send_password_changed(state: &AppState, user: &User, client: &Client, how: &str) {
    let (Some(mailer), Some(address)) = (&state.mail, user.verified_email()) else {
        return;
    };
    mailer.outbox.send(Mail {
        kind: Kind::PasswordChanged,
        to: address.to_owned(),
        subject: "Your Wicket password was changed".into(),
        body: format!(
            "Hello {name},\n\n\
             the password of your Wicket account was {how} at {at} from {browser} \
             ({address}). Every other session was ended.\n\n\
             If this was not you, reset your password now: {forgot}\n",
            name = user.name,
            at = when(OffsetDateTime::now_utc()),
            browser = client.browser,
            address = client.address,
            forgot = mailer.link("/forgot"),
        ),
        useless_after: None,
    });
}

/// After a login from a browser the account has not used (no device cookie for it):
/// "Was this you?", with a link that ends every session and leads to a new password.
pub async fn send_new_login_notice(state: &AppState, user: &User, client: &Client) {
    let (Some(mailer), Some(address)) = (&state.mail, user.verified_email()) else {
        return;
    };
    let token = match issue(state, Purpose::NotMe, user, address).await {
        Ok(token) => token,
        Err(err) => {
            tracing::error!(user = %user.name, error = %chain(&err), "could not store a not-me token");
            return;
        }
    };
    mailer.outbox.send(Mail {
        kind: Kind::NewLogin,
        to: address.to_owned(),
        subject: "New login to your Wicket account".into(),
        body: format!(
            "Hello {name},\n\n\
             your Wicket account was just logged in to from a browser it has not used \
             before:\n\n\
             \x20 When:     {at}\n\
             \x20 Browser:  {browser}\n\
             \x20 Address:  {address}\n\n\
             If this was you, there is nothing to do.\n\n\
             If it was not, open this link: it ends every session of your account and \
             lets you choose a new password (it works once, within 24 hours):\n\n\
             {link}\n",
            name = user.name,
            at = when(OffsetDateTime::now_utc()),
            browser = client.browser,
            address = client.address,
            link = mailer.link(&format!("/not-me/{}", token.as_str())),
        ),
        useless_after: None,
    });
}

/// `29 Nov 2026, 14:05 UTC`.
fn when(at: OffsetDateTime) -> String {
    // The page's own format, without the markup.
    let html = super::layout::time(at).into_string();
    let text = html.split('>').nth(1).unwrap_or_default();
    text.split('<').next().unwrap_or_default().to_owned()
}

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
        Some(record) => user_of(&state, record).await?,
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
        send_verification(state, user, address).await;
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
