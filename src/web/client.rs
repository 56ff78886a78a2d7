//! Who is asking: the client's address and, in a few words, its browser.

use std::net::IpAddr;
use std::sync::Arc;

use poem::web::RemoteAddr;
use poem::{FromRequest, Request, RequestBody};

use super::AppState;

/// The client's address as the outermost layer worked it out (through trusted
/// proxies, see [`crate::net::proxies`]), set on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The client of a request: who asks the account service for a check or a change.
pub use crate::accounts::Caller as Client;

impl<'a> FromRequest<'a> for Client {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let ip = match req.extensions().get::<ClientAddr>() {
            Some(ClientAddr(ip)) => Some(*ip),
            None => req.remote_addr().as_socket_addr().map(|addr| addr.ip()),
        };
        let device_cookie = req
            .data::<Arc<AppState>>()
            .and_then(|state| crate::cookies::find(req, state.accounts.devices.name()));
        Ok(Self {
            address: ip.map_or_else(|| address_of(req.remote_addr()), |ip| ip.to_string()),
            ip,
            browser: browser_of(req.header("user-agent").unwrap_or_default()),
            device_cookie,
        })
    }
}

/// The IP address of a peer (without the port).
fn address_of(remote: &RemoteAddr) -> String {
    remote
        .as_socket_addr()
        .map_or_else(|| remote.to_string(), |addr| addr.ip().to_string())
}

/// "Firefox on Linux", "Safari on iOS", "curl": a `User-Agent` in a few words, for a
/// person to recognise their own devices. Order matters: Edge and Opera also say
/// Chrome, Chrome also says Safari.
pub fn browser_of(agent: &str) -> String {
    const BROWSERS: [(&str, &str); 8] = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("Wget/", "Wget"),
    ];
    const SYSTEMS: [(&str, &str); 7] = [
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Android", "Android"),
        ("CrOS", "ChromeOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ];
    let find = |table: &[(&str, &'static str)]| {
        table
            .iter()
            .find(|(marker, _)| agent.contains(marker))
            .map(|(_, name)| *name)
    };
    match (find(&BROWSERS), find(&SYSTEMS)) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(browser), None) => browser.to_owned(),
        (None, Some(system)) => format!("A browser on {system}"),
        (None, None) => "An unknown browser".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::browser_of;

    #[test]
    fn common_browsers_are_named_with_their_systems() {
        for (agent, said) in [
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                "Firefox on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
                "Safari on iOS",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                "Chrome on macOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            ("curl/8.5.0", "curl"),
            ("", "An unknown browser"),
            ("<script>alert(1)</script>", "An unknown browser"),
        ] {
            assert_eq!(browser_of(agent), said, "{agent}");
        }
    }
}
