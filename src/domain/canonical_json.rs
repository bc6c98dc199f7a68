//! JSON in the canonical form of RFC 8785 (JCS), for hashing: object members sorted by key,
//! no whitespace, strings escaped minimally, numbers as their shortest round-trip form. The
//! audit log hashes each row in this form, so any tool that implements RFC 8785 can recompute
//! the chain.

use std::fmt::Write;

use serde_json::Value;

/// `value` in canonical form.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        // Integers print as themselves; the log's numbers are integers (ids, Unix milliseconds,
        // quota units), which JSON numbers hold exactly below 2^53.
        Value::Number(n) => match n.as_f64() {
            // ECMAScript prints a whole float without its fraction (`2`, not `2.0`).
            Some(f) if !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() < 1e21 => {
                let _ = write!(out, "{}", f as i128);
            }
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(members) => {
            // Sorted by the keys' UTF-16 code units, as RFC 8785 asks.
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (key, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn members_are_sorted_and_whitespace_dropped() {
        let value = json!({"b": 1, "a": [true, null, "x"], "c": {"z": 0, "y": -5}});
        assert_eq!(
            to_string(&value),
            r#"{"a":[true,null,"x"],"b":1,"c":{"y":-5,"z":0}}"#
        );
    }

    #[test]
    fn strings_escape_only_what_they_must() {
        let value = json!("é\u{1}\n\"/\\");
        assert_eq!(to_string(&value), r#""é\u0001\n\"/\\""#);
    }

    /// RFC 8785 sorts by UTF-16 code units: a supplementary character (a surrogate pair,
    /// 0xD8xx) sorts before U+FB00, though its UTF-8 bytes sort after.
    #[test]
    fn keys_sort_by_utf16_code_units() {
        let value = json!({"\u{fb00}": 1, "\u{1f600}": 2});
        assert_eq!(to_string(&value), "{\"\u{1f600}\":2,\"\u{fb00}\":1}");
    }
}
