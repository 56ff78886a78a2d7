//! The well-known addresses tools look for: `/.well-known/change-password` (the W3C
//! convention password managers follow to "change this password") and, with
//! `--security-contact`, `/.well-known/security.txt` (RFC 9116).

use std::fmt;
use std::str::FromStr;

use poem::http::header;
use poem::web::{Data, Redirect};
use poem::{IntoResponse, Response, handler};
use time::OffsetDateTime;

/// Where to report a security problem: a `mailto:`, `https:` or `tel:` URI (a bare
/// address is taken as `mailto:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityContact(String);

impl FromStr for SecurityContact {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let plain = !text.is_empty() && text.chars().all(|c| c.is_ascii_graphic());
        let uri = if !plain {
            None
        } else if ["mailto:", "https://", "tel:"]
            .iter()
            .any(|s| text.starts_with(s))
        {
            Some(text.to_owned())
        } else if crate::domain::EmailAddress::parse(text).is_ok() {
            Some(format!("mailto:{text}"))
        } else {
            None
        };
        uri.map(Self)
            .ok_or_else(|| "expected an email address, or a mailto:, https:// or tel: URI".into())
    }
}

impl fmt::Display for SecurityContact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `/.well-known/security.txt` says: whom to tell, and where the file lives.
#[derive(Debug, Clone)]
pub struct SecurityTxt {
    /// The `Contact:` line's URI.
    pub contact: SecurityContact,
    /// The site's origin (`--public-url`), for `Canonical:`.
    pub origin: Option<String>,
}

/// How long a served security.txt says it holds (RFC 9116 asks for under a year).
const VALID_FOR: time::Duration = time::Duration::days(180);

impl SecurityTxt {
    /// The file's text as of `now`.
    pub fn text(&self, now: OffsetDateTime) -> String {
        let expires = (now + VALID_FOR)
            .replace_time(time::Time::MIDNIGHT)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let mut text = format!("Contact: {}\nExpires: {expires}\n", self.contact);
        if let Some(origin) = &self.origin {
            text.push_str(&format!("Canonical: {origin}/.well-known/security.txt\n"));
        }
        text.push_str("Preferred-Languages: en\n");
        text
    }
}

/// `GET /.well-known/change-password`: the account page, where the form is.
#[handler]
pub fn change_password() -> Redirect {
    Redirect::see_other("/account")
}

/// `GET /.well-known/security.txt` (only routed with `--security-contact`).
#[handler]
pub fn security_txt(file: Data<&SecurityTxt>) -> Response {
    file.text(OffsetDateTime::now_utc())
        .with_content_type("text/plain; charset=utf-8")
        .with_header(header::CACHE_CONTROL, "public, max-age=86400")
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contact_is_a_uri_or_an_address() {
        let parsed = |t: &str| t.parse::<SecurityContact>().map(|c| c.to_string());
        assert_eq!(
            parsed("security@example.com").unwrap(),
            "mailto:security@example.com"
        );
        assert_eq!(
            parsed("https://example.com/report").unwrap(),
            "https://example.com/report"
        );
        for bad in [
            "",
            "javascript:alert(1)",
            "http://plain.example",
            "two words",
            "line\nbreak",
        ] {
            assert!(parsed(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_file_expires_within_a_year_and_names_its_canonical_place() {
        let file = SecurityTxt {
            contact: "security@example.com".parse().unwrap(),
            origin: Some("https://login.example.com".into()),
        };
        let now = time::macros::datetime!(2026-12-06 10:00 UTC);
        assert_eq!(
            file.text(now),
            "Contact: mailto:security@example.com\n\
             Expires: 2027-06-04T00:00:00Z\n\
             Canonical: https://login.example.com/.well-known/security.txt\n\
             Preferred-Languages: en\n"
        );
    }
}
