//! What the forms say, where more than one says it.

/// A form asking for the current password, when it is wrong.
pub const WRONG_PASSWORD: &str = "That is not your current password.";

/// Every form asking for a second-factor code, when it is wrong.
pub const WRONG_CODE: &str =
    "That code is not right. Codes change every 30 seconds; each works once.";

/// Every form with a new password and its repetition, when they differ.
pub const MISMATCH: &str = "The passwords do not match.";
