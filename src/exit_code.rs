//! Every exit status runonce can return (man page, EXIT STATUS), and the
//! one place each becomes its number.  The numbers follow timeout(1), plus
//! EX_TEMPFAIL for a skipped run.

use std::io;

/// How runonce ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The job (or the request: `--status`, `--help`) succeeded.
    Success,
    /// The job's own exit status, passed through.
    Job(u8),
    /// The job died of this signal, or runonce was ended by it before the
    /// job started (the shell's 128+N).
    Signal(i32),
    /// The job ran past `--timeout` or `--idle-timeout`, or its fleet lease
    /// was lost.
    TimedOut,
    /// runonce itself failed: bad usage, unusable lock, internal error.
    OwnFailure,
    /// The command was found but could not be executed.
    NotExecutable,
    /// The command was not found.
    NotFound,
    /// The run was skipped (busy, cooling down): `--busy-exit`'s status.
    Busy(u8),
    /// A question answered "no": `--status` or `--forget` of an unknown
    /// job, `--check-crontab` with unprotected lines.
    No,
}

impl From<Exit> for u8 {
    fn from(exit: Exit) -> u8 {
        match exit {
            Exit::Success => 0,
            Exit::No => 1,
            Exit::Job(code) | Exit::Busy(code) => code,
            Exit::Signal(sig) => u8::try_from(128 + sig).unwrap_or(255),
            Exit::TimedOut => 124,
            Exit::OwnFailure => 125,
            Exit::NotExecutable => 126,
            Exit::NotFound => 127,
        }
    }
}

impl Exit {
    /// The status as a number: the finish record's `exit`.
    pub fn code(self) -> u8 {
        u8::from(self)
    }

    /// A job's exit status: 0 is success.
    pub fn of_job(code: u8) -> Exit {
        if code == 0 { Exit::Success } else { Exit::Job(code) }
    }

    /// The status for an exec failure of the command.
    pub fn exec_error(err: &io::Error) -> Exit {
        if err.kind() == io::ErrorKind::NotFound { Exit::NotFound } else { Exit::NotExecutable }
    }

    /// `ok` is a success; otherwise runonce's own failure (help text or a
    /// report that could not be written).
    pub fn unless(ok: bool) -> Exit {
        if ok { Exit::Success } else { Exit::OwnFailure }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_timeouts() {
        let all = [
            (Exit::Success, 0),
            (Exit::No, 1),
            (Exit::Job(3), 3),
            (Exit::Busy(75), 75),
            (Exit::TimedOut, 124),
            (Exit::OwnFailure, 125),
            (Exit::NotExecutable, 126),
            (Exit::NotFound, 127),
        ];
        for (exit, code) in all {
            assert_eq!(exit.code(), code, "{exit:?}");
        }
    }

    #[test]
    fn signal_codes() {
        assert_eq!(Exit::Signal(libc::SIGKILL).code(), 137);
        assert_eq!(Exit::Signal(libc::SIGUSR1).code(), 138);
        assert_eq!(Exit::Signal(200).code(), 255);
    }

    #[test]
    fn exec_errors() {
        let nf = io::Error::from_raw_os_error(libc::ENOENT);
        let acc = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(Exit::exec_error(&nf), Exit::NotFound);
        assert_eq!(Exit::exec_error(&acc), Exit::NotExecutable);
        assert_eq!(Exit::of_job(0), Exit::Success);
        assert_eq!(Exit::of_job(5).code(), 5);
    }
}
