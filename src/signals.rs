//! Which signals runonce relays to the job, and what each signal it reads
//! from its signalfd asks of it (man page, SIGNALS).
//!
//! As timeout(1) since coreutils 9.5, runonce relays every signal it could
//! catch whose default action would end it, so that it never dies of one
//! (and always writes the finish record) while the job runs on, orphaned
//! and holding the lock; and SIGCONT, so that a job stopped together with
//! runonce resumes with it (`--replace` of a stopped job counts on that).

//!
//! [`Signals`] owns the whole of it, as tini's `wait_and_forward_signal`
//! does: the mask and the signalfd set up once, before any thread exists,
//! and every wait of runonce's (jitter, the lock, the fleet lease, the
//! enforcers' turn, the pause between retries, the job itself) reads
//! signals through it (docs/ARCHITECTURE.md, "Signals").

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

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

/// What the job must get back between fork and exec so that runonce is
/// transparent: the dispositions it inherited (and an empty signal mask).
#[derive(Clone, Copy, Debug, Default)]
pub struct Inherited {
    pub sigpipe_ignored: bool,
    pub sigchld_ignored: bool,
}

/// runonce's signals: the relayed ones (except those ignored at start,
/// which stay ignored) and SIGCHLD, blocked and read from one signalfd.
pub struct Signals {
    fd: OwnedFd,
    pub inherited: Inherited,
}

/// Why [`Signals::wait`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woken {
    /// The descriptor waited on is readable.
    Ready,
    /// A signal that ends the wait (the number).
    Signal(i32),
    /// The deadline passed.
    Deadline,
}

impl Signals {
    /// Sets up the mask and the signalfd; call before any thread exists
    /// (threads inherit the mask, so no other thread ever takes a signal).
    pub fn setup() -> io::Result<Signals> {
        let inherited = Inherited {
            sigpipe_ignored: sys::signal_ignored(libc::SIGPIPE),
            sigchld_ignored: sys::signal_ignored(libc::SIGCHLD),
        };
        let mut set: Vec<i32> = relayed().filter(|&s| !sys::signal_ignored(s)).collect();
        set.push(libc::SIGCHLD);
        // runonce reports write errors itself; the job gets its own disposition back
        sys::set_disposition(libc::SIGPIPE, true);
        if inherited.sigchld_ignored {
            // an ignored SIGCHLD would reap the job behind runonce's back
            sys::set_disposition(libc::SIGCHLD, false);
        }
        let set = sys::SigSet::of(&set);
        set.block()?;
        Ok(Signals { fd: sys::signalfd(&set)?, inherited })
    }

    /// The signalfd's poll entry, for a wait that watches more than one
    /// descriptor (the job's supervision).
    pub fn pollfd(&self) -> libc::pollfd {
        sys::pollfd(self.fd.as_raw_fd(), libc::POLLIN)
    }

    /// The signals pending now, each with what it asks.
    pub fn pending(&self) -> impl Iterator<Item = (Meaning, sys::Received)> + '_ {
        std::iter::from_fn(|| sys::read_signal(&self.fd)).map(|got| (meaning(&got), got))
    }

    /// The first pending signal that ends a wait with no job running
    /// (jitter, lock wait, the pause between retries); the others are
    /// drained.
    pub fn interruption(&self) -> Option<i32> {
        self.pending().find_map(|(m, _)| match m {
            Meaning::Terminate(sig) => Some(sig),
            _ => None,
        })
    }

    /// Waits in the kernel until `ready` is readable, a signal that ends
    /// the wait arrives, or `until` passes (never, if None); a readable
    /// `ready` wins over a signal that came at the same time.
    pub fn wait(&self, ready: Option<RawFd>, until: Option<Instant>) -> io::Result<Woken> {
        loop {
            let left = until.map(|u| u.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                return Ok(Woken::Deadline);
            }
            let mut fds = [self.pollfd(), sys::pollfd(ready.unwrap_or(-1), libc::POLLIN)];
            sys::poll(&mut fds, left)?;
            if fds[1].revents != 0 {
                return Ok(Woken::Ready);
            }
            if fds[0].revents != 0
                && let Some(sig) = self.interruption()
            {
                return Ok(Woken::Signal(sig));
            }
        }
    }

    /// Sleeps for `d`, in the kernel, unless a signal that ends the wait
    /// arrives first (returned).
    pub fn sleep(&self, d: Duration) -> Option<i32> {
        match self.wait(None, Instant::now().checked_add(d)) {
            Ok(Woken::Signal(sig)) => Some(sig),
            _ => None,
        }
    }
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
    fn a_wait_ends_on_its_descriptor_a_signal_or_its_deadline() {
        let signals = Signals::setup().unwrap();
        let soon = || Instant::now().checked_add(Duration::from_millis(20));
        assert_eq!(signals.wait(None, soon()).unwrap(), Woken::Deadline);
        let (r, w) = sys::pipe().unwrap();
        sys::write_fd(w.as_raw_fd(), b"x").unwrap();
        assert_eq!(signals.wait(Some(r.as_raw_fd()), None).unwrap(), Woken::Ready);
        // directed at this thread, which has it blocked: no other test
        // thread can take it
        // SAFETY: pthread_kill of the calling thread with a valid signal.
        unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGUSR1) };
        assert_eq!(signals.wait(None, None).unwrap(), Woken::Signal(libc::SIGUSR1));
        // SAFETY: as above; SIGCHLD does not end a wait
        unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGCHLD) };
        assert_eq!(signals.sleep(Duration::from_millis(20)), None);
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
