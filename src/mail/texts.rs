//! Every mail Wicket sends, worded in one place, with the site's name (`--site-name`).
//! Plain text; never a password, a hash, a key or a session id in it.

use time::OffsetDateTime;

/// A mail's subject and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
}

/// Where and how a change or a login came about, as a mail tells it.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The browser and system, in a few words.
    pub browser: &'a str,
    /// The client address.
    pub address: &'a str,
}

/// "Confirm your email address": `link` confirms it.
pub fn confirm_address(name: &str, link: &str) -> Letter {
    let site = crate::brand::name();
    Letter {
        subject: format!("Confirm your email address for {site}"),
        body: format!(
            "Hello {name},\n\n\
             please confirm that this is your address by opening this link:\n\n\
             {link}\n\n\
             It works once, within 24 hours. Once confirmed, the address can be used to \
             reset your password if you forget it.\n\n\
             If you did not give this address to {site}, ignore this message.\n"
        ),
    }
}

/// "Reset your password": `link` opens the reset form, asked for from `from`.
pub fn reset(name: &str, from: Origin<'_>, link: &str) -> Letter {
    let site = crate::brand::name();
    Letter {
        subject: format!("Reset your {site} password"),
        body: format!(
            "Hello {name},\n\n\
             someone (we hope you) asked to reset the password of your {site} account \
             from {browser} ({client}). To choose a new password, open this link:\n\n\
             {link}\n\n\
             It works once, within 30 minutes. If you did not ask, ignore this message: \
             your password stays as it is.\n",
            browser = from.browser,
            client = from.address,
        ),
    }
}

/// "Your password was changed" (`how`: "changed" or "reset") from `from`; `forgot`
/// is the link to ask for a reset.
pub fn password_changed(name: &str, how: &str, from: Origin<'_>, forgot: &str) -> Letter {
    let site = crate::brand::name();
    Letter {
        subject: format!("Your {site} password was changed"),
        body: format!(
            "Hello {name},\n\n\
             the password of your {site} account was {how} at {at} from {browser} \
             ({address}). Every other session was ended.\n\n\
             If this was not you, reset your password now: {forgot}\n",
            at = when(OffsetDateTime::now_utc()),
            browser = from.browser,
            address = from.address,
        ),
    }
}

/// "New login to your account" from `from`; `link` is "This wasn't me".
pub fn new_login(name: &str, from: Origin<'_>, link: &str) -> Letter {
    let site = crate::brand::name();
    Letter {
        subject: format!("New login to your {site} account"),
        body: format!(
            "Hello {name},\n\n\
             your {site} account was just logged in to from a browser it has not used \
             before:\n\n\
             \x20 When:     {at}\n\
             \x20 Browser:  {browser}\n\
             \x20 Address:  {address}\n\n\
             If this was you, there is nothing to do.\n\n\
             If it was not, open this link: it ends every session of your account and \
             lets you choose a new password (it works once, within 24 hours):\n\n\
             {link}\n",
            at = when(OffsetDateTime::now_utc()),
            browser = from.browser,
            address = from.address,
        ),
    }
}

/// `29 Nov 2026, 14:05 UTC`: as the pages write times.
pub fn when(at: OffsetDateTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{} {} {}, {:02}:{:02} UTC",
        at.day(),
        MONTHS[usize::from(u8::from(at.month())) - 1],
        at.year(),
        at.hour(),
        at.minute()
    )
}

/// A change to an account that its owner is told of.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// Two-step login was turned on.
    TwoStepOn,
    /// Two-step login was turned off.
    TwoStepOff,
    /// New recovery codes replaced the old ones.
    RecoveryCodesRenewed,
    /// A passkey of this name was added.
    PasskeyAdded(&'a str),
    /// A passkey of this name was removed.
    PasskeyRemoved(&'a str),
    /// The address was changed (to this address) or removed (`None`): told to the
    /// old one.
    AddressChanged(Option<&'a str>),
    /// The account was deleted.
    AccountDeleted,
    /// The operator disabled the account.
    Disabled,
}

/// "Something changed on your account": what, when, from where (if a browser did it),
/// and what to do if it was not the owner: `link` undoes it ("This wasn't me"), valid
/// for `valid`.
pub fn changed(
    name: &str,
    change: Change<'_>,
    from: Option<Origin<'_>>,
    link: Option<(&str, &str)>,
) -> Letter {
    let site = crate::brand::name();
    let (subject, what) = match change {
        Change::TwoStepOn => (
            format!("Two-step login was turned on for your {site} account"),
            "two-step login was turned on for your account: logging in now also asks for \
             a code from an authenticator app"
                .to_owned(),
        ),
        Change::TwoStepOff => (
            format!("Two-step login was turned off for your {site} account"),
            "two-step login was turned off for your account: a password alone logs in now"
                .to_owned(),
        ),
        Change::RecoveryCodesRenewed => (
            format!("New recovery codes for your {site} account"),
            "new recovery codes were made for your account; the old ones no longer work".to_owned(),
        ),
        Change::PasskeyAdded(key) => (
            format!("A passkey was added to your {site} account"),
            format!("a passkey called \"{key}\" was added to your account: it logs in alone"),
        ),
        Change::PasskeyRemoved(key) => (
            format!("A passkey was removed from your {site} account"),
            format!("the passkey called \"{key}\" was removed from your account"),
        ),
        Change::AddressChanged(Some(_)) => (
            format!("The email address of your {site} account was changed"),
            "the email address of your account was changed to another one: this address \
             no longer receives its password resets and notices"
                .to_owned(),
        ),
        Change::AddressChanged(None) => (
            format!("The email address of your {site} account was removed"),
            "this email address was removed from your account: it no longer receives its \
             password resets and notices"
                .to_owned(),
        ),
        Change::AccountDeleted => (
            format!("Your {site} account was deleted"),
            "your account was deleted, with everything the site kept about it".to_owned(),
        ),
        Change::Disabled => (
            format!("Your {site} account was disabled"),
            "the site's operator disabled your account: it cannot log in, and every \
             session was ended"
                .to_owned(),
        ),
    };
    let at = when(OffsetDateTime::now_utc());
    let from = from
        .map(|o| format!(" from {} ({})", o.browser, o.address))
        .unwrap_or_default();
    let advice = match (change, link) {
        (Change::AddressChanged(_), Some((link, valid))) => format!(
            "If this was not you, open this link: it puts this address back, ends every \
             session of your account and lets you choose a new password (it works once, \
             within {valid}):\n\n{link}\n"
        ),
        (_, Some((link, valid))) => format!(
            "If this was not you, open this link: it ends every session of your account \
             and lets you choose a new password (it works once, within {valid}):\n\n{link}\n"
        ),
        (Change::AccountDeleted, None) => {
            "If this was not you, tell the site's operator at once.\n".to_owned()
        }
        (Change::Disabled, None) => {
            "Ask the site's operator if you think it should not be.\n".to_owned()
        }
        (_, None) => "If this was not you, tell the site's operator at once.\n".to_owned(),
    };
    Letter {
        subject,
        body: format!("Hello {name},\n\n{what}, at {at}{from}.\n\n{advice}"),
    }
}

/// "Your two-step login was reset": the operator removed the authenticator app, the
/// recovery codes and the passkeys (`passkeys` of them); `account` is where to set
/// them up again.
pub fn second_factor_reset(name: &str, passkeys: usize, account: &str) -> Letter {
    let site = crate::brand::name();
    let keys = match passkeys {
        0 => String::new(),
        1 => " and your passkey".to_owned(),
        n => format!(" and your {n} passkeys"),
    };
    Letter {
        subject: format!("Your {site} two-step login was reset"),
        body: format!(
            "Hello {name},\n\n\
             the operator of {site} removed your account's two-step login (the \
             authenticator app and its recovery codes){keys}, and logged out every \
             browser. Your password is unchanged: log in with it, then turn two-step \
             login on again here:\n\n\
             {account}\n\n\
             If you did not ask for this, tell the operator at once.\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_on_the_pages() {
        let at = time::macros::datetime!(2026-11-29 14:05:09 UTC);
        assert_eq!(when(at), "29 Nov 2026, 14:05 UTC");
        let at = time::macros::datetime!(2027-01-03 04:00:00 UTC);
        assert_eq!(when(at), "3 Jan 2027, 04:00 UTC");
    }

    #[test]
    fn every_mail_names_the_site() {
        let from = Origin {
            browser: "Firefox on Linux",
            address: "203.0.113.9",
        };
        for letter in [
            confirm_address("ann", "https://x/verify"),
            reset("ann", from, "https://x/reset"),
            password_changed("ann", "reset", from, "https://x/forgot"),
            new_login("ann", from, "https://x/not-me"),
        ] {
            assert!(letter.subject.contains(crate::brand::name()), "{letter:?}");
            assert!(letter.body.contains("Hello ann,"), "{letter:?}");
        }
    }
}
