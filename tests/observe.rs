//! Observability (issue 3): records for every outcome, the sinks (JSON,
//! stderr, syslog against a real rsyslogd), per-job state, Prometheus
//! metrics checked by the real Python parser, `--status`, and `--quiet`.

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// A shell job run under `env` as job `name`.
fn sh(env: &Env, name: &str, extra: &[&str], script: &str) -> Output {
    env.cmd().args(["-n", name]).args(extra).args(["--", "sh", "-c", script]).output().unwrap()
}

fn only_finish(env: &Env, name: &str) -> Value {
    let f = env.finishes(name);
    assert_eq!(f.len(), 1, "one finish record for {name}: {f:?}");
    f.into_iter().next().unwrap()
}

fn state(env: &Env, name: &str) -> Value {
    let text = std::fs::read_to_string(env.state_dir.join(format!("{name}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

use runonce::record::CONTRACT_KEYS;

#[test]
fn every_outcome_has_one_finish_record_with_the_contract_keys() {
    let env = Env::new();
    let cases: &[(&str, &[&str], &str, &str, i32)] = &[
        ("ok", &[], "exit 0", "ok", 0),
        ("failed", &[], "exit 3", "failed", 3),
        ("timeout", &["-t", "0.3", "-k", "5"], "sleep 30", "timeout", 124),
        ("idle", &["--idle-timeout", "0.3"], "sleep 30", "idle", 124),
        ("signaled", &[], "kill -USR1 $$", "signaled", 138),
    ];
    for &(name, extra, script, outcome, exit) in cases {
        let out = sh(&env, name, extra, script);
        assert_eq!(code(&out), exit, "{name}: {}", stderr(&out));
        let rec = only_finish(&env, name);
        for key in CONTRACT_KEYS {
            assert!(rec.get(key).is_some(), "{name}: no key {key} in {rec}");
        }
        assert_eq!(rec["outcome"], outcome);
        assert_eq!(rec["exit"], exit);
        assert_eq!(rec["argv"], serde_json::json!(["sh", "-c", script]));
        assert!(humantime::parse_rfc3339(rec["start"].as_str().unwrap()).is_ok(), "{rec}");
        let starts: Vec<_> = env
            .records()
            .into_iter()
            .filter(|r| r["event"] == "start" && r["name"] == name)
            .collect();
        assert_eq!(starts.len(), 1, "{name}: one start record");
        assert_eq!(starts[0]["job_pid"], rec["job_pid"]);
    }
    let timeout = only_finish(&env, "timeout");
    assert_eq!(timeout["sent"], serde_json::json!(["TERM"]));
    assert_eq!(timeout["signal"], "TERM");
    assert_eq!(only_finish(&env, "signaled")["signal"], "USR1");

    let out = env.run(&["-n", "error", "--", "/nonexistent/command"]);
    assert_eq!(code(&out), 127);
    let rec = only_finish(&env, "error");
    assert_eq!(rec["outcome"], "error");
    assert!(rec["message"].as_str().unwrap().contains("/nonexistent/command"), "{rec}");

    let holder = env.hold("busy", &[]);
    let out = sh(&env, "busy", &[], "exit 0");
    assert_eq!(code(&out), 75);
    assert_eq!(holder.release(), Some(0));
    let skipped: Vec<_> =
        env.finishes("busy").into_iter().filter(|r| r["outcome"] == "skipped").collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["exit"], 75);
    assert_eq!(skipped[0]["consecutive_skips"], 1);
    // a run that went ahead counts no skips in its record
    let ran: Vec<_> = env.finishes("busy").into_iter().filter(|r| r["outcome"] == "ok").collect();
    assert_eq!(ran.len(), 1);
    assert!(ran[0]["consecutive_skips"].is_null(), "{}", ran[0]);
}

#[test]
fn kill_sequence_and_leftovers_are_recorded() {
    let env = Env::new();
    let out = sh(&env, "stubborn", &["-t", "0.3", "-k", "0.3"], "trap '' TERM; sleep 30 & wait");
    assert_eq!(code(&out), 124);
    let rec = only_finish(&env, "stubborn");
    assert_eq!(rec["sent"], serde_json::json!(["TERM", "KILL"]));
    assert_eq!(rec["signal"], "KILL");

    let out = sh(&env, "leaves", &["-k", "5"], "sleep 30 & sleep 30 & exit 0");
    assert_eq!(code(&out), 0);
    let rec = only_finish(&env, "leaves");
    assert_eq!(rec["outcome"], "ok");
    assert_eq!(rec["leftovers"], 2);
    assert_eq!(rec["sent"], serde_json::json!(["TERM"]));
}

#[test]
fn cpu_and_peak_rss_are_the_jobs() {
    let env = Env::new();
    // 64 MiB touched, then 0.3 s of CPU, in a grandchild that the shell waits for
    let py = "import time\nb = bytearray(64 << 20)\nt = time.process_time()\n\
              while time.process_time() - t < 0.3: pass";
    let out = env
        .cmd()
        .args(["-n", "hungry", "--", "sh", "-c", "python3 -c \"$0\"; true", py])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rec = only_finish(&env, "hungry");
    let cpu = rec["cpu_user_s"].as_f64().unwrap() + rec["cpu_sys_s"].as_f64().unwrap();
    assert!(cpu >= 0.25, "cpu {cpu}: {rec}");
    let rss = rec["maxrss_kib"].as_u64().unwrap();
    assert!((64 * 1024..1024 * 1024).contains(&rss), "maxrss {rss} KiB");
    assert_eq!(state(&env, "hungry")["last_maxrss_kib"], rss);
}

#[test]
fn stderr_sink_says_it_in_words() {
    let env = Env::new();
    let out = Command::new(BIN)
        .args(["--lock-dir", env.lock_dir.to_str().unwrap()])
        .args(["--state-dir", env.state_dir.to_str().unwrap()])
        .args(["--log", "stderr", "-n", "words", "--", "sh", "-c", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 3);
    let err = stderr(&out);
    let finish = err.lines().find(|l| l.contains(" finish ")).unwrap_or_else(|| panic!("{err}"));
    assert!(
        finish.starts_with("runonce: words: finish outcome=failed exit=3 duration="),
        "{finish}"
    );
    for word in [" cpu=", " maxrss=", " pid="] {
        assert!(finish.contains(word), "{word} in {finish}");
    }
    let start = err.lines().find(|l| l.contains(" start ")).unwrap();
    assert!(start.contains("argv=sh -c 'exit 3'"), "{start}");
}

#[test]
fn log_none_and_concurrent_json_appends() {
    let env = Env::new();
    let quiet = Command::new(BIN)
        .args(["--lock-dir", env.lock_dir.to_str().unwrap()])
        .args(["--state-dir", env.state_dir.to_str().unwrap()])
        .args(["--log", "none", "--syslog-socket", "/nonexistent", "-n", "n", "--", "false"])
        .output()
        .unwrap();
    assert_eq!(code(&quiet), 1);
    assert_eq!(stderr(&quiet), "");
    assert_eq!(state(&env, "n")["failures"], 1, "--log none still keeps the state");

    // long argv: each record is several KiB, and 16 jobs append at once
    let long = "x".repeat(6000);
    let children: Vec<Child> = (0..16)
        .map(|i| {
            env.cmd()
                .args(["-n", &format!("j{i}"), "--", "sh", "-c", "exit 0", &long])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let records = env.records(); // panics on a torn line
    assert_eq!(records.len(), 32);
    for i in 0..16 {
        assert_eq!(env.finishes(&format!("j{i}")).len(), 1);
    }
}

#[test]
fn json_log_in_a_missing_directory_warns_once_and_the_job_runs() {
    let env = Env::new();
    let marker = env.path("ran");
    let out = Command::new(BIN)
        .args(["--lock-dir", env.lock_dir.to_str().unwrap()])
        .args(["--state-dir", env.state_dir.to_str().unwrap()])
        .args(["--log", "json:/nonexistent/dir/log.jsonl", "-n", "m", "--", "sh", "-c"])
        .arg(format!("touch {}; exit 4", marker.display()))
        .output()
        .unwrap();
    assert_eq!(code(&out), 4);
    assert!(marker.exists());
    let err = stderr(&out);
    assert_eq!(err.matches("/nonexistent/dir/log.jsonl").count(), 1, "{err}");
}

#[test]
fn unusable_state_dir_is_said_once_and_never_fails_the_job() {
    let env = Env::new();
    std::fs::write(env.path("file"), "").unwrap();
    let bad = env.path("file").join("state");
    let out = env
        .cmd()
        .arg("--state-dir")
        .arg(&bad)
        .args(["--metrics-dir", env.path("m").to_str().unwrap()])
        .args(["-n", "s", "--", "sh", "-c", "exit 6"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 6);
    let err = stderr(&out);
    assert_eq!(err.matches("--state-dir").count(), 1, "{err}");
    assert!(err.contains(bad.to_str().unwrap()), "{err}");
    assert_eq!(only_finish(&env, "s")["outcome"], "failed");
}

#[test]
fn state_counts_and_last_run() {
    let env = Env::new();
    for script in ["exit 0", "exit 2", "exit 2"] {
        sh(&env, "c", &[], script);
    }
    sh(&env, "c", &["-t", "0.2", "-k", "1"], "sleep 30");
    let holder = env.hold("c", &[]);
    for _ in 0..2 {
        assert_eq!(code(&sh(&env, "c", &[], "exit 0")), 75);
    }
    let s = state(&env, "c");
    assert_eq!(s["consecutive_skips"], 2);
    assert_eq!(s["consecutive_failures"], 3);
    assert_eq!(holder.release(), Some(0));
    let s = state(&env, "c");
    assert_eq!(s["runs"], 5);
    assert_eq!(s["failures"], 3);
    assert_eq!(s["timeouts"], 1);
    assert_eq!(s["skips"], 2);
    assert_eq!(s["consecutive_failures"], 0);
    assert_eq!(s["consecutive_skips"], 0);
    assert_eq!(s["last_outcome"], "ok");
    assert_eq!(s["last_exit"], 0);
    let last_ok = s["last_success_unix"].as_f64().unwrap();
    let start = s["last_start_unix"].as_f64().unwrap();
    let end = s["last_end_unix"].as_f64().unwrap();
    assert!(start <= end && (last_ok - end).abs() < 1.0, "{s}");
    assert!(s["last_duration_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn concurrent_finishes_and_status_reads_never_tear_or_lose() {
    let env = Env::new();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (done, lock_dir, state_dir) =
            (done.clone(), env.lock_dir.clone(), env.state_dir.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                for entry in std::fs::read_dir(&state_dir).into_iter().flatten().flatten() {
                    let name = entry.file_name().into_string().unwrap();
                    if name.ends_with(".json") && !name.starts_with('.') {
                        let text = std::fs::read_to_string(entry.path()).unwrap();
                        serde_json::from_str::<Value>(&text)
                            .unwrap_or_else(|e| panic!("torn {name}: {e}: {text:?}"));
                        reads += 1;
                    }
                }
                let out = Command::new(BIN)
                    .args(["--status", "--json", "--lock-dir", lock_dir.to_str().unwrap()])
                    .args(["--state-dir", state_dir.to_str().unwrap()])
                    .output()
                    .unwrap();
                assert_eq!(code(&out), 0, "{}", stderr(&out));
                serde_json::from_slice::<Value>(&out.stdout).expect("status JSON");
            }
            reads
        })
    };
    let metrics = env.path("m");
    let workers: Vec<_> = (0..6)
        .map(|i| {
            let mut args: Vec<std::ffi::OsString> = env.cmd().get_args().map(Into::into).collect();
            args.extend(["--metrics-dir".into(), metrics.clone().into_os_string()]);
            args.extend(["-n".into(), format!("r{}", i % 3).into(), "--".into(), "true".into()]);
            std::thread::spawn(move || {
                for _ in 0..8 {
                    // the same name twice at once: some runs skip, none is lost
                    let out = Command::new(BIN).args(&args).stdin(Stdio::null()).output().unwrap();
                    assert!(matches!(code(&out), 0 | 75), "{}", stderr(&out));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(reader.join().unwrap() > 0);
    for i in 0..3 {
        let name = format!("r{i}");
        let s = state(&env, &name);
        let finishes = env.finishes(&name);
        let ran = finishes.iter().filter(|r| r["outcome"] == "ok").count();
        let skipped = finishes.iter().filter(|r| r["outcome"] == "skipped").count();
        assert_eq!(ran + skipped, 16);
        assert_eq!(
            (s["runs"].as_u64(), s["skips"].as_u64()),
            (Some(ran as u64), Some(skipped as u64))
        );
        let prom = parse_prom(&metrics.join(format!("runonce_{name}.prom")));
        assert_eq!(sample(&prom, "runonce_runs_total", &[("outcome", "ok")]), ran as f64);
        assert_eq!(sample(&prom, "runonce_running", &[]), 0.0);
    }
    let leftovers: Vec<_> = std::fs::read_dir(&env.state_dir)
        .unwrap()
        .chain(std::fs::read_dir(&metrics).unwrap())
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// The samples of a textfile as the Python prometheus_client parser reads
/// them: (metric name, labels, value).  It rejects what Prometheus would.
fn parse_prom(path: &Path) -> Vec<(String, BTreeMap<String, String>, f64)> {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
out = []
for fam in text_string_to_metric_families(text):
    assert fam.documentation, fam.name + " has no HELP"
    assert fam.type in ("gauge", "counter"), fam.name + " has type " + fam.type
    for s in fam.samples:
        out.append([s.name, s.labels, s.value, fam.type])
print(json.dumps(out))
"#;
    let out = Command::new("python3").args(["-c", SCRIPT]).arg(path).output().unwrap();
    assert!(out.status.success(), "prometheus parser: {}", stderr(&out));
    let rows: Vec<(String, BTreeMap<String, String>, f64, String)> =
        serde_json::from_slice(&out.stdout).unwrap();
    rows.into_iter().map(|(n, l, v, _)| (n, l, v)).collect()
}

fn sample(
    prom: &[(String, BTreeMap<String, String>, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    let hits: Vec<_> = prom
        .iter()
        .filter(|(n, l, _)| {
            n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(v))
        })
        .collect();
    assert_eq!(hits.len(), 1, "{name} {labels:?} in {prom:?}");
    hits[0].2
}

#[test]
fn metrics_textfile_parses_and_follows_the_runs() {
    let env = Env::new();
    let dir = env.path("metrics");
    let m = ["--metrics-dir", dir.to_str().unwrap()];
    let file = dir.join("runonce_mx.prom");
    assert_eq!(code(&sh(&env, "mx", &m, "exit 0")), 0);
    assert_eq!(code(&sh(&env, "mx", &m, "exit 5")), 5);

    let unix_now = || {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
    };
    // the runs before ended before this; the start is written in milliseconds
    let before = unix_now() - 0.001;
    let holder = env.hold("mx", &m);
    let text = || std::fs::read_to_string(&file).unwrap_or_default();
    let running = "runonce_running{job=\"mx\"} 1\n";
    assert!(wait_until(SLACK, || text().contains(running)), "written at start: {}", text());
    let prom = parse_prom(&file);
    let start = sample(&prom, "runonce_last_start_timestamp_seconds", &[]);
    assert!(
        before <= start && start <= unix_now(),
        "not the running one's start: {before} {start}"
    );
    for _ in 0..2 {
        assert_eq!(code(&sh(&env, "mx", &m, "exit 0")), 75);
    }
    let prom = parse_prom(&file);
    assert_eq!(sample(&prom, "runonce_consecutive_skips", &[]), 2.0);
    assert_eq!(sample(&prom, "runonce_running", &[]), 1.0, "a skip sees the holder");
    assert_eq!(sample(&prom, "runonce_runs_total", &[("outcome", "skipped")]), 2.0);
    assert_eq!(sample(&prom, "runonce_last_exit_code", &[]), 5.0);
    assert!(sample(&prom, "runonce_last_success_timestamp_seconds", &[]) > 0.0);
    assert_eq!(holder.release(), Some(0));

    let prom = parse_prom(&file);
    for (name, value) in [
        ("runonce_running", 0.0),
        ("runonce_last_exit_code", 0.0),
        ("runonce_consecutive_skips", 0.0),
        ("runonce_consecutive_failures", 0.0),
    ] {
        assert_eq!(sample(&prom, name, &[]), value, "{name}");
    }
    assert!(sample(&prom, "runonce_last_duration_seconds", &[]) > 0.0);
    assert_eq!(sample(&prom, "runonce_runs_total", &[("outcome", "ok")]), 2.0);
    assert_eq!(sample(&prom, "runonce_runs_total", &[("outcome", "failed")]), 1.0);
    assert!(prom.iter().all(|(_, l, _)| l.get("job").map(String::as_str) == Some("mx")));
    let names: Vec<&str> = prom.iter().map(|(n, _, _)| n.as_str()).collect();
    for want in [
        "runonce_last_start_timestamp_seconds",
        "runonce_last_duration_seconds",
        "runonce_last_exit_code",
        "runonce_last_success_timestamp_seconds",
        "runonce_runs_total",
        "runonce_running",
        "runonce_consecutive_skips",
    ] {
        assert!(names.contains(&want), "{want}");
    }
}

/// A listener on a private syslog socket.
struct SyslogSink {
    sock: UnixDatagram,
    path: PathBuf,
}

impl SyslogSink {
    fn new(env: &Env) -> SyslogSink {
        let path = env.path("dev-log");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(SLACK)).unwrap();
        SyslogSink { sock, path }
    }

    fn next(&self) -> String {
        let mut buf = [0u8; 65536];
        let n = self.sock.recv(&mut buf).expect("a syslog message");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// PRI of a message: (facility, severity).
fn pri(msg: &str) -> (u32, u32) {
    let n: u32 = msg[1..msg.find('>').unwrap()].parse().unwrap();
    (n / 8, n % 8)
}

#[test]
fn syslog_facility_severity_ident_and_words() {
    let env = Env::new();
    let sink = SyslogSink::new(&env);
    let socket = ["--syslog-socket", sink.path.to_str().unwrap()];
    let run = |name: &str, extra: &[&str], script: &str| {
        Command::new(BIN)
            .args(["--lock-dir", env.lock_dir.to_str().unwrap()])
            .args(["--state-dir", env.state_dir.to_str().unwrap()])
            .args(socket)
            .args(["-n", name])
            .args(extra)
            .args(["--", "sh", "-c", script])
            .output()
            .unwrap()
    };
    const CRON: u32 = 9;
    for (name, extra, script, severity, outcome) in [
        ("s-ok", &[][..], "exit 0", 6, "ok"),
        ("s-failed", &[], "exit 2", 4, "failed"),
        ("s-timeout", &["-t", "0.2"][..], "sleep 30", 3, "timeout"),
        ("s-signaled", &[], "kill -USR1 $$", 3, "signaled"),
    ] {
        let out = run(name, extra, script);
        assert_eq!(stderr(&out), "", "syslog reachable: nothing on stderr");
        let start = sink.next();
        assert_eq!(pri(&start), (CRON, 6), "{start}");
        assert!(start.contains(&format!("]: {name}: start ")), "{start}");
        let finish = sink.next();
        assert_eq!(pri(&finish), (CRON, severity), "{finish}");
        let body = finish.split("]: ").nth(1).unwrap_or_else(|| panic!("{finish}"));
        assert!(body.starts_with(&format!("{name}: finish outcome={outcome} exit=")), "{finish}");
        assert!(finish.contains(" runonce["), "ident runonce: {finish}");
    }
    let out = Command::new(BIN)
        .args(["--lock-dir", env.lock_dir.to_str().unwrap()])
        .args(["--state-dir", env.state_dir.to_str().unwrap()])
        .args(socket)
        .args(["--syslog-facility", "local3", "-n", "s-missing", "--", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 127);
    let finish = sink.next();
    assert_eq!(pri(&finish), (19, 3), "local3.err: {finish}");
    assert!(finish.contains("s-missing: finish outcome=error exit=127"), "{finish}");
}

#[test]
fn unreachable_syslog_only_failures_speak_once_each() {
    let env = Env::new();
    let base = |c: &mut Command| {
        c.args(["--lock-dir", env.lock_dir.to_str().unwrap()])
            .args(["--state-dir", env.state_dir.to_str().unwrap()])
            .args(["--syslog-socket", env.path("nothing-here").to_str().unwrap()]);
    };
    let run = |args: &[&str]| {
        let mut c = Command::new(BIN);
        base(&mut c);
        c.args(args).stdin(Stdio::null()).output().unwrap()
    };
    let out = run(&["-n", "u", "--", "true"]);
    assert_eq!((code(&out), stderr(&out)), (0, String::new()));

    let ready = env.path("ready");
    let go = env.path("go");
    let mut c = Command::new(BIN);
    base(&mut c);
    let holder = c
        .args(["-n", "u", "--", "sh", "-c"])
        .arg(format!(
            "touch {}; while [ ! -e {} ]; do sleep 0.02; done",
            ready.display(),
            go.display()
        ))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_file(&ready);
    let out = run(&["-n", "u", "--", "true"]);
    assert_eq!((code(&out), stderr(&out)), (75, String::new()), "a skip never causes mail");
    std::fs::write(&go, "").unwrap();
    let held = holder.wait_with_output().unwrap();
    assert_eq!(code(&held), 0);
    assert_eq!(stderr(&held), "");
    assert_eq!(state(&env, "u")["skips"], 1, "kept in the state dir all the same");

    let out =
        run(&["-n", "u", "--retries", "2", "--retry-delay", "0.05", "--", "sh", "-c", "exit 3"]);
    assert_eq!(code(&out), 3);
    let err = stderr(&out);
    assert_eq!(err.matches("syslog unreachable").count(), 1, "one warning: {err}");
    assert_eq!(err.matches("u: attempt outcome=failed").count(), 2, "{err}");
    assert_eq!(err.matches("u: finish outcome=failed attempt=3/3 exit=3").count(), 1, "{err}");

    // a run that succeeds on a retry went well: its failed attempts stay quiet
    let flaky = format!(
        "if [ ! -e {m} ]; then touch {m}; exit 3; fi",
        m = env.path("failed-once").display()
    );
    let out =
        run(&["-n", "u", "--retries", "1", "--retry-delay", "0.05", "--", "sh", "-c", &flaky]);
    assert_eq!((code(&out), stderr(&out)), (0, String::new()));
}

/// A syslog daemon that stops reading (hung, or its queue full) never
/// holds the run, and so the job's lock, for more than a bounded wait a
/// record: the socket then counts as unreachable, and a failed run speaks
/// on stderr.  Both transports: a datagram socket whose queue the test
/// fills, and a stream socket nobody accepts, sent a record larger than
/// its buffer (a long argv).
#[test]
fn a_syslog_socket_nobody_reads_never_holds_the_run() {
    let env = Env::new();
    let run = |socket: &Path, name: &str, args: &[&str]| {
        let marker = env.path(name);
        let mut cmd = Command::new(BIN);
        cmd.args(["--lock-dir", env.lock_dir.to_str().unwrap()])
            .args(["--state-dir", env.state_dir.to_str().unwrap()])
            .args(["--syslog-socket", socket.to_str().unwrap(), "-n", name, "--", "sh", "-c"])
            .arg(format!("touch {}; exit 3", marker.display()))
            .args(args)
            .stdin(Stdio::null());
        let out = output_within(&mut cmd, 3 * SLACK);
        assert_eq!(code(&out), 3, "{}", stderr(&out));
        assert!(marker.exists(), "the job ran");
        let err = stderr(&out);
        assert_eq!(err.matches("syslog unreachable").count(), 1, "{err}");
        assert!(err.contains(&format!("{name}: finish outcome=failed exit=3")), "{err}");
    };

    let dgram = env.path("dgram-log");
    let _unread = UnixDatagram::bind(&dgram).unwrap();
    let filler = UnixDatagram::unbound().unwrap();
    filler.connect(&dgram).unwrap();
    filler.set_nonblocking(true).unwrap();
    let full = loop {
        if let Err(e) = filler.send(b"<14>filler: queued") {
            break e;
        }
    };
    assert_eq!(full.kind(), std::io::ErrorKind::WouldBlock, "{full}");
    run(&dgram, "dgram", &[]);

    let stream = env.path("stream-log");
    let _unaccepted = std::os::unix::net::UnixListener::bind(&stream).unwrap();
    // twice the socket's send buffer, in arguments of 100 kB (the most
    // execve takes in one is 128 KiB)
    let wmem: usize = std::fs::read_to_string("/proc/sys/net/core/wmem_default")
        .map_or(212_992, |t| t.trim().parse().unwrap());
    let long = "x".repeat(100_000);
    let mut args = vec!["0"];
    args.resize(2 + 2 * wmem / long.len(), &long);
    run(&stream, "stream", &args);
}

/// rsyslogd on a private socket, writing to a private file; killed on drop.
struct Rsyslogd {
    child: Child,
    socket: PathBuf,
    out: PathBuf,
}

impl Rsyslogd {
    fn start(env: &Env) -> Rsyslogd {
        let dir = env.path("rsyslog");
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("log.sock");
        let out = dir.join("messages");
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{dir}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{socket}")
template(name="t" type="string" string="%syslogfacility-text%.%syslogseverity-text% %programname%[%procid%]: %msg%\n")
*.* action(type="omfile" file="{out}" template="t")
"#,
                dir = dir.display(),
                socket = socket.display(),
                out = out.display()
            ),
        )
        .unwrap();
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rsyslogd (installed by .ci/deps)");
        wait_file(&socket);
        Rsyslogd { child, socket, out }
    }

    /// Waits for a line containing `what` in the output file.
    fn line_with(&self, what: &str) -> String {
        let mut found = None;
        let ok = wait_until(SLACK, || {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            found = text.lines().find(|l| l.contains(what)).map(String::from);
            found.is_some()
        });
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        assert!(ok, "no line with {what:?} from rsyslogd: {text}");
        found.unwrap()
    }
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        kill(self.child.id() as i32, libc::SIGTERM);
        let _ = self.child.wait();
    }
}

#[test]
fn syslog_end_to_end_through_rsyslogd() {
    let env = Env::new();
    let daemon = Rsyslogd::start(&env);
    let run = |name: &str, script: &str| {
        Command::new(BIN)
            .args(["--lock-dir", env.lock_dir.to_str().unwrap()])
            .args(["--state-dir", env.state_dir.to_str().unwrap()])
            .args(["--syslog-socket", daemon.socket.to_str().unwrap()])
            .args(["-n", name, "--", "sh", "-c", script])
            .output()
            .unwrap()
    };
    let out = run("collector", "exit 0");
    assert_eq!((code(&out), stderr(&out)), (0, String::new()));
    // "facility.severity programname[pid]: message", the message's own
    // leading space as rsyslog keeps it aside
    let split = |line: String| {
        let (head, msg) = line.split_once("]:").unwrap_or_else(|| panic!("{line}"));
        (head.to_string(), msg.trim_start().to_string())
    };
    let (head, msg) = split(daemon.line_with("collector: finish"));
    assert!(head.starts_with("cron.info runonce["), "{head}");
    assert!(msg.starts_with("collector: finish outcome=ok exit=0 duration="), "{msg}");

    let out = run("collector2", "exit 9");
    assert_eq!((code(&out), stderr(&out)), (9, String::new()));
    let (head, msg) = split(daemon.line_with("collector2: finish"));
    assert!(head.starts_with("cron.warning runonce["), "{head}");
    assert!(msg.starts_with("collector2: finish outcome=failed exit=9 "), "{msg}");
    let (head, msg) = split(daemon.line_with("collector2: start"));
    assert!(head.starts_with("cron.info runonce["), "{head}");
    assert!(msg.contains("argv=sh -c 'exit 9'"), "{msg}");
}

#[test]
fn status_table_json_and_unknown_name() {
    let env = Env::new();
    let status = |args: &[&str]| {
        Command::new(BIN)
            .arg("--status")
            .args(args)
            .env("RUNONCE_LOCK_DIR", &env.lock_dir)
            .env("RUNONCE_STATE_DIR", &env.state_dir)
            .output()
            .unwrap()
    };
    sh(&env, "st", &[], "exit 4");
    sh(&env, "st", &[], "exit 4");
    let holder = env.hold("st", &[]);
    let holder_pid = holder.child.id().to_string();
    let out = status(&["st"]);
    assert_eq!(code(&out), 0);
    let table = stdout(&out);
    let row = table.lines().nth(1).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..2], ["st", "running"], "{table}");
    let json: Value = serde_json::from_slice(&status(&["st", "--json"]).stdout).unwrap();
    assert_eq!(json["state"], "running");
    let run = &json["running"][0];
    let job_pid = run["job_pid"].as_i64().unwrap();
    assert_eq!(run["runonce_pid"].to_string(), holder_pid);
    assert!(cells[2] == job_pid.to_string() || cells[2] == holder_pid, "{table}");
    assert!(run["since"].as_str().is_some() && run["age_s"].as_f64().is_some(), "{json}");
    assert_eq!(json["last"]["consecutive_failures"], 2);
    assert_eq!(holder.release(), Some(0));

    let table = stdout(&status(&[]));
    let row = table.lines().find(|l| l.starts_with("st ")).unwrap_or_else(|| panic!("{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..6], ["st", "idle", "-", "-", "ok", "0"], "{table}");
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header[..5], ["NAME", "STATE", "PID", "SINCE", "LAST"]);
    assert!(header.contains(&"FAILS"));

    let out = status(&["nosuchjob"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("no job named 'nosuchjob'"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
}

/// `--status` over many jobs reads /proc/locks once (each read walks every
/// lock on the machine), and still tells each held lock from a free one.
#[test]
fn status_reads_proc_locks_once() {
    let env = Env::new();
    for name in ["idle1", "idle2", "idle3"] {
        sh(&env, name, &[], "true");
    }
    let a = env.hold("busy1", &[]);
    let b = env.hold("busy2", &[]);
    let trace = env.path("trace");
    let out = Command::new("strace")
        .args(["-f", "-e", "trace=open,openat", "-o"])
        .arg(&trace)
        .args([BIN, "--status", "--json"])
        .env("RUNONCE_LOCK_DIR", &env.lock_dir)
        .env("RUNONCE_STATE_DIR", &env.state_dir)
        .output()
        .expect("strace (.ci/deps)");
    // released before anything is asserted: a failure leaves no job behind
    assert_eq!((a.release(), b.release()), (Some(0), Some(0)));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let jobs: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let state = |n: &str| jobs.iter().find(|j| j["name"] == n).map(|j| j["state"].clone());
    let want = [
        ("idle1", "idle"),
        ("idle2", "idle"),
        ("idle3", "idle"),
        ("busy1", "running"),
        ("busy2", "running"),
    ];
    for (name, want) in want {
        assert_eq!(state(name), Some(Value::from(want)), "{name}: {jobs:?}");
    }
    let opens = std::fs::read_to_string(&trace).unwrap();
    assert_eq!(opens.matches("\"/proc/locks\"").count(), 1, "{opens}");
}

#[test]
fn quiet_keeps_the_order_and_spills_big_output() {
    let env = Env::new();
    let log = env.path("both");
    let both = std::fs::File::create(&log).unwrap();
    // each write well after the last, so "the order read" is the order written
    let script =
        "for i in 1 2 3; do echo out$i; sleep 0.1; echo err$i >&2; sleep 0.1; done; exit 1";
    let status = env
        .cmd()
        .args(["-q", "-n", "order", "--", "sh", "-c", script])
        .stdout(both.try_clone().unwrap())
        .stderr(both)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text, "out1\nerr1\nout2\nerr2\nout3\nerr3\n");

    // ~6.9 MB on stdout: past the spill threshold
    let out = sh(&env, "big", &["-q"], "seq 1 1000000; echo end >&2; exit 2");
    assert_eq!(code(&out), 2);
    let want: String = (1..=1_000_000).map(|i| format!("{i}\n")).collect();
    assert!(out.stdout == want.as_bytes(), "all {} bytes in order", want.len());
    assert_eq!(stderr(&out), "end\n");

    let out = sh(&env, "fine", &["-q"], "seq 1 1000000; echo noise >&2");
    assert_eq!((code(&out), out.stdout.len(), stderr(&out)), (0, 0, String::new()));
}

#[test]
fn quiet_does_not_hang_on_an_escaped_grandchild_holding_the_pipes() {
    let env = Env::new();
    let pid_file = env.path("orphan.pid");
    let t = Instant::now();
    let out = sh(
        &env,
        "escape",
        &["-q", "--keep-orphans"],
        &format!("setsid sleep 60 & echo $! > {}; echo shown; exit 1", pid_file.display()),
    );
    let took = t.elapsed();
    let orphan = read_pid(&pid_file);
    let orphan_alive = alive(orphan);
    kill(orphan, libc::SIGKILL);
    assert_eq!(code(&out), 1);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(orphan_alive, "--keep-orphans kept it");
    assert_eq!(stdout(&out), "shown\n");
}

/// runonce's own warnings (here: an unusable state dir) go into the
/// record; with --quiet they reach stderr only when the run fails, before
/// the job's held output, as chronic users expect (issue 12).
#[test]
fn quiet_holds_runonces_own_warnings_until_the_run_fails() {
    let env = Env::new();
    std::fs::write(env.path("file"), "").unwrap();
    let bad = env.path("file").join("state");
    let warning = format!("runonce: --state-dir {}: cannot update state: ", bad.display());
    let run = |name: &str, extra: &[&str], script: &str| {
        let mut c = env.cmd();
        c.arg("--state-dir").arg(&bad).args(["-n", name]).args(extra);
        c.args(["--", "sh", "-c", script]).output().unwrap()
    };
    // the finish record of `name` with `outcome`
    let warned = |name: &str, outcome: &str| {
        let rec = env.finishes(name).into_iter().find(|r| r["outcome"] == outcome).unwrap();
        let w = rec["warnings"].as_array().cloned().unwrap_or_default();
        assert_eq!(w.len(), 1, "{rec}");
        assert!(format!("runonce: {}", w[0].as_str().unwrap()).starts_with(&warning), "{rec}");
    };

    let out = run("fine", &["-q"], "echo out; echo err >&2");
    assert_eq!((code(&out), stdout(&out), stderr(&out)), (0, String::new(), String::new()));
    warned("fine", "ok");

    let out = run("broke", &["-q"], "echo out; echo err >&2; exit 3");
    assert_eq!((code(&out), stdout(&out).as_str()), (3, "out\n"));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with(&warning), "{err}");
    assert_eq!(lines[1], "err", "the warning comes first: {err}");
    warned("broke", "failed");

    // a skipped run is no failure: silent too
    let holder = env.hold("busy", &[]);
    let out = run("busy", &["-q"], "true");
    assert_eq!(holder.release(), Some(0));
    assert_eq!((code(&out), stderr(&out)), (75, String::new()));
    warned("busy", "skipped");

    // without --quiet: on stderr at once, and in the record
    let out = run("loud", &[], "true");
    assert_eq!(code(&out), 0);
    assert!(stderr(&out).starts_with(&warning), "{}", stderr(&out));
    warned("loud", "ok");
}
