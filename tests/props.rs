//! Property tests for every parser of user input (issue 7, part 3): the
//! value parsers of parse.rs, the default job name, the argv rewriting and
//! the lock-file record, each against a model of what it must accept; and
//! the real binary given random bad option values: exit 125, one line that
//! names the option and the value, the command not run.
//!
//! A short run is part of `cargo test`; a long one (the fuzzing run) is
//! `PROPTEST_CASES=100000 cargo test --release --test integration props::`.
//! `--lock-url`'s connection string is not among them: its parser
//! (src/fleet/conninfo.rs) has unit tests of its own.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::time::Duration;

use proptest::prelude::*;
use runonce::holder::Holder;
use runonce::parse::{self, LogTarget};
use runonce::procs::ProcId;

use crate::util::{Env, code, stderr};

/// Cases per property: PROPTEST_CASES for a long run, else `short`.
fn config(short: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(short);
    // failures are reported with their minimal input; no files in the tree.
    // A tenth of the random bad values turn out valid and are set aside.
    ProptestConfig {
        cases,
        max_global_rejects: cases.max(1024),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text that looks like what people type: digits, dots, units, signs,
/// spaces, letters, and now and then anything at all.
fn typed() -> impl Strategy<Value = String> {
    prop_oneof![
        "[-+ ]?[0-9]{0,25}(\\.[0-9]{0,12})?[ ]?(s|m|h|d|ms|us|ns|min|sec|K|M|G|T|KiB|MB|gib|b|e5|)",
        "[0-9a-zA-Z.:_/ -]{0,30}",
        any::<String>(),
    ]
}

/// Strips what `trim` strips, for the models.
fn model_trim(s: &str) -> &str {
    s.trim()
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn duration_never_panics_and_never_reads_positive_as_zero(text in typed()) {
        if let Ok(d) = parse::duration(&text) {
            prop_assert!(!model_trim(&text).starts_with('-'));
            // 0 means "no limit": only a value without a nonzero digit may be 0
            if d.is_zero() {
                prop_assert!(!text.chars().any(|c| ('1'..='9').contains(&c)), "{text:?} became 0");
            }
        }
    }

    #[test]
    fn bare_seconds_are_exact(secs in any::<u64>(), frac in "[0-9]{0,15}") {
        let text = if frac.is_empty() { secs.to_string() } else { format!("{secs}.{frac}") };
        let nanos: u32 = format!("{frac:0<9}")[..9].parse().unwrap();
        let d = parse::duration(&text).unwrap();
        prop_assert_eq!(d, Duration::new(secs, nanos));
    }

    #[test]
    fn tiny_positive_durations_stay_positive(zeros in 9usize..40, digit in 1u8..=9) {
        let text = format!("0.{}{digit}", "0".repeat(zeros));
        prop_assert!(parse::duration(&text).unwrap() > Duration::ZERO);
    }

    #[test]
    fn huge_durations_saturate(digits in "[1-9][0-9]{20,60}", unit in "(|s|m|h|d)") {
        let d = parse::duration(&format!("{digits}{unit}")).unwrap();
        prop_assert!(d >= Duration::from_secs(u64::MAX / 2), "{d:?}");
    }

    #[test]
    fn durations_with_units(n in 0u64..1_000_000, unit in prop::sample::select(
        &[("s", 1u64), ("m", 60), ("h", 3600), ("d", 86_400), ("min", 60), ("sec", 1)][..])) {
        let d = parse::duration(&format!("{n}{}", unit.0)).unwrap();
        prop_assert_eq!(d, Duration::from_secs(n * unit.1));
    }

    #[test]
    fn negative_durations_are_refused(text in "-[0-9a-z.]{0,12}") {
        prop_assert!(parse::duration(&text).is_err());
    }

    #[test]
    fn size_never_panics_and_is_positive(text in typed()) {
        if let Ok(n) = parse::size(&text) {
            prop_assert!(n > 0);
        }
    }

    #[test]
    fn sizes_are_powers_of_1024(n in 1u64..1 << 20, unit in prop::sample::select(
        &[("", 0u32), ("b", 0), ("K", 10), ("kb", 10), ("KiB", 10), ("M", 20), ("mib", 20),
          ("G", 30), ("GB", 30), ("T", 40), ("tib", 40)][..])) {
        prop_assert_eq!(parse::size(&format!("{n}{}", unit.0)), Ok(n << unit.1));
    }

    #[test]
    fn signal_never_panics(text in typed()) {
        if let Ok(n) = parse::signal(&text) {
            prop_assert!(n > 0 && n <= libc::SIGRTMAX());
        }
    }

    #[test]
    fn signal_names_in_any_case(i in 0..parse::SIGNALS.len(), prefix in any::<bool>(),
                                lower in any::<bool>()) {
        let (name, number) = parse::SIGNALS[i];
        let mut text = if prefix { format!("SIG{name}") } else { name.to_string() };
        if lower {
            text = text.to_ascii_lowercase();
        }
        prop_assert_eq!(parse::signal(&text), Ok(number));
        prop_assert_eq!(parse::signal_name(number), name);
    }

    #[test]
    fn signal_numbers(n in any::<i32>()) {
        let valid = n > 0 && (n < 32 || (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n));
        prop_assert_eq!(parse::signal(&n.to_string()).is_ok(), valid, "{}", n);
    }

    #[test]
    fn job_name_matches_the_contract(text in prop_oneof![
        "[A-Za-z0-9._-]{0,70}", "[A-Za-z0-9._/ @-]{0,20}", any::<String>()]) {
        let valid = (1..=64).contains(&text.len())
            && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            && text != "."
            && text != "..";
        match parse::job_name(&text) {
            Ok(name) => {
                prop_assert!(valid, "{text:?} accepted");
                prop_assert_eq!(name, text);
            }
            Err(_) => prop_assert!(!valid, "{text:?} refused"),
        }
    }

    #[test]
    fn log_target_matches_the_contract(text in prop_oneof![
        "(json:|syslog|stderr|none|)[a-z/.]{0,10}", any::<String>()]) {
        let expected = match text.as_str() {
            "syslog" => Some(LogTarget::Syslog),
            "stderr" => Some(LogTarget::Stderr),
            "none" => Some(LogTarget::None),
            t => t.strip_prefix("json:").filter(|p| !p.is_empty()).map(|p| LogTarget::Json(p.into())),
        };
        prop_assert_eq!(parse::log_target(&text).ok(), expected);
    }

    #[test]
    fn numbers_match_their_ranges(text in prop_oneof!["[-+ ]?[0-9]{1,22} ?", typed()]) {
        let t = model_trim(&text);
        let n: Option<i128> = t.parse().ok();
        let within = |lo: i128, hi: i128| n.is_some_and(|n| (lo..=hi).contains(&n));
        // an unsigned count has no sign to give: "-0" is refused
        let unsigned = |lo: i128, hi: i128| !t.starts_with('-') && within(lo, hi);
        prop_assert_eq!(parse::exit_code(&text).is_ok(), unsigned(0, 255), "exit code {:?}", text);
        prop_assert_eq!(parse::count(&text).is_ok(), unsigned(0, u32::MAX.into()), "{:?}", text);
        prop_assert_eq!(parse::positive(&text).is_ok(), unsigned(1, u32::MAX.into()), "{:?}", text);
        prop_assert_eq!(parse::nice(&text).is_ok(), within(-20, 19), "nice {:?}", text);
        prop_assert_eq!(parse::nofile(&text).is_ok(), unsigned(1, u64::MAX.into()), "{:?}", text);
    }

    #[test]
    fn facility_matches_the_syslog_names(text in prop_oneof![
        typed(),
        "(log_|LOG_)?(kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|ntp|audit|alert|clock_daemon|local[0-9]|cran|locale)",
        "(Cron|DAEMON|Local7|lOcAl3)"]) {
        const NAMES: &[&str] = &["kern", "user", "mail", "daemon", "auth", "syslog", "lpr",
            "news", "uucp", "cron", "authpriv", "ftp", "ntp", "audit", "alert", "clock_daemon",
            "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"];
        let lower = text.to_lowercase();
        let bare = lower.strip_prefix("log_").unwrap_or(&lower);
        prop_assert_eq!(parse::facility(&text).is_ok(), NAMES.contains(&bare), "{:?}", text);
    }

    #[test]
    fn default_name_is_always_a_valid_name(argv in prop::collection::vec(
        prop::collection::vec(any::<u8>(), 0..80), 1..5)) {
        let argv: Vec<OsString> = argv.into_iter().map(OsString::from_vec).collect();
        let name = runonce::config::default_name(&argv);
        prop_assert!(parse::job_name(&name).is_ok(), "{name:?}");
        prop_assert_eq!(runonce::config::default_name(&argv), name);
    }

    #[test]
    fn argv_rewriting_keeps_the_command(ours in prop::collection::vec(
        prop_oneof!["-[a-zA-Z]{1,3}[0-9a-z=]{0,4}", "--[a-z-]{1,12}(=[0-9a-z]{0,4})?", "[0-9a-z]{1,4}"],
        0..6), first in "[a-z0-9/._][ -~]{0,7}", rest in prop::collection::vec("[ -~]{0,8}", 0..3)) {
        // the first word is no option: were `--` the value of an option
        // before it (`-n --`), an option-like first word would be read as ours
        let command: Vec<String> = std::iter::once(first).chain(rest).collect();
        let mut argv: Vec<OsString> = vec!["runonce".into()];
        argv.extend(ours.iter().map(OsString::from));
        argv.push("--".into());
        argv.extend(command.iter().map(OsString::from));
        let out = runonce::cli::attach_values(argv);
        let tail: Vec<OsString> = command.iter().map(OsString::from).collect();
        prop_assert!(out.ends_with(&tail), "{out:?}");
    }

    #[test]
    fn holder_records_round_trip(pid in 1i32.., start in any::<u64>(), job in any::<bool>(),
                                 started in 0.0f64..1e10, deadline in any::<u64>(),
                                 uid in any::<u32>(), name in "[A-Za-z0-9._-]{1,64}",
                                 lock in any::<(u64, u64)>(), ofd in any::<u64>(),
                                 cgroups in prop::collection::vec(
                                     (any::<u64>(), "/[a-z0-9/._-]{1,40}"), 0..4)) {
        let h = Holder {
            name,
            runonce: Some(ProcId { pid, start }),
            job: job.then_some(ProcId { pid: pid.wrapping_add(1).max(1), start }),
            started_unix: (started * 1000.0).round() / 1000.0,
            deadline_mono_ns: deadline,
            uid,
            cgroups,
            lock,
            ofd,
            leftovers: Vec::new(),
        };
        prop_assert_eq!(Holder::parse(&h.to_text()), Some(h));
    }

    #[test]
    fn holder_parse_never_panics(text in prop_oneof![
        "((name|runonce|job|started|deadline_mono_ns|uid|cgroup|lock|ofd|leftover)=[0-9a-z .e+-]{0,24}\n){0,10}(end\n)?",
        any::<String>()]) {
        if let Some(h) = Holder::parse(&text) {
            // whatever it says, using it never panics
            let _ = (h.deadline(), h.age_secs(), h.overdue(), h.shown_pid(), h.orphaned());
            // a record cut before its end (a crash mid-write) is no holder
            prop_assert!(text.lines().any(|l| l == "end"), "no end line: {:?}", text);
            // what it read, it writes back in a form it reads the same
            let written = h.to_text();
            prop_assert_eq!(Holder::parse(&written).map(|h| h.to_text()), Some(written));
        }
    }
}

/// The options whose values runonce parses, with what each needs beside it
/// and values that are invalid for it by construction: the parser under
/// test does not get to decide what counts as bad.
struct Opt {
    flag: &'static str,
    extra: &'static [&'static str],
    bad: fn() -> BoxedStrategy<String>,
}

/// Bad for every option: a character no value of theirs may hold (`--log`
/// included: no prefix of three characters is `json:`).
fn stray_char() -> BoxedStrategy<String> {
    "[0-9a-z]{0,3}[/@'\"$;|&%][0-9a-z]{0,3}".boxed()
}

/// Letters only, without the letters of a log target or a facility word
/// (no a-f, m, n, s, w): no number, so no duration, size or count either.
fn word() -> BoxedStrategy<String> {
    "[g-lo-rt-vx-z]{3,8}".boxed()
}

fn negative() -> BoxedStrategy<String> {
    "-[1-9][0-9]{0,3}".boxed()
}

fn two_dots() -> BoxedStrategy<String> {
    "[0-9]{1,3}\\.[0-9]{1,2}\\.[0-9]{1,2}".boxed()
}

fn bad_duration() -> BoxedStrategy<String> {
    prop_oneof![stray_char(), word(), negative(), two_dots(), "[0-9]{1,4}(q|zz|kx|sx|hx)"].boxed()
}

fn bad_size() -> BoxedStrategy<String> {
    prop_oneof![
        stray_char(),
        word(),
        negative(),
        two_dots(),
        "[0-9]{1,4}(q|zz|x|KX|MQ)",
        "[1-9][0-9]{21,25}"
    ]
    .boxed()
}

fn bad_signal() -> BoxedStrategy<String> {
    prop_oneof![stray_char(), negative(), "[1-9][0-9]{2,6}", "[0-9][a-z]{2,5}"].boxed()
}

fn bad_name() -> BoxedStrategy<String> {
    prop_oneof![stray_char(), "[a-z0-9._-]{65,80}", Just(".".to_string()), Just("..".to_string())]
        .boxed()
}

fn bad_log() -> BoxedStrategy<String> {
    prop_oneof![stray_char(), word(), Just("json:".to_string()), "(file|sys|stdout):[a-z]{0,4}"]
        .boxed()
}

fn bad_facility() -> BoxedStrategy<String> {
    prop_oneof![stray_char(), "[0-9][a-z]{2,5}", "local(8|9|[1-9][0-9])"].boxed()
}

fn bad_exit_code() -> BoxedStrategy<String> {
    prop_oneof![stray_char(), word(), negative(), "[3-9][0-9]{2,4}", "[0-9]{1,2}\\.[0-9]"].boxed()
}

/// Bad for a u32 count; `zero` when 0 is bad too.
fn bad_count(zero: bool) -> BoxedStrategy<String> {
    let huge = "[1-9][0-9]{10,14}";
    let zero = if zero { "0" } else { "-0.5" };
    prop_oneof![
        stray_char(),
        word(),
        negative(),
        huge,
        "[0-9]{1,2}\\.[0-9]",
        Just(zero.to_string())
    ]
    .boxed()
}

fn bad_nice() -> BoxedStrategy<String> {
    prop_oneof![
        stray_char(),
        word(),
        "[2-9][0-9]{1,3}",
        "-2[1-9]",
        "-[3-9][0-9]{1,3}",
        "[0-9]\\.[0-9]"
    ]
    .boxed()
}

/// Bad for a u64 of at least 1.
fn bad_big() -> BoxedStrategy<String> {
    prop_oneof![
        stray_char(),
        word(),
        negative(),
        "[1-9][0-9]{21,25}",
        "[0-9]\\.[0-9]",
        Just("0".to_string())
    ]
    .boxed()
}

const OPTS: &[Opt] = &[
    Opt { flag: "--timeout", extra: &[], bad: bad_duration },
    Opt { flag: "--kill-after", extra: &[], bad: bad_duration },
    Opt { flag: "--idle-timeout", extra: &[], bad: bad_duration },
    Opt { flag: "--cpu", extra: &[], bad: bad_duration },
    Opt { flag: "--jitter", extra: &[], bad: bad_duration },
    Opt { flag: "--retry-delay", extra: &[], bad: bad_duration },
    Opt { flag: "--retry-max-delay", extra: &[], bad: bad_duration },
    Opt { flag: "--cooldown", extra: &["--max-failures", "3"], bad: bad_duration },
    Opt { flag: "--wait", extra: &[], bad: bad_duration },
    Opt { flag: "--memory", extra: &[], bad: bad_size },
    Opt { flag: "--signal", extra: &[], bad: bad_signal },
    Opt { flag: "--name", extra: &[], bad: bad_name },
    Opt { flag: "--log", extra: &[], bad: bad_log },
    Opt { flag: "--syslog-facility", extra: &[], bad: bad_facility },
    Opt { flag: "--busy-exit", extra: &[], bad: bad_exit_code },
    Opt { flag: "--slots", extra: &[], bad: || bad_count(true) },
    Opt { flag: "--max-failures", extra: &["--cooldown", "1m"], bad: || bad_count(true) },
    Opt { flag: "--retries", extra: &[], bad: || bad_count(false) },
    Opt { flag: "--nice", extra: &[], bad: bad_nice },
    Opt { flag: "--nofile", extra: &[], bad: bad_big },
    Opt { flag: "--nproc", extra: &[], bad: bad_big },
];

fn opt_and_bad_value() -> impl Strategy<Value = (usize, String)> {
    (0..OPTS.len()).prop_flat_map(|i| (Just(i), (OPTS[i].bad)()))
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn bad_values_exit_125_naming_option_and_value((opt, value) in opt_and_bad_value()) {
        let opt = &OPTS[opt];
        let env = Env::new();
        let ran = env.path("ran");
        let out = env
            .cmd()
            .args(opt.extra)
            .arg(format!("{}={value}", opt.flag))
            .arg("--")
            .arg("touch")
            .arg(&ran)
            .output()
            .expect("run runonce");
        let err = stderr(&out);
        prop_assert_eq!(code(&out), 125, "{} {:?}: {}", opt.flag, value, err);
        prop_assert!(!ran.exists(), "{} {:?}: the command ran", opt.flag, value);
        prop_assert!(err.ends_with('\n') && err.lines().count() == 1, "not one line: {err:?}");
        // control characters are shown escaped, so the message stays one line
        let head = format!("runonce: {}: invalid value '{}'", opt.flag, runonce::ui::one_line(&value));
        prop_assert!(err.starts_with(&head), "{err:?} does not start with {head:?}");
    }

    #[test]
    fn bad_status_names_exit_125_naming_the_value(value in prop_oneof![
        // a character no name may hold (control characters aside: one line)
        "[a-z0-9]{0,6}[^\x00-\x1f\x7fA-Za-z0-9._-][a-z0-9._-]{0,6}",
        "[a-zA-Z0-9._-]{65,80}",
        Just(".".to_string()),
        Just("..".to_string()),
    ]) {
        prop_assert!(parse::job_name(&value).is_err(), "{value:?} is a valid name");
        let env = Env::new();
        let out = env.cmd().arg(format!("--status={value}")).output().expect("run runonce");
        let err = stderr(&out);
        prop_assert_eq!(code(&out), 125, "{:?}: {}", value, err);
        prop_assert!(err.lines().count() == 1, "not one line: {err:?}");
        let head = format!("runonce: --status: invalid value '{}'", runonce::ui::one_line(&value));
        prop_assert!(err.starts_with(&head), "{err:?} does not start with {head:?}");
    }
}
