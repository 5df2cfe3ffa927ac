//! The `runonce` binary.  `no_main` keeps Rust's runtime from touching the
//! process before runonce looks at it: std's start-up would set SIGPIPE to
//! "ignore" (so runonce could not tell whether its caller ignored it, which
//! the job must inherit) and would reopen closed stdio on /dev/null.
#![no_main]

/// The C entry point.  The arguments are taken from `argv` here: std fills
/// `env::args` from glibc's `.init_array` call, which other C libraries do
/// not make.
///
/// # Safety
/// Called by the C runtime only, with `argc` valid strings in `argv`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    // SAFETY: the C runtime passes `argc` valid NUL-terminated strings.
    let args = unsafe { runonce::sys::args(argc, argv) };
    libc::c_int::from(runonce::entry(args).code())
}
