//! The one clock every record is stamped with.

/// Milliseconds since the Unix epoch: the one time format stored in every table.
pub fn now_ms() -> i64 {
    // Seconds and milliseconds apart: the relay calls this twice per request, and a division
    // of the 128-bit nanosecond count is a library call.
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    since_epoch.as_secs() as i64 * 1000 + i64::from(since_epoch.subsec_millis())
}
