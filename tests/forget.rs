//! Stale jobs (issue 12): `--status` says how long ago each job last ran,
//! and `runonce --forget NAME` removes an idle job's state, metrics and
//! lock files, but never while it runs or a run waits for it, and never
//! so that two runs of the job could overlap.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::util::*;

fn forget(env: &Env, name: &str, extra: &[&str]) -> Output {
    env.cmd().args(["--forget", name]).args(extra).output().unwrap()
}

fn status(env: &Env, args: &[&str]) -> Output {
    env.cmd().arg("--status").args(args).output().unwrap()
}

/// (Not the state dir's own lock, `.lock`, which every job shares.)
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.retain(|n| n != ".lock");
    names.sort();
    names
}

/// A run of job `name` that holds a slot until released.
fn slot_holder(env: &Env, name: &str, tag: &str, extra: &[&str]) -> Holding {
    let mut cmd = env.cmd();
    cmd.args(["-n", name]).args(extra).args(["--", "sh", "-c"]).stdout(Stdio::null());
    env.holding(tag, cmd)
}

#[test]
fn forget_removes_state_metrics_and_every_lock_file() {
    let env = Env::new();
    let metrics = env.path("metrics");
    let m = metrics.to_str().unwrap();
    let opts = ["--slots", "2", "--metrics-dir", m];
    // both slots busy, and a third run queued for one of them
    let a = slot_holder(&env, "fg", "a", &opts);
    let b = slot_holder(&env, "fg", "b", &opts);
    let mut waiter = env
        .cmd()
        .args(["-n", "fg", "--wait=60"])
        .args(opts)
        .args(["--", "true"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_file(&env.lock_dir.join("fg.waiters"));
    assert_eq!(a.release(), Some(0));
    assert_eq!(waiter.wait().unwrap().code(), Some(0));
    assert_eq!(b.release(), Some(0));
    assert_eq!(code(&env.run(&["-n", "other", "--metrics-dir", m, "--", "true"])), 0);
    assert_eq!(files(&env.lock_dir), ["fg.lock", "fg.waiters", "fg@1.lock", "other.lock"]);
    assert_eq!(files(&env.state_dir), ["fg.json", "other.json"]);
    assert_eq!(files(&metrics), ["runonce_fg.prom", "runonce_other.prom"]);

    let out = forget(&env, "fg", &["--metrics-dir", m]);
    assert_eq!((code(&out), stdout(&out), stderr(&out)), (0, String::new(), String::new()));
    assert_eq!(files(&env.lock_dir), ["other.lock"]);
    assert_eq!(files(&env.state_dir), ["other.json"]);
    assert_eq!(files(&metrics), ["runonce_other.prom"]);
    let table = stdout(&status(&env, &[]));
    assert!(table.lines().any(|l| l.starts_with("other ")), "{table}");
    assert!(!table.lines().any(|l| l.starts_with("fg")), "{table}");
    assert_eq!(code(&status(&env, &["fg"])), 1);

    let out = forget(&env, "fg", &[]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("--forget: no job named 'fg'"), "{}", stderr(&out));
    // the job runs again as new
    assert_eq!(code(&env.run(&["-n", "fg", "--", "true"])), 0);
    let v: Value = serde_json::from_slice(&status(&env, &["fg", "--json"]).stdout).unwrap();
    assert_eq!(v["last"]["runs"], 1, "{v}");
}

#[test]
fn forget_refuses_a_running_or_awaited_job() {
    let env = Env::new();
    assert_eq!(code(&env.run(&["-n", "busy", "--", "true"])), 0);
    let before = (files(&env.lock_dir), files(&env.state_dir));
    let holder = env.hold("busy", &[]);
    let out = forget(&env, "busy", &[]);
    assert_eq!(holder.release(), Some(0));
    assert_eq!(code(&out), 125);
    let err = stderr(&out);
    assert!(err.contains("--forget: job 'busy' is running (pid "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!((files(&env.lock_dir), files(&env.state_dir)), before);

    // a run queued for the lock (its shared lock on the waiters file,
    // private as runonce makes it: a readable one is replaced)
    let queue = env.lock_dir.join("busy.waiters");
    std::fs::write(&queue, "").unwrap();
    std::fs::set_permissions(&queue, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut flock = Command::new("flock");
    flock.arg("-s").arg(env.lock_dir.join("busy.waiters")).args(["sh", "-c"]);
    let queued = env.holding("queued", flock);
    let out = forget(&env, "busy", &[]);
    assert_eq!(queued.release(), Some(0));
    assert_eq!(code(&out), 125);
    let err = stderr(&out);
    assert!(err.contains("a run of job 'busy' is waiting for its lock"), "{err}");
    assert!(env.lock_dir.join("busy.lock").exists() && env.state_dir.join("busy.json").exists());
    assert_eq!(code(&forget(&env, "busy", &[])), 0);
    assert_eq!(files(&env.lock_dir), Vec::<String>::new());
}

#[test]
fn forget_leaves_an_explicit_lock_file_alone() {
    let env = Env::new();
    let data = env.path("data.txt");
    std::fs::write(&data, "precious\n").unwrap();
    let lock = ["--lock", data.to_str().unwrap()];
    assert_eq!(code(&env.run(&[&lock[..], &["-n", "own", "--", "true"][..]].concat())), 0);
    let out = forget(&env, "own", &lock);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(data.exists(), "the --lock file is gone");
    assert!(!env.state_dir.join("own.json").exists());
}

#[test]
fn forget_bad_input() {
    let env = Env::new();
    for (args, want) in [
        (&["--forget", "../etc"][..], "--forget: invalid value '../etc'"),
        (&["--forget"], "--forget: needs a value: NAME"),
        (&["--forget", "a", "b"], "--forget: unexpected argument 'b'"),
        (&["--forget", "a", "--status"], "cannot be used with"),
    ] {
        let out = env.cmd().args(args).output().unwrap();
        assert_eq!(code(&out), 125, "{args:?}");
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1);
    }
}

/// Runs of a job never overlap while `--forget` removes its lock files
/// again and again: each run checks, with an atomic mkdir, that it is
/// alone.  (A forget that unlinked a lock file without holding it would
/// let the next run lock a new file beside a running one.)
#[test]
fn forget_never_lets_two_runs_overlap() {
    let env = Env::new();
    let inside = env.path("inside");
    let job = format!("mkdir {0} || exit 9; sleep 0.01; rmdir {0}", inside.display());
    let stop = std::sync::atomic::AtomicBool::new(false);
    let forgot = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|s| {
        let runners: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..25 {
                        env.cmd().args(["-n", "race", "--", "sh", "-c", &job]).output().unwrap();
                    }
                })
            })
            .collect();
        s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if code(&forget(&env, "race", &[])) == 0 {
                    forgot.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        for r in runners {
            r.join().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let finishes = env.finishes("race");
    assert_eq!(finishes.len(), 75);
    assert!(finishes.iter().all(|r| r["exit"] != 9), "two runs overlapped");
    assert!(finishes.iter().any(|r| r["outcome"] == "ok"));
    assert!(forgot.into_inner() > 0, "the job was never forgotten");
}

#[test]
fn status_says_how_long_ago_each_job_ran() {
    let env = Env::new();
    assert_eq!(code(&env.run(&["-n", "old", "--", "true"])), 0);
    assert_eq!(code(&env.run(&["-n", "new", "--", "true"])), 0);
    let path = env.state_dir.join("old.json");
    let mut state: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let aged = state["last_end_unix"].as_f64().unwrap() - (3.0 * 86400.0 + 2.0 * 3600.0 + 300.0);
    state["last_end_unix"] = aged.into();
    std::fs::write(&path, state.to_string()).unwrap();
    let table = stdout(&status(&env, &[]));
    let header = table.lines().next().unwrap();
    let ended = header.find("ENDED").unwrap();
    let cell = |name: &str| {
        let row = table.lines().find(|l| l.starts_with(name)).unwrap();
        row[ended..].split("  ").next().unwrap().to_string()
    };
    assert_eq!(cell("old "), "3d 2h ago", "{table}");
    let recent = cell("new ");
    assert!(recent.strip_suffix("s ago").is_some_and(|n| n.parse::<u64>().is_ok()), "{table}");
    let all: Value = serde_json::from_slice(&status(&env, &["--json"]).stdout).unwrap();
    let ago = |i: usize| all[i]["ended_ago_s"].as_f64().unwrap();
    assert_eq!(all[1]["name"], "old");
    assert!((ago(1) - (3.0 * 86400.0 + 7500.0)).abs() < SLACK.as_secs_f64(), "{all}");
    assert!(ago(0) < SLACK.as_secs_f64(), "{all}");
}
