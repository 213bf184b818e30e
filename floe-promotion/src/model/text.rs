//! Free text from users (reasons, comments, group names): accepted only when it cannot forge
//! output, and shown with anything unsafe escaped.
//!
//! A reason with a newline could print a second, forged line in `floe history`; an ANSI escape
//! could rewrite the terminal; a bidirectional-override character could make a line read
//! differently from its bytes. All three are refused at the library boundary, and printing
//! goes through [`printable`] for text that comes from elsewhere (a gate command's output).

use std::borrow::Cow;

use crate::error::{Error, Result};

/// The longest free text accepted, in bytes.
pub const MAX_FREE_TEXT: usize = 4096;

/// Whether `c` may not appear in free text: control characters (C0, DEL, C1: newlines,
/// escapes, backspaces) and the Unicode controls that reorder how text is displayed
/// (bidirectional embeddings, overrides, isolates and marks).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Refuses free text for `field` that holds an unsafe character (see [`is_unsafe_char`]) or
/// is longer than [`MAX_FREE_TEXT`] bytes. The error names the field and the first unsafe
/// character, and shows the value escaped.
pub fn check_free_text(field: &'static str, value: &str) -> Result<()> {
    if let Some((at, c)) = value.char_indices().find(|(_, c)| is_unsafe_char(*c)) {
        return Err(Error::invalid(
            field,
            printable(value).into_owned(),
            format!(
                "{field} may not contain control characters; found {} at byte {at}",
                c.escape_unicode()
            ),
        ));
    }
    if value.len() > MAX_FREE_TEXT {
        return Err(Error::invalid(
            field,
            value.to_string(),
            format!(
                "{field} is {} bytes; at most {MAX_FREE_TEXT} are accepted",
                value.len()
            ),
        ));
    }
    Ok(())
}

/// `text` with every unsafe character (see [`is_unsafe_char`]) written as a `\u{..}` escape,
/// for one line of terminal output. Borrowed when there is nothing to escape.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_escapes_and_bidi_controls_are_refused() {
        for bad in [
            "fix\n#99 2026-01-01 unlocked admin",
            "a\rb",
            "red \u{1b}[31m",
            "tab\there",
            "del\u{7f}",
            "c1 \u{9b}31m",
            "nul\0",
            "rtl \u{202E}evil",
            "isolate \u{2066}x\u{2069}",
        ] {
            let err = check_free_text("reason", bad).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("reason"), "{text}");
            assert!(text.contains("control characters"), "{text}");
            assert!(!text.chars().any(is_unsafe_char), "{text:?}");
        }
    }

    #[test]
    fn ordinary_text_passes_and_length_is_bounded() {
        for good in [
            "",
            "incident 42: rollback",
            "Störung – 回滚 ✓",
            "a\"b'c;$(x)",
        ] {
            check_free_text("reason", good).unwrap();
        }
        check_free_text("reason", &"x".repeat(MAX_FREE_TEXT)).unwrap();
        let err = check_free_text("reason", &"x".repeat(MAX_FREE_TEXT + 1)).unwrap_err();
        assert!(err.to_string().contains("at most 4096"), "{err}");
    }

    #[test]
    fn printable_escapes_only_unsafe_characters() {
        assert!(matches!(printable("plain ✓"), Cow::Borrowed("plain ✓")));
        assert_eq!(
            printable("a\nb\u{1b}[2J\u{202E}c"),
            "a\\u{a}b\\u{1b}[2J\\u{202e}c"
        );
    }
}
