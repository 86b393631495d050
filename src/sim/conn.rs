//! Connections the simulator can break on purpose.
//!
//! A handler cannot reach its TCP connection through axum, so every accepted socket is
//! wrapped in [`FaultIo`], whose [`Conn`] handle reaches the handler as connection
//! info. Breaking it makes the socket's I/O fail, hyper gives up on the connection and
//! drops the socket: the kernel closes it (FIN) with nothing more sent.
//!
//! A true "connection refused" (a reset answering the SYN) cannot be tied to a request:
//! by the time a request has an ordinal it has arrived on an accepted connection, and
//! a keep-alive client's next request may not open a new one. The `drop` fault resets
//! the connection (RST) after reading the request instead, as a crashed worker or a
//! proxy giving up would. A plain close (FIN) would look like a server closing an idle
//! kept-alive connection just as the request went out, which clients resend.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const OPEN: u8 = 0;
/// Fail once everything written so far is out: the body is cut after its last chunk.
const CUT: u8 = 1;
/// Fail every I/O at once: nothing more reaches the client.
const DROPPED: u8 = 2;
/// The response's last bytes are being written: the next flush shuts the socket's
/// writing side (FIN), as llama.cpp's server does after a stream, without telling hyper
/// (nor the client: no `Connection: close`).
const CLOSING: u8 = 3;
/// Shut: reads end (EOF), so hyper drops the connection once it looks again.
const SHUT: u8 = 4;

/// A handle on one connection, for its handlers.
#[derive(Clone, Debug, Default)]
pub(super) struct Conn(Arc<AtomicU8>);

impl Conn {
    /// Close the connection once what hyper has buffered is written: hyper flushes the
    /// socket only when its own buffer is empty, and that flush fails.
    pub(super) fn cut(&self) {
        let _ = self
            .0
            .compare_exchange(OPEN, CUT, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Close the connection without writing anything more.
    pub(super) fn drop_now(&self) {
        self.0.store(DROPPED, Ordering::SeqCst);
    }

    /// Close the connection once the current response is written (`--close-after-stream`).
    pub(super) fn close_after_response(&self) {
        let _ = self
            .0
            .compare_exchange(OPEN, CLOSING, Ordering::SeqCst, Ordering::SeqCst);
    }

    fn state(&self) -> u8 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Connected<IncomingStream<'_, FaultListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, FaultListener>) -> Self {
        stream.io().conn.clone()
    }
}

/// The simulator's listener: TCP with TCP_NODELAY, each socket breakable.
pub(super) struct FaultListener(pub(super) TcpListener);

impl Listener for FaultListener {
    type Io = FaultIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (FaultIo, SocketAddr) {
        // axum's accept retries on errors the way hyper's server did.
        let (io, addr) = Listener::accept(&mut self.0).await;
        // Without TCP_NODELAY, keep-alive streams stall ~40 ms on Nagle + delayed ACK.
        let _ = io.set_nodelay(true);
        let conn = Conn::default();
        (FaultIo { io, conn }, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

pub(super) struct FaultIo {
    io: TcpStream,
    conn: Conn,
}

fn broken() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection broken by an injected fault",
    )
}

impl FaultIo {
    /// The injected failure; a dropped connection is reset when the socket closes.
    fn broken(&self) -> io::Error {
        if self.conn.state() == DROPPED {
            let _ = self.io.set_zero_linger();
        }
        broken()
    }
}

impl AsyncRead for FaultIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.conn.state() {
            DROPPED => return Poll::Ready(Err(self.broken())),
            CLOSING | SHUT => return Poll::Ready(Ok(())),
            _ => {}
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.conn.state() == DROPPED {
            return Poll::Ready(Err(self.broken()));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.conn.state() == DROPPED {
            return Poll::Ready(Err(self.broken()));
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.conn.state() {
            CUT | DROPPED => return Poll::Ready(Err(self.broken())),
            // Everything hyper wrote, the end of the body included, is in the socket.
            CLOSING => {
                std::task::ready!(Pin::new(&mut self.io).poll_flush(cx))?;
                let shut = std::task::ready!(Pin::new(&mut self.io).poll_shutdown(cx));
                self.conn.0.store(SHUT, Ordering::SeqCst);
                return Poll::Ready(shut);
            }
            _ => {}
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// What a response's producer hands to its body.
pub(super) enum Piece {
    Data(Bytes),
    /// End the body by closing the connection: no terminating chunk, no clean end.
    Cut,
}

/// A response body fed by a channel of pieces; a `Cut` breaks `conn`. With
/// `close_after`, `conn` is closed once the body has ended cleanly.
pub(super) fn body(mut rx: mpsc::Receiver<Piece>, conn: Option<Conn>, close_after: bool) -> Body {
    let mut cut = false;
    let stream = futures_util::stream::poll_fn(move |cx| {
        if cut {
            // Never ends: hyper flushes what it holds, the flush fails, and hyper drops
            // the connection (see `Conn::cut`).
            return Poll::Pending;
        }
        match rx.poll_recv(cx) {
            Poll::Ready(Some(Piece::Data(b))) => Poll::Ready(Some(Ok::<_, io::Error>(b))),
            Poll::Ready(Some(Piece::Cut)) => match &conn {
                Some(conn) => {
                    conn.cut();
                    cut = true;
                    Poll::Pending
                }
                // Not on our listener: a body error also aborts the connection, but may
                // lose chunks hyper has not flushed yet.
                None => Poll::Ready(Some(Err(broken()))),
            },
            Poll::Ready(None) => {
                if let Some(conn) = conn.as_ref().filter(|_| close_after) {
                    conn.close_after_response();
                }
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    });
    Body::from_stream(stream)
}
