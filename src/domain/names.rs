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

/// The most characters of a name quoted back in an error message.
const QUOTED_CHARS: usize = 64;

/// The start of `value` for an error message: at most 64 characters, control characters
/// escaped, and an ellipsis when cut.
pub fn quoted(value: &str) -> String {
    let mut quoted: String = value
        .chars()
        .take(QUOTED_CHARS)
        .flat_map(|c| {
            let escape = c.is_control() || c == '\\';
            let plain = (!escape).then_some(c);
            plain
                .into_iter()
                .chain(escape.then(|| c.escape_default()).into_iter().flatten())
        })
        .collect();
    if value.chars().nth(QUOTED_CHARS).is_some() {
        quoted.push('…');
    }
    quoted
}

/// `text` safe to write to a terminal: every control character but a line break written as
/// its escape (`\u{1b}`), so a name an attacker chose cannot move the cursor, recolour the
/// screen or hide what follows. A line break is kept only when `keep_line_breaks` is set.
pub fn terminal_safe(text: &str, keep_line_breaks: bool) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && !(keep_line_breaks && c == '\n');
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut safe = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            safe.extend(c.escape_default());
        } else {
            safe.push(c);
        }
    }
    std::borrow::Cow::Owned(safe)
}

/// A model name as a client sent it, checked but never trimmed or changed: what a channel or
/// a price could list (at most 128 characters; letters, digits and `_-.:/@+`). Its errors
/// quote at most the first 64 characters.
pub fn requested_model(value: &str) -> Result<(), NameError> {
    const MAX: usize = 128;
    const EXTRA: &str = "_-.:/@+";
    if value.is_empty() {
        return Err(NameError::Empty {
            what: "a model name",
        });
    }
    if value.len() > MAX && value.chars().nth(MAX).is_some() {
        return Err(NameError::TooLong {
            what: "a model name",
            max: MAX,
        });
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || EXTRA.contains(c))
    {
        return Err(NameError::BadCharacter {
            what: "a model name",
            value: quoted(value),
            allowed: describe(EXTRA),
        });
    }
    Ok(())
}

/// A model a channel lists: a name, or a pattern ending in `*` (`gpt-*`, or `*` alone) that
/// serves every name it starts.
pub fn model_pattern(value: &str) -> Result<String, NameError> {
    let value = value.trim();
    match value.strip_suffix('*') {
        Some("") => Ok("*".into()),
        Some(prefix) => model_name(prefix).map(|prefix| format!("{prefix}*")),
        None => model_name(value),
    }
}

/// The prefix a listed pattern serves (`gpt-*` → `gpt-`); None for a plain name.
pub fn pattern_prefix(listed: &str) -> Option<&str> {
    listed.strip_suffix('*')
}

/// The name without its release date: `claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`
/// (Anthropic's style), `claude-sonnet-4-5@20250929` → `claude-sonnet-4-5` (Vertex's). OpenAI's
/// `-2024-08-06` snapshots are distinct models and are not folded.
pub fn undated(name: &str) -> Option<&str> {
    let (base, date) = name.rsplit_once(['-', '@'])?;
    let digits = date.as_bytes();
    let is_date = digits.len() == 8
        && digits.iter().all(u8::is_ascii_digit)
        && date.starts_with("20")
        && (1..=12).contains(&date[4..6].parse::<u8>().unwrap_or(0))
        && (1..=31).contains(&date[6..8].parse::<u8>().unwrap_or(0));
    (is_date && !base.is_empty()).then_some(base)
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

/// Whether a domain list (comma-separated, as in the `email_domains_*` options) names the
/// address's domain or a domain above it: `example.com` covers `mail.example.com`.
fn domain_listed(list: &str, domain: &str) -> bool {
    list.split(',')
        .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .any(|listed| {
            domain == listed
                || domain
                    .strip_suffix(listed.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
        })
}

/// Whether an address may register under the site's allowed and blocked domains (an empty
/// allowed list allows every domain the blocked list does not name).
pub fn email_domain_allowed(email: &str, allowed: &str, blocked: &str) -> bool {
    let Some((_, domain)) = email.trim().rsplit_once('@') else {
        return false;
    };
    let domain = domain.to_ascii_lowercase();
    let allowed_here = allowed.trim().is_empty() || domain_listed(allowed, &domain);
    allowed_here && !domain_listed(blocked, &domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_output_escapes_control_characters() {
        assert_eq!(terminal_safe("gpt-4o", false), "gpt-4o");
        assert_eq!(terminal_safe("a\u{1b}[2Jb", false), "a\\u{1b}[2Jb");
        assert_eq!(terminal_safe("x\ry\n", false), "x\\ry\\n");
        assert_eq!(
            terminal_safe("line one\nline two\u{7}", true),
            "line one\nline two\\u{7}"
        );
        assert_eq!(terminal_safe("模型\u{9b}", false), "模型\\u{9b}");
    }

    #[test]
    fn email_domains_cover_their_subdomains_only() {
        assert!(email_domain_allowed("a@example.com", "", ""));
        assert!(email_domain_allowed(
            "a@Mail.Example.com",
            "example.com",
            ""
        ));
        assert!(!email_domain_allowed("a@badexample.com", "example.com", ""));
        assert!(!email_domain_allowed(
            "a@x.tempmail.io",
            "",
            "tempmail.io, spam.example"
        ));
        assert!(email_domain_allowed(
            "a@tempmail.io.example.org",
            "",
            "tempmail.io"
        ));
        assert!(!email_domain_allowed(
            "a@corp.example",
            "corp.example",
            "corp.example"
        ));
        assert!(!email_domain_allowed("no-at-sign", "", ""));
    }

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
    fn checks_requested_model_names_without_changing_them() {
        assert_eq!(requested_model("claude-sonnet-4-5@20250929"), Ok(()));
        assert_eq!(requested_model("meta-llama/Llama-3-8B"), Ok(()));
        assert!(matches!(
            requested_model(" gpt-4o"),
            Err(NameError::BadCharacter { .. })
        ));
        assert_eq!(
            requested_model("a\u{0}b"),
            Err(NameError::BadCharacter {
                what: "a model name",
                value: "a\\u{0}b".into(),
                allowed: "'_', '-', '.', ':', '/', '@', '+'",
            })
        );
        assert_eq!(requested_model(&"m".repeat(128)), Ok(()));
        assert_eq!(
            requested_model(&"m".repeat(129)),
            Err(NameError::TooLong {
                what: "a model name",
                max: 128
            })
        );
        assert!(requested_model("").is_err());
        let long = format!("{}\u{7}", "x".repeat(100));
        let Err(NameError::BadCharacter { value, .. }) = requested_model(&long) else {
            panic!("a control character is refused");
        };
        assert_eq!(value, format!("{}…", "x".repeat(64)));
    }

    #[test]
    fn folds_release_dates_of_anthropic_and_vertex_names_only() {
        assert_eq!(
            undated("claude-sonnet-4-5-20250929"),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(
            undated("claude-haiku-4-5@20251001"),
            Some("claude-haiku-4-5")
        );
        assert_eq!(undated("gpt-4o-2024-08-06"), None);
        assert_eq!(undated("claude-opus-4-8"), None);
        assert_eq!(undated("model-20251399"), None, "not a date");
        assert_eq!(undated("-20250929"), None);
        assert_eq!(undated("build-12345678"), None);
    }

    #[test]
    fn channels_list_names_or_prefix_patterns() {
        assert_eq!(model_pattern("gpt-*"), Ok("gpt-*".into()));
        assert_eq!(model_pattern(" * "), Ok("*".into()));
        assert_eq!(model_pattern("gpt-4o"), Ok("gpt-4o".into()));
        assert!(model_pattern("gpt-*-mini").is_err());
        assert!(model_pattern("**").is_err());
        assert_eq!(pattern_prefix("gpt-*"), Some("gpt-"));
        assert_eq!(pattern_prefix("*"), Some(""));
        assert_eq!(pattern_prefix("gpt-4o"), None);
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
