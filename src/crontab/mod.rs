//! `--check-crontab` and `--fix-crontab`: find the crontab lines that run
//! without runonce, say what they risk, and rewrite them (man page,
//! CRONTAB).
//!
//! `parse` reads a crontab as Debian's cron does, `schedule` knows when a
//! line runs, `shell` reads its command, `verdict` says what protects it,
//! `rewrite` makes the safe line, `report` prints, `files` reads and
//! writes.

pub mod files;
pub mod parse;
pub mod report;
pub mod rewrite;
pub mod schedule;
pub mod shell;
pub mod verdict;

use std::path::{Path, PathBuf};

use crate::exit_code::Exit;
use crate::ui;
use parse::{Crontab, Kind, SystemUsers};
use report::Checked;

/// `runonce --check-crontab [FILE]... [--json]`.
pub fn check(paths: &[PathBuf], json: bool) -> Exit {
    let sources = if paths.is_empty() { default_sources() } else { given(paths) };
    let checked: Vec<Checked> = sources.into_iter().map(load).collect();
    let ok = if json {
        let mut text = serde_json::to_string_pretty(&report::json(&checked)).unwrap_or_default();
        text.push('\n');
        ui::print(&text)
    } else {
        crate::sys::write_all_fd(1, &report::text(&checked)).is_ok()
    };
    if ok { report::status(&checked) } else { Exit::OwnFailure }
}

enum Source {
    Stdin,
    CrontabL,
    File(PathBuf),
}

fn given(paths: &[PathBuf]) -> Vec<Source> {
    paths
        .iter()
        .map(|p| if p.as_os_str() == "-" { Source::Stdin } else { Source::File(p.clone()) })
        .collect()
}

/// The caller's crontab, and for root also the system's.
fn default_sources() -> Vec<Source> {
    let mut out = vec![Source::CrontabL];
    if crate::sys::geteuid() == 0 {
        if Path::new(files::SYSTEM_CRONTAB).exists() {
            out.push(Source::File(files::SYSTEM_CRONTAB.into()));
        }
        out.extend(
            files::cron_d_files(Path::new(files::SYSTEM_CRON_DIR)).into_iter().map(Source::File),
        );
    }
    out
}

fn load(source: Source) -> Checked {
    let mut prefix = None;
    let (label, kind, content, mut warnings) = match source {
        Source::Stdin => ("-".to_string(), Kind::User, files::read_stdin(), Vec::new()),
        Source::CrontabL => ("crontab -l".to_string(), Kind::User, files::crontab_l(), Vec::new()),
        Source::File(path) => {
            let kind = files::kind_of(&path);
            let warnings =
                if kind == Kind::System { files::system_file_problems(&path) } else { Vec::new() };
            prefix = files::name_prefix(&path);
            (path.display().to_string(), kind, files::read(&path), warnings)
        }
    };
    let crontab = content.map(|c| parse::parse(&c, kind, &SystemUsers));
    let reviews = match &crontab {
        Ok(c) if c.is_valid() => rewrite::review(c, prefix.as_deref()),
        _ => Vec::new(),
    };
    if let Ok(c) = &crontab {
        warnings.extend(path_warning(c, first_fixed(&reviews)));
    }
    Checked { label, kind, crontab, reviews, warnings }
}

fn first_fixed(reviews: &[rewrite::Review]) -> Option<usize> {
    reviews.iter().find(|r| matches!(r.fix, Some(Ok(_)))).map(|r| r.index)
}

/// Rewritten lines call `runonce` by name: say so when cron's PATH for
/// them (from line `first_fixed` on) would not find it.
fn path_warning(crontab: &Crontab, first_fixed: Option<usize>) -> Option<String> {
    let path = rewrite::path_at(crontab, first_fixed?);
    (!files::runonce_in_path(&path)).then(|| {
        format!(
            "runonce is not in the PATH cron gives these jobs ({}): add its directory to a PATH= line",
            String::from_utf8_lossy(&path)
        )
    })
}

/// The fixed file, and the lines left as they were with why.
pub struct Fix {
    pub content: Vec<u8>,
    pub rewritten: usize,
    /// Line numbers and why.
    pub left: Vec<(usize, String)>,
    /// Index of the first rewritten line.
    pub first_fixed: Option<usize>,
}

/// What `--fix-crontab` makes of a crontab cron accepts (`prefix`: see
/// `rewrite::review`).
pub fn fix_crontab(crontab: &Crontab, prefix: Option<&str>) -> Fix {
    let reviews = rewrite::review(crontab, prefix);
    let mut left = Vec::new();
    let mut rewritten = 0;
    for r in &reviews {
        match &r.fix {
            Some(Ok(_)) => rewritten += 1,
            Some(Err(why)) => left.push((crontab.lines[r.index].number, why.clone())),
            None => {}
        }
    }
    let mut new_lines = vec![None; crontab.lines.len()];
    for r in &reviews {
        if let Some(Ok(f)) = &r.fix {
            new_lines[r.index] = Some(f.line.clone());
        }
    }
    // line numbers are 1-based indexes
    let content = crontab.render(|line| new_lines[line.number - 1].take());
    Fix { content, rewritten, left, first_fixed: first_fixed(&reviews) }
}

/// What `crontab -` makes of `--fix-crontab -`'s output when it fails: a
/// line cron rejects, so that `crontab -l | runonce --fix-crontab - |
/// crontab -` keeps the crontab it had instead of installing an empty one.
const REFUSED: &[u8] = b"runonce --fix-crontab failed: the crontab is left as it was\n";

/// `runonce --fix-crontab FILE|-`.
pub fn fix(path: &Path) -> Exit {
    if path.as_os_str() == "-" {
        let status = fix_stdin();
        if status == Exit::OwnFailure {
            let _ = crate::sys::write_all_fd(1, REFUSED);
        }
        return status;
    }
    let label = path.display().to_string();
    let original = match files::read_original(path) {
        Ok(o) => o,
        Err(e) => {
            ui::warn(&format!("--fix-crontab: {e}"));
            return Exit::OwnFailure;
        }
    };
    let kind = files::kind_of(path);
    let crontab = parse::parse(&original.content, kind, &SystemUsers);
    if !valid(&crontab, &label) {
        return Exit::OwnFailure;
    }
    let prefix = files::name_prefix(path);
    let fixed = fix_crontab(&crontab, prefix.as_deref());
    report_left(&label, &fixed.left);
    if fixed.content == original.content {
        ui::print(&format!("{label}: nothing to rewrite\n"));
        return left_or_success(&fixed.left);
    }
    match original.replace(&fixed.content) {
        Ok(backup) => {
            let lines = if fixed.rewritten == 1 { "line" } else { "lines" };
            ui::print(&format!(
                "{label}: {} {lines} rewritten; the original is in {}\n",
                fixed.rewritten,
                backup.display()
            ));
            if let Some(w) = path_warning(&crontab, fixed.first_fixed) {
                ui::warn(&format!("{label}: {w}"));
            }
            if kind == Kind::System && lsb_names() {
                ui::warn(&format!(
                    "{label}: cron runs with -l (LSB names): it also reads {}; move it out of the directory",
                    backup.display()
                ));
            }
            left_or_success(&fixed.left)
        }
        Err(e) => {
            ui::warn(&format!("--fix-crontab: {e}"));
            Exit::OwnFailure
        }
    }
}

fn fix_stdin() -> Exit {
    let content = match files::read_stdin() {
        Ok(c) => c,
        Err(e) => {
            ui::warn(&format!("--fix-crontab: {e}"));
            return Exit::OwnFailure;
        }
    };
    let crontab = parse::parse(&content, Kind::User, &SystemUsers);
    if !valid(&crontab, "-") {
        return Exit::OwnFailure;
    }
    let fixed = fix_crontab(&crontab, None);
    report_left("-", &fixed.left);
    if crate::sys::write_all_fd(1, &fixed.content).is_err() {
        return Exit::OwnFailure;
    }
    if let Some(w) = path_warning(&crontab, fixed.first_fixed) {
        ui::warn(&format!("-: {w}"));
    }
    left_or_success(&fixed.left)
}

/// `--fix-crontab`'s status once written: 1 if lines are left unprotected.
fn left_or_success<T>(left: &[T]) -> Exit {
    if left.is_empty() { Exit::Success } else { Exit::No }
}

/// Says why a file is not a crontab cron would load; false then.
fn valid(crontab: &Crontab, label: &str) -> bool {
    for p in &crontab.problems {
        ui::warn(&format!("--fix-crontab: {label}: not a crontab: {}", p.describe()));
    }
    for line in &crontab.lines {
        if let parse::Item::Rejected(why) = line.item {
            ui::warn(&format!(
                "--fix-crontab: {label}:{}: cron rejects this line ({why}) and ignores the whole file; nothing rewritten",
                line.number
            ));
        }
    }
    crontab.is_valid()
}

fn report_left(label: &str, left: &[(usize, String)]) {
    for (number, why) in left {
        ui::warn(&format!("{label}:{number}: left as it was: {why}"));
    }
}

/// Whether /etc/default/cron starts cron with `-l`, under which
/// `NAME.runonce-bak` is a name it reads in /etc/cron.d.
fn lsb_names() -> bool {
    let Ok(text) = std::fs::read_to_string("/etc/default/cron") else { return false };
    text.lines().map(str::trim).filter(|l| l.starts_with("EXTRA_OPTS=")).any(|l| {
        l.trim_start_matches("EXTRA_OPTS=")
            .trim_matches(['"', '\''])
            .split_whitespace()
            .any(|w| w.starts_with('-') && !w.starts_with("--") && w.contains('l'))
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::cli::{self, Cli};

    fn parse(args: &[&str]) -> Result<Cli, cli::Rejected> {
        cli::parse(std::iter::once("runonce").chain(args.iter().copied()).map(Into::into).collect())
    }

    #[test]
    fn command_line_forms() {
        assert_eq!(parse(&["--check-crontab"]).unwrap().check_crontab, Some(vec![]));
        let c = parse(&["--check-crontab", "/etc/crontab", "-", "--json"]).unwrap();
        assert_eq!(c.check_crontab, Some(vec![PathBuf::from("/etc/crontab"), PathBuf::from("-")]));
        assert!(c.json);
        assert!(parse(&["--json", "--check-crontab", "f"]).unwrap().json);
        // options in any order, as for --status
        let c = parse(&["--check-crontab", "--json", "a", "b"]).unwrap();
        assert_eq!(c.check_crontab, Some(vec![PathBuf::from("a"), PathBuf::from("b")]));
        assert!(c.command.is_empty());
        assert_eq!(parse(&["--fix-crontab", "-"]).unwrap().fix_crontab, Some(PathBuf::from("-")));
        for bad in [
            &["--fix-crontab", "f", "--json"][..],
            &["--fix-crontab"],
            &["--check-crontab", "--status"],
            &["--fix-crontab", "f", "--check-crontab"],
            &["--fix-crontab", "f", "--", "ls"],
            &["--fix-crontab", "f", "--status"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
