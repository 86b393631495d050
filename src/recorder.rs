//! The recorder: one thread that turns finished requests into records, appends them to
//! requests.jsonl as they arrive (an interrupted run keeps everything that finished) and
//! keeps the compact data summaries are computed from. Request tasks only hand over
//! their outcome; counting tokens and writing happen here, off the async runtime.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use crate::client::Outcome;
use crate::metrics::RunData;
use crate::phases::Phases;
use crate::record::{RequestRecord, TokenSource};
use crate::workload::Tokenizer;

/// A finished request, as the request task hands it over.
pub struct Finished {
    pub run: Arc<str>,
    pub id: u64,
    pub scheduled_at: Option<u64>,
    /// Time spent waiting for a concurrency slot (µs), when a cap holds requests back.
    pub queue_wait: Option<u64>,
    pub input_tokens: u32,
    pub outcome: Outcome,
    /// Sent during the run's warm-up: recorded, flagged, in no statistic.
    pub warmup: bool,
    /// Session, turn and model of the request (the workload's `PreparedRequest::tag`).
    pub tag: crate::record::RequestTag,
    /// Its `max_tokens` when sent with `ignore_eos` (the record's field).
    pub expected_output_tokens: Option<u32>,
}

enum Msg {
    Request(Box<Finished>),
    /// All requests of the run were handed over: return its data.
    EndRun(Sender<Result<RunData, String>>),
}

/// Cheap to clone; hand one to every request task.
#[derive(Clone)]
pub struct RecorderHandle {
    tx: Sender<Msg>,
}

impl RecorderHandle {
    pub fn submit(&self, f: Finished) {
        // The recorder outlives every run; a closed channel only happens on shutdown.
        let _ = self.tx.send(Msg::Request(Box::new(f)));
    }

    /// Wait for the records handed over so far and take the run's data.
    pub fn end_run(&self) -> Result<RunData, String> {
        let (tx, rx) = channel();
        self.tx
            .send(Msg::EndRun(tx))
            .map_err(|_| "the recorder stopped".to_string())?;
        rx.recv().map_err(|_| "the recorder stopped".to_string())?
    }
}

pub struct Recorder {
    handle: RecorderHandle,
    thread: Option<JoinHandle<()>>,
}

impl Recorder {
    /// `jsonl`: where to append records (created, truncated), or `None` to keep them in
    /// memory only.
    pub fn start(jsonl: Option<&Path>, counting: TextCounting) -> std::io::Result<Recorder> {
        let file = match jsonl {
            Some(p) => Some((p.to_path_buf(), File::create(p)?)),
            None => None,
        };
        Self::spawn(file, counting)
    }

    /// As `start`, adding to the end of `jsonl` (created if missing): `--append`.
    pub fn start_appending(jsonl: &Path, counting: TextCounting) -> std::io::Result<Recorder> {
        let file = File::options().create(true).append(true).open(jsonl)?;
        Self::spawn(Some((jsonl.to_path_buf(), file)), counting)
    }

    fn spawn(file: Option<(PathBuf, File)>, counting: TextCounting) -> std::io::Result<Recorder> {
        let file = file.map(|(p, f)| (p, BufWriter::new(f)));
        let (tx, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || record_loop(rx, file, counting))?;
        Ok(Recorder {
            handle: RecorderHandle { tx },
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> RecorderHandle {
        self.handle.clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Closing our sender ends the loop once every handle is gone.
        let (tx, _) = channel();
        self.handle = RecorderHandle { tx };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// When the generated text is counted with the client's tokenizer.
#[derive(Clone, Debug)]
pub struct TextCounting {
    pub tokenizer: Tokenizer,
    /// Also when the server reports usage, to show the gap between the two counts.
    /// Off by default: tokenizing every response was a fifth of the client's CPU.
    pub always: bool,
    /// Requests carry images, which the client cannot count: a request's input tokens
    /// are the server's `usage.prompt_tokens` when it reports them.
    pub usage_input: bool,
}

fn record_loop(
    rx: Receiver<Msg>,
    mut file: Option<(PathBuf, BufWriter<File>)>,
    counting: TextCounting,
) {
    let mut data = RunData::default();
    let mut line = String::with_capacity(4096);
    let mut write_error: Option<String> = None;
    // A server tokenizer counts after the run, batched: a tokenize call while requests
    // are measured would load the server being measured.
    let mut deferred: Vec<Finished> = Vec::new();
    while let Ok(msg) = rx.recv() {
        let mut next = Some(msg);
        // Drain whatever is queued before flushing: one write per burst, not per record.
        while let Some(mut msg) = next.take() {
            if let Msg::Request(f) = &mut msg {
                usage_input(f, &counting);
            }
            let mut keep = |rec: RequestRecord, data: &mut RunData| {
                write_line(&mut file, &mut line, &rec, &mut write_error);
                data.push(&rec);
            };
            match msg {
                Msg::Request(f) if counting.tokenizer.is_server() && counts_text(&f, &counting) => {
                    deferred.push(*f);
                }
                Msg::Request(f) => {
                    let text_tokens = text_tokens(&f, &counting);
                    keep(to_record(*f, text_tokens), &mut data);
                }
                Msg::EndRun(reply) => {
                    for (f, n) in count_deferred(std::mem::take(&mut deferred), &counting) {
                        keep(to_record(f, n), &mut data);
                    }
                    flush(&mut file, &mut write_error);
                    let result = match write_error.take() {
                        Some(e) => Err(format!("cannot write requests: {e}")),
                        None => Ok(std::mem::take(&mut data)),
                    };
                    let _ = reply.send(result);
                }
            }
            next = rx.try_recv().ok();
        }
        flush(&mut file, &mut write_error);
    }
    // The run ended without its EndRun (an error, a stop): what was held for the server
    // tokenizer is written with its event count rather than lost.
    for f in deferred {
        write_line(&mut file, &mut line, &to_record(f, None), &mut write_error);
    }
    flush(&mut file, &mut write_error);
}

/// One requests.jsonl line; the first write error is kept for the run's end.
fn write_line(
    file: &mut Option<(PathBuf, BufWriter<File>)>,
    line: &mut String,
    rec: &RequestRecord,
    err: &mut Option<String>,
) {
    if let Some((path, w)) = file {
        line.clear();
        rec.write_json_line(line);
        if let Err(e) = w.write_all(line.as_bytes()) {
            err.get_or_insert(format!("{}: {e}", path.display()));
        }
    }
}

fn flush(file: &mut Option<(PathBuf, BufWriter<File>)>, err: &mut Option<String>) {
    if let Some((path, w)) = file
        && let Err(e) = w.flush()
    {
        err.get_or_insert(format!("{}: {e}", path.display()));
    }
}

/// Whether the generated text is to be counted: usage is missing, or always asked.
fn counts_text(f: &Finished, counting: &TextCounting) -> bool {
    let o = &f.outcome;
    let no_usage = o.usage.as_ref().and_then(|u| u.completion_tokens).is_none();
    (counting.always || no_usage) && !o.text.is_empty()
}

fn text_tokens(f: &Finished, counting: &TextCounting) -> Option<u32> {
    counts_text(f, counting).then(|| counting.tokenizer.count(&f.outcome.text) as u32)
}

/// The texts held back for a server tokenizer, counted in one batched exchange; a
/// failed exchange leaves them to the event count (the warning says why, once).
fn count_deferred(held: Vec<Finished>, counting: &TextCounting) -> Vec<(Finished, Option<u32>)> {
    if held.is_empty() {
        return Vec::new();
    }
    let texts: Vec<&str> = held.iter().map(|f| f.outcome.text.as_str()).collect();
    let counts: Vec<Option<u32>> = match counting.tokenizer.try_count_many(&texts) {
        Ok(n) => n.into_iter().map(|n| Some(n as u32)).collect(),
        Err(e) => {
            errln!(
                "WARNING: {} could not count the output of {} requests ({}); their output tokens are events instead",
                counting.tokenizer.name(),
                held.len(),
                crate::console::printable(&e)
            );
            vec![None; held.len()]
        }
    };
    held.into_iter().zip(counts).collect()
}

/// With images, the input tokens are the server's: the client counted text only.
fn usage_input(f: &mut Finished, counting: &TextCounting) {
    if let Some(p) = f.outcome.usage.and_then(|u| u.prompt_tokens)
        && counting.usage_input
    {
        f.input_tokens = p;
    }
}

/// Token counts by the metrics spec: the server's usage, else the tokenizer's count of
/// the generated text, else the number of output events.
fn to_record(f: Finished, text_tokens: Option<u32>) -> RequestRecord {
    let o = f.outcome;
    let usage = o.usage.unwrap_or_default();
    let (output_tokens, source) = match (usage.completion_tokens, text_tokens) {
        (Some(n), _) => (n, TokenSource::Usage),
        (None, Some(n)) => (n, TokenSource::Tokenizer),
        (None, None) => (o.events.len() as u32, TokenSource::Events),
    };
    let (failure, error) = match o.failure {
        Some((k, m)) => (Some(k), Some(m)),
        None => (None, None),
    };
    RequestRecord {
        run: f.run,
        id: f.id,
        scheduled_at: f.scheduled_at,
        queue_wait: f.queue_wait,
        started_at: o.started_at,
        ended_at: o.ended_at,
        phases: phases(o.phases, usage.reasoning_tokens()),
        events: o.events,
        input_tokens: f.input_tokens,
        prompt_tokens: usage.prompt_tokens,
        cached_tokens: usage.prompt_tokens_details.and_then(|d| d.cached_tokens),
        output_tokens,
        output_tokens_source: source,
        text_tokens,
        failure,
        error,
        http_status: o.http_status,
        retries: o.retries,
        inputs: o.inputs,
        warmup: f.warmup,
        tag: f.tag,
        server_timings: o.server_timings.map(|t| *t),
        expected_output_tokens: f.expected_output_tokens,
    }
}

/// A record's phases: kept only when some output was not answer text.
fn phases(mut p: Phases, usage_reasoning: Option<u32>) -> Option<Phases> {
    p.usage_reasoning_tokens = usage_reasoning;
    (!p.is_plain()).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::openai::Usage;
    use crate::record::FailureKind;

    fn finished(id: u64, usage: Option<Usage>, text: &str, events: Vec<u64>) -> Finished {
        Finished {
            run: Arc::from("r"),
            id,
            scheduled_at: None,
            queue_wait: None,
            input_tokens: 4,
            outcome: Outcome {
                started_at: 0,
                ended_at: 100,
                events,
                usage,
                text: text.into(),
                ..Outcome::default()
            },
            warmup: false,
            tag: Default::default(),
            expected_output_tokens: None,
        }
    }

    fn counted(f: Finished, c: &TextCounting) -> RequestRecord {
        let n = text_tokens(&f, c);
        to_record(f, n)
    }

    fn counting(always: bool) -> TextCounting {
        TextCounting {
            usage_input: false,
            tokenizer: Tokenizer::builtin(),
            always,
        }
    }

    #[test]
    fn token_sources_in_order_of_preference() {
        let tok = Tokenizer::builtin();
        let c = counting(false);
        let usage = Usage {
            completion_tokens: Some(9),
            prompt_tokens: Some(6),
            ..Usage::default()
        };
        let r = counted(finished(0, Some(usage), "a b", vec![1, 2]), &c);
        assert_eq!(
            (r.output_tokens, r.output_tokens_source),
            (9, TokenSource::Usage)
        );
        assert_eq!(r.prompt_tokens, Some(6));
        assert_eq!(
            r.text_tokens, None,
            "usage given: the text is not tokenized"
        );
        let r = counted(finished(0, Some(usage), "a b", vec![1, 2]), &counting(true));
        assert_eq!(r.output_tokens_source, TokenSource::Usage);
        assert_eq!(
            r.text_tokens,
            Some(2),
            "--count-output-text: counted for the gap"
        );
        let r = counted(finished(0, None, " hello world", vec![1, 2]), &c);
        assert_eq!(r.output_tokens_source, TokenSource::Tokenizer);
        assert_eq!(r.output_tokens as usize, tok.count(" hello world"));
        let r = counted(finished(0, None, "", vec![1, 2, 3]), &c);
        assert_eq!(
            (r.output_tokens, r.output_tokens_source),
            (3, TokenSource::Events)
        );
    }

    #[test]
    fn records_are_appended_and_run_data_returned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requests.jsonl");
        let rec = Recorder::start(Some(&path), counting(false)).unwrap();
        let h = rec.handle();
        h.submit(finished(0, None, "x", vec![10, 20]));
        let mut failed = finished(1, None, "", vec![]);
        failed.outcome.failure = Some((FailureKind::StreamCut, "cut".into()));
        h.submit(failed);
        let data = h.end_run().unwrap();
        assert_eq!(data.len(), 2);
        // Written before the run's data is handed back.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .contains("\"status\":\"stream_cut\"")
        );
        h.submit(finished(2, None, "y", vec![5]));
        assert_eq!(h.end_run().unwrap().len(), 1, "each run starts empty");
        drop(h);
        drop(rec);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
    }
}
