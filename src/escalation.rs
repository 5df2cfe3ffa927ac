//! How runonce stops processes, whatever the reason (a timeout, the idle
//! timeout, a lost fleet lease, what the job left behind, `--replace`, an
//! orphan past its deadline): `--signal` and SIGCONT, then after
//! `--kill-after` SIGKILL, in rounds until nothing is left (man page,
//! DESCRIPTION).  As timeout.c's `cleanup()` and watchexec's graceful stop,
//! one place decides what is sent and when; the callers only say to whom.

use std::time::{Duration, Instant};

/// What to send and how long to wait before SIGKILL: `--signal`,
/// `--kill-after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Escalation {
    pub signal: i32,
    pub grace: Duration,
}

/// An escalation under way (or not yet begun).
#[derive(Clone, Copy, Debug)]
pub struct Escalating {
    plan: Escalation,
    /// When SIGKILL is due (None: not begun, or a grace too long to end).
    kill_at: Option<Instant>,
    /// SIGKILL rounds are under way.
    killing: bool,
}

impl Escalation {
    pub fn begin(self) -> Escalating {
        Escalating { plan: self, kill_at: None, killing: false }
    }
}

impl Escalating {
    /// Starts the escalation at `now` (again, for other processes: the
    /// earlier SIGKILL time stands): the signals to send now.  `--signal
    /// KILL` needs no grace; otherwise a stopped process must be able to
    /// act on the signal, so SIGCONT follows it.
    pub fn start(&mut self, now: Instant) -> Vec<i32> {
        if self.plan.signal == self.kill_signal() {
            self.killing = true;
            return vec![self.plan.signal];
        }
        // a huge --kill-after means never, not at once
        if let Some(at) = now.checked_add(self.plan.grace) {
            self.kill_at = Some(self.kill_at.map_or(at, |k| k.min(at)));
        }
        vec![self.plan.signal, libc::SIGCONT]
    }

    /// Whether SIGKILL is due at `now`: once the grace is over, it is,
    /// round after round, until the caller sees nothing is left.
    pub fn kill_due(&mut self, now: Instant) -> bool {
        if self.kill_at.is_some_and(|k| k <= now) {
            self.kill_at = None;
            self.killing = true;
        }
        self.killing
    }

    pub fn killing(&self) -> bool {
        self.killing
    }

    /// Whether the first signal has gone out (the grace runs, or SIGKILL).
    pub fn started(&self) -> bool {
        self.killing || self.kill_at.is_some()
    }

    /// What each round after the grace sends.
    pub fn kill_signal(&self) -> i32 {
        libc::SIGKILL
    }

    /// When to look again: the end of the grace, or, while killing, the
    /// next round (`round` from `now`).
    pub fn next(&self, now: Instant, round: Duration) -> Option<Instant> {
        if self.killing { Some(now + round) } else { self.kill_at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(5);

    #[test]
    fn signal_cont_grace_then_kill_rounds() {
        let t0 = Instant::now();
        let mut e = Escalation { signal: libc::SIGTERM, grace: GRACE }.begin();
        assert!(!e.kill_due(t0));
        assert_eq!(e.start(t0), [libc::SIGTERM, libc::SIGCONT]);
        assert_eq!(e.next(t0, Duration::from_millis(20)), Some(t0 + GRACE));
        assert!(!e.kill_due(t0 + GRACE / 2));
        assert!(e.kill_due(t0 + GRACE));
        assert!(e.kill_due(t0 + GRACE), "rounds go on");
        let round = Duration::from_millis(20);
        assert_eq!(e.next(t0 + GRACE, round), Some(t0 + GRACE + round));
    }

    #[test]
    fn a_second_start_keeps_the_first_kill_time() {
        let t0 = Instant::now();
        let mut e = Escalation { signal: libc::SIGINT, grace: GRACE }.begin();
        e.start(t0);
        e.start(t0 + GRACE / 2);
        assert!(e.kill_due(t0 + GRACE));
    }

    #[test]
    fn kill_needs_no_grace_and_a_huge_grace_never_kills() {
        let t0 = Instant::now();
        let mut e = Escalation { signal: libc::SIGKILL, grace: GRACE }.begin();
        assert_eq!(e.start(t0), [libc::SIGKILL]);
        assert!(e.killing() && e.kill_due(t0));
        let mut e = Escalation { signal: libc::SIGTERM, grace: Duration::MAX }.begin();
        e.start(t0);
        assert!(!e.kill_due(t0 + Duration::from_secs(1 << 40)));
        assert_eq!(e.next(t0, GRACE), None);
    }

    #[test]
    fn started_once_the_first_signal_went_out() {
        let t0 = Instant::now();
        let mut e = Escalation { signal: libc::SIGTERM, grace: GRACE }.begin();
        assert!(!e.started());
        e.start(t0);
        assert!(e.started(), "in the grace");
        assert!(e.kill_due(t0 + GRACE));
        assert!(e.started(), "killing");
        let mut k = Escalation { signal: libc::SIGKILL, grace: GRACE }.begin();
        k.start(t0);
        assert!(k.started(), "--signal KILL");
    }
}
