//! The session layer: maps the signed cookie to its session before the handler runs,
//! and sets or clears the cookie after it, as the handler's [`SessionChange`] says.

use poem::http::header::SET_COOKIE;
use poem::{
    Endpoint, FromRequest, IntoResponse, Middleware, Request, RequestBody, Response, Result,
};

use super::{Resumed, Session, Sessions};
use crate::error::AppError;
use crate::store::{EndReason, SessionId};

/// The session of the request, if any: put in the request by [`SessionLayer`].
#[derive(Debug, Clone, Default)]
pub struct CurrentSession(pub Option<Session>);

impl<'a> FromRequest<'a> for CurrentSession {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> Result<Self> {
        Ok(req.extensions().get::<Self>().cloned().unwrap_or_default())
    }
}

/// Why this browser's session ended, if it just did or a notice is waiting: for the
/// login form to say so. Put in the request by [`SessionLayer`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Notice(pub Option<EndReason>);

impl<'a> FromRequest<'a> for Notice {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> Result<Self> {
        Ok(req.extensions().get::<Self>().copied().unwrap_or_default())
    }
}

/// Put on a response that showed the [`Notice`]: it is dropped, told once.
#[derive(Debug, Clone, Copy)]
pub struct NoticeShown;

/// What a handler did to the browser's session, put on its response as an extension.
/// The store is already written; the [`SessionLayer`] only sets the cookie.
#[derive(Debug, Clone)]
pub enum SessionChange {
    /// A new session was started (login, registration): send its cookie, lasting the
    /// session's lifetime if the member asked to be remembered, else only until the
    /// browser closes (the server's idle and absolute limits apply either way).
    Started {
        /// The new session.
        id: SessionId,
        /// "Keep me logged in" was ticked.
        remember: bool,
    },
    /// The session was ended (logout, account deleted): make the browser forget the
    /// cookie, and tell it why on the next page.
    Ended(EndReason),
}

/// Maps the signed session cookie to its session before the handler runs.
///
/// A cookie that is tampered with, unknown or expired yields no session, and the
/// response tells the browser to drop it (unless the handler started a new one). When
/// the store cannot be asked, the request fails with a 503: never a silent logout.
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
        let (codec, notices) = (self.sessions.codec(), self.sessions.notices());
        // Several session cookies (one planted beside ours, e.g. by a sibling
        // subdomain, or a page's worth of them): a live one wins, whatever its place.
        // Every value's signature is checked before any store is asked, so forged ones
        // cannot push the real one out of reach, nor cost a store read each.
        let presented = crate::cookies::find_all(&req, codec.name());
        let mut resumed = Resumed::Unknown;
        for id in self.sessions.genuine(&presented) {
            match self.sessions.resume(id).await.map_err(AppError::from)? {
                live @ Resumed::Live(_) => {
                    resumed = live;
                    break;
                }
                ended @ Resumed::Ended(_) => resumed = ended,
                Resumed::Unknown => {}
            }
        }
        let (session, ended_now) = match resumed {
            Resumed::Live(session) => (Some(*session), None),
            Resumed::Ended(reason) => (None, Some(reason)),
            Resumed::Unknown => (None, None),
        };
        let stale = !presented.is_empty() && session.is_none();
        let waiting = crate::cookies::find(&req, notices.name());
        let notice = ended_now.or_else(|| waiting.as_deref().and_then(|v| notices.verify(v)));
        req.extensions_mut().insert(CurrentSession(session));
        req.extensions_mut().insert(Notice(notice));

        let mut resp = match self.inner.call(req).await {
            Ok(resp) => resp.into_response(),
            // A response carried as an error (the `Member` extractor's redirect to the
            // login form) is still an answer that may need the cookie cleared. Real
            // errors go on to the one renderer.
            Err(err) if err.is_from_response() => err.into_response(),
            Err(err) => return Err(err),
        };
        let (cookie, mut to_tell) = match resp.extensions().get::<SessionChange>() {
            Some(SessionChange::Started { id, remember }) => {
                let max_age = remember.then(|| self.sessions.lifetime());
                (Some(codec.set_cookie(id, max_age)), None)
            }
            Some(SessionChange::Ended(reason)) => (Some(codec.clear_cookie()), Some(*reason)),
            None => (stale.then(|| codec.clear_cookie()), ended_now),
        };
        let shown = resp.extensions().get::<NoticeShown>().is_some();
        if shown && to_tell == ended_now {
            to_tell = None; // this very page said it
        }
        let notice_cookie = match to_tell {
            Some(reason) => Some(notices.set_cookie(reason)),
            None => (shown && waiting.is_some()).then(|| notices.clear_cookie()),
        };
        for cookie in [cookie, notice_cookie].into_iter().flatten() {
            resp.headers_mut().append(SET_COOKIE, cookie);
        }
        Ok(resp)
    }
}
