//! `--log stderr`: each record as `key=value` words on stderr.

use super::Sink;
use crate::record::Record;
use crate::ui;

pub struct Stderr;

impl Sink for Stderr {
    fn emit(&mut self, rec: &Record) {
        ui::say(&rec.to_words());
    }
}
