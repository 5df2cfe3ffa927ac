//! The circuit breaker (`--max-failures` and `--cooldown`, man page, OPTIONS
//! and STATE, STATUS AND METRICS): after N failed runs in a row, runs are
//! skipped until the cooldown has passed since the last failure.

use std::time::Duration;

use crate::state::{self, Store};

/// Why the circuit is open (the skip record's message), or None: the run
/// goes ahead.
pub fn open(store: &Store, name: &str, breaker: Option<(u32, Duration)>) -> Option<String> {
    let (max, cooldown) = breaker?;
    // a state file another user could have written decides nothing
    let s = store.load_trusted(name)?;
    if s.consecutive_failures < u64::from(max) {
        return None;
    }
    let since = state::unix_now() - s.last_failure_unix.unwrap_or(0.0);
    // a failure in the future or at no time at all (a clock set back, a
    // damaged state file) would keep the circuit open for ever: let it run
    if !(0.0..cooldown.as_secs_f64()).contains(&since) {
        return None;
    }
    Some(format!(
        "{} failures in a row; cooling down for {:.0}s more",
        s.consecutive_failures,
        cooldown.as_secs_f64() - since
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store whose job `j` failed `failures` times in a row, the last
    /// `ago` seconds ago (negative: in the future).
    fn failed(failures: u64, ago: f64) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_path_buf());
        store
            .update(
                "j",
                |s| {
                    s.consecutive_failures = failures;
                    s.last_failure_unix = Some(state::unix_now() - ago);
                },
                |_| {},
            )
            .unwrap();
        (dir, store)
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn opens_at_the_limit_within_the_cooldown() {
        let (_d, store) = failed(3, 20.0);
        let why = open(&store, "j", Some((3, MINUTE))).expect("open at 3 of 3");
        assert!(why.starts_with("3 failures in a row; cooling down for "), "{why}");
        let left: f64 =
            why.rsplit("for ").next().unwrap().trim_end_matches("s more").parse().unwrap();
        assert!((35.0..=40.0).contains(&left), "60 s - 20 s: {why}");
        assert!(open(&store, "j", Some((2, MINUTE))).is_some(), "past the limit");
    }

    #[test]
    fn closed_below_the_limit_after_the_cooldown_or_without_a_breaker() {
        let (_d, store) = failed(2, 20.0);
        assert_eq!(open(&store, "j", Some((3, MINUTE))), None);
        let (_d, store) = failed(3, 61.0);
        assert_eq!(open(&store, "j", Some((3, MINUTE))), None);
        assert_eq!(open(&store, "j", None), None);
        assert_eq!(open(&store, "other", Some((1, MINUTE))), None);
    }

    #[test]
    fn a_failure_in_the_future_never_keeps_it_open() {
        let (_d, store) = failed(5, -30.0);
        assert_eq!(open(&store, "j", Some((3, MINUTE))), None);
    }
}
