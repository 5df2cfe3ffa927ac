//! Many hosts (man page, FLEET): besides its local lock, a run can take a
//! lease in PostgreSQL (`--lock-url`), so that the same crontab on N hosts
//! runs the job on one host at a time.  The lease is a row per job name,
//! taken and renewed against the database server's clock; every
//! acquisition gets a larger fencing token, handed to the job as
//! `RUNONCE_FENCING_TOKEN`.  A run whose lease is lost is stopped
//! (`lost-lock`, exit 124).
//!
//! Built with the `fleet` cargo feature (on by default); without it
//! `--lock-url` is refused with one line.

use std::time::{Duration, Instant};

pub mod conninfo;
#[cfg(feature = "fleet")]
mod tls;

#[cfg_attr(not(feature = "fleet"), path = "without.rs")]
mod pg;

/// The table's definition, as the man page gives it to DBAs.
#[cfg(feature = "fleet")]
pub use pg::CREATE_TABLE;
pub use pg::{Lease, check, describe, peek, take};

/// The environment variable that hands the job its fencing token.
pub const TOKEN_ENV: &str = "RUNONCE_FENCING_TOKEN";

/// `--lock-url` and the options that go with it.
#[derive(Clone)]
pub struct Options {
    /// The connection string as given: it may hold a password, so it is
    /// never shown (`describe` says where it points).
    pub url: String,
    pub lease: Duration,
    pub at_least: Duration,
    /// `--lock-url-optional`: an unreachable database lets the run go on
    /// under the local lock alone.
    pub optional: bool,
}

/// What the lease thread needs to take the lease for this run.
pub struct Request {
    pub name: String,
    pub host: String,
    pub pid: i32,
    pub lease: Duration,
    pub at_least: Duration,
    /// `--wait`: None = do not wait, Some(None) = forever.
    pub wait_until: Option<Option<Instant>>,
}

/// Who holds a lease.
#[derive(Clone, Debug, PartialEq)]
pub struct Holder {
    pub host: String,
    pub pid: i32,
    pub token: i64,
    /// Seconds since it was taken, by the server's clock.
    pub age_s: f64,
}

/// A row of `runonce_leases`, for `--status`.
#[derive(Clone, Debug)]
pub struct LeaseRow {
    pub name: String,
    pub holder: Holder,
    pub acquired_unix: f64,
    /// Negative once expired (the lease is free).
    pub expires_in_s: f64,
}

/// How an attempt to take the lease ended.
pub enum Taken {
    Held(Lease),
    Busy(Holder),
    /// The database could not be reached: `--lock-url-optional` runs anyway.
    Unreachable(String),
    /// The database answered with an error (authentication, permissions):
    /// a configuration to fix, never run around.
    Refused(String),
    /// A forwarded signal arrived while waiting for the database.
    Interrupted(i32),
}

#[cfg(test)]
mod tests {
    #[cfg(feature = "fleet")]
    #[test]
    fn the_man_page_shows_the_statements_runonce_runs() {
        let page = include_str!("../../man/runonce.1.in").replace("\\-", "-").replace("\\(aq", "'");
        for sql in
            [super::pg::CREATE_TABLE, super::pg::ACQUIRE, super::pg::RENEW, super::pg::RELEASE]
        {
            assert!(page.contains(sql), "man/runonce.1.in lacks:\n{sql}");
        }
    }
}
