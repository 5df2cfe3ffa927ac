//! Parsers for every value a user types: durations, sizes, signals, job
//! names, log targets.  They are pure functions so that property tests can
//! hammer them; each error says what was expected, and the caller (clap)
//! prefixes the option name and the value given.

use std::time::Duration;

/// A DURATION as the man page defines it: a bare number is seconds (`90`,
/// `1.5`); otherwise numbers with units as humantime spells them (`90s`,
/// `1h30m`, `2d`, `1 min 30 sec`).  Any number may carry a decimal exponent,
/// as timeout(1) accepts it (`1e-3`, `2.5e2s`).
///
/// The value is computed exactly from the digits: a positive value too small
/// to represent becomes one nanosecond (it must never be read as 0, which
/// means "no limit"), and one too large for `Duration` saturates to
/// `Duration::MAX` ("effectively never").
pub fn duration(text: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected seconds (90, 1.5) or a duration like 90s, 10m, 1h30m, 2d";
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t.starts_with('-') {
        return Err("a duration cannot be negative".into());
    }
    let mut rest = t;
    let mut total_ns: u128 = 0;
    let mut first = true;
    while !rest.is_empty() {
        let (number, after) = Decimal::parse(rest).ok_or(EXPECTED)?;
        let after = after.trim_start();
        let unit_len =
            after.find(|c: char| !(c.is_ascii_alphabetic() || c == 'µ')).unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_ns = match unit {
            // a bare number is seconds, but only as the whole value
            "" if first && after.is_empty() => NS_PER_SEC,
            "" => return Err(format!("{EXPECTED}; each number needs a unit")),
            u => unit_nanos(u)
                .ok_or_else(|| format!("unknown unit '{u}' (ns, us, ms, s, m, h, d, w, M, y)"))?,
        };
        total_ns = total_ns.saturating_add(number.times_floor(unit_ns));
        first = false;
        rest = after.trim_start();
    }
    let secs = total_ns / u128::from(NS_PER_SEC);
    Ok(match u64::try_from(secs) {
        Ok(s) => Duration::new(s, (total_ns % u128::from(NS_PER_SEC)) as u32),
        Err(_) => Duration::MAX,
    })
}

const NS_PER_SEC: u64 = 1_000_000_000;

/// Nanoseconds in one of humantime's units.
fn unit_nanos(unit: &str) -> Option<u64> {
    let secs = |s: u64| s * NS_PER_SEC;
    Some(match unit {
        "nanos" | "nsec" | "ns" => 1,
        "usec" | "us" | "µs" => 1_000,
        "millis" | "msec" | "ms" => 1_000_000,
        "seconds" | "second" | "secs" | "sec" | "s" => secs(1),
        "minutes" | "minute" | "min" | "mins" | "m" => secs(60),
        "hours" | "hour" | "hr" | "hrs" | "h" => secs(3_600),
        "days" | "day" | "d" => secs(86_400),
        "weeks" | "week" | "wk" | "wks" | "w" => secs(604_800),
        "months" | "month" | "M" => secs(2_630_016), // 30.44 days
        "years" | "year" | "yr" | "yrs" | "y" => secs(31_557_600), // 365.25 days
        _ => return None,
    })
}

/// A non-negative decimal number as typed: its significant digits (no
/// leading or trailing zeros) and how many of them stand before the point
/// (negative or beyond the digits after an exponent).
struct Decimal {
    digits: Vec<u8>,
    point: i64,
}

impl Decimal {
    /// `12`, `1.5`, `.5`, `1.`, `2.5e2`, `1E-3` at the start of `text`;
    /// returns the number and the text after it.
    fn parse(text: &str) -> Option<(Decimal, &str)> {
        let b = text.as_bytes();
        let (mut digits, mut int_len, mut i) = (Vec::new(), None, 0);
        while let Some(&c) = b.get(i) {
            match c {
                b'0'..=b'9' => digits.push(c - b'0'),
                b'.' if int_len.is_none() => int_len = Some(digits.len()),
                _ => break,
            }
            i += 1;
        }
        if digits.is_empty() {
            return None;
        }
        let mut point = int_len.unwrap_or(digits.len()) as i64;
        // an exponent needs at least one digit: otherwise the `e` is text
        if let Some(b'e' | b'E') = b.get(i) {
            let mut j = i + 1;
            let negative = b.get(j) == Some(&b'-');
            if matches!(b.get(j), Some(b'-' | b'+')) {
                j += 1;
            }
            let start = j;
            let mut exp: i64 = 0;
            while let Some(c @ b'0'..=b'9') = b.get(j) {
                exp = (exp * 10 + i64::from(c - b'0')).min(1 << 40);
                j += 1;
            }
            if j > start {
                point += if negative { -exp } else { exp };
                i = j;
            }
        }
        let lead = digits.iter().take_while(|&&d| d == 0).count();
        digits.drain(..lead);
        point -= lead as i64;
        while digits.last() == Some(&0) {
            digits.pop();
        }
        Some((Decimal { digits, point }, &text[i..]))
    }

    /// `self × unit` rounded down, but a positive value is at least 1;
    /// u128::MAX if it does not fit.
    fn times_floor(&self, unit: u64) -> u128 {
        if self.digits.is_empty() {
            return 0;
        }
        // the integer part: more than 39 digits cannot fit a u128
        if self.point > 39 {
            return u128::MAX;
        }
        let digit = |k: i64| usize::try_from(k).ok().and_then(|k| self.digits.get(k)).copied();
        let mut int: u128 = 0;
        for k in 0..self.point.max(0) {
            let d = u128::from(digit(k).unwrap_or(0));
            match int.checked_mul(10).and_then(|v| v.checked_add(d)) {
                Some(v) => int = v,
                None => return u128::MAX,
            }
        }
        // the first 20 digits of the fraction are exact enough: a unit has
        // at most 17 digits, so the product's integer part is settled
        let mut frac: u128 = 0;
        for k in self.point..self.point + 20 {
            frac = frac * 10 + u128::from(if k < 0 { 0 } else { digit(k).unwrap_or(0) });
        }
        let unit = u128::from(unit);
        let ns = int
            .checked_mul(unit)
            .and_then(|v| v.checked_add(frac * unit / 10u128.pow(20)))
            .unwrap_or(u128::MAX);
        ns.max(1)
    }
}

/// A SIZE in bytes: `512M`, `1G`, `1.5GiB`, `1048576`; K/M/G/T (with an
/// optional `B` or `iB`) are powers of 1024.
pub fn size(text: &str) -> Result<u64, String> {
    const EXPECTED: &str = "expected bytes or a size like 512M, 1G, 1.5GiB";
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    // digits and dots only: f64's parser refuses "", "." and "1.2.3"
    let (number, unit) = t.split_at(split);
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

/// A signal by name (`TERM`, `SIGTERM`, `term`), real-time name as kill(1)
/// spells them (`RTMIN`, `RTMIN+1`, `SIGRTMAX-2`) or number (`15`).
pub fn signal(text: &str) -> Result<i32, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i32>() {
        return if n > 0 && (n < 32 || realtime().contains(&n)) {
            Ok(n)
        } else {
            Err("no such signal number".into())
        };
    }
    let upper = t.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(sig) = realtime_by_name(bare) {
        return sig;
    }
    SIGNALS
        .iter()
        .find(|(name, _)| *name == bare)
        .map(|&(_, n)| n)
        .ok_or_else(|| "expected a signal name (TERM, SIGINT, hup, RTMIN+1) or number".into())
}

/// The real-time signals this system offers to programs (glibc keeps the
/// first two or three for itself).
pub fn realtime() -> std::ops::RangeInclusive<i32> {
    libc::SIGRTMIN()..=libc::SIGRTMAX()
}

/// `RTMIN`, `RTMIN+N`, `RTMAX`, `RTMAX-N`; None if not such a name.
fn realtime_by_name(bare: &str) -> Option<Result<i32, String>> {
    let rt = realtime();
    let (base, sign, sign_char, rest) = if let Some(r) = bare.strip_prefix("RTMIN") {
        (*rt.start(), 1, '+', r)
    } else {
        (*rt.end(), -1, '-', bare.strip_prefix("RTMAX")?)
    };
    let offset = match rest {
        "" => 0,
        _ => match rest.strip_prefix(sign_char).map(str::parse::<i32>) {
            Some(Ok(n)) => n,
            _ => return Some(Err("expected RTMIN, RTMIN+N, RTMAX-N or RTMAX".into())),
        },
    };
    let sig = base + sign * offset;
    Some(if rt.contains(&sig) {
        Ok(sig)
    } else {
        Err(format!("no such real-time signal (RTMIN+0 to RTMIN+{} here)", rt.end() - rt.start()))
    })
}

/// The short name of a signal (`TERM`), real-time ones as kill(1) names
/// them (`RTMIN+1`, `RTMAX-2`).
pub fn signal_name(sig: i32) -> String {
    if let Some(&(name, _)) = SIGNALS.iter().find(|&&(_, n)| n == sig) {
        return name.to_string();
    }
    let rt = realtime();
    if !rt.contains(&sig) {
        return format!("SIG{sig}");
    }
    let (from_min, to_max) = (sig - rt.start(), rt.end() - sig);
    match (from_min, to_max) {
        (0, _) => "RTMIN".into(),
        (_, 0) => "RTMAX".into(),
        (n, m) if n <= m => format!("RTMIN+{n}"),
        (_, m) => format!("RTMAX-{m}"),
    }
}

/// Characters allowed in a job name (man page, DESCRIPTION).
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

// `--log`'s values are the sinks' (sink/mod.rs); named here, beside the
// other values a user types, for clap and the property tests
pub use crate::sink::{LogTarget, log_target};

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
        for bad in
            ["banana", "-5", "-1", "", "soon", "1..2", ".", "5 parsecs", "42D", "1h 30", "e5", "1e"]
        {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_as_timeout_reads_them() {
        let ms = Duration::from_millis;
        assert_eq!(duration("1e-3").unwrap(), ms(1));
        assert_eq!(duration("2.5e2s").unwrap(), Duration::from_secs(250));
        assert_eq!(duration("2.34e+5d").unwrap(), Duration::from_secs(234_000 * 86_400));
        assert_eq!(duration("1E3ms").unwrap(), Duration::from_secs(1));
        assert_eq!(duration("1.").unwrap(), Duration::from_secs(1));
        assert_eq!(duration("9.999999999").unwrap(), Duration::new(9, 999_999_999));
        // too small to represent, yet positive: never 0 ("none")
        for tiny in ["0.5ns", "1e-10000", "0.0000000001", "1e-1000000000000000000000s"] {
            assert_eq!(duration(tiny).unwrap(), Duration::from_nanos(1), "{tiny}");
        }
        assert_eq!(duration("0e5").unwrap(), Duration::ZERO);
        assert_eq!(duration("0.000e-5").unwrap(), Duration::ZERO);
        // too large: effectively never
        for huge in [
            "1.18973149535723176502e+4932",
            "9223372036854775808d",
            "99999999999999999999w",
            "1e1000000000000000000000",
        ] {
            assert_eq!(duration(huge).unwrap(), Duration::MAX, "{huge}");
        }
        assert_eq!(duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(duration("1 min 30 sec").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(duration("1.5ms").unwrap(), Duration::from_micros(1500));
        assert_eq!(duration("1M").unwrap(), Duration::from_secs(2_630_016));
        assert_eq!(duration("1y").unwrap(), Duration::from_secs(31_557_600));
        assert_eq!(duration("163µs").unwrap(), Duration::from_micros(163));
    }

    #[test]
    fn sizes() {
        assert_eq!(size("512M").unwrap(), 512 << 20);
        assert_eq!(size("1G").unwrap(), 1 << 30);
        assert_eq!(size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(size("1048576").unwrap(), 1_048_576);
        assert_eq!(size("4k").unwrap(), 4096);
        for bad in ["12Q", "lots", "", "-1G", "1.2.3G", "G", ".", ".K", "1..", "1.2.3"] {
            assert_eq!(
                size(bad),
                Err("expected bytes or a size like 512M, 1G, 1.5GiB".into()),
                "{bad}"
            );
        }
        assert_eq!(size("0"), Err("a size must be positive".into()));
        assert_eq!(size("99999999T"), Err("size too large".into()));
        assert_eq!((size("1."), size(".5K")), (Ok(1), Ok(512)));
    }

    #[test]
    fn signals() {
        assert_eq!(signal("TERM"), Ok(libc::SIGTERM));
        assert_eq!(signal("SIGINT"), Ok(libc::SIGINT));
        assert_eq!(signal("hup"), Ok(libc::SIGHUP));
        assert_eq!(signal("15"), Ok(15));
        for bad in ["NOPE", "NOSUCHSIG", "0", "-1", "99", "", "RTMIN-1", "RTMAX+1", "RTMIN+99"] {
            assert!(signal(bad).is_err(), "{bad}");
        }
        assert_eq!(signal_name(libc::SIGKILL), "KILL");
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        assert_eq!(signal("RTMIN+1"), Ok(min + 1));
        assert_eq!(signal("SIGRTMIN+1"), Ok(min + 1));
        assert_eq!(signal("rtmax-2"), Ok(max - 2));
        assert_eq!(signal("RTMIN"), Ok(min));
        assert_eq!(signal("RTMAX"), Ok(max));
        for sig in min..=max {
            assert_eq!(signal(&signal_name(sig)), Ok(sig), "{}", signal_name(sig));
        }
        assert_eq!(signal_name(min + 1), "RTMIN+1");
        assert_eq!(signal_name(max), "RTMAX");
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
    fn products_are_exact_up_to_u128() {
        let times = |text: &str, unit: u64| Decimal::parse(text).unwrap().0.times_floor(unit);
        // 39 digits before the point may still fit; 40 never do
        assert_eq!(times("1e38", 1), 10u128.pow(38));
        assert_eq!(times("340282366920938463463374607431768211455", 1), u128::MAX);
        assert_eq!(times("340282366920938463463374607431768211455.9", 1), u128::MAX);
        assert_eq!(times("4e38", 1), u128::MAX);
        assert_eq!(times("1e39", 1), u128::MAX);
        assert_eq!(times("1.5e37", 10), 15 * 10u128.pow(37));
        assert_eq!(times("0.25", 4), 1);
        assert_eq!(times("0.2", 4), 1);
        assert_eq!(times("0", 4), 0);
    }

    #[test]
    fn sizes_at_the_edges() {
        // 2^64 bytes is one too many; the largest that fits is accepted
        assert_eq!(size("16777216T"), Err("size too large".into()));
        assert_eq!(size("16777215T"), Ok(u64::MAX - (1 << 40) + 1));
        assert_eq!(size("1.5"), Ok(1));
        assert_eq!(size("0.5"), Err("a size must be positive".into()));
        assert_eq!(size("1T"), Ok(1 << 40));
        assert_eq!(size(" 2 MiB "), Ok(2 << 20));
    }

    #[test]
    fn signal_numbers_at_the_edges() {
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        assert_eq!(signal("1"), Ok(1));
        assert_eq!(signal("31"), Ok(31));
        // glibc keeps 32 and 33 for itself: below SIGRTMIN, no signal to send
        for n in 32..min {
            assert_eq!(signal(&n.to_string()), Err("no such signal number".into()), "{n}");
        }
        assert_eq!(signal(&min.to_string()), Ok(min));
        assert_eq!(signal(&max.to_string()), Ok(max));
        assert!(signal(&(max + 1).to_string()).is_err());
        let span = max - min;
        let out_of_range = format!("no such real-time signal (RTMIN+0 to RTMIN+{span} here)");
        for bad in ["RTMIN+99", "RTMAX-99", "RTMIN-1", "RTMAX+1"] {
            let want = if bad.ends_with("99") {
                &out_of_range
            } else {
                "expected RTMIN, RTMIN+N, RTMAX-N or RTMAX"
            };
            assert_eq!(signal(bad), Err(want.to_string()), "{bad}");
        }
        assert_eq!(signal(&format!("RTMIN+{span}")), Ok(max));
        assert_eq!(signal(&format!("RTMAX-{span}")), Ok(min));
    }

    /// Every signal named as bash's `kill -l N` names it (the man page:
    /// "as kill(1) spells them"), real-time ones included.
    #[test]
    fn signal_names_are_kill_l_names() {
        let sigs: Vec<i32> = (1..32).chain(realtime()).collect();
        let script: String = sigs.iter().map(|n| format!("kill -l {n};")).collect();
        let out = std::process::Command::new("bash").args(["-c", &script]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let names = String::from_utf8(out.stdout).unwrap();
        let ours: Vec<String> = sigs.iter().map(|&n| signal_name(n)).collect();
        assert_eq!(ours, names.lines().collect::<Vec<_>>());
        for (&n, name) in sigs.iter().zip(&ours) {
            assert_eq!(signal(name), Ok(n), "{name}");
        }
        assert_eq!(signal_name(32), "SIG32");
        assert_eq!(signal_name(0), "SIG0");
    }

    #[test]
    fn numbers() {
        assert_eq!(exit_code("255"), Ok(255));
        assert!(exit_code("256").is_err());
        assert!(positive("0").is_err());
        assert!(positive("many").is_err());
        assert!(count("-1").is_err());
        assert!(nice("20").is_err());
        assert!(nice("-21").is_err());
        assert_eq!((nice("-20"), nice(" 19 "), nice("0")), (Ok(-20), Ok(19), Ok(0)));
        assert_eq!((count("0"), count(" 7")), (Ok(0), Ok(7)));
        assert_eq!((positive("1"), exit_code("0")), (Ok(1), Ok(0)));
        for limit in [nofile, nproc] {
            assert_eq!(limit("0"), Err("must be at least 1".into()));
            assert_eq!((limit("1"), limit(" 4096 ")), (Ok(1), Ok(4096)));
            assert!(limit("-1").is_err() && limit("many").is_err());
        }
        assert!(facility("cron").is_ok());
        assert!(facility("nope").is_err());
    }
}
