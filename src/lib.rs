//! runonce: put it in front of a crontab line and the job can no longer pile
//! up, hang forever, run twice or eat the machine; every run leaves a record.
//!
//! The binary's `main` only calls [`entry`]; the modules are public so that
//! tests and benchmarks can reach the parts.

pub mod backoff;
pub mod breaker;
pub mod cgroup;
pub mod cli;
pub mod config;
pub mod contain;
pub mod crontab;
pub mod docs;
pub mod enforce;
pub mod escalation;
pub mod exit_code;
pub mod files;
pub mod fleet;
pub mod forget;
pub mod holder;
pub mod limits;
pub mod lock;
pub mod metrics;
pub mod nss;
pub mod output;
pub mod parse;
pub mod ping;
pub mod procs;
pub mod record;
pub mod recorder;
pub mod run;
pub mod signals;
pub mod sink;
pub mod spawn;
pub mod state;
pub mod status;
pub mod supervise;
pub mod sys;
#[cfg(any(feature = "fleet", feature = "ping"))]
pub mod tls;
pub mod ui;

use clap::error::{ContextKind, ContextValue, ErrorKind};

use cli::{Cli, Rejected};
use exit_code::Exit;

/// Everything runonce does with its command line `args` (the program name
/// first); returns the exit status.
pub fn entry(args: Vec<std::ffi::OsString>) -> Exit {
    sys::one_malloc_arena();
    sys::hold_closed_stdio();
    if let Some(request) = docs::request(&args) {
        return generate(request);
    }
    if docs::job_names_request(&args) {
        return job_names();
    }
    let cli = match cli::parse(args.clone()) {
        Ok(cli) => cli,
        Err(Rejected::Clap(e)) if e.kind() == ErrorKind::InvalidUtf8 => {
            ui::warn(&invalid_utf8_message(&args));
            return Exit::OwnFailure;
        }
        Err(Rejected::Clap(e)) => return clap_error(&e),
        Err(Rejected::Usage(msg)) => {
            ui::warn(&msg);
            return Exit::OwnFailure;
        }
    };
    if let Some(name) = cli.status.clone() {
        return status(&cli, name);
    }
    if let Some(name) = &cli.forget {
        return forget::forget(&forget_request(&cli, name));
    }
    if let Some(files) = &cli.check_crontab {
        return crontab::check(files, cli.json);
    }
    if let Some(file) = &cli.fix_crontab {
        return crontab::fix(file);
    }
    let cfg = match config::Config::from_cli(cli) {
        Ok(c) => c,
        Err(config::UsageError(msg)) => {
            ui::warn(&msg);
            return Exit::OwnFailure;
        }
    };
    let signals = match signals::Signals::setup() {
        Ok(s) => s,
        Err(e) => {
            ui::warn(&format!("cannot set up signal handling: {e}"));
            return Exit::OwnFailure;
        }
    };
    run::run(&cfg, &signals)
}

/// Help and version go to stdout (exit 0, or 125 if stdout fails); usage
/// errors become one line naming the option and the value (exit 125).
fn clap_error(e: &clap::Error) -> Exit {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            Exit::unless(ui::print(&e.render().to_string()))
        }
        _ => {
            ui::warn(&usage_message(e));
            Exit::OwnFailure
        }
    }
}

/// clap says only "invalid UTF-8"; name the option and show the value.
fn invalid_utf8_message(args: &[std::ffi::OsString]) -> String {
    let bad = args.iter().skip(1).position(|a| a.to_str().is_none()).map(|i| i + 1);
    let Some(i) = bad else { return "an argument is not valid UTF-8".into() };
    let shown = args[i].to_string_lossy();
    let (option, value) = match shown.split_once('=') {
        Some((opt, v)) if opt.starts_with("--") => (opt.to_string(), v.to_string()),
        _ => match args[i - 1].to_str() {
            Some(prev) if i > 1 && prev.starts_with('-') => (prev.to_string(), shown.to_string()),
            _ => ("argument".to_string(), shown.to_string()),
        },
    };
    format!("{option}: invalid value '{value}': not valid UTF-8")
}

fn context(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => Some(v.join(", ")),
        other => Some(other.to_string()),
    }
}

pub fn usage_message(e: &clap::Error) -> String {
    // clap names the option with its value: `--timeout <DURATION>`,
    // `--name=<NAME>`, `--wait[=<DURATION>]`; keep the option alone
    let arg = context(e, ContextKind::InvalidArg).map(|a| {
        a.split(", ")
            .map(|one| one.split([' ', '=', '[']).next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(", ")
    });
    let value = context(e, ContextKind::InvalidValue);
    let hint = "(see runonce --help)";
    match e.kind() {
        // clap's word for a value that is missing (`--timeout` last, or
        // followed by `--`) is an invalid empty one
        ErrorKind::InvalidValue if value.as_deref() == Some("") => {
            let raw = context(e, ContextKind::InvalidArg).unwrap_or_default();
            let wanted = raw.split(['<', '>']).nth(1).unwrap_or("VALUE");
            format!("{}: needs a value: {wanted} {hint}", arg.unwrap_or_else(|| "option".into()))
        }
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let reason = std::error::Error::source(e).map(|s| format!(": {s}")).unwrap_or_default();
            format!(
                "{}: invalid value '{}'{reason}",
                arg.unwrap_or_else(|| "option".into()),
                value.unwrap_or_default()
            )
        }
        ErrorKind::UnknownArgument => {
            let guess = context(e, ContextKind::SuggestedArg)
                .map(|g| format!("; did you mean '{g}'?"))
                .unwrap_or_default();
            format!("unknown option '{}'{guess} {hint}", arg.unwrap_or_default())
        }
        ErrorKind::MissingRequiredArgument
            if arg.as_deref().is_some_and(|a| a.contains("COMMAND")) =>
        {
            "missing COMMAND: usage: runonce [OPTIONS] [--] COMMAND [ARG]... (see runonce --help)"
                .into()
        }
        ErrorKind::MissingRequiredArgument => {
            format!("missing {}, which the options given require {hint}", arg.unwrap_or_default())
        }
        _ => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            format!("{} {hint}", first.trim_start_matches("error: "))
        }
    }
}

/// `--generate WHAT`: the man page or a completion script on stdout.
fn generate(request: Result<docs::Generate, String>) -> Exit {
    match request {
        Ok(what) => Exit::unless(sys::write_all_fd(1, &docs::render(what)).is_ok()),
        Err(msg) => {
            ui::warn(&msg);
            Exit::OwnFailure
        }
    }
}

fn status(cli: &Cli, name: String) -> Exit {
    let name = (!name.is_empty()).then_some(name);
    if let Some(n) = &name
        && let Err(e) = parse::job_name(n)
    {
        ui::warn(&format!("--status: invalid value '{n}': {e}"));
        return Exit::OwnFailure;
    }
    let dirs = status_dirs(cli);
    let mut jobs = status::collect(&dirs, name.as_deref());
    let mut fleet_failed = false;
    if let Some(url) = &cli.lock_url {
        match fleet::peek(url, name.as_deref()) {
            Ok(rows) => status::attach_leases(&mut jobs, &rows, name.as_deref()),
            Err(e) => {
                ui::warn(&format!("{e}: the fleet leases are not shown"));
                fleet_failed = true;
            }
        }
    }
    if let (Some(n), true) = (&name, jobs.is_empty()) {
        ui::warn(&format!(
            "--status: no job named '{n}' (no lock in {}, no state in {})",
            dirs.lock_dir.display(),
            dirs.state_dir.display()
        ));
        return Exit::No;
    }
    let text = if cli.json { status::json(&jobs, name.is_some()) } else { status::table(&jobs) };
    Exit::unless(ui::print(&text) && !fleet_failed)
}

/// Where `--status`, `--forget` and the completions look for jobs: the
/// same default dirs as runs use, fallbacks included.
fn status_dirs(cli: &Cli) -> status::Dirs {
    status::Dirs {
        lock_dir: cli.lock_dir.clone().unwrap_or_else(lock::default_dir),
        lock_file: cli.lock.clone(),
        state_dir: cli.state_dir.clone().unwrap_or_else(state::default_dir),
    }
}

/// `runonce --job-names`: the jobs `--status` knows, one a line, for the
/// completion scripts; the directories as `--status` finds them (the
/// environment included).
fn job_names() -> Exit {
    let Ok(cli) = cli::parse(["runonce", "--status"].map(std::ffi::OsString::from).to_vec()) else {
        return Exit::OwnFailure;
    };
    let text: String = status::names(&status_dirs(&cli)).into_iter().map(|n| n + "\n").collect();
    Exit::unless(ui::print(&text))
}

fn forget_request<'a>(cli: &'a Cli, name: &'a str) -> forget::Request<'a> {
    forget::Request { name, dirs: status_dirs(cli), metrics_dir: cli.metrics_dir.as_deref() }
}
