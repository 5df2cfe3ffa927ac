complete -c runonce -s n -l name -d 'Job name: [A-Za-z0-9._-], 1-64 characters; names the lock, log tag, state and metrics [default: basename of COMMAND plus a hash of the whole command line]' -r -f
complete -c runonce -s l -l lock -d 'Lock file to use instead of the one derived from the name' -r -F
complete -c runonce -l lock-dir -d 'Directory of lock files [default: /run/runonce for root, else $XDG_RUNTIME_DIR/runonce, else /tmp/runonce-UID]' -r -f -a "(__fish_complete_directories)"
complete -c runonce -l busy-exit -d 'Exit code when the job is busy and the run is skipped' -r -f
complete -c runonce -s w -l wait -d 'Wait for the lock, forever or up to DURATION (attached: --wait=5m, -w5m), then skip; a waiting run goes before runs that only try' -r -f
complete -c runonce -l slots -d 'Allow up to N instances of this job at once (a semaphore)' -r -f
complete -c runonce -s t -l timeout -d 'Hard wall-clock limit for the whole job; 0 means none' -r -f
complete -c runonce -s k -l kill-after -d 'Grace between the first signal and SIGKILL' -r -f
complete -c runonce -l idle-timeout -d 'Treat no output on stdout and stderr for DURATION as a hang' -r -f
complete -c runonce -s m -l memory -d 'Memory cap: RLIMIT_DATA per process, and memory limit of the job\'s cgroup where runonce can create one (512M, 1G, 1.5GiB, bytes)' -r -f
complete -c runonce -l cpu -d 'CPU-time cap per process (RLIMIT_CPU): SIGXCPU, then SIGKILL 1s later' -r -f
complete -c runonce -l nofile -d 'Maximum number of open files per process (RLIMIT_NOFILE)' -r -f
complete -c runonce -l nproc -d 'Maximum number of processes of the job: the pids cgroup controller where available, else RLIMIT_NPROC (per user)' -r -f
complete -c runonce -l nice -d 'Lower the CPU priority by N (nice value, -20..19)' -r -f
complete -c runonce -l contain -d 'How to hold the job\'s processes: auto = its own cgroup where runonce can create one (root, or a delegated cgroup v2), else the process group; cgroup = exit 125 if no cgroup can be made; pgroup = process group and subreaper only' -r -f -a "auto\t''
cgroup\t''
pgroup\t''"
complete -c runonce -l syslog-facility -d 'Syslog facility' -r -f
complete -c runonce -l syslog-socket -d 'Syslog socket' -r -F
complete -c runonce -l state-dir -d 'Directory of per-job state [default: /var/lib/runonce for root, else $XDG_STATE_HOME/runonce]' -r -f -a "(__fish_complete_directories)"
complete -c runonce -l metrics-dir -d 'Write a Prometheus textfile runonce_NAME.prom into DIR (for node_exporter), when the job starts and when the run ends' -r -f -a "(__fish_complete_directories)"
complete -c runonce -l jitter -d 'Sleep a random time in [0, DURATION) before taking the lock' -r -f
complete -c runonce -l retries -d 'Rerun a failed attempt up to N times, holding the lock; a timeout only with --retry-on-timeout; a forwarded signal stops the retries' -r -f
complete -c runonce -l retry-delay -d 'Pause before the first retry; doubles each time, +-20% jitter' -r -f
complete -c runonce -l retry-max-delay -d 'Longest pause between retries' -r -f
complete -c runonce -l max-failures -d 'Circuit breaker: after N consecutive failed runs, skip runs until --cooldown has passed since the last failure' -r -f
complete -c runonce -l cooldown -d 'How long the circuit breaker stays open' -r -f
complete -c runonce -l lock-url -d 'Also take a lease in PostgreSQL, so that one host at a time runs the job (postgres://USER@HOST/DB?sslmode=..., or host=... dbname=...); keep the password in PGPASSWORD or ~/.pgpass' -r -f
complete -c runonce -l lease -d 'Length of the lease, renewed every third of it while the job runs; a host that dies frees it after at most this long' -r -f
complete -c runonce -l lock-at-least -d 'Keep the lease until at least DURATION after it was taken, so that a host whose clock is late does not run the same slot again' -r -f
complete -c runonce -l ping -d 'Ping URL (healthchecks.io): URL/start when the job starts, URL on success, URL/EXIT on failure, with the output\'s last 10 KiB; never delays or fails the job.  The URL is a secret: prefer the environment variable to the command line' -r -f
complete -c runonce -l check-crontab -d 'Check crontabs (- for stdin; default: yours through crontab -l, and for root /etc/crontab and /etc/cron.d): each job line\'s protection, what it risks and its safe rewrite; exit 0 if runonce protects every job line, 1 if not, 125 if a file is not a crontab' -r -f
complete -c runonce -l fix-crontab -d 'Rewrite FILE in place (keeping FILE.runonce-bak), or stdin to stdout for -, so that every job line runs under runonce' -r -f
complete -c runonce -s s -l signal -d 'First signal sent on timeout, by name (TERM, SIGINT, hup) or number' -r -f -a "HUP\t''
INT\t''
QUIT\t''
ILL\t''
TRAP\t''
ABRT\t''
BUS\t''
FPE\t''
KILL\t''
USR1\t''
SEGV\t''
USR2\t''
PIPE\t''
ALRM\t''
TERM\t''
STKFLT\t''
CHLD\t''
CONT\t''
STOP\t''
TSTP\t''
TTIN\t''
TTOU\t''
URG\t''
XCPU\t''
XFSZ\t''
VTALRM\t''
PROF\t''
WINCH\t''
IO\t''
PWR\t''
SYS\t''"
complete -c runonce -l log -d 'Where records go: syslog, stderr, json:PATH, none (repeatable) [default: syslog]' -r -f -a "syslog\t''
stderr\t''
json:\t''
none\t''"
complete -c runonce -l status -d 'Report the state of one job, or of all jobs' -r -f -a "(runonce --job-names 2>/dev/null)\t''"
complete -c runonce -l forget -d 'Remove an idle job\'s state, lock files and (with --metrics-dir) its metrics file, so that --status no longer lists it' -r -f -a "(runonce --job-names 2>/dev/null)\t''"
complete -c runonce -l replace -d 'Terminate the running instance (its whole process tree) and run in its place'
complete -c runonce -l foreground -d 'Leave the command in runonce\'s process group so it can use the terminal; only its own process tree is signalled'
complete -c runonce -l keep-orphans -d 'Let processes the command leaves behind live on (the lock is released when runonce exits)'
complete -c runonce -l io-idle -d 'Run with idle I/O priority'
complete -c runonce -l strict-limits -d 'Refuse to run (exit 125) when a limit cannot be applied'
complete -c runonce -s q -l quiet -d 'chronic(1) mode: print the command\'s output only if the run failed'
complete -c runonce -l json -d 'With --status or --check-crontab: print JSON'
complete -c runonce -l retry-on-timeout -d 'Retry an attempt that timed out, too'
complete -c runonce -l lock-url-optional -d 'When the database cannot be reached, run under the local lock alone (with a warning) instead of failing (exit 125)'
complete -c runonce -s h -l help -d 'Print help'
complete -c runonce -s V -l version -d 'Print version'
