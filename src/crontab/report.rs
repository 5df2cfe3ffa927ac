//! What `--check-crontab` prints: per file, each job line with its
//! verdict, what it risks and its safe rewrite; as text or as JSON.

use serde_json::{Value, json};

use crate::exit_code::Exit;

use super::parse::{Crontab, Item, Kind};
use super::rewrite::Review;
use super::schedule::describe_minutes;
use super::verdict::{Missing, Verdict};

/// One crontab source and what was found in it.
pub struct Checked {
    /// The file name, `-`, or `crontab -l`.
    pub label: String,
    pub kind: Kind,
    /// The crontab, or why it could not be read.
    pub crontab: Result<Crontab, String>,
    pub reviews: Vec<Review>,
    /// Facts about the file that change no verdict.
    pub warnings: Vec<String>,
}

#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Counts {
    pub protected: usize,
    pub partial: usize,
    pub unprotected: usize,
    pub rejected: usize,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.protected += other.protected;
        self.partial += other.partial;
        self.unprotected += other.unprotected;
        self.rejected += other.rejected;
    }

    fn json(self) -> Value {
        json!({
            "protected": self.protected,
            "partial": self.partial,
            "unprotected": self.unprotected,
            "rejected": self.rejected,
        })
    }

    fn text(self) -> String {
        let jobs = self.protected + self.partial + self.unprotected;
        let mut s = format!(
            "{jobs} job{}: {} protected, {} partly protected, {} unprotected",
            if jobs == 1 { "" } else { "s" },
            self.protected,
            self.partial,
            self.unprotected
        );
        if self.rejected > 0 {
            s.push_str(&format!(
                "; {} line{} cron rejects",
                self.rejected,
                if self.rejected == 1 { "" } else { "s" }
            ));
        }
        s
    }
}

impl Checked {
    /// Not a crontab cron would load (or not readable at all).
    pub fn failed(&self) -> bool {
        self.crontab.as_ref().map_or(true, |c| !c.is_valid())
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        if let Ok(crontab) = &self.crontab {
            c.rejected =
                crontab.lines.iter().filter(|l| matches!(l.item, Item::Rejected(_))).count();
        }
        for r in &self.reviews {
            match r.assessment.verdict {
                Verdict::Protected => c.protected += 1,
                Verdict::Partial => c.partial += 1,
                Verdict::Unprotected => c.unprotected += 1,
                Verdict::Empty => {}
            }
        }
        c
    }
}

/// Exit status of a check: 125 if a source is not a crontab, else 1 if a
/// job line is not protected by runonce, else 0.
pub fn status(all: &[Checked]) -> Exit {
    if all.iter().any(Checked::failed) {
        return Exit::OwnFailure;
    }
    let c = totals(all);
    if c.partial + c.unprotected > 0 { Exit::No } else { Exit::Success }
}

fn totals(all: &[Checked]) -> Counts {
    let mut total = Counts::default();
    for c in all {
        total.add(c.counts());
    }
    total
}

/// What a line risks, from what it lacks and how often it runs.
pub fn risks(r: &Review) -> Vec<String> {
    let a = &r.assessment;
    let every = r.interval.map(describe_minutes);
    let mut out = Vec::new();
    for m in &a.missing {
        match m {
            Missing::Lock if r.reboot => {}
            Missing::Lock => out.push(match &every {
                Some(e) => format!("no lock: a run longer than {e} overlaps the next one"),
                None => "no lock: runs can overlap".into(),
            }),
            Missing::Timeout => {
                if a.missing.contains(&Missing::Lock) || r.reboot {
                    out.push("no timeout: a run that hangs is never stopped".into());
                } else {
                    out.push("no timeout: a run that hangs holds the lock, and every later run is skipped or waits".into());
                }
            }
            Missing::Record => {
                out.push("no record: nothing says when it ran, how long, or how it ended".into())
            }
        }
    }
    let kept = a.plan.as_ref().ok().and_then(|p| p.options.timeout.as_deref());
    if let (Some(t), Some(minutes)) = (kept, r.interval)
        && crate::parse::duration(t).is_ok_and(|d| d.as_secs() > minutes * 60)
    {
        out.push(format!(
            "its timeout {t} is longer than the {} between runs: under runonce the runs due meanwhile are skipped",
            describe_minutes(minutes)
        ));
    }
    if a.by.iter().any(|b| b.starts_with("timeout")) {
        out.push(
            "timeout(1) signals one process group: a child that calls setsid survives it".into(),
        );
    }
    out
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn text(all: &[Checked]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    for c in all {
        let kind = match c.kind {
            Kind::System => "system crontab, with a user field",
            Kind::User => "user crontab",
        };
        out.extend_from_slice(format!("{} ({kind}):\n", c.label).as_bytes());
        let crontab = match &c.crontab {
            Ok(crontab) => crontab,
            Err(e) => {
                out.extend_from_slice(format!("  not a crontab: {e}\n\n").as_bytes());
                continue;
            }
        };
        for w in &c.warnings {
            out.extend_from_slice(format!("  note: {w}\n").as_bytes());
        }
        for p in &crontab.problems {
            out.extend_from_slice(format!("  not a crontab: {}\n", p.describe()).as_bytes());
        }
        let mut reviews = c.reviews.iter().peekable();
        for (i, line) in crontab.lines.iter().enumerate() {
            let head = format!("  line {}: ", line.number);
            match &line.item {
                Item::Rejected(why) => {
                    out.extend_from_slice(
                        format!(
                            "{head}rejected by cron ({why}): cron ignores the whole file\n    "
                        )
                        .as_bytes(),
                    );
                    out.extend_from_slice(&line.text);
                    out.push(b'\n');
                }
                Item::Job(_) => {
                    let Some(r) = reviews.next_if(|r| r.index == i) else { continue };
                    line_text(&mut out, &head, &line.text, r);
                }
                _ => {}
            }
        }
        out.extend_from_slice(format!("  {}\n\n", c.counts().text()).as_bytes());
    }
    if all.len() > 1 {
        out.extend_from_slice(format!("total: {}\n", totals(all).text()).as_bytes());
    }
    out
}

fn line_text(out: &mut Vec<u8>, head: &str, text: &[u8], r: &Review) {
    let a = &r.assessment;
    let verdict = match a.verdict {
        Verdict::Protected => "protected by runonce".to_string(),
        Verdict::Partial => format!("partly protected (by {})", a.by.join(", ")),
        Verdict::Unprotected => "unprotected".into(),
        Verdict::Empty => "no command".into(),
    };
    out.extend_from_slice(format!("{head}{verdict}\n    ").as_bytes());
    out.extend_from_slice(text);
    out.push(b'\n');
    if a.verdict == Verdict::Partial {
        let missing: Vec<&str> = a.missing.iter().map(|m| m.key()).collect();
        if !missing.is_empty() {
            out.extend_from_slice(format!("    missing: {}\n", missing.join(", ")).as_bytes());
        }
    }
    for risk in risks(r) {
        out.extend_from_slice(format!("    risk: {risk}\n").as_bytes());
    }
    for note in &a.notes {
        out.extend_from_slice(format!("    note: {note}\n").as_bytes());
    }
    match &r.fix {
        Some(Ok(fixed)) => {
            out.extend_from_slice(b"    fix:  ");
            out.extend_from_slice(&fixed.line);
            out.push(b'\n');
        }
        Some(Err(why)) => {
            out.extend_from_slice(format!("    no automatic fix: {why}\n").as_bytes());
        }
        None => {}
    }
}

pub fn json(all: &[Checked]) -> Value {
    let files: Vec<Value> = all.iter().map(file_json).collect();
    json!({
        "files": files,
        "counts": totals(all).json(),
        "exit": status(all).code(),
    })
}

fn file_json(c: &Checked) -> Value {
    let kind = match c.kind {
        Kind::System => "system",
        Kind::User => "user",
    };
    let crontab = match &c.crontab {
        Ok(crontab) => crontab,
        Err(e) => {
            return json!({
                "file": c.label, "kind": kind, "crontab": false, "error": e,
                "problems": [], "warnings": c.warnings, "jobs": [], "counts": Counts::default().json(),
            });
        }
    };
    let mut jobs = Vec::new();
    let mut reviews = c.reviews.iter().peekable();
    for (i, line) in crontab.lines.iter().enumerate() {
        match &line.item {
            Item::Rejected(why) => jobs.push(json!({
                "line": line.number, "text": lossy(&line.text), "verdict": "rejected", "error": why,
            })),
            Item::Job(job) => {
                let Some(r) = reviews.next_if(|r| r.index == i) else { continue };
                let a = &r.assessment;
                let (fix, name, timeout, unfixable) = match &r.fix {
                    Some(Ok(f)) => {
                        (Some(lossy(&f.line)), Some(f.name.clone()), f.timeout.clone(), None)
                    }
                    Some(Err(why)) => (None, None, None, Some(why.clone())),
                    None => (None, None, None, None),
                };
                jobs.push(json!({
                    "line": line.number,
                    "text": lossy(&line.text),
                    "schedule": lossy(&line.text[job.when.clone()]),
                    "user": job.user.as_deref().map(lossy),
                    "command": lossy(job.command(&line.text)),
                    "interval_minutes": r.interval,
                    "verdict": a.verdict.key(),
                    "by": a.by,
                    "missing": a.missing.iter().map(|m| m.key()).collect::<Vec<_>>(),
                    "risks": risks(r),
                    "notes": a.notes,
                    "fix": fix,
                    "name": name,
                    "timeout": timeout,
                    "unfixable": unfixable,
                }));
            }
            _ => {}
        }
    }
    json!({
        "file": c.label,
        "kind": kind,
        "crontab": crontab.is_valid(),
        "error": null,
        "problems": crontab.problems.iter().map(|p| p.describe()).collect::<Vec<_>>(),
        "warnings": c.warnings,
        "jobs": jobs,
        "counts": c.counts().json(),
    })
}
