//! Stress and faults (issue 7, part 2): 500 launches of one job from a tight
//! "cron" loop while runonce and the job are SIGKILLed at random; a full
//! disk under the state dir; a lock dir on a read-only file system.
//!
//! The fault tests mount file systems: they need root, and fail (never
//! skip) without it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::time::{Duration, Instant};

use runonce::holder::Holder;
use runonce::state::JobState;
use runonce::{procs, sys};

use crate::util::{Env, SLACK, code, stderr, wait_until};

const LAUNCHES: usize = 500;
/// Instances alive at once, and the longest pause between two launches:
/// about half the launches find the job busy.
const CONCURRENT: usize = 3;
const MAX_GAP_MS: u64 = 40;

/// The job.  It proves it is alone by taking its own flock on `probe`,
/// through a descriptor every process of the job inherits, so the probe is
/// held exactly as long as the job's tree lives, orphans included.  A
/// process's locks are released one descriptor after another when it
/// exits, so a job that finds the probe taken waits 10 ms (a release in
/// progress) before it counts an overlap; a real second job holds the
/// probe for 30 ms or more.
const JOB: &str = r#"
exec 9>>"$DIR/probe"
flock -w 0.01 9 || echo "$$" >> "$DIR/overlaps"
echo "$$" > "$DIR/job.$PPID"
echo "$$" >> "$DIR/starts"
sleep "$1" &
wait
"#;

struct Instance {
    child: Child,
    n: usize,
    kill_runonce_at: Option<Instant>,
    /// Kill runonce only once its job runs (else at any moment: while it
    /// takes the lock, writes the lock file, or skips).
    kill_runonce_running: bool,
    /// Kill the job: at this moment, or as soon as it runs after it.
    kill_job_at: Option<Instant>,
}

/// A small deterministic generator (xorshift): the test needs variety, not
/// unpredictability, and a failure should be reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// SIGKILLs the job of the runonce `runonce_pid` (still unreaped, so its
/// PID is its own): the PID the job wrote, checked through a pidfd to be a
/// child of that runonce.  False if the job is not running.
fn kill_job(dir: &Path, runonce_pid: i32) -> bool {
    let Ok(text) = fs::read_to_string(dir.join(format!("job.{runonce_pid}"))) else {
        return false;
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return false;
    };
    let Ok(pidfd) = sys::pidfd_open(pid) else {
        return false;
    };
    procs::stat(pid).is_some_and(|s| s.ppid == runonce_pid && !s.is_zombie())
        && sys::pidfd_send_signal(&pidfd, libc::SIGKILL).is_ok()
}

/// Live processes whose environment holds `marker`.
fn marked_processes(marker: &str) -> Vec<i32> {
    let needle = marker.as_bytes();
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let environ = fs::read(entry.path().join("environ")).unwrap_or_default();
        if environ.split(|&b| b == 0).any(|v| v == needle)
            && procs::stat(pid).is_some_and(|s| !s.is_zombie())
        {
            found.push(pid);
        }
    }
    found
}

/// Every directory under the cgroup file systems whose name holds `name`.
fn cgroups_named(name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![(PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((dir, depth)) = todo.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) && !entry.path().is_symlink() {
                if entry.file_name().to_string_lossy().contains(name) {
                    found.push(path.clone());
                }
                if depth < 6 {
                    todo.push((path, depth + 1));
                }
            }
        }
    }
    found
}

/// The holder record, which is replaced atomically: absent (no run, or
/// the last one ended) or whole, never torn.
fn holder_record_ok(path: &Path) -> bool {
    match fs::read_to_string(path) {
        Ok(t) => Holder::parse(&t).is_some(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

#[test]
fn five_hundred_launches_with_random_kills() {
    let env = Env::new();
    let dir = env.dir.path().to_path_buf();
    let name = format!("stress-{}", std::process::id());
    let marker = format!("RUNONCE_STRESS={}", dir.display());
    let lock_path = env.lock_dir.join(format!("{name}.lock"));
    let record_path = env.lock_dir.join(format!("{name}.holder"));
    let state_path = env.state_dir.join(format!("{name}.json"));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
    // stderr to a file: a pipe would stay open as long as an orphaned job
    let launch = |rng: &mut Rng, n: usize| {
        // now and then a job that outlives its timeout, so that a runonce
        // killed meanwhile leaves an orphan whose deadline the next enforces
        let secs =
            if rng.below(25) == 0 { "5".to_string() } else { format!("0.0{}", 3 + rng.below(6)) };
        env.cmd()
            .args(["-n", &name, "--timeout", "0.3", "--kill-after", "0.2", "--memory", "1G"])
            .args(["--", "sh", "-c", JOB, "job", &secs])
            .env("DIR", &dir)
            .env("RUNONCE_STRESS", dir.as_os_str())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join(format!("err.{n}"))).expect("stderr file"))
            .spawn()
            .expect("spawn runonce")
    };

    let start = Instant::now();
    let mut live: Vec<Instance> = Vec::new();
    let (mut launched, mut runonce_kills, mut job_kills) = (0, 0, 0);
    let mut codes = std::collections::BTreeMap::<i32, usize>::new();
    let mut lock_inode = None;
    let mut next_launch = Instant::now();
    let mut cgroups_seen = std::collections::BTreeSet::new();
    while launched < LAUNCHES || !live.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(150), "the loop took too long");
        if launched < LAUNCHES && live.len() < CONCURRENT && next_launch <= Instant::now() {
            let now = Instant::now();
            next_launch = now + Duration::from_millis(rng.below(MAX_GAP_MS));
            let later = |rng: &mut Rng| now + Duration::from_millis(5 + rng.below(60));
            let (kill_runonce_at, kill_runonce_running, kill_job_at) = match rng.below(8) {
                0 => (Some(later(&mut rng)), false, None),
                1 | 2 => (Some(later(&mut rng)), true, None),
                3 | 4 => (None, false, Some(later(&mut rng))),
                _ => (None, false, None),
            };
            let child = launch(&mut rng, launched);
            live.push(Instance {
                child,
                n: launched,
                kill_runonce_at,
                kill_runonce_running,
                kill_job_at,
            });
            launched += 1;
        }
        let now = Instant::now();
        let mut i = 0;
        while i < live.len() {
            let inst = &mut live[i];
            let pid = inst.child.id() as i32;
            // until then, a later round tries again (or the run was a skip)
            let running = dir.join(format!("job.{pid}")).exists();
            if inst.kill_job_at.is_some_and(|t| t <= now) && running {
                inst.kill_job_at = None;
                job_kills += usize::from(kill_job(&dir, pid));
            }
            if inst.kill_runonce_at.is_some_and(|t| t <= now)
                && (running || !inst.kill_runonce_running)
            {
                inst.kill_runonce_at = None;
                // counted only when it held the job: a skip killed proves less
                runonce_kills += usize::from(running);
                inst.child.kill().expect("SIGKILL runonce");
            }
            match inst.child.try_wait().expect("try_wait") {
                Some(status) => {
                    let n = live.swap_remove(i).n;
                    let code = status.code().unwrap_or(-status.signal().unwrap_or(0));
                    assert!(
                        [0, 75, 124, 137, -libc::SIGKILL].contains(&code),
                        "runonce exited {code}: {}",
                        fs::read_to_string(dir.join(format!("err.{n}"))).unwrap_or_default()
                    );
                    *codes.entry(code).or_default() += 1;
                }
                None => i += 1,
            }
        }
        // what a reader may see at any moment: a whole state, a whole record
        if let Ok(text) = fs::read_to_string(&state_path) {
            assert!(serde_json::from_str::<JobState>(&text).is_ok(), "torn state: {text:?}");
        }
        if let Ok(meta) = fs::metadata(&lock_path) {
            assert_eq!(*lock_inode.get_or_insert(meta.ino()), meta.ino(), "lock file replaced");
            assert_eq!(meta.len(), 0, "the lock file is never written");
            assert!(holder_record_ok(&record_path), "holder record torn");
            if let Some(h) = Holder::load(&record_path) {
                cgroups_seen.extend(h.cgroups.into_iter().map(|(_, dir)| dir));
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }

    // the last orphan, if any, is past its deadline within 0.3 s: a waiting
    // run enforces it and then runs
    let last = env
        .cmd()
        .args(["-n", &name, "--wait=30s", "--kill-after", "0.2", "--", "true"])
        .output()
        .expect("run runonce");
    assert_eq!(code(&last), 0, "{}", stderr(&last));

    eprintln!(
        "{LAUNCHES} launches in {:.1?}: {runonce_kills} runonce and {job_kills} job kills; \
         exits {codes:?}",
        start.elapsed()
    );
    let overlaps = fs::read_to_string(dir.join("overlaps")).unwrap_or_default();
    assert!(overlaps.is_empty(), "two jobs at once (overlapping job PIDs: {overlaps})");
    let starts = fs::read_to_string(dir.join("starts")).unwrap_or_default().lines().count();
    assert!(
        starts >= 50 && runonce_kills >= 8 && job_kills >= 8,
        "too little happened: {starts} jobs ran, {runonce_kills} runonce and {job_kills} \
         job kills; exits {codes:?}"
    );
    assert!(
        wait_until(SLACK, || marked_processes(&marker).is_empty()),
        "leaked processes: {:?}",
        marked_processes(&marker)
    );
    assert!(cgroups_named(&name).is_empty(), "leaked cgroups: {:?}", cgroups_named(&name));
    for cg in &cgroups_seen {
        assert!(!Path::new(cg).exists(), "leaked cgroup {cg}");
    }
    let meta = fs::metadata(&lock_path).expect("the lock file is kept");
    assert_eq!(Some(meta.ino()), lock_inode, "lock file replaced");
    assert_eq!(meta.len(), 0, "the lock file is never written");
    assert!(!record_path.exists(), "the last run, which ended, left its record");
    let state: JobState =
        serde_json::from_str(&fs::read_to_string(&state_path).expect("state")).expect("state");
    assert!(state.runs + state.skips <= LAUNCHES as u64 + 1, "{state:?}");
    assert!(state.runs >= 1 && state.skips >= 1, "{state:?}");
}

fn require_root() {
    assert_eq!(
        sys::geteuid(),
        0,
        "this test mounts file systems and needs root (CI runs as root): run it with sudo"
    );
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn new(at: PathBuf, options: &str) -> Tmpfs {
        fs::create_dir_all(&at).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "runonce-test"])
            .arg(&at)
            .output()
            .expect("run mount");
        assert!(out.status.success(), "mount tmpfs: {}", String::from_utf8_lossy(&out.stderr));
        Tmpfs(at)
    }

    fn remount_read_only(&self) {
        let out = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .output()
            .expect("run mount");
        assert!(out.status.success(), "remount ro: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system holding `dir` until not one more byte fits (names
/// still do: the state's temporary file is created, and its write fails).
fn fill(dir: &Path) {
    use std::io::Write;
    let mut f = fs::File::create(dir.join("filler")).expect("filler");
    let chunk = [0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    while f.write_all(&chunk[..1]).is_ok() {}
}

#[test]
fn full_state_disk_still_runs_the_job_and_says_so() {
    require_root();
    let mut env = Env::new();
    let mnt = Tmpfs::new(env.path("statefs"), "size=256k,mode=0755");
    env.state_dir = mnt.0.join("state");
    let state_dir = env.state_dir.clone();
    let ran = env.path("ran");
    let run = || {
        env.cmd()
            .args(["-n", "full", "--", "sh", "-c", "echo ran >> \"$0\"; exit 3"])
            .arg(&ran)
            .output()
            .expect("run runonce")
    };
    let first = run();
    assert_eq!(code(&first), 3, "{}", stderr(&first));
    let state_file = state_dir.join("full.json");
    let before = fs::read_to_string(&state_file).expect("state written while there was room");

    fill(&mnt.0);
    let second = run();
    assert_eq!(code(&second), 3, "the job's status, whatever the state dir: {}", stderr(&second));
    assert_eq!(fs::read_to_string(&ran).unwrap().lines().count(), 2, "the job ran again");
    let err = stderr(&second);
    assert!(
        err.contains(&format!("--state-dir {}", state_dir.display()))
            && (err.contains("No space left on device") || err.contains("os error 28")),
        "the failure is logged: {err:?}"
    );
    // the old state is kept whole, and the record of the run is in the log
    assert_eq!(fs::read_to_string(&state_file).unwrap(), before);
    assert!(serde_json::from_str::<JobState>(&before).is_ok());
    assert_eq!(env.finishes("full").len(), 2, "both runs are recorded in the log");
}

#[test]
fn read_only_lock_dir_fails_closed() {
    require_root();
    let env = Env::new();
    let mnt = Tmpfs::new(env.path("lockfs"), "size=64k,mode=0755");
    let locks = mnt.0.join("locks");
    fs::create_dir(&locks).expect("lock dir");
    fs::set_permissions(&locks, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    fs::write(locks.join("existing.lock"), "").expect("an existing lock file");
    mnt.remount_read_only();

    let ran = env.path("ran");
    let cases: [(&str, Vec<String>, PathBuf); 4] = [
        (
            "a new lock file",
            vec!["--lock-dir".into(), s(&locks), "-n".into(), "fresh".into()],
            locks.join("fresh.lock"),
        ),
        (
            "an existing lock file",
            vec!["--lock-dir".into(), s(&locks), "-n".into(), "existing".into()],
            locks.join("existing.lock"),
        ),
        (
            "a lock dir to create",
            vec!["--lock-dir".into(), s(&mnt.0.join("missing")), "-n".into(), "x".into()],
            mnt.0.join("missing"),
        ),
        (
            "an explicit --lock",
            vec!["--lock".into(), s(&locks.join("explicit.lock"))],
            locks.join("explicit.lock"),
        ),
    ];
    for (what, args, path) in cases {
        let out = Command::new(crate::util::BIN)
            .args(["--state-dir"])
            .arg(&env.state_dir)
            .args(["--log", &format!("json:{}", env.log.display())])
            .args(&args)
            .args(["--", "touch"])
            .arg(&ran)
            .env_remove("RUNONCE_LOCK_DIR")
            .stdin(Stdio::null())
            .output()
            .expect("run runonce");
        let err = stderr(&out);
        assert_eq!(code(&out), 125, "{what}: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: one line: {err:?}");
        assert!(!ran.exists(), "{what}: the command ran");
        assert!(
            err.contains(&path.display().to_string()) && err.contains("Read-only file system"),
            "{what}: the message names the path and the cause: {err:?}"
        );
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}
