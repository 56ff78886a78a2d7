//! What the `wicket` binary does for each command: serve, `user …`, `group …`,
//! `invite …`, `rules …`, `migrate`.

use std::io::{self, BufRead, IsTerminal};

use crate::accounts::{Accounts, PasswordSet};
use crate::app::{self, Application};
use crate::config::{
    Command, Config, GroupChange, GroupCommand, InviteCommand, OidcCommand, RulesCommand,
    UserCommand,
};
use crate::domain::{Group, Password, Username};
use crate::guard::{Access, Asker, Rules, Target};
use crate::store::{EndReason, StoreKind, User};
use crate::transfer::Source;

/// Runs `command` (serving the site when there is none) until it is done.
pub async fn run(config: &Config, command: Option<Command>) -> io::Result<()> {
    // A command's mails say the site's name as the server's do.
    crate::brand::set_name(&config.site_name);
    match command {
        None => serve(config).await,
        Some(Command::User { action }) => user(config, action).await,
        Some(Command::Migrate { from, to }) => migrate(config, &from, &to).await,
        Some(Command::Group { action }) => group(config, action).await,
        Some(Command::Invite { action }) => invite(config, action).await,
        Some(Command::Rules { action }) => rules(config, action).await,
        Some(Command::Oidc { action }) => oidc(config, action),
        Some(Command::Backup { dir, sessions }) => backup(config, &dir, sessions).await,
        Some(Command::Restore { dir, force }) => restore(config, &dir, force).await,
        Some(Command::Export { with_secrets }) => export(config, with_secrets).await,
        Some(Command::Import {
            file,
            htpasswd,
            authelia,
        }) => {
            let source = match (htpasswd, authelia) {
                (true, _) => Source::Htpasswd,
                (_, true) => Source::Authelia,
                _ => Source::Wicket,
            };
            import(config, &file, source).await
        }
    }
}

/// `wicket backup DIR [--sessions]`.
async fn backup(config: &Config, dir: &std::path::Path, sessions: bool) -> io::Result<()> {
    let manifest = crate::backup::backup(config, dir, sessions).await?;
    println!(
        "backed up the {} store into {} ({} file(s), {}):",
        manifest.store,
        dir.display(),
        manifest.files.len(),
        if sessions {
            "with sessions"
        } else {
            "without sessions"
        }
    );
    crate::backup::print_counts(&mut io::stdout(), &manifest)?;
    println!("WARNING: {}", crate::backup::WARNING);
    Ok(())
}

/// `wicket restore DIR [--force]`.
async fn restore(config: &Config, dir: &std::path::Path, force: bool) -> io::Result<()> {
    let restored = crate::backup::restore(config, dir, force).await?;
    let manifest = &restored.manifest;
    println!(
        "restored the backup of {} (Wicket {}) into the {} store: {} record(s) and key(s) \
         written, {} expired since",
        stamp(manifest.taken),
        manifest.wicket_version,
        manifest.store,
        restored.written,
        restored.expired
    );
    crate::backup::print_counts(&mut io::stdout(), manifest)?;
    println!("start (or restart) the server to serve them");
    Ok(())
}

/// `wicket export [--with-secrets]`: JSON Lines on stdout.
async fn export(config: &Config, with_secrets: bool) -> io::Result<()> {
    use std::io::Write;
    let accounts = app::open_accounts(config)?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut count = 0;
    for name in accounts.users.names().await? {
        let Ok(name) = Username::parse(&name) else {
            continue;
        };
        let Some(user) = accounts.users.get(&name).await? else {
            continue; // deleted meanwhile
        };
        let line = crate::transfer::export_line(&accounts, &user, with_secrets);
        serde_json::to_writer(&mut out, &line).map_err(io::Error::other)?;
        out.write_all(b"\n")?;
        count += 1;
    }
    out.flush()?;
    eprintln!(
        "exported {count} account(s){}",
        if with_secrets {
            " with their second factors: keep the file as safe as the server's key"
        } else {
            " (no second-factor secrets: --with-secrets adds them)"
        }
    );
    Ok(())
}

/// `wicket import FILE [--htpasswd | --authelia]`.
async fn import(config: &Config, file: &std::path::Path, source: Source) -> io::Result<()> {
    let text = std::fs::read_to_string(file)
        .map_err(|err| invalid(format!("{}: {err}", file.display())))?;
    let incoming = crate::transfer::read(source, &file.display().to_string(), &text)
        .map_err(|refused| invalid(refused.to_string().trim_end().to_owned()))?;
    let accounts = app::open_accounts(config)?;
    let done = accounts.import(incoming).await?;
    println!("imported {} account(s)", done.created.len());
    for (line, name) in &done.existing {
        println!("  line {line}: {name} already exists: left alone");
    }
    for note in &done.notes {
        println!("  {note}");
    }
    if source != Source::Wicket && !done.created.is_empty() {
        println!(
            "their hashes are kept until each member's next login, which replaces them by scrypt"
        );
    }
    Ok(())
}

async fn serve(config: &Config) -> io::Result<()> {
    let app = Application::build(config).await?;
    app.run_until(shutdown_signal()).await
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down");
}

/// `wicket migrate --from files --to redis://…`
async fn migrate(config: &Config, from: &StoreKind, to: &StoreKind) -> io::Result<()> {
    let report = crate::migrate::migrate(config, from, to).await?;
    println!(
        "users: {} copied, {} already there; sessions: {} copied, {} already there, {} ended (skipped)",
        report.users_copied,
        report.users_present,
        report.sessions_copied,
        report.sessions_present,
        report.sessions_ended
    );
    if report.users_conflicting.is_empty() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "these users exist in the target with other data and were left alone: {}",
            report.users_conflicting.join(", ")
        )))
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// `wicket user …`, on whichever store the flags name (files or Redis), through the
/// account service: the same sequences as the site's forms.
async fn user(config: &Config, action: UserCommand) -> io::Result<()> {
    let accounts = app::open_accounts(config)?;
    let sessions = &accounts.sessions;
    match action {
        UserCommand::List => {
            for name in accounts.users.names().await? {
                println!("{name}");
            }
        }
        UserCommand::Add { name } => {
            let name = parse(&name)?;
            let password = new_password(&name)?;
            let hash = accounts
                .hasher
                .hash(password)
                .await
                .map_err(io::Error::other)?;
            if accounts
                .users
                .create(&User::new(&name, hash))
                .await?
                .is_err()
            {
                return Err(invalid(format!("a user called {name} already exists")));
            }
            println!("created user {name}");
        }
        UserCommand::Sessions { name } => {
            let user = existing(&accounts, &name).await?;
            for session in sessions.of_user(&user.name).await? {
                let record = &session.record;
                println!(
                    "started {}\tlast active {}\t{}\t{}",
                    stamp(record.created),
                    stamp(record.last_seen),
                    record.browser.as_deref().unwrap_or("unknown browser"),
                    record.address.as_deref().unwrap_or("unknown address"),
                );
            }
        }
        UserCommand::Logout { name } => {
            let user = existing(&accounts, &name).await?;
            let ended = sessions
                .end_all(&user.name, None, EndReason::EndedElsewhere)
                .await?;
            let event = crate::store::journal::Event::SessionsEndedByOperator;
            accounts.note(&user, event, None, None).await;
            println!("ended {ended} session(s) of {}", user.name);
        }
        UserCommand::Passwd { name } => {
            let user = existing(&accounts, &name).await?;
            let password = new_password(&user.name)?;
            let set = accounts
                .set_password(&user, password, None, PasswordSet::ByOperator)
                .await
                .map_err(io::Error::other)?;
            let Some((_, ended)) = set else {
                return Err(invalid(format!(
                    "the password of {} changed meanwhile; try again",
                    user.name
                )));
            };
            println!(
                "changed the password of {}; ended {ended} session(s)",
                user.name
            );
        }
        UserCommand::Delete { name } => {
            let user = existing(&accounts, &name).await?;
            let ended = accounts
                .delete(&user, None, None)
                .await
                .map_err(io::Error::other)?
                .ok_or_else(|| invalid(format!("there is no user called {}", user.name)))?;
            println!("deleted {}; ended {ended} session(s)", user.name);
            flush_mail(&accounts).await;
        }
        UserCommand::Show { name, json } => {
            let user = existing(&accounts, &name).await?;
            let live = sessions.of_user(&user.name).await?.len();
            let shown = Shown::of(&user, live);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&shown).map_err(io::Error::other)?
                );
            } else {
                print!("{shown}");
            }
        }
        UserCommand::Disable { name } => {
            let user = existing(&accounts, &name).await?;
            let (_, ended) = accounts
                .set_disabled(&user, true)
                .await
                .map_err(io::Error::other)?;
            println!(
                "disabled {}; ended {ended} session(s) and the app tokens issued under them",
                user.name
            );
            flush_mail(&accounts).await;
        }
        UserCommand::Enable { name } => {
            let user = existing(&accounts, &name).await?;
            let was = user.disabled.is_some();
            accounts
                .set_disabled(&user, false)
                .await
                .map_err(io::Error::other)?;
            if was {
                println!("enabled {}: it can log in again", user.name);
            } else {
                println!("{} was not disabled", user.name);
            }
        }
        UserCommand::Unlock { name } => {
            let user = existing(&accounts, &name).await?;
            let cleared = accounts.unlock(&user).await.map_err(io::Error::other)?;
            println!(
                "unlocked {}: cleared {} failed login(s) since the last login, and the \
                 counts of wrong passwords and codes against the account (per browser \
                 and from unknown ones); the guessers' addresses stay held back",
                user.name, cleared.failed_logins
            );
        }
        UserCommand::ResetTwoStep { name } => {
            let user = existing(&accounts, &name).await?;
            let removed = accounts
                .reset_second_factors(&user)
                .await
                .map_err(io::Error::other)?;
            let app = if removed.app {
                "the authenticator app and its recovery codes"
            } else {
                "no authenticator app"
            };
            let keys = match removed.passkeys.len() {
                0 => "no passkeys".to_owned(),
                _ => format!("passkeys {}", removed.passkeys.join(", ")),
            };
            println!(
                "reset {}: removed {app}, {keys}; ended {} session(s); {}",
                user.name,
                removed.ended,
                if removed.mailed {
                    "mailed the member"
                } else {
                    "no confirmed address to mail"
                }
            );
            flush_mail(&accounts).await;
        }
        UserCommand::RequirePasswordChange { name } => {
            let user = existing(&accounts, &name).await?;
            let ended = accounts
                .require_password_change(&user)
                .await
                .map_err(io::Error::other)?;
            println!(
                "{} must choose a new password at the next login; ended {ended} session(s)",
                user.name
            );
        }
        UserCommand::Group {
            name,
            change,
            group,
        } => {
            let user = existing(&accounts, &name).await?;
            let group = Group::parse(&group).map_err(|err| invalid(format!("group: {err}")))?;
            let changed = accounts
                .set_group(&user, &group, change == GroupChange::Add)
                .await
                .map_err(io::Error::other)?
                .ok_or_else(|| invalid(format!("there is no user called {}", user.name)))?;
            let now: Vec<&str> = changed.groups.iter().map(Group::as_str).collect();
            let verb = match change {
                GroupChange::Add => "added to",
                GroupChange::Remove => "removed from",
            };
            println!(
                "{} {verb} {group}; groups now: {}",
                changed.name,
                if now.is_empty() {
                    "none".to_owned()
                } else {
                    now.join(", ")
                }
            );
        }
    }
    Ok(())
}

/// Waits (a while) for the mail a command queued to be handed over.
async fn flush_mail(accounts: &Accounts) {
    if let Some(mailer) = &accounts.mail {
        let handed = tokio::time::timeout(std::time::Duration::from_secs(60), mailer.outbox.idle());
        if handed.await.is_err() {
            eprintln!("warning: the mail could not be handed to the mail server within 60 s");
        }
    }
}

/// What `wicket user show` tells of an account (never a hash or a key).
#[derive(serde::Serialize)]
struct Shown {
    id: String,
    name: String,
    #[serde(with = "time::serde::rfc3339")]
    created: time::OffsetDateTime,
    email: Option<String>,
    email_confirmed: bool,
    groups: Vec<String>,
    two_step: bool,
    passkeys: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    last_login: Option<time::OffsetDateTime>,
    last_login_from: Option<String>,
    failed_logins: u32,
    live_sessions: usize,
    #[serde(with = "time::serde::rfc3339::option")]
    disabled: Option<time::OffsetDateTime>,
    must_change_password: bool,
}

impl Shown {
    fn of(user: &User, live_sessions: usize) -> Self {
        Self {
            id: user.id.as_str().to_owned(),
            name: user.name.to_string(),
            created: user.created,
            email: user.email.as_ref().map(|e| e.address.clone()),
            email_confirmed: user.email.as_ref().is_some_and(|e| e.verified),
            groups: user.groups.iter().map(|g| g.as_str().to_owned()).collect(),
            two_step: user.totp.is_some(),
            passkeys: user.passkeys.iter().map(|p| p.name.clone()).collect(),
            last_login: user.last_login.as_ref().map(|l| l.at),
            last_login_from: user
                .last_login
                .as_ref()
                .map(|l| format!("{} · {}", l.browser, l.address)),
            failed_logins: user.failed_logins,
            live_sessions,
            disabled: user.disabled,
            must_change_password: user.must_change_password,
        }
    }
}

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let or_none = |list: &[String]| match list.is_empty() {
            true => "none".to_owned(),
            false => list.join(", "),
        };
        writeln!(f, "name:                 {}", self.name)?;
        writeln!(f, "account id:           {}", self.id)?;
        writeln!(f, "created:              {}", stamp(self.created))?;
        let email = match &self.email {
            Some(address) if self.email_confirmed => format!("{address} (confirmed)"),
            Some(address) => format!("{address} (not confirmed)"),
            None => "none".to_owned(),
        };
        writeln!(f, "email:                {email}")?;
        writeln!(f, "groups:               {}", or_none(&self.groups))?;
        let on = |b: bool| if b { "on" } else { "off" };
        writeln!(f, "two-step login:       {}", on(self.two_step))?;
        writeln!(f, "passkeys:             {}", or_none(&self.passkeys))?;
        let last = match (self.last_login, &self.last_login_from) {
            (Some(at), Some(from)) => format!("{} from {from}", stamp(at)),
            _ => "never".to_owned(),
        };
        writeln!(f, "last login:           {last}")?;
        writeln!(f, "failed logins since:  {}", self.failed_logins)?;
        writeln!(f, "live sessions:        {}", self.live_sessions)?;
        let disabled = match self.disabled {
            Some(at) => format!("yes, since {}", stamp(at)),
            None => "no".to_owned(),
        };
        writeln!(f, "disabled:             {disabled}")?;
        let must = if self.must_change_password {
            "yes"
        } else {
            "no"
        };
        writeln!(f, "must change password: {must}")
    }
}

/// `wicket group list`: each group with its members.
async fn group(config: &Config, action: GroupCommand) -> io::Result<()> {
    let accounts = app::open_accounts(config)?;
    match action {
        GroupCommand::List => {
            let mut groups: std::collections::BTreeMap<Group, Vec<String>> = Default::default();
            for name in accounts.users.names().await? {
                let Ok(name) = Username::parse(&name) else {
                    continue;
                };
                if let Some(user) = accounts.users.get(&name).await? {
                    for group in user.groups {
                        groups.entry(group).or_default().push(user.name.to_string());
                    }
                }
            }
            if groups.is_empty() {
                println!("no groups yet: `wicket user group NAME add GROUP` makes one");
            }
            for (group, members) in groups {
                println!("{group}\t{}", members.join(", "));
            }
        }
    }
    Ok(())
}

/// `wicket invite create|list|revoke`.
async fn invite(config: &Config, action: InviteCommand) -> io::Result<()> {
    let accounts = app::open_accounts(config)?;
    match action {
        InviteCommand::Create {
            groups,
            expires,
            uses,
        } => {
            let groups = groups
                .iter()
                .map(|g| Group::parse(g).map_err(|err| invalid(format!("group {g:?}: {err}"))))
                .collect::<io::Result<Vec<_>>>()?;
            let token = accounts
                .create_invite(groups, expires, uses)
                .await
                .map_err(io::Error::other)?;
            let path = format!("/register/?invite={}", token.as_str());
            let link = match &config.public_url {
                Some(url) => url.url(&path),
                None => format!("http://{}{path}", config.addr),
            };
            println!("{link}");
            if config.registration != crate::config::Registration::Invite {
                eprintln!(
                    "note: invitations are asked for only with --registration invite \
                     (now: {:?})",
                    config.registration
                );
            }
        }
        InviteCommand::List => {
            let invites = accounts.invites().await.map_err(io::Error::other)?;
            if invites.is_empty() {
                println!("no open invitations");
            }
            for invite in invites {
                let groups: Vec<&str> = invite.groups.iter().map(Group::as_str).collect();
                println!(
                    "{}\tused {} of {}\texpires {}\tgroups: {}",
                    invite.id,
                    invite.used,
                    invite.uses,
                    stamp(invite.expires),
                    if groups.is_empty() {
                        "none".to_owned()
                    } else {
                        groups.join(", ")
                    }
                );
            }
        }
        InviteCommand::Revoke { id } => {
            if !accounts
                .revoke_invite(&id)
                .await
                .map_err(io::Error::other)?
            {
                return Err(invalid(format!(
                    "no open invitation has the id {id} (see `wicket invite list`)"
                )));
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}

/// `wicket oidc rotate-key` and `wicket oidc client-secret`.
fn oidc(config: &Config, action: OidcCommand) -> io::Result<()> {
    match action {
        OidcCommand::RotateKey => {
            crate::fsutil::private_dir(&config.data_dir)?;
            let kids = crate::oidc::KeySet::rotate(&config.data_dir)?;
            println!(
                "new signing keys {} in {}; reload the server (systemctl reload wicket, \
                 or kill -HUP) to sign with them",
                kids.join(" and "),
                config.data_dir.join(crate::oidc::keys::KEY_FILE).display()
            );
        }
        OidcCommand::ClientSecret => {
            let (secret, hash) = crate::oidc::clients::new_secret();
            println!("client secret (give it to the app; it is not stored): {secret}");
            println!("for the clients file:  secret_hash = \"{hash}\"");
        }
    }
    Ok(())
}

/// `wicket rules check FILE` and `wicket rules explain URL [--user NAME]`.
async fn rules(config: &Config, action: RulesCommand) -> io::Result<()> {
    match action {
        RulesCommand::Check { file } => {
            let rules = Rules::load(&file).map_err(|err| invalid(err.to_string()))?;
            let count = rules.iter().count();
            println!(
                "{}: {count} rule(s), first match wins, anything else is denied",
                file.display()
            );
            for rule in rules.iter() {
                println!("  {rule}");
            }
        }
        RulesCommand::Explain { url, user, method } => {
            let file = config.access_rules.as_ref().ok_or_else(|| {
                invalid(
                    "no rules to explain: give --access-rules FILE (or WICKET_ACCESS_RULES)".into(),
                )
            })?;
            let rules = Rules::load(file).map_err(|err| invalid(err.to_string()))?;
            let (target, _) = Target::of_url(&url, &method).ok_or_else(|| {
                invalid(format!("{url:?} is not a URL an app would be asked for"))
            })?;
            println!(
                "{} {}{} (as the rules see it)",
                target.method, target.host, target.path
            );
            match rules.matching(&target) {
                Some(rule) => println!("matches {rule}"),
                None => println!("matches no rule: denied to everyone"),
            }
            println!("nobody logged in: {}", said(rules.access(&target, None)));
            if let Some(name) = user {
                let accounts = app::open_accounts(config)?;
                let user = existing(&accounts, &name).await?;
                let groups: Vec<&str> = user.groups.iter().map(Group::as_str).collect();
                let groups = if groups.is_empty() {
                    "no groups".to_owned()
                } else {
                    groups.join(", ")
                };
                for second_factor in [false, true] {
                    let asker = Asker {
                        groups: &user.groups,
                        second_factor,
                    };
                    let how = if second_factor { "with" } else { "without" };
                    println!(
                        "{} ({groups}), {how} a second factor: {}",
                        user.name,
                        said(rules.access(&target, Some(asker)))
                    );
                }
            }
        }
    }
    Ok(())
}

/// A decision in words.
fn said(access: Access) -> &'static str {
    match access {
        Access::Allowed => "allowed",
        Access::LogIn => "sent to log in",
        Access::StepUp => "asked for a second factor first",
        Access::Forbidden => "denied (403)",
    }
}

fn parse(name: &str) -> io::Result<Username> {
    Username::parse(name).map_err(|err| invalid(format!("username: {err}")))
}

/// The user called `name`, or an error saying there is none.
async fn existing(accounts: &Accounts, name: &str) -> io::Result<User> {
    let name = parse(name)?;
    match accounts.users.get(&name).await? {
        Some(user) => Ok(user),
        None => Err(invalid(format!("there is no user called {name}"))),
    }
}

/// `2026-11-28 21:03 UTC`.
fn stamp(at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.format(&format).unwrap_or_default()
}

/// Reads a new password for `name` (no-echo prompt, or stdin's first line) and checks
/// it like registration does.
fn new_password(name: &Username) -> io::Result<Password> {
    let password = read_new_password(name)?;
    Password::parse(password, name.as_str()).map_err(|err| invalid(format!("password: {err}")))
}

/// Asks twice on a terminal (without echo); otherwise reads one line from stdin.
fn read_new_password(name: &Username) -> io::Result<String> {
    if io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {name}: "))?;
        let again = rpassword::prompt_password("Password again: ")?;
        if first != again {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the passwords do not match",
            ));
        }
        return Ok(first);
    }
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    Ok(line.strip_suffix('\r').unwrap_or(line).to_owned())
}
