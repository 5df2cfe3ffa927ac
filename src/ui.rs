//! runonce's own messages on stderr.  Writes never panic and never change an
//! exit status: stderr may be closed or full (cli.md section 7).

use crate::sys;

/// Writes `runonce: MSG` and a newline to stderr in one write.
pub fn warn(msg: &str) {
    let line = format!("runonce: {msg}\n");
    let _ = sys::write_all_fd(2, line.as_bytes());
}

/// Writes raw bytes to stdout; false if they could not all be written.
pub fn print(text: &str) -> bool {
    sys::write_all_fd(1, text.as_bytes()).is_ok()
}
