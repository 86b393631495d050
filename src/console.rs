//! Printing that cannot crash the benchmark. `println!` panics when stdout is a closed
//! pipe (`servescope … | head -3`), which would lose results.json, the HTML and later
//! runs; these macros drop output the reader no longer takes, and everything else
//! finishes as if printing to a terminal. Every print in the crate goes through them.

use std::fmt::Arguments;
use std::io::Write;

/// Write to stdout, ignoring a closed pipe (or any other write error).
pub fn out(args: Arguments) {
    let _ = std::io::stdout().lock().write_fmt(args);
}

/// Write bytes as they are to stdout (a generated script or page), ignoring a closed pipe.
pub fn out_bytes(bytes: &[u8]) {
    let _ = std::io::stdout().lock().write_all(bytes);
}

/// Write to stderr, ignoring a closed pipe.
pub fn err(args: Arguments) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `print!` that never panics.
macro_rules! out {
    ($($t:tt)*) => { $crate::console::out(format_args!($($t)*)) };
}

/// `println!` that never panics.
macro_rules! outln {
    () => { $crate::console::out(format_args!("\n")) };
    ($($t:tt)*) => { $crate::console::out(format_args!("{}\n", format_args!($($t)*))) };
}

/// `eprint!` that never panics.
#[allow(unused_macros)]
macro_rules! errout {
    ($($t:tt)*) => { $crate::console::err(format_args!($($t)*)) };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    () => { $crate::console::err(format_args!("\n")) };
    ($($t:tt)*) => { $crate::console::err(format_args!("{}\n", format_args!($($t)*))) };
}

/// Flush stdout (stderr is unbuffered), ignoring errors.
pub fn flush() {
    let _ = std::io::stdout().lock().flush();
}

/// Text from a server (a model id, an error message, a metric label) as it may be
/// printed: control and invisible formatting characters shown as escapes (`\x1b`, `\n`,
/// `\u{202e}`), so a server cannot move the cursor, retitle the terminal, forge lines or
/// reverse what follows. Backslashes stay as they are: a literal `\x1b` in the text
/// does nothing to a terminal.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 && hidden(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if hidden(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// C0 and C1 controls and DEL (Unicode's Cc), and the format and separator characters
/// that reorder, hide or break text: bidi embeddings, overrides and isolates, zero-width
/// characters, line and paragraph separators, interlinear annotation marks, tags.
pub fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{e0000}'..='\u{e007f}'
        )
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let s = "HTTP 401: invalid key for modèle «llama» — 日本語 \\x1b";
        assert!(matches!(printable(s), std::borrow::Cow::Borrowed(_)));
        assert_eq!(printable(s), s);
    }

    #[test]
    fn controls_are_shown_as_escapes() {
        let s = "a\x1b]0;owned\x07b\r\nc\td\x7f\u{9b}31m\u{0}";
        assert_eq!(
            printable(s),
            "a\\x1b]0;owned\\x07b\\r\\nc\\td\\x7f\\x9b31m\\x00"
        );
    }

    #[test]
    fn invisible_formatting_is_shown_as_escapes() {
        let s = "evil\u{202e}txt.exe\u{2066}\u{200b}\u{2028}\u{feff}\u{e0041}";
        assert_eq!(
            printable(s),
            "evil\\u{202e}txt.exe\\u{2066}\\u{200b}\\u{2028}\\u{feff}\\u{e0041}"
        );
    }

    #[test]
    fn nothing_printable_survives_unescaped() {
        for c in (0u32..0x11_0000).filter_map(char::from_u32) {
            let shown = printable(&c.to_string()).into_owned();
            if c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c) {
                assert!(shown.starts_with('\\'), "{c:?} shown as {shown:?}");
                assert!(shown.chars().all(|d| d.is_ascii_graphic()), "{shown:?}");
            }
        }
    }
}
