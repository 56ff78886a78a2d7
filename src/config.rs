//! Command-line flags and `WICKET_*` environment variables: one typed `Config`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::duration::parse_duration;
use crate::mail::SmtpUrl;
use crate::net::{ForwardedHeader, PublicUrl, TrustedProxies};
use crate::store::StoreKind;
use crate::throttle::LimitSetting;

/// Command line of the `wicket` binary.
#[derive(Debug, Parser)]
#[command(name = "wicket", version, about = "A small, fast, secure login site")]
pub struct Cli {
    /// Server settings (also used by subcommands that touch the stores).
    #[command(flatten)]
    pub config: Config,
    /// What to do; without one, serve the site.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands besides serving.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage users.
    User {
        /// What to do with users.
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Groups: which exist.
    Group {
        /// What to do with groups.
        #[command(subcommand)]
        action: GroupCommand,
    },
    /// Invitations to register (for `--registration invite`).
    Invite {
        /// What to do with invitations.
        #[command(subcommand)]
        action: InviteCommand,
    },
    /// Access rules (`--access-rules`): check a file, or explain a decision.
    Rules {
        /// What to do with the rules.
        #[command(subcommand)]
        action: RulesCommand,
    },
    /// The OpenID Connect provider: signing keys and client secrets.
    Oidc {
        /// What to do.
        #[command(subcommand)]
        action: OidcCommand,
    },
    /// Copy every user and live session from one store to another.
    Migrate {
        /// The store to copy from (`files`, with --data-dir and --sessions-dir).
        #[arg(long)]
        from: StoreKind,
        /// The store to copy to, e.g. `redis://127.0.0.1:6379/0`.
        #[arg(long)]
        to: StoreKind,
    },
    /// Copy the store and the keys into DIR, while the site serves (DIR then holds the
    /// secret key: keep it as safe as the server).
    Backup {
        /// A new or empty directory.
        dir: std::path::PathBuf,
        /// Copy the live sessions too (members stay logged in after a restore).
        #[arg(long)]
        sessions: bool,
    },
    /// Restore a backup made by `wicket backup` into this (empty) store.
    Restore {
        /// The backup's directory.
        dir: std::path::PathBuf,
        /// Restore into a store that is not empty: what it holds is replaced.
        #[arg(long)]
        force: bool,
    },
    /// Write every account as JSON Lines to stdout (PHC hashes, groups, confirmed
    /// email; no second-factor secrets without --with-secrets).
    Export {
        /// Also write the sealed authenticator key, recovery-code hashes and passkeys.
        #[arg(long)]
        with_secrets: bool,
    },
    /// Create accounts from FILE: `wicket export`'s JSON Lines, an Apache htpasswd
    /// file (bcrypt), or Authelia's users_database.yml (argon2id). Foreign hashes are
    /// kept, checked at each member's next login, then replaced by scrypt.
    Import {
        /// The file to read.
        file: std::path::PathBuf,
        /// FILE is an htpasswd file (`name:$2y$…` lines).
        #[arg(long, conflicts_with = "authelia")]
        htpasswd: bool,
        /// FILE is Authelia's users_database.yml.
        #[arg(long)]
        authelia: bool,
    },
}

/// `wicket user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from the terminal (without echo) or stdin.
    Add {
        /// The new user's name.
        name: String,
    },
    /// List every user's name.
    List,
    /// List a user's live sessions: started, last active, browser, address.
    Sessions {
        /// The user's name.
        name: String,
    },
    /// End every session of a user (each browser is told why).
    Logout {
        /// The user's name.
        name: String,
    },
    /// Set a user's password (read like `add`'s) and end every session of theirs.
    Passwd {
        /// The user's name.
        name: String,
    },
    /// Delete a user and end every session of theirs; the name can be registered again.
    Delete {
        /// The user's name.
        name: String,
    },
    /// Everything the operator may need to know about a user's account.
    Show {
        /// The user's name.
        name: String,
        /// As one JSON object, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Disable an account: no login, every session and app token ends at once.
    Disable {
        /// The user's name.
        name: String,
    },
    /// Enable a disabled account again.
    Enable {
        /// The user's name.
        name: String,
    },
    /// Clear the guesses counted against an account (and say how many there were).
    Unlock {
        /// The user's name.
        name: String,
    },
    /// Remove a member's two-step login and passkeys (lost phone and recovery codes);
    /// ends their sessions and mails them.
    ResetTwoStep {
        /// The user's name.
        name: String,
    },
    /// Ask for a new password: the next login leads to the change-password form first.
    RequirePasswordChange {
        /// The user's name.
        name: String,
    },
    /// Put a user in a group or take them out (`wicket user group NAME add admins`).
    Group {
        /// The user's name.
        name: String,
        /// `add` or `remove`.
        change: GroupChange,
        /// The group's name.
        group: String,
    },
}

/// What `wicket user group` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupChange {
    /// Put the user in the group.
    Add,
    /// Take the user out of the group.
    Remove,
}

/// `wicket group ...`
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Every group that has members, with its members.
    List,
}

/// `wicket invite ...`
#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// Make an invitation and print its link.
    Create {
        /// A group the new account joins (repeat for several).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// How long the link works (e.g. 12h, 7d).
        #[arg(long, default_value = "7d", value_parser = parse_duration)]
        expires: Duration,
        /// How many accounts it may create.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        uses: u32,
    },
    /// Every invitation still open: its id, groups, uses and expiry.
    List,
    /// Withdraw an invitation (by the id `list` shows).
    Revoke {
        /// The invitation's id.
        id: String,
    },
}

/// `wicket rules ...`
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Check a rules file: every rule, or the first mistake with its line.
    Check {
        /// The file.
        file: PathBuf,
    },
    /// Which rule applies to a URL and what it decides (for a member with `--user`).
    Explain {
        /// The page, e.g. `https://wiki.example.com/admin`.
        url: String,
        /// Decide for this member (their groups; a second factor is assumed used).
        #[arg(long)]
        user: Option<String>,
        /// The request's method.
        #[arg(long, default_value = "GET")]
        method: String,
    },
}

/// `wicket oidc ...`
#[derive(Debug, Subcommand)]
pub enum OidcCommand {
    /// Add a new signing key pair (RS256 and EdDSA) to the data directory; the old
    /// keys stay published until the tokens they signed expire. Reload the server
    /// (SIGHUP) to sign with the new ones.
    RotateKey,
    /// Print a new client secret and the `secret_hash` to put in the clients file.
    ClientSecret,
}

/// Who may create an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Registration {
    /// Anyone (within the per-address limit).
    Open,
    /// Only with an invitation link (`wicket invite create`).
    Invite,
    /// Nobody: the operator adds users (`wicket user add`).
    Closed,
}

/// Every setting of a running Wicket: flags, each with a `WICKET_*` environment fallback.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Where sessions and users live: `files` (the directories below) or
    /// `redis://HOST:PORT/DB`, shared by several instances.
    #[arg(long, global = true, env = "WICKET_STORE", default_value = "files")]
    pub store: StoreKind,

    /// Prefix of every Redis key, so that several sites can share one Redis.
    #[arg(
        long,
        global = true,
        env = "WICKET_STORE_PREFIX",
        default_value = "wicket"
    )]
    pub store_prefix: String,

    /// Address to listen on (host:port).
    #[arg(
        long,
        global = true,
        env = "WICKET_ADDR",
        default_value = "127.0.0.1:5000"
    )]
    pub addr: String,

    /// Directory holding one JSON file per session.
    #[arg(
        long,
        global = true,
        env = "WICKET_SESSIONS_DIR",
        default_value = "sessions"
    )]
    pub sessions_dir: PathBuf,

    /// Directory holding the user store and, by default, the secret key.
    #[arg(long, global = true, env = "WICKET_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Directory served under /static.
    #[arg(
        long,
        global = true,
        env = "WICKET_STATIC_DIR",
        default_value = "static"
    )]
    pub static_dir: PathBuf,

    /// File holding the hex-encoded secret key [default: <data dir>/secret.key, created if missing].
    #[arg(long, global = true, env = "WICKET_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,

    /// A session ends after this long without a request (e.g. 90s, 30m, 12h, 7d).
    #[arg(long, global = true, env = "WICKET_SESSION_IDLE", default_value = "30m", value_parser = parse_duration)]
    pub session_idle: Duration,

    /// A session ends this long after login, however active.
    #[arg(long, global = true, env = "WICKET_SESSION_LIFETIME", default_value = "7d", value_parser = parse_duration)]
    pub session_lifetime: Duration,

    /// scrypt cost: log2 of N (r=8, p=1). 17 uses 128 MiB and ~0.35 s per hash.
    #[arg(long, global = true, env = "WICKET_SCRYPT_LOG_N", default_value_t = 17,
          value_parser = clap::value_parser!(u8).range(1..=22))]
    pub scrypt_log_n: u8,

    /// Failed logins allowed per account per window (a client address gets 4x), or `off`.
    #[arg(
        long,
        global = true,
        env = "WICKET_THROTTLE_LOGIN",
        default_value = "5/15m"
    )]
    pub throttle_login: LimitSetting,

    /// Registrations allowed per client address per window, or `off`.
    #[arg(
        long,
        global = true,
        env = "WICKET_THROTTLE_REGISTER",
        default_value = "10/1h"
    )]
    pub throttle_register: LimitSetting,

    /// Password-reset mails asked for per account (name or address typed) per
    /// window (a client address gets 4x), or `off`.
    #[arg(
        long,
        global = true,
        env = "WICKET_THROTTLE_FORGOT",
        default_value = "3/1h"
    )]
    pub throttle_forgot: LimitSetting,

    /// IPv6 clients are limited per network of this many leading bits (one host is
    /// usually given a whole /64); IPv4 clients per address.
    #[arg(long, global = true, env = "WICKET_THROTTLE_IPV6_PREFIX", default_value_t = 64,
          value_parser = clap::value_parser!(u8).range(16..=128))]
    pub throttle_ipv6_prefix: u8,

    /// How often expired session files are deleted.
    #[arg(long, global = true, env = "WICKET_SWEEP_INTERVAL", default_value = "1m", value_parser = parse_duration)]
    pub sweep_interval: Duration,

    /// Share the login with apps under this domain (e.g. `example.com`): the session
    /// cookie becomes `__Secure-wicket_session` with this `Domain`. Needs
    /// --secure-cookies [default: the cookie stays on Wicket's own host].
    #[arg(long, global = true, env = "WICKET_COOKIE_DOMAIN", value_parser = parse_cookie_domain)]
    pub cookie_domain: Option<String>,

    /// Access rules for the apps Wicket guards (TOML; `wicket rules check FILE`);
    /// reloaded on SIGHUP [default: none, every guarded request is denied].
    #[arg(long, global = true, env = "WICKET_ACCESS_RULES")]
    pub access_rules: Option<PathBuf>,

    /// The apps that may log people in through Wicket's OpenID Connect provider
    /// (TOML, one `[[client]]` table each); reloaded on SIGHUP [default: none, the
    /// provider is off].
    #[arg(long, global = true, env = "WICKET_OIDC_CLIENTS")]
    pub oidc_clients: Option<PathBuf>,

    /// The site's name: page titles, the header, mails, the authenticator app's entry
    /// and the passkeys' relying party.
    #[arg(long, global = true, env = "WICKET_SITE_NAME", default_value_t)]
    pub site_name: crate::brand::SiteName,

    /// An SVG or PNG shown in the header in place of Wicket's mark (served
    /// fingerprinted, like the static files) [default: Wicket's mark].
    #[arg(long, global = true, env = "WICKET_SITE_LOGO")]
    pub site_logo: Option<PathBuf>,

    /// Where to report a security problem (an address, or a mailto:, https:// or tel:
    /// URI): served as `/.well-known/security.txt` (RFC 9116) [default: none, no file].
    #[arg(long, global = true, env = "WICKET_SECURITY_CONTACT")]
    pub security_contact: Option<crate::web::well_known::SecurityContact>,

    /// Serve Prometheus metrics at `/metrics` on this address (e.g. `127.0.0.1:9150`):
    /// a listener of its own, never the site's, for the monitoring network only
    /// [default: off].
    #[arg(long, global = true, env = "WICKET_METRICS_ADDR")]
    pub metrics_addr: Option<String>,

    /// Who may register: `open`, `invite` (with a link from `wicket invite create`)
    /// or `closed`.
    #[arg(long, global = true, env = "WICKET_REGISTRATION", value_enum,
          default_value_t = Registration::Open)]
    pub registration: Registration,

    /// The site is served over TLS: `Secure` + `__Host-` cookies and HSTS.
    #[arg(long, global = true, env = "WICKET_SECURE_COOKIES")]
    pub secure_cookies: bool,

    /// How many scrypt hashes may run at once [default: the number of CPUs].
    #[arg(long, global = true, env = "WICKET_SCRYPT_CONCURRENCY",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub scrypt_concurrency: Option<u16>,

    /// Reverse proxies whose X-Forwarded-For / Forwarded headers are believed:
    /// comma-separated addresses and networks, e.g. `127.0.0.1,10.0.0.0/8` [default: none].
    #[arg(
        long,
        global = true,
        env = "WICKET_TRUSTED_PROXIES",
        default_value = "",
        hide_default_value = true
    )]
    pub trusted_proxies: TrustedProxies,

    /// Which header trusted proxies write the client's address into: `auto`
    /// (X-Forwarded-For when present, else Forwarded), `x-forwarded-for` or `forwarded`.
    #[arg(long, global = true, env = "WICKET_FORWARDED_HEADER", value_enum,
          default_value_t = ForwardedHeader::Auto)]
    pub forwarded_header: ForwardedHeader,

    /// The site's address as visitors see it, e.g. `https://login.example.com`:
    /// requests for another Host get 421, forms must come from this origin, and
    /// links that leave the site use it. With a domain name (not an IP address)
    /// passkeys are on, for this site.
    #[arg(long, global = true, env = "WICKET_PUBLIC_URL")]
    pub public_url: Option<PublicUrl>,

    /// A request's head must arrive within this long of its first byte (a new
    /// connection's, of its opening).
    #[arg(long, global = true, env = "WICKET_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// A keep-alive connection waiting this long for its next request is closed.
    #[arg(long, global = true, env = "WICKET_IDLE_TIMEOUT", default_value = "75s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// A request's body must arrive within this long of its head (else 408).
    #[arg(long, global = true, env = "WICKET_BODY_TIMEOUT", default_value = "15s", value_parser = parse_duration)]
    pub body_timeout: Duration,

    /// Open connections at most; more wait in the kernel's queue [default: half the
    /// descriptor limit less a reserve of 64, so files can always be opened].
    #[arg(long, global = true, env = "WICKET_MAX_CONNECTIONS",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,

    /// Open connections at most from one client address (an IPv6 client's network,
    /// per --throttle-ipv6-prefix), so that one client cannot hold every slot; more
    /// are closed at once. Trusted proxies are exempt: each carries many clients
    /// [default: 64, or half of --max-connections if less; never above it].
    #[arg(long, global = true, env = "WICKET_MAX_CONNECTIONS_PER_CLIENT",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_client: Option<u32>,

    /// Log lines as `text` or `json` (one object per line, for a log shipper).
    #[arg(long, global = true, env = "WICKET_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// The SMTP server for verification, reset and notice mails: `smtp://HOST:PORT`
    /// (plain), `smtp://HOST:PORT?tls=required` (STARTTLS) or `smtps://HOST:PORT`.
    /// Credentials come from WICKET_SMTP_USER and WICKET_SMTP_PASSWORD_FILE. Needs
    /// --mail-from and --public-url [default: no mail; no email fields or resets].
    #[arg(
        long,
        global = true,
        env = "WICKET_SMTP_URL",
        conflicts_with = "mail_dir"
    )]
    pub smtp_url: Option<SmtpUrl>,

    /// The sender of Wicket's mails, e.g. `Wicket <no-reply@example.com>`.
    #[arg(long, global = true, env = "WICKET_MAIL_FROM")]
    pub mail_from: Option<String>,

    /// For development: write each mail as a `.eml` file in this directory instead
    /// of sending it.
    #[arg(long, global = true, env = "WICKET_MAIL_DIR")]
    pub mail_dir: Option<PathBuf>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per event.
    Json,
}

/// A cookie domain: a lower-case host name with at least one dot (a leading dot is
/// dropped, as browsers do).
fn parse_cookie_domain(text: &str) -> Result<String, String> {
    let name = text.strip_prefix('.').unwrap_or(text).to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.contains('.')
        && name.split('.').all(label_ok)
        && !name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        Ok(name)
    } else {
        Err(format!(
            "expected a domain name such as example.com (with a dot, no port), found {text:?}"
        ))
    }
}

impl Config {
    /// Where the secret key lives.
    pub fn secret_key_path(&self) -> PathBuf {
        self.secret_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secret.key"))
    }

    /// The connection limits.
    pub fn limits(&self) -> crate::net::Limits {
        use crate::net::server::{
            default_max_connections, default_max_connections_per_client, descriptor_limit,
        };
        let max_connections = self.max_connections.map_or_else(
            || default_max_connections(descriptor_limit()),
            |max| max as usize,
        );
        // Above the overall cap a per-client cap would mean nothing: it is cut to it.
        let max_connections_per_client = self
            .max_connections_per_client
            .map_or_else(
                || default_max_connections_per_client(max_connections),
                |max| max as usize,
            )
            .min(max_connections);
        crate::net::Limits {
            header: self.header_timeout,
            idle: self.idle_timeout,
            body: self.body_timeout,
            max_connections,
            max_connections_per_client,
        }
    }

    /// The per-client connection cap of [`limits`](Self::limits), with the proxies it
    /// exempts and how IPv6 clients are grouped.
    pub fn per_client(&self) -> std::sync::Arc<crate::net::PerClient> {
        crate::net::PerClient::new(
            self.limits().max_connections_per_client,
            self.trusted_proxies.clone(),
            self.throttle_ipv6_prefix,
        )
    }

    /// How many scrypt hashes may run at once.
    pub fn scrypt_permits(&self) -> usize {
        self.scrypt_concurrency.map_or_else(
            || std::thread::available_parallelism().map_or(2, |n| n.get()),
            usize::from,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_readme() {
        let cli = Cli::try_parse_from(["wicket"]).unwrap();
        let config = cli.config;
        assert_eq!(config.addr, "127.0.0.1:5000");
        assert_eq!(config.session_idle, Duration::from_secs(30 * 60));
        assert_eq!(config.session_lifetime, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(config.scrypt_log_n, 17);
        assert_eq!(config.secret_key_path(), PathBuf::from("data/secret.key"));
        assert_eq!(config.throttle_login.to_string(), "5/900s");
        assert_eq!(config.throttle_register.to_string(), "10/3600s");
        assert_eq!(config.sweep_interval, Duration::from_secs(60));
        assert!(!config.secure_cookies);
        assert_eq!(config.store, StoreKind::Files);
        assert!(config.trusted_proxies.is_empty());
        assert_eq!(config.forwarded_header, ForwardedHeader::Auto);
        assert_eq!(config.public_url, None);
        assert_eq!(config.header_timeout, Duration::from_secs(10));
        assert_eq!(config.idle_timeout, Duration::from_secs(75));
        assert_eq!(config.body_timeout, Duration::from_secs(15));
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.throttle_ipv6_prefix, 64);
        assert_eq!(config.max_connections_per_client, None);
        assert_eq!(config.registration, Registration::Open);
        assert_eq!(config.cookie_domain, None);
        assert_eq!(config.access_rules, None);
    }

    #[test]
    fn the_per_client_cap_is_64_and_never_above_the_overall_cap() {
        let parse = |args: &[&str]| {
            let cli = Cli::try_parse_from([&["wicket"], args].concat()).unwrap();
            cli.config.limits().max_connections_per_client
        };
        assert_eq!(parse(&["--max-connections", "10000"]), 64);
        assert_eq!(parse(&["--max-connections", "20"]), 10);
        let both = ["--max-connections", "20", "--max-connections-per-client"];
        assert_eq!(parse(&[&both[..], &["100"]].concat()), 20);
        assert_eq!(parse(&[&both[..], &["3"]].concat()), 3);
    }
}
