//! The job's lock: an flock on a file that is never deleted, written,
//! truncated, renamed or chmod'ed once it is the caller's (`--lock`), and
//! the side files runonce keeps beside it in its own lock directory: the
//! holder record (holder.rs), the waiters' queue and the enforcers' lock
//! (man page, THE LOCK and SECURITY).
//!
//! The job inherits the lock's open file description, read-only, so the
//! lock is held until every process of the job is gone, even if runonce
//! itself is SIGKILLed; the next runonce reads the orphan's recorded
//! deadline and enforces it.  runonce sets that description's file position
//! to a random number it records: a process is proven to hold *this* lock
//! when /proc/PID/fdinfo shows the lock with that position.

use std::collections::HashSet;
use std::fs::{self, File, TryLockError};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::files;
use crate::holder::Holder;
use crate::signals::{Signals, Woken};
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

/// The default lock directory for this user (man page, THE LOCK, "Lock
/// directory").
pub fn default_dir() -> PathBuf {
    default_dir_noted().0
}

/// The default lock directory, and why it is not the usual one if another
/// user squatted that (`files::private_tmp_dir`).
pub fn default_dir_noted() -> (PathBuf, Option<String>) {
    if sys::geteuid() == 0 {
        return (PathBuf::from("/run/runonce"), None);
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => (Path::new(&d).join("runonce"), None),
        _ => files::private_tmp_dir("runonce"),
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

/// The lock file of slot `slot` beside `base` (`NAME.lock`): slot 0 is
/// `NAME.lock`, others `NAME@N.lock` ('@' cannot occur in a name, so no
/// job's slot file collides with another job's).
pub fn slot_path(base: &Path, slot: u32) -> PathBuf {
    if slot == 0 {
        return base.to_path_buf();
    }
    let name = base.file_name().unwrap_or_default().to_string_lossy();
    let stem = name.strip_suffix(".lock").unwrap_or(&name);
    base.with_file_name(format!("{stem}@{slot}.lock"))
}

/// Where a job's lock lives: its lock files and the side files in
/// runonce's own lock directory.
#[derive(Clone, Debug)]
pub struct Site {
    /// runonce's lock directory: private to its user (or root's 0755).
    pub dir: PathBuf,
    /// The lock file of slot 0.
    pub base: PathBuf,
    /// `--lock`: the caller's file, only ever opened and locked; every
    /// other file of the job lives in `dir`, named after the file's device
    /// and inode.
    pub explicit: bool,
}

impl Site {
    /// `NAME.lock` in the lock directory.
    pub fn named(dir: &Path, name: &str) -> Site {
        Site { dir: dir.to_path_buf(), base: dir.join(format!("{name}.lock")), explicit: false }
    }

    /// A lock file of the caller's (`--lock PATH`).
    pub fn explicit(dir: &Path, file: &Path) -> Site {
        Site { dir: dir.to_path_buf(), base: file.to_path_buf(), explicit: true }
    }

    /// What the side files are named after: the job's name, or `@DEV-INO`
    /// of an explicit lock file ('@' is in no job name).  None while an
    /// explicit lock file does not exist.
    fn key(&self) -> Option<String> {
        if self.explicit {
            return file_id(&self.base).map(|(dev, ino)| format!("@{dev}-{ino}"));
        }
        let name = self.base.file_name()?.to_string_lossy().into_owned();
        Some(name.strip_suffix(".lock").map(str::to_string).unwrap_or(name))
    }

    fn side(&self, suffix: &str) -> Option<PathBuf> {
        Some(self.dir.join(format!("{}{suffix}", self.key()?)))
    }

    /// The lock file of `slot`.
    pub fn lock_path(&self, slot: u32) -> Option<PathBuf> {
        match slot {
            0 => Some(self.base.clone()),
            _ if self.explicit => self.side(&format!("@{slot}.lock")),
            _ => Some(slot_path(&self.base, slot)),
        }
    }

    /// The holder record of `slot`.
    pub fn record_path(&self, slot: u32) -> Option<PathBuf> {
        match slot {
            0 => self.side(".holder"),
            _ => self.side(&format!("@{slot}.holder")),
        }
    }

    /// The waiters' queue: see `waiters_queued`.
    pub fn queue_path(&self) -> Option<PathBuf> {
        self.side(".waiters")
    }

    fn enforcer_path(&self) -> Option<PathBuf> {
        self.side(".enforce")
    }

    /// The job a lock file in the lock directory belongs to (None for
    /// `--lock`, which several jobs may share).
    pub fn job_name(&self) -> Option<String> {
        if self.explicit { None } else { self.key() }
    }

    /// Slot 0's lock file is the caller's own.
    fn callers(&self, slot: u32) -> bool {
        self.explicit && slot == 0
    }
}

/// (device, inode) of the file at `path`, not following a link.
pub fn file_id(path: &Path) -> Option<(u64, u64)> {
    fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn unusable(path: &Path, e: &io::Error) -> Unusable {
    Unusable(format!("lock {}: {e}", path.display()))
}

/// Opens a file runonce owns (a lock file it names, a queue, the
/// enforcers' lock): created 0600, made private if an older version left it
/// readable, and sticky (an XDG runtime-dir cleaner may delete files that
/// are not, and a deleted lock file would let a second instance in).
fn open_own(path: &Path) -> Result<File, Unusable> {
    let file = files::open_lockable(None, path, 0o600).map_err(|e| unusable(path, &e))?;
    files::own_private(&file).map_err(|e| unusable(path, &e))?;
    let meta = file.metadata().map_err(|e| unusable(path, &e))?;
    if meta.mode() & libc::S_ISVTX == 0 {
        let _ = file.set_permissions(fs::Permissions::from_mode(0o1600));
    }
    Ok(file)
}

/// Opens the lock file of a slot.  The caller's `--lock` file is opened
/// as flock(1) opens it: read-only, created (0600) if missing, nothing
/// else; a link or a FIFO is refused all the same.
fn open_slot(site: &Site, slot: u32) -> Result<(File, PathBuf), Unusable> {
    let path = site
        .lock_path(slot)
        .ok_or_else(|| Unusable(format!("lock {}: missing", site.base.display())))?;
    let file = if site.callers(slot) {
        files::open_lockable(None, &path, 0o600).map_err(|e| unusable(&path, &e))?
    } else {
        open_own(&path)?
    };
    Ok((file, path))
}

/// True if `path` still names the file we have open (a cleaner may have
/// deleted or replaced it between our open and our lock).
fn still_named(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Sets the description's position to a random number nobody else knows
/// (the proof that a process holds this lock, see the module doc): up to
/// 2^40, or 2^31 where the file system allows no more.  0 if none can be.
fn mark(file: &File) -> u64 {
    for bits in [40, 31] {
        let nonce = (files::random_u64() >> (64 - bits)) | 1;
        // SAFETY: lseek on a descriptor we own; a regular file, so it only
        // moves the position.
        let at = unsafe { libc::lseek(file.as_raw_fd(), nonce as libc::off_t, libc::SEEK_SET) };
        if at >= 0 && at as u64 == nonce {
            return nonce;
        }
    }
    0
}

/// A held lock.
pub struct Lock {
    pub file: File,
    pub path: PathBuf,
    pub slot: u32,
    /// The position that marks this lock's open file description.
    pub ofd: u64,
    /// The record the previous holder of this slot left, if it left one
    /// (a runonce that was SIGKILLed: its cgroup may need clearing).
    pub previous: Option<Box<Holder>>,
    site: Site,
}

impl Lock {
    /// A lock just taken: mark it, keep the previous record, record `me`.
    fn taken(site: &Site, slot: u32, file: File, path: PathBuf, me: &Holder) -> Lock {
        let ofd = mark(&file);
        let mut lock = Lock { file, path, slot, ofd, previous: None, site: site.clone() };
        lock.previous = crate::holder::record(site, slot).map(Box::new);
        // what the previous holder left to clear stays on record until
        // this run has cleared it
        let mut me = me.clone();
        me.leftovers = lock.previous.as_ref().map(|p| p.to_clear()).unwrap_or_default();
        lock.write_holder(&me);
        lock
    }

    /// Records the holder, for `--status`, skips, `--replace` and the
    /// next run: a file of its own, replaced atomically, mode 0600.
    pub fn write_holder(&self, holder: &Holder) {
        let mut h = holder.clone();
        h.ofd = self.ofd;
        h.lock = file_id(&self.path).unwrap_or_default();
        if let Some(name) = self.record_name() {
            let _ = files::replace(&self.site.dir, &name, h.to_text().as_bytes(), 0o600, false);
        }
    }

    /// The run is over: its record goes (a record left behind means its
    /// runonce was killed).
    pub fn clear_holder(&self) {
        if let (Some(name), Ok(dir)) = (self.record_name(), files::open_dir(&self.site.dir)) {
            files::remove_in(&dir, &name);
        }
    }

    fn record_name(&self) -> Option<String> {
        let path = self.site.record_path(self.slot)?;
        Some(path.file_name()?.to_string_lossy().into_owned())
    }

    /// Releases the lock for every process sharing the open file
    /// description: for `--keep-orphans`, whose orphans inherited it.
    pub fn release_shared(&self) {
        let _ = self.file.unlock();
    }
}

/// What trying the lock once came to.
pub enum Tried {
    Got(Lock),
    /// Every slot is held.
    Busy,
    /// A slot was free, but a `--wait` run is queued and goes first.
    Yielded,
}

/// Tries every slot once; the lock taken is recorded as held by `me`.
/// With `yield_to_waiters`, a free slot is left to a queued waiter (see
/// `waiters_queued`) before anything is recorded.
pub fn try_acquire(
    site: &Site,
    slots: u32,
    me: &Holder,
    yield_to_waiters: bool,
) -> Result<Tried, Unusable> {
    for slot in 0..slots {
        loop {
            let (file, path) = open_slot(site, slot)?;
            match file.try_lock() {
                Ok(()) if still_named(&file, &path) => {
                    if yield_to_waiters && waiters_queued(site) {
                        return Ok(Tried::Yielded);
                    }
                    return Ok(Tried::Got(Lock::taken(site, slot, file, path, me)));
                }
                Ok(()) => continue, // the name now points elsewhere: lock that
                Err(TryLockError::WouldBlock) => break,
                Err(TryLockError::Error(e)) => return Err(unusable(&path, &e)),
            }
        }
    }
    Ok(Tried::Busy)
}

/// The waiters' queue of a job (`NAME.waiters` in the lock directory).
/// Every `--wait` run holds a shared flock on it while it waits.
///
/// Why: on unlock, Linux wakes the blocked flock() waiters and lets them race
/// with whoever calls flock() next, so a waiter can lose, again and again, to
/// runs that merely try the lock (a tight cron loop).  A run that finds the
/// lock free but a waiter queued therefore yields (see `waiters_queued`):
/// waiters come before newcomers.  Among themselves waiters still race, each
/// with an equal chance at every release.  A dead waiter's flock vanishes
/// with it, so the queue can never be left stale.  The file is private: a
/// stranger able to lock it could make every run of the job skip.
fn open_queue(site: &Site, create: bool) -> Option<File> {
    let path = site.queue_path()?;
    let file = match files::open_existing(&path) {
        Ok(f) => f,
        Err(_) if create => return open_own(&path).ok(),
        Err(_) => return None,
    };
    let meta = file.metadata().ok()?;
    if meta.uid() != sys::geteuid() {
        return None;
    }
    if meta.mode() & 0o077 == 0 {
        return Some(file);
    }
    // left readable by an older version: anyone may hold a lock on it
    // through a descriptor opened back then.  A fresh private file takes
    // its place (the queue only orders waiters; the lock file itself is
    // never replaced).
    let name = path.file_name()?.to_string_lossy().into_owned();
    files::replace(&site.dir, &name, b"", 0o600, false).ok()?;
    files::open_existing(&path).ok()
}

/// Whether a `--wait` run is queued for this job.
pub fn waiters_queued(site: &Site) -> bool {
    open_queue(site, false).is_some_and(|q| matches!(q.try_lock(), Err(TryLockError::WouldBlock)))
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

/// Locks every existing slot file of a job, its waiters' queue and its
/// enforcers' lock without waiting, for `--forget`: while they are held no
/// run of the job can start, and a run that opened a file before it is
/// unlinked notices when it gets the lock (the path no longer names that
/// file) and starts over.  The holder records go with them (they are not
/// locks: listed with the slot they belong to).
pub fn seize(site: &Site) -> Result<Seized, Unusable> {
    let mut held = Vec::new();
    for slot in 0.. {
        let Some(path) = site.lock_path(slot).filter(|p| fs::symlink_metadata(p).is_ok()) else {
            break;
        };
        let (file, path) = open_slot(site, slot).map(|(f, _)| (f, path))?;
        match file.try_lock() {
            Ok(()) => held.push((path, file)),
            Err(TryLockError::WouldBlock) => return Ok(Seized::Busy(path)),
            Err(TryLockError::Error(e)) => return Err(unusable(&path, &e)),
        }
    }
    if let Some(queue) = open_queue(site, false) {
        let path = site.queue_path().unwrap_or_default();
        match queue.try_lock() {
            Ok(()) => held.push((path, queue)),
            Err(TryLockError::WouldBlock) => return Ok(Seized::Queued),
            Err(TryLockError::Error(e)) => return Err(unusable(&path, &e)),
        }
    }
    if let Some(path) = site.enforcer_path().filter(|p| fs::symlink_metadata(p).is_ok()) {
        let file = open_own(&path)?;
        match file.try_lock() {
            Ok(()) => held.push((path, file)),
            Err(TryLockError::WouldBlock) => return Ok(Seized::Busy(path)),
            Err(TryLockError::Error(e)) => return Err(unusable(&path, &e)),
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
    site: &Site,
    slots: u32,
    until: Option<Instant>,
    signals: &Signals,
    orphan_deadline: Option<Instant>,
    me: &Holder,
) -> Result<Waited, Unusable> {
    // held until this function returns: the lock is then ours, or we gave up
    let _queued = open_queue(site, true).filter(|q| q.lock_shared().is_ok());
    let (ready_r, ready_w) = sys::pipe().map_err(|e| Unusable(format!("pipe: {e}")))?;
    let ready_w = Arc::new(ready_w);
    let done = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel::<Result<(u32, File, PathBuf), Unusable>>();
    for slot in 0..slots {
        let site = site.clone();
        let (tx, done, ready_w) = (tx.clone(), done.clone(), ready_w.clone());
        std::thread::spawn(move || {
            let result = block_on_slot(&site, slot, &done);
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
    let got = |r: Result<(u32, File, PathBuf), Unusable>| {
        r.map(|(slot, file, path)| Waited::Got(Lock::taken(site, slot, file, path, me)))
    };
    loop {
        let now = Instant::now();
        let deadline = [until, orphan_deadline].into_iter().flatten().min();
        if deadline.is_some_and(|d| d <= now) {
            done.store(true, Ordering::SeqCst);
            // a lock won in this very instant is still ours to use
            if let Ok(r) = rx.try_recv() {
                return got(r);
            }
            return Ok(if orphan_deadline.is_some_and(|d| d <= now) {
                Waited::OrphanDeadline
            } else {
                Waited::TimedOut
            });
        }
        match signals.wait(Some(ready_r.as_raw_fd()), deadline) {
            Ok(Woken::Ready) => {
                if let Ok(r) = rx.recv() {
                    return got(r);
                }
            }
            Ok(Woken::Signal(sig)) => {
                done.store(true, Ordering::SeqCst);
                return Ok(Waited::Signal(sig));
            }
            Ok(Woken::Deadline) => {}
            Err(e) => return Err(Unusable(format!("poll: {e}"))),
        }
    }
}

/// Blocks in flock() on one slot until it is ours, re-opening if the file
/// was replaced.  None once another slot has won.
fn block_on_slot(
    site: &Site,
    slot: u32,
    done: &AtomicBool,
) -> Option<Result<(u32, File, PathBuf), Unusable>> {
    loop {
        let (file, path) = match open_slot(site, slot) {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        if let Err(e) = file.lock() {
            return Some(Err(unusable(&path, &e)));
        }
        if done.load(Ordering::SeqCst) {
            return None;
        }
        if still_named(&file, &path) {
            return Some(Ok((slot, file, path)));
        }
    }
}

/// The enforcers' lock of a job (`NAME.enforce`, private): a run that ends
/// another run (`--replace`, an overdue orphan) holds it from reading the
/// holder until it has taken the lock and recorded itself, so that
/// enforcers started together never end each other's fresh run by mistake.
/// Waits in the kernel; Ok(Err(signal)) if a signal came first.
pub fn enforcer(site: &Site, signals: &Signals) -> Result<Result<File, i32>, Unusable> {
    let path = site
        .enforcer_path()
        .ok_or_else(|| Unusable(format!("lock {}: missing", site.base.display())))?;
    let file = open_own(&path)?;
    match file.try_lock() {
        Ok(()) => return Ok(Ok(file)),
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(e)) => return Err(unusable(&path, &e)),
    }
    let (ready_r, ready_w) = sys::pipe().map_err(|e| Unusable(format!("pipe: {e}")))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = file.lock().map(|()| file);
        // given up on: the file, and with it the lock, drops here
        if tx.send(result).is_ok() {
            let _ = sys::write_fd(ready_w.as_raw_fd(), b"x");
        }
    });
    loop {
        match signals.wait(Some(ready_r.as_raw_fd()), None) {
            Ok(Woken::Ready) => {
                return match rx.recv() {
                    Ok(Ok(f)) => Ok(Ok(f)),
                    Ok(Err(e)) => Err(unusable(&path, &e)),
                    Err(_) => Err(Unusable(format!("lock {}: lost", path.display()))),
                };
            }
            Ok(Woken::Signal(sig)) => return Ok(Err(sig)),
            Ok(Woken::Deadline) => {}
            Err(e) => return Err(Unusable(format!("poll: {e}"))),
        }
    }
}

/// Whether the lock file at `path` is held right now, read from
/// /proc/locks so that looking never takes the lock (a `--status` must not
/// make a cron run skip).
pub fn is_held(path: &Path) -> bool {
    HeldLocks::read().holds(path)
}

/// The files flocked on the machine, as one read of /proc/locks listed
/// them: a `--status` over many jobs reads it once, not once a job (each
/// read walks every lock on the machine, serialised with every flock).
pub struct HeldLocks(Option<HashSet<String>>);

impl HeldLocks {
    pub fn read() -> HeldLocks {
        HeldLocks(sys::read_small("/proc/locks").ok().map(|t| flocked_in(&t)))
    }

    /// Whether the lock file at `path` was held when the list was read.
    pub fn holds(&self, path: &Path) -> bool {
        let Some((dev, ino)) = file_id(path) else {
            return false;
        };
        match &self.0 {
            Some(held) => held.contains(&lock_id(dev, ino)),
            // no /proc/locks: a shared try-lock is the next best test
            None => File::open(path).is_ok_and(|f| match f.try_lock_shared() {
                Ok(()) => {
                    let _ = f.unlock();
                    false
                }
                Err(_) => true,
            }),
        }
    }
}

/// Whether the lock file at `path` is held, tested with a shared try-lock
/// released at once.  For runs that are about to take the lock anyway: in a
/// PID namespace, /proc/locks leaves out the locks whose taker is gone (an
/// orphaned job's), so only a try tells.
pub fn probe_held(path: &Path) -> bool {
    let Ok(file) = files::open_existing(path) else {
        return false;
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(_) => true,
    }
}

/// The PIDs that took the flocks held on (dev, ino), as /proc/locks tells
/// them (0 or -1 where the taker is gone or in another PID namespace);
/// None if the file is not locked.
pub fn lockers(dev: u64, ino: u64) -> Option<Vec<i32>> {
    lockers_in(&fs::read_to_string("/proc/locks").ok()?, dev, ino)
}

/// How /proc/locks names a file: `MAJOR:MINOR:INODE`, the numbers of the
/// device in hexadecimal.
fn lock_id(dev: u64, ino: u64) -> String {
    format!("{:02x}:{:02x}:{ino}", libc::major(dev), libc::minor(dev))
}

/// The flocks granted (not the waiters, `->`) in a /proc/locks text.
fn flocks(locks: &str) -> impl Iterator<Item = &str> {
    locks.lines().filter(|l| l.contains("FLOCK") && !l.contains("->"))
}

/// The files flocked in a /proc/locks text (`1: FLOCK ADVISORY WRITE PID
/// ID START END`).
fn flocked_in(locks: &str) -> HashSet<String> {
    flocks(locks).filter_map(|l| l.split_whitespace().nth(5)).map(str::to_string).collect()
}

fn lockers_in(locks: &str, dev: u64, ino: u64) -> Option<Vec<i32>> {
    let want = lock_id(dev, ino);
    let pids: Vec<i32> = flocks(locks)
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|&w| w == want)?;
            Some(words.get(at.checked_sub(1)?)?.parse().unwrap_or(0))
        })
        .collect();
    (!pids.is_empty()).then_some(pids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn me() -> Holder {
        Holder { name: "j".into(), ..Holder::default() }
    }

    fn got(t: Result<Tried, Unusable>) -> Lock {
        match t {
            Ok(Tried::Got(l)) => l,
            _ => panic!("the lock was not taken"),
        }
    }

    #[test]
    fn slot_names() {
        let base = Path::new("/d/job.lock");
        assert_eq!(slot_path(base, 0), Path::new("/d/job.lock"));
        assert_eq!(slot_path(base, 2), Path::new("/d/job@2.lock"));
        let site = Site::named(Path::new("/d"), "job");
        assert_eq!(site.record_path(0).unwrap(), Path::new("/d/job.holder"));
        assert_eq!(site.record_path(1).unwrap(), Path::new("/d/job@1.holder"));
        assert_eq!(site.queue_path().unwrap(), Path::new("/d/job.waiters"));
    }

    #[test]
    fn explicit_lock_files_name_side_files_by_inode() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.txt");
        fs::write(&data, "keep\n").unwrap();
        fs::set_permissions(&data, fs::Permissions::from_mode(0o644)).unwrap();
        let locks = dir.path().join("locks");
        prepare_dir(&locks).unwrap();
        let site = Site::explicit(&locks, &data);
        let (dev, ino) = file_id(&data).unwrap();
        let lock = got(try_acquire(&site, 2, &me(), false));
        assert_eq!(site.record_path(0).unwrap(), locks.join(format!("@{dev}-{ino}.holder")));
        assert_eq!(site.lock_path(1).unwrap(), locks.join(format!("@{dev}-{ino}@1.lock")));
        let h = Holder::load(&site.record_path(0).unwrap()).unwrap();
        assert_eq!((h.lock, h.ofd), ((dev, ino), lock.ofd));
        assert!(lock.ofd != 0);
        assert_eq!(fs::read_to_string(&data).unwrap(), "keep\n", "never written");
        assert_eq!(fs::metadata(&data).unwrap().mode() & 0o7777, 0o644, "never chmod'ed");
        let second = got(try_acquire(&site, 2, &me(), false));
        assert_eq!(second.slot, 1);
        assert!(!dir.path().join("data.txt@1.lock").exists(), "nothing beside the file");
    }

    #[test]
    fn proc_locks_lines() {
        let dev = libc::makedev(0xfd, 1);
        let l = "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF\n";
        assert_eq!(lockers_in(l, dev, 1234), Some(vec![4242]));
        assert_eq!(lockers_in(l, dev, 123), None);
        let blocked = "1: -> FLOCK  ADVISORY  WRITE 4243 fd:01:1234 0 EOF\n";
        assert_eq!(lockers_in(blocked, dev, 1234), None);
        let all = format!(
            "{l}{blocked}2: FLOCK  ADVISORY  WRITE 9 fd:01:77 0 EOF\n\
                           3: POSIX  ADVISORY  WRITE 9 fd:01:88 0 EOF\n"
        );
        let held = flocked_in(&all);
        assert!(held.contains(&lock_id(dev, 1234)) && held.contains(&lock_id(dev, 77)));
        assert_eq!(held.len(), 2, "waiters and POSIX locks are no flock held: {held:?}");
    }

    #[test]
    fn try_then_busy_then_free() {
        let dir = tempfile::tempdir().unwrap();
        let site = Site::named(dir.path(), "j");
        let a = got(try_acquire(&site, 1, &me(), false));
        assert!(is_held(&site.base));
        let meta = fs::metadata(&site.base).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o1600, "private and sticky");
        assert!(matches!(try_acquire(&site, 1, &me(), false), Ok(Tried::Busy)));
        let b = got(try_acquire(&site, 2, &me(), false));
        assert_eq!(b.slot, 1);
        drop(a);
        // another test thread forking at this moment holds a copy of the fd
        // until its child execs: allow for that window
        let free = (0..200).any(|_| {
            let free = matches!(try_acquire(&site, 1, &me(), false), Ok(Tried::Got(_)));
            if !free {
                std::thread::sleep(Duration::from_millis(5));
            }
            free
        });
        assert!(free);
    }

    #[test]
    fn older_readable_lock_files_become_private() {
        let dir = tempfile::tempdir().unwrap();
        let site = Site::named(dir.path(), "old");
        fs::write(&site.base, "").unwrap();
        fs::set_permissions(&site.base, fs::Permissions::from_mode(0o1644)).unwrap();
        let _l = got(try_acquire(&site, 1, &me(), false));
        assert_eq!(fs::metadata(&site.base).unwrap().mode() & 0o7777, 0o1600);
    }

    #[test]
    fn symlink_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        fs::write(&target, "").unwrap();
        let link = dir.path().join("l.lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(try_acquire(&Site::explicit(dir.path(), &link), 1, &me(), false).is_err());
        assert!(try_acquire(&Site::named(dir.path(), "l"), 1, &me(), false).is_err());
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
