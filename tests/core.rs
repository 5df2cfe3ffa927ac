//! The core binary (issue 2): exit codes, lock, timeout, signals, bad input.
