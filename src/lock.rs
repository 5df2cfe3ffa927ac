//! The job's lock: an flock on a file that is never deleted, holding the
//! holder's identity and deadline (cli.md section 2).
//!
//! The open file description is inherited by the job, so the lock is held
//! until every process of the job is gone, even if runonce itself is
//! SIGKILLed; the next runonce reads the orphan's recorded deadline and
//! enforces it (see `Holder`).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cgroup::{self, Cgroup};
use crate::procs::{self, ProcId};
use crate::sys;

/// The lock could not be used at all: runonce fails closed (exit 125).
#[derive(Debug)]
pub struct Unusable(pub String);

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Unusable {}

/// The default lock directory for this user (cli.md section 2).
pub fn default_dir() -> PathBuf {
    if sys::geteuid() == 0 {
        return PathBuf::from("/run/runonce");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => Path::new(&d).join("runonce"),
        _ => PathBuf::from(format!("/tmp/runonce-{}", sys::geteuid())),
    }
}

/// Creates the lock directory if it is missing (/run/runonce 0755, any
/// other 0700) and refuses one that another user could tamper with.
pub fn prepare_dir(dir: &Path) -> Result<(), Unusable> {
    let mode = if dir == Path::new("/run/runonce") { 0o755 } else { 0o700 };
    match fs::DirBuilder::new().recursive(false).mode(mode).create(dir) {
        Ok(()) => {
            // the umask may have taken bits away; the contract says this mode
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(mode));
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                fs::create_dir_all(parent).map_err(|e| {
                    Unusable(format!("lock dir {}: cannot create: {e}", dir.display()))
                })?;
            }
            return prepare_dir(dir);
        }
        Err(e) => {
            return Err(Unusable(format!("lock dir {}: cannot create: {e}", dir.display())));
        }
    }
    let meta = fs::symlink_metadata(dir)
        .map_err(|e| Unusable(format!("lock dir {}: {e}", dir.display())))?;
    if !meta.is_dir() {
        return Err(Unusable(format!("lock dir {}: not a directory", dir.display())));
    }
    if meta.uid() != sys::geteuid() {
        return Err(Unusable(format!(
            "lock dir {}: owned by uid {}, not by us (uid {}): refused",
            dir.display(),
            meta.uid(),
            sys::geteuid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Unusable(format!(
            "lock dir {}: writable by group or others (mode {:o}): refused",
            dir.display(),
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// The lock file of slot `slot` of a job.  Slot 0 is `NAME.lock`; others
/// are `NAME@N.lock` ('@' cannot occur in a name, so no job's slot file
/// collides with another job's).
pub fn slot_path(base: &Path, slot: u32) -> PathBuf {
    if slot == 0 {
        return base.to_path_buf();
    }
    let name = base.file_name().unwrap_or_default().to_string_lossy();
    let stem = name.strip_suffix(".lock").unwrap_or(&name);
    base.with_file_name(format!("{stem}@{slot}.lock"))
}

/// Opens (creating) a lock file, refusing symlinks and non-regular files.
fn open_lock_file(path: &Path) -> Result<File, Unusable> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                Unusable(format!("lock {}: is a symlink: refused", path.display()))
            } else {
                Unusable(format!("lock {}: cannot open: {e}", path.display()))
            }
        })?;
    let meta = file.metadata().map_err(|e| Unusable(format!("lock {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(Unusable(format!("lock {}: not a regular file: refused", path.display())));
    }
    // the XDG runtime dir spec lets a cleaner delete files there that are
    // not sticky; a deleted lock file would let a second instance in
    if meta.mode() & libc::S_ISVTX == 0 && meta.uid() == sys::geteuid() {
        let _ = file.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777 | 0o1000));
    }
    Ok(file)
}

/// True if `path` still names the file we have open (a cleaner may have
/// deleted or replaced it between our open and our lock).
fn still_named(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// A held lock.
pub struct Lock {
    pub file: File,
    pub path: PathBuf,
    pub slot: u32,
}

impl Lock {
    /// Records the holder in the lock file, for `--status`, skips and
    /// `--replace`.  One write at offset 0 of a terminated record.
    pub fn write_holder(&self, holder: &Holder) {
        let text = holder.to_text();
        use std::os::unix::fs::FileExt;
        if self.file.write_all_at(text.as_bytes(), 0).is_ok() {
            let _ = self.file.set_len(text.len() as u64);
        }
    }

    /// Releases the lock for every process sharing the open file
    /// description: for `--keep-orphans`, whose orphans inherited it.
    pub fn release_shared(&self) {
        sys::unlock(self.file.as_raw_fd());
    }
}

/// Tries every slot once.  Ok(None) if all are busy.
pub fn try_acquire(base: &Path, slots: u32) -> Result<Option<Lock>, Unusable> {
    for slot in 0..slots {
        let path = slot_path(base, slot);
        loop {
            let file = open_lock_file(&path)?;
            match file.try_lock() {
                Ok(()) if still_named(&file, &path) => {
                    return Ok(Some(Lock { file, path, slot }));
                }
                Ok(()) => continue, // the name now points elsewhere: lock that
                Err(TryLockError::WouldBlock) => break,
                Err(TryLockError::Error(e)) => {
                    return Err(Unusable(format!("lock {}: {e}", path.display())));
                }
            }
        }
    }
    Ok(None)
}

/// The waiters' queue of a job: `NAME.waiters` beside the slot-0 lock file.
/// Every `--wait` run holds a shared flock on it while it waits.
///
/// Why: on unlock, Linux wakes the blocked flock() waiters and lets them race
/// with whoever calls flock() next, so a waiter can lose, again and again, to
/// runs that merely try the lock (a tight cron loop).  A run that finds the
/// lock free but a waiter queued therefore yields (see `waiters_queued`):
/// waiters come before newcomers.  Among themselves waiters still race, each
/// with an equal chance at every release.  A dead waiter's flock vanishes
/// with it, so the queue can never be left stale.
pub fn queue_path(base: &Path) -> PathBuf {
    let name = base.file_name().unwrap_or_default().to_string_lossy();
    let stem = name.strip_suffix(".lock").unwrap_or(&name);
    base.with_file_name(format!("{stem}.waiters"))
}

/// Opens the queue file (creating it for a waiter).  None if it cannot be
/// used, or if another user owns it: a stranger's file must not be able to
/// make every run of the job skip.
fn open_queue(base: &Path, create: bool) -> Option<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(create)
        .create(create)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(queue_path(base))
        .ok()?;
    let meta = file.metadata().ok()?;
    (meta.is_file() && meta.uid() == sys::geteuid()).then_some(file)
}

/// Whether a `--wait` run is queued for this job.
pub fn waiters_queued(base: &Path) -> bool {
    open_queue(base, false).is_some_and(|q| matches!(q.try_lock(), Err(TryLockError::WouldBlock)))
}

/// What `seize` found.
pub enum Seized {
    /// Every slot file and the waiters' queue, locked: (path, open file).
    All(Vec<(PathBuf, File)>),
    /// This slot is held: the job runs.
    Busy(PathBuf),
    /// A run waits for the lock.
    Queued,
}

/// Locks every existing slot file of a job and its waiters' queue without
/// waiting, for `--forget`: while they are held no run of the job can
/// start, and a run that opened a file before it is unlinked notices when
/// it gets the lock (the path no longer names that file) and starts over.
pub fn seize(base: &Path) -> Result<Seized, Unusable> {
    let mut held = Vec::new();
    for slot in 0.. {
        let path = slot_path(base, slot);
        if fs::symlink_metadata(&path).is_err() {
            break;
        }
        let file = open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => held.push((path, file)),
            Err(TryLockError::WouldBlock) => return Ok(Seized::Busy(path)),
            Err(TryLockError::Error(e)) => {
                return Err(Unusable(format!("lock {}: {e}", path.display())));
            }
        }
    }
    if let Some(queue) = open_queue(base, false) {
        match queue.try_lock() {
            Ok(()) => held.push((queue_path(base), queue)),
            Err(TryLockError::WouldBlock) => return Ok(Seized::Queued),
            Err(TryLockError::Error(e)) => {
                return Err(Unusable(format!("{}: {e}", queue_path(base).display())));
            }
        }
    }
    Ok(Seized::All(held))
}

/// What a blocking wait for a lock ended with.
pub enum Waited {
    Got(Lock),
    TimedOut,
    /// A signal arrived while waiting (number).
    Signal(i32),
    /// The orphan holding slot 0 passed its deadline: enforce it, then wait again.
    OrphanDeadline,
}

/// Waits for any slot: one thread blocks in flock() per slot, so the lock is
/// taken the moment it is freed, without polling.  `signals` is runonce's
/// signalfd; `orphan_deadline` wakes the wait when an orphaned holder
/// outlives its recorded deadline.
pub fn wait_acquire(
    base: &Path,
    slots: u32,
    until: Option<Instant>,
    signals: &OwnedFd,
    orphan_deadline: Option<Instant>,
) -> Result<Waited, Unusable> {
    // held until this function returns: the lock is then ours, or we gave up
    let _queued = open_queue(base, true).filter(|q| q.lock_shared().is_ok());
    let (ready_r, ready_w) = sys::pipe().map_err(|e| Unusable(format!("pipe: {e}")))?;
    let ready_w = Arc::new(ready_w);
    let done = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel::<Result<Lock, Unusable>>();
    for slot in 0..slots {
        let path = slot_path(base, slot);
        let (tx, done, ready_w) = (tx.clone(), done.clone(), ready_w.clone());
        std::thread::spawn(move || {
            let result = block_on_slot(&path, slot, &done);
            if let Some(result) = result {
                let won = result.is_err() || !done.swap(true, Ordering::SeqCst);
                if won && tx.send(result).is_ok() {
                    let _ = sys::write_fd(ready_w.as_raw_fd(), b"x");
                }
                // a loser drops its lock here, at once
            }
        });
    }
    drop(tx);
    loop {
        let now = Instant::now();
        let deadline = [until, orphan_deadline].into_iter().flatten().min();
        if deadline.is_some_and(|d| d <= now) {
            done.store(true, Ordering::SeqCst);
            // a lock won in this very instant is still ours to use
            if let Ok(got) = rx.try_recv() {
                return got.map(Waited::Got);
            }
            return Ok(if orphan_deadline.is_some_and(|d| d <= now) {
                Waited::OrphanDeadline
            } else {
                Waited::TimedOut
            });
        }
        let mut fds = [
            sys::pollfd(ready_r.as_raw_fd(), libc::POLLIN),
            sys::pollfd(signals.as_raw_fd(), libc::POLLIN),
        ];
        sys::poll(&mut fds, deadline.map(|d| d - now))
            .map_err(|e| Unusable(format!("poll: {e}")))?;
        if fds[0].revents != 0
            && let Ok(got) = rx.recv()
        {
            return got.map(Waited::Got);
        }
        if fds[1].revents != 0 {
            while let Some(got) = sys::read_signal(signals) {
                if got.signo != libc::SIGCHLD {
                    done.store(true, Ordering::SeqCst);
                    return Ok(Waited::Signal(got.signo));
                }
            }
        }
    }
}

/// Blocks in flock() on one slot until it is ours, re-opening if the file
/// was replaced.  None once another slot has won.
fn block_on_slot(path: &Path, slot: u32, done: &AtomicBool) -> Option<Result<Lock, Unusable>> {
    loop {
        let file = match open_lock_file(path) {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        if let Err(e) = file.lock() {
            return Some(Err(Unusable(format!("lock {}: {e}", path.display()))));
        }
        if done.load(Ordering::SeqCst) {
            return None;
        }
        if still_named(&file, path) {
            return Some(Ok(Lock { file, path: path.to_path_buf(), slot }));
        }
    }
}

/// Who holds a lock: what the lock file says, checked against /proc.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Holder {
    pub name: String,
    pub runonce: Option<ProcId>,
    pub job: Option<ProcId>,
    /// Wall-clock start of the run, seconds since the epoch.
    pub started_unix: f64,
    /// CLOCK_MONOTONIC deadline in ns (0: none).
    pub deadline_mono_ns: u64,
    pub uid: u32,
    /// The job's cgroup: one directory per hierarchy (one `cgroup=` line
    /// each), so that the next runonce can kill and remove what a
    /// SIGKILLed runonce left behind.
    pub cgroups: Vec<String>,
}

impl Holder {
    pub fn to_text(&self) -> String {
        let mut t = String::new();
        let id =
            |p: Option<ProcId>| p.map(|p| format!("{} {}", p.pid, p.start)).unwrap_or_default();
        t.push_str(&format!("name={}\n", self.name));
        t.push_str(&format!("runonce={}\n", id(self.runonce)));
        t.push_str(&format!("job={}\n", id(self.job)));
        t.push_str(&format!("started={:.3}\n", self.started_unix));
        t.push_str(&format!("deadline_mono_ns={}\n", self.deadline_mono_ns));
        t.push_str(&format!("uid={}\n", self.uid));
        for dir in &self.cgroups {
            t.push_str(&format!("cgroup={dir}\n"));
        }
        t.push_str("end\n");
        t
    }

    /// Parses a lock file; None if it is empty or torn.
    pub fn parse(text: &str) -> Option<Holder> {
        let mut h = Holder::default();
        let id = |v: &str| {
            let mut it = v.split_whitespace();
            Some(ProcId { pid: it.next()?.parse().ok()?, start: it.next()?.parse().ok()? })
        };
        for line in text.lines() {
            if line == "end" {
                return Some(h);
            }
            let (k, v) = line.split_once('=')?;
            match k {
                "name" => h.name = v.to_string(),
                "runonce" => h.runonce = id(v),
                "job" => h.job = id(v),
                "started" => h.started_unix = v.parse().ok()?,
                "deadline_mono_ns" => h.deadline_mono_ns = v.parse().ok()?,
                "uid" => h.uid = v.parse().ok()?,
                "cgroup" if !v.is_empty() => h.cgroups.push(v.to_string()),
                _ => {}
            }
        }
        None
    }

    pub fn read(path: &Path) -> Option<Holder> {
        Holder::parse(&fs::read_to_string(path).ok()?)
    }

    /// The PID to show for this holder: the job's if it lives, else runonce's.
    pub fn shown_pid(&self) -> Option<i32> {
        self.job.filter(ProcId::alive).or(self.runonce).map(|p| p.pid)
    }

    /// runonce is gone but the lock is still held: the job is orphaned.
    pub fn orphaned(&self) -> bool {
        self.runonce.is_some_and(|r| !r.alive())
    }

    pub fn age_secs(&self) -> f64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        (now - self.started_unix).max(0.0)
    }

    /// The job's cgroup as recorded, checked against the holder's name and
    /// runonce PID (see `Cgroup::of_holder`).
    pub fn cgroup(&self) -> Option<Cgroup> {
        let pid = self.runonce?.pid;
        Cgroup::of_holder(&cgroup::Fs::discover(), &self.cgroups, &self.name, pid)
    }

    /// The recorded deadline as an Instant of this process.
    pub fn deadline(&self) -> Option<Instant> {
        if self.deadline_mono_ns == 0 {
            return None;
        }
        let now = sys::monotonic_ns();
        let left = Duration::from_nanos(self.deadline_mono_ns.saturating_sub(now));
        Instant::now().checked_add(left)
    }
}

/// Whether the lock file at `path` is held right now, read from
/// /proc/locks so that looking never takes the lock (a `--status` must not
/// make a cron run skip).
pub fn is_held(path: &Path) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    match fs::read_to_string("/proc/locks") {
        Ok(locks) => locks_mention(&locks, meta.dev(), meta.ino()),
        // no /proc/locks: a shared try-lock is the next best test
        Err(_) => File::open(path).is_ok_and(|f| match f.try_lock_shared() {
            Ok(()) => {
                let _ = f.unlock();
                false
            }
            Err(_) => true,
        }),
    }
}

fn locks_mention(locks: &str, dev: u64, ino: u64) -> bool {
    let major = libc::major(dev);
    let minor = libc::minor(dev);
    let want = format!("{major:02x}:{minor:02x}:{ino}");
    locks.lines().any(|l| {
        l.contains("FLOCK") && !l.contains("->") && l.split_whitespace().any(|w| w == want)
    })
}

/// Processes that hold the lock through an inherited descriptor, plus the
/// descendants of the holder's runonce if it lives and the members of the
/// job's cgroup (which finds even those that closed the lock and left the
/// tree): the whole old job.
pub fn holder_tree(lock_path: &Path, holder: &Holder) -> Vec<ProcId> {
    let mut tree = Vec::new();
    if let Some(r) = holder.runonce.filter(ProcId::alive) {
        tree.extend(procs::descendants(r.pid).into_iter().map(|m| m.id));
    }
    if let Some(cg) = holder.cgroup() {
        for p in cg.members() {
            if !tree.contains(&p) {
                tree.push(p);
            }
        }
    }
    if let Ok(meta) = fs::symlink_metadata(lock_path) {
        for p in procs::lock_holders(meta.dev(), meta.ino()) {
            if Some(p) != holder.runonce && !tree.contains(&p) {
                tree.push(p);
            }
        }
    }
    tree
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_round_trip() {
        let h = Holder {
            name: "job".into(),
            runonce: Some(ProcId { pid: 10, start: 20 }),
            job: Some(ProcId { pid: 11, start: 21 }),
            started_unix: 1.5,
            deadline_mono_ns: 99,
            uid: 0,
            cgroups: vec!["/sys/fs/cgroup/x".into(), "/sys/fs/cgroup/memory/x".into()],
        };
        assert_eq!(Holder::parse(&h.to_text()), Some(h.clone()));
        let torn = &h.to_text()[..20];
        assert_eq!(Holder::parse(torn), None);
        // a longer old record after the terminator is ignored
        let mixed = format!("{}runonce=1 2\n", h.to_text());
        assert_eq!(Holder::parse(&mixed), Some(h));
    }

    #[test]
    fn slot_names() {
        let base = Path::new("/d/job.lock");
        assert_eq!(slot_path(base, 0), Path::new("/d/job.lock"));
        assert_eq!(slot_path(base, 2), Path::new("/d/job@2.lock"));
    }

    #[test]
    fn proc_locks_line() {
        let dev = libc::makedev(0xfd, 1);
        let l = "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF\n";
        assert!(locks_mention(l, dev, 1234));
        assert!(!locks_mention(l, dev, 123));
        let blocked = "1: -> FLOCK  ADVISORY  WRITE 4243 fd:01:1234 0 EOF\n";
        assert!(!locks_mention(blocked, dev, 1234));
    }

    #[test]
    fn try_then_busy_then_free() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("j.lock");
        let a = try_acquire(&base, 1).unwrap().unwrap();
        assert!(is_held(&base));
        assert!(try_acquire(&base, 1).unwrap().is_none());
        let b = try_acquire(&base, 2).unwrap().unwrap();
        assert_eq!(b.slot, 1);
        drop(a);
        // another test thread forking at this moment holds a copy of the fd
        // until its child execs: allow for that window
        let free = (0..200).any(|_| {
            let got = try_acquire(&base, 1).unwrap().is_some();
            if !got {
                std::thread::sleep(Duration::from_millis(5));
            }
            got
        });
        assert!(free);
    }

    #[test]
    fn symlink_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        fs::write(&target, "").unwrap();
        let link = dir.path().join("l.lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(try_acquire(&link, 1).is_err());
    }

    #[test]
    fn dir_checks() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("a/b");
        prepare_dir(&fresh).unwrap();
        assert_eq!(fs::metadata(&fresh).unwrap().mode() & 0o777, 0o700);
        let open = dir.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(prepare_dir(&open).is_err());
    }
}
