//! Wicket on the network: its own accept loop with connection limits (overall and per
//! client), the bound on a request's head, who the client is behind a reverse proxy,
//! and the one public address the site answers to.

pub mod head;
pub mod per_client;
pub mod proxies;
pub mod public_url;
pub mod server;

pub use self::per_client::PerClient;
pub use self::proxies::{ForwardedHeader, TrustedProxies};
pub use self::public_url::PublicUrl;
pub use self::server::{BodyDeadline, Limits};
