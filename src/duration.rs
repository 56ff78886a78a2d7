//! Durations as people type them: `90s`, `30m`, `12h`, `7d`.

use std::time::Duration;

/// Parses `90s`, `30m`, `12h` or `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.len().saturating_sub(1);
    let (number, unit) = text.split_at(split);
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 60 * 60,
        "d" => 24 * 60 * 60,
        _ => return Err(format!("'{text}' needs a unit: s, m, h or d (e.g. 30m)")),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a whole number followed by s, m, h or d"))?;
    match number.checked_mul(seconds_per_unit) {
        Some(0) => Err("a duration must be longer than zero".into()),
        Some(seconds) => Ok(Duration::from_secs(seconds)),
        None => Err(format!("'{text}' is too long")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_their_units() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
    }

    #[test]
    fn durations_without_a_unit_or_number_are_refused() {
        for bad in [
            "",
            "30",
            "m",
            "-5m",
            "1.5h",
            "0s",
            "5w",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
