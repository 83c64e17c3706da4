//! Times as the log stores and filters them: RFC 3339 in UTC with microseconds, so that
//! text order is time order in both databases.

use serde::Deserialize;
use std::fmt;
use std::str::FromStr;

/// A point in time, parsed from a date (`2026-11-01`: its midnight UTC) or any RFC 3339
/// time, and held in the log's form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Timestamp(String);

/// A value that is neither a date nor an RFC 3339 time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is neither YYYY-MM-DD nor an RFC 3339 time")]
pub struct InvalidTime(String);

impl Timestamp {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Timestamp {
    type Err = InvalidTime;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let utc = if let Ok(date) = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
            date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
        } else {
            chrono::DateTime::parse_from_rfc3339(value)
                .map_err(|_| InvalidTime(value.to_string()))?
                .with_timezone(&chrono::Utc)
        };
        Ok(Self(utc.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)))
    }
}

impl TryFrom<String> for Timestamp {
    type Error = InvalidTime;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_midnights_and_times_are_normalised_to_utc() {
        assert_eq!(
            "2026-11-01".parse::<Timestamp>().unwrap().as_str(),
            "2026-11-01T00:00:00.000000Z"
        );
        assert_eq!(
            "2026-11-01T08:30:00+08:00".parse::<Timestamp>().unwrap().as_str(),
            "2026-11-01T00:30:00.000000Z"
        );
        assert!("yesterday".parse::<Timestamp>().is_err());
    }
}
