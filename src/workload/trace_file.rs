//! A trace replayed as a stream: one pass checks every line and counts what the run
//! needs to know in advance (requests, first timestamp, output tokens); each replay then
//! reads the file again, so a million-line trace never sits in memory.

use std::path::{Path, PathBuf};

use super::trace::{LeftOut, TraceError, TraceFormat, TraceReader, TraceRequest};
use super::trace_reshape::{Conversations, Reshape};

/// What to do with a request longer than `--max-context`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Shorten the prompt (and the output if it alone is too long) to fit
    Clip,
    /// Leave the request out
    Skip,
}

/// `--max-context`: every request must fit `max_context` tokens, input + output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fit {
    pub max_context: u32,
    pub overflow: Overflow,
    pub block_size: usize,
}

/// How many requests `--max-context` changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fitted {
    pub clipped: usize,
    pub skipped: usize,
}

impl Fit {
    /// Make `r` fit: false if it is to be left out. Clipping shortens the prompt first,
    /// the output only if it alone does not fit, and keeps the hash ids that still cover
    /// the prompt.
    pub fn apply(&self, r: &mut TraceRequest, fitted: &mut Fitted) -> bool {
        if r.input_len as u64 + r.output_len as u64 <= self.max_context as u64 {
            return true;
        }
        match self.overflow {
            Overflow::Skip => {
                fitted.skipped += 1;
                false
            }
            Overflow::Clip => {
                fitted.clipped += 1;
                r.output_len = r.output_len.min(self.max_context.saturating_sub(1).max(1));
                r.input_len = self.max_context.saturating_sub(r.output_len).max(1);
                r.hash_ids
                    .truncate((r.input_len as usize).div_ceil(self.block_size));
                true
            }
        }
    }
}

/// What one pass over the trace found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceScan {
    /// Requests to replay (after `--limit` and `--max-context`).
    pub requests: usize,
    /// Their first timestamp (a trace is sorted), the replay's zero.
    pub first_us: u64,
    pub last_us: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// The same, counting the file's own lengths where `--input-len`/`--output-len`
    /// replaced them.
    pub own_input_tokens: u64,
    pub own_output_tokens: u64,
    pub fitted: Fitted,
    /// CSV rows never counted as requests (before `--limit`).
    pub left_out: LeftOut,
}

/// How a trace is read: which of its requests, and changed how.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// Forced; else recognised from the file.
    pub format: Option<TraceFormat>,
    pub limit: Option<usize>,
    /// `--input-len`, `--output-len`, `--prompts`: applied to each request read, before
    /// `fit`.
    pub reshape: Reshape,
    /// Draws the replaced lengths.
    pub seed: u64,
    /// Tokens per hash id, where the lengths are replaced; else the format's.
    pub block_size: Option<usize>,
    pub fit: Option<Fit>,
    /// `--model-filter` (BurstGPT).
    pub model: Option<String>,
    /// `--sessions`: a replaced input length is each turn's own text.
    pub sessions: bool,
}

/// A trace file to replay, checked whole by `scan`.
#[derive(Clone, Debug)]
pub struct TraceFile {
    path: PathBuf,
    format: TraceFormat,
    options: ReadOptions,
    scan: TraceScan,
    /// A few of the models the rows named (BurstGPT), for messages.
    models_seen: Vec<String>,
}

impl TraceFile {
    /// Read the whole trace once (up to `options.limit` requests), checking every line,
    /// and remember what was found. Holds one line at a time. `None` when `stop` said so
    /// before the end (a signal).
    pub fn scan(
        path: &Path,
        options: &ReadOptions,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<TraceFile>, TraceError> {
        if options.limit == Some(0) {
            return Err(TraceError::ZeroLimit {
                path: path.to_path_buf(),
            });
        }
        let mut reader = TraceReader::open(path, options.format)?;
        reader.filter_model(options.model.clone());
        let mut file = TraceFile {
            path: path.to_path_buf(),
            format: reader.format(),
            options: options.clone(),
            scan: TraceScan::default(),
            models_seen: Vec::new(),
        };
        let mut scan = TraceScan::default();
        let mut requests = file.stream(reader);
        for r in requests.by_ref() {
            if stop() {
                return Ok(None);
            }
            let r = r?;
            if scan.requests == 0 {
                scan.first_us = r.timestamp_us;
            }
            scan.last_us = r.timestamp_us;
            scan.requests += 1;
            scan.input_tokens += r.input_len as u64;
            scan.output_tokens += r.output_len as u64;
            scan.own_input_tokens += r.replaced.input_len.unwrap_or(r.input_len) as u64;
            scan.own_output_tokens += r.replaced.output_len.unwrap_or(r.output_len) as u64;
        }
        scan.fitted = requests.fitted;
        scan.left_out = requests.reader.left_out();
        file.models_seen = requests.reader.models_seen().to_vec();
        file.scan = scan;
        Ok(Some(file))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn format(&self) -> TraceFormat {
        self.format
    }

    pub fn info(&self) -> &TraceScan {
        &self.scan
    }

    /// A few of the models the rows named (BurstGPT).
    pub fn models_seen(&self) -> &[String] {
        &self.models_seen
    }

    /// The requests again, fitted, one at a time. The file is read anew, so an error
    /// here means it changed since `scan`.
    pub fn requests(&self) -> Result<TraceStream, TraceError> {
        let mut reader = TraceReader::open(&self.path, Some(self.format))?;
        reader.filter_model(self.options.model.clone());
        Ok(self.stream(reader))
    }

    /// Every request, in memory (for `--sessions`, which links turns across the trace).
    pub fn load(&self) -> Result<Vec<TraceRequest>, TraceError> {
        self.requests()?.collect()
    }

    fn stream(&self, reader: TraceReader) -> TraceStream {
        let o = &self.options;
        TraceStream {
            reader,
            left: o.limit.unwrap_or(usize::MAX),
            read: 0,
            reshape: o.reshape,
            seed: o.seed,
            block_size: o.block_size.unwrap_or(self.format.block_size()),
            conversations: (o.sessions && o.reshape.input_len.is_some())
                .then(Conversations::default),
            fit: o.fit,
            fitted: Fitted::default(),
        }
    }
}

/// A trace's requests after `--limit`, the lengths replaced and `--max-context`.
pub struct TraceStream {
    reader: TraceReader,
    left: usize,
    /// Requests read so far: the next one's position, which its drawn lengths follow.
    read: u64,
    reshape: Reshape,
    seed: u64,
    block_size: usize,
    /// `--sessions` with `--input-len`: where each conversation stands.
    conversations: Option<Conversations>,
    fit: Option<Fit>,
    fitted: Fitted,
}

impl Iterator for TraceStream {
    type Item = Result<TraceRequest, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.left > 0 {
            self.left -= 1;
            let mut r = match self.reader.next()? {
                Ok(r) => r,
                Err(e) => return Some(Err(e)),
            };
            let history = self.conversations.as_ref().map_or(0, |c| c.history(&r));
            self.reshape
                .apply(self.seed, self.block_size, self.read, history, &mut r);
            self.read += 1;
            if let Some(f) = self.fit
                && !f.apply(&mut r, &mut self.fitted)
            {
                continue;
            }
            if let Some(c) = &mut self.conversations {
                c.read(&r);
            }
            return Some(Ok(r));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(input: u32, output: u32, blocks: usize) -> TraceRequest {
        TraceRequest {
            line: 1,
            timestamp_us: 0,
            input_len: input,
            output_len: output,
            hash_ids: (0..blocks as u64).collect(),
            chat_id: None,
            parent_chat_id: None,
            turn: None,
            kind: None,
            replaced: Default::default(),
        }
    }

    fn fit_all(overflow: Overflow) -> (Vec<TraceRequest>, Fitted) {
        let fit = Fit {
            max_context: 500,
            overflow,
            block_size: 16,
        };
        let mut fitted = Fitted::default();
        let kept = [req(100, 10, 7), req(1000, 50, 63), req(10, 5000, 1)]
            .into_iter()
            .filter_map(|mut r| fit.apply(&mut r, &mut fitted).then_some(r))
            .collect();
        (kept, fitted)
    }

    #[test]
    fn clip_and_skip() {
        let (clip, f) = fit_all(Overflow::Clip);
        assert_eq!(
            f,
            Fitted {
                clipped: 2,
                skipped: 0
            }
        );
        assert_eq!((clip[0].input_len, clip[0].output_len), (100, 10));
        assert_eq!((clip[1].input_len, clip[1].output_len), (450, 50));
        assert_eq!(clip[1].hash_ids.len(), 29, "ceil(450 / 16) blocks kept");
        assert_eq!((clip[2].input_len, clip[2].output_len), (1, 499));
        let (skip, f) = fit_all(Overflow::Skip);
        assert_eq!(
            f,
            Fitted {
                clipped: 0,
                skipped: 2
            }
        );
        assert_eq!(skip.len(), 1);
    }

    #[test]
    fn scan_counts_what_each_replay_reads_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let line = |ts: u64, input: u32, output: u32| {
            format!(
                r#"{{"timestamp": {ts}, "input_length": {input}, "output_length": {output}, "hash_ids": [1, 2]}}"#
            )
        };
        let text = [
            line(1000, 600, 10),
            line(1500, 100, 20),
            line(2500, 2000, 30),
            line(4000, 50, 40),
        ]
        .join("\n");
        std::fs::write(&path, text).unwrap();
        let fit = Fit {
            max_context: 1000,
            overflow: Overflow::Skip,
            block_size: 512,
        };
        let options = ReadOptions {
            limit: Some(3),
            fit: Some(fit),
            ..ReadOptions::default()
        };
        let file = TraceFile::scan(&path, &options, &|| false)
            .unwrap()
            .unwrap();
        assert_eq!(
            *file.info(),
            TraceScan {
                requests: 2,
                first_us: 1_000_000,
                last_us: 1_500_000,
                input_tokens: 700,
                output_tokens: 30,
                own_input_tokens: 700,
                own_output_tokens: 30,
                fitted: Fitted {
                    clipped: 0,
                    skipped: 1
                },
                left_out: LeftOut::default(),
            },
            "the limit counts lines read; the skipped third line was one of them"
        );
        let again: Vec<u32> = file
            .requests()
            .unwrap()
            .map(|r| r.unwrap().input_len)
            .collect();
        assert_eq!(again, [600, 100]);
        assert_eq!(file.load().unwrap().len(), 2);
        let all = TraceFile::scan(&path, &ReadOptions::default(), &|| false)
            .unwrap()
            .unwrap();
        assert_eq!((all.info().requests, all.info().last_us), (4, 4_000_000));
        // A signal ends the scan: no half-checked trace comes out.
        let seen = std::cell::Cell::new(0);
        let stop = || {
            seen.set(seen.get() + 1);
            seen.get() > 2
        };
        assert!(
            TraceFile::scan(&path, &ReadOptions::default(), &stop)
                .unwrap()
                .is_none()
        );
        assert_eq!(seen.get(), 3, "stopped at the third line");
    }

    #[test]
    fn a_bad_line_anywhere_fails_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let mut text = String::new();
        for i in 0..1000 {
            text.push_str(&format!(
                "{{\"timestamp\": {i}, \"input_length\": 5, \"output_length\": 1, \"hash_ids\": [1]}}\n"
            ));
        }
        text.push_str("{\"timestamp\": 5, \"input_length\": 5}\n");
        std::fs::write(&path, text).unwrap();
        let e = TraceFile::scan(&path, &ReadOptions::default(), &|| false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.jsonl:1001"), "{e}");
    }
}
