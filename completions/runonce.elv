
use builtin;
use str;

set edit:completion:arg-completer[runonce] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'runonce'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'runonce'= {
            cand -n 'Job name: [A-Za-z0-9._-], 1-64 characters; names the lock, log tag, state and metrics [default: basename of COMMAND plus a hash of the whole command line]'
            cand --name 'Job name: [A-Za-z0-9._-], 1-64 characters; names the lock, log tag, state and metrics [default: basename of COMMAND plus a hash of the whole command line]'
            cand -l 'Lock file to use instead of the one derived from the name'
            cand --lock 'Lock file to use instead of the one derived from the name'
            cand --lock-dir 'Directory of lock files [default: /run/runonce for root, else $XDG_RUNTIME_DIR/runonce, else /tmp/runonce-UID]'
            cand --busy-exit 'Exit code when the job is busy and the run is skipped'
            cand -w 'Wait for the lock, forever or up to DURATION (attached: --wait=5m, -w5m), then skip; a waiting run goes before runs that only try'
            cand --wait 'Wait for the lock, forever or up to DURATION (attached: --wait=5m, -w5m), then skip; a waiting run goes before runs that only try'
            cand --slots 'Allow up to N instances of this job at once (a semaphore)'
            cand -t 'Hard wall-clock limit for the whole job; 0 means none'
            cand --timeout 'Hard wall-clock limit for the whole job; 0 means none'
            cand -k 'Grace between the first signal and SIGKILL'
            cand --kill-after 'Grace between the first signal and SIGKILL'
            cand --idle-timeout 'Treat no output on stdout and stderr for DURATION as a hang'
            cand -m 'Memory cap: RLIMIT_DATA per process, and memory limit of the job''s cgroup where runonce can create one (512M, 1G, 1.5GiB, bytes)'
            cand --memory 'Memory cap: RLIMIT_DATA per process, and memory limit of the job''s cgroup where runonce can create one (512M, 1G, 1.5GiB, bytes)'
            cand --cpu 'CPU-time cap per process (RLIMIT_CPU): SIGXCPU, then SIGKILL 1s later'
            cand --nofile 'Maximum number of open files per process (RLIMIT_NOFILE)'
            cand --nproc 'Maximum number of processes of the job: the pids cgroup controller where available, else RLIMIT_NPROC (per user)'
            cand --nice 'Lower the CPU priority by N (nice value, -20..19)'
            cand --contain 'How to hold the job''s processes: auto = its own cgroup where runonce can create one (root, or a delegated cgroup v2), else the process group; cgroup = exit 125 if no cgroup can be made; pgroup = process group and subreaper only'
            cand --syslog-facility 'Syslog facility'
            cand --syslog-socket 'Syslog socket'
            cand --state-dir 'Directory of per-job state [default: /var/lib/runonce for root, else $XDG_STATE_HOME/runonce]'
            cand --metrics-dir 'Write a Prometheus textfile runonce_NAME.prom into DIR (for node_exporter), when the job starts and when the run ends'
            cand --status 'Report the state of one job, or of all jobs'
            cand --forget 'Remove an idle job''s state, lock files and (with --metrics-dir) its metrics file, so that --status no longer lists it'
            cand --jitter 'Sleep a random time in [0, DURATION) before taking the lock'
            cand --retries 'Rerun a failed attempt up to N times, holding the lock; a timeout only with --retry-on-timeout; a forwarded signal stops the retries'
            cand --retry-delay 'Pause before the first retry; doubles each time, +-20% jitter'
            cand --retry-max-delay 'Longest pause between retries'
            cand --max-failures 'Circuit breaker: after N consecutive failed runs, skip runs until --cooldown has passed since the last failure'
            cand --cooldown 'How long the circuit breaker stays open'
            cand --lock-url 'Also take a lease in PostgreSQL, so that one host at a time runs the job (postgres://USER@HOST/DB?sslmode=..., or host=... dbname=...); keep the password in PGPASSWORD or ~/.pgpass'
            cand --lease 'Length of the lease, renewed every third of it while the job runs; a host that dies frees it after at most this long'
            cand --lock-at-least 'Keep the lease until at least DURATION after it was taken, so that a host whose clock is late does not run the same slot again'
            cand --ping 'Ping URL (healthchecks.io): URL/start when the job starts, URL on success, URL/EXIT on failure, with the output''s last 10 KiB; never delays or fails the job.  The URL is a secret: prefer the environment variable to the command line'
            cand --check-crontab 'Check crontabs (- for stdin; default: yours through crontab -l, and for root /etc/crontab and /etc/cron.d): each job line''s protection, what it risks and its safe rewrite; exit 0 if runonce protects every job line, 1 if not, 125 if a file is not a crontab'
            cand --fix-crontab 'Rewrite FILE in place (keeping FILE.runonce-bak), or stdin to stdout for -, so that every job line runs under runonce'
            cand -s 'First signal sent on timeout, by name (TERM, SIGINT, hup) or number'
            cand --signal 'First signal sent on timeout, by name (TERM, SIGINT, hup) or number'
            cand --log 'Where records go: syslog, stderr, json:PATH, none (repeatable) [default: syslog]'
            cand --replace 'Terminate the running instance (its whole process tree) and run in its place'
            cand --foreground 'Leave the command in runonce''s process group so it can use the terminal; only its own process tree is signalled'
            cand --keep-orphans 'Let processes the command leaves behind live on (the lock is released when runonce exits)'
            cand --io-idle 'Run with idle I/O priority'
            cand --strict-limits 'Refuse to run (exit 125) when a limit cannot be applied'
            cand -q 'chronic(1) mode: print the command''s output only if the run failed'
            cand --quiet 'chronic(1) mode: print the command''s output only if the run failed'
            cand --json 'With --status or --check-crontab: print JSON'
            cand --retry-on-timeout 'Retry an attempt that timed out, too'
            cand --lock-url-optional 'When the database cannot be reached, run under the local lock alone (with a warning) instead of failing (exit 125)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
    ]
    $completions[$command]
}
