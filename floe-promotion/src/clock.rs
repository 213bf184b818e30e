//! An injectable source of time, so soak times, expiries and freeze windows are tested without
//! sleeping.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// Tells the current time.
///
/// # Contract
///
/// - `now` returns UTC time and never goes backwards between two calls on the same clock.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to. Clones share the same time.
///
/// ```
/// use floe_promotion::{Clock, ManualClock};
/// let clock = ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
/// clock.advance(chrono::Duration::hours(25));
/// assert_eq!(clock.now().to_rfc3339(), "2026-01-02T01:00:00+00:00");
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock forward (a negative duration is ignored: the clock never goes back).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        if by > Duration::zero() {
            *now += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `now` never goes backwards between two calls on the same clock.
    #[test]
    fn clocks_never_go_backwards() {
        let system = SystemClock;
        let mut last = system.now();
        for _ in 0..1000 {
            let now = system.now();
            assert!(now >= last);
            last = now;
        }
        let manual = ManualClock::new(last);
        manual.advance(Duration::seconds(-10));
        assert_eq!(manual.now(), last);
        manual.advance(Duration::seconds(10));
        assert_eq!(manual.now(), last + Duration::seconds(10));
        let shared = manual.clone();
        shared.advance(Duration::seconds(1));
        assert_eq!(manual.now(), shared.now());
    }
}
