//! Where records go (man page, OUTPUT AND RECORDS): one [`Sink`] per
//! `--log` target, each in a file of its own (syslog, stderr, a JSON lines
//! file, none).  A sink that fails never fails the job: it says so once on
//! stderr, and syslog falls back to stderr for the runs that went wrong.
//! Adding a destination is a file here and a `LogTarget` variant.
//! `--ping` is not one of them: it needs the job's output and must be
//! done before the finish record is written (docs/ARCHITECTURE.md, Sinks).

mod json;
mod none;
mod stderr;
mod syslog;

use std::path::PathBuf;

use crate::record::Record;
use crate::ui;

/// A destination of records.
pub trait Sink: Send {
    /// Delivers one record (start, attempt or finish); never fails the run.
    fn emit(&mut self, rec: &Record);
}

/// A `--log` target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    Syslog,
    Stderr,
    Json(PathBuf),
    None,
}

/// Parses a `--log` value.
pub fn log_target(text: &str) -> Result<LogTarget, String> {
    match text {
        "syslog" => Ok(LogTarget::Syslog),
        "stderr" => Ok(LogTarget::Stderr),
        "none" => Ok(LogTarget::None),
        _ => match text.strip_prefix("json:") {
            Some("") => Err("json: needs a file path (json:/var/log/runonce.jsonl)".into()),
            Some(path) => Ok(LogTarget::Json(path.into())),
            None => Err("expected syslog, stderr, json:PATH or none".into()),
        },
    }
}

/// Every sink of a run, in the order `--log` named them.
pub struct Logger {
    sinks: Vec<Box<dyn Sink>>,
}

impl Logger {
    pub fn new(targets: Vec<LogTarget>, facility: ::syslog::Facility, socket: PathBuf) -> Logger {
        // syslog falls back to stderr only if stderr is not a sink already
        let stderr_too = targets.contains(&LogTarget::Stderr);
        let sinks = targets
            .into_iter()
            .map(|target| -> Box<dyn Sink> {
                match target {
                    LogTarget::Syslog => {
                        Box::new(syslog::Syslog::new(facility, socket.clone(), !stderr_too))
                    }
                    LogTarget::Stderr => Box::new(stderr::Stderr),
                    LogTarget::Json(path) => Box::new(json::Json::new(path)),
                    LogTarget::None => Box::new(none::None),
                }
            })
            .collect();
        Logger { sinks }
    }

    pub fn emit(&mut self, rec: &Record) {
        for sink in &mut self.sinks {
            sink.emit(rec);
        }
    }
}

/// A sink's problems, said once each: a broken sink says so a single time.
#[derive(Default)]
struct Warned(Vec<String>);

impl Warned {
    fn once(&mut self, msg: String) {
        if !self.0.contains(&msg) {
            ui::warn(&msg);
            self.0.push(msg);
        }
    }
}
