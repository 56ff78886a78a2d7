//! The accept loop and the deadlines of each connection.
//!
//! poem's `Server` accepts without limit, retries a failed `accept` at once (with the
//! descriptor limit reached that is a busy loop that serves nobody) and has no header
//! or body deadlines, so a client sending a byte now and then holds a connection for
//! ever. This loop, on the same hyper, adds:
//! - a cap on open connections, below the descriptor limit: at the cap it stops
//!   accepting (the kernel queues newcomers) until a connection closes;
//! - a cap per client address ([`PerClient`]): a connection over it is closed as soon
//!   as it is accepted, so one client cannot hold every slot;
//! - a back-off when `accept` fails for want of descriptors or memory: it waits for a
//!   connection to close (at most half a second), and says so in the log;
//! - a request head over 64 KiB is answered `431` before any handler sees it
//!   ([`head`](super::head): hyper's own bound is not exact);
//! - per connection, one watchdog and three deadlines: the request head must arrive
//!   within `header` of its first byte (and a new connection's within `header` of
//!   opening), an idle keep-alive connection closes after `idle`, and a request body
//!   must arrive within `body` of its head ([`BodyDeadline`], read by the form
//!   extractor). The handler itself has no deadline: slow work is not the client's
//!   fault, and scrypt has its own queue.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use hyper_util::rt::TokioIo;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint, Response};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use super::head::{self, MAX_HEAD_BYTES};
use super::per_client::{ClientSlot, PerClient};

/// How long a stopping server lets requests in flight finish.
const GRACE: Duration = Duration::from_secs(10);

/// The connection limits (`--header-timeout`, `--idle-timeout`, `--body-timeout`,
/// `--max-connections`, `--max-connections-per-client`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From a request's first byte (or the connection's opening) to its last header.
    pub header: Duration,
    /// How long a keep-alive connection may wait for its next request.
    pub idle: Duration,
    /// From a request's head to the last byte of its body.
    pub body: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections at most from one client address (trusted proxies aside).
    pub max_connections_per_client: usize,
}

/// The instant by which a request's body must have arrived.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub Instant);

/// The descriptor limit of this process (the soft `RLIMIT_NOFILE`), if it has one.
pub fn descriptor_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// A connection cap that leaves room under `descriptors`: each request may open a
/// session or user file (and Redis connections, logs and the listener need theirs),
/// so half of what remains after a small reserve.
pub fn default_max_connections(descriptors: Option<u64>) -> usize {
    descriptors.map_or(10_000, |limit| {
        usize::try_from(limit.saturating_sub(64) / 2)
            .unwrap_or(usize::MAX)
            .clamp(1, 1 << 20)
    })
}

/// A per-client cap that lets no client hold more than half of `max_connections`
/// (however small that is), and at most 64: enough for several browsers behind one
/// address, each opening its six.
pub fn default_max_connections_per_client(max_connections: usize) -> usize {
    (max_connections / 2).clamp(1, 64)
}

/// How many connections the kernel queues for us while we are at the cap (mio's
/// default of 128 would leave further clients retrying their SYN for minutes).
const BACKLOG: u32 = 1024;

/// Listens on `addr` (`host:port`; the first address it resolves to that binds).
pub async fn bind(addr: &str) -> io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(addr).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(err) => last = Some(err),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address to listen on")))
}

/// Serves `endpoint` on `listener` until `shutdown` resolves, then lets requests in
/// flight finish (for at most ten seconds). `clients` caps each client's connections.
pub async fn serve<E>(
    listener: TcpListener,
    endpoint: E,
    limits: Limits,
    clients: Arc<PerClient>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    E: Endpoint<Output = Response> + 'static,
{
    let endpoint = Arc::new(endpoint);
    let local = LocalAddr(listener.local_addr()?.into());
    let cap = limits.max_connections.clamp(1, u32::MAX as usize);
    let slots = Arc::new(Semaphore::new(cap));
    let closed = Arc::new(Notify::new());
    let (stop, stopping) = watch::channel(false);
    let mut at_cap = Warning::new();
    let mut starved = Warning::new();
    let mut over_client_cap = Warning::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                at_cap.warn(|waits| {
                    tracing::warn!(
                        max_connections = cap,
                        waits,
                        "connection limit reached; new connections wait until one closes"
                    );
                });
                tokio::select! {
                    () = &mut shutdown => break,
                    slot = slots.clone().acquire_owned() => slot.expect("never closed"),
                }
            }
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) if is_per_connection(&err) => continue,
            Err(err) => {
                // Out of descriptors (or memory): retrying at once would spin. The
                // pending connection stays queued in the kernel meanwhile.
                starved.warn(|waits| {
                    tracing::warn!(
                        error = %err,
                        waits,
                        "cannot accept connections; waiting for one to close"
                    );
                });
                tokio::select! {
                    () = &mut shutdown => break,
                    () = closed.notified() => {},
                    () = tokio::time::sleep(Duration::from_millis(500)) => {},
                }
                continue;
            }
        };
        let Some(client_slot) = clients.admit(peer.ip()) else {
            over_client_cap.warn(|refused| {
                tracing::warn!(
                    client = %peer.ip(),
                    max_connections_per_client = clients.max(),
                    refused,
                    "a client is at its connection cap; its new connections are closed"
                );
            });
            refuse(stream);
            continue; // its global slot goes back with `slot`
        };
        let connection = Connection {
            endpoint: endpoint.clone(),
            local: local.clone(),
            peer,
            limits,
            stopping: stopping.clone(),
            closed: closed.clone(),
            _client_slot: client_slot,
            _slot: slot,
        };
        tokio::spawn(connection.serve(stream));
    }
    drop(listener);
    let _ = stop.send(true);
    let all = u32::try_from(cap).unwrap_or(u32::MAX);
    if tokio::time::timeout(GRACE, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("requests still running after {GRACE:?}; stopping anyway");
    }
    Ok(())
}

/// Closes a connection just accepted with a reset: nothing is read or answered, and
/// no `TIME_WAIT` is left behind for a client that keeps trying.
fn refuse(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// An `accept` error that concerns only the connection being accepted (it was reset
/// before we took it): the next one may be fine.
fn is_per_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// A warning written at most every ten seconds, with how often it happened between.
struct Warning {
    last: Option<Instant>,
    since: u64,
}

impl Warning {
    fn new() -> Self {
        Self {
            last: None,
            since: 0,
        }
    }

    fn warn(&mut self, write: impl FnOnce(u64)) {
        self.since += 1;
        let now = Instant::now();
        if self
            .last
            .is_none_or(|last| now - last >= Duration::from_secs(10))
        {
            write(self.since);
            self.last = Some(now);
            self.since = 0;
        }
    }
}

/// One accepted connection and what it needs.
struct Connection<E> {
    endpoint: Arc<E>,
    local: LocalAddr,
    peer: SocketAddr,
    limits: Limits,
    stopping: watch::Receiver<bool>,
    closed: Arc<Notify>,
    /// Returned to its client's cap when the connection ends; declared (so dropped)
    /// before `_slot`, or the accept loop, woken by the global slot, could take the
    /// next connection while this client still seemed to hold its whole cap.
    _client_slot: ClientSlot,
    /// Returned to the cap when the connection ends.
    _slot: OwnedSemaphorePermit,
}

impl<E: Endpoint<Output = Response> + 'static> Connection<E> {
    async fn serve(mut self, stream: TcpStream) {
        self.run(stream).await;
        // The socket is closed by now: an accept waiting for a descriptor can go on.
        self.closed.notify_one();
    }

    async fn run(&mut self, stream: TcpStream) {
        // Pages are small and written at once: do not wait for more to fill a packet.
        let _ = stream.set_nodelay(true);
        let clock = Arc::new(Clock::new());
        let io = TokioIo::new(Watched {
            inner: stream,
            clock: clock.clone(),
        });
        let limits = self.limits;
        let service = {
            let (endpoint, local, clock) =
                (self.endpoint.clone(), self.local.clone(), clock.clone());
            let remote = RemoteAddr(self.peer.into());
            hyper::service::service_fn(move |req: hyper::Request<_>| {
                clock.set(Phase::Busy);
                let too_large = head::is_too_large(&req);
                let mut req =
                    poem::Request::from((req, local.clone(), remote.clone(), Scheme::HTTP));
                req.extensions_mut()
                    .insert(BodyDeadline(Instant::now() + limits.body));
                let (endpoint, clock) = (endpoint.clone(), clock.clone());
                async move {
                    let resp = if too_large {
                        head::too_large()
                    } else {
                        endpoint.get_response(req).await
                    };
                    let resp: hyper::Response<_> = resp.into();
                    Ok::<_, Infallible>(resp.map(|body| Tracked { body, clock }))
                }
            })
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        // The outer bound on what one connection buffers; the exact one is `head`'s.
        builder.max_buf_size(MAX_HEAD_BYTES);
        let mut conn = pin!(builder.serve_connection(io, service));
        let mut stopping = false;
        loop {
            tokio::select! {
                done = conn.as_mut() => {
                    if let Err(err) = done {
                        tracing::debug!(peer = %self.peer, error = %err, "connection ended");
                    }
                    break;
                }
                () = clock.began.notified() => {}
                () = tokio::time::sleep_until(clock.next_check(&limits)) => {
                    if let Some(why) = clock.expired(&limits) {
                        tracing::debug!(peer = %self.peer, why, "closing a connection");
                        break;
                    }
                }
                _ = self.stopping.changed(), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Where a connection is in its request cycle, and since when.
struct Clock {
    phase: AtomicU8,
    /// Wakes the watchdog when a request begins on an idle connection: the head's
    /// deadline is sooner than the idle one it was sleeping towards.
    began: Notify,
    /// Milliseconds since `origin` when the phase began.
    since: AtomicU64,
    origin: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    /// Reading a request head: it must be complete within `header`.
    Head = 0,
    /// A request is being handled or answered: no deadline here.
    Busy = 1,
    /// Between requests: the next must begin within `idle`.
    Idle = 2,
}

impl Clock {
    /// A new connection starts waiting for its first request's head.
    fn new() -> Self {
        Self {
            phase: AtomicU8::new(Phase::Head as u8),
            began: Notify::new(),
            since: AtomicU64::new(0),
            origin: Instant::now(),
        }
    }

    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Head,
            1 => Phase::Busy,
            _ => Phase::Idle,
        }
    }

    fn set(&self, phase: Phase) {
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.since.store(now, Ordering::Release);
        self.phase.store(phase as u8, Ordering::Release);
    }

    fn since(&self) -> Instant {
        self.origin + Duration::from_millis(self.since.load(Ordering::Acquire))
    }

    /// When the watchdog should look again.
    fn next_check(&self, limits: &Limits) -> Instant {
        match self.phase() {
            Phase::Head => self.since() + limits.header,
            Phase::Idle => self.since() + limits.idle,
            // No deadline while busy, but the phase will change without waking the
            // watchdog: look again after the shorter of the two.
            Phase::Busy => Instant::now() + limits.header.min(limits.idle),
        }
    }

    /// Why the connection must close now, if it must.
    fn expired(&self, limits: &Limits) -> Option<&'static str> {
        let now = Instant::now();
        match self.phase() {
            Phase::Head if now >= self.since() + limits.header => {
                Some("the request head did not arrive in time")
            }
            Phase::Idle if now >= self.since() + limits.idle => Some("idle"),
            _ => None,
        }
    }
}

/// The socket, telling the clock when a new request's first bytes arrive.
struct Watched {
    inner: TcpStream,
    clock: Arc<Clock>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before && self.clock.phase() == Phase::Idle {
            self.clock.set(Phase::Head);
            self.clock.began.notify_one();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A response body that, once written (hyper drops it), puts the connection back to
/// waiting for the next request.
struct Tracked<B> {
    body: B,
    clock: Arc<Clock>,
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        self.clock.set(Phase::Idle);
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_under_the_descriptor_limit() {
        assert_eq!(default_max_connections(Some(1024)), 480);
        assert_eq!(default_max_connections(Some(256)), 96);
        assert_eq!(default_max_connections(Some(10)), 1);
        assert_eq!(default_max_connections(None), 10_000);
    }

    #[test]
    fn no_client_may_hold_more_than_half_the_slots_nor_more_than_64() {
        assert_eq!(default_max_connections_per_client(10_000), 64);
        assert_eq!(default_max_connections_per_client(100), 50);
        assert_eq!(default_max_connections_per_client(20), 10);
        assert_eq!(default_max_connections_per_client(1), 1);
    }
}
