//! Cron ergonomics (issue 5): --slots, --jitter, --retries with backoff,
//! the circuit breaker, and a fair, non-polling --wait.  Concurrency is
//! measured by the jobs themselves, retry gaps by the jobs' own clocks.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

fn sh(env: &Env, name: &str, extra: &[&str], script: &str) -> Output {
    env.cmd().args(["-n", name]).args(extra).args(["--", "sh", "-c", script]).output().unwrap()
}

fn spawn_sh(env: &Env, name: &str, extra: &[&str], script: &str) -> Child {
    env.cmd()
        .args(["-n", name])
        .args(extra)
        .args(["--", "sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A job that counts how many instances run beside it: it enters `dir`,
/// appends the number of instances it sees to `dir/counts`, stays until
/// `go` exists (or for `secs`), and leaves.  Since nobody leaves before
/// the last one has entered and counted, the largest count is the true
/// peak concurrency.
fn counting_job(dir: &Path, stay: &str) -> String {
    format!(
        "d={d}; touch $d/in.$$; ls $d | grep -c '^in\\.' >> $d/counts; {stay}; rm $d/in.$$",
        d = dir.display()
    )
}

fn counts(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("counts"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

fn wait_until_go(go: &Path) -> String {
    format!("while [ ! -e {} ]; do sleep 0.02; done", go.display())
}

#[test]
fn slots_run_exactly_n_and_status_shows_each() {
    let env = Env::new();
    let dir = env.path("pool");
    std::fs::create_dir(&dir).unwrap();
    let go = env.path("go");
    let metrics = env.path("metrics");
    let job = counting_job(&dir, &wait_until_go(&go));
    let extra = ["--slots", "3", "--metrics-dir", metrics.to_str().unwrap()];
    let mut children: Vec<Child> = (0..20).map(|_| spawn_sh(&env, "pool", &extra, &job)).collect();
    // the 17 that skip finish on their own; the 3 that run wait for `go`
    let mut skipped = Vec::new();
    let t = Instant::now();
    while skipped.len() < 17 {
        assert!(t.elapsed() < SLACK * 2, "only {} skipped", skipped.len());
        let mut i = 0;
        while i < children.len() {
            if children[i].try_wait().unwrap().is_some() {
                skipped.push(children.remove(i).wait_with_output().unwrap());
            } else {
                i += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(wait_until(SLACK, || counts(&dir).len() == 3), "{:?}", counts(&dir));
    for out in &skipped {
        assert_eq!(code(out), 75);
        assert_eq!((stdout(out), stderr(out)), (String::new(), String::new()));
    }

    let status = Command::new(BIN)
        .args(["--status", "pool", "--json"])
        .env("RUNONCE_LOCK_DIR", &env.lock_dir)
        .env("RUNONCE_STATE_DIR", &env.state_dir)
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&status.stdout).unwrap();
    let mut slots: Vec<i64> =
        json["running"].as_array().unwrap().iter().map(|r| r["slot"].as_i64().unwrap()).collect();
    slots.sort();
    assert_eq!(slots, [0, 1, 2], "{json}");
    let table = Command::new(BIN)
        .args(["--status", "pool"])
        .env("RUNONCE_LOCK_DIR", &env.lock_dir)
        .env("RUNONCE_STATE_DIR", &env.state_dir)
        .output()
        .unwrap();
    let table = stdout(&table);
    for name in ["pool ", "pool@1 ", "pool@2 "] {
        let row = table.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{table}"));
        assert!(row.contains(" running "), "{row}");
    }
    // the last of the three writes it once its job has started
    let prom = || std::fs::read_to_string(metrics.join("runonce_pool.prom")).unwrap_or_default();
    assert!(
        wait_until(SLACK, || prom().contains("runonce_running{job=\"pool\"} 3\n")),
        "{}",
        prom()
    );

    std::fs::write(&go, "").unwrap();
    for c in children {
        assert_eq!(code(&c.wait_with_output().unwrap()), 0);
    }
    assert_eq!(counts(&dir).iter().max(), Some(&3), "never 4: {:?}", counts(&dir));
    assert!(prom().contains("runonce_running{job=\"pool\"} 0\n"), "{}", prom());
    let finishes = env.finishes("pool");
    assert_eq!(finishes.iter().filter(|r| r["outcome"] == "ok").count(), 3);
    assert_eq!(finishes.iter().filter(|r| r["outcome"] == "skipped").count(), 17);
}

#[test]
fn slots_with_wait_queue_everyone_three_at_a_time() {
    let env = Env::new();
    let dir = env.path("pool");
    std::fs::create_dir(&dir).unwrap();
    let job = counting_job(&dir, "sleep 0.3");
    let children: Vec<Child> =
        (0..10).map(|_| spawn_sh(&env, "q", &["--slots", "3", "--wait=60"], &job)).collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let c = counts(&dir);
    assert_eq!(c.len(), 10);
    assert_eq!(c.iter().max(), Some(&3), "{c:?}");
}

#[test]
fn jitter_delays_before_the_lock_and_is_recorded() {
    let env = Env::new();
    let mut seen = Vec::new();
    for i in 0..5 {
        let name = format!("jit{i}");
        let t = Instant::now();
        let out = sh(&env, &name, &["--jitter", "0.4"], "exit 0");
        let took = t.elapsed().as_secs_f64();
        assert_eq!(code(&out), 0);
        let rec = &env.finishes(&name)[0];
        let j = rec["jitter_s"].as_f64().unwrap_or_else(|| panic!("{rec}"));
        assert!((0.0..0.4).contains(&j), "{j}");
        assert!(took >= j, "slept {j}s, ran in {took}s");
        seen.push(j);
    }
    seen.dedup();
    assert!(seen.len() > 1, "random: {seen:?}");
}

/// Seconds between the end of each attempt and the start of the next, from
/// the jobs' own clock.
fn gaps(starts: &[f64], ends: &[f64]) -> Vec<f64> {
    ends.iter().zip(&starts[1..]).map(|(e, s)| s - e).collect()
}

fn times(path: &Path) -> Vec<f64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().parse::<f64>().unwrap() / 1e9)
        .collect()
}

/// A job that notes its start and end times and exits with
/// `exit` (shell arithmetic over $n, the attempt number).
fn timed_job(env: &Env, exit: &str) -> (String, PathBuf, PathBuf) {
    let starts = env.path("starts");
    let ends = env.path("ends");
    let script = format!(
        "date +%s%N >> {s}; n=$(wc -l < {s}); date +%s%N >> {e}; exit $(({exit}))",
        s = starts.display(),
        e = ends.display()
    );
    (script, starts, ends)
}

#[test]
fn retries_back_off_and_hold_the_lock() {
    let env = Env::new();
    let (script, starts, ends) = timed_job(&env, "10 + n");
    let child = spawn_sh(&env, "r", &["--retries", "3", "--retry-delay", "0.3"], &script);
    wait_file(&ends);
    let busy = sh(&env, "r", &[], "exit 0");
    assert_eq!(code(&busy), 75, "the lock is held between attempts");
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 14, "the last attempt's status");
    let (s, e) = (times(&starts), times(&ends));
    assert_eq!(s.len(), 4);
    let g = gaps(&s, &e);
    for (i, gap) in g.iter().enumerate() {
        let nominal = 0.3 * f64::from(1 << i);
        assert!(
            *gap >= nominal * 0.8 - 0.02 && *gap <= nominal * 1.2 + 0.6,
            "pause {} was {gap:.3}s for a nominal {nominal}s: {g:?}",
            i + 1
        );
    }
    assert!(g[2] >= 2.0 * g[0], "doubling: {g:?}");

    let records: Vec<Value> = env.records().into_iter().filter(|r| r["name"] == "r").collect();
    let attempts: Vec<&Value> = records.iter().filter(|r| r["event"] == "attempt").collect();
    assert_eq!(attempts.len(), 3);
    for (i, a) in attempts.iter().enumerate() {
        assert_eq!(a["attempt"], i as u64 + 1);
        assert_eq!(a["attempts"], 4);
        assert_eq!(a["exit"], 11 + i as u64);
        assert_eq!(a["outcome"], "failed");
    }
    let finish: Vec<&Value> =
        records.iter().filter(|r| r["event"] == "finish" && r["outcome"] != "skipped").collect();
    assert_eq!(finish.len(), 1);
    assert_eq!((&finish[0]["attempt"], &finish[0]["exit"]), (&4.into(), &14.into()));
    let whole = finish[0]["duration_s"].as_f64().unwrap();
    assert!(whole >= g.iter().sum::<f64>(), "the finish covers every attempt: {whole}");
}

/// cron jobs often run with stdout on /dev/null or a file, which poll(2)
/// always finds readable: a pause must wait on runonce's signals alone,
/// never on whatever descriptor 1 happens to be.
#[test]
fn retry_pause_holds_with_stdout_on_dev_null() {
    let env = Env::new();
    let (script, starts, ends) = timed_job(&env, "1");
    let out = env
        .cmd()
        .args(["-n", "null", "--retries", "1", "--retry-delay", "1", "--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let g = gaps(&times(&starts), &times(&ends));
    assert_eq!(g.len(), 1);
    // nominal 1 s, jittered down to 0.8 s at the least
    assert!(g[0] >= 0.78, "the pause was skipped: {g:?}");
}

#[test]
fn retry_delay_is_capped() {
    let env = Env::new();
    let (script, starts, ends) = timed_job(&env, "1");
    let extra = ["--retries", "3", "--retry-delay", "0.5", "--retry-max-delay", "0.6"];
    assert_eq!(code(&sh(&env, "cap", &extra, &script)), 1);
    let g = gaps(&times(&starts), &times(&ends));
    assert_eq!(g.len(), 3);
    // capped: 0.48 to 0.6 s each after the first; uncapped, the third
    // would be 1.6 s at least
    assert!(g[1] >= 0.46 && g[2] >= 0.46 && g[2] < 1.4, "{g:?}");
}

#[test]
fn retries_stop_at_success_and_retry_self_inflicted_signals() {
    let env = Env::new();
    let (script, starts, _) = timed_job(&env, "n < 3 ? 1 : 0");
    let out = sh(&env, "s", &["--retries", "5", "--retry-delay", "0.05"], &script);
    assert_eq!(code(&out), 0);
    assert_eq!(times(&starts).len(), 3);
    let f = &env.finishes("s")[0];
    assert_eq!(
        (&f["outcome"], &f["attempt"], &f["attempts"]),
        (&"ok".into(), &3.into(), &6.into())
    );

    let marker = env.path("once");
    let script =
        format!("if [ ! -e {m} ]; then touch {m}; kill -USR1 $$; fi; exit 0", m = marker.display());
    let out = sh(&env, "sig", &["--retries", "1", "--retry-delay", "0.05"], &script);
    assert_eq!(code(&out), 0, "a death by a signal runonce did not send is retried");
}

#[test]
fn timeouts_are_retried_only_when_asked_and_each_attempt_has_its_own() {
    let env = Env::new();
    let base = ["-t", "0.4", "-k", "1", "--retries", "2", "--retry-delay", "0.05"];
    let out = sh(&env, "t1", &base, "sleep 30");
    assert_eq!(code(&out), 124);
    assert_eq!(env.records().iter().filter(|r| r["event"] == "attempt").count(), 0);

    let mut extra = base.to_vec();
    extra.push("--retry-on-timeout");
    let out = sh(&env, "t2", &extra, "sleep 30");
    assert_eq!(code(&out), 124);
    let attempts: Vec<Value> =
        env.records().into_iter().filter(|r| r["name"] == "t2" && r["event"] != "start").collect();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    for a in attempts.iter().filter(|a| a["event"] == "attempt") {
        assert_eq!(a["outcome"], "timeout");
        let d = a["duration_s"].as_f64().unwrap();
        // one timeout for all attempts would end the later ones at once
        assert!((0.4..10.0).contains(&d), "each attempt its own 0.4 s timeout: {d}");
    }
    assert_eq!(attempts[2]["event"], "finish");
    assert_eq!(attempts[2]["outcome"], "timeout");
}

#[test]
fn a_forwarded_signal_stops_the_retries() {
    let env = Env::new();
    // during the pause
    let (script, starts, ends) = timed_job(&env, "3");
    let child = spawn_sh(&env, "p", &["--retries", "5", "--retry-delay", "5"], &script);
    // the attempt record is written just before the pause
    assert!(wait_until(SLACK, || env.records().iter().any(|r| r["event"] == "attempt")));
    assert_eq!(times(&ends).len(), 1);
    let t = Instant::now();
    kill(child.id() as i32, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(code(&out), 3, "the last attempt's status");
    assert_eq!(times(&starts).len(), 1);
    let f = &env.finishes("p")[0];
    assert!(f["message"].as_str().unwrap().contains("retries stopped by SIGTERM"), "{f}");

    // during an attempt
    let ready = env.path("ready");
    let script = format!("trap 'exit 7' TERM; touch {}; sleep 30 & wait", ready.display());
    let child = spawn_sh(&env, "a", &["--retries", "5", "--retry-delay", "0.05"], &script);
    wait_file(&ready);
    kill(child.id() as i32, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 7);
    assert_eq!(env.finishes("a").len(), 1);
    assert!(env.records().iter().all(|r| r["name"] != "a" || r["event"] != "attempt"));
}

#[test]
fn circuit_breaker_cools_down_and_one_success_resets_it() {
    let env = Env::new();
    let ran = env.path("ran");
    let breaker = ["--max-failures", "2", "--cooldown", "1"];
    let run = |script: &str, extra: &[&str]| {
        let _ = std::fs::remove_file(&ran);
        let mut args = breaker.to_vec();
        args.extend_from_slice(extra);
        let out = sh(&env, "cb", &args, &format!("touch {}; {script}", ran.display()));
        (code(&out), ran.exists(), stdout(&out) + &stderr(&out))
    };
    assert_eq!(run("exit 1", &[]), (1, true, String::new()));
    assert_eq!(run("exit 1", &[]), (1, true, String::new()));
    assert_eq!(run("exit 0", &[]), (75, false, String::new()), "open: skipped silently");
    assert_eq!(run("exit 0", &["--busy-exit", "0"]), (0, false, String::new()));
    let rec = env.finishes("cb").pop().unwrap();
    assert_eq!(rec["outcome"], "cooldown");
    assert!(rec["message"].as_str().unwrap().contains("2 failures in a row"), "{rec}");

    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(run("exit 1", &[]), (1, true, String::new()), "half-open: one try");
    assert_eq!(run("exit 0", &[]).0, 75, "that failure opened it again");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(run("exit 0", &[]), (0, true, String::new()));
    assert_eq!(run("exit 1", &[]), (1, true, String::new()), "reset: one failure is not two");
    assert_eq!(run("exit 0", &[]), (0, true, String::new()));

    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(env.state_dir.join("cb.json")).unwrap())
            .unwrap();
    assert_eq!(s["cooldowns"], 3);
    assert_eq!(s["consecutive_failures"], 0);
    assert_eq!(s["consecutive_skips"], 0, "a cooldown is not a busy skip");
}

#[test]
fn bad_cron_options_are_usage_errors_and_run_nothing() {
    let env = Env::new();
    let marker = env.path("ran");
    for (args, names) in [
        (&["--slots", "0"][..], &["--slots", "'0'"][..]),
        (&["--retries", "-1"], &["--retries", "'-1'"]),
        (&["--retries", "2", "--retry-delay", "0"], &["--retry-delay", "'0'"]),
        (&["--cooldown", "5m"], &["--cooldown", "--max-failures"]),
        (&["--max-failures", "3"], &["--max-failures", "--cooldown"]),
        (&["--jitter", "soon"], &["--jitter", "'soon'"]),
        (&["--retry-max-delay", "-3"], &["--retry-max-delay", "'-3'"]),
    ] {
        let out = env.cmd().args(args).args(["--", "touch"]).arg(&marker).output().unwrap();
        assert_eq!(code(&out), 125, "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        for n in names {
            assert!(err.contains(n), "{args:?}: {n} in {err}");
        }
        assert!(!marker.exists(), "{args:?} ran the command");
    }
    assert!(env.records().is_empty());
}

/// A command line for sh, quoted.
fn shell_words(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| format!("'{}'", a.to_str().unwrap().replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether some process is blocked in flock() on the file at `path`.
fn flock_waiter_on(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata(path).map(|m| m.ino()).unwrap_or(0);
    let want = format!(":{ino} ");
    std::fs::read_to_string("/proc/locks")
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains("->") && l.contains("FLOCK") && l.contains(&want))
}

/// Context switches and CPU ticks of every thread of `pid`.
fn activity(pid: i32) -> (u64, u64) {
    let mut switches = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for l in status.lines().filter(|l| l.contains("ctxt_switches:")) {
            switches += l.split_whitespace().last().unwrap().parse::<u64>().unwrap();
        }
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    (switches, ticks)
}

#[test]
fn a_waiter_neither_polls_nor_loses_to_a_tight_cron_loop() {
    let env = Env::new();
    let seq = env.path("seq");
    let lock = env.lock_dir.join("fair.lock");
    for round in 0..3 {
        let _ = std::fs::remove_file(&seq);
        let ready = env.path("ready");
        let go = env.path("go");
        let _ = std::fs::remove_file(&ready);
        let _ = std::fs::remove_file(&go);
        let holder = spawn_sh(
            &env,
            "fair",
            &[],
            &format!(
                "touch {r}; {w}; echo H >> {s}",
                r = ready.display(),
                w = wait_until_go(&go),
                s = seq.display()
            ),
        );
        wait_file(&ready);
        let waiter =
            spawn_sh(&env, "fair", &["--wait=60"], &format!("echo W >> {}", seq.display()));
        assert!(wait_until(SLACK, || flock_waiter_on(&lock)), "the waiter blocks in flock");
        if round == 0 {
            let before = activity(waiter.id() as i32);
            std::thread::sleep(Duration::from_secs(1));
            let after = activity(waiter.id() as i32);
            assert!(after.0 - before.0 < 10, "woke {} times in 1 s", after.0 - before.0);
            assert!(after.1 - before.1 <= 2, "used {} ticks of CPU", after.1 - before.1);
        }
        // tight loops of cron runs that try the lock without waiting
        let stop = env.path("stop");
        let _ = std::fs::remove_file(&stop);
        let tries = env.path("tries");
        let _ = std::fs::remove_file(&tries);
        let runonce = shell_words(&env.cmd());
        let tight = format!(
            "while [ ! -e {stop} ]; do {runonce} -n fair -- sh -c 'echo T >> {seq}'; \
             echo $? >> {tries}; done",
            stop = stop.display(),
            seq = seq.display(),
            tries = tries.display()
        );
        let loops: Vec<Child> = (0..6)
            .map(|_| Command::new("sh").args(["-c", &tight]).stdin(Stdio::null()).spawn().unwrap())
            .collect();
        let tried = || std::fs::read_to_string(&tries).unwrap_or_default().lines().count();
        assert!(wait_until(SLACK, || tried() >= 30), "the loops run");
        std::fs::write(&go, "").unwrap();
        assert_eq!(code(&waiter.wait_with_output().unwrap()), 0);
        std::fs::write(&stop, "").unwrap();
        for mut l in loops {
            assert!(l.wait().unwrap().success());
        }
        let codes = std::fs::read_to_string(&tries).unwrap();
        assert!(codes.lines().all(|c| c == "0" || c == "75"), "{codes}");
        assert_eq!(code(&holder.wait_with_output().unwrap()), 0);
        let order = std::fs::read_to_string(&seq).unwrap();
        assert!(order.starts_with("H\nW\n"), "round {round}: the waiter went first: {order:?}");
    }
}

#[test]
fn a_free_lock_goes_to_a_queued_waiter_first() {
    let env = Env::new();
    assert_eq!(code(&sh(&env, "q", &[], "exit 0")), 0);
    // stand in for a waiter that is queued but not yet woken
    let queue = std::fs::File::create(env.lock_dir.join("q.waiters")).unwrap();
    // private, as runonce makes it: a readable one is an older version's,
    // which anyone may have locked, and is replaced (man page, SECURITY)
    queue.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    queue.lock_shared().unwrap();
    let out = sh(&env, "q", &[], "exit 0");
    assert_eq!((code(&out), stderr(&out)), (75, String::new()), "the lock is free, yet busy");
    let rec = env.finishes("q").pop().unwrap();
    assert_eq!(rec["outcome"], "skipped");
    assert!(rec["message"].as_str().unwrap().contains("waiting"), "{rec}");
    assert_eq!(code(&sh(&env, "q", &["--wait=10"], "exit 0")), 0, "waiters run");
    assert_eq!(code(&sh(&env, "q", &["--replace"], "exit 0")), 0, "--replace runs");
    drop(queue);
    assert_eq!(code(&sh(&env, "q", &[], "exit 0")), 0, "no one queued any more");
}
