//! A forward-only JSON reader for the stream's hot path. It walks one event, hands out
//! borrowed keys and string bodies, and skips every value measurement does not need
//! without building it: about 4× cheaper per event than deserializing with serde_json.
//!
//! Structure is checked (quotes, brackets, commas, colons, literals, nesting depth);
//! skipped numbers, escapes and control characters inside skipped strings are checked
//! only loosely. Every method returns `None` on anything unexpected, and the caller then
//! hands the event to serde_json, which decides and words the error.

/// Bounds the recursion (serde_json's own limit for typed values); deeper input goes to
/// serde_json.
const MAX_DEPTH: u32 = 128;

/// A string as it appears on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawStr<'a> {
    /// Between the quotes, escapes left as they are.
    pub body: &'a str,
    /// With its quotes, ready for serde_json when it has escapes.
    pub quoted: &'a str,
    pub escaped: bool,
}

impl<'a> RawStr<'a> {
    /// The body when it needs no unescaping (keys measurement compares against).
    pub fn plain(&self) -> Option<&'a str> {
        (!self.escaped).then_some(self.body)
    }

    /// Append the string's value to `out`.
    pub fn push_to(&self, out: &mut String) -> Option<()> {
        if self.escaped {
            out.push_str(&serde_json::from_str::<String>(self.quoted).ok()?);
        } else {
            out.push_str(self.body);
        }
        Some(())
    }
}

pub struct Cursor<'a> {
    s: &'a str,
    pos: usize,
    depth: u32,
}

impl<'a> Cursor<'a> {
    pub fn new(s: &'a str) -> Self {
        Cursor {
            s,
            pos: 0,
            depth: 0,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.s.as_bytes()
    }

    fn ws(&mut self) {
        let b = self.bytes();
        while let Some(c) = b.get(self.pos) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.bytes().get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.pos += 1)
    }

    /// Consumes a `null` if one comes next.
    pub fn null(&mut self) -> bool {
        if self.peek() == Some(b'n') && self.bytes()[self.pos..].starts_with(b"null") {
            self.pos += 4;
            true
        } else {
            false
        }
    }

    /// A string comes next (a value that may be of another type).
    pub fn at_string(&mut self) -> bool {
        self.peek() == Some(b'"')
    }

    pub fn string(&mut self) -> Option<RawStr<'a>> {
        self.eat(b'"')?;
        let open = self.pos - 1;
        let b = self.bytes();
        let mut escaped = false;
        let mut at = self.pos;
        loop {
            let i = at + find_quote_or_backslash(&b[at..])?;
            if b[i] == b'"' {
                self.pos = i + 1;
                // Quotes and backslashes are ASCII, so these are char boundaries.
                return Some(RawStr {
                    body: &self.s[open + 1..i],
                    quoted: &self.s[open..=i],
                    escaped,
                });
            }
            escaped = true;
            at = i + 2; // the escaped character; `\u` digits hold no quote or backslash
            if at > b.len() {
                return None;
            }
        }
    }

    /// Walks an object, calling `member` with each key; `member` must consume the value.
    pub fn object(
        &mut self,
        member: impl FnMut(&mut Self, RawStr<'a>) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        self.enter()?;
        if self.peek()? == b'}' {
            self.pos += 1;
            return self.leave();
        }
        self.members(member)
    }

    /// Resumes walking the top-level object at byte `pos`, where a member's key starts
    /// (what `object` would be doing there, had it read the bytes before `pos`).
    pub fn object_from(
        &mut self,
        pos: usize,
        member: impl FnMut(&mut Self, RawStr<'a>) -> Option<()>,
    ) -> Option<()> {
        if pos > self.s.len() || self.depth != 0 {
            return None;
        }
        self.pos = pos;
        self.enter()?;
        self.members(member)
    }

    /// Byte offset of `part` (a slice of the text being walked) in it.
    pub fn offset_of(&self, part: &str) -> usize {
        part.as_ptr() as usize - self.s.as_ptr() as usize
    }

    fn members(
        &mut self,
        mut member: impl FnMut(&mut Self, RawStr<'a>) -> Option<()>,
    ) -> Option<()> {
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            member(self, key)?;
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return self.leave();
                }
                _ => return None,
            }
        }
    }

    /// Walks an array, calling `element` for each; `element` must consume it.
    pub fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        self.enter()?;
        if self.peek()? == b']' {
            self.pos += 1;
            return self.leave();
        }
        loop {
            element(self)?;
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return self.leave();
                }
                _ => return None,
            }
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    fn leave(&mut self) -> Option<()> {
        self.depth -= 1;
        Some(())
    }

    /// Skips one value of any kind.
    pub fn skip(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.object(|c, _| c.skip()),
            b'[' => self.array(Self::skip),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => {
                let b = self.bytes();
                let start = self.pos;
                while let Some(c) = b.get(self.pos) {
                    if !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                        break;
                    }
                    self.pos += 1;
                }
                (self.pos > start).then_some(())
            }
            _ => None,
        }
    }

    /// Skips one value and returns its text, for the rare parts worth a full parse.
    pub fn raw_value(&mut self) -> Option<&'a str> {
        self.ws();
        let start = self.pos;
        self.skip()?;
        Some(&self.s[start..self.pos])
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.bytes()[self.pos..]
            .starts_with(word)
            .then(|| self.pos += word.len())
    }

    /// Only whitespace may follow the value.
    pub fn end(&mut self) -> Option<()> {
        self.ws();
        (self.pos == self.s.len()).then_some(())
    }
}

/// The first `"` or `\\`. Most strings in an event are a few bytes (keys, ids, one
/// token): eight bytes at a time in a register (SWAR) ends before SIMD search would have
/// set up; past 64 bytes (prompts echoed back, long tokens) memchr takes over.
fn find_quote_or_backslash(b: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const QUOTE: u64 = LO * b'"' as u64;
    const BACKSLASH: u64 = LO * b'\\' as u64;
    let mut i = 0;
    while i < 64 {
        let Some(chunk) = b.get(i..i + 8) else {
            break;
        };
        let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let (q, s) = (w ^ QUOTE, w ^ BACKSLASH);
        // A byte of q or s is zero where w holds the byte sought; the lowest flagged
        // byte is exact (borrows only flag bytes above a true zero).
        let found = ((q.wrapping_sub(LO) & !q) | (s.wrapping_sub(LO) & !s)) & HI;
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if i >= 64 {
        return memchr::memchr2(b'"', b'\\', &b[i..]).map(|p| p + i);
    }
    b[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\')
        .map(|p| p + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skips(s: &str) -> bool {
        let mut c = Cursor::new(s);
        c.skip().is_some() && c.end().is_some()
    }

    #[test]
    fn skips_what_json_allows() {
        for ok in [
            r#"{}"#,
            r#"[]"#,
            r#" { "a" : [1, -2.5e3, true, false, null, "x\"y\\", {"b": {}}] } "#,
            r#""\u00e9""#,
            r#"0"#,
        ] {
            assert!(skips(ok), "{ok}");
        }
    }

    #[test]
    fn refuses_broken_structure() {
        for bad in [
            r#"{"a" 1}"#,
            r#"{"a": 1,}"#,
            r#"{"a": 1 "b": 2}"#,
            r#"[1 2]"#,
            r#"{"a": tru}"#,
            r#"{"a": "open}"#,
            r#"{"a": 1"#,
            r#"{"a": 1}}"#,
            r#"{a: 1}"#,
            r#""ends in \"#,
            r#""#,
            r#"{"a": +}"#,
        ] {
            assert!(!skips(bad), "{bad}");
        }
    }

    #[test]
    fn quote_search_finds_the_first_at_any_offset() {
        for len in 0..150 {
            for at in 0..=len {
                for c in [b'"', b'\\'] {
                    // Bytes just around '"' and '\\' (and 0x80+) must not be mistaken.
                    let mut b: Vec<u8> = (0..len)
                        .map(|i| [b'!', b'#', b'[', b']', 0xc3, 0xa9][i % 6])
                        .collect();
                    if at < len {
                        b[at] = c;
                        if at + 1 < len {
                            b[at + 1] = b'"';
                        }
                    }
                    let want = (at < len).then_some(at);
                    assert_eq!(find_quote_or_backslash(&b), want, "len {len} at {at}");
                }
            }
        }
    }

    #[test]
    fn nesting_is_bounded() {
        // The walk recurses, so depth is bounded; deeper events go to serde_json.
        let deep = |n| "[".repeat(n) + &"]".repeat(n);
        assert!(skips(&deep(MAX_DEPTH as usize)));
        assert!(!skips(&deep(MAX_DEPTH as usize + 1)));
    }

    #[test]
    fn strings_keep_their_escapes_until_asked() {
        let mut c = Cursor::new(r#""a\nb\u00e9" "plain""#);
        let s = c.string().unwrap();
        assert!(s.escaped && s.plain().is_none());
        let mut out = String::new();
        s.push_to(&mut out).unwrap();
        assert_eq!(out, "a\nbé");
        let p = c.string().unwrap();
        assert_eq!(p.plain(), Some("plain"));
    }
}
