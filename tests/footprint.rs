//! What the wrapper itself holds while its job runs (issue 14; man page
//! and bench/RESULTS.md, "footprint"): at most 2 MiB resident, where the
//! kernel maps 64 KiB of the binary around every page a run touches.  The
//! function order (packaging/link-ordered) and the packed relocations
//! (packaging/rustc-static) are what keep it there.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::{BIN, Env, skip, wait_exit};

#[test]
fn the_wrapper_stays_under_two_mib_while_its_job_runs() {
    if cfg!(debug_assertions) {
        skip(
            "footprint::the_wrapper_stays_under_two_mib_while_its_job_runs",
            "a debug build is three times larger; `cargo test --release` measures the one shipped",
        );
        return;
    }
    let env = Env::new();
    let mut child = Command::new(BIN)
        .arg("--lock-dir")
        .arg(&env.lock_dir)
        .arg("--state-dir")
        .arg(&env.state_dir)
        .args(["--log", "none", "-n", "footprint", "--", "sh", "-c", "echo ready; exec cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("runonce");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n", "the job runs");
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    drop(child.stdin.take());
    assert_eq!(wait_exit(&mut child, Duration::from_secs(60)), Some(0));
    assert!(
        peak_kib <= 2048,
        "runonce's peak RSS is {peak_kib} KiB, more than 2 MiB: a run's functions are no \
         longer packed (packaging/order-symbols regenerates their order) or the relocations \
         no longer packed"
    );
}
