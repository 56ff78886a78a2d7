//! Validated domain types: usernames, account ids and passwords, parsed at the edge.

use std::fmt;
use std::sync::LazyLock;

/// Shortest and longest usernames, in characters.
pub const USERNAME_LEN: std::ops::RangeInclusive<usize> = 3..=32;
/// Shortest and longest passwords, in characters (not bytes).
pub const PASSWORD_LEN: std::ops::RangeInclusive<usize> = 8..=1024;

/// A valid username: 3–32 of ASCII letters, digits, `_`, `.` and `-`.
///
/// It keeps the case it was registered with for display; [`Username::key`] is the
/// case-insensitive identity used for lookups and uniqueness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

/// Why a username was refused, worded for the person typing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsernameError {
    /// Fewer than 3 or more than 32 characters.
    Length,
    /// A character outside letters, digits, `_ . -`.
    Characters,
}

impl fmt::Display for UsernameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length => write!(
                f,
                "Usernames are {} to {} characters long.",
                USERNAME_LEN.start(),
                USERNAME_LEN.end()
            ),
            Self::Characters => {
                f.write_str("Use only letters, digits, dots, dashes and underscores.")
            }
        }
    }
}

impl Username {
    /// Parses what a person typed; surrounding spaces are ignored.
    pub fn parse(input: &str) -> Result<Self, UsernameError> {
        let name = input.trim();
        // Check characters first: a length counted in chars of junk is not meaningful.
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(UsernameError::Characters);
        }
        if !USERNAME_LEN.contains(&name.len()) {
            return Err(UsernameError::Length);
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive identity: safe as a file name (ASCII `[a-z0-9_.-]`, never `.`/`..`).
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// Read back from a record: a name that no longer parses is corrupt data, not a user.
impl<'de> serde::Deserialize<'de> for Username {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Username {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// A name reads as the text it is, wherever text is wanted.
impl std::ops::Deref for Username {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A group's name: 1–64 of lower-case ASCII letters, digits, `_`, `.` and `-` (typed
/// in any case), so a list of them is a plain comma-separated header value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Group(String);

impl Group {
    /// Parses a group name; upper case is folded.
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let name = input.trim().to_ascii_lowercase();
        if name.is_empty() || name.len() > 64 {
            return Err("group names are 1 to 64 characters long");
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err("use only letters, digits, dots, dashes and underscores");
        }
        Ok(Self(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Group {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Group {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// What a typed username may show in a log line: the name itself when it is a valid
/// one (so at most 32 characters), else only its length — a password typed into the
/// name field, or kilobytes of junk, never reach the log.
pub fn loggable(typed: &str) -> String {
    match Username::parse(typed) {
        Ok(name) => name.0,
        Err(_) => format!("<not a name: {} characters>", typed.chars().count()),
    }
}

/// An email address as typed (surrounding spaces dropped), checked by lettre's
/// parser: `local@domain`, at most 254 characters, no display name, no spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

/// Why an email address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadEmail;

impl fmt::Display for BadEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Enter an email address like name@example.com.")
    }
}

impl EmailAddress {
    /// The longest address SMTP carries (RFC 5321's 256-octet path less the brackets).
    const MAX_LEN: usize = 254;

    /// Checks `text` as an address.
    pub fn parse(text: &str) -> Result<Self, BadEmail> {
        let text = text.trim();
        if text.len() > Self::MAX_LEN || text.contains(|c: char| c.is_whitespace() || c == '<') {
            return Err(BadEmail);
        }
        let address: lettre::Address = text.parse().map_err(|_| BadEmail)?;
        // A domain without a dot is not one mail can reach from the internet.
        if !address.domain().contains('.') {
            return Err(BadEmail);
        }
        Ok(Self(text.to_owned()))
    }

    /// The address as typed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An account's id: 128 random bits as 32 lower-case hex characters, given at
/// creation and never changed. What belongs to an account (sessions, device entries,
/// tokens, mailed links) names it by this id, not by its name: a name deleted and
/// registered again by someone else is another account and inherits nothing.
///
/// The empty id is "not yet given" (a record written before accounts had ids); the
/// user store gives one when it first reads such a record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct AccountId(String);

impl AccountId {
    /// A new id from the OS CSPRNG.
    pub fn generate() -> Self {
        Self(crate::secret::hex(&crate::secret::random_bytes::<16>()))
    }

    /// An id read back from a token or a name (32 lower-case hex characters,
    /// checked by the caller).
    pub fn from_hex(text: &str) -> Self {
        Self(text.to_owned())
    }

    /// Whether no id has been given yet.
    pub fn is_unset(&self) -> bool {
        self.0.is_empty()
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password of acceptable length, kept exactly as typed. `Debug` never shows it.
pub struct Password(String);

/// Why a password was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordError {
    /// Fewer than 8 characters.
    TooShort,
    /// More than 1024 characters.
    TooLong,
    /// On the list of the most common passwords.
    Common,
    /// Easy to guess by other means (repeats, sequences, the user's own name …):
    /// the sentence says why and what would be better.
    Weak(String),
}

impl fmt::Display for PasswordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => write!(f, "Use at least {} characters.", PASSWORD_LEN.start()),
            Self::TooLong => write!(f, "Use at most {} characters.", PASSWORD_LEN.end()),
            Self::Common => f.write_str(
                "This password is one of the most commonly used, so it is among the first \
                 that attackers try. Please choose another.",
            ),
            Self::Weak(why) => f.write_str(why),
        }
    }
}

/// The passwords of 8 or more characters from Django's list of the 20,000 most
/// common passwords (lower-cased, sorted), shipped in the binary.
const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

/// Whether `password` (ignoring case and surrounding spaces) is a very common one.
fn is_common(password: &str) -> bool {
    // The file is sorted, so a binary search over its lines finds a password.
    static LINES: LazyLock<Vec<&str>> = LazyLock::new(|| COMMON_PASSWORDS.lines().collect());
    let wanted = password.trim().to_lowercase();
    LINES.binary_search(&wanted.as_str()).is_ok()
}

/// The least zxcvbn score accepted: 3 of 4, "safely unguessable" (about 10^10
/// guesses), enough against online guessing and a stolen slow hash alike.
const MIN_STRENGTH: u8 = 3;

/// Characters of a password the strength estimate looks at (its cost grows with
/// length; a strong start makes a strong password).
const ESTIMATED_CHARS: usize = 64;

/// Why `password` would be easy to guess for the account `username`, if it would:
/// a sentence for the person choosing it. No composition rules: length and
/// unpredictability are what count.
fn weakness(password: &str, username: &str) -> Option<String> {
    let start: String = password.chars().take(ESTIMATED_CHARS).collect();
    let estimate = zxcvbn::zxcvbn(&start, &[username, "wicket"]);
    if u8::from(estimate.score()) >= MIN_STRENGTH {
        return None;
    }
    let feedback = estimate.feedback();
    let why = feedback
        .and_then(|f| f.warning())
        .map_or_else(|| "It follows a pattern.".to_owned(), |w| w.to_string());
    let better = feedback.and_then(|f| f.suggestions().first()).map_or_else(
        || "Add another word or two; uncommon words are better.".to_owned(),
        ToString::to_string,
    );
    Some(format!(
        "This password would be easy to guess. {why} {better}"
    ))
}

impl Password {
    /// Checks a new password for the account `username`: its length (in
    /// characters), that it is not one of the most common, and that it is not easy to
    /// guess otherwise (repeats, sequences, keyboard walks, the name itself). Never
    /// trims, normalises or truncates what is kept.
    pub fn parse(input: String, username: &str) -> Result<Self, PasswordError> {
        let chars = input.chars().count();
        if chars < *PASSWORD_LEN.start() {
            Err(PasswordError::TooShort)
        } else if chars > *PASSWORD_LEN.end() {
            Err(PasswordError::TooLong)
        } else if is_common(&input) {
            Err(PasswordError::Common)
        } else if let Some(why) = weakness(&input, username) {
            Err(PasswordError::Weak(why))
        } else {
            Ok(Self(input))
        }
    }

    /// The exact bytes to hash.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// A password an account already has (it just matched the account's imported
    /// hash), kept whatever today's rules say: only to be hashed again by scrypt.
    pub(crate) fn already_held(input: String) -> Self {
        Self(input)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_of_letters_digits_and_punctuation_are_accepted() {
        for good in [
            "bob",
            "Alice_99",
            "a.b-c",
            "x".repeat(32).as_str(),
            "  carol  ",
        ] {
            assert!(Username::parse(good).is_ok(), "{good:?} was refused");
        }
        assert_eq!(Username::parse("  carol ").unwrap().as_str(), "carol");
    }

    #[test]
    fn usernames_of_the_wrong_length_are_refused() {
        assert_eq!(Username::parse("ab"), Err(UsernameError::Length));
        assert_eq!(Username::parse(&"x".repeat(33)), Err(UsernameError::Length));
        assert_eq!(Username::parse(""), Err(UsernameError::Length));
    }

    #[test]
    fn usernames_with_other_characters_are_refused() {
        for bad in [
            "bo b",
            "../etc",
            "a/b",
            "ali\u{0}ce",
            "zoë",
            "<script>",
            "a\\b",
            "名前です",
        ] {
            assert_eq!(
                Username::parse(bad),
                Err(UsernameError::Characters),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_key_ignores_case_and_display_keeps_it() {
        let name = Username::parse("MixedCase").unwrap();
        assert_eq!(name.key(), "mixedcase");
        assert_eq!(name.to_string(), "MixedCase");
        assert_eq!(Username::parse("mixedCASE").unwrap().key(), name.key());
    }

    /// `len` characters that no estimate finds a pattern in.
    fn unpredictable(len: usize, unit: &str) -> String {
        let alphabet: Vec<char> = format!("{unit}q7Zk2Wm9Xr4Vp").chars().collect();
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                alphabet[(state % alphabet.len() as u64) as usize]
            })
            .collect()
    }

    #[test]
    fn passwords_are_counted_in_characters_and_kept_exactly() {
        assert_eq!(
            Password::parse("short".into(), "alice").err(),
            Some(PasswordError::TooShort)
        );
        // Seven characters are too few, however many bytes they take.
        assert_eq!(
            Password::parse("жЯ3ф9Ъд".into(), "alice").err(),
            Some(PasswordError::TooShort)
        );
        let unicode = "жЯ3ф9Ъд!щЮ".to_string();
        assert_eq!(
            Password::parse(unicode.clone(), "alice")
                .unwrap()
                .as_bytes(),
            unicode.as_bytes()
        );
        let spaced = "  spaces kept  ".to_string();
        assert_eq!(
            Password::parse(spaced.clone(), "alice").unwrap().as_bytes(),
            spaced.as_bytes()
        );
        assert!(Password::parse(unpredictable(1024, "éü"), "alice").is_ok());
        assert_eq!(
            Password::parse(unpredictable(1025, "éü"), "alice").err(),
            Some(PasswordError::TooLong)
        );
    }

    #[test]
    fn the_most_common_passwords_are_refused_in_any_case() {
        for common in ["password123", "PASSWORD1", "iloveyou", " qwertyuiop "] {
            assert_eq!(
                Password::parse(common.into(), "alice").err(),
                Some(PasswordError::Common),
                "{common}"
            );
        }
        assert!(Password::parse("correct horse battery".into(), "alice").is_ok());
    }

    #[test]
    fn easily_guessed_passwords_are_refused_with_a_reason_and_a_better_way() {
        for (weak, name) in [
            ("aaaaaaaaaaaa", "bob"),
            ("alicealice", "alice"),
            ("Alice2026!", "alice"),
            ("wicketwicket1", "bob"),
            ("mnbvcxzlkjhg", "bob"),
            ("bob.smith.bob", "bob.smith"),
            ("qwertyuiopasdf", "bob"),
        ] {
            match Password::parse(weak.into(), name) {
                Err(PasswordError::Weak(why)) => {
                    assert!(
                        why.starts_with("This password would be easy to guess."),
                        "{why}"
                    );
                    assert!(why.len() > 50, "{weak}: says why and what is better: {why}");
                }
                other => panic!("{weak} for {name}: {other:?}"),
            }
        }
        assert!(
            Password::parse("alicealice".into(), "bob").is_err(),
            "a repeat anyway"
        );
        assert!(Password::parse("plum tiger violin".into(), "alice").is_ok());
    }

    #[test]
    fn the_common_password_list_is_sorted_and_lower_case() {
        let lines: Vec<&str> = COMMON_PASSWORDS.lines().collect();
        assert!(lines.len() > 8_000);
        assert!(lines.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
        assert!(
            lines
                .iter()
                .all(|l| l.chars().count() >= 8 && *l == l.to_lowercase())
        );
    }

    #[test]
    fn password_debug_is_redacted() {
        let password = Password::parse("correct horse battery".into(), "alice").unwrap();
        assert_eq!(format!("{password:?}"), "Password(<redacted>)");
    }
}
