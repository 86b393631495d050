//! A mix of models (or LoRA adapters served under one base model): `--model a,b
//! --model-weights 0.7,0.3`. Each request, or each session when sessions are on, goes to
//! one of them, picked from the seed and its index alone, so a run is repeatable and a
//! shard picks exactly what the whole run would have.

use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
pub struct ModelMix {
    names: Vec<Arc<str>>,
    /// Running sums of the weights, normalised so the last is 1.
    cumulative: Vec<f64>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MixError {
    #[error("--model names no model")]
    Empty,
    #[error("--model names {0:?} twice")]
    Repeated(String),
    #[error("--model-weights has {weights} weights for {models} models (expected one per model)")]
    Count { weights: usize, models: usize },
    #[error("--model-weights: {0} is not a positive finite number")]
    Weight(f64),
}

impl ModelMix {
    /// `weights` `None`: equal shares.
    pub fn new(names: Vec<String>, weights: Option<Vec<f64>>) -> Result<Self, MixError> {
        if names.is_empty() {
            return Err(MixError::Empty);
        }
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return Err(MixError::Repeated(n.clone()));
            }
        }
        let weights = weights.unwrap_or_else(|| vec![1.0; names.len()]);
        if weights.len() != names.len() {
            return Err(MixError::Count {
                weights: weights.len(),
                models: names.len(),
            });
        }
        if let Some(&w) = weights.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
            return Err(MixError::Weight(w));
        }
        let total: f64 = weights.iter().sum();
        let mut run = 0.0;
        let mut cumulative: Vec<f64> = weights
            .iter()
            .map(|w| {
                run += w / total;
                run
            })
            .collect();
        // Rounding must not leave a draw just under 1 without a model.
        *cumulative.last_mut().expect("not empty") = 1.0;
        Ok(ModelMix {
            names: names.into_iter().map(Arc::from).collect(),
            cumulative,
        })
    }

    pub fn names(&self) -> &[Arc<str>] {
        &self.names
    }

    /// More than one model: requests say which they went to.
    pub fn is_mix(&self) -> bool {
        self.names.len() > 1
    }

    /// The model of request (or session) `key`, from the seed and the key alone.
    pub fn pick(&self, seed: u64, key: u64) -> &Arc<str> {
        let u = (mix64(seed ^ mix64(key ^ 0x6D6F_6465_6C73)) >> 11) as f64 / (1u64 << 53) as f64;
        let i = self.cumulative.partition_point(|&c| c <= u);
        &self.names[i.min(self.names.len() - 1)]
    }
}

/// splitmix64's finaliser: neighbouring keys give unrelated draws.
fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(w: &[f64]) -> ModelMix {
        let names = (0..w.len()).map(|i| format!("m{i}")).collect();
        ModelMix::new(names, Some(w.to_vec())).unwrap()
    }

    #[test]
    fn picks_follow_the_weights_and_repeat_for_a_seed() {
        let m = mix(&[0.7, 0.3]);
        let n = 20_000;
        let first = (0..n).filter(|&k| &**m.pick(7, k) == "m0").count() as f64 / n as f64;
        assert!((first - 0.7).abs() < 0.015, "share {first}");
        let a: Vec<_> = (0..50).map(|k| m.pick(7, k).clone()).collect();
        let b: Vec<_> = (0..50).map(|k| m.pick(7, k).clone()).collect();
        assert_eq!(a, b);
        let c: Vec<_> = (0..50).map(|k| m.pick(8, k).clone()).collect();
        assert_ne!(a, c, "another seed, other picks");
    }

    #[test]
    fn bad_mixes_are_refused_with_the_flag_named() {
        let two = || vec!["a".to_string(), "b".to_string()];
        let e = ModelMix::new(two(), Some(vec![1.0])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--model-weights has 1 weights for 2 models (expected one per model)"
        );
        assert_eq!(
            ModelMix::new(two(), Some(vec![1.0, 0.0])).unwrap_err(),
            MixError::Weight(0.0)
        );
        let rep = ModelMix::new(vec!["a".into(), "a".into()], None).unwrap_err();
        assert_eq!(rep.to_string(), "--model names \"a\" twice");
        assert!(!mix(&[1.0]).is_mix());
        assert_eq!(&**mix(&[1.0]).pick(1, 2), "m0");
    }
}
