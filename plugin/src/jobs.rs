//! What the scoring worker is asked to do. Its own module so the state the threads share
//! ([`crate::session`]) and the worker ([`crate::scoring_worker`]) do not import each other.

use std::time::Instant;

/// What the worker is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// A bar was completed at this instant.
    NewBar(Instant),
    /// The cut limits changed.
    Options,
    /// Fit the captured track to this many seconds.
    Fit {
        target_s: f64,
    },
    Stop,
}
