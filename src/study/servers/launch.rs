//! One server process: started in a process group of its own (so its workers stop with
//! it) with its output in a log file, polled until ready, and stopped with SIGTERM to
//! the group, then SIGKILL after the stop timeout. Dropping a `ServerProcess` stops it;
//! a process ended by a second signal stops it too (`shutdown::end_now` kills every
//! group registered here).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::shutdown::Shutdown;

/// How a server start ended when it did not become ready.
#[derive(Debug)]
pub enum StartFailure {
    /// The command could not be started at all (not found, not executable).
    Spawn(String),
    /// The process ended before it was ready.
    Exited(String),
    /// Not ready within the timeout.
    NotReady(String),
    /// A signal asked to stop while waiting.
    Interrupted,
}

/// A running server; stopped when dropped.
pub struct ServerProcess {
    child: Option<Child>,
    stop_timeout: Duration,
    log: PathBuf,
}

impl ServerProcess {
    /// Start `argv` with `env` added, stdout and stderr to `log`.
    pub fn start(
        argv: &[String],
        env: &[(String, String)],
        log: &Path,
        stop_timeout: Duration,
    ) -> Result<ServerProcess, StartFailure> {
        let file = std::fs::File::create(log)
            .map_err(|e| StartFailure::Spawn(format!("cannot create {}: {e}", log.display())))?;
        let err = file
            .try_clone()
            .map_err(|e| StartFailure::Spawn(format!("{}: {e}", log.display())))?;
        let Some((program, args)) = argv.split_first() else {
            return Err(StartFailure::Spawn("an empty command".into()));
        };
        let mut command = Command::new(program);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            // The server is sent SIGTERM if servescope dies without stopping it (a
            // closed terminal's SIGHUP, SIGKILL, the OOM killer): no orphaned server
            // holding a GPU. Spawned from the thread that lives as long as the study.
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            // Its own group: SIGTERM reaches the workers a server forks, and a Ctrl-C
            // at the terminal reaches servescope only, which stops the server itself.
            .process_group(0)
            .spawn()
            .map_err(|e| StartFailure::Spawn(format!("cannot start {:?}: {e}", argv[0])))?;
        crate::shutdown::child_group_started(child.id() as i32);
        Ok(ServerProcess {
            child: Some(child),
            stop_timeout,
            log: log.to_path_buf(),
        })
    }

    /// The process id (also its process group's).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Poll `url` until it answers 2xx; fail when the process ends, the timeout passes
    /// or a signal comes.
    pub fn wait_ready(
        &mut self,
        url: &str,
        timeout: Duration,
        shutdown: &Shutdown,
    ) -> Result<Duration, StartFailure> {
        let t0 = Instant::now();
        loop {
            if shutdown.requested().is_some() {
                return Err(StartFailure::Interrupted);
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(StartFailure::Exited(format!(
                    "the server exited ({status}) before it was ready; the end of {}:\n{}",
                    self.log.display(),
                    tail(&self.log, 20)
                )));
            }
            let last = match get_status(url) {
                Ok(code) if (200..300).contains(&code) => return Ok(t0.elapsed()),
                Ok(code) => format!("HTTP {code}"),
                Err(e) => e,
            };
            if t0.elapsed() >= timeout {
                return Err(StartFailure::NotReady(format!(
                    "{url} did not answer 2xx within {} s (last: {last}); the end of {}:\n{}",
                    timeout.as_secs_f64(),
                    self.log.display(),
                    tail(&self.log, 20)
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The exit status, when the process has ended by itself.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGTERM to the group, SIGKILL after the stop timeout; waits for the process.
    /// Returns whether SIGKILL was needed.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let pgid = child.id() as i32;
        signal_group(pgid, libc::SIGTERM);
        let deadline = Instant::now() + self.stop_timeout;
        let mut killed = false;
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    signal_group(pgid, libc::SIGKILL);
                    let _ = child.wait();
                    killed = true;
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        // Workers that outlived the leader go with the group.
        signal_group(pgid, libc::SIGKILL);
        crate::shutdown::child_group_ended(pgid);
        killed
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Send `sig` to process group `pgid` (nothing happens when it is gone).
pub(crate) fn signal_group(pgid: i32, sig: i32) {
    if pgid > 1 {
        // SAFETY: kill(2) with a negative pid signals a process group; it touches no memory.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

/// The last `n` lines of a log, for an error message.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    let shown: Vec<String> = lines[start..]
        .iter()
        .map(|l| crate::console::printable(l).into_owned())
        .collect();
    match shown.is_empty() {
        true => "(the log is empty)".into(),
        false => shown.join("\n"),
    }
}

/// GET `url` (http only) and return the status code. A plain blocking request: the
/// readiness probe needs no TLS, pooling or runtime.
fn get_status(url: &str) -> Result<u16, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: expected http://"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = match host.contains(':') {
        true => host.to_string(),
        false => format!("{host}:80"),
    };
    let addrs: Vec<_> = std::net::ToSocketAddrs::to_socket_addrs(&addr)
        .map_err(|e| format!("{host}: {e}"))?
        .collect();
    let first = addrs.first().ok_or_else(|| format!("{host}: no address"))?;
    let mut s = TcpStream::connect_timeout(first, Duration::from_secs(2))
        .map_err(|e| format!("connect: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: servescope\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send: {e}"))?;
    let mut head = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        match s.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head[..got]);
    line.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| "not an HTTP answer".to_string())
}
