//! Parsers for every value a user types: durations, sizes, signals, job
//! names, log targets.  They are pure functions so that property tests can
//! hammer them; each error says what was expected, and the caller (clap)
//! prefixes the option name and the value given.

use std::time::Duration;

/// A DURATION as cli.md section 4 defines it: a bare number is seconds
/// (`90`, `1.5`), anything else goes through humantime (`90s`, `1h30m`).
///
/// Values too large for `Duration` saturate to `Duration::MAX` ("effectively
/// never"), and a positive value too small to represent becomes one
/// nanosecond: it must never be read as 0, which means "no limit".
pub fn duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t.starts_with('-') {
        return Err("a duration cannot be negative".into());
    }
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return bare_seconds(t);
    }
    match humantime::parse_duration(t) {
        Ok(d) => Ok(d),
        Err(humantime::DurationError::NumberOverflow) => Ok(Duration::MAX),
        Err(_) => Err("expected seconds (90, 1.5) or a duration like 90s, 10m, 1h30m, 2d".into()),
    }
}

/// Bare seconds, computed from the digits so that `0.0000000001` is
/// positive and `18446744073709551615` does not overflow.
fn bare_seconds(t: &str) -> Result<Duration, String> {
    let (int_part, frac_part) = t.split_once('.').unwrap_or((t, ""));
    if int_part.is_empty() && frac_part.is_empty() || frac_part.contains('.') {
        return Err("expected seconds (90, 1.5) or a duration like 90s, 10m".into());
    }
    let secs = if int_part.is_empty() {
        0
    } else {
        match int_part.parse::<u64>() {
            Ok(s) => s,
            // only digits, so the one failure left is overflow
            Err(_) => return Ok(Duration::MAX),
        }
    };
    let mut nanos: u32 = 0;
    let mut scale: u32 = 100_000_000;
    let mut any_nonzero_beyond = false;
    for b in frac_part.bytes() {
        let digit = u32::from(b - b'0');
        if scale == 0 {
            any_nonzero_beyond |= digit != 0;
        } else {
            nanos += digit * scale;
            scale /= 10;
        }
    }
    if secs == 0 && nanos == 0 && any_nonzero_beyond {
        nanos = 1;
    }
    Ok(Duration::new(secs, nanos))
}

/// A SIZE in bytes: `512M`, `1G`, `1.5GiB`, `1048576`; K/M/G/T (with an
/// optional `B` or `iB`) are powers of 1024.
pub fn size(text: &str) -> Result<u64, String> {
    const EXPECTED: &str = "expected bytes or a size like 512M, 1G, 1.5GiB";
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    if number.is_empty() || number.matches('.').count() > 1 || number == "." {
        return Err(EXPECTED.into());
    }
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(EXPECTED.into()),
    };
    let value: f64 = number.parse().map_err(|_| EXPECTED.to_string())?;
    let bytes = value * f64::from(1u32 << (shift / 2)) * f64::from(1u32 << (shift - shift / 2));
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err("size too large".into());
    }
    let bytes = bytes as u64;
    if bytes == 0 {
        return Err("a size must be positive".into());
    }
    Ok(bytes)
}

/// Signals a user may name, in the order `kill -l` lists them.
pub const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// A signal by name (`TERM`, `SIGTERM`, `term`) or number (`15`).
pub fn signal(text: &str) -> Result<i32, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i32>() {
        return if n > 0 && (n < 32 || (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n)) {
            Ok(n)
        } else {
            Err("no such signal number".into())
        };
    }
    let upper = t.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS
        .iter()
        .find(|(name, _)| *name == bare)
        .map(|&(_, n)| n)
        .ok_or_else(|| "expected a signal name (TERM, SIGINT, hup) or number".into())
}

/// The short name of a signal (`TERM`), or its number for realtime ones.
pub fn signal_name(sig: i32) -> String {
    SIGNALS
        .iter()
        .find(|&&(_, n)| n == sig)
        .map(|(name, _)| (*name).to_string())
        .unwrap_or_else(|| format!("SIG{sig}"))
}

/// Characters allowed in a job name (cli.md section 2).
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

pub const NAME_MAX: usize = 64;

/// A job name: `[A-Za-z0-9._-]`, 1 to 64 characters, and not `.` or `..`
/// (it becomes a file name).
pub fn job_name(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > NAME_MAX {
        return Err(format!("a job name has 1 to {NAME_MAX} characters"));
    }
    if !text.chars().all(is_name_char) {
        return Err("a job name may only hold letters, digits, '.', '_' and '-'".into());
    }
    if text == "." || text == ".." {
        return Err("a job name cannot be '.' or '..'".into());
    }
    Ok(text.to_string())
}

/// A `--log` target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    Syslog,
    Stderr,
    Json(std::path::PathBuf),
    None,
}

pub fn log_target(text: &str) -> Result<LogTarget, String> {
    match text {
        "syslog" => Ok(LogTarget::Syslog),
        "stderr" => Ok(LogTarget::Stderr),
        "none" => Ok(LogTarget::None),
        _ => match text.strip_prefix("json:") {
            Some("") => Err("json: needs a file path (json:/var/log/runonce.jsonl)".into()),
            Some(path) => Ok(LogTarget::Json(path.into())),
            None => Err("expected syslog, stderr, json:PATH or none".into()),
        },
    }
}

/// A syslog facility name (`cron`, `daemon`, `local0` … `local7`, …).
pub fn facility(text: &str) -> Result<syslog::Facility, String> {
    text.parse()
        .map_err(|()| "expected a syslog facility (cron, daemon, user, local0..local7, ...)".into())
}

/// An exit code: 0 to 255.
pub fn exit_code(text: &str) -> Result<u8, String> {
    text.trim().parse::<u8>().map_err(|_| "expected an exit code from 0 to 255".into())
}

/// A positive count (`--slots`, `--max-failures`).
pub fn positive(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("expected a whole number of at least 1".into()),
    }
}

/// A count that may be zero (`--retries`).
pub fn count(text: &str) -> Result<u32, String> {
    text.trim().parse::<u32>().map_err(|_| "expected a whole number (0 or more)".into())
}

/// A `--nice` adjustment, -20 to 19.
pub fn nice(text: &str) -> Result<i32, String> {
    match text.trim().parse::<i32>() {
        Ok(n) if (-20..=19).contains(&n) => Ok(n),
        _ => Err("expected a niceness from -20 to 19".into()),
    }
}

/// A file-descriptor count for `--nofile`.
pub fn nofile(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("expected a number of open files".into()),
    }
}

/// A process count for `--nproc`.
pub fn nproc(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("expected a number of processes".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(duration(".5").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(duration("2d").unwrap(), Duration::from_secs(172_800));
        assert_eq!(duration("0").unwrap(), Duration::ZERO);
        assert_eq!(duration("0.0000000001").unwrap(), Duration::from_nanos(1));
        assert_eq!(duration("0.0000000000").unwrap(), Duration::ZERO);
        assert_eq!(duration("18446744073709551615").unwrap().as_secs(), u64::MAX);
        assert_eq!(duration("99999999999999999999999").unwrap(), Duration::MAX);
        assert!(duration("1000000d").unwrap() > Duration::from_secs(86_400 * 999_999));
        for bad in ["banana", "-5", "-1", "", "soon", "1..2", ".", "5 parsecs"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(size("512M").unwrap(), 512 << 20);
        assert_eq!(size("1G").unwrap(), 1 << 30);
        assert_eq!(size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(size("1048576").unwrap(), 1_048_576);
        assert_eq!(size("4k").unwrap(), 4096);
        for bad in ["12Q", "lots", "", "0", "-1G", "1.2.3G", "G", "99999999T"] {
            assert!(size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signals() {
        assert_eq!(signal("TERM"), Ok(libc::SIGTERM));
        assert_eq!(signal("SIGINT"), Ok(libc::SIGINT));
        assert_eq!(signal("hup"), Ok(libc::SIGHUP));
        assert_eq!(signal("15"), Ok(15));
        for bad in ["NOPE", "NOSUCHSIG", "0", "-1", "99", ""] {
            assert!(signal(bad).is_err(), "{bad}");
        }
        assert_eq!(signal_name(libc::SIGKILL), "KILL");
    }

    #[test]
    fn names() {
        assert!(job_name("with.dots_and-dashes").is_ok());
        for bad in ["a/b", "", ".", "..", "a b", &"x".repeat(65)] {
            assert!(job_name(bad).is_err(), "{bad}");
        }
        assert!(job_name(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn log_targets() {
        assert_eq!(log_target("syslog"), Ok(LogTarget::Syslog));
        assert_eq!(log_target("json:/x/y"), Ok(LogTarget::Json("/x/y".into())));
        assert!(log_target("json:").is_err());
        assert!(log_target("file").is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(exit_code("255"), Ok(255));
        assert!(exit_code("256").is_err());
        assert!(positive("0").is_err());
        assert!(positive("many").is_err());
        assert!(count("-1").is_err());
        assert!(nice("20").is_err());
        assert!(facility("cron").is_ok());
        assert!(facility("nope").is_err());
    }
}
