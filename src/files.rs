//! The files runonce writes or trusts, opened so that another user cannot
//! steer them (man page, SECURITY): the last component of a path is never
//! followed if it is a symbolic link, a FIFO or device is refused without
//! blocking, temporary files are created exclusively under names nobody can
//! guess, and a file read to decide anything must belong to runonce's user.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use crate::sys;

/// Flags of every open that must neither follow a planted link nor hang on
/// a planted FIFO (O_NONBLOCK makes such an open return at once).
const SAFE: libc::c_int = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput.into())
}

/// open(2) or openat(2) with `flags`, retrying EINTR.
fn open_raw(dir: Option<&OwnedFd>, path: &Path, flags: libc::c_int, mode: u32) -> io::Result<File> {
    let c = cstring(path)?;
    loop {
        // SAFETY: a valid NUL-terminated path and, if given, a directory
        // descriptor we own; the kernel returns a new descriptor or -1.
        let fd = unsafe {
            match dir {
                Some(d) => libc::openat(d.as_raw_fd(), c.as_ptr(), flags, mode as libc::c_uint),
                None => libc::open(c.as_ptr(), flags, mode as libc::c_uint),
            }
        };
        if fd >= 0 {
            // SAFETY: a fresh descriptor nothing else owns.
            return Ok(unsafe { File::from_raw_fd(fd) });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Why an open without following failed: "is a symlink" whether the kernel
/// said ELOOP or, for O_CREAT in a sticky directory, EACCES; the error
/// otherwise.
fn explain(path: Option<&Path>, e: io::Error) -> io::Error {
    let link = path
        .and_then(|p| std::fs::symlink_metadata(p).ok())
        .is_some_and(|m| m.file_type().is_symlink());
    if e.raw_os_error() == Some(libc::ELOOP) || link {
        io::Error::other("is a symlink: refused")
    } else {
        e
    }
}

/// The descriptor must be a regular file: a FIFO, socket or device planted
/// at the path is refused (opened without blocking, so nothing hung).
pub fn regular(file: &File) -> io::Result<std::fs::Metadata> {
    let meta = file.metadata()?;
    if meta.is_file() { Ok(meta) } else { Err(io::Error::other("not a regular file: refused")) }
}

/// Clears O_NONBLOCK once the file is known to be regular (where it means
/// nothing, but the job may inherit the descriptor).
fn blocking(file: &File) {
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
}

/// Opens a file for appending (`--log json:PATH`): created with `mode` if
/// missing, never through a symbolic link, and only if it is a regular file.
/// Readable too where permitted, so the caller can look at the last byte.
pub fn open_append(path: &Path, mode: u32) -> io::Result<File> {
    let flags = libc::O_APPEND | libc::O_CREAT | libc::O_NOCTTY | SAFE;
    let file = match open_raw(None, path, flags | libc::O_RDWR, mode) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            open_raw(None, path, flags | libc::O_WRONLY, mode)
        }
        other => other,
    }
    .map_err(|e| explain(Some(path), e))?;
    regular(&file)?;
    blocking(&file);
    Ok(file)
}

/// Opens a lock-like file of runonce's own: read-only (flock needs no
/// more), created with `mode` if missing, never through a link, regular.
pub fn open_lockable(dir: Option<&OwnedFd>, path: &Path, mode: u32) -> io::Result<File> {
    let flags = libc::O_RDONLY | libc::O_CREAT | libc::O_NOCTTY | SAFE;
    let shown = if dir.is_none() { Some(path) } else { None };
    let file = open_raw(dir, path, flags, mode).map_err(|e| explain(shown, e))?;
    regular(&file)?;
    blocking(&file);
    Ok(file)
}

/// Opens an existing regular file read-only, never through a link, never
/// waiting on a FIFO.
pub fn open_existing(path: &Path) -> io::Result<File> {
    let file = open_raw(None, path, libc::O_RDONLY | libc::O_NOCTTY | SAFE, 0)
        .map_err(|e| explain(Some(path), e))?;
    regular(&file)?;
    blocking(&file);
    Ok(file)
}

/// Makes a file of runonce's own private (mode 0600, keeping the sticky
/// bit): files made by older versions were readable, so anyone could open
/// them and hold a lock on them.  A file of another user is refused.
pub fn own_private(file: &File) -> io::Result<()> {
    let meta = file.metadata()?;
    let me = sys::geteuid();
    if meta.uid() != me {
        return Err(io::Error::other(format!(
            "owned by uid {}, not by us (uid {me}): refused",
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        let keep = meta.mode() & libc::S_ISVTX;
        file.set_permissions(std::fs::Permissions::from_mode(0o600 | keep))?;
    }
    Ok(())
}

/// Who may own a directory runonce follows a symbolic link to: runonce's
/// user or root (as the kernel's protected_symlinks allows in sticky
/// directories), never a third user who planted the link.
fn trusted_owner(uid: u32) -> bool {
    uid == sys::geteuid() || uid == 0
}

/// Opens a directory runonce writes into (`--metrics-dir`, the state dir).
/// A symbolic link as its last component is followed only if runonce's
/// user or root owns it.
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
    match open_raw(None, path, flags | libc::O_NOFOLLOW, 0) {
        Ok(f) => Ok(f.into()),
        Err(e)
            if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            let link = std::fs::symlink_metadata(path)?;
            if !link.file_type().is_symlink() {
                return Err(io::Error::other("not a directory"));
            }
            if !trusted_owner(link.uid()) {
                return Err(io::Error::other(format!(
                    "is a symlink owned by uid {}: refused",
                    link.uid()
                )));
            }
            Ok(open_raw(None, path, flags, 0)?.into())
        }
        Err(e) => Err(e),
    }
}

/// A name nobody can guess: 64 bits from the kernel's generator.
pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if sys::fill_random(&mut bytes).is_err() {
        // no entropy source: still unique among our own processes
        return sys::monotonic_ns() ^ (u64::from(std::process::id()) << 40);
    }
    u64::from_le_bytes(bytes)
}

fn renameat(dir: &OwnedFd, from: &Path, to: &Path) -> io::Result<()> {
    let (a, b) = (cstring(from)?, cstring(to)?);
    // SAFETY: valid NUL-terminated names relative to a directory we own.
    let r = unsafe { libc::renameat(dir.as_raw_fd(), a.as_ptr(), dir.as_raw_fd(), b.as_ptr()) };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

fn unlinkat(dir: &OwnedFd, name: &Path) {
    if let Ok(c) = cstring(name) {
        // SAFETY: a valid name relative to a directory we own.
        unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) };
    }
}

/// Replaces `dir/name` with `content` atomically: an exclusive temp file
/// (O_EXCL, a random name, never through a link), written, synced and
/// renamed over the old file.  Readers see the old file or the new one, and
/// nothing planted at any name is ever written through or waited on.
pub fn replace(dir: &Path, name: &str, content: &[u8], mode: u32, sync: bool) -> io::Result<()> {
    let d = open_dir(dir)?;
    replace_in(&d, name, content, mode, sync)
}

pub fn replace_in(
    d: &OwnedFd,
    name: &str,
    content: &[u8],
    mode: u32,
    sync: bool,
) -> io::Result<()> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | SAFE;
    let (tmp, mut file) = loop {
        let tmp = PathBuf::from(format!(".{name}.{:016x}.tmp", random_u64()));
        match open_raw(Some(d), &tmp, flags, mode) {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    };
    let result = (|| {
        file.write_all(content)?;
        if sync {
            file.sync_all()?;
        }
        renameat(d, &tmp, Path::new(name))
    })();
    if result.is_err() {
        unlinkat(d, &tmp);
    }
    result
}

/// Removes `dir/name` if it is there.
pub fn remove_in(d: &OwnedFd, name: &str) {
    unlinkat(d, Path::new(name));
}

/// Reads a regular file of at most `limit` bytes without following a link
/// or blocking on a FIFO.  `owner`: the file must belong to that uid (a
/// file another user could have written decides nothing).  Ok(None) if the
/// file is missing.
pub fn read_small(path: &Path, limit: u64, owner: Option<u32>) -> io::Result<Option<Vec<u8>>> {
    let file = match open_raw(None, path, libc::O_RDONLY | SAFE, 0) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(explain(Some(path), e)),
    };
    let meta = regular(&file)?;
    if let Some(uid) = owner.filter(|&u| u != meta.uid()) {
        return Err(io::Error::other(format!("owned by uid {}, not by uid {uid}", meta.uid())));
    }
    if meta.len() > limit {
        return Err(io::Error::other(format!("larger than {limit} bytes")));
    }
    // sized from fstat: one read for the whole file where `take` alone
    // grows the buffer from 32 bytes, a read for each doubling
    let mut buf = Vec::with_capacity(meta.len() as usize + 1);
    file.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(io::Error::other(format!("larger than {limit} bytes")));
    }
    Ok(Some(buf))
}

/// Takes an exclusive flock on `file`, waiting at most `patience`: a
/// process that holds it and hangs must not hang runonce.  The wait sleeps
/// in the kernel (a thread blocked in flock); given up, that thread drops
/// the lock the moment it gets it.
pub fn lock_within(file: File, patience: Duration) -> io::Result<File> {
    match file.try_lock() {
        Ok(()) => return Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {}
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new().name("lock-wait".into()).spawn(move || {
        let result = file.lock().map(|()| file);
        // the receiver gone (it gave up): the file and its lock drop here
        let _ = tx.send(result);
    })?;
    match rx.recv_timeout(patience) {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("still locked by another process after {}s", patience.as_secs()),
        )),
    }
}

/// What a per-user directory under /tmp is to us.
#[derive(Debug, PartialEq, Eq)]
enum Standing {
    Missing,
    Ours,
    /// Made or owned by someone else, or open to others: the reason.
    Foreign(String),
}

fn standing(path: &Path) -> Standing {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Standing::Missing,
        Err(e) => return Standing::Foreign(e.to_string()),
    };
    let me = sys::geteuid();
    if !meta.is_dir() {
        return Standing::Foreign("not a directory".into());
    }
    if meta.uid() != me {
        return Standing::Foreign(format!("owned by uid {}", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Standing::Foreign(format!("writable by others (mode {:o})", meta.mode() & 0o7777));
    }
    Standing::Ours
}

/// How many other names a squatted per-user directory may fall back to.
const FALLBACKS: u32 = 100;

/// A per-user directory under /tmp: `/tmp/STEM-UID`, or if another user
/// made or owns that, the first of `/tmp/STEM-UID.1`, `.2`, ... that is ours,
/// else the first that does not exist yet.  The same on every run (a lock
/// directory must be, or two runs would not exclude each other): other
/// users can neither remove our directories from sticky /tmp nor make one
/// ours.  The second value says why the first choice was passed over.
pub fn private_tmp_dir(stem: &str) -> (PathBuf, Option<String>) {
    let base = PathBuf::from(format!("/tmp/{stem}-{}", sys::geteuid()));
    let why = match standing(&base) {
        Standing::Missing | Standing::Ours => return (base, None),
        Standing::Foreign(why) => why,
    };
    let candidates = (1..=FALLBACKS).map(|n| PathBuf::from(format!("{}.{n}", base.display())));
    let mut first_free = None;
    for c in candidates {
        match standing(&c) {
            Standing::Ours => {
                let note = squatted(&base, &why, &c);
                return (c, Some(note));
            }
            Standing::Missing if first_free.is_none() => first_free = Some(c),
            _ => {}
        }
    }
    match first_free {
        Some(c) => {
            let note = squatted(&base, &why, &c);
            (c, Some(note))
        }
        None => (base, None),
    }
}

fn squatted(base: &Path, why: &str, instead: &Path) -> String {
    format!(
        "{} is not ours ({why}): using {} instead (another user may be trying to disable \
         our jobs)",
        base.display(),
        instead.display()
    )
}

/// Whether a directory we would create at `path` could be created: the
/// nearest existing ancestor is a directory we may write into.
pub fn creatable(path: &Path) -> bool {
    let mut p = path;
    loop {
        match std::fs::metadata(p) {
            Ok(m) => return m.is_dir() && writable(p),
            Err(_) => match p.parent() {
                Some(parent) if parent != p => p = parent,
                _ => return false,
            },
        }
    }
}

fn writable(dir: &Path) -> bool {
    let Ok(c) = cstring(dir) else { return false };
    // SAFETY: a valid path; AT_EACCESS checks with the effective IDs.
    unsafe {
        libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::W_OK | libc::X_OK, libc::AT_EACCESS) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_refuses_links_and_fifos_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "secret\n").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = open_append(&link, 0o644).unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
        let fifo = dir.path().join("fifo");
        let c = cstring(&fifo).unwrap();
        // SAFETY: a valid path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        // no reader: a blocking open would hang here; a non-blocking one
        // for writing fails with ENXIO, for reading opens and is refused
        assert!(open_append(&fifo, 0o644).is_err());
        assert!(read_small(&fifo, 10, None).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "secret\n");
    }

    #[test]
    fn replace_never_writes_through_a_planted_name() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let name = dir.path().join("out.prom");
        std::os::unix::fs::symlink(&victim, &name).unwrap();
        replace(dir.path(), "out.prom", b"new", 0o644, false).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(!std::fs::symlink_metadata(&name).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&name).unwrap(), "new");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 2, "no temp file left");
    }

    #[test]
    fn read_small_checks_owner_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "12345").unwrap();
        assert_eq!(read_small(&f, 5, Some(sys::geteuid())).unwrap().unwrap(), b"12345");
        assert!(read_small(&f, 4, None).is_err());
        assert!(read_small(&f, 5, Some(sys::geteuid() + 1)).is_err());
        assert!(read_small(&dir.path().join("none"), 5, None).unwrap().is_none());
    }

    #[test]
    fn lock_within_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l");
        let held = File::create(&p).unwrap();
        held.lock().unwrap();
        let e = lock_within(File::open(&p).unwrap(), Duration::from_millis(50)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        drop(held);
        assert!(lock_within(File::open(&p).unwrap(), Duration::from_secs(5)).is_ok());
    }
}
