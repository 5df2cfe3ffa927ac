//! Prometheus node_exporter textfile for a job: `runonce_<name>.prom`,
//! written atomically from the job's state.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::fleet::Holder;
use crate::record::Outcome;
use crate::state::JobState;

const OUTCOMES: &[Outcome] = &[
    Outcome::Ok,
    Outcome::Failed,
    Outcome::Timeout,
    Outcome::Idle,
    Outcome::Signaled,
    Outcome::Skipped,
    Outcome::Error,
    Outcome::Cooldown,
    Outcome::LostLock,
];

/// Label values escaped as the text format requires.
fn label(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n")
}

/// The textfile for one job.  `running` is the number of its instances
/// running now, read from the locks (the state cannot know it).
pub fn render(state: &JobState, running: u32, lease: Option<&Holder>) -> String {
    let job = label(&state.name);
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name}{{job=\"{job}\"}} {value}");
    };
    gauge(
        "runonce_running",
        "Instances of the job running now (1 while it runs; up to --slots).",
        f64::from(running),
    );
    gauge(
        "runonce_last_start_timestamp_seconds",
        "Start of the last run, seconds since the epoch.",
        state.last_start_unix.unwrap_or(0.0),
    );
    gauge(
        "runonce_last_duration_seconds",
        "Wall-clock duration of the last run.",
        state.last_duration_s.unwrap_or(0.0),
    );
    gauge(
        "runonce_last_exit_code",
        "Exit status runonce returned for the last run.",
        state.last_exit.map_or(-1.0, f64::from),
    );
    gauge(
        "runonce_last_end_timestamp_seconds",
        "End of the last run, seconds since the epoch (0: never).",
        state.last_end_unix.unwrap_or(0.0),
    );
    gauge(
        "runonce_last_success_timestamp_seconds",
        "End of the last successful run, seconds since the epoch (0: never).",
        state.last_success_unix.unwrap_or(0.0),
    );
    gauge(
        "runonce_last_maxrss_bytes",
        "Peak resident memory of the last run's processes.",
        state.last_maxrss_kib.unwrap_or(0) as f64 * 1024.0,
    );
    gauge(
        "runonce_consecutive_failures",
        "Failed runs in a row (reset by a success).",
        state.consecutive_failures as f64,
    );
    gauge(
        "runonce_consecutive_skips",
        "Runs skipped in a row because the job was busy: a high value means it is stuck.",
        state.consecutive_skips as f64,
    );
    if let Some(h) = lease {
        gauge(
            "runonce_lease_fencing_token",
            "Fencing token of the fleet lease (--lock-url) as this host last saw it.",
            h.token as f64,
        );
        let _ = writeln!(
            out,
            "# HELP runonce_lease_holder The fleet lease's holder (host, runonce pid) as this \
             host last saw it: this host's run, or the one it skipped for."
        );
        let _ = writeln!(out, "# TYPE runonce_lease_holder gauge");
        let _ = writeln!(
            out,
            "runonce_lease_holder{{job=\"{job}\",host=\"{}\",pid=\"{}\"}} 1",
            label(&h.host),
            h.pid
        );
    }
    let _ = writeln!(out, "# HELP runonce_runs_total Finished runs by outcome.");
    let _ = writeln!(out, "# TYPE runonce_runs_total counter");
    for o in OUTCOMES {
        let n = state.outcomes.get(o.as_str()).copied().unwrap_or(0);
        let _ = writeln!(out, "runonce_runs_total{{job=\"{job}\",outcome=\"{}\"}} {n}", o.as_str());
    }
    out
}

/// The textfile of job `name` in `dir`.
pub fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(file_name(name))
}

fn file_name(name: &str) -> String {
    format!("runonce_{name}.prom")
}

/// Writes the textfile atomically, through an exclusive temp file: a link
/// or FIFO planted at any name in the directory is never written through
/// or waited on (files.rs).
pub fn write(
    dir: &Path,
    state: &JobState,
    running: u32,
    lease: Option<&Holder>,
) -> std::io::Result<()> {
    if !dir.is_dir() {
        std::fs::create_dir_all(dir)?;
    }
    let text = render(state, running, lease);
    crate::files::replace(dir, &file_name(&state.name), text.as_bytes(), 0o644, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_has_help_and_type() {
        let mut s = JobState { name: "j".into(), ..Default::default() };
        s.outcomes.insert("ok".into(), 3);
        let text = render(&s, 1, None);
        assert!(text.contains("runonce_runs_total{job=\"j\",outcome=\"ok\"} 3"));
        assert!(text.contains("runonce_running{job=\"j\"} 1"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let metric = line.split('{').next().unwrap();
            assert!(text.contains(&format!("# TYPE {metric} ")), "{metric}");
        }
    }

    /// The values are in the units the names say, a job that never ran
    /// has no exit status (-1, not 0 or 1), and label values are escaped
    /// as the text format asks (a name is checked, a lease's host is not).
    #[test]
    fn units_unknowns_and_escapes() {
        let s = JobState { name: "j".into(), last_maxrss_kib: Some(3), ..Default::default() };
        let lease = Holder { host: "h\"1\\\n".into(), pid: 7, token: 9, age_s: 0.0 };
        let text = render(&s, 0, Some(&lease));
        assert!(text.contains("runonce_last_maxrss_bytes{job=\"j\"} 3072\n"), "{text}");
        assert!(text.contains("runonce_last_exit_code{job=\"j\"} -1\n"), "{text}");
        assert!(
            text.contains("runonce_lease_holder{job=\"j\",host=\"h\\\"1\\\\\\n\",pid=\"7\"} 1\n"),
            "{text}"
        );
        assert_eq!(path(Path::new("/m"), "j"), Path::new("/m/runonce_j.prom"));
    }
}
