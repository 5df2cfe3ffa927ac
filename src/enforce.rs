//! Ending another run of the job to take its place: `--replace`, and the
//! deadline of an orphan whose runonce was killed (man page, THE LOCK and
//! SECURITY).
//!
//! Enforcers take turns (`lock::enforcer`), and before every signal each
//! looks again at who holds the lock: a run that took the lock meanwhile
//! (another enforcer's, or a plain run's) is a new holder to judge afresh,
//! never a target by mistake.  Only processes proven to be the holding run's
//! are signalled (`Holder::members`); the holder's runonce itself only gets
//! the first signal, which it forwards to its job before writing its record.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::escalation::Escalation;
use crate::holder::{self, Current, Holder};
use crate::lock::{self, Lock, Site, Tried};
use crate::procs::{self, ProcId};
use crate::signals::Signals;
use crate::sys;

/// How long `--replace` waits for a run that took the lock to record
/// itself (it does so at once; a loaded machine may delay it).
const RECORD_PATIENCE: Duration = Duration::from_secs(5);
/// Between looks at the holder while it ends.
const STEP: Duration = Duration::from_millis(20);
/// Between SIGKILL rounds.
const KILL_STEP: Duration = Duration::from_millis(50);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// `--replace`: whoever holds the lock.
    Replace,
    /// An orphan past its recorded deadline, and nothing else.
    Overdue,
}

pub enum Enforced {
    /// The lock is ours, recorded.
    Got(Lock),
    /// Nothing (more) to end: the holder is no overdue orphan, or a queued
    /// waiter goes first.
    NotNeeded,
    /// The holder cannot be ended (exit 125): the reason.
    Refused(String),
    /// A signal arrived (number).
    Signal(i32),
    Unusable(String),
}

/// Ends the run holding slot 0 as `why` asks, and takes the lock.
pub fn enforce(
    site: &Site,
    slots: u32,
    why: Why,
    stop: Escalation,
    signals: &Signals,
    me: &Holder,
) -> Enforced {
    let _turn = match lock::enforcer(site, signals) {
        Ok(Ok(guard)) => guard,
        Ok(Err(sig)) => return Enforced::Signal(sig),
        Err(e) => return Enforced::Unusable(e.0),
    };
    let mut unknown_since = None;
    let mut free_before = false;
    loop {
        match lock::try_acquire(site, slots, me, why == Why::Overdue) {
            Ok(Tried::Got(l)) => return Enforced::Got(l),
            Ok(Tried::Yielded) => return Enforced::NotNeeded,
            Ok(Tried::Busy) => {}
            Err(e) => return Enforced::Unusable(e.0),
        }
        let current = holder::current(site, 0);
        let free = matches!(current, Current::Free);
        if free && free_before {
            // free to look at, yet not to take (a lock held where
            // /proc/locks does not show it): do not spin
            if let Some(sig) = signals.sleep(STEP) {
                return Enforced::Signal(sig);
            }
        }
        free_before = free;
        match current {
            Current::Free => {}
            Current::Unknown { locker } => {
                if why == Why::Overdue {
                    return Enforced::NotNeeded;
                }
                let since = *unknown_since.get_or_insert_with(Instant::now);
                if !about_to_record(locker) || since.elapsed() >= RECORD_PATIENCE {
                    let who = holder::someone_holding(site, 0, locker);
                    return Enforced::Refused(unknown_holder(&site.base, who));
                }
                if let Some(sig) = signals.sleep(STEP) {
                    return Enforced::Signal(sig);
                }
            }
            Current::Ours { holder, holders } => {
                unknown_since = None;
                if why == Why::Overdue && !holder.overdue() {
                    return Enforced::NotNeeded;
                }
                if let Some(msg) = foreign(&holder, &holders) {
                    return Enforced::Refused(msg);
                }
                if let Err(sig) = stop_run(site, &holder, stop, signals) {
                    return Enforced::Signal(sig);
                }
            }
        }
    }
}

/// The process that took the lock is a runonce of our own user that has
/// not written its record yet (it does right after taking the lock).
fn about_to_record(locker: Option<i32>) -> bool {
    let Some(pid) = locker else { return false };
    procs::runs_our_program(pid) && procs::uid_of(pid) == Some(sys::geteuid())
}

fn unknown_holder(lock: &Path, holder: Option<i32>) -> String {
    let who = match holder {
        Some(pid) => match procs::uid_of(pid) {
            Some(uid) => format!("pid {pid} (uid {uid})"),
            None => format!("pid {pid}"),
        },
        None => "a process runonce cannot see".into(),
    };
    format!(
        "--replace: the lock {} is held by {who}, which runonce cannot prove to be a run of \
         this job: nothing was signalled",
        lock.display()
    )
}

/// For a caller other than root: a process of the run that belongs to
/// another user is a reason to refuse (nothing is signalled).
fn foreign(holder: &Holder, holders: &[ProcId]) -> Option<String> {
    let me = sys::geteuid();
    if me == 0 {
        return None;
    }
    let runonce = holder.runonce.filter(|r| holders.contains(r));
    let all = runonce.into_iter().chain(holder.members(holders));
    for p in all {
        if let Some(uid) = procs::uid_of(p.pid).filter(|&u| u != me) {
            return Some(format!(
                "--replace: the running instance of {} (pid {}) belongs to uid {uid}: refused",
                holder.name, p.pid
            ));
        }
    }
    None
}

/// Ends the run `target` (the `Escalation`: `--signal` and SIGCONT, SIGKILL
/// after `--kill-after`) until it no longer holds the lock.  Before every
/// signal the holder is proven again; between signals a try of the lock
/// tells whether it is free yet.  Once it is free or held by another run,
/// this returns and the caller judges anew.  Err: a signal arrived.
fn stop_run(site: &Site, target: &Holder, stop: Escalation, signals: &Signals) -> Result<(), i32> {
    let mut escalation = stop.begin();
    let mut signalled = false;
    loop {
        let now = Instant::now();
        if !signalled || escalation.kill_due(now) {
            let holders = match holder::current(site, 0) {
                Current::Ours { holder, holders } if holder.ofd == target.ofd => holders,
                _ => return Ok(()),
            };
            if !signalled {
                let first = escalation.start(now);
                if !escalation.killing() {
                    first_signal(target, &holders, &first);
                }
            }
            if escalation.killing() {
                let kill = escalation.kill_signal();
                // cgroup.kill sends SIGKILL, all at once
                if let Some(cg) = target.cgroup().filter(|_| kill == libc::SIGKILL) {
                    cg.kill();
                }
                for p in target.members(&holders) {
                    p.signal(kill);
                }
            }
            signalled = true;
        } else if !lock::probe_held(&site.base) {
            return Ok(());
        }
        let pause = match escalation.next(now, KILL_STEP) {
            Some(k) if !escalation.killing() => k.saturating_duration_since(now).min(STEP),
            _ => KILL_STEP,
        };
        if let Some(sig) = signals.sleep(pause) {
            return Err(sig);
        }
    }
}

/// A live runonce that holds the lock forwards the signals to its whole
/// job and then writes its own record; an orphaned job is signalled
/// directly.
fn first_signal(target: &Holder, holders: &[ProcId], sigs: &[i32]) {
    match target.runonce.filter(|r| holders.contains(r)) {
        Some(r) => {
            r.signal_each(sigs);
        }
        None => {
            for p in target.members(holders) {
                p.signal_each(sigs);
            }
        }
    }
}
