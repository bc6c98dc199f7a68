//! How the portal writes times.

/// Milliseconds since the epoch as `2026-11-30 21:04` (UTC).
pub fn minute(ms: i64) -> String {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) else {
        return String::new();
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// Milliseconds since the epoch as a date, `2026-11-30` (UTC).
pub fn date(ms: i64) -> String {
    minute(ms).chars().take(10).collect()
}

/// The text key naming how a request ended.
pub fn outcome_key(outcome: crate::domain::kinds::Outcome) -> &'static str {
    use crate::domain::kinds::Outcome;
    match outcome {
        Outcome::Success => "web-outcome-success",
        Outcome::ClientClosed => "web-outcome-client-closed",
        Outcome::StreamError => "web-outcome-stream-error",
        Outcome::UpstreamError => "web-outcome-upstream-error",
        Outcome::Refused => "web-outcome-refused",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_minutes_and_dates() {
        assert_eq!(super::minute(1_798_761_600_000), "2027-01-01 00:00");
        assert_eq!(super::date(1_798_761_660_000), "2027-01-01");
    }
}
