//! The rewrite rule (man page, CRONTAB): each job line that runonce does
//! not protect gets `runonce --name NAME --timeout T [translated options]
//! --` in front of its command, or its command inside `sh -c '…'`; the
//! schedule, the user field, the standard input after `%` and every other
//! line stay byte for byte.

use super::files;
use super::parse::{self, Crontab, Item, Job, MAX_COMMAND};
use super::schedule;
use super::shell::{basename, quote};
use super::verdict::{self, Assessment, Inner, Plan, Verdict};
use std::collections::HashSet;

/// The review of one job line.
#[derive(Clone, Debug)]
pub struct Review {
    /// Index in `Crontab::lines`.
    pub index: usize,
    pub assessment: Assessment,
    /// Shortest time between runs, in minutes (None: `@reboot`, or rare).
    pub interval: Option<u64>,
    pub reboot: bool,
    /// The new line, or why the line is not rewritten; None when nothing
    /// is to be done (protected, empty).
    pub fix: Option<Result<Fixed, String>>,
}

#[derive(Clone, Debug)]
pub struct Fixed {
    pub line: Vec<u8>,
    pub name: String,
    pub timeout: Option<String>,
}

/// Reviews every job line of a crontab cron accepts, giving each rewritten
/// line a name not used by another line of the file.  `prefix` starts the
/// new names of a file in /etc/cron.d (its name), so that jobs of two
/// packages' files never share a lock.
pub fn review(crontab: &Crontab, prefix: Option<&str>) -> Vec<Review> {
    let jobs: Vec<(usize, &Job, Assessment)> = crontab
        .lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| match &l.item {
            Item::Job(job) => {
                let cmd = parse::split_command(job.command(&l.text));
                Some((i, job, verdict::assess(&cmd)))
            }
            _ => None,
        })
        .collect();
    let mut used: HashSet<String> = jobs
        .iter()
        .flat_map(|(_, _, a)| a.names.iter().map(|n| String::from_utf8_lossy(n).into_owned()))
        .collect();
    let mut env = Env::default();
    let mut out = Vec::new();
    let mut next_job = jobs.into_iter().peekable();
    for (i, line) in crontab.lines.iter().enumerate() {
        if let Item::Env { name, value } = &line.item {
            env.set(name, value);
        }
        let Some((_, job, assessment)) = next_job.next_if(|(j, _, _)| *j == i) else { continue };
        let interval = job.schedule.shortest_interval();
        let fix = match (&assessment.verdict, &assessment.plan) {
            (Verdict::Protected | Verdict::Empty, _) => None,
            (_, Err(why)) => Some(Err(why.clone())),
            (_, Ok(plan)) => {
                let base = job_name(&assessment.name_words, prefix);
                Some(rewrite(&line.text, job, plan, base, &env, &mut used))
            }
        };
        out.push(Review { index: i, assessment, interval, reboot: job.schedule.reboot, fix });
    }
    out
}

/// The environment lines seen so far (cron applies each to the jobs after
/// it).
#[derive(Default)]
struct Env {
    shell: Option<Vec<u8>>,
    path: Option<Vec<u8>>,
}

impl Env {
    fn set(&mut self, name: &[u8], value: &[u8]) {
        match name {
            b"SHELL" => self.shell = Some(value.to_vec()),
            b"PATH" => self.path = Some(value.to_vec()),
            _ => {}
        }
    }

    /// The program for `-c`: `sh` for cron's default, else the crontab's
    /// SHELL, so the command runs in the shell it was written for.
    fn shell_program(&self) -> Result<Vec<u8>, String> {
        let Some(shell) = &self.shell else { return Ok(b"sh".to_vec()) };
        if shell == b"/bin/sh" {
            return Ok(b"sh".to_vec());
        }
        const POSIX: &[&[u8]] = &[
            b"sh", b"dash", b"bash", b"ksh", b"ksh93", b"mksh", b"lksh", b"pdksh", b"zsh", b"ash",
            b"yash", b"posh", b"busybox",
        ];
        if POSIX.contains(&basename(shell)) {
            Ok(shell.clone())
        } else {
            Err(format!(
                "SHELL={} is not a POSIX shell: runonce does not rewrite its lines",
                String::from_utf8_lossy(shell)
            ))
        }
    }

    /// The PATH cron gives the job.
    pub fn path(&self) -> &[u8] {
        self.path.as_deref().unwrap_or(files::CRON_DEFAULT_PATH)
    }
}

/// The PATH cron gives the job on line `index` (for the runonce check).
pub fn path_at(crontab: &Crontab, index: usize) -> Vec<u8> {
    let mut env = Env::default();
    for line in &crontab.lines[..index] {
        if let Item::Env { name, value } = &line.item {
            env.set(name, value);
        }
    }
    env.path().to_vec()
}

fn rewrite(
    text: &[u8],
    job: &Job,
    plan: &Plan,
    base: String,
    env: &Env,
    used: &mut HashSet<String>,
) -> Result<Fixed, String> {
    let shell_program = env.shell_program()?;
    let raw = job.command(text);
    let cmd = parse::split_command(raw);
    let name = unique(base, used);
    let timeout = match &plan.options.timeout {
        Some(t) => Some(t.clone()),
        None => schedule::derived_timeout(&job.schedule).map(schedule::format_duration),
    };
    let mut words: Vec<Vec<u8>> =
        vec![b"runonce".to_vec(), b"--name".to_vec(), name.clone().into()];
    let mut opt = |o: &str, v: Option<&[u8]>| {
        words.push(o.as_bytes().to_vec());
        if let Some(v) = v {
            words.push(v.to_vec());
        }
    };
    let o = &plan.options;
    if let Some(t) = &timeout {
        opt("--timeout", Some(t.as_bytes()));
    }
    if let Some(k) = &o.kill_after {
        opt("--kill-after", Some(k.as_bytes()));
    }
    if let Some(s) = &o.signal {
        opt("--signal", Some(s.as_bytes()));
    }
    if o.foreground {
        opt("--foreground", None);
    }
    if let Some(l) = &o.lock {
        opt("--lock", Some(l));
    }
    match &o.wait {
        Some(None) => opt("--wait", None),
        Some(Some(w)) => opt(&format!("--wait={w}"), None),
        None => {}
    }
    if let Some(b) = &o.busy_exit {
        opt("--busy-exit", Some(b.as_bytes()));
    }
    if o.replace {
        opt("--replace", None);
    }
    if o.quiet {
        opt("--quiet", None);
    }
    if job.schedule.reboot {
        // once per boot, and often to start something that stays
        opt("--keep-orphans", None);
    }
    opt("--", None);
    let mut prefix: Vec<u8> = words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(&b' ');
    prefix.push(b' ');
    let command = match &plan.inner {
        Inner::Words(offset) => {
            let mut c = parse::escape_command(&prefix, false);
            c.extend_from_slice(&raw[cmd.origin[*offset]..]);
            c
        }
        Inner::Shell(body) => {
            prefix.extend_from_slice(&quote(&shell_program));
            prefix.extend_from_slice(b" -c ");
            prefix.extend_from_slice(&quote(body));
            let mut c = parse::escape_command(&prefix, cmd.input_at.is_some());
            if let Some(at) = cmd.input_at {
                c.extend_from_slice(&raw[at..]);
            }
            c
        }
    };
    let lead = raw.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    if lead + command.len() >= MAX_COMMAND - 1 {
        return Err(format!(
            "the rewritten command would be {} bytes: cron refuses {} or more",
            lead + command.len(),
            MAX_COMMAND - 1
        ));
    }
    let mut line = text[..job.command_start + lead].to_vec();
    line.extend_from_slice(&command);
    Ok(Fixed { line, name, timeout })
}

fn unique(base: String, used: &mut HashSet<String>) -> String {
    let mut name = base.clone();
    let mut n = 2;
    while used.contains(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    used.insert(name.clone());
    name
}

/// The name for a new line: from its command, after the file's prefix
/// unless the command's name starts with it already (`sysstat.debian-sa1`,
/// `certbot`).
fn job_name(words: &[Vec<u8>], prefix: Option<&str>) -> String {
    let base = base_name(words, 0);
    match prefix {
        Some(p) if !base.starts_with(p) => sanitize(format!("{p}.{base}").as_bytes(), 56),
        _ => base,
    }
}

/// Programs that say little by themselves: the name adds their first
/// argument (`run-parts-cron.daily`, `php-artisan`).
fn is_generic(program: &[u8]) -> bool {
    const GENERIC: &[&[u8]] = &[
        b"sh",
        b"bash",
        b"dash",
        b"zsh",
        b"ksh",
        b"run-parts",
        b"invoke-rc.d",
        b"service",
        b"systemctl",
        b"make",
        b"xargs",
        b"java",
        b"docker",
        b"podman",
        b"kubectl",
        b"npm",
        b"npx",
        b"node",
        b"nodejs",
        b"rake",
        b"bundle",
        b"Rscript",
        b"wget",
        b"curl",
    ];
    const FAMILIES: &[&[u8]] = &[b"python", b"perl", b"php", b"ruby", b"node", b"lua"];
    GENERIC.contains(&program) || FAMILIES.iter().any(|f| program.starts_with(f))
}

/// Launchers before the program: the name skips them and their options.
fn launcher_options(program: &[u8]) -> Option<&'static [&'static [u8]]> {
    Some(match program {
        b"nice" => &[b"-n", b"--adjustment"],
        b"ionice" => &[b"-c", b"-n", b"-p", b"-P", b"-u", b"--class", b"--classdata"],
        b"sudo" => &[b"-u", b"-g", b"-C", b"-D", b"-h", b"-p", b"-r", b"-t", b"-U"],
        b"timeout" => &[b"-k", b"--kill-after", b"-s", b"--signal"],
        b"flock" => &[b"-w", b"--wait", b"--timeout", b"-E", b"--conflict-exit-code"],
        b"chrt" | b"taskset" | b"nohup" | b"exec" | b"setsid" | b"stdbuf" | b"time"
        | b"command" | b"env" | b"doas" | b"chronic" | b"run-one" | b"run-this-one" => &[],
        _ => return None,
    })
}

/// A readable job name from the words of the command that does the work
/// (`debian-sa1`, `run-parts-cron.daily`), in runonce's name characters.
pub fn base_name(words: &[Vec<u8>], depth: usize) -> String {
    let mut i = 0;
    while let Some(w) = words.get(i) {
        let program = basename(w);
        let Some(takes_value) = launcher_options(program) else { break };
        i += 1;
        // flock's file and timeout's duration come after their options
        let operand = matches!(program, b"flock" | b"timeout");
        while let Some(a) = words.get(i) {
            if a.starts_with(b"-") && a.len() > 1 {
                i += if takes_value.contains(&&a[..]) { 2 } else { 1 };
            } else if program == b"env" && a.contains(&b'=')
                || (program == b"chrt" || program == b"taskset")
                    && a.iter().all(|c| c.is_ascii_hexdigit() || *c == b'x')
            {
                i += 1;
            } else {
                break;
            }
        }
        if operand {
            i += 1;
        }
    }
    let Some(first) = words.get(i) else { return "job".into() };
    let program = basename(first);
    let mut name = program.to_vec();
    if is_generic(program) {
        let rest = &words[i + 1..];
        let c_string = rest
            .iter()
            .position(|w| w.starts_with(b"-") && w.ends_with(b"c") && !w.starts_with(b"--"));
        if matches!(program, b"sh" | b"bash" | b"dash" | b"zsh" | b"ksh")
            && depth == 0
            && let Some(at) = c_string
            && let Some(script) = rest.get(at + 1)
        {
            return base_name(&script_words(script), depth + 1);
        }
        for a in rest {
            if a == b"-m" || a == b"-f" {
                continue; // python -m MODULE, make -f FILE: the value names it
            }
            if !a.starts_with(b"-") {
                name.push(b'-');
                name.extend_from_slice(basename(a));
                break;
            }
        }
    }
    sanitize(&name, 48)
}

/// The words of the command doing the work in a shell script string.
fn script_words(script: &[u8]) -> Vec<Vec<u8>> {
    let cmd = parse::Command { shell: script.to_vec(), origin: Vec::new(), input_at: None };
    verdict::assess(&cmd).name_words
}

/// Name characters only, at most `max` of them.
fn sanitize(raw: &[u8], max: usize) -> String {
    let mut out = String::new();
    for &c in raw {
        let c = char::from(c);
        if crate::parse::is_name_char(c) {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed = out.trim_matches(|c| c == '_' || c == '-' || c == '.');
    let mut name: String = trimmed.chars().take(max).collect();
    while name.ends_with(['_', '-', '.']) {
        name.pop();
    }
    if name.is_empty() { "job".into() } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crontab::parse::{AnyUser, Kind, parse};

    fn fixed(input: &str, kind: Kind) -> String {
        let c = parse(input.as_bytes(), kind, &AnyUser);
        let reviews = review(&c, None);
        let out = c.render(|l| {
            reviews
                .iter()
                .find(|r| c.lines[r.index].number == l.number)
                .and_then(|r| r.fix.clone()?.ok())
                .map(|f| f.line)
        });
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn debian_system_lines() {
        let f =
            fixed("17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly\n", Kind::System);
        assert_eq!(
            f,
            "17 *\t* * *\troot\trunonce --name run-parts-cron.hourly --timeout 59m -- sh -c 'cd / && run-parts --report /etc/cron.hourly'\n"
        );
        let f = fixed(
            "5-55/10 * * * * root command -v debian-sa1 > /dev/null && debian-sa1 1 1\n59 23 * * * root command -v debian-sa1 > /dev/null && debian-sa1 60 2\n",
            Kind::System,
        );
        assert!(
            f.contains("root runonce --name debian-sa1 --timeout 9m -- sh -c 'command -v"),
            "{f}"
        );
        assert!(f.contains("root runonce --name debian-sa1-2 --timeout 23h59m --"), "{f}");
    }

    #[test]
    fn plain_commands_keep_their_text() {
        assert_eq!(
            fixed("*/5 * * * * /opt/collector/run.py --all 'a b'\n", Kind::User),
            "*/5 * * * * runonce --name run.py --timeout 4m -- /opt/collector/run.py --all 'a b'\n"
        );
        assert_eq!(
            fixed(
                "0 1 * * * flock -n /var/lock/bk.lock timeout -k 30 2h /usr/local/bin/backup%x\n",
                Kind::User
            ),
            "0 1 * * * runonce --name backup --timeout 2h --kill-after 30 --lock /var/lock/bk.lock -- /usr/local/bin/backup%x\n"
        );
        assert_eq!(
            fixed("@reboot chronic /usr/bin/warmup\n", Kind::User),
            "@reboot runonce --name warmup --quiet --keep-orphans -- /usr/bin/warmup\n"
        );
        assert_eq!(
            fixed("* * * * * flock -w 5 /l x\n", Kind::User),
            "* * * * * runonce --name x --timeout 45s --lock /l --wait=5 -- x\n"
        );
    }

    #[test]
    fn percent_and_quotes_survive() {
        assert_eq!(
            fixed(
                "0 22 * * 1-5 mail -s \"It's 10pm\" joe%Joe,%%Where are your kids?%\n",
                Kind::User
            ),
            "0 22 * * 1-5 runonce --name mail --timeout 23h59m -- mail -s \"It's 10pm\" joe%Joe,%%Where are your kids?%\n"
        );
        assert_eq!(
            fixed("0 0 * * * date +\\%s > /tmp/x 2>&1 %in\n", Kind::User),
            "0 0 * * * runonce --name date --timeout 23h59m -- sh -c 'date +\\%s > /tmp/x 2>&1 '%in\n"
        );
        assert_eq!(
            fixed("0 0 * * * echo 'it'\\''s' | tr a b\n", Kind::User),
            "0 0 * * * runonce --name tr --timeout 23h59m -- sh -c 'echo '\\''it'\\''\\'\\'''\\''s'\\'' | tr a b'\n"
        );
    }

    #[test]
    fn protected_lines_and_other_lines_stay() {
        let input = "# c\nSHELL=/bin/sh\nMAILTO=\"\"\n\n*/5 * * * * runonce -n x -t 4m -- x\n";
        assert_eq!(fixed(input, Kind::User), input);
    }

    #[test]
    fn names_are_unique_in_the_file() {
        let f = fixed(
            "* * * * * runonce -n backup -- a\n* * * * * backup\n* * * * * backup\n",
            Kind::User,
        );
        assert!(f.contains("--name backup-2 "), "{f}");
        assert!(f.contains("--name backup-3 "), "{f}");
    }

    #[test]
    fn the_crontab_shell_is_kept() {
        let f = fixed("SHELL=/bin/bash\n* * * * * echo {a,b} > /tmp/x\n", Kind::User);
        assert!(f.contains("-- /bin/bash -c 'echo {a,b} > /tmp/x'"), "{f}");
        let c = parse(b"SHELL=/usr/bin/fish\n* * * * * x\n", Kind::User, &AnyUser);
        assert!(review(&c, None)[0].fix.as_ref().unwrap().is_err());
    }

    #[test]
    fn too_long_is_refused() {
        let cmd = format!("* * * * * x {}\n", "a".repeat(970));
        let c = parse(cmd.as_bytes(), Kind::User, &AnyUser);
        assert!(c.is_valid());
        let r = &review(&c, None)[0];
        assert!(r.fix.as_ref().unwrap().as_ref().unwrap_err().contains("bytes"));
    }

    #[test]
    fn names() {
        let n = |ws: &[&str]| {
            base_name(&ws.iter().map(|w| w.as_bytes().to_vec()).collect::<Vec<_>>(), 0)
        };
        assert_eq!(n(&["/usr/bin/php8.2", "/var/www/artisan", "schedule:run"]), "php8.2-artisan");
        assert_eq!(n(&["nice", "-n", "19", "ionice", "-c3", "backup.sh"]), "backup.sh");
        assert_eq!(n(&["python3", "-m", "collector"]), "python3-collector");
        assert_eq!(n(&["sh", "-c", "cd /x && ./run"]), "run");
        assert_eq!(n(&["env", "A=1", "x"]), "x");
        assert_eq!(n(&["timeout", "-k", "5", "60", "/opt/b"]), "b");
        assert_eq!(n(&["flock", "-w", "5", "/l", "timeout", "9", "c"]), "c");
        assert_eq!(n(&["@@@"]), "job");
        assert_eq!(n(&[]), "job");
        assert_eq!(n(&["ümlaut"]), "mlaut");
        assert_eq!(n(&[&"y".repeat(100)]).len(), 48);
    }
}
