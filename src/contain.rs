//! How an attempt's processes are held together (man page, RESOURCE
//! LIMITS, "The job's cgroup"): its own cgroup as `--contain` asks, else
//! its process group; which of `--nproc`'s two forms binds; and what
//! earlier runs left behind in cgroups of their own.

use std::time::Duration;

use crate::cgroup::{self, Made};
// the run sees cgroups through this module only
pub use crate::cgroup::{Cgroup, Fs, Usage};
use crate::cli::Contain;
use crate::config::Config;
use crate::limits;
use crate::lock::Lock;
use crate::sys;
use crate::ui;

/// The records' word for a job held by its process group alone.
pub const PGROUP: &str = "pgroup";

/// The attempt's own cgroup as `--contain` asks (None: its process group
/// holds it).  Err: why runonce must not start the job (`--contain
/// cgroup` and no cgroup could be made).
pub fn attempt(cfg: &Config, fs: &Fs) -> Result<Option<Cgroup>, String> {
    if cfg.contain == Contain::Pgroup {
        return Ok(None);
    }
    let want = cgroup::Want {
        job: &cfg.name,
        runonce_pid: sys::getpid(),
        memory: cfg.limits.memory,
        nproc: cfg.limits.nproc,
    };
    let required = cfg.contain == Contain::Cgroup;
    match cgroup::create(fs, &want) {
        Made::Cgroup(cg) => Ok(Some(cg)),
        Made::Unavailable if required => {
            Err("--contain cgroup: no cgroup runonce may create here \
             (that needs root, or a delegated cgroup v2); the job was not started"
                .into())
        }
        Made::Unavailable => Ok(None),
        Made::Failed(why) if required => {
            Err(format!("--contain cgroup: {why}; the job was not started"))
        }
        Made::Failed(why) => {
            ui::warn(&format!(
                "{why}: the job runs without a cgroup (process group, per-process limits)"
            ));
            Ok(None)
        }
    }
}

/// The cgroup layout the run needs: all of it to clear what an earlier run
/// left (`clear_stale`), none for a job its process group holds, else v2's
/// (`create` looks for the rest if that cannot hold the job).
pub fn layout(cfg: &Config, lock: &Lock) -> Fs {
    if lock.previous.is_some() {
        Fs::discover()
    } else if cfg.contain == Contain::Pgroup {
        Fs::unknown()
    } else {
        Fs::discover_v2()
    }
}

/// `--nproc` with no pids cgroup to hold it falls back to RLIMIT_NPROC,
/// which fork(2) does not enforce on root's processes (real uid 0, whatever
/// their capabilities) nor on one with CAP_SYS_ADMIN or CAP_SYS_RESOURCE:
/// then the limit is not applied, and that is said.
pub fn nproc_unenforced(cfg: &Config, cgroup: Option<&Cgroup>) -> Option<String> {
    const CAP_SYS_RESOURCE: u32 = 24;
    const CAP_SYS_ADMIN: u32 = 21;
    let n = cfg.limits.nproc?;
    if cgroup.is_some_and(Cgroup::limits_pids) {
        return None;
    }
    let exempt = sys::getuid() == 0
        || sys::has_capability(CAP_SYS_ADMIN)
        || sys::has_capability(CAP_SYS_RESOURCE);
    exempt.then(|| {
        format!(
            "--nproc {n}: no pids cgroup here, and RLIMIT_NPROC does not bind root \
             or a process with CAP_SYS_ADMIN or CAP_SYS_RESOURCE"
        )
    })
}

/// `--memory` and `--nproc` are the cgroup's where it holds them for the
/// tree; RLIMIT_DATA and RLIMIT_NPROC (which counts all of the user's
/// processes) only otherwise.
pub fn attempt_plan(plan: &limits::Plan, cgroup: Option<&Cgroup>) -> limits::Plan {
    let mut plan = plan.clone();
    // The tree's cap replaces the per-process one: an allocation RLIMIT_DATA
    // refuses leaves no evidence, the cgroup's OOM kill does (the man page,
    // RESOURCE LIMITS).
    if cgroup.is_some_and(Cgroup::limits_memory) {
        plan.rlimits.retain(|r| r.resource != libc::RLIMIT_DATA);
    }
    if cgroup.is_some_and(Cgroup::limits_pids) {
        plan.rlimits.retain(|r| r.resource != libc::RLIMIT_NPROC);
    }
    plan
}

/// The attempt is over: its cgroup's memory figures, then the cgroup goes
/// (kept orphans are moved out of it first).
pub fn close(cgroup: Option<Cgroup>, keep_orphans: bool) -> Usage {
    let Some(cg) = cgroup else {
        return Usage::default();
    };
    let usage = cg.usage();
    if keep_orphans {
        cg.release();
    }
    if let Err(e) = cg.remove() {
        ui::warn(&e);
    }
    usage
}

/// The cgroups earlier runs left behind: those the previous holder's
/// record names (its own, if its runonce is gone, and the leftovers it
/// carried), whose processes belong to a run nobody supervises any more and
/// which has let go of the lock: killed, and the cgroups removed, so that
/// nothing leaks.  Only the very cgroups those runs made count (name and
/// inode, `Holder::cgroup`): after PID reuse, a cgroup of the same name may
/// be a live run's.  Empty ones no record names go too (`cgroup::sweep`).
/// A run that ended as it should removed its cgroups before its record: no
/// record, nothing to clear, and no directory listing on the way to the job.
pub fn clear_stale(lock: &Lock, fs: &Fs, job: &str) {
    let Some(old) = &lock.previous else {
        return;
    };
    cgroup::sweep(fs, job);
    for left in old.to_clear() {
        let Some(cg) = left.cgroup() else {
            continue;
        };
        let members = cg.members();
        if !members.is_empty() {
            ui::warn(&format!(
                "{} process(es) of an earlier run of {} (its runonce, pid {}, is gone) \
                 were still in its cgroup: killed",
                members.len(),
                left.name,
                left.runonce_pid
            ));
            cg.kill();
            cg.wait_empty(Duration::from_secs(2));
        }
        if let Err(e) = cg.remove() {
            ui::warn(&e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(contain: &str) -> Config {
        let argv = ["runonce", "--contain", contain, "--", "true"];
        Config::from_cli(crate::cli::Cli::try_parse_from(argv).unwrap()).unwrap()
    }

    /// A cgroup that cannot be made for another reason than permission:
    /// `--contain cgroup` does not start the job, `auto` runs it held by its
    /// process group (man page, RESOURCE LIMITS).
    #[test]
    fn a_failed_cgroup_stops_the_job_only_where_required() {
        let t = tempfile::tempdir().unwrap();
        let fs = cgroup::tests::failing(t.path());
        let Err(err) = attempt(&config("cgroup"), &fs) else { panic!("the job would start") };
        assert!(err.starts_with("--contain cgroup: "), "{err}");
        assert!(err.ends_with("the job was not started"), "{err}");
        assert!(attempt(&config("auto"), &fs).unwrap().is_none());
        assert!(attempt(&config("pgroup"), &fs).unwrap().is_none());
    }
}
