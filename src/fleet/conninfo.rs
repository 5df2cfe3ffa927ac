//! `--lock-url`: the connection string as libpq users write it (a
//! `postgres://` URL or `key=value` words), split into what the PostgreSQL
//! client understands and the TLS parameters runonce handles itself
//! (`sslmode=verify-ca|verify-full`, `sslrootcert`), plus the password
//! lookup libpq does (`PGPASSWORD`, `~/.pgpass`).  Nothing here ever puts
//! the password into a message.

use std::path::{Path, PathBuf};

/// How the server's certificate is checked (man page, FLEET).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Result<SslMode, String> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode '{other}' is not one of disable, prefer, require, verify-ca, \
                     verify-full"
                ));
            }
        })
    }
}

/// Where the CA certificates for `verify-ca`/`verify-full` come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Roots {
    /// The system's store (`SSL_CERT_FILE`/`SSL_CERT_DIR`, else the
    /// distribution's bundle).
    System,
    File(PathBuf),
}

/// A `--lock-url` taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// The connection string without the parameters below, for the client.
    pub rest: String,
    pub sslmode: SslMode,
    pub roots: Roots,
    /// `sslrootcert` was given: with `require` that means `verify-ca`, as
    /// in libpq.
    pub explicit_roots: bool,
}

/// The parameters runonce takes out before the client parses the rest.
const OURS: [&str; 2] = ["sslmode", "sslrootcert"];

pub fn parse(url: &str) -> Result<ConnInfo, String> {
    let (rest, ours) = if is_url(url) { split_url(url)? } else { split_words(url)? };
    let mut sslmode = SslMode::Prefer;
    let mut roots = Roots::System;
    let mut explicit_roots = false;
    for (key, value) in ours {
        match key.as_str() {
            "sslmode" => sslmode = SslMode::parse(&value)?,
            _ if value == "system" => {
                roots = Roots::System;
                explicit_roots = true;
            }
            _ => {
                roots = Roots::File(PathBuf::from(value));
                explicit_roots = true;
            }
        }
    }
    if sslmode == SslMode::Require && explicit_roots {
        sslmode = SslMode::VerifyCa;
    }
    Ok(ConnInfo { rest, sslmode, roots, explicit_roots })
}

fn is_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// `postgres://…?a=b&sslmode=x`: the query's `sslmode`/`sslrootcert` out.
fn split_url(url: &str) -> Result<(String, Vec<(String, String)>), String> {
    let Some((head, query)) = url.split_once('?') else {
        return Ok((url.to_string(), Vec::new()));
    };
    let mut kept = Vec::new();
    let mut ours = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if OURS.contains(&key) {
            ours.push((key.to_string(), percent_decode(value)?));
        } else {
            kept.push(pair);
        }
    }
    let rest =
        if kept.is_empty() { head.to_string() } else { format!("{head}?{}", kept.join("&")) };
    Ok((rest, ours))
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(b) = hex else {
                return Err("a bad %-escape in a URL parameter".into());
            };
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "a URL parameter is not UTF-8".into())
}

/// `host=… sslmode=x dbname=…`: libpq's key/value words (values quoted
/// with '…' and backslash escapes).  Our parameters are cut out of the
/// text; the rest is left exactly as written.
fn split_words(text: &str) -> Result<(String, Vec<(String, String)>), String> {
    let mut rest = String::new();
    let mut ours = Vec::new();
    let mut chars = text.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else { break };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if chars.next_if(|(_, c)| *c == '=').is_none() {
            return Err(format!("'{key}' has no '=' after it"));
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '\'').is_some() {
            loop {
                match chars.next() {
                    Some((_, '\'')) => break,
                    Some((_, '\\')) => value.extend(chars.next().map(|(_, c)| c)),
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("the quoted value of '{key}' is not closed")),
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next().map(|(_, c)| c));
                } else {
                    value.push(c);
                }
            }
        }
        let end = chars.peek().map_or(text.len(), |&(i, _)| i);
        if OURS.contains(&key.as_str()) {
            ours.push((key, value));
        } else {
            rest.push_str(&text[start..end]);
            rest.push(' ');
        }
    }
    Ok((rest.trim_end().to_string(), ours))
}

/// One line of a password file (libpq's `~/.pgpass`):
/// `hostname:port:database:username:password`, `*` matching anything,
/// `\:` and `\\` escaped.
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().unwrap_or(&mut String::new()).extend(chars.next()),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().unwrap_or(&mut String::new()).push(c),
        }
    }
    fields
}

/// What a password file entry is matched against.
pub struct Target<'a> {
    /// The host as written (a name, an address or a socket directory).
    pub host: &'a str,
    pub port: u16,
    pub dbname: &'a str,
    pub user: &'a str,
}

/// The password for `target` from a pgpass file's text: the first line
/// that matches, as libpq reads it.
pub fn pgpass_lookup(text: &str, target: &Target) -> Option<String> {
    let port = target.port.to_string();
    // libpq matches a socket connection as "localhost"
    let socket = target.host.starts_with('/');
    text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).find_map(|line| {
        let f = pgpass_fields(line);
        if f.len() != 5 {
            return None;
        }
        let host_ok = f[0] == "*" || f[0] == target.host || (socket && f[0] == "localhost");
        let ok = |pattern: &str, value: &str| pattern == "*" || pattern == value;
        (host_ok && ok(&f[1], &port) && ok(&f[2], target.dbname) && ok(&f[3], target.user))
            .then(|| f[4].clone())
    })
}

/// The password file libpq would read: `PGPASSFILE`, else `~/.pgpass`.
pub fn pgpass_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PGPASSFILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| Path::new(&h).join(".pgpass"))
}

/// Reads the password file, refusing (as libpq does, with a warning) one
/// that group or others can read.
pub fn read_pgpass(path: &Path) -> Result<Option<String>, String> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else { return Ok(None) };
    if !meta.is_file() {
        return Ok(None);
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "password file {} has group or world access (mode {:o}); it is ignored: \
             chmod 0600 it",
            path.display(),
            meta.mode() & 0o777
        ));
    }
    std::fs::read_to_string(path).map(Some).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parameters_taken_out() {
        let c = parse("postgres://u:pw@db:5433/x?sslmode=verify-full&application_name=a").unwrap();
        assert_eq!(c.rest, "postgres://u:pw@db:5433/x?application_name=a");
        assert_eq!(c.sslmode, SslMode::VerifyFull);
        assert_eq!(c.roots, Roots::System);
        let c = parse("postgresql://db/x?sslrootcert=%2Fetc%2Fca.pem&sslmode=require").unwrap();
        assert_eq!(c.rest, "postgresql://db/x");
        assert_eq!(c.roots, Roots::File("/etc/ca.pem".into()));
        assert_eq!(c.sslmode, SslMode::VerifyCa, "require with a root file verifies, as libpq");
        let c = parse("postgres://db/x").unwrap();
        assert_eq!((c.rest.as_str(), c.sslmode), ("postgres://db/x", SslMode::Prefer));
        assert!(parse("postgres://db/x?sslmode=bogus").unwrap_err().contains("bogus"));
        assert!(parse("postgres://db/x?sslmode=allow").is_err());
    }

    #[test]
    fn words_parameters_taken_out() {
        let c = parse("host=db  sslmode = verify-ca sslrootcert='/a b/c\\'s' dbname=x").unwrap();
        assert_eq!(c.rest, "host=db dbname=x");
        assert_eq!(c.sslmode, SslMode::VerifyCa);
        assert_eq!(c.roots, Roots::File("/a b/c's".into()));
        let c =
            parse("host=/run/pg password='p w' sslrootcert=system sslmode=verify-full").unwrap();
        assert_eq!(c.rest, "host=/run/pg password='p w'");
        assert_eq!(c.roots, Roots::System);
        assert!(parse("host").is_err());
        assert!(parse("host='db").is_err());
    }

    #[test]
    fn pgpass_as_libpq_reads_it() {
        let text = "# comment\n\
                    other:5432:*:u:no\n\
                    db:5432:x:u:first\\:half\n\
                    *:*:*:u:fallback\n";
        let t = |host, port, dbname| Target { host, port, dbname, user: "u" };
        assert_eq!(pgpass_lookup(text, &t("db", 5432, "x")).as_deref(), Some("first:half"));
        assert_eq!(pgpass_lookup(text, &t("db", 5433, "x")).as_deref(), Some("fallback"));
        let sock = "localhost:5432:x:u:sock\n";
        assert_eq!(pgpass_lookup(sock, &t("/run/pg", 5432, "x")).as_deref(), Some("sock"));
        assert_eq!(pgpass_lookup(sock, &t("db", 5432, "x")), None);
        assert_eq!(pgpass_lookup("a:b:c\n", &t("a", 1, "c")), None);
    }

    #[test]
    fn pgpass_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pgpass");
        assert_eq!(read_pgpass(&p), Ok(None));
        std::fs::write(&p, "*:*:*:*:pw\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_pgpass(&p).unwrap_err().contains("chmod 0600"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_pgpass(&p).unwrap().as_deref(), Some("*:*:*:*:pw\n"));
    }
}
