//! ShareGPT conversations to prompts.

use std::fmt;

use serde::de::{Deserializer as _, SeqAccess, Visitor};
use serde_json::{Value, json};

use super::job::SharegptJob;
use super::{ConvertError, ConvertReport, finish, lines, read, without_line, without_position};
use crate::workload::dataset::{Role, describe, describe_opt, sharegpt_turn};

const SHAREGPT_SHAPE: &str =
    "a JSON list of {\"id\", \"conversations\": [{\"from\", \"value\"}]} objects, or one per line";

/// Converts ShareGPT conversations; entries with no usable human turn are skipped.
pub fn sharegpt(args: &SharegptJob) -> Result<ConvertReport, ConvertError> {
    let mut report = ConvertReport {
        output: args.output.clone(),
        ..ConvertReport::default()
    };
    let file = args.input.display().to_string();
    let bytes = read(&args.input)?;
    let mut prompts = Vec::new();
    let mut take = |location: String, value: Value, report: &mut ConvertReport| {
        report.read += 1;
        match sharegpt_prompt(value, args.multi_turn) {
            Ok(line) => prompts.push(line),
            Err(reason) => report.skip(&location, &reason),
        }
    };
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        // Streamed entry by entry: ShareGPT files run to hundreds of MB.
        let mut n = 0usize;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let res = (&mut de)
            .deserialize_seq(EachEntry(&mut |value: Value| {
                n += 1;
                take(format!("{file}: entry {n}"), value, &mut report);
            }))
            .and_then(|()| de.end());
        if let Err(e) = res {
            return Err(ConvertError::Syntax {
                location: format!("{file}:{}:{}", e.line(), e.column()),
                expected: SHAREGPT_SHAPE,
                detail: without_position(&e),
            });
        }
    } else {
        for (i, line) in lines(&bytes) {
            let location = format!("{file}:{}", i + 1);
            let value = serde_json::from_slice(line).map_err(|e| ConvertError::Syntax {
                location: location.clone(),
                expected: SHAREGPT_SHAPE,
                detail: without_line(&e),
            })?;
            take(location, value, &mut report);
        }
    }
    if report.read == 0 {
        return Err(ConvertError::Empty {
            file,
            expected: SHAREGPT_SHAPE,
        });
    }
    finish(report, prompts, args.sample)
}

/// Calls a function on each element of a JSON list.
struct EachEntry<'f>(&'f mut dyn FnMut(Value));

impl<'de> Visitor<'de> for EachEntry<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(SHAREGPT_SHAPE)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(value) = seq.next_element::<Value>()? {
            (self.0)(value);
        }
        Ok(())
    }
}

/// One output line for a ShareGPT entry, or why it is skipped.
///
/// Every turn is checked in both modes, so the same entries survive either way. In
/// multi-turn mode, answers before the first question are dropped (ShareGPT's split
/// conversations often start with one), and a conversation whose turns then do not
/// alternate user/assistant is skipped: strict chat templates reject it, and the
/// failure would be counted against the server.
fn sharegpt_prompt(value: Value, multi_turn: bool) -> Result<String, String> {
    let Value::Object(mut map) = value else {
        return Err(format!("not an object but {}", describe(&value)));
    };
    let turns = match map.remove("conversations") {
        Some(Value::Array(t)) if !t.is_empty() => t,
        other => {
            return Err(format!(
                "\"conversations\" must be a non-empty list, found {}",
                describe_opt(other.as_ref())
            ));
        }
    };
    let mut parsed = Vec::with_capacity(turns.len());
    for (i, turn) in turns.into_iter().enumerate() {
        let n = i + 1;
        let Value::Object(mut turn) = turn else {
            return Err(format!("turn {n} is {}", describe(&turn)));
        };
        let (role, text) = sharegpt_turn(n, &mut turn)?;
        parsed.push((n, role, text));
    }
    let Some(first_user) = parsed.iter().position(|t| t.1 == Role::User) else {
        return Err("no human turn".into());
    };
    if !multi_turn {
        let (n, _, text) = parsed.swap_remove(first_user);
        if text.trim().is_empty() {
            return Err(format!("turn {n}: the first human turn is empty"));
        }
        return Ok(json!({ "text": text }).to_string());
    }
    // Keep system turns before the first question; drop answers before it.
    let mut kept: Vec<(usize, Role, String)> = Vec::with_capacity(parsed.len());
    for (i, t) in parsed.into_iter().enumerate() {
        if i >= first_user || t.1 == Role::System {
            kept.push(t);
        }
    }
    // Turns after the last question are the answer the model is to give.
    let Some(last_user) = kept.iter().rposition(|t| t.1 == Role::User) else {
        return Err("no human turn".into());
    };
    kept.truncate(last_user + 1);
    if kept[last_user].2.trim().is_empty() {
        return Err(format!(
            "turn {}: the last human turn is empty",
            kept[last_user].0
        ));
    }
    let mut expect = Role::User;
    for (n, role, _) in kept.iter().filter(|t| t.1 != Role::System) {
        if *role != expect {
            return Err(format!(
                "turn {n}: two {} turns in a row (roles must alternate)",
                role.openai()
            ));
        }
        expect = if expect == Role::User {
            Role::Assistant
        } else {
            Role::User
        };
    }
    let messages: Vec<Value> = kept
        .into_iter()
        .map(|(_, role, text)| json!({ "role": role.openai(), "content": text }))
        .collect();
    Ok(json!({ "messages": messages }).to_string())
}
