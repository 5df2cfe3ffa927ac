//! The record names the limit that ended or broke a job (issue 12):
//! `limit` in the JSON record, `limit=…` in the words of the stderr and
//! syslog sinks, `last_limit` in the state and the LIMIT column of
//! `--status`.  Real jobs run into real limits; the evidence is the
//! kernel's (cgroup events, SIGXCPU), so these tests need root's cgroups.

use std::process::{Command, Output};

use serde_json::Value;

use crate::util::*;

/// Job `name` run with `--log stderr` besides the JSON log.
fn run(env: &Env, name: &str, extra: &[&str], argv: &[&str]) -> Output {
    env.cmd()
        .args(["--log", "stderr", "-n", name])
        .args(extra)
        .arg("--")
        .args(argv)
        .output()
        .unwrap()
}

fn finish(env: &Env, name: &str) -> Value {
    let f = env.finishes(name);
    assert_eq!(f.len(), 1, "{f:?}");
    f.into_iter().next().unwrap()
}

/// The finish line of the stderr sink.
fn words(out: &Output, name: &str) -> String {
    let err = stderr(out);
    let prefix = format!("runonce: {name}: finish ");
    err.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("{err}")).to_string()
}

/// The row of `name` in `--status` and its JSON.
fn status(env: &Env, name: &str) -> (Vec<String>, Value) {
    let out = Command::new(BIN)
        .args(["--status", name, "--lock-dir"])
        .arg(&env.lock_dir)
        .arg("--state-dir")
        .arg(&env.state_dir)
        .output()
        .unwrap();
    let table = stdout(&out);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    let limit = header.iter().position(|&h| h == "LIMIT").expect("a LIMIT column");
    let cells = vec![row[4].to_string(), row[limit].to_string()];
    let out = Command::new(BIN)
        .args(["--status", "--json", name, "--lock-dir"])
        .arg(&env.lock_dir)
        .arg("--state-dir")
        .arg(&env.state_dir)
        .output()
        .unwrap();
    (cells, serde_json::from_slice(&out.stdout).unwrap())
}

/// Asserts `limit` is named everywhere for job `name`, or nowhere.
fn named(env: &Env, out: &Output, name: &str, limit: Option<&str>) {
    let rec = finish(env, name);
    let line = words(out, name);
    let (cells, json) = status(env, name);
    match limit {
        Some(l) => {
            assert_eq!(rec["limit"], l, "{rec}");
            assert!(line.contains(&format!(" limit={l} ")), "{line}");
            assert_eq!(cells[1], l, "{cells:?}");
            assert_eq!(json["last"]["last_limit"], l, "{json}");
        }
        None => {
            assert!(rec.get("limit").is_none(), "{rec}");
            assert!(!line.contains("limit="), "{line}");
            assert_eq!(cells[1], "-", "{cells:?}");
            assert!(json["last"]["last_limit"].is_null(), "{json}");
        }
    }
}

/// Shared anonymous memory is not RLIMIT_DATA's (like a tree of processes
/// or files in tmpfs): only the cgroup's memory limit stops it, with the
/// OOM killer.
const EAT_SHARED: &str = "import mmap, sys
n = int(sys.argv[1]) << 20
m = mmap.mmap(-1, n)
for i in range(0, n, 4096):
    m[i] = 1
print('survived')";

#[test]
fn memory_limit_from_the_cgroup_oom_is_named() {
    let env = Env::new();
    let out = run(&env, "eat", &["--memory", "64M"], &["python3", "-c", EAT_SHARED, "256"]);
    assert_eq!(code(&out), 137, "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "it survived 256 MiB under a 64 MiB cap");
    named(&env, &out, "eat", Some("memory"));
    let rec = finish(&env, "eat");
    assert_eq!((&rec["outcome"], &rec["signal"]), (&"signaled".into(), &"KILL".into()));
    assert!(rec["oom_kills"].as_u64().is_some_and(|n| n >= 1), "{rec}");
    // the same job within its cap: nothing is named
    let out = run(&env, "fits", &["--memory", "64M"], &["python3", "-c", EAT_SHARED, "16"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "survived\n"), "{}", stderr(&out));
    named(&env, &out, "fits", None);
}

/// Without a cgroup, `--memory` is RLIMIT_DATA: the allocation is refused,
/// which leaves no evidence: the run is `failed`, and no limit is claimed
/// (see the man page).
#[test]
fn memory_refused_by_rlimit_data_is_not_guessed() {
    let env = Env::new();
    let opts = ["--memory", "64M", "--contain", "pgroup"];
    let out = run(&env, "big", &opts, &["python3", "-c", "x = bytearray(256 << 20)"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("MemoryError"), "{}", stderr(&out));
    named(&env, &out, "big", None);
}

/// With the job's cgroup capping the tree, one process allocating past
/// `--memory` meets the cgroup's limit, not an RLIMIT_DATA that would
/// refuse it without a trace: the record names the limit.
#[test]
fn one_process_past_the_memory_cap_is_named_when_a_cgroup_holds_it() {
    let env = Env::new();
    let eat = "x = bytearray(256 << 20); x[::4096] = b'1' * len(x[::4096]); print('survived')";
    let out = run(&env, "big", &["--memory", "64M"], &["python3", "-c", eat]);
    if finish(&env, "big")["contain"] == "pgroup" {
        eprintln!(
            "SKIP one_process_past_the_memory_cap_is_named_when_a_cgroup_holds_it: no cgroup here"
        );
        return;
    }
    assert_eq!(code(&out), 137, "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "it survived 256 MiB under a 64 MiB cap");
    named(&env, &out, "big", Some("memory"));
}

#[test]
fn cpu_limit_is_named_for_sigxcpu_and_for_the_kill_after_it() {
    let env = Env::new();
    let spin = "while :; do :; done";
    let out = run(&env, "spin", &["--cpu", "1"], &["sh", "-c", spin]);
    assert_eq!(code(&out), 128 + libc::SIGXCPU, "{}", stderr(&out));
    named(&env, &out, "spin", Some("cpu"));
    // SIGXCPU ignored: the kernel's SIGKILL at the hard limit, a second on
    let out =
        run(&env, "stubborn", &["--cpu", "1"], &["sh", "-c", &format!("trap '' XCPU; {spin}")]);
    assert_eq!(code(&out), 137, "{}", stderr(&out));
    assert_eq!(finish(&env, "stubborn")["sent"], serde_json::json!([]));
    named(&env, &out, "stubborn", Some("cpu"));
    // a SIGKILL from elsewhere, well within the CPU time: not the limit
    let out = run(&env, "shot", &["--cpu", "30"], &["sh", "-c", "kill -KILL $$"]);
    assert_eq!(code(&out), 137, "{}", stderr(&out));
    named(&env, &out, "shot", None);
    // runonce's own timeout is named by its outcome, never as a limit
    let out = run(&env, "slow", &["--cpu", "1", "-t", "0.3", "-k", "0.1"], &["sh", "-c", spin]);
    assert_eq!(code(&out), 124, "{}", stderr(&out));
    named(&env, &out, "slow", None);
}

#[test]
fn nproc_limit_from_the_pids_cgroup_is_named() {
    let env = Env::new();
    // eight sleeps at once under --nproc 5: the shell cannot fork them all
    let forks = "for i in 1 2 3 4 5 6 7 8; do sleep 0.2 & done; wait";
    // the syslog sink too, on a private socket
    let socket = env.path("dev-log");
    let syslog = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
    syslog.set_read_timeout(Some(SLACK)).unwrap();
    let extra = ["--nproc", "5", "--log", "syslog", "--syslog-socket", socket.to_str().unwrap()];
    let out = run(&env, "forks", &extra, &["sh", "-c", forks]);
    assert_ne!(code(&out), 0, "{}", stderr(&out));
    named(&env, &out, "forks", Some("nproc"));
    let next = || {
        let mut buf = [0u8; 65536];
        let n = syslog.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let messages = [next(), next()];
    assert!(
        messages[1].contains("forks: finish outcome=failed")
            && messages[1].contains(" limit=nproc "),
        "{messages:?}"
    );
    let out = run(&env, "few", &["--nproc", "5"], &["sh", "-c", "sleep 0.1 & wait; exit 3"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    named(&env, &out, "few", None);
}

/// Where a pids cgroup holds `--nproc`, RLIMIT_NPROC is left as it was (it
/// counts every process of the user), and the other limits are set all the
/// same.
#[test]
fn a_pids_cgroup_takes_the_place_of_rlimit_nproc_only() {
    if crate::cgroup::dirs::mounts().pids.is_none() {
        skip("limit::a_pids_cgroup_takes_the_place_of_rlimit_nproc_only", "no pids controller");
        return;
    }
    let env = Env::new();
    let ulimits = ["bash", "-c", "ulimit -n; ulimit -u"];
    let out = run(&env, "pids", &["--nproc", "50", "--nofile", "77"], &ulimits);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let inherited = Command::new("bash").args(["-c", "ulimit -u"]).output().unwrap();
    let want = format!("77\n{}", String::from_utf8_lossy(&inherited.stdout));
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}
