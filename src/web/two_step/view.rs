//! What two-step login looks like: the login's code form and the account page's
//! section (set up with a QR code, on with recovery codes, off). Views take what they
//! show; none opens a key or reads a store.

use maud::{Markup, PreEscaped, html};

use crate::store::{TotpSetting, User};
use crate::totp::TotpKey;
use crate::web::csrf::Csrf;
use crate::web::layout::{hx_form, time};

/// The code form.
pub fn code_view(csrf: &Csrf, error: Option<&str>, alert: Option<&str>) -> Markup {
    let fields = html! {
        @if let Some(alert) = alert { p.alert role="alert" { (alert) } }
        div.field.invalid[error.is_some()] {
            label for="code" { "Code" }
            input id="code" name="code" type="text" inputmode="numeric"
                autocomplete="one-time-code" required autofocus
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=(if error.is_some() { "code-error" } else { "code-hint" });
            @match error {
                Some(error) => p.error id="code-error" role="alert" { (error) },
                None => small.hint id="code-hint" {
                    "The 6-digit code from your authenticator app, or one of your recovery codes."
                },
            }
        }
        div.check {
            input id="trust" name="trust" type="checkbox";
            label for="trust" { "Trust this browser for 30 days" }
        }
        button type="submit" { "Log in" }
    };
    html! {
        section.card id="two-step" {
            h1 { "Two-step login" }
            p.lead { "Your password was right. Now enter a code to finish logging in." }
            (hx_form("/login/code", csrf, fields))
            p.switch { a href="/" { "Start again" } }
        }
    }
}

/// What the account page's two-step section says.
#[derive(Debug, Default, Clone)]
pub struct SectionState {
    /// Success, said once.
    pub notice: Option<&'static str>,
    /// An error for the whole form.
    pub alert: Option<String>,
    /// The code's error.
    pub code: Option<&'static str>,
    /// The password's error.
    pub current: Option<&'static str>,
    /// New recovery codes, shown this once.
    pub recovery_codes: Vec<String>,
    /// A key being set up: its QR code and text are shown, and the form carries it
    /// back sealed.
    pub setup: Option<Setup>,
}

/// A key being set up, and the same sealed for this account's setup page.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The key, to show.
    pub key: TotpKey,
    /// The key sealed for the form to carry back.
    pub sealed: String,
}

/// The account page's "Two-step login" section for `user`.
pub fn section(csrf: &Csrf, user: &User, shown: &SectionState) -> Markup {
    let messages = html! {
        @if let Some(notice) = shown.notice { p.notice role="status" { (notice) } }
        @if let Some(alert) = &shown.alert { p.alert role="alert" { (alert) } }
    };
    let body = match &user.totp {
        Some(setting) => on_view(csrf, setting, shown),
        None => off_view(csrf, user, shown),
    };
    html! {
        section.card id="two-step-login" {
            h2 { "Two-step login" }
            (messages)
            (body)
        }
    }
}

fn code_and_password(shown: &SectionState, code_id: &str, password_id: &str) -> Markup {
    html! {
        div.field.invalid[shown.code.is_some()] {
            label for=(code_id) { "Code from your app" }
            input id=(code_id) name="code" type="text" inputmode="numeric"
                autocomplete="one-time-code" required
                aria-invalid=[shown.code.map(|_| "true")];
            @if let Some(error) = shown.code { p.error role="alert" { (error) } }
        }
        div.field.invalid[shown.current.is_some()] {
            label for=(password_id) { "Your password" }
            input id=(password_id) name="current_password" type="password"
                autocomplete="current-password" required
                aria-invalid=[shown.current.map(|_| "true")];
            @if let Some(error) = shown.current { p.error role="alert" { (error) } }
        }
    }
}

fn off_view(csrf: &Csrf, user: &User, shown: &SectionState) -> Markup {
    let lead = html! {
        p.lead {
            "Off. With it on, logging in also asks for a code from an authenticator app "
            "on your phone, so a stolen password alone opens nothing."
        }
    };
    let Some(Setup { key, sealed }) = &shown.setup else {
        let start = html! { button.secondary type="submit" { "Set up two-step login" } };
        return html! { (lead) (hx_form("/account/totp/setup", csrf, start)) };
    };
    let uri = key.uri(crate::brand::name(), &user.name);
    let svg = qr_svg(&uri);
    let fields = html! {
        input type="hidden" name="setup" value=(sealed);
        (code_and_password(shown, "totp_code", "totp_password"))
        button type="submit" { "Turn on two-step login" }
    };
    html! {
        (lead)
        ol.steps {
            li { "Scan this code with an authenticator app (or type the key below)." }
            li { "Enter the 6-digit code the app shows, and your password." }
        }
        figure.qr {
            (PreEscaped(svg))
            figcaption {
                "Key: " code.key { (spaced(&key.base32())) }
                br;
                // On a phone, the app that holds the codes opens with the key filled in.
                a href=(uri) { "Open in an authenticator app on this device" }
            }
        }
        (hx_form("/account/totp", csrf, fields))
    }
}

fn on_view(csrf: &Csrf, setting: &TotpSetting, shown: &SectionState) -> Markup {
    let left = setting.recovery.len();
    html! {
        p.lead { "On since " (time(setting.since)) ". Logging in asks for a code from your app." }
        @if !shown.recovery_codes.is_empty() {
            div.recovery {
                p { strong { "Your recovery codes." } " Each works once, instead of a code from the app, if you lose your phone. Save them somewhere safe now: they are not shown again." }
                ul.codes { @for code in &shown.recovery_codes { li { code { (code) } } } }
            }
        } @else {
            p { (left) " unused recovery code" @if left != 1 { "s" } " left." }
        }
        details {
            summary { "New recovery codes" }
            (hx_form("/account/totp/recovery", csrf, html! {
                p.hint { "The old codes stop working." }
                (code_and_password(shown, "recovery_code", "recovery_password"))
                button.secondary type="submit" { "Make new recovery codes" }
            }))
        }
        details {
            summary { "Turn off two-step login" }
            (hx_form("/account/totp/off", csrf, html! {
                (code_and_password(shown, "off_code", "off_password"))
                button.danger type="submit" { "Turn off two-step login" }
            }))
        }
    }
}

/// `ABCD EFGH …`: a key in groups of four, for typing.
fn spaced(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `uri` as a QR code in SVG (black on white, with a quiet zone), no inline style.
fn qr_svg(uri: &str) -> String {
    use qrcode::render::svg;
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => code
            .render::<svg::Color>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .dark_color(svg::Color("#000000"))
            .light_color(svg::Color("#ffffff"))
            .build()
            .replacen(
                "<svg ",
                r#"<svg role="img" aria-label="QR code for your authenticator app" "#,
                1,
            ),
        Err(_) => String::new(), // an otpauth URI always fits
    }
}
