//! coreutils' `tests/timeout/*`, case by case, with `timeout [OPTION]
//! DURATION COMMAND` written `runonce -t DURATION [OPTION] -- COMMAND`.
//!
//! | file | case | upstream | runonce | result |
//! |---|---|---|---|---|
//! | timeout.sh | no timeout | `timeout 10 true` → 0 | `-t 10 true` | pass |
//! | timeout.sh | suffix | `timeout 1d true` → 0 | `-t 1d true` | pass |
//! | timeout.sh | disabled | `timeout 0 true` → 0 | `-t 0 true` | pass |
//! | timeout.sh | status passes | `sh -c 'exit 2'` → 2 | same | pass |
//! | timeout.sh | timeout | `timeout .1 sleep 10` → 124 | `-t .1` | pass |
//! | timeout.sh | --preserve-status | 128+TERM | always 124; the record's `signal` says TERM | difference |
//! | timeout.sh | -s0 -k1 | `-s0 -k1 .1 sleep 10` → 137 (128+KILL), not 124 | `-s KILL -t 1.1` (no signal 0): 124, the record's `signal` is KILL | difference |
//! | timeout.sh | --foreground -s0 -k1 | → 137, not 124 | `--foreground -s KILL -t 1.1`: 124 | difference |
//! | timeout.sh | SIGCHLD ignored | `(trap '' CHLD; exec timeout 10 true)` → 0 | same | pass |
//! | timeout.sh | started with a child | `$(sleep .1 & exec timeout .5 sh -c 'sleep 2; echo foo')` → "", 124 | same | pass |
//! | timeout.sh | --verbose | "sending signal …" on stderr | no -v; `--log stderr` prints the record with `sent=` | difference |
//! | timeout-parameters.sh | 11 cases: invalid, ` -0.1`, ` -1e-10000`, `--kill-after=invalid`, `42D` → 125; `10.34`, `9.999999999` → 0; `1e-10000` → 124; `--signal=invalid` → 125; `.` → 126; `no_such` → 127 | same values | pass (11) |
//! | timeout-large-parameters.sh | 7 cases: `$TIME_T_OFLOW` does not fire at once; `$UINT_OFLOW`, `${TIME_T_OFLOW}d`, `2.34e+5d`, `$LDBL_MAX` → 0; `-$LDBL_MAX` → 125; `1e-5000` → 124 | same values | pass (7) |
//! | timeout-group.sh | Ctrl-C-like USR1 to the group, `--foreground` | the command gets it | same | pass |
//! | timeout-group.sh | timeout SIGKILLed | the command gets `-s` (PR_SET_PDEATHSIG) | the job runs on holding the lock; the next run enforces its deadline | difference |
//! | timeout-group.sh | cascaded timeouts | the inner command, in its own group, is timed out | outer `-s ALRM -t 1` over inner `-s USR1`: 124 at once (an external ALRM is relayed, not a timeout: documented) | pass |
//! | timeout-blocked.pl | ALRM blocked by the parent | `.1 sleep 10` → 124 | same | pass |
//! | init-parent.sh | PID 1 of a new namespace | `timeout 10 sleep 2` → 0, `.1 sleep 10` → 124 | same | pass (2) |
//!
//! 35 cases: 30 pass, 5 documented differences (man page, COMPATIBILITY).

use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{runonce_line, script, sh};
use crate::util::*;

const TIME_T_OFLOW: &str = "9223372036854775808";
const UINT_OFLOW: &str = "4294967296";
const LDBL_MAX: &str = "1.18973149535723176502e+4932";

#[test]
fn timeout_sh_basics() {
    let env = Env::new();
    for (args, want) in [
        (&["-t", "10", "true"][..], 0),
        (&["-t", "1d", "true"], 0),
        (&["-t", "0", "true"], 0),
        (&["-t", "10", "sh", "-c", "exit 2"], 2),
        (&["-t", ".1", "sleep", "10"], 124),
    ] {
        assert_eq!(code(&env.run(args)), want, "{args:?}");
    }
}

#[test]
fn timeout_sh_preserve_status_is_in_the_record() {
    let env = Env::new();
    let o = env.run(&["-n", "ps", "-t", ".1", "sleep", "10"]);
    assert_eq!(code(&o), 124, "always 124 on a timeout");
    let rec = &env.finishes("ps")[0];
    assert_eq!(rec["signal"], "TERM", "what --preserve-status would return: {rec}");
}

#[test]
fn timeout_sh_kill_delay_is_124_not_137() {
    let env = Env::new();
    for fg in [&[][..], &["--foreground"]] {
        let o = env
            .cmd()
            .args(["-n", "k", "-s", "KILL", "-t", "1.1"])
            .args(fg)
            .args(["sleep", "10"])
            .output()
            .unwrap();
        assert_eq!(code(&o), 124, "{fg:?}: {}", stderr(&o));
    }
    for rec in env.finishes("k") {
        assert_eq!(rec["sent"], json!(["KILL"]));
        assert_eq!(rec["signal"], "KILL");
    }
}

#[test]
fn timeout_sh_immune_to_ignored_sigchld() {
    let env = Env::new();
    let mut cmd = env.cmd();
    cmd.args(["-t", "10", "true"]);
    // SAFETY: only signal(2) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGCHLD, libc::SIG_IGN);
            Ok(())
        });
    }
    assert_eq!(cmd.status().unwrap().code(), Some(0));
}

#[test]
fn timeout_sh_started_with_a_child() {
    let env = Env::new();
    let line = format!(
        "out=$(sleep .1 & exec {} -t .5 -- sh -c 'sleep 2; echo foo'); echo \"[$out]\"; exit $?",
        runonce_line(&env)
    );
    let o = sh(&line).output().unwrap();
    assert_eq!(stdout(&o), "[]\n", "{}", stderr(&o));
    let line =
        format!("(sleep .1 & exec {} -t .5 -- sh -c 'sleep 2; echo foo')", runonce_line(&env));
    let o = sh(&line).output().unwrap();
    assert_eq!(code(&o), 124, "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
}

#[test]
fn timeout_sh_verbose_is_the_stderr_record() {
    let env = Env::new();
    let o = env
        .cmd()
        .args([
            "--log",
            "stderr",
            "-n",
            "v",
            "-t",
            ".1",
            "-k",
            ".1",
            "--",
            "sh",
            "-c",
            "trap '' TERM; sleep 10",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&o), 124);
    assert!(stderr(&o).contains("sent=TERM,KILL"), "{}", stderr(&o));
}

#[test]
fn timeout_parameters_sh() {
    let env = Env::new();
    let cases: &[(&[&str], i32)] = &[
        (&["-t", "invalid", "sleep", "0"], 125),
        (&["-t", " -0.1", "sleep", "0"], 125),
        (&["-t", " -1e-10000", "sleep", "0"], 125),
        (&["--kill-after=invalid", "-t", "1", "sleep", "0"], 125),
        (&["-t", "42D", "sleep", "0"], 125),
        (&["-t", "10.34", "sleep", "0"], 0),
        (&["-t", "9.999999999", "sleep", "0"], 0),
        (&["-t", "1e-10000", "sleep", "10"], 124),
        (&["--signal=invalid", "-t", "1", "sleep", "0"], 125),
        (&["-t", "10", "."], 126),
        (&["-t", "10", "no_such"], 127),
    ];
    for (args, want) in cases {
        let o = env.cmd().args(*args).output().unwrap();
        assert_eq!(code(&o), *want, "{args:?}: {}", stderr(&o));
        if *want == 125 {
            assert_eq!(stderr(&o).lines().count(), 1, "{args:?}: {}", stderr(&o));
        }
    }
}

#[test]
fn timeout_large_parameters_sh() {
    let env = Env::new();
    // an overflowing time_t must not fire at once
    let o = env.run(&["-t", TIME_T_OFLOW, "sleep", "0.5"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let big_d = format!("{TIME_T_OFLOW}d");
    let minus_max = format!("-{LDBL_MAX}");
    let cases: &[(&[&str], i32)] = &[
        (&["-t", UINT_OFLOW, "sleep", "0"], 0),
        (&["-t", &big_d, "sleep", "0"], 0),
        (&["-t", "2.34e+5d", "sleep", "0"], 0),
        (&["-t", LDBL_MAX, "sleep", "0"], 0),
        (&["-t", &minus_max, "sleep", "0"], 125),
        (&["-t", "1e-5000", "sleep", "10"], 124),
    ];
    for (args, want) in cases {
        let o = env.cmd().args(*args).output().unwrap();
        assert_eq!(code(&o), *want, "{args:?}: {}", stderr(&o));
    }
}

/// upstream's timeout.cmd: makes sig.received on USR1 and exits, else
/// counts down `$1` seconds.  The trap makes the file with a redirection,
/// not upstream's `touch`: runonce relays a signal to every process of the
/// job (man page, SIGNALS), so a USR1 that reaches the script from its group
/// and again through runonce can kill a `touch` the first one's trap forked,
/// and the file is never made (timeout(1) relays to its child alone).
fn timeout_cmd(env: &Env) -> std::path::PathBuf {
    script(
        env.dir.path(),
        "timeout.cmd",
        "trap ': > sig.received; exit' USR1\ntouch timeout.running\ncount=$1\n\
         until test -e sig.received || test $count = 0; do\n  sleep 1\n  count=$(expr $count - 1)\ndone\n",
    )
}

#[test]
fn timeout_group_sh_signal_to_the_foreground_group() {
    let env = Env::new();
    timeout_cmd(&env);
    let dir = env.dir.path();
    let group = script(
        dir,
        "group.sh",
        &format!(
            "trap '' USR1\nenv --default-signal=USR1 {} --foreground -t 25 -- ./timeout.cmd 20 &\nwait\n",
            runonce_line(&env)
        ),
    );
    let mut child =
        std::process::Command::new("setsid").arg(&group).current_dir(dir).spawn().unwrap();
    wait_file(&dir.join("timeout.running"));
    kill(-(child.id() as i32), libc::SIGUSR1);
    child.wait().unwrap();
    assert!(dir.join("sig.received").exists());
}

#[test]
fn timeout_group_sh_sigkilled_runonce_leaves_the_job_holding_the_lock() {
    let env = Env::new();
    timeout_cmd(&env);
    let dir = env.dir.path();
    let mut child = env
        .cmd()
        .args(["-n", "pdeath", "-s", "USR1", "-t", "25", "--", "./timeout.cmd", "20"])
        .current_dir(dir)
        .spawn()
        .unwrap();
    wait_file(&dir.join("timeout.running"));
    kill(child.id() as i32, libc::SIGKILL);
    child.wait().unwrap();
    // timeout(1) would have sent USR1 to the command; the job runs on, and
    // still excludes a second run
    std::thread::sleep(Duration::from_millis(300));
    assert!(!dir.join("sig.received").exists());
    assert_eq!(code(&env.run(&["-n", "pdeath", "true"])), 75);
    // the next --replace (or a run after the recorded deadline) ends it
    let o = env.run(&["-n", "pdeath", "--replace", "-s", "USR1", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(dir.join("sig.received").exists());
}

#[test]
fn timeout_group_sh_cascaded_timeouts() {
    let env = Env::new();
    timeout_cmd(&env);
    let dir = env.dir.path();
    let t = Instant::now();
    let line = format!(
        "{ro} -n outer -s ALRM -t 1 -- {ro} -n inner -s USR1 -t 25 -- ./timeout.cmd 20",
        ro = runonce_line(&env)
    );
    let o = sh(&line).current_dir(dir).output().unwrap();
    assert_eq!(code(&o), 124, "{}", stderr(&o));
    assert!(t.elapsed() < Duration::from_secs(15), "the inner command was not timed out");
    assert_eq!(env.finishes("outer")[0]["sent"], json!(["ALRM"]));
    // an ALRM from outside is relayed like any signal, not taken for a timeout
    std::fs::remove_file(dir.join("timeout.running")).unwrap();
    let mut child = sh(&format!("exec {line}")).current_dir(dir).spawn().unwrap();
    wait_file(&dir.join("timeout.running"));
    kill(child.id() as i32, libc::SIGALRM);
    assert_eq!(child.wait().unwrap().code(), Some(128 + libc::SIGALRM));
}

#[test]
fn timeout_blocked_pl_alrm_blocked_by_the_parent() {
    let env = Env::new();
    let mut cmd = env.cmd();
    cmd.args(["-t", ".1", "sleep", "10"]);
    // SAFETY: only sigprocmask(2) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGALRM);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    assert_eq!(cmd.status().unwrap().code(), Some(124));
}

#[test]
fn init_parent_sh_runonce_as_pid_1() {
    let env = Env::new();
    let newpids = |args: &str| {
        sh(&format!("unshare --pid --fork --map-root-user {} {args}", runonce_line(&env)))
            .output()
            .unwrap()
    };
    let o = newpids("-t 10 sleep 0.5");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = newpids("-t .1 sleep 10");
    assert_eq!(code(&o), 124, "{}", stderr(&o));
}
