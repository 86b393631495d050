//! Reasons a run's figures may not measure what was meant: the client limited the run,
//! a "cold" round found a warm cache, the server ignored `ignore_eos`... Each check that
//! finds one adds a `Flag` to the run's summary; results.json keeps them (`validity`),
//! the table prints them as WARNING lines, and the HTML report shows them.

use serde::{Deserialize, Serialize};

/// One reason to doubt a run's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Flag {
    /// A stable key for scripts (`schedule_lag`, `client_cpu`, `cold_round_warm`, ...).
    pub check: String,
    /// What was found and what to do about it, for people.
    pub message: String,
}

impl Flag {
    pub fn new(check: &str, message: impl Into<String>) -> Flag {
        Flag {
            check: check.to_string(),
            message: message.into(),
        }
    }
}

/// Add `flag` unless one of the same check is already there (a check run twice, e.g.
/// by `report` re-reading a run, says it once).
pub fn raise(flags: &mut Vec<Flag>, flag: Flag) {
    if !flags.iter().any(|f| f.check == flag.check) {
        flags.push(flag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_is_flagged_once() {
        let mut flags = Vec::new();
        raise(&mut flags, Flag::new("client_cpu", "first"));
        raise(&mut flags, Flag::new("client_cpu", "second"));
        raise(&mut flags, Flag::new("schedule_lag", "lag"));
        assert_eq!(flags.len(), 2);
        assert_eq!(flags[0].message, "first");
    }
}
