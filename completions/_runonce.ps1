
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'runonce' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'runonce'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'runonce' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Job name: [A-Za-z0-9._-], 1-64 characters; names the lock, log tag, state and metrics [default: basename of COMMAND plus a hash of the whole command line]')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'Job name: [A-Za-z0-9._-], 1-64 characters; names the lock, log tag, state and metrics [default: basename of COMMAND plus a hash of the whole command line]')
            [CompletionResult]::new('-l', '-l', [CompletionResultType]::ParameterName, 'Lock file to use instead of the one derived from the name')
            [CompletionResult]::new('--lock', '--lock', [CompletionResultType]::ParameterName, 'Lock file to use instead of the one derived from the name')
            [CompletionResult]::new('--lock-dir', '--lock-dir', [CompletionResultType]::ParameterName, 'Directory of lock files [default: /run/runonce for root, else $XDG_RUNTIME_DIR/runonce, else /tmp/runonce-UID]')
            [CompletionResult]::new('--busy-exit', '--busy-exit', [CompletionResultType]::ParameterName, 'Exit code when the job is busy and the run is skipped')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'Wait for the lock, forever or up to DURATION (attached: --wait=5m, -w5m), then skip; a waiting run goes before runs that only try')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait for the lock, forever or up to DURATION (attached: --wait=5m, -w5m), then skip; a waiting run goes before runs that only try')
            [CompletionResult]::new('--slots', '--slots', [CompletionResultType]::ParameterName, 'Allow up to N instances of this job at once (a semaphore)')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Hard wall-clock limit for the whole job; 0 means none')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Hard wall-clock limit for the whole job; 0 means none')
            [CompletionResult]::new('-k', '-k', [CompletionResultType]::ParameterName, 'Grace between the first signal and SIGKILL')
            [CompletionResult]::new('--kill-after', '--kill-after', [CompletionResultType]::ParameterName, 'Grace between the first signal and SIGKILL')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Treat no output on stdout and stderr for DURATION as a hang')
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Memory cap: RLIMIT_DATA per process, and memory limit of the job''s cgroup where runonce can create one (512M, 1G, 1.5GiB, bytes)')
            [CompletionResult]::new('--memory', '--memory', [CompletionResultType]::ParameterName, 'Memory cap: RLIMIT_DATA per process, and memory limit of the job''s cgroup where runonce can create one (512M, 1G, 1.5GiB, bytes)')
            [CompletionResult]::new('--cpu', '--cpu', [CompletionResultType]::ParameterName, 'CPU-time cap per process (RLIMIT_CPU): SIGXCPU, then SIGKILL 1s later')
            [CompletionResult]::new('--nofile', '--nofile', [CompletionResultType]::ParameterName, 'Maximum number of open files per process (RLIMIT_NOFILE)')
            [CompletionResult]::new('--nproc', '--nproc', [CompletionResultType]::ParameterName, 'Maximum number of processes of the job: the pids cgroup controller where available, else RLIMIT_NPROC (per user)')
            [CompletionResult]::new('--nice', '--nice', [CompletionResultType]::ParameterName, 'Lower the CPU priority by N (nice value, -20..19)')
            [CompletionResult]::new('--contain', '--contain', [CompletionResultType]::ParameterName, 'How to hold the job''s processes: auto = its own cgroup where runonce can create one (root, or a delegated cgroup v2), else the process group; cgroup = exit 125 if no cgroup can be made; pgroup = process group and subreaper only')
            [CompletionResult]::new('--syslog-facility', '--syslog-facility', [CompletionResultType]::ParameterName, 'Syslog facility')
            [CompletionResult]::new('--syslog-socket', '--syslog-socket', [CompletionResultType]::ParameterName, 'Syslog socket')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Directory of per-job state [default: /var/lib/runonce for root, else $XDG_STATE_HOME/runonce]')
            [CompletionResult]::new('--metrics-dir', '--metrics-dir', [CompletionResultType]::ParameterName, 'Write a Prometheus textfile runonce_NAME.prom into DIR (for node_exporter), when the job starts and when the run ends')
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Report the state of one job, or of all jobs')
            [CompletionResult]::new('--forget', '--forget', [CompletionResultType]::ParameterName, 'Remove an idle job''s state, lock files and (with --metrics-dir) its metrics file, so that --status no longer lists it')
            [CompletionResult]::new('--jitter', '--jitter', [CompletionResultType]::ParameterName, 'Sleep a random time in [0, DURATION) before taking the lock')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Rerun a failed attempt up to N times, holding the lock; a timeout only with --retry-on-timeout; a forwarded signal stops the retries')
            [CompletionResult]::new('--retry-delay', '--retry-delay', [CompletionResultType]::ParameterName, 'Pause before the first retry; doubles each time, +-20% jitter')
            [CompletionResult]::new('--retry-max-delay', '--retry-max-delay', [CompletionResultType]::ParameterName, 'Longest pause between retries')
            [CompletionResult]::new('--max-failures', '--max-failures', [CompletionResultType]::ParameterName, 'Circuit breaker: after N consecutive failed runs, skip runs until --cooldown has passed since the last failure')
            [CompletionResult]::new('--cooldown', '--cooldown', [CompletionResultType]::ParameterName, 'How long the circuit breaker stays open')
            [CompletionResult]::new('--lock-url', '--lock-url', [CompletionResultType]::ParameterName, 'Also take a lease in PostgreSQL, so that one host at a time runs the job (postgres://USER@HOST/DB?sslmode=..., or host=... dbname=...); keep the password in PGPASSWORD or ~/.pgpass')
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Length of the lease, renewed every third of it while the job runs; a host that dies frees it after at most this long')
            [CompletionResult]::new('--lock-at-least', '--lock-at-least', [CompletionResultType]::ParameterName, 'Keep the lease until at least DURATION after it was taken, so that a host whose clock is late does not run the same slot again')
            [CompletionResult]::new('--ping', '--ping', [CompletionResultType]::ParameterName, 'Ping URL (healthchecks.io): URL/start when the job starts, URL on success, URL/EXIT on failure, with the output''s last 10 KiB; never delays or fails the job.  The URL is a secret: prefer the environment variable to the command line')
            [CompletionResult]::new('--check-crontab', '--check-crontab', [CompletionResultType]::ParameterName, 'Check crontabs (- for stdin; default: yours through crontab -l, and for root /etc/crontab and /etc/cron.d): each job line''s protection, what it risks and its safe rewrite; exit 0 if runonce protects every job line, 1 if not, 125 if a file is not a crontab')
            [CompletionResult]::new('--fix-crontab', '--fix-crontab', [CompletionResultType]::ParameterName, 'Rewrite FILE in place (keeping FILE.runonce-bak), or stdin to stdout for -, so that every job line runs under runonce')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'First signal sent on timeout, by name (TERM, SIGINT, hup) or number')
            [CompletionResult]::new('--signal', '--signal', [CompletionResultType]::ParameterName, 'First signal sent on timeout, by name (TERM, SIGINT, hup) or number')
            [CompletionResult]::new('--log', '--log', [CompletionResultType]::ParameterName, 'Where records go: syslog, stderr, json:PATH, none (repeatable) [default: syslog]')
            [CompletionResult]::new('--replace', '--replace', [CompletionResultType]::ParameterName, 'Terminate the running instance (its whole process tree) and run in its place')
            [CompletionResult]::new('--foreground', '--foreground', [CompletionResultType]::ParameterName, 'Leave the command in runonce''s process group so it can use the terminal; only its own process tree is signalled')
            [CompletionResult]::new('--keep-orphans', '--keep-orphans', [CompletionResultType]::ParameterName, 'Let processes the command leaves behind live on (the lock is released when runonce exits)')
            [CompletionResult]::new('--io-idle', '--io-idle', [CompletionResultType]::ParameterName, 'Run with idle I/O priority')
            [CompletionResult]::new('--strict-limits', '--strict-limits', [CompletionResultType]::ParameterName, 'Refuse to run (exit 125) when a limit cannot be applied')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'chronic(1) mode: print the command''s output only if the run failed')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'chronic(1) mode: print the command''s output only if the run failed')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'With --status or --check-crontab: print JSON')
            [CompletionResult]::new('--retry-on-timeout', '--retry-on-timeout', [CompletionResultType]::ParameterName, 'Retry an attempt that timed out, too')
            [CompletionResult]::new('--lock-url-optional', '--lock-url-optional', [CompletionResultType]::ParameterName, 'When the database cannot be reached, run under the local lock alone (with a warning) instead of failing (exit 125)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
