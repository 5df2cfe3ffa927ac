//! Finding and signalling processes through /proc, safe against PID reuse:
//! a process is named by its PID *and* its start time, and a signal goes
//! through a pidfd opened and then re-checked against that start time.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;

use crate::sys;

/// One process, identified so that a reused PID never matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcId {
    pub pid: i32,
    /// Start time in clock ticks since boot (/proc/PID/stat field 22).
    pub start: u64,
}

/// The fields of /proc/PID/stat that runonce uses.
#[derive(Clone, Copy, Debug)]
pub struct Stat {
    pub state: u8,
    pub ppid: i32,
    pub pgrp: i32,
    pub start: u64,
}

/// Reads /proc/PID/stat; None if the process is gone.
pub fn stat(pid: i32) -> Option<Stat> {
    // one read into a buffer that holds any stat line (52 numbers and a
    // name of at most 64 bytes): fs::read would stat the file and probe with
    // growing reads, three times the system calls, once per process on the
    // machine in every walk over /proc
    let mut buf = [0u8; 2048];
    let mut file = fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let n = file.read(&mut buf).ok()?;
    if n < buf.len() {
        return parse_stat(&buf[..n]);
    }
    let mut text = buf.to_vec();
    file.read_to_end(&mut text).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &[u8]) -> Option<Stat> {
    // the command name may hold spaces and parentheses: split after the last ')'
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    Some(Stat {
        state: *f.first()?.as_bytes().first()?,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

impl Stat {
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, b'Z' | b'X')
    }
}

impl ProcId {
    /// The process with this PID right now, if any.
    pub fn of(pid: i32) -> Option<ProcId> {
        stat(pid).map(|s| ProcId { pid, start: s.start })
    }

    /// Still the same process, and not a zombie.
    pub fn alive(&self) -> bool {
        stat(self.pid).is_some_and(|s| s.start == self.start && !s.is_zombie())
    }

    /// Sends `sig` if this is still the same process.  The pidfd pins the
    /// process between the identity check and the signal.
    pub fn signal(&self, sig: i32) -> bool {
        self.signal_each(&[sig])
    }

    /// Sends each of `sigs` in order through one pidfd; false if the
    /// process is gone or any signal failed.
    pub fn signal_each(&self, sigs: &[i32]) -> bool {
        let Ok(pidfd) = sys::pidfd_open(self.pid) else {
            return false;
        };
        if stat(self.pid).is_none_or(|s| s.start != self.start) {
            return false;
        }
        // every signal is sent, even after one failed
        let mut ok = true;
        for &sig in sigs {
            ok &= sys::pidfd_send_signal(&pidfd, sig).is_ok();
        }
        ok
    }
}

/// Every PID in /proc; none if this /proc belongs to another PID namespace
/// (`unshare --pid --fork` without a new /proc): its PIDs would name other
/// processes than ours, so no walk may use them.
fn all_pids() -> Vec<i32> {
    static OURS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ours = OURS.get_or_init(|| {
        fs::read_link("/proc/self")
            .is_ok_and(|p| p.as_os_str() == sys::getpid().to_string().as_str())
    });
    let Some(dir) = ours.then(|| fs::read_dir("/proc").ok()).flatten() else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// A live descendant and its process group.
#[derive(Clone, Copy, Debug)]
pub struct Member {
    pub id: ProcId,
    pub pgrp: i32,
}

/// The live (non-zombie) descendants of `root`, at any depth.
pub fn descendants(root: i32) -> Vec<Member> {
    descendants_except(root, &Strangers::default())
}

/// Children runonce has though it did not start them: a shell's earlier
/// children when it `exec`s runonce (`(sleep 5 & exec runonce -- job)`).
/// They and their descendants are not the job's: never signalled, never
/// waited for.
#[derive(Clone, Debug, Default)]
pub struct Strangers {
    ids: Vec<ProcId>,
    /// Start time of the job's main process: an orphan re-parented to
    /// runonce that started before it cannot be the job's.
    job_start: Option<u64>,
}

impl Strangers {
    /// The processes below runonce now, before it starts any job (in the
    /// usual case it has no child, and this is one system call).
    pub fn now() -> Strangers {
        if !sys::has_children() {
            return Strangers::default();
        }
        Strangers {
            ids: descendants(sys::getpid()).into_iter().map(|m| m.id).collect(),
            job_start: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The job's main process started: orphans older than it are strangers'.
    pub fn job_started(&mut self, main: Option<ProcId>) {
        self.job_start = main.map(|m| m.start);
    }

    /// A process runonce reaped: its PID may now be reused by the job.
    /// Returns whether it was a stranger.
    pub fn reaped(&mut self, pid: i32) -> bool {
        let before = self.ids.len();
        self.ids.retain(|id| id.pid != pid);
        self.ids.len() != before
    }

    fn owns(&self, root: i32, pid: i32, s: &Stat) -> bool {
        self.ids.iter().any(|id| id.pid == pid && id.start == s.start)
            || (!self.ids.is_empty()
                && s.ppid == root
                && self.job_start.is_some_and(|job| s.start < job))
    }
}

/// The live descendants of `root`, leaving out `strangers` and everything
/// below them.
pub fn descendants_except(root: i32, strangers: &Strangers) -> Vec<Member> {
    below(root, vec![root], strangers, &children_of(&HashSet::new()))
}

/// The live descendants of `root` that are not `known` (the members of the
/// job's cgroup, just signalled from its list): the processes that left the
/// cgroup.  `everyone`: every process, from the cgroup hierarchy's lists,
/// or None to list /proc.  The known are not read (with a big tree, they
/// are the bulk of the walk); a process whose parent is one of them is the
/// job's if `in_job(parent)` confirms that parent is in the cgroup still
/// (so a PID reused since the list was read leads nowhere).
pub fn descendants_outside(
    root: i32,
    strangers: &Strangers,
    known: &HashSet<i32>,
    everyone: Option<Vec<i32>>,
    in_job: impl Fn(i32) -> bool,
) -> Vec<Member> {
    let children = children_among(everyone.unwrap_or_else(all_pids), known);
    let mut tops = vec![root];
    tops.extend(children.keys().copied().filter(|p| known.contains(p) && in_job(*p)));
    below(root, tops, strangers, &children)
}

/// Every process but `skip`, by its parent.
fn children_of(skip: &HashSet<i32>) -> HashMap<i32, Vec<(i32, Stat)>> {
    children_among(all_pids(), skip)
}

/// `pids` but `skip`, by their parents.
fn children_among(pids: Vec<i32>, skip: &HashSet<i32>) -> HashMap<i32, Vec<(i32, Stat)>> {
    let mut children: HashMap<i32, Vec<(i32, Stat)>> = HashMap::new();
    for pid in pids.into_iter().filter(|p| !skip.contains(p)) {
        if let Some(s) = stat(pid) {
            children.entry(s.ppid).or_default().push((pid, s));
        }
    }
    children
}

/// The live processes below `tops` (`root`'s strangers left out).
fn below(
    root: i32,
    tops: Vec<i32>,
    strangers: &Strangers,
    children: &HashMap<i32, Vec<(i32, Stat)>>,
) -> Vec<Member> {
    let mut found = Vec::new();
    let mut todo = tops;
    let mut seen = HashSet::new();
    while let Some(parent) = todo.pop() {
        for &(pid, s) in children.get(&parent).map(Vec::as_slice).unwrap_or(&[]) {
            if strangers.owns(root, pid, &s) {
                continue;
            }
            if seen.insert(pid) {
                todo.push(pid);
                if !s.is_zombie() {
                    found.push(Member { id: ProcId { pid, start: s.start }, pgrp: s.pgrp });
                }
            }
        }
    }
    found
}

/// The processes holding a flock on the file (dev, ino) through the open
/// file description whose position is `pos`: the run of runonce that set
/// that random position when it took the lock (holder.rs says why).  A
/// process that merely has the file open, locked through another
/// description, or not locked (kept orphans after runonce released it)
/// does not count.  `pos` None: any description that holds a flock on it.
pub fn ofd_holders(dev: u64, ino: u64, pos: Option<u64>) -> Vec<ProcId> {
    let mut found = Vec::new();
    for pid in all_pids() {
        if holds_ofd(pid, dev, ino, pos)
            && let Some(id) = ProcId::of(pid)
            && id.alive()
        {
            found.push(id);
        }
    }
    found
}

/// Whether process `pid` holds a flock on (dev, ino) through a description
/// at position `pos` (any, if None): see `ofd_holders`.
pub fn holds_ofd(pid: i32, dev: u64, ino: u64, pos: Option<u64>) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok).any(|fd| {
        fs::metadata(fd.path()).is_ok_and(|m| m.dev() == dev && m.ino() == ino)
            && fdinfo_holds(pid, &fd.file_name().to_string_lossy(), pos)
    })
}

/// /proc/PID/fdinfo/FD gives the description's position and lists the
/// locks it owns.
fn fdinfo_holds(pid: i32, fd: &str, pos: Option<u64>) -> bool {
    fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).is_ok_and(|t| fdinfo_says(&t, pos))
}

fn fdinfo_says(text: &str, pos: Option<u64>) -> bool {
    let at = text.lines().find_map(|l| l.strip_prefix("pos:")).and_then(|v| v.trim().parse().ok());
    pos.is_none_or(|p| at == Some(p))
        && text.lines().any(|l| l.starts_with("lock:") && l.contains("FLOCK"))
}

/// Whether process `pid` runs the very program this process runs (the
/// same file: device and inode of /proc/PID/exe).
pub fn runs_our_program(pid: i32) -> bool {
    let id = |path: String| fs::metadata(path).map(|m| (m.dev(), m.ino()));
    match (id(format!("/proc/{pid}/exe")), id("/proc/self/exe".into())) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The real UID of a process.
pub fn uid_of(pid: i32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_position_and_lock() {
        let t = "pos:\t1099511627776\nflags:\t0100000\nmnt_id:\t29\nino:\t12\n\
                 lock:\t1: FLOCK  ADVISORY  WRITE 4242 fd:01:12 0 EOF\n";
        assert!(fdinfo_says(t, Some(1 << 40)));
        assert!(fdinfo_says(t, None));
        assert!(!fdinfo_says(t, Some(1 << 39)));
        assert!(!fdinfo_says("pos:\t5\nflags:\t0\n", Some(5)), "no lock");
        let posix = "pos:\t5\nlock:\t1: POSIX  ADVISORY  WRITE 4242 fd:01:12 0 EOF\n";
        assert!(!fdinfo_says(posix, Some(5)), "an fcntl lock is no flock");
    }

    /// Who holds a flock on a file through the description at a position,
    /// read from real processes: this one (it locked it), a child that
    /// inherited the description; not a child that merely opened the file,
    /// and nobody for another file of the same file system.
    #[test]
    fn flock_holders_are_found_by_file_and_position() {
        use std::io::{Seek, SeekFrom};
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let (path, other) = (dir.path().join("lock"), dir.path().join("other"));
        let locked = fs::File::create(&path).unwrap();
        fs::File::create(&other).unwrap();
        locked.lock().unwrap();
        let pos = (&locked).seek(SeekFrom::Start(1 << 33)).unwrap();
        let sleep = |stdin: fs::File| {
            Command::new("sleep").arg("100").stdin(stdin).stdout(Stdio::null()).spawn().unwrap()
        };
        let mut heir = sleep(locked.try_clone().unwrap());
        let mut opener = sleep(fs::File::open(&path).unwrap());
        let m = fs::metadata(&path).unwrap();
        let (dev, ino) = (m.dev(), m.ino());
        let me = sys::getpid();
        let (heir_pid, opener_pid) = (heir.id() as i32, opener.id() as i32);
        let holders = |pos| {
            let mut pids: Vec<i32> = ofd_holders(dev, ino, pos).iter().map(|p| p.pid).collect();
            pids.sort();
            pids
        };
        let found = (
            holds_ofd(me, dev, ino, Some(pos)),
            holds_ofd(me, dev, ino, None),
            holds_ofd(me, dev, ino, Some(pos + 1)),
            holds_ofd(me, dev, fs::metadata(&other).unwrap().ino(), Some(pos)),
            holds_ofd(heir_pid, dev, ino, Some(pos)),
            holds_ofd(opener_pid, dev, ino, None),
            holders(Some(pos)),
            holders(None),
            holders(Some(pos + 1)),
        );
        for c in [&mut heir, &mut opener] {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        let mut both = vec![me, heir_pid];
        both.sort();
        assert!(found.0 && found.1, "the locking process, by position or any");
        assert!(!found.2, "another position");
        assert!(!found.3, "another file of the same file system");
        assert!(found.4, "a child that inherited the locked description");
        assert!(!found.5, "a child that has the file open, unlocked");
        assert_eq!((found.6, found.7, found.8), (both.clone(), both, vec![]));
    }

    /// Every signal is sent through the pidfd, even after one failed; the
    /// answer says whether all went.
    #[test]
    fn each_signal_is_sent_and_a_failed_one_is_said() {
        use std::os::unix::process::ExitStatusExt;
        let mut child = std::process::Command::new("sleep").arg("100").spawn().unwrap();
        let id = ProcId::of(child.id() as i32).unwrap();
        let one = id.signal(0);
        let (both, bad_first) = (id.signal_each(&[0, 0]), id.signal_each(&[-1, libc::SIGKILL]));
        let status = child.wait().unwrap();
        assert!(one, "a null signal to a live process");
        assert!(both, "two null signals to a live process");
        assert!(!bad_first, "an invalid signal");
        assert_eq!(status.signal(), Some(libc::SIGKILL), "the signal after the invalid one");
        assert!(!id.signal_each(&[0]), "a process reaped");
    }

    #[test]
    fn stat_with_odd_command_name() {
        let line = b"42 (a) b (c) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!((s.state, s.ppid, s.pgrp, s.start), (b'S', 1, 42, 777));
    }

    #[test]
    fn our_program_is_ours_and_init_is_not() {
        assert!(runs_our_program(sys::getpid()));
        assert!(!runs_our_program(1));
        assert!(!runs_our_program(i32::MAX), "no such process");
    }

    /// A process the cgroup listed but holds no more (it moved out, or its
    /// PID was reused since the list was read) leads to none of its
    /// children; one it still holds leads to them.
    #[test]
    fn a_listed_process_the_cgroup_no_longer_holds_leads_nowhere() {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut parent = Command::new("sh")
            .args(["-c", "sleep 100 & echo $!; wait"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(parent.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let child: i32 = line.trim().parse().unwrap();
        let mut root = Command::new("sleep").arg("100").spawn().unwrap();
        let (p, r) = (parent.id() as i32, root.id() as i32);
        let listed = HashSet::from([p]);
        let found = |holds: bool| {
            descendants_outside(r, &Strangers::default(), &listed, None, |q| holds && q == p)
                .iter()
                .any(|m| m.id.pid == child)
        };
        let (moved_out, held) = (found(false), found(true));
        for pid in [child, p, r] {
            let _ = sys::kill(pid, libc::SIGKILL);
        }
        parent.wait().unwrap();
        root.wait().unwrap();
        assert!(!moved_out, "the child of a process the cgroup no longer holds");
        assert!(held, "the child of a listed process the cgroup holds");
    }

    /// Whose a process is, from its PID, parent and start time: a stranger's
    /// if listed (the same PID *and* start), or if it is an orphan runonce
    /// (`ROOT`) took in that started before the job's main process while a
    /// stranger is left; else the job's.  An orphan that started after the
    /// main process, or in the same clock tick, may be the job's own.
    #[test]
    fn strangers_own_their_listed_processes_and_older_orphans_only() {
        const ROOT: i32 = 10;
        let stat = |ppid, start| Stat { state: b'S', ppid, pgrp: ppid, start };
        let mut s = Strangers { ids: vec![ProcId { pid: 50, start: 500 }], job_start: None };
        assert!(!s.owns(ROOT, 70, &stat(ROOT, 550)), "no job yet: no orphan is told apart");
        s.job_started(Some(ProcId { pid: 60, start: 600 }));
        assert!(s.owns(ROOT, 50, &stat(ROOT, 500)), "listed");
        assert!(s.owns(ROOT, 50, &stat(99, 500)), "listed, below another stranger");
        assert!(!s.owns(ROOT, 50, &stat(99, 700)), "its PID reused by the job");
        assert!(!s.owns(ROOT, 51, &stat(99, 500)), "another process of the same tick");
        assert!(s.owns(ROOT, 70, &stat(ROOT, 550)), "an older orphan runonce took in");
        assert!(!s.owns(ROOT, 71, &stat(ROOT, 600)), "an orphan of the main's own tick");
        assert!(!s.owns(ROOT, 72, &stat(ROOT, 650)), "an orphan younger than the main");
        assert!(!s.owns(ROOT, 73, &stat(99, 550)), "an older process not runonce's child");
        let mut none = Strangers::default();
        none.job_started(Some(ProcId { pid: 60, start: 600 }));
        assert!(!none.owns(ROOT, 70, &stat(ROOT, 550)), "no stranger: every orphan is the job's");
    }

    /// A reaped stranger leaves the list (its PID may come back as the
    /// job's); a reaped process that was no stranger changes nothing.
    #[test]
    fn a_reaped_stranger_leaves_the_list() {
        let mut s = Strangers {
            ids: vec![ProcId { pid: 50, start: 500 }, ProcId { pid: 51, start: 510 }],
            job_start: Some(600),
        };
        assert!(!s.reaped(60), "the job's main process");
        assert_eq!(s.ids.len(), 2);
        assert!(s.reaped(50));
        assert!(!s.reaped(50), "reaped once");
        assert!(!s.is_empty());
        assert!(s.owns(10, 70, &Stat { state: b'S', ppid: 10, pgrp: 10, start: 550 }));
        assert!(s.reaped(51));
        assert!(s.is_empty());
        assert!(!s.owns(10, 70, &Stat { state: b'S', ppid: 10, pgrp: 10, start: 550 }));
    }

    /// The UID is each process's own: a child started as nobody is nobody's.
    #[test]
    fn uid_is_read_per_process() {
        use std::os::unix::process::CommandExt;
        assert_eq!(uid_of(sys::getpid()), Some(sys::geteuid()));
        assert_eq!(uid_of(i32::MAX), None, "no such process");
        if sys::geteuid() != 0 {
            eprintln!("SKIP uid_is_read_per_process (another user's process): not root");
            return;
        }
        let mut child =
            std::process::Command::new("sleep").arg("100").uid(65534).gid(65534).spawn().unwrap();
        let uid = uid_of(child.id() as i32);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(uid, Some(65534));
    }

    /// A child that exited but is not reaped yet is no live process: not
    /// `alive`, not among the descendants a kill walk signals.
    #[test]
    fn a_zombie_is_neither_alive_nor_a_descendant() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let id = ProcId::of(pid).unwrap();
        // SAFETY: a zeroed siginfo_t is valid; WNOWAIT leaves the child a
        // zombie for the checks below.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid on our own child, writing into `info`.
        let r = unsafe {
            libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT)
        };
        assert_eq!(r, 0);
        let zombie = stat(pid).is_some_and(|s| s.is_zombie());
        let alive = id.alive();
        let listed = descendants(sys::getpid()).iter().any(|m| m.id.pid == pid);
        child.wait().unwrap();
        assert!(zombie, "exited, not reaped");
        assert!(!alive, "a zombie is not alive");
        assert!(!listed, "a zombie is no descendant to signal");
    }

    #[test]
    fn self_is_alive_and_found_under_parent() {
        let me = ProcId::of(sys::getpid()).unwrap();
        assert!(me.alive());
        let stale = ProcId { pid: me.pid, start: me.start + 1 };
        assert!(!stale.alive());
        assert!(!stale.signal(0));
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let found = descendants(sys::getpid());
        assert!(found.iter().any(|p| p.id.pid == child.id() as i32));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
