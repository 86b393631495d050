//! Masking the API key in text a server sends back. Gateways echo the Authorization
//! header in error bodies, and not always as it was sent: decoded as Latin-1 (each
//! UTF-8 byte of a non-ASCII key shown as one character), percent-encoded, JSON-escaped
//! (`\u00e9`), cut short. So the key is looked for in two views of the text, as it is
//! and with `%XX` and JSON escapes decoded, in two forms, as sent and as Latin-1 of its
//! UTF-8 bytes; and not only whole: any run of [`MIN_PART`] consecutive characters of
//! it (the whole key when shorter) is masked wherever it shows.

use std::borrow::Cow;

use aho_corasick::AhoCorasick;

/// The shortest part of the key masked on its own: short enough that an echo cut to
/// a prefix or suffix is caught, long enough that common words are not.
pub const MIN_PART: usize = 8;
/// What a masked span becomes.
const MASK: &str = "***";

/// Finds the key, or any recognisable part of it, in a text.
#[derive(Clone)]
pub struct KeyMask {
    /// Every part of the key in every form; `None` without a key.
    parts: Option<AhoCorasick>,
}

/// The automaton's own Debug would show the key's parts.
impl std::fmt::Debug for KeyMask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyMask(***)")
    }
}

impl KeyMask {
    /// Masks nothing.
    pub fn none() -> KeyMask {
        KeyMask { parts: None }
    }

    pub fn new(key: &str) -> KeyMask {
        KeyMask::all(&[key])
    }

    /// Masks each of several secrets (the API key and `-H` credentials' values).
    pub fn all(secrets: &[&str]) -> KeyMask {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        for key in secrets {
            let chars: Vec<char> = key.chars().collect();
            if chars.is_empty() {
                continue;
            }
            let len = MIN_PART.min(chars.len());
            for w in chars.windows(len) {
                let part: String = w.iter().collect();
                let latin1: String = part.bytes().map(char::from).collect();
                if latin1 != part {
                    parts.push(latin1.into_bytes());
                }
                parts.push(part.into_bytes());
            }
        }
        if parts.is_empty() {
            return KeyMask::none();
        }
        parts.sort();
        parts.dedup();
        // Only fails on pattern sets far larger than a key makes.
        KeyMask {
            parts: AhoCorasick::new(&parts).ok(),
        }
    }

    /// The text with every span that shows the key, or a part of it, replaced by `***`.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let Some(parts) = &self.parts else {
            return Cow::Borrowed(text);
        };
        let mut spans: Vec<(usize, usize)> = parts
            .find_overlapping_iter(text)
            .map(|m| (m.start(), m.end()))
            .collect();
        let decoded = Decoded::of(text);
        if decoded.bytes.len() != text.len() {
            for m in parts.find_overlapping_iter(&decoded.bytes) {
                spans.push(decoded.source(m.start(), m.end()));
            }
        }
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        Cow::Owned(replace_spans(text, spans))
    }
}

/// `text` with the (possibly overlapping) byte spans replaced, each run once by `***`.
fn replace_spans(text: &str, mut spans: Vec<(usize, usize)>) -> String {
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut i = 0;
    while i < spans.len() {
        let (start, mut end) = spans[i];
        while i < spans.len() && spans[i].0 <= end {
            end = end.max(spans[i].1);
            i += 1;
        }
        let (start, end) = (
            floor_boundary(text, start.max(at)),
            ceil_boundary(text, end),
        );
        out.push_str(&text[at..start]);
        out.push_str(MASK);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// A text with `%XX`, `\uXXXX` (surrogate pairs joined) and JSON's `\/ \" \\` decoded,
/// as bytes (a decoded `%XX` need not be UTF-8), each byte knowing the span of the text
/// it came from.
struct Decoded {
    bytes: Vec<u8>,
    /// For each decoded byte, where its escape (or itself) starts and ends in the text.
    from: Vec<(usize, usize)>,
}

impl Decoded {
    fn of(text: &str) -> Decoded {
        let b = text.as_bytes();
        let mut d = Decoded {
            bytes: Vec::with_capacity(b.len()),
            from: Vec::with_capacity(b.len()),
        };
        let mut i = 0;
        while i < b.len() {
            let (decoded, used) = match b[i] {
                b'%' => hex(&b[i + 1..], 2).map(|v| (vec![v as u8], 3)),
                b'\\' => json_escape(&b[i + 1..]).map(|(v, n)| (v, n + 1)),
                _ => None,
            }
            .unwrap_or_else(|| (vec![b[i]], 1));
            for byte in decoded {
                d.bytes.push(byte);
                d.from.push((i, i + used));
            }
            i += used;
        }
        d
    }

    /// The text's span a decoded span came from.
    fn source(&self, start: usize, end: usize) -> (usize, usize) {
        (self.from[start].0, self.from[end - 1].1)
    }
}

/// The value of `digits` hex digits at the start of `b`.
fn hex(b: &[u8], digits: usize) -> Option<u32> {
    let s = std::str::from_utf8(b.get(..digits)?).ok()?;
    if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// After a backslash: the UTF-8 of what a JSON escape stands for, and its length.
fn json_escape(b: &[u8]) -> Option<(Vec<u8>, usize)> {
    match b.first()? {
        c @ (b'/' | b'"' | b'\\') => Some((vec![*c], 1)),
        b'u' => {
            let unit = hex(&b[1..], 4)?;
            let (c, used) = if (0xD800..0xDC00).contains(&unit) {
                // A high surrogate counts only with its low half: \uD83D\uDE00.
                let low = b
                    .get(5..7)
                    .filter(|p| *p == b"\\u")
                    .and_then(|_| hex(&b[7..], 4))
                    .filter(|l| (0xDC00..0xE000).contains(l))?;
                let c = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                (char::from_u32(c)?, 11)
            } else {
                (char::from_u32(unit)?, 5)
            };
            Some((c.to_string().into_bytes(), used))
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "tests_redact.rs"]
mod tests;
