//! CSV as spreadsheets read it (RFC 4180, lines ending in CRLF), with every cell made harmless:
//! a cell a spreadsheet would run as a formula — starting with `=`, `+`, `-`, `@`, a tab or a
//! carriage return — is prefixed with `'`, and cells with commas, quotes or line breaks are
//! quoted. The one writer of the portal's exports and the command line's files.

/// One cell, escaped.
pub fn cell(text: &str) -> String {
    let text = match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// One line of cells, ending in CRLF.
pub fn row<S: AsRef<str>>(cells: &[S]) -> String {
    let mut line = cells
        .iter()
        .map(|c| cell(c.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_become_formulas() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("@SUM"), "'@SUM");
        assert_eq!(cell("\tcmd"), "'\tcmd");
        assert_eq!(cell("\r=1"), "\"'\r=1\"");
        assert_eq!(cell("gpt-4o"), "gpt-4o");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(row(&["a", "=b", "c,d"]), "a,'=b,\"c,d\"\r\n");
    }
}
