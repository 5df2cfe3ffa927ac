//! Records, state and metrics, written by a thread of their own: a log,
//! state or metrics file that hangs (a frozen or stalled file system, a
//! syslog daemon that stops reading) never stands between the job's
//! deadline and its kill (man page, SECURITY).  Tasks run in the order
//! given; at the end runonce waits for them a bounded time.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use crate::config::Config;
use crate::fleet;
use crate::lock::Site;
use crate::metrics;
use crate::record::{Outcome, Record};
use crate::sink::Logger;
use crate::state::{self, JobState, Store};
use crate::ui;

/// Where a run's records, state and metrics go; owned by the writer thread.
pub struct Sinks {
    pub logger: Logger,
    pub store: Store,
    pub name: String,
    pub metrics_dir: Option<PathBuf>,
    pub site: Site,
    /// Problems with the state or metrics dir already reported on stderr.
    warned: Vec<String>,
}

type Task = Box<dyn FnOnce(&mut Sinks) + Send>;

enum Writer {
    /// Not started yet: the first task starts it.
    Idle(Box<Sinks>),
    Running(mpsc::Sender<Task>),
    /// No thread could be started: tasks run at once, in this thread.
    Inline(Box<Sinks>),
    Gone,
}

pub struct Recorder {
    writer: Writer,
}

impl Sinks {
    pub fn new(
        logger: Logger,
        store: Store,
        name: String,
        metrics_dir: Option<PathBuf>,
        site: Site,
    ) -> Sinks {
        Sinks { logger, store, name, metrics_dir, site, warned: Vec::new() }
    }

    /// Folds a finish record into the state and the metrics, then logs it.
    /// `slot`: the lock slot of this run, whose job is over.
    /// `lease`: the fleet lease's holder, for the metrics (man page, FLEET).
    pub fn finish(&mut self, mut rec: Record, slot: Option<u32>, lease: Option<&fleet::Holder>) {
        let mut metrics_error = None;
        let updated = self.store.update(
            &self.name,
            |s| s.apply(&rec),
            |s| metrics_error = self.publish(slot, s, lease).err(),
        );
        match updated {
            Ok(s) if rec.outcome == Some(Outcome::Skipped) => {
                rec.consecutive_skips = Some(s.consecutive_skips);
            }
            Ok(_) => {}
            Err(e) => {
                let msg = state_problem(&self.store, &e);
                self.warn_once(msg);
            }
        }
        if let Some(e) = metrics_error {
            self.warn_once(e);
        }
        rec.warnings = ui::warnings();
        if rec.outcome.is_some_and(|o| !o.is_quiet()) {
            // cron mails them with the job's output (--quiet held both)
            ui::release_warnings();
        }
        self.logger.emit(&rec);
    }

    pub fn emit(&mut self, rec: &Record) {
        self.logger.emit(rec);
    }

    /// The job has started: the metrics say it runs, from now on.
    pub fn publish_start(&mut self, lease: Option<&fleet::Holder>) {
        if self.metrics_dir.is_none() {
            return;
        }
        let result = self.store.lock().map(|_guard| {
            let mut s = self.store.load_trusted(&self.name).unwrap_or_default();
            s.name = self.name.clone();
            self.publish(None, &s, lease)
        });
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.warn_once(e),
            Err(e) => {
                let msg = state_problem(&self.store, &e);
                self.warn_once(msg);
            }
        }
    }

    /// Writes the metrics textfile, if asked for, with the number of
    /// instances running now (besides slot `mine`, whose job is over).
    fn publish(
        &self,
        mine: Option<u32>,
        s: &JobState,
        lease: Option<&fleet::Holder>,
    ) -> Result<(), String> {
        let Some(dir) = &self.metrics_dir else { return Ok(()) };
        let live = crate::status::live(&self.site, mine);
        let mut s = s.clone();
        // a run in progress is the last one started, though the state knows
        // runs only once they end
        s.last_start_unix = state::later(s.last_start_unix, live.newest_start);
        metrics::write(dir, &s, live.count, lease)
            .map_err(|e| format!("--metrics-dir {}: cannot write: {e}", dir.display()))
    }

    /// An unusable state or metrics dir never fails the job: said once.
    fn warn_once(&mut self, msg: String) {
        if !self.warned.contains(&msg) {
            ui::warn(&msg);
            self.warned.push(msg);
        }
    }
}

fn state_problem(store: &Store, e: &std::io::Error) -> String {
    format!("--state-dir {}: cannot update state: {e}", store.dir.display())
}

impl Recorder {
    pub fn new(sinks: Sinks) -> Recorder {
        Recorder { writer: Writer::Idle(Box::new(sinks)) }
    }

    /// The recorder of a run as configured (`--log`, `--state-dir`,
    /// `--metrics-dir`), and the job's state store, which the run also
    /// reads to decide (the circuit breaker).
    pub fn for_run(cfg: &Config) -> (Recorder, Store) {
        let store = if cfg.state_private {
            Store::private(cfg.state_dir.clone())
        } else {
            Store::new(cfg.state_dir.clone())
        };
        let logger = Logger::new(cfg.log.clone(), cfg.facility, cfg.syslog_socket.clone());
        let sinks = Sinks::new(
            logger,
            store.clone(),
            cfg.name.clone(),
            cfg.metrics_dir.clone(),
            cfg.site.clone(),
        );
        (Recorder::new(sinks), store)
    }

    /// Queues a task; it runs after every task queued before it.
    pub fn submit(&mut self, task: impl FnOnce(&mut Sinks) + Send + 'static) {
        if let Writer::Idle(_) = self.writer {
            self.start();
        }
        match &mut self.writer {
            Writer::Running(tx) => {
                // the thread is gone only if a task panicked: nothing to do
                let _ = tx.send(Box::new(task));
            }
            Writer::Inline(sinks) => task(sinks),
            Writer::Idle(_) | Writer::Gone => {}
        }
    }

    fn start(&mut self) {
        let Writer::Idle(sinks) = std::mem::replace(&mut self.writer, Writer::Gone) else {
            return;
        };
        let (tx, rx) = mpsc::channel::<Task>();
        let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(sinks)));
        let theirs = slot.clone();
        let spawned = std::thread::Builder::new().name("records".into()).spawn(move || {
            let Some(mut sinks) = theirs.lock().ok().and_then(|mut s| s.take()) else {
                return;
            };
            for task in rx {
                task(&mut sinks);
            }
        });
        self.writer = match spawned {
            Ok(_) => Writer::Running(tx),
            Err(_) => match slot.lock().ok().and_then(|mut s| s.take()) {
                Some(sinks) => Writer::Inline(sinks),
                None => Writer::Gone,
            },
        };
    }

    /// Waits until every queued task has run, at most `patience`; false if
    /// they have not (a write hangs).
    pub fn drain(&mut self, patience: Duration) -> bool {
        let Writer::Running(tx) = &self.writer else { return true };
        let (done_tx, done_rx) = mpsc::channel();
        let barrier = move |_: &mut Sinks| {
            let _ = done_tx.send(());
        };
        if tx.send(Box::new(barrier)).is_err() {
            return true;
        }
        done_rx.recv_timeout(patience).is_ok()
    }
}
