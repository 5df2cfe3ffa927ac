//! The record of a run (man page, OUTPUT AND RECORDS): one struct, rendered as JSON for
//! the `json:` sink and `--status --json`, and as `key=value` words for
//! syslog and stderr.  The JSON keys are a contract: add, never rename.

use serde::Serialize;

use crate::limits::Hit;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Ok,
    Failed,
    Timeout,
    Idle,
    Signaled,
    Skipped,
    Error,
    Cooldown,
    /// The fleet lease was lost while the job ran: it was stopped.
    LostLock,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Timeout => "timeout",
            Outcome::Idle => "idle",
            Outcome::Signaled => "signaled",
            Outcome::Skipped => "skipped",
            Outcome::Error => "error",
            Outcome::Cooldown => "cooldown",
            Outcome::LostLock => "lost-lock",
        }
    }

    /// Runs that did not go wrong: their records stay silent when syslog
    /// is unreachable (a skip must never cause cron mail).
    pub fn is_quiet(self) -> bool {
        matches!(self, Outcome::Ok | Outcome::Skipped | Outcome::Cooldown)
    }

    /// Counts as a failure for the circuit breaker and the state's
    /// consecutive-failure counter.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Outcome::Failed
                | Outcome::Timeout
                | Outcome::Idle
                | Outcome::Signaled
                | Outcome::Error
                | Outcome::LostLock
        )
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Start,
    Attempt,
    #[default]
    Finish,
}

/// The JSON keys the man page (OUTPUT AND RECORDS) names for every finish record: a
/// contract with users' log pipelines (add keys freely, never rename these).
pub const CONTRACT_KEYS: &[&str] = &[
    "event",
    "name",
    "runonce_pid",
    "job_pid",
    "start",
    "duration_s",
    "outcome",
    "exit",
    "signal",
    "sent",
    "leftovers",
    "cpu_user_s",
    "cpu_sys_s",
    "maxrss_kib",
    "argv",
    "contain",
    "limits_unapplied",
];

/// One record.  `None` fields are left out of the JSON, except those the
/// contract lists for every finish record, which are written as null.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Record {
    pub event: Event,
    pub name: String,
    pub runonce_pid: i32,
    pub job_pid: Option<i32>,
    /// RFC 3339, UTC.
    pub start: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<u8>,
    /// Signal that ended the job, by name.
    pub signal: Option<String>,
    /// Signals runonce sent to the job, in order (`TERM`, `KILL`).
    pub sent: Vec<String>,
    pub leftovers: u32,
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    pub maxrss_kib: u64,
    pub argv: Vec<String>,
    /// How the job was contained: `cgroup2`, `cgroup1` or `pgroup`.
    pub contain: String,
    pub limits_unapplied: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder_pid: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder_age_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_skips: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter_s: Option<f64>,
    /// Peak memory of the whole job's cgroup, where it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_peak_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_kills: Option<u64>,
    /// Bytes of the job's output runonce could not deliver (closed or
    /// full stdout/stderr).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_lost_bytes: Option<u64>,
    /// The limit that ended or broke the job, where the kernel said so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<Hit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// runonce's own warnings during the run (with `--quiet` they reach
    /// stderr only if the run fails).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The fleet lease (`--lock-url`): its token, and the host and runonce
    /// PID holding it (this run's, or the holder's when skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fencing_token: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_pid: Option<i32>,
    /// `--lock-url-optional`: why the run went on without the lease.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_error: Option<String>,
    pub host: String,
    pub uid: u32,
}

impl Record {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// The human line for syslog and stderr, e.g.
    /// `collector: finish outcome=timeout exit=124 duration=600.02s cpu=12.31s maxrss=512MiB pid=4242`.
    pub fn to_words(&self) -> String {
        let mut w = format!(
            "{}: {}",
            self.name,
            match self.event {
                Event::Start => "start",
                Event::Attempt => "attempt",
                Event::Finish => "finish",
            }
        );
        if let Some(o) = self.outcome {
            w += &format!(" outcome={}", o.as_str());
        }
        if let (Some(a), Some(n)) = (self.attempt, self.attempts) {
            w += &format!(" attempt={a}/{n}");
        }
        if let Some(e) = self.exit {
            w += &format!(" exit={e}");
        }
        if let Some(s) = &self.signal {
            w += &format!(" signal={s}");
        }
        if let Some(l) = self.limit {
            w += &format!(" limit={}", l.as_str());
        }
        if !self.sent.is_empty() {
            w += &format!(" sent={}", self.sent.join(","));
        }
        if self.leftovers > 0 {
            w += &format!(" leftovers={}", self.leftovers);
        }
        if let Some(d) = self.duration_s {
            w += &format!(" duration={d:.2}s");
        }
        if self.event != Event::Start && self.outcome.is_some_and(|o| o != Outcome::Skipped) {
            w += &format!(
                " cpu={:.2}s maxrss={}",
                self.cpu_user_s + self.cpu_sys_s,
                human_kib(self.maxrss_kib)
            );
        }
        if let Some(p) = self.job_pid {
            w += &format!(" pid={p}");
        }
        if let Some(p) = self.holder_pid {
            w += &format!(" holder_pid={p}");
        }
        if let Some(a) = self.holder_age_s {
            w += &format!(" holder_age={a:.0}s");
        }
        if let (Some(h), Some(p)) = (&self.lease_host, self.lease_pid) {
            w += &format!(" lease={h}:{p}");
        }
        if let Some(t) = self.fencing_token {
            w += &format!(" fencing_token={t}");
        }
        if let Some(e) = &self.lease_error {
            w += &format!(" lease_error={e:?}");
        }
        if let Some(n) = self.consecutive_skips {
            w += &format!(" consecutive_skips={n}");
        }
        if !self.limits_unapplied.is_empty() {
            w += &format!(" limits_unapplied={}", self.limits_unapplied.join(","));
        }
        if self.event == Event::Start {
            w += &format!(" contain={} argv={}", self.contain, shell_words(&self.argv));
        }
        if let Some(m) = &self.message {
            w += &format!(" message={m:?}");
        }
        for warning in &self.warnings {
            w += &format!(" warning={warning:?}");
        }
        w
    }
}

fn human_kib(kib: u64) -> String {
    if kib >= 10 * 1024 { format!("{}MiB", kib / 1024) } else { format!("{kib}KiB") }
}

/// The command line as a shell would read it back.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Now as RFC 3339 (UTC, milliseconds).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn sample() -> Record {
        Record {
            event: Event::Finish,
            name: "collector".into(),
            runonce_pid: 1,
            job_pid: Some(4242),
            start: now_rfc3339(),
            duration_s: Some(600.02),
            outcome: Some(Outcome::Timeout),
            exit: Some(124),
            signal: Some("KILL".into()),
            sent: vec!["TERM".into(), "KILL".into()],
            leftovers: 0,
            cpu_user_s: 12.0,
            cpu_sys_s: 0.31,
            maxrss_kib: 512 * 1024,
            argv: vec!["/opt/run.py".into(), "a b".into()],
            contain: "pgroup".into(),
            host: "h".into(),
            ..Record::default()
        }
    }

    #[test]
    fn words() {
        assert_eq!(
            sample().to_words(),
            "collector: finish outcome=timeout exit=124 signal=KILL sent=TERM,KILL \
             duration=600.02s cpu=12.31s maxrss=512MiB pid=4242"
        );
    }

    #[test]
    fn quiet_and_failed_outcomes() {
        use Outcome::*;
        let all = [Ok, Failed, Timeout, Idle, Signaled, Error, Skipped, Cooldown, LostLock];
        let quiet: Vec<_> = all.iter().filter(|o| o.is_quiet()).collect();
        assert_eq!(quiet, [&Ok, &Skipped, &Cooldown]);
        let failed: Vec<_> = all.iter().filter(|o| o.is_failure()).collect();
        assert_eq!(failed, [&Failed, &Timeout, &Idle, &Signaled, &Error, &LostLock]);
    }

    #[test]
    fn usage_and_leftovers_only_where_they_mean_something() {
        let mut r = sample();
        r.leftovers = 2;
        assert!(r.to_words().contains(" leftovers=2 "), "{}", r.to_words());
        assert!(!sample().to_words().contains("leftovers"), "{}", sample().to_words());
        r.outcome = Some(Outcome::Skipped);
        assert!(!r.to_words().contains(" cpu="), "a skip used nothing: {}", r.to_words());
        r.outcome = Some(Outcome::Ok);
        r.event = Event::Start;
        assert!(!r.to_words().contains(" cpu="), "a start has used nothing yet: {}", r.to_words());
    }

    #[test]
    fn sizes_in_kib_below_ten_mib() {
        assert_eq!(human_kib(5), "5KiB");
        assert_eq!(human_kib(2000), "2000KiB");
        assert_eq!(human_kib(10 * 1024 - 1), "10239KiB");
        assert_eq!(human_kib(10 * 1024), "10MiB");
    }

    #[test]
    fn now_is_now_in_rfc3339() {
        let now = now_rfc3339();
        let t = humantime::parse_rfc3339(&now).expect(&now);
        let off = std::time::SystemTime::now().duration_since(t).unwrap_or_default();
        assert!(off < std::time::Duration::from_secs(60), "{now}");
    }

    #[test]
    fn limit_and_warnings_in_both_forms() {
        let mut r = sample();
        r.outcome = Some(Outcome::Signaled);
        r.exit = Some(137);
        r.sent = vec![];
        r.limit = Some(Hit::Memory);
        r.warnings = vec!["limit not applied: x".into()];
        assert!(r.to_words().contains(" signal=KILL limit=memory "), "{}", r.to_words());
        assert!(r.to_words().ends_with(r#" warning="limit not applied: x""#), "{}", r.to_words());
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["limit"], "memory");
        assert_eq!(v["warnings"][0], "limit not applied: x");
        let v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        assert!(v.get("limit").is_none() && v.get("warnings").is_none(), "left out when empty");
    }

    #[test]
    fn lease_in_words_and_json() {
        let mut r = sample();
        r.outcome = Some(Outcome::LostLock);
        r.fencing_token = Some(7);
        r.lease_host = Some("alpha".into());
        r.lease_pid = Some(42);
        assert!(r.to_words().contains(" outcome=lost-lock "), "{}", r.to_words());
        assert!(r.to_words().contains(" lease=alpha:42 fencing_token=7"), "{}", r.to_words());
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(
            (v["outcome"].as_str(), v["fencing_token"].as_i64()),
            (Some("lost-lock"), Some(7))
        );
        assert!(v.get("lease_error").is_none());
    }

    #[test]
    fn json_keys() {
        let v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        for &key in CONTRACT_KEYS {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["outcome"], "timeout");
        assert_eq!(v["event"], "finish");
    }

    #[test]
    fn quoting() {
        assert_eq!(
            shell_words(&["echo".into(), "a b".into(), "it's".into()]),
            r"echo 'a b' 'it'\''s'"
        );
    }
}
