//! The command line as clap sees it.  Validation that needs more than one
//! option at a time happens in `config.rs`; this file is also the source of
//! the man page and the shell completions (`docs.rs`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};

use crate::parse::{self, LogTarget};

const AFTER_HELP: &str = "\
Exit status: the command's own; 128+N if it died of signal N; 124 timed out;
75 skipped because the job is busy (--busy-exit); 125 runonce's own failure;
126 command not executable; 127 command not found.

Example crontab line:
  */5 * * * * runonce --timeout 4m --memory 1G -- /opt/collector/run.py";

/// Run a command at most once at a time, with a hard timeout over its whole
/// process tree, resource limits, and a record of every run.
///
/// Put it in front of a crontab line: the job can no longer pile up, hang
/// forever, run twice or eat the machine.
#[derive(Parser, Debug)]
#[command(
    name = "runonce",
    version,
    about,
    long_about = None,
    after_help = AFTER_HELP,
    override_usage = "runonce [OPTIONS] [--] COMMAND [ARG]...\n       runonce --status [NAME] [--json]\n       runonce --forget NAME\n       runonce --check-crontab [FILE]... [--json]\n       runonce --fix-crontab FILE|-",
    group(clap::ArgGroup::new("report").args(["status", "check_crontab"])),
    max_term_width = 100,
    args_override_self = true
)]
pub struct Cli {
    /// Job name: [A-Za-z0-9._-], 1-64 characters; names the lock, log tag,
    /// state and metrics [default: basename of COMMAND plus a hash of the
    /// whole command line]
    #[arg(short = 'n', long, value_name = "NAME", value_parser = parse::job_name,
          help_heading = "Job and lock")]
    pub name: Option<String>,

    /// Lock file to use instead of the one derived from the name
    #[arg(short = 'l', long, value_name = "PATH", help_heading = "Job and lock")]
    pub lock: Option<PathBuf>,

    /// Directory of lock files [default: /run/runonce for root, else
    /// $XDG_RUNTIME_DIR/runonce, else /tmp/runonce-UID]
    #[arg(long, value_name = "DIR", env = "RUNONCE_LOCK_DIR", help_heading = "Job and lock")]
    pub lock_dir: Option<PathBuf>,

    /// Exit code when the job is busy and the run is skipped
    #[arg(long, value_name = "CODE", default_value = "75", value_parser = parse::exit_code,
          help_heading = "When the job is already running")]
    pub busy_exit: u8,

    /// Wait for the lock, forever or up to DURATION (attached: --wait=5m,
    /// -w5m), then skip; a waiting run goes before runs that only try
    #[arg(short = 'w', long, value_name = "DURATION", num_args = 0..=1, require_equals = true,
          default_missing_value = "forever", value_parser = wait_value,
          help_heading = "When the job is already running")]
    pub wait: Option<Wait>,

    /// Terminate the running instance (its whole process tree) and run in
    /// its place
    #[arg(long, help_heading = "When the job is already running")]
    pub replace: bool,

    /// Allow up to N instances of this job at once (a semaphore)
    #[arg(long, value_name = "N", default_value = "1", value_parser = parse::positive,
          help_heading = "When the job is already running")]
    pub slots: u32,

    /// Hard wall-clock limit for the whole job; 0 means none
    #[arg(allow_negative_numbers = true, short = 't', long, value_name = "DURATION", value_parser = parse::duration,
          help_heading = "Timeouts")]
    pub timeout: Option<Duration>,

    /// First signal sent on timeout, by name (TERM, SIGINT, hup) or number
    #[arg(short = 's', long, value_name = "SIG", default_value = "TERM",
          value_parser = parse::signal, help_heading = "Timeouts")]
    pub signal: i32,

    /// Grace between the first signal and SIGKILL
    #[arg(allow_negative_numbers = true, short = 'k', long, value_name = "DURATION", default_value = "10s",
          value_parser = parse::duration, help_heading = "Timeouts")]
    pub kill_after: Duration,

    /// Treat no output on stdout and stderr for DURATION as a hang
    #[arg(allow_negative_numbers = true, long, value_name = "DURATION", value_parser = parse::duration,
          help_heading = "Timeouts")]
    pub idle_timeout: Option<Duration>,

    /// Leave the command in runonce's process group so it can use the
    /// terminal; only its own process tree is signalled
    #[arg(long, help_heading = "Timeouts")]
    pub foreground: bool,

    /// Let processes the command leaves behind live on (the lock is released
    /// when runonce exits)
    #[arg(long, help_heading = "Timeouts")]
    pub keep_orphans: bool,

    /// Memory cap: RLIMIT_DATA per process, and memory limit of the job's
    /// cgroup where runonce can create one (512M, 1G, 1.5GiB, bytes)
    #[arg(short = 'm', long, value_name = "SIZE", value_parser = parse::size,
          help_heading = "Resource limits")]
    pub memory: Option<u64>,

    /// CPU-time cap per process (RLIMIT_CPU): SIGXCPU, then SIGKILL 1s later
    #[arg(allow_negative_numbers = true, long, value_name = "DURATION", value_parser = parse::duration,
          help_heading = "Resource limits")]
    pub cpu: Option<Duration>,

    /// Maximum number of open files per process (RLIMIT_NOFILE)
    #[arg(long, value_name = "N", value_parser = parse::nofile, help_heading = "Resource limits")]
    pub nofile: Option<u64>,

    /// Maximum number of processes of the job: the pids cgroup controller
    /// where available, else RLIMIT_NPROC (per user)
    #[arg(long, value_name = "N", value_parser = parse::nproc, help_heading = "Resource limits")]
    pub nproc: Option<u64>,

    /// Lower the CPU priority by N (nice value, -20..19)
    #[arg(long, value_name = "N", value_parser = parse::nice, allow_hyphen_values = true,
          help_heading = "Resource limits")]
    pub nice: Option<i32>,

    /// Run with idle I/O priority
    #[arg(long, help_heading = "Resource limits")]
    pub io_idle: bool,

    /// Refuse to run (exit 125) when a limit cannot be applied
    #[arg(long, help_heading = "Resource limits")]
    pub strict_limits: bool,

    /// How to hold the job's processes: auto = its own cgroup where runonce
    /// can create one (root, or a delegated cgroup v2), else the process
    /// group; cgroup = exit 125 if no cgroup can be made; pgroup = process
    /// group and subreaper only
    #[arg(
        long,
        value_name = "HOW",
        value_enum,
        default_value = "auto",
        help_heading = "Resource limits"
    )]
    pub contain: Contain,

    /// Where records go: syslog, stderr, json:PATH, none (repeatable)
    /// [default: syslog]
    #[arg(long = "log", value_name = "TARGET", value_parser = parse::log_target,
          action = ArgAction::Append, help_heading = "Logging and state")]
    pub log: Vec<LogTarget>,

    /// Syslog facility
    #[arg(long, value_name = "FACILITY", default_value = "cron", value_parser = facility_name,
          help_heading = "Logging and state")]
    pub syslog_facility: String,

    /// Syslog socket
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/dev/log",
        help_heading = "Logging and state"
    )]
    pub syslog_socket: PathBuf,

    /// chronic(1) mode: print the command's output only if the run failed
    #[arg(short = 'q', long, help_heading = "Logging and state")]
    pub quiet: bool,

    /// Directory of per-job state [default: /var/lib/runonce for root, else
    /// $XDG_STATE_HOME/runonce]
    #[arg(long, value_name = "DIR", env = "RUNONCE_STATE_DIR", help_heading = "Logging and state")]
    pub state_dir: Option<PathBuf>,

    /// Write a Prometheus textfile runonce_NAME.prom into DIR (for
    /// node_exporter), when the job starts and when the run ends
    #[arg(long, value_name = "DIR", help_heading = "Logging and state")]
    pub metrics_dir: Option<PathBuf>,

    /// Report the state of one job, or of all jobs
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "",
          help_heading = "Logging and state")]
    pub status: Option<String>,

    /// With --status or --check-crontab: print JSON
    #[arg(long, requires = "report", help_heading = "Logging and state")]
    pub json: bool,

    /// Remove an idle job's state, lock files and (with --metrics-dir) its
    /// metrics file, so that --status no longer lists it
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with = "status",
        help_heading = "Logging and state"
    )]
    pub forget: Option<String>,

    /// Sleep a random time in [0, DURATION) before taking the lock
    #[arg(allow_negative_numbers = true, long, value_name = "DURATION", value_parser = parse::duration,
          help_heading = "Cron ergonomics")]
    pub jitter: Option<Duration>,

    /// Rerun a failed attempt up to N times, holding the lock; a timeout
    /// only with --retry-on-timeout; a forwarded signal stops the retries
    #[arg(allow_negative_numbers = true, long, value_name = "N", default_value = "0", value_parser = parse::count,
          help_heading = "Cron ergonomics")]
    pub retries: u32,

    /// Pause before the first retry; doubles each time, +-20% jitter
    #[arg(allow_negative_numbers = true, long, value_name = "DURATION", default_value = "1s", value_parser = parse::duration,
          help_heading = "Cron ergonomics")]
    pub retry_delay: Duration,

    /// Longest pause between retries
    #[arg(allow_negative_numbers = true, long, value_name = "DURATION", default_value = "10m", value_parser = parse::duration,
          help_heading = "Cron ergonomics")]
    pub retry_max_delay: Duration,

    /// Retry an attempt that timed out, too
    #[arg(long, help_heading = "Cron ergonomics")]
    pub retry_on_timeout: bool,

    /// Circuit breaker: after N consecutive failed runs, skip runs until
    /// --cooldown has passed since the last failure
    #[arg(long, value_name = "N", value_parser = parse::positive,
          help_heading = "Cron ergonomics")]
    pub max_failures: Option<u32>,

    /// How long the circuit breaker stays open
    #[arg(allow_negative_numbers = true, long, value_name = "DURATION", value_parser = parse::duration,
          help_heading = "Cron ergonomics")]
    pub cooldown: Option<Duration>,

    /// Also take a lease in PostgreSQL, so that one host at a time runs the
    /// job (postgres://USER@HOST/DB?sslmode=..., or host=... dbname=...);
    /// keep the password in PGPASSWORD or ~/.pgpass
    #[arg(
        long,
        value_name = "URL",
        env = "RUNONCE_LOCK_URL",
        hide_env_values = true,
        help_heading = "Many hosts"
    )]
    pub lock_url: Option<String>,

    /// Length of the lease, renewed every third of it while the job runs; a
    /// host that dies frees it after at most this long
    #[arg(allow_negative_numbers = true, long, value_name = "DURATION", value_parser = parse::duration,
          help_heading = "Many hosts")]
    pub lease: Option<Duration>,

    /// Keep the lease until at least DURATION after it was taken, so that
    /// a host whose clock is late does not run the same slot again
    #[arg(allow_negative_numbers = true, long, value_name = "DURATION", value_parser = parse::duration,
          help_heading = "Many hosts")]
    pub lock_at_least: Option<Duration>,

    /// When the database cannot be reached, run under the local lock alone
    /// (with a warning) instead of failing (exit 125)
    #[arg(long, help_heading = "Many hosts")]
    pub lock_url_optional: bool,

    /// Ping URL (healthchecks.io): URL/start when the job starts, URL on
    /// success, URL/EXIT on failure, with the output's last 10 KiB; never
    /// delays or fails the job.  The URL is a secret: prefer the
    /// environment variable to the command line
    #[arg(
        long,
        value_name = "URL",
        env = "RUNONCE_PING_URL",
        hide_env_values = true,
        value_hint = clap::ValueHint::Url,
        help_heading = "Heartbeat pings"
    )]
    pub ping: Option<String>,

    /// Check crontabs (- for stdin; default: yours through crontab -l, and
    /// for root /etc/crontab and /etc/cron.d): each job line's protection,
    /// what it risks and its safe rewrite; exit 0 if runonce protects every
    /// job line, 1 if not, 125 if a file is not a crontab
    #[arg(long, value_name = "FILE", num_args = 0.., value_hint = clap::ValueHint::FilePath,
          help_heading = "Making a crontab safe")]
    pub check_crontab: Option<Vec<PathBuf>>,

    /// Rewrite FILE in place (keeping FILE.runonce-bak), or stdin to stdout
    /// for -, so that every job line runs under runonce
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath,
          conflicts_with_all = ["status", "check_crontab"], help_heading = "Making a crontab safe")]
    pub fix_crontab: Option<PathBuf>,

    /// The command and its arguments
    #[arg(value_name = "COMMAND", trailing_var_arg = true,
          num_args = 1.., required_unless_present_any = ["status", "forget", "check_crontab", "fix_crontab"],
          conflicts_with = "fix_crontab")]
    pub command: Vec<OsString>,
}

/// `--wait` without a value waits forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    Forever,
    Up(Duration),
}

fn wait_value(text: &str) -> Result<Wait, String> {
    if text == "forever" { Ok(Wait::Forever) } else { parse::duration(text).map(Wait::Up) }
}

fn facility_name(text: &str) -> Result<String, String> {
    parse::facility(text).map(|_| text.to_ascii_lowercase())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Contain {
    Auto,
    Cgroup,
    Pgroup,
}

pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Why the command line was refused.
#[derive(Debug)]
pub enum Rejected {
    /// clap's own error (also `--help` and `--version`).
    Clap(clap::Error),
    /// A usage error found after clap: one line, exit 125.
    Usage(String),
}

/// Parses runonce's arguments (the program name first), with what clap
/// cannot check itself: the NAME of `--status` wherever it stands, and a
/// `--wait` whose value was meant to be attached.
pub fn parse(args: Vec<OsString>) -> Result<Cli, Rejected> {
    let matches = command().try_get_matches_from(attach_values(args)).map_err(Rejected::Clap)?;
    let mut cli =
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches).map_err(Rejected::Clap)?;
    if let Some(word) = detached_wait_value(&cli, &matches) {
        return Err(Rejected::Usage(format!(
            "--wait: its value must be attached: --wait={word} (or -w{word}); as written, \
             runonce would wait forever and run '{word}', which is no command on PATH"
        )));
    }
    let operand = |option: &str, cli: &Cli| {
        Rejected::Usage(format!(
            "{option}: unexpected argument '{}': it takes one NAME",
            cli.command.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
        ))
    };
    if cli.forget.is_some() && !cli.command.is_empty() {
        return Err(operand("--forget", &cli));
    }
    if cli.ping.as_deref() == Some("")
        && matches.value_source("ping") == Some(clap::parser::ValueSource::EnvVariable)
    {
        // `RUNONCE_PING_URL=` in a crontab stops the pings of the lines
        // after it (man page, PINGS)
        cli.ping = None;
    }
    if let Some(files) = &mut cli.check_crontab {
        // `--check-crontab --json FILE`: clap took FILE for the command
        files.extend(cli.command.drain(..).map(PathBuf::from));
    }
    if let Some(status) = &cli.status
        && !cli.command.is_empty()
    {
        // `--status --json NAME`: clap saw --status without a value
        if !status.is_empty() || cli.command.len() > 1 {
            return Err(operand("--status", &cli));
        }
        let name = cli.command.remove(0);
        cli.status = Some(name.into_string().map_err(|n| {
            Rejected::Usage(format!(
                "--status: invalid value '{}': not valid UTF-8",
                n.to_string_lossy()
            ))
        })?);
    }
    Ok(cli)
}

/// `--wait 5m` (or `-w 5m`) runs the command `5m` after waiting forever:
/// almost surely meant as `--wait=5m`.  The word right after a bare
/// `--wait`, if it reads as a duration and is no executable on PATH.
fn detached_wait_value(cli: &Cli, matches: &clap::ArgMatches) -> Option<String> {
    if cli.wait != Some(Wait::Forever) {
        return None;
    }
    // clap counts the missing value of a bare --wait as the next index
    let wait = matches.index_of("wait")?;
    let first = matches.index_of("command")?;
    let word = cli.command.first()?.to_str()?;
    (first == wait + 1 && parse::duration(word).is_ok() && !on_path(word)).then(|| word.to_string())
}

/// An executable file of this name in a directory of $PATH.
fn on_path(word: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else { return false };
    std::env::split_paths(&path).any(|dir| {
        let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
        std::fs::metadata(dir.join(word))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Attaches, before clap sees them, the values clap would not take:
/// `-wDURATION` (and `-xyw5m` clusters) among runonce's own options become
/// `--wait=DURATION` (`--wait` takes its value only when attached: `--wait
/// 5` waits forever and runs `5`, and clap's `require_equals` would refuse
/// the short form `-w5m`); and the NAME of a bare `--status` that comes
/// after other options (`--status --json NAME`) becomes `--status=NAME`,
/// so that options after it are still runonce's.  A separate value that
/// looks like a negative number (`--timeout -1s`, `-k -.5`) is attached
/// too, so that its option's parser, not clap's "unknown option '-1'",
/// says what is wrong with it.  Stops at `--` or at the command, so the
/// command's own `-w…` is untouched.
pub fn attach_values(args: Vec<OsString>) -> Vec<OsString> {
    let cmd = command();
    let takes_value = |arg: &clap::Arg| arg.get_action().takes_values();
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    if let Some(program) = iter.next() {
        out.push(program);
    }
    // where a `--status` without its NAME stands in `out`
    let mut bare_status = None;
    while let Some(arg) = iter.next() {
        let Some(text) = arg.to_str().map(str::to_owned) else {
            out.push(arg);
            break; // not UTF-8: not one of runonce's options
        };
        if text == "--" || !text.starts_with('-') || text == "-" {
            if text != "--"
                && let Some(at) = bare_status.take()
            {
                out[at] = format!("--status={text}").into();
                continue;
            }
            out.push(arg);
            break;
        }
        if text == "--status" {
            bare_status = Some(out.len());
        }
        if let Some(long) = text.strip_prefix("--") {
            let needs_next = !long.contains('=')
                && cmd.get_arguments().find(|a| a.get_long() == Some(long)).is_some_and(|a| {
                    takes_value(a)
                        && !a.is_require_equals_set()
                        && a.get_num_args().is_none_or(|n| n.min_values() > 0)
                });
            let value = if needs_next { iter.next() } else { None };
            push_option(&mut out, arg, None, long, value);
            continue;
        }
        // a cluster of short options: flags, then maybe one taking a value
        let mut rewritten = None;
        let mut needs_next = None;
        for (i, c) in text.char_indices().skip(1) {
            let Some(a) = cmd.get_arguments().find(|a| a.get_short() == Some(c)) else {
                break;
            };
            if !takes_value(a) {
                continue;
            }
            let rest = &text[i + c.len_utf8()..];
            if c == 'w' {
                let head = &text[..i];
                let value = rest.strip_prefix('=').unwrap_or(rest);
                rewritten = Some(if value.is_empty() {
                    (head != "-")
                        .then(|| head.to_string())
                        .into_iter()
                        .chain(["--wait".into()])
                        .collect::<Vec<_>>()
                } else {
                    (head != "-")
                        .then(|| head.to_string())
                        .into_iter()
                        .chain([format!("--wait={value}")])
                        .collect()
                });
            } else if rest.is_empty() {
                needs_next = a.get_long().map(|long| (text[..i].to_string(), long));
            }
            break;
        }
        match (rewritten, needs_next) {
            (Some(parts), _) => out.extend(parts.into_iter().map(OsString::from)),
            (None, Some((head, long))) => {
                push_option(&mut out, arg, Some(&head), long, iter.next())
            }
            (None, None) => out.push(arg),
        }
    }
    out.extend(iter);
    out
}

/// Pushes an option that takes a separate value, and the value: attached
/// as `--LONG=VALUE` if the value looks like a negative number (which clap
/// would read as an option).  `head` is what precedes the option's letter
/// in a cluster of short options (`-q` of `-qt`).
fn push_option(
    out: &mut Vec<OsString>,
    arg: OsString,
    head: Option<&str>,
    long: &str,
    value: Option<OsString>,
) {
    let negative = value.as_ref().and_then(|v| v.to_str()).filter(|v| {
        let mut chars = v.chars();
        chars.next() == Some('-') && chars.next().is_some_and(|c| c.is_ascii_digit() || c == '.')
    });
    match negative {
        Some(v) => {
            if let Some(head) = head.filter(|&h| h != "-") {
                out.push(head.into());
            }
            out.push(format!("--{long}={v}").into());
        }
        None => {
            out.push(arg);
            out.extend(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_values_stay_with_their_option() {
        let c = parse(&["-n", "x", "--", "true"]).unwrap();
        assert_eq!(c.name.as_deref(), Some("x"));
        for args in
            [&["--timeout", "-1s", "true"][..], &["-t", "-1s", "true"], &["-qt", "-.5", "x"]]
        {
            let Err(Rejected::Clap(e)) = parse(args) else { panic!("{args:?} parsed") };
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{args:?}");
            assert!(
                crate::usage_message(&e).starts_with("--timeout: invalid value '-"),
                "{args:?}"
            );
        }
        assert_eq!(parse(&["--nice", "-5", "true"]).unwrap().nice, Some(-5));
        assert_eq!(
            parse(&["-q", "-t", "5", "true"]).unwrap().timeout,
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn clap_definition_is_consistent() {
        command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, Rejected> {
        let argv = std::iter::once("runonce").chain(args.iter().copied()).map(OsString::from);
        super::parse(argv.collect())
    }

    fn usage_error(args: &[&str]) -> String {
        match parse(args) {
            Err(Rejected::Usage(msg)) => msg,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn short_wait_only_among_our_options() {
        let c = parse(&["-t", "5", "grep", "-w5m", "x"]).unwrap();
        assert_eq!(c.command, ["grep", "-w5m", "x"]);
        assert_eq!(c.wait, None);
        let c = parse(&["-qw5m", "true"]).unwrap();
        assert!(c.quiet);
        assert_eq!(c.wait, Some(Wait::Up(Duration::from_secs(300))));
        let c = parse(&["-w", "true"]).unwrap();
        assert_eq!(c.wait, Some(Wait::Forever));
        let c = parse(&["-n", "-w5", "true"]);
        assert!(c.is_err(), "-n takes the next word as its value");
    }

    #[test]
    fn wait_forms() {
        assert_eq!(parse(&["--wait", "true"]).unwrap().wait, Some(Wait::Forever));
        let c = parse(&["--wait", "sh", "5m"]).unwrap();
        assert_eq!(c.wait, Some(Wait::Forever));
        assert_eq!(c.command, ["sh", "5m"]);
        for args in
            [&["--wait", "5m", "x"][..], &["-w", "5m"], &["-qw", "90"], &["--wait", "--", "1h"]]
        {
            let msg = usage_error(args);
            assert!(msg.starts_with("--wait: its value must be attached: --wait="), "{msg}");
        }
        assert!(usage_error(&["-w", "5m", "x"]).contains("--wait=5m (or -w5m)"));
        // a word that is not right after --wait is the command's own
        assert_eq!(parse(&["--wait", "-n", "j", "5m"]).unwrap().command, ["5m"]);
        assert_eq!(
            parse(&["--wait=5m", "true"]).unwrap().wait,
            Some(Wait::Up(Duration::from_secs(300)))
        );
        assert_eq!(
            parse(&["-w5m", "true"]).unwrap().wait,
            Some(Wait::Up(Duration::from_secs(300)))
        );
        assert_eq!(parse(&["--wait=0", "true"]).unwrap().wait, Some(Wait::Up(Duration::ZERO)));
    }

    #[test]
    fn command_keeps_its_own_options() {
        let c = parse(&["-t", "5", "--", "ls", "-l", "--timeout", "3"]).unwrap();
        assert_eq!(c.command, ["ls", "-l", "--timeout", "3"]);
        let c = parse(&["-t", "5", "ls", "-l"]).unwrap();
        assert_eq!(c.command, ["ls", "-l"]);
    }

    #[test]
    fn status_forms() {
        assert_eq!(parse(&["--status"]).unwrap().status.as_deref(), Some(""));
        for args in [
            &["--status", "dup", "--json"][..],
            &["--status", "--json", "dup"],
            &["--json", "--status", "dup"],
            &["--json", "--status", "--", "dup"],
            &["--status", "--json", "dup", "--lock-dir", "/l"],
        ] {
            let c = parse(args).unwrap();
            assert_eq!(c.status.as_deref(), Some("dup"), "{args:?}");
            assert!(c.json && c.command.is_empty(), "{args:?}");
        }
        assert!(usage_error(&["--status", "--json", "a", "b"]).contains("argument 'b'"));
        assert!(usage_error(&["--status", "a", "b"]).starts_with("--status: unexpected"));
        assert!(usage_error(&["--forget", "a", "b"]).starts_with("--forget: unexpected"));
        assert!(parse(&[]).is_err());
    }
}
