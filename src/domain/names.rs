//! Validated names and lists typed by people: usernames, group, channel and model names.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("{what} must be at most {max} characters")]
    TooLong { what: &'static str, max: usize },
    #[error("{what} '{value}' may only contain letters, digits and {allowed}")]
    BadCharacter {
        what: &'static str,
        value: String,
        allowed: &'static str,
    },
}

fn check(
    what: &'static str,
    value: &str,
    max: usize,
    extra: &'static str,
) -> Result<String, NameError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(NameError::Empty { what });
    }
    if value.chars().count() > max {
        return Err(NameError::TooLong { what, max });
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    {
        return Err(NameError::BadCharacter {
            what,
            value: value.to_string(),
            allowed: describe(extra),
        });
    }
    Ok(value.to_string())
}

fn describe(extra: &'static str) -> &'static str {
    match extra {
        "_-." => "'_', '-', '.'",
        "_-" => "'_', '-'",
        _ => "'_', '-', '.', ':', '/', '@', '+'",
    }
}

pub fn username(value: &str) -> Result<String, NameError> {
    check("a username", value, 32, "_-.")
}

pub fn group_name(value: &str) -> Result<String, NameError> {
    check("a group name", value, 32, "_-")
}

pub fn channel_name(value: &str) -> Result<String, NameError> {
    check("a channel name", value, 64, "_-.")
}

/// Key and token names are free text for the owner's benefit; only length and control
/// characters are checked.
pub fn label(what: &'static str, value: &str) -> Result<String, NameError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(NameError::Empty { what });
    }
    if value.chars().count() > 64 {
        return Err(NameError::TooLong { what, max: 64 });
    }
    if value.chars().any(char::is_control) {
        return Err(NameError::BadCharacter {
            what,
            value: value.escape_debug().to_string(),
            allowed: "spaces and punctuation",
        });
    }
    Ok(value.to_string())
}

/// Model names follow vendor conventions (`gpt-4o-mini`, `claude-3-5-sonnet@20240620`,
/// `meta-llama/Llama-3-8B`, `models/gemini-pro`, `qwen2.5:7b`).
pub fn model_name(value: &str) -> Result<String, NameError> {
    check("a model name", value, 128, "_-.:/@+")
}

/// Parses a comma- or newline-separated list, validating each entry and dropping duplicates
/// while keeping the order people wrote.
pub fn list(
    text: &str,
    parse_one: fn(&str) -> Result<String, NameError>,
) -> Result<Vec<String>, NameError> {
    let mut out: Vec<String> = Vec::new();
    for item in text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let item = parse_one(item)?;
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_names() {
        assert_eq!(username(" alice "), Ok("alice".into()));
        assert!(username("al ice").is_err());
        assert!(username("").is_err());
        assert!(username(&"a".repeat(33)).is_err());
        assert_eq!(
            model_name("meta-llama/Llama-3-8B"),
            Ok("meta-llama/Llama-3-8B".into())
        );
        assert_eq!(model_name("qwen2.5:7b"), Ok("qwen2.5:7b".into()));
        assert!(model_name("gpt 4").is_err());
        assert!(group_name("vip.gold").is_err());
        assert!(label("a key name", "my laptop (work)").is_ok());
        assert!(label("a key name", "bad\u{0}").is_err());
    }

    #[test]
    fn parses_lists_without_duplicates() {
        assert_eq!(
            list(
                "gpt-4o-mini, text-embedding-3-small,\ngpt-4o-mini,",
                model_name
            ),
            Ok(vec![
                "gpt-4o-mini".to_string(),
                "text-embedding-3-small".to_string()
            ])
        );
        assert_eq!(list("", group_name), Ok(vec![]));
        assert!(list("ok,not ok", group_name).is_err());
    }
}
