//! Where crontabs come from and how a fixed one goes back: `crontab -l`,
//! `/etc/crontab` and `/etc/cron.d`, which files carry a user field, the
//! checks cron makes on system crontabs, and the atomic in-place rewrite
//! with its backup.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::parse::Kind;

pub const SYSTEM_CRONTAB: &str = "/etc/crontab";
pub const SYSTEM_CRON_DIR: &str = "/etc/cron.d";
/// Suffix of the copy `--fix-crontab` keeps.  The dot makes cron skip it
/// in `/etc/cron.d` (but see the man page for cron's `-l`).
pub const BACKUP_SUFFIX: &str = ".runonce-bak";
/// cron's PATH when the crontab sets none (Debian's `_PATH_DEFPATH`).
pub const CRON_DEFAULT_PATH: &[u8] = b"/usr/bin:/bin";

/// Whether a crontab file has a user field: `/etc/crontab`, and any file
/// in a directory named `cron.d` (also a copy of an `/etc` tree elsewhere,
/// `…/etc/crontab`).  Everything else is a user's crontab.
pub fn kind_of(path: &Path) -> Kind {
    // `crontab` given in /etc is /etc/crontab; a link is judged by its own
    // place, as cron finds it
    let path = &std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let parent = path.parent().and_then(Path::file_name).map(|n| n.as_bytes());
    let name = path.file_name().map(|n| n.as_bytes());
    match (parent, name) {
        (Some(b"cron.d"), _) | (Some(b"etc"), Some(b"crontab")) => Kind::System,
        _ => Kind::User,
    }
}

/// What new job names of a file start with: its name, for a file in a
/// directory named `cron.d`.
pub fn name_prefix(path: &Path) -> Option<String> {
    let path = &std::path::absolute(path).ok()?;
    let parent = path.parent()?.file_name()?;
    (parent.as_bytes() == b"cron.d").then(|| path.file_name()?.to_str().map(str::to_string))?
}

/// cron reads only these names in `/etc/cron.d` (its default, non-LSB
/// rule): letters, digits, `_` and `-`.
pub fn cron_reads_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// The files of `/etc/cron.d` that cron reads, in order.
pub fn cron_d_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| cron_reads_name(e.file_name().as_bytes()))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Why cron would ignore a system crontab it reads (cron(8): owned by
/// root, not group- or other-writable, one link, a regular file).
pub fn system_file_problems(path: &Path) -> Vec<String> {
    let Ok(meta) = std::fs::metadata(path) else { return Vec::new() };
    let mut out = Vec::new();
    if !meta.is_file() {
        out.push("cron ignores it: not a regular file".into());
    }
    if meta.uid() != 0 {
        out.push(format!("cron ignores it: owned by uid {}, not root", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        out.push(format!(
            "cron ignores it: mode {:04o} is group- or other-writable",
            meta.mode() & 0o7777
        ));
    }
    if meta.nlink() != 1 {
        out.push(format!("cron ignores it: {} hard links", meta.nlink()));
    }
    out
}

/// The caller's crontab through `crontab -l`; an empty one if they have
/// none.
pub fn crontab_l() -> Result<Vec<u8>, String> {
    let out = std::process::Command::new("crontab")
        .arg("-l")
        .env_remove("CRONTAB_NOHEADER")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run crontab -l: {e}"))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    if err.starts_with("no crontab for") {
        return Ok(Vec::new());
    }
    Err(format!("crontab -l failed: {}", err.trim()))
}

/// More than cron reads (10000 lines of at most 1000 bytes): not a crontab.
const MAX_SIZE: u64 = 16 << 20;

/// Reads at most MAX_SIZE bytes.
fn read_capped(from: impl Read, what: &dyn std::fmt::Display) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    from.take(MAX_SIZE + 1).read_to_end(&mut buf).map_err(|e| format!("{what}: {e}"))?;
    if buf.len() as u64 > MAX_SIZE {
        return Err(format!("{what}: larger than {} MiB, not a crontab", MAX_SIZE >> 20));
    }
    Ok(buf)
}

pub fn read_stdin() -> Result<Vec<u8>, String> {
    read_capped(std::io::stdin().lock(), &"stdin")
}

/// Opens a file to read without blocking on a FIFO; only a regular file
/// is read.
fn open_regular(path: &Path) -> Result<(File, std::fs::Metadata), String> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = file.metadata().map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    Ok((file, meta))
}

pub fn read(path: &Path) -> Result<Vec<u8>, String> {
    let (file, _) = open_regular(path)?;
    read_capped(file, &path.display())
}

/// Whether an executable `runonce` is in one of the PATH's directories.
pub fn runonce_in_path(path: &[u8]) -> bool {
    path.split(|&b| b == b':').filter(|d| !d.is_empty()).any(|dir| {
        let candidate = Path::new(std::ffi::OsStr::from_bytes(dir)).join("runonce");
        std::fs::metadata(&candidate).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
    })
}

/// What a file looked like when it was read, to notice a change before it
/// is replaced.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }
}

/// A crontab file read for an in-place rewrite.
pub struct Original {
    /// The file itself (a symlink resolved: the link stays).
    pub path: PathBuf,
    pub content: Vec<u8>,
    meta: std::fs::Metadata,
}

pub fn read_original(given: &Path) -> Result<Original, String> {
    let path = std::fs::canonicalize(given).map_err(|e| format!("{}: {e}", given.display()))?;
    let (file, meta) = open_regular(&path)?;
    let content = read_capped(file, &path.display())?;
    Ok(Original { path, content, meta })
}

impl Original {
    pub fn backup_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(BACKUP_SUFFIX);
        PathBuf::from(name)
    }

    /// Keeps the original as `FILE.runonce-bak`, then puts `content` in
    /// its place; each by a rename over the name, from a new file with the
    /// original's owner, group and mode, synced first.  Nothing is
    /// replaced if the file changed since it was read.
    pub fn replace(&self, content: &[u8]) -> Result<PathBuf, String> {
        let backup = self.backup_path();
        self.install(&backup, &self.content)?;
        self.unchanged()?;
        self.install(&self.path, content)?;
        sync_dir(&self.path);
        Ok(backup)
    }

    fn unchanged(&self) -> Result<(), String> {
        let now =
            std::fs::metadata(&self.path).map_err(|e| format!("{}: {e}", self.path.display()))?;
        if Stamp::of(&now) != Stamp::of(&self.meta) {
            return Err(format!(
                "{}: changed while it was being fixed; nothing replaced",
                self.path.display()
            ));
        }
        Ok(())
    }

    fn install(&self, target: &Path, content: &[u8]) -> Result<(), String> {
        let dir = target.parent().unwrap_or(Path::new("/"));
        let base = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let fail = |what: &str, e: std::io::Error| format!("{}: {what}: {e}", target.display());
        let (tmp, mut file) = (0..16)
            .find_map(|_| {
                let mut rnd = [0u8; 6];
                getrandom::fill(&mut rnd).ok()?;
                let suffix: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
                // a dot first: cron skips the name in /etc/cron.d meanwhile
                let tmp = dir.join(format!(".{base}.runonce-tmp.{suffix}"));
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(&tmp)
                    .ok()
                    .map(|f| (tmp, f))
            })
            .ok_or_else(|| {
                format!("{}: cannot create a temporary file in {}", target.display(), dir.display())
            })?;
        let result = (|| {
            file.write_all(content).map_err(|e| fail("write", e))?;
            std::os::unix::fs::fchown(&file, Some(self.meta.uid()), Some(self.meta.gid()))
                .map_err(|e| fail("keep the owner", e))?;
            file.set_permissions(std::fs::Permissions::from_mode(self.meta.mode() & 0o7777))
                .map_err(|e| fail("keep the mode", e))?;
            file.sync_all().map_err(|e| fail("sync", e))?;
            std::fs::rename(&tmp, target).map_err(|e| fail("rename", e))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_files_have_a_user_field() {
        assert_eq!(kind_of(Path::new("/etc/crontab")), Kind::System);
        assert_eq!(kind_of(Path::new("/etc/cron.d/sysstat")), Kind::System);
        assert_eq!(kind_of(Path::new("/srv/chroot/etc/crontab")), Kind::System);
        assert_eq!(kind_of(Path::new("/tmp/x/cron.d/php")), Kind::System);
        assert_eq!(kind_of(Path::new("/home/u/crontab")), Kind::User);
        assert_eq!(kind_of(Path::new("/var/spool/cron/crontabs/u")), Kind::User);
        assert_eq!(kind_of(Path::new("crontab")), Kind::User);
    }

    #[test]
    fn cron_d_names() {
        assert!(cron_reads_name(b"e2scrub_all"));
        assert!(cron_reads_name(b"php"));
        assert!(!cron_reads_name(b"php.runonce-bak"));
        assert!(!cron_reads_name(b".placeholder"));
        assert!(!cron_reads_name(b"x.dpkg-old"));
    }
}
