//! Resource limits (man page, RESOURCE LIMITS).  The plan is made in the parent,
//! where it can be checked and reported; the child only replays it between
//! fork and exec, with async-signal-safe calls.
//!
//! `--memory` is RLIMIT_DATA, not RLIMIT_AS: since Linux 4.7 RLIMIT_DATA
//! counts every private writable mapping (heap and anonymous mmap), which is
//! what "memory" means to a job, while RLIMIT_AS also counts reservations
//! that use no memory (JVM and Go heaps, thread stacks) and breaks such jobs
//! long before they use the cap.  RLIMIT_RSS is not used: Linux ignores it.

use std::io;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cgroup::Usage;
use crate::record::Outcome;
use crate::sys;

const CAP_SYS_NICE: u32 = 23;
const CAP_SYS_RESOURCE: u32 = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RlimitSet {
    pub resource: libc::__rlimit_resource_t,
    pub soft: u64,
    pub hard: u64,
}

/// What the child applies, and what could not be applied (for the record).
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub rlimits: Vec<RlimitSet>,
    pub nice: Option<i32>,
    pub io_idle: bool,
    pub unapplied: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Request {
    pub memory: Option<u64>,
    pub cpu: Option<Duration>,
    pub nofile: Option<u64>,
    pub nproc: Option<u64>,
    pub nice: Option<i32>,
    pub io_idle: bool,
}

fn human_bytes(n: u64) -> String {
    if n == libc::RLIM_INFINITY {
        return "unlimited".into();
    }
    if n >= 1 << 30 {
        format!("{:.1}GiB", n as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.1}MiB", n as f64 / (1u64 << 20) as f64)
    }
}

/// Plans one rlimit: soft at `want`, hard at `hard_want`, unless the
/// current hard limit is lower and we may not raise it.
fn plan_rlimit(
    plan: &mut Plan,
    option: &str,
    resource: libc::__rlimit_resource_t,
    want: u64,
    hard_want: u64,
    shown: &dyn Fn(u64) -> String,
    may_raise: bool,
) {
    let (_, hard) = sys::getrlimit(resource);
    if want > hard && !may_raise {
        plan.unapplied.push(format!(
            "{option} {}: the hard limit is {} and raising it needs CAP_SYS_RESOURCE; \
             the job keeps the lower limit",
            shown(want),
            shown(hard)
        ));
        return;
    }
    let hard_new = if may_raise { hard_want } else { hard_want.min(hard) };
    plan.rlimits.push(RlimitSet { resource, soft: want, hard: hard_new.max(want) });
}

pub fn plan(req: &Request) -> Plan {
    let mut plan = Plan { io_idle: req.io_idle, ..Plan::default() };
    let may_raise = sys::has_capability(CAP_SYS_RESOURCE);
    if let Some(bytes) = req.memory {
        let name = "--memory (RLIMIT_DATA)";
        plan_rlimit(&mut plan, name, libc::RLIMIT_DATA, bytes, bytes, &human_bytes, may_raise);
    }
    if let Some(cpu) = req.cpu {
        // the hard limit 1 s later so the job gets SIGXCPU first and
        // SIGKILL shortly after
        let secs = cpu_secs(cpu);
        let shown = |s: u64| format!("{s}s");
        let hard = secs.saturating_add(1);
        plan_rlimit(&mut plan, "--cpu", libc::RLIMIT_CPU, secs, hard, &shown, may_raise);
    }
    if let Some(n) = req.nofile {
        let shown = |n: u64| n.to_string();
        plan_rlimit(&mut plan, "--nofile", libc::RLIMIT_NOFILE, n, n, &shown, may_raise);
    }
    if let Some(n) = req.nproc {
        let shown = |n: u64| n.to_string();
        plan_rlimit(
            &mut plan,
            "--nproc (RLIMIT_NPROC)",
            libc::RLIMIT_NPROC,
            n,
            n,
            &shown,
            may_raise,
        );
    }
    if let Some(n) = req.nice {
        if n < 0 && !sys::has_capability(CAP_SYS_NICE) {
            plan.unapplied.push(format!("--nice {n}: raising priority needs CAP_SYS_NICE"));
        } else {
            plan.nice = Some(n);
        }
    }
    plan
}

/// A limit that ended or broke the job: the record's `limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hit {
    Memory,
    Cpu,
    Nproc,
}

impl Hit {
    pub fn as_str(self) -> &'static str {
        match self {
            Hit::Memory => "memory",
            Hit::Cpu => "cpu",
            Hit::Nproc => "nproc",
        }
    }
}

/// How an attempt ended, as far as its limits can tell.
pub struct Ending {
    pub outcome: Outcome,
    /// The signal that ended the main process.
    pub signal: Option<i32>,
    /// runonce itself sent SIGKILL (a timeout, leftovers).
    pub killed_by_runonce: bool,
    /// CPU seconds of the main process.
    pub main_cpu_s: Option<f64>,
    pub cgroup: Usage,
}

/// The limit that ended or broke a job that failed by itself (a timeout
/// or runonce's own error names its cause already), from evidence only:
/// the cgroup's OOM and pids events, SIGXCPU, or a SIGKILL runonce did not
/// send to a process past its CPU time.  An allocation that RLIMIT_DATA
/// refused, or a fork that RLIMIT_NPROC refused, leaves no trace outside
/// the program (see the man page, RESOURCE LIMITS).
pub fn hit(req: &Request, end: &Ending) -> Option<Hit> {
    if !matches!(end.outcome, Outcome::Failed | Outcome::Signaled) {
        return None;
    }
    if req.memory.is_some() && end.cgroup.memory_hit {
        return Some(Hit::Memory);
    }
    if let Some(cpu) = req.cpu {
        // rusage rounds CPU time to the tick the kernel counted it in
        let past_cpu = end.main_cpu_s.is_some_and(|s| s + 0.05 >= cpu_secs(cpu) as f64);
        let killed_past_cpu =
            end.signal == Some(libc::SIGKILL) && !end.killed_by_runonce && past_cpu;
        if end.signal == Some(libc::SIGXCPU) || killed_past_cpu {
            return Some(Hit::Cpu);
        }
    }
    if req.nproc.is_some() && end.cgroup.pids_hit {
        return Some(Hit::Nproc);
    }
    None
}

/// `--cpu` as RLIMIT_CPU takes it: whole seconds, at least 1.
fn cpu_secs(cpu: Duration) -> u64 {
    // a huge --cpu saturates to RLIM_INFINITY: effectively never
    cpu.as_secs_f64().ceil().max(1.0) as u64
}

/// Applies the plan in the child, between fork and exec: only
/// async-signal-safe system calls, no allocation.  With `strict`, a failure
/// aborts the spawn (the parent sees the error); otherwise the parent has
/// already reported what could not be applied.
pub fn apply_in_child(plan: &Plan, strict: bool) -> io::Result<()> {
    for r in &plan.rlimits {
        let rl = libc::rlimit { rlim_cur: r.soft, rlim_max: r.hard };
        // SAFETY: setrlimit is async-signal-safe and reads our struct.
        if unsafe { libc::setrlimit(r.resource, &rl) } != 0 && strict {
            return Err(io::Error::last_os_error());
        }
    }
    if let Some(n) = plan.nice {
        // SAFETY: nice(2) is a plain system call; -1 can be a valid result,
        // so errno decides.
        unsafe {
            *libc::__errno_location() = 0;
            if libc::nice(n) == -1 && *libc::__errno_location() != 0 && strict {
                return Err(io::Error::last_os_error());
            }
        }
    }
    if plan.io_idle {
        const IOPRIO_WHO_PROCESS: libc::c_long = 1;
        const IOPRIO_CLASS_IDLE: libc::c_long = 3;
        // SAFETY: ioprio_set(which, who, ioprio) on ourselves.
        let ret = unsafe {
            libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE << 13)
        };
        if ret != 0 && strict {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_rlimit_data() {
        let p = plan(&Request { memory: Some(1 << 30), ..Request::default() });
        let (_, hard) = sys::getrlimit(libc::RLIMIT_DATA);
        if hard >= 1 << 30 || sys::has_capability(CAP_SYS_RESOURCE) {
            assert_eq!(p.rlimits[0].resource, libc::RLIMIT_DATA);
            assert_eq!(p.rlimits[0].soft, 1 << 30);
        } else {
            assert_eq!(p.unapplied.len(), 1);
        }
    }

    #[test]
    fn cpu_keeps_hard_above_soft() {
        let p = plan(&Request { cpu: Some(Duration::from_millis(1500)), ..Request::default() });
        let (_, hard) = sys::getrlimit(libc::RLIMIT_CPU);
        if hard < 3 && !sys::has_capability(CAP_SYS_RESOURCE) {
            assert_eq!((p.rlimits.len(), p.unapplied.len()), (0, 1), "{:?}", p.unapplied);
            return;
        }
        assert_eq!(p.rlimits.len(), 1, "nothing planned");
        let r = &p.rlimits[0];
        assert_eq!(r.resource, libc::RLIMIT_CPU);
        // rounded up; SIGKILL a second of CPU time after SIGXCPU
        assert_eq!((r.soft, r.hard), (2, 3));
    }

    #[test]
    fn hits_need_evidence_and_the_option() {
        let req = Request {
            memory: Some(1 << 20),
            cpu: Some(Duration::from_secs(2)),
            nproc: Some(10),
            ..Request::default()
        };
        let end = |outcome, signal, killed_by_runonce, cpu: f64, memory_hit, pids_hit| Ending {
            outcome,
            signal,
            killed_by_runonce,
            main_cpu_s: Some(cpu),
            cgroup: Usage { memory_hit, pids_hit, ..Usage::default() },
        };
        let kill = Some(libc::SIGKILL);
        let sig = Outcome::Signaled;
        assert_eq!(hit(&req, &end(sig, kill, false, 0.1, true, false)), Some(Hit::Memory));
        assert_eq!(
            hit(&req, &end(Outcome::Failed, None, false, 0.0, true, false)),
            Some(Hit::Memory)
        );
        assert_eq!(
            hit(&req, &end(sig, Some(libc::SIGXCPU), false, 2.0, false, false)),
            Some(Hit::Cpu)
        );
        assert_eq!(hit(&req, &end(sig, kill, false, 3.0, false, false)), Some(Hit::Cpu));
        assert_eq!(
            hit(&req, &end(sig, kill, false, 0.5, false, false)),
            None,
            "a KILL, not the CPU"
        );
        assert_eq!(hit(&req, &end(sig, kill, true, 3.0, false, false)), None, "runonce's KILL");
        assert_eq!(
            hit(&req, &end(Outcome::Failed, None, false, 0.0, false, true)),
            Some(Hit::Nproc)
        );
        assert_eq!(
            hit(&req, &end(Outcome::Ok, None, false, 0.0, true, true)),
            None,
            "it succeeded"
        );
        assert_eq!(hit(&req, &end(Outcome::Timeout, kill, true, 3.0, true, true)), None);
        let none = Request::default();
        assert_eq!(
            hit(&none, &end(sig, kill, false, 3.0, true, true)),
            None,
            "limits not asked for"
        );
        assert_eq!(Hit::Nproc.as_str(), "nproc");
    }
}
