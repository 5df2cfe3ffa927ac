//! `--ping URL` (man page, PINGS): a dead man's switch as healthchecks.io
//! defines it, a sink beside the records (docs/ARCHITECTURE.md, Sinks).
//! `URL/start` when the job starts, `URL` when the run succeeds, `URL/EXIT`
//! when it fails (`URL/fail` where the server refuses exit statuses), the
//! last bytes of the job's output as the body, and one run id (`rid`) on
//! both so the server pairs them.
//!
//! The pings go out from a thread of their own, started with the first
//! ping: the job never waits for the start ping, and runonce waits for the
//! finish ping at most `BOUND`.  A ping that fails is retried, then noted
//! in the finish record; it never changes the run's outcome or exit status.
//! The URL holds the check's secret: only `PingUrl::shown` (scheme and
//! host) is ever written anywhere.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::record::{Outcome, Record};

/// How much of the job's output goes with the finish ping.
pub const TAIL_BYTES: usize = 10 * 1024;
/// Longest one try of a ping may take: name lookup, connection, request
/// and answer.
const TRY_TIMEOUT: Duration = Duration::from_secs(5);
/// Tries of each ping, at most.
const TRIES: u32 = 3;
/// Pause before a retry.
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// runonce waits at most this long, once the run is over, for its pings
/// (the finish ping, and a start ping still under way before it).
pub const BOUND: Duration = Duration::from_secs(10);

/// A checked `--ping` URL.
#[derive(Clone, Debug)]
pub struct PingUrl {
    /// `scheme://authority/path`, without a trailing slash.
    base: String,
    /// The query given (`create=1`), without its `?`.
    query: Option<String>,
    /// What may be shown: the scheme and the host, the rest elided.
    shown: String,
    https: bool,
    /// The parts that must never be shown (path segments, query, user).
    secrets: Vec<String>,
}

impl PingUrl {
    /// Checks a `--ping` value.  The error is one line for the user, which
    /// shows the value with its secret part elided.
    pub fn parse(text: &str) -> Result<PingUrl, String> {
        let invalid = |why: &str| format!("--ping: invalid value '{}': {why}", elide(text));
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("spaces or control characters in the URL"));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(invalid("not an http:// or https:// URL"));
        };
        let https = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return Err(invalid("the scheme must be http or https")),
        };
        if rest.contains('#') {
            return Err(invalid("a fragment (#...) is never sent to the server: leave it out"));
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(end);
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string()).filter(|q| !q.is_empty())),
            None => (rest, None),
        };
        let (user, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(invalid("no host in the URL"));
        }
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            return Err(invalid(
                "no check in the URL: give its ping URL, .../UUID or .../KEY/SLUG",
            ));
        }
        let secrets = path
            .split('/')
            .filter(|s| s.len() >= 8)
            .map(String::from)
            .chain(query.clone())
            .chain(user.map(String::from))
            .collect();
        let url = PingUrl {
            base: format!("{scheme}://{authority}{path}"),
            query,
            shown: format!("{scheme}://{host}/..."),
            https,
            secrets,
        };
        check_with_client(&url.endpoint("/start", &new_rid())).map_err(|why| invalid(&why))?;
        Ok(url)
    }

    /// The URL as it may be shown: scheme and host.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The URL of one ping: `suffix` (`/start`, `/fail`, `/3`, or empty)
    /// after the check's path, the query given, then the run id.
    fn endpoint(&self, suffix: &str, rid: &str) -> String {
        let query = self.query.as_deref().map(|q| format!("{q}&")).unwrap_or_default();
        format!("{}{suffix}?{query}rid={rid}", self.base)
    }

    /// `msg` with every secret part of the URL elided, should a library's
    /// message ever quote it.
    fn scrub(&self, msg: &str) -> String {
        let mut msg = msg.replace(&self.base, &self.shown);
        for s in &self.secrets {
            msg = msg.replace(s.as_str(), "...");
        }
        msg
    }
}

/// A value that failed the check, as it may be shown: scheme and host (or
/// the part before the first `/`), the rest elided.
fn elide(text: &str) -> String {
    let (scheme, rest) = match text.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), text),
    };
    let end = rest.find(['/', '?', '#']);
    let authority = &rest[..end.unwrap_or(rest.len())];
    if scheme.is_empty() && end.is_none() {
        // no structure at all: it may be the secret itself
        return "...".into();
    }
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host: String = host.chars().filter(|c| !c.is_control()).collect();
    if end.is_some() { format!("{scheme}{host}/...") } else { format!("{scheme}{host}") }
}

/// A run id as healthchecks.io wants it: a random (version 4) UUID.
fn new_rid() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // a fixed id still pairs the run's pings, and nothing else depends
        // on it being unique
        b = *b"runonce-run-id-0";
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// Which ping ends a run, if any: None for runs that did not run the job
/// because it was busy or cooling down (the check's own schedule notices a
/// job that keeps not running).  Else the suffix, and the one to fall back
/// on where the server refuses exit statuses.
fn finish_suffix(
    outcome: Option<Outcome>,
    exit: Option<u8>,
) -> Option<(String, Option<&'static str>)> {
    match outcome? {
        Outcome::Skipped | Outcome::Cooldown => None,
        Outcome::Ok => Some((String::new(), None)),
        _ => match exit {
            Some(code) if code > 0 => Some((format!("/{code}"), Some("/fail"))),
            _ => Some(("/fail".into(), None)),
        },
    }
}

/// One ping for the worker thread.
struct Ping {
    what: &'static str,
    suffix: String,
    fallback: Option<&'static str>,
    body: Vec<u8>,
    /// Give up after this (the finish ping); the start ping has none, but
    /// stops retrying once the finish ping waits.
    deadline: Option<Instant>,
}

/// How one ping went.
struct Report {
    what: &'static str,
    problem: Option<String>,
}

struct Worker {
    tx: mpsc::Sender<Ping>,
    reports: mpsc::Receiver<Report>,
    /// Set when the finish ping is queued: the start ping retries no more.
    finishing: Arc<AtomicBool>,
    queued: Vec<&'static str>,
}

/// The pings of one run.
pub struct Pinger {
    url: Arc<PingUrl>,
    rid: String,
    worker: Option<Worker>,
    tail: Vec<u8>,
    /// Pings that could not even be queued, and why.
    unsent: Vec<String>,
}

impl Pinger {
    /// Nothing happens (no thread, no connection) until the first ping.
    pub fn new(url: PingUrl) -> Pinger {
        Pinger {
            url: Arc::new(url),
            rid: new_rid(),
            worker: None,
            tail: Vec::new(),
            unsent: Vec::new(),
        }
    }

    /// The job has started: `URL/start`, sent while the job runs.
    pub fn start(&mut self) {
        self.queue(Ping {
            what: "start",
            suffix: "/start".into(),
            fallback: None,
            body: Vec::new(),
            deadline: None,
        });
    }

    /// The last bytes of the job's output, for the finish ping.
    pub fn keep_output(&mut self, tail: Vec<u8>) {
        self.tail = tail;
    }

    /// The run is over (`rec` is its finish record): the finish ping, if
    /// the run calls for one.  Waits for the pings at most `BOUND`, and
    /// returns what went wrong with them, one line each.
    pub fn finish(&mut self, rec: &Record) -> Vec<String> {
        let Some((suffix, fallback)) = finish_suffix(rec.outcome, rec.exit) else {
            return self.wait(Instant::now());
        };
        let mut body = std::mem::take(&mut self.tail);
        if body.is_empty()
            && let Some(m) = &rec.message
        {
            // the job never ran, or said nothing: say why the run failed
            body = format!("runonce: {m}\n").into_bytes();
        }
        let deadline = Instant::now() + BOUND;
        if let Some(w) = &self.worker {
            w.finishing.store(true, Ordering::SeqCst);
        }
        self.queue(Ping { what: "finish", suffix, fallback, body, deadline: Some(deadline) });
        self.wait(deadline)
    }

    fn queue(&mut self, ping: Ping) {
        if self.worker.is_none() {
            match spawn(self.url.clone(), self.rid.clone()) {
                Ok(w) => self.worker = Some(w),
                Err(e) => {
                    self.unsent.push(format!("{}: no thread to send it: {e}", ping.what));
                    return;
                }
            }
        }
        if let Some(w) = &mut self.worker {
            w.queued.push(ping.what);
            // the thread lives as long as the process: the send cannot fail
            let _ = w.tx.send(ping);
        }
    }

    /// Collects the reports of the pings queued, until `deadline`.
    fn wait(&mut self, deadline: Instant) -> Vec<String> {
        let mut problems = std::mem::take(&mut self.unsent);
        let shown = |p: String| format!("--ping {}: {p}", self.url.shown);
        let Some(w) = &mut self.worker else { return problems.into_iter().map(shown).collect() };
        while !w.queued.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let report = if left.is_zero() {
                w.reports.try_recv().map_err(|_| ())
            } else {
                w.reports.recv_timeout(left).map_err(|_| ())
            };
            let Ok(report) = report else {
                for what in w.queued.drain(..) {
                    problems.push(format!(
                        "{what}: no answer within {}s (runonce went on without it)",
                        BOUND.as_secs()
                    ));
                }
                break;
            };
            if let Some(i) = w.queued.iter().position(|&q| q == report.what) {
                w.queued.remove(i);
            }
            if let Some(p) = report.problem {
                problems.push(format!("{}: {p}", report.what));
            }
        }
        problems.into_iter().map(shown).collect()
    }
}

fn spawn(url: Arc<PingUrl>, rid: String) -> std::io::Result<Worker> {
    let (tx, rx) = mpsc::channel::<Ping>();
    let (report_tx, reports) = mpsc::channel();
    let finishing = Arc::new(AtomicBool::new(false));
    let theirs = finishing.clone();
    std::thread::Builder::new().name("ping".into()).spawn(move || {
        let mut client = None;
        for ping in rx {
            let problem =
                deliver(&mut client, &url, &rid, &ping, &theirs).err().map(|p| url.scrub(&p));
            if report_tx.send(Report { what: ping.what, problem }).is_err() {
                return;
            }
        }
    })?;
    Ok(Worker { tx, reports, finishing, queued: Vec::new() })
}

/// What one try of a ping came to.
// Without the `ping` feature no client exists to answer Done or Retry.
#[cfg_attr(not(feature = "ping"), allow(dead_code))]
enum Answer {
    Done,
    /// Worth another try (no connection, a timeout, 429, 5xx).
    Retry(String),
    /// The server said no (4xx): another try would say the same.
    Refused(u16),
}

/// Sends one ping, with its retries and its fallback.
fn deliver(
    client: &mut Option<Result<http::Client, String>>,
    url: &PingUrl,
    rid: &str,
    ping: &Ping,
    finishing: &AtomicBool,
) -> Result<(), String> {
    let client = match client.get_or_insert_with(|| http::Client::new(url.https)) {
        Ok(c) => c,
        Err(e) => return Err(e.clone()),
    };
    let mut suffix = ping.suffix.as_str();
    let mut fallback = ping.fallback;
    let mut tries = 0;
    loop {
        let timeout = match ping.deadline {
            Some(d) => TRY_TIMEOUT.min(d.saturating_duration_since(Instant::now())),
            None => TRY_TIMEOUT,
        };
        if timeout.is_zero() {
            return Err(format!("gave up after {} s", BOUND.as_secs()));
        }
        tries += 1;
        let why = match client.send(&url.endpoint(suffix, rid), &ping.body, timeout) {
            Answer::Done => return Ok(()),
            Answer::Refused(code) => match fallback.take() {
                Some(f) => {
                    suffix = f;
                    continue;
                }
                None => return Err(format!("HTTP {code}")),
            },
            Answer::Retry(why) => why,
        };
        let stop_start = ping.deadline.is_none() && finishing.load(Ordering::SeqCst);
        let pause_ends = Instant::now() + RETRY_PAUSE;
        let too_late = ping.deadline.is_some_and(|d| pause_ends >= d);
        if tries >= TRIES || stop_start || too_late {
            let times = if tries == 1 { "1 try".into() } else { format!("{tries} tries") };
            return Err(format!("{why} ({times})"));
        }
        std::thread::sleep(RETRY_PAUSE);
    }
}

#[cfg(feature = "ping")]
fn check_with_client(endpoint: &str) -> Result<(), String> {
    ::ureq::http::Uri::try_from(endpoint).map(|_| ()).map_err(|_| "not a valid URL".into())
}

#[cfg(not(feature = "ping"))]
fn check_with_client(_endpoint: &str) -> Result<(), String> {
    Err("this runonce was built without the ping feature (cargo feature `ping`)".into())
}

/// The HTTP side, with ureq over rustls (the crypto provider and CA roots
/// of `crate::tls`).
#[cfg(feature = "ping")]
mod http {
    use std::io::ErrorKind;
    use std::sync::Arc;
    use std::time::Duration;

    use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

    use super::Answer;

    pub struct Client(ureq::Agent);

    impl Client {
        /// For an http:// URL nothing of TLS is loaded.
        pub fn new(https: bool) -> Result<Client, String> {
            // ureq looks the host up with getaddrinfo (man page, PINGS)
            crate::nss::hosts_without_modules();
            let roots: Vec<Certificate<'static>> = if https {
                crate::tls::system_roots()
                    .map_err(|e| format!("TLS: {e}"))?
                    .into_iter()
                    .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                    .collect()
            } else {
                Vec::new()
            };
            let tls = TlsConfig::builder()
                .provider(TlsProvider::Rustls)
                .root_certs(RootCerts::Specific(Arc::new(roots)))
                .unversioned_rustls_crypto_provider(crate::tls::provider())
                .build();
            let config = ureq::Agent::config_builder()
                .tls_config(tls)
                .http_status_as_error(false)
                // a ping endpoint does not move: a redirect is an answer to
                // report, not a place to send the job's output to
                .max_redirects(0)
                .max_redirects_will_error(false)
                .user_agent(concat!("runonce/", env!("CARGO_PKG_VERSION")))
                .build();
            Ok(Client(config.into()))
        }

        pub fn send(&self, url: &str, body: &[u8], timeout: Duration) -> Answer {
            let sent = self
                .0
                .post(url)
                .header("Content-Type", "text/plain; charset=utf-8")
                .config()
                .timeout_global(Some(timeout))
                .build()
                .send(body);
            match sent {
                Ok(r) => match r.status().as_u16() {
                    200..=299 => Answer::Done,
                    code @ (429 | 500..=599) => Answer::Retry(format!("HTTP {code}")),
                    code if (400..=499).contains(&code) => Answer::Refused(code),
                    code => Answer::Retry(format!("HTTP {code}")),
                },
                Err(e) => Answer::Retry(words(&e, timeout)),
            }
        }
    }

    /// ureq's error in a few words.
    fn words(e: &ureq::Error, timeout: Duration) -> String {
        match e {
            ureq::Error::Timeout(_) => format!("no answer within {:.1}s", timeout.as_secs_f64()),
            ureq::Error::HostNotFound => "host not found".into(),
            ureq::Error::Io(io) => match io.kind() {
                ErrorKind::ConnectionRefused => "connection refused".into(),
                ErrorKind::ConnectionReset => "connection reset".into(),
                ErrorKind::TimedOut => "timed out".into(),
                _ => io.to_string(),
            },
            ureq::Error::Rustls(t) => format!("TLS: {t}"),
            other => other.to_string(),
        }
    }
}

/// Without the `ping` feature no URL passes the check, so no ping is sent.
#[cfg(not(feature = "ping"))]
mod http {
    use std::time::Duration;

    use super::Answer;

    pub struct Client;

    impl Client {
        pub fn new(_https: bool) -> Result<Client, String> {
            Err("built without the ping feature".into())
        }

        pub fn send(&self, _url: &str, _body: &[u8], _timeout: Duration) -> Answer {
            Answer::Refused(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278";

    #[cfg(feature = "ping")]
    #[test]
    fn urls() {
        let u = PingUrl::parse(&format!("https://hc-ping.com/{UUID}/")).unwrap();
        assert_eq!(u.shown(), "https://hc-ping.com/...");
        assert_eq!(u.endpoint("/start", "R"), format!("https://hc-ping.com/{UUID}/start?rid=R"));
        let u = PingUrl::parse("http://u:pw@h:8000/ping/key12345/backup?create=1").unwrap();
        assert_eq!(u.endpoint("", "R"), "http://u:pw@h:8000/ping/key12345/backup?create=1&rid=R");
        assert_eq!(u.shown(), "http://h:8000/...");
        assert_eq!(u.scrub("x key12345 y create=1 u:pw"), "x ... y ... ...");
    }

    #[cfg(feature = "ping")]
    #[test]
    fn bad_urls_name_the_option_and_hide_the_secret() {
        for (bad, why) in [
            (format!("ftp://h/{UUID}"), "the scheme must be http or https"),
            (format!("hc-ping.com/{UUID}"), "not an http:// or https:// URL"),
            (UUID.to_string(), "not an http:// or https:// URL"),
            ("https://hc-ping.com/".to_string(), "no check in the URL"),
            (format!("https:///{UUID}"), "no host"),
            (format!("https://h/{UUID}#x"), "a fragment"),
            (format!("https://h/{UUID} x"), "spaces"),
            (format!("https://h[/{UUID}"), "not a valid URL"),
        ] {
            let msg = PingUrl::parse(&bad).unwrap_err();
            assert!(msg.starts_with("--ping: invalid value '"), "{msg}");
            assert!(msg.contains(why), "{bad}: {msg}");
            assert!(!msg.contains(UUID), "{msg}");
        }
    }

    #[test]
    fn which_ping_ends_a_run() {
        assert_eq!(finish_suffix(Some(Outcome::Ok), Some(0)), Some((String::new(), None)));
        assert_eq!(
            finish_suffix(Some(Outcome::Timeout), Some(124)),
            Some(("/124".into(), Some("/fail")))
        );
        assert_eq!(
            finish_suffix(Some(Outcome::Failed), Some(3)),
            Some(("/3".into(), Some("/fail")))
        );
        assert_eq!(finish_suffix(Some(Outcome::Error), None), Some(("/fail".into(), None)));
        assert_eq!(finish_suffix(Some(Outcome::Skipped), Some(75)), None);
        assert_eq!(finish_suffix(Some(Outcome::Cooldown), Some(75)), None);
        assert_eq!(finish_suffix(None, None), None);
    }

    #[test]
    fn run_ids_are_uuids() {
        let (a, b) = (new_rid(), new_rid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(a.split('-').map(str::len).eq([8, 4, 4, 4, 12]));
    }
}
