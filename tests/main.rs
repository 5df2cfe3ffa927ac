//! Integration tests on the real binary, real processes and real signals.
//! One test binary (autotests = false), one module per area.

mod util;

mod cgroup;
mod ci;
mod core;
mod cron;
mod crontab;
mod docs;
mod footprint;
mod forget;
mod limit;
mod observe;
mod options;
mod peers;
#[cfg(feature = "ping")]
mod ping;
mod props;
mod stress;
mod tree;
mod trust;
mod usage;
