//! A lean HTTP/1.1 connection for the benchmark's streaming requests.
//!
//! A general client keeps per connection an 8 KB read buffer, an 8 KB header write
//! buffer, a dispatch channel and a task of its own: ~29 KB per open stream in a heap
//! profile, where 10,000 streams must fit in 150 MB. Here a connection is a socket and
//! one read buffer that starts at 4 KB and grows only for a response head that does
//! not fit, or up to 32 KB for a server that fills it on every read; the request's own
//! task drives it. The request head goes out with the body
//! in one vectored write; body bytes are handed on read by read, never held whole.

use std::io::{self, IoSlice, Write as _};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use reqwest::Url;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::chunked::{ChunkError, Chunked};
use super::resolve::Resolver;

/// The read buffer's size: a response head and a few events fit.
const INITIAL_BUFFER: usize = 4 * 1024;
/// The most a body read asks for (13 reads of 4 KB for a 50 KB burst cost 4% more CPU).
const MAX_BODY_READ: usize = 32 * 1024;
/// The largest response head accepted (the buffer grows up to this only for a head).
const MAX_HEAD: usize = 64 * 1024;
/// Header lines parsed in a response head (as hyper).
const MAX_HEADERS: usize = 100;

/// Where requests go: scheme, host and port (the keep-alive pool's key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin<'a> {
    pub https: bool,
    /// As in the URL: an IPv6 address keeps its brackets.
    pub host: &'a str,
    pub port: u16,
}

impl<'a> Origin<'a> {
    pub fn of(url: &'a Url) -> Self {
        Origin {
            https: url.scheme() == "https",
            host: url.host_str().unwrap_or(""),
            port: url.port_or_known_default().unwrap_or(80),
        }
    }
}

/// The request head's lines that are the same for every request of a client, built
/// once: User-Agent, Content-Type, Accept (each unless `-H` gives its own), the
/// Authorization header, then the `-H` headers.
pub fn fixed_head_lines(auth: Option<&[u8]>, extra: &super::headers::ExtraHeaders) -> Vec<u8> {
    let mut h = Vec::with_capacity(128);
    let ua = concat!("servescope/", env!("CARGO_PKG_VERSION"));
    for (name, value) in [
        ("User-Agent", ua),
        ("Content-Type", "application/json"),
        ("Accept", "text/event-stream"),
    ] {
        if !extra.has(name) {
            h.extend_from_slice(name.as_bytes());
            h.extend_from_slice(b": ");
            h.extend_from_slice(value.as_bytes());
            h.extend_from_slice(b"\r\n");
        }
    }
    if let Some(a) = auth {
        h.extend_from_slice(b"Authorization: ");
        h.extend_from_slice(a);
        h.extend_from_slice(b"\r\n");
    }
    h.extend_from_slice(&extra.head_lines());
    h
}

/// The request head: `POST` with a JSON body, asking for an event stream; `fixed` is
/// [`fixed_head_lines`].
pub fn request_head(url: &Url, fixed: &[u8], body_len: usize) -> Vec<u8> {
    let mut h = Vec::with_capacity(100 + url.path().len() + fixed.len());
    h.extend_from_slice(b"POST ");
    h.extend_from_slice(url.path().as_bytes());
    if let Some(q) = url.query() {
        h.push(b'?');
        h.extend_from_slice(q.as_bytes());
    }
    h.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    h.extend_from_slice(url.host_str().unwrap_or("").as_bytes());
    if let Some(port) = url.port() {
        let _ = write!(h, ":{port}");
    }
    h.extend_from_slice(b"\r\n");
    h.extend_from_slice(fixed);
    let _ = write!(h, "Content-Length: {body_len}\r\n\r\n");
    h
}

enum Stream {
    Plain(TcpStream),
    /// Boxed: a TLS session is large and plain connections are the common case.
    Tls(Box<TlsStream<TcpStream>>),
}

/// How the body's end is known.
#[derive(Debug)]
enum Framing {
    Length(u64),
    Chunked(Chunked),
    /// Until the server closes the connection.
    Close,
}

/// The response head: what the client needs of it.
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    /// Empty when absent.
    pub content_type: String,
    pub retry_after: Option<Duration>,
}

#[derive(Debug)]
pub enum HeadError {
    /// The connection closed before a whole head; `answered`: some of it came.
    Closed {
        answered: bool,
    },
    Io(io::Error),
    /// Not HTTP/1, or a head past the size limit or with a bad Content-Length.
    Invalid(String),
}

pub struct Conn {
    stream: Stream,
    /// Unread bytes are `buf[pos..end]`.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// The current response's body.
    framing: Framing,
    ended: bool,
    /// The server allows another request on this connection.
    keep_alive: bool,
}

impl Conn {
    /// Connect (and shake hands, for https).
    pub async fn connect(
        origin: &Origin<'_>,
        resolver: &Resolver,
        tls: Option<&TlsConnector>,
    ) -> Result<Conn, String> {
        let (host, port) = (origin.host, origin.port);
        let tcp = resolver
            .connect(host, port)
            .await
            .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        // A request larger than a segment must not wait for an ACK (Nagle).
        let _ = tcp.set_nodelay(true);
        let stream = match tls {
            None => Stream::Plain(tcp),
            Some(tls) => {
                let name = super::tls::server_name(host)?;
                let s = tls
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS handshake with {host}:{port} failed: {e}"))?;
                Stream::Tls(Box::new(s))
            }
        };
        Ok(Conn {
            stream,
            buf: vec![0; INITIAL_BUFFER],
            pos: 0,
            end: 0,
            framing: Framing::Length(0),
            ended: true,
            keep_alive: false,
        })
    }

    /// Write the request: head and body in one vectored write when the socket takes it.
    pub async fn send(&mut self, mut head: &[u8], mut body: &[u8]) -> io::Result<()> {
        self.pos = 0;
        self.end = 0;
        while !head.is_empty() || !body.is_empty() {
            let n = self
                .stream
                .write_vectored(&[IoSlice::new(head), IoSlice::new(body)])
                .await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            let in_head = n.min(head.len());
            head = &head[in_head..];
            body = &body[n - in_head..];
        }
        self.stream.flush().await
    }

    /// Read the response head (skipping interim 1xx responses).
    pub async fn read_head(&mut self) -> Result<Head, HeadError> {
        let mut answered = false;
        loop {
            if let Some(head) = self.parse_head()? {
                return Ok(head);
            }
            self.make_room()?;
            let n = self
                .stream
                .read(&mut self.buf[self.end..])
                .await
                .map_err(HeadError::Io)?;
            if n == 0 {
                return Err(HeadError::Closed { answered });
            }
            answered = true;
            self.end += n;
        }
    }

    /// Parse a final response head from the buffered bytes, if they hold one whole.
    fn parse_head(&mut self) -> Result<Option<Head>, HeadError> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut headers);
            let parsed = httparse::ParserConfig::default()
                // Leniencies real servers need; nothing here is forwarded anywhere.
                .allow_spaces_after_header_name_in_responses(true)
                .allow_obsolete_multiline_headers_in_responses(true)
                .parse_response(&mut resp, &self.buf[self.pos..self.end]);
            let len = match parsed {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(e) => {
                    return Err(HeadError::Invalid(format!(
                        "the response is not HTTP/1 ({e})"
                    )));
                }
            };
            self.pos += len;
            let status = resp.code.unwrap_or(0);
            // 100 Continue and the like precede the real response (101 would not: no
            // upgrade was asked for, so it is taken as the answer).
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            let (head, framing, reuse) = Head::read(status, resp.version == Some(0), resp.headers)?;
            self.ended = matches!(framing, Framing::Length(0));
            (self.framing, self.keep_alive) = (framing, reuse);
            return Ok(Some(head));
        }
    }

    /// Compact the buffer, growing it when a head fills it (up to `MAX_HEAD`).
    fn make_room(&mut self) -> Result<(), HeadError> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= MAX_HEAD {
                return Err(HeadError::Invalid(format!(
                    "the response head passed {} KiB",
                    MAX_HEAD >> 10
                )));
            }
            self.buf.resize((self.buf.len() * 2).min(MAX_HEAD), 0);
        }
        Ok(())
    }

    /// The response body was read to its end.
    pub fn body_ended(&self) -> bool {
        self.ended
    }

    /// Wait for body bytes: those already buffered, else one read. `Ok(0)`: the
    /// connection closed (see [`Conn::closed`]).
    pub async fn fill(&mut self) -> io::Result<usize> {
        if self.pos < self.end {
            return Ok(self.end - self.pos);
        }
        (self.pos, self.end) = (0, 0);
        self.end = self.stream.read(&mut self.buf).await?;
        // A read that filled the buffer: the server sends faster than one buffer per read
        // (a burst, a fast local server), so read more per system call from now on, up
        // to 32 KB. Streams of small events never fill 4 KB and keep the small buffer,
        // which is what holds 10,000 open streams to ~10 KB each.
        if self.end == self.buf.len() && self.buf.len() < MAX_BODY_READ {
            self.buf.resize((self.buf.len() * 2).min(MAX_BODY_READ), 0);
        }
        Ok(self.end)
    }

    /// After `fill` saw the connection close: whether that ended the body cleanly
    /// (a body delimited by the close) rather than cutting it.
    pub fn closed(&mut self) -> bool {
        self.keep_alive = false;
        if matches!(self.framing, Framing::Close) {
            self.ended = true;
        }
        self.ended
    }

    /// Hand the buffered body bytes to `out`, in pieces (chunk data as it lies in the
    /// buffer). Bytes past the body's end are dropped, and the connection with them.
    pub fn take(&mut self, mut out: impl FnMut(&[u8])) -> Result<(), ChunkError> {
        let input = &self.buf[self.pos..self.end];
        let used = match &mut self.framing {
            _ if self.ended => 0,
            Framing::Length(left) => {
                let n = (*left).min(input.len() as u64) as usize;
                out(&input[..n]);
                *left -= n as u64;
                self.ended = *left == 0;
                n
            }
            Framing::Chunked(c) => {
                let n = c.decode(input, out)?;
                self.ended = c.is_done();
                n
            }
            Framing::Close => {
                out(input);
                input.len()
            }
        };
        if used < input.len() {
            // Nothing was asked for after this response: the connection is confused.
            self.keep_alive = false;
        }
        self.pos = self.end;
        Ok(())
    }

    /// The response ended cleanly and the server keeps the connection open.
    pub fn reusable(&self) -> bool {
        self.ended && self.keep_alive && self.pos == self.end
    }

    /// An idle connection is still fit for a request: the server has not closed it and
    /// sent nothing unasked. One poll that never waits (no task watches idle
    /// connections, so this is when a close is noticed).
    pub fn still_open(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut probe = ReadBuf::new(&mut self.buf);
        matches!(
            Pin::new(&mut self.stream).poll_read(&mut cx, &mut probe),
            Poll::Pending
        )
    }

    /// The local port, telling connections apart in tests.
    #[cfg(test)]
    pub fn local_port(&self) -> u16 {
        let tcp = match &self.stream {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        };
        tcp.local_addr().map_or(0, |a| a.port())
    }

    /// For a connection that waits in the pool: a buffer grown for a large head goes
    /// back to the first size. One grown for body reads stays (at most 32 KB per pooled
    /// connection): the next response from the same server likely comes as fast.
    pub fn shrink(&mut self) {
        if self.buf.len() > MAX_BODY_READ {
            self.buf = vec![0; INITIAL_BUFFER];
        }
    }
}

impl Head {
    /// The head's fields, the body's framing and whether the connection may be reused.
    fn read(
        status: u16,
        http10: bool,
        headers: &[httparse::Header<'_>],
    ) -> Result<(Head, Framing, bool), HeadError> {
        let mut content_type: Option<&[u8]> = None;
        let mut retry_after = None;
        let mut chunked = None;
        let mut length: Option<u64> = None;
        let (mut close, mut keep_alive) = (false, false);
        for h in headers {
            let name = h.name;
            if name.eq_ignore_ascii_case("content-type") {
                content_type.get_or_insert(h.value);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                // Only the last coding counts: chunked must be the final one.
                let last = tokens(h.value).last().unwrap_or("");
                chunked = Some(last.eq_ignore_ascii_case("chunked"));
            } else if name.eq_ignore_ascii_case("content-length") {
                for v in tokens(h.value) {
                    let n = v
                        .parse::<u64>()
                        .ok()
                        .filter(|_| v.bytes().all(|b| b.is_ascii_digit()))
                        .filter(|n| length.is_none_or(|l| l == *n))
                        .ok_or_else(|| {
                            HeadError::Invalid(format!("a bad Content-Length: {v:?}"))
                        })?;
                    length = Some(n);
                }
            } else if name.eq_ignore_ascii_case("connection") {
                for t in tokens(h.value) {
                    close |= t.eq_ignore_ascii_case("close");
                    keep_alive |= t.eq_ignore_ascii_case("keep-alive");
                }
            } else if name.eq_ignore_ascii_case("retry-after") && retry_after.is_none() {
                retry_after = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .and_then(|s| Duration::try_from_secs_f64(s).ok());
            }
        }
        let framing = match (status, chunked, length) {
            (101, _, _) => Framing::Close,
            (204 | 304, _, _) => Framing::Length(0),
            (_, Some(true), _) => Framing::Chunked(Chunked::new()),
            // Another coding last: the body runs to the close (RFC 9112 §6.3).
            (_, Some(false), _) => Framing::Close,
            (_, None, Some(n)) => Framing::Length(n),
            (_, None, None) => Framing::Close,
        };
        // Both codings and a length: the length is ignored and the connection not
        // reused, as RFC 9112 §6.3 asks.
        let ambiguous = chunked.is_some() && length.is_some();
        let reuse = !matches!(framing, Framing::Close)
            && !ambiguous
            && if http10 { keep_alive } else { !close };
        let head = Head {
            status,
            content_type: content_type
                .and_then(|v| std::str::from_utf8(v).ok())
                .unwrap_or("")
                .to_string(),
            retry_after,
        };
        Ok((head, framing, reuse))
    }
}

/// The comma-separated items of a header value, trimmed.
fn tokens(value: &[u8]) -> impl Iterator<Item = &str> {
    std::str::from_utf8(value)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
