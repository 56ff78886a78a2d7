//! Anti-CSRF tokens without server state: a signed double-submit.
//!
//! Each browser gets a random `wicket_csrf` cookie (HttpOnly, SameSite=Lax); every form
//! carries `HMAC-SHA256(key, cookie)` in a hidden `csrf` field. A forged cross-site POST
//! can send the cookie but cannot read it, so it cannot produce the field; and without
//! the server key the field cannot be derived from a planted cookie either. Anonymous
//! visitors thus get protection without a session file each. The cookie is replaced at
//! login and logout, so tokens from before then stop working.

use std::sync::Arc;

use hmac::Mac;
use poem::http::HeaderValue;
use poem::http::header::SET_COOKIE;
use poem::{Endpoint, FromRequest, IntoResponse, Middleware, Request, RequestBody, Response};

use crate::cookies::{self, CookiePolicy};
use crate::secret::{SubKey, hex, random_bytes, unhex};

/// The key and cookie settings for CSRF tokens.
#[derive(Clone, Debug)]
pub struct CsrfKeys {
    key: SubKey,
    policy: CookiePolicy,
    name: String,
}

impl CsrfKeys {
    /// Tokens signed with `key`, cookies shaped by `policy`.
    pub fn new(key: SubKey, policy: CookiePolicy) -> Self {
        Self {
            key,
            policy,
            name: policy.name("wicket_csrf"),
        }
    }

    fn token_for(&self, secret: &str) -> String {
        let mut mac = self.key.mac();
        mac.update(secret.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    fn new_cookie(&self) -> (String, HeaderValue) {
        let secret = hex(&random_bytes::<32>());
        let header = self.policy.set(&self.name, &secret, None);
        (secret, header)
    }
}

/// This request's CSRF state: put in the request by [`CsrfLayer`].
#[derive(Clone, Debug)]
pub struct Csrf {
    keys: Arc<CsrfKeys>,
    secret: String,
}

impl Csrf {
    /// The value for the hidden `csrf` field of a form.
    pub fn token(&self) -> String {
        self.keys.token_for(&self.secret)
    }

    /// Whether `submitted` is this browser's token (compared in constant time).
    pub fn verify(&self, submitted: &str) -> bool {
        let Some(tag) = unhex(submitted) else {
            return false;
        };
        let mut mac = self.keys.key.mac();
        mac.update(self.secret.as_bytes());
        mac.verify_slice(&tag).is_ok()
    }

    /// A `Set-Cookie` with a fresh secret (at login and logout).
    pub fn rotate(&self) -> HeaderValue {
        self.rotated().1
    }

    /// A fresh secret: the state forms rendered in the same response must use, and
    /// the `Set-Cookie` that gives it to the browser.
    pub fn rotated(&self) -> (Self, HeaderValue) {
        let (secret, header) = self.keys.new_cookie();
        let fresh = Self {
            keys: self.keys.clone(),
            secret,
        };
        (fresh, header)
    }
}

impl<'a> FromRequest<'a> for Csrf {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        req.extensions()
            .get::<Self>()
            .cloned()
            .ok_or_else(|| crate::error::AppError::internal("CsrfLayer is not installed").into())
    }
}

/// Gives every page request a CSRF secret, issuing the cookie when the browser has none.
pub struct CsrfLayer(pub CsrfKeys);

impl<E: Endpoint> Middleware<E> for CsrfLayer {
    type Output = CsrfEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        CsrfEndpoint {
            inner,
            keys: Arc::new(self.0.clone()),
        }
    }
}

/// The endpoint [`CsrfLayer`] wraps around the routes.
pub struct CsrfEndpoint<E> {
    inner: E,
    keys: Arc<CsrfKeys>,
}

impl<E: Endpoint> Endpoint for CsrfEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let presented = cookies::find(&req, &self.keys.name)
            .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()));
        let (secret, issue) = match presented {
            Some(secret) => (secret, None),
            None => {
                let (secret, header) = self.keys.new_cookie();
                (secret, Some(header))
            }
        };
        req.extensions_mut().insert(Csrf {
            keys: self.keys.clone(),
            secret,
        });
        let mut resp = self.inner.call(req).await?.into_response();
        if let Some(header) = issue {
            resp.headers_mut().append(SET_COOKIE, header);
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretKey;

    fn csrf(secret: &str) -> Csrf {
        let key = SecretKey::new(vec![7; 32]).unwrap().derive("csrf");
        Csrf {
            keys: Arc::new(CsrfKeys::new(key, CookiePolicy::new(false))),
            secret: secret.into(),
        }
    }

    #[test]
    fn a_token_verifies_for_its_own_cookie_only() {
        let mine = csrf(&"a".repeat(64));
        let theirs = csrf(&"b".repeat(64));
        assert!(mine.verify(&mine.token()));
        assert!(!mine.verify(&theirs.token()));
        assert!(!mine.verify(""));
        assert!(!mine.verify("zz"));
        assert!(!mine.verify(&mine.token()[..62]));
    }
}
