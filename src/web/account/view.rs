//! The account page's sections. Each is a `<section>` with its own id, rendered alone
//! for htmx (the forms swap their own section) and together for the full page.

use maud::{Markup, html};

use crate::session::Session;
use crate::store::User;
use crate::web::csrf::Csrf;
use crate::web::layout::{Field, ON_TWO_STEP_CHANGED, code_field, hx_form, time};

/// Everything the page shows, and what the last form said.
pub struct AccountView<'a> {
    /// The member.
    pub user: &'a User,
    /// Their live sessions, most recently active first.
    pub sessions: &'a [Session],
    /// This browser's session.
    pub current: &'a Session,
    /// Each session's handle, as `sessions` (the form value that ends it).
    pub handles: Vec<String>,
    /// A success notice for the sessions section.
    pub sessions_notice: Option<&'a str>,
    /// The password section's state.
    pub password: FormState<'a>,
    /// The delete section's state.
    pub delete: FormState<'a>,
    /// The email section's state; `None` when the site sends no mail (no section).
    pub email: Option<EmailState<'a>>,
    /// The two-step login section, drawn by `web::two_step`.
    pub two_step: Markup,
    /// The passkeys section, drawn by `web::passkey`.
    pub passkeys: Markup,
    /// The apps section, when the OpenID Connect provider is on.
    pub apps: Option<Markup>,
    /// The recent activity section.
    pub activity: Markup,
}

/// What the email section says after a submission.
#[derive(Debug, Default, Clone, Copy)]
pub struct EmailState<'a> {
    /// Success, said once.
    pub notice: Option<&'a str>,
    /// An error for the whole form (e.g. too many attempts).
    pub alert: Option<&'a str>,
    /// The address as typed, when refused.
    pub typed: Option<&'a str>,
    /// The address's error.
    pub email: Option<&'a str>,
    /// The password's error.
    pub current: Option<&'a str>,
}

/// What a form section says after a submission.
#[derive(Debug, Default, Clone, Copy)]
pub struct FormState<'a> {
    /// Success, said once.
    pub notice: Option<&'a str>,
    /// An error for the whole form (e.g. too many attempts).
    pub alert: Option<&'a str>,
    /// Inline errors: the current password, the new one, its confirmation.
    pub current: Option<&'a str>,
    /// The new password's error.
    pub password: Option<&'a str>,
    /// The confirmation's error.
    pub confirm: Option<&'a str>,
    /// The second factor's error.
    pub code: Option<&'a str>,
    /// The operator asked for a new password: the form says so, and is all there is.
    pub required: bool,
}

/// The whole page body.
pub fn page(csrf: &Csrf, view: &AccountView) -> Markup {
    if view.user.must_change_password {
        // Nothing else is open until then (see `web::member`).
        let state = FormState {
            required: true,
            ..view.password
        };
        return password(csrf, &state);
    }
    html! {
        (overview(view.user))
        (sessions(csrf, view))
        @if !view.user.trusted.is_empty() { (trusted(csrf, view.user)) }
        (view.activity)
        @if let Some(apps) = &view.apps { (apps) }
        @if let Some(state) = &view.email { (email(csrf, view.user, state)) }
        (view.two_step)
        (view.passkeys)
        (password(csrf, &view.password))
        section.card id="your-data" {
            h2 { "Your data" }
            p.lead { "Everything this site keeps about you, as a file: your account, sessions, activity, passkeys' names and apps." }
            p { a href="/account/export" { "Download your data" } }
        }
        (delete(csrf, &view.delete, view.user.totp.is_some()))
    }
}

fn overview(user: &User) -> Markup {
    html! {
        section.card.account id="account" hx-history="false" {
            h1 { "Your account" }
            dl.facts {
                dt { "Name" } dd { (user.name) }
                dt { "Member since" } dd { (time(user.created)) }
                dt { "Last login" }
                dd {
                    @match &user.last_login {
                        Some(login) => { (time(login.at)) br; (login.browser) " · " (login.address) }
                        None => "—",
                    }
                }
                dt { "Failed logins since" } dd { (user.failed_logins) }
                dt { "Groups" }
                dd.groups {
                    @if user.groups.is_empty() {
                        "None"
                    } @else {
                        @for (i, group) in user.groups.iter().enumerate() {
                            @if i > 0 { ", " }
                            (group)
                        }
                    }
                }
            }
            p.switch { a href="/cabinet" { "Back to your cabinet" } }
        }
    }
}

/// The sessions list: what htmx swaps after a session is ended.
pub fn sessions(csrf: &Csrf, view: &AccountView) -> Markup {
    html! {
        section.card id="sessions" hx-get="/account" hx-trigger=(ON_TWO_STEP_CHANGED) hx-select="#sessions" hx-swap="outerHTML" {
            h2 { "Where you are logged in" }
            @if let Some(notice) = view.sessions_notice {
                p.notice role="status" { (notice) }
            }
            ul.sessions {
                @for (session, handle) in view.sessions.iter().zip(&view.handles) {
                    @let record = &session.record;
                    li {
                        div.who {
                            strong { (record.browser.as_deref().unwrap_or("An unknown browser")) }
                            @if session.id == view.current.id {
                                " " span.badge { "This browser" }
                            }
                            br;
                            small {
                                (record.address.as_deref().unwrap_or("unknown address"))
                                " · logged in " (time(record.created))
                                " · last active " (time(record.last_seen))
                            }
                        }
                        @if session.id != view.current.id {
                            (hx_form("/account/sessions/end", csrf, html! {
                                input type="hidden" name="session" value=(handle);
                                button.secondary.small type="submit" { "End" span.visually-hidden { " this session" } }
                            }))
                        }
                    }
                }
            }
            @if view.sessions.len() > 1 {
                (hx_form("/account/sessions/end", csrf, html! {
                    input type="hidden" name="session" value="others";
                    @if view.user.totp.is_some() { (code_field("others_code", None)) }
                    button.secondary type="submit" { "Log out everywhere else" }
                }))
            }
        }
    }
}

/// The email form: add, change or remove the address resets go to.
pub fn email(csrf: &Csrf, user: &User, state: &EmailState) -> Markup {
    let current = user.email.as_ref();
    let value = state
        .typed
        .or(current.map(|e| e.address.as_str()))
        .unwrap_or_default();
    let fields = html! {
        @if let Some(notice) = state.notice { p.notice role="status" { (notice) } }
        @if let Some(alert) = state.alert { p.alert role="alert" { (alert) } }
        (Field {
            id: None,
            name: "email", label: "Email address", kind: "email",
            autocomplete: "email", value, error: state.email,
            autofocus: state.email.is_some(), hint: Some("Leave it empty to remove the address."), optional: true,
        }.render())
        (Field {
            id: Some("email_password"),
            name: "current_password", label: "Your password", kind: "password",
            autocomplete: "current-password", value: "", error: state.current,
            autofocus: state.email.is_none() && state.current.is_some(), hint: None, optional: false,
        }.render())
        button type="submit" { "Save the address" }
    };
    html! {
        section.card id="email-address" {
            h2 { "Email address" }
            @match current {
                Some(email) if email.verified => p.lead {
                    strong { (email.address) } " is confirmed. If you forget your password, "
                    "a link to choose a new one can be sent there; so are notices of logins "
                    "from new browsers."
                },
                Some(email) => p.lead {
                    strong { (email.address) } " is waiting for confirmation: open the link "
                    "we mailed to it. Saving it again sends a new link."
                },
                None => p.lead {
                    "No address yet. With a confirmed address you can reset a forgotten "
                    "password, and you hear of logins from new browsers."
                },
            }
            (hx_form("/account/email", csrf, fields))
        }
    }
}

/// The password form.
pub fn password(csrf: &Csrf, state: &FormState) -> Markup {
    let first_bad = [
        ("current_password", state.current),
        ("password", state.password),
        ("confirm", state.confirm),
    ]
    .into_iter()
    .find(|(_, error)| error.is_some())
    .map(|(name, _)| name);
    let fields = html! {
        @if let Some(notice) = state.notice { p.notice role="status" { (notice) } }
        @if let Some(alert) = state.alert { p.alert role="alert" { (alert) } }
        (Field {
            id: None,
            name: "current_password", label: "Current password", kind: "password",
            autocomplete: "current-password", value: "", error: state.current,
            autofocus: first_bad == Some("current_password"), hint: None, optional: false,
        }.render())
        (Field {
            id: None,
            name: "password", label: "New password", kind: "password",
            autocomplete: "new-password", value: "", error: state.password,
            autofocus: first_bad == Some("password"), hint: Some("At least 8 characters."), optional: false,
        }.render())
        (Field {
            id: None,
            name: "confirm", label: "New password again", kind: "password",
            autocomplete: "new-password", value: "", error: state.confirm,
            autofocus: first_bad == Some("confirm"), hint: None, optional: false,
        }.render())
        button type="submit" { "Change password" }
    };
    html! {
        section.card id="change-password" {
            @if state.required {
                h1 { "Choose a new password" }
                p.lead {
                    "The site's operator asks you to choose a new password before you go on "
                    "(or " a href="/logout" { "log out" } ")."
                }
            } @else {
                h2 { "Change your password" }
                p.lead { "Your other sessions end; this browser stays logged in." }
            }
            (hx_form("/account/password", csrf, fields))
        }
    }
}

/// The browsers trusted to log in without a code, each with "Forget".
fn trusted(csrf: &Csrf, user: &User) -> Markup {
    html! {
        section.card id="trusted-browsers" {
            h2 { "Trusted browsers" }
            p.lead { "These log in with your password alone, without a code, until the date shown." }
            ul.sessions {
                @for browser in &user.trusted {
                    li {
                        div {
                            strong { (browser.browser) }
                            br;
                            small { (browser.address) " · trusted " (time(browser.since)) " · until " (time(browser.until)) }
                        }
                        (hx_form("/account/trusted/forget", csrf, html! {
                            input type="hidden" name="browser" value=(browser.handle);
                            // Named for its browser: several rows are several buttons.
                            button.secondary type="submit" aria-label={ "Forget " (browser.browser) } { "Forget" }
                        }))
                    }
                }
            }
        }
    }
}

/// The delete form (with a code field when two-step login is on).
pub fn delete(csrf: &Csrf, state: &FormState, two_step: bool) -> Markup {
    let fields = html! {
        @if let Some(alert) = state.alert { p.alert role="alert" { (alert) } }
        (Field {
            id: Some("delete_password"),
            name: "current_password", label: "Your password", kind: "password",
            autocomplete: "current-password", value: "", error: state.current,
            autofocus: state.current.is_some(), hint: None, optional: false,
        }.render())
        @if two_step { (code_field("delete_code", state.code)) }
        button.danger type="submit" { "Delete my account" }
    };
    html! {
        section.card id="delete-account" hx-get="/account" hx-trigger=(ON_TWO_STEP_CHANGED) hx-select="#delete-account" hx-swap="outerHTML" {
            h2 { "Delete your account" }
            p.lead { "Your name, your password and every session go, at once. The name can then be registered again." }
            (hx_form("/account/delete", csrf, fields))
        }
    }
}
