//! Helpers for the integration tests: a scratch environment per test and
//! synchronisation on files (never on sleeps alone).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_runonce");

/// Generous: the machines are small and noisy.
pub const SLACK: Duration = Duration::from_secs(10);

pub struct Env {
    pub dir: tempfile::TempDir,
    pub lock_dir: PathBuf,
    pub state_dir: PathBuf,
    pub log: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let lock_dir = dir.path().join("lock");
        let state_dir = dir.path().join("state");
        let log = dir.path().join("log.jsonl");
        Env { dir, lock_dir, state_dir, log }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// runonce with this environment's lock dir, state dir and JSON log.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--lock-dir")
            .arg(&self.lock_dir)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--log")
            .arg(format!("json:{}", self.log.display()));
        c.env_remove("RUNONCE_LOCK_DIR").env_remove("RUNONCE_STATE_DIR");
        c.stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run runonce")
    }

    /// Every record in the JSON log.
    pub fn records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
            .collect()
    }

    /// Finish records of job `name`.
    pub fn finishes(&self, name: &str) -> Vec<serde_json::Value> {
        self.records().into_iter().filter(|r| r["event"] == "finish" && r["name"] == name).collect()
    }
}

/// A job that holds its lock until released: started by `Env::hold`.
pub struct Holding {
    pub child: std::process::Child,
    pub release: PathBuf,
}

/// A test that fails while holding lets the job go, so that it does not
/// spin on in a deleted temp dir (and hold the test's output pipe open).
impl Drop for Holding {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.release, "");
    }
}

impl Holding {
    /// Lets the job finish and returns runonce's exit code.
    pub fn release(mut self) -> Option<i32> {
        std::fs::write(&self.release, "").expect("release file");
        self.child.wait().expect("wait runonce").code()
    }
}

impl Env {
    /// Runs job `name` (with `extra` options) that holds the lock until
    /// released; returns once the job is running.
    pub fn hold(&self, name: &str, extra: &[&str]) -> Holding {
        let mut cmd = self.cmd();
        cmd.args(["--name", name]).args(extra).args(["--", "sh", "-c"]);
        self.holding(name, cmd)
    }

    /// Runs `cmd` with one more argument, a shell script that holds on
    /// until released (files named after `tag`); returns once it runs.
    pub fn holding(&self, tag: &str, mut cmd: Command) -> Holding {
        let ready = self.path(&format!("{tag}.ready"));
        let release = self.path(&format!("{tag}.release"));
        let script = format!(
            "touch {}; while [ ! -e {} ]; do sleep 0.02; done",
            ready.display(),
            release.display()
        );
        let child = cmd.arg(script).spawn().expect("start holder");
        wait_file(&ready);
        Holding { child, release }
    }
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Waits until `path` exists; panics after SLACK.
pub fn wait_file(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < SLACK, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `cond` holds; false after `limit`.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Reads a PID a job wrote into a file (waiting for it).
pub fn read_pid(path: &Path) -> i32 {
    wait_file(path);
    let mut text = String::new();
    wait_until(SLACK, || {
        text = std::fs::read_to_string(path).unwrap_or_default();
        text.ends_with('\n')
    });
    text.trim().parse().expect("a pid")
}

/// The process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().chars().next()))
        .flatten()
        .is_some_and(|state| state != 'Z' && state != 'X')
}

pub fn kill(pid: i32, sig: i32) {
    // SAFETY: sending a signal to a PID the test owns.
    unsafe { libc::kill(pid, sig) };
}

/// A test that cannot run here says so, never passes silently: one line
/// `SKIP <test>: <reason>` straight to stderr (libtest captures only the
/// print macros, so it shows without --nocapture) and appended to
/// `target/tmp/skips.txt`, which `.ci/test` counts.
pub fn skip(test: &str, reason: &str) {
    use std::io::Write;
    let line = format!("SKIP {test}: {reason}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skips.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(file) {
        let _ = f.write_all(line.as_bytes());
    }
}

/// The fields after the command name of /proc/PID/stat, as a job wrote
/// them: index 0 is the state (field 3 of proc(5)).
pub fn stat_fields(text: &str) -> Vec<String> {
    text.rsplit_once(')').expect("a stat line").1.split_whitespace().map(String::from).collect()
}

/// Waits for runonce to exit, at most `limit`: a runonce that hangs (a
/// broken kill path leaves processes it waits for) fails the test instead
/// of hanging the suite; it is then killed, and the test's release files
/// end what it left.
pub fn wait_exit(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let mut status = None;
    wait_until(limit, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    match status {
        Some(s) => s.code(),
        None => {
            kill(child.id() as i32, libc::SIGKILL);
            let _ = child.wait();
            panic!("runonce {} still runs after {limit:?}", child.id());
        }
    }
}

/// Creates its file when dropped: a test that fails still lets the
/// processes that wait for the file go (before its temp dir goes).
pub struct ReleaseOnDrop(pub PathBuf);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, "");
    }
}

/// `cmd.output()`, but a runonce still running after `limit` is killed and
/// fails the test (see `wait_exit`).
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    use std::io::Read;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let pipes = [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
    ];
    let readers: Vec<_> = pipes
        .into_iter()
        .map(|p| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut p) = p {
                    let _ = p.read_to_end(&mut buf);
                }
                buf
            })
        })
        .collect();
    wait_exit(&mut child, limit);
    let status = child.wait().expect("wait");
    let mut outs = readers.into_iter().map(|r| r.join().unwrap());
    Output { status, stdout: outs.next().unwrap(), stderr: outs.next().unwrap() }
}
