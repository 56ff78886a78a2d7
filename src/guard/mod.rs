//! Guarding other apps: the access rules (`--access-rules`), what they say about a
//! request a proxy asks about, and where a login may return to (`rd`).
//!
//! The rules live behind a lock as one `Arc`: a check clones the `Arc` (no copy of the
//! rules), and `SIGHUP` swaps in a new set only if the file parses.

mod returns;
mod rules;

use std::path::PathBuf;

use poem::http::HeaderValue;
use std::sync::{Arc, RwLock};

pub use self::returns::ReturnPolicy;
pub use self::rules::{
    Access, Asker, Policy, Rule, Rules, RulesError, Target, line_at, normalize_path, parse_toml,
    plain_authority,
};

/// The access rules in force and the cookie domain: what forward-auth and `rd` need.
#[derive(Debug, Clone)]
pub struct Guard {
    file: Option<PathBuf>,
    rules: Arc<RwLock<Arc<Rules>>>,
    policy: Arc<RwLock<HeaderValue>>,
    cookie_domain: Option<String>,
    form_targets: Arc<RwLock<Vec<String>>>,
}

impl Guard {
    /// The rules in `file` (none: every guarded request is denied), for a site whose
    /// session cookie is shared under `cookie_domain`.
    pub fn load(file: Option<PathBuf>, cookie_domain: Option<String>) -> Result<Self, RulesError> {
        let rules = match &file {
            Some(path) => Rules::load(path)?,
            None => Rules::default(),
        };
        let policy = content_policy(&rules, cookie_domain.as_deref(), &[]);
        Ok(Self {
            file,
            rules: Arc::new(RwLock::new(Arc::new(rules))),
            policy: Arc::new(RwLock::new(policy)),
            cookie_domain,
            form_targets: Arc::new(RwLock::new(Vec::new())),
        })
    }

    /// Lets the pages' forms also lead to `origins` (the apps the
    /// OpenID Connect provider answers: a consent or a login ends with a redirect
    /// there).
    pub fn set_form_targets(&self, origins: Vec<String>) {
        let policy = content_policy(&self.rules(), self.cookie_domain(), &origins);
        *self
            .form_targets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = origins;
        *self
            .policy
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = policy;
    }

    /// The `Content-Security-Policy` of Wicket's pages: their forms may lead (by a
    /// login's redirect) to the apps Wicket guards, and nowhere else.
    pub fn content_policy(&self) -> HeaderValue {
        self.policy
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The rules in force now.
    pub fn rules(&self) -> Arc<Rules> {
        self.rules
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Reads the file again; a bad file leaves the rules in force as they were.
    pub fn reload(&self) -> Result<usize, RulesError> {
        let Some(path) = &self.file else {
            return Ok(0);
        };
        let rules = Rules::load(path)?;
        let count = rules.iter().count();
        let targets = self
            .form_targets
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let policy = content_policy(&rules, self.cookie_domain(), &targets);
        *self
            .rules
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(rules);
        *self
            .policy
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = policy;
        Ok(count)
    }

    /// `--cookie-domain`, if set.
    pub fn cookie_domain(&self) -> Option<&str> {
        self.cookie_domain.as_deref()
    }

    /// `rd` as the address to return to after login, if Wicket guards it.
    pub fn return_to(&self, rd: &str) -> Option<String> {
        let rules = self.rules();
        let policy = ReturnPolicy {
            rules: &rules,
            cookie_domain: self.cookie_domain(),
        };
        policy.check(rd)
    }
}

/// Wicket's page policy, whose `form-action` also allows the origins a login may
/// return to (a form's redirect is held to it): the cookie domain and the hosts the
/// rules name, on any port, and over `http` only for `.test` and `localhost` names.
fn content_policy(rules: &Rules, cookie_domain: Option<&str>, origins: &[String]) -> HeaderValue {
    let mut hosts: Vec<String> = Vec::new();
    if let Some(domain) = cookie_domain {
        hosts.extend([domain.to_owned(), format!("*.{domain}")]);
    }
    hosts.extend(
        rules
            .iter()
            .filter_map(|rule| rule.host().map(str::to_owned)),
    );
    // Several rules for one host name it once.
    let mut seen = std::collections::HashSet::new();
    hosts.retain(|host| seen.insert(host.clone()));
    let mut sources = String::from("'self'");
    for host in hosts {
        let test_name =
            host == "localhost" || host.ends_with(".test") || host.ends_with(".localhost");
        sources.push_str(&format!(" https://{host}:*"));
        if test_name {
            sources.push_str(&format!(" http://{host}:*"));
        }
    }
    for origin in origins {
        if !sources.split(' ').any(|s| s == origin) {
            sources.push(' ');
            sources.push_str(origin);
        }
    }
    let text = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action {sources}; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&text).expect("host names from checked rules are header-safe")
}
