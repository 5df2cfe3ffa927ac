//! The job is every process it starts (issue 4): escaped descendants,
//! leftovers, a SIGKILLed runonce, --replace, --keep-orphans, --idle-timeout.

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

use crate::cgroup::dirs;

/// A shell snippet that writes its own PID to `path` atomically.
fn register(path: &std::path::Path) -> String {
    format!("echo $$ > {p}.tmp; mv {p}.tmp {p}", p = path.display())
}

/// Starts a job whose main starts a child that ignores TERM, a
/// double-forked daemon that left the session, and a daemon that also
/// closed every descriptor (the lock's too: after a SIGKILL of runonce only
/// a cgroup still knows it); all wait for `release`.
fn start_tree(env: &Env, extra: &[&str], main_exits: bool) -> (Child, [i32; 4], ReleaseOnDrop) {
    let (m, c, d) = (env.path("main.pid"), env.path("child.pid"), env.path("daemon.pid"));
    let closer = env.path("closer.pid");
    let release = env.path("release");
    let wait = format!("while [ ! -e {} ]; do sleep 0.02; done", release.display());
    let perl = format!(
        r#"perl -e 'use POSIX; POSIX::close($_) for 0..1023; POSIX::setsid();
           open(my $f, ">", "{p}.tmp"); print $f "$$\n"; close $f; rename("{p}.tmp", "{p}");
           until (-e "{r}") {{ select(undef, undef, undef, 0.02) }}' &"#,
        p = closer.display(),
        r = release.display()
    );
    let script = format!(
        "{reg_m}; sh -c 'trap \"\" TERM; {reg_c}; {wait}' & \
         setsid -f sh -c '{reg_d}; {wait}'; {perl} \
         while [ ! -e {c} ] || [ ! -e {d} ] || [ ! -e {cl} ]; do sleep 0.02; done; {tail}",
        reg_m = register(&m),
        reg_c = register(&c),
        reg_d = register(&d),
        c = c.display(),
        d = d.display(),
        cl = closer.display(),
        tail = if main_exits { "exit 0".to_string() } else { wait.clone() },
    );
    let mut cmd = env.cmd();
    cmd.args(extra).args(["--", "sh", "-c", &script]).stdout(Stdio::null());
    let child = cmd.spawn().unwrap();
    let release = ReleaseOnDrop(release);
    let pids = [read_pid(&m), read_pid(&c), read_pid(&d), read_pid(&closer)];
    (child, pids, release)
}

fn all_gone(pids: &[i32]) -> bool {
    wait_until(SLACK, || pids.iter().all(|&p| !alive(p)))
}

/// Each test of the tree runs twice, with `--contain pgroup` (process group,
/// subreaper and the /proc walk alone: what every user without a cgroup
/// gets) and with `--contain cgroup` (the cgroup kill too), so that each
/// way of ending the tree is proven on its own.
macro_rules! both_contains {
    ($($test:ident),* $(,)?) => {
        mod pgroup {
            $( #[test] fn $test() { super::$test("pgroup") } )*
        }
        mod cgroup {
            $( #[test] fn $test() {
                if super::dirs::mounts().v2.is_none() && super::dirs::mounts().memory.is_none() {
                    crate::util::skip(concat!("tree::cgroup::", stringify!($test)), "no cgroups");
                    return;
                }
                super::$test("cgroup")
            } )*
        }
    };
}

both_contains!(
    timeout_reaches_processes_that_left_the_group,
    leftovers_are_killed_when_main_exits,
    keep_orphans_leaves_them_and_frees_the_lock,
    sigkilled_runonce_keeps_the_lock_until_the_orphan_deadline,
    replace_kills_a_live_instance_and_runs,
    idle_timeout_kills_a_silent_job_and_passes_output_through,
);

/// The record of every run of `name` says it was held as `contain` asked.
fn held_as(env: &Env, name: &str, contain: &str) {
    let recs = env.finishes(name);
    assert!(!recs.is_empty(), "no record of {name}");
    for r in recs {
        let how = r["contain"].as_str().unwrap_or_default().to_string();
        let want = if contain == "pgroup" { how == "pgroup" } else { how.starts_with("cgroup") };
        assert!(want || r["outcome"] == "skipped", "{name} under --contain {contain}: {r}");
    }
}

fn timeout_reaches_processes_that_left_the_group(contain: &str) {
    let env = Env::new();
    let (mut child, pids, _release) =
        start_tree(&env, &["--contain", contain, "--name", "esc", "-t", "1", "-k", "0.5"], false);
    assert_eq!(wait_exit(&mut child, SLACK), Some(124));
    assert!(
        all_gone(&pids),
        "survivors: {:?}",
        pids.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
    );
    held_as(&env, "esc", contain);
    assert_eq!(env.finishes("esc")[0]["sent"], serde_json::json!(["TERM", "KILL"]));
}

fn leftovers_are_killed_when_main_exits(contain: &str) {
    let env = Env::new();
    let t = Instant::now();
    let (mut child, pids, _release) =
        start_tree(&env, &["--contain", contain, "--name", "left", "-k", "0.5"], true);
    assert_eq!(wait_exit(&mut child, SLACK), Some(0), "main's own status");
    assert!(t.elapsed() < SLACK);
    assert!(all_gone(&pids));
    let r = &env.finishes("left")[0];
    assert_eq!(r["outcome"], "ok");
    // the TERM-ignoring child and the daemon, and maybe a `sleep` of theirs
    assert!(r["leftovers"].as_u64().unwrap() >= 2, "{r}");
    assert_eq!(r["sent"], serde_json::json!(["TERM", "KILL"]));
    held_as(&env, "left", contain);
}

fn keep_orphans_leaves_them_and_frees_the_lock(contain: &str) {
    let env = Env::new();
    let (mut child, pids, _release) =
        start_tree(&env, &["--contain", contain, "--name", "keep", "--keep-orphans"], true);
    assert_eq!(wait_exit(&mut child, SLACK), Some(0));
    assert!(alive(pids[1]) && alive(pids[2]) && alive(pids[3]), "the orphans live on");
    let o = env.run(&["--contain", contain, "--name", "keep", "--", "true"]);
    assert_eq!(code(&o), 0, "the orphans do not hold the lock");
    assert!(alive(pids[1]), "the next run does not kill them");
    std::fs::write(env.path("release"), "").unwrap();
    assert!(all_gone(&pids));
    held_as(&env, "keep", contain);
}

fn sigkilled_runonce_keeps_the_lock_until_the_orphan_deadline(contain: &str) {
    let env = Env::new();
    let (mut child, pids, _release) =
        start_tree(&env, &["--contain", contain, "--name", "orph", "-t", "2", "-k", "0.5"], false);
    let t = Instant::now();
    kill(child.id() as i32, libc::SIGKILL);
    child.wait().unwrap();
    assert!(alive(pids[0]) && alive(pids[1]), "the job outlives runonce");
    let ran = env.path("ran");
    let o =
        env.run(&["--contain", contain, "--name", "orph", "--", "touch", ran.to_str().unwrap()]);
    assert_eq!(code(&o), 75, "no second instance while the orphan lives");
    assert!(!ran.exists());
    let status = std::process::Command::new(BIN)
        .args(["--status", "orph", "--lock-dir"])
        .arg(&env.lock_dir)
        .arg("--state-dir")
        .arg(&env.state_dir)
        .output()
        .unwrap();
    assert!(stdout(&status).contains("orphaned"), "{}", stdout(&status));
    // after the orphan's recorded deadline, the next run kills its tree and runs
    assert!(wait_until(SLACK, || t.elapsed() > Duration::from_millis(2100)));
    let o = env.run(&[
        "--contain",
        contain,
        "--name",
        "orph",
        "-k",
        "0.5",
        "--",
        "touch",
        ran.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(ran.exists());
    // the daemon closed nothing, so it held the lock too: all of them are gone
    assert!(!alive(pids[0]) && !alive(pids[1]) && !alive(pids[2]));
    // the one that closed every descriptor: only the cgroup still held it
    if contain == "pgroup" {
        kill(pids[3], libc::SIGKILL);
    } else {
        assert!(wait_until(SLACK, || !alive(pids[3])), "the cgroup's member survived");
    }
    held_as(&env, "orph", contain);
}

fn replace_kills_a_live_instance_and_runs(contain: &str) {
    let env = Env::new();
    let (mut old, pids, _release) =
        start_tree(&env, &["--contain", contain, "--name", "rep", "-k", "30"], false);
    let ran = env.path("ran");
    let t = Instant::now();
    let o = output_within(
        env.cmd().args([
            "--contain",
            contain,
            "--name",
            "rep",
            "--replace",
            "-k",
            "0.5",
            "--",
            "touch",
            ran.to_str().unwrap(),
        ]),
        SLACK * 2,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(ran.exists());
    assert!(all_gone(&pids), "old processes alive after --replace");
    assert!(t.elapsed() < SLACK);
    // the old runonce forwarded the TERM to its job, whose main died of it
    assert_eq!(wait_exit(&mut old, SLACK), Some(128 + libc::SIGTERM), "the old runonce's status");
    let recs = env.finishes("rep");
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!((&recs[0]["outcome"], &recs[0]["signal"]), (&"signaled".into(), &"TERM".into()));
    assert_eq!(recs[1]["outcome"], "ok");
    held_as(&env, "rep", contain);
}

#[test]
fn replace_refuses_another_users_instance() {
    let env = Env::new();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // a shared lock file both users can open; the holder runs as nobody
    let shared = env.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let lock = shared.join("job.lock");
    std::fs::write(&lock, "").unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let ready = shared.join("ready");
    let as_user = |uid: &str, args: &[&str]| {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid", uid, "--regid", uid, "--clear-groups", "--"]).arg(BIN);
        c.arg("--lock").arg(&lock).args(["--log", "none", "--state-dir"]).arg(shared.join(uid));
        c.args(args);
        c
    };
    let script = format!("touch {}; exec sleep 30", ready.display());
    let mut holder = as_user("65534", &["--", "sh", "-c", &script]).spawn().unwrap();
    wait_file(&ready);
    let o = as_user("1", &["--replace", "--", "true"]).output().unwrap();
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(stderr(&o).contains("uid 65534"), "{}", stderr(&o));
    assert!(holder.try_wait().unwrap().is_none(), "nothing was killed");
    kill(holder.id() as i32, libc::SIGTERM);
    holder.wait().unwrap();
}

fn idle_timeout_kills_a_silent_job_and_passes_output_through(contain: &str) {
    let env = Env::new();
    let t = Instant::now();
    let o = env.run(&[
        "--contain",
        contain,
        "--name",
        "idle",
        "--idle-timeout",
        "0.5",
        "-k",
        "0.5",
        "--",
        "sh",
        "-c",
        "echo one; echo two >&2; exec sleep 30",
    ]);
    assert_eq!(code(&o), 124);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(stdout(&o), "one\n");
    assert_eq!(stderr(&o), "two\n");
    assert_eq!(env.finishes("idle")[0]["outcome"], "idle");
    held_as(&env, "idle", contain);
    // output resets the idle clock
    let o = env.run(&[
        "--contain",
        contain,
        "--idle-timeout",
        "1.2",
        "--",
        "sh",
        "-c",
        "i=0; while [ $i -lt 12 ]; do echo $i; sleep 0.2; i=$((i+1)); done",
    ]);
    assert_eq!(code(&o), 0);
    assert_eq!(stdout(&o).lines().count(), 12);
}

#[test]
fn quiet_shows_output_only_on_failure() {
    let env = Env::new();
    let o = env.run(&["--quiet", "--", "sh", "-c", "echo out; echo err >&2"]);
    assert_eq!(code(&o), 0);
    assert!(o.stdout.is_empty() && o.stderr.is_empty());
    let o = env.run(&["--quiet", "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(code(&o), 3);
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
}

#[test]
fn quiet_does_not_hang_on_an_escaped_pipe_holder() {
    // chronic's trap: a daemon keeps the pipes open; runonce must not wait for it
    let env = Env::new();
    let pid = env.path("d.pid");
    let script = format!("setsid -f sh -c '{}; exec sleep 30'; exit 3", register(&pid));
    let t = Instant::now();
    let o = env.run(&["--quiet", "--keep-orphans", "--", "sh", "-c", &script]);
    assert_eq!(code(&o), 3);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    kill(read_pid(&pid), libc::SIGKILL);
}

/// At a timeout every process of the job gets `--signal` once, as under
/// timeout(1): a child that handles TERM (a second TERM often means "stop
/// now, skip the clean-up") is not signalled again when the main process
/// dies of the first one; SIGKILL follows the grace.
#[test]
fn a_timeout_signals_each_process_once() {
    for contain in ["cgroup", "pgroup"] {
        let env = Env::new();
        let (log, ready) = (env.path("terms"), env.path("ready"));
        let child = format!(
            "trap 'echo TERM >> {log}' TERM; touch {ready}; while :; do sleep 0.05; done",
            log = log.display(),
            ready = ready.display()
        );
        let out = env.run(&[
            "--contain",
            contain,
            "-n",
            "once",
            "-t",
            "2s",
            "-k",
            "2s",
            "--",
            "sh",
            "-c",
            &format!("sh -c \"{child}\" & wait"),
        ]);
        assert_eq!(code(&out), 124, "{contain}: {}", stderr(&out));
        assert!(ready.exists(), "{contain}: the child never set its trap within the timeout");
        let terms = std::fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(terms.lines().count(), 1, "{contain}: TERMs the child got: {terms:?}");
    }
}
