//! Per-job state: the last run and counters, one JSON file per job under
//! the state dir, updated under a private lock file in the directory and
//! replaced atomically (exclusive temp file, fsync, rename), so concurrent
//! finishes and a `--status` read never see a torn or lost file.  A state
//! file decides something (the circuit breaker) only if it is a regular
//! file of runonce's own user.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::files;
use crate::limits::Hit;
use crate::record::{Outcome, Record};
use crate::sys;

/// A state file longer than this is not one runonce wrote.
const STATE_MAX: u64 = 1 << 20;
/// How long a state update waits for another run's: a run that hangs
/// while it holds the lock must not hang every other.
const LOCK_PATIENCE: Duration = Duration::from_secs(5);

/// The default state directory (man page, STATE, STATUS AND METRICS).
pub fn default_dir() -> PathBuf {
    default_dir_noted().0
}

/// The default state directory, whether it is private to the user (made
/// 0700), and why it is not the usual one if another user squatted that.
///
/// root: /var/lib/runonce.  Others: `$XDG_STATE_HOME/runonce`, else
/// `~/.local/state/runonce` if that exists or can be made (a system user's
/// home is often missing, as `/nonexistent`, or not its own), else
/// `/tmp/runonce-state-UID` (see `files::private_tmp_dir`).  The same rule
/// serves runs and `--status`, so `--status` finds what runs wrote.
pub fn default_dir_noted() -> (PathBuf, bool, Option<String>) {
    if sys::geteuid() == 0 {
        return (PathBuf::from("/var/lib/runonce"), false, None);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| Path::new(d).is_absolute()) {
        return (Path::new(&d).join("runonce"), true, None);
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| Path::new(h).is_absolute()) {
        let dir = Path::new(&home).join(".local/state/runonce");
        if files::creatable(&dir) {
            return (dir, true, None);
        }
    }
    let (dir, note) = files::private_tmp_dir("runonce-state");
    (dir, true, note)
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct JobState {
    pub name: String,
    pub last_start: Option<String>,
    pub last_start_unix: Option<f64>,
    pub last_end_unix: Option<f64>,
    pub last_outcome: Option<Outcome>,
    pub last_exit: Option<u8>,
    pub last_signal: Option<String>,
    pub last_duration_s: Option<f64>,
    pub last_maxrss_kib: Option<u64>,
    pub last_job_pid: Option<i32>,
    /// The limit that ended or broke the last run.
    pub last_limit: Option<Hit>,
    pub last_success_unix: Option<f64>,
    pub last_failure_unix: Option<f64>,
    pub runs: u64,
    pub failures: u64,
    pub timeouts: u64,
    pub skips: u64,
    pub consecutive_failures: u64,
    /// Busy skips in a row (a cooldown neither counts nor resets them).
    pub consecutive_skips: u64,
    /// Runs skipped by the circuit breaker.
    pub cooldowns: u64,
    /// Finish records by outcome, for `runonce_runs_total{outcome=…}`.
    pub outcomes: BTreeMap<String, u64>,
}

pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The later of two optional times.
pub fn later(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        _ => a.or(b),
    }
}

/// Seconds since the epoch of an RFC 3339 time as records write it.
pub fn rfc3339_unix(text: &str) -> Option<f64> {
    let t = humantime::parse_rfc3339(text).ok()?;
    t.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs_f64())
}

impl JobState {
    /// Folds a finish record into the state.
    pub fn apply(&mut self, rec: &Record) {
        let Some(outcome) = rec.outcome else { return };
        *self.outcomes.entry(outcome.as_str().to_string()).or_default() += 1;
        let now = unix_now();
        match outcome {
            Outcome::Skipped => {
                self.skips += 1;
                self.consecutive_skips += 1;
                return;
            }
            Outcome::Cooldown => {
                self.cooldowns += 1;
                return;
            }
            _ => self.consecutive_skips = 0,
        }
        self.runs += 1;
        self.last_start = Some(rec.start.clone());
        self.last_start_unix = rfc3339_unix(&rec.start).or(rec.duration_s.map(|d| now - d));
        self.last_end_unix = Some(now);
        self.last_outcome = Some(outcome);
        self.last_exit = rec.exit;
        self.last_signal = rec.signal.clone();
        self.last_duration_s = rec.duration_s;
        self.last_maxrss_kib = Some(rec.maxrss_kib);
        self.last_job_pid = rec.job_pid;
        self.last_limit = rec.limit;
        if outcome.is_failure() {
            self.failures += 1;
            self.consecutive_failures += 1;
            self.last_failure_unix = Some(now);
        } else {
            self.consecutive_failures = 0;
            self.last_success_unix = Some(now);
        }
        if matches!(outcome, Outcome::Timeout | Outcome::Idle) {
            self.timeouts += 1;
        }
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    pub dir: PathBuf,
    /// Created 0700 and used only while it is ours and closed to others
    /// (a per-user default); else created 0755.
    pub private: bool,
}

impl Store {
    pub fn new(dir: PathBuf) -> Store {
        Store { dir, private: false }
    }

    pub fn private(dir: PathBuf) -> Store {
        Store { dir, private: true }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Reads a job's state, whoever wrote it (for `--status` to show).
    pub fn load(&self, name: &str) -> Option<JobState> {
        self.read(name, None)
    }

    /// Reads a job's state only if runonce's own user wrote it: a file
    /// another user planted must never open the circuit breaker.
    pub fn load_trusted(&self, name: &str) -> Option<JobState> {
        self.read(name, Some(sys::geteuid()))
    }

    fn read(&self, name: &str, owner: Option<u32>) -> Option<JobState> {
        let bytes = files::read_small(&self.path(name), STATE_MAX, owner).ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    /// Names of every job with a state file.
    pub fn names(&self) -> Vec<String> {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = dir
            .filter_map(|e| {
                let n = e.ok()?.file_name().into_string().ok()?;
                let stem = n.strip_suffix(".json")?;
                (!stem.starts_with('.')).then(|| stem.to_string())
            })
            .collect();
        names.sort();
        names
    }

    /// Creates the directory if needed and takes its lock, a private file
    /// in it (`.lock`): every writer of the state and of the files derived
    /// from it holds it, so their read-modify-write cycles never interleave.
    /// Nobody else can open it, and a run that hangs holding it delays the
    /// others by `LOCK_PATIENCE` at most.
    pub fn lock(&self) -> io::Result<File> {
        if !self.dir.is_dir() {
            let mode = if self.private { 0o700 } else { 0o755 };
            fs::DirBuilder::new().recursive(true).mode(mode).create(&self.dir)?;
        }
        if self.private {
            let meta = fs::symlink_metadata(&self.dir)?;
            if meta.uid() != sys::geteuid() || meta.mode() & 0o022 != 0 || !meta.is_dir() {
                return Err(io::Error::other(format!(
                    "not ours (owned by uid {}, mode {:o}): refused",
                    meta.uid(),
                    meta.mode() & 0o7777
                )));
            }
        }
        let dir = files::open_dir(&self.dir)?;
        let path = Path::new(".lock");
        let file = files::open_lockable(Some(&dir), path, 0o600)?;
        files::own_private(&file)?;
        files::lock_within(file, LOCK_PATIENCE)
    }

    /// Read-modify-write of a job's state under the directory's lock;
    /// `publish` runs on the new state before the lock is released (the
    /// metrics file, so that it never goes back to an older state).
    pub fn update(
        &self,
        name: &str,
        change: impl FnOnce(&mut JobState),
        publish: impl FnOnce(&JobState),
    ) -> io::Result<JobState> {
        let _guard = self.lock()?;
        let mut state = self.load_trusted(name).unwrap_or_default();
        state.name = name.to_string();
        change(&mut state);
        let text = serde_json::to_vec_pretty(&state).map_err(io::Error::other)?;
        files::replace(&self.dir, &format!("{name}.json"), &text, 0o644, true)?;
        publish(&state);
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_of_two_times() {
        assert_eq!(later(Some(1.0), Some(2.0)), Some(2.0));
        assert_eq!(later(None, Some(2.0)), Some(2.0));
        assert_eq!(later(Some(1.0), None), Some(1.0));
        assert_eq!(later(None, None), None);
        let t = rfc3339_unix("2026-01-01T00:00:00.500Z").unwrap();
        assert!((t - 1_767_225_600.5).abs() < 1e-6, "{t}");
    }

    #[test]
    fn concurrent_updates_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(Store::private(dir.path().join("s")));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        store.update("j", |s| s.runs += 1, |_| {}).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(store.load("j").unwrap().runs, 200);
        assert_eq!(store.names(), ["j"]);
    }
}
