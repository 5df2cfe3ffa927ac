//! Starting the job and watching it until every process of it is gone.
//!
//! runonce is a child subreaper, so every process the job starts stays below
//! it, even after a double fork or setsid.  One poll loop waits on a
//! signalfd (SIGCHLD and the signals to forward), the job's output pipes if
//! runonce sits in their path, and the next deadline: it uses no CPU while
//! the job runs.  The kill sequence (man page, DESCRIPTION; `escalation.rs`): `--signal` and
//! SIGCONT to every process of the job, SIGKILL after `--kill-after` to
//! whatever is left, in rounds until nothing is left.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::cgroup::Cgroup;
use crate::config::Config;
use crate::escalation::Escalating;
use crate::exit_code::Exit;
use crate::limits;
use crate::output::{Held, Stream, Tail};
use crate::ping;
use crate::procs::{self, ProcId, Strangers};
use crate::record::Outcome;
use crate::signals::{Inherited, Meaning, Signals};
use crate::spawn;
use crate::sys;

/// While SIGKILL rounds are under way, look again this often for processes
/// that were being forked while the last round ran.
const KILL_ROUND: Duration = Duration::from_millis(20);
/// Longest stretch of reaping before the deadlines are looked at again.
const REAP_SLICE: Duration = Duration::from_millis(250);
/// Once the job is gone, how long to keep reading pipes that something
/// outside the job (a kept orphan, a daemon) still holds open.
const PIPE_GRACE: Duration = Duration::from_millis(200);
/// The poll entry of the job's `StopSource`.
const STOP_SOURCE: usize = usize::MAX - 1;

/// One attempt to supervise: the run's options (`--timeout`, `--signal`,
/// `--quiet`...) and what this attempt adds to them.
pub struct Job<'a> {
    pub cfg: &'a Config,
    /// The attempt's limits (`contain::attempt_plan`).
    pub limits: &'a limits::Plan,
    /// The lock's descriptor: handed to the job so the lock lives as long
    /// as any of its processes.
    pub lock_fd: RawFd,
    pub inherited: Inherited,
    pub cgroup: Option<&'a Cgroup>,
    /// runonce's children that are not the job's (`procs::Strangers`).
    pub strangers: &'a Strangers,
    /// Variables added to the job's environment.
    pub env: &'a [(String, String)],
    /// Something outside that can end the job as a timeout does.
    pub stop_source: Option<StopSource>,
}

impl Job<'_> {
    /// How many of the output's last bytes to keep: `--ping` sends them.
    fn tail(&self) -> Option<usize> {
        self.cfg.ping.is_some().then_some(ping::TAIL_BYTES)
    }
}

/// A descriptor that becomes readable when the job must be stopped (the
/// fleet lease was lost): the job then gets `--signal`, then SIGKILL after
/// `--kill-after`, and the run ends with `outcome` (exit 124).
#[derive(Clone, Copy, Debug)]
pub struct StopSource {
    pub fd: RawFd,
    pub outcome: Outcome,
}

/// How the job ended.
pub struct Ended {
    pub job_pid: Option<i32>,
    pub outcome: Outcome,
    pub exit: Exit,
    /// Signal that ended the main process.
    pub signal: Option<i32>,
    /// Signals runonce sent, in order, without repeats.
    pub sent: Vec<i32>,
    pub leftovers: u32,
    pub forwarded: Option<i32>,
    pub duration: Duration,
    /// The main process's own resource use (with its reaped children).
    pub main_rusage: Option<libc::rusage>,
    pub usage: Usage,
    pub held: Option<Held>,
    pub tail: Option<Tail>,
    pub output_lost: u64,
    pub message: Option<String>,
}

/// What this attempt's processes used: the sum over every process runonce
/// reaped (each one's figures hold its own reaped children's), so that an
/// attempt's record is its own, unlike RUSAGE_CHILDREN, which adds up every
/// attempt before it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    pub user_s: f64,
    pub sys_s: f64,
    pub maxrss_kib: u64,
}

impl Usage {
    fn add(&mut self, ru: &libc::rusage) {
        self.user_s += sys::timeval_secs(ru.ru_utime);
        self.sys_s += sys::timeval_secs(ru.ru_stime);
        self.maxrss_kib = self.maxrss_kib.max(u64::try_from(ru.ru_maxrss).unwrap_or(0));
    }
}

/// Told the job's PID and identity (read once) once it runs, and why it
/// could not join its cgroup, if it could not.
pub type Started<'a> = dyn FnMut(i32, Option<ProcId>, Option<&io::Error>) + 'a;

/// Starts the job and supervises it to the end.  `started` is called once
/// the job runs (to record it in the lock file and log the start).
pub fn run(job: &Job, signals: &Signals, started: &mut Started) -> Ended {
    let t0 = Instant::now();
    let (main, report, streams) = match spawn(job) {
        Ok(spawned) => spawned,
        Err((exit, message)) => return failed_start(t0, exit, message),
    };
    let main_id = ProcId::of(main);
    started(main, main_id, report.join.as_ref());
    let mut sup = Supervisor::new(job, main, main_id, streams, t0);
    sup.run(signals);
    sup.finish(t0)
}

/// A job that could not be started: its status and the words saying why.
type NotStarted = (Exit, String);

fn pipe_failed(e: io::Error) -> NotStarted {
    (Exit::OwnFailure, format!("pipe: {e}"))
}

/// Forks and execs the job (its output through pipes if runonce must read
/// it): the job's PID, what the child said about its set-up, the streams.
fn spawn(job: &Job) -> Result<(i32, ChildReport, Vec<Stream>), NotStarted> {
    let name = job.cfg.argv[0].to_string_lossy();
    let mut cmd = spawn::Command::new(&job.cfg.argv, job.env)
        .map_err(|e| (Exit::OwnFailure, format!("{name}: cannot start: {e}")))?;
    if !job.cfg.foreground {
        cmd.process_group();
    }
    let capture = job.cfg.quiet || job.cfg.idle_timeout.is_some() || job.tail().is_some();
    let streams = if capture { capture_output(&mut cmd)? } else { Vec::new() };
    let (report_r, report_w) = sys::pipe().map_err(pipe_failed)?;
    let setup = ChildSetup {
        unblock: sys::SigSet::of(&[]),
        inherited: job.inherited,
        lock_fd: job.lock_fd,
        limits: job.limits.clone(),
        strict: job.cfg.strict_limits,
        joins: [false, true]
            .map(|placed| job.cgroup.map(|c| c.join_fds(placed)).unwrap_or_default()),
        report: report_w.as_raw_fd(),
    };
    // SAFETY: the closure runs in the child before exec and only makes
    // async-signal-safe system calls on data prepared in the parent (no
    // allocation, no locks).
    let spawned =
        unsafe { cmd.spawn(job.cgroup.and_then(Cgroup::v2_dir), &|placed| setup.apply(placed)) };
    // the child wrote its report before exec (or failed), and spawn()
    // returns only after that: everything is in the pipe now
    drop(report_w);
    let report = ChildReport::read(&report_r);
    let child = spawned.map_err(|e| {
        let (code, what) = match &report.setup {
            Some(setup) => (Exit::OwnFailure, format!("cannot set up the job: {setup}")),
            None => spawn_failure(&e),
        };
        (code, format!("{name}: {what}"))
    })?;
    drop(cmd); // closes our copies of the pipes' write ends
    Ok((child.pid, report, streams))
}

/// The job's stdout and stderr go through pipes runonce reads.
fn capture_output(cmd: &mut spawn::Command) -> Result<Vec<Stream>, NotStarted> {
    let mut streams = Vec::new();
    for dst in [1, 2] {
        let (r, w) = sys::pipe().map_err(pipe_failed)?;
        cmd.output(dst, w).map_err(pipe_failed)?;
        streams.push(Stream::new(r, dst).map_err(pipe_failed)?);
    }
    Ok(streams)
}

/// Exit status and words for a command that could not be started: not
/// found 127, not executable 126, but a shortage of runonce's (descriptors,
/// memory, processes) is runonce's own failure, 125, as a failed fork is
/// for timeout(1).
fn spawn_failure(e: &io::Error) -> (Exit, String) {
    match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EAGAIN) => {
            (Exit::OwnFailure, format!("cannot start: {e}"))
        }
        _ => match Exit::exec_error(e) {
            Exit::NotFound => (Exit::NotFound, "command not found".into()),
            exit => (exit, format!("cannot execute: {e}")),
        },
    }
}

/// What the child said about its set-up between fork and exec, through a
/// close-on-exec pipe: a cgroup it could not join (the job then runs
/// contained by its process group), or a step that failed and stopped it.
/// Only the child can say: a check from outside races the job's exit.
#[derive(Debug, Default)]
struct ChildReport {
    join: Option<io::Error>,
    setup: Option<io::Error>,
}

impl ChildReport {
    const JOIN: u8 = b'j';
    const SETUP: u8 = b's';

    /// Async-signal-safe: one write(2) of a tag and an errno.
    fn send(fd: RawFd, tag: u8, err: &io::Error) {
        let errno = err.raw_os_error().unwrap_or(0).to_ne_bytes();
        let msg = [tag, errno[0], errno[1], errno[2], errno[3]];
        // SAFETY: write(2) of a stack buffer; nothing to do if it fails.
        unsafe { libc::write(fd, msg.as_ptr().cast(), msg.len()) };
    }

    fn read(fd: &OwnedFd) -> ChildReport {
        let mut report = ChildReport::default();
        let _ = sys::set_nonblocking(fd);
        let mut buf = [0u8; 64];
        let n = sys::read_fd(fd.as_raw_fd(), &mut buf).unwrap_or(0);
        for msg in buf[..n].chunks_exact(5) {
            let err =
                io::Error::from_raw_os_error(i32::from_ne_bytes([msg[1], msg[2], msg[3], msg[4]]));
            match msg[0] {
                Self::JOIN => report.join = Some(err),
                _ => report.setup = Some(err),
            }
        }
        report
    }
}

fn failed_start(t0: Instant, exit: Exit, message: String) -> Ended {
    Ended {
        job_pid: None,
        outcome: Outcome::Error,
        exit,
        signal: None,
        sent: Vec::new(),
        leftovers: 0,
        forwarded: None,
        duration: t0.elapsed(),
        main_rusage: None,
        held: None,
        tail: None,
        output_lost: 0,
        message: Some(message),
        usage: Usage::default(),
    }
}

/// Everything the child does between fork and exec, prepared beforehand.
struct ChildSetup {
    unblock: sys::SigSet,
    inherited: Inherited,
    lock_fd: RawFd,
    limits: limits::Plan,
    strict: bool,
    /// The `cgroup.procs` files to write "0" into: after a fork, and
    /// (`[1]`) when the child was made in its v2 cgroup.
    joins: [Vec<RawFd>; 2],
    /// Write end of the `ChildReport` pipe.
    report: RawFd,
}

impl ChildSetup {
    /// Async-signal-safe only.
    fn apply(&self, placed: bool) -> io::Result<()> {
        let result = self.set_up(&self.joins[usize::from(placed)]);
        if let Err(e) = &result {
            ChildReport::send(self.report, ChildReport::SETUP, e);
        }
        result
    }

    fn set_up(&self, joins: &[RawFd]) -> io::Result<()> {
        // SAFETY: plain system calls on values prepared in the parent.
        unsafe {
            // std passes runonce's signal mask on; the job gets an empty one
            libc::pthread_sigmask(libc::SIG_SETMASK, self.unblock.as_ptr(), std::ptr::null_mut());
            // the lock stays held while any process of the job lives
            libc::fcntl(self.lock_fd, libc::F_SETFD, 0);
            for &fd in joins {
                // "0" moves the writing process; children follow it
                if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    let e = io::Error::last_os_error();
                    if self.strict {
                        return Err(e);
                    }
                    ChildReport::send(self.report, ChildReport::JOIN, &e);
                }
            }
        }
        // std resets SIGPIPE to default; keep an inherited "ignore"
        sys::set_disposition(libc::SIGPIPE, self.inherited.sigpipe_ignored);
        if self.inherited.sigchld_ignored {
            sys::set_disposition(libc::SIGCHLD, true);
        }
        limits::apply_in_child(&self.limits, self.strict)
    }
}

struct Supervisor<'a> {
    job: &'a Job<'a>,
    main: i32,
    main_id: Option<ProcId>,
    main_status: Option<sys::Reaped>,
    /// No process of the job is left (waitpid said ECHILD, or only
    /// strangers are left).
    no_children: bool,
    deadline: Option<Instant>,
    idle_deadline: Option<Instant>,
    escalation: Escalating,
    stopped_by: Option<Outcome>,
    forwarded: Option<i32>,
    sent: Vec<i32>,
    leftovers: u32,
    streams: Vec<Stream>,
    held: Option<Held>,
    tail: Option<Tail>,
    pipe_grace: Option<Instant>,
    strangers: Strangers,
    usage: Usage,
}

impl<'a> Supervisor<'a> {
    fn new(
        job: &'a Job<'a>,
        main: i32,
        main_id: Option<ProcId>,
        streams: Vec<Stream>,
        t0: Instant,
    ) -> Supervisor<'a> {
        let mut strangers = job.strangers.clone();
        strangers.job_started(main_id);
        Supervisor {
            job,
            main,
            main_id,
            main_status: None,
            no_children: false,
            deadline: job.cfg.timeout.and_then(|t| t0.checked_add(t)),
            idle_deadline: job.cfg.idle_timeout.and_then(|t| t0.checked_add(t)),
            escalation: job.cfg.stop.begin(),
            stopped_by: None,
            forwarded: None,
            sent: Vec::new(),
            leftovers: 0,
            streams,
            held: job.cfg.quiet.then(Held::default),
            tail: job.tail().map(Tail::new),
            pipe_grace: None,
            strangers,
            usage: Usage::default(),
        }
    }

    fn run(&mut self, signals: &Signals) {
        loop {
            let drained = self.reap();
            let now = Instant::now();
            self.fire_deadlines(now);
            if self.escalation.killing() && !self.no_children {
                self.send(self.escalation.kill_signal());
            }
            if self.job_gone() {
                if self.streams.iter().all(|s| !s.is_open()) {
                    return;
                }
                let grace = *self.pipe_grace.get_or_insert(now + PIPE_GRACE);
                if now >= grace {
                    self.streams.iter_mut().for_each(Stream::close);
                    return;
                }
            }
            // zombies still waiting: look at the descriptors, do not sleep
            let until = if drained { None } else { Some(now) };
            self.wait(signals, now, until);
        }
    }

    /// The job is over: its main process exited, and so did every other
    /// process, unless `--keep-orphans` lets them live (not after a
    /// timeout: a hard stop stops the whole job).
    fn job_gone(&self) -> bool {
        let all_needed = !self.job.cfg.keep_orphans || self.stopped_by.is_some();
        self.main_status.is_some() && (self.no_children || !all_needed)
    }

    /// Reaps what has exited, for at most `REAP_SLICE`: a fork bomb makes
    /// zombies (orphans re-parented to runonce) as fast as they are reaped,
    /// and the deadlines must still fire.  False if zombies may be left.
    fn reap(&mut self) -> bool {
        let until = Instant::now() + REAP_SLICE;
        while Instant::now() < until {
            match sys::reap_any() {
                Ok(Some(r)) => {
                    if self.strangers.reaped(r.pid) {
                        continue;
                    }
                    self.usage.add(&r.rusage);
                    if r.pid == self.main {
                        self.main_status = Some(r);
                        self.main_exited();
                    }
                }
                Ok(None) => {
                    // runonce still has children, but maybe only strangers
                    if self.main_status.is_some()
                        && !self.strangers.is_empty()
                        && self.members().is_empty()
                    {
                        self.no_children = true;
                    }
                    return true;
                }
                Err(_) => {
                    self.no_children = true;
                    return true;
                }
            }
        }
        false
    }

    /// The main process is gone: what it left behind gets `--signal`, then
    /// SIGKILL after `--kill-after` (no survivors), unless `--keep-orphans`.
    fn main_exited(&mut self) {
        if self.job.cfg.keep_orphans && self.stopped_by.is_none() {
            return;
        }
        // a timeout has signalled every process of the job already, and its
        // grace ends in SIGKILL rounds for whatever is left: a second walk
        // over /proc (a read per process on the machine, the bulk of the
        // kill's cost with a big tree) would only send the signal again
        if self.stopped_by.is_some() && self.escalation.started() {
            return;
        }
        // runonce is a subreaper: with no child left there is no descendant
        // either, and the usual run skips a walk over every process in /proc
        if !sys::has_children() {
            return;
        }
        let left = self.members();
        if left.is_empty() {
            return;
        }
        if self.stopped_by.is_none() && self.forwarded.is_none() {
            self.leftovers = left.len() as u32;
        }
        if !self.escalation.killing() {
            // the main process is reaped, so there is no group to signal
            // first: the walk just made is the one to use
            let sigs = self.escalation.start(Instant::now());
            self.record_sent(&sigs);
            self.signal_job(&sigs, Some(&left));
        }
    }

    /// The live processes of the job other than a main process in its own
    /// group: runonce's descendants, strangers left out.
    fn members(&self) -> Vec<procs::Member> {
        procs::descendants_except(sys::getpid(), &self.strangers)
    }

    fn fire_deadlines(&mut self, now: Instant) {
        let running = self.main_status.is_none();
        if running && self.stopped_by.is_none() {
            if self.deadline.is_some_and(|d| d <= now) {
                self.stop(Outcome::Timeout, now);
            } else if self.idle_deadline.is_some_and(|d| d <= now) {
                self.stop(Outcome::Idle, now);
            }
        }
        // the grace is over: SIGKILL now, and the first round from `run`
        // right after it, so that a process forked while this one went out
        // is not left for a whole KILL_ROUND
        let was_killing = self.escalation.killing();
        if self.escalation.kill_due(now) && !was_killing {
            self.send(self.escalation.kill_signal());
        }
    }

    /// A timeout or idle timeout: the first signal now, SIGKILL later.
    fn stop(&mut self, why: Outcome, now: Instant) {
        self.stopped_by = Some(why);
        let sigs = self.escalation.start(now);
        self.send_all(&sigs);
    }

    /// Sends `sig` to every process of the job: the process group while
    /// its leader is unreaped (so the group ID cannot have been reused),
    /// then each descendant outside the group, identified by PID and start
    /// time through a pidfd; and the job's cgroup.
    fn send(&mut self, sig: i32) {
        self.send_all(&[sig]);
    }

    /// Sends each of `sigs`, in order, to every process of the job, with
    /// one walk over /proc for all of them: a walk costs a read per process
    /// on the machine, and a big tree makes each one slow.
    fn send_all(&mut self, sigs: &[i32]) {
        self.record_sent(sigs);
        self.signal_job(sigs, None);
    }

    fn record_sent(&mut self, sigs: &[i32]) {
        for &sig in sigs {
            if sig != libc::SIGCONT && !self.sent.contains(&sig) {
                self.sent.push(sig);
            }
        }
    }

    /// `members`: the descendants if just looked up, else they are looked
    /// up after the process group is signalled (so that a process leaving
    /// the group meanwhile is found outside it).
    fn signal_job(&self, sigs: &[i32], members: Option<&[procs::Member]>) {
        let group = if self.main_status.is_none() && !self.job.cfg.foreground {
            for &sig in sigs {
                let _ = sys::kill(-self.main, sig);
            }
            Some(self.main)
        } else {
            None
        };
        // every process in the cgroup is already dying: the walk of /proc
        // (slow with thousands of zombies) for processes that left the
        // cgroup can wait until it has emptied
        if let Some(cg) = self.job.cgroup
            && sigs.contains(&libc::SIGKILL)
            && cg.kill()
            && cg.populated()
        {
            return;
        }
        if self.main_status.is_none()
            && self.job.cfg.foreground
            && let Some(id) = self.main_id
        {
            id.signal_each(sigs);
        }
        // the cgroup's members at once from its list; the walk below then
        // only looks for processes that left the cgroup
        let listed =
            self.job.cgroup.and_then(|cg| cg.signal_v2_members(sigs, group)).unwrap_or_default();
        let walked;
        let members = match (members, self.job.cgroup) {
            (Some(m), _) => m,
            (None, Some(cg)) if !listed.is_empty() => {
                // everyone from the hierarchy's lists, not /proc: listing
                // /proc makes a dentry for each of a big tree's processes,
                // which the kernel then drops as each is reaped (most of
                // runonce's CPU in the kill of 10,000, bench/RESULTS.md)
                walked = procs::descendants_outside(
                    sys::getpid(),
                    self.job.strangers,
                    &listed,
                    cg.hierarchy_pids(),
                    |p| cg.holds(p),
                );
                &walked
            }
            (None, _) => {
                walked = self.members();
                &walked
            }
        };
        for p in members {
            if group != Some(p.pgrp) && !listed.contains(&p.id.pid) {
                p.id.signal_each(sigs);
            }
        }
    }

    /// Forwards a signal runonce received to every process of the job.
    fn forward(&mut self, sig: i32) {
        self.forwarded = Some(sig);
        self.signal_job(&[sig], None);
    }

    /// Waits for a signal, the pipes, or the next deadline (or `until`).
    fn wait(&mut self, signals: &Signals, now: Instant, until: Option<Instant>) {
        let passthrough = self.held.is_none();
        let mut fds = vec![signals.pollfd()];
        let mut owners = vec![(usize::MAX, false)];
        let stop_source = self.job.stop_source.filter(|_| self.running_unstopped());
        if let Some(src) = stop_source {
            fds.push(sys::pollfd(src.fd, libc::POLLIN));
            owners.push((STOP_SOURCE, false));
        }
        for (i, s) in self.streams.iter().enumerate() {
            let [read, write] = s.poll_entries(passthrough);
            if let Some(r) = read {
                fds.push(r);
                owners.push((i, false));
            }
            if let Some(w) = write {
                fds.push(w);
                owners.push((i, true));
            }
        }
        let rounds_over = self.escalation.killing() && self.no_children;
        let escalation = self.escalation.next(now, KILL_ROUND).filter(|_| !rounds_over);
        let mut next = [escalation, self.pipe_grace, until].into_iter().flatten().min();
        // a timeout that has fired is over: left in, its deadline (now in
        // the past) would make every poll return at once, a busy loop for
        // the whole --kill-after grace
        if self.running_unstopped() {
            next = [next, self.deadline, self.idle_deadline].into_iter().flatten().min();
        }
        let timeout = next.map(|n| n.saturating_duration_since(now));
        if sys::poll(&mut fds, timeout).is_err() {
            return;
        }
        for (fd, &(owner, is_write)) in fds.iter().zip(&owners) {
            if fd.revents == 0 {
                continue;
            }
            if owner == usize::MAX {
                self.drain_signals(signals);
                continue;
            }
            if owner == STOP_SOURCE {
                if let Some(src) = stop_source
                    && self.running_unstopped()
                {
                    self.stop(src.outcome, Instant::now());
                }
                continue;
            }
            let stream = &mut self.streams[owner];
            if is_write {
                stream.write();
            } else if stream.read(self.held.as_mut(), self.tail.as_mut()) > 0
                && let Some(idle) = self.job.cfg.idle_timeout
            {
                self.idle_deadline = Instant::now().checked_add(idle);
            }
        }
    }

    /// The main process runs and nothing has stopped it yet.
    fn running_unstopped(&self) -> bool {
        self.main_status.is_none() && self.stopped_by.is_none()
    }

    fn drain_signals(&mut self, signals: &Signals) {
        for (meaning, got) in signals.pending() {
            match meaning {
                Meaning::Child | Meaning::Own => {}
                // a continued job goes on as it was: nothing else to note
                Meaning::Continue => self.signal_job(&[libc::SIGCONT], None),
                // with --foreground the job shares runonce's process group:
                // the terminal's ^C already reached it, forwarding would
                // double it
                Meaning::Terminate(sig)
                    if self.job.cfg.foreground && got.code == libc::SI_KERNEL =>
                {
                    self.forwarded = Some(sig);
                }
                Meaning::Terminate(sig) => self.forward(sig),
            }
        }
    }

    fn finish(mut self, t0: Instant) -> Ended {
        for s in &mut self.streams {
            s.flush();
        }
        let status = self.main_status;
        let output_lost = self.streams.iter().map(|s| s.lost).sum::<u64>()
            + self.held.as_ref().map_or(0, |h| h.lost);
        let main_signal = status.and_then(|s| s.signal());
        let (outcome, exit) = match (self.stopped_by, status) {
            (Some(why), _) => (why, Exit::TimedOut),
            (None, Some(s)) => match (s.exit_code(), s.signal()) {
                (Some(0), _) => (Outcome::Ok, Exit::Success),
                (Some(c), _) => (Outcome::Failed, Exit::Job(c as u8)),
                (None, Some(sig)) => (Outcome::Signaled, Exit::Signal(sig)),
                (None, None) => (Outcome::Error, Exit::OwnFailure),
            },
            (None, None) => (Outcome::Error, Exit::OwnFailure),
        };
        Ended {
            job_pid: Some(self.main),
            outcome,
            exit,
            signal: main_signal,
            sent: self.sent,
            leftovers: self.leftovers,
            forwarded: self.forwarded,
            duration: t0.elapsed(),
            main_rusage: status.map(|s| s.rusage),
            usage: self.usage,
            held: self.held,
            tail: self.tail,
            output_lost,
            message: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_report_round_trip() {
        let (r, w) = sys::pipe().unwrap();
        let eacces = io::Error::from_raw_os_error(libc::EACCES);
        let enospc = io::Error::from_raw_os_error(libc::ENOSPC);
        ChildReport::send(w.as_raw_fd(), ChildReport::JOIN, &eacces);
        ChildReport::send(w.as_raw_fd(), ChildReport::SETUP, &enospc);
        drop(w);
        let report = ChildReport::read(&r);
        assert_eq!(report.join.and_then(|e| e.raw_os_error()), Some(libc::EACCES));
        assert_eq!(report.setup.and_then(|e| e.raw_os_error()), Some(libc::ENOSPC));
        let (r, _w) = sys::pipe().unwrap();
        let empty = ChildReport::read(&r);
        assert!(empty.join.is_none() && empty.setup.is_none(), "nothing said, nothing wrong");
    }

    #[test]
    fn shortages_at_spawn_are_runonces_own_failure() {
        let code = |errno| spawn_failure(&io::Error::from_raw_os_error(errno)).0;
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOMEM, libc::EAGAIN] {
            assert_eq!(code(errno), Exit::OwnFailure, "{errno}");
        }
        assert_eq!(code(libc::ENOENT), Exit::NotFound);
        for errno in [libc::EACCES, libc::ENOEXEC, libc::ETXTBSY, libc::E2BIG] {
            assert_eq!(code(errno), Exit::NotExecutable, "{errno}");
        }
    }
}
