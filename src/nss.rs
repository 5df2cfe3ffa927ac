//! Users and host names, looked up as cron and libpq do, without ever
//! loading an NSS module into runonce.
//!
//! The release binary links glibc statically (packaging/rustc-static, for
//! start-up time and memory).  A static glibc has the `files` and `dns`
//! services built in, but any other service named in /etc/nsswitch.conf
//! (`systemd`, in Debian's default `passwd:` line; `sss`, `ldap`,
//! `resolve`, `mdns4_minimal`) is a shared library it loads with its own
//! libc beside it, and the process crashes.  So users are looked up by
//! getent(1) (libc-bin, essential on Debian), which runs with the
//! system's own glibc and every service it configures; /etc/passwd is read
//! only where getent cannot run.  Host names (the fleet's PostgreSQL
//! servers) are resolved in-process: in a static build, through `files`
//! and `dns` only (man page, FLEET).

use std::ffi::{c_char, c_int};
use std::process::{Command, Stdio};
use std::sync::Once;

const GETENT: &str = "/usr/bin/getent";

/// What getent said of a key.
enum Lookup {
    Found(String),
    Absent,
    /// getent could not run or failed otherwise: no answer.
    Unknown,
}

/// Whether the user exists (cron's `getpwnam`).
pub fn user_exists(name: &[u8]) -> bool {
    let Ok(name) = std::str::from_utf8(name) else { return false };
    if name.is_empty() || name.contains(['\0', ':', '\n']) {
        return false;
    }
    // getent takes an all-digit key for a UID; a name never is one here
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return passwd_field(&files_passwd(), 0, name).is_some();
    }
    match getent_passwd(name) {
        Lookup::Found(line) => field(&line, 0) == Some(name),
        Lookup::Absent => false,
        Lookup::Unknown => passwd_field(&files_passwd(), 0, name).is_some(),
    }
}

/// The name of the user with this UID (libpq's default login: `getpwuid`).
pub fn user_name(uid: u32) -> Option<String> {
    let uid = uid.to_string();
    match getent_passwd(&uid) {
        Lookup::Found(line) if field(&line, 2) == Some(uid.as_str()) => {
            field(&line, 0).map(String::from)
        }
        Lookup::Found(_) | Lookup::Absent => None,
        Lookup::Unknown => passwd_field(&files_passwd(), 2, &uid).map(String::from),
    }
}

fn getent_passwd(key: &str) -> Lookup {
    let out = Command::new(GETENT)
        .args(["passwd", key])
        .env_clear()
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => match String::from_utf8(o.stdout) {
            Ok(text) => text.lines().next().map_or(Lookup::Absent, |l| Lookup::Found(l.into())),
            Err(_) => Lookup::Unknown,
        },
        // getent(1): 2 is "key not found"
        Ok(o) if o.status.code() == Some(2) => Lookup::Absent,
        _ => Lookup::Unknown,
    }
}

fn files_passwd() -> String {
    std::fs::read_to_string("/etc/passwd").unwrap_or_default()
}

/// Field `i` of a passwd line (name:passwd:uid:gid:gecos:dir:shell).
fn field(line: &str, i: usize) -> Option<&str> {
    line.split(':').nth(i)
}

/// The name of the first entry whose field `i` is `value`.
fn passwd_field<'a>(passwd: &'a str, i: usize, value: &str) -> Option<&'a str> {
    passwd
        .lines()
        .filter(|l| !l.starts_with(['#', '+', '-']))
        .find(|l| field(l, i) == Some(value) && l.split(':').count() >= 7)
        .and_then(|l| field(l, 0))
}

unsafe extern "C" {
    /// glibc <nss.h>: the services of one database, overriding
    /// /etc/nsswitch.conf for this process.
    fn __nss_configure_lookup(db: *const c_char, service_line: *const c_char) -> c_int;
}

/// In a statically linked runonce, host names go through the built-in
/// `files` and `dns` services only: loading any other would crash it.
/// Call before the first lookup.
pub fn hosts_without_modules() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if !statically_linked() {
            return;
        }
        // SAFETY: two NUL-terminated static strings; called once, before
        // this process looks up any host.
        unsafe { __nss_configure_lookup(c"hosts".as_ptr(), c"files dns".as_ptr()) };
    });
}

/// No program interpreter (ld.so) was mapped: a static executable.
fn statically_linked() -> bool {
    // SAFETY: getauxval reads the auxiliary vector; 0 means "absent".
    unsafe { libc::getauxval(libc::AT_BASE) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                          # a comment\n\
                          +nis\n\
                          short:x:5\n\
                          alice:x:1000:1000:Alice,,,:/home/alice:/bin/sh\n";

    #[test]
    fn files_lookups() {
        assert_eq!(passwd_field(PASSWD, 0, "alice"), Some("alice"));
        assert_eq!(passwd_field(PASSWD, 2, "1000"), Some("alice"));
        assert_eq!(passwd_field(PASSWD, 2, "0"), Some("root"));
        assert_eq!(passwd_field(PASSWD, 0, "short"), None, "a malformed line is no user");
        assert_eq!(passwd_field(PASSWD, 0, "+nis"), None);
        assert_eq!(passwd_field(PASSWD, 0, "bob"), None);
    }

    #[test]
    fn system_lookups() {
        assert!(user_exists(b"root"));
        assert!(!user_exists(b"no-such-user-runonce"));
        assert!(!user_exists(b"ro\0ot"));
        assert!(!user_exists(b"root:x"));
        assert!(!user_exists(b"0"), "a UID is not a name");
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(user_name(4_000_000_123), None);
    }
}
