//! `/static/`: the files of the static directory, read into memory at start-up.
//!
//! Only regular files found under the directory at start-up (plain names, no hidden
//! files, no symlinks) can ever be served: a request path is a key in a map, never a
//! path handed to the file system, so `..`, encoded separators or backslashes have
//! nothing to climb. Serving from memory also makes `/static` the fast floor that the
//! benchmark compares the cabinet with. Restart to pick up changed files.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Body, Endpoint, Request, Response};

/// Files larger than this are not loaded (and so not served).
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

struct Asset {
    body: bytes::Bytes,
    content_type: &'static str,
    etag: HeaderValue,
}

/// Serves the in-memory copy of the static directory.
pub struct StaticFiles {
    assets: Arc<HashMap<String, Asset>>,
}

impl StaticFiles {
    /// Loads every plain file under `dir` (recursively).
    pub fn load(dir: &Path) -> io::Result<Self> {
        let mut assets = HashMap::new();
        load_dir(dir, "", &mut assets).map_err(|err| {
            io::Error::new(err.kind(), format!("--static-dir {}: {err}", dir.display()))
        })?;
        Ok(Self {
            assets: Arc::new(assets),
        })
    }
}

fn load_dir(dir: &Path, prefix: &str, assets: &mut HashMap<String, Asset>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !is_plain_segment(&name) {
            continue;
        }
        let kind = entry.file_type()?; // does not follow symlinks: they are skipped
        let key = format!("{prefix}/{name}");
        if kind.is_dir() {
            load_dir(&entry.path(), &key, assets)?;
        } else if kind.is_file() && entry.metadata()?.len() <= MAX_FILE_BYTES {
            let body = bytes::Bytes::from(std::fs::read(entry.path())?);
            let etag = format!("\"{}\"", &crate::secret::hex(&sha256(&body))[..32]);
            assets.insert(
                key,
                Asset {
                    content_type: content_type(&name),
                    etag: HeaderValue::from_str(&etag).expect("hex is a valid header"),
                    body,
                },
            );
        }
    }
    Ok(())
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// `[A-Za-z0-9_-][A-Za-z0-9_.-]*`: no hidden files, nothing that could be a path trick.
fn is_plain_segment(segment: &str) -> bool {
    !segment.is_empty()
        && !segment.starts_with('.')
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn content_type(name: &str) -> &'static str {
    match name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .as_deref()
    {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

impl Endpoint for StaticFiles {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let head = match *req.method() {
            Method::GET => false,
            Method::HEAD => true,
            _ => return Err(poem::Error::from_status(StatusCode::METHOD_NOT_ALLOWED)),
        };
        let asset = self
            .assets
            .get(req.uri().path())
            .ok_or_else(|| poem::Error::from_status(StatusCode::NOT_FOUND))?;
        let builder = Response::builder()
            .header(header::ETAG, asset.etag.clone())
            .header(
                header::CACHE_CONTROL,
                "public, max-age=3600, must-revalidate",
            );
        let fresh = req
            .headers()
            .get(header::IF_NONE_MATCH)
            .is_some_and(|tags| {
                tags.as_bytes()
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii() == asset.etag.as_bytes())
            });
        if fresh {
            return Ok(builder.status(StatusCode::NOT_MODIFIED).finish());
        }
        let builder = builder
            .header(header::CONTENT_TYPE, asset.content_type)
            .header(header::CONTENT_LENGTH, asset.body.len());
        Ok(if head {
            builder.body(Body::empty())
        } else {
            builder.body(asset.body.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_segments() {
        for good in ["style.css", "htmx.min.js", "logo-2_x.svg"] {
            assert!(is_plain_segment(good), "{good}");
        }
        for bad in ["", ".env", "..", "a b", "a\\b", "%2e", "a\0b"] {
            assert!(!is_plain_segment(bad), "{bad:?}");
        }
    }

    #[test]
    fn loading_skips_hidden_files_and_symlinks_and_keeps_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.css"), "a{}").unwrap();
        std::fs::write(dir.path().join(".secret"), "x").unwrap();
        std::fs::create_dir(dir.path().join("img")).unwrap();
        std::fs::write(dir.path().join("img/b.svg"), "<svg/>").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
        let files = StaticFiles::load(dir.path()).unwrap();
        let mut keys: Vec<_> = files.assets.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["/a.css", "/img/b.svg"]);
        assert_eq!(
            files.assets["/a.css"].content_type,
            "text/css; charset=utf-8"
        );
    }
}
