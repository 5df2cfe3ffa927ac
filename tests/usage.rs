//! Mistakes a new user makes on the command line (issue 12): each gets one
//! line that says what to do, exit 125, and the job never starts.

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use serde_json::Value;

use crate::util::*;

/// One line on stderr, nothing on stdout, exit 125, and no trace of a run:
/// no record, no lock, no state.
fn refused(env: &Env, out: &Output) -> String {
    let err = stderr(out);
    assert_eq!(code(out), 125, "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("runonce: "), "{err}");
    assert_eq!(stdout(out), "");
    assert!(env.records().is_empty(), "a record was written: {:?}", env.records());
    assert!(!env.state_dir.exists() && !env.lock_dir.exists(), "the job left traces");
    err
}

#[test]
fn wait_with_a_detached_duration_is_refused_with_the_attached_form() {
    let env = Env::new();
    for (args, attached) in [
        (&["-w", "5m", "--", "echo", "hi"][..], "--wait=5m"),
        (&["--wait", "5m", "echo", "hi"], "--wait=5m"),
        (&["-qw", "90", "echo"], "--wait=90"),
        (&["--wait", "1h30m", "--", "echo"], "--wait=1h30m"),
    ] {
        let err = refused(&env, &env.run(args));
        assert!(err.contains(&format!("its value must be attached: {attached} ")), "{err}");
    }
    // the attached forms wait (here: not at all, the lock is free) and run
    for wait in ["--wait=5m", "-w5m"] {
        let out = env.run(&["-n", "w", wait, "--", "echo", "hi"]);
        assert_eq!((code(&out), stdout(&out).as_str()), (0, "hi\n"), "{}", stderr(&out));
    }
}

#[test]
fn wait_followed_by_a_program_on_path_runs_it() {
    let env = Env::new();
    let bin = env.path("bin");
    std::fs::create_dir(&bin).unwrap();
    let prog = bin.join("90");
    std::fs::write(&prog, "#!/bin/sh\necho ninety\n").unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = env.cmd().env("PATH", path).args(["-n", "p", "--wait", "90"]).output().unwrap();
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "ninety\n"), "{}", stderr(&out));
    // a non-executable file of that name is no program
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = env.cmd().env("PATH", path).args(["-n", "p", "--wait", "90"]).output().unwrap();
    assert_eq!(code(&out), 125, "{}", stderr(&out));
}

#[test]
fn option_missing_its_value_says_it_needs_one() {
    let env = Env::new();
    for (args, want) in [
        (&["--timeout"][..], "--timeout: needs a value: DURATION "),
        (&["--timeout", "--", "true"], "--timeout: needs a value: DURATION "),
        (&["--name"], "--name: needs a value: NAME "),
        (&["--memory", "--", "true"], "--memory: needs a value: SIZE "),
    ] {
        let err = refused(&env, &env.run(args));
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("invalid value"), "{err}");
    }
    // an empty value typed out is still an invalid one
    let err = refused(&env, &env.run(&["--timeout", "", "--", "true"]));
    assert!(err.contains("--timeout: invalid value ''"), "{err}");
    // after the command, an option is the command's own
    let out = env.run(&["--", "echo", "--timeout"]);
    assert_eq!((code(&out), stdout(&out).as_str()), (0, "--timeout\n"), "{}", stderr(&out));
}

#[test]
fn misspelt_option_gets_a_suggestion_on_one_line() {
    let env = Env::new();
    let ran = env.path("ran");
    let touch = format!("touch {}", ran.display());
    let err = refused(&env, &env.run(&["--timout", "5m", "--", "sh", "-c", &touch]));
    assert!(err.contains("unknown option '--timout'; did you mean '--timeout'?"), "{err}");
    let err = refused(&env, &env.run(&["--kill-afer", "1", "--", "sh", "-c", &touch]));
    assert!(err.contains("did you mean '--kill-after'?"), "{err}");
    // nothing close: no guess
    let err = refused(&env, &env.run(&["--zzzzzz", "--", "sh", "-c", &touch]));
    assert!(err.contains("unknown option '--zzzzzz' (see runonce --help)"), "{err}");
    assert!(!ran.exists());
}

#[test]
fn status_json_and_name_in_any_order() {
    let env = Env::new();
    let out = env.run(&["-n", "ord", "--", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let status = |args: &[&str]| {
        let out = env.cmd().args(args).output().unwrap();
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["name"], "ord", "{args:?}: {v}");
        assert_eq!(v["last"]["last_outcome"], "ok", "{args:?}: {v}");
    };
    status(&["--status", "--json", "ord"]);
    status(&["--json", "--status", "ord"]);
    status(&["--status", "ord", "--json"]);
    status(&["--json", "--status", "--", "ord"]);
    let out = env.cmd().args(["--status", "--json", "ord", "extra"]).output().unwrap();
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("--status: unexpected argument 'extra'"), "{}", stderr(&out));
    // options after NAME are still runonce's
    status(&["--status", "--json", "ord", "--busy-exit", "0"]);
}
