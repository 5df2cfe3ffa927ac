//! What the cgroup tests need to find a job's cgroups: the mounts, and the
//! directories a job saw itself in.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Where each cgroup hierarchy the tests look at is mounted.
pub struct Mounts {
    pub v2: Option<PathBuf>,
    pub memory: Option<PathBuf>,
    pub pids: Option<PathBuf>,
}

pub fn mounts() -> Mounts {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut m = Mounts { v2: None, memory: None, pids: None };
    for line in info.lines() {
        let (left, right) = line.split_once(" - ").unwrap();
        let point = PathBuf::from(left.split(' ').nth(4).unwrap());
        let mut right = right.split(' ');
        match (right.next(), right.nth(1)) {
            (Some("cgroup2"), _) => m.v2 = m.v2.take().or(Some(point)),
            (Some("cgroup"), Some(opts)) if opts.split(',').any(|o| o == "memory") => {
                m.memory = m.memory.take().or(Some(point));
            }
            (Some("cgroup"), Some(opts)) if opts.split(',').any(|o| o == "pids") => {
                m.pids = m.pids.take().or(Some(point));
            }
            _ => {}
        }
    }
    m
}

/// What `contain` must say for a root runonce here.
pub fn host_contain() -> &'static str {
    let m = mounts();
    assert_eq!(unsafe_geteuid(), 0, "these tests run as root");
    if m.v2.is_some() {
        "cgroup2"
    } else if m.memory.is_some() {
        "cgroup1"
    } else {
        "pgroup"
    }
}

fn unsafe_geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// The job's cgroup directories, from the /proc/self/cgroup the job wrote:
/// every hierarchy where it sits in a `runonce-NAME@PID` cgroup.
pub fn job_dirs(cgroup_file: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(cgroup_file).unwrap();
    let m = mounts();
    let mut dirs = Vec::new();
    for line in text.lines() {
        let mut it = line.splitn(3, ':');
        let (id, controllers, path) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        if !path.contains("/runonce-") {
            continue;
        }
        let mount = if id == "0" {
            m.v2.clone()
        } else if controllers.split(',').any(|c| c == "memory") {
            m.memory.clone()
        } else if controllers.split(',').any(|c| c == "pids") {
            m.pids.clone()
        } else {
            None
        };
        if let Some(mount) = mount {
            dirs.push(mount.join(path.trim_start_matches('/')));
        }
    }
    dirs
}

/// A job that writes its /proc/self/cgroup to `file`, then runs `rest`.
pub fn cat_cgroup(file: &Path, rest: &str) -> String {
    format!("cat /proc/self/cgroup > {0}.tmp; mv {0}.tmp {0}; {rest}", file.display())
}
