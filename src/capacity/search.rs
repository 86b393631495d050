//! The capacity search as a pure state machine: it is told each probe's attainment and
//! says which level to probe next. No server, no clock: unit tests feed it sequences.
//!
//! Grow ×2 from `min` until a level fails (or `max` passes), then bisect between the
//! last pass and the first fail until the gap is at most `resolution × passing level`
//! (at least 1 for integer levels). With `confirm` > 0, a probe whose attainment lies
//! within two binomial standard errors of the target is repeated `confirm` times and
//! the level is judged on the pooled counts of all its probes.

/// How the search is set up.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchConfig {
    pub min: f64,
    pub max: f64,
    /// Relative: stop when fail − pass ≤ resolution × pass.
    pub resolution: f64,
    /// Concurrency: whole levels, and a gap never finer than 1.
    pub integer: bool,
    /// Repeats of a probe near the threshold (0: none).
    pub confirm: usize,
    /// The share of sent requests that must meet the SLO.
    pub target: f64,
}

/// One probe's outcome: requests sent, those that met every bound, and whether the
/// run completed (an interrupted run never passes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observation {
    pub sent: u64,
    pub met: u64,
    pub complete: bool,
}

impl Observation {
    pub fn attainment(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.met as f64 / self.sent as f64
        }
    }
}

/// A probe as the search judged it: `passed` is the level's verdict so far (pooled
/// over its repeats), `None` while a repeat is pending.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    pub level: f64,
    pub obs: Observation,
    pub passed: Option<bool>,
}

/// How the search ended (or stands).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Still probing (or stopped before it could conclude).
    Searching,
    /// The largest passing level is known to the resolution.
    Found,
    /// `max` passed: the capacity is at least `max`.
    AtLeastMax,
    /// `min` failed: the capacity is below `min`.
    BelowMin,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Searching => "searching",
            Verdict::Found => "found",
            Verdict::AtLeastMax => "at_least_max",
            Verdict::BelowMin => "below_min",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Search {
    cfg: SearchConfig,
    probes: Vec<Probe>,
    /// Highest level that passed, lowest that failed.
    pass: Option<f64>,
    fail: Option<f64>,
    /// The level being judged and the repeats it still needs.
    current: Option<(f64, usize)>,
    verdict: Verdict,
}

impl Search {
    pub fn new(cfg: SearchConfig) -> Search {
        let first = cfg.min;
        Search {
            cfg,
            probes: Vec::new(),
            pass: None,
            fail: None,
            current: Some((first, 0)),
            verdict: Verdict::Searching,
        }
    }

    pub fn config(&self) -> &SearchConfig {
        &self.cfg
    }

    /// The level to probe next; `None` when the search is over.
    pub fn next_level(&self) -> Option<f64> {
        self.current.map(|(l, _)| l)
    }

    pub fn probes(&self) -> &[Probe] {
        &self.probes
    }

    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// The highest level that passed and the lowest that failed so far.
    pub fn bracket(&self) -> (Option<f64>, Option<f64>) {
        (self.pass, self.fail)
    }

    /// The answer: the highest passing level once the search is over.
    pub fn value(&self) -> Option<f64> {
        match self.verdict {
            Verdict::Found | Verdict::AtLeastMax => self.pass,
            _ => None,
        }
    }

    /// Record the probe of `next_level()`.
    pub fn record(&mut self, obs: Observation) {
        let Some((level, repeats_left)) = self.current else {
            return;
        };
        let first = !self.probes.iter().any(|p| p.level == level);
        self.probes.push(Probe {
            level,
            obs,
            passed: None,
        });
        // Interrupted: never passes, but says nothing of the level either (the bracket
        // stays as it was); the session is ending, so the search stops here.
        if !obs.complete {
            if let Some(p) = self.probes.last_mut() {
                p.passed = Some(false);
            }
            self.current = None;
            return;
        }
        if first && self.cfg.confirm > 0 && self.near_threshold(obs) {
            self.current = Some((level, self.cfg.confirm));
            return;
        }
        if repeats_left > 1 {
            self.current = Some((level, repeats_left - 1));
            return;
        }
        let pooled = self.pooled(level);
        self.judge(level, pooled >= self.cfg.target);
    }

    /// Attainment over every probe of `level`.
    pub fn pooled(&self, level: f64) -> f64 {
        let (sent, met) = self
            .probes
            .iter()
            .filter(|p| p.level == level)
            .fold((0, 0), |(s, m), p| (s + p.obs.sent, m + p.obs.met));
        Observation {
            sent,
            met,
            complete: true,
        }
        .attainment()
    }

    /// Within two binomial standard errors of the target: one probe cannot tell.
    fn near_threshold(&self, obs: Observation) -> bool {
        let a = self.cfg.target;
        let n = obs.sent.max(1) as f64;
        (obs.attainment() - a).abs() < 2.0 * (a * (1.0 - a) / n).sqrt()
    }

    fn judge(&mut self, level: f64, passed: bool) {
        for p in self.probes.iter_mut().filter(|p| p.level == level) {
            p.passed = Some(passed);
        }
        if passed {
            self.pass = Some(self.pass.map_or(level, |p| p.max(level)));
        } else {
            self.fail = Some(self.fail.map_or(level, |f| f.min(level)));
        }
        self.current = self.plan_next().map(|l| (l, 0));
    }

    /// Grow while nothing failed, then bisect; sets the verdict when done.
    fn plan_next(&mut self) -> Option<f64> {
        let cfg = &self.cfg;
        match (self.pass, self.fail) {
            (None, Some(_)) => {
                self.verdict = Verdict::BelowMin;
                None
            }
            (Some(p), None) if p >= cfg.max => {
                self.verdict = Verdict::AtLeastMax;
                None
            }
            (Some(p), None) => Some(self.round((p * 2.0).min(cfg.max))),
            (Some(p), Some(f)) => {
                let step = cfg.resolution * p;
                let step = if cfg.integer { step.max(1.0) } else { step };
                let mid = self.midpoint(p, f);
                if f - p <= step || mid.is_none() {
                    self.verdict = Verdict::Found;
                    return None;
                }
                mid
            }
            (None, None) => Some(cfg.min),
        }
    }

    fn round(&self, level: f64) -> f64 {
        if self.cfg.integer {
            level.floor().max(1.0)
        } else {
            level
        }
    }

    /// Strictly between `p` and `f`; rates rounded to 4 significant digits when that
    /// keeps them strictly between (labels stay readable).
    fn midpoint(&self, p: f64, f: f64) -> Option<f64> {
        let mid = (p + f) / 2.0;
        let mid = if self.cfg.integer {
            mid.floor()
        } else {
            let r = round_sig(mid, 4);
            if r > p && r < f { r } else { mid }
        };
        (mid > p && mid < f).then_some(mid)
    }
}

/// `v` to `digits` significant digits.
pub fn round_sig(v: f64, digits: i32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(digits - 1 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

/// The most levels a search of `cfg` probes (repeats not counted):
/// ⌈log2(max/min)⌉ + ⌈log2(1/resolution)⌉ + 2.
pub fn probe_bound(cfg: &SearchConfig) -> usize {
    let grow = (cfg.max / cfg.min).log2().ceil().max(0.0) as usize;
    let bisect = (1.0 / cfg.resolution).log2().ceil().max(0.0) as usize;
    grow + bisect + 2
}
