//! Access rules: an ordered list read from TOML, the first that matches a request
//! deciding who may make it.
//!
//! ```toml
//! [[rule]]
//! host = "wiki.example.com"     # exact, or "*.example.com" (any subdomain)
//! path = "/admin"               # a prefix (whole segments), or a glob: * ** ?
//! methods = ["POST", "PUT"]     # optional: every method
//! policy = "two-step"           # public | members | two-step | deny
//! groups = ["admins"]           # optional: only members of one of these
//! ```

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::domain::Group;

/// Who may make a request a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Anyone, logged in or not.
    Public,
    /// Anyone logged in.
    Members,
    /// Anyone logged in whose session used a second factor (a code or a passkey).
    TwoStep,
    /// Nobody.
    Deny,
}

impl Policy {
    fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Members => "members",
            Self::TwoStep => "two-step",
            Self::Deny => "deny",
        }
    }
}

/// One `[[rule]]` table.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its line in the file (for `explain` and the logs).
    pub line: usize,
    host: Option<HostPattern>,
    path: Option<PathPattern>,
    methods: Vec<String>,
    /// Who may pass.
    pub policy: Policy,
    /// If not empty, only members of one of these groups.
    pub groups: Vec<Group>,
}

/// What a request is, as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Lower-case host name, without port or trailing dot.
    pub host: String,
    /// The path, percent-decoded once, dot segments resolved, repeated slashes merged.
    pub path: String,
    /// Upper-case method.
    pub method: String,
}

impl Target {
    /// The request at `url` with `method`, as the rules see it, and the URL as the
    /// browser will be sent back to (its parse's own serialization). `None` for a URL
    /// no browser would send or no app should get.
    pub fn of_url(url: &str, method: &str) -> Option<(Self, String)> {
        // The authority is a host (and port) and nothing else, followed by the path:
        // `https://app?/admin` would otherwise be the host `app` and the path `/`.
        let (_, rest) = url.split_once("://")?;
        let authority = rest.split('/').next().unwrap_or_default();
        if url.len() > MAX_URL || !plain_authority(authority) {
            return None;
        }
        let parsed = url::Url::parse(url).ok()?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return None;
        }
        let host = parsed
            .host_str()?
            .trim_end_matches('.')
            .to_ascii_lowercase();
        // The URL parser has resolved dot segments, not escapes: normalize does both.
        let path = normalize_path(parsed.path())?;
        let method = poem::http::Method::from_bytes(method.as_bytes()).ok()?;
        let target = Self {
            host,
            path,
            method: method.as_str().to_ascii_uppercase(),
        };
        Some((target, parsed.into()))
    }
}

/// Whether `text` is a host and port and nothing else (letters, digits, `-.:[]`):
/// no `?`, `#`, `/`, `\`, `@` or space that a URL parser would read as the end of the
/// host and the start of something else.
pub fn plain_authority(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

/// The longest original URL a check reads (a browser's limit is about this).
const MAX_URL: usize = 8 * 1024;

/// The member asking, as the rules see them.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    /// The member's groups.
    pub groups: &'a [Group],
    /// The session used a second factor.
    pub second_factor: bool,
}

/// What the rules say about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Let it through.
    Allowed,
    /// Only for members: log in first.
    LogIn,
    /// Only with a second factor: the member steps up first.
    StepUp,
    /// Not for this member (or nobody).
    Forbidden,
}

/// The rules in force, in file order.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

/// Why a rules file was refused: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesError {
    /// The file.
    pub file: String,
    /// The line (1-based), when known.
    pub line: Option<usize>,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for RulesError {}

impl RulesError {
    /// A mistake on `line` of `file`.
    pub fn at(file: &str, line: usize, message: String) -> Self {
        Self {
            file: file.to_owned(),
            line: Some(line),
            message,
        }
    }

    /// The text of `path`, and its name for messages (a rules or a clients file).
    pub fn read(path: &Path) -> Result<(String, String), Self> {
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((text, file)),
            Err(err) => Err(Self {
                file,
                line: None,
                message: format!("cannot read: {err}"),
            }),
        }
    }
}

/// The TOML document `text` (read from `file`) as a `T`, or where it went wrong.
pub fn parse_toml<T: serde::de::DeserializeOwned>(text: &str, file: &str) -> Result<T, RulesError> {
    toml::from_str(text).map_err(|err| RulesError {
        file: file.to_owned(),
        line: err.span().map(|span| line_at(text, span.start)),
        message: err.message().trim().to_owned(),
    })
}

/// The line (1-based) of byte `at` of `text`.
pub fn line_at(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    rule: Vec<toml::Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    host: Option<String>,
    path: Option<String>,
    #[serde(default)]
    methods: Vec<String>,
    policy: Option<Policy>,
    #[serde(default)]
    groups: Vec<String>,
}

impl Rules {
    /// Reads and checks the rules in `path`.
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        let (text, file) = RulesError::read(path)?;
        Self::parse(&text, &file)
    }

    /// Checks the rules in `text`, read from `file`.
    pub fn parse(text: &str, file: &str) -> Result<Self, RulesError> {
        let parsed: File = parse_toml(text, file)?;
        let rules = parsed
            .rule
            .into_iter()
            .map(|spanned| {
                let line = line_at(text, spanned.span().start);
                Rule::check(spanned.into_inner(), line)
                    .map_err(|message| RulesError::at(file, line, message))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    /// The rules, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter()
    }

    /// The first rule matching `target`, if any (none: denied).
    pub fn matching(&self, target: &Target) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.matches(target))
    }

    /// What the rules say about `target` for `asker` (`None`: nobody is logged in).
    pub fn access(&self, target: &Target, asker: Option<Asker>) -> Access {
        match self.matching(target) {
            Some(rule) => rule.access(asker),
            None => Access::Forbidden,
        }
    }

    /// Whether a rule names `host` (exactly or by a wildcard): a login may return there.
    pub fn names_host(&self, host: &str) -> bool {
        self.rules.iter().any(|rule| {
            rule.host
                .as_ref()
                .is_some_and(|pattern| pattern.matches(host))
        })
    }
}

impl Rule {
    fn check(raw: RawRule, line: usize) -> Result<Self, String> {
        let host = raw.host.as_deref().map(HostPattern::parse).transpose()?;
        let path = raw.path.as_deref().map(PathPattern::parse).transpose()?;
        let methods = raw
            .methods
            .iter()
            .map(|method| {
                let known = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
                let upper = method.to_ascii_uppercase();
                if known.contains(&upper.as_str()) {
                    Ok(upper)
                } else {
                    Err(format!(
                        "methods: expected one of {}, found {method:?}",
                        known.join(", ")
                    ))
                }
            })
            .collect::<Result<_, _>>()?;
        let groups: Vec<Group> = raw
            .groups
            .iter()
            .map(|group| Group::parse(group).map_err(|err| format!("groups: {group:?}: {err}")))
            .collect::<Result<_, _>>()?;
        let policy = match (raw.policy, groups.is_empty()) {
            (Some(policy @ (Policy::Public | Policy::Deny)), false) => {
                return Err(format!(
                    "groups need policy \"members\" or \"two-step\", not {:?}",
                    policy.as_str()
                ));
            }
            (Some(policy), _) => policy,
            (None, false) => Policy::Members,
            (None, true) => {
                return Err(
                    "expected `policy` (public, members, two-step or deny) or `groups`".into(),
                );
            }
        };
        Ok(Self {
            line,
            host,
            path,
            methods,
            policy,
            groups,
        })
    }

    /// The host pattern as written (`wiki.example.com`, `*.example.com`), if any.
    pub fn host(&self) -> Option<&str> {
        self.host.as_ref().map(|h| h.text.as_str())
    }

    /// Whether this rule applies to `target`.
    pub fn matches(&self, target: &Target) -> bool {
        self.host.as_ref().is_none_or(|h| h.matches(&target.host))
            && self.path.as_ref().is_none_or(|p| p.matches(&target.path))
            && (self.methods.is_empty() || self.methods.contains(&target.method))
    }

    /// What this rule says for `asker` (`None`: nobody is logged in).
    pub fn access(&self, asker: Option<Asker>) -> Access {
        match (self.policy, asker) {
            (Policy::Public, _) => Access::Allowed,
            (Policy::Deny, _) => Access::Forbidden,
            (_, None) => Access::LogIn,
            (policy, Some(asker)) => {
                let in_a_group =
                    self.groups.is_empty() || self.groups.iter().any(|g| asker.groups.contains(g));
                if !in_a_group {
                    Access::Forbidden
                } else if policy == Policy::TwoStep && !asker.second_factor {
                    Access::StepUp
                } else {
                    Access::Allowed
                }
            }
        }
    }
}

impl fmt::Display for Rule {
    /// `line 4: host *.example.com, path /admin, methods POST → members of admins`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        let mut parts = Vec::new();
        if let Some(host) = &self.host {
            parts.push(format!("host {}", host.text));
        }
        if let Some(path) = &self.path {
            parts.push(format!("path {}", path.text));
        }
        if !self.methods.is_empty() {
            parts.push(format!("methods {}", self.methods.join(",")));
        }
        if parts.is_empty() {
            parts.push("every request".into());
        }
        write!(f, "{} → {}", parts.join(", "), self.policy.as_str())?;
        if !self.groups.is_empty() {
            let groups: Vec<&str> = self.groups.iter().map(Group::as_str).collect();
            write!(f, ", groups {}", groups.join(","))?;
        }
        Ok(())
    }
}

/// `example.com` or `*.example.com` (any name below it, not itself).
#[derive(Debug, Clone)]
struct HostPattern {
    text: String,
    /// The exact name, or the suffix with its leading dot (`.example.com`).
    name: String,
    wildcard: bool,
}

impl HostPattern {
    fn parse(text: &str) -> Result<Self, String> {
        let (wildcard, name) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(format!(
                "host: expected a lower-case host name such as \"wiki.example.com\" or \
                 \"*.example.com\" (no port, no trailing dot), found {text:?}"
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            name: if wildcard {
                format!(".{name}")
            } else {
                name.to_owned()
            },
            wildcard,
        })
    }

    fn matches(&self, host: &str) -> bool {
        if self.wildcard {
            host.len() > self.name.len() && host.ends_with(&self.name)
        } else {
            host == self.name
        }
    }
}

/// A path prefix (whole segments: `/app` covers `/app` and `/app/x`, not `/apple`), or
/// a glob: `*` any characters but `/`, `**` any characters, `?` one character.
#[derive(Debug, Clone)]
struct PathPattern {
    text: String,
    glob: bool,
}

impl PathPattern {
    fn parse(text: &str) -> Result<Self, String> {
        if !text.starts_with('/') || text.chars().any(char::is_control) {
            return Err(format!(
                "path: expected a path starting with \"/\", found {text:?}"
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            glob: text.contains(['*', '?']),
        })
    }

    fn matches(&self, path: &str) -> bool {
        if self.glob {
            return glob(self.text.as_bytes(), path.as_bytes());
        }
        let prefix = &self.text;
        path == prefix
            || (path.starts_with(prefix.as_str())
                && (prefix.ends_with('/') || path.as_bytes()[prefix.len()] == b'/'))
    }
}

/// Whether `text` matches `pattern` (`*` any run without `/`, `**` any run, `?` one
/// character but `/`): one pass over `text` per pattern token, never backtracking.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    // matched[j]: the pattern so far matches text[..j].
    let mut matched = vec![false; text.len() + 1];
    matched[0] = true;
    let mut p = 0;
    while p < pattern.len() {
        let mut next = vec![false; text.len() + 1];
        match pattern[p] {
            b'*' => {
                let double = pattern.get(p + 1) == Some(&b'*');
                p += if double { 2 } else { 1 };
                next[0] = matched[0];
                for j in 1..=text.len() {
                    let extend = next[j - 1] && (double || text[j - 1] != b'/');
                    next[j] = matched[j] || extend;
                }
            }
            one => {
                p += 1;
                for j in 1..=text.len() {
                    let c = text[j - 1];
                    next[j] = matched[j - 1] && (c == one || (one == b'?' && c != b'/'));
                }
            }
        }
        matched = next;
    }
    matched[text.len()]
}

/// The path rules see: `raw` (as sent, without the query) percent-decoded once, `.`
/// and `..` segments resolved and repeated slashes merged, so `/a/../admin`,
/// `/%61dmin` and `//admin` are all `/admin`. `None` for what no app should get: a bad
/// escape, a control character, a NUL, invalid UTF-8.
pub fn normalize_path(raw: &str) -> Option<String> {
    // Most paths are already plain: nothing to decode, resolve or merge.
    let plain = raw.starts_with('/')
        && !raw.contains(['%', '\\', ';'])
        && !raw.contains("//")
        && !raw.contains("/./")
        && !raw.contains("/../")
        && !raw.ends_with("/.")
        && !raw.ends_with("/..")
        && !raw.chars().any(char::is_control);
    if plain {
        return Some(raw.to_owned());
    }
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            decoded.push(u8::from_str_radix(text, 16).ok()?);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(decoded).ok()?;
    if decoded.chars().any(char::is_control) {
        return None;
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split(['/', '\\']) {
        // Path parameters (`/admin;jsessionid=x`, `/..;/`) are dropped, as Java
        // servers drop them before routing: the rules see the path those apps see.
        let segment = segment.split(';').next().unwrap_or_default();
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    let mut path = format!("/{}", segments.join("/"));
    if trailing && path.len() > 1 {
        path.push('/');
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Rules {
        Rules::parse(text, "rules.toml").unwrap()
    }

    fn target(host: &str, path: &str, method: &str) -> Target {
        Target {
            host: host.into(),
            path: path.into(),
            method: method.into(),
        }
    }

    fn group(name: &str) -> Group {
        Group::parse(name).unwrap()
    }

    #[test]
    fn the_first_matching_rule_wins_and_nothing_matching_is_denied() {
        let rules = rules(
            r#"
            [[rule]]
            host = "wiki.example.com"
            path = "/admin"
            policy = "deny"

            [[rule]]
            host = "wiki.example.com"
            policy = "public"
            "#,
        );
        let access = |host, path| rules.access(&target(host, path, "GET"), None);
        assert_eq!(access("wiki.example.com", "/admin"), Access::Forbidden);
        assert_eq!(
            access("wiki.example.com", "/admin/users"),
            Access::Forbidden
        );
        assert_eq!(
            access("wiki.example.com", "/administrator"),
            Access::Allowed
        );
        assert_eq!(access("wiki.example.com", "/"), Access::Allowed);
        assert_eq!(access("other.example.com", "/"), Access::Forbidden);
    }

    #[test]
    fn each_policy_says_what_it_promises() {
        let rules = rules(
            r#"
            [[rule]]
            path = "/open"
            policy = "public"
            [[rule]]
            path = "/members"
            policy = "members"
            [[rule]]
            path = "/strong"
            policy = "two-step"
            [[rule]]
            path = "/admins"
            groups = ["admins", "ops"]
            [[rule]]
            path = "/strong-admins"
            policy = "two-step"
            groups = ["admins"]
            [[rule]]
            path = "/closed"
            policy = "deny"
            "#,
        );
        let admins = [group("admins")];
        let plain = Asker {
            groups: &[],
            second_factor: false,
        };
        let admin = Asker {
            groups: &admins,
            second_factor: false,
        };
        let strong_admin = Asker {
            second_factor: true,
            ..admin
        };
        let access = |path, asker| rules.access(&target("h.test", path, "GET"), asker);
        use Access::*;
        for (path, anonymous, member, in_group, with_code) in [
            ("/open", Allowed, Allowed, Allowed, Allowed),
            ("/members", LogIn, Allowed, Allowed, Allowed),
            ("/strong", LogIn, StepUp, StepUp, Allowed),
            ("/admins", LogIn, Forbidden, Allowed, Allowed),
            ("/strong-admins", LogIn, Forbidden, StepUp, Allowed),
            ("/closed", Forbidden, Forbidden, Forbidden, Forbidden),
            ("/unlisted", Forbidden, Forbidden, Forbidden, Forbidden),
        ] {
            assert_eq!(access(path, None), anonymous, "{path} anonymous");
            assert_eq!(access(path, Some(plain)), member, "{path} member");
            assert_eq!(access(path, Some(admin)), in_group, "{path} admin");
            assert_eq!(access(path, Some(strong_admin)), with_code, "{path} 2fa");
        }
    }

    #[test]
    fn hosts_match_exactly_or_below_a_wildcard() {
        let rules = rules(
            r#"
            [[rule]]
            host = "*.apps.test"
            policy = "public"
            [[rule]]
            host = "apps.test"
            policy = "members"
            "#,
        );
        let access = |host| rules.access(&target(host, "/", "GET"), None);
        assert_eq!(access("a.apps.test"), Access::Allowed);
        assert_eq!(access("a.b.apps.test"), Access::Allowed);
        assert_eq!(access("apps.test"), Access::LogIn);
        assert_eq!(access("evilapps.test"), Access::Forbidden);
        assert_eq!(access("apps.test.evil"), Access::Forbidden);
        assert!(rules.names_host("x.apps.test") && rules.names_host("apps.test"));
        assert!(!rules.names_host("evil.test"));
    }

    #[test]
    fn methods_and_globs_narrow_a_rule() {
        let rules = rules(
            r#"
            [[rule]]
            path = "/api/*/items"
            methods = ["post", "DELETE"]
            policy = "deny"
            [[rule]]
            path = "/files/**.pdf"
            policy = "members"
            [[rule]]
            policy = "public"
            "#,
        );
        let access = |path, method| rules.access(&target("h.test", path, method), None);
        assert_eq!(access("/api/v1/items", "POST"), Access::Forbidden);
        assert_eq!(access("/api/v1/items", "DELETE"), Access::Forbidden);
        assert_eq!(access("/api/v1/items", "GET"), Access::Allowed);
        assert_eq!(
            access("/api/v1/x/items", "POST"),
            Access::Allowed,
            "* stops at /"
        );
        assert_eq!(
            access("/files/a/b/c.pdf", "GET"),
            Access::LogIn,
            "** crosses /"
        );
        assert_eq!(access("/files/a/b/c.txt", "GET"), Access::Allowed);
    }

    #[test]
    fn globs_match_like_shells() {
        for (pattern, text, expected) in [
            ("/a/*", "/a/b", true),
            ("/a/*", "/a/b/c", false),
            ("/a/**", "/a/b/c", true),
            ("/a/?", "/a/b", true),
            ("/a/?", "/a/bc", false),
            ("/*.png", "/x.png", true),
            ("/*.png", "/x/y.png", false),
            ("/**/end", "/a/b/end", true),
            ("/*x*y*z", "/axbyzz", true),
            ("/a", "/a/b", false),
            ("/**/x*y", "/a/x/b/xzy", true),
            ("/*/x*y", "/a/x/b/xzy", false),
            ("/a?b", "/a/b", false),
        ] {
            assert_eq!(
                glob(pattern.as_bytes(), text.as_bytes()),
                expected,
                "{pattern} {text}"
            );
        }
    }

    #[test]
    fn paths_are_seen_as_an_app_would_resolve_them() {
        for (raw, seen) in [
            ("/admin", Some("/admin")),
            ("/public/../admin", Some("/admin")),
            ("/public/%2e%2e/admin", Some("/admin")),
            ("/public%2F..%2Fadmin", Some("/admin")),
            ("//admin", Some("/admin")),
            ("/./admin/", Some("/admin/")),
            ("/%61dmin", Some("/admin")),
            ("/..\\admin", Some("/admin")),
            ("/../../admin", Some("/admin")),
            ("/a/b/..", Some("/a/")),
            ("/", Some("/")),
            ("/%zz", None),
            ("/%", None),
            ("/a%00b", None),
            ("/a%0d%0a", None),
            ("/%ff", None),
            ("/admin;x", Some("/admin")),
            ("/x/..;/admin", Some("/admin")),
            ("/;/admin", Some("/admin")),
            ("/a%3bb/c", Some("/a/c")),
        ] {
            assert_eq!(normalize_path(raw).as_deref(), seen, "{raw}");
        }
    }

    #[test]
    fn a_bad_file_names_its_line_and_what_was_expected() {
        let cases = [
            (
                "[[rule]]\npolicy = \"members\"\n\n[[rule]]\npolicy = \"maybe\"\n",
                5,
                "public",
            ),
            (
                "[[rule]]\nhost = \"Wiki.example.com:80\"\npolicy = \"public\"\n",
                1,
                "host",
            ),
            ("[[rule]]\npath = \"/x\"\n", 1, "policy"),
            (
                "[[rule]]\npolicy = \"public\"\ngroups = [\"a\"]\n",
                1,
                "groups need",
            ),
            ("[[rule]]\npolicy = \"deny\"\nhots = \"x\"\n", 3, "hots"),
            (
                "[[rule]]\npolicy = \"deny\"\nmethods = [\"FETCH\"]\n",
                1,
                "methods",
            ),
            ("[[rule]\n", 1, ""),
        ];
        for (text, line, says) in cases {
            let err = Rules::parse(text, "r.toml").unwrap_err();
            assert_eq!(err.line, Some(line), "{text:?}: {err}");
            assert!(
                err.to_string().starts_with(&format!("r.toml:{line}: ")),
                "{err}"
            );
            assert!(err.message.contains(says), "{text:?}: {err}");
        }
    }
}
