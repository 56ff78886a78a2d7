//! The 64 KiB bound on a request's head (request line and headers), kept exactly.
//!
//! hyper's `max_buf_size` bounds its read buffer, not the head: it reads in growing
//! chunks and checks the size only when a head is still incomplete, so with it set
//! to 64 KiB heads of up to 112 KiB got through. It stays as the outer bound on the
//! memory one connection takes; the promise (`431` above 64 KiB) is kept here, by
//! measuring each head hyper has parsed before anything reads it.

use hyper::Request;
use poem::Response;
use poem::http::{StatusCode, Uri, header};

/// The largest request head (line and headers) served; more is a `431`.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Whether `req`'s head is over [`MAX_HEAD_BYTES`].
pub fn is_too_large<B>(req: &Request<B>) -> bool {
    head_len(req) > MAX_HEAD_BYTES
}

/// The bytes of `req`'s head as a client writes it plainly: `METHOD SP target SP
/// HTTP/1.1 CRLF`, `name: value CRLF` per header, and the blank line. (Spaces around a
/// value, which hyper trims, are not counted: hyper's buffer bounds those.)
pub fn head_len<B>(req: &Request<B>) -> usize {
    let line =
        req.method().as_str().len() + " ".len() + target_len(req.uri()) + " HTTP/1.1\r\n".len();
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + ": \r\n".len())
        .sum();
    line + headers + "\r\n".len()
}

/// The request target as sent: a path and query, or an absolute URI, or an authority.
fn target_len(uri: &Uri) -> usize {
    let scheme = uri.scheme_str().map_or(0, |s| s.len() + "://".len());
    let authority = uri.authority().map_or(0, |a| a.as_str().len());
    let path = uri.path_and_query().map_or(0, |p| p.as_str().len());
    scheme + authority + path
}

/// The answer to a head that is too large; the connection closes after it (a client
/// sending such heads is not worth keeping).
pub fn too_large() -> Response {
    Response::builder()
        .status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        .header(header::CONNECTION, "close")
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body("Request header fields too large.\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method("GET").uri(target);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn a_head_is_measured_as_it_is_written() {
        let wire = "GET /a?b=c HTTP/1.1\r\nHost: x\r\nCookie: k=v\r\n\r\n";
        let req = request("/a?b=c", &[("host", "x"), ("cookie", "k=v")]);
        assert_eq!(head_len(&req), wire.len());
        let absolute = "GET http://x/a HTTP/1.1\r\n\r\n";
        assert_eq!(head_len(&request("http://x/a", &[])), absolute.len());
    }

    #[test]
    fn only_a_head_over_64_kib_is_too_large() {
        let fixed = head_len(&request("/", &[("cookie", "")]));
        let at_limit = "a".repeat(MAX_HEAD_BYTES - fixed);
        assert!(!is_too_large(&request("/", &[("cookie", &at_limit)])));
        let over = format!("{at_limit}a");
        assert!(is_too_large(&request("/", &[("cookie", &over)])));
    }
}
