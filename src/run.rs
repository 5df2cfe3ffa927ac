//! One run from start to finish: signals, jitter, circuit breaker, lock,
//! limits, the job (with retries), the record, state and metrics.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use crate::cgroup::{self, Cgroup, Made};
use crate::cli::{Contain, Wait};
use crate::config::Config;
use crate::exit_code;
use crate::fleet::{self, Lease, Taken};
use crate::limits;
use crate::lock::{self, Holder, Lock, Waited};
use crate::log::Logger;
use crate::metrics;
use crate::output::Held;
use crate::parse;
use crate::ping::{self, Pinger};
use crate::procs::{self, ProcId};
use crate::record::{self, Event, Outcome, Record};
use crate::state::{self, JobState, Store};
use crate::supervise::{self, Inherited};
use crate::sys;
use crate::ui;

/// Signals runonce forwards to the job (cli.md section 7).
const FORWARDED: [i32; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT];

/// Signal handling set up before any thread exists: the forwarded signals
/// (except those ignored at start, which stay ignored) and SIGCHLD are
/// blocked and read from a signalfd.
pub struct Signals {
    pub fd: OwnedFd,
    pub inherited: Inherited,
}

pub fn setup_signals() -> std::io::Result<Signals> {
    let inherited = Inherited {
        sigpipe_ignored: sys::signal_ignored(libc::SIGPIPE),
        sigchld_ignored: sys::signal_ignored(libc::SIGCHLD),
    };
    // runonce reports write errors itself; the job gets its own disposition back
    sys::set_disposition(libc::SIGPIPE, true);
    if inherited.sigchld_ignored {
        // an ignored SIGCHLD would reap the job behind runonce's back
        sys::set_disposition(libc::SIGCHLD, false);
    }
    let mut set: Vec<i32> = FORWARDED.into_iter().filter(|&s| !sys::signal_ignored(s)).collect();
    set.push(libc::SIGCHLD);
    let set = sys::SigSet::of(&set);
    set.block()?;
    Ok(Signals { fd: sys::signalfd(&set)?, inherited })
}

/// The parts of a record that every record of this run shares.
struct Ctx<'a> {
    cfg: &'a Config,
    logger: Logger,
    store: Store,
    started: String,
    t0: Instant,
    contain: String,
    unapplied: Vec<String>,
    jitter: Option<Duration>,
    host: String,
    /// The lock slot this run holds, once it holds one.
    slot: Option<u32>,
    /// Problems with the state or metrics dir already reported on stderr.
    warned: Vec<String>,
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
        let mut metrics_error = None;
        let updated = self.store.update(
            &self.cfg.name,
            |s| s.apply(&rec),
            |s| metrics_error = publish(self.cfg, self.slot, s, self.lease_seen.as_ref()).err(),
        );
        match updated {
            Ok(s) if rec.outcome == Some(Outcome::Skipped) => {
                rec.consecutive_skips = Some(s.consecutive_skips);
            }
            Ok(_) => {}
            Err(e) => self.warn_once(state_problem(&self.store, &e)),
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

    /// The job has started: the metrics say it runs, from now on.
    fn publish_start(&mut self) {
        if self.cfg.metrics_dir.is_none() {
            return;
        }
        let result = self.store.lock().map(|_guard| {
            let mut s = self.store.load(&self.cfg.name).unwrap_or_default();
            s.name = self.cfg.name.clone();
            publish(self.cfg, None, &s, self.lease_seen.as_ref())
        });
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.warn_once(e),
            Err(e) => self.warn_once(state_problem(&self.store, &e)),
        }
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

/// Writes the metrics textfile, if asked for, with the number of instances
/// running now (besides slot `mine`, whose job is over).
fn publish(
    cfg: &Config,
    mine: Option<u32>,
    s: &JobState,
    lease: Option<&fleet::Holder>,
) -> Result<(), String> {
    let Some(dir) = &cfg.metrics_dir else { return Ok(()) };
    let live = crate::status::live(&cfg.lock_path, mine);
    let mut s = s.clone();
    // a run in progress is the last one started, though the state knows
    // runs only once they end
    s.last_start_unix = state::later(s.last_start_unix, live.newest_start);
    metrics::write(dir, &s, live.count, lease)
        .map_err(|e| format!("--metrics-dir {}: cannot write: {e}", dir.display()))
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
    let mut ctx = Ctx {
        cfg,
        logger: Logger::new(cfg.log.clone(), cfg.facility, cfg.syslog_socket.clone()),
        store: Store::new(cfg.state_dir.clone()),
        started: record::now_rfc3339(),
        t0: Instant::now(),
        contain: "pgroup".into(),
        unapplied: Vec::new(),
        jitter: None,
        host: hostname(),
        slot: None,
        warned: Vec::new(),
        lease_seen: None,
        lease_error: None,
        pinger: cfg.ping.clone().map(Pinger::new),
    };
    if let Err(e) = sys::become_subreaper() {
        ui::warn(&format!("cannot become a child subreaper ({e}): escaped processes may survive"));
    }
    if let Some(dir) = &cfg.lock_dir
        && let Err(e) = lock::prepare_dir(dir)
    {
        return own_failure(&mut ctx, &e.to_string());
    }
    if let Some(max) = cfg.jitter {
        let delay = random_below(max);
        ctx.jitter = Some(delay);
        if let Some(sig) = sleep_interruptible(&signals.fd, delay) {
            return interrupted(&mut ctx, sig);
        }
    }
    if let Some(code) = circuit_open(&mut ctx) {
        return code;
    }
    let wait_until = wait_deadline(cfg);
    let lock = match take_lock(&mut ctx, &signals.fd, wait_until) {
        Ok(l) => l,
        Err(code) => return code,
    };
    ctx.slot = Some(lock.slot);
    let lease = match take_lease(&mut ctx, &signals.fd, wait_until) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let status = run_locked(&mut ctx, &lock, signals, lease.as_ref());
    if let Some(lease) = lease
        && let Err(e) = lease.release()
    {
        ui::warn(&format!("{e} (the lease expires by itself)"));
    }
    if cfg.keep_orphans {
        lock.release_shared();
    }
    status
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

/// Sleeps, unless a forwarded signal arrives (returned).
fn sleep_interruptible(signals: &OwnedFd, d: Duration) -> Option<i32> {
    let until = Instant::now().checked_add(d);
    loop {
        let now = Instant::now();
        let left = until.map(|u| u.saturating_duration_since(now));
        if left == Some(Duration::ZERO) {
            return None;
        }
        let mut fds = [sys::pollfd(std::os::fd::AsRawFd::as_raw_fd(signals), libc::POLLIN)];
        let _ = sys::poll(&mut fds, left);
        if fds[0].revents != 0 {
            while let Some(got) = sys::read_signal(signals) {
                if got.signo != libc::SIGCHLD {
                    return Some(got.signo);
                }
            }
        }
    }
}

/// The circuit breaker (cli.md section 9): after N failed runs in a row,
/// skip until the cooldown has passed since the last failure.
fn circuit_open(ctx: &mut Ctx) -> Option<u8> {
    let (max, cooldown) = ctx.cfg.breaker?;
    let s = ctx.store.load(&ctx.cfg.name)?;
    if s.consecutive_failures < u64::from(max) {
        return None;
    }
    let since = state::unix_now() - s.last_failure_unix.unwrap_or(0.0);
    if since >= cooldown.as_secs_f64() {
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
    loop {
        let got = match lock::try_acquire(&cfg.lock_path, cfg.slots) {
            Ok(got) => got,
            Err(e) => return Err(own_failure(ctx, &e.to_string())),
        };
        // a free lock goes to a queued waiter first (lock::queue_path says
        // why); --replace takes it regardless
        let (holder, orphan_deadline) = match got {
            Some(l) if cfg.replace || !lock::waiters_queued(&cfg.lock_path) => return Ok(l),
            Some(_yielded) => (None, None),
            None => {
                let holder = Holder::read(&cfg.lock_path);
                if cfg.replace {
                    return replace(ctx, signals, holder);
                }
                let orphan_deadline =
                    holder.as_ref().filter(|h| h.orphaned()).and_then(Holder::deadline);
                if orphan_deadline.is_some_and(|d| d <= Instant::now()) {
                    let h = holder.unwrap_or_default();
                    terminate_holder(ctx, signals, &h, "its recorded deadline passed")?;
                    continue;
                }
                (holder, orphan_deadline)
            }
        };
        let Some(until) = wait_until else {
            let note = holder.is_none().then_some("another run of the job is waiting for the lock");
            return Err(skip(ctx, holder.as_ref(), note));
        };
        match lock::wait_acquire(&cfg.lock_path, cfg.slots, until, signals, orphan_deadline) {
            Ok(Waited::Got(l)) => return Ok(l),
            Ok(Waited::TimedOut) => {
                return Err(skip(ctx, Holder::read(&cfg.lock_path).as_ref(), None));
            }
            Ok(Waited::Signal(sig)) => return Err(interrupted(ctx, sig)),
            Ok(Waited::OrphanDeadline) => continue,
            Err(e) => return Err(own_failure(ctx, &e.to_string())),
        }
    }
}

/// The job is busy: silent skip with a record naming the holder.
fn skip(ctx: &mut Ctx, holder: Option<&Holder>, note: Option<&str>) -> u8 {
    let mut rec = ctx.record(Event::Finish, Some(Outcome::Skipped));
    rec.exit = Some(ctx.cfg.busy_exit);
    rec.message = note.map(String::from);
    if let Some(h) = holder {
        rec.holder_pid = h.shown_pid();
        rec.holder_age_s = Some((h.age_secs() * 1000.0).round() / 1000.0);
        if h.orphaned() {
            rec.message = Some("the holder's runonce is gone; its job still runs".into());
        }
    }
    ctx.finish(rec);
    ctx.cfg.busy_exit
}

/// `--replace`: terminate the running instance's whole tree, then take the
/// lock (cli.md section 3).
fn replace(ctx: &mut Ctx, signals: &OwnedFd, holder: Option<Holder>) -> Result<Lock, u8> {
    let holder = holder.unwrap_or_default();
    terminate_holder(ctx, signals, &holder, "--replace")?;
    loop {
        match lock::try_acquire(&ctx.cfg.lock_path, ctx.cfg.slots) {
            Ok(Some(l)) => return Ok(l),
            Ok(None) => {
                // a new holder slipped in between: replace it too
                let h = Holder::read(&ctx.cfg.lock_path).unwrap_or_default();
                terminate_holder(ctx, signals, &h, "--replace")?;
            }
            Err(e) => return Err(own_failure(ctx, &e.to_string())),
        }
    }
}

/// Ends the holder's job: `--signal` (and SIGCONT) to its runonce and every
/// process of its tree, SIGKILL to the tree after `--kill-after`, and waits
/// until the lock is free.  Refuses (125) to touch another user's processes.
fn terminate_holder(
    ctx: &mut Ctx,
    signals: &OwnedFd,
    holder: &Holder,
    why: &str,
) -> Result<(), u8> {
    let cfg = ctx.cfg;
    let path = &cfg.lock_path;
    let old_runonce = holder.runonce.filter(ProcId::alive);
    let tree = lock::holder_tree(path, holder);
    let me = sys::geteuid();
    if me != 0 {
        for p in old_runonce.iter().chain(&tree) {
            if let Some(uid) = procs::uid_of(p.pid).filter(|&u| u != me) {
                return Err(own_failure(
                    ctx,
                    &format!(
                        "{why}: the running instance of {} (pid {}) belongs to uid {uid}: refused",
                        cfg.name, p.pid
                    ),
                ));
            }
        }
    }
    // a live runonce forwards the signal to its whole tree and then writes
    // its own record; an orphaned tree is signalled directly
    match old_runonce {
        Some(r) => {
            r.signal(cfg.signal);
            r.signal(libc::SIGCONT);
        }
        None => {
            for p in &tree {
                p.signal(cfg.signal);
                p.signal(libc::SIGCONT);
            }
        }
    }
    let kill_at = Instant::now().checked_add(cfg.kill_after);
    let mut killing = false;
    loop {
        let now = Instant::now();
        if !killing && kill_at.is_none_or(|k| k <= now) {
            killing = true;
        }
        if killing {
            if let Some(cg) = holder.cgroup() {
                cg.kill();
            }
            for p in lock::holder_tree(path, holder) {
                p.signal(libc::SIGKILL);
            }
        }
        if !lock::is_held(path) {
            return Ok(());
        }
        let step = if killing { Duration::from_millis(50) } else { Duration::from_millis(20) };
        let until = kill_at
            .filter(|_| !killing)
            .map_or(step, |k| k.saturating_duration_since(now).min(step));
        if let Some(sig) = sleep_interruptible(signals, until) {
            return Err(interrupted(ctx, sig));
        }
    }
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
    clear_stale_cgroup(lock);
    let cgroup_fs = cgroup::Fs::discover();
    let mut holder = Holder {
        name: cfg.name.clone(),
        runonce: ProcId::of(sys::getpid()),
        job: None,
        started_unix: state::unix_now(),
        deadline_mono_ns: 0,
        uid: sys::geteuid(),
        cgroups: Vec::new(),
    };
    let attempts = cfg.retries.saturating_add(1);
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
        holder.cgroups = cgroup.as_ref().map(Cgroup::paths).unwrap_or_default();
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
            env: &env,
            stop_source,
        };
        let mut on_start = |pid: i32| {
            if let Some(cg) = &cgroup
                && !cg.holds(pid)
            {
                ui::warn(&format!(
                    "the job (pid {pid}) did not join its cgroup {}: \
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
                ctx.logger.emit(&rec);
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
            ctx.logger.emit(&rec);
            let pause = backoff(cfg, attempt);
            if let Some(sig) = sleep_interruptible(&signals.fd, pause) {
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

/// The cgroup of the previous holder of this lock, if its runonce is gone
/// (SIGKILLed): whatever is still in it belongs to that run's job, which
/// nobody supervises any more and which has let go of the lock.  It is
/// killed and the cgroup removed, so that nothing leaks.
fn clear_stale_cgroup(lock: &Lock) {
    let Some(old) = Holder::read(&lock.path) else {
        return;
    };
    if old.runonce.is_none_or(|r| r.alive()) {
        return; // a live runonce removes its own
    }
    let Some(cg) = old.cgroup() else {
        return;
    };
    let left = cg.members();
    if !left.is_empty() {
        ui::warn(&format!(
            "{} process(es) of an earlier run of {} (its runonce, pid {}, is gone) \
             were still in its cgroup: killed",
            left.len(),
            old.name,
            old.runonce.map_or(0, |r| r.pid)
        ));
        cg.kill();
        cg.wait_empty(Duration::from_secs(2));
    }
    if let Err(e) = cg.remove() {
        ui::warn(&e);
    }
}

/// The pause before retry number `attempt` (1-based): the delay doubled
/// each time, +-20% jitter, capped.
fn backoff(cfg: &Config, attempt: u32) -> Duration {
    let base = cfg.retry_delay.saturating_mul(1u32 << (attempt - 1).min(30));
    let capped = base.min(cfg.retry_max_delay);
    let jitter = 0.8 + 0.4 * random_below(Duration::from_secs(1)).as_secs_f64();
    capped.mul_f64(jitter).min(cfg.retry_max_delay)
}

/// Copies what the supervisor learnt into the record.
fn fill(rec: &mut Record, ended: &supervise::Ended) {
    rec.job_pid = ended.job_pid;
    rec.duration_s = Some(ended.duration.as_secs_f64());
    rec.exit = Some(ended.exit);
    rec.signal = ended.signal.map(parse::signal_name);
    rec.sent = ended.sent.iter().map(|&s| parse::signal_name(s)).collect();
    rec.leftovers = ended.leftovers;
    let all = sys::children_rusage();
    rec.cpu_user_s = round3(sys::timeval_secs(all.ru_utime));
    rec.cpu_sys_s = round3(sys::timeval_secs(all.ru_stime));
    rec.maxrss_kib = u64::try_from(all.ru_maxrss).unwrap_or(0);
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
        for h in held {
            h.replay();
        }
    }
    exit
}
