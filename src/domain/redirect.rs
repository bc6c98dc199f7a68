//! Where a page may send a person next (`/login?next=…`): only somewhere on this site.

/// `next` when it is a path that, resolved against the site's own origin, stays on it: it
/// starts with one `/` (not `//`, which names another host), and holds only printable ASCII
/// without backslashes (browsers read `\` as `/`, and drop tabs and newlines, so
/// `/\t/evil.example` would become `//evil.example`). None for anything else.
pub fn local_target(next: &str) -> Option<&str> {
    let rest = next.strip_prefix('/')?;
    let printable = next
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) && b != b'\\');
    (printable && !rest.starts_with('/')).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_paths_of_this_site() {
        for path in [
            "/",
            "/dashboard",
            "/keys?page=2&lang=zh-CN",
            "/logs#top",
            "/a/./b",
            "/%2F%2Fx",
        ] {
            assert_eq!(local_target(path), Some(path));
        }
    }

    #[test]
    fn refuses_everything_that_could_leave_it() {
        for next in [
            "",
            "dashboard",
            "//evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "https://evil.example/",
            "/ evil",
            "/\u{7f}",
            "/caf\u{e9}",
            "/\u{2028}",
            " /dashboard",
        ] {
            assert_eq!(local_target(next), None, "{next:?}");
        }
    }
}
