//! The man page and the shell completions, generated from the clap
//! definition in `cli.rs` so that they cannot drift from it.  The man
//! page's hand-written sections (exit status, the lock, limits, examples...)
//! live in `man/runonce.1.in`, a roff template whose marker lines this
//! module fills in.
//!
//! `runonce --generate WHAT` prints one of them; `packaging/regen` rewrites
//! the committed copies (`Generate::path`) and `tests/docs.rs` fails when a
//! committed copy differs from what the current definition generates.
//!
//! `--generate` is looked for before clap parses the command line rather
//! than declared to clap: clap_complete offers hidden options too, and
//! TAB should not suggest a packaging helper to users.

use std::ffi::OsString;

use clap::ValueHint;
use clap::builder::PossibleValuesParser;

use crate::{cli, parse};

/// What `--generate` can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generate {
    Man,
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

impl Generate {
    pub const ALL: [Generate; 6] = [
        Generate::Man,
        Generate::Bash,
        Generate::Zsh,
        Generate::Fish,
        Generate::Elvish,
        Generate::Powershell,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Generate::Man => "man",
            Generate::Bash => "bash",
            Generate::Zsh => "zsh",
            Generate::Fish => "fish",
            Generate::Elvish => "elvish",
            Generate::Powershell => "powershell",
        }
    }

    /// Where the committed copy lives, relative to the repository root.
    /// The completion file names are the ones each shell looks up by
    /// command name (and clap_complete's defaults).
    pub fn path(self) -> &'static str {
        match self {
            Generate::Man => "man/runonce.1",
            Generate::Bash => "completions/runonce.bash",
            Generate::Zsh => "completions/_runonce",
            Generate::Fish => "completions/runonce.fish",
            Generate::Elvish => "completions/runonce.elv",
            Generate::Powershell => "completions/_runonce.ps1",
        }
    }

    fn shell(self) -> Option<clap_complete::Shell> {
        match self {
            Generate::Man => None,
            Generate::Bash => Some(clap_complete::Shell::Bash),
            Generate::Zsh => Some(clap_complete::Shell::Zsh),
            Generate::Fish => Some(clap_complete::Shell::Fish),
            Generate::Elvish => Some(clap_complete::Shell::Elvish),
            Generate::Powershell => Some(clap_complete::Shell::PowerShell),
        }
    }
}

/// `runonce --generate WHAT` or `--generate=WHAT`, and nothing else on the
/// line: None if the command line is not a `--generate` request, else the
/// request or a one-line usage error.
pub fn request(args: &[OsString]) -> Option<Result<Generate, String>> {
    let first = args.get(1)?.to_str()?;
    let (value, extra) = if first == "--generate" {
        (args.get(2).map(|v| v.to_string_lossy().into_owned()), args.get(3..))
    } else {
        (Some(first.strip_prefix("--generate=")?.to_owned()), args.get(2..))
    };
    let names = Generate::ALL.map(Generate::name).join(", ");
    let Some(value) = value else {
        return Some(Err(format!("--generate: missing value: expected one of {names}")));
    };
    let Some(what) = Generate::ALL.into_iter().find(|g| g.name() == value) else {
        return Some(Err(format!("--generate: invalid value '{value}': expected one of {names}")));
    };
    if let Some(arg) = extra.and_then(<[OsString]>::first) {
        return Some(Err(format!(
            "--generate: unexpected argument '{}': it takes exactly one of {names}",
            arg.to_string_lossy()
        )));
    }
    Some(Ok(what))
}

/// The option the completion scripts run for the names of the jobs
/// (`runonce --job-names`, alone): looked for before clap parses the
/// command line, as `--generate` is, so that TAB never offers it.
pub const JOB_NAMES: &str = "--job-names";

pub fn job_names_request(args: &[OsString]) -> bool {
    args.len() == 2 && args[1] == JOB_NAMES
}

/// Stands for the job names in a generated script until `ask_for_jobs`
/// puts in the shell's way of asking runonce for them.
const JOBS: &str = "@JOBS@";

/// The man page or completion script, as committed.
pub fn render(what: Generate) -> Vec<u8> {
    match what.shell() {
        None => man().into_bytes(),
        Some(shell) => {
            let dynamic = matches!(what, Generate::Bash | Generate::Zsh | Generate::Fish);
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut completion_command(dynamic), "runonce", &mut out);
            if dynamic { ask_for_jobs(what, &out) } else { out }
        }
    }
}

/// The job names of `--status` and `--forget` come from the lock and state
/// directories when TAB is pressed: the placeholder becomes a call of
/// `runonce --job-names` in the shell's syntax.
fn ask_for_jobs(what: Generate, script: &[u8]) -> Vec<u8> {
    let ask = format!("runonce {JOB_NAMES} 2>/dev/null");
    let (placeholder, call) = match what {
        // inside compgen -W "..."
        Generate::Bash => (JOBS.to_string(), format!("$({ask})")),
        // an _arguments action in braces is run as shell code
        Generate::Zsh => (format!("({JOBS})"), format!("{{compadd -- ${{(f)\"$({ask})\"}}}}")),
        // complete -a runs command substitutions when TAB is pressed
        _ => (JOBS.to_string(), format!("({ask})")),
    };
    String::from_utf8_lossy(script).replace(&placeholder, &call).into_bytes()
}

/// The hand-written part of the man page, with marker lines for the parts
/// clap_mangen renders from the definition.
const TEMPLATE: &str = include_str!("../man/runonce.1.in");

/// The string definition roff's apostrophe escape needs; clap_mangen puts it
/// in front of every part it renders, the page needs it once.
const ROFF_PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

fn man() -> String {
    let page = clap_mangen::Man::new(cli::command()).title("RUNONCE").manual("User Commands");
    let part = |render: &dyn Fn(&mut Vec<u8>) -> std::io::Result<()>| {
        let mut out = Vec::new();
        // writing to a Vec cannot fail
        let _ = render(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        text.strip_prefix(ROFF_PREAMBLE).map(str::to_owned).unwrap_or(text)
    };
    let mut text = String::with_capacity(TEMPLATE.len() * 2);
    for line in TEMPLATE.lines() {
        match line {
            "@TITLE@" => {
                text.push_str(ROFF_PREAMBLE);
                text.push_str(&part(&|w| page.render_title(w)));
            }
            "@NAME@" => text.push_str(&part(&|w| page.render_name_section(w))),
            "@SYNOPSIS@" => text.push_str(&part(&|w| page.render_synopsis_section(w))),
            "@OPTIONS@" => {
                text.push_str(&groups_as_subsections(&part(&|w| page.render_options_section(w))));
            }
            _ => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    text
}

/// clap_mangen makes each help heading a section of its own, beside the
/// hand-written ones (the template's RESOURCE LIMITS would appear twice):
/// they become subsections of OPTIONS, named as in `--help`.
fn groups_as_subsections(options: &str) -> String {
    let cmd = cli::command();
    let headings: Vec<&str> = cmd.get_arguments().filter_map(|a| a.get_help_heading()).collect();
    let mut out = String::with_capacity(options.len());
    for line in options.lines() {
        let title = line.strip_prefix(".SH ").map(|t| t.trim_matches('"'));
        match title.and_then(|t| headings.iter().find(|h| h.to_uppercase() == t)) {
            Some(heading) => out.push_str(&format!(".SS \"{heading}\"\n")),
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// The definition with value hints for the shells: no file-name completion
/// for durations, sizes, names and counts, directories for DIR, and the
/// command's own completion after COMMAND.  The hints follow from the value
/// names, so a new option gets the right one without an entry here.  The
/// values of `--signal` and `--log` are offered, and with `jobs` the job
/// names for `--status` and `--forget` (see `ask_for_jobs`).
fn completion_command(jobs: bool) -> clap::Command {
    let mut cmd = cli::command()
        .mut_arg("signal", |a| {
            a.value_parser(PossibleValuesParser::new(parse::SIGNALS.iter().map(|(name, _)| *name)))
        })
        .mut_arg("log", |a| a.value_parser(["syslog", "stderr", "json:", "none"]));
    if jobs {
        for id in ["status", "forget"] {
            cmd = cmd.mut_arg(id, |a| a.value_parser([JOBS]));
        }
    }
    let hints: Vec<(String, ValueHint)> = cmd
        .get_arguments()
        .filter(|a| a.get_action().takes_values())
        .map(|a| {
            let value_name = a.get_value_names().and_then(|v| v.first()).map(|s| s.as_str());
            let hint = match value_name {
                Some("COMMAND") => ValueHint::CommandWithArguments,
                Some("PATH") => ValueHint::FilePath,
                Some("DIR") => ValueHint::DirPath,
                _ => ValueHint::Other,
            };
            (a.get_id().to_string(), hint)
        })
        .collect();
    for (id, hint) in hints {
        cmd = cmd.mut_arg(id, |a| a.value_hint(hint));
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        std::iter::once("runonce").chain(v.iter().copied()).map(OsString::from).collect()
    }

    #[test]
    fn generate_requests() {
        assert_eq!(request(&args(&["--generate", "man"])), Some(Ok(Generate::Man)));
        assert_eq!(request(&args(&["--generate=zsh"])), Some(Ok(Generate::Zsh)));
        assert!(request(&args(&["--generate"])).unwrap().is_err());
        assert!(request(&args(&["--generate", "tcsh"])).unwrap().is_err());
        assert!(request(&args(&["--generate", "man", "x"])).unwrap().is_err());
        assert!(request(&args(&["--generate=man", "x"])).unwrap().is_err());
        assert_eq!(request(&args(&["--", "--generate", "man"])), None);
        assert_eq!(request(&args(&["-t", "5", "--generate", "man"])), None);
        assert_eq!(request(&args(&[])), None);
    }

    #[test]
    fn completion_definition_is_consistent() {
        completion_command(false).debug_assert();
        completion_command(true).debug_assert();
    }

    #[test]
    fn man_markers_all_filled() {
        let page = man();
        assert!(!page.lines().any(|l| l.starts_with('@') && l.ends_with('@')), "marker left");
        assert_eq!(page.matches(".ds Aq").count(), 2, "the apostrophe preamble once");
        assert!(page.starts_with("'\\\" t\n"), "tbl hint must be the first line");
        let sections: Vec<&str> = page.lines().filter(|l| l.starts_with(".SH ")).collect();
        for s in &sections {
            assert_eq!(sections.iter().filter(|t| *t == s).count(), 1, "{s} twice");
        }
        assert!(page.contains(".SS \"Resource limits\"\n"), "option groups are subsections");
    }
}
