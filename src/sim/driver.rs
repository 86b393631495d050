//! The engine loop: one task per server runs the scheduler's steps on the clock.
//!
//! A step starts when the previous one ends (or, when idle, as soon as a request
//! arrives), lasts what the cost model says, and ends on an absolute deadline of the
//! precise timer; its tokens are handed to the requests' responses at its end.
//! Requests that arrive during a step join the queue for the next one (and count in
//! the waiting gauge from then: gauges are updated as each step is formed).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender, error::TryRecvError};

use super::Shared;
use super::engine::EngineConfig;
use super::sched::{NewRequest, Sampled, Scheduler, Step};
use super::spec::SpecDecoding;

/// A request handed to the engine, its prompt already tokenized.
pub(super) struct Arrival {
    pub req: NewRequest,
    /// When the HTTP request arrived: TTFT is measured from here.
    pub t0: Instant,
    pub tx: UnboundedSender<Progress>,
}

/// Sent to a request at the end of each step that sampled a token for it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Progress {
    /// Tokens generated so far.
    pub generated: u32,
    pub cached_tokens: u32,
}

struct Client {
    tx: UnboundedSender<Progress>,
    t0: Instant,
}

pub(super) struct Engine {
    cfg: EngineConfig,
    spec: Option<SpecDecoding>,
    rx: UnboundedReceiver<Arrival>,
}

/// The sender the HTTP handlers submit to, and the engine to run.
pub(super) fn channel(
    cfg: EngineConfig,
    spec: Option<SpecDecoding>,
) -> (UnboundedSender<Arrival>, Engine) {
    let (tx, rx) = mpsc::unbounded_channel();
    (tx, Engine { cfg, spec, rx })
}

impl Engine {
    pub(super) async fn run(mut self, shared: Arc<Shared>) {
        let mut sched = Scheduler::new(&self.cfg).with_spec(self.spec);
        let mut clients = BTreeMap::new();
        let mut step_start = Instant::now();
        loop {
            loop {
                match self.rx.try_recv() {
                    Ok(a) => add(&mut sched, &mut clients, a),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) if sched.has_work() => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            drop_gone(&mut sched, &mut clients);
            if !sched.has_work() {
                publish(&shared, &sched, &Step::default());
                let Some(a) = self.rx.recv().await else {
                    return;
                };
                add(&mut sched, &mut clients, a);
                step_start = Instant::now();
                continue;
            }
            // Before scheduling anything that arrived after a reset was answered.
            if shared
                .reset_cache
                .swap(false, std::sync::atomic::Ordering::SeqCst)
            {
                sched.reset_prefix_cache();
            }
            let step = sched.schedule();
            publish(&shared, &sched, &step);
            if step.work.is_empty() {
                // Only after a step that preempted everyone; the next one admits.
                tokio::task::yield_now().await;
                continue;
            }
            let ms = step.cost_ms(&self.cfg);
            let end = Duration::try_from_secs_f64(ms / 1000.0)
                .ok()
                .and_then(|d| step_start.checked_add(d))
                .unwrap_or(step_start);
            crate::timer::sleep_until(end).await;
            let sampled = sched.finish(&step);
            deliver(&shared, &mut clients, end, sampled);
            // Absolute: lateness of the timer does not accumulate.
            step_start = end;
        }
    }
}

/// A response that is gone (client disconnected) dropped its receiver: its request is
/// cancelled.
fn drop_gone(sched: &mut Scheduler, clients: &mut BTreeMap<u64, Client>) {
    let gone: Vec<u64> = clients
        .iter()
        .filter(|(_, c)| c.tx.is_closed())
        .map(|(&id, _)| id)
        .collect();
    for id in gone {
        sched.cancel(id);
        clients.remove(&id);
    }
}

/// A step ended at `end`: count its tokens in the metrics and tell each request what it
/// generated.
fn deliver(
    shared: &Shared,
    clients: &mut BTreeMap<u64, Client>,
    end: Instant,
    sampled: Vec<Sampled>,
) {
    {
        let mut c = shared.counters();
        for s in &sampled {
            c.metrics.generation_tokens += u64::from(s.new_tokens);
            if let (Some((k, a)), Some(spec)) = (s.draft, c.metrics.spec.as_mut()) {
                spec.observe(k, a);
            }
            if s.generated == s.new_tokens {
                c.metrics.prompt_tokens += u64::from(s.prompt_len);
                if let Some(client) = clients.get(&s.id) {
                    let ttft = end.saturating_duration_since(client.t0);
                    c.metrics.observe_ttft(ttft.as_secs_f64());
                }
            }
        }
    }
    for s in sampled {
        if let Some(client) = clients.get(&s.id) {
            let p = Progress {
                generated: s.generated,
                cached_tokens: s.cached_tokens,
            };
            // An error means the response is gone; it is cancelled next step.
            let _ = client.tx.send(p);
        }
        if s.finished {
            clients.remove(&s.id);
        }
    }
}

fn add(sched: &mut Scheduler, clients: &mut BTreeMap<u64, Client>, a: Arrival) {
    let id = a.req.id;
    clients.insert(id, Client { tx: a.tx, t0: a.t0 });
    sched.add(a.req);
}

/// Gauges after forming a step, and its counters.
fn publish(shared: &Shared, sched: &Scheduler, step: &Step) {
    let mut c = shared.counters();
    let (running, waiting) = (sched.num_running() as u64, sched.num_waiting() as u64);
    let m = &mut c.metrics;
    m.running = running;
    m.waiting = waiting;
    m.kv_usage = sched.kv_usage();
    m.preemptions += step.preemptions;
    m.prefix_queries += step.prefix_queries;
    m.prefix_hits += step.prefix_hits;
    let s = &mut c.stats;
    s.preemptions += step.preemptions;
    if !step.work.is_empty() {
        s.steps += 1;
    }
    s.max_step_tokens = s.max_step_tokens.max(step.tokens());
    s.max_running = s.max_running.max(running);
    s.max_waiting = s.max_waiting.max(waiting);
}
