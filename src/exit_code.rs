//! Every exit status runonce can return (cli.md section 7), in one place.
//! The numbers follow timeout(1), plus EX_TEMPFAIL for a skipped run.

/// The job ran past `--timeout` or `--idle-timeout`.
pub const TIMED_OUT: u8 = 124;
/// runonce itself failed: bad usage, unusable lock, internal error.
pub const OWN_FAILURE: u8 = 125;
/// The command was found but could not be executed.
pub const NOT_EXECUTABLE: u8 = 126;
/// The command was not found.
pub const NOT_FOUND: u8 = 127;
/// Default for a skipped run (sysexits.h EX_TEMPFAIL); `--busy-exit` changes it.
pub const BUSY: u8 = 75;

/// The exit status for a job that died of `signal` (the shell convention).
pub fn for_signal(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(255)
}

/// The exit status for an exec failure of the command.
pub fn for_exec_error(err: &std::io::Error) -> u8 {
    if err.kind() == std::io::ErrorKind::NotFound { NOT_FOUND } else { NOT_EXECUTABLE }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_codes() {
        assert_eq!(for_signal(libc::SIGKILL), 137);
        assert_eq!(for_signal(libc::SIGUSR1), 138);
        assert_eq!(for_signal(200), 255);
    }

    #[test]
    fn exec_errors() {
        let nf = std::io::Error::from_raw_os_error(libc::ENOENT);
        let acc = std::io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(for_exec_error(&nf), 127);
        assert_eq!(for_exec_error(&acc), 126);
    }
}
