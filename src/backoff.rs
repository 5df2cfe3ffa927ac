//! The pauses runonce chooses itself: `--jitter`'s random delay before a
//! run, and the backoff between `--retries` (man page, OPTIONS).

use std::time::Duration;

/// A uniformly random duration in [0, max), from the kernel's generator.
pub fn random_below(max: Duration) -> Duration {
    let mut bytes = [0u8; 8];
    if crate::sys::fill_random(&mut bytes).is_err() {
        return Duration::ZERO;
    }
    let unit = (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64;
    max.mul_f64(unit)
}

/// The pause before retry number `attempt` (1-based): `delay` doubled
/// each time, +-20% jitter, capped at `max`.  Huge values saturate
/// ("effectively never"), they never overflow.
pub fn retry_pause(delay: Duration, max: Duration, attempt: u32) -> Duration {
    let base = delay.saturating_mul(1u32 << (attempt.max(1) - 1).min(30));
    let capped = base.min(max);
    let jitter = 0.8 + 0.4 * random_below(Duration::from_secs(1)).as_secs_f64();
    Duration::try_from_secs_f64(capped.as_secs_f64() * jitter).unwrap_or(Duration::MAX).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_below_spreads_under_its_bound() {
        let max = Duration::from_secs(1);
        let draws: Vec<Duration> = (0..64).map(|_| random_below(max)).collect();
        assert!(draws.iter().all(|d| *d < max), "{draws:?}");
        let (lo, hi) = (draws.iter().min().unwrap(), draws.iter().max().unwrap());
        assert!(*hi - *lo > Duration::from_millis(300), "not spread: {draws:?}");
    }

    #[test]
    fn the_jitter_is_twenty_percent_either_way() {
        // one second: a jitter added instead of multiplied, or divided,
        // leaves the band (for division, in 8% of the draws)
        let pauses: Vec<f64> = (0..300)
            .map(|_| retry_pause(Duration::from_secs(1), Duration::from_secs(60), 1).as_secs_f64())
            .collect();
        assert!(pauses.iter().all(|p| (0.8..=1.2).contains(p)), "{pauses:?}");
        let lo = pauses.iter().cloned().fold(f64::MAX, f64::min);
        let hi = pauses.iter().cloned().fold(0.0, f64::max);
        assert!(lo < 0.9 && hi > 1.1, "not spread over the band: {lo}..{hi}");
    }

    #[test]
    fn doubles_with_jitter_and_caps() {
        let s = Duration::from_secs;
        for attempt in 1..=3 {
            let p = retry_pause(s(10), s(3600), attempt);
            let base = 10.0 * f64::from(1u32 << (attempt - 1));
            assert!((0.8 * base..=1.2 * base).contains(&p.as_secs_f64()), "{attempt}: {p:?}");
        }
        assert!(retry_pause(s(10), s(15), 5) <= s(15));
        assert!(retry_pause(Duration::MAX, Duration::MAX, 40) > s(1 << 40));
        assert!(random_below(s(1)) < s(1));
        assert_eq!(random_below(Duration::ZERO), Duration::ZERO);
    }
}
