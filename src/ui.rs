//! runonce's own messages on stderr.  Writes never panic and never change an
//! exit status: stderr may be closed or full (man page, EXIT STATUS).
//!
//! Warnings are also noted for the run's finish record, and with `--quiet`
//! they are held back: they reach stderr only if the run fails (see the man
//! page, OUTPUT AND RECORDS), as the job's own output does.

use std::sync::{Mutex, MutexGuard};

use crate::sys;

/// The warnings of this process so far.
struct Noted {
    /// Held back from stderr until `release_warnings`.
    hold: bool,
    all: Vec<String>,
    held: Vec<String>,
}

static NOTED: Mutex<Noted> = Mutex::new(Noted { hold: false, all: Vec::new(), held: Vec::new() });

fn noted() -> MutexGuard<'static, Noted> {
    // a panic elsewhere must not silence runonce
    NOTED.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A warning: `runonce: MSG` on stderr (unless held), noted for the record.
/// Control characters (a newline in a value a user typed) are escaped, so
/// a message is always exactly one line.
pub fn warn(msg: &str) {
    let msg = one_line(msg);
    let mut n = noted();
    n.all.push(msg.clone());
    if n.hold {
        n.held.push(msg);
    } else {
        drop(n);
        say(&msg);
    }
}

/// A warning for the record that reaches stderr only if the run fails
/// (when the held warnings are released): a problem beside the job, such
/// as a ping that did not get through, is no reason for cron mail when
/// the job succeeded.
pub fn note(msg: &str) {
    let msg = one_line(msg);
    let mut n = noted();
    n.all.push(msg.clone());
    n.held.push(msg);
}

/// Writes `runonce: MSG` and a newline to stderr in one write: a line that
/// is not a warning (a record for the stderr sink), never held back.
pub fn say(msg: &str) {
    let line = format!("runonce: {}\n", one_line(msg));
    let _ = sys::write_all_fd(2, line.as_bytes());
}

/// From now on warnings wait in memory until `release_warnings`.
pub fn hold_warnings() {
    noted().hold = true;
}

/// Every warning so far, held or not.
pub fn warnings() -> Vec<String> {
    noted().all.clone()
}

/// Writes the held warnings to stderr, in order; later ones go straight
/// there.
pub fn release_warnings() {
    let held = {
        let mut n = noted();
        n.hold = false;
        std::mem::take(&mut n.held)
    };
    for msg in held {
        say(&msg);
    }
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
