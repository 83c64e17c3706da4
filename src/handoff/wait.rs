//! What a waiting customer is told of the wait: an estimate from how long colleagues
//! have recently taken to claim conversations, or, outside the contact centre's staffed
//! hours, when someone will be there. Never a number the data does not support: with
//! fewer than [`MIN_SAMPLES`] recent claims there is no estimate.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveTime, Utc, Weekday};
use serde::Serialize;

/// Recent claims the estimate is taken from.
pub const SAMPLES: i64 = 20;
/// Fewer claims than this and no estimate is given.
pub const MIN_SAMPLES: usize = 3;

/// When colleagues answer: days of the week and a daily window, in the bank's time zone
/// (`TELLER_STAFFED_HOURS`, e.g. `Mon-Fri 08:00-20:00`, and `TELLER_STAFFED_UTC_OFFSET`,
/// e.g. `+08:00`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffedHours {
    first_day: Weekday,
    last_day: Weekday,
    opens: NaiveTime,
    closes: NaiveTime,
    offset: FixedOffset,
}

impl StaffedHours {
    /// Reads `[Day-Day ]HH:MM-HH:MM` and an offset such as `+08:00`.
    pub fn parse(hours: &str, offset: &str) -> Result<Self, String> {
        let hours = hours.trim();
        let (days, window) = match hours.rsplit_once(' ') {
            Some((days, window)) => (Some(days.trim()), window),
            None => (None, hours),
        };
        let (first_day, last_day) = match days {
            None => (Weekday::Mon, Weekday::Sun),
            Some(days) => {
                let (a, b) = days.split_once('-').unwrap_or((days, days));
                let day = |d: &str| {
                    d.trim()
                        .parse::<Weekday>()
                        .map_err(|_| format!("{d:?} is not a day of the week"))
                };
                (day(a)?, day(b)?)
            }
        };
        let (opens, closes) = window
            .split_once('-')
            .ok_or_else(|| format!("{window:?} is not a window like 08:00-20:00"))?;
        let time = |t: &str| {
            NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| format!("{t:?} is not a time like 08:00"))
        };
        let (opens, closes) = (time(opens)?, time(closes)?);
        if opens >= closes {
            return Err(format!("the window {window:?} closes before it opens"));
        }
        let offset = offset
            .trim()
            .parse::<FixedOffset>()
            .map_err(|_| format!("{offset:?} is not a UTC offset like +08:00"))?;
        Ok(Self {
            first_day,
            last_day,
            opens,
            closes,
            offset,
        })
    }

    fn staffed_day(&self, day: Weekday) -> bool {
        let (d, a, b) = (
            day.num_days_from_monday(),
            self.first_day.num_days_from_monday(),
            self.last_day.num_days_from_monday(),
        );
        if a <= b {
            (a..=b).contains(&d)
        } else {
            d >= a || d <= b
        }
    }

    /// Whether colleagues are there at `at`.
    pub fn is_staffed(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.offset);
        let time = local.time();
        self.staffed_day(local.weekday()) && time >= self.opens && time < self.closes
    }

    /// The next opening after `at` (`at` itself when staffed).
    pub fn next_opening(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        if self.is_staffed(at) {
            return at;
        }
        let local = at.with_timezone(&self.offset);
        for days in 0..8 {
            let date = local.date_naive() + Duration::days(days);
            let opening = date
                .and_time(self.opens)
                .and_local_timezone(self.offset)
                .single()
                .expect("a fixed offset has no gaps");
            if self.staffed_day(date.weekday()) && opening > local {
                return opening.with_timezone(&Utc);
            }
        }
        unreachable!("some day of any week is staffed")
    }
}

/// What a waiting customer is told.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Wait {
    /// Seconds until a colleague is likely to join: the place in the queue times the median
    /// time to claim of the last 20 claims; `null` without enough of them, or outside
    /// staffed hours.
    pub estimated_wait_seconds: Option<u64>,
    /// Colleagues are working now.
    pub staffed: bool,
    /// When they will be, if not now (RFC 3339).
    pub next_staffed_at: Option<String>,
}

/// The wait for the customer at `position`, from recent claim times (seconds).
pub fn estimate(position: usize, mut recent: Vec<f64>, hours: Option<&StaffedHours>, now: DateTime<Utc>) -> Wait {
    if let Some(hours) = hours.filter(|h| !h.is_staffed(now)) {
        return Wait {
            estimated_wait_seconds: None,
            staffed: false,
            next_staffed_at: Some(
                hours
                    .next_opening(now)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
        };
    }
    let estimated_wait_seconds = (recent.len() >= MIN_SAMPLES).then(|| {
        recent.sort_by(f64::total_cmp);
        let median = recent[recent.len() / 2];
        (median * position.max(1) as f64).ceil() as u64
    });
    Wait {
        estimated_wait_seconds,
        staffed: true,
        next_staffed_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn staffed_hours_are_read_in_the_bank_s_time_zone() {
        let hours = StaffedHours::parse("Mon-Fri 08:00-20:00", "+08:00").unwrap();
        // Friday 2026-12-04 11:00 UTC is 19:00 in +08:00: staffed.
        assert!(hours.is_staffed(at(2026, 12, 4, 11, 0)));
        // 12:30 UTC is 20:30 there: closed until Monday 08:00 (+08:00), Monday 00:00 UTC.
        assert!(!hours.is_staffed(at(2026, 12, 4, 12, 30)));
        assert_eq!(hours.next_opening(at(2026, 12, 4, 12, 30)), at(2026, 12, 7, 0, 0));
        // Every day when no days are given.
        let daily = StaffedHours::parse("09:00-17:00", "+00:00").unwrap();
        assert_eq!(daily.next_opening(at(2026, 12, 5, 18, 0)), at(2026, 12, 6, 9, 0));
        assert!(StaffedHours::parse("20:00-08:00", "+00:00").is_err());
        assert!(StaffedHours::parse("Mon-Fry 08:00-20:00", "+00:00").is_err());
        assert!(StaffedHours::parse("08:00-20:00", "CET").is_err());
    }

    #[test]
    fn the_estimate_is_the_place_times_the_median_claim_time_and_only_with_data() {
        let now = at(2026, 12, 4, 11, 0);
        assert_eq!(estimate(2, vec![30.0, 60.0], None, now).estimated_wait_seconds, None);
        let wait = estimate(3, vec![30.0, 90.0, 60.0, 600.0], None, now);
        // Median of four is the upper middle one (90 s): 3 x 90 s.
        assert_eq!((wait.estimated_wait_seconds, wait.staffed), (Some(270), true));
        let closed = StaffedHours::parse("Mon-Fri 08:00-09:00", "+00:00").unwrap();
        let wait = estimate(1, vec![30.0; 5], Some(&closed), now);
        assert_eq!((wait.estimated_wait_seconds, wait.staffed), (None, false));
        assert_eq!(wait.next_staffed_at.as_deref(), Some("2026-12-07T08:00:00Z"));
    }
}
