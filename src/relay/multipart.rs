//! Just enough of `multipart/form-data` for the audio endpoints: find the text fields the relay
//! routes and bills by (`model`, `stream`, `response_format`) and the size of the uploaded file,
//! without copying the upload, and replace the model's value when a channel maps it. Everything
//! else in the body goes upstream byte for byte.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use memchr::memmem;

/// The boundary named by a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<&str> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"'))
            .filter(|b| !b.is_empty())
    })
}

/// One part of a form: its field name, whether it is a file, and where its value lies in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub is_file: bool,
    pub value: Range<usize>,
}

/// The parts of a form body. Fails on a body that is not framed by the boundary.
pub fn parts(body: &[u8], boundary: &str) -> Result<Vec<Part>, String> {
    let opening = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    if !body.starts_with(opening.as_bytes()) {
        return Err("the form does not start with its boundary".into());
    }
    let finder = memmem::Finder::new(delimiter.as_bytes());
    let mut parts = Vec::new();
    let mut at = opening.len();
    loop {
        // After a boundary: `--` ends the form, a line break starts a part.
        if body[at..].starts_with(b"--") {
            return Ok(parts);
        }
        if !body[at..].starts_with(b"\r\n") {
            return Err("a form boundary is not followed by a line break".into());
        }
        let headers_start = at + 2;
        let headers_len = memmem::find(&body[headers_start..], b"\r\n\r\n")
            .ok_or("a form part has no end to its headers")?;
        let headers = std::str::from_utf8(&body[headers_start..headers_start + headers_len])
            .map_err(|_| "a form part's headers are not text")?;
        let value_start = headers_start + headers_len + 4;
        let value_len = finder
            .find(&body[value_start..])
            .ok_or("a form part is not closed by the boundary")?;
        let (name, is_file) = disposition(headers).ok_or("a form part has no field name")?;
        parts.push(Part {
            name,
            is_file,
            value: value_start..value_start + value_len,
        });
        at = value_start + value_len + delimiter.len();
    }
}

/// The field name in a part's `Content-Disposition`, and whether it carries a filename.
fn disposition(headers: &str) -> Option<(String, bool)> {
    let line = headers.lines().find(|line| {
        line.split_once(':')
            .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("content-disposition"))
    })?;
    let mut name = None;
    let mut is_file = false;
    for param in line.split(';').skip(1) {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(value.trim().trim_matches('"').to_string()),
            "filename" | "filename*" => is_file = true,
            _ => {}
        }
    }
    Some((name?, is_file))
}

/// A text field's value.
pub fn text<'b>(body: &'b [u8], parts: &[Part], name: &str) -> Option<&'b str> {
    let part = parts.iter().find(|p| p.name == name && !p.is_file)?;
    std::str::from_utf8(&body[part.value.clone()]).ok()
}

/// The body with one value replaced (the model, when a channel maps it).
pub fn replace(body: &Bytes, value: Range<usize>, with: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(body.len() + with.len());
    out.extend_from_slice(&body[..value.start]);
    out.extend_from_slice(with.as_bytes());
    out.extend_from_slice(&body[value.end..]);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp3\"\r\nContent-Type: audio/mpeg\r\n\r\nID3\x00\x01\r\n--X\r\n--XyZ\r\ncontent-disposition: form-data; name=response_format\r\n\r\njson\r\n--XyZ--\r\n";

    #[test]
    fn reads_fields_and_files() {
        assert_eq!(boundary("multipart/form-data; boundary=XyZ"), Some("XyZ"));
        assert_eq!(
            boundary("multipart/form-data; charset=utf-8; boundary=\"a b\""),
            Some("a b")
        );
        assert_eq!(boundary("application/json"), None);
        let parts = parts(FORM, "XyZ").unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(text(FORM, &parts, "model"), Some("whisper-1"));
        assert_eq!(text(FORM, &parts, "response_format"), Some("json"));
        assert!(parts[1].is_file);
        // A line in the file that only looks like a boundary is part of the file.
        assert_eq!(&FORM[parts[1].value.clone()], b"ID3\x00\x01\r\n--X");
        assert_eq!(text(FORM, &parts, "file"), None);
    }

    #[test]
    fn replaces_a_value_and_refuses_broken_forms() {
        let body = Bytes::from_static(FORM);
        let found = parts(FORM, "XyZ").unwrap();
        let mapped = replace(&body, found[0].value.clone(), "whisper-large-v3");
        let again = parts(&mapped, "XyZ").unwrap();
        assert_eq!(text(&mapped, &again, "model"), Some("whisper-large-v3"));
        assert_eq!(text(&mapped, &again, "response_format"), Some("json"));
        assert!(parts(b"garbage", "XyZ").is_err());
        assert!(
            parts(
                b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
                "XyZ"
            )
            .is_err()
        );
    }
}
