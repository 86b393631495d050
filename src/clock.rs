//! One monotonic clock per run. Every time in a record is integer µs since the run's
//! start; the wall-clock start is kept so runs from several machines can be lined up.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug)]
pub struct RunClock {
    start: Instant,
    wall: SystemTime,
}

impl RunClock {
    pub fn start() -> Self {
        RunClock {
            start: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// A clock whose zero is the wall-clock instant `wall` (past or future), on the
    /// monotonic clock from here on (`--start-at`).
    pub fn anchored(wall: SystemTime) -> Self {
        let (now, now_wall) = (Instant::now(), SystemTime::now());
        let start = match wall.duration_since(now_wall) {
            Ok(ahead) => now + ahead,
            Err(behind) => now.checked_sub(behind.duration()).unwrap_or(now),
        };
        RunClock { start, wall }
    }

    pub fn now_us(&self) -> u64 {
        self.us(Instant::now())
    }

    /// The instant `us` µs after the run's start.
    pub fn instant_at(&self, us: u64) -> Instant {
        self.start + std::time::Duration::from_micros(us)
    }

    pub fn us(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.start).as_micros() as u64
    }

    /// RFC 3339 with microseconds, UTC.
    pub fn wall_rfc3339(&self) -> String {
        humantime::format_rfc3339_micros(self.wall).to_string()
    }

    pub fn wall_unix_s(&self) -> f64 {
        self.wall
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }
}
