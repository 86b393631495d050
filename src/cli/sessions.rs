//! `--sessions` and the synthetic-session flags, shared by every load subcommand, and
//! their checks: `trace --sessions` replays the trace's own conversations; elsewhere
//! `--sessions` generates synthetic multi-turn sessions and the load counts sessions.

use clap::Args;

use super::load::LoadArgs;
use crate::client::openai::Api;
use crate::error::Error;
use crate::workload::chat::{MillisSpec, SessionSpec, ThinkDist};
use crate::workload::synthetic::LengthSpec;

/// Turns per session when `--turns` is not given.
pub const DEFAULT_TURNS: LengthSpec = LengthSpec::Fixed(4);

#[derive(Args, Debug, Clone, Default)]
pub struct SessionArgs {
    /// Multi-turn sessions. trace: send a Qwen turn whose parent is known as a
    /// continuation of the parent's conversation, at its timestamp or after the parent
    /// ends, whichever is later. Other modes: synthetic sessions, each turn a new
    /// --input-len input on top of the whole history (with the server's real answers);
    /// --num-requests then counts sessions, --concurrency active users, --rates session
    /// arrivals
    #[arg(long)]
    pub sessions: bool,
    /// --sessions: turns per session, N or LO:HI (drawn per session) [default: 4]
    #[arg(long, value_name = "N|LO:HI")]
    pub turns: Option<LengthSpec>,
    /// --sessions: think time between a turn's answer and the next turn, in ms: N or
    /// LO:HI (uniform) [default: 0]
    #[arg(long, value_name = "N|LO:HI")]
    pub think_time_ms: Option<MillisSpec>,
    /// --sessions: `fixed` (the --think-time-ms value, or uniform in LO:HI) or
    /// `exponential` (with that value as its mean) [default: fixed]
    #[arg(long, value_name = "DIST", value_parser = ["fixed", "exponential"])]
    pub think_time_dist: Option<String>,
    /// --sessions: one system prompt of exactly N tokens, shared by every session
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = super::values::positive_int::<u32>)]
    pub system_prompt_len: Option<u32>,
}

impl SessionArgs {
    /// The synthetic-session flags given, by name.
    fn synthetic_flags(&self) -> impl Iterator<Item = &'static str> {
        [
            (self.turns.is_some(), "--turns"),
            (self.think_time_ms.is_some(), "--think-time-ms"),
            (self.think_time_dist.is_some(), "--think-time-dist"),
            (self.system_prompt_len.is_some(), "--system-prompt-len"),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
    }
}

/// `trace`: only `--sessions` itself applies (the trace's own conversations).
pub(super) fn check_trace(s: &SessionArgs) -> Result<(), Error> {
    match s.synthetic_flags().next() {
        Some(flag) => Err(Error::Input(format!(
            "{flag} shapes synthetic sessions; trace --sessions replays the trace's own conversations (their turns, times and lengths)"
        ))),
        None => Ok(()),
    }
}

/// Synthetic sessions (`--sessions` in a mode other than trace), checked against the
/// other flags; `None` without `--sessions`.
pub(super) fn check(a: &LoadArgs) -> Result<Option<SessionSpec>, Error> {
    let s = &a.sessions;
    if !s.sessions {
        return match s.synthetic_flags().next() {
            Some(flag) => Err(Error::Input(format!(
                "{flag} shapes synthetic sessions: it needs --sessions"
            ))),
            None => Ok(None),
        };
    }
    let conflicts = [
        (
            a.dataset.is_some(),
            "--dataset",
            "its inputs are synthetic (--input-len)",
        ),
        (
            a.api == Some(Api::Embeddings),
            "--api embeddings",
            "a session's history grows with each answer, and an embeddings request generates none",
        ),
        (
            a.prompt_token_ids,
            "--prompt-token-ids",
            "a session's history is sent as text, with the answers the server generated",
        ),
        (
            a.tools.is_some(),
            "--tools",
            "a session's history carries the answers' text only, not tool calls",
        ),
        (
            a.tool_choice.is_some(),
            "--tool-choice",
            "a session's history carries the answers' text only, not tool calls",
        ),
        (
            a.shared_prefix.is_some(),
            "--shared-prefix",
            "a session's turns share its own history; --system-prompt-len gives every session one shared system prompt",
        ),
        (
            a.images.is_some(),
            "--images",
            "a session's later turns are built from its history when due, without images",
        ),
    ];
    if let Some((_, flag, why)) = conflicts.iter().find(|c| c.0) {
        return Err(Error::Input(format!(
            "--sessions and {flag} cannot be combined: {why}"
        )));
    }
    let think_dist = match s.think_time_dist.as_deref() {
        Some("exponential") => ThinkDist::Exponential,
        _ => ThinkDist::Fixed,
    };
    Ok(Some(SessionSpec {
        turns: s.turns.unwrap_or(DEFAULT_TURNS),
        think_ms: s.think_time_ms.unwrap_or(MillisSpec { lo: 0, hi: 0 }),
        think_dist,
        system_prompt_len: s.system_prompt_len,
    }))
}
