//! `/static/`: the files of the static directory, read into memory at start-up.
//!
//! Only regular files found under the directory at start-up (plain names, no hidden
//! files, no symlinks) can ever be served: a request path is a key in a map, never a
//! path handed to the file system, so `..`, encoded separators or backslashes have
//! nothing to climb. Serving from memory also makes `/static` the fast floor that the
//! benchmark compares the cabinet with. Restart to pick up changed files.
//!
//! Each file is served twice over:
//! - under its own name (`/static/htmx.min.js`), revalidated on every use
//!   (`no-cache` + ETag), for scripts and bookmarks;
//! - under a name carrying its content hash (`/static/htmx.min.3f2a9c81d0.js`), cached
//!   for a year as `immutable`: pages link these ([`url`]), so a browser fetches each
//!   version of a file once, and a new version is a new URL.
//!
//! Text files (CSS, JavaScript, SVG, …) are compressed at start-up with brotli and
//! gzip at (nearly) their highest settings, kept only when smaller, and chosen by
//! `Accept-Encoding`; each encoding has its own ETag and every answer says
//! `Vary: Accept-Encoding`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Body, Endpoint, Request, Response};

/// Files larger than this are not loaded (and so not served).
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Brotli's quality setting (0–11) for static files.
const BROTLI_QUALITY: u32 = 10;

/// Hex digits of the content hash in a fingerprinted name.
const FINGERPRINT_HEX: usize = 10;

/// How a response body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

impl Encoding {
    fn token(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Gzip => "gzip",
            Self::Brotli => "br",
        }
    }
}

/// One encoded form of a file.
struct Variant {
    body: bytes::Bytes,
    etag: HeaderValue,
}

struct Asset {
    content_type: &'static str,
    identity: Variant,
    gzip: Option<Variant>,
    brotli: Option<Variant>,
}

impl Asset {
    fn variant(&self, encoding: Encoding) -> &Variant {
        let chosen = match encoding {
            Encoding::Brotli => self.brotli.as_ref(),
            Encoding::Gzip => self.gzip.as_ref(),
            Encoding::Identity => None,
        };
        chosen.unwrap_or(&self.identity)
    }

    /// The best encoding this file has that the client accepts.
    fn encoding_for(&self, accepted: Option<&str>) -> Encoding {
        let accepted = accepted.unwrap_or_default();
        if self.brotli.is_some() && accepts(accepted, "br") {
            Encoding::Brotli
        } else if self.gzip.is_some() && accepts(accepted, "gzip") {
            Encoding::Gzip
        } else {
            Encoding::Identity
        }
    }

    fn compressed(&self) -> bool {
        self.gzip.is_some() || self.brotli.is_some()
    }
}

/// Whether an `Accept-Encoding` value accepts `coding` (by name or `*`, with q > 0).
fn accepts(header: &str, coding: &str) -> bool {
    let mut by_name = None;
    let mut by_star = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or_default().trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case(coding) {
            by_name = Some(q);
        } else if name == "*" {
            by_star = Some(q);
        }
    }
    by_name.or(by_star).is_some_and(|q| q > 0.0)
}

/// A path and how long it may be cached.
struct Route {
    asset: Arc<Asset>,
    immutable: bool,
}

/// Serves the in-memory copy of the static directory.
pub struct StaticFiles {
    routes: Arc<HashMap<String, Route>>,
}

/// `/style.css` → `/static/style.<hash>.css`, for pages to link.
static URLS: OnceLock<HashMap<String, String>> = OnceLock::new();

/// The URL pages use for the static file `name` (e.g. `/style.css`): its
/// fingerprinted one, or `/static/<name>` if it was not loaded. The URLs are those of
/// the first static directory loaded in this process (the binary loads one).
pub fn url(name: &str) -> Cow<'static, str> {
    match URLS.get().and_then(|urls| urls.get(name)) {
        Some(url) => Cow::Borrowed(url.as_str()),
        None => Cow::Owned(format!("/static{name}")),
    }
}

impl StaticFiles {
    /// Loads every plain file under `dir` (recursively), compressing text files.
    pub fn load(dir: &Path) -> io::Result<Self> {
        Self::load_with(dir, None)
    }

    /// The same, with the site's `logo` (`--site-logo`) among them.
    pub fn load_with(dir: &Path, logo: Option<&crate::brand::Logo>) -> io::Result<Self> {
        let mut files = Vec::new();
        load_dir(dir, "", &mut files).map_err(|err| {
            io::Error::new(err.kind(), format!("--static-dir {}: {err}", dir.display()))
        })?;
        if let Some(logo) = logo {
            files.retain(|(key, _)| key != logo.name);
            files.push((logo.name.to_owned(), logo.bytes.clone()));
        }
        let mut routes = HashMap::new();
        let mut urls = HashMap::new();
        for (key, body) in files {
            let hash = crate::secret::hex(&sha256(&body));
            let asset = Arc::new(prepare(&key, body, &hash)?);
            let fingerprinted = fingerprinted(&key, &hash[..FINGERPRINT_HEX]);
            urls.insert(key.clone(), format!("/static{fingerprinted}"));
            routes.insert(
                fingerprinted,
                Route {
                    asset: asset.clone(),
                    immutable: true,
                },
            );
            routes.insert(
                key,
                Route {
                    asset,
                    immutable: false,
                },
            );
        }
        let _ = URLS.set(urls);
        Ok(Self {
            routes: Arc::new(routes),
        })
    }
}

/// `/dir/name.min.js` with hash `h` → `/dir/name.min.h.js` (no extension: `/name.h`).
fn fingerprinted(key: &str, hash: &str) -> String {
    let (dir, file) = key.rsplit_once('/').unwrap_or(("", key));
    match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{dir}/{stem}.{hash}.{ext}"),
        _ => format!("{dir}/{file}.{hash}"),
    }
}

/// A file's variants: as it is, and for text, brotli and gzip when smaller.
fn prepare(key: &str, body: Vec<u8>, hash: &str) -> io::Result<Asset> {
    let content_type = content_type(key);
    let tag = |suffix: &str| {
        HeaderValue::from_str(&format!("\"{}{suffix}\"", &hash[..32]))
            .expect("hex is a valid header")
    };
    let (mut gzip, mut brotli) = (None, None);
    if is_text(content_type) {
        let smaller = |packed: Vec<u8>| (packed.len() < body.len()).then_some(packed);
        gzip = smaller(gzipped(&body)?).map(|packed| Variant {
            body: packed.into(),
            etag: tag("-gz"),
        });
        brotli = smaller(brotlied(&body)?).map(|packed| Variant {
            body: packed.into(),
            etag: tag("-br"),
        });
    }
    Ok(Asset {
        content_type,
        identity: Variant {
            body: body.into(),
            etag: tag(""),
        },
        gzip,
        brotli,
    })
}

fn gzipped(body: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(body)?;
    encoder.finish()
}

fn brotlied(body: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        // Quality 10 of 11: htmx.min.js in 33 ms rather than 69 ms at start-up, for
        // 2% more bytes (15.6 KB rather than 15.3 KB, of 52 KB).
        let mut writer = brotli::CompressorWriter::new(&mut out, 4096, BROTLI_QUALITY, 22);
        writer.write_all(body)?;
    }
    Ok(out)
}

fn is_text(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || matches!(
            content_type,
            "image/svg+xml" | "application/json" | "application/manifest+json"
        )
}

fn load_dir(dir: &Path, prefix: &str, files: &mut Vec<(String, Vec<u8>)>) -> io::Result<()> {
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
            load_dir(&entry.path(), &key, files)?;
        } else if kind.is_file() && entry.metadata()?.len() <= MAX_FILE_BYTES {
            files.push((key, std::fs::read(entry.path())?));
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
        Some("webmanifest") => "application/manifest+json",
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
        let route = self
            .routes
            .get(req.uri().path())
            .ok_or_else(|| poem::Error::from_status(StatusCode::NOT_FOUND))?;
        let asset = &route.asset;
        let encoding = asset.encoding_for(req.header(header::ACCEPT_ENCODING));
        let variant = asset.variant(encoding);
        let caching = if route.immutable {
            "public, max-age=31536000, immutable"
        } else {
            "public, no-cache"
        };
        let mut builder = Response::builder()
            .header(header::ETAG, variant.etag.clone())
            .header(header::CACHE_CONTROL, caching);
        if asset.compressed() {
            builder = builder.header(header::VARY, "Accept-Encoding");
        }
        let fresh = req
            .headers()
            .get(header::IF_NONE_MATCH)
            .is_some_and(|tags| {
                tags.as_bytes()
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii() == variant.etag.as_bytes())
            });
        if fresh {
            return Ok(builder.status(StatusCode::NOT_MODIFIED).finish());
        }
        if encoding != Encoding::Identity {
            builder = builder.header(header::CONTENT_ENCODING, encoding.token());
        }
        let builder = builder
            .header(header::CONTENT_TYPE, asset.content_type)
            .header(header::CONTENT_LENGTH, variant.body.len());
        Ok(if head {
            builder.body(Body::empty())
        } else {
            builder.body(variant.body.clone())
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
        let mut keys: Vec<_> = files
            .routes
            .iter()
            .filter(|(_, route)| !route.immutable)
            .map(|(key, _)| key.clone())
            .collect();
        keys.sort();
        assert_eq!(keys, ["/a.css", "/img/b.svg"]);
        assert_eq!(
            files.routes.len(),
            4,
            "each also under its fingerprinted name"
        );
        assert_eq!(
            files.routes["/a.css"].asset.content_type,
            "text/css; charset=utf-8"
        );
    }

    #[test]
    fn fingerprints_go_before_the_extension() {
        assert_eq!(fingerprinted("/htmx.min.js", "abc"), "/htmx.min.abc.js");
        assert_eq!(fingerprinted("/img/b.svg", "abc"), "/img/b.abc.svg");
        assert_eq!(fingerprinted("/LICENSE", "abc"), "/LICENSE.abc");
        assert_eq!(fingerprinted("/x-y_z", "abc"), "/x-y_z.abc");
    }

    #[test]
    fn accept_encoding_is_read_with_its_weights() {
        assert!(accepts("gzip, deflate, br, zstd", "br"));
        assert!(accepts("gzip;q=1.0, br;q=0.5", "br"));
        assert!(!accepts("gzip, br;q=0", "br"));
        assert!(accepts("*", "gzip"));
        assert!(!accepts("*;q=0", "gzip"));
        assert!(!accepts("*, gzip;q=0", "gzip"));
        assert!(!accepts("", "gzip"));
        assert!(!accepts("identity", "br"));
        assert!(accepts("BR", "br"));
    }
}
