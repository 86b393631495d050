//! How prepared requests reach a run's scheduler. Synthetic and dataset prompts are
//! built before the clock starts, within a memory budget; the rest of a long run (and a
//! trace replay, whose prompts are cheap) is built by a producer thread just ahead of
//! sending, so memory holds a bounded number of prompts whatever the run's length.

use std::sync::Arc;

use crate::clock::RunClock;
use crate::error::Error;
use crate::schedule::arrivals::{Warmup, trace_offset};
use crate::schedule::open_loop::{Timed, drive_open};
use crate::schedule::{Arrivals, Feed, RunContext, SlotRamp, drive};
use crate::shard::Pick;
use crate::workload::prepare::{
    PrepareError, Prepared, PreparedRequest, PromptSource, RequestStream, WorkloadSpec, prepare_ids,
};
use crate::workload::{EncodeBody, Tokenizer};

/// How many prepared requests wait in line before an open-loop run's clock starts.
const PRIMED: usize = 64;
/// How far preparation may run ahead of sending. A trace prompt takes ~0.1 ms to build,
/// so this is a wide margin, while memory stays small (128 long prompts ≈ 12 MB).
const LOOKAHEAD: usize = 128;

/// What the producer of one run needs.
pub struct Feeder<'a> {
    pub workload: &'a WorkloadSpec,
    pub body: &'a dyn EncodeBody,
    pub tokenizer: &'a Tokenizer,
    /// Which prompt set (distinct runs get distinct prompts).
    pub run: u64,
    /// Keep each request's trace line for `--sessions`, which decides turns at send time.
    pub keep_turns: bool,
    /// Which of the workload's requests this process sends (`--shard`).
    pub pick: &'a Pick,
}

impl Feeder<'_> {
    /// The first of the `count` requests to send, built on every core before the run,
    /// until their bodies reach `budget` bytes; none for a trace, which the producer
    /// reads as it goes. Cut short, and not to be used, once `stop` says so (a signal).
    pub fn upfront(
        &self,
        count: usize,
        budget: usize,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<Vec<PreparedRequest>, Error> {
        if let PromptSource::Trace { .. } = self.workload.source {
            return Ok(Vec::new());
        }
        // Chunks are sized from the bytes per request seen so far, so the built-ahead
        // bytes stay within the budget plus about one request however large each is.
        const CHUNK: usize = 256;
        let mut ids = self.pick.ids();
        let mut out = Vec::new();
        let mut bytes = 0;
        while out.len() < count && bytes < budget && !stop() {
            let n = match bytes.checked_div(out.len()) {
                None | Some(0) => 1,
                Some(mean) => ((budget - bytes) / mean).clamp(1, CHUNK),
            };
            let n = n.min(count - out.len());
            let chunk: Vec<u64> = ids.by_ref().take(n).collect();
            let part = prepare_ids(
                self.workload,
                self.body,
                self.tokenizer,
                self.run,
                &chunk,
                stop,
            )?;
            bytes += part.iter().map(held_bytes).sum::<usize>();
            out.extend(part);
        }
        Ok(out)
    }

    fn stream(&self, from: usize) -> Result<RequestStream<'_>, Error> {
        Ok(
            RequestStream::new(self.workload, self.body, self.tokenizer, self.run)?
                .picking(self.pick.clone())
                .starting_at(from as u64),
        )
    }

    /// An open-loop run of `count` requests, after its warm-up's: in order with their
    /// send times, from `upfront` then the producer. The clock starts once the first
    /// requests are ready, so preparing them cannot make them late. Returns the run's
    /// clock.
    #[allow(clippy::too_many_arguments)]
    pub fn open_loop(
        &self,
        rt: &tokio::runtime::Runtime,
        upfront: Vec<PreparedRequest>,
        count: usize,
        at: &Arrivals,
        cap: Option<usize>,
        warm: OpenWarmup,
        make_ctx: impl FnOnce() -> Result<Arc<RunContext>, Error>,
    ) -> Result<RunClock, Error> {
        let queue = lookahead(upfront.len(), count);
        // The clock starts once the queue is full, or PRIMED requests are in it.
        let primed = PRIMED.min(queue);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Timed>(queue);
        let (primed_tx, primed_rx) = std::sync::mpsc::channel::<()>();
        let first_us = match &self.workload.source {
            PromptSource::Trace { file, .. } => file.info().first_us,
            _ => 0,
        };
        std::thread::scope(|s| {
            let producer = s.spawn(move || -> Result<(), Error> {
                let OpenWarmup { measured, warmup } = warm;
                let from = upfront.len();
                let warm_reqs = self.warm_stream(count, warm)?;
                let measured_reqs = upfront
                    .into_iter()
                    .map(|req| Ok(Prepared { req, trace: None }))
                    .chain(self.stream(from)?)
                    .take(count)
                    .map(|p| p.map(|p| (p, false)));
                for (i, item) in warm_reqs.chain(measured_reqs).enumerate() {
                    let (prepared, warmup_req) = item?;
                    // Send times are by position in the whole workload (warm-up first):
                    // a shard's requests go when they would in one process.
                    let id = prepared.req.id as usize;
                    let position = match warmup_req {
                        true => id - measured,
                        false => id + warmup,
                    };
                    let Some(at_us) = send_time(at, &prepared, position, first_us)? else {
                        break;
                    };
                    let turn = prepared.trace.filter(|_| self.keep_turns).map(Box::new);
                    let timed = Timed {
                        at_us,
                        req: prepared.req,
                        turn,
                        warmup: warmup_req,
                    };
                    if tx.send(timed).is_err() {
                        break;
                    }
                    if i + 1 == primed {
                        let _ = primed_tx.send(());
                    }
                }
                Ok(())
            });
            // Either PRIMED requests are queued, or the producer ended (all queued, or
            // failed).
            let _ = primed_rx.recv();
            // On an error, dropping the receiver stops the producer.
            let ctx = make_ctx()?;
            let clock = ctx.clock;
            rt.block_on(drive_open(rx, cap, ctx));
            join_producer(producer).map(|()| clock)
        })
    }

    /// An open-loop run's warm-up requests, in order: ids after the measured ones (no
    /// measured prompt is in a cache before its time), sent first.
    fn warm_stream(
        &self,
        count: usize,
        warm: OpenWarmup,
    ) -> Result<impl Iterator<Item = Result<(Prepared, bool), PrepareError>> + '_, Error> {
        let end = warm.measured + warm.warmup;
        let stream = match warm.warmup {
            0 => None,
            _ => Some(self.stream(count)?),
        };
        Ok(stream.into_iter().flatten().map_while(move |p| match p {
            Ok(p) if (p.req.id as usize) < end => Some(Ok((p, true))),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        }))
    }

    /// A batch (`concurrency` None) or closed-loop run of `count` requests, after its
    /// warm-up's: `upfront` first, the rest from the producer. Returns the run's clock.
    pub fn closed_loop(
        &self,
        rt: &tokio::runtime::Runtime,
        upfront: Vec<PreparedRequest>,
        count: usize,
        concurrency: Option<usize>,
        start: ClosedStart,
        make_ctx: impl FnOnce() -> Result<Arc<RunContext>, Error>,
    ) -> Result<RunClock, Error> {
        let (warm_count, until_us) = match start.warmup {
            Warmup::None | Warmup::Requests(0) => (0, None),
            Warmup::Requests(n) => (n, None),
            Warmup::Until(us) => (usize::MAX, Some(us)),
        };
        let from = upfront.len();
        let queue = lookahead(upfront.len(), count);
        std::thread::scope(|s| {
            let mut producers = Vec::new();
            // Warm-up requests: ids after the measured ones, made just ahead of sending.
            let warm = (warm_count > 0).then(|| {
                let (tx, rx) = tokio::sync::mpsc::channel::<PreparedRequest>(queue);
                producers.push(s.spawn(move || self.produce(count, warm_count, tx)));
                rx
            });
            let rest = (from < count).then(|| {
                let (tx, rx) = tokio::sync::mpsc::channel::<PreparedRequest>(queue);
                producers.push(s.spawn(move || self.produce(from, count - from, tx)));
                rx
            });
            let ctx = make_ctx()?;
            let clock = ctx.clock;
            let mut feed = Feed::new(upfront, rest);
            if let Some(rx) = warm {
                feed = feed.warming(rx, until_us);
            }
            rt.block_on(drive(concurrency, feed, start.slot_ramp, ctx));
            for p in producers {
                join_producer(p)?;
            }
            Ok(clock)
        })
    }

    /// Send `n` requests into `tx`, from the `from`th kept one; stops when the
    /// receiver is gone.
    fn produce(
        &self,
        from: usize,
        n: usize,
        tx: tokio::sync::mpsc::Sender<PreparedRequest>,
    ) -> Result<(), Error> {
        for p in self.stream(from)?.take(n) {
            if tx.blocking_send(p?.req).is_err() {
                break;
            }
        }
        Ok(())
    }
}

/// An open-loop run's warm-up: the first `warmup` arrivals of the whole run (their
/// requests have ids `measured..measured + warmup`).
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenWarmup {
    /// The whole run's measured requests.
    pub measured: usize,
    pub warmup: usize,
}

/// How a closed-loop or batch run begins.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClosedStart {
    /// This process's warm-up.
    pub warmup: Warmup,
    /// `--ramp-up-s`: when each slot starts.
    pub slot_ramp: Option<SlotRamp>,
}

/// When a request of an open-loop run is due, by its position in the whole run's
/// schedule; `None` past the schedule's end.
fn send_time(
    at: &Arrivals,
    prepared: &Prepared,
    position: usize,
    first_us: u64,
) -> Result<Option<u64>, Error> {
    match (at, &prepared.trace) {
        (Arrivals::Offsets(offsets), _) => Ok(offsets.get(position).copied()),
        (Arrivals::Trace { time_scale }, Some(t)) => {
            Ok(Some(trace_offset(t.timestamp_us, first_us, *time_scale)))
        }
        (Arrivals::Trace { .. }, None) => Err(Error::Input(
            "trace arrival times need a trace as the prompt source".into(),
        )),
    }
}

/// The bytes a prepared request holds: its body, and a session's later inputs.
fn held_bytes(r: &PreparedRequest) -> usize {
    r.body.len() + r.chat.as_ref().map_or(0, |c| c.bytes())
}

/// How many prepared requests the producer may queue: when the budget cut the upfront
/// part short, no more than it held (about the budget's worth of bytes), else
/// `LOOKAHEAD`.
fn lookahead(upfront: usize, count: usize) -> usize {
    match upfront {
        0 => LOOKAHEAD,
        n if n < count => n.min(LOOKAHEAD),
        _ => LOOKAHEAD,
    }
}

fn join_producer(h: std::thread::ScopedJoinHandle<'_, Result<(), Error>>) -> Result<(), Error> {
    h.join().unwrap_or_else(|_| {
        Err(Error::Output(
            "the request preparation thread failed".into(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::openai::{Api, BodyOptions};
    use crate::workload::prepare::prepare_range;
    use crate::workload::synthetic::{LengthSpec, SyntheticPrompts};

    #[test]
    fn the_producer_goes_on_where_the_upfront_part_stopped() {
        let workload = WorkloadSpec {
            source: PromptSource::Synthetic {
                input_len: LengthSpec::Range { lo: 5, hi: 50 },
                prompts: SyntheticPrompts::RandomIds,
            },
            output_len: LengthSpec::Fixed(3),
            seed: 7,
            token_ids: false,
            models: None,
            images: None,
        };
        let body = BodyOptions {
            api: Api::Chat,
            model: "m".into(),
            ignore_eos: true,
            extra: Default::default(),
            tools: Default::default(),
            batch_inputs: 1,
        };
        let tokenizer = Tokenizer::builtin();
        let feeder = Feeder {
            workload: &workload,
            body: &body,
            tokenizer: &tokenizer,
            run: 2,
            keep_turns: false,
            pick: &Pick::default(),
        };
        let upfront = feeder.upfront(400, 1, &|| false).unwrap();
        assert_eq!(upfront.len(), 1, "one request, then the budget is spent");
        let size = upfront[0].body.len();
        let upfront = feeder.upfront(400, 40 * size, &|| false).unwrap();
        assert!((10..100).contains(&upfront.len()), "{}", upfront.len());
        assert_eq!(feeder.upfront(100, 1 << 20, &|| false).unwrap().len(), 100);
        // A signal stops the building, within a chunk too.
        let checks = std::sync::atomic::AtomicUsize::new(0);
        let soon = || checks.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 10;
        let cut = feeder.upfront(400, usize::MAX, &soon).unwrap();
        assert!(cut.len() < 10, "{} built after the signal", cut.len());
        let rest: Vec<PreparedRequest> = feeder
            .stream(upfront.len())
            .unwrap()
            .take(400 - upfront.len())
            .map(|p| p.unwrap().req)
            .collect();
        let all = prepare_range(&workload, &body, &tokenizer, 2, 0..400).unwrap();
        let joined: Vec<_> = upfront.iter().chain(&rest).collect();
        assert_eq!(joined.len(), 400);
        for (a, b) in joined.iter().zip(&all) {
            assert_eq!((a.id, &a.body), (b.id, &b.body));
        }

        // Shard 1 of 3: the same requests, every third, under their own indexes.
        let pick = Pick::Every("1/3".parse().unwrap());
        let shard = Feeder {
            pick: &pick,
            ..feeder
        };
        let upfront = shard.upfront(130, usize::MAX, &|| false).unwrap();
        assert_eq!(upfront.len(), 130);
        let upfront = shard.upfront(300, 1, &|| false).unwrap();
        assert_eq!(upfront.len(), 1);
        let rest: Vec<PreparedRequest> = shard
            .stream(upfront.len())
            .unwrap()
            .take(10)
            .map(|p| p.unwrap().req)
            .collect();
        let all = prepare_range(&workload, &body, &tokenizer, 2, 0..800).unwrap();
        for (k, r) in upfront.iter().chain(&rest).enumerate() {
            let i = 1 + 3 * k;
            assert_eq!((r.id, &r.body), (all[i].id, &all[i].body), "request {i}");
        }
    }

    #[test]
    fn the_producer_queue_holds_no_more_than_the_budget_did() {
        assert_eq!(lookahead(3, 1000), 3, "the budget cut it short");
        assert_eq!(lookahead(500, 1000), LOOKAHEAD);
        assert_eq!(lookahead(10, 10), LOOKAHEAD, "all built up front");
        assert_eq!(lookahead(0, 10), LOOKAHEAD, "a trace");
    }
}
