//! `--log none`: records go nowhere (state and metrics are still kept).

use super::Sink;
use crate::record::Record;

pub struct None;

impl Sink for None {
    fn emit(&mut self, _rec: &Record) {}
}
