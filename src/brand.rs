//! The site's name (`--site-name`) and logo (`--site-logo`): page titles, the header
//! and footer, every mail, the authenticator app's entry and the passkeys' relying
//! party. One site per process, like the static files it serves: the first name set
//! in a process holds (the binary sets one, at start-up).

use std::path::Path;
use std::sync::OnceLock;

/// The name when none is given.
pub const DEFAULT_NAME: &str = "Wicket";

static NAME: OnceLock<String> = OnceLock::new();
/// The logo's static file name and width per height, if there is one.
static LOGO: OnceLock<(&'static str, f64)> = OnceLock::new();

/// Shows `logo` in the header (the first call in a process wins).
pub fn set_logo(logo: &Logo) {
    let _ = LOGO.set((logo.name, logo.aspect));
}

/// The logo's static file name and width per height, if one was set.
pub fn logo() -> Option<(&'static str, f64)> {
    LOGO.get().copied()
}

/// Names the site (the first call in a process wins).
pub fn set_name(name: &SiteName) {
    let _ = NAME.set(name.0.clone());
}

/// The site's name.
pub fn name() -> &'static str {
    NAME.get().map_or(DEFAULT_NAME, String::as_str)
}

/// A site name as given: 1 to 64 characters, none of them control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteName(String);

impl Default for SiteName {
    fn default() -> Self {
        Self(DEFAULT_NAME.to_owned())
    }
}

impl std::str::FromStr for SiteName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let count = text.chars().count();
        if count == 0 || count > 64 || text.chars().any(char::is_control) {
            return Err("1 to 64 characters, none of them a control character".into());
        }
        Ok(Self(text.to_owned()))
    }
}

impl std::fmt::Display for SiteName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A logo read from `--site-logo`: an SVG or PNG of at most 512 KiB.
#[derive(Debug, Clone)]
pub struct Logo {
    /// Its name among the static files: `/logo.svg` or `/logo.png`.
    pub name: &'static str,
    /// The file.
    pub bytes: Vec<u8>,
    /// Width per height, for the header's `width` attribute (no layout shift).
    pub aspect: f64,
}

/// The largest logo taken.
const MAX_LOGO: usize = 512 * 1024;

impl Logo {
    /// Reads `path`, which must be an SVG or a PNG.
    pub fn read(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|err| format!("{}: {err}", path.display()))?;
        if bytes.len() > MAX_LOGO {
            return Err(format!("{}: larger than 512 KiB", path.display()));
        }
        if let Some(aspect) = png_aspect(&bytes) {
            return Ok(Self {
                name: "/logo.png",
                bytes,
                aspect,
            });
        }
        let text = std::str::from_utf8(&bytes).unwrap_or_default();
        if text.contains("<svg") {
            let aspect = svg_aspect(text).unwrap_or(1.0);
            return Ok(Self {
                name: "/logo.svg",
                bytes,
                aspect,
            });
        }
        Err(format!("{}: expected an SVG or a PNG", path.display()))
    }
}

/// A PNG's width per height, from its header.
fn png_aspect(bytes: &[u8]) -> Option<f64> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    let header = bytes.strip_prefix(SIGNATURE)?.get(8..16)?;
    let width = u32::from_be_bytes(header[..4].try_into().ok()?);
    let height = u32::from_be_bytes(header[4..].try_into().ok()?);
    (width > 0 && height > 0).then(|| f64::from(width) / f64::from(height))
}

/// An SVG's width per height, from its `viewBox`.
fn svg_aspect(text: &str) -> Option<f64> {
    let at = text.find("viewBox=")? + "viewBox=".len();
    let quote = text[at..].chars().next()?;
    let rest = &text[at + 1..];
    let values: Vec<f64> = rest[..rest.find(quote)?]
        .split([' ', ','])
        .filter(|v| !v.is_empty())
        .filter_map(|v| v.parse().ok())
        .collect();
    match values[..] {
        [_, _, w, h] if w > 0.0 && h > 0.0 => Some(w / h),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_name_is_short_and_plain() {
        assert_eq!(
            "  Acme Login ".parse::<SiteName>().unwrap().to_string(),
            "Acme Login"
        );
        for bad in ["", "   ", "a\nb", &"x".repeat(65)] {
            assert!(bad.parse::<SiteName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_logo_is_an_svg_or_a_png_with_its_proportions() {
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("logo.svg");
        std::fs::write(
            &svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 40"></svg>"#,
        )
        .unwrap();
        let logo = Logo::read(&svg).unwrap();
        assert_eq!((logo.name, logo.aspect), ("/logo.svg", 3.0));
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&64u32.to_be_bytes());
        png.extend_from_slice(&32u32.to_be_bytes());
        let path = dir.path().join("logo.png");
        std::fs::write(&path, &png).unwrap();
        let logo = Logo::read(&path).unwrap();
        assert_eq!((logo.name, logo.aspect), ("/logo.png", 2.0));
        let gif = dir.path().join("logo.gif");
        std::fs::write(&gif, b"GIF89a").unwrap();
        assert!(
            Logo::read(&gif)
                .unwrap_err()
                .contains("expected an SVG or a PNG")
        );
    }
}
