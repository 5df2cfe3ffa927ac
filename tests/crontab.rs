//! `--check-crontab` and `--fix-crontab` (issue 16): on the crontabs Debian
//! itself ships (`/etc/crontab` and the `/etc/cron.d` files of cron,
//! sysstat, e2fsprogs, php-common, anacron and certbot, installed by
//! `.ci/deps`), on crafted ones, and as properties: the parser never
//! panics, a fixed file fixes to itself, a fixed line keeps its schedule
//! and user field, and its command, run as cron and sh run it, does what
//! the original did.  Debian's own `crontab -n` is the judge of what cron
//! accepts.  The real cron daemon runs a fixed line in tests/cron_daemon.rs.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use proptest::prelude::*;
use runonce::crontab::parse::{self, AnyUser, Kind};
use serde_json::Value;

use crate::util::{BIN, code, stderr, stdout};

fn runonce(args: &[&str], input: Option<&[u8]>) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() });
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("runonce");
    if let Some(input) = input {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn check_json(files: &[&Path]) -> (i32, Value) {
    let mut args = vec!["--check-crontab"];
    args.extend(files.iter().map(|p| p.to_str().unwrap()));
    args.push("--json");
    let o = runonce(&args, None);
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&o), stderr(&o)));
    assert_eq!(v["exit"], code(&o), "the JSON says the exit status");
    (code(&o), v)
}

fn fix(path: &Path) -> Output {
    runonce(&["--fix-crontab", path.to_str().unwrap()], None)
}

/// Debian's `crontab -n`, the syntax check of cron's own parser.
fn cron_accepts(user_format: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("crontab");
    std::fs::write(&f, user_format).unwrap();
    let o = Command::new("crontab").arg("-n").arg(&f).output().expect("crontab -n (package cron)");
    let out = format!("{}{}", stdout(&o), stderr(&o));
    if o.status.success() && out.contains("successfully checked") { Ok(()) } else { Err(out) }
}

/// The job lines of a checked file, by line number.
fn jobs(file: &Value) -> BTreeMap<u64, Value> {
    file["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["line"].as_u64().unwrap(), j.clone()))
        .collect()
}

/// The jobs of a system crontab as a user crontab (without the user
/// field), for `crontab -n`.
fn as_user_crontab(file: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    for j in jobs(file).values() {
        let line =
            format!("{} {}\n", j["schedule"].as_str().unwrap(), j["command"].as_str().unwrap());
        out.extend_from_slice(line.as_bytes());
    }
    out
}

/// The crontabs of Debian packages that `.ci/deps` installs.
const DEBIAN: &[&str] = &[
    "/etc/crontab",
    "/etc/cron.d/anacron",
    "/etc/cron.d/certbot",
    "/etc/cron.d/e2scrub_all",
    "/etc/cron.d/php",
    "/etc/cron.d/sysstat",
];

#[test]
fn debian_crontabs_check_fix_and_check_again() {
    let tree = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tree.path().join("etc/cron.d")).unwrap();
    for original in DEBIAN {
        let original = Path::new(original);
        assert!(original.is_file(), "{} is missing: run .ci/deps", original.display());
        // the file itself, read only
        let (status, report) = check_json(&[original]);
        let file = &report["files"][0];
        let counts = &file["counts"];
        eprintln!("{}: {}", original.display(), counts);
        assert_eq!(status, 1, "{report:#}");
        assert_eq!(file["kind"], "system");
        assert_eq!((counts["protected"].as_u64(), counts["partial"].as_u64()), (Some(0), Some(0)));
        assert_eq!(counts["rejected"], 0);
        let before = jobs(file);
        assert!(!before.is_empty() && before.values().all(|j| j["verdict"] == "unprotected"));

        // a copy in an /etc tree, fixed in place
        let rel = original.strip_prefix("/").unwrap();
        let copy = tree.path().join(rel);
        std::fs::copy(original, &copy).unwrap();
        let meta = std::fs::metadata(original).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .unwrap();
        let o = fix(&copy);
        assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
        let rewritten = match before.len() {
            1 => "1 line rewritten".to_string(),
            n => format!("{n} lines rewritten"),
        };
        assert!(stdout(&o).contains(&rewritten), "{}", stdout(&o));
        let backup = PathBuf::from(format!("{}.runonce-bak", copy.display()));
        assert_eq!(std::fs::read(&backup).unwrap(), std::fs::read(original).unwrap());
        for f in [&copy, &backup] {
            let m = std::fs::metadata(f).unwrap();
            assert_eq!(
                (m.uid(), m.gid(), m.mode() & 0o7777),
                (0, 0, meta.mode() & 0o7777),
                "{}",
                f.display()
            );
            assert_eq!(m.mode() & 0o022, 0, "cron ignores a group- or other-writable cron.d file");
            assert_eq!(m.nlink(), 1, "cron ignores a cron.d file with hard links");
        }

        // checked again: every job protected, schedule and user unchanged
        let (status, report) = check_json(&[&copy]);
        let fixed = &report["files"][0];
        assert_eq!(status, 0, "{report:#}");
        let after = jobs(fixed);
        assert_eq!(after.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>());
        for (n, j) in &after {
            let b = &before[n];
            assert_eq!(j["verdict"], "protected", "{j:#}");
            assert_eq!((&j["schedule"], &j["user"]), (&b["schedule"], &b["user"]));
            assert_eq!(j["text"], b["fix"], "the check showed the line the fix wrote");
            assert!(
                j["command"].as_str().unwrap().trim_start().starts_with("runonce --name "),
                "{j:#}"
            );
        }
        let (text, orig) = (std::fs::read(&copy).unwrap(), std::fs::read(original).unwrap());
        let (new_lines, old_lines): (Vec<_>, Vec<_>) =
            (text.split(|&b| b == b'\n').collect(), orig.split(|&b| b == b'\n').collect());
        assert_eq!(new_lines.len(), old_lines.len());
        for (i, (n, o)) in new_lines.iter().zip(&old_lines).enumerate() {
            if !after.contains_key(&(i as u64 + 1)) {
                assert_eq!(n, o, "line {} is not a job and stays", i + 1);
            }
        }
        // cron's own parser takes the fixed lines
        cron_accepts(&as_user_crontab(fixed)).unwrap();

        // fixed again: nothing changes, not even the mtime or the backup
        let mtime = std::fs::metadata(&copy).unwrap().mtime_nsec();
        let o = fix(&copy);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert!(stdout(&o).contains("nothing to rewrite"), "{}", stdout(&o));
        assert_eq!(std::fs::read(&copy).unwrap(), text);
        assert_eq!(std::fs::metadata(&copy).unwrap().mtime_nsec(), mtime);
        assert_eq!(std::fs::read(&backup).unwrap(), orig);
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_exit_status_and_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = write(d, "good", "# c\nMAILTO=\"\"\n*/5 * * * * runonce -t 4m -- /opt/x\n");
    let flock = write(d, "flock", "*/10 * * * * flock -n /var/lock/x.lock /opt/x --all\n");
    let bad = write(d, "bad", "* * * * * a\n61 * * * * b\n* * * * * c\n");
    let no_nl = write(d, "nonl", "* * * * * a");

    let (status, v) = check_json(&[&good]);
    assert_eq!(status, 0, "{v:#}");
    assert_eq!(v["files"][0]["jobs"][0]["verdict"], "protected");

    let (status, v) = check_json(&[&good, &flock]);
    assert_eq!(status, 1);
    let j = &v["files"][1]["jobs"][0];
    assert_eq!(j["verdict"], "partial");
    assert_eq!(j["by"], serde_json::json!(["flock -n /var/lock/x.lock"]));
    assert_eq!(j["missing"], serde_json::json!(["timeout", "record"]));
    assert_eq!(j["interval_minutes"], 10);
    assert_eq!(
        j["fix"],
        "*/10 * * * * runonce --name x --timeout 9m --lock /var/lock/x.lock -- /opt/x --all"
    );
    assert!(
        j["risks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("every later run"))
    );

    let (status, v) = check_json(&[&good, &bad]);
    assert_eq!(status, 125);
    let rejected: Vec<&Value> = v["files"][1]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["verdict"] == "rejected")
        .collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!((&rejected[0]["line"], &rejected[0]["error"]), (&2.into(), &"bad minute".into()));
    assert_eq!(v["files"][1]["crontab"], false);

    let (status, v) = check_json(&[&no_nl]);
    assert_eq!(status, 125);
    assert!(v["files"][0]["problems"][0].as_str().unwrap().contains("no newline"));

    let (status, v) = check_json(&[&d.join("absent")]);
    assert_eq!(status, 125);
    assert!(v["files"][0]["error"].as_str().unwrap().contains("No such file"));

    // text: one line per job with its verdict, risks and the safe rewrite
    let o = runonce(&["--check-crontab", bad.to_str().unwrap()], None);
    assert_eq!(code(&o), 125);
    assert!(stdout(&o).contains("line 2: rejected by cron (bad minute)"), "{}", stdout(&o));
    let o = runonce(&["--check-crontab", flock.to_str().unwrap()], None);
    let text = stdout(&o);
    assert!(text.contains("line 1: partly protected (by flock -n /var/lock/x.lock)"), "{text}");
    assert!(text.contains("missing: timeout, record"), "{text}");
    assert!(text.contains("fix:  */10 * * * * runonce --name x --timeout 9m"), "{text}");

    // a timeout(1) longer than the schedule's interval is kept, and said
    let long = write(d, "long", "*/5 * * * * timeout 1h /opt/x\n");
    let (_, v) = check_json(&[&long]);
    let j = &v["files"][0]["jobs"][0];
    assert_eq!(j["timeout"], "1h");
    assert!(
        j["risks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("longer than the 5 minutes")),
        "{j:#}"
    );

    // stdin is a user crontab
    let o = runonce(&["--check-crontab", "-"], Some(b"@daily root /bin/x\n"));
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains("runonce --name root --timeout 23h59m -- root /bin/x"),
        "{}",
        stdout(&o)
    );

    // --json only with a report
    let o = runonce(&["--fix-crontab", "-", "--json"], Some(b""));
    assert_eq!(code(&o), 125);
}

#[test]
fn check_without_files_reads_the_callers_and_the_systems() {
    let (_, v) = check_json(&[]);
    let labels: Vec<&str> =
        v["files"].as_array().unwrap().iter().map(|f| f["file"].as_str().unwrap()).collect();
    assert_eq!(labels[0], "crontab -l");
    assert!(labels.contains(&"/etc/crontab"), "{labels:?}");
    assert!(labels.contains(&"/etc/cron.d/sysstat"), "{labels:?}");
    let names = labels.iter().filter_map(|l| l.strip_prefix("/etc/cron.d/"));
    assert!(names.clone().all(|n| !n.contains('.')), "cron skips names with a dot: {labels:?}");
}

#[test]
fn fix_stdin_to_stdout_and_refusal_keeps_crontab_from_installing() {
    let input = "SHELL=/bin/sh\n# backup at night\n0 3 * * * /usr/local/bin/backup --full >> /var/log/backup.log 2>&1\n*/2 * * * * timeout -k 5 60 /opt/poll%now\n";
    let o = runonce(&["--fix-crontab", "-"], Some(input.as_bytes()));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "SHELL=/bin/sh\n# backup at night\n0 3 * * * runonce --name backup --timeout 23h59m -- sh -c '/usr/local/bin/backup --full >> /var/log/backup.log 2>&1'\n*/2 * * * * runonce --name poll --timeout 60 --kill-after 5 -- /opt/poll%now\n"
    );
    cron_accepts(&o.stdout).unwrap();
    let again = runonce(&["--fix-crontab", "-"], Some(&o.stdout));
    assert_eq!(again.stdout, o.stdout, "a fixed crontab fixes to itself");

    // not a crontab: nothing cron would install comes out
    for bad in [&b"* * * * * a\n99 * * * * b\n"[..], b"* * * * * a"] {
        let o = runonce(&["--fix-crontab", "-"], Some(bad));
        assert_eq!(code(&o), 125);
        assert!(
            stderr(&o).contains("not a crontab") || stderr(&o).contains("cron rejects"),
            "{}",
            stderr(&o)
        );
        assert!(cron_accepts(&o.stdout).is_err(), "crontab - must refuse {:?}", stdout(&o));
    }
}

#[test]
fn fix_in_place_keeps_owner_mode_and_links() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = write(d, "tab", "* * * * * /bin/true\n");
    std::os::unix::fs::chown(&f, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
    let o = fix(&f);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for p in [f.clone(), d.join("tab.runonce-bak")] {
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (65534, 65534, 0o640), "{}", p.display());
    }
    assert_eq!(
        std::fs::read_to_string(d.join("tab.runonce-bak")).unwrap(),
        "* * * * * /bin/true\n"
    );
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "* * * * * runonce --name true --timeout 45s -- /bin/true\n"
    );
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // through a symlink: the file it names is rewritten, the link stays
    std::fs::create_dir(d.join("cron.d")).unwrap();
    let target = write(d, "real", "@hourly root /bin/true\n");
    let link = d.join("cron.d/job");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let o = fix(&link);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "@hourly root runonce --name job.true --timeout 59m -- /bin/true\n"
    );
    assert!(d.join("real.runonce-bak").exists());

    // not a crontab: untouched, no backup
    let bad = write(d, "bad", "* * * * * a\n* * * * 9 b\n");
    let o = fix(&bad);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("bad:2: cron rejects this line (bad day-of-week)"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("bad.runonce-bak").exists());
    assert_eq!(std::fs::read_to_string(&bad).unwrap(), "* * * * * a\n* * * * 9 b\n");
}

#[test]
fn fix_leaves_what_it_cannot_run_safely_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "tab", "* * * * * /opt/daemon &\n0 * * * * /opt/report\n");
    let o = fix(&f);
    assert_eq!(code(&o), 1, "one line is still unprotected");
    assert!(
        stderr(&o).contains("tab:1: left as it was: it leaves work running in the background"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "* * * * * /opt/daemon &\n0 * * * * runonce --name report --timeout 59m -- /opt/report\n"
    );
    let (status, v) = check_json(&[&f]);
    assert_eq!(status, 1);
    assert!(v["files"][0]["jobs"][0]["unfixable"].as_str().unwrap().contains("background"));
}

/// The user field is looked up as cron looks it up, through every name
/// service of the host (Debian's default `passwd: files systemd`): a user
/// none knows makes cron reject the file.  The release binary links glibc
/// statically, and a static glibc that loads the `systemd` module crashes
/// (src/nss.rs): the answer must come, not a SIGSEGV.
#[test]
fn system_crontab_with_an_unknown_user() {
    let dir = tempfile::tempdir().unwrap();
    let cron_d = dir.path().join("cron.d");
    std::fs::create_dir(&cron_d).unwrap();
    let f = cron_d.join("job");
    std::fs::write(&f, "* * * * * no-such-user-runonce true\n* * * * * root true\n").unwrap();
    let (status, v) = check_json(&[&f]);
    assert_eq!(status, 125, "{v}");
    let file = &v["files"][0];
    assert_eq!(file["kind"], "system", "{v}");
    assert_eq!(jobs(file)[&1]["error"], "bad username", "{v}");
    std::fs::write(&f, "* * * * * root true\n").unwrap();
    let (_, v) = check_json(&[&f]);
    assert_eq!(jobs(&v["files"][0])[&1]["verdict"], "unprotected", "{v}");
}

// --- properties ---------------------------------------------------------

fn config(short: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(short);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// A time field: the forms cron reads (and a few it refuses).
fn field(low: u32, high: u32, names: &'static [&'static str]) -> impl Strategy<Value = String> {
    let n = low..=high;
    prop_oneof![
        Just("*".to_string()),
        (1..=high.max(2)).prop_map(|s| format!("*/{s}")),
        n.clone().prop_map(|a| a.to_string()),
        (n.clone(), n.clone()).prop_map(|(a, b)| format!("{a}-{b}")),
        (n.clone(), n.clone(), 1..10u32).prop_map(|(a, b, s)| format!("{a}-{b}/{s}")),
        prop::collection::vec(n, 2..4).prop_map(|v| v
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")),
        prop::sample::select(if names.is_empty() { &["*"][..] } else { names })
            .prop_map(str::to_string),
    ]
}

fn schedule() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => prop::sample::select(&["@reboot", "@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"][..])
            .prop_map(str::to_string),
        6 => (field(0, 59, &[]), field(0, 23, &[]), field(1, 31, &[]), field(1, 12, &["jan", "Feb", "dec"]), field(0, 7, &["mon", "SUN", "fri"]))
            .prop_map(|(a, b, c, d, e)| format!("{a} {b}\t{c} {d} {e}")),
    ]
}

/// Raw crontab command text (cron escapes included) made of the pieces
/// that trip quoting: quotes, `%`, `\%`, `$`, backslashes, globs.
const PIECES: &[&str] = &[
    "a",
    "'a b'",
    "\"c d\"",
    "e\\ f",
    "\\\\",
    "'\\\\'",
    "\"\\\\\\\\\"",
    "\\%",
    "'it'\\''s'",
    "\"$HOME\"",
    "$HOME",
    "\\$HOME",
    "'$HOME'",
    "\"\\$x\"",
    "$(echo s)",
    "`echo t`",
    "x\\\\\\%y",
    "'*.none'",
    "~",
    "\"~\"",
    "a=b",
    "--",
    "-n",
    "5$",
    "'\\%'",
    "\"q\\\"q\"",
    "'\\n'",
    "\\'",
    "{a,b}",
    "\\#",
    "'#'",
    "\\;",
];

fn command() -> impl Strategy<Value = String> {
    let wrapper = prop::sample::select(
        &["", "", "flock -n LOCK ", "flock -w 5 LOCK ", "timeout 30 ", "timeout -k 2 -s INT 1m "][..],
    );
    let suffix = prop::sample::select(
        &[
            "",
            "",
            " | tr a-z A-Z",
            "; echo done",
            " 2>&1",
            "; cat",
            " && printf '<\\%s>' \"$LOGNAME\"",
        ][..],
    );
    let input = prop::sample::select(&["", "", "%in", "%line one%line\\%two%", "%a\\\\b%"][..]);
    // the builtin goes through `sh -c`, the program may run directly
    let program = prop::sample::select(&["printf", "/usr/bin/printf"][..]);
    (wrapper, program, prop::collection::vec(prop::sample::select(PIECES), 0..6), suffix, input)
        .prop_map(|(w, p, pieces, s, i)| format!("{w}{p} '<\\%s>' {}{s}{i}", pieces.join(" ")))
}

fn crontab_text(kind: Kind) -> impl Strategy<Value = String> {
    let line = prop_oneof![
        1 => Just("# a comment".to_string()),
        1 => Just(String::new()),
        1 => prop::sample::select(&["MAILTO=\"\"", "PATH=/usr/bin:/bin", "A = 'b c'", "SHELL=/bin/bash"][..]).prop_map(str::to_string),
        6 => (schedule(), command()).prop_map(move |(s, c)| match kind {
            Kind::System => format!("{s} root {c}"),
            Kind::User => format!("{s} {c}"),
        }),
    ];
    prop::collection::vec(line, 0..8)
        .prop_map(|lines| lines.iter().map(|l| format!("{l}\n")).collect())
}

fn fixed(text: &[u8], kind: Kind) -> Vec<u8> {
    let c = parse::parse(text, kind, &AnyUser);
    assert!(c.is_valid(), "{}", String::from_utf8_lossy(text));
    runonce::crontab::fix_crontab(&c, None).content
}

/// A job line as cron runs it.
#[derive(Debug, PartialEq, Eq)]
struct JobParts {
    number: usize,
    schedule: Vec<u8>,
    user: Option<Vec<u8>>,
    /// What `sh -c` runs.
    shell: Vec<u8>,
    input: Vec<u8>,
}

/// Each job line's schedule, user, and what `sh -c` and stdin get.
fn job_parts(text: &[u8], kind: Kind) -> Vec<JobParts> {
    let c = parse::parse(text, kind, &AnyUser);
    c.lines
        .iter()
        .filter_map(|l| match &l.item {
            parse::Item::Job(j) => {
                let raw = j.command(&l.text);
                let cmd = parse::split_command(raw);
                let input =
                    cmd.input_at.map(|at| parse::job_input(&raw[at + 1..])).unwrap_or_default();
                Some(JobParts {
                    number: l.number,
                    schedule: l.text[j.when.clone()].to_vec(),
                    user: j.user.clone(),
                    shell: cmd.shell,
                    input,
                })
            }
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn crontab_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400), system in any::<bool>()) {
        let kind = if system { Kind::System } else { Kind::User };
        let c = parse::parse(&bytes, kind, &AnyUser);
        prop_assert_eq!(c.render(|_| None), bytes.clone(), "a file renders back to itself");
        if c.is_valid() {
            let fixed = runonce::crontab::fix_crontab(&c, None).content;
            let again = parse::parse(&fixed, kind, &AnyUser);
            prop_assert!(again.is_valid());
        }
    }

    #[test]
    fn crontab_parser_never_panics_on_crontab_like_text(text in "[-*/,0-9a-zA-Z@ \t#=\"'%\\\\\n]{0,200}") {
        let c = parse::parse(text.as_bytes(), Kind::System, &AnyUser);
        prop_assert_eq!(c.render(|_| None), text.as_bytes().to_vec());
        if c.is_valid() {
            let _ = runonce::crontab::fix_crontab(&c, Some("file"));
        }
    }

    #[test]
    fn a_fixed_crontab_fixes_to_itself_and_keeps_schedule_and_user(
        text in prop_oneof![crontab_text(Kind::User).prop_map(|t| (t, Kind::User)), crontab_text(Kind::System).prop_map(|t| (t, Kind::System))]
    ) {
        let (text, kind) = text;
        let once = fixed(text.as_bytes(), kind);
        let twice = fixed(&once, kind);
        prop_assert_eq!(&twice, &once, "fix of fix");
        let (before, after) = (job_parts(text.as_bytes(), kind), job_parts(&once, kind));
        prop_assert_eq!(before.len(), after.len());
        for (b, a) in before.iter().zip(&after) {
            prop_assert_eq!((b.number, &b.schedule, &b.user), (a.number, &a.schedule, &a.user), "line, schedule and user");
            prop_assert_eq!(&b.input, &a.input, "standard input");
        }
        let lines = |t: &[u8]| t.split(|&b| b == b'\n').count();
        prop_assert_eq!(lines(text.as_bytes()), lines(&once));
        // cron's own parser takes the result (user crontabs: crontab -n)
        if kind == Kind::User && text.len() % 8 == 0 {
            prop_assert!(cron_accepts(&once).is_ok(), "{}", String::from_utf8_lossy(&once));
        }
    }
}

/// A `runonce` that does nothing but run what follows `--`: to compare
/// what the shell hands it with what the original line ran.
fn fake_runonce(dir: &Path) -> PathBuf {
    let bin = dir.join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    let f = bin.join("runonce");
    std::fs::write(&f, "#!/bin/sh\nwhile [ \"$1\" != -- ]; do shift; done\nshift\nexec \"$@\"\n")
        .unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// Runs a job line's command as cron does: `sh -c` with its stdin.
fn run_like_cron(shell: &[u8], input: &[u8], path: &str, dir: &Path) -> (Option<i32>, Vec<u8>) {
    use std::os::unix::ffi::OsStrExt;
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(std::ffi::OsStr::from_bytes(shell))
        .current_dir(dir)
        .env_clear()
        .env("PATH", path)
        .env("HOME", "/home/h")
        .env("LOGNAME", "someone")
        .env("RUNONCE_LOCK_DIR", dir.join("locks"))
        .env("RUNONCE_STATE_DIR", dir.join("state"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(input);
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    (o.status.code(), o.stdout)
}

fn same_run(original_line: &str, path: &str, dir: &Path) -> Result<(), String> {
    let lock = dir.join("lockfile");
    let original_line = original_line.replace("LOCK", lock.to_str().unwrap());
    let line = format!("{original_line}\n");
    let out = fixed(line.as_bytes(), Kind::User);
    let (before, after) = (job_parts(line.as_bytes(), Kind::User), job_parts(&out, Kind::User));
    let (b, a) = (&before[0], &after[0]);
    let was = run_like_cron(&b.shell, &b.input, "/usr/bin:/bin", dir);
    let now = run_like_cron(&a.shell, &a.input, path, dir);
    if was == now {
        Ok(())
    } else {
        Err(format!(
            "{original_line}\n{}\nwas {:?} {:?}\nnow {:?} {:?}",
            String::from_utf8_lossy(&out),
            was.0,
            String::from_utf8_lossy(&was.1),
            now.0,
            String::from_utf8_lossy(&now.1)
        ))
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn a_fixed_command_runs_like_the_original(cmd in command(), sched in schedule()) {
        let dir = tempfile::tempdir().unwrap();
        let fake = fake_runonce(dir.path());
        let path = format!("{}:/usr/bin:/bin", fake.display());
        if let Err(e) = same_run(&format!("{sched} {cmd}"), &path, dir.path()) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// Lines that trip quoting, run through the real runonce.
#[test]
fn tricky_lines_run_the_same_under_the_real_runonce() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!("{}:/usr/bin:/bin", bin_dir.display());
    for line in [
        r#"* * * * * printf '<\%s>' 'it'\''s' "a b" c\ d \\ '\\' "$HOME" \$HOME 100\%"#,
        r#"* * * * * printf '<\%s>' x\\\%y "q\"q" '%s' | tr a-z A-Z"#,
        r#"* * * * * cat%first line%second \% line%"#,
        r#"* * * * * flock -n LOCK timeout 30 printf '<\%s>' a\\b 'e\\f' 'g\h'"#,
        r#"* * * * * tr a-z A-Z%in\%put\\x\y%line2"#,
        r#"* * * * * echo "$(printf 'sub')" `echo tick` ~ '~' *.none > out.txt; cat out.txt"#,
        r#"* * * * * timeout -s INT 1m sh -c 'exit 3'"#,
        r#"@reboot printf '<\%s>' "reboot's"  "#,
    ] {
        same_run(line, &path, dir.path()).unwrap();
    }
}

/// The code block after `marker` in `text` (```…``` or roff .nf/.fi).
fn block_after(text: &str, marker: &str) -> String {
    let rest =
        &text[text.find(marker).unwrap_or_else(|| panic!("{marker:?} missing")) + marker.len()..];
    let (open, close) = if rest.trim_start().starts_with("```") {
        ("```crontab\n", "```")
    } else {
        (".nf\n", ".fi")
    };
    let start = rest.find(open).unwrap() + open.len();
    rest[start..start + rest[start..].find(close).unwrap()].to_string()
}

#[test]
fn readme_and_man_page_show_what_the_fix_writes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = &readme[readme.find("## Make a whole crontab safe").unwrap()..];
    let (before, after) = (block_after(section, "Before:"), block_after(section, "After:"));
    let o = runonce(&["--fix-crontab", "-"], Some(before.as_bytes()));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), after, "README");

    let man = std::fs::read_to_string(root.join("man/runonce.1.in")).unwrap();
    let both = block_after(&man, "Before and after:").replace("\\-", "-").replace("\\(aq", "'");
    let (before, after) = both.split_once("\n\n").unwrap();
    let o = runonce(&["--fix-crontab", "-"], Some(format!("{before}\n").as_bytes()));
    assert_eq!(stdout(&o), after, "man page");
}
