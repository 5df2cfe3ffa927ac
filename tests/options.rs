//! Every option's effect, seen from where it acts (issue 17): the job reads
//! its own rlimits, nice value, I/O priority, terminal and signals, and the
//! record says what runonce did.  Exit codes alone prove little.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::*;

use crate::cgroup::dirs;

fn sh(env: &Env, name: &str, extra: &[&str], script: &str) -> Output {
    env.cmd().args(["-n", name]).args(extra).args(["--", "sh", "-c", script]).output().unwrap()
}

fn finish(env: &Env, name: &str) -> Value {
    let f = env.finishes(name);
    assert_eq!(f.len(), 1, "one finish record for {name}: {f:?}");
    f.into_iter().next().unwrap()
}

/// (soft, hard) of one line of a /proc/PID/limits the job wrote.
fn limit(limits: &str, what: &str) -> (String, String) {
    let line = limits
        .lines()
        .find(|l| l.starts_with(what))
        .unwrap_or_else(|| panic!("no {what:?} in {limits}"));
    let mut cells = line[what.len()..].split_whitespace();
    (cells.next().unwrap().to_string(), cells.next().unwrap().to_string())
}

/// A job that writes what it is subject to: its limits, its stat line
/// (nice is field 19 of proc(5)) and `ionice -p` of itself.
fn report_script(env: &Env) -> String {
    format!(
        "cat /proc/$$/limits > {d}/limits; cat /proc/$$/stat > {d}/stat; \
         ionice -p $$ > {d}/ionice",
        d = env.dir.path().display()
    )
}

fn read(env: &Env, file: &str) -> String {
    std::fs::read_to_string(env.path(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn nice_of(stat: &str) -> i32 {
    // field 19 of proc(5); the vector starts at field 3
    stat_fields(stat)[19 - 3].parse().unwrap()
}

#[test]
fn limits_nice_and_io_idle_reach_the_job() {
    let env = Env::new();
    let extra = [
        "--contain",
        "pgroup",
        "--memory",
        "300M",
        "--cpu",
        "1.5",
        "--nofile",
        "77",
        "--nproc",
        "4000",
        "--nice",
        "7",
        "--io-idle",
    ];
    let out = sh(&env, "lim", &extra, &report_script(&env));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let limits = read(&env, "limits");
    let bytes = (300u64 << 20).to_string();
    assert_eq!(limit(&limits, "Max data size"), (bytes.clone(), bytes), "--memory is RLIMIT_DATA");
    // rounded up to whole seconds; the hard limit a second above
    assert_eq!(limit(&limits, "Max cpu time"), ("2".into(), "3".into()));
    assert_eq!(limit(&limits, "Max open files"), ("77".into(), "77".into()));
    assert_eq!(limit(&limits, "Max processes"), ("4000".into(), "4000".into()));
    assert_eq!(nice_of(&read(&env, "stat")), 7);
    assert_eq!(read(&env, "ionice").trim(), "idle");
    let rec = finish(&env, "lim");
    assert_eq!(rec["contain"], "pgroup");
    // root is not bound by RLIMIT_NPROC and there is no pids cgroup here
    let unapplied: Vec<String> = serde_json::from_value(rec["limits_unapplied"].clone()).unwrap();
    assert_eq!(unapplied.len(), 1, "{rec}");
    assert!(unapplied[0].starts_with("--nproc 4000"), "{rec}");

    // without the options the job keeps what runonce had
    let out = sh(&env, "plain", &["--contain", "pgroup"], &report_script(&env));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ours = std::fs::read_to_string("/proc/self/limits").unwrap();
    for what in ["Max data size", "Max cpu time", "Max open files"] {
        assert_eq!(limit(&read(&env, "limits"), what), limit(&ours, what), "{what}");
    }
    let own_nice = nice_of(&std::fs::read_to_string("/proc/self/stat").unwrap());
    assert_eq!(nice_of(&read(&env, "stat")), own_nice);
    assert_ne!(read(&env, "ionice").trim(), "idle");
    assert_eq!(finish(&env, "plain")["limits_unapplied"], json!([]));
}

/// With a cgroup, --memory and --nproc also bind the whole tree: the job
/// reads the limits of the cgroup it sits in.
#[test]
fn memory_and_nproc_bind_the_job_cgroup() {
    let m = dirs::mounts();
    let (Some(memory), Some(pids)) = (m.memory.as_ref(), m.pids.as_ref()) else {
        skip("memory_and_nproc_bind_the_job_cgroup", "no v1 memory and pids hierarchies");
        return;
    };
    let env = Env::new();
    let d = env.dir.path().display();
    let script = format!(
        "m=$(grep -E '^[0-9]+:([^:]*,)?memory(,[^:]*)?:' /proc/$$/cgroup | cut -d: -f3); \
         p=$(grep -E '^[0-9]+:([^:]*,)?pids(,[^:]*)?:' /proc/$$/cgroup | cut -d: -f3); \
         cat {mem}$m/memory.limit_in_bytes > {d}/mem; cat {pids}$p/pids.max > {d}/pids; \
         cat {mem}$m/memory.memsw.limit_in_bytes > {d}/memsw 2>/dev/null || true",
        mem = memory.display(),
        pids = pids.display(),
    );
    let extra = ["--contain", "cgroup", "--memory", "96M", "--nproc", "33"];
    let out = sh(&env, "cgl", &extra, &script);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(read(&env, "mem").trim(), (96u64 << 20).to_string());
    assert_eq!(read(&env, "pids").trim(), "33");
    let memsw = read(&env, "memsw");
    if !memsw.is_empty() {
        assert_eq!(memsw.trim(), (96u64 << 20).to_string(), "swap is no way around --memory");
    }
    let rec = finish(&env, "cgl");
    assert_ne!(rec["contain"], "pgroup", "{rec}");
    assert_eq!(rec["limits_unapplied"], json!([]), "the pids cgroup binds root");
}

#[test]
fn cpu_sends_sigxcpu_then_kill() {
    let env = Env::new();
    let got = env.path("got-xcpu");
    // the shell runs its trap between commands: a loop of builtins
    let script = format!("trap 'touch {}' XCPU; while :; do :; done", got.display());
    // (the timeout only ends a run whose --cpu was lost)
    let out = sh(&env, "xcpu", &["--cpu", "1", "-t", "60"], &script);
    assert_eq!(code(&out), 137, "{}", stderr(&out));
    assert!(got.exists(), "SIGXCPU came first");
    let rec = finish(&env, "xcpu");
    assert_eq!((&rec["outcome"], &rec["signal"]), (&json!("signaled"), &json!("KILL")), "{rec}");
    assert_eq!(rec["sent"], json!([]), "the kernel killed it, not runonce");
    assert_eq!(rec["limit"], "cpu");
    assert!(
        rec["cpu_user_s"].as_f64().unwrap() + rec["cpu_sys_s"].as_f64().unwrap() >= 1.5,
        "{rec}"
    );
}

#[test]
fn signal_is_what_the_job_gets_on_timeout() {
    let env = Env::new();
    let got = env.path("got-usr1");
    let script =
        format!("trap 'touch {}; exit 3' USR1; while :; do sleep 0.02; done", got.display());
    let t = Instant::now();
    let out = sh(&env, "usr1", &["-t", "0.3", "-s", "USR1", "-k", "30"], &script);
    assert_eq!(code(&out), 124, "{}", stderr(&out));
    assert!(got.exists(), "the job never got SIGUSR1");
    assert!(t.elapsed() < Duration::from_secs(25), "it took SIGKILL: {:?}", t.elapsed());
    let rec = finish(&env, "usr1");
    assert_eq!(rec["sent"], json!(["USR1"]), "{rec}");
    assert_eq!((&rec["outcome"], &rec["exit"]), (&json!("timeout"), &json!(124)));

    // KILL at once: no grace, the TERM trap never runs
    let got = env.path("got-term");
    let script = format!("trap 'touch {}' TERM; while :; do sleep 0.02; done", got.display());
    let t = Instant::now();
    let out = sh(&env, "kill", &["-t", "0.3", "-s", "KILL", "-k", "30"], &script);
    assert_eq!(code(&out), 124, "{}", stderr(&out));
    assert!(t.elapsed() < Duration::from_secs(25), "it waited for --kill-after: {:?}", t.elapsed());
    assert!(!got.exists(), "the job got SIGTERM");
    let rec = finish(&env, "kill");
    assert_eq!((&rec["sent"], &rec["signal"]), (&json!(["KILL"]), &json!("KILL")), "{rec}");
}

/// Under script(1) runonce has a terminal: with --foreground the job is in
/// the terminal's foreground process group, without it in a group of its
/// own; and a timeout signals the job's processes, not runonce's group.
#[test]
fn foreground_keeps_the_terminal() {
    let env = Env::new();
    for (fg, name) in [(true, "fg"), (false, "bg")] {
        let stat = env.path(&format!("{name}.stat"));
        let job = format!("cat /proc/$$/stat > {}; sleep 30", stat.display());
        let mut inner = vec![
            BIN.to_string(),
            "--lock-dir".into(),
            env.lock_dir.display().to_string(),
            "--log".into(),
            format!("json:{}", env.log.display()),
            "--state-dir".into(),
            env.state_dir.display().to_string(),
            "-n".into(),
            name.into(),
            "-t".into(),
            "1".into(),
            "-k".into(),
            "1".into(),
        ];
        if fg {
            inner.push("--foreground".into());
        }
        inner.extend(["--".into(), "sh".into(), "-c".into(), job]);
        let quoted: Vec<String> = inner.iter().map(|a| format!("'{a}'")).collect();
        // a sibling of runonce in its process group, which a timeout
        // must not reach; the shell of script(1) has no job control
        let line = format!(
            "sleep 60 & s=$!; {cmd}; echo \"exit=$?\"; kill -0 $s && echo sibling-alive; kill $s",
            cmd = quoted.join(" ")
        );
        let out = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = stdout(&out);
        assert!(text.contains("exit=124"), "{name}: {text}");
        let fields = stat_fields(&std::fs::read_to_string(&stat).unwrap());
        // pgrp, session, tty_nr, tpgid: fields 5 to 8 of proc(5)
        let (pgrp, tty, tpgid) = (&fields[2], &fields[4], &fields[5]);
        assert_ne!(tty, "0", "{name}: the job has no controlling terminal");
        if fg {
            assert_eq!(pgrp, tpgid, "--foreground: the job is not the terminal's foreground");
        } else {
            assert_ne!(pgrp, tpgid, "the job is in the foreground without --foreground");
        }
        assert!(
            text.contains("sibling-alive"),
            "{name}: the timeout hit a process outside the job"
        );
        let rec = finish(&env, name);
        assert_eq!((&rec["outcome"], &rec["sent"]), (&json!("timeout"), &json!(["TERM"])));
    }
}

/// runonce's PID holds a blocked flock (a `->` line of /proc/locks) on
/// the file with inode `ino`.
fn blocked_on(pid: u32, ino: u64) -> bool {
    let locks = std::fs::read_to_string("/proc/locks").unwrap();
    locks.lines().any(|l| {
        let cells: Vec<&str> = l.split_whitespace().collect();
        cells.get(1) == Some(&"->")
            && cells.get(5) == Some(&pid.to_string().as_str())
            && cells.get(6).is_some_and(|c| c.ends_with(&format!(":{ino}")))
    })
}

fn inode(path: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap())
}

#[test]
fn a_signal_ends_the_wait_and_nothing_runs() {
    let env = Env::new();
    let holder = env.hold("sw", &[]);
    let ran = env.path("ran");
    let mut waiter = env
        .cmd()
        .args(["-n", "sw", "--wait", "--", "touch", ran.to_str().unwrap()])
        .spawn()
        .unwrap();
    let ino = inode(&env.lock_dir.join("sw.lock"));
    assert!(wait_until(SLACK, || blocked_on(waiter.id(), ino)), "the waiter never blocked");
    let t = Instant::now();
    kill(waiter.id() as i32, libc::SIGTERM);
    let mut status = None;
    wait_until(SLACK, || {
        status = waiter.try_wait().unwrap();
        status.is_some()
    });
    let Some(status) = status else {
        kill(waiter.id() as i32, libc::SIGKILL);
        panic!("the signal did not end the wait");
    };
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    assert!(t.elapsed() < SLACK);
    assert_eq!(holder.release(), Some(0));
    assert!(!ran.exists(), "the command ran after the signal");
    let rec = &env.finishes("sw")[0];
    assert_eq!(
        (&rec["outcome"], &rec["exit"], &rec["job_pid"]),
        (&json!("error"), &json!(143), &json!(null)),
        "{rec}"
    );
    assert!(rec["message"].as_str().unwrap().contains("SIGTERM before the job started"), "{rec}");
    assert_eq!(env.finishes("sw")[1]["outcome"], "ok", "the holder's run");
}

/// A lock file deleted or replaced while a run waits for it: the waiter
/// gets the old file's lock when its holder goes, sees that the name now
/// leads elsewhere, and waits on the new file instead of running beside
/// whoever holds that one.
#[test]
fn a_deleted_or_replaced_lock_file_is_noticed() {
    for replace in [false, true] {
        let env = Env::new();
        let name = if replace { "replaced" } else { "deleted" };
        let lock = env.lock_dir.join(format!("{name}.lock"));
        let holder = env.hold(name, &[]);
        let ran = env.path("ran");
        let mut waiter = env
            .cmd()
            .args(["-n", name, "--wait", "--", "touch", ran.to_str().unwrap()])
            .spawn()
            .unwrap();
        assert!(wait_until(SLACK, || blocked_on(waiter.id(), inode(&lock))));
        if replace {
            let new = env.lock_dir.join("new");
            std::fs::write(&new, "").unwrap();
            std::fs::rename(&new, &lock).unwrap();
        } else {
            std::fs::remove_file(&lock).unwrap();
            std::fs::write(&lock, "").unwrap();
        }
        // someone holds the file that now has the name
        let other = std::fs::OpenOptions::new().read(true).write(true).open(&lock).unwrap();
        other.lock().unwrap();
        let new_ino = inode(&lock);
        assert_eq!(holder.release(), Some(0));
        let noticed = wait_until(SLACK, || ran.exists() || blocked_on(waiter.id(), new_ino));
        assert!(noticed && !ran.exists(), "{name}: the waiter ran on a lock file no longer named");
        other.unlock().unwrap();
        assert_eq!(waiter.wait().unwrap().code(), Some(0));
        assert!(ran.exists());
    }
}

/// The default name is pinned (a new hash would give every crontab line a
/// new lock, state and metrics): the man page's own example, through the
/// binary.
#[test]
fn default_name_is_the_man_pages() {
    let env = Env::new();
    let out = env.run(&["--", "/opt/collector/run.py", "--all"]);
    assert_eq!(code(&out), 127);
    assert_eq!(env.records().last().unwrap()["name"], "run.py-2145438f");
    let out = env.run(&["--", "sh", "-c", "exit 0"]);
    assert_eq!(code(&out), 0);
    let rec = env.records().last().unwrap().clone();
    assert_eq!(rec["name"], "sh-cff856d7", "{rec}");
    assert!(env.lock_dir.join("sh-cff856d7.lock").exists());
}

/// A negative --nice needs CAP_SYS_NICE: for a user it is reported, not
/// dropped silently, and --strict-limits refuses to run.
#[test]
fn unapplied_limits_are_reported_and_strict_refuses() {
    let env = Env::new();
    std::os::unix::fs::chown(env.dir.path(), Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = env.dir.path().display().to_string();
    let as_nobody = |extra: &[&str], job: &str| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", BIN])
            .args(["--lock-dir", &format!("{d}/lock"), "--state-dir", &format!("{d}/state")])
            .args(["--log", &format!("json:{d}/log.jsonl"), "-n", "un"])
            .args(extra)
            .args(["--", "sh", "-c", job])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let job = format!("cat /proc/$$/stat > {d}/stat");
    let out = as_nobody(&["--nice", "-5", "--nofile", "64"], &job);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("limit not applied: --nice -5"), "{}", stderr(&out));
    let own_nice = nice_of(&std::fs::read_to_string("/proc/self/stat").unwrap());
    assert_eq!(nice_of(&read(&env, "stat")), own_nice);
    let rec = finish(&env, "un");
    assert_eq!(rec["outcome"], "ok");
    let unapplied: Vec<String> = serde_json::from_value(rec["limits_unapplied"].clone()).unwrap();
    assert_eq!(unapplied.len(), 1, "{rec}");
    assert!(unapplied[0].starts_with("--nice -5: "), "{rec}");

    let ran = format!("{d}/ran");
    let out = as_nobody(&["--nice", "-5", "--strict-limits"], &format!("touch {ran}"));
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("--nice -5"), "{}", stderr(&out));
    assert!(!Path::new(&ran).exists(), "--strict-limits ran the job");
    let recs = env.finishes("un");
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[1]["outcome"], "error", "{}", recs[1]);
    // what can be applied is no reason to refuse
    let out = as_nobody(&["--nice", "5", "--nofile", "64", "--strict-limits"], "exit 0");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn quiet_replays_every_unsuccessful_outcome() {
    let env = Env::new();
    let cases: &[(&str, &[&str], &str, i32, &str)] = &[
        ("ok", &[], "exit 0", 0, "ok"),
        ("failed", &[], "exit 3", 3, "failed"),
        ("timeout", &["-t", "0.5", "-k", "5"], "exec sleep 30", 124, "timeout"),
        ("idle", &["--idle-timeout", "0.5", "-k", "5"], "exec sleep 30", 124, "idle"),
        ("signaled", &[], "kill -USR1 $$", 138, "signaled"),
    ];
    for &(name, extra, tail, exit, outcome) in cases {
        let script = format!("echo out-{name}; echo err-{name} >&2; {tail}");
        let mut args = vec!["-q"];
        args.extend_from_slice(extra);
        let out = sh(&env, name, &args, &script);
        assert_eq!(code(&out), exit, "{name}: {}", stderr(&out));
        assert_eq!(finish(&env, name)["outcome"], outcome);
        if outcome == "ok" {
            assert_eq!((stdout(&out), stderr(&out)), (String::new(), String::new()), "{name}");
        } else {
            assert_eq!(stdout(&out), format!("out-{name}\n"), "{name}: not replayed");
            assert_eq!(stderr(&out), format!("err-{name}\n"), "{name}: not replayed");
        }
    }
}

/// Output on stderr alone keeps an --idle-timeout job alive.
#[test]
fn idle_timer_is_reset_by_stderr_too() {
    let env = Env::new();
    // twice the idle timeout in all, never silent for a fifth of it
    let script = "i=0; while [ $i -lt 20 ]; do echo $i >&2; sleep 0.2; i=$((i+1)); done";
    let out = sh(&env, "errs", &["--idle-timeout", "2"], script);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 20);
    assert_eq!(finish(&env, "errs")["outcome"], "ok");
}

/// A closed standard output is counted, never fatal: the job's status
/// stands and the record has `output_lost_bytes`.
#[test]
fn output_that_cannot_be_delivered_is_counted() {
    let env = Env::new();
    let mut cmd = env.cmd();
    cmd.args(["-n", "lost", "--idle-timeout", "30", "--", "sh", "-c"]);
    cmd.arg("printf 0123456789; printf abc >&2; exit 3");
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(3));
    assert_eq!(err, "abc");
    let rec = finish(&env, "lost");
    assert_eq!(rec["output_lost_bytes"], 10, "{rec}");
    assert_eq!(rec["outcome"], "failed");
    // nothing lost: no key
    let out = sh(&env, "kept", &["--idle-timeout", "30"], "printf 0123456789");
    assert_eq!(stdout(&out), "0123456789");
    assert!(finish(&env, "kept").get("output_lost_bytes").is_none());
}
