//! The dual-round comparison: every round of one level against its first round —
//! the ratio of mean and p50 of each latency, of throughput, the TTFT speedup, and the
//! share of prompt tokens the server reported as cached.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};
use serde_json::{Map, Value, json};

use crate::metrics::Stats;
use crate::metrics::summary::Summary;

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

/// (name in results.json, label in the table, value from a summary)
type Getter = (&'static str, &'static str, fn(&Summary) -> Option<f64>);

const METRICS: [Getter; 10] = [
    ("ttft_ms.mean", "TTFT mean (ms)", |s| mean(&s.ttft_ms)),
    ("ttft_ms.p50", "TTFT p50 (ms)", |s| p50(&s.ttft_ms)),
    ("tpot_ms.mean", "TPOT mean (ms)", |s| mean(&s.tpot_ms)),
    ("tpot_ms.p50", "TPOT p50 (ms)", |s| p50(&s.tpot_ms)),
    ("itl_ms.mean", "ITL mean (ms)", |s| mean(&s.itl_ms)),
    ("itl_ms.p50", "ITL p50 (ms)", |s| p50(&s.itl_ms)),
    ("e2e_ms.mean", "E2E mean (ms)", |s| mean(&s.e2e_ms)),
    ("e2e_ms.p50", "E2E p50 (ms)", |s| p50(&s.e2e_ms)),
    ("throughput.output_tok_s", "output tok/s", |s| {
        Some(s.output_tok_s)
    }),
    ("throughput.req_s", "requests/s", |s| Some(s.req_s)),
];

fn mean(s: &Option<Stats>) -> Option<f64> {
    s.as_ref().map(|s| s.mean)
}

fn p50(s: &Option<Stats>) -> Option<f64> {
    s.as_ref().and_then(|s| s.percentile(50.0))
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
}

impl RoundComparison {
    /// `rounds`: (round number, summary), the first being the baseline.
    pub fn new(group: &str, rounds: &[(u32, &Summary)]) -> Self {
        let rows = rounds
            .iter()
            .map(|(round, s)| Row {
                round: *round,
                values: METRICS.iter().map(|(_, _, get)| get(s)).collect(),
                server_hit_rate: s.server_metrics.as_ref().and_then(|m| {
                    m["derived"].as_object()?.iter().find_map(|(k, v)| {
                        k.starts_with("prefix_cache_hit_rate")
                            .then(|| v.as_f64())
                            .flatten()
                    })
                }),
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
        RoundComparison {
            group: group.to_string(),
            rows,
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
        for (m, (_, label, _)) in METRICS.iter().enumerate() {
            let mut row = vec![label.to_string()];
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
        out
    }

    pub fn to_json(&self) -> Value {
        let rounds: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("round".into(), json!(r.round));
                for (i, (name, _, _)) in METRICS.iter().enumerate() {
                    m.insert((*name).into(), json!(r.values[i]));
                }
                m.insert("cached_share".into(), json!(r.cached_share));
                m.insert("server_hit_rate".into(), json!(r.server_hit_rate));
                Value::Object(m)
            })
            .collect();
        let ratios: Vec<Value> = (1..self.rows.len())
            .map(|k| {
                let mut m = Map::new();
                m.insert("round".into(), json!(self.rows[k].round));
                for (i, (name, _, _)) in METRICS.iter().enumerate() {
                    m.insert((*name).into(), json!(self.ratio(k, i)));
                }
                m.insert("ttft_speedup".into(), json!(self.ttft_speedup(k)));
                Value::Object(m)
            })
            .collect();
        json!({"level": self.group, "rounds": rounds, "ratios_to_round_1": ratios})
    }
}

/// The rounds of each dual-round level compared, recomputed from the summaries shown.
pub fn round_comparisons(runs: &[(&str, &Map<String, Value>, &Summary)]) -> Vec<RoundComparison> {
    let mut groups: Vec<(String, Vec<(u32, &Summary)>)> = Vec::new();
    for (mode, params, summary) in runs {
        if *mode != "dual-round" {
            continue;
        }
        let (Some(c), Some(round)) = (
            params.get("concurrency"),
            params.get("round").and_then(|r| r.as_u64()),
        ) else {
            continue;
        };
        let group = format!("concurrency {c}");
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, v)) => v.push((round as u32, summary)),
            None => groups.push((group, vec![(round as u32, summary)])),
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
        let j = c.to_json();
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
    fn no_cached_tokens_is_said() {
        let (r1, r2) = (round(40_000, None), round(30_000, None));
        let c = RoundComparison::new("c", &[(1, &r1), (2, &r2)]);
        assert!(c.render().contains("not reported"));
        assert!(c.to_json()["rounds"][0]["cached_share"].is_null());
    }

    #[test]
    fn rounds_are_grouped_by_level_and_sorted() {
        let (r1, r2, other) = (round(40_000, None), round(10_000, None), round(5_000, None));
        let p = |c: u64, r: u64| {
            json!({"concurrency": c, "round": r})
                .as_object()
                .unwrap()
                .clone()
        };
        let (p1, p2, p3) = (p(2, 1), p(2, 2), p(8, 1));
        let list = [
            ("dual-round", &p2, &r2),
            ("dual-round", &p1, &r1),
            ("dual-round", &p3, &other),
            ("concurrency", &p1, &other),
        ];
        let c = round_comparisons(&list);
        assert_eq!(c.len(), 1, "a level with one round compares nothing");
        let j = c[0].to_json();
        assert_eq!(j["level"], "concurrency 2");
        assert_eq!(j["rounds"][0]["round"], 1, "sorted by round");
        assert_eq!(c[0].ttft_speedup(1), Some(4.0));
    }
}
