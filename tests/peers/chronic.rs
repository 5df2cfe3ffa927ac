//! chronic(1) from moreutils, as its man page and script document it,
//! with `chronic COMMAND` written `runonce -q -- COMMAND`.  chronic has no
//! test suite of its own; these are the behaviours its man page promises.
//!
//! | case | chronic | runonce -q | result |
//! |---|---|---|---|
//! | success | output hidden, exit 0 | same | pass |
//! | exits nonzero | stdout and stderr shown, the command's exit status | same | pass |
//! | stdout to stdout, stderr to stderr | yes | yes | pass |
//! | standard input | passed to the command | same | pass |
//! | crashes (killed by a signal) | output shown, exit 1 | output shown, exit 128+N | difference |
//! | order of the output | all of stdout, then all of stderr | in the order it was written (tested in `observe::quiet_keeps_the_order_and_spills_big_output`) | difference |
//! | `-v` | labels STDOUT:/STDERR:, prints RETVAL | no such option; the record has the exit status | difference |
//! | `-e` | output on any stderr, exit 2 | no such option | difference |
//!
//! 8 cases: 4 pass, 4 documented differences (man page, COMPATIBILITY).

use std::io::Write;
use std::process::Stdio;

use crate::util::*;

const NOISY: &str = "echo out; echo err >&2";

#[test]
fn success_is_silent() {
    let env = Env::new();
    let o = env.run(&["-q", "--", "sh", "-c", NOISY]);
    assert_eq!(code(&o), 0);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("", ""));
}

#[test]
fn failure_shows_each_stream_where_it_belongs_with_the_exit_status() {
    let env = Env::new();
    let o = env.run(&["-q", "--", "sh", "-c", &format!("{NOISY}; exit 3")]);
    assert_eq!(code(&o), 3);
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
}

#[test]
fn standard_input_reaches_the_command() {
    let env = Env::new();
    let mut child = env
        .cmd()
        .args(["-q", "--", "sh", "-c", "cat; exit 1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"from stdin\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 1);
    assert_eq!(stdout(&o), "from stdin\n");
}

#[test]
fn crash_shows_the_output_with_128_plus_n() {
    let env = Env::new();
    let o = env.run(&["-q", "--", "sh", "-c", &format!("{NOISY}; kill -USR1 $$")]);
    assert_eq!(code(&o), 128 + libc::SIGUSR1, "chronic would exit 1");
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
}
