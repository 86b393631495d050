//! One streaming exchange: send the request (on a kept-alive connection or a new one),
//! read the event stream, time each read, and retry what may be retried.

use std::time::Duration;

use bytes::Bytes;
use tokio_rustls::TlsConnector;

use super::RequestObserver;
use super::http1::{self, Conn, HeadError, Origin};
use super::openai::{self, http_error_message};
use super::stream_state::Reading;
use super::tls;
use super::{EXCERPT, Failure, HttpClient, MAX_ERROR_BODY, MAX_RETRY_WAIT, Outcome};
use crate::clock::RunClock;
use crate::record::FailureKind;

impl HttpClient {
    /// Send one streaming request and time its output events. Never fails: a failure is
    /// part of the outcome, with everything measured up to that point.
    pub async fn execute(
        &self,
        url: &reqwest::Url,
        body: Bytes,
        clock: &RunClock,
        obs: &impl RequestObserver,
    ) -> Outcome {
        self.execute_until(url, body, clock, obs, std::future::pending())
            .await
    }

    /// `execute`, abandoned when `stop` completes: the outcome is then a `cancelled`
    /// failure (with `stop`'s reason) that keeps everything that arrived before, as a
    /// timeout does.
    pub async fn execute_until(
        &self,
        url: &reqwest::Url,
        body: Bytes,
        clock: &RunClock,
        obs: &impl RequestObserver,
        stop: impl std::future::Future<Output = String>,
    ) -> Outcome {
        tokio::pin!(stop);
        let started_at = clock.now_us();
        let deadline = self.timeout.map(|d| clock.instant_at(started_at) + d);
        obs.sent();
        let mut retries = 0;
        let mut resent = false;
        let mut out = loop {
            let mut out = Outcome {
                started_at,
                retries,
                ..Outcome::default()
            };
            let result = self
                .attempt(url, &body, clock, obs, &mut out, deadline, stop.as_mut())
                .await;
            match result {
                // A timeout or a stop that comes while draining after [DONE] changes
                // nothing.
                Err((FailureKind::Timeout | FailureKind::Cancelled, _)) if out.complete => {}
                Err((FailureKind::Cancelled, why)) => {
                    let n = out.events.len();
                    out.failure = Some((
                        FailureKind::Cancelled,
                        format!("{why} ({n} output events so far)"),
                    ));
                    out.ended_at = clock.now_us();
                }
                // Servers close kept-alive connections at will (llama-server does so
                // right after some streamed responses, without `Connection: close`); a
                // request sent on one the moment it closes gets no answer at all. Sent
                // again once, on a new connection, as Go's HTTP client does; the record
                // counts the retry.
                Err(_) if out.unanswered && !resent => {
                    resent = true;
                    retries += 1;
                    continue;
                }
                Err((kind, msg)) => {
                    // A stop during the wait leaves the failure as it was.
                    if let Some(wait) = self.retry_wait(kind, &out, retries, deadline) {
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {
                                retries += 1;
                                continue;
                            }
                            _ = &mut stop => {}
                        }
                    }
                    out.failure = Some((kind, self.mask(msg)));
                    out.ended_at = clock.now_us();
                }
                Ok(()) => {}
            }
            break out;
        };
        out.retries = retries;
        out.inputs = self.embeddings;
        if let Some(n) = out.usage.and_then(|u| u.completion_tokens) {
            obs.tokens_counted(i64::from(n) - out.events.len() as i64);
        }
        obs.ended(&out);
        out
    }

    /// One try, within the deadline (over every try: latency counts from the first)
    /// and until `stop`.
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        url: &reqwest::Url,
        body: &[u8],
        clock: &RunClock,
        obs: &impl RequestObserver,
        out: &mut Outcome,
        deadline: Option<std::time::Instant>,
        stop: std::pin::Pin<&mut impl std::future::Future<Output = String>>,
    ) -> Result<(), Failure> {
        // One select, not a timeout around the exchange inside another future: the
        // exchange's state is laid out once (every open stream holds this future).
        let at = deadline.unwrap_or_else(std::time::Instant::now);
        tokio::select! {
            biased;
            r = async {
                match self.embeddings {
                    // Boxed: the streamed exchange's future stays as small as it was.
                    Some(n) => Box::pin(self.exchange_whole(url, body, clock, n, out)).await,
                    None => self.exchange(url, body, clock, obs, out).await,
                }
            } => r,
            _ = tokio::time::sleep_until(at.into()), if deadline.is_some() => Err((
                FailureKind::Timeout,
                format!(
                    "no complete response within the {} s timeout",
                    self.timeout.unwrap_or_default().as_secs_f64()
                ),
            )),
            why = stop => Err((FailureKind::Cancelled, why)),
        }
    }

    /// How long to wait before trying a failed request again, if it may be.
    fn retry_wait(
        &self,
        kind: FailureKind,
        out: &Outcome,
        retries: u32,
        deadline: Option<std::time::Instant>,
    ) -> Option<Duration> {
        let retryable = kind == FailureKind::ConnectError
            || (kind == FailureKind::HttpStatus && out.http_status == Some(429));
        if !retryable || retries >= self.retries {
            return None;
        }
        let wait = out
            .retry_after
            .unwrap_or(Duration::from_millis(50 << retries.min(5)))
            .min(MAX_RETRY_WAIT);
        let past_deadline = deadline.is_some_and(|at| std::time::Instant::now() + wait >= at);
        (!past_deadline).then_some(wait)
    }

    async fn exchange(
        &self,
        url: &reqwest::Url,
        body: &[u8],
        clock: &RunClock,
        obs: &impl RequestObserver,
        out: &mut Outcome,
    ) -> Result<(), Failure> {
        let origin = Origin::of(url);
        let (mut conn, head) = self.stream_head(&origin, url, body, out).await?;
        let mut r = Reading::new(self.events);
        while !conn.body_ended() {
            let n = out.events.len();
            let got = idle(self.idle_timeout, conn.fill(), || {
                if n == 0 {
                    "no output yet"
                } else {
                    "the stream went silent"
                }
            })
            .await?;
            // One timestamp per read: every event in it arrived then (a later clock read
            // would add the parsing of the events before it).
            let at = clock.now_us();
            let broken = |why: String| {
                let msg = format!("stream broken after {n} output events: {why}");
                (FailureKind::StreamCut, msg)
            };
            match got {
                Err(e) => return Err(broken(e.to_string())),
                Ok(0) if !conn.closed() => {
                    return Err(broken(
                        "the connection closed in the middle of the body".into(),
                    ));
                }
                Ok(0) => break,
                Ok(_) => {}
            }
            let Reading {
                parser,
                state,
                excerpt,
            } = &mut r;
            let decoded = conn.take(|piece| {
                // What follows the end of the stream or a failure in this read is not read.
                if state.done || state.failure.is_some() || parser.overflowed_limit() {
                    return;
                }
                if excerpt.len() < EXCERPT {
                    excerpt.extend_from_slice(&piece[..piece.len().min(EXCERPT - excerpt.len())]);
                }
                parser.feed(piece, |data| state.on_event(data, at, out));
            });
            r.state.publish(obs, out);
            r.after_read()?;
            if r.state.done {
                out.complete = true;
                if decoded.is_ok() {
                    drain(&mut conn, self.drain_after_done).await;
                }
                break;
            }
            // Malformed framing is the server's error, like a malformed event.
            decoded.map_err(|e| (FailureKind::InvalidResponse, e.to_string()))?;
        }
        if conn.reusable() {
            self.pool.put(&origin, conn);
        }
        r.end(&head.content_type, clock, obs, out)
    }

    /// Send the request and read the head of a streamed answer: an error status or a
    /// JSON document instead of a stream fails the request.
    async fn stream_head(
        &self,
        origin: &Origin<'_>,
        url: &reqwest::Url,
        body: &[u8],
        out: &mut Outcome,
    ) -> Result<(Conn, http1::Head), Failure> {
        let sent = self.send(origin, url, body, out);
        let (conn, head) = idle(self.idle_timeout, sent, || "no response headers").await??;
        out.http_status = Some(head.status);
        out.retry_after = head.retry_after;
        if !(200..300).contains(&head.status) {
            let body = self.read_limited(origin, conn, MAX_ERROR_BODY).await;
            return Err((
                FailureKind::HttpStatus,
                http_error_message(head.status, &body),
            ));
        }
        if head.content_type.starts_with("application/json") {
            let body = self.read_limited(origin, conn, MAX_ERROR_BODY).await;
            return Err(json_instead_of_stream(&body));
        }
        Ok((conn, head))
    }

    /// Send the request on a kept-alive connection or a new one, and read the response
    /// head.
    pub(super) async fn send(
        &self,
        origin: &Origin<'_>,
        url: &reqwest::Url,
        body: &[u8],
        out: &mut Outcome,
    ) -> Result<(Conn, http1::Head), Failure> {
        let (mut conn, reused) = match self.pool.take(origin) {
            Some(c) => (c, true),
            None => {
                let tls = if origin.https {
                    Some(self.tls().map_err(|e| (FailureKind::ConnectError, e))?)
                } else {
                    None
                };
                // Boxed: connecting (a TLS handshake above all) takes ~2 KB of state that
                // would otherwise stay in every request's future for its whole life.
                let c = Box::pin(Conn::connect(origin, &self.resolver, tls))
                    .await
                    .map_err(|e| (FailureKind::ConnectError, e))?;
                (c, false)
            }
        };
        let head = http1::request_head(url, &self.head_lines, body.len());
        // Only a kept-alive connection can have been closed by the server as the request
        // went out (it may not have seen the request); a new one that closes unanswered
        // was the server's answer. Not connecting is a connect error; a connection that
        // dies after that is a cut stream.
        if let Err(e) = conn.send(&head, body).await {
            out.unanswered = reused;
            if reused {
                self.pool.server_closed(origin);
            }
            return Err((
                FailureKind::StreamCut,
                format!("the connection failed as the request was sent: {e}"),
            ));
        }
        drop(head);
        match conn.read_head().await {
            Ok(h) => {
                if reused {
                    self.pool.reuse_answered(origin);
                }
                Ok((conn, h))
            }
            Err(HeadError::Closed { answered: false }) => {
                out.unanswered = reused;
                if reused {
                    self.pool.server_closed(origin);
                }
                Err((
                    FailureKind::StreamCut,
                    "the connection closed before any response".into(),
                ))
            }
            Err(HeadError::Closed { answered: true }) => Err((
                FailureKind::StreamCut,
                "the connection closed in the middle of the response head".into(),
            )),
            Err(HeadError::Io(e)) => Err((
                FailureKind::StreamCut,
                format!("the connection failed before a response: {e}"),
            )),
            Err(HeadError::Invalid(msg)) => Err((FailureKind::InvalidResponse, msg)),
        }
    }

    fn tls(&self) -> Result<&TlsConnector, String> {
        self.tls
            .get_or_init(|| tls::connector(self.insecure))
            .as_ref()
            .map_err(|e| format!("cannot set up TLS: {e}"))
    }

    /// An error body, at most `max` bytes; the connection is kept if it was read whole.
    pub(super) async fn read_limited(
        &self,
        origin: &Origin<'_>,
        mut conn: Conn,
        max: usize,
    ) -> Vec<u8> {
        let mut body = Vec::new();
        while !conn.body_ended() && body.len() < max {
            match conn.fill().await {
                Ok(0) => {
                    conn.closed();
                    break;
                }
                Ok(_) => {
                    let taken = conn.take(|piece| {
                        let room = max - body.len();
                        body.extend_from_slice(&piece[..piece.len().min(room)]);
                    });
                    if taken.is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        if conn.reusable() {
            self.pool.put(origin, conn);
        }
        body
    }
}

/// After `[DONE]`: read the (normally empty) rest of the body so the connection can be
/// reused. A server that keeps the stream open is left; the connection is dropped.
async fn drain(conn: &mut Conn, limit: Duration) {
    if conn.body_ended() {
        return;
    }
    let rest = async {
        while !conn.body_ended() {
            match conn.fill().await {
                Ok(n) if n > 0 && conn.take(|_| {}).is_ok() => {}
                _ => return,
            }
        }
    };
    let _ = tokio::time::timeout(limit, rest).await;
}

/// Await `fut`, failing as an idle timeout if it takes longer than `limit`.
pub(super) async fn idle<T>(
    limit: Option<Duration>,
    fut: impl std::future::Future<Output = T>,
    what: impl FnOnce() -> &'static str,
) -> Result<T, Failure> {
    match limit {
        None => Ok(fut.await),
        Some(d) => tokio::time::timeout(d, fut).await.map_err(|_| {
            (
                FailureKind::IdleTimeout,
                format!(
                    "{}: no bytes for {} s (--idle-timeout)",
                    what(),
                    d.as_secs_f64()
                ),
            )
        }),
    }
}

/// A 200 with one JSON document: an error object is the server's failure, anything else
/// means the server does not stream.
fn json_instead_of_stream(body: &[u8]) -> Failure {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(e) = v.get("error").filter(|e| !e.is_null())
    {
        return (FailureKind::ErrorEvent, openai::error_message(e));
    }
    (
        FailureKind::InvalidResponse,
        "the server answered with one JSON document instead of an event stream \
         (does it support \"stream\": true?)"
            .into(),
    )
}
