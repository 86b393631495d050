//! One synthetic session, turn by turn (`--sessions`): turn k+1 resends the history —
//! [system], user₀, assistant₀ (the text the server generated), …, userₖ₊₁ — as a chat
//! `messages` list (the completions API gets it flattened). Its input tokens are the
//! client's count of the whole history: the planned inputs' exact counts plus each
//! answer's (the server's usage, else the client's tokenizer). The history lives only
//! while its session runs.
//!
//! A failed turn ends its session: the user gave up (the turns after it are not sent,
//! so the records hold the turns that were).

use std::sync::Arc;

use super::chat::messages_json;
use super::prepare::PreparedRequest;
use super::sessions::counted_answer;
use super::{EncodeBody, Prompt, Tokenizer};
use crate::record::RequestTag;
use crate::schedule::{ChatTurn, Conversations, SendChat, Sent, TurnFuture};

/// Runs the sessions of one run.
pub struct ChatSessions {
    body: Box<dyn EncodeBody + Send>,
    tokenizer: Tokenizer,
}

impl ChatSessions {
    pub fn new(body: impl EncodeBody + Send + 'static, tokenizer: Tokenizer) -> Self {
        ChatSessions {
            body: Box::new(body),
            tokenizer,
        }
    }

    async fn run_session(&self, first: &PreparedRequest, send: SendChat<'_>) {
        let Some(plan) = &first.chat else { return };
        let mut turn = ChatTurn {
            id: plan.first_id,
            body: first.body.clone(),
            input_tokens: first.input_tokens,
            tag: first.tag.clone(),
            think_us: 0,
            max_tokens: first.max_tokens,
        };
        let mut history = plan.opening.clone();
        let mut tokens = first.input_tokens;
        for (k, next) in (1u32..).zip(&plan.later) {
            let Sent::Answered(answer) = send(turn).await else {
                return;
            };
            let Some((n, text)) = counted_answer(&self.tokenizer, answer).await else {
                return;
            };
            history.push(("assistant", Arc::from(text)));
            history.push(("user", next.input.clone()));
            // Two more messages: with a flattened history, two more line ends.
            let joins = 2 * super::chat::separator_tokens(&*self.body, &self.tokenizer);
            tokens = tokens
                .saturating_add(n)
                .saturating_add(next.tokens)
                .saturating_add(joins);
            let messages = messages_json(&history);
            let prompt = Prompt::Messages(&messages);
            let model = first.tag.model.as_ref();
            let body = super::model_pick::encode(&*self.body, model, prompt, next.max_tokens, None);
            turn = ChatTurn {
                id: plan.first_id + u64::from(k),
                body,
                input_tokens: tokens,
                tag: RequestTag {
                    turn: Some(k),
                    ..first.tag.clone()
                },
                think_us: next.think_us,
                max_tokens: next.max_tokens,
            };
        }
        send(turn).await;
    }
}

impl Conversations for ChatSessions {
    fn run<'a>(&'a self, first: &'a PreparedRequest, send: SendChat<'a>) -> TurnFuture<'a> {
        Box::pin(self.run_session(first, send))
    }
}
