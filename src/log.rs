//! Where records go (cli.md section 6): syslog (default), stderr, a JSON
//! lines file, or nowhere.  A sink that fails never fails the job.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::files;
use crate::parse::LogTarget;
use crate::record::{Event, Outcome, Record};
use crate::ui;

type SyslogConn = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

enum Syslog {
    NotTried,
    Connected(SyslogConn),
    /// Unreachable: failed runs go to stderr instead (warned once).
    Unreachable,
}

pub struct Logger {
    targets: Vec<LogTarget>,
    facility: syslog::Facility,
    socket: PathBuf,
    syslog: Syslog,
    warned: Vec<String>,
    /// Attempt records held back from stderr until the run's outcome is
    /// known: a run that succeeds on a retry must not cause cron mail.
    held_attempts: Vec<String>,
}

impl Logger {
    pub fn new(targets: Vec<LogTarget>, facility: syslog::Facility, socket: PathBuf) -> Logger {
        Logger {
            targets,
            facility,
            socket,
            syslog: Syslog::NotTried,
            warned: Vec::new(),
            held_attempts: Vec::new(),
        }
    }

    pub fn emit(&mut self, rec: &Record) {
        for target in self.targets.clone() {
            match target {
                LogTarget::None => {}
                LogTarget::Stderr => ui::say(&rec.to_words()),
                LogTarget::Json(path) => self.json(&path, rec),
                LogTarget::Syslog => self.syslog(rec),
            }
        }
    }

    /// Warns once per distinct problem, so a broken sink says so a single time.
    fn warn_once(&mut self, msg: String) {
        if !self.warned.contains(&msg) {
            ui::warn(&msg);
            self.warned.push(msg);
        }
    }

    /// One JSON object a line, appended with O_APPEND in a single write, so
    /// that records of concurrent jobs never interleave; on a fresh line
    /// even if an earlier write was cut short (a full disk), so that one
    /// torn record never takes the next with it.  Never through a link,
    /// never into a FIFO (files.rs).  The flock taken meanwhile is on the
    /// log, so it only orders runonce's own writers.
    fn json(&mut self, path: &Path, rec: &Record) {
        let line = rec.to_json();
        let result = files::open_append(path, 0o644).and_then(|mut f| {
            // runonce's writers take turns to look at the end and append: a
            // record another is writing would look torn half-way through
            let _turn = f.try_clone().and_then(|c| files::lock_within(c, JSON_PATIENCE)).ok();
            let text = if ends_open(&f) { format!("\n{line}\n") } else { format!("{line}\n") };
            f.write_all(text.as_bytes())
        });
        if let Err(e) = result {
            self.warn_once(format!("--log json:{}: cannot write: {e}", path.display()));
        }
    }

    fn syslog(&mut self, rec: &Record) {
        if let Syslog::NotTried = self.syslog {
            let formatter = syslog::Formatter3164 {
                facility: self.facility,
                hostname: None,
                process: "runonce".into(),
                pid: std::process::id(),
            };
            self.syslog = match syslog::unix_custom(formatter, &self.socket) {
                Ok(conn) => {
                    bound_sends(&conn.backend);
                    Syslog::Connected(conn)
                }
                Err(_) => Syslog::Unreachable,
            };
        }
        // escaped as on stderr: a newline or an escape sequence in an
        // argument must not forge a record or reach a terminal raw
        let words = ui::one_line(&rec.to_words());
        let sent = match &mut self.syslog {
            Syslog::Connected(conn) => match record_severity(rec) {
                Severity::Info => conn.info(&words),
                Severity::Warning => conn.warning(&words),
                Severity::Err => conn.err(&words),
            }
            .is_ok(),
            _ => false,
        };
        if sent {
            return;
        }
        self.syslog = Syslog::Unreachable;
        if !self.targets.contains(&LogTarget::Stderr) {
            self.fall_back_to_stderr(rec, words);
        }
    }

    /// Syslog is unreachable.  cron mails stderr: only runs that went wrong
    /// may speak there (with their failed attempts, if they were retried).
    fn fall_back_to_stderr(&mut self, rec: &Record, words: String) {
        let failed = rec.outcome.is_some_and(|o| !o.is_quiet());
        match rec.event {
            Event::Start => {}
            Event::Attempt => self.held_attempts.push(words),
            Event::Finish if failed => {
                self.warn_once(format!(
                    "syslog unreachable at {}: records of failed runs go to stderr",
                    self.socket.display()
                ));
                for attempt in std::mem::take(&mut self.held_attempts) {
                    ui::say(&attempt);
                }
                ui::say(&words);
            }
            Event::Finish => self.held_attempts.clear(),
        }
    }
}

/// How long a record waits for another runonce's append to the same file.
const JSON_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// The file is not empty and its last byte is not a newline.
fn ends_open(file: &std::fs::File) -> bool {
    use std::os::unix::fs::FileExt;
    let Ok(len) = file.metadata().map(|m| m.len()) else { return false };
    let mut last = [0u8; 1];
    len > 0 && file.read_at(&mut last, len - 1).is_ok_and(|n| n == 1 && last[0] != b'\n')
}

/// How long a record may wait for a syslog daemon that does not read its
/// socket: a stuck daemon must not keep the job's lock held forever.
const SYSLOG_SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

fn bound_sends(backend: &syslog::LoggerBackend) {
    let _ = match backend {
        syslog::LoggerBackend::Unix(sock) => sock.set_write_timeout(Some(SYSLOG_SEND_TIMEOUT)),
        syslog::LoggerBackend::UnixStream(w) => {
            w.get_ref().set_write_timeout(Some(SYSLOG_SEND_TIMEOUT))
        }
        _ => Ok(()),
    };
}

#[derive(Debug, PartialEq, Eq)]
enum Severity {
    Info,
    Warning,
    Err,
}

/// A run that went on without its fleet lease is worth a warning, even
/// when it succeeds.
fn record_severity(rec: &Record) -> Severity {
    match severity(rec.outcome) {
        Severity::Info if rec.lease_error.is_some() => Severity::Warning,
        s => s,
    }
}

fn severity(outcome: Option<Outcome>) -> Severity {
    match outcome {
        None | Some(Outcome::Ok | Outcome::Skipped | Outcome::Cooldown) => Severity::Info,
        Some(Outcome::Failed) => Severity::Warning,
        Some(_) => Severity::Err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities() {
        for (o, want) in [
            (Outcome::Ok, Severity::Info),
            (Outcome::Skipped, Severity::Info),
            (Outcome::Cooldown, Severity::Info),
            (Outcome::Failed, Severity::Warning),
            (Outcome::Timeout, Severity::Err),
            (Outcome::Idle, Severity::Err),
            (Outcome::Signaled, Severity::Err),
            (Outcome::Error, Severity::Err),
            (Outcome::LostLock, Severity::Err),
        ] {
            assert_eq!(severity(Some(o)), want, "{o:?}");
        }
        assert_eq!(severity(None), Severity::Info, "start records");
    }
}
