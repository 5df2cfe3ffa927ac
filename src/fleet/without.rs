//! The `fleet` feature is off: `--lock-url` is refused with one line.

use std::os::fd::RawFd;

use super::{LeaseRow, Request, Taken};

const WHY: &str = "this runonce was built without the fleet feature (cargo feature `fleet`)";

pub fn check(_url: &str) -> Result<(), String> {
    Err(WHY.into())
}

pub fn describe(_url: &str) -> String {
    "the database".into()
}

pub fn peek(_url: &str, _name: Option<&str>) -> Result<Vec<LeaseRow>, String> {
    Err(WHY.into())
}

pub fn take(_url: &str, _req: Request, _signals: &crate::signals::Signals) -> Taken {
    Taken::Refused(WHY.into())
}

/// Never made: nothing can take a lease in this build.
pub struct Lease {
    pub token: i64,
    never: std::convert::Infallible,
}

impl Lease {
    pub fn lost_fd(&self) -> RawFd {
        match self.never {}
    }

    pub fn lost(&self) -> Option<String> {
        match self.never {}
    }

    pub fn release(self) -> Result<(), String> {
        match self.never {}
    }
}
