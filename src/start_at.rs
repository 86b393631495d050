//! `--start-at RFC3339`: shards on several machines start their runs on one wall-clock
//! instant. Everything is prepared first; then the process waits for the instant and
//! the run's clock starts there, so each shard's `started_unix` is that very instant.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::clock::RunClock;
use crate::timer::wait_until_unless;

/// How late a start may be and still go: clocks disagree a little, and a process may
/// be scheduled late. The run still counts from the instant itself (so shards stay
/// lined up); the lateness shows as schedule lag.
pub const GRACE: Duration = Duration::from_secs(1);

const FORMAT_HINT: &str =
    "expected RFC 3339 with a time zone, e.g. 2026-11-22T15:30:00Z or 2026-11-22T16:30:00+01:00";

/// Parse an RFC 3339 instant. The zone is required (`Z` or `±HH:MM`): a local time would
/// mean a different instant on machines in different zones.
pub fn parse(s: &str) -> Result<SystemTime, String> {
    let bad = || format!("{s:?}: {FORMAT_HINT}");
    let t = s.trim();
    let b = t.as_bytes();
    let (utc, offset_s): (&str, i64) = if b.last().is_some_and(|c| c.eq_ignore_ascii_case(&b'Z')) {
        (&t[..t.len() - 1], 0)
    } else if b.len() > 6 && matches!(b[b.len() - 6], b'+' | b'-') && b[b.len() - 3] == b':' {
        let (rest, zone) = t.split_at(t.len() - 6);
        let digits = |r: std::ops::Range<usize>| {
            zone.get(r)
                .filter(|d| d.bytes().all(|c| c.is_ascii_digit()))
                .and_then(|d| d.parse::<i64>().ok())
        };
        let (h, m) = (digits(1..3).ok_or_else(bad)?, digits(4..6).ok_or_else(bad)?);
        if h > 23 || m > 59 {
            return Err(bad());
        }
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        (rest, sign * (h * 3600 + m * 60))
    } else {
        return Err(bad());
    };
    // humantime reads the date and time (as UTC); the separator must be RFC 3339's.
    if utc
        .as_bytes()
        .get(10)
        .is_none_or(|c| !c.eq_ignore_ascii_case(&b'T'))
    {
        return Err(bad());
    }
    let mut utc = utc.to_string();
    utc.replace_range(10..11, "T");
    let local = humantime::parse_rfc3339_weak(&utc).map_err(|_| bad())?;
    // 16:30+01:00 is 15:30 UTC.
    let shift = Duration::from_secs(offset_s.unsigned_abs());
    let t = if offset_s >= 0 {
        local.checked_sub(shift)
    } else {
        local.checked_add(shift)
    };
    t.filter(|t| *t >= UNIX_EPOCH).ok_or_else(bad)
}

/// RFC 3339 in UTC, to the millisecond.
pub fn format(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// An error unless `at` is still ahead of `now`, or at most `GRACE` behind it.
pub fn check_not_past(at: SystemTime, now: SystemTime) -> Result<(), String> {
    match now.duration_since(at) {
        Ok(late) if late > GRACE => Err(format!(
            "--start-at {} is {} in the past; give one far enough ahead for every shard to prepare (e.g. `date -u -d '+2 min' +%FT%TZ`)",
            format(at),
            natural(late)
        )),
        _ => Ok(()),
    }
}

/// A lateness in the one unit a reader would say: "12.3 s", "5 minutes", "6 years".
fn natural(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 120.0 {
        return format!("{s:.1} s");
    }
    const MINUTE: f64 = 60.0;
    const HOUR: f64 = 60.0 * MINUTE;
    const DAY: f64 = 24.0 * HOUR;
    const YEAR: f64 = 365.25 * DAY;
    let (n, unit) = if s < 2.0 * HOUR {
        (s / MINUTE, "minute")
    } else if s < 2.0 * DAY {
        (s / HOUR, "hour")
    } else if s < 2.0 * 30.44 * DAY {
        (s / DAY, "day")
    } else if s < 2.0 * YEAR {
        (s / (YEAR / 12.0), "month")
    } else {
        (s / YEAR, "year")
    };
    format!("{} {unit}s", n.floor() as u64)
}

/// Sleep until about `margin` before `at` (reading the wall clock as it goes, so a clock
/// step during a long wait is followed). Gives up early when `stop` says so.
pub fn wait_until_near(at: SystemTime, margin: Duration, stop: impl Fn() -> bool) {
    const CHECK: Duration = Duration::from_millis(200);
    loop {
        let left = at
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        if left <= margin || stop() {
            return;
        }
        std::thread::sleep((left - margin).min(CHECK));
    }
}

/// Wait precisely until `at` and return a run clock whose zero is `at`. Late by more
/// than `GRACE` (preparing took too long) is an error; late by less, the clock still
/// starts at `at`.
pub fn start_clock_at(at: SystemTime, stop: impl Fn() -> bool) -> Result<RunClock, String> {
    wait_until_near(at, Duration::from_millis(50), &stop);
    check_not_past(at, SystemTime::now()).map_err(|e| format!("{e} (preparing took longer)"))?;
    let clock = RunClock::anchored(at);
    wait_until_unless(clock.instant_at(0), stop);
    let late = clock.now_us();
    if late > 1_000 {
        errln!(
            "warning: --start-at {}: started {:.1} ms late; the lateness shows as schedule lag",
            format(at),
            late as f64 / 1e3
        );
    }
    Ok(clock)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(t: SystemTime) -> f64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
    }

    #[test]
    fn rfc3339_with_zone_or_offset() {
        let z = parse("2026-11-22T15:30:00Z").unwrap();
        assert_eq!(unix(z), 1_795_361_400.0);
        assert_eq!(parse("2026-11-22t15:30:00z").unwrap(), z);
        assert_eq!(parse("2026-11-22T16:30:00+01:00").unwrap(), z);
        assert_eq!(parse("2026-11-22T10:00:00-05:30").unwrap(), z);
        assert_eq!(
            parse("2026-11-22T10:30:00-05:30").unwrap(),
            z + Duration::from_secs(1800)
        );
        assert_eq!(parse("2026-11-22T15:30:00+00:00").unwrap(), z);
        let frac = parse("2026-11-22T15:30:00.250Z").unwrap();
        assert_eq!(frac, z + Duration::from_millis(250));
        assert_eq!(format(frac), "2026-11-22T15:30:00.250Z");
        for bad in [
            "",
            "now",
            "2026-11-22T15:30:00",  // no zone: ambiguous across machines
            "2026-11-22 15:30:00Z", // not RFC 3339's separator
            "2026-11-22T15:30:00+1:00",
            "2026-11-22T15:30:00+24:00",
            "2026-13-22T15:30:00Z",
            "2026-11-22T25:30:00Z",
            "1969-12-31T23:00:00Z",
            "2026-11-22T15:30Z",
            "2026-11-22T15:30:00+01:0é",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(
                e.contains("expected RFC 3339 with a time zone"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_past_instant_is_an_error_saying_how_late() {
        let at = parse("2026-11-22T15:30:00Z").unwrap();
        assert!(
            check_not_past(at, at - Duration::from_secs(60)).is_ok(),
            "ahead"
        );
        assert!(
            check_not_past(at, at + Duration::from_millis(900)).is_ok(),
            "within grace"
        );
        let e = check_not_past(at, at + Duration::from_secs_f64(12.34)).unwrap_err();
        assert!(e.starts_with("--start-at 2026-11-22T15:30:00.000Z"), "{e}");
        assert!(e.contains(" is 12.3 s in the past;"), "{e}");
        let e = check_not_past(at, at + Duration::from_secs(3 * 3600 + 5)).unwrap_err();
        assert!(e.contains(" is 3 hours in the past;"), "{e}");
        let e = check_not_past(at, at + Duration::from_secs(150)).unwrap_err();
        assert!(e.contains(" is 2 minutes in the past;"), "{e}");
        let e = check_not_past(at, at + Duration::from_secs(9 * 86400)).unwrap_err();
        assert!(e.contains(" is 9 days in the past;"), "{e}");
        let e = check_not_past(at, at + Duration::from_secs(100 * 86400)).unwrap_err();
        assert!(e.contains(" is 3 months in the past;"), "{e}");
        // What the tour saw: 2020-01-01 given in December 2026.
        let old = parse("2020-01-01T00:00:00Z").unwrap();
        let e = check_not_past(old, at).unwrap_err();
        assert!(e.contains(" is 6 years in the past;"), "{e}");
    }

    #[test]
    fn the_clock_starts_at_the_instant() {
        let at = SystemTime::now() + Duration::from_millis(120);
        let clock = start_clock_at(at, || false).unwrap();
        assert!(
            (clock.wall_unix_s() - unix(at)).abs() < 1e-6,
            "anchored on the instant"
        );
        assert!(SystemTime::now() >= at, "not early");
        let e = start_clock_at(at - Duration::from_secs(5), || false).unwrap_err();
        assert!(e.contains("preparing took longer"), "{e}");
    }
}
