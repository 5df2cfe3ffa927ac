//! `--log json:PATH`: one JSON object a line, appended.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use super::{Sink, Warned};
use crate::files;
use crate::record::Record;

/// How long a record waits for another runonce's append to the same file.
const PATIENCE: Duration = Duration::from_secs(1);

pub struct Json {
    path: PathBuf,
    warned: Warned,
}

impl Json {
    pub fn new(path: PathBuf) -> Json {
        Json { path, warned: Warned::default() }
    }
}

impl Sink for Json {
    /// Appended with O_APPEND in a single write, so that records of
    /// concurrent jobs never interleave; on a fresh line even if an earlier
    /// write was cut short (a full disk), so that one torn record never
    /// takes the next with it.  Never through a link, never into a FIFO
    /// (files.rs).  The flock taken meanwhile is on the log, so it only
    /// orders runonce's own writers.
    fn emit(&mut self, rec: &Record) {
        let line = rec.to_json();
        let result = files::open_append(&self.path, 0o644).and_then(|mut f| {
            // runonce's writers take turns to look at the end and append: a
            // record another is writing would look torn half-way through
            let _turn = f.try_clone().and_then(|c| files::lock_within(c, PATIENCE)).ok();
            let text = if ends_open(&f) { format!("\n{line}\n") } else { format!("{line}\n") };
            f.write_all(text.as_bytes())
        });
        if let Err(e) = result {
            self.warned.once(format!("--log json:{}: cannot write: {e}", self.path.display()));
        }
    }
}

/// The file is not empty and its last byte is not a newline.
fn ends_open(file: &std::fs::File) -> bool {
    use std::os::unix::fs::FileExt;
    let Ok(len) = file.metadata().map(|m| m.len()) else { return false };
    let mut last = [0u8; 1];
    len > 0 && file.read_at(&mut last, len - 1).is_ok_and(|n| n == 1 && last[0] != b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a file whose last byte is not a newline ends open: an empty
    /// file, or one whose records all ended, takes the next record as is.
    #[test]
    fn a_file_ends_open_only_after_a_cut_record() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("log");
        for (text, open) in [
            (&b""[..], false),
            (b"\n", false),
            (b"{}\n", false),
            (b"{", true),
            (b"{}\n{\"a\"", true),
        ] {
            std::fs::write(&path, text).unwrap();
            let file = std::fs::File::open(&path).unwrap();
            assert_eq!(ends_open(&file), open, "{:?}", String::from_utf8_lossy(text));
        }
    }
}
