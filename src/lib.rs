//! Wicket: a small, fast, secure login site.
//!
//! `main.rs` only parses the command line; everything else lives here so that the
//! integration tests drive exactly the code the binary runs.

/// Builds the poem application from a [`config::Config`] and runs it.
pub mod app;
/// Command-line flags and `WICKET_*` environment variables.
pub mod config;
/// Cookie naming and flags, shared by the session and CSRF cookies.
pub mod cookies;
/// Validated domain types: usernames and passwords.
pub mod domain;
/// The one error type and how it maps to a status and a page.
pub mod error;
/// Durable file writes: temp file, fsync, rename.
pub mod fsutil;
/// `wicket migrate`: copying users and sessions between stores.
pub mod migrate;
/// scrypt hashing and verification off the async threads.
pub mod password;
/// Sessions and users in Redis, for several instances.
pub mod redis_store;
/// The server's secret key and the sub-keys derived from it.
pub mod secret;
/// Server-side sessions: signed cookies, JSON files, the middleware.
pub mod session;
/// The storage seam: which backend, and how it fails.
pub mod store;
/// In-memory, bounded rate limits for logins and registrations.
pub mod throttle;
/// The user store.
pub mod users;
/// Routes, handlers and views.
pub mod web;
