//! A fixed crontab run by Debian's real cron daemon (issue 16): a test
//! user's crontab goes through `crontab -l | runonce --fix-crontab - |
//! crontab -`, a file in /etc/cron.d through `runonce --fix-crontab` in
//! place, and the daemon, started by the test, runs the fixed lines at the
//! next minute boundary: what they write is what the original lines wrote
//! (quotes, `%` as stdin, `\%`, backslashes), runonce recorded each run,
//! and cron did not run the backup cron.d file.
//!
//! A test binary of its own because it waits for cron's minute boundary
//! (up to about 70 s).  The daemon runs in private mount and PID
//! namespaces (unshare): its spool, /etc/crontab, /etc/cron.d and /run are
//! the test's own directories, so the host's crontabs neither run nor
//! change, and killing the namespace's first process ends the daemon and
//! every job with it.

#[path = "util.rs"]
mod util;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use util::*;

const USER: &str = "runonce-cron";

/// The test user, made once (useradd retried while another useradd holds
/// /etc/passwd).
fn test_user() -> (u32, u32) {
    for _ in 0..50 {
        let id = |flag: &str| {
            let o = Command::new("id").args([flag, USER]).output().unwrap();
            o.status.success().then(|| stdout(&o).trim().parse::<u32>().unwrap())
        };
        if let (Some(uid), Some(gid)) = (id("-u"), id("-g")) {
            return (uid, gid);
        }
        let o = Command::new("useradd")
            .args(["--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/sh", USER])
            .output()
            .expect("useradd");
        if !o.status.success() && code(&o) != 9 {
            // 9: made meanwhile by another test; 10: /etc/passwd locked
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("cannot create user {USER}");
}

/// Kills the namespace (and so the daemon and its jobs) however the test
/// ends.
struct Namespace(Child);

impl Drop for Namespace {
    fn drop(&mut self) {
        // unshare ignores TERM while it waits; KILL makes --kill-child end
        // the namespace's first process, and the kernel the rest
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mkdir(p: &Path, mode: u32, owner: Option<(u32, u32)>) {
    std::fs::create_dir_all(p).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    if let Some((u, g)) = owner {
        std::os::unix::fs::chown(p, Some(u), Some(g)).unwrap();
    }
}

fn status_of(base: &Path, name: &str) -> Option<serde_json::Value> {
    let o = Command::new("setpriv")
        .args(["--reuid", USER, "--regid", USER, "--init-groups", "--"])
        .arg(base.join("bin/runonce"))
        .args(["--status", name, "--json"])
        .env("RUNONCE_STATE_DIR", base.join("run/state"))
        .env("RUNONCE_LOCK_DIR", base.join("run/lock"))
        .output()
        .unwrap();
    let job: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
    (job["last"]["last_outcome"] == "ok").then_some(job)
}

#[test]
fn cron_runs_fixed_lines_as_it_ran_the_originals() {
    let (uid, gid) = test_user();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_path_buf();
    let b = base.display().to_string();
    mkdir(&base, 0o755, None);
    mkdir(&base.join("bin"), 0o755, None);
    std::fs::copy(BIN, base.join("bin/runonce")).unwrap();
    let crontab_gid = Command::new("getent").args(["group", "crontab"]).output().unwrap();
    let crontab_gid: u32 = stdout(&crontab_gid).split(':').nth(2).unwrap().parse().unwrap();
    mkdir(&base.join("spool/crontabs"), 0o1730, Some((0, crontab_gid)));
    mkdir(&base.join("crond"), 0o755, None);
    mkdir(&base.join("out"), 0o755, Some((uid, gid)));
    mkdir(&base.join("run"), 0o700, Some((uid, gid)));
    std::fs::write(base.join("crontab"), "# the test's /etc/crontab: no jobs\n").unwrap();

    let env = format!(
        "PATH={b}/bin:/usr/bin:/bin\nMAILTO=\"\"\nRUNONCE_LOCK_DIR={b}/run/lock\nRUNONCE_STATE_DIR={b}/run/state\n"
    );
    let user_crontab = format!(
        "# as the user wrote it\n{env}\
         * * * * * printf '[\\%s]' a\\\\b c\\%d 'e\\\\f' 'g\\h' \"$LOGNAME\" > {b}/out/shell.out; cat >> {b}/out/shell.out%in\\%put\\\\x\\y%line2\n\
         * * * * * tee {b}/out/plain.out%one%two \\% three\n\
         * * * * * flock -n {b}/run/flock.lock timeout 50 /usr/bin/printf '<\\%s>' 'it'\\''s' \"a b\" > {b}/out/wrapped.out\n"
    );
    std::fs::write(base.join("user.crontab"), &user_crontab).unwrap();
    let system = base.join("crond/runonce-test");
    std::fs::write(
        &system,
        format!("{env}* * * * * {USER} cat /proc/$PPID/comm >> {b}/out/system.parent\n"),
    )
    .unwrap();
    std::fs::set_permissions(&system, std::fs::Permissions::from_mode(0o644)).unwrap();

    let script = format!(
        r#"set -eu
mount --bind {b}/spool /var/spool/cron
mount --bind {b}/crond /etc/cron.d
mount --bind {b}/crontab /etc/crontab
mount -t tmpfs -o mode=0755 tmpfs /run
runuser -u {USER} -- crontab {b}/user.crontab
runuser -u {USER} -- env PATH={b}/bin:/usr/bin:/bin sh -c 'crontab -l | runonce --fix-crontab - | crontab -' 2>{b}/fix.err
runuser -u {USER} -- crontab -l >{b}/installed
{b}/bin/runonce --fix-crontab /etc/cron.d/runonce-test >{b}/fixd.out 2>&1
touch {b}/ready
exec cron -f -L 15
"#
    );
    let ns = Namespace(
        Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
            ])
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare (util-linux)"),
    );
    wait_file(&base.join("ready"));

    // the user's crontab, fixed through the pipe and installed by crontab
    let fix_err = std::fs::read_to_string(base.join("fix.err")).unwrap();
    assert_eq!(fix_err, "", "--fix-crontab - said something");
    let installed = std::fs::read_to_string(base.join("installed")).unwrap();
    let expected = format!(
        "# as the user wrote it\n{env}\
         * * * * * runonce --name cat --timeout 45s -- sh -c 'printf '\\''[\\%s]'\\'' a\\b c\\%d '\\''e\\f'\\'' '\\''g\\h'\\'' \"$LOGNAME\" > {b}/out/shell.out; cat >> {b}/out/shell.out'%in\\%put\\\\x\\y%line2\n\
         * * * * * runonce --name tee --timeout 45s -- tee {b}/out/plain.out%one%two \\% three\n\
         * * * * * runonce --name printf --timeout 50 --lock {b}/run/flock.lock -- sh -c '/usr/bin/printf '\\''<\\%s>'\\'' '\\''it'\\''\\'\\'''\\''s'\\'' \"a b\" > {b}/out/wrapped.out'\n"
    );
    assert_eq!(installed, expected);
    let o = Command::new(BIN)
        .args(["--check-crontab", "-"])
        .stdin(std::fs::File::open(base.join("installed")).unwrap())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let fixd = std::fs::read_to_string(base.join("fixd.out")).unwrap();
    assert!(fixd.contains("1 line rewritten"), "{fixd}");
    let system_text = std::fs::read_to_string(&system).unwrap();
    assert!(
        system_text.ends_with(&format!(
            "* * * * * {USER} runonce --name runonce-test.cat --timeout 45s -- sh -c 'cat /proc/$PPID/comm >> {b}/out/system.parent'\n"
        )),
        "{system_text}"
    );
    assert!(base.join("crond/runonce-test.runonce-bak").exists());

    // cron runs them at the next minute boundary
    let names = ["cat", "tee", "printf", "runonce-test.cat"];
    let ran = wait_until(Duration::from_secs(150), || {
        names.iter().all(|n| status_of(&base, n).is_some())
    });
    let out = |f: &str| std::fs::read_to_string(base.join("out").join(f)).unwrap_or_default();
    assert!(ran, "cron did not run every fixed line: {:?}", names.map(|n| status_of(&base, n)));
    // what Debian's cron made of the original line, observed: see
    // crontab::parse's tests
    assert_eq!(out("shell.out"), "[ab][c%d][e\\f][g\\h][runonce-cron]in%put\\\\x\\y\nline2\n");
    assert_eq!(out("plain.out"), "one\ntwo % three\n");
    assert_eq!(out("wrapped.out"), "<it's><a b>");
    let parents = out("system.parent");
    assert!(
        !parents.is_empty() && parents.lines().all(|l| l == "runonce"),
        "{parents:?}: cron ran the backup?"
    );
    drop(ns);
    let _: PathBuf = base;
}
