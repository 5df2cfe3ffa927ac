//! Throwaway PostgreSQL clusters and a PgBouncer in front of them, for the
//! fleet tests: initdb and the servers run as an unprivileged user in a
//! temp dir, with a unix socket and a loopback port.
//!
//! Nothing may outlive the test binary, even when a test fails or the
//! binary is killed: every server is started by one thread that lives as
//! long as the process, with a parent-death signal, so the kernel stops the
//! servers when the process ends; an `atexit` handler stops them cleanly
//! and removes their directories on an ordinary exit.  A cluster a test
//! owns is stopped when it is dropped (on a failed assertion too).
//!
//! A machine without PostgreSQL makes these tests fail, never pass: CI
//! installs it (`.ci/deps`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::util::wait_until;

/// The unprivileged user the servers run as (postgres refuses root).
const USER: &str = "runonce-pg";
/// Generous: initdb and a first start on a loaded machine.
const START_SLACK: Duration = Duration::from_secs(90);

/// Directory of PostgreSQL's programs (the newest installed).
fn bindir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.filter_map(|e| Some(e.ok()?.path().join("bin"))).collect())
        .unwrap_or_default();
    found.retain(|d| d.join("postgres").exists());
    found.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    found.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): \
             run .ci/deps; the fleet tests need a real server"
        )
    })
}

fn ids() -> (u32, u32) {
    static IDS: OnceLock<(u32, u32)> = OnceLock::new();
    *IDS.get_or_init(|| {
        // useradd takes /etc/passwd's lock: another test binary's useradd
        // may hold it for a moment
        for _ in 0..50 {
            if let Some(ids) = lookup_ids() {
                return ids;
            }
            let _ = Command::new("useradd")
                .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER])
                .stderr(Stdio::null())
                .status();
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("cannot create the user {USER} for the test servers");
    })
}

fn lookup_ids() -> Option<(u32, u32)> {
    let out = Command::new("id").args(["-u", USER]).output().ok()?;
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let out = Command::new("id").args(["-g", USER]).output().ok()?;
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((uid, gid))
}

fn as_user(program: impl AsRef<std::ffi::OsStr>) -> Command {
    use std::os::unix::process::CommandExt;
    let (uid, gid) = ids();
    let mut c = Command::new(program);
    // std drops the supplementary groups when root sets a uid
    c.uid(uid).gid(gid);
    c
}

fn chown(path: &Path) {
    let (uid, gid) = ids();
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
}

/// A port nobody listens on, never handed out twice in this process (a
/// stopped cluster keeps its port for its restart).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap();
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Servers that must not outlive the process: (pid, dir to remove).
static LIVE: Mutex<Vec<(i32, Option<PathBuf>)>> = Mutex::new(Vec::new());

extern "C" fn stop_all() {
    let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|p| p.into_inner()));
    for (pid, _) in live.iter().filter(|(p, _)| *p > 0) {
        // SAFETY: signalling a server this process started
        unsafe { libc::kill(*pid, libc::SIGINT) };
    }
    for (pid, dir) in live {
        if pid > 0 {
            // SAFETY: waiting for our own child
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        }
        if let Some(d) = dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

type Spawn = Box<dyn FnOnce() -> std::io::Result<std::process::Child> + Send>;
/// A spawn request to the keeper thread, and where to send the PID.
type Request = (Spawn, mpsc::Sender<std::io::Result<i32>>);

/// Starts `cmd` from the keeper thread, which lives as long as the process:
/// a parent-death signal is sent when the *thread* that forked dies, and
/// the test threads come and go.
fn spawn_kept(mut cmd: Command, death_signal: i32, dir: Option<PathBuf>) -> i32 {
    use std::os::unix::process::CommandExt;
    static KEEPER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        // SAFETY: registering a plain extern "C" function
        unsafe { libc::atexit(stop_all) };
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::spawn(move || {
            for (spawn, reply) in rx {
                let _ = reply.send(spawn().map(|c| c.id() as i32));
            }
            // the channel lives in a static: never reached while the process runs
            loop {
                std::thread::park();
            }
        });
        Mutex::new(tx)
    });
    // SAFETY: prctl in the child between fork and exec (async-signal-safe);
    // it runs after the uid change, which would clear it
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, death_signal) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (reply_tx, reply_rx) = mpsc::channel();
    keeper.lock().unwrap().send((Box::new(move || cmd.spawn()), reply_tx)).unwrap();
    let pid = reply_rx.recv().unwrap().expect("start a test server");
    LIVE.lock().unwrap().push((pid, dir));
    pid
}

/// Stops a kept server (SIGINT: PostgreSQL's fast shutdown) and waits.
fn stop_kept(pid: i32) {
    LIVE.lock().unwrap().retain(|(p, _)| *p != pid);
    // SAFETY: signalling and reaping a server this process started
    unsafe {
        libc::kill(pid, libc::SIGINT);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

/// One initdb per test binary; clusters are copies of it.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("runonce-pgtemplate").tempdir().unwrap();
        let dir = dir.keep();
        chown(&dir);
        let data = dir.join("data");
        let out = as_user(bindir().join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        LIVE.lock().unwrap().push((0, Some(dir.clone())));
        dir
    })
}

pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
    pid: Option<i32>,
    _tmp: Option<tempfile::TempDir>,
}

/// How a cluster is set up.
#[derive(Default)]
pub struct Setup {
    /// server.crt/server.key to serve TLS with, and only TLS over TCP.
    pub tls_only: Option<(PathBuf, PathBuf)>,
}

impl Cluster {
    pub fn start(setup: &Setup) -> Cluster {
        let tmp = tempfile::Builder::new().prefix("runonce-pg").tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        chown(&dir);
        let status = Command::new("cp")
            .args(["-a"])
            .arg(template().join("data"))
            .arg(dir.join("data"))
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::create_dir(dir.join("sock")).unwrap();
        chown(&dir.join("sock"));
        let port = free_port();
        let mut conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\n\
             unix_socket_directories = '{}'\nfsync = off\nsynchronous_commit = off\n\
             full_page_writes = off\nshared_buffers = 16MB\nmax_connections = 60\n\
             log_min_messages = warning\n",
            dir.join("sock").display()
        );
        let hba = match &setup.tls_only {
            Some((crt, key)) => {
                for (from, to) in [(crt, "server.crt"), (key, "server.key")] {
                    let dst = dir.join("data").join(to);
                    std::fs::copy(from, &dst).unwrap();
                    chown(&dst);
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o600)).unwrap();
                }
                conf.push_str("ssl = on\n");
                "local all all trust\n\
                 hostssl all all 127.0.0.1/32 trust\n\
                 hostnossl all all 127.0.0.1/32 reject\n"
            }
            None => {
                "local all all trust\n\
                 host all fleet 127.0.0.1/32 scram-sha-256\n\
                 host all all 127.0.0.1/32 trust\n"
            }
        };
        append(&dir.join("data/postgresql.conf"), &conf);
        std::fs::write(dir.join("data/pg_hba.conf"), hba).unwrap();
        let mut c = Cluster { dir, port, pid: None, _tmp: Some(tmp) };
        c.up();
        c
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn up(&mut self) {
        assert!(self.pid.is_none(), "already up");
        let mut cmd = as_user(bindir().join("postgres"));
        cmd.arg("-D").arg(self.dir.join("data"));
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        cmd.stderr(std::fs::File::create(self.dir.join("server.log")).unwrap());
        // SIGQUIT: PostgreSQL's immediate shutdown
        self.pid = Some(spawn_kept(cmd, libc::SIGQUIT, None));
        let ready = wait_until(START_SLACK, || {
            Command::new(bindir().join("pg_isready"))
                .arg("-q")
                .arg("-h")
                .arg(self.dir.join("sock"))
                .arg("-p")
                .arg(self.port.to_string())
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(ready, "the test PostgreSQL did not start: {}", self.log());
    }

    /// Stops the server (fast shutdown) and waits until it is gone.
    pub fn down(&mut self) {
        if let Some(pid) = self.pid.take() {
            stop_kept(pid);
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// A connection string to database `db` over TCP.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL as the superuser over the socket; panics on failure.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = self.psql(db, sql);
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn psql(&self, db: &str, sql: &str) -> Output {
        Command::new(bindir().join("psql"))
            .arg("-h")
            .arg(self.dir.join("sock"))
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env_remove("PGPASSWORD")
            .output()
            .expect("run psql")
    }

    /// A fresh database for one test.
    pub fn database(&self, name: &str) -> String {
        self.sql("postgres", &format!("CREATE DATABASE \"{name}\""));
        name.to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.down();
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The cluster most tests share (each with a database of its own).
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(|| {
        let mut c = Cluster::start(&Setup::default());
        // a static is never dropped: the atexit handler removes its dir
        let tmp = c._tmp.take().map(tempfile::TempDir::keep);
        if let Some(pid) = c.pid {
            LIVE.lock().unwrap().retain(|(p, _)| *p != pid);
            LIVE.lock().unwrap().push((pid, tmp));
        }
        c
    })
}

/// A PgBouncer in transaction mode in front of the shared cluster, one
/// server connection per database so that clients share it.
pub struct Bouncer {
    pub port: u16,
}

pub fn bouncer() -> &'static Bouncer {
    static BOUNCER: OnceLock<Bouncer> = OnceLock::new();
    BOUNCER.get_or_init(|| {
        let pg = shared();
        let dir = tempfile::Builder::new().prefix("runonce-pgb").tempdir().unwrap().keep();
        chown(&dir);
        let port = free_port();
        std::fs::write(dir.join("users.txt"), "\"postgres\" \"\"\n").unwrap();
        let ini = format!(
            "[databases]\n* = host={sock} port={pgport} user=postgres\n\
             [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
             unix_socket_dir =\nauth_type = trust\nauth_file = {dir}/users.txt\n\
             pool_mode = transaction\ndefault_pool_size = 1\nmax_client_conn = 100\n\
             logfile = {dir}/pgbouncer.log\npidfile = {dir}/pgbouncer.pid\n",
            sock = pg.dir.join("sock").display(),
            pgport = pg.port,
            dir = dir.display()
        );
        std::fs::write(dir.join("pgbouncer.ini"), ini).unwrap();
        let mut cmd = as_user("pgbouncer");
        cmd.arg(dir.join("pgbouncer.ini")).stdin(Stdio::null()).stdout(Stdio::null());
        cmd.stderr(Stdio::null());
        spawn_kept(cmd, libc::SIGTERM, Some(dir.clone()));
        let ready =
            wait_until(START_SLACK, || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        assert!(
            ready,
            "PgBouncer did not start: {}",
            std::fs::read_to_string(dir.join("pgbouncer.log")).unwrap_or_default()
        );
        Bouncer { port }
    })
}

impl Bouncer {
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}?sslmode=disable", self.port)
    }
}
