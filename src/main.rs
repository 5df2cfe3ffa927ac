//! The `runonce` binary.  `no_main` keeps Rust's runtime from touching the
//! process before runonce looks at it: std's start-up would set SIGPIPE to
//! "ignore" (so runonce could not tell whether its caller ignored it, which
//! the job must inherit) and would reopen closed stdio on /dev/null.
#![no_main]

/// The C entry point.
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    libc::c_int::from(runonce::entry())
}
