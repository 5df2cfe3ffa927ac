//! Safe on a shared machine (man page, SECURITY): one test per way another
//! user, or an unprivileged process a root job started, tried to make a
//! job skip, hang, run twice, stay unkilled, or signal something else —
//! with real second and third users (useradd, setpriv), real flock(1)
//! holders, real symlinks and FIFOs, real PID reuse in a PID namespace,
//! and a frozen file system.  Each asserts the safe outcome: the job runs
//! (or is refused with 125 and one clear line), nothing else is signalled,
//! the timeout fires on time, nothing blocks.  Then a property test over
//! random holder records and state files.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use crate::util::{BIN, Env, SLACK, alive, code, read_pid, stderr, stdout, wait_file, wait_until};

// ---------------------------------------------------------------- helpers

/// A real user of its own, made once (idempotently: another test process
/// may be making it, and useradd fails while /etc/passwd is locked).
fn user(name: &str) -> (u32, u32) {
    for _ in 0..200 {
        if let Some(ids) = ids_of(name) {
            return ids;
        }
        let made = Command::new("useradd")
            .args(["--system", "--no-create-home", "--home-dir", "/nonexistent"])
            .args(["--shell", "/usr/sbin/nologin", "--user-group", name])
            .output()
            .expect("useradd (passwd package)");
        if !made.status.success() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("cannot make user {name}");
}

fn ids_of(name: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, name]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// The attacker.
fn mallory() -> (u32, u32) {
    user("runonce-mallory")
}

/// A user whose jobs the attacker goes after; home `/nonexistent`, as
/// system users have.
fn bob() -> (u32, u32) {
    user("runonce-bob")
}

/// `program` run as `ids`, with the environment cron gives a system user.
fn as_user(ids: (u32, u32), program: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={}", ids.0)).arg(format!("--regid={}", ids.1)).args([
        "--clear-groups",
        "--",
        program,
    ]);
    c.env("HOME", "/nonexistent")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("XDG_STATE_HOME")
        .env_remove("RUNONCE_LOCK_DIR")
        .env_remove("RUNONCE_STATE_DIR")
        .env_remove("TMPDIR")
        .stdin(Stdio::null());
    c
}

fn sh_as(ids: (u32, u32), script: &str) -> Output {
    as_user(ids, "sh").args(["-c", script]).output().expect("run as user")
}

/// An environment other users can look into, as on a real machine: the
/// scratch dir and the lock and state dirs are 0755 and root's, as
/// /run/runonce and /var/lib/runonce are; `pub` is world-writable and
/// sticky, as /tmp is.
fn shared_env() -> Env {
    let env = Env::new();
    for d in [env.dir.path(), &env.lock_dir, &env.state_dir] {
        fs::create_dir_all(d).unwrap();
        fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let public = env.path("pub");
    fs::create_dir(&public).unwrap();
    fs::set_permissions(&public, fs::Permissions::from_mode(0o1777)).unwrap();
    env
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// The start time of a process (/proc/PID/stat field 22).
fn start_of(pid: i32) -> u64 {
    runonce::procs::stat(pid).expect("a live process").start
}

/// A process the test started that nothing may signal: still the same
/// process, alive.
struct Bystander {
    child: Child,
    start: u64,
}

impl Bystander {
    fn spawn(mut cmd: Command) -> Bystander {
        let child = cmd.stdin(Stdio::null()).spawn().expect("bystander");
        let start = start_of(child.id() as i32);
        Bystander { child, start }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn untouched(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
            && runonce::procs::stat(self.pid()).is_some_and(|s| s.start == self.start)
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ids` holds a flock (`-s`: shared) on `path` in one process, which
/// touches `ready` once it holds it.
fn hold_as(ids: (u32, u32), path: &Path, kind: &str, ready: &Path) -> Bystander {
    let script = format!(
        "exec 9<{}; flock {kind} 9 && touch {} && exec sleep 1000",
        path.display(),
        ready.display()
    );
    let mut c = as_user(ids, "sh");
    c.args(["-c", &script]);
    let b = Bystander::spawn(c);
    wait_file(ready);
    b
}

/// Waits for a child up to `limit`; None if it is still running.
fn wait_for(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            use std::os::unix::process::ExitStatusExt;
            return Some(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)));
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// runonce with the environment's dirs but records in `log`.
fn root_cmd(env: &Env) -> Command {
    let mut c = env.cmd();
    c.stdout(Stdio::null());
    c
}

/// A job that holds the lock until `release` exists.
fn wait_script(ready: &Path, release: &Path) -> String {
    format!("touch {}; while [ ! -e {} ]; do sleep 0.02; done", ready.display(), release.display())
}

// ------------------------------------------- files another user could lock

/// Attack: `flock -s /run/runonce/NAME.lock sleep 1e9` (lock files were
/// 0644, so anyone could open and lock them; the `.waiters` file too) made a
/// root job skip forever.  Lock files left readable by an older version are
/// made private on the next run.  A user's `--status` still tells running
/// from idle (from /proc/locks), without the holder's details.
#[test]
fn users_cannot_lock_roots_lock_or_waiter_files() {
    let env = shared_env();
    let mallory = mallory();
    // as an older runonce left them
    let lock = env.lock_dir.join("nightly.lock");
    let queue = env.lock_dir.join("nightly.waiters");
    for f in [&lock, &queue] {
        fs::write(f, "").unwrap();
        fs::set_permissions(f, fs::Permissions::from_mode(0o1644)).unwrap();
    }
    // and an attacker who opened the queue back then holds it: every run
    // that finds the lock free would leave it to a waiter that never comes
    let mut old_fd = hold_as(mallory, &queue, "-s", &env.path("pub/queue.held"));
    let ran = env.path("ran");
    let o = root_cmd(&env).args(["-n", "nightly", "--", "touch"]).arg(&ran).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(ran.exists(), "the run yielded to the attacker's 'waiter'");
    assert_eq!(mode(&lock) & 0o777, 0o600, "the lock file is private now");
    assert_eq!(mode(&queue) & 0o777, 0o600, "the waiters file is a fresh private one");
    assert!(old_fd.untouched());
    for f in [&lock, &queue] {
        let o = sh_as(mallory, &format!("exec flock -n -s {} true", f.display()));
        assert_ne!(code(&o), 0, "{} could be locked by another user", f.display());
        assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    }
    // so nothing stands in the way of the next run
    fs::remove_file(&ran).unwrap();
    let o = root_cmd(&env).args(["-n", "nightly", "--", "touch"]).arg(&ran).output().unwrap();
    assert_eq!(code(&o), 0);
    assert!(ran.exists());

    // while it runs, another user's --status says so, without details
    let (ready, release) = (env.path("ready"), env.path("release"));
    let mut holder = root_cmd(&env)
        .args(["-n", "nightly", "--", "sh", "-c", &wait_script(&ready, &release)])
        .spawn()
        .unwrap();
    wait_file(&ready);
    let status = as_user(mallory, BIN)
        .arg("--lock-dir")
        .arg(&env.lock_dir)
        .arg("--state-dir")
        .arg(&env.state_dir)
        .args(["--status", "nightly"])
        .output()
        .unwrap();
    assert_eq!(code(&status), 0, "{}", stderr(&status));
    let table = stdout(&status);
    let row = table.lines().find(|l| l.starts_with("nightly")).unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("running"), "{table}");
    assert!(!row.contains(&holder.id().to_string()), "root's holder details stay root's: {row}");
    fs::write(&release, "").unwrap();
    assert_eq!(wait_for(&mut holder, SLACK), Some(0));
}

/// Attack: `flock /var/lib/runonce sleep 1e9` froze every root job — the
/// state dir was locked with a blocking flock before supervision, so a run
/// with `--metrics-dir --timeout 2` was never timed out, and runs without
/// it hung after the job, holding its lock.  The state lock is a private
/// file now, which no other user can open.
#[test]
fn a_user_locking_the_state_dir_freezes_nothing() {
    let env = shared_env();
    let mallory = mallory();
    let metrics = env.path("metrics");
    let mut squatter = hold_as(mallory, &env.state_dir, "-x", &env.path("pub/held"));
    let t = Instant::now();
    let o = root_cmd(&env)
        .args(["-n", "frozen", "--metrics-dir"])
        .arg(&metrics)
        .args(["-t", "1", "-k", "0.2", "--", "sleep", "30"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 124, "timed out: {}", stderr(&o));
    assert!(t.elapsed() < SLACK, "the timeout fired late: {:?}", t.elapsed());
    let o = root_cmd(&env).args(["-n", "frozen", "--", "true"]).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(t.elapsed() < 2 * SLACK, "the run hung after its job");
    let state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(env.state_dir.join("frozen.json")).unwrap())
            .unwrap();
    assert_eq!((state["runs"].as_u64(), state["timeouts"].as_u64()), (Some(2), Some(1)));
    assert!(metrics.join("runonce_frozen.prom").exists());
    let state_lock = env.state_dir.join(".lock");
    assert_eq!(mode(&state_lock) & 0o777, 0o600);
    let o = sh_as(mallory, &format!("exec flock -n {} true", state_lock.display()));
    assert_ne!(code(&o), 0, "another user can lock the state lock");
    assert!(squatter.untouched());
}

/// The state lock waits a bounded time: a run of the same user that hangs
/// while holding it (a stalled disk) delays the others by seconds, and the
/// record still goes to the log.
#[test]
fn a_hung_state_lock_holder_delays_a_run_by_seconds_only() {
    let env = shared_env();
    let o = root_cmd(&env).args(["-n", "st", "--", "true"]).output().unwrap();
    assert_eq!(code(&o), 0);
    let state_lock = env.state_dir.join(".lock");
    let held = env.path("held");
    let _hung = Bystander::spawn({
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!(
            "exec 9<{}; flock 9 && touch {} && exec sleep 1000",
            state_lock.display(),
            held.display()
        ));
        c
    });
    wait_file(&held);
    let t = Instant::now();
    let o = env.cmd().args(["-n", "st", "--", "true"]).output().unwrap();
    assert_eq!(code(&o), 0);
    assert!(t.elapsed() < Duration::from_secs(5) + SLACK, "waited {:?}", t.elapsed());
    assert!(stderr(&o).contains("cannot update state: still locked"), "{}", stderr(&o));
    assert_eq!(env.finishes("st").len(), 2, "the record was written all the same");
}

/// Attack: a root job that drops privileges (`runonce -- setpriv
/// --reuid=USER …`) inherited the lock file open read-write and could
/// `pwrite` a forged holder record naming another job's cgroup or any PID;
/// the next root run then "enforced the orphan's deadline" on it, killing an
/// unrelated root job.  The lock is inherited read-only now, the record is
/// a root-only file elsewhere, and the orphan is ended (only it) once its
/// deadline has passed.
#[test]
fn a_job_that_dropped_privileges_cannot_forge_the_holder_record() {
    let env = shared_env();
    let mallory = mallory();
    // the target: another root job, in its own cgroup
    let (vready, vrelease) = (env.path("victim.ready"), env.path("victim.release"));
    let mut victim = Bystander::spawn({
        let mut c = root_cmd(&env);
        c.args(["-n", "victim", "--", "sh", "-c", &wait_script(&vready, &vrelease)]);
        c
    });
    wait_file(&vready);
    // runonce names the job once fork returns, while the job may already
    // have said it is ready: wait for the record to name it
    let victim_holder = env.lock_dir.join("victim.holder");
    let read_victim = || {
        let text = fs::read_to_string(&victim_holder).ok()?;
        let job = runonce::holder::Holder::parse(&text)?.job?;
        Some((text, job))
    };
    assert!(wait_until(SLACK, || read_victim().is_some()), "the victim's job recorded");
    let (victim_record, victim_job) = read_victim().unwrap();
    // what the dropped job would write: the victim's record, as this job's
    let forged = env.path("pub/forged");
    fs::write(&forged, victim_record.replace("name=victim", "name=dropper")).unwrap();
    fs::set_permissions(&forged, fs::Permissions::from_mode(0o644)).unwrap();

    let lock = env.lock_dir.join("dropper.lock");
    let record = env.lock_dir.join("dropper.holder");
    let report = env.path("pub/report");
    let script = format!(
        r#"
        for fd in /proc/self/fd/*; do
          [ "$(readlink "$fd")" = "{lock}" ] || continue
          n=${{fd##*/}}
          echo "flags $(awk '/^flags/ {{print $2}}' /proc/self/fdinfo/$n)"
          eval "cat {forged} >&$n" 2>/dev/null; echo "through the descriptor: $?"
        done
        cat {forged} > {lock} 2>/dev/null; echo "lock file: $?"
        cat {forged} > {record} 2>/dev/null; echo "record: $?"
        cp {forged} {dir}/x.tmp 2>/dev/null && mv {dir}/x.tmp {record} 2>/dev/null
        echo "record by rename: $?"
        echo done
        exec sleep 1000
        "#,
        lock = lock.display(),
        forged = forged.display(),
        record = record.display(),
        dir = env.lock_dir.display(),
    );
    let dropper_job = format!(
        "setpriv --reuid={} --regid={} --clear-groups sh -c '{}' > {}",
        mallory.0,
        mallory.1,
        script.replace('\'', r"'\''"),
        report.display()
    );
    let mut dropper = root_cmd(&env)
        .args(["-n", "dropper", "-t", "1", "--", "sh", "-c", &dropper_job])
        .spawn()
        .unwrap();
    assert!(
        wait_until(SLACK, || fs::read_to_string(&report).is_ok_and(|r| r.contains("done"))),
        "the dropped job never reported"
    );
    let said = fs::read_to_string(&report).unwrap();
    let flags = said.lines().find_map(|l| l.strip_prefix("flags ")).expect("the lock is inherited");
    assert_eq!(u32::from_str_radix(flags, 8).unwrap() & 3, 0, "inherited read-only: {said}");
    for attempt in ["through the descriptor", "lock file", "record", "record by rename"] {
        let rc = said.lines().find_map(|l| l.strip_prefix(&format!("{attempt}: "))).unwrap();
        assert_ne!(rc, "0", "{attempt} succeeded: {said}");
    }
    assert_eq!(fs::metadata(&lock).unwrap().len(), 0, "the lock file holds nothing");
    assert!(!fs::read_to_string(&record).unwrap().contains("name=victim"));
    // orphan the dropped job; let its deadline pass
    let dropped = runonce::holder::Holder::load(&record).unwrap().job.unwrap();
    dropper.kill().unwrap();
    dropper.wait().unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let ran = env.path("ran");
    let o = root_cmd(&env)
        .args(["-n", "dropper", "-k", "0.5", "--", "touch"])
        .arg(&ran)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(ran.exists(), "the next run ran");
    assert!(victim.untouched(), "the victim's runonce was signalled");
    assert!(victim_job.alive(), "the victim's job was signalled");
    assert!(!dropped.alive(), "the orphan's deadline was not enforced");
    fs::write(&vrelease, "").unwrap();
    assert_eq!(wait_for(&mut victim.child, SLACK), Some(0));
}

/// Attack: `--replace --lock /some/dir/x.lock` where a user pre-made x.lock
/// with a forged holder record (and holds it with flock): the record was
/// believed.  Now runonce never reads a `--lock` file and proves what it
/// signals: it refuses (125, one line), signals nothing, and the file is
/// left as it was.
#[test]
fn replace_on_a_lock_file_a_user_made_signals_nothing() {
    let env = shared_env();
    let mallory = mallory();
    let mut victim = Bystander::spawn({
        let mut c = Command::new("sleep");
        c.arg("1000");
        c
    });
    let x = env.path("pub/x.lock");
    let forged = format!(
        "name=x\nrunonce={pid} {start}\njob={pid} {start}\nstarted=1\ndeadline_mono_ns=1\n\
         uid=0\nend\n",
        pid = victim.pid(),
        start = victim.start
    );
    let o = sh_as(mallory, &format!("printf '{forged}' > {}", x.display()));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let before = fs::read(&x).unwrap();
    let mut flock = hold_as(mallory, &x, "-x", &env.path("pub/held"));
    let ran = env.path("ran");
    let o = root_cmd(&env)
        .args(["--replace", "-k", "0.2", "--lock"])
        .arg(&x)
        .args(["--", "touch"])
        .arg(&ran)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(code(&o), 125, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&x.display().to_string()) && err.contains("nothing was signalled"),
        "{err}"
    );
    assert!(err.contains(&format!("uid {}", mallory.0)), "{err}");
    assert!(!ran.exists());
    assert!(victim.untouched(), "the process the forged record names was signalled");
    assert!(flock.untouched(), "the user's flock was signalled");
    assert_eq!(fs::read(&x).unwrap(), before, "the lock file was written");
    // free, the lock is taken and the file left alone all the same
    drop(flock);
    let o = root_cmd(&env)
        .args(["--replace", "--lock"])
        .arg(&x)
        .args(["--", "touch"])
        .arg(&ran)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(ran.exists());
    assert_eq!(fs::read(&x).unwrap(), before, "the lock file was written");
    assert!(victim.untouched());
}

/// A holder record another user owns decides nothing, even one that names
/// the very run holding the lock (as if the lock directory had once been
/// that user's): its "passed" deadline is not enforced; the run skips and
/// the orphan, whose own deadline is far off, lives on.  The genuine record,
/// put back, is believed again.
#[test]
fn a_holder_record_another_user_owns_is_ignored() {
    let env = shared_env();
    let mallory = mallory();
    let pid_file = env.path("job.pid");
    let mut first = root_cmd(&env)
        .args(["-n", "owned", "-t", "1h", "--", "sh", "-c"])
        .arg(format!("echo $$ > {}; exec sleep 1000", pid_file.display()))
        .spawn()
        .unwrap();
    let job = read_pid(&pid_file);
    let record = env.lock_dir.join("owned.holder");
    assert!(wait_until(SLACK, || runonce::holder::Holder::load(&record)
        .is_some_and(|h| h.job.is_some())));
    first.kill().unwrap();
    first.wait().unwrap();
    let genuine = fs::read_to_string(&record).unwrap();
    let overdue = genuine
        .lines()
        .map(|l| if l.starts_with("deadline_mono_ns=") { "deadline_mono_ns=1" } else { l })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    fs::write(&record, &overdue).unwrap();
    std::os::unix::fs::chown(&record, Some(mallory.0), Some(mallory.1)).unwrap();
    let o = root_cmd(&env).args(["-n", "owned", "-k", "0.2", "--", "true"]).output().unwrap();
    assert_eq!(code(&o), 75, "the record was believed: {}", stderr(&o));
    assert!(alive(job), "the orphan was ended on another user's word");
    // root's own record saying the same is believed: the orphan is ended
    std::os::unix::fs::chown(&record, Some(0), Some(0)).unwrap();
    let o = root_cmd(&env).args(["-n", "owned", "-k", "0.2", "--", "true"]).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(wait_until(SLACK, || !alive(job)), "the overdue orphan lives on");
}

/// A lock directory another user owns or could write into, and a `--lock`
/// path another user planted as a symbolic link or a FIFO, are refused at
/// once: exit 125, one line naming the path, the command not run, nothing
/// written through the link.
#[test]
fn lock_paths_another_user_could_tamper_with_are_refused() {
    let env = shared_env();
    let mallory = mallory();
    let public = env.path("pub");
    let victim = env.path("victim");
    fs::write(&victim, "secret\n").unwrap();
    let o = sh_as(
        mallory,
        &format!(
            "cd {p} && mkdir -m 700 theirs && ln -s {v} link.lock && mkfifo fifo.lock",
            p = public.display(),
            v = victim.display()
        ),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // root's own, but open to everyone (made carelessly, or by a package)
    fs::create_dir(public.join("open")).unwrap();
    fs::set_permissions(public.join("open"), fs::Permissions::from_mode(0o777)).unwrap();
    let ran = env.path("ran");
    let run = |args: &[&str]| {
        let t = Instant::now();
        let o = Command::new(BIN)
            .args(["--state-dir", env.state_dir.to_str().unwrap(), "--log", "none"])
            .args(args)
            .args(["--", "touch"])
            .arg(&ran)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(t.elapsed() < SLACK, "{args:?} took {:?}", t.elapsed());
        o
    };
    let p = |name: &str| public.join(name).display().to_string();
    let (theirs, open, link, fifo) = (p("theirs"), p("open"), p("link.lock"), p("fifo.lock"));
    let locks = env.lock_dir.display().to_string();
    let cases = [
        (["--lock-dir", &theirs, "-n", "j"], format!("owned by uid {}", mallory.0)),
        (["--lock-dir", &open, "-n", "j"], "writable by group or others".into()),
        (["--lock-dir", &locks, "-l", &link], "is a symlink: refused".into()),
        (["--lock-dir", &locks, "-l", &fifo], "not a regular file".into()),
    ];
    for (args, why) in cases {
        let o = run(&args);
        let err = stderr(&o);
        assert_eq!(code(&o), 125, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(&why), "{args:?}: {err}");
        assert!(!ran.exists(), "{args:?}: the command ran");
    }
    assert_eq!(fs::read_to_string(&victim).unwrap(), "secret\n");
}

/// The job of the concurrency tests: notes when two runs overlap.
fn probe_job(dir: &Path, secs: &str) -> String {
    format!(
        "exec 9>>{d}/probe; flock -n 9 || echo $$ >> {d}/overlaps; echo $$ >> {d}/starts; \
         sleep {secs}",
        d = dir.display()
    )
}

/// Every runonce that ran wrote one finish record, and none was SIGKILLed.
fn each_finished(env: &Env, name: &str, pids: &[u32], codes: &[Option<i32>]) {
    for c in codes {
        assert!(
            matches!(c, Some(0 | 143)),
            "a runonce ended with {c:?} (137: SIGKILLed by another; 125: refused)"
        );
    }
    let finishes = env.finishes(name);
    for pid in pids {
        let n = finishes.iter().filter(|r| r["runonce_pid"] == *pid).count();
        assert_eq!(n, 1, "runonce {pid} wrote {n} finish records");
    }
    let overlaps = fs::read_to_string(env.path("overlaps")).unwrap_or_default();
    assert!(overlaps.is_empty(), "two jobs ran at once: {overlaps}");
}

/// Attack: three `--replace` started at once SIGKILLed each other's
/// runonce: one or two exited 137 with no finish record.  They take turns
/// now, and each ends only the run it proved to hold the lock.
#[test]
fn concurrent_replaces_never_kill_each_other() {
    let env = shared_env();
    for round in 0..3 {
        let (ready, release) = (env.path("h.ready"), env.path("h.release"));
        let _ = fs::remove_file(&ready);
        let mut holder = root_cmd(&env)
            .args(["-n", "rep", "--", "sh", "-c", &wait_script(&ready, &release)])
            .spawn()
            .unwrap();
        wait_file(&ready);
        let job = probe_job(env.dir.path(), "1");
        let mut replacers: Vec<Child> = (0..3)
            .map(|_| {
                root_cmd(&env)
                    .args(["-n", "rep", "--replace", "-k", "2", "--", "sh", "-c", &job])
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut pids = vec![holder.id()];
        pids.extend(replacers.iter().map(Child::id));
        let mut codes = vec![wait_for(&mut holder, 3 * SLACK)];
        codes.extend(replacers.iter_mut().map(|c| wait_for(c, 3 * SLACK)));
        each_finished(&env, "rep", &pids, &codes);
        assert_eq!(codes[0], Some(143), "round {round}: the holder was replaced");
        assert!(codes.contains(&Some(0)), "round {round}: the last replacer ran: {codes:?}");
    }
}

/// Attack: three queued `--wait` runs enforcing an orphan's deadline at
/// once SIGKILLed each other's runonce.  One ends the orphan; the others see
/// that the lock changed hands and wait their turn.
#[test]
fn waiters_enforcing_an_orphans_deadline_never_kill_each_other() {
    let env = shared_env();
    let job_pid = env.path("orphan.pid");
    let mut first = root_cmd(&env)
        .args(["-n", "q", "-t", "0.5", "--", "sh", "-c"])
        .arg(format!("echo $$ > {}; exec sleep 1000", job_pid.display()))
        .spawn()
        .unwrap();
    let orphan = read_pid(&job_pid);
    first.kill().unwrap();
    first.wait().unwrap();
    // each job outlasts the others' grace: an enforcer that killed whoever
    // held the lock once its grace was over would find a fresh waiter's run
    let job = probe_job(env.dir.path(), "1.5");
    let mut waiters: Vec<Child> = (0..3)
        .map(|_| {
            root_cmd(&env)
                .args(["-n", "q", "--wait=60", "-k", "0.5", "--", "sh", "-c", &job])
                .spawn()
                .unwrap()
        })
        .collect();
    let pids: Vec<u32> = waiters.iter().map(Child::id).collect();
    let codes: Vec<Option<i32>> = waiters.iter_mut().map(|c| wait_for(c, 3 * SLACK)).collect();
    each_finished(&env, "q", &pids, &codes);
    assert_eq!(codes, [Some(0); 3], "every waiter ran");
    assert!(!alive(orphan), "the orphan outlived its deadline");
    let starts = fs::read_to_string(env.path("starts")).unwrap();
    assert_eq!(starts.lines().count(), 3, "{starts}");
}

// ------------------------------------------- paths planted in writable dirs

/// Attack: root followed symlinks and FIFOs planted in writable
/// directories: `--log json:D/x.jsonl` where x.jsonl linked to a root-only
/// file appended to it; `--metrics-dir D/m` wrote through a link; a FIFO at
/// the log path (or at the predictable temp name of the metrics) hung
/// runonce forever, TERM blocked and the job's timeout not enforced.
#[test]
fn planted_links_and_fifos_are_never_followed_or_waited_on() {
    let env = shared_env();
    let mallory = mallory();
    let victim = env.path("victim");
    fs::write(&victim, "secret\n").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
    let victim_dir = env.path("victim-dir");
    fs::create_dir(&victim_dir).unwrap();
    let public = env.path("pub");
    let o = sh_as(
        mallory,
        &format!(
            "cd {p} && ln -s {v} x.jsonl && mkfifo fifo.jsonl && mkdir m && \
             ln -s {v} m/runonce_j.prom && mkfifo m/.runonce_j.prom.tmp && ln -s {vd} m2 && \
             mkdir s && chmod 777 s && mkfifo s/j.json",
            p = public.display(),
            v = victim.display(),
            vd = victim_dir.display()
        ),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let run = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.arg("--lock-dir").arg(&env.lock_dir).args(["-n", "j"]).args(args).stdin(Stdio::null());
        let t = Instant::now();
        let out = c.output().unwrap();
        assert!(t.elapsed() < SLACK, "{args:?} took {:?}", t.elapsed());
        out
    };
    let state = format!("--state-dir={}", env.state_dir.display());

    let log = format!("json:{}", public.join("x.jsonl").display());
    let o = run(&["--log", &log, &state, "--", "true"]);
    assert_eq!(code(&o), 0);
    assert!(stderr(&o).contains("x.jsonl: cannot write: is a symlink: refused"), "{}", stderr(&o));

    let log = format!("json:{}", public.join("fifo.jsonl").display());
    let o = run(&["--log", &log, &state, "-t", "1", "-k", "0.2", "--", "sleep", "30"]);
    assert_eq!(code(&o), 124, "the timeout fired: {}", stderr(&o));
    assert!(stderr(&o).contains("fifo.jsonl: cannot write: not a regular file"), "{}", stderr(&o));

    let m = public.join("m");
    let o = run(&["--log", "none", &state, "--metrics-dir", m.to_str().unwrap(), "--", "true"]);
    assert_eq!((code(&o), stderr(&o)), (0, String::new()));
    let prom = m.join("runonce_j.prom");
    assert!(fs::symlink_metadata(&prom).unwrap().is_file(), "the link was replaced by the file");
    assert!(fs::read_to_string(&prom).unwrap().contains("runonce_running"));

    let m2 = public.join("m2");
    let o = run(&["--log", "none", &state, "--metrics-dir", m2.to_str().unwrap(), "--", "true"]);
    assert_eq!(code(&o), 0);
    let said = format!("is a symlink owned by uid {}: refused", mallory.0);
    assert!(stderr(&o).contains(&said), "{}", stderr(&o));
    assert_eq!(fs::read_dir(&victim_dir).unwrap().count(), 0, "written through the link");

    // a FIFO where the state file goes: neither read (the circuit
    // breaker looks) nor waited on, and replaced
    let s = format!("--state-dir={}", public.join("s").display());
    let o = run(&["--log", "none", &s, "--max-failures", "1", "--cooldown", "1h", "--", "true"]);
    assert_eq!((code(&o), stderr(&o)), (0, String::new()));
    assert!(fs::symlink_metadata(public.join("s/j.json")).unwrap().is_file());

    assert_eq!(fs::read_to_string(&victim).unwrap(), "secret\n", "written through a link");
}

/// A loop-mounted ext4 file system that can be frozen (writes then block
/// in the kernel until it is thawed); thawed and unmounted when dropped.
struct Freezable {
    mnt: PathBuf,
}

impl Freezable {
    fn new(env: &Env) -> Freezable {
        let img = env.path("fs.img");
        let mnt = env.path("fs");
        fs::create_dir(&mnt).unwrap();
        let ok = |c: &mut Command| {
            let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
            assert!(out.status.success(), "{c:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        fs::File::create(&img).unwrap().set_len(16 << 20).unwrap();
        ok(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&img));
        ok(Command::new("mount").args(["-o", "loop"]).arg(&img).arg(&mnt));
        Freezable { mnt }
    }

    fn freeze(&self, frozen: bool) {
        let flag = if frozen { "-f" } else { "-u" };
        let out = Command::new("fsfreeze").arg(flag).arg(&self.mnt).output().unwrap();
        assert!(out.status.success() || !frozen, "{}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Freezable {
    fn drop(&mut self) {
        self.freeze(false);
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
    }
}

/// Attack (and accident): log, state or metrics I/O that hangs stood
/// between the deadline and the kill.  With every one of them on a frozen
/// file system, the job is still killed on time and the lock released for
/// the next run; runonce itself ends once the file system thaws.
#[test]
fn a_hanging_file_system_never_delays_the_timeout() {
    let env = Env::new();
    let fz = Freezable::new(&env);
    for d in ["m", "s"] {
        fs::create_dir(fz.mnt.join(d)).unwrap();
    }
    let pid_file = env.path("job.pid");
    fz.freeze(true);
    let t = Instant::now();
    let mut first = Command::new(BIN)
        .arg("--lock-dir")
        .arg(&env.lock_dir)
        .arg(format!("--log=json:{}", fz.mnt.join("x.jsonl").display()))
        .arg("--metrics-dir")
        .arg(fz.mnt.join("m"))
        .arg("--state-dir")
        .arg(fz.mnt.join("s"))
        .args(["-n", "fz", "-t", "1", "-k", "0.2", "--", "sh", "-c"])
        .arg(format!("echo $$ > {}; exec sleep 60", pid_file.display()))
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let job = read_pid(&pid_file);
    let killed = wait_until(SLACK, || !alive(job));
    let killed_after = t.elapsed();
    // the next run of the job gets the lock, the file system still frozen
    let next = || {
        let mut c = Command::new(BIN);
        c.arg("--lock-dir").arg(&env.lock_dir).arg("--state-dir").arg(env.path("state2"));
        c.args(["--log", "none", "-n", "fz", "--", "true"]).stdin(Stdio::null());
        code(&c.output().unwrap())
    };
    let released = wait_until(2 * SLACK, || next() == 0);
    fz.freeze(false);
    let ended = wait_for(&mut first, 2 * SLACK);
    assert!(killed, "the job was not killed while the log hung ({killed_after:?})");
    assert!(released, "the lock was never released");
    assert_eq!(ended, Some(124), "runonce ends (timed out) once the file system thaws");
    let mut err = String::new();
    first.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(err.contains("not written after"), "{err}");
}

// ------------------------------------------------------------ --quiet

/// Runs `cmd` (runonce) under /usr/bin/time for its peak RSS, in KiB (its
/// own or its job's, which is small here); wait4 from the test would count
/// the test process itself, which runonce was forked from.  Returns the exit
/// status, the peak, stderr and stdout.
fn peak_rss(cmd: &Command, rss_file: &Path) -> (i32, u64, String, Vec<u8>) {
    let mut timed = Command::new("/usr/bin/time");
    timed.arg("-o").arg(rss_file).args(["-f", "%M"]).arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    let out = timed.stdin(Stdio::null()).output().expect("/usr/bin/time (installed by .ci/deps)");
    let text = fs::read_to_string(rss_file).unwrap();
    let rss = text.lines().last().and_then(|l| l.trim().parse().ok()).expect("a peak RSS");
    (code(&out), rss, stderr(&out), out.stdout)
}

/// The quiet job: a first line, 100 MiB, a last line, and a failure.
const LOUD: &str = "echo FIRST; head -c 104857600 /dev/zero | tr '\\0' x; echo; echo LAST; exit 1";

fn quiet_run(env: &Env, tmpdir: &Path) -> (i32, u64, String, Vec<u8>) {
    let mut c = env.cmd();
    c.env("TMPDIR", tmpdir).args(["-n", "loud", "-q", "--", "sh", "-c", LOUD]);
    peak_rss(&c, &env.path("rss"))
}

/// Attack: `--quiet` with an unwritable TMPDIR held all output in RAM (491
/// MB RSS for 500 MB of output).  Now memory is bounded whatever happens to
/// the spill file: the head and the tail are kept, what lies between is
/// counted in `output_lost_bytes`, and a line says so.
/// What a bounded `--quiet` run of LOUD shows: a small peak, the head and
/// the tail replayed, and every byte kept or counted as lost.
fn assert_bounded(env: &Env, (exit, rss_kib, _, out): &(i32, u64, String, Vec<u8>)) {
    assert_eq!(*exit, 1);
    assert!(*rss_kib < 48 << 10, "runonce held {rss_kib} KiB");
    assert!(out.starts_with(b"FIRST\n") && out.ends_with(b"\nLAST\n"), "head and tail kept");
    let lost = env.finishes("loud")[0]["output_lost_bytes"].as_u64().unwrap();
    assert_eq!(lost + out.len() as u64, 100 * 1024 * 1024 + 12, "every byte kept or counted");
}

/// A small tmpfs mounted at `dir` (made) for one test; `umount` it after.
fn tmpfs(dir: &Path, size: &str) {
    fs::create_dir(dir).unwrap();
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "runonce-test"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn umount(dir: &Path) {
    let _ = Command::new("umount").arg("-l").arg(dir).status();
}

#[test]
fn quiet_stays_bounded_without_a_spill_file() {
    let env = Env::new();
    let result = quiet_run(&env, Path::new("/nonexistent"));
    assert_bounded(&env, &result);
    assert!(result.2.contains("bytes of the job's output were not kept"), "{}", result.2);
}

/// The spill file fills up half-way (a small TMPDIR): what it holds is
/// replayed, the rest is bounded as without one.
#[test]
fn quiet_stays_bounded_when_the_spill_file_fills_up() {
    let env = Env::new();
    let small = env.path("small");
    tmpfs(&small, "8m");
    let result = quiet_run(&env, &small);
    umount(&small);
    assert_bounded(&env, &result);
    assert!(result.3.len() > 8 << 20, "what the spill file held was replayed");
    assert!(result.2.contains("No space left on device"), "{}", result.2);
}

// ------------------------------------------------------------- records

/// Attack (and accident): after ENOSPC a torn JSON record glued the next
/// record onto its line, and both were lost to a parser.  Each record now
/// starts on a fresh line.
#[test]
fn a_torn_json_record_never_takes_the_next_one_with_it() {
    let env = Env::new();
    let dir = env.path("logfs");
    tmpfs(&dir, "16k");
    let log = dir.join("log.jsonl");
    // one page of records but for 40 bytes, the rest of the space taken
    let pad = format!("{{\"pad\":\"{}\"}}\n", "p".repeat(4096 - 40 - 11));
    fs::write(&log, &pad).unwrap();
    let mut filler = fs::File::create(dir.join("filler")).unwrap();
    let chunk = [0u8; 4096];
    while std::io::Write::write_all(&mut filler, &chunk).is_ok() {}
    let run = || {
        Command::new(BIN)
            .arg("--lock-dir")
            .arg(&env.lock_dir)
            .arg("--state-dir")
            .arg(&env.state_dir)
            .arg(format!("--log=json:{}", log.display()))
            .args(["-n", "torn", "--", "true"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let first = run();
    assert!(stderr(&first).contains("No space left on device"), "{}", stderr(&first));
    let torn = fs::read_to_string(&log).unwrap();
    assert!(torn.len() > pad.len() && !torn.ends_with('\n'), "the record was torn: {torn:?}");
    drop(filler);
    fs::remove_file(dir.join("filler")).unwrap();
    let second = run();
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    let text = fs::read_to_string(&log).unwrap();
    umount(&dir);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "pad, torn, start, finish: {text:?}");
    assert!(serde_json::from_str::<serde_json::Value>(lines[1]).is_err());
    for line in &lines[2..] {
        let rec: serde_json::Value = serde_json::from_str(line).expect("a whole record a line");
        assert_eq!(rec["name"], "torn");
    }
}

/// Attack: an argument with a newline, `<78>` or ESC bytes reached the
/// syslog socket raw (a forged record on a stream transport, escape
/// sequences on an admin's terminal).  Syslog text is escaped as stderr's.
#[test]
fn syslog_messages_are_escaped() {
    let env = Env::new();
    let socket = env.path("dev-log");
    let sink = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
    sink.set_read_timeout(Some(SLACK)).unwrap();
    let evil = "x\n<78>Jan  1 00:00:00 host cron[1]: forged\u{1b}[31m";
    let o = Command::new(BIN)
        .arg("--lock-dir")
        .arg(&env.lock_dir)
        .arg("--state-dir")
        .arg(&env.state_dir)
        .arg("--syslog-socket")
        .arg(&socket)
        .args(["-n", "esc", "--", "sh", "-c", "exit 3", evil])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&o), 3);
    for event in ["start", "finish"] {
        let mut buf = [0u8; 65536];
        let n = sink.recv(&mut buf).expect("a syslog message");
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(msg.contains(&format!("esc: {event}")), "{msg}");
        assert!(!msg.contains('\n') && !msg.contains('\u{1b}'), "raw control bytes: {msg:?}");
        if event == "start" {
            assert!(msg.contains(r"x\n<78>Jan") && msg.contains(r"\u{1b}[31m"), "{msg}");
        }
    }
}

/// A runonce killed with its job leaves its holder record (the next run
/// clears what it names); `--forget` takes it with the job's other files.
#[test]
fn forget_takes_the_holder_record_a_killed_runonce_left() {
    let env = Env::new();
    let pid_file = env.path("job.pid");
    let mut run = root_cmd(&env)
        .args(["-n", "gone", "--", "sh", "-c"])
        .arg(format!("echo $$ > {}; exec sleep 1000", pid_file.display()))
        .spawn()
        .unwrap();
    let job = read_pid(&pid_file);
    run.kill().unwrap();
    run.wait().unwrap();
    crate::util::kill(job, libc::SIGKILL);
    assert!(wait_until(SLACK, || !alive(job)));
    let record = env.lock_dir.join("gone.holder");
    assert!(record.exists(), "a killed runonce leaves its record");
    let o = env.cmd().args(["--forget", "gone"]).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let left: Vec<_> =
        fs::read_dir(&env.lock_dir).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

// ---------------------------------------------------------- PID reuse

/// Runs a bash script as PID 1 of a new PID namespace (with its own
/// /proc), where writing /proc/sys/kernel/ns_last_pid makes the next
/// process get a chosen PID: real PID reuse, on demand.  `W` is the scratch
/// dir, `R` runonce.
fn in_pid_namespace(env: &Env, script: &str) -> Output {
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "bash", "-c"])
        .arg(format!("set -u\ncd \"$W\"\n{script}"))
        .env("W", env.dir.path())
        .env("R", BIN)
        .stdin(Stdio::null())
        .output()
        .expect("unshare (util-linux)");
    assert!(out.status.success(), "namespace script: {}{}", stdout(&out), stderr(&out));
    out
}

/// Waits in bash until a file is not empty.
const WAIT_FOR: &str = "wait_for() { for _ in $(seq 1000); do [ -s \"$1\" ] && return; sleep 0.01; done; \
                        echo \"$1 never came\" >&2; exit 1; }";

/// Attack: with `--slots 2`, a stale slot record plus PID reuse made a new
/// run SIGKILL a live instance: stale cgroups were identified by name and
/// PID only.  Here runonce A dies with its job in slot 0, leaving its record
/// and its cgroup `runonce-J@A`; B gets A's PID and runs in slot 1, in a
/// cgroup of that same name; C then takes slot 0 and clears what A left.
/// B's job lives on: the record's inode is not that of B's cgroup.
#[test]
fn a_stale_slot_record_and_pid_reuse_never_kill_a_live_instance() {
    let env = Env::new();
    let out = in_pid_namespace(
        &env,
        &format!(
            r#"{WAIT_FOR}
            o=(--lock-dir "$W/locks" --state-dir "$W/state" --log none -n J --slots 2 --contain cgroup)
            "$R" "${{o[@]}}" -- sh -c 'echo $$ > a.job; exec sleep 1000' &
            A=$!
            wait_for a.job
            kill -9 $A; wait $A
            kill -9 "$(cat a.job)"
            while ! flock -n locks/J.lock true; do sleep 0.01; done
            cp locks/J.holder a.record
            ( exec 8<locks/J.lock; flock 8; touch held; exec sleep 1000 ) &
            F=$!
            while [ ! -e held ]; do sleep 0.01; done
            echo $((A - 1)) > /proc/sys/kernel/ns_last_pid
            "$R" "${{o[@]}}" -- sh -c 'echo $$ > b.job; exec sleep 1000' &
            B=$!
            wait_for b.job
            echo "A=$A B=$B B_SLOT=$(ls locks | grep -c 'J@1.holder')"
            stat -c 'B_CGROUP_INO=%i' "/sys/fs/cgroup/unified/runonce/runonce-J@$A"
            kill -9 $F; wait $F
            "$R" "${{o[@]}}" -- true; echo "C=$?"
            kill -0 "$(cat b.job)" && echo B_JOB_ALIVE
            kill -0 $B && echo B_ALIVE
            kill "$(cat b.job)"; wait $B; echo "B_EXIT=$?"
            "#
        ),
    );
    let said = stdout(&out);
    let field = |k: &str| {
        said.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k}: {said}"))
            .to_string()
    };
    assert_eq!(field("A"), field("B"), "PID reuse could not be forced: {said}");
    assert_eq!(field("B_SLOT"), "1", "B ran in slot 1: {said}");
    let a_record = fs::read_to_string(env.path("a.record")).unwrap();
    let a = runonce::holder::Holder::parse(&a_record).unwrap();
    let leaf = format!("runonce-J@{}", field("A"));
    let (a_ino, _) = a.cgroups.iter().find(|(_, d)| d.ends_with(&leaf)).expect("A's cgroup");
    assert_ne!(a_ino.to_string(), field("B_CGROUP_INO"), "same name, another cgroup");
    assert_eq!(field("C"), "0", "{said}");
    assert!(said.contains("B_JOB_ALIVE") && said.contains("B_ALIVE"), "B was killed: {said}");
    assert_eq!(field("B_EXIT"), "143", "B ended only when told to: {said}");
}

/// The orphan's runonce and main process are gone and their PIDs reused by
/// strangers when the deadline is enforced: only the orphan (which holds the
/// lock) is ended; the strangers with the recorded PIDs live on.
#[test]
fn enforcing_a_deadline_after_pid_reuse_ends_only_the_orphan() {
    let env = Env::new();
    let out = in_pid_namespace(
        &env,
        &format!(
            r#"{WAIT_FOR}
            o=(--lock-dir "$W/locks" --state-dir "$W/state" --log none -n O)
            "$R" "${{o[@]}}" -t 1 -- sh -c 'setsid sleep 1000 & echo $! > o.grand; echo $$ > o.job; wait' &
            A=$!
            wait_for o.grand; wait_for o.job
            J=$(cat o.job); G=$(cat o.grand)
            kill -9 $A; wait $A
            kill -9 $J
            while [ -e /proc/$J ]; do sleep 0.01; done
            echo $((A - 1)) > /proc/sys/kernel/ns_last_pid
            sleep 1000 & S1=$!
            echo $((J - 1)) > /proc/sys/kernel/ns_last_pid
            sleep 1000 & S2=$!
            echo "A=$A S1=$S1 J=$J S2=$S2"
            sleep 1.2
            "$R" "${{o[@]}}" -k 0.5 -- true; echo "C=$?"
            kill -0 $S1 && echo S1_ALIVE
            kill -0 $S2 && echo S2_ALIVE
            kill -0 $G 2>/dev/null || echo ORPHAN_GONE
            "#
        ),
    );
    let said = stdout(&out);
    let field = |k: &str| {
        said.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k}: {said}"))
            .to_string()
    };
    assert_eq!(field("A"), field("S1"), "PID reuse could not be forced: {said}");
    assert_eq!(field("J"), field("S2"), "PID reuse could not be forced: {said}");
    assert_eq!(field("C"), "0", "{said}");
    for want in ["S1_ALIVE", "S2_ALIVE", "ORPHAN_GONE"] {
        assert!(said.contains(want), "{want}: {said}");
    }
}

// ---------------------------------------------- per-user default dirs

/// A private /tmp (a tmpfs in a mount namespace of its own, kept by a
/// sleeping process): the per-user default dirs live under /tmp, and the
/// machine's /tmp must not be touched.  Files in it are reached from the
/// test through /proc/PID/root.
struct PrivateTmp {
    keeper: Child,
}

impl PrivateTmp {
    fn new() -> PrivateTmp {
        let mut keeper = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg("mount -t tmpfs -o mode=1777 runonce-test /tmp && echo ready && exec sleep 1000")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare (util-linux)");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(keeper.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready", "the private /tmp was not mounted");
        PrivateTmp { keeper }
    }

    /// `path` under the private /tmp, as the test sees it.
    fn tmp(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root/tmp", self.keeper.id())).join(path)
    }

    /// runonce (or `program`) run as `ids` in the namespace.
    fn as_user(&self, ids: (u32, u32), program: &str) -> Command {
        let inner = as_user(ids, program);
        let mut c = Command::new("nsenter");
        c.arg(format!("--mount=/proc/{}/ns/mnt", self.keeper.id())).arg("--");
        c.arg(inner.get_program()).args(inner.get_args());
        for (k, v) in inner.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.stdin(Stdio::null());
        c
    }

    fn sh(&self, ids: (u32, u32), script: &str) -> Output {
        self.as_user(ids, "sh").args(["-c", script]).output().unwrap()
    }
}

impl Drop for PrivateTmp {
    fn drop(&mut self) {
        let _ = self.keeper.kill();
        let _ = self.keeper.wait();
    }
}

/// Attack: `mkdir /tmp/runonce-<uid of B>` by user A disabled all of B's
/// cron jobs (125 forever; cron sets no XDG_RUNTIME_DIR).  B's jobs now use
/// the first private fallback, with a warning; the same one on every run,
/// so that two runs still exclude each other, whatever A does later.
#[test]
fn a_squatted_lock_dir_never_disables_a_users_jobs() {
    let (mallory, bob) = (mallory(), bob());
    let ns = PrivateTmp::new();
    let base = format!("/tmp/runonce-{}", bob.0);
    let o = ns.sh(mallory, &format!("mkdir {base} {base}.1"));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let run =
        |args: &[&str]| ns.as_user(bob, BIN).args(["--log", "none"]).args(args).output().unwrap();
    let o = run(&["-n", "j", "--", "touch", "/tmp/ran"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(ns.tmp("ran").exists());
    let err = stderr(&o);
    assert!(err.contains(&format!("{base} is not ours (owned by uid {})", mallory.0)), "{err}");
    assert!(err.contains(&format!("using {base}.2 instead")), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let fallback = ns.tmp(&format!("runonce-{}.2", bob.0));
    let meta = fs::metadata(&fallback).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (bob.0, 0o700));
    // the attacker frees a name before ours: ours stays the one
    let o = ns.sh(mallory, &format!("rmdir {base}.1"));
    assert_eq!(code(&o), 0);
    let mut holder = ns
        .as_user(bob, BIN)
        .args(["--log", "none", "-n", "j", "--", "sh", "-c"])
        .arg("touch /tmp/held; while [ ! -e /tmp/release ]; do sleep 0.02; done")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_file(&ns.tmp("held"));
    let o = run(&["-n", "j", "--", "true"]);
    assert_eq!(code(&o), 75, "a second run beside the first: {}", stderr(&o));
    let o = ns.as_user(bob, BIN).args(["--status", "j"]).output().unwrap();
    assert!(stdout(&o).contains("running"), "--status finds it: {}", stdout(&o));
    fs::write(ns.tmp("release"), "").unwrap();
    assert_eq!(wait_for(&mut holder, SLACK), Some(0));
    assert!(!ns.tmp(&format!("runonce-{}.1", bob.0)).exists(), "nothing made at the freed name");
}

/// A cron line for a system user (home `/nonexistent`) printed "--state-dir
/// /nonexistent/.local/state/runonce: cannot update state: Permission
/// denied" on every run, and `--status` never showed a last run.  The
/// fallback under /tmp is taken quietly, and `--status` finds it.
#[test]
fn a_user_without_a_home_keeps_state_quietly_and_status_finds_it() {
    let bob = bob();
    let ns = PrivateTmp::new();
    let o = ns
        .as_user(bob, BIN)
        .args(["--log", "none", "-n", "homeless", "--", "true"])
        .output()
        .unwrap();
    assert_eq!((code(&o), stderr(&o)), (0, String::new()), "quiet");
    let state = ns.tmp(&format!("runonce-state-{}/homeless.json", bob.0));
    assert!(state.exists(), "the state is kept under /tmp");
    let o = ns.as_user(bob, BIN).args(["--status", "homeless", "--json"]).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let status: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(status["last"]["last_outcome"], "ok", "{status}");
    assert_eq!(status["last"]["runs"], 1, "{status}");
}

/// Attack: a state file forged in B's fallback state dir opened B's
/// circuit breaker.  A squatted fallback is passed over (with a warning),
/// and a state file another user owns never decides anything, in a shared
/// `--state-dir` either.
#[test]
fn a_forged_state_file_never_opens_the_circuit_breaker() {
    let (mallory, bob) = (mallory(), bob());
    let ns = PrivateTmp::new();
    let now = runonce::state::unix_now();
    let forged = format!(r#"{{"name":"cb","consecutive_failures":99,"last_failure_unix":{now}}}"#);
    let base = format!("/tmp/runonce-state-{}", bob.0);
    let o = ns.sh(
        mallory,
        &format!(
            "mkdir {base} /tmp/shared && chmod 755 {base} && chmod 1777 /tmp/shared && \
             printf '%s' '{forged}' > {base}/cb.json && printf '%s' '{forged}' > /tmp/shared/cb.json"
        ),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let breaker = ["--log", "none", "-n", "cb", "--max-failures", "1", "--cooldown", "1h"];
    let o = ns.as_user(bob, BIN).args(breaker).args(["--", "touch", "/tmp/ran"]).output().unwrap();
    assert_eq!(code(&o), 0, "the breaker opened: {}", stderr(&o));
    assert!(ns.tmp("ran").exists());
    assert!(stderr(&o).contains(&format!("state dir: {base} is not ours")), "{}", stderr(&o));
    assert!(ns.tmp(&format!("runonce-state-{}.1/cb.json", bob.0)).exists(), "state kept apart");
    let o = ns
        .as_user(bob, BIN)
        .args(breaker)
        .args(["--state-dir", "/tmp/shared", "--", "touch", "/tmp/ran2"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "the breaker opened: {}", stderr(&o));
    assert!(ns.tmp("ran2").exists());
}

// ---------------------------------------------------------------- --lock

/// `-l FILE` as flock(1) treats it: `runonce -l data.txt -- true` replaced
/// a 1000-line file with the holder record and set its mode to 1644.  The
/// file is now only opened and locked: byte for byte and mode unchanged,
/// before, during and after the run; the holder's details live beside the
/// lock in runonce's lock dir.
#[test]
fn a_lock_file_of_the_callers_is_never_written_or_chmoded() {
    let env = Env::new();
    let data = env.path("data.txt");
    let text: String = (1..=1000).map(|i| format!("line {i}\n")).collect();
    fs::write(&data, &text).unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o644)).unwrap();
    let before = fs::metadata(&data).unwrap();
    let o = root_cmd(&env).arg("-l").arg(&data).args(["--", "true"]).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (ready, release) = (env.path("ready"), env.path("release"));
    let mut holder = root_cmd(&env)
        .arg("-l")
        .arg(&data)
        .args(["-n", "data", "--", "sh", "-c", &wait_script(&ready, &release)])
        .spawn()
        .unwrap();
    wait_file(&ready);
    let record = env.lock_dir.join(format!("@{}-{}.holder", before.dev(), before.ino()));
    let recorded = || runonce::holder::Holder::load(&record).filter(|h| h.job.is_some());
    assert!(wait_until(SLACK, || recorded().is_some()), "the holder record, beside the lock");
    let h = recorded().unwrap();
    assert_eq!(h.runonce.map(|r| r.pid), Some(holder.id() as i32));
    let o =
        root_cmd(&env).arg("-l").arg(&data).args(["-n", "data", "--", "true"]).output().unwrap();
    assert_eq!(code(&o), 75, "the lock holds");
    let skip = env.finishes("data").pop().unwrap();
    assert_eq!(skip["holder_pid"], h.job.unwrap().pid, "{skip}");
    let o = env.cmd().arg("-l").arg(&data).args(["--status", "data"]).output().unwrap();
    assert!(stdout(&o).contains("running"), "{}", stdout(&o));
    fs::write(&release, "").unwrap();
    assert_eq!(wait_for(&mut holder, SLACK), Some(0));
    let after = fs::metadata(&data).unwrap();
    assert!(fs::read_to_string(&data).unwrap() == text, "the file was written");
    assert_eq!(after.mode(), before.mode(), "the file was chmod'ed");
    assert_eq!(
        (after.ino(), after.mtime(), after.mtime_nsec()),
        (before.ino(), before.mtime(), before.mtime_nsec())
    );
    assert_eq!(after.ctime_nsec(), before.ctime_nsec(), "the inode was changed");
}

/// flock(1)'s self-locking idiom, with runonce: `exec runonce -l "$0" --
/// "$0" "$@"` overwrote the script, and the exec then failed ("Text file
/// busy", 126).  It works: the script runs once at a time, intact.
#[test]
fn the_self_locking_script_idiom_works() {
    let env = Env::new();
    let script = env.path("job.sh");
    let body = format!(
        "#!/bin/sh\n\
         [ \"${{RUNONCE_SELF}}\" != \"$0\" ] && exec env RUNONCE_SELF=\"$0\" {bin} \
         --lock-dir {locks} --state-dir {state} --log none -l \"$0\" -- \"$0\" \"$@\"\n\
         echo \"ran $*\" >> {out}\n\
         [ \"$1\" = hold ] && {{ touch {ready}; while [ ! -e {release} ]; do sleep 0.02; done; }}\n\
         exit 0\n",
        bin = BIN,
        locks = env.lock_dir.display(),
        state = env.state_dir.display(),
        out = env.path("out").display(),
        ready = env.path("ready").display(),
        release = env.path("release").display(),
    );
    fs::write(&script, &body).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let o = Command::new(&script).args(["a", "b"]).stdin(Stdio::null()).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut first = Command::new(&script).arg("hold").stdin(Stdio::null()).spawn().unwrap();
    wait_file(&env.path("ready"));
    let o = Command::new(&script).arg("again").stdin(Stdio::null()).output().unwrap();
    assert_eq!(code(&o), 75, "once at a time: {}", stderr(&o));
    fs::write(env.path("release"), "").unwrap();
    assert_eq!(wait_for(&mut first, SLACK), Some(0));
    assert_eq!(fs::read_to_string(env.path("out")).unwrap(), "ran a b\nran hold\n");
    assert!(fs::read_to_string(&script).unwrap() == body, "the script was overwritten");
}

// ------------------------------------------------------ property test

/// One field of a random record: the genuine value (what the orphan's
/// runonce recorded) or garbage.
#[derive(Clone, Debug)]
enum Pick {
    Real,
    Raw(String),
}

fn pick() -> impl Strategy<Value = Pick> {
    let garbage = prop_oneof![
        Just(String::new()),
        Just("nan".to_string()),
        Just("-1".to_string()),
        Just("1e300".to_string()),
        Just(u64::MAX.to_string()),
        Just("18446744073709551616".to_string()),
        "[ -~]{0,24}",
    ];
    // mostly genuine: a record is read only if every field parses, so one
    // or two spoiled fields a case reach further than many
    prop_oneof![9 => Just(Pick::Real), 1 => garbage.prop_map(Pick::Raw)]
}

impl Pick {
    fn get(&self, real: &str) -> String {
        match self {
            Pick::Real => real.to_string(),
            Pick::Raw(s) => s.clone(),
        }
    }
}

/// What a record points at outside the job, coherently: the process in
/// another job's cgroup (or a plain one) as the holder's runonce, as its
/// job, that cgroup as the holder's own (under the other job's name), or as
/// a leftover of an earlier run.
#[derive(Clone, Copy, Debug)]
enum Aim {
    Nothing,
    Runonce,
    Job,
    CageAsOwn,
    CageAsLeftover,
    /// The cage as a leftover of the other job's, in a record of its name.
    CageAsOthersLeftover,
}

/// A random holder record.
#[derive(Clone, Debug)]
struct Spec {
    aim: Aim,
    /// Aims at the process in the cage (else at the plain one).
    caged: bool,
    name: Pick,
    runonce: Pick,
    job: Pick,
    numbers: [Pick; 3],
    lock: Pick,
    ofd: Pick,
    /// Extra garbage lines.
    junk: Vec<String>,
    end: bool,
}

fn spec() -> impl Strategy<Value = Spec> {
    // weighted toward the aims that need several fields to agree
    let aim = prop_oneof![
        1 => Just(Aim::Nothing),
        1 => Just(Aim::Runonce),
        1 => Just(Aim::Job),
        3 => Just(Aim::CageAsOwn),
        2 => Just(Aim::CageAsLeftover),
        2 => Just(Aim::CageAsOthersLeftover),
    ];
    let junk = prop::collection::vec(
        prop_oneof!["(cgroup|leftover|runonce|job|ofd)=[ -~]{0,30}", "[ -~]{0,30}"],
        0..2,
    );
    (
        (aim, any::<bool>(), pick(), pick(), pick()),
        [pick(), pick(), pick()],
        (pick(), pick()),
        junk,
        prop_oneof![4 => Just(true), 1 => Just(false)],
    )
        .prop_map(|((aim, caged, name, runonce, job), numbers, (lock, ofd), junk, end)| Spec {
            aim,
            caged,
            name,
            runonce,
            job,
            numbers,
            lock,
            ofd,
            junk,
            end,
        })
}

/// Who holds the lock in a case.
enum Holding {
    /// The job of a runonce that was SIGKILLed (in `Scene::record`).
    Orphan,
    /// The test process, through a description of its own.
    Foreign(#[allow(dead_code)] fs::File),
}

/// The processes and files one case plays with.
struct Scene {
    env: Env,
    /// A root process in a cgroup of another job's name (real inode).
    caged: Bystander,
    cage: PathBuf,
    /// A root process in no cgroup of runonce's.
    plain: Bystander,
    /// Who holds the lock: an orphan (its runonce SIGKILLed) or not a run
    /// of runonce at all.
    _holder: Holding,
    /// The orphan's record, as its runonce wrote it.
    record: Option<runonce::holder::Holder>,
}

impl Scene {
    fn new(orphan: bool) -> Scene {
        let env = Env::new();
        let sleeper = || {
            let mut c = Command::new("sleep");
            c.arg("1000");
            c
        };
        let caged = Bystander::spawn(sleeper());
        let cage =
            PathBuf::from(format!("/sys/fs/cgroup/unified/runonce/runonce-other@{}", caged.pid()));
        fs::create_dir_all(&cage).expect("a cgroup (cgroup v2, root)");
        fs::write(cage.join("cgroup.procs"), caged.pid().to_string()).unwrap();
        let plain = Bystander::spawn(sleeper());
        let (holder, record) = if orphan {
            // -t 0.2: the orphan's deadline passes at once; runonce is
            // SIGKILLed as soon as its record names the job (on a loaded
            // machine, its own timeout may come first: then no orphan)
            let mut run = root_cmd(&env)
                .args(["-n", "prop", "-t", "0.2", "--", "sleep", "1000"])
                .spawn()
                .unwrap();
            let path = env.lock_dir.join("prop.holder");
            let recorded = || runonce::holder::Holder::load(&path).filter(|h| h.job.is_some());
            assert!(wait_until(SLACK, || recorded().is_some()), "the orphan-to-be never ran");
            run.kill().unwrap();
            run.wait().unwrap();
            let record = recorded().unwrap();
            (Holding::Orphan, Some(record))
        } else {
            // the test itself holds it: were it signalled, the test would die
            fs::create_dir_all(&env.lock_dir).unwrap();
            let lock = fs::File::create(env.lock_dir.join("prop.lock")).unwrap();
            lock.lock().unwrap();
            (Holding::Foreign(lock), None)
        };
        Scene { env, caged, cage, plain, _holder: holder, record }
    }

    /// The bystanders are alive and untouched.
    fn unharmed(&mut self) -> bool {
        self.caged.untouched() && self.plain.untouched()
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        if let Some(job) = self.record.as_ref().and_then(|r| r.job) {
            job.signal(libc::SIGKILL);
        }
        let _ = self.caged.child.kill();
        let _ = self.caged.child.wait();
        let _ = wait_until(SLACK, || fs::remove_dir(&self.cage).is_ok());
    }
}

impl Spec {
    fn text(&self, scene: &Scene) -> String {
        let id = |p: Option<runonce::procs::ProcId>| {
            p.map(|p| format!("{} {}", p.pid, p.start)).unwrap_or_default()
        };
        let lock = fs::metadata(scene.env.lock_dir.join("prop.lock")).unwrap();
        let real = scene.record.clone().unwrap_or_else(|| runonce::holder::Holder {
            name: "prop".into(),
            lock: (lock.dev(), lock.ino()),
            ..Default::default()
        });
        let caging =
            matches!(self.aim, Aim::CageAsOwn | Aim::CageAsLeftover | Aim::CageAsOthersLeftover);
        let target = if self.caged || caging { &scene.caged } else { &scene.plain };
        let target_id = format!("{} {}", target.pid(), target.start);
        let cage = format!("{} {}", fs::metadata(&scene.cage).unwrap().ino(), scene.cage.display());
        let (mut name, mut runonce, mut job) = (
            self.name.get(&real.name),
            self.runonce.get(&id(real.runonce)),
            self.job.get(&id(real.job)),
        );
        let mut cgroups: Vec<String> =
            real.cgroups.iter().map(|(i, d)| format!("{i} {d}")).collect();
        let mut leftovers = Vec::new();
        match self.aim {
            Aim::Nothing => {}
            Aim::Runonce => runonce = target_id,
            Aim::Job => job = target_id,
            Aim::CageAsOwn => {
                name = "other".into();
                runonce = target_id;
                cgroups.push(cage);
            }
            Aim::CageAsLeftover => leftovers.push(format!("{} {cage}", target.pid())),
            Aim::CageAsOthersLeftover => {
                name = "other".into();
                leftovers.push(format!("{} {cage}", target.pid()));
            }
        }
        let mut t = format!(
            "name={name}\nrunonce={runonce}\njob={job}\nstarted={}\ndeadline_mono_ns={}\n\
             uid={}\nlock={}\nofd={}\n",
            self.numbers[0].get(&real.started_unix.to_string()),
            self.numbers[1].get(&real.deadline_mono_ns.to_string()),
            self.numbers[2].get("0"),
            self.lock.get(&format!("{} {}", real.lock.0, real.lock.1)),
            self.ofd.get(&real.ofd.to_string()),
        );
        for c in cgroups {
            t += &format!("cgroup={c}\n");
        }
        for l in leftovers {
            t += &format!("leftover={l}\n");
        }
        for j in &self.junk {
            t += &format!("{j}\n");
        }
        if self.end {
            t += "end\n";
        }
        t
    }
}

/// Random holder records and state files (garbage, huge numbers, nan,
/// other names and cgroups, the PIDs and cgroup of processes outside the
/// job) never make runonce signal a process outside the job, nor panic:
/// each run exits 0 (it took the lock, the orphan's deadline having
/// passed), 75 (skipped) or 125 (refused, `--replace` of what it cannot
/// prove).  `PROPTEST_CASES` makes it longer.
#[test]
fn random_records_never_signal_outside_the_job() {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let config = ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let modes: Vec<Vec<&str>> = vec![
        vec!["--replace"],
        vec!["--replace"],
        vec![],
        vec!["--wait=0.5"],
        vec!["--max-failures", "1", "--cooldown", "1h"],
    ];
    let state_strategy = prop_oneof![
        "[ -~]{0,40}",
        (
            any::<u64>(),
            prop_oneof![Just("1e308".to_string()), Just("-1e308".to_string()), "[0-9.e+-]{1,12}"]
        )
            .prop_map(|(n, t)| format!(
                r#"{{"name":"prop","consecutive_failures":{n},"last_failure_unix":{t}}}"#
            )),
    ];
    let scenario = (any::<bool>(), 0..modes.len(), spec());
    runner
        .run(&(scenario, state_strategy), |((orphan, mode, spec), state)| {
            let mut scene = Scene::new(orphan);
            let text = spec.text(&scene);
            fs::write(scene.env.lock_dir.join("prop.holder"), &text).unwrap();
            fs::create_dir_all(&scene.env.state_dir).unwrap();
            fs::write(scene.env.state_dir.join("prop.json"), &state).unwrap();
            let o = root_cmd(&scene.env)
                .args(["-n", "prop", "-k", "0.2"])
                .args(&modes[mode])
                .args(["--", "true"])
                .output()
                .unwrap();
            let err = stderr(&o);
            prop_assert!(!err.contains("panicked"), "{err}");
            prop_assert!(
                matches!(code(&o), 0 | 75 | 125),
                "exit {}: {err}\nrecord:\n{text}",
                code(&o)
            );
            prop_assert!(scene.unharmed(), "a bystander was signalled; record:\n{text}");
            Ok(())
        })
        .unwrap();
}

/// Every aim of the property test in a record otherwise genuine (random
/// cases seldom get all the other fields right at once): the run ends the
/// orphan through the lock it holds and takes its place, and the processes
/// the record points at live on.
#[test]
fn genuine_records_aimed_at_bystanders_never_signal_them() {
    let aims = [
        (Aim::Runonce, false),
        (Aim::Runonce, true),
        (Aim::Job, false),
        (Aim::Job, true),
        (Aim::CageAsOwn, true),
        (Aim::CageAsLeftover, true),
        (Aim::CageAsOthersLeftover, true),
    ];
    for (aim, caged) in aims {
        // a record of another job's name describes nothing here: the
        // orphan is then no proven run (--replace refuses, a waiter waits
        // for it to end by itself, which it does not)
        let named_other = matches!(aim, Aim::CageAsOwn | Aim::CageAsOthersLeftover);
        let wait = if named_other { "--wait=1" } else { "--wait=60" };
        for mode in ["--replace", wait] {
            let mut scene = Scene::new(true);
            let spec = Spec {
                aim,
                caged,
                name: Pick::Real,
                runonce: Pick::Real,
                job: Pick::Real,
                numbers: [Pick::Real, Pick::Real, Pick::Real],
                lock: Pick::Real,
                ofd: Pick::Real,
                junk: Vec::new(),
                end: true,
            };
            let text = spec.text(&scene);
            fs::write(scene.env.lock_dir.join("prop.holder"), &text).unwrap();
            let o = root_cmd(&scene.env)
                .args(["-n", "prop", "-k", "0.2", mode, "--", "true"])
                .output()
                .unwrap();
            let ctx = format!("{aim:?} caged={caged} {mode}: {}\nrecord:\n{text}", stderr(&o));
            assert!(scene.unharmed(), "a bystander was signalled: {ctx}");
            if !named_other {
                assert_eq!(code(&o), 0, "the orphan was not ended: {ctx}");
                let orphan = scene.record.as_ref().and_then(|r| r.job).unwrap();
                assert!(!orphan.alive(), "the orphan lives on: {ctx}");
            }
        }
    }
}
