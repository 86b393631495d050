//! One trace line's fields: read shallowly (a wrong type becomes a message naming the
//! field) and checked against the line's format.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{TraceError, TraceFormat, TraceRequest};

/// One line's fields, each kept as whatever JSON value it held so that a wrong type
/// becomes a message naming the field rather than serde's generic one.
#[derive(serde::Deserialize)]
pub(super) struct RawLine<'a> {
    #[serde(default, borrow)]
    pub(super) chat_id: Val<'a>,
    #[serde(default, borrow)]
    pub(super) parent_chat_id: Val<'a>,
    #[serde(default, borrow)]
    pub(super) timestamp: Val<'a>,
    #[serde(default, borrow)]
    pub(super) input_length: Val<'a>,
    #[serde(default, borrow)]
    pub(super) output_length: Val<'a>,
    #[serde(default, borrow, rename = "type")]
    pub(super) kind: Val<'a>,
    #[serde(default, borrow)]
    pub(super) turn: Val<'a>,
    #[serde(default, borrow)]
    pub(super) hash_ids: Val<'a>,
}

/// A shallow JSON value. Lists are read as hash ids straight away (the only list a trace
/// line holds), so the hot path allocates nothing but the id vector.
#[derive(Debug, Default)]
pub(super) enum Val<'a> {
    #[default]
    Absent,
    Null,
    Bool(bool),
    U(u64),
    I(i64),
    F(f64),
    Str(Cow<'a, str>),
    /// Whole numbers ≥ 0, or the index and description of the first element that is not.
    List(Result<Vec<u64>, (usize, String)>),
    Object,
}

impl Val<'_> {
    pub(super) fn is_absent(&self) -> bool {
        matches!(self, Val::Absent)
    }

    /// A whole number ≥ 0; `40.0` counts, `40.5` and `-1` do not.
    fn whole(&self) -> Option<u64> {
        match *self {
            Val::U(n) => Some(n),
            Val::F(f) if f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 => Some(f as u64),
            _ => None,
        }
    }

    fn integer(&self) -> Option<i64> {
        match *self {
            Val::U(n) => i64::try_from(n).ok(),
            Val::I(n) => Some(n),
            Val::F(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(f as i64),
            _ => None,
        }
    }

    fn number(&self) -> Option<f64> {
        match *self {
            Val::U(n) => Some(n as f64),
            Val::I(n) => Some(n as f64),
            Val::F(f) => Some(f),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Val::Absent => "nothing".into(),
            Val::Null => "null".into(),
            Val::Bool(b) => b.to_string(),
            Val::U(n) => n.to_string(),
            Val::I(n) => n.to_string(),
            // Debug keeps 1e300 short and shows 40.0 as a float.
            Val::F(f) => format!("{f:?}"),
            Val::Str(s) if s.chars().count() > 40 => {
                format!("the string {:?}…", s.chars().take(40).collect::<String>())
            }
            Val::Str(s) => format!("the string {s:?}"),
            Val::List(_) => "a list".into(),
            Val::Object => "an object".into(),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Val<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValVisitor)
    }
}

pub(super) struct ValVisitor;

impl<'de> Visitor<'de> for ValVisitor {
    type Value = Val<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Val::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Val::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Val::Bool(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Val::U(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(if v >= 0 { Val::U(v as u64) } else { Val::I(v) })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Val::F(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut ids = Vec::with_capacity(seq.size_hint().unwrap_or(64));
        let mut first_bad = None;
        let mut index = 0;
        while let Some(v) = seq.next_element::<Val<'de>>()? {
            match v.whole() {
                Some(id) if first_bad.is_none() => ids.push(id),
                Some(_) => {}
                None => {
                    first_bad.get_or_insert_with(|| (index, v.describe()));
                }
            }
            index += 1;
        }
        Ok(Val::List(match first_bad {
            None => Ok(ids),
            Some(bad) => Err(bad),
        }))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Val::Object)
    }
}

/// Checks one line's fields against its format; errors name the file, line and field.
pub(super) struct LineCheck<'p> {
    pub path: &'p Path,
    pub line: usize,
    pub format: TraceFormat,
}

impl LineCheck<'_> {
    /// The request a line describes.
    pub fn request(&self, raw: RawLine<'_>) -> Result<TraceRequest, TraceError> {
        let timestamp_us = self.timestamp_us(raw.timestamp)?;
        // Lengths are u32 and at least 1: a request has a prompt and makes a token.
        let input_len = self.length(
            raw.input_length,
            "input_length",
            "a whole number of prompt tokens ≥ 1",
        )?;
        let output_len = self.length(
            raw.output_length,
            "output_length",
            "a whole number ≥ 1 (a request must generate at least 1 token)",
        )?;
        let hash_ids = self.hash_ids(raw.hash_ids)?;
        let mut req = TraceRequest {
            line: self.line,
            timestamp_us,
            input_len,
            output_len,
            hash_ids,
            chat_id: None,
            parent_chat_id: None,
            turn: None,
            kind: None,
            replaced: Default::default(),
        };
        if self.format == TraceFormat::Qwen {
            self.qwen_fields(
                raw.chat_id,
                raw.parent_chat_id,
                raw.turn,
                raw.kind,
                &mut req,
            )?;
        }
        Ok(req)
    }

    fn present<'a>(&self, v: Val<'a>, field: &'static str) -> Result<Val<'a>, TraceError> {
        if v.is_absent() {
            Err(TraceError::Missing {
                path: self.path.to_path_buf(),
                line: self.line,
                field,
                format: self.format,
            })
        } else {
            Ok(v)
        }
    }

    fn bad(&self, field: &'static str, expected: &'static str, found: String) -> TraceError {
        TraceError::Field {
            path: self.path.to_path_buf(),
            line: self.line,
            field,
            expected,
            found,
        }
    }

    fn length(
        &self,
        v: Val<'_>,
        field: &'static str,
        expected: &'static str,
    ) -> Result<u32, TraceError> {
        let v = self.present(v, field)?;
        match v.whole() {
            Some(n @ 1..=0xFFFF_FFFF) => Ok(n as u32),
            _ => Err(self.bad(field, expected, v.describe())),
        }
    }

    fn timestamp_us(&self, v: Val<'_>) -> Result<u64, TraceError> {
        let timestamp = self.present(v, "timestamp")?;
        match self.format {
            TraceFormat::Mooncake => {
                const EXPECTED: &str = "whole milliseconds ≥ 0 (Qwen traces use float seconds)";
                timestamp
                    .whole()
                    .and_then(|ms| ms.checked_mul(1000))
                    .ok_or_else(|| self.bad("timestamp", EXPECTED, timestamp.describe()))
            }
            // Only JSON formats reach here: Qwen's float seconds.
            _ => {
                // Checked before rounding, so -0.0000001 s is an error, not 0 µs.
                let us = timestamp
                    .number()
                    .filter(|&s| s >= 0.0)
                    .map(|s| (s * 1e6).round());
                // 1.8e19 µs is below u64::MAX, and any real trace is far shorter.
                match us {
                    Some(us) if us.is_finite() && (0.0..1.8e19).contains(&us) => Ok(us as u64),
                    _ => Err(self.bad("timestamp", "seconds ≥ 0 (a number)", timestamp.describe())),
                }
            }
        }
    }

    fn hash_ids(&self, v: Val<'_>) -> Result<Vec<u64>, TraceError> {
        const EXPECTED: &str = "a list of whole numbers ≥ 0";
        match self.present(v, "hash_ids")? {
            Val::List(Ok(ids)) => Ok(ids),
            Val::List(Err((index, found))) => {
                Err(self.bad("hash_ids", EXPECTED, format!("{found} at index {index}")))
            }
            v => Err(self.bad("hash_ids", EXPECTED, v.describe())),
        }
    }

    /// The fields only Qwen lines have, checked in this order.
    fn qwen_fields(
        &self,
        chat_id: Val<'_>,
        parent: Val<'_>,
        turn: Val<'_>,
        kind: Val<'_>,
        req: &mut TraceRequest,
    ) -> Result<(), TraceError> {
        let chat_id = self.present(chat_id, "chat_id")?;
        req.chat_id = Some(
            chat_id
                .integer()
                .ok_or_else(|| self.bad("chat_id", "an integer", chat_id.describe()))?,
        );
        let parent = self.present(parent, "parent_chat_id")?;
        req.parent_chat_id = Some(parent.integer().filter(|&p| p >= -1).ok_or_else(|| {
            self.bad(
                "parent_chat_id",
                "an integer (-1 for a first turn)",
                parent.describe(),
            )
        })?);
        let turn = self.present(turn, "turn")?;
        req.turn = Some(
            turn.whole()
                .and_then(|t| u32::try_from(t).ok())
                .ok_or_else(|| self.bad("turn", "a whole number ≥ 0", turn.describe()))?,
        );
        req.kind = Some(match self.present(kind, "type")? {
            Val::Str(s) => s.into_owned(),
            v => {
                return Err(self.bad(
                    "type",
                    "a string (text, search, image or file)",
                    v.describe(),
                ));
            }
        });
        Ok(())
    }
}
