//! `runonce --status [NAME] [--json]`: what runs now (read from the locks,
//! never trusted from state, so a crashed runonce leaves no ghost) and how
//! each job's last run ended (from the state dir).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::fleet::LeaseRow;
use crate::holder::Holder;
use crate::lock::{self, Site};
use crate::state::{self, JobState, Store};

/// One running instance (one slot).
#[derive(Serialize)]
pub struct Running {
    pub slot: u32,
    pub pid: Option<i32>,
    pub runonce_pid: Option<i32>,
    pub job_pid: Option<i32>,
    pub since: Option<String>,
    pub age_s: Option<f64>,
    /// runonce is gone and the job runs on (it was SIGKILLed).
    pub orphaned: bool,
}

#[derive(Serialize)]
pub struct JobStatus {
    pub name: String,
    pub state: &'static str,
    pub running: Vec<Running>,
    /// Seconds since the last run ended.
    pub ended_ago_s: Option<f64>,
    pub last: Option<JobState>,
    /// With `--lock-url`: the job's fleet lease as the database has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<FleetLease>,
}

/// A job's row in the lease table (man page, FLEET).
#[derive(Serialize)]
pub struct FleetLease {
    /// Someone holds it now (it has not expired).
    pub held: bool,
    pub host: String,
    pub pid: i32,
    pub fencing_token: i64,
    pub since: String,
    pub expires_in_s: f64,
}

impl FleetLease {
    fn from_row(row: &LeaseRow) -> FleetLease {
        FleetLease {
            held: row.expires_in_s > 0.0,
            host: row.holder.host.clone(),
            pid: row.holder.pid,
            fencing_token: row.holder.token,
            since: rfc3339_of(row.acquired_unix).unwrap_or_else(|| "-".into()),
            expires_in_s: (row.expires_in_s * 10.0).round() / 10.0,
        }
    }

    fn cell(&self) -> String {
        if self.held {
            format!(
                "{}:{} token {} ({:.0}s left)",
                self.host, self.pid, self.fencing_token, self.expires_in_s
            )
        } else {
            format!("free (last {}:{}, token {})", self.host, self.pid, self.fencing_token)
        }
    }
}

/// Adds the fleet leases to the jobs; a job known only to the database
/// (it ran on other hosts) is listed too, unless one job was asked for.
pub fn attach_leases(jobs: &mut Vec<JobStatus>, rows: &[LeaseRow], name: Option<&str>) {
    for row in rows {
        let lease = Some(FleetLease::from_row(row));
        match jobs.iter_mut().find(|j| j.name == row.name) {
            Some(j) => j.lease = lease,
            None if name.is_none_or(|n| n == row.name) => jobs.push(JobStatus {
                name: row.name.clone(),
                state: "idle",
                running: Vec::new(),
                ended_ago_s: None,
                last: None,
                lease,
            }),
            None => {}
        }
    }
    jobs.sort_by(|a, b| a.name.cmp(&b.name));
}

pub struct Dirs {
    pub lock_dir: PathBuf,
    pub lock_file: Option<PathBuf>,
    pub state_dir: PathBuf,
}

/// Names of jobs that have a lock file in the lock dir.
fn lock_names(dir: &Path) -> Vec<String> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| {
        let n = e.ok()?.file_name().into_string().ok()?;
        let stem = n.strip_suffix(".lock")?;
        (!stem.contains('@')).then(|| stem.to_string())
    })
    .collect()
}

/// Whether a lock is held is read from /proc/locks; who holds it from the
/// holder record, shown only if it is ours to trust (a user other than
/// root cannot read root's: PIDs then show as unknown).
fn running_slots(site: &Site, held: &lock::HeldLocks) -> Vec<Running> {
    let mut out = Vec::new();
    for slot in 0.. {
        let Some(path) = site.lock_path(slot).filter(|p| p.exists()) else {
            break;
        };
        if !held.holds(&path) {
            continue;
        }
        let h = crate::holder::record(site, slot);
        let job_pid =
            h.as_ref().and_then(|h| h.job.filter(crate::procs::ProcId::alive)).map(|p| p.pid);
        out.push(Running {
            slot,
            pid: h.as_ref().and_then(Holder::shown_pid),
            runonce_pid: h.as_ref().and_then(|h| h.runonce).map(|p| p.pid),
            job_pid,
            since: h.as_ref().and_then(|h| rfc3339_of(h.started_unix)),
            age_s: h.as_ref().map(|h| (h.age_secs() * 10.0).round() / 10.0),
            orphaned: h.as_ref().is_some_and(Holder::orphaned),
        });
    }
    out
}

/// The instances of a job running now, as its locks tell.
#[derive(Debug, Default, PartialEq)]
pub struct Live {
    pub count: u32,
    /// Start of the newest of them, seconds since the epoch.
    pub newest_start: Option<f64>,
}

/// The instances of a job running now, besides slot `except` (the
/// caller's own).  An instance whose job has ended is no longer counted,
/// even while its runonce still holds the lock to write the record: so
/// whichever instance writes the metrics last, it writes the right number.
pub fn live(site: &Site, except: Option<u32>) -> Live {
    let mut live = Live::default();
    for slot in 0.. {
        let Some(path) = site.lock_path(slot).filter(|p| p.exists()) else {
            break;
        };
        if Some(slot) == except || !lock::is_held(&path) {
            continue;
        }
        let holder = crate::holder::record(site, slot);
        let running = match &holder {
            Some(h) => match h.job {
                Some(job) => job.alive(),
                None => h.runonce.is_some_and(|r| r.alive()), // still starting
            },
            None => true, // held, its record not written yet (or not ours to read)
        };
        if running {
            live.count += 1;
            if let Some(h) = holder {
                live.newest_start = state::later(live.newest_start, Some(h.started_unix));
            }
        }
    }
    live
}

/// Every job with a lock file in the lock dir or a state file.
pub fn names(dirs: &Dirs) -> BTreeSet<String> {
    let store = Store::new(dirs.state_dir.clone());
    lock_names(&dirs.lock_dir).into_iter().chain(store.names()).collect()
}

pub fn collect(dirs: &Dirs, name: Option<&str>) -> Vec<JobStatus> {
    let store = Store::new(dirs.state_dir.clone());
    let names: BTreeSet<String> = match name {
        Some(n) => [n.to_string()].into(),
        None => names(dirs),
    };
    let held = lock::HeldLocks::read();
    names
        .into_iter()
        .filter_map(|n| {
            let site = match (&dirs.lock_file, name) {
                (Some(f), Some(_)) => Site::explicit(&dirs.lock_dir, f),
                _ => Site::named(&dirs.lock_dir, &n),
            };
            let last = store.load(&n);
            if last.is_none() && !site.base.exists() {
                return None;
            }
            let running = running_slots(&site, &held);
            let state = if running.is_empty() { "idle" } else { "running" };
            let ended_ago_s = last.as_ref().and_then(|l| l.last_end_unix).map(|t| {
                let ago = (state::unix_now() - t).max(0.0);
                (ago * 10.0).round() / 10.0
            });
            Some(JobStatus { name: n, state, running, ended_ago_s, last, lease: None })
        })
        .collect()
}

/// A start time read back from a lock file, as RFC 3339; None for what no
/// clock shows (negative, NaN, past the year 9999): a torn or forged record
/// must not stop `--status`.
fn rfc3339_of(unix: f64) -> Option<String> {
    const YEAR_10000: f64 = 253_402_300_800.0;
    if !(0.0..YEAR_10000).contains(&unix) {
        return None;
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(unix);
    Some(humantime::format_rfc3339_seconds(t).to_string())
}

/// `3d 2h ago`: the two largest units are enough to tell a stale job.
fn ago(secs: Option<f64>) -> String {
    let Some(secs) = secs else { return "-".into() };
    let secs = secs as u64;
    let parts =
        [(secs / 86400, "d"), (secs / 3600 % 24, "h"), (secs / 60 % 60, "m"), (secs % 60, "s")];
    let first = parts.iter().position(|&(n, _)| n > 0).unwrap_or(parts.len() - 1);
    let shown: Vec<String> = parts[first..]
        .iter()
        .take(2)
        .filter(|&&(n, _)| n > 0 || first == parts.len() - 1)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    format!("{} ago", shown.join(" "))
}

pub fn table(jobs: &[JobStatus]) -> String {
    let fleet = jobs.iter().any(|j| j.lease.is_some());
    let mut header = [
        "NAME", "STATE", "PID", "SINCE", "LAST", "EXIT", "LIMIT", "DURATION", "ENDED", "FAILS",
        "SKIPS",
    ]
    .map(String::from)
    .to_vec();
    if fleet {
        header.push("LEASE".into());
    }
    let mut rows = vec![header];
    for j in jobs {
        let last = j.last.as_ref();
        let tail = [
            last.and_then(|l| l.last_outcome).map_or("-".into(), |o| o.as_str().to_string()),
            last.and_then(|l| l.last_exit).map_or("-".into(), |e| e.to_string()),
            last.and_then(|l| l.last_limit).map_or("-".into(), |h| h.as_str().to_string()),
            last.and_then(|l| l.last_duration_s).map_or("-".into(), |d| format!("{d:.2}s")),
            ago(j.ended_ago_s),
            last.map_or("0".into(), |l| l.consecutive_failures.to_string()),
            last.map_or("0".into(), |l| l.consecutive_skips.to_string()),
        ]
        .into_iter()
        .chain(fleet.then(|| j.lease.as_ref().map_or("-".into(), FleetLease::cell)))
        .collect::<Vec<String>>();
        if j.running.is_empty() {
            let mut row = [j.name.clone(), "idle".into(), "-".into(), "-".into()].to_vec();
            row.extend(tail.iter().cloned());
            rows.push(row);
        }
        for r in &j.running {
            let name = if r.slot == 0 { j.name.clone() } else { format!("{}@{}", j.name, r.slot) };
            let state = if r.orphaned { "running (orphaned)" } else { "running" };
            let since = match (&r.since, r.age_s) {
                (Some(s), Some(a)) => format!("{s} ({a:.0}s)"),
                _ => "-".into(),
            };
            let pid = r.pid.map_or("-".into(), |p| p.to_string());
            let mut row = vec![name, state.into(), pid, since];
            row.extend(tail.iter().cloned());
            rows.push(row);
        }
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> =
            r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

pub fn json(jobs: &[JobStatus], single: bool) -> String {
    let text = if single && jobs.len() == 1 {
        serde_json::to_string_pretty(&jobs[0])
    } else {
        serde_json::to_string_pretty(jobs)
    };
    text.unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procs::ProcId;

    #[test]
    fn start_times_no_clock_shows_are_left_out() {
        assert_eq!(rfc3339_of(0.0).as_deref(), Some("1970-01-01T00:00:00Z"));
        for odd in [-1.0, f64::NAN, 1e300, f64::INFINITY, -0.5, 253_402_300_800.0] {
            assert_eq!(rfc3339_of(odd), None, "{odd}");
        }
    }

    #[test]
    fn live_counts_held_slots_whose_job_runs() {
        let dir = tempfile::tempdir().unwrap();
        let site = Site::named(dir.path(), "j");
        assert_eq!(live(&site, None), Live::default());
        let me = ProcId::of(crate::sys::getpid());
        let holder = |job: Option<ProcId>, started_unix: f64| Holder {
            name: "j".into(),
            runonce: me,
            job,
            started_unix,
            ..Holder::default()
        };
        let take = || match lock::try_acquire(&site, 2, &holder(None, 0.0), false) {
            Ok(lock::Tried::Got(l)) => l,
            _ => panic!("not taken"),
        };
        let a = take();
        let b = take();
        a.write_holder(&holder(me, 10.0));
        b.write_holder(&holder(None, 20.0));
        assert_eq!(live(&site, None), Live { count: 2, newest_start: Some(20.0) });
        assert_eq!(live(&site, Some(1)).count, 1, "the caller's own slot is left out");
        // a job that has ended no longer counts, though its lock is held
        let gone = ProcId { pid: i32::MAX - 1, start: 1 };
        b.write_holder(&holder(Some(gone), 20.0));
        assert_eq!(live(&site, None), Live { count: 1, newest_start: Some(10.0) });
        drop(a);
        assert_eq!(live(&site, None).count, 0);
    }

    #[test]
    fn ago_shows_the_two_largest_units() {
        assert_eq!(ago(None), "-");
        assert_eq!(ago(Some(0.4)), "0s ago");
        assert_eq!(ago(Some(42.0)), "42s ago");
        assert_eq!(ago(Some(125.0)), "2m 5s ago");
        assert_eq!(ago(Some(3600.0)), "1h ago");
        assert_eq!(ago(Some(3.0 * 86400.0 + 7385.0)), "3d 2h ago");
        assert_eq!(ago(Some(86400.0 + 59.0)), "1d ago");
    }
}
