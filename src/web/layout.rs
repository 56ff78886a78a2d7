//! The page frame and the small view pieces every page shares.

use std::sync::LazyLock;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::csrf::Csrf;
use super::statics;

/// htmx 2 settings (their defaults bite; see the README's design notes): swap 4xx fragments (our inline errors) and 503 (busy), keep no page
/// snapshots (a members-only page must not outlive logout in sessionStorage), inject
/// no inline styles (CSP) nor settle them (a browser's autofill may leave `style=""`
/// on a field, which htmx would copy onto its replacement), and treat history
/// restores as full-page loads.
const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"attributesToSettle":["class","width","height"],"historyCacheSize":0,"historyRestoreAsHxRequest":false,"allowEval":false,"allowScriptTags":false,"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},{"code":"4..","swap":true,"error":false},{"code":"503","swap":true,"error":false},{"code":"...","swap":false,"error":true}]}"#;

/// The htmx event an answer sends (`HX-Trigger`) when two-step login was turned on or
/// off.
pub const TWO_STEP_CHANGED: &str = "two-step-changed";
/// `hx-trigger` of the account sections whose forms ask for a code with two-step login
/// on: they redraw themselves (from `/account`) on that event.
pub const ON_TWO_STEP_CHANGED: &str = "two-step-changed from:body";

/// The whole page around `content`.
pub fn page(title: &str, content: Markup) -> Markup {
    // The frame is the same on every page: render it once and splice.
    static FRAME: LazyLock<(String, String, String)> = LazyLock::new(|| {
        const MARK: &str = "\u{0}WICKET\u{0}";
        let html = frame(MARK, PreEscaped(MARK.to_owned())).into_string();
        let mut parts = html.split(MARK);
        let (a, b, c) = (parts.next(), parts.next(), parts.next());
        (
            a.unwrap_or_default().into(),
            b.unwrap_or_default().into(),
            c.unwrap_or_default().into(),
        )
    });
    let (before_title, before_content, after) = &*FRAME;
    let title = html! { (title) };
    let mut out = String::with_capacity(
        before_title.len() + before_content.len() + after.len() + title.0.len() + content.0.len(),
    );
    for part in [before_title, &title.0, before_content, &content.0, after] {
        out.push_str(part);
    }
    PreEscaped(out)
}

/// The page frame, with `title` and `content` in place.
fn frame(title: &str, content: Markup) -> Markup {
    let site = crate::brand::name();
    // What search engines show under the site's name.
    let description = format!(
        "{site}: log in or create an account to reach the members' cabinet and manage \
         your sessions."
    );
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (PreEscaped(title)) " · " (site) }
                meta name="description" content=(description);
                meta name="htmx-config" content=(HTMX_CONFIG);
                link rel="icon" href=(statics::url("/favicon.svg")) type="image/svg+xml";
                link rel="stylesheet" href=(statics::url("/style.css"));
                script src=(statics::url("/htmx.min.js")) defer {}
                script src=(statics::url("/passkey.js")) defer {}
            }
            body {
                header.site {
                    a.brand href="/" {
                        @match crate::brand::logo() {
                            Some((logo, aspect)) => {
                                img src=(statics::url(logo)) alt="" height="28"
                                    width=((28.0 * aspect).round());
                            }
                            None => {
                                img src=(statics::url("/favicon.svg")) alt="" width="28" height="28";
                            }
                        }
                        span { (site) }
                    }
                }
                main id="main" { (content) }
                footer.site { (site) " · sessions on disk, passwords in scrypt" }
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
    /// `id` of the input, when `name` is not unique on the page.
    pub id: Option<&'a str>,
    /// `name` (and, unless `id` is given, `id`) of the input.
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
    /// May be left empty (no `required`).
    pub optional: bool,
}

impl Field<'_> {
    /// Renders the field.
    pub fn render(&self) -> Markup {
        let id = self.id.unwrap_or(self.name);
        let error_id = format!("{id}-error");
        let hint_id = format!("{id}-hint");
        // An error replaces the hint: it says the same thing, more pointedly.
        let hint = self.hint.filter(|_| self.error.is_none());
        let described = match (self.error, hint) {
            (Some(_), _) => Some(error_id.clone()),
            (None, Some(_)) => Some(hint_id.clone()),
            (None, None) => None,
        };
        html! {
            div.field.invalid[self.error.is_some()] {
                label for=(id) { (self.label) }
                input id=(id) name=(self.name) type=(self.kind)
                    autocomplete=(self.autocomplete) value=(self.value) required[!self.optional]
                    aria-invalid=[self.error.map(|_| "true")]
                    aria-describedby=[described]
                    autofocus[self.autofocus];
                @if let Some(hint) = hint {
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
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let at = at.to_offset(time::UtcOffset::UTC);
    let (date, clock) = (at.date(), at.time());
    let month = u8::from(date.month());
    // Written by hand into one buffer: the cabinet shows four of these on every
    // request. Digits and month names only, so nothing needs escaping.
    let mut out = String::with_capacity(72);
    out.push_str("<time datetime=\"");
    push_year(&mut out, date.year());
    for (sep, n) in [('-', month), ('-', date.day()), ('T', clock.hour())] {
        out.push(sep);
        push_two(&mut out, n);
    }
    for n in [clock.minute(), clock.second()] {
        out.push(':');
        push_two(&mut out, n);
    }
    out.push_str("Z\">");
    if date.day() >= 10 {
        out.push(char::from(b'0' + date.day() / 10));
    }
    out.push(char::from(b'0' + date.day() % 10));
    out.push(' ');
    out.push_str(MONTHS[usize::from(month) - 1]);
    out.push(' ');
    push_year(&mut out, date.year());
    out.push_str(", ");
    push_two(&mut out, clock.hour());
    out.push(':');
    push_two(&mut out, clock.minute());
    out.push_str(" UTC</time>");
    PreEscaped(out)
}

/// `n` (below 100) as two digits.
fn push_two(out: &mut String, n: u8) {
    out.push(char::from(b'0' + n / 10 % 10));
    out.push(char::from(b'0' + n % 10));
}

/// A year as at least four digits (a sign for years before 1 AD, as ISO 8601 has).
fn push_year(out: &mut String, year: i32) {
    match u16::try_from(year) {
        Ok(year @ 0..=9999) => {
            for n in [year / 100, year % 100] {
                push_two(out, n as u8); // below 100
            }
        }
        _ => {
            use std::fmt::Write;
            let _ = write!(out, "{year:04}");
        }
    }
}

/// A code field for forms that need the second factor too.
pub fn code_field(id: &str, error: Option<&str>) -> Markup {
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { "Code from your authenticator app (or a recovery code)" }
            input id=(id) name="code" type="text" inputmode="numeric"
                autocomplete="one-time-code" required
                aria-invalid=[error.map(|_| "true")];
            @if let Some(error) = error { p.error role="alert" { (error) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spliced_page_equals_the_directly_rendered_one() {
        let content = html! { p { "a < b" } };
        let direct = frame("Hi & bye", content.clone()).into_string();
        let spliced = page("Hi & bye", content).into_string();
        // frame() takes the title pre-escaped; page() escapes it.
        assert_eq!(spliced, direct.replace("Hi & bye", "Hi &amp; bye"));
        assert!(spliced.contains("<title>Hi &amp; bye · Wicket</title>"));
        assert!(spliced.contains("<main id=\"main\"><p>a &lt; b</p></main>"));
    }

    #[test]
    fn times_render_for_people_and_machines() {
        let at = time::macros::datetime!(2026-11-05 07:03:09 UTC);
        assert_eq!(
            time(at).into_string(),
            r#"<time datetime="2026-11-05T07:03:09Z">5 Nov 2026, 07:03 UTC</time>"#
        );
        let at = time::macros::datetime!(2031-12-31 23:59:58 +02:00);
        assert_eq!(
            time(at).into_string(),
            r#"<time datetime="2031-12-31T21:59:58Z">31 Dec 2031, 21:59 UTC</time>"#
        );
        let at = time::macros::datetime!(0999-01-01 00:00:00 UTC);
        assert!(
            time(at)
                .into_string()
                .starts_with(r#"<time datetime="0999-01-01T00:00:00Z">1 Jan 0999,"#)
        );
    }
}
