//! The operator's guide: this version's README, served to administrators at `/docs/operator`
//! so the dashboard's first steps can link to the section that explains each (the anchors are
//! GitHub's, so a link works on either copy). Headings become headings, fenced code a code
//! block, the rest paragraphs of plain text, all escaped.

use std::sync::LazyLock;

const README: &str = include_str!("../../README.md");

static GUIDE: LazyLock<String> = LazyLock::new(|| render(README));

/// The guide as HTML, made once.
pub fn html() -> String {
    GUIDE.clone()
}

/// A heading's anchor as GitHub makes it: lower case, letters, digits, `-` and `_` kept,
/// spaces turned into `-`, the rest dropped.
pub fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn render(markdown: &str) -> String {
    let mut out = String::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut code: Option<Vec<&str>> = None;
    let flush = |paragraph: &mut Vec<&str>, out: &mut String| {
        if !paragraph.is_empty() {
            out.push_str("<p class=\"guide-text\">");
            out.push_str(&escape(&paragraph.join("\n")));
            out.push_str("</p>\n");
            paragraph.clear();
        }
    };
    for line in markdown.lines() {
        if let Some(lines) = code.as_mut() {
            if line.starts_with("```") {
                out.push_str("<pre data-copy><code>");
                out.push_str(&escape(&lines.join("\n")));
                out.push_str("</code></pre>\n");
                code = None;
            } else {
                lines.push(line);
            }
            continue;
        }
        if line.starts_with("```") {
            flush(&mut paragraph, &mut out);
            code = Some(Vec::new());
        } else if line.starts_with("<!--") {
            // Notes for the tests' tooling.
        } else if let Some(heading) = line.strip_prefix('#') {
            flush(&mut paragraph, &mut out);
            let level = 1 + heading.chars().take_while(|c| *c == '#').count();
            let text = heading.trim_start_matches('#').trim();
            let tag = format!("h{}", level.min(4));
            out.push_str(&format!(
                "<{tag} id=\"{}\">{}</{tag}>\n",
                escape(&slug(text)),
                escape(text)
            ));
        } else if line.trim().is_empty() {
            flush(&mut paragraph, &mut out);
        } else {
            paragraph.push(line);
        }
    }
    flush(&mut paragraph, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_are_githubs() {
        assert_eq!(
            slug("Set up a user, a channel, a price and a key"),
            "set-up-a-user-a-channel-a-price-and-a-key"
        );
        assert_eq!(slug("How billing works"), "how-billing-works");
        assert_eq!(
            slug("Responses clients: `/v1/responses`"),
            "responses-clients-v1responses"
        );
    }

    #[test]
    fn the_guide_has_the_sections_the_dashboard_links_to() {
        let guide = html();
        for anchor in [
            "set-up-a-user-a-channel-a-price-and-a-key",
            "how-billing-works",
            "command-line",
            "the-portal",
        ] {
            assert!(
                guide.contains(&format!("id=\"{anchor}\"")),
                "the README has a section #{anchor}"
            );
        }
    }

    #[test]
    fn text_and_code_are_escaped() {
        let html = render("# A <b>\n\nx < y\n\n```sh\necho '<hi>'\n```\n");
        assert!(html.contains("<h1 id=\"a-b\">A &lt;b&gt;</h1>"), "{html}");
        assert!(
            html.contains("<p class=\"guide-text\">x &lt; y</p>"),
            "{html}"
        );
        assert!(
            html.contains("<code>echo &#39;&lt;hi&gt;&#39;</code>"),
            "{html}"
        );
    }
}
