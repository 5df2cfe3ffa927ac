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
