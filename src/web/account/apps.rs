//! The "Apps" section of `/account` (the apps a member let in through OpenID Connect)
//! and `POST /account/apps/remove`.

use std::sync::Arc;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Response, Result, handler};
use serde::Deserialize;

use crate::error::AppError;
use crate::oidc::App;
use crate::web::csrf::Csrf;
use crate::web::form::Form;
use crate::web::layout::{hx_form, time};
use crate::web::{AppState, Hx, Member, account_of};

/// What each scope lets an app learn, in words.
fn learns(scopes: &[String]) -> String {
    let mut parts = vec!["your account's id"];
    for (scope, words) in [
        ("profile", "username"),
        ("email", "email address"),
        ("groups", "groups"),
    ] {
        if scopes.iter().any(|s| s == scope) {
            parts.push(words);
        }
    }
    parts.join(", ")
}

/// The section: each app with what it learns, when it was last used, and "Remove
/// access".
pub fn section(csrf: &Csrf, apps: &[App], notice: Option<&str>) -> Markup {
    html! {
        section.card id="apps" {
            h2 { "Apps" }
            @if let Some(notice) = notice {
                p.notice role="status" { (notice) }
            }
            @if apps.is_empty() {
                p { "No app logs you in with this account." }
            } @else {
                ul.sessions {
                    @for app in apps {
                        li {
                            div.who {
                                strong { (app.name) }
                                br;
                                small {
                                    "Learns " (learns(&app.scopes))
                                    " · "
                                    @match app.last_used {
                                        Some(at) => { "last used " (time(at)) }
                                        None => "not used yet",
                                    }
                                }
                            }
                            (hx_form("/account/apps/remove", csrf, html! {
                                input type="hidden" name="client" value=(app.client);
                                button.secondary.small type="submit" { "Remove access" span.visually-hidden { " of " (app.name) } }
                            }))
                        }
                    }
                }
            }
        }
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct RemoveForm {
    client: String,
}

/// `POST /account/apps/remove`: forgets the consent and revokes the app's tokens.
#[handler]
pub async fn remove_app(
    state: Data<&Arc<AppState>>,
    Member(session): Member,
    csrf: Csrf,
    hx: Hx,
    Form(form): Form<RemoveForm>,
) -> Result<Response> {
    let Some(provider) = &state.oidc else {
        return Err(poem::Error::from_status(StatusCode::NOT_FOUND));
    };
    let user = account_of(&session)?;
    let revoked = provider
        .remove_access(&user.id, &form.client)
        .await
        .map_err(AppError::Unavailable)?;
    tracing::info!(user = %user.name, client = %super::super::clipped(&form.client), revoked, "app access removed");
    if !hx.0 {
        return Ok(hx.redirect("/account?done=app"));
    }
    let apps = provider
        .apps_of(&user.id)
        .await
        .map_err(AppError::Unavailable)?;
    Ok(hx.account_section(
        "Apps",
        section(&csrf, &apps, Some(APP_REMOVED)),
        StatusCode::OK,
    ))
}

/// Said once an app's access is removed.
pub const APP_REMOVED: &str = "The app's access was removed: it must ask again.";
