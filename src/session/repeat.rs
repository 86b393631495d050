//! `--repeat N`: every level of a plan list run N times, back to back. Pure functions
//! of plan lists, applied where the commands build their plans.

use super::RunPlan;
use crate::report::repeats::label;

/// The seed of repeat `k` (from 1) derived from `--seed`: repeat 1 keeps the seed, so
/// a level's first repeat draws what a run without `--repeat` draws.
pub fn seed_of(seed: u64, k: u32) -> u64 {
    // Far apart from seed + level index, which a mode may also use.
    seed ^ u64::from(k - 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Every plan `n` times in a row (each repeat sends its own prompt set: the runner
/// draws one per run). `n` = 1 gives the plans unchanged.
pub fn repeat(plans: Vec<RunPlan>, n: u32) -> Vec<RunPlan> {
    interleave(vec![plans; n.max(1) as usize])
}

/// `draws[k]`: the levels as drawn for repeat k + 1 (the same levels in the same order,
/// e.g. open-loop arrivals drawn with `seed_of(seed, k + 1)`). Gives each level's
/// repeats back to back, labelled "LEVEL · rep k/n" with `params.repeat`/`repeats` set.
pub fn interleave(draws: Vec<Vec<RunPlan>>) -> Vec<RunPlan> {
    let n = draws.len() as u32;
    if n <= 1 {
        return draws.into_iter().flatten().collect();
    }
    let levels = draws[0].len();
    let mut columns: Vec<std::vec::IntoIter<RunPlan>> =
        draws.into_iter().map(Vec::into_iter).collect();
    let mut out = Vec::with_capacity(levels * n as usize);
    for _ in 0..levels {
        for (k, column) in (1..=n).zip(columns.iter_mut()) {
            let Some(mut plan) = column.next() else {
                continue;
            };
            plan.label = label(&plan.label, k, n);
            plan.params.repeat = Some(k);
            plan.params.repeats = Some(n);
            out.push(plan);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::document::RunParams;

    fn plan(label: &str, c: usize) -> RunPlan {
        RunPlan {
            label: label.into(),
            params: RunParams {
                concurrency: Some(c),
                ..RunParams::default()
            },
            ..RunPlan::default()
        }
    }

    #[test]
    fn each_level_repeats_back_to_back_with_readable_labels() {
        let plans = repeat(vec![plan("concurrency 1", 1), plan("concurrency 8", 8)], 3);
        let labels: Vec<&str> = plans.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "concurrency 1 · rep 1/3",
                "concurrency 1 · rep 2/3",
                "concurrency 1 · rep 3/3",
                "concurrency 8 · rep 1/3",
                "concurrency 8 · rep 2/3",
                "concurrency 8 · rep 3/3",
            ]
        );
        let reps: Vec<(Option<u32>, Option<u32>, Option<usize>)> = plans
            .iter()
            .map(|p| (p.params.repeat, p.params.repeats, p.params.concurrency))
            .collect();
        assert_eq!(reps[4], (Some(2), Some(3), Some(8)));
        let once = repeat(vec![plan("concurrency 1", 1)], 1);
        assert_eq!(once[0].label, "concurrency 1", "no --repeat: unchanged");
        assert_eq!(once[0].params.repeat, None);
    }

    #[test]
    fn interleave_takes_each_repeat_from_its_own_draw() {
        let draws = (1..=2)
            .map(|k| vec![plan("rate 5", k), plan("rate 9", 10 + k)])
            .collect();
        let got: Vec<(String, Option<usize>)> = interleave(draws)
            .into_iter()
            .map(|p| (p.label, p.params.concurrency))
            .collect();
        assert_eq!(got[1], ("rate 5 · rep 2/2".to_string(), Some(2)));
        assert_eq!(got[2], ("rate 9 · rep 1/2".to_string(), Some(11)));
    }

    #[test]
    fn repeat_seeds_differ_and_the_first_is_the_seed() {
        assert_eq!(seed_of(42, 1), 42);
        let seeds: Vec<u64> = (1..=5).map(|k| seed_of(42, k)).collect();
        let mut unique = seeds.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 5);
        assert_ne!(seed_of(0, 2), 1, "not the next level's seed");
    }
}
