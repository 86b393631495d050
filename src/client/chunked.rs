//! The chunked transfer coding (RFC 9112 §7.1), decoded as bytes arrive.
//!
//! Nothing is buffered: chunk data is handed on as the slices of each read it sits in,
//! and the framing around it (size lines with extensions, the CRLF after each chunk,
//! trailers) is walked byte by byte, so any of it may be split across reads. Line ends
//! are CRLF or a lone LF (§2.2 lets a recipient accept the latter). Extensions and
//! trailer fields are skipped.

/// Longest size line (digits and extensions) and trailer section accepted: a body that
/// is not chunked at all is caught soon instead of being skipped as an extension.
const MAX_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

/// Why a chunked body cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkError(pub &'static str);

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed chunked body: {}", self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size.
    Size,
    /// After the digits: whitespace, then `;` and extensions, up to the line end.
    SizeRest,
    Ext,
    /// A CR ended the size line; its LF comes next.
    SizeLf,
    /// Bytes of chunk data left.
    Data(u64),
    /// The line end after a chunk's data.
    DataEnd,
    DataLf,
    /// Trailer lines after the last chunk; an empty line ends the body.
    Trailer,
    TrailerLf,
    Done,
}

#[derive(Clone, Debug)]
pub struct Chunked {
    state: State,
    size: u64,
    digits: u8,
    /// Bytes of the size line or trailer line being read.
    line: usize,
    trailers: usize,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: State::Size,
            size: 0,
            digits: 0,
            line: 0,
            trailers: 0,
        }
    }
}

impl Chunked {
    pub fn new() -> Self {
        Self::default()
    }

    /// The last chunk and the trailers were read: the body ended.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decode `input`, handing each run of chunk data to `out`. Returns how many bytes
    /// belonged to the body: all of `input` unless the body ended inside it.
    pub fn decode(
        &mut self,
        input: &[u8],
        mut out: impl FnMut(&[u8]),
    ) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Done => break,
                State::Data(left) => {
                    let n = left.min((input.len() - i) as u64) as usize;
                    out(&input[i..i + n]);
                    i += n;
                    self.state = if left == n as u64 {
                        State::DataEnd
                    } else {
                        State::Data(left - n as u64)
                    };
                }
                _ => {
                    self.step(input[i])?;
                    i += 1;
                }
            }
        }
        Ok(i)
    }

    /// One byte of framing.
    fn step(&mut self, b: u8) -> Result<(), ChunkError> {
        if matches!(self.state, State::Size | State::SizeRest | State::Ext) {
            self.line += 1;
            if self.line > MAX_LINE {
                return Err(ChunkError("a chunk-size line passed 4 KiB"));
            }
        }
        self.state = match (self.state, b) {
            (State::Size, _) if b.is_ascii_hexdigit() => {
                if self.digits == 16 {
                    return Err(ChunkError("a chunk size over 64 bits"));
                }
                self.digits += 1;
                // A hex digit's value: '0'..'9', then 'a'..'f' either case.
                let v = (b as char).to_digit(16).unwrap_or(0);
                self.size = (self.size << 4) | u64::from(v);
                State::Size
            }
            (State::Size, _) if self.digits == 0 => {
                return Err(ChunkError("a chunk-size line without a size"));
            }
            (State::Size | State::SizeRest, b' ' | b'\t') => State::SizeRest,
            (State::Size | State::SizeRest, b';') => State::Ext,
            (State::Size | State::SizeRest | State::Ext, b'\r') => State::SizeLf,
            (State::Size | State::SizeRest | State::Ext, b'\n') | (State::SizeLf, b'\n') => {
                self.size_line_ended()
            }
            (State::Size | State::SizeRest, _) => {
                return Err(ChunkError("a chunk size that is not hexadecimal"));
            }
            (State::Ext, _) => State::Ext,
            (State::SizeLf, _) => return Err(ChunkError("a CR without LF after a chunk size")),
            (State::DataEnd, b'\r') => State::DataLf,
            (State::DataEnd | State::DataLf, b'\n') => self.next_chunk(),
            (State::DataEnd | State::DataLf, _) => {
                return Err(ChunkError("chunk data longer than its size"));
            }
            (State::Trailer, b'\r') => State::TrailerLf,
            (State::Trailer | State::TrailerLf, b'\n') => {
                if self.line == 0 {
                    State::Done
                } else {
                    self.line = 0;
                    State::Trailer
                }
            }
            (State::Trailer, _) => {
                self.line += 1;
                self.trailers += 1;
                if self.trailers > MAX_TRAILERS {
                    return Err(ChunkError("trailers passed 16 KiB"));
                }
                State::Trailer
            }
            (State::TrailerLf, _) => return Err(ChunkError("a CR without LF in the trailers")),
            (State::Data(_) | State::Done, _) => unreachable!("data and the end are not framing"),
        };
        Ok(())
    }

    fn size_line_ended(&mut self) -> State {
        self.line = 0;
        if self.size == 0 {
            State::Trailer
        } else {
            State::Data(self.size)
        }
    }

    fn next_chunk(&mut self) -> State {
        self.size = 0;
        self.digits = 0;
        State::Size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decode `pieces` in turn; the data, the bytes consumed and whether the body ended.
    fn decode(pieces: &[&[u8]]) -> Result<(Vec<u8>, usize, bool), ChunkError> {
        let mut d = Chunked::new();
        let mut data = Vec::new();
        let mut used = 0;
        for p in pieces {
            used += d.decode(p, |s| data.extend_from_slice(s))?;
        }
        Ok((data, used, d.is_done()))
    }

    /// Whole, at every single split point, and byte by byte: the same result.
    fn every_split(body: &[u8]) -> Result<(Vec<u8>, usize, bool), ChunkError> {
        let whole = decode(&[body]);
        for i in 0..=body.len() {
            assert_eq!(decode(&[&body[..i], &body[i..]]), whole, "split at {i}");
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(decode(&bytes), whole, "byte by byte");
        whole
    }

    #[test]
    fn chunks_extensions_and_trailers() {
        let body = b"5\r\nhello\r\n6;name=val;x\r\n world\r\nA \t; ext=\"q;\"\r\n0123456789\r\n\
                     0;last\r\nExpires: never\r\nX-Other: 1\r\n\r\n";
        let (data, used, done) = every_split(body).unwrap();
        assert_eq!(data, b"hello world0123456789");
        assert_eq!((used, done), (body.len(), true));
    }

    #[test]
    fn lone_lf_line_ends_and_uppercase_hex() {
        let (data, _, done) = every_split(b"0000B\nhello world\n0\n\n").unwrap();
        assert_eq!((data.as_slice(), done), (&b"hello world"[..], true));
    }

    #[test]
    fn bytes_after_the_end_are_not_consumed() {
        let (data, used, done) = every_split(b"1\r\nx\r\n0\r\n\r\nHTTP/1.1").unwrap();
        assert_eq!((data.as_slice(), used, done), (&b"x"[..], 11, true));
    }

    #[test]
    fn an_unfinished_body_is_not_done() {
        for cut in [
            &b"5\r\nhel"[..],
            b"5\r\nhello",
            b"5\r\nhello\r",
            b"0\r\n",
            b"0\r\nX: y\r\n",
        ] {
            let (_, used, done) = every_split(cut).unwrap();
            assert_eq!((used, done), (cut.len(), false), "{cut:?}");
        }
    }

    #[test]
    fn malformed_framing_is_an_error() {
        for bad in [
            &b"\r\n"[..],
            b"g\r\n",
            b"5 5\r\n",
            b"-1\r\n",
            b"5\rhello",
            b"2\r\nhello\r\n",
            b"2\r\nhiX",
            b"0\r\n\rX",
            b"1ffffffffffffffff\r\n",
        ] {
            let err = every_split(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("malformed chunked body"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn endless_size_lines_and_trailers_are_bounded() {
        let mut ext = b"1;".to_vec();
        ext.resize(MAX_LINE + 10, b'x');
        assert!(decode(&[&ext]).is_err());
        let mut trailers = b"0\r\n".to_vec();
        while trailers.len() < 2 * MAX_TRAILERS {
            trailers.extend_from_slice(b"X-A: 1234\r\n");
        }
        assert!(decode(&[&trailers]).is_err());
    }

    #[test]
    fn the_largest_size_is_accepted() {
        let (_, _, done) = decode(&[b"ffffffffffffffff\r\nabc"]).unwrap();
        assert!(!done);
    }
}
