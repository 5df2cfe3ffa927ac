//! `runonce --forget NAME`: an idle job's traces go (its state, its lock
//! files and, with `--metrics-dir`, its metrics), so that `--status` no
//! longer lists it.  A job that runs, or has a run waiting for its lock,
//! is left alone.

use std::io;
use std::path::{Path, PathBuf};

use crate::exit_code::Exit;
use crate::holder;
use crate::lock::{self, Seized, Site};
use crate::metrics;
use crate::parse;
use crate::state::Store;
use crate::status::Dirs;
use crate::ui;

pub struct Request<'a> {
    pub name: &'a str,
    pub dirs: Dirs,
    pub metrics_dir: Option<&'a Path>,
}

/// Forgets the job; returns the exit status: 0, 1 if there is no such job,
/// 125 if it runs or something could not be removed.
pub fn forget(req: &Request) -> Exit {
    let name = req.name;
    if let Err(e) = parse::job_name(name) {
        ui::warn(&format!("--forget: invalid value '{name}': {e}"));
        return Exit::OwnFailure;
    }
    let store = Store::new(req.dirs.state_dir.clone());
    let site = match &req.dirs.lock_file {
        Some(f) => Site::explicit(&req.dirs.lock_dir, f),
        None => Site::named(&req.dirs.lock_dir, name),
    };
    let base = site.base.clone();
    let metrics = req.metrics_dir.map(|d| metrics::path(d, name));
    let known = [Some(&store.path(name)), Some(&base), metrics.as_ref()]
        .into_iter()
        .flatten()
        .any(|p| p.symlink_metadata().is_ok());
    if !known {
        ui::warn(&format!(
            "--forget: no job named '{name}' (no lock in {}, no state in {})",
            req.dirs.lock_dir.display(),
            req.dirs.state_dir.display()
        ));
        return Exit::No;
    }
    let locks = match seize(req, &site) {
        Ok(Seized::All(locks)) => locks,
        Ok(Seized::Busy(_)) => {
            let pid = holder::record(&site, 0).and_then(|h| h.shown_pid());
            let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            ui::warn(&format!("--forget: job '{name}' is running{pid}: not forgotten"));
            return Exit::OwnFailure;
        }
        Ok(Seized::Queued) => {
            ui::warn(&format!(
                "--forget: a run of job '{name}' is waiting for its lock: not forgotten"
            ));
            return Exit::OwnFailure;
        }
        Err(e) => {
            ui::warn(&format!("--forget: {e}"));
            return Exit::OwnFailure;
        }
    };
    // under the state dir's lock, as every writer of the state holds it;
    // a missing state dir is not created just to be locked
    let guard = store.dir.is_dir().then(|| store.lock());
    if let Some(Err(e)) = &guard {
        ui::warn(&format!("--forget: --state-dir {}: {e}", store.dir.display()));
        return Exit::OwnFailure;
    }
    let mut doomed: Vec<PathBuf> = vec![store.path(name)];
    doomed.extend(metrics);
    // the lock files go while they are held (see lock::seize), and the
    // holder records a killed runonce may have left beside them
    let slots = locks.iter().filter(|(p, _)| p.extension().is_some_and(|e| e == "lock")).count();
    let records = (0..slots as u32).filter_map(|slot| site.record_path(slot));
    doomed.extend(records.filter(|_| req.dirs.lock_file.is_none()));
    doomed.extend(locks.iter().map(|(path, _)| path.clone()));
    let mut status = Exit::Success;
    for path in &doomed {
        if let Err(e) = remove(path) {
            ui::warn(&format!("--forget: cannot remove {}: {e}", path.display()));
            status = Exit::OwnFailure;
        }
    }
    status
}

/// The job's lock files, locked; an explicit `--lock` file is never
/// removed (it may be any file, see the man page, THE LOCK), only checked.
fn seize(req: &Request, site: &Site) -> Result<Seized, lock::Unusable> {
    if req.dirs.lock_file.is_none() {
        return lock::seize(site);
    }
    let base = &site.base;
    Ok(if lock::is_held(base) { Seized::Busy(base.to_path_buf()) } else { Seized::All(Vec::new()) })
}

fn remove(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
