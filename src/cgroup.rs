//! The job's own cgroup, where runonce may create one (man page, RESOURCE LIMITS, "The job's cgroup"):
//! the whole tree is killed at once (`cgroup.kill` on v2, freeze then kill
//! on v1), `--memory` and `--nproc` hold for the tree, and the record gets
//! the tree's peak memory and OOM kills.  Without a cgroup, the process
//! group, the subreaper and the per-process rlimits contain the job alone.
//!
//! Placement.  cgroup v2 forbids a non-root cgroup that holds processes to
//! give controllers to its children ("no internal processes").  As root,
//! runonce runs in cron's cgroup, which holds cron itself, so a job nested
//! there could never get a memory limit: the job goes under
//! `<v2 mount>/runonce/`, a parent that never holds a process, with the
//! memory and pids controllers enabled from the mount's root down.  The
//! price: limits of cron's own unit no longer cover the job.  Without root,
//! the only place is runonce's own cgroup, if it was delegated (writable):
//! membership and `cgroup.kill` work there, controllers do not (runonce
//! itself lives in that cgroup).  cgroup v1 has no such rule, so there the
//! job's cgroup nests in runonce's own cgroup of each hierarchy and every
//! limit already set around runonce (a unit, a container) still applies.
//!
//! A hybrid host (v2 without controllers beside v1 controllers) uses both:
//! the v2 cgroup holds the tree and kills it, v1 memory and pids limit it.
//! `contain` in the record names what holds the tree (`cgroup2`,
//! `cgroup1`); `cgroup_peak_bytes` is there when a memory controller
//! counted the tree, that is, when `--memory` held for the whole tree.
//!
//! Each run's cgroup is `runonce-NAME@PID` (PID of runonce), so concurrent
//! runs never collide; its directories and their inodes are kept in the
//! holder record, so the next runonce can kill and remove what a SIGKILLed
//! runonce left behind.  The inode tells that cgroup from one made later
//! under the same name by a runonce that got the same PID.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use crate::procs::{self, ProcId};
use crate::sys;

/// The v2 parent of every job's cgroup when runonce runs as root.
const PARENT_V2: &str = "runonce";
/// How long a removal retries while the kernel still counts the cgroup
/// as busy (a process between exit and release).
const REMOVE_PATIENCE: Duration = Duration::from_secs(1);
/// How long a freeze may take before the kill goes ahead anyway.
const FREEZE_PATIENCE: Duration = Duration::from_millis(100);

/// The name of a run's cgroup in every hierarchy.
pub fn leaf_name(job: &str, runonce_pid: i32) -> String {
    format!("runonce-{job}@{runonce_pid}")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    V2,
    Memory,
    Pids,
    Freezer,
}

impl Kind {
    /// The controller that names this v1 hierarchy in /proc/self/cgroup.
    fn controller(self) -> &'static str {
        match self {
            Kind::V2 => "",
            Kind::Memory => "memory",
            Kind::Pids => "pids",
            Kind::Freezer => "freezer",
        }
    }
}

/// A mounted hierarchy and runonce's own cgroup in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    pub mount: PathBuf,
    /// runonce's cgroup, relative to the mount.
    pub own: PathBuf,
}

impl Hierarchy {
    fn own_dir(&self) -> PathBuf {
        self.mount.join(&self.own)
    }
}

/// The cgroup filesystems runonce can use.  Tests point them at a temp
/// dir and replace mkdir/rmdir with ones that behave like the kernel's.
#[derive(Clone, Debug)]
pub struct Fs {
    pub v2: Option<Hierarchy>,
    pub memory: Option<Hierarchy>,
    pub pids: Option<Hierarchy>,
    pub freezer: Option<Hierarchy>,
    /// runonce runs as root: it may create its own parent at the v2 root.
    pub root: bool,
    /// Not every hierarchy was looked for (`discover_v2`, `unknown`):
    /// `create` looks again where these do not hold the job.
    partial: bool,
    mkdir: fn(&Path) -> io::Result<()>,
    rmdir: fn(&Path) -> io::Result<()>,
}

impl Fs {
    /// This machine's cgroup mounts and runonce's place in them: where
    /// systemd (and most init systems) mount them, else as the mount table
    /// says.
    pub fn discover() -> Fs {
        Fs::discover_in(false)
    }

    /// The v2 hierarchy alone where there is one: all that a job without
    /// `--memory` or `--nproc` needs of it, three statfs calls fewer on a
    /// hybrid layout.
    pub fn discover_v2() -> Fs {
        Fs::discover_in(true)
    }

    /// No hierarchy looked for yet (a job its process group holds).
    pub fn unknown() -> Fs {
        Fs {
            partial: true,
            ..Fs::empty(sys::geteuid() == 0, |p| fs::create_dir(p), |p| fs::remove_dir(p))
        }
    }

    fn discover_in(v2_only: bool) -> Fs {
        let own = sys::read_small("/proc/self/cgroup").unwrap_or_default();
        let root = sys::geteuid() == 0;
        Fs::standard(&own, root, sys::fs_magic, v2_only).unwrap_or_else(|| {
            let mountinfo = sys::read_small("/proc/self/mountinfo").unwrap_or_default();
            Fs::parse(&mountinfo, &own, root)
        })
    }

    /// The layout at `/sys/fs/cgroup` (v2 alone there, or a tmpfs with v2
    /// at `unified` and v1 hierarchies named by their controller), read
    /// with statfs(2): the mount table costs a run more than all of it
    /// (it lists every mount, bench/RESULTS.md).  None unless every
    /// hierarchy runonce sits in is found there, its cgroup under the mount
    /// (a mount of a subtree, as in some containers, has no such path:
    /// mountinfo tells its root).
    fn standard(
        own: &str,
        root: bool,
        magic: fn(&Path) -> Option<i64>,
        v2_only: bool,
    ) -> Option<Fs> {
        const TOP: &str = "/sys/fs/cgroup";
        const CGROUP2: i64 = libc::CGROUP2_SUPER_MAGIC;
        const CGROUP1: i64 = libc::CGROUP_SUPER_MAGIC;
        let mut fs = Fs::empty(root, |p| fs::create_dir(p), |p| fs::remove_dir(p));
        let top = Path::new(TOP);
        let pure = match magic(top)? {
            CGROUP2 => true,
            m if m == libc::TMPFS_MAGIC => false,
            _ => return None,
        };
        for kind in [Kind::V2, Kind::Memory, Kind::Pids, Kind::Freezer] {
            let Some(path) = own_path(own, kind) else { continue };
            if kind != Kind::V2 && v2_only && fs.v2.is_some() {
                fs.partial = true;
                break;
            }
            let (mount, expected) = match (kind, pure) {
                (Kind::V2, true) => (top.to_path_buf(), CGROUP2),
                (Kind::V2, false) => (top.join("unified"), CGROUP2),
                (_, true) => return None,
                (_, false) => (top.join(kind.controller()), CGROUP1),
            };
            let rel = Path::new(&path).strip_prefix("/").ok()?;
            // runonce's own cgroup, in a mount of the hierarchy's type
            if magic(&mount.join(rel))? != expected {
                return None;
            }
            *fs.slot(kind) = Some(Hierarchy { mount, own: rel.to_path_buf() });
        }
        Some(fs)
    }

    /// A layout with no hierarchy yet, making and removing cgroups with
    /// `mkdir` and `rmdir` (the kernel's, or a test's fake).
    fn empty(
        root: bool,
        mkdir: fn(&Path) -> io::Result<()>,
        rmdir: fn(&Path) -> io::Result<()>,
    ) -> Fs {
        Fs { v2: None, memory: None, pids: None, freezer: None, root, partial: false, mkdir, rmdir }
    }

    /// Reads the layout from /proc/self/mountinfo and /proc/self/cgroup.
    pub fn parse(mountinfo: &str, own: &str, root: bool) -> Fs {
        let mut fs = Fs::empty(root, |p| fs::create_dir(p), |p| fs::remove_dir(p));
        let mounts: Vec<Mount> = mountinfo.lines().filter_map(Mount::parse).collect();
        for kind in [Kind::V2, Kind::Memory, Kind::Pids, Kind::Freezer] {
            let Some(path) = own_path(own, kind) else { continue };
            let found = mounts.iter().filter(|m| m.serves(kind)).find_map(|m| {
                let rel = Path::new(&path).strip_prefix(&m.root).ok()?;
                Some(Hierarchy { mount: m.point.clone(), own: rel.to_path_buf() })
            });
            *fs.slot(kind) = found;
        }
        fs
    }

    fn slot(&mut self, kind: Kind) -> &mut Option<Hierarchy> {
        match kind {
            Kind::V2 => &mut self.v2,
            Kind::Memory => &mut self.memory,
            Kind::Pids => &mut self.pids,
            Kind::Freezer => &mut self.freezer,
        }
    }

    fn hierarchy(&self, kind: Kind) -> Option<&Hierarchy> {
        match kind {
            Kind::V2 => self.v2.as_ref(),
            Kind::Memory => self.memory.as_ref(),
            Kind::Pids => self.pids.as_ref(),
            Kind::Freezer => self.freezer.as_ref(),
        }
    }

    /// The hierarchy a directory belongs to, if it lies under one of ours.
    fn kind_of(&self, dir: &Path) -> Option<Kind> {
        [Kind::V2, Kind::Memory, Kind::Pids, Kind::Freezer]
            .into_iter()
            .find(|&k| self.hierarchy(k).is_some_and(|h| dir.starts_with(&h.mount)))
    }
}

/// One line of /proc/self/mountinfo that mounts a cgroup hierarchy.
struct Mount {
    /// The cgroup the mount shows at its top (not "/" in some containers).
    root: PathBuf,
    point: PathBuf,
    v2: bool,
    controllers: Vec<String>,
}

impl Mount {
    fn parse(line: &str) -> Option<Mount> {
        let (left, right) = line.split_once(" - ")?;
        let left: Vec<&str> = left.split(' ').collect();
        let mut right = right.split(' ');
        let fstype = right.next()?;
        let options = right.nth(1).unwrap_or("");
        let (root, point) = (unescape(left.get(3)?), unescape(left.get(4)?));
        match fstype {
            "cgroup2" => Some(Mount { root, point, v2: true, controllers: Vec::new() }),
            "cgroup" => Some(Mount {
                root,
                point,
                v2: false,
                controllers: options.split(',').map(str::to_string).collect(),
            }),
            _ => None,
        }
    }

    fn serves(&self, kind: Kind) -> bool {
        match kind {
            Kind::V2 => self.v2,
            _ => !self.v2 && self.controllers.iter().any(|c| c == kind.controller()),
        }
    }
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(field: &str) -> PathBuf {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal =
            b.get(i + 1..i + 4).filter(|d| b[i] == b'\\' && d.iter().all(u8::is_ascii_digit));
        match octal.and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok()) {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out))
}

/// runonce's cgroup in one hierarchy, from /proc/self/cgroup.
fn own_path(own: &str, kind: Kind) -> Option<String> {
    own.lines().find_map(|line| {
        let mut it = line.splitn(3, ':');
        let (id, controllers, path) = (it.next()?, it.next()?, it.next()?);
        let matches = match kind {
            Kind::V2 => id == "0" && controllers.is_empty(),
            _ => controllers.split(',').any(|c| c == kind.controller()),
        };
        matches.then(|| path.to_string())
    })
}

/// What a run asks of its cgroup.
#[derive(Clone, Copy, Debug)]
pub struct Want<'a> {
    pub job: &'a str,
    pub runonce_pid: i32,
    pub memory: Option<u64>,
    pub nproc: Option<u64>,
}

/// The outcome of trying to give the job a cgroup.
pub enum Made {
    Cgroup(Cgroup),
    /// No hierarchy runonce may write to: the process group contains the
    /// job, as expected without root or delegation.
    Unavailable,
    /// Something broke half-way; nothing was left behind.
    Failed(String),
}

fn failed(path: &Path, e: &io::Error) -> String {
    format!("cgroup {}: {e}", path.display())
}

/// No permission, no such place, read-only: the hierarchy is not ours.
fn denied(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES | libc::EPERM | libc::EROFS | libc::ENOENT | libc::ENOTDIR)
    )
}

/// One directory of the job's cgroup.
#[derive(Clone, Debug)]
struct Dir {
    kind: Kind,
    path: PathBuf,
    /// The memory controller counts (and may limit) the tree here.
    memory: bool,
    /// `--memory` holds here for the tree, swap included.
    memory_capped: bool,
    /// pids.max holds `--nproc` here.
    pids: bool,
    /// The directory's inode (unique among a boot's cgroups).
    ino: u64,
}

/// The tree's memory, as the memory controller counted it, and whether
/// the tree ran into the cgroup's limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub peak_bytes: Option<u64>,
    pub oom_kills: Option<u64>,
    /// The memory limit broke an allocation: the OOM killer struck, or
    /// (v2) an allocation failed at the limit.
    pub memory_hit: bool,
    /// The pids limit refused a fork.
    pub pids_hit: bool,
}

/// The job's cgroup: a directory in each hierarchy used, the open
/// `cgroup.procs` files the child writes itself into before exec, and the
/// v2 directory itself, open, to start the child in (`spawn`).
pub struct Cgroup {
    fs: Box<Fs>,
    dirs: Vec<Dir>,
    procs: Vec<(Kind, OwnedFd)>,
    v2_dir: Option<OwnedFd>,
}

/// Creates the run's cgroup.  Half-made cgroups are removed before a
/// failure is returned.
pub fn create(fs: &Fs, want: &Want) -> Made {
    // v1 hierarchies hold the limits v2 may lack, and the job where v2
    // cannot
    if fs.partial && (want.memory.is_some() || want.nproc.is_some()) {
        return create(&Fs::discover(), want);
    }
    let mut cg =
        Cgroup { fs: Box::new(fs.clone()), dirs: Vec::new(), procs: Vec::new(), v2_dir: None };
    match cg.build(want) {
        Ok(()) if cg.dirs.is_empty() && fs.partial => create(&Fs::discover(), want),
        Ok(()) if cg.dirs.is_empty() => Made::Unavailable,
        Ok(()) => Made::Cgroup(cg),
        Err(why) => {
            let _ = cg.remove();
            Made::Failed(why)
        }
    }
}

impl Cgroup {
    fn build(&mut self, want: &Want) -> Result<(), String> {
        let leaf = leaf_name(want.job, want.runonce_pid);
        let fs = self.fs.clone();
        if let Some(h) = &fs.v2 {
            self.make_v2(h, &leaf, want)?;
        }
        let v2 = self.dirs.iter().find(|d| d.kind == Kind::V2).cloned();
        // joining costs a write to cgroup.procs (~13 ms, bench/RESULTS.md),
        // which the v2 cgroup avoids (`spawn`): beside v2, v1 memory only
        // for --memory
        if let Some(h) = &fs.memory
            && (want.memory.is_some() || v2.is_none())
            && !v2.as_ref().is_some_and(|d| d.memory)
        {
            self.make_v1(Kind::Memory, h, &leaf, want)?;
        }
        if let (Some(h), Some(_)) = (&fs.pids, want.nproc)
            && !v2.as_ref().is_some_and(|d| d.pids)
        {
            self.make_v1(Kind::Pids, h, &leaf, want)?;
        }
        if let (Some(h), None) = (&fs.freezer, &v2) {
            self.make_v1(Kind::Freezer, h, &leaf, want)?;
        }
        Ok(())
    }

    /// The v2 directory: membership, `cgroup.kill`, and whatever
    /// controllers its parent can hand down.
    fn make_v2(&mut self, h: &Hierarchy, leaf: &str, want: &Want) -> Result<(), String> {
        let wanted: &[&str] = if want.nproc.is_some() { &["memory", "pids"] } else { &["memory"] };
        let (parent, handed) = if self.fs.root {
            let top = enable(&h.mount, wanted);
            let parent = h.mount.join(PARENT_V2);
            match (self.fs.mkdir)(&parent) {
                Err(e) if denied(&e) => return Ok(()),
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                    return Err(failed(&parent, &e));
                }
                _ => {}
            }
            // a controller the root does not hand down, runonce/ has not
            let any = wanted.iter().any(|w| top.iter().any(|t| t == w));
            let handed = if any { enable(&parent, wanted) } else { Vec::new() };
            (parent, handed)
        } else {
            let own = h.own_dir();
            let handed = enable(&own, wanted);
            (own, handed)
        };
        let Some(dir) = self.make_leaf(Kind::V2, &parent.join(leaf))? else {
            return Ok(());
        };
        // a v2 cgroup's controllers are those its parent hands down
        let has = |c: &str| handed.iter().any(|w| w == c);
        if has("memory") {
            self.mark(|d| d.memory = true);
            if let Some(bytes) = want.memory {
                write(&dir.join("memory.max"), &bytes.to_string())?;
                // --memory caps what the job holds, swapped out or not
                if dir.join("memory.swap.max").exists() {
                    write(&dir.join("memory.swap.max"), "0")?;
                    self.mark(|d| d.memory_capped = true);
                }
            }
        }
        if let (true, Some(n)) = (has("pids"), want.nproc) {
            write(&dir.join("pids.max"), &n.to_string())?;
            self.mark(|d| d.pids = true);
        }
        Ok(())
    }

    /// A v1 directory, nested in runonce's own cgroup of that hierarchy.
    fn make_v1(
        &mut self,
        kind: Kind,
        h: &Hierarchy,
        leaf: &str,
        want: &Want,
    ) -> Result<(), String> {
        let Some(dir) = self.make_leaf(kind, &h.own_dir().join(leaf))? else {
            return Ok(());
        };
        match (kind, want.memory, want.nproc) {
            (Kind::Memory, bytes, _) => {
                self.mark(|d| d.memory = true);
                if let Some(bytes) = bytes {
                    write(&dir.join("memory.limit_in_bytes"), &bytes.to_string())?;
                    // memory+swap, where swap accounting is on: the same cap
                    let memsw = dir.join("memory.memsw.limit_in_bytes");
                    if memsw.exists() {
                        write(&memsw, &bytes.to_string())?;
                        self.mark(|d| d.memory_capped = true);
                    }
                }
            }
            (Kind::Pids, _, Some(n)) => {
                write(&dir.join("pids.max"), &n.to_string())?;
                self.mark(|d| d.pids = true);
            }
            _ => {}
        }
        Ok(())
    }

    /// Makes the run's directory in one hierarchy and opens its
    /// cgroup.procs; None if the hierarchy is not runonce's to use.  One
    /// that exists already was left by an earlier runonce with the same
    /// PID: reused only if it is empty.
    fn make_leaf(&mut self, kind: Kind, path: &Path) -> Result<Option<PathBuf>, String> {
        match (self.fs.mkdir)(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                (self.fs.rmdir)(path)
                    .and_then(|()| (self.fs.mkdir)(path))
                    .map_err(|e| failed(path, &e))?;
            }
            Err(e) if denied(&e) => return Ok(None),
            Err(e) => return Err(failed(path, &e)),
        }
        // registered at once, so that a later failure removes it; the
        // inode of the directory held open, to start the child in on v2
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| failed(path, &e))?;
        let ino = dir.metadata().map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        let ino = ino.map_err(|e| failed(path, &e))?;
        if kind == Kind::V2 {
            self.v2_dir = Some(dir.into());
        }
        self.dirs.push(Dir {
            kind,
            path: path.to_path_buf(),
            memory: false,
            memory_capped: false,
            pids: false,
            ino,
        });
        let procs = path.join("cgroup.procs");
        let file = OpenOptions::new().write(true).open(&procs).map_err(|e| failed(&procs, &e))?;
        self.procs.push((kind, file.into()));
        Ok(Some(path.to_path_buf()))
    }

    /// Sets a flag on the directory made last.
    fn mark(&mut self, set: impl FnOnce(&mut Dir)) {
        if let Some(d) = self.dirs.last_mut() {
            set(d);
        }
    }

    /// `cgroup2` or `cgroup1`: which hierarchy holds the tree.
    pub fn contain(&self) -> &'static str {
        if self.dirs.iter().any(|d| d.kind == Kind::V2) { "cgroup2" } else { "cgroup1" }
    }

    /// The memory controller holds `--memory` for the tree.
    pub fn limits_memory(&self) -> bool {
        self.dirs.iter().any(|d| d.memory_capped)
    }

    /// The pids controller holds `--nproc` for the tree.
    pub fn limits_pids(&self) -> bool {
        self.dirs.iter().any(|d| d.pids)
    }

    /// Every directory, for messages.
    pub fn paths(&self) -> Vec<String> {
        self.dirs.iter().map(|d| d.path.to_string_lossy().into_owned()).collect()
    }

    /// Every directory with its inode, for the holder record.
    pub fn identities(&self) -> Vec<(u64, String)> {
        self.dirs.iter().map(|d| (d.ino, d.path.to_string_lossy().into_owned())).collect()
    }

    /// The `cgroup.procs` files the child writes "0" into before exec:
    /// all of them after a fork, all but the v2 one when the child was
    /// made in the v2 cgroup (`placed`, `spawn`).
    pub fn join_fds(&self, placed: bool) -> Vec<RawFd> {
        let skip = |k: &Kind| placed && *k == Kind::V2;
        self.procs.iter().filter(|(k, _)| !skip(k)).map(|(_, fd)| fd.as_raw_fd()).collect()
    }

    /// The v2 directory to make the child in (clone3's
    /// `CLONE_INTO_CGROUP`), if the cgroup has one.
    pub fn v2_dir(&self) -> Option<BorrowedFd<'_>> {
        self.v2_dir.as_ref().map(AsFd::as_fd)
    }

    /// SIGKILL to every process of the tree at once: `cgroup.kill`, or
    /// freeze, kill each member, thaw (kernels before 5.14, v1 freezer).
    /// Without either, each member in turn, and false: a member may fork
    /// meanwhile, so the caller must look again.
    pub fn kill(&self) -> bool {
        if let Some(d) = self.dir(Kind::V2) {
            if write(&d.join("cgroup.kill"), "1").is_err() {
                let frozen = |d: &Path| keyed(&read(&d.join("cgroup.events")), "frozen") == Some(1);
                self.frozen_kill(d, "cgroup.freeze", ("1", "0"), frozen);
            }
            true
        } else if let Some(d) = self.dir(Kind::Freezer) {
            let frozen = |d: &Path| read(&d.join("freezer.state")).trim() == "FROZEN";
            self.frozen_kill(d, "freezer.state", ("FROZEN", "THAWED"), frozen);
            true
        } else {
            self.signal_members(libc::SIGKILL);
            false
        }
    }

    /// A process (not a zombie, on v2) is still in the cgroup.
    pub fn populated(&self) -> bool {
        self.dirs.iter().any(|d| !pids_in(&d.path).is_empty())
    }

    fn frozen_kill(
        &self,
        dir: &Path,
        file: &str,
        (freeze, thaw): (&str, &str),
        frozen: impl Fn(&Path) -> bool,
    ) {
        let control = dir.join(file);
        let _ = write(&control, freeze);
        let until = Instant::now() + FREEZE_PATIENCE;
        while !frozen(dir) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.signal_members(libc::SIGKILL);
        let _ = write(&control, thaw);
    }

    fn signal_members(&self, sig: i32) {
        for p in self.members() {
            p.signal(sig);
        }
    }

    /// Sends each of `sigs` to every process of the v2 cgroup, as its
    /// `cgroup.procs` lists them (no walk over every process of the
    /// machine): each through a pidfd whose process the kernel says is in
    /// this very cgroup (its ID is the directory's inode), so a PID reused
    /// since the listing is never signalled.  The PIDs signalled, and those
    /// of process group `signalled`, which are left out: a kill of the group
    /// gave them the signals, and a second copy of a queued (real-time)
    /// signal would be a second signal.  None where the kernel cannot tell a
    /// pidfd's cgroup (before 6.13) or there is no v2 directory.
    pub fn signal_v2_members(&self, sigs: &[i32], signalled: Option<i32>) -> Option<HashSet<i32>> {
        let d = self.dirs.iter().find(|d| d.kind == Kind::V2)?;
        let mut sent = HashSet::new();
        for pid in pids_in(&d.path) {
            // asked before the pidfd's check below: if that finds the
            // process alive, the PID was still its own here
            let group = sys::getpgid(pid);
            // the signalled group's members (a big tree's bulk) had the
            // signals with it: no pidfd and no check for them
            if signalled.is_some() && group == signalled {
                sent.insert(pid);
                continue;
            }
            let Ok(pidfd) = sys::pidfd_open(pid) else {
                continue;
            };
            match sys::pidfd_cgroup_id(&pidfd) {
                Ok(_) if group.is_none() || group == signalled => {}
                Ok(id) if id == d.ino => {
                    for &sig in sigs {
                        let _ = sys::pidfd_send_signal(&pidfd, sig);
                    }
                    sent.insert(pid);
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTTY | libc::EINVAL)) => {
                    return None;
                }
                _ => {}
            }
        }
        Some(sent)
    }

    /// Whether process `pid` is in the v2 cgroup now (the kernel's word,
    /// through a pidfd, as in `signal_v2_members`).
    pub fn holds(&self, pid: i32) -> bool {
        let Some(d) = self.dirs.iter().find(|d| d.kind == Kind::V2) else {
            return false;
        };
        sys::pidfd_open(pid).and_then(|fd| sys::pidfd_cgroup_id(&fd)).is_ok_and(|id| id == d.ino)
    }

    /// Every process of the v2 hierarchy, wherever it is in it, from its
    /// cgroups' lists (a process that left the job's cgroup is in one of
    /// them); None if the hierarchy cannot be read whole.  Where the mount
    /// shows part of the hierarchy (a container), a process moved out of
    /// that part (which takes root and a mount of the whole) is not seen.
    pub fn hierarchy_pids(&self) -> Option<Vec<i32>> {
        let mut todo = vec![self.fs.v2.as_ref()?.mount.clone()];
        let mut pids = Vec::new();
        while let Some(dir) = todo.pop() {
            let listed = match fs::read_to_string(dir.join("cgroup.procs")) {
                Ok(text) => text,
                // removed meanwhile: its processes went to its parent
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(_) => return None,
            };
            pids.extend(listed.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(_) => return None,
            };
            for entry in entries {
                let entry = entry.ok()?;
                if entry.file_type().ok()?.is_dir() {
                    todo.push(entry.path());
                }
            }
        }
        Some(pids)
    }

    /// The live processes in the cgroup, in any of its hierarchies.
    pub fn members(&self) -> Vec<ProcId> {
        let mut found: Vec<ProcId> = Vec::new();
        for d in &self.dirs {
            for pid in pids_in(&d.path) {
                if let Some(id) = ProcId::of(pid).filter(|id| !found.contains(id)) {
                    found.push(id);
                }
            }
        }
        found
    }

    fn dir(&self, kind: Kind) -> Option<&Path> {
        self.dirs.iter().find(|d| d.kind == kind).map(|d| d.path.as_path())
    }

    /// Peak memory and OOM kills of the tree, where a memory controller
    /// counted them, and whether its limits refused the tree anything.
    pub fn usage(&self) -> Usage {
        let pids_hit = self
            .dirs
            .iter()
            .find(|d| d.pids)
            .is_some_and(|d| keyed(&read(&d.path.join("pids.events")), "max").unwrap_or(0) > 0);
        let Some(d) = self.dirs.iter().find(|d| d.memory) else {
            return Usage { pids_hit, ..Usage::default() };
        };
        let (peak, events) = match d.kind {
            Kind::V2 => ("memory.peak", "memory.events"),
            _ => ("memory.max_usage_in_bytes", "memory.oom_control"),
        };
        let events = read(&d.path.join(events));
        let oom_kills = keyed(&events, "oom_kill");
        let count = |key: &str| keyed(&events, key).unwrap_or(0);
        // `max` (v2) and failcnt (v1) also count reclaim that succeeded,
        // page cache pushed out at the limit: no sign of harm on their
        // own.  v1 kernels before 4.13 have no oom_kill count: there the
        // failcnt is all there is.
        let memory_hit = match (d.kind, oom_kills) {
            (Kind::V2, _) => count("oom") + count("oom_kill") > 0,
            (_, Some(n)) => n > 0,
            (_, None) => read(&d.path.join("memory.failcnt")).trim().parse().unwrap_or(0u64) > 0,
        };
        Usage {
            peak_bytes: read(&d.path.join(peak)).trim().parse().ok(),
            oom_kills,
            memory_hit,
            pids_hit,
        }
    }

    /// Moves whatever still lives in the cgroup back to runonce's own
    /// cgroups (`--keep-orphans`: the kept processes go free).
    pub fn release(&self) {
        let until = Instant::now() + REMOVE_PATIENCE;
        for d in &self.dirs {
            let Some(home) = self.fs.hierarchy(d.kind).map(|h| h.own_dir().join("cgroup.procs"))
            else {
                continue;
            };
            // a member may fork while it is moved: again until none is left
            loop {
                let pids = pids_in(&d.path);
                if pids.is_empty() || Instant::now() >= until {
                    break;
                }
                for pid in pids {
                    let _ = write(&home, &pid.to_string());
                }
            }
        }
    }

    /// Removes every directory; the kernel refuses while a process is
    /// still in one, so this only ever removes empty cgroups.
    pub fn remove(mut self) -> Result<(), String> {
        let mut errors = Vec::new();
        self.procs.clear();
        self.v2_dir = None;
        while let Some(d) = self.dirs.pop() {
            if let Err(e) = self.remove_dir(&d.path) {
                errors.push(format!("cannot remove cgroup {}: {e}", d.path.display()));
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let until = Instant::now() + REMOVE_PATIENCE;
        loop {
            match (self.fs.rmdir)(path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The cgroup of an earlier run, from its holder record: only
    /// directories named as runonce names that run's cgroup, under a cgroup
    /// mount, and still the very directories it made (same inode): after
    /// PID reuse, a directory of the same name may be a live run's.
    pub fn of_holder(
        fs: &Fs,
        dirs: &[(u64, String)],
        job: &str,
        runonce_pid: i32,
    ) -> Option<Cgroup> {
        let leaf = leaf_name(job, runonce_pid);
        let dirs: Vec<Dir> = dirs
            .iter()
            .map(|(ino, p)| (*ino, PathBuf::from(p)))
            .filter(|(ino, p)| {
                p.is_absolute()
                    && p.components()
                        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
                    && p.file_name().is_some_and(|n| n == leaf.as_str())
                    && fs::symlink_metadata(p).is_ok_and(|m| {
                        m.is_dir() && std::os::unix::fs::MetadataExt::ino(&m) == *ino
                    })
            })
            .filter_map(|(ino, path)| {
                let kind = fs.kind_of(&path)?;
                Some(Dir {
                    kind,
                    path,
                    memory: kind == Kind::Memory,
                    memory_capped: false,
                    pids: false,
                    ino,
                })
            })
            .collect();
        (!dirs.is_empty()).then(|| Cgroup {
            fs: Box::new(fs.clone()),
            dirs,
            procs: Vec::new(),
            v2_dir: None,
        })
    }

    /// Waits until no process is left in the cgroup; false after `limit`.
    pub fn wait_empty(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        loop {
            if self.dirs.iter().all(|d| pids_in(&d.path).is_empty()) {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Removes the empty cgroups of `job` whose runonce no longer exists at
/// all: a runonce SIGKILLed between making its cgroup and recording it
/// leaves one that no record names.  Only empty directories go (the kernel
/// refuses to remove a cgroup with members), and none whose PID lives, so a
/// run that got the same PID keeps its cgroup; nothing is signalled.
pub fn sweep(fs: &Fs, job: &str) {
    let prefix = format!("runonce-{job}@");
    let mut parents = Vec::new();
    if let Some(h) = &fs.v2 {
        parents.push(if fs.root { h.mount.join(PARENT_V2) } else { h.own_dir() });
    }
    for h in [&fs.memory, &fs.pids, &fs.freezer].into_iter().flatten() {
        parents.push(h.own_dir());
    }
    for parent in parents {
        for entry in fs::read_dir(&parent).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix(&prefix).and_then(|p| p.parse::<i32>().ok()) else {
                continue;
            };
            if procs::stat(pid).is_none() {
                let _ = (fs.rmdir)(&entry.path());
            }
        }
    }
}

/// Enables controllers for a cgroup's children where it has them and they
/// are off; returns the controllers its children get.  Failure is no error:
/// the job then goes without them.  Where all are on already (every run but
/// the first), one file is read.
fn enable(dir: &Path, wanted: &[&str]) -> Vec<String> {
    let control = dir.join("cgroup.subtree_control");
    // "+memory" is how a write says it (and the tests' fake shows it)
    let mut on: Vec<String> =
        words(&control).into_iter().map(|w| w.trim_start_matches('+').to_string()).collect();
    let is_on = |on: &[String], c: &str| on.iter().any(|o| o == c);
    if wanted.iter().all(|&c| is_on(&on, c)) {
        return on;
    }
    let have = words(&dir.join("cgroup.controllers"));
    let missing: Vec<&str> =
        wanted.iter().copied().filter(|&c| have.iter().any(|h| h == c) && !is_on(&on, c)).collect();
    let request: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    if !missing.is_empty() && write(&control, &request.join(" ")).is_ok() {
        on.extend(missing.iter().map(|c| c.to_string()));
    }
    on
}

/// Writes a control file that must exist (no create: a missing file is
/// an error, never a stray regular file).
fn write(path: &Path, value: &str) -> Result<(), String> {
    use std::io::Write;
    let mut f =
        OpenOptions::new().write(true).truncate(true).open(path).map_err(|e| failed(path, &e))?;
    f.write_all(value.as_bytes()).map_err(|e| failed(path, &e))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn words(path: &Path) -> Vec<String> {
    read(path).split_whitespace().map(str::to_string).collect()
}

/// The value of `key N` in a flat keyed file (memory.events, oom_control).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

fn pids_in(dir: &Path) -> Vec<i32> {
    read(&dir.join("cgroup.procs")).lines().filter_map(|l| l.trim().parse().ok()).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A cgroup v2 layout (root) whose every mkdir fails with EIO: a
    /// failure to make the cgroup that is not a refusal of permission.
    pub(crate) fn failing(dir: &Path) -> Fs {
        let mut fs = fake(dir, true, &[], true);
        fs.mkdir = |_| Err(io::Error::from_raw_os_error(libc::EIO));
        fs
    }

    /// A fake cgroup filesystem in a temp dir: mkdir fills a new directory
    /// with the control files the kernel would show, by the hierarchy named
    /// in the mount's `.kind` file; rmdir refuses a cgroup with members.
    fn fake(dir: &Path, v2: bool, v1: &[&str], root: bool) -> Fs {
        let mut fs = Fs::empty(root, fake_mkdir, fake_rmdir);
        let mut mount = |name: &str, kind: Kind| {
            let m = dir.join(name);
            fs::create_dir_all(m.join("cron")).unwrap();
            fs::write(m.join(".kind"), name).unwrap();
            populate(&m, name, &[]);
            populate(&m.join("cron"), name, &[]);
            *fs.slot(kind) = Some(Hierarchy { mount: m, own: "cron".into() });
        };
        if v2 {
            mount("unified", Kind::V2);
        }
        for &c in v1 {
            let kind = match c {
                "memory" => Kind::Memory,
                "pids" => Kind::Pids,
                _ => Kind::Freezer,
            };
            mount(c, kind);
        }
        fs
    }

    fn kind_of(path: &Path) -> String {
        path.ancestors().find_map(|a| fs::read_to_string(a.join(".kind")).ok()).unwrap()
    }

    fn populate(dir: &Path, kind: &str, controllers: &[String]) {
        let mut files = vec!["cgroup.procs"];
        match kind {
            "unified" => {
                files.extend(["cgroup.kill", "cgroup.freeze", "cgroup.subtree_control"]);
                let list = controllers.join(" ");
                fs::write(dir.join("cgroup.controllers"), list).unwrap();
                fs::write(dir.join("cgroup.events"), "populated 0\nfrozen 0\n").unwrap();
                if controllers.iter().any(|c| c == "memory") {
                    files.extend(["memory.max", "memory.swap.max"]);
                    fs::write(dir.join("memory.peak"), "12345\n").unwrap();
                    fs::write(dir.join("memory.events"), "low 0\noom 2\noom_kill 1\n").unwrap();
                }
                if controllers.iter().any(|c| c == "pids") {
                    files.push("pids.max");
                    fs::write(dir.join("pids.events"), "max 0\n").unwrap();
                }
            }
            "memory" => {
                files.extend(["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]);
                fs::write(dir.join("memory.max_usage_in_bytes"), "777\n").unwrap();
                let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
                fs::write(dir.join("memory.oom_control"), oom).unwrap();
            }
            "pids" => {
                files.push("pids.max");
                fs::write(dir.join("pids.events"), "max 0\n").unwrap();
            }
            _ => fs::write(dir.join("freezer.state"), "THAWED\n").unwrap(),
        }
        for f in files {
            fs::write(dir.join(f), "").unwrap();
        }
    }

    fn fake_mkdir(path: &Path) -> io::Result<()> {
        fs::create_dir(path)?;
        let kind = kind_of(path);
        // a v2 child gets what its parent's subtree_control enables
        let parent = path.parent().unwrap();
        let handed: Vec<String> = read(&parent.join("cgroup.subtree_control"))
            .split_whitespace()
            .map(|w| w.trim_start_matches('+').to_string())
            .collect();
        populate(path, &kind, &handed);
        Ok(())
    }

    fn fake_rmdir(path: &Path) -> io::Result<()> {
        if !path.exists() {
            return Err(io::ErrorKind::NotFound.into());
        }
        if !read(&path.join("cgroup.procs")).trim().is_empty() {
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        fs::remove_dir_all(path)
    }

    fn want(memory: Option<u64>, nproc: Option<u64>) -> Want<'static> {
        Want { job: "backup", runonce_pid: 4242, memory, nproc }
    }

    fn made(fs: &Fs, w: &Want) -> Cgroup {
        match create(fs, w) {
            Made::Cgroup(c) => c,
            Made::Unavailable => panic!("unavailable"),
            Made::Failed(why) => panic!("failed: {why}"),
        }
    }

    /// Every process of the hierarchy, from each cgroup's list down to the
    /// job's own children; a cgroup that cannot be read gives None (the
    /// walk then lists /proc), one removed meanwhile is passed over.
    #[test]
    fn hierarchy_pids_reads_every_cgroup() {
        let t = tempfile::tempdir().unwrap();
        let fs = fake(t.path(), true, &[], true);
        let top = t.path().join("unified");
        let cg = made(&fs, &want(None, None));
        let leaf = top.join("runonce/runonce-backup@4242");
        fs::write(top.join("cgroup.procs"), "1\n2\n").unwrap();
        fs::write(top.join("cron/cgroup.procs"), "30\n").unwrap();
        fs::write(leaf.join("cgroup.procs"), "40\n41\n").unwrap();
        fs::create_dir(leaf.join("moved")).unwrap();
        fs::write(leaf.join("moved/cgroup.procs"), "50\n").unwrap();
        fs::create_dir(top.join("gone")).unwrap();
        let mut pids = cg.hierarchy_pids().unwrap();
        pids.sort_unstable();
        assert_eq!(pids, [1, 2, 30, 40, 41, 50], "a cgroup without a list was removed");
        fs::create_dir(top.join("unreadable")).unwrap();
        fs::create_dir(top.join("unreadable/cgroup.procs")).unwrap();
        assert_eq!(cg.hierarchy_pids(), None, "a list that cannot be read");
    }

    /// The pure v2 layout of Debian 12 and Ubuntu 22.04+: runonce (root)
    /// under `runonce/`, memory and pids enabled down to the job.
    #[test]
    fn pure_v2_as_root() {
        let t = tempfile::tempdir().unwrap();
        let fs = fake(t.path(), true, &[], true);
        let top = t.path().join("unified");
        fs::write(top.join("cgroup.controllers"), "cpu io memory pids").unwrap();
        let cg = made(&fs, &want(Some(150 << 20), Some(64)));
        let leaf = top.join("runonce/runonce-backup@4242");
        assert_eq!(read(&top.join("cgroup.subtree_control")), "+memory +pids");
        assert_eq!(read(&top.join("runonce/cgroup.subtree_control")), "+memory +pids");
        assert_eq!(read(&leaf.join("memory.max")), (150u64 << 20).to_string());
        assert_eq!(read(&leaf.join("memory.swap.max")), "0");
        assert_eq!(read(&leaf.join("pids.max")), "64");
        assert_eq!(cg.contain(), "cgroup2");
        assert!(cg.limits_pids());
        assert_eq!(cg.paths(), [leaf.to_string_lossy()]);
        // the child's "0" goes into the leaf's cgroup.procs
        assert!(cg.v2_dir().is_some(), "the child can be made in the leaf");
        assert!(cg.join_fds(true).is_empty(), "a child made there has nothing to join");
        let fds = cg.join_fds(false);
        assert_eq!(fds.len(), 1);
        sys::write_all_fd(fds[0], b"0").unwrap();
        assert_eq!(read(&leaf.join("cgroup.procs")), "0");
        fs::write(leaf.join("cgroup.procs"), "").unwrap();
        assert!(cg.kill(), "atomic");
        assert_eq!(read(&leaf.join("cgroup.kill")), "1");
        let oom = Usage {
            peak_bytes: Some(12345),
            oom_kills: Some(1),
            memory_hit: true,
            pids_hit: false,
        };
        assert_eq!(cg.usage(), oom);
        fs::write(leaf.join("pids.events"), "max 3\n").unwrap();
        assert_eq!(cg.usage(), Usage { pids_hit: true, ..oom }, "a fork refused at pids.max");
        cg.remove().unwrap();
        assert!(!leaf.exists());
        assert!(top.join("runonce").exists(), "the shared parent stays");
    }

    /// Controllers already on are not written again; without --nproc the
    /// pids controller is not asked for.
    #[test]
    fn enables_only_what_is_missing() {
        let t = tempfile::tempdir().unwrap();
        let fs = fake(t.path(), true, &[], true);
        let top = t.path().join("unified");
        fs::write(top.join("cgroup.controllers"), "memory pids").unwrap();
        fs::write(top.join("cgroup.subtree_control"), "memory pids").unwrap();
        let cg = made(&fs, &want(None, None));
        assert_eq!(read(&top.join("cgroup.subtree_control")), "memory pids");
        assert_eq!(read(&top.join("runonce/cgroup.subtree_control")), "+memory");
        let leaf = top.join("runonce/runonce-backup@4242");
        assert_eq!(read(&leaf.join("memory.max")), "", "no --memory, no limit");
        assert!(!cg.limits_pids());
        assert_eq!(cg.usage().peak_bytes, Some(12345), "peak is recorded anyway");
        cg.remove().unwrap();
    }

    /// This machine's layout: v2 without controllers for the tree and its
    /// kill, v1 memory and pids for the limits, nested in runonce's own.
    #[test]
    fn hybrid() {
        let t = tempfile::tempdir().unwrap();
        let fs = fake(t.path(), true, &["memory", "pids", "freezer"], true);
        let cg = made(&fs, &want(Some(1 << 30), Some(100)));
        let leaf = "runonce-backup@4242";
        let v2 = t.path().join("unified/runonce").join(leaf);
        let mem = t.path().join("memory/cron").join(leaf);
        let pids = t.path().join("pids/cron").join(leaf);
        assert_eq!(read(&mem.join("memory.limit_in_bytes")), (1u64 << 30).to_string());
        assert_eq!(read(&mem.join("memory.memsw.limit_in_bytes")), (1u64 << 30).to_string());
        assert_eq!(read(&pids.join("pids.max")), "100");
        assert!(!t.path().join("freezer/cron").join(leaf).exists(), "v2 kills: no freezer");
        assert_eq!(cg.paths().len(), 3);
        assert_eq!(cg.join_fds(false).len(), 3);
        assert_eq!(cg.join_fds(true).len(), 2, "made in v2, the child joins v1 memory and pids");
        assert_eq!(cg.contain(), "cgroup2");
        let want =
            Usage { peak_bytes: Some(777), oom_kills: Some(3), memory_hit: true, pids_hit: false };
        assert_eq!(cg.usage(), want);
        cg.kill();
        assert_eq!(read(&v2.join("cgroup.kill")), "1");
        cg.remove().unwrap();
        assert!(!v2.exists() && !mem.exists() && !pids.exists());
    }

    /// Without --memory or --nproc a hybrid host's v1 controllers are not
    /// used: joining one costs a write to cgroup.procs, v2 alone holds
    /// the tree, and the child is made in it.
    #[test]
    fn hybrid_without_limits_is_v2_alone() {
        let t = tempfile::tempdir().unwrap();
        let fs = fake(t.path(), true, &["memory", "pids", "freezer"], true);
        let cg = made(&fs, &want(None, None));
        let leaf = "runonce-backup@4242";
        assert_eq!(cg.paths(), [t.path().join("unified/runonce").join(leaf).to_string_lossy()]);
        for v1 in ["memory", "pids", "freezer"] {
            assert!(!t.path().join(v1).join("cron").join(leaf).exists(), "{v1} made");
        }
        assert!(cg.v2_dir().is_some());
        assert!(cg.join_fds(true).is_empty());
        assert_eq!(cg.usage(), Usage::default(), "no memory controller counted the tree");
        cg.remove().unwrap();
    }

    /// Reclaim at the limit is no harm; an OOM is.  v1 kernels without an
    /// oom_kill count fall back on the failcnt.
    #[test]
    fn memory_hit_needs_an_oom() {
        let t = tempfile::tempdir().unwrap();
        let fs = fake(t.path(), true, &[], true);
        fs::write(t.path().join("unified/cgroup.controllers"), "memory").unwrap();
        let cg = made(&fs, &want(Some(1 << 20), None));
        let events = PathBuf::from(&cg.paths()[0]).join("memory.events");
        fs::write(&events, "low 0\nhigh 0\nmax 40\noom 0\noom_kill 0\n").unwrap();
        assert!(!cg.usage().memory_hit, "max alone is reclaim");
        fs::write(&events, "max 40\noom 1\noom_kill 0\n").unwrap();
        assert!(cg.usage().memory_hit, "an allocation failed at the limit");
        cg.remove().unwrap();

        let fs = fake(t.path(), false, &["memory"], true);
        let cg = made(&fs, &want(Some(1 << 20), None));
        let dir = PathBuf::from(&cg.paths()[0]);
        fs::write(dir.join("memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
            .unwrap();
        fs::write(dir.join("memory.failcnt"), "12\n").unwrap();
        assert!(!cg.usage().memory_hit);
        fs::write(dir.join("memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\n").unwrap();
        assert!(cg.usage().memory_hit, "no oom_kill count: the failcnt decides");
        fs::write(dir.join("memory.failcnt"), "0\n").unwrap();
        assert!(!cg.usage().memory_hit);
        cg.remove().unwrap();
    }

    /// Only v1: the freezer holds the tree still for the kill.
    #[test]
    fn v1_only_freezes_to_kill() {
        let t = tempfile::tempdir().unwrap();
        let fs = fake(t.path(), false, &["memory", "freezer"], true);
        let cg = made(&fs, &want(Some(1 << 20), None));
        assert_eq!(cg.contain(), "cgroup1");
        let freezer = t.path().join("freezer/cron/runonce-backup@4242");
        assert!(cg.kill(), "atomic");
        // the fake never reports FROZEN; the kill goes ahead and thaws
        assert_eq!(read(&freezer.join("freezer.state")), "THAWED");
        cg.remove().unwrap();
        assert!(!freezer.exists());
    }

    /// Not root and not delegated: nothing is made, silently.
    #[test]
    fn not_ours_is_unavailable() {
        let t = tempfile::tempdir().unwrap();
        let mut fs = fake(t.path(), true, &["memory"], false);
        fs.mkdir = |_| Err(io::Error::from_raw_os_error(libc::EACCES));
        assert!(matches!(create(&fs, &want(Some(1 << 20), None)), Made::Unavailable));
        assert!(matches!(create(&Fs::parse("", "", true), &want(None, None)), Made::Unavailable));
    }

    /// Delegated v2 without root: the job nests in runonce's own cgroup.
    #[test]
    fn delegated_v2_nests_in_own_cgroup() {
        let t = tempfile::tempdir().unwrap();
        let fs = fake(t.path(), true, &[], false);
        let cg = made(&fs, &want(Some(1 << 20), None));
        assert_eq!(
            cg.paths(),
            [t.path().join("unified/cron/runonce-backup@4242").to_string_lossy()]
        );
        assert!(!t.path().join("unified/runonce").exists());
        assert_eq!(cg.usage(), Usage::default(), "no memory controller there");
        cg.remove().unwrap();
    }

    /// A write failing half-way: a failure, and nothing left behind.
    #[test]
    fn half_way_failure_leaves_nothing() {
        let t = tempfile::tempdir().unwrap();
        let fs = fake(t.path(), true, &["memory"], true);
        // the kernel refuses the limit: here, the file is a directory
        let mem = t.path().join("memory/cron");
        let sabotage = |p: &Path| -> io::Result<()> {
            fake_mkdir(p)?;
            if kind_of(p) == "memory" {
                let f = p.join("memory.limit_in_bytes");
                fs::remove_file(&f)?;
                fs::create_dir(&f)?;
            }
            Ok(())
        };
        let mut broken = fs.clone();
        broken.mkdir = sabotage;
        broken.rmdir = |p| fs::remove_dir_all(p);
        match create(&broken, &want(Some(1 << 20), None)) {
            Made::Failed(why) => assert!(why.contains("memory.limit_in_bytes"), "{why}"),
            _ => panic!("expected a failure"),
        }
        assert!(!mem.join("runonce-backup@4242").exists());
        assert!(!t.path().join("unified/runonce/runonce-backup@4242").exists());
    }

    /// A leftover with our name (PID reuse after a SIGKILL) is reused when
    /// empty and refused when it has members.
    #[test]
    fn leftover_with_same_name() {
        let t = tempfile::tempdir().unwrap();
        let fs = fake(t.path(), true, &[], true);
        let leaf = t.path().join("unified/runonce/runonce-backup@4242");
        fs::create_dir_all(t.path().join("unified/runonce")).unwrap();
        fake_mkdir(&leaf).unwrap();
        made(&fs, &want(None, None)).remove().unwrap();
        fake_mkdir(&leaf).unwrap();
        fs::write(leaf.join("cgroup.procs"), "1\n").unwrap();
        assert!(matches!(create(&fs, &want(None, None)), Made::Failed(_)));
        assert!(leaf.exists(), "a cgroup in use is never removed");
    }

    /// Removal waits for the last member, and gives up on one that stays.
    #[test]
    fn remove_refuses_a_cgroup_in_use() {
        let t = tempfile::tempdir().unwrap();
        let fs = fake(t.path(), true, &[], true);
        let cg = made(&fs, &want(None, None));
        let leaf = PathBuf::from(&cg.paths()[0]);
        fs::write(leaf.join("cgroup.procs"), "1\n").unwrap();
        assert!(cg.remove().unwrap_err().contains("cannot remove cgroup"));
        assert!(leaf.exists());
    }

    #[test]
    fn holder_dirs_are_checked() {
        let t = tempfile::tempdir().unwrap();
        let fs = fake(t.path(), true, &["memory"], true);
        let good = t.path().join("unified/runonce/runonce-backup@7");
        let other = t.path().join("unified/runonce/runonce-other@7");
        fs::create_dir_all(&good).unwrap();
        fs::create_dir_all(&other).unwrap();
        let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
        let s = |p: &Path| p.to_string_lossy().into_owned();
        let dirs = vec![
            (ino(&good), s(&good)),
            (ino(&t.path().join("unified")), s(&t.path().join("unified"))),
            (ino(&other), s(&other)),
            (ino(&good), s(&t.path().join("unified/x/../runonce-backup@7"))),
            (1, "/etc/runonce-backup@7".into()),
            (ino(&good), "runonce-backup@7".into()),
        ];
        let cg = Cgroup::of_holder(&fs, &dirs, "backup", 7).unwrap();
        assert_eq!(cg.paths(), [good.to_string_lossy()]);
        assert!(Cgroup::of_holder(&fs, &dirs[1..], "backup", 7).is_none());
        // made again under the same name (PID reuse): another cgroup
        let recorded = ino(&good);
        // the old directory kept under another name: its inode is not reused
        fs::rename(&good, t.path().join("unified/runonce/gone")).unwrap();
        fs::create_dir(&good).unwrap();
        assert_ne!(ino(&good), recorded);
        assert!(Cgroup::of_holder(&fs, &[(recorded, s(&good))], "backup", 7).is_none());
    }

    #[test]
    fn sweep_removes_only_empty_dirs_of_dead_runs() {
        let t = tempfile::tempdir().unwrap();
        let fs = fake(t.path(), true, &["memory"], true);
        let parent = t.path().join("unified/runonce");
        fs::create_dir_all(&parent).unwrap();
        let dead = parent.join(format!("runonce-backup@{}", i32::MAX - 3));
        let busy = parent.join(format!("runonce-busy@{}", i32::MAX - 3));
        let live = parent.join(format!("runonce-backup@{}", std::process::id()));
        let full = t.path().join(format!("memory/cron/runonce-backup@{}", i32::MAX - 4));
        for d in [&dead, &busy, &live, &full] {
            fake_mkdir(d).unwrap();
        }
        fs::write(full.join("cgroup.procs"), "1\n").unwrap();
        sweep(&fs, "backup");
        assert!(!dead.exists(), "empty, its runonce gone: removed");
        assert!(busy.exists(), "another job's");
        assert!(live.exists(), "its PID lives");
        assert!(full.exists(), "a cgroup with members is never removed");
    }

    /// On the machine's own cgroup v2 (root): the members listed in
    /// cgroup.procs are signalled, each only once the kernel confirms its
    /// pidfd's cgroup is this one; a process outside is left alone.
    #[test]
    fn v2_members_are_signalled_from_the_list() {
        let want = Want { job: "sigtest", runonce_pid: sys::getpid(), memory: None, nproc: None };
        let Made::Cgroup(cg) = create(&Fs::discover(), &want) else {
            eprintln!("SKIP cgroup::v2_members_are_signalled_from_the_list: no cgroup to make");
            return;
        };
        let Some(dir) = cg.v2_dir() else {
            eprintln!("SKIP cgroup::v2_members_are_signalled_from_the_list: no cgroup v2");
            return;
        };
        let sleep = crate::spawn::Command::new(&["sleep".into(), "60".into()], &[]).unwrap();
        // SAFETY: the closures do nothing.
        let inside = unsafe { sleep.spawn(Some(dir), &|_| Ok(())) }.unwrap();
        // SAFETY: as above.
        let outside = unsafe { sleep.spawn(None, &|_| Ok(())) }.unwrap();
        assert!(inside.placed);
        let ino = cg.dirs[0].ino;
        let pidfd = sys::pidfd_open(inside.pid).unwrap();
        match sys::pidfd_cgroup_id(&pidfd) {
            Ok(id) => assert_eq!(id, ino, "a cgroup's ID is its directory's inode"),
            Err(e) => {
                eprintln!("SKIP cgroup::v2_members_are_signalled_from_the_list: {e}");
                sys::kill(inside.pid, libc::SIGKILL).unwrap();
                sys::kill(outside.pid, libc::SIGKILL).unwrap();
                sys::wait_pid(inside.pid);
                sys::wait_pid(outside.pid);
                cg.remove().unwrap();
                return;
            }
        }
        let sent = cg.signal_v2_members(&[libc::SIGTERM], None).unwrap();
        assert_eq!(sent, HashSet::from([inside.pid]));
        let status = |pid| {
            let mut status = 0;
            // SAFETY: a valid out-pointer; the pid is this test's child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            status
        };
        assert_eq!(libc::WTERMSIG(status(inside.pid)), libc::SIGTERM);
        let untouched = stat_state(outside.pid);
        sys::kill(outside.pid, libc::SIGKILL).unwrap();
        assert_eq!(libc::WTERMSIG(status(outside.pid)), libc::SIGKILL, "{untouched:?}");
        cg.remove().unwrap();
    }

    fn stat_state(pid: i32) -> Option<u8> {
        procs::stat(pid).map(|s| s.state)
    }

    fn layout(fs: &Fs) -> [Option<Hierarchy>; 4] {
        [fs.v2.clone(), fs.memory.clone(), fs.pids.clone(), fs.freezer.clone()]
    }

    /// Where the cgroups are mounted as systemd mounts them, statfs finds
    /// the very layout the mount table gives.
    #[test]
    fn standard_layout_agrees_with_the_mount_table() {
        let own = sys::read_small("/proc/self/cgroup").unwrap();
        let mountinfo = sys::read_small("/proc/self/mountinfo").unwrap();
        let Some(fast) = Fs::standard(&own, true, sys::fs_magic, false) else {
            eprintln!(
                "SKIP cgroup::standard_layout_agrees_with_the_mount_table: \
                 no cgroup mount at /sys/fs/cgroup here"
            );
            return;
        };
        let table = Fs::parse(&mountinfo, &own, true);
        assert!(fast.v2.is_some() || fast.memory.is_some(), "found nothing");
        assert_eq!(layout(&fast), layout(&table));
    }

    /// Anything but the standard layout goes to the mount table: another
    /// filesystem at the top, a v1 hierarchy beside a pure v2 one, a
    /// hierarchy elsewhere, a cgroup path that is no directory under the
    /// mount (a subtree mounted, as in some containers).
    #[test]
    fn other_layouts_go_to_the_mount_table() {
        const TOP: i64 = libc::CGROUP2_SUPER_MAGIC;
        let ext4 = |_: &Path| Some(0xEF53);
        assert!(Fs::standard("0::/\n", true, ext4, false).is_none());
        let pure: fn(&Path) -> Option<i64> =
            |p| (!p.to_string_lossy().contains("no-such")).then_some(TOP);
        let fs = Fs::standard("0::/\n", true, pure, false).expect("pure v2");
        assert_eq!(fs.v2, Some(Hierarchy { mount: "/sys/fs/cgroup".into(), own: "".into() }));
        assert!(Fs::standard("0::/\n4:memory:/\n", true, pure, false).is_none(), "v1 beside v2");
        let hybrid: fn(&Path) -> Option<i64> = |p| {
            Some(match p.to_str().map(|p| p.trim_end_matches('/')) {
                Some("/sys/fs/cgroup") => libc::TMPFS_MAGIC,
                Some("/sys/fs/cgroup/unified") => TOP,
                Some("/sys/fs/cgroup/memory/system.slice") => libc::CGROUP_SUPER_MAGIC,
                _ => 0,
            })
        };
        let fs =
            Fs::standard("0::/\n4:memory:/system.slice\n", true, hybrid, false).expect("hybrid");
        let memory =
            Hierarchy { mount: "/sys/fs/cgroup/memory".into(), own: "system.slice".into() };
        assert_eq!(fs.memory, Some(memory));
        assert_eq!(fs.v2.unwrap().mount, Path::new("/sys/fs/cgroup/unified"));
        assert!(Fs::standard("0::/\n5:pids:/\n", true, hybrid, false).is_none(), "pids elsewhere");
        // v2 alone: the rest is looked for when a run needs it
        let fs = Fs::standard("0::/\n4:memory:/system.slice\n", true, hybrid, true).expect("v2");
        assert_eq!((fs.v2.is_some(), fs.memory.is_none(), fs.partial), (true, true, true));
        let fs = Fs::standard("4:memory:/system.slice\n", true, hybrid, true).expect("v1 alone");
        assert_eq!((fs.memory.is_some(), fs.partial), (true, false), "no v2: v1 is all there is");
        let subtree = "0::/runonce-no-such-cgroup/x\n";
        assert!(
            Fs::standard(subtree, true, pure, false).is_none(),
            "not a directory under the mount"
        );
    }

    #[test]
    fn parses_layouts() {
        let hybrid_info = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        let hybrid_own = "8:pids:/\n6:freezer:/\n4:memory:/process_api/abc\n0::/\n";
        let fs = Fs::parse(hybrid_info, hybrid_own, true);
        let v2 = fs.v2.as_ref().unwrap();
        assert_eq!(
            (v2.mount.as_path(), v2.own.as_path()),
            (Path::new("/sys/fs/cgroup/unified"), Path::new(""))
        );
        assert_eq!(
            fs.memory.as_ref().unwrap().own_dir(),
            Path::new("/sys/fs/cgroup/memory/process_api/abc")
        );
        assert_eq!(fs.pids.as_ref().unwrap().own_dir(), Path::new("/sys/fs/cgroup/pids/"));

        let pure =
            "30 24 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        let fs = Fs::parse(pure, "0::/system.slice/cron.service\n", true);
        assert_eq!(fs.v2.unwrap().own, Path::new("system.slice/cron.service"));
        assert!(fs.memory.is_none());

        // a container seeing its own subtree mounted at /sys/fs/cgroup
        let sub = "99 1 0:26 /docker/abc /sys/fs/cgroup\\040x ro - cgroup2 cgroup2 rw\n";
        let fs = Fs::parse(sub, "0::/docker/abc/inner\n", true);
        let v2 = fs.v2.unwrap();
        assert_eq!(
            (v2.mount.as_path(), v2.own.as_path()),
            (Path::new("/sys/fs/cgroup x"), Path::new("inner"))
        );
        // our cgroup outside what the mount shows: unusable
        assert!(Fs::parse(sub, "0::/elsewhere\n", true).v2.is_none());
    }

    #[test]
    fn keyed_files() {
        assert_eq!(keyed("oom 2\noom_kill 1\n", "oom_kill"), Some(1));
        assert_eq!(keyed("oom_kill_disable 0\noom_kill 4\n", "oom_kill"), Some(4));
        assert_eq!(keyed("oom 2\n", "oom_kill"), None);
    }
}
