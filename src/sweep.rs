//! `servescope sweep`, as guidellm's sweep profile: a synchronous run (one request at a
//! time: the best latency, the lowest load), a max-throughput run (every request at
//! once: the most the server serves), then open-loop rates spaced between the request
//! rates those two reached. The rate runs depend on the first two results, so the
//! sweep is a `Planner`.
//!
//! Spacing: N rates evenly spaced strictly between the two measured rates,
//! `sync + (max − sync) · i / (N + 1)` for i = 1..N. guidellm keeps the max rate as its
//! last point (`linspace(sync, max, size − 1)[1:]`); here both ends are left out, as
//! each was measured already by its own run, and an open loop at the max rate only
//! re-measures saturation with a growing queue.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

use crate::console::printable;
use crate::metrics::Summary;
use crate::report::document::{RunMode, RunParams, SavedRun};
use crate::report::pareto;
use crate::schedule::Load;
use crate::session::RunPlan;
use crate::session::planner::Planner;
use crate::settings::{Rate, RateSettings, StartSettings, SweepSettings};

pub const SYNCHRONOUS: &str = "synchronous";
pub const THROUGHPUT: &str = "throughput";
pub const RATE: &str = "rate";

/// The sweep's runs, chosen as the first two finish.
pub struct Sweep {
    s: SweepSettings,
    seed: u64,
    gpus: Option<u32>,
    /// `--warmup N` and the rate runs' ramp.
    start: StartSettings,
    /// The open-loop rates, once the first two runs are done.
    rates: Option<Vec<f64>>,
    /// Why the rates are not the usual ones (a server that does not batch).
    note: Option<String>,
    /// `--sessions`: requests per session on average; the rate runs' arrivals are
    /// sessions, so the measured request rates are divided by it.
    per_session: f64,
}

impl Sweep {
    pub fn new(s: SweepSettings, seed: u64, gpus: Option<u32>, start: StartSettings) -> Self {
        Sweep {
            s,
            seed,
            gpus,
            start,
            rates: None,
            note: None,
            per_session: 1.0,
        }
    }

    /// `--sessions`: arrivals are sessions of `turns` requests on average.
    pub fn of_sessions(mut self, turns: f64) -> Self {
        self.per_session = turns.max(1.0);
        self
    }

    /// A closed-loop or burst run with the session's warm-up (`--warmup N`; without it,
    /// one unrecorded request first).
    fn started(&self, plan: RunPlan) -> RunPlan {
        // The ramp flags are the rate runs' (`cli::start`): these two start at once.
        let start = StartSettings {
            ramp_up: None,
            ramp_up_s: None,
            ..self.start
        };
        let mut plans = crate::commands::starting(vec![plan], &start);
        plans.pop().expect("one plan")
    }

    fn synchronous(&self) -> RunPlan {
        let n = self.s.num_requests;
        self.started(RunPlan {
            label: SYNCHRONOUS.into(),
            mode: RunMode::Sweep,
            params: RunParams {
                sweep: Some(SYNCHRONOUS.into()),
                concurrency: Some(1),
                num_requests: Some(n),
                ..RunParams::default()
            },
            load: Load::ClosedLoop { concurrency: 1 },
            requests: n,
            warmup: true,
            ..RunPlan::default()
        })
    }

    fn throughput(&self) -> RunPlan {
        let n = self.s.num_requests;
        let cap = self.s.max_concurrency;
        self.started(RunPlan {
            label: THROUGHPUT.into(),
            mode: RunMode::Sweep,
            params: RunParams {
                sweep: Some(THROUGHPUT.into()),
                num_requests: Some(n),
                max_concurrency: Some(cap),
                ..RunParams::default()
            },
            load: match cap {
                Some(c) => Load::ClosedLoop { concurrency: c },
                None => Load::AllAtOnce,
            },
            requests: n,
            warmup: true,
            ..RunPlan::default()
        })
    }

    /// The i-th rate run (from 0) at `rate` req/s, with the session's warm-up and ramp.
    fn rate(&self, i: usize, rate: f64) -> RunPlan {
        let settings = RateSettings {
            rates: vec![Rate(Some(rate))],
            burstiness: self.s.burstiness,
            duration_s: self.s.duration_s,
            span: self.s.span,
            max_concurrency: self.s.max_concurrency,
        };
        let seed = self.seed.wrapping_add(i as u64);
        let mut plan = crate::commands::rate(&settings, &self.start, seed)
            .pop()
            .expect("one plan");
        // By position, not rate: two sweeps' runs pair up in `compare`.
        plan.label = format!("rate {}/{}", i + 1, self.s.rates);
        plan.mode = RunMode::Sweep;
        plan.params.sweep = Some(RATE.into());
        // Without --warmup, one unrecorded request first, as the other runs.
        plan.warmup = self.start.warmup.is_none();
        plan
    }
}

/// The open-loop rates from the synchronous and max-throughput request rates, with a
/// note when they are not spaced between the two.
pub fn spaced_rates(sync: f64, max: f64, n: usize) -> (Vec<f64>, Option<String>) {
    let frac = |i: usize| i as f64 / (n + 1) as f64;
    if !(sync > 0.0 && sync.is_finite() && max.is_finite()) {
        let note = format!(
            "the synchronous run reached no request rate ({sync:.3} req/s: no request succeeded), so there are no rates to sweep; no rate runs were made"
        );
        return (Vec::new(), Some(note));
    }
    if max > sync {
        return (
            (1..=n).map(|i| sync + (max - sync) * frac(i)).collect(),
            None,
        );
    }
    // Not batching: more requests at once bring no more throughput, so the synchronous
    // rate is the capacity; below it an open loop still shows latency against load.
    let note = format!(
        "the max-throughput run ({max:.3} req/s) is not above the synchronous run ({sync:.3} req/s): this server does not gain from concurrent requests (no batching); the {n} rates are spaced below the synchronous rate instead, up to {:.3} req/s",
        sync * frac(n)
    );
    ((1..=n).map(|i| sync * frac(i)).collect(), Some(note))
}

impl Planner for Sweep {
    fn mode(&self) -> Option<RunMode> {
        Some(RunMode::Sweep)
    }

    fn next(&mut self, done: &[SavedRun]) -> Option<RunPlan> {
        match done {
            [] => Some(self.synchronous()),
            [_] => Some(self.throughput()),
            [sync, max, rest @ ..] => {
                if self.rates.is_none() {
                    let per = self.per_session;
                    let (sync_s, max_s) = (sync.summary.req_s / per, max.summary.req_s / per);
                    let (rates, note) = spaced_rates(sync_s, max_s, self.s.rates);
                    if let Some(n) = &note {
                        errln!("note: {n}");
                    }
                    self.rates = Some(rates);
                    self.note = note;
                }
                let i = rest.len();
                let rate = *self.rates.as_ref()?.get(i)?;
                Some(self.rate(i, rate))
            }
        }
    }

    fn conclude(&self, done: &[SavedRun]) {
        if done.is_empty() {
            return;
        }
        outln!("── sweep ──");
        outln!("{}", conclusion_table(done, self.gpus, self.per_session));
        if let Some(n) = &self.note {
            outln!("Note: {n}");
        }
        outln!(
            "rate: the open-loop rate asked for; the synchronous and throughput runs at the rate they reached. \
             Per user: median output tokens / (E2E − TTFT). Frontier: no other run has both more output tok/s and faster users."
        );
    }
}

/// The rate a sweep run is placed at: its open-loop rate, else the rate it reached;
/// with sessions (`per_session` requests each on average) both are sessions/s.
fn rate_of(run: &SavedRun, per_session: f64) -> f64 {
    run.params
        .rate
        .flatten()
        .unwrap_or(run.summary.req_s / per_session)
}

/// The runs by rate: rate, throughput, TTFT/TPOT p50, per-user tok/s, frontier.
fn conclusion_table(done: &[SavedRun], gpus: Option<u32>, per_session: f64) -> Table {
    let points = pareto::of_runs(done, gpus).unwrap_or_default();
    let on_frontier = |label: &str| points.iter().any(|p| p.label == label && p.on_frontier);
    let mut runs: Vec<&SavedRun> = done.iter().collect();
    runs.sort_by(|a, b| rate_of(a, per_session).total_cmp(&rate_of(b, per_session)));
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    // Sessions arrive at the open-loop rates; requests are still what the server saw.
    let rate = if per_session > 1.0 {
        "rate sessions/s"
    } else {
        "rate req/s"
    };
    let mut header: Vec<&str> = vec!["run", rate, "reached req/s", "output tok/s"];
    if gpus.is_some() {
        header.push("per GPU");
    }
    header.extend(["TTFT p50 ms", "TPOT p50 ms", "per-user tok/s", "frontier"]);
    t.set_header(header);
    let p50 = |s: Option<&crate::metrics::Stats>| {
        s.and_then(|s| s.percentile(50.0))
            .map_or("-".to_string(), |v| format!("{v:.2}"))
    };
    for r in runs {
        let s: &Summary = &r.summary;
        let mut row = vec![
            printable(&r.label).into_owned(),
            format!("{:.3}", rate_of(r, per_session)),
            format!("{:.3}", s.req_s),
            // An embeddings run has no output: its column says so, not 0.
            match s.embeddings {
                Some(_) => "-".to_string(),
                None => format!("{:.1}", s.output_tok_s),
            },
        ];
        if let Some(g) = gpus {
            row.push(format!("{:.1}", s.output_tok_s / g as f64));
        }
        row.extend([
            p50(s.ttft_ms.as_ref()),
            p50(s.tpot_ms.as_ref()),
            p50(s.per_user_tok_s.as_ref()),
            if on_frontier(&r.label) { "yes" } else { "" }.to_string(),
        ]);
        t.add_row(row);
    }
    // Numbers right-aligned: every column but the first (run) and the last (frontier).
    for i in 1..t.column_count().saturating_sub(1) {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

#[cfg(test)]
#[path = "tests_sweep.rs"]
mod tests;
