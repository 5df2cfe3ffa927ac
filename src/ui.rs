//! runonce's own messages on stderr.  Writes never panic and never change an
//! exit status: stderr may be closed or full (cli.md section 7).

use crate::sys;

/// Writes `runonce: MSG` and a newline to stderr in one write.  Control
/// characters (a newline in a value a user typed) are escaped, so a
/// message is always exactly one line.
pub fn warn(msg: &str) {
    let line = format!("runonce: {}\n", one_line(msg));
    let _ = sys::write_all_fd(2, line.as_bytes());
}

/// Writes raw bytes to stdout; false if they could not all be written.
pub fn print(text: &str) -> bool {
    sys::write_all_fd(1, text.as_bytes()).is_ok()
}

/// `msg` with control characters escaped (`\n`, `\u{1b}`).
pub fn one_line(msg: &str) -> String {
    msg.chars()
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_line_escapes_controls_only() {
        assert_eq!(super::one_line("a\nb\té"), "a\\nb\\té");
    }
}
