//! NUL characters in what people send to the portal and `/api`: PostgreSQL cannot store them
//! in text, and no name, address or setting needs one, so they are refused where a request
//! comes in (a prompt on `/v1` may hold one and is never stored as text, so the relay lets it
//! through).

/// Whether a URI's path or query spells a NUL (`%00`, in any case).
pub fn in_uri(uri: &str) -> bool {
    uri.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

/// Whether a JSON text holds a NUL in a string: the escape `\u0000` (a raw NUL byte is no
/// JSON at all). Escaped backslashes are skipped, so `"\\u0000"` — a backslash and the letters
/// `u0000` — is no NUL.
pub fn in_json(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.get(i + 1) == Some(&b'u') && json.get(i + 2..i + 6) == Some(b"0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nul_in_uris() {
        assert!(in_uri("/logs?model=a%00b"));
        assert!(in_uri("/api/users/x%00"));
        assert!(!in_uri("/logs?model=gpt-4o&limit=100"));
        assert!(
            !in_uri("/logs?q=%2500"),
            "%25 is a percent sign: the text is '%00' itself"
        );
    }

    #[test]
    fn finds_nul_in_json_strings_only() {
        assert!(in_json(br#"{"name":"a\u0000b"}"#));
        assert!(in_json(br#"{"a\u0000":1}"#));
        assert!(!in_json(br#"{"name":"a\\u0000b"}"#));
        assert!(in_json(br#"{"name":"a\\\u0000b"}"#));
        assert!(!in_json(br#"{"name":"\u0001","n":0}"#));
        assert!(!in_json(br#"{"name":"ends with a backslash\\"}"#));
    }
}
