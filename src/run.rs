//! One run from start to finish: signals, jitter, circuit breaker, lock,
//! limits, the job (with retries), the record, state and metrics.

use std::time::{Duration, Instant};

use crate::backoff;
use crate::breaker;
use crate::config::Config;
use crate::contain::{self, Cgroup};
use crate::enforce::{self, Enforced, Why};
use crate::exit_code::Exit;
use crate::fleet::{self, Lease, Taken};
use crate::holder::{self, Current, Holder};
use crate::limits;
use crate::lock::{self, Lock, Tried, Waited};
use crate::output::Held;
use crate::parse;
use crate::ping::Pinger;
use crate::procs::{ProcId, Strangers};
use crate::record::{self, Event, Outcome, Record};
use crate::recorder::Recorder;
use crate::signals::Signals;
use crate::state::{self, Store};
use crate::supervise;
use crate::sys;
use crate::ui;

/// How long runonce waits at the end for its records, state and metrics
/// to be written (recorder.rs) before it lets go of the lock anyway.
const RECORD_PATIENCE: Duration = Duration::from_secs(8);
/// Why `--strict-limits` refuses to start the job.
const STRICT: &str = "--strict-limits: a limit cannot be applied; the job was not started";
/// Between two tries of a lock that was busy, then seemed free.
const RETRY_STEP: Duration = Duration::from_millis(10);

/// The parts of a record that every record of this run shares.
struct Ctx<'a> {
    cfg: &'a Config,
    /// Records, state and metrics go through it, off the supervision path.
    recorder: Recorder,
    /// The state, read to decide (the circuit breaker).
    store: Store,
    started: String,
    t0: Instant,
    contain: String,
    unapplied: Vec<String>,
    jitter: Option<Duration>,
    host: String,
    /// The lock slot this run holds, once it holds one.
    slot: Option<u32>,
    /// Children runonce had before it started any job.
    strangers: Strangers,
    /// The fleet lease's holder: this run once it holds the lease, another
    /// host's run when the lease is busy (man page, FLEET).
    lease_seen: Option<fleet::Holder>,
    /// `--lock-url-optional`: why the run goes on without the lease.
    lease_error: Option<String>,
    /// `--ping`: the run's heartbeat pings, a sink beside the records.
    pinger: Option<Pinger>,
    /// runonce's own process, as records name it (read once).
    own: Option<ProcId>,
}

impl Ctx<'_> {
    fn record(&self, event: Event, outcome: Option<Outcome>) -> Record {
        Record {
            event,
            outcome,
            name: self.cfg.name.clone(),
            runonce_pid: sys::getpid(),
            start: self.started.clone(),
            argv: self.cfg.argv_strings(),
            contain: self.contain.clone(),
            limits_unapplied: self.unapplied.clone(),
            jitter_s: self.jitter.map(|j| j.as_secs_f64()),
            fencing_token: self.lease_seen.as_ref().map(|h| h.token),
            lease_host: self.lease_seen.as_ref().map(|h| h.host.clone()),
            lease_pid: self.lease_seen.as_ref().map(|h| h.pid),
            lease_error: self.lease_error.clone(),
            host: self.host.clone(),
            uid: sys::geteuid(),
            ..Record::default()
        }
    }

    /// Logs a finish record, folds it into the state and the metrics.
    fn finish(&mut self, mut rec: Record) {
        if rec.duration_s.is_none() {
            rec.duration_s = Some(self.t0.elapsed().as_secs_f64());
        }
        for problem in self.pinger.as_mut().map(|p| p.finish(&rec)).unwrap_or_default() {
            ui::note(&problem);
        }
        let (slot, lease) = (self.slot, self.lease_seen.clone());
        self.recorder.submit(move |s| s.finish(rec, slot, lease.as_ref()));
    }

    /// Logs a start or attempt record.
    fn emit(&mut self, rec: Record) {
        self.recorder.submit(move |s| s.emit(&rec));
    }

    /// The job has started: the metrics say it runs, from now on.
    fn publish_start(&mut self) {
        let lease = self.lease_seen.clone();
        self.recorder.submit(move |s| s.publish_start(lease.as_ref()));
    }

    /// This run, as the holder record first shows it.
    fn me(&self) -> Holder {
        Holder {
            name: self.cfg.name.clone(),
            runonce: self.own,
            started_unix: state::unix_now(),
            uid: sys::geteuid(),
            ..Holder::default()
        }
    }
}

/// A run that ends without its job running to the end of its attempts
/// (skipped, cooling down, refused, interrupted, runonce's own failure):
/// the finish record, which carries the exit status, written once by
/// [`Ctx::end`].
struct Early {
    rec: Box<Record>,
    exit: Exit,
}

impl Ctx<'_> {
    /// A finish record of `outcome` with its status `exit`.
    fn ending(&self, outcome: Outcome, exit: Exit, message: Option<String>) -> Early {
        let mut rec = self.record(Event::Finish, Some(outcome));
        rec.exit = Some(exit.code());
        rec.message = message;
        Early { rec: Box::new(rec), exit }
    }

    /// Writes the record of a run that ended early; its status.
    fn end(&mut self, early: Early) -> Exit {
        self.finish(*early.rec);
        early.exit
    }

    fn busy(&self) -> Exit {
        Exit::Busy(self.cfg.busy_exit)
    }
}

fn hostname() -> String {
    // uname(2): one system call where /proc/sys/kernel/hostname takes four
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default()
}

/// Runs the job as configured; returns runonce's exit status.
pub fn run(cfg: &Config, signals: &Signals) -> Exit {
    if cfg.quiet {
        ui::hold_warnings();
    }
    let (recorder, store) = Recorder::for_run(cfg);
    let mut ctx = Ctx {
        cfg,
        recorder,
        store,
        started: record::now_rfc3339(),
        t0: Instant::now(),
        contain: "pgroup".into(),
        unapplied: Vec::new(),
        jitter: None,
        host: hostname(),
        slot: None,
        strangers: Strangers::now(),
        lease_seen: None,
        lease_error: None,
        pinger: cfg.ping.clone().map(Pinger::new),
        own: ProcId::of(sys::getpid()),
    };
    for note in &cfg.notes {
        ui::warn(note);
    }
    let (status, lock) = run_unlocked(&mut ctx, signals);
    // the records are written before the lock goes, so that the next run
    // finds the state up to date; a write that hangs delays that by
    // RECORD_PATIENCE at most
    let written = ctx.recorder.drain(RECORD_PATIENCE);
    if !written {
        ui::warn(&format!(
            "records, state or metrics not written after {}s (a file system hangs?): \
             the lock is released all the same",
            RECORD_PATIENCE.as_secs()
        ));
    }
    if let Some(lock) = lock {
        lock.clear_holder();
        if cfg.keep_orphans || !written {
            lock.release_shared();
        }
    }
    status
}

/// Everything up to the end of the run; the lock, if it was taken.
fn run_unlocked(ctx: &mut Ctx, signals: &Signals) -> (Exit, Option<Lock>) {
    let mut lock = None;
    let exit = match up_to_the_end(ctx, signals, &mut lock) {
        Ok(exit) => exit,
        Err(early) => ctx.end(early),
    };
    (exit, lock)
}

/// Jitter, the circuit breaker, the lock (kept in `lock` once taken), the
/// lease and the job.
fn up_to_the_end(ctx: &mut Ctx, signals: &Signals, lock: &mut Option<Lock>) -> Result<Exit, Early> {
    let cfg = ctx.cfg;
    if let Err(e) = sys::become_subreaper() {
        ui::warn(&format!("cannot become a child subreaper ({e}): escaped processes may survive"));
    }
    lock::prepare_dir(&cfg.lock_dir).map_err(|e| own_failure(ctx, &e.to_string()))?;
    if let Some(max) = cfg.jitter {
        let delay = backoff::random_below(max);
        ctx.jitter = Some(delay);
        if let Some(sig) = signals.sleep(delay) {
            return Err(interrupted(ctx, sig));
        }
    }
    circuit_open(ctx)?;
    let wait_until = cfg.wait_until();
    let lock = lock.insert(take_lock(ctx, signals, wait_until)?);
    ctx.slot = Some(lock.slot);
    let lease = take_lease(ctx, signals, wait_until)?;
    let status = run_locked(ctx, lock, signals, lease.as_ref());
    if let Some(lease) = lease
        && let Err(e) = lease.release()
    {
        ui::warn(&format!("{e} (the lease expires by itself)"));
    }
    status
}

/// With `--lock-url`, the fleet lease, taken after the local lock (man
/// page, FLEET).  Err ends the run: busy (skipped), or the database
/// unusable (125, unless `--lock-url-optional` lets the run go on).
fn take_lease(
    ctx: &mut Ctx,
    signals: &Signals,
    wait_until: Option<Option<Instant>>,
) -> Result<Option<Lease>, Early> {
    let Some(opts) = &ctx.cfg.fleet else { return Ok(None) };
    let req = fleet::Request {
        name: ctx.cfg.name.clone(),
        host: ctx.host.clone(),
        pid: sys::getpid(),
        lease: opts.lease,
        at_least: opts.at_least,
        wait_until,
    };
    match fleet::take(&opts.url, req, signals) {
        Taken::Held(lease) => {
            ctx.lease_seen = Some(fleet::Holder {
                host: ctx.host.clone(),
                pid: sys::getpid(),
                token: lease.token,
                age_s: 0.0,
            });
            Ok(Some(lease))
        }
        Taken::Busy(holder) => Err(lease_busy(ctx, holder)),
        Taken::Unreachable(msg) if opts.optional => {
            ui::warn(&format!("{msg}: running under the local lock alone (--lock-url-optional)"));
            ctx.lease_error = Some(msg);
            Ok(None)
        }
        Taken::Unreachable(msg) | Taken::Refused(msg) => {
            Err(own_failure(ctx, &format!("{msg}; the job was not started")))
        }
        Taken::Interrupted(sig) => Err(interrupted(ctx, sig)),
    }
}

/// Another host's run holds the lease: a skip as for a busy local lock,
/// naming that host and its runonce's PID.
fn lease_busy(ctx: &mut Ctx, holder: fleet::Holder) -> Early {
    let message = format!(
        "the fleet lease is held by {} (pid {}, token {})",
        holder.host, holder.pid, holder.token
    );
    let mut early = ctx.ending(Outcome::Skipped, ctx.busy(), Some(message));
    let rec = &mut early.rec;
    rec.holder_pid = Some(holder.pid);
    rec.holder_age_s = Some((holder.age_s.max(0.0) * 1000.0).round() / 1000.0);
    rec.fencing_token = Some(holder.token);
    rec.lease_host = Some(holder.host.clone());
    rec.lease_pid = Some(holder.pid);
    ctx.lease_seen = Some(holder);
    early
}

/// runonce's own failure before the job started: one line, and the record.
fn own_failure(ctx: &Ctx, msg: &str) -> Early {
    ui::warn(msg);
    ctx.ending(Outcome::Error, Exit::OwnFailure, Some(msg.to_string()))
}

/// A forwarded signal arrived before the job started: end as if the job
/// had died of it.
fn interrupted(ctx: &Ctx, sig: i32) -> Early {
    let message = format!("interrupted by SIG{} before the job started", parse::signal_name(sig));
    ctx.ending(Outcome::Error, Exit::Signal(sig), Some(message))
}

/// The circuit breaker: a skip while it is open.
fn circuit_open(ctx: &Ctx) -> Result<(), Early> {
    match breaker::open(&ctx.store, &ctx.cfg.name, ctx.cfg.breaker) {
        Some(message) => Err(ctx.ending(Outcome::Cooldown, ctx.busy(), Some(message))),
        None => Ok(()),
    }
}

/// Takes the lock, or decides the run is skipped (Err).
fn take_lock(
    ctx: &mut Ctx,
    signals: &Signals,
    wait_until: Option<Option<Instant>>,
) -> Result<Lock, Early> {
    let cfg = ctx.cfg;
    let me = ctx.me();
    loop {
        // a free lock goes to a queued waiter first (lock::waiters_queued
        // says why); --replace takes it regardless
        let tried = match lock::try_acquire(&cfg.site, cfg.slots, &me, !cfg.replace) {
            Ok(t) => t,
            Err(e) => return Err(own_failure(ctx, &e.to_string())),
        };
        let (holder, orphan_deadline) = match tried {
            Tried::Got(l) => return Ok(l),
            Tried::Yielded => (None, None),
            Tried::Busy if cfg.replace => match enforced(ctx, signals, Why::Replace, &me)? {
                Some(l) => return Ok(l),
                None => continue,
            },
            Tried::Busy => match current_holder(cfg) {
                Current::Ours { holder, .. } if holder.overdue() => {
                    match enforced(ctx, signals, Why::Overdue, &me)? {
                        Some(l) => return Ok(l),
                        None => continue,
                    }
                }
                Current::Ours { holder, .. } => {
                    let deadline = holder.orphaned().then(|| holder.deadline()).flatten();
                    (Some(Shown::Run(holder)), deadline)
                }
                Current::Unknown { locker } => {
                    (holder::someone_holding(&cfg.site, 0, locker).map(Shown::Stranger), None)
                }
                Current::Free => {
                    // freed between the try and the look: try again, but
                    // never in a tight loop
                    if let Some(sig) = signals.sleep(RETRY_STEP) {
                        return Err(interrupted(ctx, sig));
                    }
                    continue;
                }
            },
        };
        let Some(until) = wait_until else {
            let note = holder.is_none().then_some("another run of the job is waiting for the lock");
            return Err(skip(ctx, holder.as_ref(), note));
        };
        match lock::wait_acquire(&cfg.site, cfg.slots, until, signals, orphan_deadline, &me) {
            Ok(Waited::Got(l)) => return Ok(l),
            Ok(Waited::TimedOut) => {
                let holder = match current_holder(cfg) {
                    Current::Ours { holder, .. } => Some(Shown::Run(holder)),
                    Current::Unknown { locker } => {
                        holder::someone_holding(&cfg.site, 0, locker).map(Shown::Stranger)
                    }
                    Current::Free => None,
                };
                return Err(skip(ctx, holder.as_ref(), None));
            }
            Ok(Waited::Signal(sig)) => return Err(interrupted(ctx, sig)),
            Ok(Waited::OrphanDeadline) => continue,
            Err(e) => return Err(own_failure(ctx, &e.to_string())),
        }
    }
}

/// Who holds slot 0 of the job's lock now, as far as a skip needs to know
/// (enforce.rs proves it again before any signal).
fn current_holder(cfg: &Config) -> Current {
    holder::glance(&cfg.site, 0)
}

/// The holder a skip record names.
enum Shown {
    /// A run of this job, as its record says.
    Run(Holder),
    /// A process runonce cannot prove to be a run of this job (PID).
    Stranger(i32),
}

/// Ends the run holding the lock (enforce.rs) and takes its place.
/// Ok(None): nothing to end after all.
fn enforced(ctx: &Ctx, signals: &Signals, why: Why, me: &Holder) -> Result<Option<Lock>, Early> {
    let cfg = ctx.cfg;
    match enforce::enforce(&cfg.site, cfg.slots, why, cfg.stop, signals, me) {
        Enforced::Got(l) => Ok(Some(l)),
        Enforced::NotNeeded => Ok(None),
        Enforced::Refused(msg) | Enforced::Unusable(msg) => Err(own_failure(ctx, &msg)),
        Enforced::Signal(sig) => Err(interrupted(ctx, sig)),
    }
}

/// The job is busy: silent skip with a record naming the holder.
fn skip(ctx: &Ctx, holder: Option<&Shown>, note: Option<&str>) -> Early {
    let mut early = ctx.ending(Outcome::Skipped, ctx.busy(), note.map(String::from));
    let rec = &mut early.rec;
    match holder {
        Some(Shown::Run(h)) => {
            rec.holder_pid = h.shown_pid();
            rec.holder_age_s = Some((h.age_secs() * 1000.0).round() / 1000.0);
            if h.orphaned() {
                rec.message = Some("the holder's runonce is gone; its job still runs".into());
            }
        }
        Some(Shown::Stranger(pid)) => {
            rec.holder_pid = Some(*pid);
            rec.message = Some(format!("the lock is held by pid {pid}, not a run of this job"));
        }
        None => {}
    }
    early
}

/// What stays the same from one attempt of a run to the next.
struct Attempts<'a> {
    lock: &'a Lock,
    signals: &'a Signals,
    lease: Option<&'a Lease>,
    plan: limits::Plan,
    fs: contain::Fs,
    holder: Holder,
    strangers: Strangers,
    env: Vec<(String, String)>,
    /// This attempt's number (1-based), and how many there may be.
    number: u32,
    total: u32,
    /// The output held of each attempt so far (`--quiet`).
    held: Vec<Held>,
}

/// Everything that happens while the lock is held: the attempts.
fn run_locked(
    ctx: &mut Ctx,
    lock: &Lock,
    signals: &Signals,
    lease: Option<&Lease>,
) -> Result<Exit, Early> {
    let cfg = ctx.cfg;
    // records of the run start when the run does, not when runonce began waiting
    ctx.started = record::now_rfc3339();
    ctx.t0 = Instant::now();
    let plan = limits::plan(&cfg.limits);
    ctx.unapplied = plan.unapplied.clone();
    for problem in &plan.unapplied {
        ui::warn(&format!("limit not applied: {problem}"));
    }
    if cfg.strict_limits && !plan.unapplied.is_empty() {
        return Err(own_failure(ctx, STRICT));
    }
    let fs = contain::layout(cfg, lock);
    contain::clear_stale(lock, &fs, &cfg.name);
    let mut run = Attempts {
        lock,
        signals,
        lease,
        plan,
        fs,
        holder: ctx.me(),
        strangers: ctx.strangers.clone(),
        env: lease
            .map(|l| (fleet::TOKEN_ENV.to_string(), l.token.to_string()))
            .into_iter()
            .collect(),
        number: 1,
        total: cfg.retries.saturating_add(1),
        held: Vec::new(),
    };
    loop {
        if let Some(why) = lease.and_then(Lease::lost) {
            // lost before this attempt could start (during a retry pause)
            ui::warn(&lost_message(&why));
            let early = ctx.ending(Outcome::LostLock, Exit::TimedOut, Some(lost_message(&why)));
            return Ok(conclude(ctx, *early.rec, early.exit, run.held));
        }
        let (ended, mut rec) = attempt(ctx, &mut run)?;
        if !retriable(cfg, &ended) || run.number >= run.total {
            return Ok(conclude(ctx, rec, ended.exit, run.held));
        }
        rec.event = Event::Attempt;
        rec.duration_s = Some(ended.duration.as_secs_f64());
        ctx.emit(rec.clone());
        let pause = backoff::retry_pause(cfg.retry_delay, cfg.retry_max_delay, run.number);
        if let Some(sig) = signals.sleep(pause) {
            // a signal stops the retries; the last attempt's status stands
            rec.event = Event::Finish;
            rec.message = Some(format!("retries stopped by SIG{}", parse::signal_name(sig)));
            return Ok(conclude(ctx, rec, ended.exit, run.held));
        }
        run.number += 1;
    }
}

/// Whether a failed attempt may be tried again (`--retries`).
fn retriable(cfg: &Config, ended: &supervise::Ended) -> bool {
    ended.outcome.is_failure()
        && ended.outcome != Outcome::Error
        && ended.outcome != Outcome::LostLock
        && (cfg.retry_on_timeout || !matches!(ended.outcome, Outcome::Timeout | Outcome::Idle))
        && ended.forwarded.is_none()
}

/// One attempt: contained as `--contain` asks, supervised to its end.
/// How it ended, and its finish record.
fn attempt(ctx: &mut Ctx, run: &mut Attempts) -> Result<(supervise::Ended, Record), Early> {
    let cfg = ctx.cfg;
    run.holder.deadline_mono_ns = cfg.timeout.map_or(0, |t| {
        sys::monotonic_ns().saturating_add(u64::try_from(t.as_nanos()).unwrap_or(u64::MAX))
    });
    run.holder.job = None;
    ctx.contain = contain::PGROUP.into();
    let cgroup = contain::attempt(cfg, &run.fs).map_err(|msg| own_failure(ctx, &msg))?;
    if let Some(cg) = &cgroup {
        ctx.contain = cg.contain().into();
    }
    if let Some(problem) = contain::nproc_unenforced(cfg, cgroup.as_ref()) {
        if !ctx.unapplied.contains(&problem) {
            ui::warn(&format!("limit not applied: {problem}"));
            ctx.unapplied.push(problem);
        }
        if cfg.strict_limits {
            contain::close(cgroup, false);
            return Err(own_failure(ctx, STRICT));
        }
    }
    run.holder.cgroups = cgroup.as_ref().map(Cgroup::identities).unwrap_or_default();
    // on record before the job is in it, so that a runonce SIGKILLed from
    // here on leaves the cgroup to the next run; a later attempt's record
    // drops the job that ended.  Without either, the record of the job's
    // start follows at once.
    if cgroup.is_some() || run.number > 1 {
        run.lock.write_holder(&run.holder);
    }
    let plan = contain::attempt_plan(&run.plan, cgroup.as_ref());
    let job = supervise::Job {
        cfg,
        limits: &plan,
        lock_fd: std::os::fd::AsRawFd::as_raw_fd(&run.lock.file),
        inherited: run.signals.inherited,
        cgroup: cgroup.as_ref(),
        strangers: &run.strangers,
        env: &run.env,
        stop_source: run
            .lease
            .map(|l| supervise::StopSource { fd: l.lost_fd(), outcome: Outcome::LostLock }),
    };
    let mut on_start = |pid: i32, job: Option<ProcId>, not_joined: Option<&std::io::Error>| {
        if let (Some(cg), Some(e)) = (&cgroup, not_joined) {
            ui::warn(&format!(
                "the job (pid {pid}) could not join its cgroup {} ({e}): \
                 it is contained by its process group only",
                cg.paths().join(", ")
            ));
            ctx.contain = contain::PGROUP.into();
        }
        run.holder.job = job;
        run.lock.write_holder(&run.holder);
        if run.number == 1 {
            let mut rec = ctx.record(Event::Start, None);
            rec.job_pid = Some(pid);
            rec.slot = (cfg.slots > 1).then_some(run.lock.slot);
            ctx.emit(rec);
            ctx.publish_start();
            if let Some(p) = &mut ctx.pinger {
                p.start();
            }
        }
    };
    let mut ended = supervise::run(&job, run.signals, &mut on_start);
    if let (Some(p), Some(tail)) = (&mut ctx.pinger, ended.tail.take()) {
        p.keep_output(tail.into_bytes());
    }
    if ended.outcome == Outcome::LostLock {
        let why = run.lease.and_then(Lease::lost).unwrap_or_default();
        ended.message = Some(lost_message(&why));
    }
    if let Some(msg) = &ended.message {
        ui::warn(msg);
    }
    let usage = contain::close(cgroup, cfg.keep_orphans);
    let rec = attempt_record(ctx, run, &ended, usage);
    run.held.extend(ended.held.take());
    Ok((ended, rec))
}

/// The finish record of one attempt.
fn attempt_record(
    ctx: &Ctx,
    run: &Attempts,
    ended: &supervise::Ended,
    usage: contain::Usage,
) -> Record {
    let cfg = ctx.cfg;
    let mut rec = ctx.record(Event::Finish, Some(ended.outcome));
    fill(&mut rec, ended);
    rec.cgroup_peak_bytes = usage.peak_bytes;
    rec.oom_kills = usage.oom_kills;
    rec.limit = limits::hit(&cfg.limits, &ending(ended, usage));
    rec.slot = (cfg.slots > 1).then_some(run.lock.slot);
    if run.total > 1 {
        rec.attempt = Some(run.number);
        rec.attempts = Some(run.total);
    }
    rec
}

fn lost_message(why: &str) -> String {
    format!("the fleet lease was lost ({why}): the job was stopped")
}

/// Copies what the supervisor learnt into the record.
fn fill(rec: &mut Record, ended: &supervise::Ended) {
    rec.job_pid = ended.job_pid;
    rec.duration_s = Some(ended.duration.as_secs_f64());
    rec.exit = Some(ended.exit.code());
    rec.signal = ended.signal.map(parse::signal_name);
    rec.sent = ended.sent.iter().map(|&s| parse::signal_name(s)).collect();
    rec.leftovers = ended.leftovers;
    rec.cpu_user_s = round3(ended.usage.user_s);
    rec.cpu_sys_s = round3(ended.usage.sys_s);
    rec.maxrss_kib = ended.usage.maxrss_kib;
    rec.output_lost_bytes = (ended.output_lost > 0).then_some(ended.output_lost);
    rec.message = ended.message.clone();
}

/// What the attempt's limits need to know of its end.
fn ending(ended: &supervise::Ended, cgroup: contain::Usage) -> limits::Ending {
    limits::Ending {
        outcome: ended.outcome,
        signal: ended.signal,
        killed_by_runonce: ended.sent.contains(&libc::SIGKILL),
        main_cpu_s: ended
            .main_rusage
            .map(|r| sys::timeval_secs(r.ru_utime) + sys::timeval_secs(r.ru_stime)),
        cgroup,
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The finish record, and the held output if the run did not succeed;
/// `exit`, the status the record carries.
fn conclude(ctx: &mut Ctx, mut rec: Record, exit: Exit, held: Vec<Held>) -> Exit {
    if rec.attempts.is_some() {
        // the attempt records have each attempt's; this is the whole run's
        rec.duration_s = Some(ctx.t0.elapsed().as_secs_f64());
    }
    let failed = rec.outcome != Some(Outcome::Ok);
    ctx.finish(rec);
    if failed {
        // runonce's warnings (released with the record) come before the
        // job's output, as they did before the job's output was held
        if !held.is_empty() {
            ctx.recorder.drain(RECORD_PATIENCE);
        }
        for h in held {
            h.replay();
        }
    }
    exit
}
