//! Multi-turn sessions of a Qwen trace, a workload capability the schedule reaches
//! through `schedule::Continuations`: a turn whose parent (`parent_chat_id`) is in the
//! replay is sent as a continuation of the parent's conversation — the parent's prompt,
//! the answer the server actually generated, then the new turn — at its own timestamp
//! or once the parent has ended, whichever is later. A turn whose parent failed is sent
//! on its own (its standalone prompt was prepared anyway).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::blocks::BlockPrompts;
use super::prepare::{TraceOut, trace_blocks, trace_prompt};
use super::trace::{TraceError, TraceRequest};
use super::{EncodeBody, Prompt, Tokenizer};
use crate::schedule::{Answer, Continuations, SendTurn, TurnFuture};

/// For each request, the index of its parent turn (an earlier one), from each request's
/// `(chat_id, parent_chat_id)` in trace order.
pub fn link_parents(
    turns: impl IntoIterator<Item = Result<(Option<i64>, Option<i64>), TraceError>>,
) -> Result<Vec<Option<u32>>, TraceError> {
    let mut by_chat = HashMap::new();
    let mut parents = Vec::new();
    for (i, turn) in turns.into_iter().enumerate() {
        let (chat, parent) = turn?;
        let parent = parent
            .filter(|&p| p >= 0)
            .and_then(|p| by_chat.get(&p).copied());
        parents.push(parent);
        if let Some(c) = chat {
            by_chat.insert(c, i as u32);
        }
    }
    Ok(parents)
}

/// A conversation so far: (role, text) messages and their tokens, and the hash ids of
/// its last prompt (what a continuation shares with it).
#[derive(Debug)]
pub struct Conversation {
    messages: Vec<(&'static str, Arc<str>)>,
    tokens: u32,
    hash_ids: Vec<u64>,
}

impl Conversation {
    fn to_json(&self) -> Value {
        Value::Array(
            self.messages
                .iter()
                .map(|(role, text)| json!({"role": role, "content": &**text}))
                .collect(),
        )
    }
}

enum SlotState {
    Pending,
    /// The turn ended: its conversation (None if it failed, or once every child has
    /// taken it, so finished conversations do not pile up), and children yet to take it.
    Done {
        conversation: Option<Arc<Conversation>>,
        waiting: u32,
    },
}

/// A turn that others continue.
struct Slot {
    children: u32,
    state: Mutex<SlotState>,
    notify: Notify,
}

/// What a request is sent with, decided when it is due.
pub struct Turn {
    /// Replaces the prepared body (a continuation); `None` sends the prepared one.
    pub body: Option<(Bytes, u32)>,
    /// The conversation up to and including this turn's prompt (for its children).
    history: Option<Conversation>,
}

/// The sessions of one replay. Memory: 8 bytes per turn, plus the conversations of
/// turns whose children have not all been sent yet.
pub struct Sessions {
    parent: Arc<Vec<Option<u32>>>,
    slots: HashMap<u32, Slot>,
    blocks: Arc<BlockPrompts>,
    tokenizer: Tokenizer,
    body: Box<dyn EncodeBody + Send>,
    seed: u64,
    run: u64,
    /// `--model a,b`: each turn goes to the model its request was prepared for.
    models: Option<Arc<super::models::ModelMix>>,
}

impl Sessions {
    pub fn new(
        parent: Arc<Vec<Option<u32>>>,
        blocks: Arc<BlockPrompts>,
        tokenizer: Tokenizer,
        body: impl EncodeBody + Send + 'static,
        seed: u64,
        run: u64,
    ) -> Self {
        let mut children: HashMap<u32, u32> = HashMap::new();
        for p in parent.iter().flatten() {
            *children.entry(*p).or_default() += 1;
        }
        let slots = children
            .into_iter()
            .map(|(i, children)| {
                let slot = Slot {
                    children,
                    state: Mutex::new(SlotState::Pending),
                    notify: Notify::new(),
                };
                (i, slot)
            })
            .collect();
        Sessions {
            parent,
            slots,
            blocks,
            tokenizer,
            body: Box::new(body),
            seed,
            run,
            models: None,
        }
    }

    /// Send each continued turn to the model of its prepared request (its tag's).
    pub fn with_models(mut self, models: Option<Arc<super::models::ModelMix>>) -> Self {
        self.models = models.filter(|m| m.is_mix());
        self
    }

    /// The first request of request `id`'s conversation, and how deep `id` is in it.
    fn root(&self, id: u64) -> (u64, u32) {
        let (mut root, mut depth) = (id, 0u32);
        while let Some(p) = usize::try_from(root)
            .ok()
            .and_then(|i| self.parent.get(i).copied().flatten())
        {
            (root, depth) = (u64::from(p), depth + 1);
        }
        (root, depth)
    }

    /// Under a mix, the model of request `id`: its conversation's (picked for the first
    /// request), so a conversation stays on one model and its cache.
    fn model(&self, id: u64) -> Option<&Arc<str>> {
        let mix = self.models.as_ref()?;
        Some(mix.pick(self.seed, self.root(id).0))
    }

    /// A turn sent on its own (the first of its conversation, or its parent failed): the
    /// prepared body, except that a later turn under a mix is re-encoded for its
    /// conversation's model (the prepared one went by its own index).
    fn standalone_turn(&self, i: usize, t: &TraceRequest) -> Turn {
        let (root, _) = self.root(i as u64);
        let history = (self.has_children(i) || root != i as u64).then(|| self.standalone(i, t));
        let body = match (self.model(i as u64), &history) {
            (Some(model), Some(h)) if root != i as u64 => {
                let prompt = Prompt::Messages(&h.to_json());
                Some((
                    self.body.encode_as(model, prompt, t.output_len, None),
                    h.tokens,
                ))
            }
            _ => None,
        };
        Turn {
            body,
            history: history.filter(|_| self.has_children(i)),
        }
    }

    /// How many turns continue an earlier one.
    pub fn continuations(&self) -> usize {
        self.parent.iter().filter(|p| p.is_some()).count()
    }

    /// Wait until the parent turn has ended and take its conversation (None if it
    /// failed).
    async fn parent_conversation(&self, p: u32) -> Option<Arc<Conversation>> {
        let slot = self.slots.get(&p)?;
        loop {
            let notified = slot.notify.notified();
            {
                let mut state = slot.state.lock().unwrap_or_else(|e| e.into_inner());
                if let SlotState::Done {
                    conversation,
                    waiting,
                } = &mut *state
                {
                    *waiting = waiting.saturating_sub(1);
                    return if *waiting == 0 {
                        conversation.take()
                    } else {
                        conversation.clone()
                    };
                }
            }
            notified.await;
        }
    }

    /// Wait for the parent turn of request `i` (trace request `t`), if any, and decide
    /// what to send.
    pub async fn before_send(&self, i: usize, t: &TraceRequest) -> Turn {
        let standalone = || self.standalone_turn(i, t);
        let Some(p) = self.parent.get(i).copied().flatten() else {
            return standalone();
        };
        let Some(parent) = self.parent_conversation(p).await else {
            // The parent failed: this turn goes on its own.
            return standalone();
        };
        // The trace's input length counts the whole conversation; the new turn is what
        // the history does not cover (at least one token).
        let new_tokens = t.input_len.saturating_sub(parent.tokens).max(1);
        let shared = t
            .hash_ids
            .iter()
            .zip(&parent.hash_ids)
            .take_while(|(a, b)| a == b)
            .count();
        let mut text = String::new();
        trace_blocks(
            &self.blocks,
            self.seed,
            self.run,
            i as u64,
            &t.hash_ids[shared..],
            new_tokens as usize,
            TraceOut::Text(&mut text),
        );
        let mut messages = parent.messages.clone();
        messages.push(("user", Arc::from(text)));
        let history = Conversation {
            messages,
            tokens: parent.tokens + new_tokens,
            hash_ids: t.hash_ids.clone(),
        };
        let messages = Prompt::Messages(&history.to_json());
        let model = self.model(i as u64);
        let body = super::model_pick::encode(&*self.body, model, messages, t.output_len, None);
        Turn {
            body: Some((body, history.tokens)),
            history: self.has_children(i).then_some(history),
        }
    }

    /// Record how request `i` ended, so its children can go.
    pub async fn after(&self, i: usize, turn: Turn, answer: Option<Answer>) {
        let Some(slot) = u32::try_from(i).ok().and_then(|i| self.slots.get(&i)) else {
            return;
        };
        let conversation = match (turn.history, answer) {
            (Some(mut h), Some(a)) => counted_answer(&self.tokenizer, a).await.map(|(n, text)| {
                h.tokens += n;
                h.messages.push(("assistant", Arc::from(text)));
                Arc::new(h)
            }),
            _ => None,
        };
        *slot.state.lock().unwrap_or_else(|e| e.into_inner()) = SlotState::Done {
            conversation,
            waiting: slot.children,
        };
        slot.notify.notify_waiters();
    }

    pub fn has_children(&self, i: usize) -> bool {
        u32::try_from(i).is_ok_and(|i| self.slots.contains_key(&i))
    }

    fn standalone(&self, i: usize, t: &TraceRequest) -> Conversation {
        let mut text = String::new();
        trace_prompt(
            &self.blocks,
            self.seed,
            self.run,
            i as u64,
            t,
            TraceOut::Text(&mut text),
        );
        Conversation {
            messages: vec![("user", Arc::from(text))],
            tokens: t.input_len,
            hash_ids: t.hash_ids.clone(),
        }
    }
}

/// An answer and its tokens: the server's count when it gave one (what the model saw).
/// Otherwise the answer is tokenized on a blocking thread: a long one takes a while, and
/// the first builds the vocabulary (~40 ms), which on a runtime thread would delay the
/// timestamps of every stream it serves.
pub(super) async fn counted_answer(tokenizer: &Tokenizer, a: Answer) -> Option<(u32, String)> {
    match a.tokens {
        Some(n) => Some((n, a.text)),
        None => {
            let tok = tokenizer.clone();
            tokio::task::spawn_blocking(move || (tok.count(&a.text) as u32, a.text))
                .await
                .ok()
        }
    }
}

/// The schedule's view: a due turn waits for its parent, is sent, and its answer is
/// kept for the turns that continue it.
impl Continuations for Sessions {
    fn turn<'a>(&'a self, id: u64, trace: &'a TraceRequest, send: SendTurn<'a>) -> TurnFuture<'a> {
        Box::pin(async move {
            let i = id as usize;
            let mut turn = self.before_send(i, trace).await;
            let answer = send(turn.body.take(), self.has_children(i)).await;
            self.after(i, turn, answer).await;
        })
    }

    /// Session: the index of the conversation's first request; turn: its depth; model:
    /// the conversation's, under a mix.
    fn tag(&self, id: u64, tag: &mut crate::record::RequestTag) {
        let (root, depth) = self.root(id);
        tag.session = Some(root);
        tag.turn = Some(depth);
        if let Some(m) = self.model(id) {
            tag.model = Some(m.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::openai::BodyOptions;

    fn turn(chat: i64, parent: i64) -> TraceRequest {
        TraceRequest {
            line: 1,
            timestamp_us: 0,
            input_len: 10,
            output_len: 2,
            hash_ids: vec![1],
            chat_id: Some(chat),
            parent_chat_id: Some(parent),
            turn: None,
            kind: None,
            replaced: Default::default(),
        }
    }

    #[test]
    fn parents_are_linked_by_chat_id() {
        let reqs = [
            turn(7, -1),
            turn(8, 7),
            turn(9, 8),
            turn(10, 99),
            turn(11, 7),
        ];
        assert_eq!(
            link_parents(reqs.iter().map(|r| Ok((r.chat_id, r.parent_chat_id)))).unwrap(),
            vec![None, Some(0), Some(1), None, Some(0)],
            "unknown parents (not in the replay) make a turn a root"
        );
    }

    fn sessions(parent: Vec<Option<u32>>) -> Sessions {
        let tok = Tokenizer::builtin();
        let body = BodyOptions {
            api: crate::client::openai::Api::Chat,
            model: "m".into(),
            ignore_eos: true,
            extra: Default::default(),
            tools: Default::default(),
            batch_inputs: 1,
        };
        let blocks = Arc::new(BlockPrompts::new(&tok, 16, 0).unwrap());
        Sessions::new(Arc::new(parent), blocks, tok, body, 0, 0)
    }

    fn messages(turn: &Turn) -> Vec<Value> {
        let (body, _) = turn.body.as_ref().unwrap();
        let v: Value = serde_json::from_slice(body).unwrap();
        v["messages"].as_array().unwrap().clone()
    }

    #[tokio::test]
    async fn every_child_gets_the_parent_conversation_which_is_then_dropped() {
        let s = sessions(vec![None, Some(0), Some(0), None]);
        assert_eq!(s.continuations(), 2);
        assert!(s.has_children(0) && !s.has_children(1) && !s.has_children(3));
        let mut root = turn(1, -1);
        root.hash_ids = vec![1, 2];
        root.input_len = 20;
        let first = s.before_send(0, &root).await;
        assert!(first.body.is_none(), "a root goes as prepared");
        let answer = Answer {
            text: "the answer".into(),
            tokens: None,
        };
        s.after(0, first, Some(answer)).await;
        for (i, input) in [(1, 40), (2, 45)] {
            let mut child = turn(2, 1);
            child.hash_ids = vec![1, 2, 7];
            child.input_len = input;
            let t = s.before_send(i, &child).await;
            let m = messages(&t);
            assert_eq!(m.len(), 3, "prompt, answer, new turn: {m:?}");
            assert_eq!(m[1]["content"], "the answer");
            let answer_tokens = Tokenizer::builtin().count("the answer") as u32;
            assert_eq!(
                t.body.as_ref().unwrap().1,
                input,
                "the trace's length is met"
            );
            assert!(input > 20 + answer_tokens);
            assert!(
                t.history.is_none(),
                "a turn without children keeps no history"
            );
        }
        let state = s.slots[&0].state.lock().unwrap();
        assert!(
            matches!(
                &*state,
                SlotState::Done {
                    conversation: None,
                    waiting: 0
                }
            ),
            "taken by both children, the conversation is freed"
        );
    }

    #[tokio::test]
    async fn the_servers_count_of_an_answer_is_used_when_it_gave_one() {
        let s = sessions(vec![None, Some(0)]);
        let mut root = turn(1, -1);
        root.input_len = 20;
        let first = s.before_send(0, &root).await;
        let answer = Answer {
            text: "the answer".into(),
            tokens: Some(50),
        };
        s.after(0, first, Some(answer)).await;
        let mut child = turn(2, 1);
        child.input_len = 60;
        let t = s.before_send(1, &child).await;
        assert_eq!(messages(&t)[1]["content"], "the answer");
        // The history is 20 + 50 tokens (by the client's tokenizer it would be 20 + 2,
        // and the turn 60); the trace asks for less, so one new token goes on top.
        assert_eq!(t.body.as_ref().unwrap().1, 71);
    }

    #[tokio::test]
    async fn a_child_of_a_failed_turn_goes_on_its_own() {
        let s = sessions(vec![None, Some(0)]);
        let root = turn(1, -1);
        let first = s.before_send(0, &root).await;
        s.after(0, first, None).await;
        let t = s.before_send(1, &turn(2, 1)).await;
        assert!(t.body.is_none());
    }
}
