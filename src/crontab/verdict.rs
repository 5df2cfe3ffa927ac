//! What protects the command of a crontab line (runonce; or flock, timeout,
//! run-one, chronic, which do part of its work), and how runonce would run
//! it instead: the wrappers' options translated to runonce's, and the
//! command left to run (man page, CRONTAB).

use super::parse::Command;
use super::shell::{self, Token, Word, basename};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// runonce runs the whole command.
    Protected,
    /// flock, timeout, run-one or chronic do part of runonce's work.
    Partial,
    Unprotected,
    /// No command at all (cron runs an empty shell).
    Empty,
}

impl Verdict {
    pub fn key(self) -> &'static str {
        match self {
            Verdict::Protected => "protected",
            Verdict::Partial => "partial",
            Verdict::Unprotected => "unprotected",
            Verdict::Empty => "empty",
        }
    }
}

/// What a line lacks that runonce gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    Lock,
    Timeout,
    Record,
}

impl Missing {
    pub fn key(self) -> &'static str {
        match self {
            Missing::Lock => "lock",
            Missing::Timeout => "timeout",
            Missing::Record => "record",
        }
    }
}

/// runonce options translated from the wrappers of a line, as text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub timeout: Option<String>,
    pub kill_after: Option<String>,
    pub signal: Option<String>,
    pub foreground: bool,
    /// A lock is taken (flock, run-one): runs cannot overlap.
    pub locked: bool,
    /// flock's lock file, kept so that whatever else locks it still waits.
    pub lock: Option<Vec<u8>>,
    /// `--wait` (None inside: forever) where flock waited.
    pub wait: Option<Option<String>>,
    pub busy_exit: Option<String>,
    pub replace: bool,
    pub quiet: bool,
    /// flock's `-c STRING`: the command, for `sh -c`.
    pub shell_command: Option<Vec<u8>>,
}

/// The command runonce is to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inner {
    /// The plain words from this offset of the shell text, as written.
    Words(usize),
    /// Shell text for `sh -c`.
    Shell(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub options: Options,
    pub inner: Inner,
}

#[derive(Clone, Debug)]
pub struct Assessment {
    pub verdict: Verdict,
    /// The wrappers found, as written (`flock -n /var/lock/x`).
    pub by: Vec<String>,
    pub missing: Vec<Missing>,
    pub notes: Vec<String>,
    /// How to rewrite the line, or why it cannot be done safely.
    pub plan: Result<Plan, String>,
    /// The words the job's name comes from.
    pub name_words: Vec<Vec<u8>>,
    /// The `--name` a protected line gives runonce.
    pub names: Vec<Vec<u8>>,
}

impl Assessment {
    fn new(verdict: Verdict, plan: Result<Plan, String>) -> Assessment {
        Assessment {
            verdict,
            by: Vec::new(),
            missing: Vec::new(),
            notes: Vec::new(),
            plan,
            name_words: Vec::new(),
            names: Vec::new(),
        }
    }
}

fn text(words: &[Word]) -> String {
    let parts: Vec<String> =
        words.iter().map(|w| String::from_utf8_lossy(&w.value).into_owned()).collect();
    parts.join(" ")
}

fn missing_for(options: &Options) -> Vec<Missing> {
    let mut m = Vec::new();
    if !options.locked {
        m.push(Missing::Lock);
    }
    if options.timeout.as_deref().is_none_or(|t| t == "0") {
        m.push(Missing::Timeout);
    }
    m.push(Missing::Record);
    m
}

const BACKGROUND: &str = "it leaves work running in the background (`&`, or a command that detaches), which runonce would end when the command exits; remove the `&` (cron does not need it) or protect that work by hand";

/// Reads the command of a job line (`cmd.shell`, what `sh -c` runs).
pub fn assess(cmd: &Command) -> Assessment {
    let shell_text = &cmd.shell;
    let lead = shell_text.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    let s = &shell_text[lead..];
    if s.is_empty() {
        return Assessment::new(Verdict::Empty, Err("there is no command".into()));
    }
    let whole = || Plan { options: Options::default(), inner: Inner::Shell(s.to_vec()) };
    let Ok(tokens) = shell::tokenize(s) else {
        let mut a = Assessment::new(Verdict::Unprotected, Ok(whole()));
        a.missing = missing_for(&Options::default());
        a.notes.push("the shell cannot read this command (an unclosed quote?)".into());
        a.name_words = vec![b"job".to_vec()];
        return a;
    };
    let background = shell::backgrounds(&tokens) || detaches(&tokens);
    if let Some(simple) = shell::simple(&tokens) {
        return assess_simple(s, lead, &simple, background);
    }
    if let Some(args) = guarded_runonce(&tokens) {
        let mut a = Assessment::new(Verdict::Protected, Err("protected".into()));
        a.names = runonce_names(&args);
        if !runonce_sets_timeout(&args) {
            a.notes.push("no --timeout: a run that hangs is never stopped".into());
        }
        return a;
    }
    // a list, pipeline or compound command: runonce runs it all in a shell
    let mut a = Assessment::new(Verdict::Unprotected, Ok(whole()));
    let main = main_command(&tokens);
    if runonce_in_part(&tokens) {
        a.verdict = Verdict::Partial;
        a.by.push("runonce".into());
        a.notes.push("runonce runs only part of this line".into());
    } else if let Some(words) = &main {
        match peel(words) {
            Peeled::Wrapped { by, options, .. } if !by.is_empty() => {
                a.verdict = Verdict::Partial;
                a.notes.push(format!("{} covers only part of this line", by.join(" ")));
                a.by = by;
                a.missing = missing_for(&options);
            }
            // both name the wrapper that stopped the peeling
            Peeled::Untranslatable { by, .. } | Peeled::Refused { by, .. } => {
                a.verdict = Verdict::Partial;
                a.notes.push(format!("{} covers only part of this line", by.join(" ")));
                a.missing = missing_for(&provided_by(&by));
                a.by = by;
            }
            _ => {}
        }
    }
    if let Some(words) = &main {
        a.name_words = peeled_words(words);
    }
    if a.missing.is_empty() && a.by != ["runonce"] {
        a.missing = missing_for(&Options::default());
    }
    if background {
        a.plan = Err(BACKGROUND.into());
    }
    a
}

fn assess_simple(s: &[u8], lead: usize, simple: &shell::Simple, background: bool) -> Assessment {
    let words = &simple.words;
    match peel(words) {
        Peeled::Runonce(by) => {
            let mut a = Assessment::new(Verdict::Protected, Err("protected".into()));
            if !by.is_empty() {
                a.notes.push(format!("{} around runonce is redundant", by.join(" ")));
            }
            let at = words.iter().position(|w| basename(&w.value) == b"runonce").unwrap_or(0);
            a.names = runonce_names(&words[at + 1..]);
            if !runonce_sets_timeout(&words[at + 1..]) {
                a.notes.push("no --timeout: a run that hangs is never stopped".into());
            }
            a
        }
        Peeled::Refused { by, why } => {
            let verdict = if by.is_empty() { Verdict::Unprotected } else { Verdict::Partial };
            let mut a = Assessment::new(verdict, Err(why));
            a.missing = missing_for(&provided_by(&by));
            a.by = by;
            a.name_words = peeled_words(words);
            a
        }
        Peeled::Untranslatable { by, why } => {
            let mut a = Assessment::new(
                Verdict::Partial,
                Ok(Plan { options: Options::default(), inner: Inner::Shell(s.to_vec()) }),
            );
            a.notes.push(format!("kept inside the shell: {why}"));
            a.missing = missing_for(&provided_by(&by));
            a.by = by;
            a.name_words = peeled_words(words);
            a
        }
        Peeled::Wrapped { mut options, by, inner } => {
            let verdict = if by.is_empty() { Verdict::Unprotected } else { Verdict::Partial };
            let mut a = Assessment::new(verdict, Err(String::new()));
            a.missing = missing_for(&options);
            a.by = by;
            a.name_words = peeled_words(&words[inner..]);
            let plain_wrappers = simple.assignments.is_empty() && simple.redirects.is_empty();
            let inner_form = if let Some(body) = options.shell_command.take() {
                // flock -c STRING: whatever else the line holds stays with it
                plain_wrappers.then_some(Inner::Shell(body))
            } else if let Some(first) = words.get(inner) {
                let spliceable = plain_wrappers
                    && words[inner..].iter().all(|w| w.plain)
                    && !shell::is_builtin(&first.value)
                    && !shell::is_reserved(&first.value);
                if spliceable {
                    Some(Inner::Words(lead + first.span.start))
                } else {
                    // after a wrapper, `A=1` is a program name, not an assignment
                    (!first.assignment || inner == 0)
                        .then(|| Inner::Shell(shell_body(s, simple, inner)))
                }
            } else {
                a.plan = Err(format!("`{}` runs no command", text(words)));
                return a;
            };
            a.plan = if background {
                Err(BACKGROUND.into())
            } else {
                Ok(match inner_form {
                    Some(inner) => Plan { options, inner },
                    None => {
                        a.notes.push("kept inside the shell as written".into());
                        Plan { options: Options::default(), inner: Inner::Shell(s.to_vec()) }
                    }
                })
            };
            a
        }
    }
}

/// What the wrappers named in `by` give, where their options could not be
/// translated.
fn provided_by(by: &[String]) -> Options {
    let named = |p: &str| by.iter().any(|b| b == p || b.starts_with(&format!("{p} ")));
    Options {
        locked: named("flock") || named("run-one") || named("run-this-one"),
        timeout: named("timeout").then(|| "?".into()),
        ..Options::default()
    }
}

/// The shell text runonce is to run when the words after the wrappers are
/// not plain: the assignments, the redirections that came before the inner
/// command (in their order: `>log 2>&1` is not `2>&1 >log`), then the inner
/// command with everything after it.
fn shell_body(s: &[u8], simple: &shell::Simple, inner: usize) -> Vec<u8> {
    let start = simple.words[inner].span.start;
    let mut body = Vec::new();
    let before = simple.redirects.iter().filter(|r| r.start < start);
    for span in simple.assignments.iter().map(|a| &a.span).chain(before) {
        body.extend_from_slice(&s[span.clone()]);
        body.push(b' ');
    }
    body.extend_from_slice(&s[start..]);
    body
}

/// Whether runonce's own options (before its command) include a timeout.
fn runonce_sets_timeout(args: &[Word]) -> bool {
    let mut found = false;
    runonce_options(args, |long, _| found |= long == "timeout");
    found
}

/// The `--name` values of a runonce command line (its own options only).
pub fn runonce_names(args: &[Word]) -> Vec<Vec<u8>> {
    let mut names = Vec::new();
    runonce_options(args, |long, value| {
        if long == "name"
            && let Some(v) = value
        {
            names.push(v.to_vec());
        }
    });
    names
}

/// Walks runonce's own options as its parser does (cli.rs): up to `--` or
/// the first word that is not an option.
fn runonce_options(args: &[Word], each: impl FnMut(&str, Option<&[u8]>)) {
    thread_local! {
        // built once: a crontab may hold thousands of runonce lines
        static CLI: clap::Command = crate::cli::command();
    }
    CLI.with(|cmd| walk_options(cmd, args, each));
}

fn walk_options(cmd: &clap::Command, args: &[Word], mut each: impl FnMut(&str, Option<&[u8]>)) {
    let mut i = 0;
    while let Some(w) = args.get(i) {
        let v = &w.value;
        i += 1;
        if v == b"--" || !v.starts_with(b"-") || v == b"-" {
            return;
        }
        if let Some(long) = v.strip_prefix(b"--") {
            let (name, attached) = match long.iter().position(|&b| b == b'=') {
                Some(p) => (&long[..p], Some(&long[p + 1..])),
                None => (long, None),
            };
            let name = String::from_utf8_lossy(name);
            let Some(arg) = cmd.get_arguments().find(|a| a.get_long() == Some(&*name)) else {
                continue;
            };
            let id = arg.get_id().as_str().replace('_', "-");
            let takes = arg.get_action().takes_values()
                && !arg.is_require_equals_set()
                && arg.get_num_args().is_none_or(|n| n.min_values() > 0);
            let value = match attached {
                Some(a) => Some(a),
                None if takes => {
                    i += 1;
                    args.get(i - 1).map(|w| &w.value[..])
                }
                None => None,
            };
            each(&id, value);
            continue;
        }
        for (k, &c) in v.iter().enumerate().skip(1) {
            let Some(arg) = cmd.get_arguments().find(|a| a.get_short() == Some(char::from(c)))
            else {
                break;
            };
            let id = arg.get_id().as_str().replace('_', "-");
            if !arg.get_action().takes_values() {
                each(&id, None);
                continue;
            }
            let rest = &v[k + 1..];
            let value = if !rest.is_empty() {
                Some(rest.strip_prefix(b"=").unwrap_or(rest))
            } else if arg.is_require_equals_set() {
                None
            } else {
                i += 1;
                args.get(i - 1).map(|w| &w.value[..])
            };
            each(&id, value);
            break;
        }
    }
}

/// The words, values only, without assignments before the program.
fn peeled_words(words: &[Word]) -> Vec<Vec<u8>> {
    words.iter().map(|w| w.value.clone()).collect()
}

enum Peeled {
    /// runonce runs the command (after the wrappers in `by`).
    Runonce(Vec<String>),
    /// The wrappers' work translated to runonce options; the command
    /// proper starts at word `inner`.
    Wrapped { options: Options, by: Vec<String>, inner: usize },
    /// A wrapper's options have no runonce equivalent: runonce runs the
    /// line as it is.
    Untranslatable { by: Vec<String>, why: String },
    /// Running this under runonce would change what it does.
    Refused { by: Vec<String>, why: String },
}

/// Takes flock, timeout, run-one and chronic off the front of the words.
fn peel(words: &[Word]) -> Peeled {
    let mut options = Options::default();
    let mut by = Vec::new();
    let mut i = 0;
    while let Some(w) = words.get(i) {
        if !w.plain {
            break;
        }
        let program = basename(&w.value);
        let step = match program {
            b"runonce" => return Peeled::Runonce(by),
            b"flock" => flock(words, i + 1, &mut options),
            b"timeout" => timeout(words, i + 1, &mut options),
            b"chronic" => chronic(words, i + 1, &mut options),
            b"run-one" => {
                options.locked = true;
                Ok(i + 1)
            }
            b"run-this-one" => {
                options.locked = true;
                options.replace = true;
                Ok(i + 1)
            }
            b"run-one-constantly"
            | b"keep-one-running"
            | b"run-one-until-success"
            | b"run-one-until-failure" => {
                let name = String::from_utf8_lossy(program).into_owned();
                by.push(name.clone());
                return Peeled::Refused {
                    by,
                    why: format!(
                        "{name} reruns the command in a loop; under runonce each cron run would be cut at its timeout"
                    ),
                };
            }
            _ => break,
        };
        match step {
            Ok(next) => {
                by.push(text(&words[i..next]));
                i = next;
            }
            Err(why) => {
                by.push(String::from_utf8_lossy(program).into_owned());
                return Peeled::Untranslatable { by, why };
            }
        }
    }
    Peeled::Wrapped { options, by, inner: i }
}

struct Opt {
    short: Option<u8>,
    long: &'static str,
    value: bool,
}

const fn opt(short: u8, long: &'static str, value: bool) -> Opt {
    Opt { short: if short == 0 { None } else { Some(short) }, long, value }
}

/// getopt_long with `+` (stop at the first non-option), over plain words.
/// Calls `each(long name, value)`; returns the index after the options.
fn getopt(
    words: &[Word],
    mut i: usize,
    program: &str,
    opts: &[Opt],
    mut each: impl FnMut(&'static str, Option<Vec<u8>>) -> Result<(), String>,
) -> Result<usize, String> {
    while let Some(w) = words.get(i) {
        if !w.plain {
            return Err(format!("{program}: an option the shell expands"));
        }
        let v = &w.value;
        if v == b"--" {
            return Ok(i + 1);
        }
        if !v.starts_with(b"-") || v == b"-" {
            return Ok(i);
        }
        i += 1;
        if let Some(long) = v.strip_prefix(b"--") {
            let (name, attached) = match long.iter().position(|&b| b == b'=') {
                Some(p) => (&long[..p], Some(long[p + 1..].to_vec())),
                None => (long, None),
            };
            let matching: Vec<&Opt> =
                opts.iter().filter(|o| o.long.as_bytes().starts_with(name)).collect();
            let exact = opts.iter().find(|o| o.long.as_bytes() == name);
            let Some(o) = exact.or(if matching.len() == 1 { Some(matching[0]) } else { None })
            else {
                return Err(format!(
                    "{program}: unknown option --{}",
                    String::from_utf8_lossy(name)
                ));
            };
            let value = if o.value {
                match attached {
                    Some(a) => Some(a),
                    None => {
                        let next = words
                            .get(i)
                            .filter(|w| w.plain)
                            .ok_or(format!("{program}: --{} needs a value", o.long))?;
                        i += 1;
                        Some(next.value.clone())
                    }
                }
            } else {
                None
            };
            each(o.long, value)?;
            continue;
        }
        let mut k = 1;
        while k < v.len() {
            let c = v[k];
            let Some(o) = opts.iter().find(|o| o.short == Some(c)) else {
                return Err(format!("{program}: unknown option -{}", char::from(c)));
            };
            if o.value {
                let value = if k + 1 < v.len() {
                    v[k + 1..].to_vec()
                } else {
                    let next = words
                        .get(i)
                        .filter(|w| w.plain)
                        .ok_or(format!("{program}: -{} needs a value", char::from(c)))?;
                    i += 1;
                    next.value.clone()
                };
                each(o.long, Some(value))?;
                break;
            }
            each(o.long, None)?;
            k += 1;
        }
    }
    Ok(i)
}

fn utf8(v: &[u8], what: &str) -> Result<String, String> {
    String::from_utf8(v.to_vec()).map_err(|_| format!("{what}: not valid UTF-8"))
}

/// flock(1): `flock [-n|-w SECS] [-E CODE] FILE COMMAND…` or `… FILE -c STRING`.
fn flock(words: &[Word], i: usize, options: &mut Options) -> Result<usize, String> {
    const OPTS: &[Opt] = &[
        opt(b's', "shared", false),
        opt(b'x', "exclusive", false),
        opt(b'e', "exclusive", false),
        opt(b'u', "unlock", false),
        opt(b'n', "nonblock", false),
        opt(0, "nb", false),
        opt(b'o', "close", false),
        opt(b'F', "no-fork", false),
        opt(b'w', "wait", true),
        opt(0, "timeout", true),
        opt(b'E', "conflict-exit-code", true),
        opt(b'c', "command", true),
        opt(0, "verbose", false),
        opt(b'h', "help", false),
        opt(b'V', "version", false),
    ];
    if options.lock.is_some() {
        return Err("two flock locks".into());
    }
    let (mut nonblock, mut wait, mut conflict, mut string) = (false, None, None, None);
    let mut i = getopt(words, i, "flock", OPTS, |long, value| {
        match long {
            "shared" => return Err("flock -s (a shared lock) has no runonce equivalent".into()),
            "unlock" => return Err("flock -u has no runonce equivalent".into()),
            "help" | "version" => return Err("flock runs no command".into()),
            "nonblock" | "nb" => nonblock = true,
            "wait" | "timeout" => {
                let v = utf8(&value.unwrap_or_default(), "flock -w")?;
                crate::parse::duration(&v).map_err(|e| format!("flock -w {v}: {e}"))?;
                wait = Some(v);
            }
            "conflict-exit-code" => {
                let v = utf8(&value.unwrap_or_default(), "flock -E")?;
                crate::parse::exit_code(&v).map_err(|e| format!("flock -E {v}: {e}"))?;
                conflict = Some(v);
            }
            "command" => string = value,
            // -x is the default; runonce's lock covers the whole job
            // anyway (-o); -F and --verbose change nothing for cron
            _ => {}
        }
        Ok(())
    })?;
    let file = words.get(i).filter(|w| w.plain).ok_or("flock: no lock file")?;
    i += 1;
    if string.is_none()
        && let Some(w) = words.get(i)
        && (w.value == b"-c" || w.value == b"--command")
    {
        let s = words.get(i + 1).filter(|w| w.plain).ok_or("flock -c: no command")?;
        string = Some(s.value.clone());
        i += 2;
    }
    if string.is_some() && i != words.len() {
        return Err("flock -c takes one command string".into());
    }
    if string.is_none() && i == words.len() {
        return Err("flock FD (a descriptor's lock) runs no command".into());
    }
    options.locked = true;
    options.lock = Some(file.value.clone());
    options.wait = if nonblock { None } else { Some(wait) };
    options.busy_exit = conflict;
    options.shell_command = string;
    Ok(i)
}

/// timeout(1): `timeout [-k DUR] [-s SIG] [--foreground] DURATION COMMAND…`.
fn timeout(words: &[Word], i: usize, options: &mut Options) -> Result<usize, String> {
    const OPTS: &[Opt] = &[
        opt(b'k', "kill-after", true),
        opt(b's', "signal", true),
        opt(b'f', "foreground", false),
        opt(b'p', "preserve-status", false),
        opt(b'v', "verbose", false),
        opt(0, "help", false),
        opt(0, "version", false),
    ];
    if options.timeout.is_some() {
        return Err("two timeouts".into());
    }
    let (mut kill_after, mut signal, mut foreground) = (None, None, false);
    let i = getopt(words, i, "timeout", OPTS, |long, value| {
        match long {
            "kill-after" => kill_after = Some(timeout_duration(&value.unwrap_or_default())?),
            "signal" => {
                let v = utf8(&value.unwrap_or_default(), "timeout -s")?;
                crate::parse::signal(&v).map_err(|e| format!("timeout -s {v}: {e}"))?;
                signal = Some(v);
            }
            "foreground" => foreground = true,
            "preserve-status" => {
                return Err("timeout --preserve-status: runonce exits 124 on a timeout".into());
            }
            "help" | "version" => return Err("timeout runs no command".into()),
            _ => {} // --verbose: runonce's record says it instead
        }
        Ok(())
    })?;
    let limit = words.get(i).filter(|w| w.plain).ok_or("timeout: no duration")?;
    options.timeout = Some(timeout_duration(&limit.value)?);
    options.kill_after = kill_after;
    options.signal = signal;
    options.foreground = foreground;
    Ok(i + 1)
}

/// A timeout(1) DURATION (a number with an optional s, m, h or d) as
/// runonce reads it: the text itself where runonce reads it the same.
fn timeout_duration(v: &[u8]) -> Result<String, String> {
    let t = utf8(v, "timeout")?;
    let (number, unit) = match t.char_indices().last() {
        Some((p, c)) if c.is_ascii_alphabetic() && !t.ends_with('e') => (&t[..p], c),
        _ => (&t[..], 's'),
    };
    let scale = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        'd' => 86400.0,
        _ => return Err(format!("timeout: invalid duration '{t}'")),
    };
    let value: f64 = number.parse().map_err(|_| format!("timeout: invalid duration '{t}'"))?;
    if value.is_nan() || value < 0.0 {
        return Err(format!("timeout: invalid duration '{t}'"));
    }
    let secs = value * scale;
    let wanted = std::time::Duration::try_from_secs_f64(secs).unwrap_or(std::time::Duration::MAX);
    if crate::parse::duration(&t).is_ok_and(|d| d.abs_diff(wanted).as_millis() == 0) {
        return Ok(t);
    }
    if secs.fract() == 0.0 && secs < 1e15 {
        return Ok(format!("{}", secs as u64));
    }
    Err(format!("timeout: duration '{t}' has no exact runonce equivalent"))
}

/// chronic(1) of moreutils: hold the output unless the command fails.
fn chronic(words: &[Word], i: usize, options: &mut Options) -> Result<usize, String> {
    const OPTS: &[Opt] = &[opt(b'e', "e", false), opt(b'v', "v", false)];
    let i = getopt(words, i, "chronic", OPTS, |long, _| {
        Err(match long {
            "e" => "chronic -e (output when stderr is not empty) has no runonce equivalent".into(),
            _ => "chronic -v has no runonce equivalent".into(),
        })
    })?;
    options.quiet = true;
    Ok(i)
}

/// Programs that leave work behind on purpose: runonce would end it.
fn detaches(tokens: &[Token]) -> bool {
    let Some(parts) = shell::flat_list(tokens) else { return false };
    parts.iter().any(|(part, _)| {
        let words: Vec<&[u8]> = part
            .iter()
            .filter_map(|t| match t {
                Token::Word(w) if !w.assignment => Some(&w.value[..]),
                _ => None,
            })
            .collect();
        let Some((first, rest)) = words.split_first() else { return false };
        let has = |pred: &dyn Fn(&[u8]) -> bool| rest.iter().any(|w| pred(w));
        match basename(first) {
            b"screen" => {
                has(&|w| w.starts_with(b"-") && !w.starts_with(b"--") && w.contains(&b'd'))
                    && has(&|w| w.starts_with(b"-") && !w.starts_with(b"--") && w.contains(&b'm'))
                    && !has(&|w| w.starts_with(b"-D"))
            }
            b"tmux" => has(&|w| w == b"-d"),
            b"setsid" => has(&|w| w == b"-f" || w == b"--fork"),
            b"start-stop-daemon" => has(&|w| w == b"-b" || w == b"--background"),
            b"daemonize" | b"daemon" => true,
            _ => false,
        }
    })
}

/// Commands that only decide whether the job runs (`test -x … &&`).
fn is_guard(words: &[Word]) -> bool {
    let Some(first) = words.first() else { return false };
    match &first.value[..] {
        b"test" | b"[" | b"[[" | b"cd" | b"true" | b":" => true,
        b"command" => words.get(1).is_some_and(|w| w.value == b"-v" || w.value == b"-V"),
        _ => false,
    }
}

fn part_words(part: &[Token]) -> Vec<Word> {
    part.iter()
        .filter_map(|t| match t {
            Token::Word(w) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

/// `GUARD && … && runonce …` (or `||`): runonce runs all the work.
/// Returns runonce's arguments.
fn guarded_runonce(tokens: &[Token]) -> Option<Vec<Word>> {
    let parts = shell::flat_list(tokens)?;
    let ((last, None), rest) = parts.split_last()? else { return None };
    let guards_ok = rest
        .iter()
        .all(|(part, op)| matches!(op, Some("&&" | "||")) && is_guard(&part_words(part)));
    let simple = shell::simple(last)?;
    let mut words = &simple.words[..];
    if words.first().is_some_and(|w| w.value == b"exec") {
        words = &words[1..];
    }
    let runonce = words.first().is_some_and(|w| w.plain && basename(&w.value) == b"runonce");
    (guards_ok && runonce).then(|| words[1..].to_vec())
}

/// Whether one of the commands of a list starts with runonce.
fn runonce_in_part(tokens: &[Token]) -> bool {
    let parts = shell::flat_list(tokens).unwrap_or_else(|| vec![(tokens.to_vec(), None)]);
    parts.iter().any(|(part, _)| {
        part_words(part)
            .iter()
            .find(|w| {
                !(w.assignment || w.plain && (shell::is_reserved(&w.value) || w.value == b"exec"))
            })
            .is_some_and(|w| w.plain && basename(&w.value) == b"runonce")
    })
}

/// Words and reserved words that do not name the work of a line.
fn is_incidental(words: &[Word]) -> bool {
    let Some(first) = words.first() else { return true };
    is_guard(words)
        || matches!(
            basename(&first.value),
            b"echo" | b"printf" | b"logger" | b"sleep" | b"exit" | b"false" | b"date"
        )
}

/// The command that does the work of a list (`test -x x && x --daily`):
/// the first command of the last pipeline that is not a guard.
fn main_command(tokens: &[Token]) -> Option<Vec<Word>> {
    let parts = shell::flat_list(tokens).unwrap_or_else(|| vec![(tokens.to_vec(), None)]);
    let mut pipelines: Vec<Vec<Vec<Word>>> = vec![Vec::new()];
    for (part, op) in &parts {
        let mut words: Vec<Word> = part_words(part);
        while words
            .first()
            .is_some_and(|w| (w.plain && shell::is_reserved(&w.value)) || w.assignment)
        {
            words.remove(0);
        }
        if let Some(p) = pipelines.last_mut() {
            p.push(words);
        }
        if *op != Some("|") {
            pipelines.push(Vec::new());
        }
    }
    pipelines
        .iter()
        .rev()
        .find_map(|p| p.iter().find(|w| !w.is_empty() && !is_incidental(w)).cloned())
        .or_else(|| pipelines.iter().flatten().find(|w| !w.is_empty()).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crontab::parse::split_command;

    fn a(cmd: &str) -> Assessment {
        assess(&split_command(cmd.as_bytes()))
    }

    #[test]
    fn verdicts() {
        assert_eq!(a("runonce -t 4m -- /opt/x").verdict, Verdict::Protected);
        assert_eq!(a("/usr/bin/runonce -- x >/dev/null 2>&1").verdict, Verdict::Protected);
        assert_eq!(a("test -x /usr/bin/x && runonce -n x -- x").verdict, Verdict::Protected);
        assert_eq!(a("flock -n /l runonce -- x").verdict, Verdict::Protected);
        assert_eq!(a("flock -n /l x").verdict, Verdict::Partial);
        assert_eq!(a("timeout 60 x").verdict, Verdict::Partial);
        assert_eq!(a("chronic x").verdict, Verdict::Partial);
        assert_eq!(a("run-one x").verdict, Verdict::Partial);
        assert_eq!(a("x").verdict, Verdict::Unprotected);
        assert_eq!(a("x | y").verdict, Verdict::Unprotected);
        assert_eq!(a("  ").verdict, Verdict::Empty);
        assert_eq!(a("runonce -- a; b").verdict, Verdict::Partial);
        assert_eq!(a("cd /x && flock -n /l y").verdict, Verdict::Partial);
    }

    #[test]
    fn what_is_missing() {
        assert_eq!(a("flock -n /l x").missing, [Missing::Timeout, Missing::Record]);
        assert_eq!(a("timeout 5 x").missing, [Missing::Lock, Missing::Record]);
        assert_eq!(a("x").missing, [Missing::Lock, Missing::Timeout, Missing::Record]);
        assert!(a("runonce -- x").notes.iter().any(|n| n.contains("no --timeout")));
        assert!(a("runonce -t 5m -- x").notes.is_empty());
        assert!(a("runonce --timeout=5m -- x").notes.is_empty());
        assert!(a("runonce -qt5m -- x").notes.is_empty());
    }

    fn plan(cmd: &str) -> Plan {
        a(cmd).plan.unwrap()
    }

    #[test]
    fn flock_translation() {
        let p = plan("flock -n /var/lock/x.lock /opt/x --all");
        assert_eq!(p.options.lock.as_deref(), Some(&b"/var/lock/x.lock"[..]));
        assert_eq!(p.options.wait, None);
        assert_eq!(p.inner, Inner::Words(26));
        let p = plan("flock -w 30 -E 3 /l x");
        assert_eq!(p.options.wait, Some(Some("30".into())));
        assert_eq!(p.options.busy_exit.as_deref(), Some("3"));
        assert_eq!(plan("flock /l x").options.wait, Some(None));
        assert_eq!(plan("flock --nonblock --close /l x").options.wait, None);
        let p = plan("flock -n /l -c 'a | b'");
        assert_eq!(p.inner, Inner::Shell(b"a | b".to_vec()));
        let p = plan("flock -s /l x");
        assert_eq!(p.inner, Inner::Shell(b"flock -s /l x".to_vec()));
        assert_eq!(p.options, Options::default());
    }

    #[test]
    fn timeout_and_chronic_translation() {
        let p = plan("timeout -k 5 -s INT 10m x y");
        assert_eq!(p.options.timeout.as_deref(), Some("10m"));
        assert_eq!(p.options.kill_after.as_deref(), Some("5"));
        assert_eq!(p.options.signal.as_deref(), Some("INT"));
        assert_eq!(p.inner, Inner::Words(24));
        assert_eq!(plan("timeout 1.5m x").options.timeout.as_deref(), Some("1.5m"));
        // runonce reads exponents as timeout(1) does: the text is kept
        assert_eq!(plan("timeout 1e2 x").options.timeout.as_deref(), Some("1e2"));
        assert_eq!(plan("timeout 2.5e-1m x").options.timeout.as_deref(), Some("2.5e-1m"));
        assert!(plan("timeout --foreground 1h x").options.foreground);
        let p = plan("flock -n /l timeout 600 chronic x");
        assert_eq!(
            (p.options.lock.is_some(), p.options.timeout.as_deref(), p.options.quiet),
            (true, Some("600"), true)
        );
        assert!(plan("run-this-one x").options.replace);
        let p = plan("timeout --preserve-status 5 x");
        assert_eq!(p.inner, Inner::Shell(b"timeout --preserve-status 5 x".to_vec()));
    }

    #[test]
    fn what_goes_through_a_shell() {
        assert_eq!(plan("x > log 2>&1").inner, Inner::Shell(b"x > log 2>&1".to_vec()));
        let p = plan("flock -n /l x > log");
        assert_eq!(p.inner, Inner::Shell(b"x > log".to_vec()));
        let p = plan(">log flock -n /l x 2>&1");
        assert_eq!(p.inner, Inner::Shell(b">log x 2>&1".to_vec()));
        let p = plan("flock -n /l -c 'a | b' > log");
        assert_eq!(p.inner, Inner::Shell(b"flock -n /l -c 'a | b' > log".to_vec()));
        let p = plan("timeout 5 A=1 x $y");
        assert_eq!(p.inner, Inner::Shell(b"timeout 5 A=1 x $y".to_vec()));
        assert_eq!(a("flock -s /l x").missing, [Missing::Timeout, Missing::Record]);
        let p = plan("A=1 flock -n /l x");
        assert_eq!(p.inner, Inner::Shell(b"A=1 x".to_vec()));
        assert_eq!(plan("echo hi").inner, Inner::Shell(b"echo hi".to_vec()));
        assert_eq!(plan("timeout 5 cd /").inner, Inner::Shell(b"cd /".to_vec()));
        assert_eq!(plan("x $HOME").inner, Inner::Shell(b"x $HOME".to_vec()));
        assert_eq!(plan("  x y").inner, Inner::Words(2));
    }

    #[test]
    fn what_is_refused() {
        assert!(a("x &").plan.is_err());
        assert!(a("nohup x >/dev/null 2>&1 &").plan.is_err());
        assert!(a("screen -dmS s x").plan.is_err());
        assert!(a("run-one-constantly x").plan.is_err());
        assert!(a("timeout 5").plan.is_err());
        assert!(a("x && y").plan.is_ok());
    }

    #[test]
    fn report_words() {
        let verdicts = [Verdict::Protected, Verdict::Partial, Verdict::Unprotected, Verdict::Empty];
        let keys: Vec<&str> = verdicts.iter().map(|v| v.key()).collect();
        assert_eq!(keys, ["protected", "partial", "unprotected", "empty"]);
        let keys: Vec<&str> =
            [Missing::Lock, Missing::Timeout, Missing::Record].iter().map(|m| m.key()).collect();
        assert_eq!(keys, ["lock", "timeout", "record"]);
    }

    #[test]
    fn wrappers_are_named_as_written() {
        assert_eq!(a("flock -n /l timeout -k 5 60 x --all").by, ["flock -n /l", "timeout -k 5 60"]);
        assert_eq!(a("flock -n /l x | y").by, ["flock -n /l"]);
        assert_eq!(a("timeout 5").plan.unwrap_err(), "`timeout 5` runs no command");
    }

    #[test]
    fn a_guarded_runonce_is_protected() {
        let g = a("test -x /x && runonce -n x -t 5m -- x");
        assert_eq!(
            (g.verdict, &g.names[..], &g.notes[..]),
            (Verdict::Protected, &[b"x".to_vec()][..], &[][..])
        );
        assert!(g.missing.is_empty());
        let g = a("test -x /x && runonce -n x -- x");
        assert_eq!(g.notes, ["no --timeout: a run that hangs is never stopped"]);
    }

    #[test]
    fn what_a_wrapper_in_a_list_gives() {
        // the wrapper's options are not translated: what it gives by its name
        let l = a("cd /x && flock -s /l y");
        assert_eq!((l.verdict, &l.by[..]), (Verdict::Partial, &["flock".to_string()][..]));
        assert_eq!(l.notes, ["flock covers only part of this line"]);
        assert_eq!(l.missing, [Missing::Timeout, Missing::Record]);
        let l = a("cd /x && run-one-constantly y");
        assert_eq!(
            (l.verdict, &l.by[..]),
            (Verdict::Partial, &["run-one-constantly".to_string()][..])
        );
        assert_eq!(l.missing, [Missing::Lock, Missing::Timeout, Missing::Record]);
        let l = a("cd /x && flock -n /l y");
        assert_eq!(l.missing, [Missing::Timeout, Missing::Record]);
        let l = a("runonce -- a; b");
        assert!(l.missing.is_empty());
        assert_eq!(a("x | y").missing, [Missing::Lock, Missing::Timeout, Missing::Record]);
    }

    #[test]
    fn what_untranslated_wrappers_give() {
        let m = |c: &str| a(c).missing;
        assert_eq!(m("timeout --preserve-status 5 x"), [Missing::Lock, Missing::Record]);
        assert_eq!(m("flock -s /l x"), [Missing::Timeout, Missing::Record]);
        assert_eq!(m("run-one timeout --preserve-status 5 x"), [Missing::Record]);
        assert_eq!(m("run-this-one timeout --preserve-status 5 x"), [Missing::Record]);
        assert_eq!(m("chronic -e x"), [Missing::Lock, Missing::Timeout, Missing::Record]);
    }

    #[test]
    fn runonce_options_end_where_its_parser_ends_them() {
        let names = |c: &str| {
            a(c).names.iter().map(|n| String::from_utf8_lossy(n).into_owned()).collect::<Vec<_>>()
        };
        let no_timeout = |c: &str| a(c).notes.iter().any(|n| n.contains("no --timeout"));
        // the command's own options are not runonce's
        assert!(no_timeout("runonce -- x --timeout 5m"));
        assert!(no_timeout("runonce /opt/x --timeout 5m"));
        assert_eq!(names("runonce -n a -- x --name b"), ["a"]);
        assert_eq!(names("runonce --name=backup -- x"), ["backup"]);
        // --wait takes its value only attached, --status's is optional
        assert_eq!(names("runonce --wait --name x -- y"), ["x"]);
        assert_eq!(names("runonce --status --name x -- y"), ["x"]);
    }

    #[test]
    fn an_option_that_needs_its_values_takes_the_next_word() {
        let cmd = clap::Command::new("t")
            .arg(clap::Arg::new("files").long("files").num_args(1..))
            .arg(clap::Arg::new("flag").long("flag").action(clap::ArgAction::SetTrue));
        let tokens = shell::tokenize(b"--files a --flag").unwrap();
        let words = shell::simple(&tokens).unwrap().words;
        let mut seen = Vec::new();
        walk_options(&cmd, &words, |id, v| seen.push((id.to_string(), v.map(<[u8]>::to_vec))));
        assert_eq!(seen, [("files".into(), Some(b"a".to_vec())), ("flag".into(), None)]);
    }

    /// Why a wrapper's options stayed inside the shell.
    fn kept(cmd: &str) -> Vec<String> {
        a(cmd).notes
    }

    #[test]
    fn wrapper_options_as_getopt_reads_them() {
        let p = plan("timeout -s INT -- 10m x");
        assert_eq!((p.options.timeout.as_deref(), p.inner), (Some("10m"), Inner::Words(22)));
        for c in ["flock --wait=5 /l x", "flock --wait 5 /l x", "flock -w5 /l x", "flock -w 5 /l x"]
        {
            let p = plan(c);
            let lock = p.options.lock.as_deref().map(String::from_utf8_lossy);
            let inner = Inner::Words(c.len() - 1);
            assert_eq!(
                (p.options.wait, lock.as_deref(), p.inner),
                (Some(Some("5".into())), Some("/l"), inner),
                "{c}"
            );
        }
        let p = plan("flock -nE3 /l x");
        assert_eq!((p.options.wait, p.options.busy_exit.as_deref()), (None, Some("3")));
        // an exact long name wins over the longer ones it begins
        assert_eq!(plan("flock --exclusive /l x").options.lock.as_deref(), Some(&b"/l"[..]));
        // an unambiguous abbreviation is the option; an ambiguous one is refused
        assert_eq!(plan("flock --nonb /l x").options.wait, None);
        assert_eq!(kept("flock --no /l x"), ["kept inside the shell: flock: unknown option --no"]);
        let p = plan("flock -n -c 'a | b' /l");
        assert_eq!(
            (p.options.lock.as_deref(), p.inner),
            (Some(&b"/l"[..]), Inner::Shell(b"a | b".to_vec()))
        );
        assert_eq!(
            kept("flock -u /l x"),
            ["kept inside the shell: flock -u has no runonce equivalent"]
        );
        assert_eq!(kept("flock -h"), ["kept inside the shell: flock runs no command"]);
        assert_eq!(kept("timeout --help"), ["kept inside the shell: timeout runs no command"]);
        assert_eq!(
            kept("chronic -e x"),
            [
                "kept inside the shell: chronic -e (output when stderr is not empty) has no runonce equivalent"
            ]
        );
        assert_eq!(
            kept("chronic -v x"),
            ["kept inside the shell: chronic -v has no runonce equivalent"]
        );
    }

    #[test]
    fn timeout_durations_as_runonce_reads_them() {
        let t = |c: &str| plan(c).options.timeout;
        assert_eq!(t("timeout 30s x").as_deref(), Some("30s"));
        assert_eq!(t("timeout 2d x").as_deref(), Some("2d"));
        assert_eq!(t("timeout 0 x").as_deref(), Some("0"));
        assert_eq!(a("timeout 0 x").missing, [Missing::Lock, Missing::Timeout, Missing::Record]);
        // what runonce reads otherwise, as whole seconds
        assert_eq!(t("timeout +5 x").as_deref(), Some("5"));
        assert_eq!(t("timeout +1.5m x").as_deref(), Some("90"));
        let invalid =
            |d: &str| vec![format!("kept inside the shell: timeout: invalid duration '{d}'")];
        assert_eq!(kept("timeout nans x"), invalid("nans"));
        assert_eq!(kept("timeout -- -5 x"), invalid("-5"));
        let inexact = |d: &str| {
            vec![format!(
                "kept inside the shell: timeout: duration '{d}' has no exact runonce equivalent"
            )]
        };
        assert_eq!(kept("timeout +0.5 x"), inexact("+0.5"));
        assert_eq!(kept("timeout +1e15 x"), inexact("+1e15"));
        assert_eq!(t("timeout +1e14 x").as_deref(), Some("100000000000000"));
    }

    #[test]
    fn work_left_behind_is_refused() {
        for c in [
            "tmux new -d x",
            "setsid -f x",
            "setsid --fork x",
            "start-stop-daemon -b --start x",
            "start-stop-daemon --background --start x",
            "daemonize x",
            "daemon x",
            "A=1 daemonize x",
            "screen -d -m x",
        ] {
            assert_eq!(a(c).plan.unwrap_err(), BACKGROUND, "{c}");
        }
        for c in [
            "tmux ls",
            "setsid x",
            "start-stop-daemon --stop x",
            "screen -dm -D x",
            "screen -m --ds x",
            "screen -d --mm x",
        ] {
            assert!(a(c).plan.is_ok(), "{c}");
        }
    }

    #[test]
    fn guards_before_runonce() {
        let v = |c: &str| a(c).verdict;
        assert_eq!(v("command -v x >/dev/null && runonce -t 5m -- x"), Verdict::Protected);
        assert_eq!(v("command -V x || runonce -t 5m -- x"), Verdict::Protected);
        assert_eq!(v("test -x /x && exec runonce -t 5m -- x"), Verdict::Protected);
        assert_eq!(v("command x && runonce -- x"), Verdict::Partial);
        assert_eq!(v("x && runonce -- y"), Verdict::Partial);
        assert_eq!(v("test -x /x; runonce -- x"), Verdict::Partial);
        assert_eq!(v("A=1 runonce -- a; b"), Verdict::Partial);
        assert_eq!(v("exec runonce -- a; b"), Verdict::Partial);
        assert_eq!(v("if true; then runonce -- x; fi"), Verdict::Partial);
        assert_eq!(v("test -x /x && y"), Verdict::Unprotected);
        let w = a("flock -n /l runonce -n x -t 5m -- y");
        assert_eq!(
            (w.names, w.notes),
            (vec![b"x".to_vec()], vec!["flock -n /l around runonce is redundant".to_string()])
        );
        assert_eq!(a("runonce -qnbackup -- x").names, [b"backup"]);
    }

    #[test]
    fn names_come_from_the_work() {
        let w = |c: &str| a(c).name_words.first().map(|w| String::from_utf8_lossy(w).into_owned());
        assert_eq!(w("cd / && run-parts --report /etc/cron.hourly").as_deref(), Some("run-parts"));
        assert_eq!(w("flock -n /l /opt/x/run.py").as_deref(), Some("/opt/x/run.py"));
        assert_eq!(
            w("test -x /usr/bin/certbot && perl -e 'sleep 1' && certbot -q renew").as_deref(),
            Some("certbot")
        );
        assert_eq!(
            w("[ -x /x ] && if [ ! -d /run/systemd/system ]; then /usr/sbin/invoke-rc.d anacron start >/dev/null; fi").as_deref(),
            Some("/usr/sbin/invoke-rc.d")
        );
        assert_eq!(w("backup | gzip > x").as_deref(), Some("backup"));
        assert_eq!(w("backup && echo done").as_deref(), Some("backup"));
        assert_eq!(w("echo hi; date").as_deref(), Some("echo"));
    }
}
