//! The lease in PostgreSQL: one row per job name in `runonce_leases`,
//! taken, renewed and released by single statements that compare times
//! with the server's own clock (`now()`), so no host's clock matters.
//!
//! Everything runs on one thread of its own (`runonce-lease`) with its own
//! connection and a current-thread runtime: the supervisor never waits for
//! the database, and learns of a lost lease from a pipe it polls.  Every
//! statement uses the extended protocol's unnamed statement in one round
//! trip (`query_typed`), so no prepared statement outlives a transaction:
//! PgBouncer in transaction mode passes it through.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config};

use super::conninfo::{self, ConnInfo, SslMode};
use super::{Holder, LeaseRow, Request};
use crate::sys;

/// How long to wait for the server to accept a connection (and for the
/// TLS handshake and authentication).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one statement other than a renewal may take.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a `--wait`ing run looks at a busy lease again.
const WAIT_POLL: Duration = Duration::from_secs(1);
/// How long after a lease's expiry a waiting run tries it.
const EXPIRY_MARGIN: Duration = Duration::from_millis(20);

pub const CREATE_TABLE: &str = "\
CREATE TABLE IF NOT EXISTS runonce_leases (
    name        text        PRIMARY KEY,
    holder      text        NOT NULL,
    host        text        NOT NULL,
    pid         integer     NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    token       bigint      NOT NULL
)";

/// Takes the lease if it is free or expired; the token grows by one with
/// every acquisition.  No row back: someone else holds it.
pub const ACQUIRE: &str = "\
INSERT INTO runonce_leases AS l
    (name, holder, host, pid, acquired_at, expires_at, token)
VALUES ($1, $2, $3, $4, now(), now() + make_interval(secs => $5), 1)
ON CONFLICT (name) DO UPDATE
SET holder = excluded.holder, host = excluded.host, pid = excluded.pid,
    acquired_at = excluded.acquired_at, expires_at = excluded.expires_at,
    token = l.token + 1
WHERE l.expires_at <= now()
RETURNING token";

/// Extends the lease; no row back: it was taken by someone else.
pub const RENEW: &str = "\
UPDATE runonce_leases SET expires_at = now() + make_interval(secs => $4)
WHERE name = $1 AND holder = $2 AND token = $3
RETURNING token";

/// Gives the lease up, or keeps it until `--lock-at-least` after it was
/// taken.
pub const RELEASE: &str = "\
UPDATE runonce_leases
SET expires_at = greatest(now(), acquired_at + make_interval(secs => $4))
WHERE name = $1 AND holder = $2 AND token = $3
RETURNING token";

/// Who holds the lease (a busy run's record, `--status`).
const LOOK: &str = "\
SELECT name, host, pid, token,
       extract(epoch FROM acquired_at)::float8,
       extract(epoch FROM now() - acquired_at)::float8,
       extract(epoch FROM expires_at - now())::float8
FROM runonce_leases";

/// Why the lease could not be taken.
pub enum Failure {
    /// The server could not be reached (no answer, refused, TLS, timeout).
    Unreachable(String),
    /// The server answered with an error (authentication, permissions...).
    Refused(String),
}

/// The connection string checked without connecting: usage errors come
/// before anything else happens.
pub fn check(url: &str) -> Result<(), String> {
    let info = conninfo::parse(url)?;
    client_config(&info).map(drop)
}

fn client_config(info: &ConnInfo) -> Result<Config, String> {
    let mut cfg: Config = info.rest.parse().map_err(|e| describe_error(&e))?;
    if cfg.get_hosts().is_empty() {
        // libpq's default on Debian: the local server's socket directory
        cfg.host_path("/var/run/postgresql");
    }
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(CONNECT_TIMEOUT);
    }
    if cfg.get_application_name().is_none() {
        cfg.application_name("runonce");
    }
    cfg.ssl_mode(match info.sslmode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    Ok(cfg)
}

/// `user@host:port/db`, for messages: never the password.
pub fn describe(url: &str) -> String {
    let Ok(cfg) = conninfo::parse(url).and_then(|i| client_config(&i)) else {
        return "the database".into();
    };
    let host = match cfg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => String::new(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let user = cfg.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let db = cfg.get_dbname().map(|d| format!("/{d}")).unwrap_or_default();
    format!("{user}{host}:{port}{db}")
}

/// The error and its causes, one line.
fn describe_error(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// Only a server that cannot be reached lets `--lock-url-optional` run
/// without the lease; a server that answers "no" (a refused login, a
/// missing password, a certificate that does not verify, permissions) is a
/// configuration to fix, and the run fails closed.
fn failure(e: &tokio_postgres::Error) -> Failure {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        // io::Error's source() skips the error it wraps: look inside
        let inner = c.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref);
        let tls =
            |e: &(dyn std::error::Error + 'static)| e.downcast_ref::<rustls::Error>().is_some();
        if tls(c) || inner.is_some_and(|i| tls(i)) {
            return Failure::Refused(describe_error(e));
        }
        cause = c.source();
    }
    // the client's kinds of error are told apart by their text only
    let unreachable = e.as_db_error().is_none()
        && matches!(
            e.to_string().as_str(),
            "error connecting to server"
                | "error communicating with the server"
                | "error performing TLS handshake"
                | "connection closed"
                | "timeout waiting for server"
        );
    if unreachable {
        Failure::Unreachable(describe_error(e))
    } else {
        Failure::Refused(describe_error(e))
    }
}

/// The password libpq would use when the URL has none.
fn find_password(cfg: &mut Config, warnings: &mut Vec<String>) {
    if cfg.get_password().is_some() {
        return;
    }
    if let Some(pw) = std::env::var_os("PGPASSWORD").filter(|p| !p.is_empty()) {
        cfg.password(std::os::unix::ffi::OsStrExt::as_bytes(pw.as_os_str()));
        return;
    }
    let Some(path) = conninfo::pgpass_path() else { return };
    let text = match conninfo::read_pgpass(&path) {
        Ok(Some(t)) => t,
        Ok(None) => return,
        Err(w) => {
            warnings.push(w);
            return;
        }
    };
    let host = match cfg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => return,
    };
    let user = cfg.get_user().unwrap_or_default().to_string();
    let dbname = cfg.get_dbname().unwrap_or(&user).to_string();
    let target = conninfo::Target {
        host: &host,
        port: cfg.get_ports().first().copied().unwrap_or(5432),
        dbname: &dbname,
        user: &user,
    };
    if let Some(pw) = conninfo::pgpass_lookup(&text, &target) {
        cfg.password(pw);
    }
}

/// The user name to log in with when the URL names none: libpq's default,
/// the name of the user runonce runs as.
fn login_name() -> Option<String> {
    crate::nss::user_name(sys::geteuid())
}

/// A connection, and the task that drives it: the task ends when the
/// connection does (its result says why).
type Connected = (Client, tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>);

async fn connect(url: &str, warnings: &mut Vec<String>) -> Result<Connected, Failure> {
    let info = conninfo::parse(url).map_err(Failure::Refused)?;
    let mut cfg = client_config(&info).map_err(Failure::Refused)?;
    if cfg.get_user().is_none()
        && let Some(user) = login_name()
    {
        cfg.user(user);
    }
    find_password(&mut cfg, warnings);
    let tls = super::tls::client_config(info.sslmode, &info.roots).map_err(Failure::Refused)?;
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
    // the client's timeout covers each address's TCP connect; this one the
    // whole of it, TLS and login included
    let limit = cfg.get_connect_timeout().copied().unwrap_or(CONNECT_TIMEOUT);
    let (client, connection) = match tokio::time::timeout(limit, cfg.connect(tls)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(failure(&e)),
        Err(_) => {
            return Err(Failure::Unreachable(format!("no answer within {}s", limit.as_secs_f64())));
        }
    };
    Ok((client, tokio::spawn(connection)))
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    crate::nss::hosts_without_modules();
    tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()
}

async fn statement<F: std::future::Future<Output = Result<T, tokio_postgres::Error>>, T>(
    limit: Duration,
    f: F,
) -> Result<T, Failure> {
    match tokio::time::timeout(limit, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(failure(&e)),
        Err(_) => Err(no_answer(limit)),
    }
}

fn no_answer(limit: Duration) -> Failure {
    Failure::Unreachable(format!("the server did not answer within {:.1}s", limit.as_secs_f64()))
}

/// The lease's identity once taken: the statements that renew and release
/// it match on all three.
#[derive(Clone)]
struct Mine {
    name: String,
    holder: String,
    token: i64,
}

enum Attempt {
    Got(i64),
    /// And how long until it expires, by the server's clock.
    Busy(Holder, Duration),
}

async fn try_acquire(client: &Client, req: &Request, holder: &str) -> Result<Attempt, Failure> {
    let lease = req.lease.as_secs_f64();
    let params: [(&(dyn ToSql + Sync), Type); 5] = [
        (&req.name, Type::TEXT),
        (&holder, Type::TEXT),
        (&req.host, Type::TEXT),
        (&req.pid, Type::INT4),
        (&lease, Type::FLOAT8),
    ];
    // the release between a busy answer and the look at the holder: try again
    for _ in 0..3 {
        let first = tokio::time::timeout(STATEMENT_TIMEOUT, client.query_typed(ACQUIRE, &params));
        let rows = match first.await {
            // another host may be creating it too: IF NOT EXISTS
            Ok(Err(e)) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => {
                create_table(client).await?;
                statement(STATEMENT_TIMEOUT, client.query_typed(ACQUIRE, &params)).await?
            }
            Ok(result) => result.map_err(|e| failure(&e))?,
            Err(_) => return Err(no_answer(STATEMENT_TIMEOUT)),
        };
        if let Some(row) = rows.first() {
            return Ok(Attempt::Got(row.get(0)));
        }
        if let Some(h) = look_one(client, &req.name).await?.filter(|h| h.expires_in_s > 0.0) {
            // a row that expires at no time a Duration holds (`infinity`, a
            // clock far off) is busy for good, not a panic
            let left = Duration::try_from_secs_f64(h.expires_in_s).unwrap_or(Duration::MAX);
            return Ok(Attempt::Busy(h.holder, left));
        }
    }
    Err(Failure::Refused("the lease changed hands three times in a row".into()))
}

/// True if the table does not exist (runonce then creates it).
async fn missing_table(client: &Client) -> Result<bool, Failure> {
    let rows = statement(
        STATEMENT_TIMEOUT,
        client.query_typed("SELECT to_regclass('runonce_leases') IS NULL", &[]),
    )
    .await?;
    Ok(rows.first().is_some_and(|r| r.get::<_, bool>(0)))
}

async fn create_table(client: &Client) -> Result<(), Failure> {
    match statement(STATEMENT_TIMEOUT, client.query_typed(CREATE_TABLE, &[])).await {
        Ok(_) => Ok(()),
        // two hosts creating it at once: the other one won
        Err(Failure::Refused(_)) if !missing_table(client).await? => Ok(()),
        Err(e) => Err(e),
    }
}

async fn look(client: &Client, name: Option<&str>) -> Result<Vec<LeaseRow>, Failure> {
    let rows = match name {
        Some(n) => {
            let sql = format!("{LOOK} WHERE name = $1");
            statement(STATEMENT_TIMEOUT, client.query_typed(&sql, &[(&n, Type::TEXT)])).await?
        }
        None => {
            let sql = format!("{LOOK} ORDER BY name");
            statement(STATEMENT_TIMEOUT, client.query_typed(&sql, &[])).await?
        }
    };
    Ok(rows
        .iter()
        .map(|r| LeaseRow {
            name: r.get(0),
            holder: Holder { host: r.get(1), pid: r.get(2), token: r.get(3), age_s: r.get(5) },
            acquired_unix: r.get(4),
            expires_in_s: r.get(6),
        })
        .collect())
}

async fn look_one(client: &Client, name: &str) -> Result<Option<LeaseRow>, Failure> {
    Ok(look(client, Some(name)).await?.into_iter().next())
}

/// `--status`: the leases as the database has them (no table: none).
pub fn peek(url: &str, name: Option<&str>) -> Result<Vec<LeaseRow>, String> {
    let rt = runtime().map_err(|e| format!("cannot start the database client: {e}"))?;
    rt.block_on(async {
        let mut warnings = Vec::new();
        let (client, _conn) = connect(url, &mut warnings).await.map_err(|f| message(url, &f))?;
        if missing_table(&client).await.map_err(|f| message(url, &f))? {
            return Ok(Vec::new());
        }
        look(&client, name).await.map_err(|f| message(url, &f))
    })
}

pub fn message(url: &str, f: &Failure) -> String {
    let (Failure::Unreachable(why) | Failure::Refused(why)) = f;
    format!("--lock-url {}: {why}", describe(url))
}

/// What the lease thread reports once it has tried to take the lease.
pub enum Outcome {
    Held { token: i64 },
    Busy(Holder),
    Failed(Failure),
}

/// The thread's side of a held lease.
pub struct Worker {
    pub results: mpsc::Receiver<(Outcome, Vec<String>)>,
    /// Readable once a result is there, and again once the lease is lost.
    pub wake: OwnedFd,
    /// Dropped or sent: give up waiting, or release the lease.
    pub stop: Option<oneshot::Sender<()>>,
    pub lost: Arc<Mutex<Option<String>>>,
    pub thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

/// Starts the lease thread: it connects, takes the lease (waiting for it
/// until `wait_until` if asked), then renews it until told to stop.
pub fn start(url: String, req: Request) -> std::io::Result<Worker> {
    let (wake_r, wake_w) = sys::pipe()?;
    let (tx, results) = mpsc::channel();
    let (stop, stop_rx) = oneshot::channel();
    let lost = Arc::new(Mutex::new(None));
    let lost2 = lost.clone();
    let rt = runtime()?;
    let thread = std::thread::Builder::new().name("runonce-lease".into()).spawn(move || {
        let wake = Wake(wake_w);
        rt.block_on(work(&url, &req, tx, &wake, stop_rx, &lost2))
    })?;
    Ok(Worker { results, wake: wake_r, stop: Some(stop), lost, thread: Some(thread) })
}

struct Wake(OwnedFd);

impl Wake {
    fn ring(&self) {
        let _ = sys::write_all_fd(std::os::fd::AsRawFd::as_raw_fd(&self.0), b"!");
    }
}

async fn work(
    url: &str,
    req: &Request,
    tx: mpsc::Sender<(Outcome, Vec<String>)>,
    wake: &Wake,
    mut stop: oneshot::Receiver<()>,
    lost: &Mutex<Option<String>>,
) -> Result<(), String> {
    let mut warnings = Vec::new();
    let report = |o: Outcome, w: Vec<String>| {
        let _ = tx.send((o, w));
        wake.ring();
    };
    let (client, mut conn) = match connect(url, &mut warnings).await {
        Ok(c) => c,
        Err(f) => {
            report(Outcome::Failed(f), warnings);
            return Ok(());
        }
    };
    let holder = format!("{}/{}/{:016x}", req.host, req.pid, random());
    let mine = loop {
        let sent = Instant::now();
        match try_acquire(&client, req, &holder).await {
            Ok(Attempt::Got(token)) => {
                break (Mine { name: req.name.clone(), holder: holder.clone(), token }, sent);
            }
            Ok(Attempt::Busy(h, expires_in)) => {
                let left = req.wait_until.map(|u| u.map(|u| u.saturating_duration_since(sent)));
                // look again soon, and just after the lease would expire
                let next = WAIT_POLL.min(expires_in.saturating_add(EXPIRY_MARGIN));
                let pause = match left {
                    None | Some(Some(Duration::ZERO)) => {
                        report(Outcome::Busy(h), warnings);
                        return Ok(());
                    }
                    Some(None) => next,
                    Some(Some(l)) => l.min(next),
                };
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = &mut stop => return Ok(()),
                }
            }
            Err(f) => {
                report(Outcome::Failed(f), warnings);
                return Ok(());
            }
        }
    };
    let (mine, taken_at) = mine;
    report(Outcome::Held { token: mine.token }, warnings);
    match renew(&client, &mut conn, req, &mine, taken_at, &mut stop).await {
        Ok(()) => release(&client, req, &mine).await.map_err(|f| message(url, &f)),
        Err(why) => {
            *lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
            wake.ring();
            Ok(())
        }
    }
}

/// Renews the lease every third of its length until told to stop (Ok) or
/// until it is lost (Err: why).  A renewal that does not answer within a
/// third of the lease counts as lost: the lease then still has a third of
/// its length to run, time for the job to be stopped before a peer may
/// take it.
async fn renew(
    client: &Client,
    conn: &mut tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
    req: &Request,
    mine: &Mine,
    taken_at: Instant,
    stop: &mut oneshot::Receiver<()>,
) -> Result<(), String> {
    let every = req.lease / 3;
    let lease = req.lease.as_secs_f64();
    let mut last = taken_at;
    loop {
        let at = tokio::time::Instant::from_std(last + every);
        tokio::select! {
            _ = &mut *stop => return Ok(()),
            ended = &mut *conn => {
                let why = match ended {
                    Ok(Err(e)) => format!(": {}", describe_error(&e)),
                    _ => String::new(),
                };
                return Err(format!("the connection to the database was lost{why}"));
            }
            _ = tokio::time::sleep_until(at) => {}
        }
        let sent = Instant::now();
        let params: [(&(dyn ToSql + Sync), Type); 4] = [
            (&mine.name, Type::TEXT),
            (&mine.holder, Type::TEXT),
            (&mine.token, Type::INT8),
            (&lease, Type::FLOAT8),
        ];
        match statement(every, client.query_typed(RENEW, &params)).await {
            Ok(rows) if !rows.is_empty() => last = sent,
            Ok(_) => {
                let by = match look_one(client, &mine.name).await {
                    Ok(Some(r)) => format!(
                        "the lease was taken by {} (pid {}, token {})",
                        r.holder.host, r.holder.pid, r.holder.token
                    ),
                    _ => "the lease was taken by another run".into(),
                };
                return Err(by);
            }
            Err(Failure::Unreachable(why) | Failure::Refused(why)) => {
                return Err(format!("the renewal failed: {why}"));
            }
        }
    }
}

async fn release(client: &Client, req: &Request, mine: &Mine) -> Result<(), Failure> {
    let at_least = req.at_least.as_secs_f64();
    let params: [(&(dyn ToSql + Sync), Type); 4] = [
        (&mine.name, Type::TEXT),
        (&mine.holder, Type::TEXT),
        (&mine.token, Type::INT8),
        (&at_least, Type::FLOAT8),
    ];
    statement(STATEMENT_TIMEOUT, client.query_typed(RELEASE, &params)).await.map(drop)
}

fn random() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// A lease this run holds, renewed by its thread until released.
pub struct Lease {
    pub token: i64,
    worker: Worker,
}

impl Lease {
    /// Readable once the lease is lost (the supervisor polls it).
    pub fn lost_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.worker.wake)
    }

    /// Why the lease was lost, once it was.
    pub fn lost(&self) -> Option<String> {
        self.worker.lost.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Gives the lease up (or shortens it to `--lock-at-least`), waiting
    /// for the statement to be done.
    pub fn release(mut self) -> Result<(), String> {
        if let Some(stop) = self.worker.stop.take() {
            let _ = stop.send(());
        }
        match self.worker.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err("the lease thread panicked".into()),
            None => Ok(()),
        }
    }
}

impl Drop for Lease {
    /// An abandoned lease is released by its thread without being waited for.
    fn drop(&mut self) {
        drop(self.worker.stop.take());
    }
}

/// Takes the lease: starts the lease thread and waits for its answer, or
/// for a forwarded signal (`Taken::Interrupted`).
pub fn take(url: &str, req: Request, signals: &crate::signals::Signals) -> super::Taken {
    use super::Taken;
    use crate::signals::Woken;
    use std::os::fd::AsRawFd;
    let worker = match start(url.to_string(), req) {
        Ok(w) => w,
        Err(e) => return Taken::Refused(format!("cannot start the lease thread: {e}")),
    };
    loop {
        match signals.wait(Some(worker.wake.as_raw_fd()), None) {
            // dropping the worker tells the thread to give up
            Ok(Woken::Signal(sig)) => return Taken::Interrupted(sig),
            // a signal that came with the answer wins, as one that came
            // first: the run was asked to end before its job started (man
            // page, SIGNALS)
            Ok(Woken::Ready) => {
                if let Some(sig) = signals.interruption() {
                    return Taken::Interrupted(sig);
                }
            }
            Ok(Woken::Deadline) | Err(_) => continue,
        }
        let mut byte = [0u8; 1];
        let _ = sys::read_fd(worker.wake.as_raw_fd(), &mut byte);
        let Ok((outcome, warnings)) = worker.results.recv() else {
            return Taken::Refused("the lease thread ended without an answer".into());
        };
        for w in warnings {
            crate::ui::warn(&w);
        }
        return match outcome {
            Outcome::Held { token } => Taken::Held(Lease { token, worker }),
            Outcome::Busy(h) => Taken::Busy(h),
            Outcome::Failed(f @ Failure::Unreachable(_)) => Taken::Unreachable(message(url, &f)),
            Outcome::Failed(f) => Taken::Refused(message(url, &f)),
        };
    }
}
