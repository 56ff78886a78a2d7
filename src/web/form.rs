//! The strict form extractor every POST goes through: size, type, encoding, CSRF.

use std::sync::Arc;

use poem::http::{StatusCode, header};
use poem::{FromRequest, Request, RequestBody};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio::io::AsyncReadExt;

use super::AppState;
use super::clipped;
use super::csrf::Csrf;
use crate::error::AppError;
use crate::net::BodyDeadline;

/// The largest form body accepted. Ours are a few hundred bytes.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// A strictly parsed `application/x-www-form-urlencoded` body.
///
/// Unlike a lenient parser, it refuses rather than repairs: a body over 16 KiB is a
/// 413 (refused from `Content-Length` before reading, or cut off while reading),
/// another content type a 415, and bad percent-escapes, invalid UTF-8 or a repeated
/// field a 400. The handler then sees only well-formed text.
///
/// It is also where forged requests stop: every POST form in Wicket is read through
/// it, and it refuses (403) a request from another site (`Origin`, `Sec-Fetch-Site`)
/// or without this browser's CSRF token in the `csrf` field.
pub struct Form<T>(pub T);

impl<'a, T: DeserializeOwned> FromRequest<'a> for Form<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        refuse_cross_site(req)?;
        let mut fields = read_fields(req, body).await?;
        let csrf = Csrf::from_request_without_body(req).await?;
        let token = fields.remove("csrf");
        if !token
            .as_ref()
            .and_then(Value::as_str)
            .is_some_and(|t| csrf.verify(t))
        {
            tracing::warn!(
                path = clipped(req.uri().path()),
                "refused a POST without a valid CSRF token"
            );
            return Err(AppError::Forbidden.into());
        }
        serde_json::from_value(Value::Object(fields))
            .map(Form)
            .map_err(|_| poem::Error::from_status(StatusCode::BAD_REQUEST))
    }
}

/// A form another program posts (an app at the OpenID Connect endpoints, or its page
/// sending the browser to `/oidc/authorize`): read as strictly and as bounded as
/// [`Form`], without the CSRF token and same-origin checks that guard Wicket's own
/// forms.
pub struct AppForm<T>(pub T);

impl<'a, T: DeserializeOwned> FromRequest<'a> for AppForm<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let fields = read_fields(req, body).await?;
        serde_json::from_value(Value::Object(fields))
            .map(AppForm)
            .map_err(|_| poem::Error::from_status(StatusCode::BAD_REQUEST))
    }
}

/// The fields of a url-encoded body of at most [`MAX_FORM_BYTES`], read within the
/// body deadline; each field once.
async fn read_fields(req: &Request, body: &mut RequestBody) -> poem::Result<Map<String, Value>> {
    let is_form = req
        .header(header::CONTENT_TYPE)
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(poem::Error::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    let declared = req
        .header(header::CONTENT_LENGTH)
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_FORM_BYTES as u64) {
        return Err(poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE));
    }
    let mut bytes = Vec::new();
    let mut reader = body
        .take()?
        .into_async_read()
        .take(MAX_FORM_BYTES as u64 + 1);
    let read = reader.read_to_end(&mut bytes);
    // A client sending its body a byte at a time holds a connection: it gets
    // until the deadline the server set when the head arrived.
    let read = match req.extensions().get::<BodyDeadline>() {
        Some(BodyDeadline(at)) => tokio::time::timeout_at(*at, read)
            .await
            .map_err(|_| poem::Error::from_status(StatusCode::REQUEST_TIMEOUT))?,
        None => read.await,
    };
    read.map_err(|_| poem::Error::from_status(StatusCode::BAD_REQUEST))?;
    if bytes.len() > MAX_FORM_BYTES {
        return Err(poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE));
    }
    parse(&bytes).ok_or_else(|| poem::Error::from_status(StatusCode::BAD_REQUEST))
}

/// Refuses a request that a browser says comes from another site. A request with
/// neither header (curl, old browsers) passes here and rests on the CSRF token alone.
fn refuse_cross_site(req: &Request) -> Result<(), AppError> {
    if req.header("sec-fetch-site") == Some("cross-site") {
        tracing::warn!("refused a cross-site POST (Sec-Fetch-Site)");
        return Err(AppError::Forbidden);
    }
    if let Some(origin) = req.header(header::ORIGIN) {
        let public_url = req
            .data::<Arc<AppState>>()
            .and_then(|state| state.public_url.as_ref());
        let same = match public_url {
            // Pinned: scheme, host and port must be the configured ones.
            Some(url) => url.is_origin(origin),
            // Not pinned: the host the browser asked for (DNS rebinding gets past this,
            // which is why deployments set --public-url).
            None => {
                let host = req.header(header::HOST).unwrap_or_default();
                origin
                    .strip_prefix("http://")
                    .or_else(|| origin.strip_prefix("https://"))
                    .is_some_and(|rest| !host.is_empty() && rest.eq_ignore_ascii_case(host))
            }
        };
        if !same {
            tracing::warn!(origin = ?clipped(origin), "refused a POST from another origin");
            return Err(AppError::Forbidden);
        }
    }
    Ok(())
}

/// A form with no fields besides the CSRF token (e.g. the logout button).
#[derive(Debug, Default, serde::Deserialize)]
pub struct NoFields {}

/// `a=1&b=x+y` into `{"a": "1", "b": "x y"}`; `None` on any malformation.
fn parse(body: &[u8]) -> Option<Map<String, Value>> {
    let mut fields = Map::new();
    for pair in body.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
        let mut halves = pair.splitn(2, |&b| b == b'=');
        let name = decode(halves.next()?)?;
        let value = decode(halves.next().unwrap_or_default())?;
        if fields.insert(name, Value::String(value)).is_some() {
            return None; // a repeated field is ambiguous: refuse rather than guess
        }
    }
    Some(fields)
}

/// Decodes `+` and `%XX` strictly, then requires UTF-8.
fn decode(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&b) = bytes.next() {
        out.push(match b {
            b'+' => b' ',
            b'%' => {
                let hi = (*bytes.next()? as char).to_digit(16)?;
                let lo = (*bytes.next()? as char).to_digit(16)?;
                (hi * 16 + lo) as u8
            }
            _ => b,
        });
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_bodies_decode() {
        let fields = parse(b"username=al+ice&password=p%C3%A4ss%26%3D&next=").unwrap();
        assert_eq!(fields["username"], "al ice");
        assert_eq!(fields["password"], "päss&=");
        assert_eq!(fields["next"], "");
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for bad in [&b"a=%zz"[..], b"a=%4", b"a=%ff%fe", b"a=\xff", b"a=1&a=2"] {
            assert!(parse(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
