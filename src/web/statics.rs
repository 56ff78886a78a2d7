use std::path::Path;

use poem::endpoint::StaticFilesEndpoint;
use poem::http::{HeaderValue, Method, header};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response};

use crate::error::AppError;

/// `GET /static/<file>`: plain files from `dir`, nothing else.
///
/// poem already refuses paths that climb out of `dir`; on top of that, any request
/// path that is not a plain file name (after decoding) is a 404 before the file
/// system is asked: no `..`, no hidden files, no backslashes, no NULs, no directories.
pub fn endpoint(dir: &Path) -> impl Endpoint<Output = Response> + use<> {
    let files = StaticFilesEndpoint::new(dir);
    files.around(|files, req: Request| async move {
        if !matches!(*req.method(), Method::GET | Method::HEAD) {
            return Err(poem::Error::from_status(
                poem::http::StatusCode::METHOD_NOT_ALLOWED,
            ));
        }
        if !is_plain_path(req.uri().path()) {
            return Err(AppError::NotFound.into());
        }
        let mut resp = files.call(req).await?.into_response();
        if resp.status().is_success() || resp.status() == poem::http::StatusCode::NOT_MODIFIED {
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600, must-revalidate"),
            );
        }
        Ok(resp)
    })
}

/// `/name.ext` or `/dir/name.ext`, each segment `[A-Za-z0-9_-][A-Za-z0-9_.-]*`.
fn is_plain_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    !rest.is_empty()
        && rest.split('/').all(|segment| {
            !segment.is_empty()
                && !segment.starts_with('.')
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        })
}

#[cfg(test)]
mod tests {
    use super::is_plain_path;

    #[test]
    fn plain_file_paths_pass() {
        for good in ["/style.css", "/htmx.min.js", "/img/logo.svg"] {
            assert!(is_plain_path(good), "{good}");
        }
    }

    #[test]
    fn anything_that_could_climb_or_hide_is_refused() {
        for bad in [
            "/",
            "",
            "/../Cargo.toml",
            "/%2e%2e/Cargo.toml",
            "/..%2fCargo.toml",
            "/a//b",
            "/.env",
            "/a\\..\\b",
            "/%5c..",
            "/x%00.css",
            "/dir/",
            "/ style.css",
        ] {
            assert!(!is_plain_path(bad), "{bad}");
        }
    }
}
