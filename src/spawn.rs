//! Starting the job's process: `clone3` straight into the job's cgroup v2,
//! sharing runonce's memory until the exec (as posix_spawn's vfork), else a
//! fork; then the set-up between the two, then exec.
//!
//! Why not std's `Command`: it cannot start a child inside a cgroup.  Moving
//! the child there afterwards (a write to `cgroup.procs`) takes the kernel's
//! cgroup-wide threadgroup lock for writing, which waits for an RCU grace
//! period: about 13 ms of every run on the machines measured
//! (bench/RESULTS.md).  `CLONE_INTO_CGROUP` (Linux 5.7) places the child as
//! it is made, under that lock's read side only.  Where the kernel refuses
//! it, a plain fork follows, and the child joins by writing `cgroup.procs`
//! itself, as before.
//!
//! Why shared memory (`CLONE_VM | CLONE_VFORK`, on x86_64): a fork copies
//! runonce's page tables, and every page runonce writes afterwards is
//! copied again on the fault; together about a tenth of a short run's CPU
//! (bench/RESULTS.md).  The child runs on a stack of its own, below a guard
//! page, while runonce's calling thread waits in the kernel until the exec;
//! it writes nothing of runonce's memory but the errno of a failed exec.
//!
//! What this keeps of std's `Command`: the program searched in `PATH` by
//! `execvp` in the child, the environment passed whole, the output streams
//! moved to 1 and 2, the new process group made in the child, and an exec
//! failure returned by `spawn` (so a missing program is an error of
//! `spawn`, not an exit status).

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
#[cfg(target_arch = "x86_64")]
use std::sync::atomic::{AtomicI32, Ordering};

use crate::sys;

/// clone3(2)'s flag: the child starts in the cgroup v2 `args.cgroup` names.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2, Linux 5.7).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// A program to start, prepared in full beforehand: the child only reads it.
pub struct Command {
    program: CString,
    /// Keeps the strings `argv` points into.
    _args: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    /// The job's environment, if it is not runonce's own unchanged.
    _env: Vec<CString>,
    envp: Option<Vec<*const libc::c_char>>,
    new_group: bool,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
}

/// A started child.
#[derive(Clone, Copy, Debug)]
pub struct Spawned {
    pub pid: i32,
    /// clone3 made it in the cgroup asked for: it need not join.
    pub placed: bool,
}

fn c_string(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "nul byte found in provided data"))
}

impl Command {
    /// `argv[0]` is looked up in `PATH` as execvp(3) does; `env` adds to or
    /// replaces runonce's own variables.
    pub fn new(argv: &[OsString], env: &[(String, String)]) -> io::Result<Command> {
        let args = argv.iter().map(|a| c_string(a)).collect::<io::Result<Vec<_>>>()?;
        let program = args.first().cloned().ok_or(io::ErrorKind::InvalidInput)?;
        let mut argv: Vec<_> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let vars = if env.is_empty() { Vec::new() } else { environment(env)? };
        let envp = (!env.is_empty()).then(|| {
            let mut p: Vec<_> = vars.iter().map(|v| v.as_ptr()).collect();
            p.push(std::ptr::null());
            p
        });
        Ok(Command {
            program,
            _args: args,
            argv,
            _env: vars,
            envp,
            new_group: false,
            stdout: None,
            stderr: None,
        })
    }

    /// The child leads a process group of its own.
    pub fn process_group(&mut self) {
        self.new_group = true;
    }

    /// The child's stdout (`dst` 1) or stderr (2) is `fd`.
    pub fn output(&mut self, dst: RawFd, fd: OwnedFd) -> io::Result<()> {
        // 0-2 may be closed in runonce (it keeps them so for the job), and
        // then a pipe can land on one of them: dup2 in the child would
        // overwrite one stream with the other
        let fd = if fd.as_raw_fd() <= 2 { sys::dup_above(&fd, 3)? } else { fd };
        *if dst == 1 { &mut self.stdout } else { &mut self.stderr } = Some(fd);
        Ok(())
    }

    /// Starts the program: made directly in `cgroup` (a cgroup v2
    /// directory) where the kernel can, else forked; `pre_exec(placed)`
    /// runs in the child just before exec.  Returns once the child has
    /// exec'd; an error of `pre_exec` or exec is returned here, the child
    /// reaped.
    ///
    /// # Safety
    /// `pre_exec` runs in the child of a multi-threaded process: it must
    /// be async-signal-safe (no allocation, no locks).
    pub unsafe fn spawn(
        &self,
        cgroup: Option<BorrowedFd>,
        pre_exec: &dyn Fn(bool) -> io::Result<()>,
    ) -> io::Result<Spawned> {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as this function's.
        if let Some(started) = unsafe { self.spawn_sharing_memory(cgroup, pre_exec) } {
            return started;
        }
        // refused (a kernel before 5.3, a cgroup that takes no process, no
        // memory for the stack): a fork, as before
        let (err_r, err_w) = sys::pipe()?;
        let spawned = fork_into(cgroup)?;
        if spawned.pid == 0 {
            let e = self.child(spawned.placed, pre_exec);
            let errno = e.raw_os_error().unwrap_or(libc::EINVAL).to_ne_bytes();
            // SAFETY: write(2) of a stack buffer and _exit(2): both
            // async-signal-safe; the parent reads the errno and reaps us.
            unsafe {
                libc::write(err_w.as_raw_fd(), errno.as_ptr().cast(), errno.len());
                libc::_exit(127)
            }
        }
        drop(err_w);
        let mut errno = [0u8; 4];
        let mut got = 0;
        // EOF when the exec closed the child's copy (close-on-exec)
        while got < errno.len() {
            match sys::read_fd(err_r.as_raw_fd(), &mut errno[got..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        if got == 0 {
            return Ok(spawned);
        }
        sys::wait_pid(spawned.pid);
        Err(io::Error::from_raw_os_error(i32::from_ne_bytes(errno)))
    }

    /// The child made by clone3 with `CLONE_VM | CLONE_VFORK` on a stack
    /// of its own: no copy of runonce's memory.  None where clone3 refuses
    /// (the caller forks instead).
    ///
    /// # Safety
    /// As `spawn`'s; moreover `pre_exec` must write no memory it did not
    /// get on its own stack: runonce's memory is the child's.
    #[cfg(target_arch = "x86_64")]
    unsafe fn spawn_sharing_memory(
        &self,
        cgroup: Option<BorrowedFd>,
        pre_exec: &dyn Fn(bool) -> io::Result<()>,
    ) -> Option<io::Result<Spawned>> {
        const CLONE_VM: u64 = libc::CLONE_VM as u64;
        const CLONE_VFORK: u64 = libc::CLONE_VFORK as u64;
        let stack = ChildStack::new(self.argv.len()).ok()?;
        let placed = cgroup.is_some();
        let start = Start { cmd: self, placed, pre_exec, errno: AtomicI32::new(0) };
        let args = CloneArgs {
            flags: CLONE_VM | CLONE_VFORK | if placed { CLONE_INTO_CGROUP } else { 0 },
            exit_signal: libc::SIGCHLD as u64,
            stack: stack.usable_start as u64,
            stack_size: stack.usable_len as u64,
            cgroup: cgroup.map_or(0, |dir| dir.as_raw_fd() as u64),
            ..CloneArgs::default()
        };
        // SAFETY: the child runs `start_child` on `stack` (kept until after
        // it exec'd or exited: CLONE_VFORK holds this thread till then) and
        // reads `start` only, but for its errno, an atomic.
        let pid = unsafe { clone3_calling(&args, start_child, std::ptr::from_ref(&start).cast()) };
        if pid < 0 {
            return None;
        }
        let pid = pid as i32;
        match start.errno.load(Ordering::Acquire) {
            0 => Some(Ok(Spawned { pid, placed })),
            errno => {
                sys::wait_pid(pid);
                Some(Err(io::Error::from_raw_os_error(errno)))
            }
        }
    }

    /// In the child: everything up to exec, which returns only on failure.
    fn child(&self, placed: bool, pre_exec: &dyn Fn(bool) -> io::Result<()>) -> io::Error {
        // SAFETY: dup2, setpgid and execvp(e) on descriptors and strings
        // prepared before the child was made.
        unsafe {
            for (dst, src) in [(1, &self.stdout), (2, &self.stderr)] {
                if let Some(fd) = src
                    && libc::dup2(fd.as_raw_fd(), dst) == -1
                {
                    return io::Error::last_os_error();
                }
            }
            if self.new_group && libc::setpgid(0, 0) == -1 {
                return io::Error::last_os_error();
            }
            if let Err(e) = pre_exec(placed) {
                return e;
            }
            // execvpe searches runonce's own PATH (`env` never sets one):
            // the environment is not runonce's to change, its memory being
            // the child's
            match &self.envp {
                Some(envp) => {
                    libc::execvpe(self.program.as_ptr(), self.argv.as_ptr(), envp.as_ptr())
                }
                None => libc::execvp(self.program.as_ptr(), self.argv.as_ptr()),
            };
        }
        io::Error::last_os_error()
    }
}

/// What the child made with shared memory needs: it reads all but `errno`,
/// which it sets if it cannot exec.
#[cfg(target_arch = "x86_64")]
struct Start<'a> {
    cmd: &'a Command,
    placed: bool,
    pre_exec: &'a dyn Fn(bool) -> io::Result<()>,
    errno: AtomicI32,
}

/// The child's first function, on its own stack; never returns.
#[cfg(target_arch = "x86_64")]
extern "C" fn start_child(start: *const libc::c_void) -> ! {
    // SAFETY: `start` is the parent's `Start`, alive until this child has
    // exec'd or exited (the parent waits in clone3 till then).
    let start = unsafe { &*start.cast::<Start>() };
    let e = start.cmd.child(start.placed, start.pre_exec);
    let errno = e.raw_os_error().filter(|&n| n != 0).unwrap_or(libc::EINVAL);
    start.errno.store(errno, Ordering::Release);
    // SAFETY: _exit(2) ends this child alone (no CLONE_THREAD).
    unsafe { libc::_exit(127) }
}

/// clone3(2) whose child calls `f(arg)` on the stack `args` gives it (the
/// C library has no clone3 wrapper): the child's pid, or -errno.
///
/// # Safety
/// `args` must give a valid stack the child may use until it exits or
/// execs, and `f` must never return.
#[cfg(target_arch = "x86_64")]
unsafe fn clone3_calling(
    args: &CloneArgs,
    f: extern "C" fn(*const libc::c_void) -> !,
    arg: *const libc::c_void,
) -> isize {
    let ret: isize;
    // SAFETY: the syscall reads `args` only; in the child (rax 0) the
    // kernel has set rsp to the top of the new stack, where `f` is called
    // with `arg` (rdi) and a 16-byte aligned stack, no frame to return to.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "and rsp, -16",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 as isize => ret,
            in("rdi") std::ptr::from_ref(args),
            in("rsi") size_of::<CloneArgs>(),
            in("r12") arg,
            in("r13") f,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// The stack of a child made with shared memory: mapped for it, a guard
/// page below (an overflow faults instead of writing runonce's memory).
#[cfg(target_arch = "x86_64")]
struct ChildStack {
    map: *mut libc::c_void,
    len: usize,
    usable_start: usize,
    usable_len: usize,
}

#[cfg(target_arch = "x86_64")]
impl ChildStack {
    const PAGE: usize = 4096;

    /// Room for the set-up and for execvp, which copies argv onto the
    /// stack to run a script without `#!` through sh (glibc's posix_spawn
    /// sizes its stack so too).
    fn new(argc: usize) -> io::Result<ChildStack> {
        let usable =
            (256 * 1024 + argc * size_of::<*const libc::c_char>()).next_multiple_of(Self::PAGE);
        let len = usable + Self::PAGE;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE;
        // SAFETY: a new anonymous mapping; nothing else refers to it.
        let map = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0)
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack =
            ChildStack { map, len, usable_start: map as usize + Self::PAGE, usable_len: usable };
        // SAFETY: the lowest page of our own mapping.
        if unsafe { libc::mprotect(map, Self::PAGE, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }
}

#[cfg(target_arch = "x86_64")]
impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: our own mapping, which no child uses any more (it has
        // exec'd or exited before clone3 returned).
        unsafe { libc::munmap(self.map, self.len) };
    }
}

/// runonce's environment with `env` set over it, as `NAME=value` strings.
fn environment(env: &[(String, String)]) -> io::Result<Vec<CString>> {
    let mut vars: Vec<(OsString, OsString)> =
        std::env::vars_os().filter(|(k, _)| !env.iter().any(|(n, _)| k == n.as_str())).collect();
    vars.extend(env.iter().map(|(k, v)| (k.into(), v.into())));
    vars.into_iter()
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.as_bytes());
            c_string(OsStr::from_bytes(&kv))
        })
        .collect()
}

/// A child process, made in `cgroup` if the kernel can (`placed`); pid 0
/// in the child.  Any refusal of clone3 (ENOSYS before Linux 5.3, E2BIG or
/// EINVAL before 5.7, EOPNOTSUPP or EBUSY for a cgroup that cannot take
/// processes, a permission or limit of the cgroup) falls back to fork: the
/// child's own write to `cgroup.procs` then meets the same refusal and
/// reports it as every join failure is reported.
fn fork_into(cgroup: Option<BorrowedFd>) -> io::Result<Spawned> {
    if let Some(dir) = cgroup {
        let args = CloneArgs {
            flags: CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: dir.as_raw_fd() as u64,
            ..CloneArgs::default()
        };
        // SAFETY: clone3 without CLONE_VM is a fork: the child gets a copy
        // of this address space and returns here with 0.  Only the calling
        // thread exists in the child, which then makes async-signal-safe
        // calls only (std's Command makes the same raw clone3 call).
        let pid = unsafe {
            libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, size_of::<CloneArgs>())
        };
        if pid >= 0 {
            return Ok(Spawned { pid: pid as i32, placed: true });
        }
    }
    // SAFETY: the child makes async-signal-safe calls only until exec.
    let pid = unsafe { libc::fork() };
    if pid == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(Spawned { pid, placed: false })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::fd::{AsFd, FromRawFd};
    use std::path::{Path, PathBuf};

    fn argv(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    fn exit_code(pid: i32) -> i32 {
        let mut status = 0;
        // SAFETY: a valid out-pointer; the pid is this test's child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        libc::WEXITSTATUS(status)
    }

    /// Runs `sh -c script` with `cgroup`; the Spawned, its exit status.
    fn run(script: &str, cgroup: Option<BorrowedFd>) -> (Spawned, i32) {
        let cmd = Command::new(&argv(&["sh", "-c", script]), &[]).unwrap();
        // SAFETY: the closure does nothing.
        let s = unsafe { cmd.spawn(cgroup, &|_| Ok(())) }.unwrap();
        (s, exit_code(s.pid))
    }

    /// A fresh cgroup v2 directory, where the tests run as root on a
    /// kernel with one (removed on drop).
    struct TestCgroup(PathBuf);

    impl TestCgroup {
        fn new(name: &str) -> Option<TestCgroup> {
            let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
            let mount = info.lines().find_map(|l| {
                let (left, right) = l.split_once(" - ")?;
                right.starts_with("cgroup2 ").then(|| left.split(' ').nth(4).map(PathBuf::from))?
            })?;
            let dir = mount.join(format!("runonce-spawn-test-{name}-{}", std::process::id()));
            fs::create_dir(&dir).ok()?;
            Some(TestCgroup(dir))
        }

        fn open(&self) -> OwnedFd {
            fs::File::open(&self.0).unwrap().into()
        }
    }

    impl Drop for TestCgroup {
        fn drop(&mut self) {
            let _ = fs::remove_dir(&self.0);
        }
    }

    fn cgroup_line(file: &Path) -> String {
        let text = fs::read_to_string(file).unwrap();
        text.lines().find(|l| l.starts_with("0::")).unwrap_or_default().to_string()
    }

    /// clone3 makes the child in the cgroup: it is there from its first
    /// instruction, and nothing had to move it.
    #[test]
    fn made_in_the_cgroup_asked_for() {
        let Some(cg) = TestCgroup::new("into") else {
            eprintln!("SKIP spawn::made_in_the_cgroup_asked_for: no cgroup v2 to write");
            return;
        };
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("cgroup");
        let dir = cg.open();
        let (s, code) =
            run(&format!("cat /proc/self/cgroup > {}", out.display()), Some(dir.as_fd()));
        assert_eq!(code, 0);
        assert!(s.placed, "clone3 did not place the child");
        let name = cg.0.file_name().unwrap().to_string_lossy().into_owned();
        assert!(cgroup_line(&out).ends_with(&format!("/{name}")), "{}", cgroup_line(&out));
    }

    /// Where clone3 refuses (here: the descriptor is no cgroup), a fork
    /// starts the child all the same, in runonce's own cgroup, and says so.
    #[test]
    fn refused_clone3_falls_back_to_fork() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("cgroup");
        let not_a_cgroup: OwnedFd = fs::File::open(t.path()).unwrap().into();
        let (s, code) =
            run(&format!("cat /proc/self/cgroup > {}", out.display()), Some(not_a_cgroup.as_fd()));
        assert_eq!(code, 0);
        assert!(!s.placed);
        assert_eq!(cgroup_line(&out), cgroup_line(Path::new("/proc/self/cgroup")));
        let (s, _) = run("true", None);
        assert!(!s.placed, "no cgroup asked for");
    }

    /// exec's failure is spawn's error, with the errno, as with std.
    #[test]
    fn exec_failure_is_an_error() {
        let cmd = Command::new(&argv(&["/nonexistent/runonce-test"]), &[]).unwrap();
        // SAFETY: the closure does nothing.
        let e = unsafe { cmd.spawn(None, &|_| Ok(())) }.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let t = tempfile::tempdir().unwrap();
        let cmd = Command::new(&argv(&[t.path().to_str().unwrap()]), &[]).unwrap();
        // SAFETY: as above.
        let e = unsafe { cmd.spawn(None, &|_| Ok(())) }.unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EACCES));
    }

    /// A set-up step that fails stops the child before exec; its error is
    /// spawn's, and `placed` reaches it.
    #[test]
    fn pre_exec_runs_in_the_child_and_its_failure_is_returned() {
        let t = tempfile::tempdir().unwrap();
        let marker = t.path().join("ran");
        let cmd =
            Command::new(&argv(&["sh", "-c", &format!(": > {}", marker.display())]), &[]).unwrap();
        // SAFETY: the closure makes no call at all.
        let e = unsafe {
            cmd.spawn(None, &|placed| {
                Err(io::Error::from_raw_os_error(if placed { libc::EDOM } else { libc::ERANGE }))
            })
        }
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ERANGE), "forked: not placed");
        assert!(!marker.exists(), "exec'd after a failed set-up");
    }

    /// The child shares runonce's memory until its exec: the environment
    /// it gets is its own, runonce's stays as it was.
    #[test]
    fn the_jobs_environment_is_not_runonces() {
        let env = [("RUNONCE_SPAWN_ONLY_CHILD".to_string(), "1".to_string())];
        let cmd = Command::new(&argv(&["sh", "-c", "[ \"$RUNONCE_SPAWN_ONLY_CHILD\" = 1 ]"]), &env)
            .unwrap();
        // SAFETY: the closure does nothing.
        let s = unsafe { cmd.spawn(None, &|_| Ok(())) }.unwrap();
        assert_eq!(exit_code(s.pid), 0, "the child did not get its variable");
        assert_eq!(std::env::var_os("RUNONCE_SPAWN_ONLY_CHILD"), None);
    }

    /// A script without `#!` runs through sh, for which execvp copies the
    /// whole argv onto the child's stack: the stack grows with argv.
    #[test]
    fn a_long_argv_fits_the_childs_stack() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let script = t.path().join("no-shebang");
        fs::write(&script, "exit 7\n").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let mut words = vec![script.into_os_string()];
        words.extend(std::iter::repeat_n(OsString::from("x"), 100_000));
        let cmd = Command::new(&words, &[]).unwrap();
        // SAFETY: the closure does nothing.
        let s = unsafe { cmd.spawn(None, &|_| Ok(())) }.unwrap();
        let mut status = 0;
        // SAFETY: a valid out-pointer; the pid is this test's child.
        assert_eq!(unsafe { libc::waitpid(s.pid, &mut status, 0) }, s.pid);
        assert!(libc::WIFEXITED(status), "the child died of signal {}", libc::WTERMSIG(status));
        assert_eq!(libc::WEXITSTATUS(status), 7);
    }

    /// The environment given is added over runonce's own; the program is
    /// found in PATH; output goes where asked, even from descriptors 0-2.
    #[test]
    fn environment_path_and_output() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let env = [("RUNONCE_SPAWN_TEST".to_string(), "x y".to_string())];
        let mut cmd = Command::new(
            &argv(&["sh", "-c", "echo \"$RUNONCE_SPAWN_TEST|${PATH:+path}\"; echo err >&2"]),
            &env,
        )
        .unwrap();
        let file: OwnedFd = fs::File::create(&out).unwrap().into();
        cmd.output(1, sys::dup_above(&file, 3).unwrap()).unwrap();
        cmd.output(2, file).unwrap();
        // SAFETY: the closure does nothing.
        let s = unsafe { cmd.spawn(None, &|_| Ok(())) }.unwrap();
        assert_eq!(exit_code(s.pid), 0);
        assert_eq!(fs::read_to_string(&out).unwrap(), "x y|path\nerr\n");
    }

    /// With 0-2 closed, a pipe can land on 1 or 2 (runonce holds them with
    /// /dev/null, sys::hold_closed_stdio, but `Command` must not count on
    /// it): each stream still reaches its own pipe, though the one meant
    /// for stdout sits on 2 and the one for stderr on 1.  The descriptors
    /// are set up in a test process of its own (this test binary again),
    /// whose 1 and 2 may be replaced.
    #[test]
    fn outputs_given_on_1_and_2_are_not_crossed() {
        const DIR: &str = "RUNONCE_SPAWN_TEST_CROSSED";
        let name = "spawn::tests::outputs_given_on_1_and_2_are_not_crossed";
        let Some(dir) = std::env::var_os(DIR) else {
            let t = tempfile::tempdir().unwrap();
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args([name, "--exact", "--test-threads=1"])
                .env(DIR, t.path())
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "{status}");
            let got = fs::read_to_string(t.path().join("got")).unwrap();
            assert_eq!(got, "out\n|err\n", "stdout's pipe | stderr's pipe");
            return;
        };
        let (out_r, out_w) = sys::pipe().unwrap();
        let (err_r, err_w) = sys::pipe().unwrap();
        // SAFETY: dup2 onto this process's own 1 and 2 (/dev/null), which
        // the OwnedFds then own; nothing else here writes to them.
        let (on_2, on_1) = unsafe {
            assert_eq!(libc::dup2(out_w.as_raw_fd(), 2), 2);
            assert_eq!(libc::dup2(err_w.as_raw_fd(), 1), 1);
            (OwnedFd::from_raw_fd(2), OwnedFd::from_raw_fd(1))
        };
        drop((out_w, err_w));
        let mut cmd = Command::new(&argv(&["sh", "-c", "echo out; echo err >&2"]), &[]).unwrap();
        cmd.output(1, on_2).unwrap();
        cmd.output(2, on_1).unwrap();
        // SAFETY: the closure does nothing.
        let s = unsafe { cmd.spawn(None, &|_| Ok(())) }.unwrap();
        assert_eq!(exit_code(s.pid), 0);
        drop(cmd);
        let read = |fd: OwnedFd| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut fs::File::from(fd), &mut text).unwrap();
            text
        };
        let got = format!("{}|{}", read(out_r), read(err_r));
        fs::write(Path::new(&dir).join("got"), got).unwrap();
    }

    /// The job's environment is runonce's with the given variables set over
    /// it: each given one once, with its new value, every other one as it
    /// was (read from the job's /proc/self/environ, the block exec got).
    #[test]
    fn given_variables_replace_runonces_and_the_others_pass() {
        let (kept, value) = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .find(|(k, _)| k != "PATH" && k != "RUNONCE_SPAWN_TEST")
            .expect("a variable besides PATH in the test's environment");
        let path = "/usr/bin:/bin:/runonce-spawn-test";
        let given = [
            ("PATH".to_string(), path.to_string()),
            ("RUNONCE_SPAWN_TEST".to_string(), "1".to_string()),
        ];
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("environ");
        let mut cmd = Command::new(&argv(&["cat", "/proc/self/environ"]), &given).unwrap();
        cmd.output(1, fs::File::create(&out).unwrap().into()).unwrap();
        // SAFETY: the closure does nothing.
        let s = unsafe { cmd.spawn(None, &|_| Ok(())) }.unwrap();
        assert_eq!(exit_code(s.pid), 0);
        let block = fs::read(&out).unwrap();
        let vars: Vec<&[u8]> = block.split(|&b| b == 0).filter(|v| !v.is_empty()).collect();
        let named = |name: &str| -> Vec<String> {
            let prefix = format!("{name}=");
            vars.iter()
                .filter_map(|v| v.strip_prefix(prefix.as_bytes()))
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect()
        };
        assert_eq!(named("PATH"), [path]);
        assert_eq!(named("RUNONCE_SPAWN_TEST"), ["1"]);
        assert_eq!(named(&kept), [value]);
        assert_eq!(vars.len(), std::env::vars_os().count() + 1, "PATH replaced, one added");
    }

    /// Where the child's own stack cannot be mapped (runonce under a tight
    /// RLIMIT_AS), a plain clone3 still makes the child in the cgroup, a
    /// child a plain waitpid reaps (SIGCHLD) even if it fails before exec.  Run in a test process of its
    /// own (this test binary again), whose address space is capped just
    /// above what it maps now.
    #[test]
    fn without_room_for_its_stack_the_child_is_still_placed() {
        const DIR: &str = "RUNONCE_SPAWN_TEST_NO_STACK";
        let name = "spawn::tests::without_room_for_its_stack_the_child_is_still_placed";
        let Some(dir) = std::env::var_os(DIR) else {
            let Some(cg) = TestCgroup::new("nostack") else {
                eprintln!("SKIP {name}: no cgroup v2 to write");
                return;
            };
            let t = tempfile::tempdir().unwrap();
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args([name, "--exact", "--test-threads=1"])
                .env(DIR, t.path())
                .env("RUNONCE_SPAWN_TEST_CGROUP", &cg.0)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "{status}");
            let got = fs::read_to_string(t.path().join("got")).unwrap();
            let cgroup = fs::read_to_string(t.path().join("cgroup")).unwrap();
            let cg_name = cg.0.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(got, "placed=true exit=0 unreaped=false", "cgroup: {cgroup}");
            assert!(cgroup.contains(&format!("0::/{cg_name}\n")), "{cgroup}");
            return;
        };
        let dir = PathBuf::from(dir);
        let cgroup =
            fs::File::open(std::env::var_os("RUNONCE_SPAWN_TEST_CGROUP").unwrap()).unwrap();
        let mut cmd = Command::new(&argv(&["cat", "/proc/self/cgroup"]), &[]).unwrap();
        cmd.output(1, fs::File::create(dir.join("cgroup")).unwrap().into()).unwrap();
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let vm_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmSize:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit/setrlimit on this test process, valid pointers.
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_AS, &mut old), 0);
            let tight = libc::rlimit { rlim_cur: (vm_kib + 64) * 1024, rlim_max: old.rlim_max };
            assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &tight), 0);
        }
        // SAFETY: the closure does nothing.
        let s = unsafe { cmd.spawn(Some(cgroup.as_fd()), &|_| Ok(())) };
        // and one that fails before exec (which would reset its exit signal)
        let (pid_r, pid_w) = sys::pipe().unwrap();
        let w = pid_w.as_raw_fd();
        let failing = Command::new(&argv(&["true"]), &[]).unwrap();
        // SAFETY: the closure makes getpid(2) and write(2) calls only.
        let e = unsafe {
            failing.spawn(Some(cgroup.as_fd()), &|_| {
                let pid = libc::getpid().to_ne_bytes();
                libc::write(w, pid.as_ptr().cast(), pid.len());
                Err(io::Error::from_raw_os_error(libc::EDOM))
            })
        };
        // SAFETY: as above; the limit as it was.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &old) }, 0);
        let s = s.unwrap();
        assert_eq!(e.unwrap_err().raw_os_error(), Some(libc::EDOM));
        let mut pid = [0u8; 4];
        assert_eq!(sys::read_fd(pid_r.as_raw_fd(), &mut pid).unwrap(), 4);
        let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::zeroed();
        let flags = libc::WEXITED | libc::WNOHANG | libc::__WALL;
        let pid = i32::from_ne_bytes(pid) as libc::id_t;
        // SAFETY: a valid out-pointer; only looks for that child.
        let left = unsafe { libc::waitid(libc::P_PID, pid, info.as_mut_ptr(), flags) } == 0;
        let got = format!("placed={} exit={} unreaped={left}", s.placed, exit_code(s.pid));
        fs::write(dir.join("got"), got).unwrap();
    }

    /// The child's stack is unmapped once the child has exec'd: a caller
    /// that starts many jobs (retries, a long-lived runonce) does not grow
    /// by a stack a child.  Counted in a test process of its own (this test
    /// binary again), where no other test maps memory meanwhile.
    #[test]
    fn the_childs_stack_goes_once_it_has_execd() {
        const FLAG: &str = "RUNONCE_SPAWN_TEST_STACKS";
        let name = "spawn::tests::the_childs_stack_goes_once_it_has_execd";
        if std::env::var_os(FLAG).is_none() {
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args([name, "--exact", "--test-threads=1"])
                .env(FLAG, "1")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "{status}");
            return;
        }
        let vm_kib = || -> u64 {
            let status = fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find_map(|l| l.strip_prefix("VmSize:")).unwrap();
            line.trim().trim_end_matches("kB").trim().parse().unwrap()
        };
        let cmd = Command::new(&argv(&["true"]), &[]).unwrap();
        let start = || {
            // SAFETY: the closure does nothing.
            let s = unsafe { cmd.spawn(None, &|_| Ok(())) }.unwrap();
            assert_eq!(exit_code(s.pid), 0);
        };
        start();
        let before = vm_kib();
        (0..32).for_each(|_| start());
        let grown = vm_kib().saturating_sub(before);
        // a stack is 260 KiB: 32 of them would be 8 MiB
        assert!(grown < 2048, "{grown} KiB more after 32 children");
    }

    /// A child made by clone3 that fails before exec is reaped by spawn:
    /// it reports its end with SIGCHLD, as a fork's does, which a plain
    /// waitpid needs (clone(2), __WALL; exec resets it, a failure before
    /// exec does not).
    #[test]
    fn a_placed_child_that_fails_before_exec_is_reaped() {
        let Some(cg) = TestCgroup::new("reap") else {
            eprintln!("SKIP spawn::a_placed_child_that_fails_before_exec_is_reaped: no cgroup v2");
            return;
        };
        let (pid_r, pid_w) = sys::pipe().unwrap();
        let w = pid_w.as_raw_fd();
        let cmd = Command::new(&argv(&["true"]), &[]).unwrap();
        let dir = cg.open();
        // SAFETY: the closure makes getpid(2) and write(2) calls only.
        let e = unsafe {
            cmd.spawn(Some(dir.as_fd()), &|placed| {
                let pid = libc::getpid().to_ne_bytes();
                libc::write(w, pid.as_ptr().cast(), pid.len());
                Err(io::Error::from_raw_os_error(if placed { libc::EDOM } else { libc::ERANGE }))
            })
        }
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EDOM), "not placed by clone3");
        let mut pid = [0u8; 4];
        assert_eq!(sys::read_fd(pid_r.as_raw_fd(), &mut pid).unwrap(), 4);
        let pid = i32::from_ne_bytes(pid);
        let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::zeroed();
        let flags = libc::WEXITED | libc::WNOHANG | libc::__WALL;
        // SAFETY: a valid out-pointer; only looks for that child.
        let got = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, info.as_mut_ptr(), flags) };
        let err = io::Error::last_os_error();
        assert_eq!((got, err.raw_os_error()), (-1, Some(libc::ECHILD)), "left unreaped");
    }
}
