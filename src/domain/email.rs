//! Email addresses as people type them: exactly one RFC 5322 `addr-spec` (`local@domain`), never
//! a list (`a@x.test,b@evil.test`), a display name, angle brackets or comments, which a mail
//! library would happily turn into more (or other) recipients than the one shown on the page.
//! Internationalised addresses (RFC 6531) are taken in Unicode, kept in normalisation form C;
//! two spellings that differ only in case or normalisation are the same person
//! ([`comparison_key`]).

use unicode_normalization::UnicodeNormalization;

/// The longest address SMTP carries (RFC 5321's path limit less its angle brackets).
pub const MAX_EMAIL_BYTES: usize = 254;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("not one address of the form name@example.com")]
    NotAnAddress,
    #[error("longer than {MAX_EMAIL_BYTES} bytes")]
    TooLong,
}

/// Characters RFC 5322 allows in a dot-atom besides letters and digits.
const ATEXT_SYMBOLS: &str = "!#$%&'*+-/=?^_`{|}~";

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || ATEXT_SYMBOLS.contains(c) || (!c.is_ascii() && !c.is_control())
}

/// `dot-atom-text`: atoms of [`is_atext`] characters joined by single dots.
fn is_dot_atom(text: &str) -> bool {
    !text.is_empty()
        && text
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

/// A domain name: labels of letters, digits and hyphens (or Unicode letters), not starting or
/// ending with a hyphen, at least two labels, at most 63 bytes each.
fn is_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| {
                    c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric())
                })
        })
}

/// The address typed, trimmed and in normalisation form C, when it is one `local@domain`
/// with a dot-atom local part and a domain name.
pub fn parse(text: &str) -> Result<String, EmailError> {
    let address: String = text.trim().nfc().collect();
    if address.len() > MAX_EMAIL_BYTES {
        return Err(EmailError::TooLong);
    }
    let (local, domain) = address.rsplit_once('@').ok_or(EmailError::NotAnAddress)?;
    if local.len() > 64 || !is_dot_atom(local) || !is_domain(domain) {
        return Err(EmailError::NotAnAddress);
    }
    Ok(address)
}

/// What two addresses are compared by: normalisation form C and lower case, so
/// `ROOT@x.test` and `root@x.test` (or a precomposed and a decomposed `é`) are one person.
pub fn comparison_key(address: &str) -> String {
    address.trim().nfc().collect::<String>().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_one_plain_address() {
        for (typed, kept) in [
            ("ann@example.com", "ann@example.com"),
            (
                "  Ann.Lee+tag@Mail.Example.com ",
                "Ann.Lee+tag@Mail.Example.com",
            ),
            ("o'brien@example.ie", "o'brien@example.ie"),
            ("用户@例子.广告", "用户@例子.广告"),
            // A decomposed é is kept composed.
            ("jose\u{301}@example.com", "jos\u{e9}@example.com"),
        ] {
            assert_eq!(parse(typed).as_deref(), Ok(kept), "{typed}");
        }
    }

    #[test]
    fn refuses_lists_names_brackets_and_nonsense() {
        for typed in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "ann@localhost",
            "a@x.test,b@evil.test",
            "a@x.test;b@evil.test",
            "<a@evil.test>",
            "Ann <ann@example.com>",
            "ann@example.com (work)",
            "\"ann lee\"@example.com",
            "ann lee@example.com",
            "ann@exa mple.com",
            "ann..lee@example.com",
            ".ann@example.com",
            "ann.@example.com",
            "ann@-example.com",
            "ann@example-.com",
            "ann@[127.0.0.1]",
            "ann@example.com\r\nBcc: x@evil.test",
            "ann\u{0}@example.com",
            "a@b@example.com",
        ] {
            assert_eq!(parse(typed), Err(EmailError::NotAnAddress), "{typed:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(parse(&long), Err(EmailError::TooLong));
    }

    #[test]
    fn one_person_whatever_the_case_or_normalisation() {
        assert_eq!(comparison_key("ROOT@X.test"), comparison_key("root@x.test"));
        assert_eq!(
            comparison_key("jos\u{e9}@example.com"),
            comparison_key("JOSE\u{301}@EXAMPLE.COM")
        );
        assert_ne!(
            comparison_key("ann@example.com"),
            comparison_key("anne@example.com")
        );
    }
}
