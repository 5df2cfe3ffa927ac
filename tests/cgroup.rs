//! The job's own cgroup (issue 4 point 4) on this machine's hybrid layout:
//! cgroup v2 without controllers holds and kills the tree, the v1 memory
//! and pids controllers limit it.  The tests run as root; what a user
//! without delegation gets is tested through setpriv.

use std::process::Stdio;

#[path = "cgroup_dirs.rs"]
pub mod dirs;

use crate::util::*;
use dirs::{job_dirs, mounts};

/// What `contain` says for a root runonce here, or None (with a SKIP line
/// for `test`) where there is no cgroup hierarchy to test, or no memory
/// controller when the test needs one.
fn cgroups(test: &str, memory: bool) -> Option<&'static str> {
    let m = mounts();
    let contain = if m.v2.is_some() {
        "cgroup2"
    } else if m.memory.is_some() {
        "cgroup1"
    } else {
        skip(&format!("cgroup::{test}"), "no cgroup hierarchy mounted");
        return None;
    };
    if memory && m.memory.is_none() {
        skip(&format!("cgroup::{test}"), "no v1 memory controller");
        return None;
    }
    Some(contain)
}

#[test]
fn record_says_how_the_job_was_contained_and_the_cgroup_goes() {
    let Some(contain) = cgroups("record_says_how_the_job_was_contained_and_the_cgroup_goes", true)
    else {
        return;
    };
    let env = Env::new();
    let cg = env.path("cg");
    let m = mounts();
    // the v1 memory cgroup beside v2 only for --memory (joining it costs a
    // write to cgroup.procs); without v2 it holds the tree
    for (i, memory) in [(1, false), (2, true)] {
        let name = format!("cg{i}");
        let mut args = vec!["-n", &name];
        args.extend(if memory { &["--memory", "1G"][..] } else { &[] });
        let job = dirs::cat_cgroup(&cg, "true");
        args.extend(["--", "sh", "-c", &job]);
        let o = env.run(&args);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let rec = &env.finishes(&name)[0];
        assert_eq!(rec["contain"], contain);
        let leaf = format!("runonce-{name}@{}", rec["runonce_pid"]);
        let dirs = job_dirs(&cg);
        let v1_memory = m.memory.is_some() && (memory || m.v2.is_none());
        assert_eq!(
            dirs.len(),
            usize::from(m.v2.is_some()) + usize::from(v1_memory),
            "one cgroup per hierarchy used (--memory {memory}): {dirs:?}"
        );
        for d in &dirs {
            assert!(d.ends_with(&leaf), "{}", d.display());
            assert!(!d.exists(), "{} is left behind", d.display());
        }
        if v1_memory {
            assert!(rec["cgroup_peak_bytes"].as_u64().is_some_and(|b| b > 0), "{rec}");
            assert_eq!(rec["oom_kills"], 0);
        } else {
            assert!(rec.get("cgroup_peak_bytes").is_none(), "no memory controller: {rec}");
        }
        let records = env.records();
        let start = records.iter().find(|r| r["name"] == name.as_str()).unwrap();
        assert_eq!(start["event"], "start");
        assert_eq!(start["contain"], contain);
    }
}

#[test]
fn cgroup_goes_after_a_timeout_too() {
    if cgroups("cgroup_goes_after_a_timeout_too", false).is_none() {
        return;
    }
    let env = Env::new();
    let cg = env.path("cg");
    let job = dirs::cat_cgroup(&cg, "trap '' TERM; sleep 1000 & sleep 1000");
    let o = env.run(&["-n", "cgt", "-t", "0.3", "-k", "0.2", "--", "sh", "-c", &job]);
    assert_eq!(code(&o), 124, "{}", stderr(&o));
    let rec = &env.finishes("cgt")[0];
    assert_eq!(rec["sent"], serde_json::json!(["TERM", "KILL"]));
    let dirs = job_dirs(&cg);
    assert!(!dirs.is_empty());
    for d in &dirs {
        assert!(!d.exists(), "{} is left behind", d.display());
    }
}

#[test]
fn pgroup_opts_out() {
    let env = Env::new();
    let cg = env.path("cg");
    let o = env.run(&[
        "-n",
        "pg",
        "--contain",
        "pgroup",
        "--",
        "sh",
        "-c",
        &dirs::cat_cgroup(&cg, "true"),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let rec = &env.finishes("pg")[0];
    assert_eq!(rec["contain"], "pgroup");
    assert!(job_dirs(&cg).is_empty());
    assert!(rec.get("cgroup_peak_bytes").is_none());
}

/// Three processes of 100 MiB each under --memory 150M: each passes its
/// own RLIMIT_DATA, only the tree's memory limit can stop them.
#[test]
fn memory_cap_holds_for_the_whole_tree() {
    if cgroups("memory_cap_holds_for_the_whole_tree", true).is_none() {
        return;
    }
    let env = Env::new();
    let cg = env.path("cg");
    let hog = r#"perl -e '$x = "a"; $x x= (100 << 20); sleep 3'"#;
    let job = dirs::cat_cgroup(
        &cg,
        &format!(
            "{hog} & a=$!; {hog} & b=$!; {hog} & c=$!; s=0; \
             wait $a || s=1; wait $b || s=1; wait $c || s=1; exit $s"
        ),
    );
    let o = env.run(&["-n", "hog", "--memory", "150M", "--", "sh", "-c", &job]);
    assert_ne!(code(&o), 0, "300 MiB ran under a 150 MiB cap");
    let rec = &env.finishes("hog")[0];
    assert!(rec["oom_kills"].as_u64().is_some_and(|n| n >= 1), "{rec}");
    assert_eq!(rec["limit"], "memory", "{rec}");
    let peak = rec["cgroup_peak_bytes"].as_u64().unwrap();
    assert!(peak <= 150 << 20, "peak {peak} above the cap");
    assert!(peak >= 100 << 20, "peak {peak}: the hogs never ran");
    for d in job_dirs(&cg) {
        assert!(!d.exists(), "{} is left behind", d.display());
    }
    // one hog alone fits
    let o = env.run(&["-n", "hog1", "--memory", "150M", "--", "sh", "-c", hog]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(env.finishes("hog1")[0]["oom_kills"], 0);
    assert!(env.finishes("hog1")[0].get("limit").is_none());
}

/// A SIGKILLed runonce leaves its cgroup behind; the next runonce of the
/// job, once it has the lock, removes it.
#[test]
fn next_run_removes_the_cgroup_of_a_killed_runonce() {
    if cgroups("next_run_removes_the_cgroup_of_a_killed_runonce", false).is_none() {
        return;
    }
    let env = Env::new();
    let cg = env.path("cg");
    let go = env.path("go");
    let job =
        dirs::cat_cgroup(&cg, &format!("while [ ! -e {} ]; do sleep 0.02; done", go.display()));
    let mut first = env.cmd().args(["-n", "st", "--", "sh", "-c", &job]).spawn().unwrap();
    wait_file(&cg);
    kill(first.id() as i32, libc::SIGKILL);
    first.wait().unwrap();
    let dirs = job_dirs(&cg);
    assert!(!dirs.is_empty());
    std::fs::write(&go, "").unwrap();
    // the orphaned job ends by itself and lets go of the lock
    let o = env.run(&["-n", "st", "--wait=10", "--", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for d in &dirs {
        assert!(!d.exists(), "{} of the killed runonce is left behind", d.display());
    }
}

/// A shell line starting a daemon that lets go of the lock (closes every
/// descriptor above 2, leaves the session) and writes its PID to `pid_file`.
fn lock_free_daemon(pid_file: &std::path::Path) -> String {
    format!(
        r#"perl -e 'use POSIX; POSIX::close($_) for 3..1023; POSIX::setsid();
           open(my $f, ">", "{0}.tmp"); print $f "$$\n"; close $f;
           rename("{0}.tmp", "{0}"); sleep 1000' &"#,
        pid_file.display()
    )
}

/// `--replace` of an orphaned job kills what only its cgroup still knows:
/// a daemon that closed the lock's descriptor and whose runonce is gone.
#[test]
fn replace_kills_cgroup_members_that_let_go_of_the_lock() {
    if cgroups("replace_kills_cgroup_members_that_let_go_of_the_lock", false).is_none() {
        return;
    }
    let env = Env::new();
    let cg = env.path("cg");
    let daemon_pid = env.path("daemon.pid");
    let daemon = lock_free_daemon(&daemon_pid);
    let job = dirs::cat_cgroup(&cg, &format!("{daemon} sleep 1000"));
    let mut first = env.cmd().args(["-n", "rp", "--", "sh", "-c", &job]).spawn().unwrap();
    let daemon = read_pid(&daemon_pid);
    kill(first.id() as i32, libc::SIGKILL);
    first.wait().unwrap();
    assert!(alive(daemon));
    let dirs = job_dirs(&cg);
    let o = env.run(&["-n", "rp", "--replace", "-k", "0.5", "--", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(wait_until(SLACK, || !alive(daemon)), "the daemon survived --replace");
    for d in &dirs {
        assert!(!d.exists(), "{} is left behind", d.display());
    }
}

/// Kept orphans go free: out of the cgroup, which is then removed.
#[test]
fn kept_orphans_leave_the_cgroup() {
    if cgroups("kept_orphans_leave_the_cgroup", false).is_none() {
        return;
    }
    let env = Env::new();
    let cg = env.path("cg");
    let pid_file = env.path("orphan.pid");
    let job = dirs::cat_cgroup(
        &cg,
        &format!(
            "sleep 1000 >/dev/null 2>&1 & echo $! > {0}.tmp; mv {0}.tmp {0}",
            pid_file.display()
        ),
    );
    let o = env.run(&["-n", "ko", "--keep-orphans", "--", "sh", "-c", &job]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let orphan = read_pid(&pid_file);
    assert!(alive(orphan), "the kept orphan was killed");
    let now = std::fs::read_to_string(format!("/proc/{orphan}/cgroup")).unwrap();
    kill(orphan, libc::SIGKILL);
    assert!(!now.contains("/runonce-"), "the orphan is still in the job's cgroup: {now}");
    for d in job_dirs(&cg) {
        assert!(!d.exists(), "{} is left behind", d.display());
    }
}

/// A runonce SIGKILLed, then its job's main process ends: a process that
/// let go of the lock may stay in the run's cgroup, supervised by nobody.
/// The next run, holder of the lock now, kills it, removes the cgroup and
/// says so.
#[test]
fn next_run_kills_what_a_killed_runonce_left_in_its_cgroup() {
    if cgroups("next_run_kills_what_a_killed_runonce_left_in_its_cgroup", false).is_none() {
        return;
    }
    let env = Env::new();
    let cg = env.path("cg");
    let go = env.path("go");
    let daemon_pid = env.path("daemon.pid");
    let daemon = lock_free_daemon(&daemon_pid);
    let wait_go = format!("while [ ! -e {} ]; do sleep 0.02; done", go.display());
    let job = dirs::cat_cgroup(&cg, &format!("{daemon} {wait_go}"));
    let mut first = env.cmd().args(["-n", "sk", "--", "sh", "-c", &job]).spawn().unwrap();
    let daemon = read_pid(&daemon_pid);
    wait_file(&cg);
    kill(first.id() as i32, libc::SIGKILL);
    first.wait().unwrap();
    let dirs = job_dirs(&cg);
    assert!(!dirs.is_empty());
    std::fs::write(&go, "").unwrap();
    let o = env.run(&["-n", "sk", "--wait=10", "--", "true"]);
    let gone = wait_until(SLACK, || !alive(daemon));
    if !gone {
        kill(daemon, libc::SIGKILL);
    }
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(gone, "the killed run's daemon survived the next run");
    assert!(stderr(&o).contains("were still in its cgroup: killed"), "{}", stderr(&o));
    for d in &dirs {
        assert!(!d.exists(), "{} of the killed runonce is left behind", d.display());
    }
}

/// Without root or delegation: the process group, silently; and
/// `--contain cgroup` refuses to run.
#[test]
fn without_permission_pgroup_or_refusal() {
    let env = Env::new();
    let uid = 65534;
    std::os::unix::fs::chown(env.dir.path(), Some(uid), Some(uid)).unwrap();
    let cg = env.path("cg");
    let as_nobody = |extra: &[&str], job: &str| {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", BIN])
            .arg("--lock-dir")
            .arg(&env.lock_dir)
            .arg("--state-dir")
            .arg(&env.state_dir)
            .arg("--log")
            .arg(format!("json:{}", env.log.display()))
            .args(["-n", "nb"])
            .args(extra)
            .args(["--", "sh", "-c", job])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let o = as_nobody(&["--memory", "1G"], &dirs::cat_cgroup(&cg, "true"));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "a missing cgroup is no warning");
    assert_eq!(env.finishes("nb")[0]["contain"], "pgroup");
    assert!(job_dirs(&cg).is_empty());
    let ran = env.path("ran");
    let o = as_nobody(&["--contain", "cgroup"], &format!("touch {}", ran.display()));
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("--contain cgroup"), "{}", stderr(&o));
    assert!(!ran.exists(), "the job ran without its cgroup");
}

/// A relayed signal reaches each process of the job once, though the job
/// is both a process group (killed as one) and a cgroup (whose members are
/// signalled from its list): a real-time signal queues, so a second copy
/// would be a second signal.  The job counts SIGRTMIN until SIGRTMIN+1,
/// which runonce relays after it and which is dequeued after every
/// SIGRTMIN already queued; its count is its exit status.
#[test]
fn a_relayed_signal_reaches_the_job_once() {
    let Some(contain) = cgroups("a_relayed_signal_reaches_the_job_once", false) else {
        return;
    };
    let env = Env::new();
    let ready = env.path("ready");
    let job = format!(
        "import signal\n\
         rt, stop = signal.SIGRTMIN, signal.SIGRTMIN + 1\n\
         signal.pthread_sigmask(signal.SIG_BLOCK, [rt, stop])\n\
         open({ready:?}, 'w').close()\n\
         n = 0\n\
         while signal.sigwaitinfo([rt, stop]).si_signo == rt:\n    n += 1\n\
         raise SystemExit(n)\n",
        ready = ready.display().to_string()
    );
    let mut child =
        env.cmd().args(["-n", "rt", "--", "python3", "-c", &job]).spawn().expect("runonce");
    wait_file(&ready);
    let rt = libc::SIGRTMIN();
    for sig in [rt, rt + 1] {
        // SAFETY: kill(2) to our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "SIGRTMIN reached the job this many times");
    assert_eq!(env.finishes("rt")[0]["contain"], contain);
}

/// A process of the job that left both the job's cgroup (root may move
/// itself) and its process group still gets a signal runonce relays: found
/// through its parent, which is in the cgroup (the walk skips the cgroup's
/// listed members and reads only the rest).  Its parent ignores the signal,
/// so nothing but that walk can bring it there.
#[test]
fn a_relayed_signal_reaches_a_process_that_left_the_cgroup() {
    let test = "a_relayed_signal_reaches_a_process_that_left_the_cgroup";
    let Some(root_cgroup) = mounts().v2 else {
        skip(&format!("cgroup::{test}"), "no cgroup v2 mounted");
        return;
    };
    let env = Env::new();
    let (pid_file, got) = (env.path("escaped.pid"), env.path("got"));
    let escaped = format!(
        "trap 'echo TERM > {got}; exit 0' TERM; echo \\$\\$ > {procs} && echo \\$\\$ > {pid}; \
         while :; do sleep 0.05; done",
        got = got.display(),
        procs = root_cgroup.join("cgroup.procs").display(),
        pid = pid_file.display()
    );
    let job = format!("setsid sh -c \"{escaped}\" & trap '' TERM; wait; wait");
    let mut run = env
        .cmd()
        .args(["-n", "esc", "--contain", "cgroup", "--", "sh", "-c", &job])
        .spawn()
        .unwrap();
    let pid = read_pid(&pid_file);
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    assert!(cgroup.contains("0::/\n"), "not out of the job's cgroup: {cgroup}");
    kill(run.id() as i32, libc::SIGTERM);
    let reached = wait_until(SLACK, || got.exists());
    if !reached {
        kill(pid, libc::SIGKILL);
    }
    let status = run.wait().unwrap();
    assert!(reached, "the process outside the cgroup did not get the relayed TERM");
    assert_eq!(status.code(), Some(0), "the job ends as it ends");
}
