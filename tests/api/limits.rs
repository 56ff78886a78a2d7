//! Connection limits: slow or idle clients are cut off at their deadline while others
//! are served, and running out of descriptors neither spins nor stops the server.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::binary::Binary;
use crate::helpers::*;

const SHORT: Duration = Duration::from_secs(1);

/// Far longer than any deadline here: a test fails rather than hangs.
const PATIENCE: Duration = Duration::from_secs(10);

async fn spawn_with_short_deadlines() -> TestApp {
    spawn_app_with(|c| {
        c.header_timeout = SHORT;
        c.idle_timeout = SHORT;
        c.body_timeout = SHORT;
    })
    .await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Waits until the server closes `stream` (end of stream or a reset), discarding
/// whatever it sends first; returns how long that took.
async fn closed_after(stream: &mut TcpStream, since: Instant) -> Duration {
    closed_within(stream, since, PATIENCE).await
}

/// The same, failing unless the server closes `stream` within `within`.
async fn closed_within(stream: &mut TcpStream, since: Instant, within: Duration) -> Duration {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the server did not close the connection within {within:?}"));
    since.elapsed()
}

/// Reads one response (head and `Content-Length` body) and returns its head.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed mid-response");
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data);
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .map_or(0, |v| v.trim().parse().unwrap());
            if data.len() >= end + 4 + length {
                return head;
            }
        }
    }
}

#[tokio::test]
async fn a_connection_that_never_sends_a_request_is_closed_at_the_header_deadline() {
    // The idle deadline far off: only the header deadline closes it within 5 s.
    let app = spawn_app_with(|c| {
        c.header_timeout = SHORT;
        c.idle_timeout = SHORT * 30;
    })
    .await;
    let opened = Instant::now();
    let mut silent = connect(&app).await;
    assert_eq!(
        app.get("/").await.status(),
        200,
        "others are served meanwhile"
    );
    let took = closed_within(&mut silent, opened, SHORT * 5).await;
    assert!(
        took >= SHORT - Duration::from_millis(50),
        "closed early: {took:?}"
    );
}

#[tokio::test]
async fn a_request_head_sent_a_byte_at_a_time_is_cut_off_at_its_deadline() {
    let app = spawn_with_short_deadlines().await;
    let stream = connect(&app).await;
    let (mut reading, mut writing) = stream.into_split();
    let started = Instant::now();
    // Slowloris: a header line now and then, never the blank line that ends the head.
    let trickle = tokio::spawn(async move {
        let _ = writing.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await;
        for n in 0.. {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writing
                .write_all(format!("X-{n}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    });
    assert_eq!(
        app.get("/").await.status(),
        200,
        "others are served meanwhile"
    );
    let mut buf = [0u8; 1024];
    tokio::time::timeout(PATIENCE, async {
        while let Ok(n) = reading.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
    .expect("the trickling client was cut off");
    let took = started.elapsed();
    trickle.abort();
    // Each byte did not restart the clock: the head had one second from its first byte.
    assert!(
        took >= SHORT - Duration::from_millis(50),
        "closed early: {took:?}"
    );
    assert!(
        took < SHORT * 3,
        "the deadline moved with each byte: {took:?}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_closes_but_a_busy_one_stays_open() {
    let app = spawn_with_short_deadlines().await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    // Busy: a request every 400 ms for well over the idle timeout, on one connection.
    let mut busy = connect(&app).await;
    let started = Instant::now();
    let mut answered = Instant::now();
    while started.elapsed() < SHORT * 3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        busy.write_all(request).await.unwrap();
        let head = read_response(&mut busy).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        answered = Instant::now();
    }
    // Then idle: closed once the idle timeout has passed since the last answer.
    let took = closed_after(&mut busy, answered).await;
    assert!(
        took >= SHORT - Duration::from_millis(50),
        "closed early: {took:?}"
    );
}

#[tokio::test]
async fn a_head_begun_on_a_kept_alive_connection_has_the_header_deadline_not_the_idle_one() {
    let app = spawn_app_with(|c| {
        c.header_timeout = SHORT;
        c.idle_timeout = SHORT * 8;
    })
    .await;
    let mut conn = connect(&app).await;
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_response(&mut conn).await;
    // Idle past the first head's deadline, so only the idle deadline is pending.
    tokio::time::sleep(SHORT * 3 / 2).await;
    let begun = Instant::now();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let took = closed_after(&mut conn, begun).await;
    assert!(
        took >= SHORT - Duration::from_millis(50),
        "closed early: {took:?}"
    );
    assert!(took < SHORT * 3, "the idle deadline applied: {took:?}");
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408_and_changes_nothing() {
    let app = spawn_with_short_deadlines().await;
    let mut slow = connect(&app).await;
    let started = Instant::now();
    slow.write_all(
        b"POST /register/ HTTP/1.1\r\nHost: x\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n\
          username=al",
    )
    .await
    .unwrap();
    assert_eq!(
        app.get("/").await.status(),
        200,
        "others are served meanwhile"
    );
    let head = tokio::time::timeout(PATIENCE, read_response(&mut slow))
        .await
        .expect("an answer");
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(started.elapsed() >= SHORT - Duration::from_millis(50));
    assert!(app.user_files().is_empty());
}

/// A blocking `GET /healthz` on a fresh connection: its status line.
fn health(base: &str) -> String {
    let mut stream = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

/// Holds `count` connections open against `server` (idle: no request sent) while
/// it logs `expected`, checks that it does not spin meanwhile, then lets them go and
/// checks that it serves again.
fn exhaust(server: &Binary, count: usize, expected: &str) {
    let addr = server.base.trim_start_matches("http://").to_owned();
    let held: Vec<std::net::TcpStream> = (0..count)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    server.wait_for_log(expected, PATIENCE);
    let (cpu, wall) = (server.cpu_time(), Instant::now());
    std::thread::sleep(Duration::from_secs(1));
    let used = server.cpu_time() - cpu;
    assert!(
        used < wall.elapsed() / 4,
        "the server used {used:?} of CPU in {:?} while it could not accept",
        wall.elapsed()
    );
    drop(held);
    assert_eq!(health(&server.base), "HTTP/1.1 200 OK");
}

#[test]
fn at_the_connection_cap_the_server_waits_without_spinning_and_serves_again() {
    let dir = tempfile::tempdir().unwrap();
    // 128 descriptors: the default cap is (128 - 64) / 2 = 32 connections. Every
    // connection here is from one address, so its own cap is lifted to the overall one.
    let server = Binary::start_limited(
        dir.path(),
        &[
            "--header-timeout",
            "60s",
            "--max-connections-per-client",
            "1000",
        ],
        Some(128),
    );
    exhaust(&server, 200, "connection limit reached");
}

#[test]
fn out_of_descriptors_the_server_backs_off_without_spinning_and_serves_again() {
    let dir = tempfile::tempdir().unwrap();
    // A cap above what 128 descriptors allow: accept itself fails (EMFILE).
    let server = Binary::start_limited(
        dir.path(),
        &[
            "--header-timeout",
            "60s",
            "--max-connections",
            "1000",
            "--max-connections-per-client",
            "1000",
        ],
        Some(128),
    );
    server.wait_for_log("leaves no room under the descriptor limit", PATIENCE);
    exhaust(&server, 200, "cannot accept connections");
}

/// A `GET path` head of exactly `total` bytes, padded with one cookie, on a fresh
/// connection: the status line of the answer.
async fn status_for_head_of(app: &TestApp, path: &str, total: usize) -> String {
    let start = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: x=");
    let end = "\r\n\r\n";
    let pad = total
        .checked_sub(start.len() + end.len())
        .expect("room for the padding");
    let head = format!("{start}{}{end}", "a".repeat(pad));
    assert_eq!(head.len(), total);
    let mut stream = connect(app).await;
    // The server may answer and close before it has read everything: a failed
    // write still leaves its answer to read.
    let _ = stream.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("an answer");
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or("no answer").to_owned()
}

#[tokio::test]
async fn a_request_head_over_64_kib_gets_431_and_one_of_64_kib_is_served() {
    const LIMIT: usize = 64 * 1024;
    let app = spawn_app().await;
    for total in [LIMIT - 1024, LIMIT] {
        let status = status_for_head_of(&app, "/", total).await;
        assert_eq!(status, "HTTP/1.1 200 OK", "a head of {total} bytes");
    }
    for total in [LIMIT + 1, LIMIT + 1024, 100 * 1024] {
        let status = status_for_head_of(&app, "/", total).await;
        assert!(
            status.starts_with("HTTP/1.1 431"),
            "a head of {total} bytes: {status}"
        );
    }
    // The request line counts too: a long path (unknown, else a 404) is refused alike.
    let long = format!("/{}", "p".repeat(LIMIT / 2));
    let status = status_for_head_of(&app, &long, LIMIT + 1).await;
    assert!(status.starts_with("HTTP/1.1 431"), "a long path: {status}");
}

/// A connection to `app` from `source`, a loopback address other than 127.0.0.1 if
/// need be (Linux routes all of 127/8 to the loopback device).
async fn connect_from(app: &TestApp, source: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let server = app.base.trim_start_matches("http://").parse().unwrap();
    socket.connect(server).await.unwrap()
}

/// Sends `GET /healthz` on `stream`: whether a `200` came back within `within` (not
/// if the server closed the connection or kept it waiting). The connection stays
/// open, kept alive.
async fn served_within(stream: &mut TcpStream, within: Duration) -> bool {
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    if stream.write_all(request).await.is_err() {
        return false;
    }
    let answer = async {
        let mut data = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
            // /healthz answers "ok\n": the whole answer ends with it.
            if data.ends_with(b"\r\n\r\nok\n") {
                return data.starts_with(b"HTTP/1.1 200");
            }
        }
    };
    tokio::time::timeout(within, answer).await.unwrap_or(false)
}

/// Opens `count` connections from `source`, one after another, each sending a request
/// and, if served, kept alive: the connections that were served.
async fn hold(app: &TestApp, source: &str, count: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..count {
        let mut stream = connect_from(app, source).await;
        if served_within(&mut stream, Duration::from_secs(2)).await {
            held.push(stream);
        }
    }
    held
}

#[tokio::test]
async fn one_client_holding_its_connections_leaves_room_for_a_newcomer() {
    let app = spawn_app_with(|c| {
        c.max_connections = Some(8);
        c.max_connections_per_client = Some(4);
    })
    .await;
    // One address tries for every slot and keeps what it gets alive and busy.
    let hog = hold(&app, "127.0.0.1", 8).await;
    let mut newcomer = connect_from(&app, "127.0.0.2").await;
    assert!(
        served_within(&mut newcomer, Duration::from_secs(2)).await,
        "a newcomer from another address was not served within 2 s"
    );
    assert_eq!(hog.len(), 4, "the first address held more than its cap");
}

#[tokio::test]
async fn a_trusted_proxy_is_not_held_to_the_per_client_cap() {
    let app = spawn_app_with(|c| {
        c.max_connections = Some(16);
        c.max_connections_per_client = Some(4);
        c.trusted_proxies = "127.0.0.1".parse().unwrap();
    })
    .await;
    // The proxy carries many clients: all of its connections are served …
    let proxy = hold(&app, "127.0.0.1", 8).await;
    assert_eq!(proxy.len(), 8, "the trusted proxy was capped");
    // … while another address is held to its cap.
    let client = hold(&app, "127.0.0.2", 6).await;
    assert_eq!(client.len(), 4, "an untrusted address was not capped");
}
