//! A crontab as Debian's cron (3.0pl1) reads it: `load_env` and
//! `load_entry` of its source, followed step by step, so that what this
//! module accepts, rejects, and takes as the command is what the daemon
//! does (see the CRONTAB section of the man page).
//!
//! Everything is bytes: a crontab may hold any encoding, and a rewrite must
//! keep every byte it does not mean to change.

use std::ops::Range;

use super::schedule::{Field, Schedule};

/// Whether lines carry a user field: `/etc/crontab` and `/etc/cron.d/*` do,
/// the crontabs of `crontab -l` do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    User,
    System,
}

/// cron's `MAX_COMMAND`: the command buffer, NUL included; a command of
/// this length minus one is taken as truncated and rejected.
pub const MAX_COMMAND: usize = 1000;
/// cron's `MAX_ENVSTR` (and `MAX_TEMPSTR`).
const MAX_ENVSTR: usize = 1000;
/// cron's `MAX_TAB_LINES`: longer crontabs are ignored whole.
pub const MAX_LINES: usize = 10000;

/// One line of a crontab, without its newline.
#[derive(Clone, Debug)]
pub struct Line {
    /// 1-based.
    pub number: usize,
    pub text: Vec<u8>,
    pub item: Item,
}

#[derive(Clone, Debug)]
pub enum Item {
    /// Empty or only blanks.
    Blank,
    /// First non-blank character `#`.
    Comment,
    /// `NAME=value`, as cron stores it (quotes removed).
    Env {
        name: Vec<u8>,
        value: Vec<u8>,
    },
    Job(Job),
    /// A line cron refuses; cron then ignores the whole file.
    Rejected(&'static str),
}

#[derive(Clone, Debug)]
pub struct Job {
    pub schedule: Schedule,
    /// Where the time fields (or the `@word`) are in the line.
    pub when: Range<usize>,
    /// The user field of a system crontab.
    pub user: Option<Vec<u8>>,
    /// Where the command starts in the line; the command is the rest.
    pub command_start: usize,
}

impl Job {
    pub fn command<'a>(&self, line: &'a [u8]) -> &'a [u8] {
        &line[self.command_start..]
    }
}

/// Why cron ignores a whole file, beside its rejected lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileProblem {
    /// The last line with content has no newline.
    MissingNewline,
    TooLong(usize),
    /// A NUL byte cuts what cron reads: runonce refuses to guess.
    Nul(usize),
}

impl FileProblem {
    pub fn describe(&self) -> String {
        match self {
            FileProblem::MissingNewline => {
                "the last line has no newline: cron ignores the whole file".into()
            }
            FileProblem::TooLong(n) => {
                format!("{n} lines: cron ignores a crontab longer than {MAX_LINES} lines")
            }
            FileProblem::Nul(n) => format!("line {n} holds a NUL byte: not a crontab"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Crontab {
    pub kind: Kind,
    pub lines: Vec<Line>,
    pub problems: Vec<FileProblem>,
    /// The file ends with a newline (so a rewrite keeps it).
    pub final_newline: bool,
}

impl Crontab {
    /// Whether cron would load this file at all.
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty() && !self.lines.iter().any(|l| matches!(l.item, Item::Rejected(_)))
    }

    /// The file again, each line replaced by `replace` where it says so.
    pub fn render(&self, mut replace: impl FnMut(&Line) -> Option<Vec<u8>>) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            match replace(line) {
                Some(new) => out.extend_from_slice(&new),
                None => out.extend_from_slice(&line.text),
            }
            if i + 1 < self.lines.len() || self.final_newline {
                out.push(b'\n');
            }
        }
        out
    }
}

/// Resolves the user field of system crontabs (cron: `getpwnam`).
pub trait Users {
    fn exists(&self, name: &[u8]) -> bool;
}

/// The system's user database.
pub struct SystemUsers;

impl Users for SystemUsers {
    fn exists(&self, name: &[u8]) -> bool {
        crate::nss::user_exists(name)
    }
}

/// Every user exists: for tests and for property checks.
pub struct AnyUser;

impl Users for AnyUser {
    fn exists(&self, _: &[u8]) -> bool {
        true
    }
}

pub fn parse(input: &[u8], kind: Kind, users: &dyn Users) -> Crontab {
    let final_newline = input.last() == Some(&b'\n');
    let body = if final_newline { &input[..input.len() - 1] } else { input };
    let mut lines: Vec<Line> = if input.is_empty() {
        Vec::new()
    } else {
        body.split(|&b| b == b'\n')
            .enumerate()
            .map(|(i, text)| Line { number: i + 1, text: text.to_vec(), item: Item::Blank })
            .collect()
    };
    let mut problems = Vec::new();
    for line in &mut lines {
        line.item = parse_line(&line.text, kind, users);
        if line.text.contains(&0) && !matches!(line.item, Item::Blank | Item::Comment) {
            problems.push(FileProblem::Nul(line.number));
        }
    }
    if !final_newline
        && lines.last().is_some_and(|l| !matches!(l.item, Item::Blank | Item::Comment))
    {
        problems.push(FileProblem::MissingNewline);
    }
    if lines.len() > MAX_LINES {
        problems.push(FileProblem::TooLong(lines.len()));
    }
    Crontab { kind, lines, problems, final_newline }
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// One line: cron's `skip_comments`, then `load_env`, then `load_entry`.
pub fn parse_line(text: &[u8], kind: Kind, users: &dyn Users) -> Item {
    let start = text.iter().position(|&b| !is_blank(b)).unwrap_or(text.len());
    match text.get(start) {
        None => return Item::Blank,
        Some(b'#') => return Item::Comment,
        _ => {}
    }
    if let Some((name, value)) = env_setting(&text[start..]) {
        return Item::Env { name, value };
    }
    match entry(text, start, kind, users) {
        Ok(job) => Item::Job(job),
        Err(why) => Item::Rejected(why),
    }
}

/// cron's `load_env`: `NAME=value` with optional blanks around `=`, a name
/// or value in matching single or double quotes, blanks after an unquoted
/// value dropped.  None when the line is not an environment setting (cron
/// then reads it as a job).
pub fn env_setting(line: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum S {
        NameI,
        Name,
        Eq1,
        Eq2,
        ValueI,
        Value,
        Fini,
        Error,
    }
    fn next(s: S) -> S {
        match s {
            S::NameI => S::Name,
            S::Name => S::Eq1,
            S::Eq1 => S::Eq2,
            S::Eq2 => S::ValueI,
            S::ValueI => S::Value,
            S::Value => S::Fini,
            S::Fini | S::Error => S::Error,
        }
    }
    // get_string keeps MAX_ENVSTR - 2 bytes of the line, and a C string
    // ends at a NUL
    let line = &line[..line.len().min(MAX_ENVSTR - 2)];
    let line = line.split(|&b| b == 0).next().unwrap_or_default();
    let isspace = |b: u8| b.is_ascii_whitespace() || b == 0x0b;
    let (mut name, mut val) = (Vec::new(), Vec::new());
    let mut in_value = false;
    let mut state = S::NameI;
    let mut quote = 0u8;
    let mut i = 0;
    while state != S::Error && i < line.len() {
        let c = line[i];
        match state {
            S::NameI | S::ValueI | S::Name | S::Value => {
                if matches!(state, S::NameI | S::ValueI) {
                    if c == b'\'' || c == b'"' {
                        quote = c;
                        i += 1;
                    }
                    state = next(state);
                    if i >= line.len() {
                        break;
                    }
                }
                let c = line[i];
                if quote != 0 {
                    if c == quote {
                        state = next(state);
                        i += 1;
                        continue;
                    }
                    if state == S::Name && c == b'=' {
                        state = S::Error;
                        continue;
                    }
                } else if state == S::Name {
                    if isspace(c) {
                        i += 1;
                        state = next(state);
                        continue;
                    }
                    if c == b'=' {
                        state = next(state);
                        continue;
                    }
                }
                if in_value {
                    val.push(c)
                } else {
                    name.push(c)
                }
                i += 1;
            }
            S::Eq1 => {
                if c == b'=' {
                    state = next(state);
                    in_value = true;
                    quote = 0;
                } else if !isspace(c) {
                    state = S::Error;
                }
                i += 1;
            }
            S::Eq2 | S::Fini => {
                if isspace(c) {
                    i += 1;
                } else {
                    state = next(state);
                }
            }
            S::Error => {}
        }
    }
    if state != S::Fini && !(state == S::Value && quote == 0) {
        return None;
    }
    if state == S::Value {
        while val.last().is_some_and(|&b| isspace(b)) {
            val.pop();
        }
    }
    // strdtb, then one more pair of matching quotes comes off
    while val.last().is_some_and(|&b| isspace(b)) {
        val.pop();
    }
    if val.len() >= 2 && (val[0] == b'\'' || val[0] == b'"') && val[val.len() - 1] == val[0] {
        val.pop();
        val.remove(0);
    }
    if name.len() + 1 + val.len() >= MAX_ENVSTR - 1 {
        return None;
    }
    Some((name, val))
}

/// A cursor over one line as cron's `get_char` sees the file: the end of
/// the line reads as `\n`.
struct Cursor<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn ch(&self) -> u8 {
        self.text.get(self.pos).copied().unwrap_or(b'\n')
    }
    fn advance(&mut self) -> u8 {
        self.pos = (self.pos + 1).min(self.text.len());
        self.ch()
    }
    fn skip_blanks(&mut self) {
        while is_blank(self.ch()) {
            self.advance();
        }
    }
    fn skip_nonblanks(&mut self) {
        while !is_blank(self.ch()) && self.ch() != b'\n' {
            self.advance();
        }
    }
}

const MONTH_NAMES: &[&str] =
    &["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DOW_NAMES: &[&str] = &["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// cron's `load_entry`, from the first non-blank byte of the line.
fn entry(text: &[u8], start: usize, kind: Kind, users: &dyn Users) -> Result<Job, &'static str> {
    let mut cur = Cursor { text, pos: start };
    let schedule = if cur.ch() == b'@' {
        cur.advance();
        let word_start = cur.pos;
        while !is_blank(cur.ch()) && cur.ch() != b'\n' {
            cur.advance();
        }
        Schedule::special(&text[word_start..cur.pos]).ok_or("bad time specifier")?
    } else {
        let mut fields = Vec::with_capacity(5);
        let specs: [(&str, u32, u32, Option<&[&str]>); 5] = [
            ("bad minute", 0, 59, None),
            ("bad hour", 0, 23, None),
            ("bad day-of-month", 1, 31, None),
            ("bad month", 1, 12, Some(MONTH_NAMES)),
            ("bad day-of-week", 0, 7, Some(DOW_NAMES)),
        ];
        for (error, low, high, names) in specs {
            let star = cur.ch() == b'*';
            let bits = list(&mut cur, low, high, names).ok_or(error)?;
            fields.push(Field { bits, star });
        }
        Schedule::from_fields(&fields)
    };
    let when = start..end_of_when(text, start, cur.pos);
    cur.skip_blanks();
    let user = match kind {
        Kind::System => {
            // get_string up to a blank: the user field cannot end the line
            let user_start = cur.pos;
            while !is_blank(cur.ch()) && cur.ch() != b'\n' {
                cur.advance();
            }
            if cur.ch() == b'\n' {
                return Err("bad username");
            }
            let name = text[user_start..cur.pos].to_vec();
            if name.contains(&0) || !users.exists(&name) {
                return Err("bad username");
            }
            cur.advance(); // the one blank that ends it; more belong to the command
            Some(name)
        }
        Kind::User if cur.ch() == b'*' => return Err("bad command"),
        Kind::User => None,
    };
    let command_start = cur.pos;
    let command = &text[command_start..];
    let command = command.split(|&b| b == 0).next().unwrap_or_default();
    if command.len() >= MAX_COMMAND - 1 {
        return Err("command too long");
    }
    Ok(Job { schedule, when, user, command_start })
}

/// The time fields end where their last non-blank byte does.
fn end_of_when(text: &[u8], start: usize, pos: usize) -> usize {
    let mut end = pos.min(text.len());
    while end > start && is_blank(text[end - 1]) {
        end -= 1;
    }
    end
}

/// cron's `get_list`: ranges separated by commas, then whatever follows up
/// to a blank is skipped (cron ignores it), then the blanks.
fn list(cur: &mut Cursor, low: u32, high: u32, names: Option<&[&str]>) -> Option<u64> {
    let mut bits = 0u64;
    loop {
        range(cur, low, high, names, &mut bits)?;
        if cur.ch() == b',' {
            cur.advance();
        } else {
            break;
        }
    }
    cur.skip_nonblanks();
    cur.skip_blanks();
    Some(bits)
}

/// cron's `get_range`: `*`, `N`, `N-M`, each with an optional `/STEP`
/// (`N/STEP` alone is an error).
fn range(
    cur: &mut Cursor,
    low: u32,
    high: u32,
    names: Option<&[&str]>,
    bits: &mut u64,
) -> Option<()> {
    let (first, last) = if cur.ch() == b'*' {
        cur.advance();
        (low, high)
    } else {
        let first = number(cur, low, names)?;
        if cur.ch() != b'-' {
            if cur.ch() == b'/' || first < low || first > high {
                return None;
            }
            *bits |= 1 << (first - low);
            return Some(());
        }
        cur.advance();
        (first, number(cur, low, names)?)
    };
    let step = if cur.ch() == b'/' {
        cur.advance();
        let step = number(cur, 0, None)?;
        if step == 0 {
            return None;
        }
        step
    } else {
        1
    };
    if first < low || first > high || last < low || last > high {
        return None;
    }
    let mut i = first;
    while i <= last {
        *bits |= 1 << (i - low);
        i = i.saturating_add(step);
    }
    Some(())
}

/// cron's `get_number`: letters and digits; a name of the field (any case)
/// or all digits.  Huge numbers saturate (out of every range).
fn number(cur: &mut Cursor, low: u32, names: Option<&[&str]>) -> Option<u32> {
    let start = cur.pos;
    while cur.ch().is_ascii_alphanumeric() {
        if cur.pos - start + 1 >= MAX_ENVSTR {
            return None;
        }
        cur.advance();
    }
    let word = &cur.text[start..cur.pos];
    if word.is_empty() {
        return None;
    }
    if let Some(i) =
        names.and_then(|n| n.iter().position(|n| n.as_bytes().eq_ignore_ascii_case(word)))
    {
        return Some(i as u32 + low);
    }
    if word.iter().all(u8::is_ascii_digit) {
        let n = word
            .iter()
            .fold(0u32, |n, &d| n.saturating_mul(10).saturating_add(u32::from(d - b'0')));
        return Some(n);
    }
    None
}

/// The command as the shell receives it and the job's standard input, as
/// cron's `child_process` splits them (Debian): up to the first `%` not
/// escaped by a backslash; `\%` and `\\` there lose their backslash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// What `sh -c` runs.
    pub shell: Vec<u8>,
    /// For each byte of `shell`, its offset in the raw command.
    pub origin: Vec<usize>,
    /// Offset of the `%` that starts the standard input, if any.
    pub input_at: Option<usize>,
}

pub fn split_command(raw: &[u8]) -> Command {
    let raw = raw.split(|&b| b == 0).next().unwrap_or_default();
    let mut shell = Vec::with_capacity(raw.len());
    let mut origin = Vec::with_capacity(raw.len());
    let mut escaped = false;
    for (i, &c) in raw.iter().enumerate() {
        if escaped {
            escaped = false;
            if c == b'%' || c == b'\\' {
                // the byte replaces its backslash
                shell.pop();
                origin.pop();
            }
            shell.push(c);
            origin.push(i);
            continue;
        }
        if c == b'%' {
            return Command { shell, origin, input_at: Some(i) };
        }
        escaped = c == b'\\';
        shell.push(c);
        origin.push(i);
    }
    Command { shell, origin, input_at: None }
}

/// The standard input cron gives the job for the part after the first
/// unescaped `%` (`%` becomes a newline, `\%` a `%`, a final newline is
/// added), as Debian's `child_process` writes it.
pub fn job_input(raw_tail: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut escaped = false;
    let mut need_newline = false;
    for &c in raw_tail {
        let mut ch = c;
        if escaped {
            if ch != b'%' {
                out.push(b'\\');
            }
        } else if ch == b'%' {
            ch = b'\n';
        }
        escaped = ch == b'\\';
        if !escaped {
            out.push(ch);
            need_newline = ch != b'\n';
        }
    }
    if escaped {
        out.push(b'\\');
    }
    if need_newline {
        out.push(b'\n');
    }
    out
}

/// Shell text written so that cron's `split_command` gives it back: `%`
/// becomes `\%`, and a backslash that cron would otherwise take as an
/// escape is doubled.  `input_follows`: raw input text (`%…`) is appended.
pub fn escape_command(shell: &[u8], input_follows: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(shell.len() + 8);
    for (i, &c) in shell.iter().enumerate() {
        match c {
            b'%' => out.extend_from_slice(b"\\%"),
            b'\\' => {
                let next = shell.get(i + 1).copied();
                let escapes_next = match next {
                    Some(n) => n == b'\\' || n == b'%',
                    None => input_follows,
                };
                out.extend_from_slice(if escapes_next { b"\\\\" } else { b"\\" });
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(line: &str, kind: Kind) -> Item {
        parse_line(line.as_bytes(), kind, &AnyUser)
    }

    fn rejected(line: &str) -> Option<&'static str> {
        match item(line, Kind::User) {
            Item::Rejected(why) => Some(why),
            _ => None,
        }
    }

    fn env(line: &str) -> Option<(String, String)> {
        env_setting(line.as_bytes())
            .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
    }

    fn s(a: &str, b: &str) -> Option<(String, String)> {
        Some((a.into(), b.into()))
    }

    // Each case was checked against Debian's `crontab -n` (cron 3.0pl1-162).
    #[test]
    fn environment_lines_as_cron_reads_them() {
        assert_eq!(env("A=b"), s("A", "b"));
        assert_eq!(env("A = b c "), s("A", "b c"));
        assert_eq!(env("\"A\"=b"), s("A", "b"));
        assert_eq!(env("A='b'"), s("A", "b"));
        assert_eq!(env("MAILTO=\"\""), s("MAILTO", ""));
        assert_eq!(env("=b"), s("", "b"));
        assert_eq!(env("A=\"b\" c"), None);
        assert_eq!(env("MAILTO="), None);
        assert_eq!(env("A='b"), None);
        assert_eq!(env("'A=b'=c"), None);
        assert_eq!(env("A"), None);
        assert_eq!(env("A\tB=c"), None);
        assert_eq!(env("PATH=/usr/bin:/bin"), s("PATH", "/usr/bin:/bin"));
        assert_eq!(env("A=x'y'"), s("A", "x'y'"));
    }

    #[test]
    fn lines_cron_accepts_and_rejects() {
        for ok in [
            "* * * * * x",
            "* * * * *",
            "@reboot",
            "@hourly",
            "@daily\tx",
            "5. * * * * x",
            "* * * * mon-fri x",
            "* * * jan-mar * x",
            "* * * * sun,7 x",
            "5-1 * * * * x",
            "*/5,7 * * * * x",
            "0-59/100 * * * * x",
            "  * * * * * x",
            "* * * * * x\r",
        ] {
            assert!(matches!(item(ok, Kind::User), Item::Job(_)), "{ok}");
        }
        let cases = [
            ("@REBOOT x", "bad time specifier"),
            ("1/5 * * * * x", "bad minute"),
            ("*/0 * * * * x", "bad minute"),
            ("60 * * * * x", "bad minute"),
            ("*/5x * * * * x", "bad minute"),
            ("Jan * * * * x", "bad minute"),
            ("0 0 0 * * x", "bad day-of-month"),
            ("* * 1,,2 * * x", "bad day-of-month"),
            ("* * * 0 * x", "bad month"),
            ("* * * * 8 x", "bad day-of-week"),
            ("* * * * Sunday x", "bad day-of-week"),
            ("* * * * * * x", "bad command"),
            ("* * * * * *x", "bad command"),
            ("\r", "bad minute"),
            ("MAILTO=", "bad minute"),
            ("* * *", "bad month"),
        ];
        for (line, why) in cases {
            assert_eq!(rejected(line), Some(why), "{line}");
        }
        let long = format!("* * * * * {}", "x".repeat(998));
        assert!(matches!(item(&long, Kind::User), Item::Job(_)));
        let long = format!("* * * * * {}", "x".repeat(999));
        assert_eq!(rejected(&long), Some("command too long"));
    }

    #[test]
    fn system_lines_have_a_user_field() {
        let line = "17 *\t* * *\troot  cd / && run-parts --report /etc/cron.hourly";
        let Item::Job(job) = item(line, Kind::System) else { panic!() };
        assert_eq!(job.user.as_deref(), Some(&b"root"[..]));
        assert_eq!(&line[job.when.clone()], "17 *\t* * *");
        assert_eq!(job.command(line.as_bytes()), b" cd / && run-parts --report /etc/cron.hourly");
        assert!(matches!(item("* * * * * root", Kind::System), Item::Rejected("bad username")));
        struct Nobody;
        impl Users for Nobody {
            fn exists(&self, _: &[u8]) -> bool {
                false
            }
        }
        let unknown = parse_line(b"* * * * * nosuchuser x", Kind::System, &Nobody);
        assert!(matches!(unknown, Item::Rejected("bad username")));
        let Item::Job(job) = item("@weekly root x", Kind::System) else { panic!() };
        assert_eq!(job.user.as_deref(), Some(&b"root"[..]));
    }

    #[test]
    fn file_level_problems() {
        let c = parse(b"* * * * * x", Kind::User, &AnyUser);
        assert_eq!(c.problems, [FileProblem::MissingNewline]);
        let c = parse(b"* * * * * x\n# c", Kind::User, &AnyUser);
        assert!(c.is_valid());
        assert_eq!(c.render(|_| None), b"* * * * * x\n# c");
        let c = parse(b"", Kind::User, &AnyUser);
        assert!(c.is_valid() && c.lines.is_empty());
        assert_eq!(c.render(|_| None), b"");
        let c = parse(b"\n\n", Kind::User, &AnyUser);
        assert_eq!(c.render(|_| None), b"\n\n");
        let c = parse(b"* * * * * a\0b\n", Kind::User, &AnyUser);
        assert_eq!(c.problems, [FileProblem::Nul(1)]);
    }

    #[test]
    fn percent_and_backslashes_as_debian_cron_splits_them() {
        // observed with the real daemon: see tests/crontab.rs
        let c = split_command(br"printf '[\%s]' a\\b c\%d 'e\\f' 'g\h' > o%in\%put\\x\y%line2");
        assert_eq!(c.shell, br"printf '[%s]' a\b c%d 'e\f' 'g\h' > o");
        assert_eq!(job_input(&br"printf%in\%put\\x\y%line2"[7..]), b"in%put\\\\x\\y\nline2\n");
        let c = split_command(br"x\\%y");
        assert_eq!(c.shell, br"x\");
        assert_eq!(c.input_at, Some(3));
        assert_eq!(split_command(b"a%").input_at, Some(1));
        assert_eq!(job_input(b"%"), b"\n");
        assert_eq!(job_input(b""), b"");
    }

    #[test]
    fn escape_round_trips() {
        for s in [&br"a\b"[..], br"\\", br"\", br"%", br"\%", br"a\\%b\\\", b"100%"] {
            for tail in [false, true] {
                let mut raw = escape_command(s, tail);
                if tail {
                    raw.extend_from_slice(b"%in");
                }
                let back = split_command(&raw);
                assert_eq!(back.shell, s, "{}", String::from_utf8_lossy(&raw));
                assert_eq!(back.input_at.is_some(), tail);
            }
        }
        assert_eq!(escape_command(br"echo a\ b", false), br"echo a\ b");
    }
}
