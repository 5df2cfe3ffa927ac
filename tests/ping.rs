//! `--ping URL` (issue 16): heartbeat pings as healthchecks.io defines
//! them, against a small server started by each test that implements the
//! ping API (`/ping/UUID`, `/start`, `/fail`, `/log`, `/EXIT`, `rid`) and
//! records what arrives.  The job is never failed or held up by the
//! pings, and the check's UUID (its secret) is never shown.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// The secret part of the URL.
const UUID: &str = "0f3c9d2e-7a41-4b6e-9c55-31d8e2a7f4b9";
/// runonce's documented bound on the pings once the run is over (man page,
/// PINGS).
const BOUND: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// healthchecks.io's answers.
    Healthchecks,
    /// An older server: exit statuses in the path are unknown (404).
    NoExitCodes,
    /// 500 to every request.
    Broken,
    /// Reads the request and never answers.
    Hangs,
}

#[derive(Clone, Debug)]
struct Request {
    method: String,
    path: String,
    query: String,
    body: Vec<u8>,
    /// The client closed the connection (a hung server sees runonce give up).
    closed: Arc<Mutex<bool>>,
}

impl Request {
    /// What the ping says: `start`, `success`, `fail`, `log` or the exit
    /// status; None for a path outside the check.
    fn kind(&self) -> Option<String> {
        let rest = self.path.strip_prefix(&format!("/ping/{UUID}"))?;
        match rest {
            "" => Some("success".into()),
            "/start" | "/fail" | "/log" => Some(rest[1..].into()),
            _ => rest[1..].parse::<u8>().ok().map(|c| c.to_string()),
        }
    }

    fn rid(&self) -> Option<String> {
        self.query.split('&').find_map(|kv| kv.strip_prefix("rid=")).map(String::from)
    }

    fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    fn start(mode: Mode) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let theirs = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let seen = theirs.clone();
                std::thread::spawn(move || serve(conn, mode, &seen));
            }
        });
        Server { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/ping/{UUID}", self.port)
    }

    fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }

    fn kinds(&self) -> Vec<String> {
        self.requests().iter().map(|r| r.kind().unwrap_or_else(|| r.path.clone())).collect()
    }

    /// Waits until `n` requests have arrived.
    fn wait_for(&self, n: usize) -> Vec<Request> {
        let got = wait_until(SLACK, || self.requests().len() >= n);
        assert!(got, "{} requests of {n} arrived: {:?}", self.requests().len(), self.kinds());
        self.requests()
    }
}

/// Answers one request as the mode says (one request a connection).
fn serve(conn: TcpStream, mode: Mode, seen: &Mutex<Vec<Request>>) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let target = words.next().unwrap_or_default().to_string();
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        let lower = header.to_ascii_lowercase();
        assert!(!lower.starts_with("transfer-encoding"), "the pings have a length: {header}");
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let req = Request {
        method,
        path: path.to_string(),
        query: query.to_string(),
        body,
        closed: Arc::new(Mutex::new(false)),
    };
    seen.lock().unwrap().push(req.clone());
    let status = match mode {
        Mode::Hangs => {
            // hold the request until the client gives up
            let _ = reader.read_to_end(&mut Vec::new());
            *req.closed.lock().unwrap() = true;
            return;
        }
        Mode::Broken => "500 Internal Server Error",
        _ if req.rid().is_some_and(|r| !is_uuid(&r)) => "400 Bad Request",
        Mode::NoExitCodes if req.kind().is_some_and(|k| k.parse::<u8>().is_ok()) => "404 Not Found",
        _ if req.kind().is_none() => "404 Not Found",
        _ => "200 OK",
    };
    let mut conn = conn;
    let _ = write!(conn, "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK");
    let _ = conn.shutdown(Shutdown::Write);
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.split('-').map(str::len).eq([8, 4, 4, 4, 12])
        && s.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

/// A port nothing listens on.
fn down_url() -> String {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}/ping/{UUID}")
}

/// runonce with the test's environment and no proxy between it and the
/// server.
fn runonce(env: &Env) -> Command {
    let mut c = env.cmd();
    for v in ["http_proxy", "https_proxy", "all_proxy", "no_proxy", "RUNONCE_PING_URL"] {
        c.env_remove(v).env_remove(v.to_ascii_uppercase());
    }
    c
}

fn run(env: &Env, url: &str, args: &[&str]) -> Output {
    runonce(env).args(["--ping", url]).args(args).output().expect("run runonce")
}

fn finish(env: &Env, name: &str) -> Value {
    let all = env.finishes(name);
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].clone()
}

fn warnings(rec: &Value) -> Vec<String> {
    rec["warnings"]
        .as_array()
        .map(|w| w.iter().map(|x| x.as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default()
}

/// The UUID is nowhere runonce writes: its stderr and stdout, the records,
/// the state and lock directories, and `--status` in both forms.
fn assert_secret_kept(env: &Env, outputs: &[&Output]) {
    for out in outputs {
        assert!(!stderr(out).contains(UUID), "stderr shows the secret: {}", stderr(out));
        assert!(!stdout(out).contains(UUID), "stdout shows the secret");
    }
    let log = std::fs::read_to_string(&env.log).unwrap_or_default();
    assert!(!log.contains(UUID), "the log shows the secret: {log}");
    for dir in [&env.state_dir, &env.lock_dir] {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let text = std::fs::read(entry.path()).unwrap_or_default();
            let text = String::from_utf8_lossy(&text);
            assert!(!text.contains(UUID), "{} shows the secret", entry.path().display());
        }
    }
    for args in [&["--status"][..], &["--status", "--json"]] {
        let out = env.cmd().args(args).output().unwrap();
        assert!(!stdout(&out).contains(UUID) && !stderr(&out).contains(UUID), "{args:?}");
    }
}

#[test]
fn success_pings_start_while_the_job_runs_then_the_check_with_the_output() {
    let env = Env::new();
    let server = Server::start(Mode::Healthchecks);
    let go = env.path("go");
    // the job goes on only once the start ping has arrived: the start is
    // sent while it runs, not after
    let script = format!(
        "echo out-line; echo err-line >&2; while [ ! -e {} ]; do sleep 0.02; done; echo done",
        go.display()
    );
    let child = runonce(&env)
        .args(["--ping", &server.url(), "-n", "ok", "--", "sh", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let first = server.wait_for(1);
    assert_eq!(first[0].kind().as_deref(), Some("start"));
    std::fs::write(&go, "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // the output still passes through
    assert_eq!(stdout(&out), "out-line\ndone\n");
    assert_eq!(stderr(&out), "err-line\n");
    let reqs = server.wait_for(2);
    assert_eq!(server.kinds(), ["start", "success"]);
    assert!(reqs.iter().all(|r| r.method == "POST"), "{reqs:?}");
    let (start, end) = (&reqs[0], &reqs[1]);
    assert!(start.body.is_empty(), "{start:?}");
    let rid = start.rid().expect("the start ping has a rid");
    assert!(is_uuid(&rid), "{rid}");
    assert_eq!(end.rid(), Some(rid), "one rid pairs the run's pings");
    let body = end.body_text();
    for line in ["out-line\n", "err-line\n", "done\n"] {
        assert!(body.contains(line), "{body:?}");
    }
    assert!(warnings(&finish(&env, "ok")).is_empty());
    // the next run has a run id of its own
    let out = run(&env, &server.url(), &["-n", "ok", "--", "true"]);
    assert_eq!(code(&out), 0);
    let reqs = server.wait_for(4);
    assert_ne!(reqs[2].rid(), reqs[0].rid());
    assert_secret_kept(&env, &[&out]);
}

#[test]
fn failure_pings_the_exit_status_once_after_the_retries() {
    let env = Env::new();
    let server = Server::start(Mode::Healthchecks);
    let out = run(
        &env,
        &server.url(),
        &["-n", "bad", "--retries=1", "--retry-delay=0.1", "--", "sh", "-c", "echo why; exit 3"],
    );
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let reqs = server.wait_for(2);
    // one start, one finish: failed attempts are in the records, not pinged
    assert_eq!(server.kinds(), ["start", "3"]);
    assert_eq!(reqs[1].body_text(), "why\n");
    assert_eq!(reqs[0].rid(), reqs[1].rid());
    assert!(warnings(&finish(&env, "bad")).is_empty());
    assert_secret_kept(&env, &[&out]);
}

#[test]
fn a_server_without_exit_statuses_gets_fail() {
    let env = Env::new();
    let server = Server::start(Mode::NoExitCodes);
    let out = run(&env, &server.url(), &["-n", "old", "--", "sh", "-c", "exit 7"]);
    assert_eq!(code(&out), 7);
    server.wait_for(3);
    assert_eq!(server.kinds(), ["start", "7", "fail"]);
    assert!(warnings(&finish(&env, "old")).is_empty(), "the fallback went through");
}

#[test]
fn timeout_pings_its_exit_status_with_the_output_so_far() {
    let env = Env::new();
    let server = Server::start(Mode::Healthchecks);
    let out = run(
        &env,
        &server.url(),
        &["-n", "slow", "--timeout", "1s", "--", "sh", "-c", "echo partial; exec sleep 60"],
    );
    assert_eq!(code(&out), 124, "{}", stderr(&out));
    let reqs = server.wait_for(2);
    assert_eq!(server.kinds(), ["start", "124"]);
    assert_eq!(reqs[1].body_text(), "partial\n");
    assert_eq!(finish(&env, "slow")["outcome"], "timeout");
}

#[test]
fn a_job_that_cannot_start_pings_its_failure_and_why() {
    let env = Env::new();
    let server = Server::start(Mode::Healthchecks);
    let out = run(&env, &server.url(), &["-n", "nx", "--", "/nonexistent/cmd"]);
    assert_eq!(code(&out), 127);
    let reqs = server.wait_for(1);
    assert_eq!(server.kinds(), ["127"], "no start ping for a job that never started");
    assert!(reqs[0].body_text().contains("command not found"), "{}", reqs[0].body_text());
}

#[test]
fn the_body_is_the_last_10_kib_of_the_output() {
    let env = Env::new();
    let server = Server::start(Mode::Healthchecks);
    let out = run(&env, &server.url(), &["-n", "big", "--", "seq", "1", "20000"]);
    assert_eq!(code(&out), 0);
    let reqs = server.wait_for(2);
    let all = out.stdout;
    assert!(all.len() > 50_000);
    assert_eq!(reqs[1].body, all[all.len() - 10 * 1024..]);
}

#[test]
fn a_hung_server_holds_up_neither_the_start_nor_the_exit() {
    let env = Env::new();
    let server = Server::start(Mode::Hangs);
    let mut cmd = runonce(&env);
    cmd.args(["--ping", &server.url(), "-n", "hang", "--", "sh", "-c"]);
    cmd.stderr(std::process::Stdio::piped());
    let mut job = env.holding("hang", cmd);
    // the job runs while the start ping is still out: runonce did not wait
    // for it (it would have given up on it, closing the connection, first)
    let reqs = server.wait_for(1);
    assert_eq!(reqs[0].kind().as_deref(), Some("start"));
    assert!(!*reqs[0].closed.lock().unwrap(), "the job started only after the start ping");
    let mut err = job.child.stderr.take().unwrap();
    let released = Instant::now();
    let status = job.release();
    let took = released.elapsed();
    let mut err_text = String::new();
    err.read_to_string(&mut err_text).unwrap();
    assert_eq!(status, Some(0), "{err_text}");
    assert!(took < BOUND + SLACK, "runonce exited {took:?} after its job");
    assert!(*reqs[0].closed.lock().unwrap(), "runonce gave up on the start ping");
    let w = warnings(&finish(&env, "hang"));
    let prefix = format!("--ping http://127.0.0.1:{}/...: ", server.port);
    assert!(w.iter().any(|w| w.starts_with(&prefix) && w.contains("finish: ")), "{w:?}");
    // a successful run mails nothing about its pings
    assert!(!err_text.contains("--ping"), "{err_text}");
    assert!(!err_text.contains(UUID), "{err_text}");
    assert_secret_kept(&env, &[]);
}

#[test]
fn a_server_error_is_retried_recorded_and_never_fails_the_job() {
    let env = Env::new();
    let server = Server::start(Mode::Broken);
    let out = run(&env, &server.url(), &["-n", "e500", "--", "true"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let kinds = server.kinds();
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert!(count("start") >= 1 && count("success") == 3, "{kinds:?}");
    let w = warnings(&finish(&env, "e500"));
    assert!(w.iter().any(|w| w.ends_with("finish: HTTP 500 (3 tries)")), "{w:?}");
    assert!(!stderr(&out).contains("HTTP 500"), "{}", stderr(&out));
    assert_secret_kept(&env, &[&out]);
}

#[test]
fn a_server_that_is_down_never_fails_the_job_and_a_failed_run_says_so() {
    let env = Env::new();
    let url = down_url();
    let t0 = Instant::now();
    let out = run(&env, &url, &["-n", "down", "--", "sh", "-c", "echo still-ran; exit 4"]);
    assert!(t0.elapsed() < BOUND + SLACK);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert_eq!(stdout(&out), "still-ran\n");
    let rec = finish(&env, "down");
    assert_eq!((rec["outcome"].as_str(), rec["exit"].as_u64()), (Some("failed"), Some(4)));
    let w = warnings(&rec);
    assert!(w.iter().any(|w| w.contains("finish: connection refused")), "{w:?}");
    // the run failed: cron mails stderr, and the ping problem is in it
    assert!(stderr(&out).contains("finish: connection refused"), "{}", stderr(&out));
    assert_secret_kept(&env, &[&out]);
}

#[test]
fn a_skipped_run_pings_nothing() {
    let env = Env::new();
    let server = Server::start(Mode::Healthchecks);
    let url = server.url();
    let held = env.hold("busy", &["--ping", &url]);
    server.wait_for(1);
    let out = run(&env, &url, &["-n", "busy", "--", "true"]);
    assert_eq!(code(&out), 75);
    assert_eq!(held.release(), Some(0));
    server.wait_for(2);
    assert_eq!(server.kinds(), ["start", "success"], "the skipped run sent nothing");
}

#[test]
fn a_bad_url_is_one_line_naming_ping_and_the_job_never_starts() {
    let env = Env::new();
    let marker = env.path("ran");
    for bad in [
        format!("ftp://hc-ping.com/{UUID}"),
        format!("hc-ping.com/{UUID}"),
        UUID.to_string(),
        "https://hc-ping.com/".to_string(),
        format!("https://hc-ping.com/{UUID}#frag"),
        String::new(),
    ] {
        let out = run(&env, &bad, &["--", "touch", marker.to_str().unwrap()]);
        let err = stderr(&out);
        assert_eq!(code(&out), 125, "{bad}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("runonce: --ping: invalid value '"), "{err}");
        assert!(!err.contains(UUID), "{err}");
        assert!(!marker.exists(), "{bad}: the job ran");
    }
    assert!(env.records().is_empty());
}

#[test]
fn the_url_can_come_from_the_environment_and_is_never_shown() {
    let env = Env::new();
    let server = Server::start(Mode::Healthchecks);
    let out = runonce(&env)
        .env("RUNONCE_PING_URL", server.url())
        .args(["-n", "envping", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    server.wait_for(2);
    assert_eq!(server.kinds(), ["start", "success"]);
    // an empty value (a crontab's `RUNONCE_PING_URL=`) pings nothing
    let out2 = runonce(&env).env("RUNONCE_PING_URL", "").args(["--", "true"]).output().unwrap();
    assert_eq!(code(&out2), 0, "{}", stderr(&out2));
    assert_eq!(server.requests().len(), 2);
    let help = runonce(&env).env("RUNONCE_PING_URL", server.url()).arg("--help").output().unwrap();
    assert!(stdout(&help).contains("RUNONCE_PING_URL"));
    assert_secret_kept(&env, &[&out, &out2, &help]);
}
