use maud::{DOCTYPE, Markup, html};

use super::csrf::Csrf;

/// htmx settings (see STACK.md): swap 4xx fragments (our inline errors) and 503 (busy), keep no page
/// snapshots (a members-only page must not outlive logout in sessionStorage), inject
/// no inline styles (CSP), and treat history restores as full-page loads.
const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"historyCacheSize":0,"historyRestoreAsHxRequest":false,"allowEval":false,"allowScriptTags":false,"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},{"code":"4..","swap":true,"error":false},{"code":"503","swap":true,"error":false},{"code":"...","swap":false,"error":true}]}"#;

/// The whole page around `content`.
pub fn page(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Wicket" }
                meta name="htmx-config" content=(HTMX_CONFIG);
                link rel="icon" href="/static/favicon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/static/style.css";
                script src="/static/htmx.min.js" defer {}
            }
            body {
                header.site {
                    a.brand href="/" {
                        img src="/static/favicon.svg" alt="" width="28" height="28";
                        span { "Wicket" }
                    }
                }
                main id="main" { (content) }
                footer.site { "Wicket · sessions on disk, passwords in scrypt" }
            }
        }
    }
}

/// A small page for errors (just the card for htmx): generic text, never internals.
pub fn error_page(hx: bool, title: &str, message: &str) -> Markup {
    let card = html! {
        section.card.error-card {
            h1 { (title) }
            p { (message) }
            p { a href="/" { "Go to the start page" } }
        }
    };
    if hx { card } else { page(title, card) }
}

/// A labelled input with its inline error (announced to screen readers).
pub struct Field<'a> {
    /// `name` and `id` of the input.
    pub name: &'a str,
    /// Visible label.
    pub label: &'a str,
    /// `type` attribute.
    pub kind: &'a str,
    /// `autocomplete` token.
    pub autocomplete: &'a str,
    /// Value to refill (never a password).
    pub value: &'a str,
    /// Inline error, if the field is wrong.
    pub error: Option<&'a str>,
    /// Whether to focus it when the fragment appears.
    pub autofocus: bool,
    /// Help shown under the field.
    pub hint: Option<&'a str>,
}

impl Field<'_> {
    /// Renders the field.
    pub fn render(&self) -> Markup {
        let error_id = format!("{}-error", self.name);
        let hint_id = format!("{}-hint", self.name);
        let described = match (self.error, self.hint) {
            (Some(_), Some(_)) => Some(format!("{error_id} {hint_id}")),
            (Some(_), None) => Some(error_id.clone()),
            (None, Some(_)) => Some(hint_id.clone()),
            (None, None) => None,
        };
        html! {
            div.field.invalid[self.error.is_some()] {
                label for=(self.name) { (self.label) }
                input id=(self.name) name=(self.name) type=(self.kind)
                    autocomplete=(self.autocomplete) value=(self.value) required
                    aria-invalid=[self.error.map(|_| "true")]
                    aria-describedby=[described]
                    autofocus[self.autofocus];
                @if let Some(hint) = self.hint {
                    small.hint id=(hint_id) { (hint) }
                }
                @if let Some(error) = self.error {
                    p.error id=(error_id) role="alert" { (error) }
                }
            }
        }
    }
}

/// A plain POST form that htmx enhances to swap its section in place, carrying the
/// CSRF token (a hidden field serves both htmx and no-JS posts).
pub fn hx_form(action: &str, csrf: &Csrf, content: Markup) -> Markup {
    html! {
        form method="post" action=(action) hx-post=(action) hx-target="closest section"
            hx-swap="outerHTML" novalidate {
            input type="hidden" name="csrf" value=(csrf.token());
            (content)
        }
    }
}

/// "Please wait N minutes": how long a throttled person must wait, rounded up.
pub fn wait_message(wait: std::time::Duration) -> String {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    format!("Too many attempts. Please wait {minutes} {unit} and try again.")
}

/// Renders a timestamp as e.g. `25 Nov 2026, 17:03 UTC` inside a `<time>` element.
pub fn time(at: time::OffsetDateTime) -> Markup {
    let machine = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let human = at
        .format(time::macros::format_description!(
            "[day padding:none] [month repr:short] [year], [hour]:[minute] UTC"
        ))
        .unwrap_or_default();
    html! { time datetime=(machine) { (human) } }
}
