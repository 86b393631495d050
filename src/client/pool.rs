//! Kept-alive connections between requests, per origin (scheme, host, port).
//!
//! Reuse is last in, first out: the connection idle the shortest is the least likely
//! to be closed by the server, and the rest age out together. An idle connection older
//! than `IDLE_TIMEOUT` is dropped, and one taken out is first checked for a close the
//! server sent while it waited (no task watches idle connections).
//!
//! An origin whose server closes kept-alive connections right after each response,
//! without `Connection: close` (llama.cpp's server does so after every stream), is then
//! served with a new connection per request: its close races the next request (the
//! FIN is often still in flight when a connection is taken, so the probe cannot see
//! it), and a request lost that way is sent again. The rule: once the server has closed
//! two kept-alive connections before their next use (seen by the probe, or as a request
//! left unanswered) and more than it answered on one, the origin's connections are no
//! longer kept.
//!
//! The number idle per origin is not bounded: it never exceeds the most requests that
//! were in flight at once (each idle connection carried one of them), and they expire
//! within seconds. A bound below the concurrency would only make the next wave of
//! requests open new connections, which a benchmark must not add to their latency.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::http1::{Conn, Origin};

/// Under the 5 s keep-alive of uvicorn (vLLM, SGLang) and llama.cpp: reusing a
/// connection the server is closing fails a request it never saw (seen against
/// llama-server between two runs).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// A close the probe finds on a connection idle longer than this is the server's idle
/// timeout (harmless: the probe caught it), not a close right after each response,
/// which races the next request (llama.cpp's FIN follows a stream within ~0.05 ms).
const QUICK_CLOSE: Duration = Duration::from_millis(100);

#[derive(Default)]
pub struct Pool {
    /// One entry per origin (benchmarks talk to one, so a list beats a map).
    origins: Mutex<Vec<OriginIdle>>,
}

struct OriginIdle {
    https: bool,
    host: String,
    port: u16,
    /// Oldest first; each with the instant it became idle.
    idle: Vec<(Conn, Instant)>,
    /// Kept-alive connections the server closed before their next request, and those
    /// that answered one.
    closed: u32,
    answered: u32,
    /// The server closes after every response: connections are not kept.
    fresh_only: bool,
}

impl OriginIdle {
    fn is(&self, o: &Origin<'_>) -> bool {
        self.https == o.https && self.port == o.port && self.host == o.host
    }

    fn new(o: &Origin<'_>) -> OriginIdle {
        OriginIdle {
            https: o.https,
            host: o.host.to_string(),
            port: o.port,
            idle: Vec::new(),
            closed: 0,
            answered: 0,
            fresh_only: false,
        }
    }

    /// One more kept-alive connection the server closed; true when that makes this
    /// origin's connections not worth keeping (see the module docs).
    fn server_closed(&mut self) -> bool {
        self.closed += 1;
        let now = !self.fresh_only && self.closed >= 2 && self.closed > self.answered;
        self.fresh_only |= now;
        now
    }
}

/// The origin's entry, added when missing.
fn entry<'a>(origins: &'a mut Vec<OriginIdle>, o: &Origin<'_>) -> &'a mut OriginIdle {
    let i = match origins.iter().position(|e| e.is(o)) {
        Some(i) => i,
        None => {
            origins.push(OriginIdle::new(o));
            origins.len() - 1
        }
    };
    &mut origins[i]
}

/// Said once per origin, when it starts getting a new connection per request.
fn announce(o: &Origin<'_>, closed: u32) {
    errln!(
        "note: {}:{} closed {closed} kept-alive connections right after their responses \
         (without `Connection: close`); each request now opens a new connection, so that \
         none is lost to such a close and sent again",
        o.host,
        o.port
    );
}

impl Pool {
    /// The most recently used idle connection to `origin` that is still open.
    pub fn take(&self, origin: &Origin<'_>) -> Option<Conn> {
        let mut idle;
        loop {
            let mut conn = {
                let mut origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
                let entry = origins.iter_mut().find(|e| e.is(origin))?;
                if entry.fresh_only {
                    return None;
                }
                let (conn, since) = entry.idle.pop()?;
                idle = since.elapsed();
                if idle >= IDLE_TIMEOUT {
                    // The newest is too old, so are all the others.
                    let stale = std::mem::take(&mut entry.idle);
                    drop(origins);
                    drop((conn, stale));
                    return None;
                }
                conn
            };
            if conn.still_open() {
                return Some(conn);
            }
            if idle < QUICK_CLOSE {
                self.server_closed(origin);
            }
        }
    }

    /// A kept-alive connection to `origin` was closed by the server before its next
    /// request got an answer (found by the probe, or the request went unanswered).
    pub fn server_closed(&self, origin: &Origin<'_>) {
        let mut origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
        let e = entry(&mut origins, origin);
        if e.server_closed() {
            let (closed, idle) = (e.closed, std::mem::take(&mut e.idle));
            drop(origins);
            drop(idle);
            announce(origin, closed);
        }
    }

    /// A kept-alive connection to `origin` answered its next request.
    pub fn reuse_answered(&self, origin: &Origin<'_>) {
        let mut origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
        let e = entry(&mut origins, origin);
        e.answered = e.answered.saturating_add(1);
    }

    /// Whether `origin` gets a new connection per request (its server closes them).
    #[cfg(test)]
    pub fn fresh_only(&self, origin: &Origin<'_>) -> bool {
        let origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
        origins.iter().any(|e| e.is(origin) && e.fresh_only)
    }

    /// Keep `conn` (whose response ended cleanly) for the next request to `origin`.
    pub fn put(&self, origin: &Origin<'_>, conn: Conn) {
        self.put_at(origin, conn, Instant::now());
    }

    /// `put`, idle since `now`.
    fn put_at(&self, origin: &Origin<'_>, mut conn: Conn, now: Instant) {
        conn.shrink();
        let mut origins = self.origins.lock().unwrap_or_else(|e| e.into_inner());
        let e = entry(&mut origins, origin);
        if e.fresh_only {
            drop(origins);
            return;
        }
        let idle = &mut e.idle;
        let expired = idle.partition_point(|(_, since)| now.duration_since(*since) >= IDLE_TIMEOUT);
        let stale: Vec<_> = idle.drain(..expired).collect();
        idle.push((conn, now));
        drop(origins);
        // Closed outside the lock.
        drop(stale);
    }

    /// Idle connections held now.
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        let origins = self.origins.lock().unwrap();
        origins.iter().map(|e| e.idle.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::resolve::Resolver;
    use tokio::net::{TcpListener, TcpStream};

    /// A connection to `listener` and the server's end of it.
    async fn pair(listener: &TcpListener, origin: &Origin<'_>) -> (Conn, TcpStream) {
        let conn = Conn::connect(origin, &Resolver::default(), None)
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (conn, server)
    }

    #[tokio::test]
    async fn newest_first_stale_dropped_closed_skipped() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let origin = Origin {
            https: false,
            host: "127.0.0.1",
            port,
        };
        let other = Origin { port: 1, ..origin };
        let pool = Pool::default();
        let (a, _sa) = pair(&listener, &origin).await;
        let (b, _sb) = pair(&listener, &origin).await;
        let (a_port, b_port) = (a.local_port(), b.local_port());
        pool.put(&origin, a);
        pool.put(&origin, b);
        assert!(pool.take(&other).is_none(), "another origin's");
        assert_eq!(pool.take(&origin).unwrap().local_port(), b_port, "LIFO");
        assert_eq!(pool.take(&origin).unwrap().local_port(), a_port);
        assert!(pool.take(&origin).is_none());

        // Past the idle timeout: dropped when taken, and when another is put.
        let long_ago = Instant::now() - IDLE_TIMEOUT - Duration::from_millis(1);
        let (c, _sc) = pair(&listener, &origin).await;
        pool.put_at(&origin, c, long_ago);
        assert!(pool.take(&origin).is_none());
        assert_eq!(pool.idle_count(), 0);
        let (c, _sc) = pair(&listener, &origin).await;
        let (d, _sd) = pair(&listener, &origin).await;
        pool.put_at(&origin, c, long_ago);
        pool.put(&origin, d);
        assert_eq!(pool.idle_count(), 1);
        assert!(pool.take(&origin).is_some());

        // One the server closed while it waited is skipped.
        let (e, _se) = pair(&listener, &origin).await;
        let (f, sf) = pair(&listener, &origin).await;
        let e_port = e.local_port();
        pool.put(&origin, e);
        pool.put(&origin, f);
        drop(sf);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(pool.take(&origin).unwrap().local_port(), e_port);
        assert_eq!(pool.idle_count(), 0);
    }

    #[tokio::test]
    async fn an_origin_closing_after_each_response_gets_fresh_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let origin = Origin {
            https: false,
            host: "127.0.0.1",
            port,
        };
        // Closes that follow more answered reuses are the server's idle policy: kept.
        let pool = Pool::default();
        for _ in 0..3 {
            pool.reuse_answered(&origin);
        }
        pool.server_closed(&origin);
        pool.server_closed(&origin);
        assert!(!pool.fresh_only(&origin));
        let (a, _sa) = pair(&listener, &origin).await;
        pool.put(&origin, a);
        assert!(pool.take(&origin).is_some());

        // Closed twice, never answered: the origin's connections are no longer kept.
        let pool = Pool::default();
        pool.server_closed(&origin);
        assert!(!pool.fresh_only(&origin), "one close is not a habit");
        let (a, _sa) = pair(&listener, &origin).await;
        let (b, sb) = pair(&listener, &origin).await;
        pool.put(&origin, a);
        pool.put(&origin, b);
        // Found closed by the probe: the second close.
        drop(sb);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(pool.take(&origin).is_none(), "the open one is dropped too");
        assert!(pool.fresh_only(&origin));
        let (c, _sc) = pair(&listener, &origin).await;
        pool.put(&origin, c);
        assert_eq!(pool.idle_count(), 0);
        assert!(pool.take(&origin).is_none());

        // Closes found after a long idle are a server's idle timeout: never a habit.
        let pool = Pool::default();
        for _ in 0..3 {
            let (a, sa) = pair(&listener, &origin).await;
            pool.put_at(&origin, a, Instant::now() - Duration::from_secs(1));
            drop(sa);
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(pool.take(&origin).is_none());
        }
        assert!(
            !pool.fresh_only(&origin),
            "idle-timeout closes switched the origin"
        );
        let (d, _sd) = pair(&listener, &origin).await;
        pool.put(&origin, d);
        assert!(pool.take(&origin).is_some());
    }
}
