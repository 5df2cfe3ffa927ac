//! util-linux's `tests/ts/flock/*`, case by case, with `flock [OPTION]
//! FILE COMMAND` written `runonce -l FILE [OPTION] -- COMMAND`.  runonce
//! takes exclusive flock(2) locks on a file for the life of a command's
//! whole process tree; flock(1)'s modes beyond that (file descriptors,
//! shared locks, fcntl(2) record locks, --no-fork, --close) have no
//! counterpart and are differences written down in the man page.
//!
//! | file | case | upstream | runonce | result |
//! |---|---|---|---|---|
//! | flock | non-block | `--nonblock --conflict-exit-code 123` while held → 123 | `--busy-exit 123` | pass |
//! | flock | no-fork | `--no-fork --nonblock …` → 123 | runonce always supervises (it must, to hold the lock for the whole tree) | difference |
//! | flock | shared | `--shared` beside a shared holder → 0 | `--slots 2` beside a holder with `--slots 2` | pass |
//! | flock | exclusive | `--nonblock --exclusive --conflict-exit-code 123` → 123 | `--busy-exit 123` | pass |
//! | flock | fd | lock the shell's descriptor 4 → 123 | no descriptor mode (`runonce -l FILE -- script` instead of `exec 4>FILE; flock 4`) | difference |
//! | flock | timeout | `--timeout 5 --conflict-exit-code 5` waits for the holder → 0 | `--wait=5 --busy-exit 5` | pass |
//! | flock | time-check | the waiter ran only once the holder was done | the waiter's job runs after the holder's ended | pass |
//! | flock | fcntl-* (the 7 above with `--fcntl`) and fcntl-vs-flock | fcntl(2) record locks | no `--fcntl`: always flock(2) | difference (8) |
//! | close | `--close` | the command does not inherit the lock → EBADF | the job always inherits it (the lock lives while any process of the job does) | difference |
//! | close | without `--close` | a child re-locks the inherited descriptor | no descriptor mode | difference |
//! | unlock | `--nonblock --verbose FD` | lock a descriptor | no descriptor mode | difference |
//! | unlock | `--unlock FD` | unlock a descriptor | no descriptor mode | difference |
//! | unlock | `--wait 0 FILE true` | a wait of 0 is --nonblock | `--wait=0` | pass |
//! | range-lock | `--fcntl --start 1 --length 2` | a byte-range lock | no `--fcntl` | difference |
//!
//! 21 cases: 6 pass, 15 documented differences (man page, COMPATIBILITY).

use crate::util::*;

use super::{spawn_sh, until_file};

/// Holds `lock` with a running job (as upstream's background `flock … sleep
/// 3`) until released; `extra` are more runonce options.
fn holder(env: &Env, lock: &std::path::Path, extra: &[&str]) -> Holding {
    let mut opts = vec!["-l", lock.to_str().unwrap()];
    opts.extend(extra);
    env.hold("holder", &opts)
}

#[test]
fn flock_nonblock_and_exclusive_give_the_conflict_code() {
    let env = Env::new();
    let lock = env.path("lockfile");
    let h = holder(&env, &lock, &[]);
    let o = env.run(&[
        "-l",
        lock.to_str().unwrap(),
        "--busy-exit",
        "123",
        "--",
        "echo",
        "You will never see this!",
    ]);
    assert_eq!(code(&o), 123);
    assert_eq!(stdout(&o), "");
    assert_eq!(h.release(), Some(0));
}

#[test]
fn flock_shared_is_slots() {
    let env = Env::new();
    let lock = env.path("lockfile");
    let h = holder(&env, &lock, &["--slots", "2"]);
    let o =
        env.run(&["-l", lock.to_str().unwrap(), "--slots", "2", "--", "echo", "Have shared lock"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "Have shared lock\n");
    assert_eq!(h.release(), Some(0));
}

#[test]
fn flock_timeout_waits_for_the_holder_then_runs() {
    let env = Env::new();
    let lock = env.path("lockfile");
    let out = env.path("output");
    let ready = env.path("ready");
    let release = env.path("release");
    let hold = format!(
        "echo Locking >> {o}; touch {}; {}; echo Unlocking >> {o}",
        ready.display(),
        until_file(&release),
        o = out.display()
    );
    let mut h = spawn_sh(&env, &["-n", "holder", "-l", lock.to_str().unwrap()], &hold);
    wait_file(&ready);
    let mut waiter = spawn_sh(
        &env,
        &["-n", "waiter", "-l", lock.to_str().unwrap(), "--wait=5", "--busy-exit", "5"],
        &format!("echo 'After timeout.' >> {}", out.display()),
    );
    // the waiter is queued on the lock (a blocked flock in /proc/locks)
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&lock).unwrap());
    assert!(wait_until(SLACK, || {
        std::fs::read_to_string("/proc/locks").unwrap().lines().any(|l| {
            l.contains("->") && l.split_whitespace().any(|w| w.ends_with(&format!(":{ino}")))
        })
    }));
    std::fs::write(&release, "").unwrap();
    assert_eq!(h.wait().unwrap().code(), Some(0));
    assert_eq!(waiter.wait().unwrap().code(), Some(0));
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text, "Locking\nUnlocking\nAfter timeout.\n", "the waiter ran after the holder");
}

#[test]
fn unlock_wait_zero_is_nonblock() {
    let env = Env::new();
    let lock = env.path("data.lock");
    let l = lock.to_str().unwrap();
    assert_eq!(code(&env.run(&["-l", l, "--wait=0", "--", "true"])), 0);
    let h = holder(&env, &lock, &[]);
    let o = env.run(&["-l", l, "--wait=0", "--", "echo", "never"]);
    assert_eq!(code(&o), 75);
    assert_eq!(stdout(&o), "");
    assert_eq!(h.release(), Some(0));
}
