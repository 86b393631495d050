//! The tags of a run's requests (session, turn, model: `record::RequestTag`) as the
//! summary needs them: 12 bytes per request, a session's id and a model's name kept
//! once per run. A run whose records carry no tag keeps nothing here at all, so its
//! memory and its outputs are exactly as before.

use std::collections::HashMap;
use std::sync::Arc;

use crate::record::RequestTag;

const NONE: u32 = u32::MAX;

/// One request's tag: indexes into the run's session and model tables, `NONE` for absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagFacts {
    session: u32,
    turn: u32,
    model: u32,
}

const UNTAGGED: TagFacts = TagFacts {
    session: NONE,
    turn: NONE,
    model: NONE,
};

fn at(v: u32) -> Option<u32> {
    (v != NONE).then_some(v)
}

impl TagFacts {
    /// The session's index in the run (0, 1, ... in order of first appearance).
    pub fn session(&self) -> Option<u32> {
        at(self.session)
    }

    /// The turn index the workload gave (from 0).
    pub fn turn(&self) -> Option<u32> {
        at(self.turn)
    }

    /// The model's index in `RunTags::models`.
    pub fn model(&self) -> Option<u32> {
        at(self.model)
    }
}

/// The run's tags, one per sample once any record carried one.
#[derive(Clone, Debug, Default)]
pub struct RunTags {
    /// Empty while no record had a tag; then as long as the run's samples (the untagged
    /// ones before the first tag filled in as such).
    facts: Vec<TagFacts>,
    sessions: HashMap<u64, u32>,
    model_index: HashMap<Arc<str>, u32>,
    models: Vec<Arc<str>>,
}

impl RunTags {
    /// The tag of the sample about to be pushed at `index`.
    pub fn push(&mut self, index: usize, tag: &RequestTag) {
        if tag.is_ungrouped() && self.facts.is_empty() {
            return;
        }
        self.facts.resize(index, UNTAGGED);
        let session = tag.session.map_or(NONE, |id| {
            let next = self.sessions.len() as u32;
            *self.sessions.entry(id).or_insert(next)
        });
        let model = tag.model.as_ref().map_or(NONE, |name| self.model(name));
        self.facts.push(TagFacts {
            session,
            // A turn past u32::MAX − 1 cannot be sent; it would read as untagged.
            turn: tag.turn.unwrap_or(NONE),
            model,
        });
    }

    fn model(&mut self, name: &Arc<str>) -> u32 {
        if let Some(&i) = self.model_index.get(name) {
            return i;
        }
        let i = self.models.len() as u32;
        self.models.push(name.clone());
        self.model_index.insert(name.clone(), i);
        i
    }

    /// The tag of sample `i` (untagged when the run has none).
    pub fn get(&self, i: usize) -> TagFacts {
        self.facts.get(i).copied().unwrap_or(UNTAGGED)
    }

    /// Whether any record carried a tag.
    pub fn any(&self) -> bool {
        !self.facts.is_empty()
    }

    /// Sessions seen (their indexes are 0..this).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The models seen, by index.
    pub fn models(&self) -> &[Arc<str>] {
        &self.models
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(session: Option<u64>, turn: Option<u32>, model: Option<&str>) -> RequestTag {
        RequestTag {
            session,
            turn,
            model: model.map(Arc::from),
            ..RequestTag::default()
        }
    }

    #[test]
    fn untagged_runs_keep_nothing() {
        let mut t = RunTags::default();
        for i in 0..1000 {
            t.push(i, &RequestTag::default());
        }
        assert!(!t.any());
        assert_eq!(t.facts.capacity(), 0);
        assert_eq!(t.get(5), UNTAGGED);
    }

    #[test]
    fn tags_line_up_with_samples_and_tables_are_dense() {
        let mut t = RunTags::default();
        t.push(0, &RequestTag::default());
        t.push(1, &tag(Some(900), Some(0), Some("b")));
        t.push(2, &tag(Some(7), Some(0), Some("a")));
        t.push(3, &tag(Some(900), Some(1), Some("b")));
        t.push(4, &RequestTag::default());
        assert_eq!(t.facts.len(), 5);
        assert_eq!(t.get(0), UNTAGGED);
        assert_eq!(
            (t.get(3).session(), t.get(3).turn(), t.get(3).model()),
            (Some(0), Some(1), Some(0))
        );
        assert_eq!(t.get(2).session(), Some(1));
        assert_eq!(t.get(4), UNTAGGED);
        assert_eq!(t.session_count(), 2);
        let names: Vec<&str> = t.models().iter().map(|m| &**m).collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(std::mem::size_of::<TagFacts>(), 12);
    }
}
