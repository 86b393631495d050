//! Which run comes next. A fixed list for most modes; a search (capacity) or a sweep
//! chooses each run from the results of those before it. The session loop asks the
//! planner after every run and knows nothing else of how runs are chosen.

use crate::report::document::{ResultsDoc, RunMode, SavedRun};

use super::RunPlan;

/// Chooses a session's runs one at a time.
pub trait Planner {
    /// The mode of every run it plans (an `--append` directory must hold the same);
    /// `None` when it plans none.
    fn mode(&self) -> Option<RunMode>;

    /// The next run, given this session's finished runs (oldest first); `None` when
    /// the session is done. Called once before the first run, then after each.
    fn next(&mut self, done: &[SavedRun]) -> Option<RunPlan>;

    /// After every run (and after `next` has seen it), before results.json is written:
    /// what the planner concluded so far (a search's bracket), so a session stopped
    /// mid-way saves it too.
    fn annotate(&self, _doc: &mut ResultsDoc) {}

    /// Once, when the session's runs are over (whatever ended them): print the answer.
    fn conclude(&self, _done: &[SavedRun]) {}
}

/// A list of runs known before the first starts.
pub struct Fixed {
    plans: std::vec::IntoIter<RunPlan>,
    mode: Option<RunMode>,
}

impl Fixed {
    pub fn new(plans: Vec<RunPlan>) -> Self {
        let mode = plans.first().map(|p| p.mode.clone());
        Fixed {
            plans: plans.into_iter(),
            mode,
        }
    }
}

impl Planner for Fixed {
    fn mode(&self) -> Option<RunMode> {
        self.mode.clone()
    }

    fn next(&mut self, _done: &[SavedRun]) -> Option<RunPlan> {
        self.plans.next()
    }
}
