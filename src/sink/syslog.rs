//! `--log syslog` (the default): each record as one line to the syslog
//! socket, with a severity from its outcome.  Unreachable, it falls back to
//! stderr for the runs that went wrong only (cron mails stderr).

use std::path::PathBuf;
use std::time::Duration;

use super::{Sink, Warned};
use crate::record::{Event, Outcome, Record};
use crate::ui;

type Conn = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

/// How long a record may wait for a syslog daemon that does not read its
/// socket: a stuck daemon must not keep the job's lock held forever.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

enum State {
    NotTried,
    Connected(Conn),
    /// Unreachable: failed runs go to stderr instead (warned once).
    Unreachable,
}

pub struct Syslog {
    facility: syslog::Facility,
    socket: PathBuf,
    state: State,
    /// Fall back to stderr (stderr is not a sink of its own).
    fallback: bool,
    warned: Warned,
    /// Attempt records held back from stderr until the run's outcome is
    /// known: a run that succeeds on a retry must not cause cron mail.
    held_attempts: Vec<String>,
}

impl Syslog {
    pub fn new(facility: syslog::Facility, socket: PathBuf, fallback: bool) -> Syslog {
        Syslog {
            facility,
            socket,
            state: State::NotTried,
            fallback,
            warned: Warned::default(),
            held_attempts: Vec::new(),
        }
    }

    fn connect(&mut self) {
        let formatter = syslog::Formatter3164 {
            facility: self.facility,
            hostname: None,
            process: "runonce".into(),
            pid: std::process::id(),
        };
        self.state = match syslog::unix_custom(formatter, &self.socket) {
            Ok(conn) => {
                bound_sends(&conn.backend);
                State::Connected(conn)
            }
            Err(_) => State::Unreachable,
        };
    }

    /// Syslog is unreachable.  cron mails stderr: only runs that went wrong
    /// may speak there (with their failed attempts, if they were retried).
    fn fall_back_to_stderr(&mut self, rec: &Record, words: String) {
        let failed = rec.outcome.is_some_and(|o| !o.is_quiet());
        match rec.event {
            Event::Start => {}
            Event::Attempt => self.held_attempts.push(words),
            Event::Finish if failed => {
                self.warned.once(format!(
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

impl Sink for Syslog {
    fn emit(&mut self, rec: &Record) {
        if let State::NotTried = self.state {
            self.connect();
        }
        // escaped as on stderr: a newline or an escape sequence in an
        // argument must not forge a record or reach a terminal raw
        let words = ui::one_line(&rec.to_words());
        let sent = match &mut self.state {
            State::Connected(conn) => match record_severity(rec) {
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
        self.state = State::Unreachable;
        if self.fallback {
            self.fall_back_to_stderr(rec, words);
        }
    }
}

fn bound_sends(backend: &syslog::LoggerBackend) {
    let _ = match backend {
        syslog::LoggerBackend::Unix(sock) => sock.set_write_timeout(Some(SEND_TIMEOUT)),
        syslog::LoggerBackend::UnixStream(w) => w.get_ref().set_write_timeout(Some(SEND_TIMEOUT)),
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

    /// `--lock-url-optional`: a run that went on without its lease is a
    /// warning even when it succeeded; a worse outcome keeps its own.
    #[test]
    fn a_run_without_its_lease_is_at_least_a_warning() {
        let rec = |outcome, lease_error: Option<&str>| Record {
            event: Event::Finish,
            outcome: Some(outcome),
            lease_error: lease_error.map(String::from),
            ..Record::default()
        };
        assert_eq!(record_severity(&rec(Outcome::Ok, None)), Severity::Info);
        assert_eq!(record_severity(&rec(Outcome::Ok, Some("refused"))), Severity::Warning);
        assert_eq!(record_severity(&rec(Outcome::Failed, None)), Severity::Warning);
        assert_eq!(record_severity(&rec(Outcome::Timeout, Some("refused"))), Severity::Err);
    }
}
