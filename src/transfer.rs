//! `wicket export` and `wicket import`: accounts as JSON Lines, and the files of the
//! systems people move from (Apache's htpasswd, Authelia's users_database.yml).
//!
//! An import reads and checks the whole file first: one bad line (a name Wicket does
//! not allow, a hash of an unknown format or beyond the costs it checks) refuses the
//! file with every such line's number, and nothing is created. Hashes are kept as
//! they are (never printed or logged) and replaced by scrypt at each member's next
//! login; names that already exist are left alone and listed.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::accounts::Accounts;
use crate::domain::{AccountId, Group, Username};
use crate::password::Scheme;
use crate::store::tokens::ClaimKey;
use crate::store::{Email, PasskeySetting, StoreError, TotpSetting, User};
use crate::totp::TotpKey;

/// A file's accounts before they are checked: each with its line number, or why the
/// line is not one.
type Numbered = Vec<(usize, Result<Line, String>)>;

/// Where an import's accounts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `wicket export`'s JSON Lines.
    Wicket,
    /// Apache's htpasswd (bcrypt lines, `htpasswd -B`).
    Htpasswd,
    /// Authelia's `users_database.yml` (argon2id or bcrypt).
    Authelia,
}

/// One account as `wicket export` writes it and `wicket import` reads it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// The name, as registered.
    pub name: String,
    /// The account id (the OpenID Connect `sub`): kept, so apps know the member again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// When the account was created.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub created: Option<OffsetDateTime>,
    /// A PHC string: scrypt, bcrypt or argon2id.
    pub password_hash: String,
    /// Its groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Its email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the address was confirmed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub email_confirmed: bool,
    /// Disabled by the operator.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    /// Asked for a new password at the next login.
    #[serde(default, skip_serializing_if = "is_false")]
    pub must_change_password: bool,
    /// `--with-secrets`: the authenticator app's key and recovery codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub two_step: Option<TwoStepLine>,
    /// `--with-secrets`: the passkeys (public keys, with what the member called them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passkeys: Vec<PasskeySetting>,
    /// `--with-secrets`: the id the passkeys carry for the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey_handle: Option<webauthn_rs::prelude::Uuid>,
}

/// Two-step login in an export made `--with-secrets`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwoStepLine {
    /// The authenticator app's key, in base32 (unsealed: the export is as secret as
    /// the server's key).
    pub key: String,
    /// The last step used.
    pub last_step: u64,
    /// The unused recovery codes' keyed hashes: they work only under the same secret
    /// key (a restore of this server), and simply match nothing elsewhere.
    #[serde(default)]
    pub recovery: Vec<String>,
    /// When it was turned on.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `user` as an export line; its second factors too if `with_secrets`.
pub fn export_line(accounts: &Accounts, user: &User, with_secrets: bool) -> Line {
    let two_step = user
        .totp
        .as_ref()
        .filter(|_| with_secrets)
        .and_then(|setting| {
            let key = accounts.second_factor.key_of(user)?;
            Some(TwoStepLine {
                key: key.base32(),
                last_step: setting.last_step,
                recovery: setting.recovery.clone(),
                since: setting.since,
            })
        });
    Line {
        name: user.name.to_string(),
        id: Some(user.id.as_str().to_owned()),
        created: Some(user.created),
        password_hash: user.password_hash.clone(),
        groups: user.groups.iter().map(|g| g.as_str().to_owned()).collect(),
        email: user.email.as_ref().map(|e| e.address.clone()),
        email_confirmed: user.email.as_ref().is_some_and(|e| e.verified),
        disabled: user.disabled.is_some(),
        must_change_password: user.must_change_password,
        two_step,
        passkeys: if with_secrets {
            user.passkeys.clone()
        } else {
            Vec::new()
        },
        passkey_handle: user.passkey_handle.filter(|_| with_secrets),
    }
}

/// Why a file cannot be imported: each bad line, by number (hashes never quoted).
#[derive(Debug)]
pub struct Refused(pub Vec<String>);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "nothing was imported:")?;
        for problem in &self.0 {
            writeln!(f, "  {problem}")?;
        }
        Ok(())
    }
}

/// An account read from a file, checked, not yet stored.
#[derive(Debug)]
pub struct Incoming {
    line: usize,
    user: User,
    two_step_key: Option<TotpKey>,
}

/// Reads `text` (the file `file`) as `source`: every account, or every problem.
pub fn read(source: Source, file: &str, text: &str) -> Result<Vec<Incoming>, Refused> {
    let mut problems = Vec::new();
    let lines: Numbered = match source {
        Source::Wicket => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| (i + 1, serde_json::from_str(l).map_err(|e| json_problem(&e))))
            .collect(),
        Source::Htpasswd => htpasswd(text),
        Source::Authelia => match authelia(text) {
            Ok(lines) => lines,
            Err(why) => return Err(Refused(vec![format!("{file}: {why}")])),
        },
    };
    let (mut seen, mut ids) = (HashSet::new(), HashSet::new());
    let mut incoming = Vec::new();
    for (number, line) in lines {
        match line.and_then(|line| checked(line, source)) {
            Ok(next) if !seen.insert(next.user.key()) => {
                problems.push(format!("{file}:{number}: {} appears twice", next.user.name));
            }
            Ok(next) if !ids.insert(next.user.id.clone()) => {
                let name = &next.user.name;
                problems.push(format!(
                    "{file}:{number}: {name}: an account id given twice"
                ));
            }
            Ok(mut next) => {
                next.line = number;
                incoming.push(next);
            }
            Err(why) => problems.push(format!("{file}:{number}: {why}")),
        }
    }
    if problems.is_empty() {
        Ok(incoming)
    } else {
        Err(Refused(problems))
    }
}

/// What was wrong with a JSON line, without quoting it: serde's messages quote
/// values, and a value may be a hash.
fn json_problem(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match err.classify() {
        Category::Data => "not an export line: a field is missing, unknown or of the wrong type",
        _ => "not a line of JSON",
    }
    .to_owned()
}

/// `name:hash` lines; blank lines and `#` comments skipped.
fn htpasswd(text: &str) -> Numbered {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let raw = raw.trim_end_matches('\r');
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        let line = match raw.split_once(':') {
            Some((name, hash)) => Ok(Line {
                name: name.to_owned(),
                password_hash: hash.to_owned(),
                ..Line::bare()
            }),
            None => Err("expected name:hash".to_owned()),
        };
        lines.push((i + 1, line));
    }
    lines
}

/// Authelia's `users_database.yml`.
#[derive(Deserialize)]
struct AutheliaFile {
    users: std::collections::BTreeMap<String, AutheliaUser>,
}

#[derive(Deserialize)]
struct AutheliaUser {
    #[serde(default)]
    disabled: bool,
    password: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
}

/// Each user of an Authelia file, numbered by the line of its `password:` (YAML
/// values carry no position, so it is looked for after the user's own key).
fn authelia(text: &str) -> Result<Numbered, String> {
    let file: AutheliaFile = serde_yaml_ng::from_str(text).map_err(|err| {
        let at = err
            .location()
            .map(|l| format!("line {}: ", l.line()))
            .unwrap_or_default();
        // The message names the YAML problem; it may quote a key, never a value.
        format!("{at}not Authelia's users_database.yml")
    })?;
    let mut lines: Numbered = file
        .users
        .into_iter()
        .map(|(name, user)| {
            let number = line_in(text, &name);
            let line = Line {
                name,
                password_hash: user.password,
                groups: user.groups,
                // Authelia's addresses are the operator's to set: taken as confirmed.
                email_confirmed: user.email.is_some(),
                email: user.email,
                disabled: user.disabled,
                ..Line::bare()
            };
            (number, Ok(line))
        })
        .collect();
    lines.sort_by_key(|(number, _)| *number);
    Ok(lines)
}

/// The line of `password:` under the user `name`'s key in an Authelia file (the
/// key's own line if there is none; 0 if the key is not found as written).
fn line_in(text: &str, name: &str) -> usize {
    let keyed = |l: &str| {
        let l = l.trim();
        let key = l.strip_suffix(':').unwrap_or_default();
        key == name || key.trim_matches(['"', '\'']) == name
    };
    let mut lines = text.lines().enumerate();
    let Some((key_at, _)) = lines.by_ref().find(|(_, l)| keyed(l)) else {
        return 0;
    };
    lines
        .take_while(|(_, l)| l.starts_with(' ') || l.trim().is_empty())
        .find(|(_, l)| l.trim_start().starts_with("password:"))
        .map_or(key_at + 1, |(i, _)| i + 1)
}

impl Line {
    /// A line with only what every source has to fill in left empty.
    fn bare() -> Self {
        Self {
            name: String::new(),
            id: None,
            created: None,
            password_hash: String::new(),
            groups: Vec::new(),
            email: None,
            email_confirmed: false,
            disabled: false,
            must_change_password: false,
            two_step: None,
            passkeys: Vec::new(),
            passkey_handle: None,
        }
    }
}

/// A line checked: the account it makes, or why it makes none.
fn checked(line: Line, source: Source) -> Result<Incoming, String> {
    let name = Username::parse(&line.name).map_err(|err| format!("username: {err}"))?;
    let scheme = Scheme::of(&line.password_hash).map_err(|why| format!("{name}: {why}"))?;
    let expected = match source {
        Source::Wicket => true,
        Source::Htpasswd => scheme == Scheme::Bcrypt,
        Source::Authelia => scheme != Scheme::Scrypt,
    };
    if !expected {
        return Err(format!("{name}: a hash of a kind this file does not hold"));
    }
    let mut user = User::new(&name, line.password_hash);
    if let Some(id) = line.id {
        let hex32 = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex32 {
            return Err(format!(
                "{name}: an account id is 32 lower-case hex characters"
            ));
        }
        user.id = AccountId::from_hex(&id);
    }
    if let Some(created) = line.created {
        user.created = created;
    }
    let mut groups = line
        .groups
        .iter()
        .map(|g| Group::parse(g).map_err(|err| format!("{name}: group {g:?}: {err}")))
        .collect::<Result<Vec<_>, _>>()?;
    groups.sort();
    groups.dedup();
    user.groups = groups;
    if let Some(address) = line.email {
        crate::domain::EmailAddress::parse(&address)
            .map_err(|_| format!("{name}: not an email address a mail could reach"))?;
        user.email = Some(Email {
            address,
            verified: line.email_confirmed,
        });
    }
    user.disabled = line.disabled.then(OffsetDateTime::now_utc);
    user.must_change_password = line.must_change_password;
    user.passkeys = line.passkeys;
    user.passkey_handle = line.passkey_handle;
    let two_step_key = match line.two_step {
        Some(two_step) => {
            let key = TotpKey::from_base32(&two_step.key)
                .ok_or_else(|| format!("{name}: two_step.key is not a base32 key"))?;
            user.totp = Some(TotpSetting {
                key: String::new(), // sealed once the account is known (below)
                last_step: two_step.last_step,
                recovery: two_step.recovery,
                since: two_step.since,
            });
            Some(key)
        }
        None => None,
    };
    Ok(Incoming {
        line: 0,
        user,
        two_step_key,
    })
}

/// What an import did.
#[derive(Debug, Default)]
pub struct Imported {
    /// Accounts created.
    pub created: Vec<String>,
    /// Names that already exist (left alone), with their line.
    pub existing: Vec<(usize, String)>,
    /// What was dropped from created accounts, and why: an address or a passkey
    /// another account holds.
    pub notes: Vec<String>,
}

impl Accounts {
    /// Creates the accounts `incoming` (read and checked by [`read`]): each one as a
    /// registration would, its confirmed address and passkeys claimed in the indexes.
    pub async fn import(&self, incoming: Vec<Incoming>) -> Result<Imported, StoreError> {
        let mut done = Imported::default();
        // An id is the apps' `sub`: one another account has would make this one them.
        let mut taken = HashSet::new();
        for name in self.users.names().await? {
            if let Ok(name) = Username::parse(&name)
                && let Some(user) = self.users.get(&name).await?
            {
                taken.insert(user.id);
            }
        }
        for Incoming {
            line,
            mut user,
            two_step_key,
        } in incoming
        {
            if let Some(key) = &two_step_key {
                let sealed = self.second_factor.seal_for_account(key, &user);
                if let Some(setting) = user.totp.as_mut() {
                    setting.key = sealed;
                }
            }
            let name = user.name.to_string();
            if self.users.exists(&user.name).await? {
                done.existing.push((line, name));
                continue;
            }
            if taken.contains(&user.id) {
                done.notes.push(format!(
                    "line {line}: {name}: another account has this id: left alone"
                ));
                continue;
            }
            if self.users.create(&user).await?.is_err() {
                done.existing.push((line, name));
                continue;
            }
            if let Some(address) = user.verified_email().map(str::to_owned)
                && !self.tokens.claim(&ClaimKey::email(&address), &name).await?
            {
                let unconfirm = |u: &mut User| {
                    if let Some(email) = u.email.as_mut() {
                        email.verified = false;
                    }
                };
                self.users.update(&user.name, &unconfirm).await?;
                done.notes.push(format!(
                    "{name}: another account holds that address: kept unconfirmed"
                ));
            }
            for passkey in &user.passkeys {
                let claim = ClaimKey::passkey(passkey.key.cred_id());
                if !self.tokens.claim(&claim, &name).await? {
                    let gone = passkey.key.clone();
                    let forget = move |u: &mut User| u.passkeys.retain(|p| p.key != gone);
                    self.users.update(&user.name, &forget).await?;
                    done.notes.push(format!(
                        "{name}: passkey {:?} belongs to another account: dropped",
                        passkey.name
                    ));
                }
            }
            tracing::info!(user = %name, "account imported");
            done.created.push(name);
        }
        Ok(done)
    }
}
