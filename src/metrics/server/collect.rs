//! The asked-for series of every scrape, gathered and turned into counter changes and
//! gauge statistics.

use std::collections::HashMap;

use super::derive::derive;
use super::presets::ALTERNATIVES;
use super::{CounterChange, Series, SeriesValue, ServerMetrics};
use crate::metrics::prometheus::{Exposition, MetricType};
use crate::metrics::stats::{DEFAULT_PERCENTILES, Stats};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Counter,
    Gauge,
}

/// How a sample name relates to a name asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// The same name.
    Exact,
    /// Asked `x`, exposed `x_total`.
    Total,
    /// Asked `x_total`, exposed `x`.
    Bare,
    /// Asked for histogram or summary `x`, exposed `x_sum` / `x_count`.
    SumOrCount,
}

/// Counter or gauge, or `None` when the sample is not what was asked for.
pub(super) fn classify(
    role: Role,
    asked: &str,
    sample: &str,
    family: &str,
    t: MetricType,
) -> Option<Kind> {
    use MetricType as T;
    match role {
        Role::Exact => match t {
            // `x_created` is a creation timestamp beside `x_total`, not a count.
            T::Counter | T::Histogram | T::Summary
                if family != sample && sample.ends_with("_created") =>
            {
                Some(Kind::Gauge)
            }
            T::Counter => Some(Kind::Counter),
            T::Gauge => Some(Kind::Gauge),
            // `_bucket`/`_sum`/`_count` asked for by name are counters; the family's
            // own name only carries summary quantiles, which are not reported.
            T::Histogram | T::Summary => (family != sample).then_some(Kind::Counter),
            T::Untyped if sample.ends_with("_total") => Some(Kind::Counter),
            T::Untyped => Some(Kind::Gauge),
        },
        Role::Total => matches!(t, T::Counter | T::Untyped).then_some(Kind::Counter),
        Role::Bare => (t == T::Counter).then_some(Kind::Counter),
        Role::SumOrCount => match t {
            T::Histogram | T::Summary if family == asked => Some(Kind::Counter),
            T::Untyped => Some(Kind::Counter),
            _ => None,
        },
    }
}

#[derive(Debug)]
pub(super) struct Acc {
    key: String,
    name: String,
    labels: Vec<(String, String)>,
    kind: Kind,
    asked: usize,
    /// (scrape index, value).
    values: Vec<(usize, f64)>,
}

/// The asked-for series of every successful scrape, kept as numbers only.
#[derive(Debug)]
pub(super) struct Collector {
    names: Vec<String>,
    /// Sample name → (index of a name asked for, how it relates).
    candidates: HashMap<String, Vec<(usize, Role)>>,
    index: HashMap<String, usize>,
    series: Vec<Acc>,
    /// Seconds since the first scrape, per successful scrape.
    times: Vec<f64>,
    seen: Vec<bool>,
}

impl Collector {
    pub(super) fn new(names: Vec<String>) -> Collector {
        let mut candidates: HashMap<String, Vec<(usize, Role)>> = HashMap::new();
        let mut add = |name: String, i: usize, role: Role| {
            candidates.entry(name).or_default().push((i, role));
        };
        for (i, n) in names.iter().enumerate() {
            add(n.clone(), i, Role::Exact);
            match n.strip_suffix("_total") {
                Some(bare) => add(bare.to_string(), i, Role::Bare),
                None => add(format!("{n}_total"), i, Role::Total),
            }
            add(format!("{n}_sum"), i, Role::SumOrCount);
            add(format!("{n}_count"), i, Role::SumOrCount);
        }
        Collector {
            seen: vec![false; names.len()],
            names,
            candidates,
            index: HashMap::new(),
            series: Vec::new(),
            times: Vec::new(),
        }
    }

    pub(super) fn add(&mut self, at: f64, expo: &Exposition) {
        let scrape = self.times.len();
        self.times.push(at);
        for s in &expo.samples {
            let Some(cands) = self.candidates.get(s.name.as_str()) else {
                continue;
            };
            let (family, t) = expo.family_of(&s.name);
            let mut chosen = None;
            for &(i, role) in cands {
                if let Some(kind) = classify(role, &self.names[i], &s.name, family, t) {
                    self.seen[i] = true;
                    chosen.get_or_insert((i, kind));
                }
            }
            let Some((asked, kind)) = chosen else {
                continue;
            };
            let key = s.key();
            let idx = match self.index.get(&key) {
                Some(&i) => i,
                None => {
                    self.index.insert(key.clone(), self.series.len());
                    self.series.push(Acc {
                        key,
                        name: s.name.clone(),
                        labels: s.labels.clone(),
                        kind,
                        asked,
                        values: Vec::new(),
                    });
                    self.series.len() - 1
                }
            };
            let acc = &mut self.series[idx];
            // A series printed twice in one page: the first line counts.
            if acc.values.last().is_none_or(|&(i, _)| i != scrape) && !s.value.is_nan() {
                acc.values.push((scrape, s.value));
            }
        }
    }

    /// `final_error`: why the scrape after the run failed, if it did.
    pub(super) fn finish(self, final_error: Option<String>) -> Result<ServerMetrics, String> {
        if self.times.len() < 2 {
            return Err(final_error.unwrap_or_else(|| "no scrape after the run".into()));
        }
        let last = self.times.len() - 1;
        let mut accs = self.series;
        // Stable: ties keep their order of first appearance.
        accs.sort_by_key(|a| a.asked);
        let mut series = Vec::new();
        for a in accs {
            let value = match a.kind {
                Kind::Gauge => {
                    let samples: Vec<f64> = a.values.iter().map(|&(_, x)| x).collect();
                    let times = a.values.iter().map(|&(i, _)| self.times[i]).collect();
                    let stats = Stats::compute(&mut samples.clone(), &DEFAULT_PERCENTILES);
                    SeriesValue::Gauge {
                        samples,
                        times,
                        stats,
                    }
                }
                Kind::Counter => {
                    match counter_change(&a.values, &self.times, last, final_error.as_deref()) {
                        Some(mut c) => {
                            // Every scrape's value, for figures per interval (`spec.rs`).
                            c.points = a.values.iter().map(|&(i, v)| (self.times[i], v)).collect();
                            SeriesValue::Counter(c)
                        }
                        None => continue,
                    }
                }
            };
            series.push(Series {
                key: a.key,
                name: a.name,
                labels: a.labels,
                value,
            });
        }
        let missing = self
            .names
            .iter()
            .enumerate()
            .filter(|&(i, n)| {
                let seen = |name: &str| {
                    self.names
                        .iter()
                        .zip(&self.seen)
                        .any(|(m, &s)| s && m == name)
                };
                !self.seen[i]
                    && !super::spec::other_engine_seen(n, seen)
                    && !ALTERNATIVES.iter().any(|&(a, b)| {
                        let other = if n == a {
                            b
                        } else if n == b {
                            a
                        } else {
                            return false;
                        };
                        self.names
                            .iter()
                            .zip(&self.seen)
                            .any(|(m, &seen)| seen && m == other)
                    })
            })
            .map(|(_, n)| n.clone())
            .collect();
        let derived = derive(&series);
        Ok(ServerMetrics {
            series,
            derived,
            missing,
            failed_samples: 0,
            last_error: None,
            scrapes: self.times.len(),
            duration_s: self.times[last] - self.times[0],
        })
    }
}

/// Before/after/delta/rate of one counter from its values over the scrapes (index 0 is
/// the scrape before the run, `last` the last successful one). A drop between two
/// scrapes is a restart: counting resumes from 0, as Prometheus's `increase()` does.
pub(super) fn counter_change(
    values: &[(usize, f64)],
    times: &[f64],
    last: usize,
    final_error: Option<&str>,
) -> Option<CounterChange> {
    let &(first_i, first_v) = values.first()?;
    let &(last_i, after) = values.last()?;
    let mut notes = Vec::new();
    let before = (first_i == 0).then_some(first_v);
    let (mut prev, rest) = match before {
        Some(v) => (v, &values[1..]),
        None => {
            notes.push("absent before the run: counted from 0".to_string());
            (0.0, values)
        }
    };
    let mut sum = 0.0;
    let mut reset = false;
    for &(_, v) in rest {
        if v >= prev {
            sum += v - prev;
        } else {
            sum += v;
            reset = true;
        }
        prev = v;
    }
    let delta = if reset {
        notes.push(
            "went down during the run (server restart?): counted from 0 after the drop".into(),
        );
        sum
    } else {
        // Exact, where a sum of steps could round.
        after - before.unwrap_or(0.0)
    };
    if let Some(e) = final_error {
        notes.push(format!(
            "the scrape after the run failed ({e}): counted up to the last sample"
        ));
    } else if last_i != last {
        notes.push("absent after the run: counted up to the last sample that had it".into());
    }
    let elapsed = times[last_i] - times[0];
    Some(CounterChange {
        before,
        after,
        delta,
        rate: (elapsed > 0.0).then(|| delta / elapsed),
        notes,
        points: Vec::new(),
    })
}

pub(super) fn same_labels(a: &[(String, String)], b: &[(String, String)]) -> bool {
    a.len() == b.len() && a.iter().all(|l| b.contains(l))
}
