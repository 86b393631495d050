//! Server-sent events, parsed incrementally from raw bytes as they arrive.
//!
//! Works on bytes, not text, so a read that ends inside a UTF-8 character is harmless;
//! accepts LF, CRLF and lone CR line ends (also split across reads), comments, fields
//! other than `data`, and multi-line data. Buffers are reused, so parsing allocates
//! nothing per event.

/// What is left when the stream ends.
#[derive(Debug, PartialEq, Eq)]
pub enum Leftover {
    /// Nothing pending: the stream ended between events.
    None,
    /// Data lines or a partial line after the last complete event; the stream was cut
    /// mid-event (or the server omitted the final blank line).
    Partial(Vec<u8>),
}

/// The largest event (or line) kept: a server that never ends a line cannot make the
/// client buffer without bound. Real events are a few hundred bytes.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Default)]
pub struct SseParser {
    /// An event or line passed `MAX_EVENT_BYTES`; the stream is unusable.
    overflow: bool,
    /// Bytes of the current, incomplete line.
    line: Vec<u8>,
    /// Data of the event being assembled (lines joined by '\n').
    data: Vec<u8>,
    has_data: bool,
    /// The previous read ended with '\r': a '\n' starting this read belongs to it.
    skip_lf: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed one read. `on_event` gets each complete event's data; returning `false`
    /// stops parsing (the rest of the read is dropped).
    pub fn feed(&mut self, mut chunk: &[u8], mut on_event: impl FnMut(&[u8]) -> bool) {
        // An empty read must not forget a '\r' that may still be followed by its '\n'.
        if self.overflow || chunk.is_empty() {
            return;
        }
        if self.skip_lf {
            self.skip_lf = false;
            if chunk.first() == Some(&b'\n') {
                chunk = &chunk[1..];
            }
        }
        while !chunk.is_empty() {
            let Some(pos) = memchr::memchr2(b'\n', b'\r', chunk) else {
                if self.line.len() + self.data.len() + chunk.len() > MAX_EVENT_BYTES {
                    self.overflowed();
                } else {
                    self.line.extend_from_slice(chunk);
                }
                return;
            };
            let ending = chunk[pos];
            let line_part = &chunk[..pos];
            let mut rest = &chunk[pos + 1..];
            if ending == b'\r' {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.skip_lf = true,
                    _ => {}
                }
            }
            let keep_going = if self.line.is_empty() {
                self.process_line(line_part, &mut on_event)
            } else {
                self.line.extend_from_slice(line_part);
                let line = std::mem::take(&mut self.line);
                let r = self.process_line(&line, &mut on_event);
                self.line = line;
                self.line.clear();
                r
            };
            if !keep_going {
                return;
            }
            chunk = rest;
        }
    }

    /// Returns false when `on_event` asked to stop.
    fn process_line(&mut self, line: &[u8], on_event: &mut impl FnMut(&[u8]) -> bool) -> bool {
        if line.is_empty() {
            if !self.has_data {
                return true;
            }
            self.has_data = false;
            // Lines are joined with '\n'; the spec drops the final one.
            if self.data.last() == Some(&b'\n') {
                self.data.pop();
            }
            let go = on_event(&self.data);
            self.data.clear();
            return go;
        }
        if line[0] == b':' {
            return true; // comment / keep-alive
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        if field == b"data" {
            if self.data.len() + value.len() > MAX_EVENT_BYTES {
                self.overflowed();
                return false;
            }
            self.data.extend_from_slice(value);
            self.data.push(b'\n');
            self.has_data = true;
        }
        true
    }

    fn overflowed(&mut self) {
        self.overflow = true;
        self.line = Vec::new();
        self.data = Vec::new();
    }

    /// An event or line passed `MAX_EVENT_BYTES` (nothing more is parsed).
    pub fn overflowed_limit(&self) -> bool {
        self.overflow
    }

    /// The stream ended: report anything left unfinished.
    pub fn finish(&mut self) -> Leftover {
        let mut pending = std::mem::take(&mut self.data);
        let had_data = std::mem::take(&mut self.has_data);
        let line = std::mem::take(&mut self.line);
        // An unterminated last line counts only if it is a data line; a trailing
        // comment or other field is ignored like any other.
        let tail = line.strip_prefix(b"data").and_then(|v| match v.first() {
            None => Some(&b""[..]),
            Some(b':') => Some(v[1..].strip_prefix(b" ").unwrap_or(&v[1..])),
            Some(_) => None,
        });
        match tail {
            // Earlier data lines keep the '\n' that joins them to this one.
            Some(value) => pending.extend_from_slice(value),
            None if had_data && pending.last() == Some(&b'\n') => {
                pending.pop();
            }
            None => {}
        }
        if pending.is_empty() {
            Leftover::None
        } else {
            Leftover::Partial(pending)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(pieces: &[&[u8]]) -> (Vec<String>, Leftover) {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for piece in pieces {
            p.feed(piece, |d| {
                out.push(String::from_utf8(d.to_vec()).unwrap());
                true
            });
        }
        (out, p.finish())
    }

    fn parse_every_split(stream: &[u8]) -> Vec<String> {
        let (whole, _) = parse_in_pieces(&[stream]);
        // Every split point, and byte by byte, must give the same events.
        for i in 0..=stream.len() {
            let (split, _) = parse_in_pieces(&[&stream[..i], &stream[i..]]);
            assert_eq!(split, whole, "split at {i}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(parse_in_pieces(&bytes).0, whole, "byte by byte");
        whole
    }

    #[test]
    fn basic_events_and_done() {
        let ev = parse_every_split(b"data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: [DONE]\n\n");
        assert_eq!(ev, ["{\"a\":1}", "{\"a\":2}", "[DONE]"]);
    }

    #[test]
    fn crlf_and_lone_cr_line_ends() {
        let ev = parse_every_split(b"data: x\r\n\r\ndata: y\r\rdata:z\n\n");
        assert_eq!(ev, ["x", "y", "z"]);
    }

    #[test]
    fn comments_and_other_fields_are_ignored() {
        let ev = parse_every_split(
            b": keep-alive\n\nevent: message\nid: 3\nretry: 10\ndata: hi\n\n:ping\n\n",
        );
        assert_eq!(ev, ["hi"]);
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        let ev = parse_every_split(b"data: {\"a\":\ndata: 1}\n\ndata\n\n");
        assert_eq!(ev, ["{\"a\":\n1}", ""]);
    }

    #[test]
    fn split_inside_a_utf8_character() {
        let stream = "data: {\"content\":\"héllo 世界\"}\n\n".as_bytes();
        let ev = parse_every_split(stream);
        assert_eq!(ev, ["{\"content\":\"héllo 世界\"}"]);
    }

    #[test]
    fn cut_mid_event_is_reported() {
        let (ev, left) = parse_in_pieces(&[b"data: {\"a\":1}\n\ndata: {\"a\":"]);
        assert_eq!(ev, ["{\"a\":1}"]);
        assert_eq!(left, Leftover::Partial(b"{\"a\":".to_vec()));
        let (_, left) = parse_in_pieces(&[b"data: [DONE]\n"]);
        assert_eq!(left, Leftover::Partial(b"[DONE]".to_vec()));
        let (_, left) = parse_in_pieces(&[b"data: x\n\n"]);
        assert_eq!(left, Leftover::None);
        let (_, left) = parse_in_pieces(&[b"data: x\n\n: ping"]);
        assert_eq!(left, Leftover::None, "an unterminated comment is not data");
        let (_, left) = parse_in_pieces(&[b"data: x\n\nevent: y"]);
        assert_eq!(left, Leftover::None);
        let (_, left) = parse_in_pieces(&[b"data: x\n\ndatax: y"]);
        assert_eq!(left, Leftover::None, "not the data field");
    }

    #[test]
    fn an_endless_line_is_bounded() {
        let mut p = SseParser::new();
        let chunk = vec![b'x'; 1024 * 1024];
        p.feed(b"data: ", |_| true);
        for _ in 0..20 {
            p.feed(&chunk, |_| panic!("no event"));
        }
        assert!(p.overflowed_limit());
        assert!(p.line.capacity() <= MAX_EVENT_BYTES && p.data.capacity() <= MAX_EVENT_BYTES);
        // Many data lines of one event are bounded too.
        let mut p = SseParser::new();
        let mut line = b"data: ".to_vec();
        line.extend_from_slice(&chunk);
        line.push(b'\n');
        for _ in 0..20 {
            p.feed(&line, |_| panic!("no event"));
        }
        assert!(p.overflowed_limit());
    }

    #[test]
    fn stop_request_is_honoured() {
        let mut p = SseParser::new();
        let mut n = 0;
        p.feed(b"data: 1\n\ndata: 2\n\n", |_| {
            n += 1;
            false
        });
        assert_eq!(n, 1);
    }
}
