use poem::http::header::SET_COOKIE;
use poem::{
    Endpoint, FromRequest, IntoResponse, Middleware, Request, RequestBody, Response, Result,
};

use super::{Session, Sessions};
use crate::error::AppError;

/// The session of the request, if any: put in the request by [`SessionLayer`].
#[derive(Debug, Clone, Default)]
pub struct CurrentSession(pub Option<Session>);

impl<'a> FromRequest<'a> for CurrentSession {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> Result<Self> {
        Ok(req.extensions().get::<Self>().cloned().unwrap_or_default())
    }
}

/// Maps the signed session cookie to its JSON file before the handler runs.
///
/// A cookie that is tampered with, unknown or expired yields no session, and the
/// response tells the browser to drop it (unless the handler set a cookie itself).
pub struct SessionLayer(pub Sessions);

impl<E: Endpoint> Middleware<E> for SessionLayer {
    type Output = SessionEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        SessionEndpoint {
            inner,
            sessions: self.0.clone(),
        }
    }
}

/// The endpoint [`SessionLayer`] wraps around the routes.
pub struct SessionEndpoint<E> {
    inner: E,
    sessions: Sessions,
}

impl<E: Endpoint> Endpoint for SessionEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Response> {
        let codec = self.sessions.codec();
        let presented = crate::cookies::find(&req, codec.name());
        let session = match &presented {
            Some(value) => match self.sessions.resume(value).await {
                Ok(session) => session,
                // Never "logged out" because the store is down: say so instead.
                Err(err) => {
                    let hx = crate::web::wants_fragment(&req);
                    return Ok(crate::error::render(AppError::from(err).into(), hx));
                }
            },
            None => None,
        };
        let stale = presented.is_some() && session.is_none();
        req.extensions_mut().insert(CurrentSession(session));

        let mut resp = self.inner.call(req).await?.into_response();
        let handler_set_it = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .any(|v| v.as_bytes().starts_with(codec.name().as_bytes()));
        if stale && !handler_set_it {
            resp.headers_mut().append(SET_COOKIE, codec.clear_cookie());
        }
        Ok(resp)
    }
}
