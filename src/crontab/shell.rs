//! Just enough of the POSIX shell language to tell a plain command (words
//! that the shell passes on unchanged) from one that needs a shell (pipes,
//! lists, redirections, expansions, globs...), to read the words of a plain
//! command, and to quote text for `sh -c`.
//!
//! Anything unusual counts as "needs a shell": the rewrite then keeps the
//! text whole inside `sh -c '…'`, which is exact whatever it holds.

use std::ops::Range;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    /// Where the word is in the text.
    pub span: Range<usize>,
    /// The word after quote removal (meaningful when `plain`).
    pub value: Vec<u8>,
    /// No expansion, glob, tilde or brace: the shell passes `value` as is.
    pub plain: bool,
    /// `NAME=…`, which is an assignment at the start of a command.
    pub assignment: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    Word(Word),
    /// `&&`, `||`, `;`, `;;`, `&`, `|`, `(`, `)`.
    Op(&'static str),
    /// A redirection with its target (and IO number): `2>&1`, `>> log`.
    Redirect(Range<usize>),
    /// `# …` to the end.
    Comment(Range<usize>),
}

/// The text cannot be read (an unterminated quote or substitution).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unreadable;

/// Words that make a command compound (or that are not commands) when
/// they come first.
const RESERVED: &[&[u8]] = &[
    b"!",
    b"{",
    b"}",
    b"case",
    b"do",
    b"done",
    b"elif",
    b"else",
    b"esac",
    b"fi",
    b"for",
    b"if",
    b"in",
    b"then",
    b"until",
    b"while",
    b"function",
    b"select",
    b"time",
    b"[[",
    b"]]",
];

/// Shell builtins (dash's, plus bash's common ones): as the first word
/// they must run inside a shell (`exec`, `cd`...) or behave differently
/// from the program of the same name (`echo`).
const BUILTINS: &[&[u8]] = &[
    b":",
    b".",
    b"alias",
    b"bg",
    b"break",
    b"builtin",
    b"cd",
    b"command",
    b"continue",
    b"declare",
    b"echo",
    b"eval",
    b"exec",
    b"exit",
    b"export",
    b"false",
    b"fc",
    b"fg",
    b"getopts",
    b"hash",
    b"jobs",
    b"kill",
    b"let",
    b"local",
    b"printf",
    b"pwd",
    b"read",
    b"readonly",
    b"return",
    b"set",
    b"shift",
    b"source",
    b"test",
    b"[",
    b"times",
    b"trap",
    b"true",
    b"type",
    b"typeset",
    b"ulimit",
    b"umask",
    b"unalias",
    b"unset",
    b"wait",
];

pub fn is_reserved(word: &[u8]) -> bool {
    RESERVED.contains(&word)
}

pub fn is_builtin(word: &[u8]) -> bool {
    BUILTINS.contains(&word)
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn is_meta(c: u8) -> bool {
    matches!(c, b'|' | b'&' | b';' | b'<' | b'>' | b'(' | b')' | b'\n')
}

pub fn tokenize(s: &[u8]) -> Result<Vec<Token>, Unreadable> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if is_blank(c) {
            i += 1;
        } else if c == b'#' {
            out.push(Token::Comment(i..s.len()));
            break;
        } else if let Some(op) = control_op(&s[i..]) {
            out.push(Token::Op(op));
            i += op.len().max(1);
        } else if redirect_op(&s[i..]).is_some() {
            let end = redirect(s, i)?;
            out.push(Token::Redirect(i..end));
            i = end;
        } else {
            let word = word(s, i)?;
            let end = word.span.end;
            // `2>file`: digits right before a redirection are its IO number
            if word.value.iter().all(u8::is_ascii_digit)
                && word.plain
                && word.span.len() == word.value.len()
                && redirect_op(&s[end..]).is_some()
            {
                let end = redirect(s, end)?;
                out.push(Token::Redirect(i..end));
                i = end;
                continue;
            }
            out.push(Token::Word(word));
            i = end;
        }
    }
    Ok(out)
}

fn control_op(s: &[u8]) -> Option<&'static str> {
    const OPS: &[&str] = &["&&", "||", ";;", "&", "|", ";", "(", ")", "\n"];
    if s.starts_with(b"&>") {
        // bash's `&>file`; dash reads `&` then `>file`: a background job there
        return Some("&");
    }
    OPS.iter().find(|op| s.starts_with(op.as_bytes())).copied()
}

fn redirect_op(s: &[u8]) -> Option<usize> {
    const OPS: &[&str] = &["<<-", "<<", "<&", "<>", ">>", ">&", ">|", "<", ">"];
    OPS.iter().find(|op| s.starts_with(op.as_bytes())).map(|op| op.len())
}

/// A redirection operator at `i` and its target word; returns the end.
fn redirect(s: &[u8], i: usize) -> Result<usize, Unreadable> {
    let mut j = i + redirect_op(&s[i..]).ok_or(Unreadable)?;
    while j < s.len() && is_blank(s[j]) {
        j += 1;
    }
    if j >= s.len() || is_meta(s[j]) {
        return Err(Unreadable);
    }
    Ok(word(s, j)?.span.end)
}

/// One word from `start`: quotes, backslashes and substitutions included.
fn word(s: &[u8], start: usize) -> Result<Word, Unreadable> {
    let mut value = Vec::new();
    let mut plain = true;
    let mut i = start;
    let mut name_so_far = true; // for `NAME=`
    let mut assignment = false;
    let (mut open_brace, mut close_brace) = (false, false);
    while i < s.len() && !is_blank(s[i]) && !is_meta(s[i]) {
        let c = s[i];
        let at_start = i == start;
        if !(c.is_ascii_alphanumeric() || c == b'_') || (at_start && c.is_ascii_digit()) {
            if c == b'=' && name_so_far && !at_start && !assignment {
                assignment = true;
            }
            name_so_far = false;
        }
        match c {
            b'\\' => {
                if let Some(&n) = s.get(i + 1) {
                    value.push(n);
                    i += 2;
                } else {
                    value.push(c);
                    i += 1;
                }
            }
            b'\'' => {
                let end = find(s, i + 1, b'\'').ok_or(Unreadable)?;
                value.extend_from_slice(&s[i + 1..end]);
                i = end + 1;
            }
            b'"' => {
                let (end, p) = double_quoted(s, i + 1, &mut value)?;
                plain &= p;
                i = end + 1;
            }
            b'$' | b'`' => {
                let (end, expands) = substitution(s, i, &mut value)?;
                plain &= !expands;
                i = end;
            }
            b'*' | b'?' | b'[' => {
                plain = false;
                value.push(c);
                i += 1;
            }
            b'{' | b'}' => {
                open_brace |= c == b'{';
                close_brace |= c == b'}';
                value.push(c);
                i += 1;
            }
            b'~' | b'=' if at_start => {
                plain = false;
                value.push(c);
                i += 1;
            }
            _ => {
                value.push(c);
                i += 1;
            }
        }
    }
    // bash and zsh expand `{a,b}` and `{1..3}`; a lone `{` or `}` is a
    // reserved word or a literal
    plain &= !(open_brace && close_brace);
    Ok(Word { span: start..i, value, plain, assignment })
}

fn find(s: &[u8], from: usize, byte: u8) -> Option<usize> {
    s.get(from..)?.iter().position(|&b| b == byte).map(|p| from + p)
}

/// Inside `"…"` from `i`: returns the closing quote's index and whether
/// nothing was expanded.
fn double_quoted(s: &[u8], mut i: usize, value: &mut Vec<u8>) -> Result<(usize, bool), Unreadable> {
    let mut plain = true;
    while i < s.len() {
        match s[i] {
            b'"' => return Ok((i, plain)),
            b'\\' => {
                match s.get(i + 1) {
                    Some(&n) if matches!(n, b'$' | b'`' | b'"' | b'\\' | b'\n') => value.push(n),
                    Some(&n) => value.extend_from_slice(&[b'\\', n]),
                    None => return Err(Unreadable),
                }
                i += 2;
            }
            b'$' | b'`' => {
                let (end, expands) = substitution(s, i, value)?;
                plain &= !expands;
                i = end;
            }
            c => {
                value.push(c);
                i += 1;
            }
        }
    }
    Err(Unreadable)
}

/// A `$…` or `` `…` `` at `i`, its text appended to `value`: returns its
/// end and whether it expands (a lone `$` is literal).
fn substitution(s: &[u8], i: usize, value: &mut Vec<u8>) -> Result<(usize, bool), Unreadable> {
    let end = if s[i] == b'`' { backquote(s, i)? } else { dollar(s, i)? };
    value.extend_from_slice(&s[i..end]);
    Ok((end, s[i] == b'`' || end > i + 1))
}

/// A `$` expansion at `i`; returns its end (`i + 1` for a literal `$`).
fn dollar(s: &[u8], i: usize) -> Result<usize, Unreadable> {
    match s.get(i + 1) {
        Some(b'(') => balanced(s, i + 1, b'(', b')'),
        Some(b'{') => balanced(s, i + 1, b'{', b'}'),
        Some(b'\'') => {
            // bash's $'…': an expansion all the same
            let end = find(s, i + 2, b'\'').ok_or(Unreadable)?;
            Ok(end + 1)
        }
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
            let mut j = i + 1;
            while j < s.len() && (s[j].is_ascii_alphanumeric() || s[j] == b'_') {
                j += 1;
            }
            Ok(j)
        }
        Some(c) if c.is_ascii_digit() || b"@*#?-$!".contains(c) => Ok(i + 2),
        _ => Ok(i + 1),
    }
}

/// From an opening bracket at `i` to just past its match, skipping quotes.
fn balanced(s: &[u8], i: usize, open: u8, close: u8) -> Result<usize, Unreadable> {
    let mut depth = 0usize;
    let mut j = i;
    while j < s.len() {
        match s[j] {
            b'\\' => j += 1,
            b'\'' => j = find(s, j + 1, b'\'').ok_or(Unreadable)?,
            b'"' => j = double_quoted(s, j + 1, &mut Vec::new())?.0,
            b'`' => j = backquote(s, j)? - 1,
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return Ok(j + 1);
                }
            }
            _ => {}
        }
        j += 1;
    }
    Err(Unreadable)
}

fn backquote(s: &[u8], i: usize) -> Result<usize, Unreadable> {
    let mut j = i + 1;
    while j < s.len() {
        match s[j] {
            b'\\' => j += 2,
            b'`' => return Ok(j + 1),
            _ => j += 1,
        }
    }
    Err(Unreadable)
}

/// A command the shell would run as one program with these arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Simple {
    pub assignments: Vec<Word>,
    pub words: Vec<Word>,
    pub redirects: Vec<Range<usize>>,
}

impl Simple {
    /// Every word is plain (no expansion of any kind).
    pub fn is_plain(&self) -> bool {
        self.words.iter().chain(&self.assignments).all(|w| w.plain)
    }
}

/// The tokens as one simple command, if they are one.
pub fn simple(tokens: &[Token]) -> Option<Simple> {
    let mut out = Simple { assignments: Vec::new(), words: Vec::new(), redirects: Vec::new() };
    for t in tokens {
        match t {
            Token::Word(w) if w.assignment && out.words.is_empty() => {
                out.assignments.push(w.clone());
            }
            Token::Word(w) => out.words.push(w.clone()),
            Token::Redirect(r) => out.redirects.push(r.clone()),
            Token::Op(_) | Token::Comment(_) => return None,
        }
    }
    let first = out.words.first()?;
    if is_reserved(&first.value) && first.plain {
        return None;
    }
    Some(out)
}

/// The tokens cut at `&&`, `||`, `;`, `|`, `&`: each part with the operator
/// that follows it.  None if parentheses or a comment make it more than a
/// flat list.
pub fn flat_list(tokens: &[Token]) -> Option<Vec<(Vec<Token>, Option<&'static str>)>> {
    let mut out = Vec::new();
    let mut part = Vec::new();
    for t in tokens {
        match t {
            Token::Op("(" | ")") | Token::Comment(_) => return None,
            Token::Op(op) => out.push((std::mem::take(&mut part), Some(*op))),
            other => part.push(other.clone()),
        }
    }
    if !part.is_empty() {
        out.push((part, None));
    }
    Some(out)
}

/// Whether a token list puts something in the background.
pub fn backgrounds(tokens: &[Token]) -> bool {
    tokens.iter().any(|t| matches!(t, Token::Op("&")))
}

/// Whether `s` needs no quoting at all for the shell.
fn is_safe(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter().all(|&c| c.is_ascii_alphanumeric() || b"%+,-./:=@_".contains(&c))
        && s[0] != b'='
}

/// `s` as one shell word: unchanged if safe, else in single quotes (a
/// single quote itself as `'\''`).
pub fn quote(s: &[u8]) -> Vec<u8> {
    if is_safe(s) {
        return s.to_vec();
    }
    let mut out = Vec::with_capacity(s.len() + 2);
    out.push(b'\'');
    for &c in s {
        if c == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(c);
        }
    }
    out.push(b'\'');
    out
}

/// The last path component of a command word.
pub fn basename(word: &[u8]) -> &[u8] {
    word.rsplit(|&b| b == b'/').next().unwrap_or(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Option<Vec<String>> {
        let t = tokenize(s.as_bytes()).ok()?;
        let simple = simple(&t)?;
        if !simple.is_plain() || !simple.redirects.is_empty() || !simple.assignments.is_empty() {
            return None;
        }
        Some(simple.words.iter().map(|w| String::from_utf8(w.value.clone()).unwrap()).collect())
    }

    #[test]
    fn plain_commands_and_their_words() {
        assert_eq!(words("ls -l /tmp").unwrap(), ["ls", "-l", "/tmp"]);
        assert_eq!(words(r#"echo 'a b' "c d" e\ f"#).unwrap(), ["echo", "a b", "c d", "e f"]);
        assert_eq!(words(r#"printf "x\"y\\z\q""#).unwrap(), ["printf", r#"x"y\z\q"#]);
        assert_eq!(words("a 'it'\\''s'").unwrap(), ["a", "it's"]);
        assert_eq!(words("cost 5$").unwrap(), ["cost", "5$"]);
        assert_eq!(words("a=b").unwrap_or_default(), Vec::<String>::new());
        assert_eq!(words("x a=b").unwrap(), ["x", "a=b"]);
    }

    #[test]
    fn what_needs_a_shell() {
        for s in [
            "a | b",
            "a && b",
            "a; b",
            "a > log",
            "a 2>&1",
            "echo $HOME",
            "echo \"$HOME\"",
            "echo $(date)",
            "echo `date`",
            "ls *.log",
            "ls ~/x",
            "echo {a,b}",
            "FOO=1 cmd",
            "if true; then a; fi",
            "a &",
            "(a)",
            "a # comment",
            "{ a; }",
        ] {
            assert_eq!(words(s), None, "{s}");
        }
        assert!(tokenize(b"echo 'open").is_err());
        assert!(tokenize(b"echo $(date").is_err());
        assert!(tokenize(b"a >").is_err());
    }

    #[test]
    fn background_and_redirections() {
        let t = tokenize(b"a >/dev/null 2>&1 &").unwrap();
        assert!(backgrounds(&t));
        let t = tokenize(b"a >/dev/null 2>&1 && b").unwrap();
        assert!(!backgrounds(&t));
        let s = simple(&tokenize(b"cmd -x >> /var/log/x 2>&1").unwrap()).unwrap();
        assert_eq!(s.redirects, [7..20, 21..25]);
        assert!(backgrounds(&tokenize(b"a &> log").unwrap()));
    }

    fn spans(s: &str) -> Vec<(char, std::ops::Range<usize>)> {
        tokenize(s.as_bytes())
            .unwrap()
            .into_iter()
            .map(|t| match t {
                Token::Word(w) => ('w', w.span),
                Token::Redirect(r) => ('r', r),
                Token::Comment(c) => ('#', c),
                Token::Op(op) => ('o', 0..op.len()),
            })
            .collect()
    }

    #[test]
    fn where_words_and_redirections_end() {
        assert_eq!(words("a\tb\t c"), Some(vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(spans("a\tb"), [('w', 0..1), ('w', 2..3)]);
        // only digits written as such make an IO number
        assert_eq!(spans("x abc>log"), [('w', 0..1), ('w', 2..5), ('r', 5..9)]);
        assert_eq!(spans("x 2>log"), [('w', 0..1), ('r', 2..7)]);
        assert_eq!(spans("x \"2\">log"), [('w', 0..1), ('w', 2..5), ('r', 5..9)]);
        assert_eq!(spans("x >  log y"), [('w', 0..1), ('r', 2..8), ('w', 9..10)]);
        assert_eq!(spans("x\t>\tlog"), [('w', 0..1), ('r', 2..7)]);
        assert!(tokenize(b"a > ;").is_err());
        assert!(tokenize(b"a >|").is_err());
        assert_eq!(spans("a;;b"), [('w', 0..1), ('o', 0..2), ('w', 3..4)]);
        assert_eq!(spans("a # b"), [('w', 0..1), ('#', 2..5)]);
    }

    #[test]
    fn assignments_are_names_then_equals() {
        let t = |s: &str| tokenize(s.as_bytes()).unwrap();
        let assignment = |s: &str| match &t(s)[0] {
            Token::Word(w) => w.assignment,
            other => panic!("{other:?}"),
        };
        assert!(assignment("A=1"));
        assert!(assignment("_a9=x=y"));
        assert!(assignment("a=\"b c\""));
        assert!(!assignment("1a=b"));
        assert!(!assignment("a-b=c"));
        assert!(!assignment("a"));
        assert!(!assignment("=a"));
        assert!(!assignment("'a'=b"));
        assert_eq!(words("1a=b x").unwrap(), ["1a=b", "x"]);
        // `=` and `~` expand only at the start of a word
        assert_eq!(words("x =y"), None);
        assert_eq!(words("x a~b c=d").unwrap(), ["x", "a~b", "c=d"]);
        // a backslash that ends the text is itself
        assert_eq!(words("x a\\").unwrap(), ["x", "a\\"]);
        assert_eq!(words("x a{b c}d").unwrap(), ["x", "a{b", "c}d"]);
    }

    #[test]
    fn expansions_and_their_ends() {
        for s in [
            "x $'a'",
            "x ${a}",
            "x $(a)",
            "x $1",
            "x $@",
            "x $_a",
            "x \"$a\"",
            "x \"`a`\"",
            "x `a`",
        ] {
            assert_eq!(words(s), None, "{s}");
        }
        assert_eq!(words("x a$ \"b$\" $").unwrap(), ["x", "a$", "b$", "$"]);
        // an expansion's end is where the word goes on
        let one = |s: &str| {
            let t = tokenize(s.as_bytes()).unwrap();
            assert!(
                matches!(&t[..], [Token::Word(_), Token::Word(w)] if w.span.end == s.len()),
                "{s}: {t:?}"
            );
        };
        one("x $(a ')' \")\" `)`; b)c");
        one("x ${a:-}}'}'");
        one("x ${a:-b c}d");
        one("x 'a'$(b)");
        one("x 'a'${b}");
        one("abcdef $'a'x");
        // a name ends at the first character that cannot be in one
        assert_eq!(spans("x $a_1 y"), [('w', 0..1), ('w', 2..6), ('w', 7..8)]);
        assert_eq!(spans("x $a;y"), [('w', 0..1), ('w', 2..4), ('o', 0..1), ('w', 5..6)]);
        assert_eq!(spans("ab $1;y"), [('w', 0..2), ('w', 3..5), ('o', 0..1), ('w', 6..7)]);
        one("x $(a $(b) \\) c)");
        one("x `a \\` b`c");
        one("x $'a b'c");
        one("x $ab'c d'");
        one("x $1'c d'");
        one("x \"a \\\" $(b \")\") c\"d");
        assert!(tokenize(b"x $(a").is_err());
        assert!(tokenize(b"x `a").is_err());
        assert!(tokenize(b"x \"a").is_err());
        assert!(tokenize(b"x $'a").is_err());
        assert!(tokenize(b"x \"a\\").is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(quote(b"/usr/bin/x"), b"/usr/bin/x");
        assert_eq!(quote(b"a b"), b"'a b'");
        assert_eq!(quote(b"it's"), b"'it'\\''s'");
        assert_eq!(quote(b""), b"''");
        assert_eq!(quote(b"=x"), b"'=x'");
    }
}
