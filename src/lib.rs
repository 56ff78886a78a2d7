//! Wicket: a small, fast, secure login site.
//!
//! `main.rs` only parses the command line; everything else lives here so that the
//! integration tests drive exactly the code the binary runs. Layers, from the top:
//! `cli` and `app` wire things up; `web` serves pages; `accounts` holds the
//! sequences that check or change an account; `session` runs the session lifecycle;
//! `store` keeps records; the rest are small leaves they share.

/// The account service: each security sequence (check a secret, set a password,
/// delete, second factors) written once, for the handlers and the command line.
pub mod accounts;
/// Builds the poem application from a [`config::Config`] and runs it.
pub mod app;
/// `wicket backup` and `wicket restore`: the store and the keys, copied while serving.
pub mod backup;
/// The site's name and logo (`--site-name`, `--site-logo`).
pub mod brand;
/// What the binary does for each command: serve, `user …`, `migrate`.
pub mod cli;
/// Command-line flags and `WICKET_*` environment variables.
pub mod config;
/// Cookie naming and flags, shared by the session and CSRF cookies.
pub mod cookies;
/// Validated domain types: usernames, account ids, email addresses, passwords.
pub mod domain;
/// Durations as people type them (`30m`).
pub mod duration;
/// The one error type of a request and its status.
pub mod error;
/// Durable, private file writes: temp file, fsync, rename; owner-only modes.
pub mod fsutil;
/// Guarding other apps: access rules, forward-auth decisions, `rd`.
pub mod guard;
/// Mail: the outbox, its transports (SMTP, or a directory) and every mail's words.
pub mod mail;
/// `/metrics`: what Prometheus scrapes on `--metrics-addr`.
pub mod metrics;
/// `wicket migrate`: copying users and sessions between stores.
pub mod migrate;
/// The accept loop and connection limits, proxies, the public address.
pub mod net;
/// The OpenID Connect provider: clients, signing keys, codes and token families.
pub mod oidc;
/// scrypt hashing and verification off the async threads.
pub mod password;
/// The server's secret key and the sub-keys derived from it.
pub mod secret;
/// Server-side sessions: signed cookies, lifecycle, the middleware.
pub mod session;
/// The storage seam: interfaces, records, and the file and Redis backends.
pub mod store;
/// Rate limits (logins, codes, registrations, reset mails) over the store's counters.
pub mod throttle;
/// Authenticator-app codes (TOTP).
pub mod totp;
/// `wicket export` and `wicket import`: accounts as JSON Lines, htpasswd, Authelia.
pub mod transfer;
/// Routes, handlers and views.
pub mod web;
