//! Multi-turn sessions of a Qwen trace: a turn whose parent (`parent_chat_id`) is in the
//! replay is sent as a continuation of the parent's conversation — the parent's prompt,
//! the answer the server actually generated, then the new turn — at its own timestamp
//! or once the parent has ended, whichever is later. A turn whose parent failed is sent
//! on its own (its standalone prompt was prepared anyway).

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::client::openai::{BodyOptions, PromptBody, build_body};
use crate::workload::Tokenizer;
use crate::workload::blocks::BlockPrompts;
use crate::workload::prepare::{TraceOut, trace_blocks, trace_prompt};
use crate::workload::trace::TraceRequest;

/// For each request, the index of its parent turn among `requests` (an earlier one).
pub fn link_parents(requests: &[TraceRequest]) -> Vec<Option<usize>> {
    let mut by_chat = std::collections::HashMap::new();
    let mut parents = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        let parent = r
            .parent_chat_id
            .filter(|&p| p >= 0)
            .and_then(|p| by_chat.get(&p).copied());
        parents.push(parent);
        if let Some(c) = r.chat_id {
            by_chat.insert(c, i);
        }
    }
    parents
}

/// A conversation so far: (role, text) messages and their tokens.
#[derive(Debug)]
pub struct Conversation {
    messages: Vec<(&'static str, Arc<str>)>,
    tokens: u32,
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

#[derive(Default)]
struct Slot {
    /// Set once the request has ended: its conversation, or None if it failed.
    done: OnceLock<Option<Arc<Conversation>>>,
    notify: Notify,
}

/// What a request is sent with, decided when it is due.
pub struct Turn {
    /// Replaces the prepared body (a continuation); `None` sends the prepared one.
    pub body: Option<(Bytes, u32)>,
    /// The conversation up to and including this turn's prompt (for its children).
    history: Option<Conversation>,
}

pub struct Sessions {
    parent: Vec<Option<usize>>,
    has_children: Vec<bool>,
    slots: Vec<Slot>,
    requests: Arc<Vec<TraceRequest>>,
    blocks: Arc<BlockPrompts>,
    tokenizer: Tokenizer,
    body: BodyOptions,
    seed: u64,
    run: u64,
}

impl Sessions {
    pub fn new(
        requests: Arc<Vec<TraceRequest>>,
        blocks: Arc<BlockPrompts>,
        tokenizer: Tokenizer,
        body: BodyOptions,
        seed: u64,
        run: u64,
    ) -> Self {
        let parent = link_parents(&requests);
        let mut has_children = vec![false; requests.len()];
        for p in parent.iter().flatten() {
            has_children[*p] = true;
        }
        let slots = (0..requests.len()).map(|_| Slot::default()).collect();
        Sessions {
            parent,
            has_children,
            slots,
            requests,
            blocks,
            tokenizer,
            body,
            seed,
            run,
        }
    }

    /// How many turns continue an earlier one.
    pub fn continuations(&self) -> usize {
        self.parent.iter().filter(|p| p.is_some()).count()
    }

    /// Wait for the parent turn, if any, and decide what to send.
    pub async fn before_send(&self, i: usize) -> Turn {
        let Some(p) = self.parent.get(i).copied().flatten() else {
            return Turn {
                body: None,
                history: self.has_children[i].then(|| self.standalone(i)),
            };
        };
        let slot = &self.slots[p];
        let parent = loop {
            let notified = slot.notify.notified();
            if let Some(done) = slot.done.get() {
                break done.clone();
            }
            notified.await;
        };
        let Some(parent) = parent else {
            // The parent failed: this turn goes on its own.
            return Turn {
                body: None,
                history: self.has_children[i].then(|| self.standalone(i)),
            };
        };
        let t = &self.requests[i];
        let pt = &self.requests[p];
        // The trace's input length counts the whole conversation; the new turn is what
        // the history does not cover (at least one token).
        let new_tokens = t.input_len.saturating_sub(parent.tokens).max(1);
        let shared = t
            .hash_ids
            .iter()
            .zip(&pt.hash_ids)
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
        };
        let body = build_body(
            &self.body,
            PromptBody::Messages(&history.to_json()),
            t.output_len,
        );
        Turn {
            body: Some((Bytes::from(body), history.tokens)),
            history: Some(history),
        }
    }

    /// Record how request `i` ended, so its children can go.
    pub fn after(&self, i: usize, turn: Turn, answer: Option<&str>) {
        if !self.has_children[i] {
            return;
        }
        let conv = match (turn.history, answer) {
            (Some(mut h), Some(a)) => {
                h.tokens += self.tokenizer.count(a) as u32;
                h.messages.push(("assistant", Arc::from(a)));
                Some(Arc::new(h))
            }
            _ => None,
        };
        let slot = &self.slots[i];
        let _ = slot.done.set(conv);
        slot.notify.notify_waiters();
    }

    pub fn has_children(&self, i: usize) -> bool {
        self.has_children.get(i).copied().unwrap_or(false)
    }

    fn standalone(&self, i: usize) -> Conversation {
        let t = &self.requests[i];
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            link_parents(&reqs),
            vec![None, Some(0), Some(1), None, Some(0)],
            "unknown parents (not in the replay) make a turn a root"
        );
    }
}
