//! The core binary (issue 2): exit codes, stdio, lock, timeout and kill
//! sequence, signal forwarding, transparency, bad input.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::*;

#[test]
fn exit_codes_pass_through() {
    let env = Env::new();
    assert_eq!(code(&env.run(&["--", "true"])), 0);
    assert_eq!(code(&env.run(&["--", "false"])), 1);
    assert_eq!(code(&env.run(&["--", "sh", "-c", "exit 42"])), 42);
    for own in [124, 125, 126, 127] {
        let o = env.run(&["--name", "own", "--", "sh", "-c", &format!("exit {own}")]);
        assert_eq!(code(&o), own, "the job's own {own} passes through");
    }
    let recs = env.finishes("own");
    assert_eq!(recs.len(), 4);
    assert!(recs.iter().all(|r| r["outcome"] == "failed"), "{recs:?}");
}

#[test]
fn stdin_stdout_stderr_pass_through() {
    let env = Env::new();
    let mut child = env
        .cmd()
        .args(["--", "sh", "-c", "read line; echo \"out:$line\"; echo err >&2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 0);
    assert_eq!(stdout(&o), "out:hello\n");
    assert_eq!(stderr(&o), "err\n");
}

#[test]
fn not_found_and_not_executable() {
    let env = Env::new();
    let o = env.run(&["--", "/no/such/cmd"]);
    assert_eq!(code(&o), 127);
    assert!(stderr(&o).contains("/no/such/cmd"), "{}", stderr(&o));
    let o = env.run(&["--", "runonce-test-no-such-command"]);
    assert_eq!(code(&o), 127);
    let script = env.path("noexec.sh");
    std::fs::write(&script, format!("#!/bin/sh\ntouch {}\n", env.path("ran").display())).unwrap();
    let o = env.run(&["--", script.to_str().unwrap()]);
    assert_eq!(code(&o), 126);
    assert!(stderr(&o).contains("noexec.sh"));
    assert!(!env.path("ran").exists());
    let recs = env.records();
    let errors = recs.iter().filter(|r| r["outcome"] == "error").count();
    assert_eq!(errors, 3, "each failed start leaves an error record");
}

#[test]
fn death_by_signal_is_128_plus_n() {
    let env = Env::new();
    let o = env.run(&["--name", "usr1", "--", "sh", "-c", "kill -USR1 $$"]);
    assert_eq!(code(&o), 138);
    let r = &env.finishes("usr1")[0];
    assert_eq!(r["outcome"], "signaled");
    assert_eq!(r["signal"], "USR1");
    assert_eq!(r["exit"], 138);
}

#[test]
fn timeout_exits_124_and_records_it() {
    let env = Env::new();
    let t = Instant::now();
    let o = env.run(&["--name", "t", "-t", "0.3", "-k", "5", "--", "sleep", "100"]);
    let took = t.elapsed();
    assert_eq!(code(&o), 124);
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < Duration::from_secs(5), "sleep dies on TERM, no need for KILL: {took:?}");
    let r = &env.finishes("t")[0];
    assert_eq!(r["outcome"], "timeout");
    assert_eq!(r["exit"], 124);
    assert_eq!(r["sent"], serde_json::json!(["TERM"]));
    assert_eq!(r["signal"], "TERM");
}

#[test]
fn term_trapping_job_is_killed_after_kill_after() {
    let env = Env::new();
    let mark = env.path("trapped");
    let script = format!("trap 'touch {}' TERM; while :; do sleep 0.05; done", mark.display());
    let t = Instant::now();
    let o = env.run(&["--name", "trap", "-t", "0.3", "-k", "1", "--", "sh", "-c", &script]);
    let took = t.elapsed();
    assert_eq!(code(&o), 124);
    assert!(mark.exists(), "the job got TERM first");
    assert!(took >= Duration::from_millis(1250), "SIGKILL came before --kill-after: {took:?}");
    assert!(took < SLACK, "{took:?}");
    let r = &env.finishes("trap")[0];
    assert_eq!(r["sent"], serde_json::json!(["TERM", "KILL"]));
}

#[test]
fn grandchild_ignoring_term_is_killed_after_main_exits() {
    // the trap of the peers: main exits on TERM, its child ignores TERM and
    // lives on; the KILL escalation must still reach it
    let env = Env::new();
    let pidfile = env.path("gc.pid");
    let script = format!(
        "sh -c 'trap \"\" TERM; echo $$ > {p}.tmp; mv {p}.tmp {p}; while :; do sleep 0.05; done' & \
         trap 'exit 0' TERM; while :; do sleep 0.05; done",
        p = pidfile.display()
    );
    let o = env.run(&["--name", "gc", "-t", "0.5", "-k", "0.5", "--", "sh", "-c", &script]);
    assert_eq!(code(&o), 124, "124 even though main exited 0 on TERM");
    let gc = read_pid(&pidfile);
    assert!(wait_until(Duration::from_secs(2), || !alive(gc)), "grandchild {gc} survived");
}

#[test]
fn stopped_job_is_continued_and_killed() {
    let env = Env::new();
    let t = Instant::now();
    let o = env.run(&["-t", "0.3", "-k", "5", "--", "sh", "-c", "kill -STOP $$; sleep 100"]);
    assert_eq!(code(&o), 124);
    assert!(t.elapsed() < Duration::from_secs(4), "SIGCONT let the TERM act: {:?}", t.elapsed());
}

#[test]
fn second_instance_skips_silently_with_75() {
    let env = Env::new();
    let first = env.hold("one", &[]);
    let ran = env.path("second-ran");
    let o = env.run(&["--name", "one", "--", "touch", ran.to_str().unwrap()]);
    assert_eq!(code(&o), 75);
    assert!(o.stdout.is_empty() && o.stderr.is_empty(), "a skip prints nothing");
    assert!(!ran.exists());
    let skipped = env.finishes("one");
    assert_eq!(skipped[0]["outcome"], "skipped");
    assert!(skipped[0]["holder_pid"].as_i64().is_some(), "{skipped:?}");
    let o = env.run(&["--name", "one", "--busy-exit", "0", "--", "touch", ran.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    assert!(!ran.exists());
    assert_eq!(first.release(), Some(0));
    let o = env.run(&["--name", "one", "--", "touch", ran.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "the lock is free once the job is gone");
    assert!(ran.exists());
}

#[test]
fn wait_takes_the_lock_when_it_is_freed() {
    let env = Env::new();
    let first = env.hold("w", &[]);
    // bounded wait that gives up
    let t = Instant::now();
    let o = env.run(&["--name", "w", "--wait=0.5", "--", "true"]);
    assert_eq!(code(&o), 75);
    assert!(t.elapsed() >= Duration::from_millis(450), "{:?}", t.elapsed());
    // a wait that gets the lock: started before the release, runs after it
    let stamp = env.path("second");
    let mut second = env
        .cmd()
        .args(["--name", "w", "--wait=2s", "--", "touch", stamp.to_str().unwrap()])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(!stamp.exists(), "the waiter must not run beside the holder");
    assert_eq!(first.release(), Some(0));
    assert_eq!(second.wait().unwrap().code(), Some(0));
    assert!(stamp.exists());
}

#[test]
fn bad_input_is_one_line_and_exit_125() {
    let env = Env::new();
    let file = env.path("plain-file");
    std::fs::write(&file, "").unwrap();
    let target = env.path("target");
    std::fs::write(&target, "").unwrap();
    let link = env.path("link.lock");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let bad_dir = format!("{}/sub", file.display());
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec!["--timeout", "banana"], "--timeout", "banana"),
        (vec!["--memory", "12Q"], "--memory", "12Q"),
        (vec!["--signal", "NOPE"], "--signal", "NOPE"),
        (vec!["--kill-after", "-1"], "--kill-after", "-1"),
        (vec!["--name", "a/b"], "--name", "a/b"),
        (vec!["--busy-exit", "256"], "--busy-exit", "256"),
        (vec!["--slots", "0"], "--slots", "0"),
        (vec!["--lock-dir", &bad_dir], "lock dir", &bad_dir),
        (vec!["--lock", link.to_str().unwrap()], "symlink", "link.lock"),
        (vec!["--log", "file:/x"], "--log", "file:/x"),
        (vec!["--syslog-facility", "nope"], "--syslog-facility", "nope"),
        (vec!["--retries", "2", "--retry-delay", "0"], "--retry-delay", "0"),
        (vec!["--cooldown", "5m"], "--max-failures", ""),
    ];
    for (args, option, value) in cases {
        let ran = env.path("ran");
        let mut all: Vec<&str> = args.clone();
        all.extend(["--", "touch", ran.to_str().unwrap()]);
        let o = env.cmd().args(&all).output().unwrap();
        let err = stderr(&o);
        assert_eq!(code(&o), 125, "{args:?}: {err}");
        assert!(!ran.exists(), "{args:?} started the command");
        assert!(err.contains(option) && err.contains(value), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: one line: {err}");
    }
    // a missing COMMAND, and runonce alone
    for args in [&["--timeout", "5"][..], &[][..]] {
        let o = std::process::Command::new(BIN).args(args).output().unwrap();
        assert_eq!(code(&o), 125);
        assert!(stderr(&o).contains("COMMAND"), "{}", stderr(&o));
    }
}

#[test]
fn help_and_version_exit_0() {
    for flag in ["--help", "--version"] {
        let o = std::process::Command::new(BIN).arg(flag).output().unwrap();
        assert_eq!(code(&o), 0);
        assert!(!o.stdout.is_empty());
    }
}

#[test]
fn forwarded_signals_reach_the_job() {
    for (sig, name) in [
        (libc::SIGTERM, "TERM"),
        (libc::SIGINT, "INT"),
        (libc::SIGHUP, "HUP"),
        (libc::SIGQUIT, "QUIT"),
    ] {
        let env = Env::new();
        let ready = env.path("ready");
        let script = format!(
            "trap 'exit 7' {name}; touch {}; while :; do sleep 0.02; done",
            ready.display()
        );
        let mut child = env.cmd().args(["--", "sh", "-c", &script]).spawn().unwrap();
        wait_file(&ready);
        kill(child.id() as i32, sig);
        assert_eq!(child.wait().unwrap().code(), Some(7), "SIG{name} was forwarded");
    }
}

#[test]
fn job_killed_by_forwarded_signal_gives_128_plus_n() {
    let env = Env::new();
    let ready = env.path("ready");
    let script = format!("touch {}; exec sleep 100", ready.display());
    let mut child = env.cmd().args(["--name", "fw", "--", "sh", "-c", &script]).spawn().unwrap();
    wait_file(&ready);
    kill(child.id() as i32, libc::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(143));
    assert_eq!(env.finishes("fw")[0]["outcome"], "signaled");
}

#[test]
fn signal_ignored_at_start_stays_ignored_and_is_not_forwarded() {
    let env = Env::new();
    let ready = env.path("ready");
    let got_int = env.path("got-int");
    let script = format!(
        "trap 'touch {}' INT; trap 'exit 9' TERM; touch {}; while :; do sleep 0.02; done",
        got_int.display(),
        ready.display()
    );
    let mut cmd = env.cmd();
    cmd.args(["--", "sh", "-c", &script]);
    // SAFETY: only signal(2) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    wait_file(&ready);
    kill(child.id() as i32, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(200));
    kill(child.id() as i32, libc::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(9));
    assert!(!got_int.exists(), "an ignored SIGINT was forwarded");
}

#[test]
fn job_sees_empty_mask_and_inherited_sigpipe() {
    let env = Env::new();
    let report = env.path("status");
    let script = format!("grep -E '^Sig(Blk|Ign)' /proc/self/status > {}", report.display());
    let mut cmd = env.cmd();
    cmd.args(["--", "sh", "-c", &script]);
    // SAFETY: only signal(2) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            Ok(())
        });
    }
    assert_eq!(cmd.status().unwrap().code(), Some(0));
    let text = std::fs::read_to_string(&report).unwrap();
    let field = |k: &str| {
        let v = text.lines().find_map(|l| l.strip_prefix(k)).unwrap().trim();
        u64::from_str_radix(v, 16).unwrap()
    };
    assert_eq!(field("SigBlk:"), 0, "the job starts with no blocked signal");
    assert_ne!(field("SigIgn:") & (1 << (libc::SIGPIPE - 1)), 0, "SIGPIPE stays ignored");
    assert_eq!(field("SigIgn:") & (1 << (libc::SIGTERM - 1)), 0);
}

#[test]
fn closed_stderr_does_not_change_the_exit_code() {
    let env = Env::new();
    // the job inherits the closed stderr, or writes into runonce's pipe
    // (--idle-timeout): either way its status stands
    for (name, extra) in [("direct", &[][..]), ("piped", &["--idle-timeout", "30"][..])] {
        let mut cmd = env.cmd();
        cmd.args(["-n", name, "--log", "stderr"]).args(extra);
        cmd.args(["--", "sh", "-c", "echo oops >&2; exit 3"]);
        // SAFETY: only close(2) between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::close(2);
                Ok(())
            });
        }
        assert_eq!(cmd.status().unwrap().code(), Some(3), "{name}");
        let rec = &env.finishes(name)[0];
        assert_eq!(rec["outcome"], "failed", "{rec}");
        // (a pipe whose reader is gone: options::output_that_cannot_be_delivered_is_counted)
    }
}

#[test]
fn durations_at_the_edges() {
    let env = Env::new();
    let o = env.run(&["--timeout", "0", "--", "sh", "-c", "exit 5"]);
    assert_eq!(code(&o), 5, "0 means no limit");
    let o = env.run(&["--timeout", "18446744073709551615", "--", "sh", "-c", "exit 5"]);
    assert_eq!(code(&o), 5, "a huge timeout neither overflows nor fires");
    let o = env.run(&["--timeout", "1000000d", "--", "sh", "-c", "exit 5"]);
    assert_eq!(code(&o), 5);
    let o = env.run(&["--timeout", "0.0000000001", "-k", "1", "--", "sleep", "30"]);
    assert_eq!(code(&o), 124, "a tiny timeout still fires");
}

#[test]
fn record_and_state_describe_the_run() {
    let env = Env::new();
    let o = env.run(&["--name", "rec", "--", "sh", "-c", "echo x; exit 0"]);
    assert_eq!(code(&o), 0);
    let recs: Vec<_> = env.records().into_iter().filter(|r| r["name"] == "rec").collect();
    assert_eq!(recs.len(), 2, "a start and a finish record");
    assert_eq!(recs[0]["event"], "start");
    let f = &recs[1];
    assert_eq!(f["event"], "finish");
    assert_eq!(f["outcome"], "ok");
    assert_eq!(f["exit"], 0);
    assert!(f["maxrss_kib"].as_u64().unwrap() > 0);
    assert!(f["duration_s"].as_f64().unwrap() >= 0.0);
    assert_eq!(f["argv"], serde_json::json!(["sh", "-c", "echo x; exit 0"]));
    assert_eq!(f["job_pid"], recs[0]["job_pid"]);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.state_dir.join("rec.json")).unwrap())
            .unwrap();
    assert_eq!(state["last_outcome"], "ok");
    assert_eq!(state["runs"], 1);
}

#[test]
fn holder_record_names_the_holder_and_the_lock_file_is_kept() {
    let env = Env::new();
    let holding = env.hold("h", &[]);
    let runonce = holding.child.id();
    // the record is a file of its own beside the lock, private to runonce's user
    let record = env.lock_dir.join("h.holder");
    // runonce names the job once fork returns its PID, while the job may
    // already be running (and have said it is ready)
    let job_of = |text: &str| -> Option<i32> {
        text.lines()
            .find_map(|l| l.strip_prefix("job="))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    let read = || std::fs::read_to_string(&record).unwrap();
    assert!(wait_until(SLACK, || job_of(&read()).is_some()), "job pid recorded: {}", read());
    let text = read();
    assert!(text.contains(&format!("runonce={runonce} ")), "{text}");
    let job = job_of(&text).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{job}/stat")).unwrap();
    let ppid: u32 =
        stat.rsplit(')').next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(ppid, runonce, "the recorded job is runonce's child");
    let mode = |p: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
    };
    assert_eq!(mode(&record) & 0o7777, 0o600);
    assert_eq!(mode(&env.lock_dir.join("h.lock")) & 0o777, 0o600);
    assert_eq!(holding.release(), Some(0));
    let lock = env.lock_dir.join("h.lock");
    assert!(lock.exists(), "the lock file is never deleted");
    assert_eq!(std::fs::metadata(&lock).unwrap().len(), 0, "nor written");
    assert!(!record.exists(), "a run that ended leaves no record");
    assert_eq!(mode(&env.lock_dir) & 0o777, 0o700);
}

#[test]
fn unusable_state_dir_never_fails_the_job() {
    let env = Env::new();
    let file = env.path("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let o = env
        .cmd()
        .args(["--state-dir", file.to_str().unwrap(), "--", "sh", "-c", "exit 4"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 4);
    assert!(stderr(&o).contains("state"), "{}", stderr(&o));
}

#[test]
fn nproc_without_a_pids_cgroup_is_reported_for_root() {
    // the tests run as root, whom RLIMIT_NPROC does not bind
    let env = Env::new();
    let ran = env.path("ran");
    let o =
        env.run(&["--contain", "pgroup", "--nproc", "10", "--", "touch", ran.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    assert!(ran.exists());
    assert!(stderr(&o).contains("--nproc 10"), "{}", stderr(&o));
    let rec = env.records().pop().unwrap();
    assert_eq!((&rec["event"], &rec["outcome"]), (&"finish".into(), &"ok".into()), "{rec}");
    let unapplied = rec["limits_unapplied"].as_array().unwrap();
    assert_eq!(unapplied.len(), 1, "{rec}");
    assert!(unapplied[0].as_str().unwrap().starts_with("--nproc 10"), "{rec}");
    std::fs::remove_file(&ran).unwrap();
    let strict = ["--contain", "pgroup", "--strict-limits", "--nproc", "10", "--"];
    let o = env.cmd().args(strict).args(["touch", ran.to_str().unwrap()]).output().unwrap();
    assert_eq!(code(&o), 125);
    assert!(!ran.exists());
    let rec = env.records().pop().unwrap();
    assert_eq!((&rec["outcome"], &rec["exit"]), (&"error".into(), &125.into()), "{rec}");
    assert!(rec["message"].as_str().unwrap().contains("--strict-limits"), "{rec}");
    let unapplied = rec["limits_unapplied"].as_array().unwrap();
    assert!(unapplied[0].as_str().unwrap().starts_with("--nproc 10"), "{rec}");
}

/// fork(2) does not hold root's processes (real uid 0, whatever their
/// capabilities) nor one with CAP_SYS_ADMIN or CAP_SYS_RESOURCE to
/// RLIMIT_NPROC: `--nproc` without a pids cgroup is said unapplied for
/// those, and only for those.
#[test]
fn nproc_is_said_unapplied_exactly_where_rlimit_nproc_does_not_bind() {
    let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
    let admin = ["--inh-caps=+sys_admin", "--ambient-caps=+sys_admin"];
    let cases: [(&str, Vec<&str>, bool); 3] = [
        ("nobody", nobody.to_vec(), false),
        ("nobody-admin", [&nobody[..], &admin[..]].concat(), true),
        ("root-without-caps", vec!["--bounding-set=-sys_admin,-sys_resource"], true),
    ];
    for (name, setpriv, said) in cases {
        let env = Env::new();
        if name.starts_with("nobody") {
            std::os::unix::fs::chown(env.dir.path(), Some(65534), Some(65534)).unwrap();
        }
        let caps = env.path("caps");
        let inner = env.cmd();
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args(&setpriv).arg("--").arg(inner.get_program()).args(inner.get_args());
        cmd.args(["-n", name, "--contain", "pgroup", "--nproc", "10", "--", "sh", "-c"]);
        // runonce's own effective set, read by the job
        cmd.arg(format!("grep CapEff /proc/$PPID/status > {}", caps.display()));
        let o = cmd.stdin(Stdio::null()).output().unwrap();
        assert_eq!(code(&o), 0, "{name}: {}", stderr(&o));
        let eff = std::fs::read_to_string(&caps).unwrap();
        let eff = u64::from_str_radix(eff.split_whitespace().nth(1).unwrap(), 16).unwrap();
        let has = |cap: u32| eff >> cap & 1 == 1;
        assert_eq!((has(21), has(24)), (name == "nobody-admin", false), "{name}: {eff:x}");
        let err = stderr(&o);
        assert_eq!(err.contains("--nproc 10: no pids cgroup"), said, "{name}: {err}");
        let rec = env.finishes(name).pop().unwrap_or_else(|| panic!("{name}: {err}"));
        let unapplied = rec["limits_unapplied"].as_array().map_or(0, Vec::len);
        assert_eq!(unapplied, usize::from(said), "{name}: {rec}");
    }
}

/// A fork that fails (RLIMIT_NPROC, for a user it binds, at 1: runonce
/// itself) is runonce's own failure, 125, with the reason, and the record
/// says so: no job, no process signalled in its place.
#[test]
fn a_failed_fork_is_runonces_own_failure() {
    let env = Env::new();
    std::os::unix::fs::chown(env.dir.path(), Some(65534), Some(65534)).unwrap();
    let ran = env.path("ran");
    let inner = env.cmd();
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(["prlimit", "--nproc=1", "--"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .args(["-n", "nofork", "--contain", "pgroup", "--", "touch", ran.to_str().unwrap()])
        .stdin(Stdio::null());
    // a failed fork taken for a child would have runonce wait for it forever
    let o = output_within(&mut cmd, SLACK);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot start"), "{}", stderr(&o));
    assert!(!ran.exists());
    let rec = env.finishes("nofork").pop().unwrap_or_else(|| panic!("{}", stderr(&o)));
    assert_eq!((&rec["outcome"], &rec["exit"]), (&"error".into(), &125.into()), "{rec}");
}

/// Under `--quiet` a warning (here `--nproc` not applied for root) is held
/// with the job's output: on stderr when the run fails, not when it
/// succeeds; the record has it both times.
#[test]
fn quiet_holds_warnings_until_the_run_fails() {
    let env = Env::new();
    let run = |name: &str, script: &str| {
        let quiet = ["--quiet", "--contain", "pgroup", "--nproc", "10", "--", "sh", "-c", script];
        env.cmd().args(["-n", name]).args(quiet).output().unwrap()
    };
    let ok = run("ok", "exit 0");
    assert_eq!(code(&ok), 0);
    assert_eq!(stderr(&ok), "", "no cron mail for a run that went well");
    let failed = run("failed", "exit 3");
    assert_eq!(code(&failed), 3);
    assert!(stderr(&failed).contains("--nproc 10"), "{}", stderr(&failed));
    for name in ["ok", "failed"] {
        let rec = env.finishes(name).pop().unwrap();
        let warnings = rec["warnings"].as_array().unwrap_or_else(|| panic!("{rec}"));
        assert!(warnings.iter().any(|w| w.as_str().unwrap().contains("--nproc 10")), "{rec}");
    }
}
