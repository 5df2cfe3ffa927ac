//! One test per problem that porting the peers' suites found (issue 11),
//! with real processes and real signals.

use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{A_MINUTE, cpu_time, exit_and_cpu, runonce_line, sh, spawn_sh, until_file};
use crate::util::*;

/// Generous bound on runonce's own CPU over a wait of a few seconds: a
/// process that sleeps in the kernel uses next to none; one that spins
/// (the old grace loop burnt a core) uses most of the wait even on a busy
/// machine.
const ASLEEP: Duration = Duration::from_millis(150);

#[test]
fn kill_after_grace_sleeps_in_the_kernel() {
    let env = Env::new();
    let ready = env.path("ready");
    let job = format!("trap '' TERM; touch {}; sleep 30", ready.display());
    let child = spawn_sh(&env, &["-n", "grace", "-t", "0.2", "-k", "3"], &job);
    wait_file(&ready);
    let before = cpu_time(child.id() as i32);
    let (code, used) = exit_and_cpu(child, before);
    assert_eq!(code, 124);
    assert!(used < ASLEEP, "runonce used {used:?} of CPU over a 3 s grace");
    let rec = &env.finishes("grace")[0];
    assert_eq!(rec["sent"], json!(["TERM", "KILL"]));
}

#[test]
fn lock_wait_retry_pause_and_jitter_sleep_in_the_kernel() {
    let env = Env::new();
    let holder = env.hold("waits", &[]);
    let ready = env.path("ready");
    // waits 2 s for the lock, then runs a job that fails once and is
    // retried after 2 s
    let job =
        format!("touch {r}; [ -e {r}.2 ] && exit 0; touch {r}.2; exit 1", r = ready.display());
    let child = spawn_sh(
        &env,
        &["-n", "waits", "--wait=2", "--busy-exit", "0", "--retries", "1", "--retry-delay", "2"],
        &job,
    );
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_time(child.id() as i32);
    let (code, used) = exit_and_cpu(child, before);
    assert_eq!(code, 0, "skipped after the wait, exit 0");
    assert!(used < ASLEEP, "lock wait spun: {used:?}");
    holder.release();
    let child = spawn_sh(&env, &["-n", "waits", "--retries", "1", "--retry-delay", "2"], &job);
    wait_file(&ready);
    let before = cpu_time(child.id() as i32);
    let (code, used) = exit_and_cpu(child, before);
    assert_eq!(code, 0);
    assert!(used < ASLEEP, "retry pause spun: {used:?}");
    let child = spawn_sh(&env, &["-n", "jit", "--jitter", "2"], "true");
    std::thread::sleep(Duration::from_millis(100));
    let before = cpu_time(child.id() as i32);
    let (code, used) = exit_and_cpu(child, before);
    assert_eq!(code, 0);
    assert!(used < ASLEEP, "jitter spun: {used:?}");
}

/// Every catchable signal whose default action terminates (as timeout(1)
/// relays them since coreutils 9.5), real-time ones included, by number.
fn relayed_signals() -> Vec<(i32, String)> {
    let mut sigs = vec![
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGTRAP,
        libc::SIGABRT,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGUSR1,
        libc::SIGSEGV,
        libc::SIGUSR2,
        libc::SIGPIPE,
        libc::SIGALRM,
        libc::SIGTERM,
        libc::SIGSTKFLT,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGIO,
        libc::SIGPWR,
        libc::SIGSYS,
        libc::SIGILL,
    ];
    sigs.extend([libc::SIGRTMIN(), libc::SIGRTMIN() + 1, libc::SIGRTMAX()]);
    sigs.into_iter().map(|s| (s, runonce::parse::signal_name(s))).collect()
}

#[test]
fn every_catchable_terminating_signal_is_relayed_and_recorded() {
    let env = Env::new();
    for (sig, name) in relayed_signals() {
        let ready = env.path(&format!("ready-{sig}"));
        let job = format!("trap 'exit 7' {sig}; touch {}; {A_MINUTE}", ready.display());
        // (the shell's "Hangup", "Alarm clock"... about its sleep: not here)
        let mut child = env
            .cmd()
            .args(["-n", &format!("sig{sig}"), "--", "sh", "-c", &job])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_file(&ready);
        kill(child.id() as i32, sig);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(7), "SIG{name}: runonce died or did not relay: {status:?}");
        let rec = &env.finishes(&format!("sig{sig}"))[0];
        assert_eq!(rec["exit"], 7, "SIG{name}: {rec}");
    }
}

#[test]
fn runonce_outlives_a_relayed_signal_the_job_ignores() {
    let env = Env::new();
    let ready = env.path("ready");
    let go = env.path("go");
    let job = format!(
        "trap '' USR1 ALRM {rt}; touch {}; {}",
        ready.display(),
        until_file(&go),
        rt = libc::SIGRTMIN()
    );
    let mut child = spawn_sh(&env, &["-n", "ign"], &job);
    wait_file(&ready);
    for sig in [libc::SIGUSR1, libc::SIGALRM, libc::SIGRTMIN()] {
        kill(child.id() as i32, sig);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(alive(child.id() as i32), "runonce died of a signal it could catch");
    std::fs::write(&go, "").unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(env.finishes("ign")[0]["outcome"], "ok");
}

#[test]
fn job_killed_by_a_relayed_usr1_gives_138_and_a_finish_record() {
    let env = Env::new();
    let ready = env.path("ready");
    let mut child =
        spawn_sh(&env, &["-n", "u1"], &format!("touch {}; exec sleep 100", ready.display()));
    wait_file(&ready);
    kill(child.id() as i32, libc::SIGUSR1);
    assert_eq!(child.wait().unwrap().code(), Some(138));
    let rec = &env.finishes("u1")[0];
    assert_eq!((rec["outcome"].as_str(), rec["signal"].as_str()), (Some("signaled"), Some("USR1")));
}

#[test]
fn cont_is_relayed_to_a_stopped_job() {
    let env = Env::new();
    let pid_file = env.path("pid");
    let go = env.path("go");
    let job = format!("echo $$ > {}; {}", pid_file.display(), until_file(&go));
    let mut child = spawn_sh(&env, &["-n", "cont"], &job);
    let job_pid = read_pid(&pid_file);
    kill(job_pid, libc::SIGSTOP);
    assert!(wait_until(SLACK, || proc_state(job_pid) == 'T'), "the job did not stop");
    kill(child.id() as i32, libc::SIGCONT);
    assert!(wait_until(SLACK, || proc_state(job_pid) != 'T'), "SIGCONT was not relayed");
    std::fs::write(&go, "").unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0), "CONT is no reason to end");
}

fn proc_state(pid: i32) -> char {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next()?.trim_start().chars().next())
        .unwrap_or('?')
}

/// perl, unlike sh, can catch a signal that was ignored when it started:
/// it proves whether runonce relayed one.
#[test]
fn signals_ignored_at_start_stay_ignored_and_are_not_relayed() {
    let env = Env::new();
    let ready = env.path("ready");
    let got = env.path("got");
    let go = env.path("go");
    let perl = format!(
        "$SIG{{USR1}} = sub {{ open my $f, '>', '{got}' }}; open my $r, '>', '{ready}'; \
         sleep 0.02 until -e '{go}'",
        got = got.display(),
        ready = ready.display(),
        go = go.display()
    );
    let mut cmd = env.cmd();
    cmd.args(["-n", "nohup", "--", "perl", "-MTime::HiRes=sleep", "-e", &perl]);
    // SAFETY: only signal(2) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGUSR1, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    wait_file(&ready);
    kill(child.id() as i32, libc::SIGUSR1);
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&go, "").unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0), "runonce survives an ignored USR1");
    assert!(!got.exists(), "a USR1 ignored at start was relayed");
}

#[test]
fn runonce_own_sigpipe_is_not_relayed() {
    let env = Env::new();
    let got = env.path("got-pipe");
    // stderr is a pipe nobody reads: each record runonce writes there
    // raises SIGPIPE in runonce itself
    let (r, w) = std::io::pipe().unwrap();
    drop(r);
    let job = format!("trap 'touch {}' PIPE; sleep 0.5", got.display());
    let o = env
        .cmd()
        .args(["-n", "pipe", "--log", "stderr", "--", "sh", "-c", &job])
        .stderr(w)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0);
    assert!(!got.exists(), "runonce relayed its own SIGPIPE to the job");
}

#[test]
fn huge_kill_after_means_never_not_at_once() {
    for huge in ["9223372036854775808", "99999999999999999999w", "1e300d"] {
        let env = Env::new();
        let job = "trap 'echo term' TERM; sleep 1; sleep 1; exit 3";
        let o = env.run(&["-n", "huge", "-t", "0.2", "-k", huge, "--", "sh", "-c", job]);
        assert_eq!(code(&o), 124, "-k {huge}: {}", stderr(&o));
        assert_eq!(stdout(&o), "term\n", "-k {huge}");
        let rec = &env.finishes("huge")[0];
        assert_eq!(rec["sent"], json!(["TERM"]), "-k {huge}: SIGKILL came: {rec}");
    }
}

#[test]
fn huge_retry_delays_and_jitter_neither_panic_nor_fire() {
    let huge = "99999999999999999999w";
    let saturated = ["--retries", "2", "--retry-delay", huge, "--retry-max-delay", huge];
    // the +-20% jitter made a saturated pause overflow every other time
    for opts in [
        &saturated[..],
        &saturated,
        &saturated,
        &saturated,
        &["--retries", "1", "--retry-delay", "1", "--retry-max-delay", huge],
        &["--jitter", huge],
    ] {
        let env = Env::new();
        let mut cmd = env.cmd();
        let started = env.path("started");
        cmd.args(["-n", "big"]).args(opts).args(["--", "sh", "-c"]);
        cmd.arg(format!("touch {}; exit 1", started.display()));
        let mut child = cmd.spawn().unwrap();
        // the jitter never ends; the retry pause is the one after attempt 1
        if opts[0] == "--retries" {
            wait_file(&started);
        }
        std::thread::sleep(Duration::from_millis(300));
        assert!(alive(child.id() as i32), "{opts:?}: ended at once (or panicked)");
        kill(child.id() as i32, libc::SIGTERM);
        let code = child.wait().unwrap().code();
        let rec = &env.finishes("big")[0];
        if opts[0] == "--jitter" {
            assert_eq!(code, Some(143), "{opts:?}");
            assert_eq!(rec["outcome"], "error");
        } else {
            assert_eq!(code, Some(1), "{opts:?}: the last attempt's status");
            assert!(rec["message"].as_str().unwrap().contains("retries stopped"), "{rec}");
        }
    }
}

#[test]
fn huge_values_in_every_duration_option_mean_never() {
    let env = Env::new();
    for huge in ["99999999999999999999w", "1e300d", "1000000d"] {
        let wait = format!("--wait={huge}");
        let o = env.run(&[
            "-n",
            "every",
            "--cpu",
            huge,
            "--idle-timeout",
            huge,
            "--max-failures",
            "1",
            "--cooldown",
            huge,
            &wait,
            "-t",
            huge,
            "-k",
            huge,
            "--",
            "sh",
            "-c",
            "echo hi; exit 0",
        ]);
        assert_eq!(code(&o), 0, "{huge}: {}", stderr(&o));
        assert_eq!(stdout(&o), "hi\n");
    }
}

#[test]
fn odd_times_read_back_from_lock_and_state_files() {
    for started in ["-1", "nan", "1e300", "inf"] {
        let env = Env::new();
        // a real holder, whose record then says it started at an odd time
        let ready = env.path("ready");
        let go = env.path("go");
        let job = format!("touch {}; {}", ready.display(), until_file(&go));
        let mut holder = spawn_sh(&env, &["-n", "odd"], &job);
        wait_file(&ready);
        let record = env.lock_dir.join("odd.holder");
        let text = std::fs::read_to_string(&record).expect("holder record");
        let odd: String = text
            .lines()
            .map(|l| {
                if l.starts_with("started=") {
                    format!("started={started}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        assert!(odd.contains(&format!("started={started}\n")), "{text}");
        std::fs::write(&record, odd).unwrap();
        for extra in [&[][..], &["--json"]] {
            let o = env.cmd().args(["--status", "odd"]).args(extra).output().unwrap();
            assert_eq!(code(&o), 0, "started={started} {extra:?}: {}", stderr(&o));
            assert!(stdout(&o).contains("odd"), "{}", stdout(&o));
            if !extra.is_empty() {
                let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
                assert_eq!(v["state"], "running", "{v}");
            }
        }
        std::fs::write(&go, "").unwrap();
        assert_eq!(holder.wait().unwrap().code(), Some(0));
        // a state file from a clock far off, too: a failure "in the future"
        // does not keep the circuit open for ever
        let state = json!({"name": "odd", "last_end_unix": 1e300, "last_start_unix": -1.0,
                           "last_failure_unix": 1e300, "consecutive_failures": 9});
        std::fs::write(env.state_dir.join("odd.json"), state.to_string()).unwrap();
        let ran = env.path("ran");
        let o = env.run(&[
            "-n",
            "odd",
            "--max-failures",
            "1",
            "--cooldown",
            "1h",
            "--",
            "touch",
            ran.to_str().unwrap(),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert!(ran.exists());
    }
}

/// A stranger: a child the shell started before it exec'd runonce.  It
/// touches a file if it gets SIGTERM (`wait` lets the trap run at once).
fn stranger_line(got_term: &std::path::Path) -> String {
    format!(
        "sh -c 'trap \"touch {}; exit\" TERM; sleep 60 & wait' >/dev/null 2>&1 & \
         echo $! > stranger;",
        got_term.display()
    )
}

#[test]
fn a_shells_earlier_child_is_neither_signalled_nor_waited_for() {
    for (opts, job, want) in [
        ("-t 10", "true", 0),
        ("-t 0.3 -k 0.3", "sleep 30", 124),
        ("", "sleep 100 & exit 4", 4), // a leftover of the job's own
    ] {
        let env = Env::new();
        let got_term = env.path("got-term");
        let line = format!(
            "cd {}; {} exec {} -n strange {opts} -- sh -c '{job}'",
            env.dir.path().display(),
            stranger_line(&got_term),
            runonce_line(&env)
        );
        let t = Instant::now();
        let o = sh(&line).output().unwrap();
        assert_eq!(code(&o), want, "{opts} {job}: {}", stderr(&o));
        assert!(t.elapsed() < SLACK, "runonce waited for the stranger");
        let stranger = read_pid(&env.path("stranger"));
        std::thread::sleep(Duration::from_millis(200));
        assert!(alive(stranger), "{opts} {job}: the stranger was killed");
        assert!(!got_term.exists(), "{opts} {job}: the stranger got SIGTERM");
        kill(stranger, libc::SIGKILL);
        let rec = &env.finishes("strange")[0];
        if job.contains('&') {
            assert_eq!(rec["leftovers"], 1, "the job's own leftover is still found: {rec}");
        }
    }
}

#[test]
fn tiny_durations_are_never_zero_and_exponents_are_read() {
    let env = Env::new();
    for t in ["0.5ns", "1e-3", "1e-10000", "0.0000000001"] {
        let o = env.run(&["-t", t, "-k", "1", "--", "sleep", "30"]);
        assert_eq!(code(&o), 124, "-t {t}: {}", stderr(&o));
    }
    let t = Instant::now();
    let o = env.run(&["--jitter", "0.5ns", "--", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(t.elapsed() < SLACK, "--jitter 0.5ns hung");
    let o = env.run(&["-t", "2.5e2s", "-k", "1e1", "--", "sh", "-c", "exit 3"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
}

#[test]
fn real_time_signals_by_name() {
    let env = Env::new();
    let rt1 = libc::SIGRTMIN() + 1;
    for name in ["RTMIN+1", "SIGRTMIN+1", "rtmin+1"] {
        let job = format!("trap 'exit 9' {rt1}; {A_MINUTE}");
        let o = env.run(&["-n", "rt", "-s", name, "-t", "0.2", "--", "sh", "-c", &job]);
        assert_eq!(code(&o), 124, "-s {name}: {}", stderr(&o));
    }
    for rec in env.finishes("rt") {
        assert_eq!(rec["sent"], json!(["RTMIN+1"]), "{rec}");
    }
    let o = env.run(&["-s", "RTMAX-1", "--", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = env.run(&["-s", "RTMIN+99", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).starts_with("runonce: --signal: invalid value 'RTMIN+99'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn negative_duration_is_an_error_about_its_option() {
    let env = Env::new();
    let ran = env.path("ran");
    for args in [&["--timeout", "-1s"][..], &["-t", "-1s"], &["-k", "-.5"], &["--jitter", "-2"]] {
        let o = env.cmd().args(args).args(["--", "touch", ran.to_str().unwrap()]).output().unwrap();
        assert_eq!(code(&o), 125, "{args:?}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("cannot be negative"), "{args:?}: {err}");
        assert!(!err.contains("unknown option"), "{err}");
    }
    assert!(stderr(&env.run(&["-t", "-1s", "true"])).starts_with("runonce: --timeout: "));
    assert!(!ran.exists());
}

/// `ulimit -n N` for every N from too few for runonce's own files to
/// enough for the job: each run either runs the job or is runonce's own
/// failure (125), never "cannot execute" (126).  The last N that fails lets
/// runonce open its files but not what starting the job needs (its pipes,
/// or the fork's): that failure is runonce's too.
#[test]
fn too_few_descriptors_is_runonces_own_failure() {
    let env = Env::new();
    let (mut last_failure, mut ran_once) = (String::new(), false);
    for limit in 3..=32 {
        let ran = env.path(&format!("ran-{limit}"));
        let mut cmd = env.cmd();
        cmd.args(["-n", "fds", "--", "touch", ran.to_str().unwrap()]);
        // SAFETY: only setrlimit(2) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let rl = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
                Ok(())
            });
        }
        let o = cmd.output().unwrap();
        let err = stderr(&o);
        if err.contains("error while loading shared libraries") {
            continue; // too few for the dynamic loader: runonce never ran
        }
        if code(&o) == 0 && ran.exists() {
            ran_once = true;
            continue;
        }
        assert_eq!(code(&o), 125, "ulimit -n {limit}: {err}");
        assert!(!err.contains("cannot execute"), "ulimit -n {limit}: {err}");
        assert!(err.contains("Too many open files"), "ulimit -n {limit}: {err}");
        assert!(!ran.exists(), "ulimit -n {limit}");
        last_failure = err;
    }
    assert!(ran_once, "no limit up to 32 let the job run");
    assert!(
        last_failure.contains("pipe: ") || last_failure.contains("cannot start"),
        "the last limit that failed did not fail at the job's start: {last_failure}"
    );
}

#[test]
fn replace_continues_a_stopped_job_so_it_can_act_on_term() {
    let env = Env::new();
    let pid_file = env.path("pid");
    let got_term = env.path("got-term");
    let job = format!(
        "trap 'touch {}; exit 0' TERM; echo $$ > {}; {A_MINUTE}",
        got_term.display(),
        pid_file.display()
    );
    let mut old = spawn_sh(&env, &["-n", "stopped"], &job);
    let job_pid = read_pid(&pid_file);
    kill(job_pid, libc::SIGSTOP);
    assert!(wait_until(SLACK, || proc_state(job_pid) == 'T'));
    let t = Instant::now();
    let o = env.run(&["-n", "stopped", "--replace", "-k", "60", "--", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(t.elapsed() < SLACK, "the stopped job waited out the grace");
    assert!(got_term.exists(), "the old job never acted on TERM");
    assert_eq!(old.wait().unwrap().code(), Some(0));
    let first = &env.finishes("stopped")[0];
    assert_eq!(first["job_pid"], job_pid, "{first}");
    assert_eq!(first["sent"], json!([]), "nothing was SIGKILLed: {first}");
}

#[test]
fn json_without_status_is_a_usage_error() {
    let env = Env::new();
    let ran = env.path("ran");
    let o = env.cmd().args(["--json", "--", "touch", ran.to_str().unwrap()]).output().unwrap();
    assert_eq!(code(&o), 125);
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("--status"), "{}", stderr(&o));
    assert!(!ran.exists());
}

#[test]
fn each_attempt_records_its_own_cpu_and_rss() {
    let env = Env::new();
    let marker = env.path("burnt");
    // attempt 1 burns CPU and memory, attempt 2 fails at once
    let job = format!(
        "[ -e {m} ] && exit 2; touch {m}; \
         perl -e '$x = \"x\" x 50_000_000; $t = times; 1 while times - $t < 0.3'; exit 1",
        m = marker.display()
    );
    let o =
        env.run(&["-n", "att", "--retries", "1", "--retry-delay", "0.01", "--", "sh", "-c", &job]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let recs = env.records();
    let attempt = recs.iter().find(|r| r["event"] == "attempt").expect("attempt record");
    let finish = &env.finishes("att")[0];
    let cpu = |r: &serde_json::Value| {
        r["cpu_user_s"].as_f64().unwrap() + r["cpu_sys_s"].as_f64().unwrap()
    };
    assert!(cpu(attempt) >= 0.25, "{attempt}");
    assert!(cpu(finish) < 0.15, "the second attempt's own CPU, not the sum: {finish}");
    assert!(attempt["maxrss_kib"].as_u64().unwrap() > 40_000, "{attempt}");
    assert!(finish["maxrss_kib"].as_u64().unwrap() < 20_000, "{finish}");
}

/// With the old check from outside (the job's /proc/PID/cgroup read after
/// it started), a job that had already exited looked as if it had not
/// joined: a false alarm in about one fast run in seventy.
#[test]
fn fast_jobs_never_raise_a_false_cgroup_alarm() {
    let env = Env::new();
    let mut children = Vec::new();
    for i in 0..200 {
        children.push(
            env.cmd()
                .args(["-n", &format!("fast{}", i % 9), "--wait", "--", "true"])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
        if children.len() == 8 {
            let c: std::process::Child = children.remove(0);
            let o = c.wait_with_output().unwrap();
            assert!(o.stderr.is_empty(), "{}", stderr(&o));
        }
    }
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.stderr.is_empty(), "{}", stderr(&o));
    }
    let contained: Vec<String> = env
        .records()
        .iter()
        .filter(|r| r["event"] == "finish")
        .map(|r| r["contain"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(contained.len(), 200);
    let first = contained[0].clone();
    assert!(contained.iter().all(|c| *c == first), "{contained:?}");
}
