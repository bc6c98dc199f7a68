//! Server-sent events: where one ends, what data it carries, how to write one.

use bytes::BytesMut;
use serde_json::Value;

/// Where an event ends: the index after its closing blank line.
pub fn event_end(buffer: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 1 < buffer.len() {
        match buffer[i] {
            b'\n' if buffer[i + 1] == b'\n' => return Some(i + 2),
            b'\r' if buffer[i + 1] == b'\r' => return Some(i + 2),
            b'\r' if buffer[i..].starts_with(b"\r\n\r\n") => return Some(i + 4),
            _ => i += 1,
        }
    }
    None
}

/// The `data:` payload of one event (several data lines are joined with newlines, as the SSE
/// specification says).
pub fn event_data(event: &[u8]) -> Option<Vec<u8>> {
    let mut data: Option<Vec<u8>> = None;
    for line in event.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(b"data:") {
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            match &mut data {
                Some(joined) => {
                    joined.push(b'\n');
                    joined.extend_from_slice(rest);
                }
                None => data = Some(rest.to_vec()),
            }
        }
    }
    data
}

/// Writes one `data:` event holding `value`.
pub fn write_data(value: &Value, out: &mut BytesMut) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(value.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}
