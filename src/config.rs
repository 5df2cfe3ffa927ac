//! The validated configuration of one run: clap's `Cli` turned into the
//! facts the rest of runonce works with (ripgrep's lowargs → hiargs).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cli::{Cli, Contain, Wait};
use crate::escalation::Escalation;
use crate::fleet;
use crate::limits;
use crate::lock;
use crate::parse::{self, LogTarget};
use crate::ping::PingUrl;
use crate::state;

pub struct Config {
    pub argv: Vec<OsString>,
    pub name: String,
    /// The lock file of slot 0.
    pub lock_path: PathBuf,
    /// The lock directory to create and check: it holds the side files of
    /// an explicit --lock too.
    pub lock_dir: PathBuf,
    /// The job's lock files and side files.
    pub site: lock::Site,
    /// Why a default directory is not the usual one (another user made
    /// it): said on stderr at every run.
    pub notes: Vec<String>,
    pub slots: u32,
    pub busy_exit: u8,
    pub wait: Option<Wait>,
    pub replace: bool,
    pub timeout: Option<Duration>,
    /// `--signal`, then SIGKILL after `--kill-after`.
    pub stop: Escalation,
    pub idle_timeout: Option<Duration>,
    pub foreground: bool,
    pub keep_orphans: bool,
    pub limits: limits::Request,
    pub strict_limits: bool,
    pub contain: Contain,
    pub log: Vec<LogTarget>,
    pub facility: syslog::Facility,
    pub syslog_socket: PathBuf,
    pub quiet: bool,
    pub state_dir: PathBuf,
    /// The state dir is a per-user default: made 0700, used only while ours.
    pub state_private: bool,
    pub metrics_dir: Option<PathBuf>,
    pub jitter: Option<Duration>,
    pub retries: u32,
    pub retry_delay: Duration,
    pub retry_max_delay: Duration,
    pub retry_on_timeout: bool,
    pub breaker: Option<(u32, Duration)>,
    /// `--lock-url` and its options (man page, FLEET).
    pub fleet: Option<fleet::Options>,
    /// `--ping` (man page, PINGS).
    pub ping: Option<PingUrl>,
}

impl Config {
    /// `--wait`: None = do not wait, Some(None) = forever, else until when.
    /// One deadline for the local lock and the fleet lease together.
    pub fn wait_until(&self) -> Option<Option<Instant>> {
        match self.wait {
            None | Some(Wait::Up(Duration::ZERO)) => None,
            Some(Wait::Forever) => Some(None),
            Some(Wait::Up(d)) => Some(Instant::now().checked_add(d)),
        }
    }
}

/// A usage error found after parsing: one line, exit 125.
#[derive(Debug)]
pub struct UsageError(pub String);

impl Config {
    pub fn from_cli(cli: Cli) -> Result<Config, UsageError> {
        if cli.retries > 0 && cli.retry_delay.is_zero() {
            return Err(UsageError(
                "--retry-delay: invalid value '0': retries need a positive delay".into(),
            ));
        }
        let breaker = match (cli.max_failures, cli.cooldown) {
            (Some(n), Some(d)) if !d.is_zero() => Some((n, d)),
            (Some(_), Some(_)) => {
                return Err(UsageError(
                    "--cooldown: invalid value '0': the circuit breaker needs a positive cooldown"
                        .into(),
                ));
            }
            (None, Some(_)) => {
                return Err(UsageError(
                    "--cooldown: needs --max-failures N (how many failed runs in a row open the \
                     circuit breaker)"
                        .into(),
                ));
            }
            (Some(n), None) => {
                return Err(UsageError(format!(
                    "--max-failures {n}: needs --cooldown DURATION (how long to skip runs after \
                     {n} failed runs in a row)"
                )));
            }
            (None, None) => None,
        };
        if cli.replace && cli.slots > 1 {
            return Err(UsageError(format!(
                "--replace: cannot be used with --slots {}: which instance would it replace?",
                cli.slots
            )));
        }
        let fleet = fleet_options(&cli)?;
        let ping = cli.ping.as_deref().map(PingUrl::parse).transpose().map_err(UsageError)?;
        let name = match cli.name {
            Some(n) => n,
            None => default_name(&cli.command),
        };
        let mut notes = Vec::new();
        let lock_dir = cli.lock_dir.unwrap_or_else(|| {
            let (dir, note) = lock::default_dir_noted();
            notes.extend(note.map(|n| format!("lock dir: {n}")));
            dir
        });
        let site = match &cli.lock {
            Some(p) => lock::Site::explicit(&lock_dir, p),
            None => lock::Site::named(&lock_dir, &name),
        };
        let (state_dir, state_private) = match cli.state_dir {
            Some(d) => (d, false),
            None => {
                let (dir, private, note) = state::default_dir_noted();
                notes.extend(note.map(|n| format!("state dir: {n}")));
                (dir, private)
            }
        };
        let log = if cli.log.is_empty() { vec![LogTarget::Syslog] } else { cli.log };
        let facility = parse::facility(&cli.syslog_facility).map_err(|e| {
            UsageError(format!("--syslog-facility: invalid value '{}': {e}", cli.syslog_facility))
        })?;
        Ok(Config {
            argv: cli.command,
            name,
            lock_path: site.base.clone(),
            lock_dir,
            site,
            notes,
            slots: cli.slots,
            busy_exit: cli.busy_exit,
            wait: cli.wait,
            replace: cli.replace,
            timeout: cli.timeout.filter(|t| !t.is_zero()),
            stop: Escalation { signal: cli.signal, grace: cli.kill_after },
            idle_timeout: cli.idle_timeout.filter(|t| !t.is_zero()),
            foreground: cli.foreground,
            keep_orphans: cli.keep_orphans,
            limits: limits::Request {
                memory: cli.memory,
                cpu: cli.cpu,
                nofile: cli.nofile,
                nproc: cli.nproc,
                nice: cli.nice,
                io_idle: cli.io_idle,
            },
            strict_limits: cli.strict_limits,
            contain: cli.contain,
            log,
            facility,
            syslog_socket: cli.syslog_socket,
            quiet: cli.quiet,
            state_dir,
            state_private,
            metrics_dir: cli.metrics_dir,
            jitter: cli.jitter.filter(|j| !j.is_zero()),
            retries: cli.retries,
            retry_delay: cli.retry_delay,
            retry_max_delay: cli.retry_max_delay,
            retry_on_timeout: cli.retry_on_timeout,
            breaker,
            fleet,
            ping,
        })
    }

    pub fn argv_strings(&self) -> Vec<String> {
        self.argv.iter().map(|a| a.to_string_lossy().into_owned()).collect()
    }
}

/// Default `--lease`: a dead host's lease is free a minute later at most.
const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// Longest `--lease` and `--lock-at-least` (the database's intervals
/// are bounded; a lease of a year is already a host that never comes back).
const MAX_LEASE: Duration = Duration::from_secs(366 * 86_400);
/// Shortest `--lease`: renewals every third of it must fit a round trip.
const MIN_LEASE: Duration = Duration::from_secs(1);

fn fleet_options(cli: &Cli) -> Result<Option<fleet::Options>, UsageError> {
    let Some(url) = cli.lock_url.clone() else {
        let stray = [
            ("--lease", cli.lease.is_some()),
            ("--lock-at-least", cli.lock_at_least.is_some()),
            ("--lock-url-optional", cli.lock_url_optional),
        ];
        if let Some((option, _)) = stray.iter().find(|(_, given)| *given) {
            return Err(UsageError(format!(
                "{option}: needs --lock-url URL (the database that holds the lease)"
            )));
        }
        return Ok(None);
    };
    if let Err(why) = fleet::check(&url) {
        return Err(UsageError(format!("--lock-url: invalid value: {why}")));
    }
    if cli.slots > 1 {
        return Err(UsageError(format!(
            "--lock-url: cannot be used with --slots {}: the lease admits one run across hosts",
            cli.slots
        )));
    }
    let lease = cli.lease.unwrap_or(DEFAULT_LEASE);
    if lease < MIN_LEASE {
        return Err(UsageError(format!(
            "--lease: invalid value '{}': the lease must last at least 1s",
            humantime::format_duration(lease)
        )));
    }
    for (option, d) in [("--lease", Some(lease)), ("--lock-at-least", cli.lock_at_least)] {
        if d.is_some_and(|d| d > MAX_LEASE) {
            return Err(UsageError(format!(
                "{option}: invalid value '{}': at most 366 days",
                humantime::format_duration(d.unwrap_or_default())
            )));
        }
    }
    Ok(Some(fleet::Options {
        url,
        lease,
        at_least: cli.lock_at_least.unwrap_or(Duration::ZERO),
        optional: cli.lock_url_optional,
    }))
}

/// Longest basename kept in a default name: 55 + '-' + 8 hex digits = 64.
const BASENAME_MAX: usize = 55;

/// The default job name (man page, DESCRIPTION): the command's basename made
/// safe, '-', and 8 hex digits of a hash of the whole argv with argument
/// boundaries, so `echo 'a b'` and `echo a b` are different jobs.
pub fn default_name(argv: &[OsString]) -> String {
    let base = argv
        .first()
        .map(|a| {
            let bytes = a.as_bytes();
            let start = bytes.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
            String::from_utf8_lossy(&bytes[start..]).into_owned()
        })
        .unwrap_or_default();
    let mut safe: String = base
        .chars()
        .map(|c| if parse::is_name_char(c) { c } else { '_' })
        .take(BASENAME_MAX)
        .collect();
    if safe.is_empty() || safe == "." || safe == ".." {
        safe = "job".into();
    }
    format!("{safe}-{:08x}", argv_hash(argv))
}

/// FNV-1a over each argument's length and bytes, folded to 32 bits: stable
/// across runs, versions and machines (std's hasher is not).
pub fn argv_hash(argv: &[OsString]) -> u32 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    };
    for arg in argv {
        eat(&(arg.len() as u64).to_le_bytes());
        eat(arg.as_bytes());
    }
    (h ^ (h >> 32)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn default_names() {
        let a = default_name(&os(&["/opt/collector/run.py", "--all"]));
        assert!(a.starts_with("run.py-"), "{a}");
        assert_eq!(a.len(), "run.py-".len() + 8);
        assert_eq!(a, default_name(&os(&["/opt/collector/run.py", "--all"])));
        assert_ne!(default_name(&os(&["echo", "a b"])), default_name(&os(&["echo", "a", "b"])));
        assert_ne!(default_name(&os(&["w", "ab p", "q"])), default_name(&os(&["w", "ab", "p q"])));
        let long = default_name(&os(&[&"x".repeat(100)]));
        assert_eq!(long.len(), 64);
        assert!(parse::job_name(&long).is_ok());
        assert!(default_name(&os(&["we ird/na$me"])).starts_with("na_me-"));
        assert!(default_name(&os(&["/"])).starts_with("job-"));
    }

    #[test]
    fn hash_is_stable() {
        // pinned: changing it would give every crontab line a new lock
        // (the man page's example; the others computed apart, in Python)
        assert_eq!(default_name(&os(&["/opt/collector/run.py", "--all"])), "run.py-2145438f");
        assert_eq!(argv_hash(&os(&["true"])), 0x7546_a31f);
        assert_eq!(argv_hash(&os(&["sh", "-c", "exit 0"])), 0xcff8_56d7);
        assert_eq!(argv_hash(&[]), 0x4fd0_bfc1);
    }
}
