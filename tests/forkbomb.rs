//! A fork bomb inside `--timeout`: all of it gone after the SIGKILL, and its
//! cgroup with it.  A test binary of its own, so that cargo runs it alone: ten
//! thousand processes would upset every test beside it.  How fast the tree
//! goes against the kernel's own teardown is measured in `bench/run` (kill
//! latency), not here: on a shared two-core machine the teardown of 10,000
//! processes alone takes from 1.5 s to several seconds.

#[path = "cgroup_dirs.rs"]
mod dirs;
#[path = "util.rs"]
mod util;

use std::process::Stdio;
use std::time::{Duration, Instant};

use util::*;

/// The bomb: every process forks until it cannot, then sleeps, so that
/// all of it is there (TERM ignored) when the KILL comes, and runonce's
/// deadlines fire on time once it has stopped growing.  The first process
/// writes its /proc/self/cgroup to the file named by its argument.
const BOMB: &str = r#"
    open(my $i, "<", "/proc/self/cgroup") or die; my @l = <$i>;
    open(my $o, ">", "$ARGV[0].tmp") or die; print $o @l; close $o;
    rename("$ARGV[0].tmp", $ARGV[0]);
    $SIG{TERM} = "IGNORE";
    while (1) { last unless defined fork }
    sleep 1000;
"#;

/// Bounded by --nproc 10000 (the pids controller).  The timeout leaves the
/// bomb time to reach its size on a small shared machine (1-3 s here), so
/// that what is measured is the kill, not the growth.
#[test]
fn fork_bomb_is_gone_after_the_kill() {
    let env = Env::new();
    let cg = env.path("cg");
    let (timeout, kill_after) = (6.0, 1.0);
    let started = Instant::now();
    let mut child = env
        .cmd()
        .args(["-n", "bomb", "--nproc", "10000", "-t", "6", "-k", "1", "--", "perl", "-e", BOMB])
        .arg(&cg)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_file(&cg);
    let job_dirs = dirs::job_dirs(&cg);
    let v2 = job_dirs.iter().find(|d| d.join("cgroup.kill").exists()).expect("a v2 cgroup");
    let count =
        || std::fs::read_to_string(v2.join("cgroup.procs")).map_or(0, |t| t.lines().count());
    let (mut most, mut grown) = (0, None);
    while child.try_wait().unwrap().is_none() {
        let n = count();
        most = most.max(n);
        if n >= 9_000 && grown.is_none() {
            grown = Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = child.wait().unwrap();
    let rec = &env.finishes("bomb")[0];
    // runonce's own clock: from the job's start to the tree gone
    let duration = rec["duration_s"].as_f64().expect("duration_s");
    let gone = duration - timeout - kill_after;
    eprintln!(
        "fork bomb: {most} processes, 9000 of them after {grown:?}; \
         all gone {gone:.3} s after the KILL ({:.3} s by the test's clock)",
        started.elapsed().as_secs_f64() - timeout - kill_after
    );
    assert_eq!(status.code(), Some(124));
    assert!(most >= 9_000, "the bomb only reached {most} processes");
    assert!(most <= 10_000, "pids.max did not hold: {most}");
    assert!(gone >= 0.0, "runonce says it was over {gone:.3} s before the KILL was due");
    assert!(gone < SLACK.as_secs_f64(), "processes lived {gone:.3} s past the KILL");
    assert_eq!(rec["sent"], serde_json::json!(["TERM", "KILL"]));
    assert_eq!(rec["contain"], dirs::host_contain());
    // nothing of the bomb is left anywhere, and neither is its cgroup
    let marker = cg.to_string_lossy().into_owned();
    let survivors: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid: &i32| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
        })
        .filter(|&pid| alive(pid))
        .collect();
    assert!(survivors.is_empty(), "survivors: {survivors:?}");
    for d in &job_dirs {
        assert!(!d.exists(), "{} is left behind", d.display());
    }
}
