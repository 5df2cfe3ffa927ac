//! When a crontab line runs, and the shortest time between two of its
//! runs: the base of the `--timeout` a rewrite gives it (man page, CRONTAB).

use std::time::Duration;

/// One time field as cron stores it: a bit per allowed value (bit 0 is
/// the field's lowest value), and whether it was written starting with `*`
/// (cron's `DOM_STAR`/`DOW_STAR`, which change how the two day fields
/// combine).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub bits: u64,
    pub star: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub reboot: bool,
    minutes: u64,
    hours: u64,
    /// Bit 0 is the 1st.
    days: u64,
    /// Bit 0 is January.
    months: u64,
    /// Bit 0 is Sunday (7 is folded onto 0).
    weekdays: u64,
    day_star: bool,
    weekday_star: bool,
}

const ALL: u64 = u64::MAX;

impl Schedule {
    /// `@reboot`, `@hourly`...: the words of cron's `load_entry` (exact case).
    pub fn special(word: &[u8]) -> Option<Schedule> {
        let every = Schedule {
            reboot: false,
            minutes: 1,
            hours: ALL,
            days: ALL,
            months: ALL,
            weekdays: ALL,
            day_star: false,
            weekday_star: false,
        };
        Some(match word {
            b"reboot" => Schedule { reboot: true, ..every },
            b"yearly" | b"annually" => {
                Schedule { hours: 1, days: 1, months: 1, weekday_star: true, ..every }
            }
            b"monthly" => Schedule { hours: 1, days: 1, weekday_star: true, ..every },
            b"weekly" => Schedule { hours: 1, weekdays: 1, day_star: true, ..every },
            b"daily" | b"midnight" => Schedule { hours: 1, ..every },
            b"hourly" => every,
            _ => return None,
        })
    }

    /// The five fields: minute, hour, day of month, month, day of week.
    pub fn from_fields(f: &[Field]) -> Schedule {
        let mut weekdays = f[4].bits;
        if weekdays & (1 | 1 << 7) != 0 {
            weekdays |= 1 | 1 << 7;
        }
        Schedule {
            reboot: false,
            minutes: f[0].bits,
            hours: f[1].bits,
            days: f[2].bits,
            months: f[3].bits,
            weekdays,
            day_star: f[2].star,
            weekday_star: f[4].star,
        }
    }

    /// cron's test for a day (`find_jobs`): both day fields must match if
    /// either was written with `*`, else either one.
    fn runs_on(&self, month: u32, day: u32, weekday: u32) -> bool {
        let bit = |set: u64, i: u32| set & (1 << i) != 0;
        if !bit(self.months, month - 1) {
            return false;
        }
        let (d, w) = (bit(self.days, day - 1), bit(self.weekdays, weekday));
        if self.day_star || self.weekday_star { d && w } else { d || w }
    }

    /// Minutes of the day at which it runs, in order.
    fn times(&self) -> Vec<u32> {
        (0..24u32)
            .filter(|h| self.hours & (1 << h) != 0)
            .flat_map(|h| {
                (0..60u32).filter(|m| self.minutes & (1 << m) != 0).map(move |m| h * 60 + m)
            })
            .collect()
    }

    /// The shortest time between two runs, in wall-clock minutes (ignoring
    /// daylight-saving shifts), over a 28-year calendar cycle; None for
    /// `@reboot` and for a schedule that runs less than twice in it.
    pub fn shortest_interval(&self) -> Option<u64> {
        if self.reboot {
            return None;
        }
        let times = self.times();
        let (&first, &last) = (times.first()?, times.last()?);
        let within_day = times.windows(2).map(|w| u64::from(w[1] - w[0])).min();
        let across_days =
            self.shortest_day_gap().map(|days| days * 1440 + u64::from(first) - u64::from(last));
        match (within_day, across_days) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The fewest days between two days it runs on.  The day fields of a
    /// crontab repeat a lot (`* * *`, `* * 0`): each is computed once.
    fn shortest_day_gap(&self) -> Option<u64> {
        type Key = (u64, u64, u64, bool, bool);
        thread_local! {
            static GAPS: std::cell::RefCell<std::collections::HashMap<Key, Option<u64>>> =
                std::cell::RefCell::default();
        }
        let key = (self.months, self.days, self.weekdays, self.day_star, self.weekday_star);
        if let Some(gap) = GAPS.with(|g| g.borrow().get(&key).copied()) {
            return gap;
        }
        let mut best: Option<u64> = None;
        let mut previous: Option<u64> = None;
        for (index, (month, day, weekday)) in Calendar::cycle().enumerate() {
            if !self.runs_on(month, day, weekday) {
                continue;
            }
            let index = index as u64;
            if let Some(p) = previous {
                best = Some(best.map_or(index - p, |b| b.min(index - p)));
                if index - p == 1 {
                    break; // no two days are closer
                }
            }
            previous = Some(index);
        }
        GAPS.with(|g| g.borrow_mut().insert(key, best));
        best
    }
}

/// Days from 2001-01-01 (a Monday) through 2028: every combination of
/// weekday, date and leap year that 1901-2099 holds.
struct Calendar {
    year: u32,
    month: u32,
    day: u32,
    weekday: u32,
}

impl Calendar {
    fn cycle() -> Calendar {
        Calendar { year: 2001, month: 1, day: 1, weekday: 1 }
    }
}

impl Iterator for Calendar {
    type Item = (u32, u32, u32);
    fn next(&mut self) -> Option<Self::Item> {
        if self.year > 2028 {
            return None;
        }
        let out = (self.month, self.day, self.weekday);
        let y = self.year;
        let leap = y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
        let length = match self.month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        self.weekday = (self.weekday + 1) % 7;
        self.day += 1;
        if self.day > length {
            self.day = 1;
            self.month += 1;
            if self.month > 12 {
                self.month = 1;
                self.year += 1;
            }
        }
        Some(out)
    }
}

/// The longest `--timeout` a rewrite gives.
pub const TIMEOUT_CAP: Duration = Duration::from_secs(24 * 3600);

/// The rewrite rule's timeout: the shortest interval minus a margin of a
/// quarter of it, at most one minute, so that a run killed at its deadline
/// (TERM, then KILL 10 s later) is gone before the next one is due; at most
/// one day.  None for `@reboot`.
pub fn derived_timeout(schedule: &Schedule) -> Option<Duration> {
    if schedule.reboot {
        return None;
    }
    let Some(minutes) = schedule.shortest_interval() else { return Some(TIMEOUT_CAP) };
    let interval = Duration::from_secs(minutes.saturating_mul(60));
    let margin = (interval / 4).min(Duration::from_secs(60));
    Some((interval - margin).min(TIMEOUT_CAP))
}

/// A duration the way the rewrite writes it: `45s`, `1m30s`, `4m`,
/// `23h59m`, `1d` (runonce's DURATION syntax reads it back).
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// `5 minutes`, `1 hour`, `1 day and 2 hours`: for messages.
pub fn describe_minutes(minutes: u64) -> String {
    let plural =
        |n: u64, unit: &str| if n == 1 { format!("1 {unit}") } else { format!("{n} {unit}s") };
    let (d, h, m) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    let parts: Vec<String> = [(d, "day"), (h, "hour"), (m, "minute")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| plural(n, u))
        .collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crontab::parse::{AnyUser, Item, Kind, parse_line};

    fn schedule(fields: &str) -> Schedule {
        match parse_line(format!("{fields} x").as_bytes(), Kind::User, &AnyUser) {
            Item::Job(j) => j.schedule,
            other => panic!("{fields}: {other:?}"),
        }
    }

    fn interval(fields: &str) -> Option<u64> {
        schedule(fields).shortest_interval()
    }

    #[test]
    fn shortest_intervals() {
        assert_eq!(interval("* * * * *"), Some(1));
        assert_eq!(interval("*/5 * * * *"), Some(5));
        assert_eq!(interval("5-55/10 * * * *"), Some(10));
        assert_eq!(interval("09,39 * * * *"), Some(30));
        assert_eq!(interval("0,50 * * * *"), Some(10));
        assert_eq!(interval("17 * * * *"), Some(60));
        assert_eq!(interval("30 7-23 * * *"), Some(60));
        assert_eq!(interval("0 */12 * * *"), Some(720));
        assert_eq!(interval("59 23 * * *"), Some(1440));
        assert_eq!(interval("0 23,1 * * *"), Some(120));
        assert_eq!(interval("25 6 * * *"), Some(1440));
        assert_eq!(interval("47 6 * * 7"), Some(7 * 1440));
        assert_eq!(interval("30 3 * * 0"), Some(7 * 1440));
        assert_eq!(interval("0 0 * * 5,6"), Some(1440));
        assert_eq!(interval("52 6 1 * *"), Some(28 * 1440));
        assert_eq!(interval("0 0 1 1 *"), Some(365 * 1440));
        // either day field matches when neither is `*`: the 1st and Fridays
        assert_eq!(interval("30 4 1,15 * 5"), Some(1440));
        // `*/2` counts as `*`: the 1st, 3rd... that are also Mondays
        assert!(interval("0 0 */2 * mon").unwrap() >= 7 * 1440);
        assert_eq!(interval("0 0 29 2 *"), Some(4 * 365 * 1440 + 1440));
        assert_eq!(interval("0 0 30 2 *"), None);
        // the 1st and the 29th of February, on one weekday: both fall on it
        // only in the leap year whose February starts on that day, each
        // weekday's in a different year of the cycle (2028's for Tuesday)
        for day in ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] {
            assert_eq!(interval(&format!("0 0 */28 2 {day}")), Some(28 * 1440), "{day}");
        }
        assert_eq!(interval("5-1 * * * *"), None);
        assert_eq!(Schedule::special(b"reboot").unwrap().shortest_interval(), None);
        let special = |w: &[u8]| Schedule::special(w).unwrap().shortest_interval();
        assert_eq!(special(b"hourly"), Some(60));
        assert_eq!(special(b"daily"), Some(1440));
        assert_eq!(special(b"midnight"), Some(1440));
        assert_eq!(special(b"weekly"), Some(7 * 1440));
        assert_eq!(special(b"monthly"), Some(28 * 1440));
        assert_eq!(special(b"yearly"), Some(365 * 1440));
        assert_eq!(Schedule::special(b"annually"), Schedule::special(b"yearly"));
    }

    #[test]
    fn the_timeout_rule() {
        let t = |f: &str| derived_timeout(&schedule(f)).map(format_duration);
        assert_eq!(t("* * * * *").as_deref(), Some("45s"));
        assert_eq!(t("*/2 * * * *").as_deref(), Some("1m30s"));
        assert_eq!(t("*/3 * * * *").as_deref(), Some("2m15s"));
        assert_eq!(t("*/5 * * * *").as_deref(), Some("4m"));
        assert_eq!(t("17 * * * *").as_deref(), Some("59m"));
        assert_eq!(t("0 4 * * *").as_deref(), Some("23h59m"));
        assert_eq!(t("0 4 * * 0").as_deref(), Some("1d"));
        assert_eq!(t("0 0 30 2 *").as_deref(), Some("1d"));
        assert_eq!(derived_timeout(&Schedule::special(b"reboot").unwrap()), None);
    }

    #[test]
    fn formatted_durations_read_back() {
        for secs in [1, 45, 59, 60, 90, 135, 240, 3540, 86340, 86400, 90061] {
            let text = format_duration(Duration::from_secs(secs));
            assert_eq!(crate::parse::duration(&text), Ok(Duration::from_secs(secs)), "{text}");
        }
        assert_eq!(describe_minutes(5), "5 minutes");
        assert_eq!(describe_minutes(60), "1 hour");
        assert_eq!(describe_minutes(1441), "1 day 1 minute");
    }
}
