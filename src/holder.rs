//! Who holds a job's lock, and which processes are proven to be that run's.
//!
//! The holder record (PIDs, start, deadline, cgroup) is kept in a file of
//! its own in runonce's lock directory, never in the lock file: the lock file
//! may be a file of the caller's (`--lock`), and the job inherits only a
//! read-only descriptor of it.  The record is a hint, never an authority
//! (man page, SECURITY): one that another user owns is ignored, and a
//! process is signalled only once proven to belong to the run, because it
//! holds the very open file description that run's runonce locked (its file
//! position is a random number recorded in the record, seen in
//! /proc/PID/fdinfo beside the lock), or it is in the cgroup runonce made for
//! the run (same name and same inode as recorded: a cgroup made again under
//! the same name after PID reuse is another cgroup).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cgroup::{self, Cgroup};
use crate::files;
use crate::lock::Site;
use crate::procs::{self, ProcId};
use crate::sys;

/// A record longer than this is not one runonce wrote.
const RECORD_MAX: u64 = 64 << 10;

/// The run holding a lock, as its runonce recorded it.
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
    /// The job's cgroup: (inode, directory) per hierarchy, so that the next
    /// runonce can kill and remove what a SIGKILLed runonce left behind.
    pub cgroups: Vec<(u64, String)>,
    /// The lock file this record is about: (device, inode).
    pub lock: (u64, u64),
    /// The file position runonce gave its lock's open file description
    /// (0: none could be set).
    pub ofd: u64,
    /// Cgroups of earlier runs whose runonce died before removing them,
    /// carried from record to record until a run has cleared them (so that
    /// a runonce killed before it could clear them loses nothing).
    pub leftovers: Vec<Leftover>,
}

/// A cgroup an earlier run of the same job left behind (its name is the
/// record's: a record never speaks for another job's cgroups).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leftover {
    pub name: String,
    pub runonce_pid: i32,
    pub ino: u64,
    pub dir: String,
}

impl Leftover {
    /// The cgroup, if it is still the very one that run made.
    pub fn cgroup(&self) -> Option<Cgroup> {
        let dirs = [(self.ino, self.dir.clone())];
        Cgroup::of_holder(&cgroup::Fs::discover(), &dirs, &self.name, self.runonce_pid)
    }
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
        t.push_str(&format!("lock={} {}\n", self.lock.0, self.lock.1));
        t.push_str(&format!("ofd={}\n", self.ofd));
        for (ino, dir) in &self.cgroups {
            t.push_str(&format!("cgroup={ino} {dir}\n"));
        }
        for l in &self.leftovers {
            t.push_str(&format!("leftover={} {} {}\n", l.runonce_pid, l.ino, l.dir));
        }
        t.push_str("end\n");
        t
    }

    /// Parses a record; None if it is torn or any value is out of range.
    pub fn parse(text: &str) -> Option<Holder> {
        let mut h = Holder::default();
        let id = |v: &str| -> Option<Option<ProcId>> {
            if v.is_empty() {
                return Some(None);
            }
            let mut it = v.split(' ');
            let pid: i32 = it.next()?.parse().ok().filter(|&p| p > 0)?;
            let start = it.next()?.parse().ok()?;
            it.next().is_none().then_some(Some(ProcId { pid, start }))
        };
        for line in text.lines() {
            if line == "end" {
                for l in &mut h.leftovers {
                    l.name.clone_from(&h.name);
                }
                return Some(h);
            }
            let (k, v) = line.split_once('=')?;
            match k {
                "name" => h.name = v.to_string(),
                "runonce" => h.runonce = id(v)?,
                "job" => h.job = id(v)?,
                "started" => {
                    // a time runonce could have written: finite, after 1970
                    h.started_unix = v.parse().ok().filter(|t: &f64| t.is_finite() && *t >= 0.0)?;
                }
                "deadline_mono_ns" => h.deadline_mono_ns = v.parse().ok()?,
                "uid" => h.uid = v.parse().ok()?,
                "lock" => {
                    let (dev, ino) = v.split_once(' ')?;
                    h.lock = (dev.parse().ok()?, ino.parse().ok()?);
                }
                "ofd" => h.ofd = v.parse().ok()?,
                "cgroup" => {
                    let (ino, dir) = v.split_once(' ')?;
                    h.cgroups.push((ino.parse().ok()?, dir.to_string()));
                }
                "leftover" => {
                    let mut it = v.splitn(3, ' ');
                    let runonce_pid = it.next()?.parse().ok()?;
                    let ino = it.next()?.parse().ok()?;
                    let dir = it.next()?.to_string();
                    h.leftovers.push(Leftover { name: String::new(), runonce_pid, ino, dir });
                }
                _ => {}
            }
        }
        None
    }

    /// Reads the record at `path` if it is a regular file of runonce's own
    /// user: one another user wrote (or could have) is no record.
    pub fn load(path: &Path) -> Option<Holder> {
        let bytes = files::read_small(path, RECORD_MAX, Some(sys::geteuid())).ok()??;
        Holder::parse(std::str::from_utf8(&bytes).ok()?)
    }

    /// The PID to show for this holder: the job's if it lives, else runonce's.
    pub fn shown_pid(&self) -> Option<i32> {
        self.job.filter(ProcId::alive).or(self.runonce).map(|p| p.pid)
    }

    /// The lock is held but not by the recorded runonce: the job is
    /// orphaned.  Proven, as everything a record says: a live process
    /// under the recorded PID and start that does not hold this very lock
    /// is no runonce supervising the run (nor is a record without one).
    pub fn orphaned(&self) -> bool {
        let (dev, ino) = self.lock;
        self.runonce
            .is_none_or(|r| !r.alive() || !procs::holds_ofd(r.pid, dev, ino, Some(self.ofd)))
    }

    pub fn age_secs(&self) -> f64 {
        (crate::state::unix_now() - self.started_unix).max(0.0)
    }

    /// The job's cgroup as recorded, if each directory is still the very
    /// one runonce made (name and inode; see `Cgroup::of_holder`).
    pub fn cgroup(&self) -> Option<Cgroup> {
        let pid = self.runonce?.pid;
        Cgroup::of_holder(&cgroup::Fs::discover(), &self.cgroups, &self.name, pid)
    }

    /// What the next holder must clear: the leftovers this record carries,
    /// and its own cgroup if its runonce is gone.
    pub fn to_clear(&self) -> Vec<Leftover> {
        let mut all = self.leftovers.clone();
        if let Some(r) = self.runonce.filter(|r| !r.alive()) {
            all.extend(self.cgroups.iter().map(|(ino, dir)| Leftover {
                name: self.name.clone(),
                runonce_pid: r.pid,
                ino: *ino,
                dir: dir.clone(),
            }));
        }
        all
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

    /// An orphan whose recorded deadline has passed.
    pub fn overdue(&self) -> bool {
        self.orphaned() && self.deadline().is_some_and(|d| d <= Instant::now())
    }

    /// The processes of this run, each proven (see the module doc): those
    /// in `holders` (they hold the run's open file description), the
    /// descendants of its runonce if that is one of them, and the members
    /// of its cgroup.  runonce itself is not among them.
    pub fn members(&self, holders: &[ProcId]) -> Vec<ProcId> {
        let runonce = self.runonce.filter(|r| holders.contains(r));
        let mut found: Vec<ProcId> = Vec::new();
        let mut add = |p: ProcId| {
            if Some(p) != runonce && !found.contains(&p) {
                found.push(p);
            }
        };
        holders.iter().copied().for_each(&mut add);
        if let Some(r) = runonce {
            procs::descendants(r.pid).into_iter().for_each(|m| add(m.id));
        }
        if let Some(cg) = self.cgroup() {
            cg.members().into_iter().for_each(&mut add);
        }
        found
    }
}

/// Who holds a lock file right now.
#[derive(Debug)]
pub enum Current {
    Free,
    /// Held through the open file description the record names: the record
    /// describes the holder, and `holders` are the processes proven to hold
    /// that description.
    Ours {
        holder: Holder,
        holders: Vec<ProcId>,
    },
    /// Held, but through no description a record of ours names: a process
    /// that is not a run of this job (another user's flock on a `--lock`
    /// file), or a run that has not written its record yet.  `locker`: the
    /// PID that took the lock, as /proc/locks tells it.
    Unknown {
        locker: Option<i32>,
    },
}

/// The record of a slot, if it is one to go by: a regular file of
/// runonce's own user, about the lock file there now, and for a job's own
/// lock file (not `--lock`), about that job: a record that names another
/// job, or another file, proves nothing about this one.
pub fn record(site: &Site, slot: u32) -> Option<Holder> {
    let id = crate::lock::file_id(&site.lock_path(slot)?)?;
    let h = Holder::load(&site.record_path(slot)?)?;
    let job = site.job_name();
    (h.lock == id && job.is_none_or(|j| j == h.name)).then_some(h)
}

/// Who holds the lock of `slot` right now: every process proven to hold
/// it (a walk over all processes' descriptors).
pub fn current(site: &Site, slot: u32) -> Current {
    look(site, slot, false)
}

/// Who holds the lock of `slot`, looking first at the recorded runonce and
/// job only: enough to name the holder in a skip and to tell an overdue
/// orphan (`holders` may then be incomplete; `current` before signalling).
pub fn glance(site: &Site, slot: u32) -> Current {
    look(site, slot, true)
}

fn look(site: &Site, slot: u32, quick: bool) -> Current {
    let Some(path) = site.lock_path(slot) else {
        return Current::Free;
    };
    let Some((dev, ino)) = crate::lock::file_id(&path) else {
        return Current::Free;
    };
    let lockers = crate::lock::lockers(dev, ino).unwrap_or_default();
    if lockers.is_empty() && !crate::lock::probe_held(&path) {
        return Current::Free;
    }
    if let Some(holder) = record(site, slot).filter(|h| h.ofd != 0) {
        let recorded = [holder.runonce, holder.job].into_iter().flatten();
        let seen = recorded
            .filter(|p| quick && p.alive() && procs::holds_ofd(p.pid, dev, ino, Some(holder.ofd)))
            .collect::<Vec<_>>();
        if !seen.is_empty() {
            return Current::Ours { holder, holders: seen };
        }
        let holders = procs::ofd_holders(dev, ino, Some(holder.ofd));
        if !holders.is_empty() {
            return Current::Ours { holder, holders };
        }
    }
    Current::Unknown { locker: lockers.into_iter().find(|&p| p > 0) }
}

/// For messages: a live process that holds the lock of `slot` (through
/// any description), else the PID that took it.
pub fn someone_holding(site: &Site, slot: u32, locker: Option<i32>) -> Option<i32> {
    let (dev, ino) = site.lock_path(slot).and_then(|p| crate::lock::file_id(&p))?;
    procs::ofd_holders(dev, ino, None).first().map(|p| p.pid).or(locker)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Holder {
        Holder {
            name: "job".into(),
            runonce: Some(ProcId { pid: 10, start: 20 }),
            job: Some(ProcId { pid: 11, start: 21 }),
            started_unix: 1.5,
            deadline_mono_ns: 99,
            uid: 0,
            cgroups: vec![(7, "/sys/fs/cgroup/x".into()), (8, "/sys/fs/cgroup/memory/x".into())],
            lock: (2049, 1234),
            ofd: 1 << 39,
            leftovers: vec![Leftover {
                name: "job".into(),
                runonce_pid: 9,
                ino: 5,
                dir: "/sys/fs/cgroup/a b".into(),
            }],
        }
    }

    #[test]
    fn round_trip() {
        let h = sample();
        assert_eq!(Holder::parse(&h.to_text()), Some(h.clone()));
        let torn = &h.to_text()[..20];
        assert_eq!(Holder::parse(torn), None);
        let mixed = format!("{}runonce=1 2\n", h.to_text());
        assert_eq!(Holder::parse(&mixed), Some(h));
    }

    #[test]
    fn out_of_range_values_make_no_record() {
        for bad in ["started=nan", "started=-1", "started=inf", "runonce=0 5", "runonce=-3 5"] {
            let text = sample().to_text().replacen("end\n", &format!("{bad}\nend\n"), 1);
            assert_eq!(Holder::parse(&text), None, "{bad}");
        }
        let huge = sample().to_text().replace("started=1.500", "started=1e300");
        let h = Holder::parse(&huge).unwrap();
        assert_eq!(h.age_secs(), 0.0);
        let far = Holder { deadline_mono_ns: u64::MAX, ..sample() };
        assert!(far.deadline().is_none_or(|d| d > Instant::now()));
    }
}
