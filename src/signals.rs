//! Which signals runonce relays to the job, and what each signal it reads
//! from its signalfd asks of it (man page, SIGNALS).
//!
//! As timeout(1) since coreutils 9.5, runonce relays every signal it could
//! catch whose default action would end it, so that it never dies of one
//! (and always writes the finish record) while the job runs on, orphaned
//! and holding the lock; and SIGCONT, so that a job stopped together with
//! runonce resumes with it (`--replace` of a stopped job counts on that).

use std::os::fd::OwnedFd;

use crate::parse;
use crate::sys;

/// Every catchable signal whose default action terminates the process (or
/// dumps core): the ones a fault raises included, for a `kill -SEGV` from
/// outside.  A fault of runonce's own still kills it: the kernel unblocks
/// a signal it forces.
const TERMINATING: [i32; 22] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGABRT,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGUSR1,
    libc::SIGSEGV,
    libc::SIGUSR2,
    libc::SIGPIPE,
    libc::SIGALRM,
    libc::SIGTERM,
    libc::SIGSTKFLT,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGIO,
    libc::SIGPWR,
    libc::SIGSYS,
];

/// The signals runonce relays to the job: the terminating ones, the
/// real-time ones (whose default action terminates too) and SIGCONT.
pub fn relayed() -> impl Iterator<Item = i32> {
    TERMINATING.into_iter().chain(parse::realtime()).chain([libc::SIGCONT])
}

/// What a signal read from runonce's signalfd asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meaning {
    /// SIGCHLD: a process of the job changed state.
    Child,
    /// Raised by a system call of runonce's own (SIGPIPE or SIGXFSZ of a
    /// write to its log or stderr): that call's error already says it, and
    /// the job has nothing to do with it.
    Own,
    /// SIGCONT: passed on to the job; nothing else changes.
    Continue,
    /// Relayed to the job, which then ends as it ends; before the job runs
    /// it ends runonce (128+N).
    Terminate(i32),
}

pub fn meaning(got: &sys::Received) -> Meaning {
    match got.signo {
        libc::SIGCHLD => Meaning::Child,
        _ if got.sender == sys::getpid() && got.code == libc::SI_USER => Meaning::Own,
        libc::SIGCONT => Meaning::Continue,
        sig => Meaning::Terminate(sig),
    }
}

/// Drains the signalfd while no job runs (jitter, lock wait, the pause
/// between retries): the first signal that ends the wait, if any.
pub fn interruption(fd: &OwnedFd) -> Option<i32> {
    while let Some(got) = sys::read_signal(fd) {
        if let Meaning::Terminate(sig) = meaning(&got) {
            return Some(sig);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relays_what_timeout_relays_and_no_stop_or_ignore_signal() {
        let all: Vec<i32> = relayed().collect();
        for sig in [libc::SIGUSR1, libc::SIGALRM, libc::SIGPIPE, libc::SIGXFSZ, libc::SIGCONT] {
            assert!(all.contains(&sig), "{}", parse::signal_name(sig));
        }
        assert!(all.contains(&libc::SIGRTMAX()));
        for sig in [libc::SIGKILL, libc::SIGSTOP, libc::SIGCHLD, libc::SIGTSTP, libc::SIGWINCH] {
            assert!(!all.contains(&sig), "{}", parse::signal_name(sig));
        }
    }

    #[test]
    fn own_signals_and_children_end_no_wait() {
        let got = |signo, code, sender| sys::Received { signo, code, sender };
        let me = sys::getpid();
        assert_eq!(meaning(&got(libc::SIGPIPE, libc::SI_USER, me)), Meaning::Own);
        assert_eq!(meaning(&got(libc::SIGPIPE, libc::SI_USER, 1)), Meaning::Terminate(13));
        assert_eq!(meaning(&got(libc::SIGCHLD, libc::SI_USER, 1)), Meaning::Child);
        assert_eq!(meaning(&got(libc::SIGCONT, libc::SI_USER, 1)), Meaning::Continue);
    }
}
