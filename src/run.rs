//! One run from start to finish: signals, jitter, circuit breaker, lock,
//! limits, the job (with retries), the record, state and metrics.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use crate::cgroup::{self, Cgroup, Made};
use crate::cli::{Contain, Wait};
use crate::config::Config;
use crate::enforce::{self, Enforced, Stop, Why};
use crate::exit_code;
use crate::fleet::{self, Lease, Taken};
use crate::holder::{self, Current, Holder};
use crate::limits;
use crate::lock::{self, Lock, Tried, Waited};
use crate::log::Logger;
use crate::output::Held;
use crate::parse;
use crate::ping::{self, Pinger};
use crate::procs::{ProcId, Strangers};
use crate::record::{self, Event, Outcome, Record};
use crate::recorder::{Recorder, Sinks};
use crate::signals;
use crate::state::{self, Store};
use crate::supervise::{self, Inherited};
use crate::sys;
use crate::ui;

/// How long runonce waits at the end for its records, state and metrics
/// to be written (recorder.rs) before it lets go of the lock anyway.
const RECORD_PATIENCE: Duration = Duration::from_secs(8);
/// Between two tries of a lock that was busy, then seemed free.
const RETRY_STEP: Duration = Duration::from_millis(10);

/// Signal handling set up before any thread exists: the relayed signals
/// (`signals::relayed`, except those ignored at start, which stay ignored)
/// and SIGCHLD are blocked and read from a signalfd.
pub struct Signals {
    pub fd: OwnedFd,
    pub inherited: Inherited,
}

pub fn setup_signals() -> std::io::Result<Signals> {
    let inherited = Inherited {
        sigpipe_ignored: sys::signal_ignored(libc::SIGPIPE),
        sigchld_ignored: sys::signal_ignored(libc::SIGCHLD),
    };
    let mut set: Vec<i32> = signals::relayed().filter(|&s| !sys::signal_ignored(s)).collect();
    set.push(libc::SIGCHLD);
    // runonce reports write errors itself; the job gets its own disposition back
    sys::set_disposition(libc::SIGPIPE, true);
    if inherited.sigchld_ignored {
        // an ignored SIGCHLD would reap the job behind runonce's back
        sys::set_disposition(libc::SIGCHLD, false);
    }
    let set = sys::SigSet::of(&set);
    set.block()?;
    Ok(Signals { fd: sys::signalfd(&set)?, inherited })
}

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
}

impl Ctx<'_> {
    fn record(&self, event: Event, outcome: Option<Outcome>) -> Record {
        Record {
            event,
            name: self.cfg.name.clone(),
            runonce_pid: sys::getpid(),
            job_pid: None,
            start: self.started.clone(),
            duration_s: None,
            outcome,
            exit: None,
            signal: None,
            sent: Vec::new(),
            leftovers: 0,
            cpu_user_s: 0.0,
            cpu_sys_s: 0.0,
            maxrss_kib: 0,
            argv: self.cfg.argv_strings(),
            contain: self.contain.clone(),
            limits_unapplied: self.unapplied.clone(),
            holder_pid: None,
            holder_age_s: None,
            consecutive_skips: None,
            attempt: None,
            attempts: None,
            slot: None,
            jitter_s: self.jitter.map(|j| j.as_secs_f64()),
            cgroup_peak_bytes: None,
            oom_kills: None,
            output_lost_bytes: None,
            limit: None,
            message: None,
            warnings: Vec::new(),
            fencing_token: self.lease_seen.as_ref().map(|h| h.token),
            lease_host: self.lease_seen.as_ref().map(|h| h.host.clone()),
            lease_pid: self.lease_seen.as_ref().map(|h| h.pid),
            lease_error: self.lease_error.clone(),
            host: self.host.clone(),
            uid: sys::geteuid(),
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
            runonce: ProcId::of(sys::getpid()),
            started_unix: state::unix_now(),
            uid: sys::geteuid(),
            ..Holder::default()
        }
    }

    fn stop(&self) -> Stop {
        Stop { signal: self.cfg.signal, kill_after: self.cfg.kill_after }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Runs the job as configured; returns runonce's exit status.
pub fn run(cfg: &Config, signals: &Signals) -> u8 {
    if cfg.quiet {
        ui::hold_warnings();
    }
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
    let mut ctx = Ctx {
        cfg,
        recorder: Recorder::new(sinks),
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
fn run_unlocked(ctx: &mut Ctx, signals: &Signals) -> (u8, Option<Lock>) {
    let cfg = ctx.cfg;
    if let Err(e) = sys::become_subreaper() {
        ui::warn(&format!("cannot become a child subreaper ({e}): escaped processes may survive"));
    }
    if let Err(e) = lock::prepare_dir(&cfg.lock_dir) {
        return (own_failure(ctx, &e.to_string()), None);
    }
    if let Some(max) = cfg.jitter {
        let delay = random_below(max);
        ctx.jitter = Some(delay);
        if let Some(sig) = sys::sleep_unless_signalled(&signals.fd, delay) {
            return (interrupted(ctx, sig), None);
        }
    }
    if let Some(code) = circuit_open(ctx) {
        return (code, None);
    }
    let wait_until = wait_deadline(cfg);
    let lock = match take_lock(ctx, &signals.fd, wait_until) {
        Ok(l) => l,
        Err(code) => return (code, None),
    };
    ctx.slot = Some(lock.slot);
    let lease = match take_lease(ctx, &signals.fd, wait_until) {
        Ok(l) => l,
        Err(code) => return (code, Some(lock)),
    };
    let status = run_locked(ctx, &lock, signals, lease.as_ref());
    if let Some(lease) = lease
        && let Err(e) = lease.release()
    {
        ui::warn(&format!("{e} (the lease expires by itself)"));
    }
    (status, Some(lock))
}

/// `--wait`: None = do not wait, Some(None) = forever, else until when.
/// One deadline for the local lock and the fleet lease together.
fn wait_deadline(cfg: &Config) -> Option<Option<Instant>> {
    match cfg.wait {
        None | Some(Wait::Up(Duration::ZERO)) => None,
        Some(Wait::Forever) => Some(None),
        Some(Wait::Up(d)) => Some(Instant::now().checked_add(d)),
    }
}

/// With `--lock-url`, the fleet lease, taken after the local lock (man
/// page, FLEET).  Err is the exit status: busy (skipped), or the database
/// unusable (125, unless `--lock-url-optional` lets the run go on).
fn take_lease(
    ctx: &mut Ctx,
    signals: &OwnedFd,
    wait_until: Option<Option<Instant>>,
) -> Result<Option<Lease>, u8> {
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
fn lease_busy(ctx: &mut Ctx, holder: fleet::Holder) -> u8 {
    let mut rec = ctx.record(Event::Finish, Some(Outcome::Skipped));
    rec.exit = Some(ctx.cfg.busy_exit);
    rec.holder_pid = Some(holder.pid);
    rec.holder_age_s = Some((holder.age_s.max(0.0) * 1000.0).round() / 1000.0);
    rec.fencing_token = Some(holder.token);
    rec.lease_host = Some(holder.host.clone());
    rec.lease_pid = Some(holder.pid);
    rec.message = Some(format!(
        "the fleet lease is held by {} (pid {}, token {})",
        holder.host, holder.pid, holder.token
    ));
    ctx.lease_seen = Some(holder);
    ctx.finish(rec);
    ctx.cfg.busy_exit
}

/// runonce's own failure before the job started: one line, a record, 125.
fn own_failure(ctx: &mut Ctx, msg: &str) -> u8 {
    ui::warn(msg);
    let mut rec = ctx.record(Event::Finish, Some(Outcome::Error));
    rec.exit = Some(exit_code::OWN_FAILURE);
    rec.message = Some(msg.to_string());
    ctx.finish(rec);
    exit_code::OWN_FAILURE
}

/// A forwarded signal arrived before the job started: end as if the job
/// had died of it.
fn interrupted(ctx: &mut Ctx, sig: i32) -> u8 {
    let mut rec = ctx.record(Event::Finish, Some(Outcome::Error));
    let code = exit_code::for_signal(sig);
    rec.exit = Some(code);
    rec.message =
        Some(format!("interrupted by SIG{} before the job started", parse::signal_name(sig)));
    ctx.finish(rec);
    code
}

/// A uniformly random duration in [0, max), from the kernel's generator.
fn random_below(max: Duration) -> Duration {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return Duration::ZERO;
    }
    let unit = (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64;
    max.mul_f64(unit)
}

/// The circuit breaker (cli.md section 9): after N failed runs in a row,
/// skip until the cooldown has passed since the last failure.
fn circuit_open(ctx: &mut Ctx) -> Option<u8> {
    let (max, cooldown) = ctx.cfg.breaker?;
    // a state file another user could have written decides nothing
    let s = ctx.store.load_trusted(&ctx.cfg.name)?;
    if s.consecutive_failures < u64::from(max) {
        return None;
    }
    let since = state::unix_now() - s.last_failure_unix.unwrap_or(0.0);
    // a failure in the future or at no time at all (a clock set back, a
    // damaged state file) would keep the circuit open for ever: let it run
    if !(0.0..cooldown.as_secs_f64()).contains(&since) {
        return None;
    }
    let mut rec = ctx.record(Event::Finish, Some(Outcome::Cooldown));
    rec.exit = Some(ctx.cfg.busy_exit);
    rec.message = Some(format!(
        "{} failures in a row; cooling down for {:.0}s more",
        s.consecutive_failures,
        cooldown.as_secs_f64() - since
    ));
    ctx.finish(rec);
    Some(ctx.cfg.busy_exit)
}

/// Takes the lock, or decides the run is skipped.  Err is the exit status.
fn take_lock(
    ctx: &mut Ctx,
    signals: &OwnedFd,
    wait_until: Option<Option<Instant>>,
) -> Result<Lock, u8> {
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
                    if let Some(sig) = sys::sleep_unless_signalled(signals, RETRY_STEP) {
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
/// Ok(None): nothing to end after all; Err: the exit status.
fn enforced(ctx: &mut Ctx, signals: &OwnedFd, why: Why, me: &Holder) -> Result<Option<Lock>, u8> {
    let cfg = ctx.cfg;
    match enforce::enforce(&cfg.site, cfg.slots, why, ctx.stop(), signals, me) {
        Enforced::Got(l) => Ok(Some(l)),
        Enforced::NotNeeded => Ok(None),
        Enforced::Refused(msg) | Enforced::Unusable(msg) => Err(own_failure(ctx, &msg)),
        Enforced::Signal(sig) => Err(interrupted(ctx, sig)),
    }
}

/// The job is busy: silent skip with a record naming the holder.
fn skip(ctx: &mut Ctx, holder: Option<&Shown>, note: Option<&str>) -> u8 {
    let mut rec = ctx.record(Event::Finish, Some(Outcome::Skipped));
    rec.exit = Some(ctx.cfg.busy_exit);
    rec.message = note.map(String::from);
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
    ctx.finish(rec);
    ctx.cfg.busy_exit
}

/// Everything that happens while the lock is held.
fn run_locked(ctx: &mut Ctx, lock: &Lock, signals: &Signals, lease: Option<&Lease>) -> u8 {
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
        return own_failure(
            ctx,
            "--strict-limits: a limit cannot be applied; the job was not started",
        );
    }
    let cgroup_fs = cgroup::Fs::discover();
    clear_stale_cgroup(lock, &cgroup_fs, &cfg.name);
    let mut holder = ctx.me();
    let attempts = cfg.retries.saturating_add(1);
    let strangers = ctx.strangers.clone();
    let mut held_all: Vec<Held> = Vec::new();
    let mut attempt = 1;
    let env: Vec<(String, String)> =
        lease.map(|l| (fleet::TOKEN_ENV.to_string(), l.token.to_string())).into_iter().collect();
    let stop_source =
        lease.map(|l| supervise::StopSource { fd: l.lost_fd(), outcome: Outcome::LostLock });
    loop {
        if let Some(why) = lease.and_then(Lease::lost) {
            // lost before this attempt could start (during a retry pause)
            let mut rec = ctx.record(Event::Finish, Some(Outcome::LostLock));
            rec.exit = Some(exit_code::TIMED_OUT);
            rec.message = Some(lost_message(&why));
            ui::warn(&lost_message(&why));
            return conclude(ctx, rec, held_all);
        }
        holder.deadline_mono_ns = cfg.timeout.map_or(0, |t| {
            sys::monotonic_ns().saturating_add(u64::try_from(t.as_nanos()).unwrap_or(u64::MAX))
        });
        holder.job = None;
        let cgroup = match contain(ctx, &cgroup_fs) {
            Ok(c) => c,
            Err(code) => return code,
        };
        if let Some(problem) = nproc_unenforced(cfg, cgroup.as_ref()) {
            if !ctx.unapplied.contains(&problem) {
                ui::warn(&format!("limit not applied: {problem}"));
                ctx.unapplied.push(problem);
            }
            if cfg.strict_limits {
                close_cgroup(cgroup, false);
                return own_failure(
                    ctx,
                    "--strict-limits: a limit cannot be applied; the job was not started",
                );
            }
        }
        holder.cgroups = cgroup.as_ref().map(Cgroup::identities).unwrap_or_default();
        lock.write_holder(&holder);
        let attempt_plan = attempt_plan(&plan, cgroup.as_ref());
        let job = supervise::Job {
            argv: &cfg.argv,
            foreground: cfg.foreground,
            keep_orphans: cfg.keep_orphans,
            timeout: cfg.timeout,
            signal: cfg.signal,
            kill_after: cfg.kill_after,
            idle_timeout: cfg.idle_timeout,
            quiet: cfg.quiet,
            tail: cfg.ping.is_some().then_some(ping::TAIL_BYTES),
            limits: &attempt_plan,
            strict_limits: cfg.strict_limits,
            lock_fd: std::os::fd::AsRawFd::as_raw_fd(&lock.file),
            inherited: signals.inherited,
            cgroup: cgroup.as_ref(),
            strangers: &strangers,
            env: &env,
            stop_source,
        };
        let mut on_start = |pid: i32, not_joined: Option<&std::io::Error>| {
            if let (Some(cg), Some(e)) = (&cgroup, not_joined) {
                ui::warn(&format!(
                    "the job (pid {pid}) could not join its cgroup {} ({e}): \
                     it is contained by its process group only",
                    cg.paths().join(", ")
                ));
                ctx.contain = "pgroup".into();
            }
            holder.job = ProcId::of(pid);
            lock.write_holder(&holder);
            if attempt == 1 {
                let mut rec = ctx.record(Event::Start, None);
                rec.job_pid = Some(pid);
                rec.slot = (cfg.slots > 1).then_some(lock.slot);
                ctx.emit(rec);
                ctx.publish_start();
                if let Some(p) = &mut ctx.pinger {
                    p.start();
                }
            }
        };
        let mut ended = supervise::run(&job, &signals.fd, &mut on_start);
        if let (Some(p), Some(tail)) = (&mut ctx.pinger, ended.tail.take()) {
            p.keep_output(tail.into_bytes());
        }
        if ended.outcome == Outcome::LostLock {
            let why = lease.and_then(Lease::lost).unwrap_or_default();
            ended.message = Some(lost_message(&why));
        }
        if let Some(msg) = &ended.message {
            ui::warn(msg);
        }
        let usage = close_cgroup(cgroup, cfg.keep_orphans);
        let mut rec = ctx.record(Event::Finish, Some(ended.outcome));
        fill(&mut rec, &ended);
        rec.cgroup_peak_bytes = usage.peak_bytes;
        rec.oom_kills = usage.oom_kills;
        rec.limit = limits::hit(&cfg.limits, &ending(&ended, usage));
        rec.slot = (cfg.slots > 1).then_some(lock.slot);
        if attempts > 1 {
            rec.attempt = Some(attempt);
            rec.attempts = Some(attempts);
        }
        if let Some(h) = ended.held {
            held_all.push(h);
        }
        let retriable = ended.outcome.is_failure()
            && ended.outcome != Outcome::Error
            && ended.outcome != Outcome::LostLock
            && (cfg.retry_on_timeout || !matches!(ended.outcome, Outcome::Timeout | Outcome::Idle))
            && ended.forwarded.is_none();
        if retriable && attempt < attempts {
            rec.event = Event::Attempt;
            rec.duration_s = Some(ended.duration.as_secs_f64());
            ctx.emit(rec.clone());
            let pause = backoff(cfg, attempt);
            if let Some(sig) = sys::sleep_unless_signalled(&signals.fd, pause) {
                // a signal stops the retries; the last attempt's status stands
                rec.event = Event::Finish;
                rec.message = Some(format!("retries stopped by SIG{}", parse::signal_name(sig)));
                return conclude(ctx, rec, held_all);
            }
            attempt += 1;
            continue;
        }
        return conclude(ctx, rec, held_all);
    }
}

fn lost_message(why: &str) -> String {
    format!("the fleet lease was lost ({why}): the job was stopped")
}

/// Gives the attempt its own cgroup as `--contain` asks, and says in the
/// records which way the job is contained.  Err is the exit status (125).
fn contain(ctx: &mut Ctx, fs: &cgroup::Fs) -> Result<Option<Cgroup>, u8> {
    let cfg = ctx.cfg;
    ctx.contain = "pgroup".into();
    if cfg.contain == Contain::Pgroup {
        return Ok(None);
    }
    let want = cgroup::Want {
        job: &cfg.name,
        runonce_pid: sys::getpid(),
        memory: cfg.limits.memory,
        nproc: cfg.limits.nproc,
    };
    let required = cfg.contain == Contain::Cgroup;
    match cgroup::create(fs, &want) {
        Made::Cgroup(cg) => {
            ctx.contain = cg.contain().into();
            Ok(Some(cg))
        }
        Made::Unavailable if required => Err(own_failure(
            ctx,
            "--contain cgroup: no cgroup runonce may create here \
             (that needs root, or a delegated cgroup v2); the job was not started",
        )),
        Made::Unavailable => Ok(None),
        Made::Failed(why) if required => {
            Err(own_failure(ctx, &format!("--contain cgroup: {why}; the job was not started")))
        }
        Made::Failed(why) => {
            ui::warn(&format!(
                "{why}: the job runs without a cgroup (process group, per-process limits)"
            ));
            Ok(None)
        }
    }
}

/// `--nproc` with no pids cgroup to hold it falls back to RLIMIT_NPROC,
/// which the kernel does not enforce on root (CAP_SYS_ADMIN or
/// CAP_SYS_RESOURCE): then the limit is not applied, and that is said.
fn nproc_unenforced(cfg: &Config, cgroup: Option<&Cgroup>) -> Option<String> {
    const CAP_SYS_RESOURCE: u32 = 24;
    const CAP_SYS_ADMIN: u32 = 21;
    let n = cfg.limits.nproc?;
    if cgroup.is_some_and(Cgroup::limits_pids) {
        return None;
    }
    let exempt = sys::has_capability(CAP_SYS_ADMIN) || sys::has_capability(CAP_SYS_RESOURCE);
    exempt.then(|| {
        format!(
            "--nproc {n}: no pids cgroup here, and RLIMIT_NPROC does not bind a process \
             with CAP_SYS_ADMIN or CAP_SYS_RESOURCE (root)"
        )
    })
}

/// `--nproc` is the pids controller's where it holds for the tree, and
/// RLIMIT_NPROC (which counts all of the user's processes) only otherwise.
fn attempt_plan(plan: &limits::Plan, cgroup: Option<&Cgroup>) -> limits::Plan {
    let mut plan = plan.clone();
    // The tree's cap replaces the per-process one: an allocation RLIMIT_DATA
    // refuses leaves no evidence, the cgroup's OOM kill does (the man page,
    // RESOURCE LIMITS).
    if cgroup.is_some_and(Cgroup::limits_memory) {
        plan.rlimits.retain(|r| r.resource != libc::RLIMIT_DATA);
    }
    if cgroup.is_some_and(Cgroup::limits_pids) {
        plan.rlimits.retain(|r| r.resource != libc::RLIMIT_NPROC);
    }
    plan
}

/// The job is over: its cgroup's memory figures, then the cgroup goes
/// (kept orphans are moved out of it first).
fn close_cgroup(cgroup: Option<Cgroup>, keep_orphans: bool) -> cgroup::Usage {
    let Some(cg) = cgroup else {
        return cgroup::Usage::default();
    };
    let usage = cg.usage();
    if keep_orphans {
        cg.release();
    }
    if let Err(e) = cg.remove() {
        ui::warn(&e);
    }
    usage
}

/// The cgroups earlier runs left behind: those the previous holder's
/// record names (its own, if its runonce is gone, and the leftovers it
/// carried), whose processes belong to a run nobody supervises any more and
/// which has let go of the lock: killed, and the cgroups removed, so that
/// nothing leaks.  Only the very cgroups those runs made count (name and
/// inode, `Holder::cgroup`): after PID reuse, a cgroup of the same name may
/// be a live run's.  Empty ones no record names go too (`cgroup::sweep`).
fn clear_stale_cgroup(lock: &Lock, fs: &cgroup::Fs, job: &str) {
    cgroup::sweep(fs, job);
    let Some(old) = &lock.previous else {
        return;
    };
    for left in old.to_clear() {
        let Some(cg) = left.cgroup() else {
            continue;
        };
        let members = cg.members();
        if !members.is_empty() {
            ui::warn(&format!(
                "{} process(es) of an earlier run of {} (its runonce, pid {}, is gone) \
                 were still in its cgroup: killed",
                members.len(),
                left.name,
                left.runonce_pid
            ));
            cg.kill();
            cg.wait_empty(Duration::from_secs(2));
        }
        if let Err(e) = cg.remove() {
            ui::warn(&e);
        }
    }
}

/// The pause before retry number `attempt` (1-based): the delay doubled
/// each time, +-20% jitter, capped.  Huge values saturate ("effectively
/// never"), they never overflow.
fn backoff(cfg: &Config, attempt: u32) -> Duration {
    let base = cfg.retry_delay.saturating_mul(1u32 << (attempt - 1).min(30));
    let capped = base.min(cfg.retry_max_delay);
    let jitter = 0.8 + 0.4 * random_below(Duration::from_secs(1)).as_secs_f64();
    Duration::try_from_secs_f64(capped.as_secs_f64() * jitter)
        .unwrap_or(Duration::MAX)
        .min(cfg.retry_max_delay)
}

/// Copies what the supervisor learnt into the record.
fn fill(rec: &mut Record, ended: &supervise::Ended) {
    rec.job_pid = ended.job_pid;
    rec.duration_s = Some(ended.duration.as_secs_f64());
    rec.exit = Some(ended.exit);
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
fn ending(ended: &supervise::Ended, cgroup: cgroup::Usage) -> limits::Ending {
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

/// The finish record, and the held output if the run did not succeed.
fn conclude(ctx: &mut Ctx, mut rec: Record, held: Vec<Held>) -> u8 {
    if rec.attempts.is_some() {
        // the attempt records have each attempt's; this is the whole run's
        rec.duration_s = Some(ctx.t0.elapsed().as_secs_f64());
    }
    let exit = rec.exit.unwrap_or(exit_code::OWN_FAILURE);
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
