//! One non-streamed exchange (the embeddings API): send the request, read the whole
//! JSON answer, and judge it once it is in. Latency is from the start to the answer's
//! last byte; there are no output events.

use super::embeddings;
use super::exchange::idle;
use super::http1::Origin;
use super::openai::http_error_message;
use super::{Failure, HttpClient, MAX_ERROR_BODY, Outcome};
use crate::clock::RunClock;
use crate::record::FailureKind;

/// The largest answer read: 64 inputs of 4,096 floats as JSON text are ~6 MB.
const MAX_ANSWER: usize = 256 << 20;

impl HttpClient {
    /// Send one embeddings request of `sent` inputs and read its answer.
    pub(super) async fn exchange_whole(
        &self,
        url: &reqwest::Url,
        body: &[u8],
        clock: &RunClock,
        sent: u32,
        out: &mut Outcome,
    ) -> Result<(), Failure> {
        let origin = Origin::of(url);
        let sending = self.send(&origin, url, body, out);
        let (mut conn, head) = idle(self.idle_timeout, sending, || "no response headers").await??;
        out.http_status = Some(head.status);
        out.retry_after = head.retry_after;
        if !(200..300).contains(&head.status) {
            let body = self.read_limited(&origin, conn, MAX_ERROR_BODY).await;
            return Err((
                FailureKind::HttpStatus,
                http_error_message(head.status, &body),
            ));
        }
        let mut answer = Vec::new();
        let cut = |why: String, got: usize| {
            let msg = format!("the answer was cut after {got} bytes: {why}");
            (FailureKind::StreamCut, msg)
        };
        while !conn.body_ended() {
            let got = idle(self.idle_timeout, conn.fill(), || "the answer went silent").await?;
            match got {
                Err(e) => return Err(cut(e.to_string(), answer.len())),
                Ok(0) if !conn.closed() => {
                    return Err(cut(
                        "the connection closed in the middle of the body".into(),
                        answer.len(),
                    ));
                }
                Ok(0) => break,
                Ok(_) => {}
            }
            conn.take(|piece| answer.extend_from_slice(piece))
                .map_err(|e| (FailureKind::InvalidResponse, e.to_string()))?;
            if answer.len() > MAX_ANSWER {
                return Err((
                    FailureKind::InvalidResponse,
                    format!("the answer is larger than {} MiB", MAX_ANSWER >> 20),
                ));
            }
        }
        out.ended_at = clock.now_us();
        if conn.reusable() {
            self.pool.put(&origin, conn);
        }
        let read = embeddings::read_answer(&answer, sent)?;
        out.usage = read.usage;
        out.complete = true;
        Ok(())
    }
}
