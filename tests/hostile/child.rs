//! The binary as a child process: its output collected as it comes (a full pipe never
//! holds it up), signals sent to it, and its end awaited with a limit.

#![allow(dead_code)]

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running `servescope`.
pub struct Running {
    pub child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// What it left behind.
#[derive(Debug)]
pub struct Ended {
    /// None when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Start `servescope ARGS...` with stdout and stderr read as they come.
pub fn start(args: &[&str]) -> Running {
    let mut child = command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (stdout, out_reader) = collect(child.stdout.take());
    let (stderr, err_reader) = collect(child.stderr.take());
    Running {
        child,
        stdout,
        stderr,
        readers: out_reader.into_iter().chain(err_reader).collect(),
    }
}

pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_servescope"));
    c.args(args).stdin(Stdio::null());
    c
}

/// Read a pipe to its end on a thread of its own.
pub fn collect(
    pipe: Option<impl Read + Send + 'static>,
) -> (Arc<Mutex<String>>, Option<JoinHandle<()>>) {
    let text = Arc::new(Mutex::new(String::new()));
    let mut reader = None;
    if let Some(mut pipe) = pipe {
        let into = text.clone();
        reader = Some(std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                into.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }));
    }
    (text, reader)
}

impl Running {
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} failed");
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Wait until `cond` holds (failing if the child ends or `limit` passes first).
    pub fn wait_for(&mut self, what: &str, limit: Duration, cond: impl Fn(&Running) -> bool) {
        let t0 = Instant::now();
        while !cond(self) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("ended ({status}) before {what}: {}", self.stderr());
            }
            assert!(t0.elapsed() < limit, "no {what} after {limit:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Wait for the end, at most `limit` (then kill it and fail).
    pub fn finish(mut self, limit: Duration) -> Ended {
        let t0 = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if t0.elapsed() > limit {
                let _ = self.child.kill();
                panic!("did not end within {limit:?}: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // The pipes close with the process: the readers have everything.
        for r in std::mem::take(&mut self.readers) {
            let _ = r.join();
        }
        Ended {
            code: status.code(),
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
