//! Thin, safe wrappers over the Linux system calls runonce needs and std does
//! not offer, on nix where nix has them.  All `unsafe` outside the
//! fork-to-exec window lives here, where nix has nothing that fits: pidfds,
//! wait4's resource use, real-time signals (nix's `Signal` has none, so
//! signal sets, dispositions, kill and the signalfd stay raw), poll on raw
//! descriptors, reads and writes on stdio, and main's argv.

use std::ffi::{CStr, OsStr, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::prctl;
use nix::sys::wait::{Id, WaitPidFlag, waitid, waitpid};
use nix::time::{ClockId, clock_gettime};
use nix::unistd::pipe2;

/// Turns a -1 return into the errno as an `io::Error`.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// The command line as `main(argc, argv)` receives it.
///
/// # Safety
/// `argv` must point to `argc` pointers, each null or to a NUL-terminated
/// string that lives as long as the process (as the C runtime passes them).
pub unsafe fn args(argc: libc::c_int, argv: *const *const libc::c_char) -> Vec<OsString> {
    let count = usize::try_from(argc).unwrap_or(0);
    let mut args = Vec::with_capacity(count);
    for i in 0..count {
        // SAFETY: within the `argc` pointers the caller vouches for.
        let p = unsafe { *argv.add(i) };
        if p.is_null() {
            break;
        }
        // SAFETY: a non-null argv entry is a NUL-terminated string.
        let arg = unsafe { CStr::from_ptr(p) };
        args.push(OsStr::from_bytes(arg.to_bytes()).to_owned());
    }
    args
}

/// Nanoseconds on CLOCK_MONOTONIC: the same clock for every process of the
/// machine, so a deadline written into the lock file means the same to the
/// next runonce, and a change of the wall clock does not move it.
pub fn monotonic_ns() -> u64 {
    // the monotonic clock always exists on Linux
    clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(0, |ts| {
        u64::try_from(ts.tv_sec()).unwrap_or(0) * 1_000_000_000
            + u64::try_from(ts.tv_nsec()).unwrap_or(0)
    })
}

/// The process's current disposition of `sig` is SIG_IGN.
pub fn signal_ignored(sig: i32) -> bool {
    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only queries; the kernel fills `old`.
    let ret = unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) };
    // SAFETY: zero-initialised and, on success, filled by the kernel.
    ret == 0 && unsafe { old.assume_init() }.sa_sigaction == libc::SIG_IGN
}

/// Sets the disposition of `sig` to SIG_DFL or SIG_IGN.
pub fn set_disposition(sig: i32, ignore: bool) {
    let handler = if ignore { libc::SIG_IGN } else { libc::SIG_DFL };
    // SAFETY: SIG_DFL/SIG_IGN are not function pointers into our code, so
    // no handler can run; signal() is async-signal-safe.
    unsafe { libc::signal(sig, handler) };
}

/// A set of signals.
#[derive(Clone, Copy)]
pub struct SigSet(libc::sigset_t);

impl SigSet {
    pub fn of(signals: &[i32]) -> SigSet {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set; sigaddset only fails for
        // invalid numbers, which callers never pass.
        unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            for &s in signals {
                libc::sigaddset(set.as_mut_ptr(), s);
            }
            SigSet(set.assume_init())
        }
    }

    pub fn as_ptr(&self) -> *const libc::sigset_t {
        &self.0
    }

    /// Blocks these signals in the calling thread (threads started later
    /// inherit the mask, so nothing else sees them).
    pub fn block(&self) -> io::Result<()> {
        // SAFETY: valid set; a null old-set pointer is allowed.
        let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &self.0, std::ptr::null_mut()) };
        if ret == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(ret)) }
    }
}

/// A signalfd for the given set (which must be blocked).
pub fn signalfd(set: &SigSet) -> io::Result<OwnedFd> {
    // SAFETY: -1 asks for a new fd; the set is valid.
    let fd = check(unsafe { libc::signalfd(-1, &set.0, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) })?;
    // SAFETY: signalfd returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A signal read from a signalfd.
#[derive(Clone, Copy, Debug)]
pub struct Received {
    pub signo: i32,
    /// SI_KERNEL when the kernel sent it, e.g. the terminal's ^C.
    pub code: i32,
    /// The sending process (0 if the kernel, or outside our PID namespace).
    pub sender: i32,
}

/// One pending signal from a signalfd.
pub fn read_signal(fd: &OwnedFd) -> Option<Received> {
    let mut info = MaybeUninit::<libc::signalfd_siginfo>::zeroed();
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    loop {
        // SAFETY: reading at most `size` bytes into our buffer.
        let n = unsafe { libc::read(fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
        if n == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if n != size as isize {
            return None;
        }
        // SAFETY: the kernel filled the whole struct.
        let info = unsafe { info.assume_init() };
        return Some(Received {
            signo: info.ssi_signo as i32,
            code: info.ssi_code,
            sender: info.ssi_pid as i32,
        });
    }
}

/// poll(2) that retries on EINTR.  `timeout` None blocks.
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = match timeout {
        None => -1,
        // round up: a deadline 0.3 ms away must not spin with timeout 0
        Some(t) => i32::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX),
    };
    loop {
        // SAFETY: the slice is valid for its length.
        let ret = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        match check(ret) {
            Ok(n) => return Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

pub fn pollfd(fd: RawFd, events: i16) -> libc::pollfd {
    libc::pollfd { fd, events, revents: 0 }
}

/// Makes runonce a child subreaper: descendants whose parent dies are
/// re-parented to runonce instead of init, so it can find and reap them.
pub fn become_subreaper() -> io::Result<()> {
    Ok(prctl::set_child_subreaper(true)?)
}

/// kill(2); ESRCH (already gone) is not an error.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill takes plain integers.
    match check(unsafe { libc::kill(pid, sig) }) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// The process group of `pid`; None if there is no such process.
pub fn getpgid(pid: i32) -> Option<i32> {
    // SAFETY: getpgid only reads the kernel's process table.
    let pgid = unsafe { libc::getpgid(pid) };
    (pgid >= 0).then_some(pgid)
}

/// A pidfd: a handle that keeps naming one process even if its PID is reused.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open(pid, flags) returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> io::Result<()> {
    // SAFETY: a valid pidfd, a null siginfo and no flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<u8>(),
            0,
        )
    };
    if ret < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ESRCH) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}

/// The cgroup v2 ID (the inode of its directory) of the process a pidfd
/// names: PIDFD_GET_INFO, Linux 6.13.  Err(ESRCH) once it is reaped,
/// Err(ENOTTY or EINVAL) where the kernel has no such request.
pub fn pidfd_cgroup_id(pidfd: &OwnedFd) -> io::Result<u64> {
    /// `struct pidfd_info` as of Linux 6.13 (PIDFD_INFO_SIZE_VER0).
    #[repr(C)]
    #[derive(Default)]
    struct PidfdInfo {
        mask: u64,
        cgroupid: u64,
        ids: [u32; 11],
        spare: u32,
    }
    const PIDFD_INFO_CGROUPID: u64 = 1 << 2;
    // _IOWR(PIDFS_IOCTL_MAGIC 0xFF, 11, struct pidfd_info of 64 bytes)
    const PIDFD_GET_INFO: libc::c_ulong = 0xC040_FF0B;
    let mut info = PidfdInfo { mask: PIDFD_INFO_CGROUPID, ..PidfdInfo::default() };
    // SAFETY: the request's size is that of `info`, which the kernel fills.
    check(unsafe { libc::ioctl(pidfd.as_raw_fd(), PIDFD_GET_INFO, &mut info) })?;
    if info.mask & PIDFD_INFO_CGROUPID == 0 {
        return Err(io::Error::from_raw_os_error(libc::ENOTTY));
    }
    Ok(info.cgroupid)
}

/// How a reaped child ended, and what it used.
#[derive(Clone, Copy, Debug)]
pub struct Reaped {
    pub pid: i32,
    pub status: i32,
    pub rusage: libc::rusage,
}

impl Reaped {
    pub fn exit_code(&self) -> Option<i32> {
        libc::WIFEXITED(self.status).then(|| libc::WEXITSTATUS(self.status))
    }
    pub fn signal(&self) -> Option<i32> {
        libc::WIFSIGNALED(self.status).then(|| libc::WTERMSIG(self.status))
    }
}

/// Reaps one exited child without blocking.  Ok(None): children exist but
/// none has exited; Err(ECHILD): no children at all.
pub fn reap_any() -> io::Result<Option<Reaped>> {
    let mut status = 0;
    let mut rusage = MaybeUninit::<libc::rusage>::zeroed();
    loop {
        // SAFETY: valid out-pointers for status and rusage.
        let pid = unsafe { libc::wait4(-1, &mut status, libc::WNOHANG, rusage.as_mut_ptr()) };
        match pid {
            0 => return Ok(None),
            -1 => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            pid => {
                // SAFETY: wait4 filled rusage for the reaped child.
                let rusage = unsafe { rusage.assume_init() };
                return Ok(Some(Reaped { pid, status, rusage }));
            }
        }
    }
}

/// Whether this process has any child, running or a zombie.
pub fn has_children() -> bool {
    // WNOWAIT leaves any zombie unreaped
    let flags =
        WaitPidFlag::WEXITED | WaitPidFlag::WSTOPPED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    loop {
        match waitid(Id::All, flags) {
            Ok(_) => return true,
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => return false,
            // cannot tell: the caller then looks, as it would have anyway
            Err(_) => return true,
        }
    }
}

pub fn timeval_secs(tv: libc::timeval) -> f64 {
    tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6
}

/// Sets O_NONBLOCK on a descriptor we alone use.
pub fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(&fd, FcntlArg::F_GETFL)?);
    fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// A close-on-exec copy of `fd` numbered `min` or above.
pub fn dup_above(fd: &impl AsFd, min: RawFd) -> io::Result<OwnedFd> {
    let new = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(min))?;
    // SAFETY: fcntl just made this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Reaps the child `pid`, waiting for it to exit.
pub fn wait_pid(pid: i32) {
    while waitpid(nix::unistd::Pid::from_raw(pid), None) == Err(Errno::EINTR) {}
}

/// A pipe whose both ends are close-on-exec.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(pipe2(OFlag::O_CLOEXEC)?)
}

/// write(2) once, retrying EINTR; returns bytes written.
pub fn write_fd(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Writes all of `buf`, giving up at the first error.
pub fn write_all_fd(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match write_fd(fd, buf)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => buf = &buf[n..],
        }
    }
    Ok(())
}

/// read(2) once, retrying EINTR.
pub fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// One malloc arena for every thread: the records thread (recorder.rs)
/// allocates little, and an arena of its own would cost a 64 MiB mapping,
/// its page faults and resident pages in every run (bench/RESULTS.md,
/// "footprint").
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn one_malloc_arena() {
    // SAFETY: mallopt only sets a tunable of glibc's allocator; called
    // before any other thread exists.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn one_malloc_arena() {}

/// If any of fds 0, 1, 2 is closed, holds its number with /dev/null,
/// close-on-exec: files runonce opens later can then never land on them (a
/// job's output must not end up in a lock or state file), while the job
/// still starts with that descriptor closed, as it would without runonce.
pub fn hold_closed_stdio() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            // SAFETY: open of a constant path; the lowest free number is
            // `fd` because lower ones are open by now.
            let got = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
            if got != fd && got >= 0 {
                // SAFETY: moving our own fresh fd to the free number.
                unsafe {
                    libc::dup3(got, fd, libc::O_CLOEXEC);
                    libc::close(got);
                }
            }
        }
    }
}

pub fn getuid() -> u32 {
    nix::unistd::getuid().as_raw()
}

pub fn geteuid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

pub fn getpid() -> i32 {
    std::process::id() as i32
}

/// Soft and hard limit of a resource.
pub fn getrlimit(resource: libc::__rlimit_resource_t) -> (u64, u64) {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: fills the struct we own.
    unsafe { libc::getrlimit(resource, &mut rl) };
    (rl.rlim_cur, rl.rlim_max)
}

/// The effective capability set has `cap`: capget(2), one system call
/// (no libcap; /proc/self/status would be an open and a dozen reads).
pub fn has_capability(cap: u32) -> bool {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522; // 64-bit sets, two Data
    let mut header = Header { version: VERSION_3, pid: 0 };
    let mut data = [Data::default(); 2];
    // SAFETY: a version 3 header and the two Data it asks for.
    let ret = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    let Some(word) = data.get((cap / 32) as usize) else {
        return false;
    };
    ret == 0 && word.effective & (1 << (cap % 32)) != 0
}

/// Fills `buf` from the kernel's random generator (getrandom(2): no file
/// to open, unlike the getrandom crate's fallback in a static binary).
pub fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: the kernel writes at most `rest.len()` bytes into `rest`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match n {
            n if n > 0 => done += n as usize,
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => return Err(io::Error::last_os_error()),
        }
    }
    Ok(())
}

/// A small file of /proc or /sys, whole: read in 4 KiB blocks (std's
/// `read_to_string` probes a file that says it is empty 32 bytes at a time).
/// The filesystem type (statfs(2)'s f_type) of the mount holding `path`.
pub fn fs_magic(path: &std::path::Path) -> Option<i64> {
    nix::sys::statfs::statfs(path).ok().map(|s| s.filesystem_type().0)
}

pub fn read_small(path: &str) -> io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut text = Vec::new();
    let mut block = [0u8; 4096];
    loop {
        match read_fd(file.as_raw_fd(), &mut block)? {
            0 => break,
            n => text.extend_from_slice(&block[..n]),
        }
    }
    String::from_utf8(text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    /// capget agrees with the kernel's own CapEff line, bit for bit.
    #[test]
    fn capabilities_as_proc_says() {
        let status = super::read_small("/proc/self/status").unwrap();
        let eff = status.lines().find_map(|l| l.strip_prefix("CapEff:")).unwrap();
        let eff = u64::from_str_radix(eff.trim(), 16).unwrap();
        assert_ne!(eff, 0, "the tests run as root");
        for cap in 0..64 {
            assert_eq!(super::has_capability(cap), eff & (1 << cap) != 0, "capability {cap}");
        }
    }

    #[test]
    fn random_bytes_differ() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        super::fill_random(&mut a).unwrap();
        super::fill_random(&mut b).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }

    use super::*;

    #[test]
    fn monotonic_advances() {
        let a = monotonic_ns();
        std::thread::sleep(Duration::from_millis(2));
        assert!(monotonic_ns() > a);
    }

    #[test]
    fn args_are_argv_as_given() {
        let owned = [c"runonce", c"--", c"printf", c"a b", c"\xff\xfe"];
        let ptrs: Vec<*const libc::c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        // SAFETY: `ptrs` holds `len` pointers to strings that outlive the call.
        let got = unsafe { args(ptrs.len() as libc::c_int, ptrs.as_ptr()) };
        let bytes: Vec<&[u8]> = got.iter().map(|a| a.as_bytes()).collect();
        assert_eq!(bytes, [&b"runonce"[..], b"--", b"printf", b"a b", b"\xff\xfe"]);
        // SAFETY: zero pointers are read.
        assert!(unsafe { args(0, std::ptr::null()) }.is_empty());
    }

    #[test]
    fn pipe_round_trip() {
        let (r, w) = pipe().unwrap();
        write_all_fd(w.as_raw_fd(), b"hi").unwrap();
        let mut buf = [0; 4];
        assert_eq!(read_fd(r.as_raw_fd(), &mut buf).unwrap(), 2);
    }
}
