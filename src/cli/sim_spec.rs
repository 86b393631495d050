//! `servescope sim --spec-tokens K --acceptance P`, over a config file's `spec`.

use std::collections::BTreeSet;

use super::sim::SimModelArgs;
use crate::sim::{SimConfig, SpecDecoding};

/// `--acceptance` when only `--spec-tokens` is given.
const DEFAULT_ACCEPTANCE: f64 = 0.7;

impl SimModelArgs {
    /// `--spec-tokens` and `--acceptance` over the file's `spec`, checked.
    pub(super) fn apply_spec(
        &self,
        cfg: &mut SimConfig,
        file: Option<&(String, BTreeSet<String>)>,
    ) -> Result<(), String> {
        if let Some(k) = self.spec_tokens {
            let acceptance = cfg.spec.map_or(DEFAULT_ACCEPTANCE, |s| s.acceptance);
            cfg.spec = Some(SpecDecoding {
                tokens: k,
                acceptance,
            });
        }
        match (&mut cfg.spec, self.acceptance) {
            (Some(s), Some(p)) => s.acceptance = p,
            (None, Some(_)) => {
                return Err("--acceptance needs --spec-tokens K (speculative decoding)".into());
            }
            _ => {}
        }
        let Some(spec) = cfg.spec else {
            return Ok(());
        };
        let in_file = |key: &str| match file {
            Some((path, _)) => format!("\"spec.{key}\" in {path}"),
            None => format!("spec.{key}"),
        };
        spec.check(|key| match key {
            "tokens" if self.spec_tokens.is_some() => "--spec-tokens".into(),
            "acceptance" if self.acceptance.is_some() => "--acceptance".into(),
            _ => in_file(key),
        })?;
        if cfg.tokens_per_chunk > 1 {
            return Err(
                "--tokens-per-chunk: with speculative decoding each step's tokens make one chunk; give one of them"
                    .into(),
            );
        }
        Ok(())
    }
}
