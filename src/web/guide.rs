//! The operator's guide: this version's README, served to administrators at `/docs/operator`
//! so the dashboard's first steps can link to the section that explains each (the anchors are
//! GitHub's, so a link works on either copy). A small reading of its Markdown: headings,
//! fenced code, tables as they are written, lists, paragraphs, and inline code, bold and links
//! within the page; everything escaped.

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

/// Inline Markdown: `code`, **bold**, links within the page (`[text](#anchor)`); an image
/// (`![alt](path)`) or a link elsewhere is its text.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, piece) in text.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str("<code>");
            out.push_str(&escape(piece));
            out.push_str("</code>");
            continue;
        }
        let linked = links(piece);
        let mut bold = false;
        for (j, part) in linked.split("**").enumerate() {
            if j > 0 {
                out.push_str(if bold { "</strong>" } else { "<strong>" });
                bold = !bold;
            }
            out.push_str(part);
        }
        if bold {
            out.push_str("</strong>");
        }
    }
    out
}

/// Escapes text outside code, turning `[text](#anchor)` into a link and other links and
/// images into their text.
fn links(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|at| at + open) else {
            break;
        };
        let Some(end) = rest[close..].find(')').map(|at| at + close) else {
            break;
        };
        let image = open > 0 && rest[..open].ends_with('!');
        let before = if image {
            &rest[..open - 1]
        } else {
            &rest[..open]
        };
        out.push_str(&escape(before));
        let label = escape(&rest[open + 1..close]);
        let target = &rest[close + 2..end];
        match target.strip_prefix('#') {
            Some(anchor) if !image => {
                out.push_str(&format!("<a href=\"#{}\">{label}</a>", escape(anchor)));
            }
            _ => out.push_str(&label),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(&escape(rest));
    out
}

/// Whether a line starts an item of a list (`- `, `* `, `1. `).
fn list_item(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    if let Some(item) = trimmed
        .strip_prefix("- ")
        .or_else(|| trimmed.strip_prefix("* "))
    {
        return Some(item);
    }
    let digits = trimmed.chars().take_while(char::is_ascii_digit).count();
    (digits > 0)
        .then(|| trimmed[digits..].strip_prefix(". "))
        .flatten()
}

/// One block of lines between blank lines: a table as written, a list, or a paragraph.
fn block(lines: &[&str], out: &mut String) {
    if lines.is_empty() {
        return;
    }
    if lines.iter().all(|line| line.trim_start().starts_with('|')) {
        out.push_str("<pre class=\"guide-table\">");
        out.push_str(&escape(&lines.join("\n")));
        out.push_str("</pre>\n");
    } else if list_item(lines[0]).is_some() {
        let mut items: Vec<String> = Vec::new();
        for line in lines {
            match list_item(line) {
                Some(item) => items.push(item.to_string()),
                None => {
                    if let Some(last) = items.last_mut() {
                        last.push(' ');
                        last.push_str(line.trim());
                    }
                }
            }
        }
        out.push_str("<ul>");
        for item in items {
            out.push_str(&format!("<li>{}</li>", inline(&item)));
        }
        out.push_str("</ul>\n");
    } else {
        let text: Vec<&str> = lines.iter().map(|line| line.trim()).collect();
        out.push_str(&format!("<p>{}</p>\n", inline(&text.join(" "))));
    }
}

fn render(markdown: &str) -> String {
    let mut out = String::new();
    let mut lines: Vec<&str> = Vec::new();
    let mut code: Option<Vec<&str>> = None;
    for line in markdown.lines() {
        if let Some(code_lines) = code.as_mut() {
            if line.starts_with("```") {
                out.push_str("<pre data-copy><code>");
                out.push_str(&escape(&code_lines.join("\n")));
                out.push_str("</code></pre>\n");
                code = None;
            } else {
                code_lines.push(line);
            }
            continue;
        }
        if line.starts_with("```") {
            block(&lines, &mut out);
            lines.clear();
            code = Some(Vec::new());
        } else if line.starts_with("<!--") {
            // Notes for the tests' tooling.
        } else if let Some(heading) = line.strip_prefix('#') {
            block(&lines, &mut out);
            lines.clear();
            let level = 1 + heading.chars().take_while(|c| *c == '#').count();
            let text = heading.trim_start_matches('#').trim();
            let tag = format!("h{}", level.min(4));
            out.push_str(&format!(
                "<{tag} id=\"{}\">{}</{tag}>\n",
                escape(&slug(text)),
                inline(text)
            ));
        } else if line.trim().is_empty() {
            block(&lines, &mut out);
            lines.clear();
        } else {
            lines.push(line);
        }
    }
    block(&lines, &mut out);
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
        let html = render("# A <b>\n\nx < y\nand `<z>`\n\n```sh\necho '<hi>'\n```\n");
        assert!(html.contains("<h1 id=\"a-b\">A &lt;b&gt;</h1>"), "{html}");
        assert!(
            html.contains("<p>x &lt; y and <code>&lt;z&gt;</code></p>"),
            "{html}"
        );
        assert!(
            html.contains("<code>echo &#39;&lt;hi&gt;&#39;</code>"),
            "{html}"
        );
    }

    #[test]
    fn lists_tables_bold_and_links_within_the_page() {
        let html = render(concat!(
            "- **One** item\n  goes on\n- see [billing](#how-billing-works)\n\n",
            "| a | b |\n|---|---|\n\n",
            "![shot](docs/x.png) [out](https://example.com)\n"
        ));
        assert!(
            html.contains(concat!(
                "<ul><li><strong>One</strong> item goes on</li>",
                "<li>see <a href=\"#how-billing-works\">billing</a></li></ul>"
            )),
            "{html}"
        );
        assert!(
            html.contains("<pre class=\"guide-table\">| a | b |\n|---|---|</pre>"),
            "{html}"
        );
        assert!(html.contains("<p>shot out</p>"), "{html}");
    }
}
