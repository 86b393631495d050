//! The dual-round comparison: every round of one level against its first round —
//! the ratio of mean and p50 of each latency, of throughput, the TTFT speedup, and the
//! share of prompt tokens the server reported as cached.

use super::document::{RoundFigures, RoundRatios, RoundsDoc, RunMode, RunParams, SavedRun};
use crate::console::printable;
use crate::metrics::catalogue::{self, Metric};
use crate::metrics::cold_round;
use crate::metrics::ordered_map::OrderedMap;
use crate::metrics::summary::Summary;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

/// One round's figures.
#[derive(Clone, Debug)]
struct Row {
    round: u32,
    values: Vec<Option<f64>>,
    /// Cached prompt tokens / prompt tokens, when the server reports cached tokens.
    cached_share: Option<f64>,
    /// The prefix-cache hit rate from the server's own metrics (`--metrics`).
    server_hit_rate: Option<f64>,
}

/// The catalogue's metrics each round shows (the keys in results.json's `dual_round`).
const METRICS: [&str; 10] = [
    "ttft_ms.mean",
    "ttft_ms.p50",
    "tpot_ms.mean",
    "tpot_ms.p50",
    "itl_ms.mean",
    "itl_ms.p50",
    "e2e_ms.mean",
    "e2e_ms.p50",
    "throughput.output_tok_s",
    "throughput.req_s",
];

fn metrics() -> impl Iterator<Item = &'static Metric> {
    METRICS.iter().map(|k| catalogue::known(k))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

#[derive(Clone, Debug)]
pub struct RoundComparison {
    group: String,
    rows: Vec<Row>,
    /// Round 1's `cold_round` flag: it was not cold.
    warm_round_1: Option<String>,
}

impl RoundComparison {
    /// `rounds`: (round number, summary), the first being the baseline.
    pub fn new(group: &str, rounds: &[(u32, &Summary)]) -> Self {
        let rows = rounds
            .iter()
            .map(|(round, s)| Row {
                round: *round,
                values: metrics().map(|m| m.value(s)).collect(),
                server_hit_rate: s
                    .server_metrics
                    .as_ref()
                    .and_then(|m| m.derived_starting("prefix_cache_hit_rate")),
                cached_share: s.tokens.cached.map(|c| {
                    let prompt = s.tokens.server_prompt.unwrap_or(s.tokens.input);
                    if prompt > 0 {
                        c as f64 / prompt as f64
                    } else {
                        0.0
                    }
                }),
            })
            .collect();
        let warm_round_1 = rounds
            .first()
            .filter(|(round, _)| *round == 1)
            .and_then(|(_, s)| s.validity.iter().find(|f| f.check == cold_round::CHECK))
            .map(|f| f.message.clone());
        RoundComparison {
            group: group.to_string(),
            rows,
            warm_round_1,
        }
    }

    /// Round k's metric over round 1's.
    pub fn ratio(&self, round_index: usize, metric: usize) -> Option<f64> {
        ratio(
            self.rows.get(round_index)?.values[metric],
            self.rows.first()?.values[metric],
        )
    }

    /// Round 1's mean TTFT over round k's.
    pub fn ttft_speedup(&self, round_index: usize) -> Option<f64> {
        ratio(
            self.rows.first()?.values[0],
            self.rows.get(round_index)?.values[0],
        )
    }

    pub fn render(&self) -> String {
        let mut t = Table::new();
        t.load_style(UTF8_FULL_CONDENSED);
        let mut header = vec!["".to_string()];
        header.extend(self.rows.iter().map(|r| format!("round {}", r.round)));
        header.extend(self.rows.iter().skip(1).map(|r| format!("r{}/r1", r.round)));
        t.set_header(header);
        let fmt =
            |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
        for (m, metric) in metrics().enumerate() {
            let mut row = vec![metric.label.to_string()];
            row.extend(self.rows.iter().map(|r| fmt(r.values[m], 2)));
            row.extend((1..self.rows.len()).map(|k| fmt(self.ratio(k, m), 3)));
            t.add_row(row);
        }
        if self.rows.iter().any(|r| r.cached_share.is_some()) {
            let mut row = vec!["cached prompt tokens".to_string()];
            row.extend(self.rows.iter().map(|r| {
                r.cached_share
                    .map_or("-".to_string(), |c| format!("{:.1}%", c * 100.0))
            }));
            row.extend((1..self.rows.len()).map(|_| String::new()));
            t.add_row(row);
        }
        if self.rows.iter().any(|r| r.server_hit_rate.is_some()) {
            let mut row = vec!["server cache hit rate".to_string()];
            row.extend(self.rows.iter().map(|r| {
                r.server_hit_rate
                    .map_or("-".to_string(), |c| format!("{:.1}%", c * 100.0))
            }));
            row.extend((1..self.rows.len()).map(|_| String::new()));
            t.add_row(row);
        }
        for i in 1..=(2 * self.rows.len()) {
            if let Some(c) = t.column_mut(i) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        let mut out = format!("── {}: rounds compared ──\n{t}\n", self.group);
        for k in 1..self.rows.len() {
            if let Some(x) = self.ttft_speedup(k) {
                out.push_str(&format!(
                    "TTFT speedup, round {} vs round 1: {x:.2}× (mean TTFT of round 1 / round {})\n",
                    self.rows[k].round, self.rows[k].round
                ));
            }
        }
        if self.rows.iter().all(|r| r.cached_share.is_none()) {
            out.push_str("cached prompt tokens: not reported by the server\n");
        }
        if let Some(warm) = &self.warm_round_1 {
            out.push_str(&format!("WARNING    {}\n", printable(warm)));
        }
        out
    }

    /// The level's entry of results.json's `dual_round`.
    pub fn to_doc(&self) -> RoundsDoc {
        let values = |f: &dyn Fn(usize) -> Option<f64>| {
            OrderedMap(
                METRICS
                    .iter()
                    .enumerate()
                    .map(|(i, key)| (key.to_string(), f(i)))
                    .collect(),
            )
        };
        RoundsDoc {
            level: self.group.clone(),
            rounds: self
                .rows
                .iter()
                .map(|r| RoundFigures {
                    round: r.round,
                    values: values(&|i| r.values[i]),
                    cached_share: r.cached_share,
                    server_hit_rate: r.server_hit_rate,
                })
                .collect(),
            ratios_to_round_1: (1..self.rows.len())
                .map(|k| RoundRatios {
                    round: self.rows[k].round,
                    values: values(&|i| self.ratio(k, i)),
                    ttft_speedup: self.ttft_speedup(k),
                })
                .collect(),
        }
    }

    /// The level's name (`concurrency 8`).
    pub fn level(&self) -> &str {
        &self.group
    }
}

/// The dual-round level of a run and its round: the one place runs are grouped into
/// levels (`None` for other modes).
pub fn level_of(mode: &RunMode, params: &RunParams) -> Option<(String, u32)> {
    if *mode != RunMode::DualRound {
        return None;
    }
    Some((
        format!("concurrency {}", params.concurrency?),
        params.round?,
    ))
}

/// When the last of `runs` ends a dual-round level (the next run, if any, is of
/// another), that level's comparison.
pub fn finished_level(
    runs: &[SavedRun],
    next: Option<(&RunMode, &RunParams)>,
) -> Option<RoundComparison> {
    let last = runs.last()?;
    let (level, _) = level_of(&last.mode, &last.params)?;
    if next.and_then(|(m, p)| level_of(m, p)).map(|(l, _)| l) == Some(level.clone()) {
        return None;
    }
    round_comparisons(runs)
        .into_iter()
        .find(|c| c.group == level)
}

/// The rounds of each dual-round level compared (levels with at least two rounds), in
/// the order levels first appear.
pub fn round_comparisons<'a>(runs: impl IntoIterator<Item = &'a SavedRun>) -> Vec<RoundComparison> {
    let mut groups: Vec<(String, Vec<(u32, &Summary)>)> = Vec::new();
    for run in runs {
        let Some((group, round)) = level_of(&run.mode, &run.params) else {
            continue;
        };
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, v)) => v.push((round, &run.summary)),
            None => groups.push((group, vec![(round, &run.summary)])),
        }
    }
    groups
        .into_iter()
        .filter(|(_, v)| v.len() >= 2)
        .map(|(g, mut v)| {
            v.sort_by_key(|(r, _)| *r);
            RoundComparison::new(&g, &v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{RunData, summarize};
    use crate::record::RequestRecord;
    use serde_json::Value;

    /// The comparison as results.json holds it.
    fn to_json(c: &RoundComparison) -> Value {
        serde_json::to_value(c.to_doc()).unwrap()
    }

    fn round(ttft_us: u64, cached: Option<u32>) -> Summary {
        let mut d = RunData::default();
        for i in 0..2u64 {
            d.push(&RequestRecord {
                id: i,
                prompt_tokens: Some(100),
                cached_tokens: cached,
                ..RequestRecord::ok_for_test(
                    "r",
                    0,
                    vec![ttft_us, ttft_us + 10_000],
                    ttft_us + 10_000,
                    100,
                    2,
                )
            });
        }
        summarize(&d, &[])
    }

    #[test]
    fn ratios_speedup_and_cached_share() {
        let (r1, r2) = (round(40_000, Some(0)), round(10_000, Some(80)));
        let c = RoundComparison::new("concurrency 4", &[(1, &r1), (2, &r2)]);
        assert_eq!(c.ratio(1, 0), Some(0.25), "TTFT mean r2/r1");
        assert_eq!(c.ttft_speedup(1), Some(4.0));
        assert_eq!(c.ratio(1, 2), Some(1.0), "TPOT unchanged");
        let j = to_json(&c);
        assert_eq!(j["rounds"][1]["cached_share"], 0.8);
        assert_eq!(j["ratios_to_round_1"][0]["ttft_speedup"], 4.0);
        assert_eq!(j["ratios_to_round_1"][0]["ttft_ms.mean"], 0.25);
        let text = c.render();
        assert!(
            text.contains("4.00×") && text.contains("80.0%") && text.contains("r2/r1"),
            "{text}"
        );
    }

    #[test]
    fn a_warm_round_1_is_said_under_the_comparison() {
        let (mut r1, r2) = (round(40_000, Some(60)), round(10_000, Some(80)));
        let cold = RoundComparison::new("c", &[(1, &r1), (2, &r2)]);
        assert!(!cold.render().contains("WARNING"));
        r1.validity.push(crate::metrics::validity::Flag::new(
            cold_round::CHECK,
            "round 1 of c was not cold",
        ));
        let text = RoundComparison::new("c", &[(1, &r1), (2, &r2)]).render();
        assert!(
            text.contains("WARNING    round 1 of c was not cold"),
            "{text}"
        );
    }

    #[test]
    fn no_cached_tokens_is_said() {
        let (r1, r2) = (round(40_000, None), round(30_000, None));
        let c = RoundComparison::new("c", &[(1, &r1), (2, &r2)]);
        assert!(c.render().contains("not reported"));
        assert!(to_json(&c)["rounds"][0]["cached_share"].is_null());
    }

    #[test]
    fn rounds_are_grouped_by_level_and_sorted() {
        let (r1, r2, other) = (round(40_000, None), round(10_000, None), round(5_000, None));
        let run = |mode: RunMode, c: usize, r: u32, s: &Summary| SavedRun {
            label: format!("c {c} r {r}"),
            mode,
            params: RunParams {
                concurrency: Some(c),
                round: Some(r),
                ..RunParams::default()
            },
            started: String::new(),
            started_unix: 0.0,
            complete: None,
            incomplete_reason: None,
            requests_planned: None,
            requests_sent: None,
            summary: s.clone(),
        };
        let list = [
            run(RunMode::DualRound, 2, 2, &r2),
            run(RunMode::DualRound, 2, 1, &r1),
            run(RunMode::DualRound, 8, 1, &other),
            run(RunMode::Concurrency, 2, 1, &other),
        ];
        let c = round_comparisons(&list);
        assert_eq!(c.len(), 1, "a level with one round compares nothing");
        let j = to_json(&c[0]);
        assert_eq!(j["level"], "concurrency 2");
        assert_eq!(j["rounds"][0]["round"], 1, "sorted by round");
        assert_eq!(c[0].ttft_speedup(1), Some(4.0));
    }
}
