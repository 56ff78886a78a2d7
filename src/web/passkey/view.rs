//! What passkeys look like on the account page: the list, each with its removal form,
//! and the form that adds one (shown to browsers with JavaScript and WebAuthn). Views
//! take what they show.

use maud::{Markup, html};
use webauthn_rs::prelude::Passkey;

use crate::store::{PasskeySetting, User};
use crate::web::csrf::Csrf;
use crate::web::layout::{Field, ON_TWO_STEP_CHANGED, hx_form, time};

/// What the account page's passkey section says.
#[derive(Debug, Default, Clone)]
pub struct SectionState {
    /// Success, said once.
    pub notice: Option<&'static str>,
    /// An error for the whole section.
    pub alert: Option<String>,
    /// The name as typed, and its error.
    pub name: Option<(String, Option<&'static str>)>,
    /// The password's error (adding).
    pub current: Option<&'static str>,
    /// The code's error (adding).
    pub code: Option<&'static str>,
    /// Which passkey's removal was refused, and why.
    pub removing: Option<(String, &'static str)>,
}

/// The account page's "Passkeys" section for `user` (nothing when passkeys are off).
/// Without JavaScript it shows only when there are passkeys to remove.
pub fn section(enabled: bool, csrf: &Csrf, user: &User, shown: &SectionState) -> Markup {
    if !enabled {
        return html! {};
    }
    let (typed, name_error) = shown
        .name
        .as_ref()
        .map_or(("", None), |(typed, error)| (typed.as_str(), *error));
    let fields = html! {
        (Field {
            id: Some("passkey_name"), name: "name", label: "Name it", kind: "text",
            autocomplete: "off", value: typed, error: name_error, autofocus: false,
            hint: Some("So you can tell your passkeys apart, e.g. “Phone” or “Laptop”."),
            optional: false,
        }.render())
        (Field {
            id: Some("passkey_password"), name: "current_password", label: "Your password",
            kind: "password", autocomplete: "current-password", value: "",
            error: shown.current, autofocus: false, hint: None, optional: false,
        }.render())
        @if user.totp.is_some() {
            (Field {
                id: Some("passkey_code"), name: "code", label: "Code from your app",
                kind: "text", autocomplete: "one-time-code", value: "", error: shown.code,
                autofocus: false, hint: None, optional: false,
            }.render())
        }
        button.secondary type="submit" { "Add a passkey" }
    };
    html! {
        section.card id="passkeys" data-passkey-only[user.passkeys.is_empty()]
            hidden[user.passkeys.is_empty()] hx-get="/account"
            hx-trigger=(ON_TWO_STEP_CHANGED) hx-select="#passkeys" hx-swap="outerHTML" {
            h2 { "Passkeys" }
            @if let Some(notice) = shown.notice { p.notice role="status" { (notice) } }
            @if let Some(alert) = &shown.alert { p.alert role="alert" { (alert) } }
            p.lead {
                "Log in with your fingerprint, face or screen lock instead of your password. "
                "A passkey counts as both steps of two-step login, and it cannot be phished: "
                "it only works on this site."
            }
            @if !user.passkeys.is_empty() {
                ul.passkeys { @for key in &user.passkeys { (listed(csrf, key, shown)) } }
            }
            div data-passkey-only hidden {
                form method="post" action="/account/passkeys" data-passkey="add"
                    data-options="/account/passkeys/options" novalidate {
                    input type="hidden" name="csrf" value=(csrf.token());
                    @if !user.passkeys.is_empty() { h3 { "Add another" } }
                    p.alert role="alert" data-passkey-error hidden {}
                    (fields)
                }
            }
        }
    }
}

/// One passkey in the list, with its removal form.
fn listed(csrf: &Csrf, key: &PasskeySetting, shown: &SectionState) -> Markup {
    let id = id_text(&key.key);
    let refused = shown
        .removing
        .as_ref()
        .filter(|(which, _)| *which == id)
        .map(|(_, why)| *why);
    let field_id = format!("remove_{}", &id[..id.len().min(12)]);
    html! {
        li {
            div.who {
                strong { (key.name) }
                small {
                    "Added " (time(key.added)) " · "
                    @match key.last_used {
                        Some(at) => { "last used " (time(at)) }
                        None => "not used yet",
                    }
                }
            }
            details open[refused.is_some()] {
                summary { "Remove" }
                (hx_form("/account/passkeys/remove", csrf, html! {
                    input type="hidden" name="id" value=(id);
                    (Field {
                        id: Some(&field_id), name: "current_password", label: "Your password",
                        kind: "password", autocomplete: "current-password", value: "",
                        error: refused, autofocus: false, hint: None, optional: false,
                    }.render())
                    button.danger type="submit" { "Remove “" (key.name) "”" }
                }))
            }
        }
    }
}

/// A passkey's credential id as it appears in forms, in hex.
pub fn id_text(key: &Passkey) -> String {
    crate::secret::hex(key.cred_id())
}
