//! Text people read, in English and Simplified Chinese. Services and the relay's management
//! paths describe what happened as a [`Message`]: a stable key and its arguments, no prose.
//! Each edge renders it in its reader's language: the command line and the JSON API in English
//! today, pages in the user's language. The texts live in `i18n/<lang>/*.ftl` (Fluent),
//! embedded in the binary; a test keeps both languages holding the same keys, and every key the
//! code uses present.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader};

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./i18n",
        fallback_language: "en",
        // No Unicode isolation marks around arguments: the text goes to terminals and JSON.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

/// A language Tollgate speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    ZhCn,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::ZhCn];

    /// The BCP 47 tag, as in `<html lang>` and the `i18n/` folder names.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// The language a tag names (`zh`, `zh-CN`, `zh-Hans` are Chinese; `en-US` English).
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "zh" => Some(Lang::ZhCn),
            _ => None,
        }
    }

    fn id(self) -> LanguageIdentifier {
        match self {
            Lang::En => fluent_templates::langid!("en"),
            Lang::ZhCn => fluent_templates::langid!("zh-CN"),
        }
    }
}

/// An argument of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    Text(String),
    Number(i64),
}

impl From<&str> for Arg {
    fn from(text: &str) -> Self {
        Arg::Text(text.to_string())
    }
}

impl From<String> for Arg {
    fn from(text: String) -> Self {
        Arg::Text(text)
    }
}

impl From<&String> for Arg {
    fn from(text: &String) -> Self {
        Arg::Text(text.clone())
    }
}

impl From<i64> for Arg {
    fn from(number: i64) -> Self {
        Arg::Number(number)
    }
}

impl From<usize> for Arg {
    fn from(number: usize) -> Self {
        Arg::Number(i64::try_from(number).unwrap_or(i64::MAX))
    }
}

impl From<u64> for Arg {
    fn from(number: u64) -> Self {
        Arg::Number(i64::try_from(number).unwrap_or(i64::MAX))
    }
}

impl From<u32> for Arg {
    fn from(number: u32) -> Self {
        Arg::Number(i64::from(number))
    }
}

/// Something to tell a person: a key of the `i18n/` files and the values its text names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub key: &'static str,
    pub args: Vec<(&'static str, Arg)>,
}

impl Message {
    pub fn new(key: &'static str) -> Message {
        Message {
            key,
            args: Vec::new(),
        }
    }

    /// Adds an argument the text names as `{ $name }`.
    pub fn with(mut self, name: &'static str, value: impl Into<Arg>) -> Message {
        self.args.push((name, value.into()));
        self
    }

    /// The text in `lang` (English where a translation is missing, the key itself where the
    /// key is unknown, which a test rules out).
    pub fn render(&self, lang: Lang) -> String {
        let args: HashMap<Cow<'static, str>, FluentValue<'_>> = self
            .args
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    Arg::Text(text) => FluentValue::from(text.as_str()),
                    Arg::Number(number) => FluentValue::from(*number),
                };
                (Cow::Borrowed(*name), value)
            })
            .collect();
        LOCALES
            .try_lookup_with_args(&lang.id(), self.key, &args)
            .unwrap_or_else(|| self.key.to_string())
    }
}

/// The text of a key known only at run time (a template's), with text arguments; the key
/// itself when unknown, which a test rules out for every key the templates use.
pub fn text(lang: Lang, key: &str, args: &[(&str, &str)]) -> String {
    let args: HashMap<Cow<'static, str>, FluentValue<'_>> = args
        .iter()
        .map(|(name, value)| (Cow::Owned((*name).to_string()), FluentValue::from(*value)))
        .collect();
    LOCALES
        .try_lookup_with_args(&lang.id(), key, &args)
        .unwrap_or_else(|| key.to_string())
}

/// English, for logs and the command line.
impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(Lang::En))
    }
}

/// `msg!("user-not-found", name = username)`: a [`Message`] with its arguments.
#[macro_export]
macro_rules! msg {
    ($key:literal $(, $name:ident = $value:expr)* $(,)?) => {
        $crate::i18n::Message::new($key) $(.with(stringify!($name), $value))*
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// The message keys defined in a language's files.
    fn keys(lang: Lang) -> BTreeSet<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("i18n")
            .join(lang.tag());
        let mut keys = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).expect("the language's folder") {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "ftl") {
                let text = std::fs::read_to_string(&path).unwrap();
                for line in text.lines() {
                    let starts_key = line.starts_with(|c: char| c.is_ascii_alphabetic());
                    if starts_key && let Some((key, _)) = line.split_once('=') {
                        // A key defined twice stops the server when the files load.
                        assert!(
                            keys.insert(key.trim().to_string()),
                            "{} defines '{}' again",
                            path.display(),
                            key.trim()
                        );
                    }
                }
            }
        }
        keys
    }

    /// The keys the code names in the `msg!` macro.
    fn used_keys() -> BTreeSet<String> {
        fn walk(dir: &Path, found: &mut BTreeSet<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    // `msg!(` may be followed by a line break before the key.
                    for piece in text.split("msg!(").skip(1) {
                        if let Some(rest) = piece.trim_start().strip_prefix('"')
                            && let Some((key, _)) = rest.split_once('"')
                            && key
                                .bytes()
                                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                        {
                            found.insert(key.to_string());
                        }
                    }
                }
            }
        }
        let mut found = BTreeSet::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut found,
        );
        found
    }

    #[test]
    fn both_languages_hold_the_same_keys() {
        let english = keys(Lang::En);
        let chinese = keys(Lang::ZhCn);
        let only_english: Vec<_> = english.difference(&chinese).collect();
        let only_chinese: Vec<_> = chinese.difference(&english).collect();
        assert!(
            only_english.is_empty(),
            "missing in zh-CN: {only_english:?}"
        );
        assert!(only_chinese.is_empty(), "missing in en: {only_chinese:?}");
    }

    #[test]
    fn every_key_the_code_uses_has_a_text_in_both_languages() {
        let used = used_keys();
        assert!(used.len() > 20, "the scan found the keys: {used:?}");
        for lang in Lang::ALL {
            let defined = keys(lang);
            let missing: Vec<_> = used.difference(&defined).collect();
            assert!(missing.is_empty(), "{} lacks {missing:?}", lang.tag());
        }
    }

    /// The keys the portal names: in templates (`page.t("…")`, `page.t1("…", …)`) and as
    /// `"web-…"` literals in its code.
    fn page_keys() -> BTreeSet<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut found = BTreeSet::new();
        // Every text after `opener` up to a quote, with `prefix` put back before it.
        let mut scan = |text: &str, opener: &str, prefix: &str| {
            for piece in text.split(opener).skip(1) {
                if let Some((rest, _)) = piece.split_once('"') {
                    let key = format!("{prefix}{rest}");
                    if key.len() > prefix.len()
                        && key
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    {
                        found.insert(key);
                    }
                }
            }
        };
        for dir in ["templates", "src/web"] {
            for path in files_under(&root.join(dir)) {
                let text = std::fs::read_to_string(path).unwrap();
                if dir == "templates" {
                    scan(&text, "page.t(\"", "");
                    scan(&text, "page.t1(\"", "");
                } else {
                    scan(&text, "\"web-", "web-");
                    scan(&text, "\"admin-", "admin-");
                }
            }
        }
        found
    }

    /// Every file under `dir`, in its folders too (the console's pages have their own).
    fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(files_under(&path));
            } else {
                files.push(path);
            }
        }
        files
    }

    #[test]
    fn every_key_a_page_uses_has_a_text_in_both_languages() {
        let used = page_keys();
        assert!(used.len() > 40, "the scan found the keys: {used:?}");
        for lang in Lang::ALL {
            let defined = keys(lang);
            let missing: Vec<_> = used.difference(&defined).collect();
            assert!(missing.is_empty(), "{} lacks {missing:?}", lang.tag());
        }
    }

    /// Each message of a file as written: (key, text), a text per variant of a selector; the
    /// bodies of mails (on lines of their own) are left out.
    fn texts(lang: Lang, file: &str) -> Vec<(String, String)> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("i18n")
            .join(lang.tag())
            .join(file);
        let mut found = Vec::new();
        let mut key = String::new();
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            if line.starts_with(|c: char| c.is_ascii_alphabetic())
                && let Some((name, text)) = line.split_once(" = ")
            {
                key = name.trim().to_string();
                if !text.trim().is_empty() && !text.trim().ends_with("->") {
                    found.push((key.clone(), text.trim().to_string()));
                }
            } else if let Some((_, text)) = line
                .trim_start()
                .strip_prefix('*')
                .unwrap_or(line.trim_start())
                .strip_prefix('[')
                .and_then(|rest| rest.split_once("] "))
            {
                found.push((key.clone(), text.trim().to_string()));
            }
        }
        found
    }

    /// One message style: every message of the services reads as a sentence — a capital
    /// letter first and a full stop last in English, a full-width 。 last in Chinese (mail
    /// subjects, which are titles, aside); the portal's texts end alike in both languages.
    #[test]
    fn messages_are_sentences() {
        for (key, text) in texts(Lang::En, "service.ftl") {
            if key.starts_with("mail-") {
                continue;
            }
            assert!(
                text.starts_with(|c: char| c.is_ascii_uppercase()) && text.ends_with('.'),
                "en {key} is not a sentence: {text}"
            );
        }
        for (key, text) in texts(Lang::ZhCn, "service.ftl") {
            if key.starts_with("mail-") {
                continue;
            }
            assert!(
                text.ends_with('。'),
                "zh-CN {key} does not end with 。: {text}"
            );
        }
        let chinese: HashMap<String, String> = texts(Lang::ZhCn, "web.ftl").into_iter().collect();
        for (key, text) in texts(Lang::En, "web.ftl") {
            let sentence = text.ends_with('.');
            if sentence {
                assert!(
                    !text.starts_with(|c: char| c.is_ascii_lowercase()),
                    "en {key} begins in lower case: {text}"
                );
            }
            assert_eq!(
                sentence,
                chinese[&key].ends_with('。'),
                "{key} ends differently in the two languages: {text} / {}",
                chinese[&key]
            );
        }
    }

    #[test]
    fn renders_arguments_in_each_language() {
        let message = msg!("user-not-found", name = "bob");
        assert_eq!(message.render(Lang::En), "There is no user named 'bob'.");
        assert_eq!(message.render(Lang::ZhCn), "没有名为“bob”的用户。");
        assert_eq!(message.to_string(), "There is no user named 'bob'.");
        assert_eq!(Lang::from_tag("zh-Hans-CN"), Some(Lang::ZhCn));
        assert_eq!(Lang::from_tag("en-US"), Some(Lang::En));
        assert_eq!(Lang::from_tag("fr"), None);
    }
}
