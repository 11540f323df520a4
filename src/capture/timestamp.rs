//! When a packet or a recorded message was seen.

use std::fmt;

/// A capture timestamp in UTC: seconds and nanoseconds since the Unix epoch, and how many
/// fractional digits the source recorded (6 for a microsecond pcap, 9 for a nanosecond one), so
/// the printed form claims no more precision than the file had.
///
/// Displays as RFC 3339 (`2016-08-11T18:12:09.422603Z`). Only years 0000 to 9999 are
/// representable, because RFC 3339 has four-digit years; [`Timestamp::new`] refuses the rest
/// rather than print something a parser would reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    seconds: i64,
    nanos: u32,
    digits: u8,
}

/// Seconds from 0000-01-01T00:00:00Z to the Unix epoch, in the proleptic Gregorian calendar.
const SECONDS_BEFORE_EPOCH: i64 = 719_528 * 86_400;
/// The last second of 9999-12-31, in Unix seconds.
const LAST_SECOND: i64 = 253_402_300_799;

impl Timestamp {
    /// A timestamp `seconds` + `nanos` after the Unix epoch, printed with `digits` fractional
    /// digits (clamped to 0..=9). `None` if `nanos` is a second or more, or the instant falls
    /// outside the years 0000 to 9999.
    pub fn new(seconds: i64, nanos: u32, digits: u8) -> Option<Timestamp> {
        if nanos >= 1_000_000_000 || !(-SECONDS_BEFORE_EPOCH..=LAST_SECOND).contains(&seconds) {
            return None;
        }
        Some(Timestamp {
            seconds,
            nanos,
            digits: digits.min(9),
        })
    }

    /// Whole seconds since the Unix epoch.
    pub fn seconds(&self) -> i64 {
        self.seconds
    }

    /// Nanoseconds past [`Timestamp::seconds`].
    pub fn nanos(&self) -> u32 {
        self.nanos
    }

    /// This instant plus `micros` microseconds, shown with at least microsecond precision;
    /// `None` past the year 9999.
    pub fn add_micros(&self, micros: u64) -> Option<Timestamp> {
        let nanos = u64::from(self.nanos) + micros % 1_000_000 * 1000;
        let seconds = i64::try_from(micros / 1_000_000 + nanos / 1_000_000_000).ok()?;
        let nanos = u32::try_from(nanos % 1_000_000_000).ok()?;
        Timestamp::new(self.seconds.checked_add(seconds)?, nanos, self.digits.max(6))
    }
}

/// Why a string is not an RFC 3339 UTC timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 UTC timestamp (YYYY-MM-DDTHH:MM:SS[.fraction]Z): {0:?}")]
pub struct TimestampParseError(String);

impl std::str::FromStr for Timestamp {
    type Err = TimestampParseError;

    /// Reads the form [`Timestamp`] displays: UTC (`Z`), one to nine fractional digits or none.
    fn from_str(text: &str) -> Result<Timestamp, TimestampParseError> {
        let error = || TimestampParseError(text.chars().take(64).collect());
        let bytes = text.as_bytes();
        let number = |range: std::ops::Range<usize>| -> Option<i64> {
            let digits = bytes.get(range)?;
            digits.iter().all(u8::is_ascii_digit).then_some(())?;
            std::str::from_utf8(digits).ok()?.parse().ok()
        };
        let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
        if !separators.iter().all(|&(at, byte)| bytes.get(at) == Some(&byte)) || bytes.last() != Some(&b'Z') {
            return Err(error());
        }
        let fields = (
            number(0..4),
            number(5..7),
            number(8..10),
            number(11..13),
            number(14..16),
            number(17..19),
        );
        let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = fields else {
            return Err(error());
        };
        let fraction = text.get(19..text.len() - 1).ok_or_else(error)?;
        let (nanos, digits) = match fraction.strip_prefix('.') {
            None if fraction.is_empty() => (0, 0),
            Some(fraction) if (1..=9).contains(&fraction.len()) && fraction.bytes().all(|b| b.is_ascii_digit()) => {
                let padded = format!("{fraction:0<9}");
                (padded.parse().map_err(|_| error())?, fraction.len())
            }
            _ => return Err(error()),
        };
        let month_lengths = [
            31,
            if is_leap(year) { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        let month_index = usize::try_from(month - 1).map_err(|_| error())?;
        let month_length = *month_lengths.get(month_index).ok_or_else(error)?;
        if !(1..=month_length).contains(&day) || hour > 23 || minute > 59 || second > 59 {
            return Err(error());
        }
        let leap_days_before = (year + 3) / 4 - (year + 99) / 100 + (year + 399) / 400;
        let days_before_month: i64 = month_lengths.iter().take(month_index).sum();
        let day_number = 365 * year + leap_days_before + days_before_month + day - 1;
        let seconds = day_number * 86_400 - SECONDS_BEFORE_EPOCH + hour * 3600 + minute * 60 + second;
        Timestamp::new(seconds, nanos, u8::try_from(digits).unwrap_or(9)).ok_or_else(error)
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// (year, month 1-12, day 1-31) of a day counted from 0000-01-01 (day 0). Whole 400-year
/// cycles are 146,097 days; the remainder is walked year by year and month by month, which is
/// slower than a closed formula and obviously right.
fn civil_date(mut day: i64) -> (i64, u32, u32) {
    let mut year = day.div_euclid(146_097) * 400;
    day = day.rem_euclid(146_097);
    loop {
        let length = if is_leap(year) { 366 } else { 365 };
        if day < length {
            break;
        }
        day -= length;
        year += 1;
    }
    let february = if is_leap(year) { 29 } else { 28 };
    let mut month = 1;
    for length in [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] {
        if day < length {
            break;
        }
        day -= length;
        month += 1;
    }
    // `day` is now below 31 and `month` at most 12, so both conversions succeed.
    (year, month, u32::try_from(day + 1).unwrap_or(1))
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since_year_zero = self.seconds + SECONDS_BEFORE_EPOCH;
        let (year, month, day) = civil_date(since_year_zero.div_euclid(86_400));
        let second_of_day = since_year_zero.rem_euclid(86_400);
        let (hour, minute, second) = (second_of_day / 3600, second_of_day / 60 % 60, second_of_day % 60);
        write!(f, "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}")?;
        if self.digits > 0 {
            let fraction = format!("{:09}", self.nanos);
            f.write_str(".")?;
            f.write_str(fraction.get(..usize::from(self.digits)).unwrap_or(&fraction))?;
        }
        f.write_str("Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc3339(seconds: i64, nanos: u32, digits: u8) -> String {
        Timestamp::new(seconds, nanos, digits).unwrap().to_string()
    }

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(0, 0, 0), "1970-01-01T00:00:00Z");
        // compressed.pcap's first MongoDB packet (`date -u -d @1470939129`).
        assert_eq!(rfc3339(1_470_939_129, 422_603_000, 6), "2016-08-11T18:12:09.422603Z");
        assert_eq!(rfc3339(951_782_400, 5, 9), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(4_107_542_399, 0, 3), "2100-02-28T23:59:59.000Z");
        assert_eq!(rfc3339(-1, 999_999_999, 9), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(rfc3339(-SECONDS_BEFORE_EPOCH, 0, 0), "0000-01-01T00:00:00Z");
        assert_eq!(rfc3339(LAST_SECOND, 0, 0), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn the_displayed_form_parses_back() {
        for (seconds, nanos, digits) in [
            (0, 0, 0),
            (1_470_939_129, 422_603_000, 6),
            (951_782_400, 5, 9),
            (4_107_542_399, 0, 3),
            (-1, 999_999_999, 9),
            (-SECONDS_BEFORE_EPOCH, 0, 0),
            (LAST_SECOND, 0, 0),
            (1_795_608_000, 0, 0),
        ] {
            let timestamp = Timestamp::new(seconds, nanos, digits).unwrap();
            assert_eq!(timestamp.to_string().parse::<Timestamp>(), Ok(timestamp));
        }
        for bad in [
            "",
            "Z",
            "2026-11-25",
            "2026-11-25T12:00:00",
            "2026-11-25T12:00:00+01:00",
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T12:00:00.Z",
            "2026-11-25T12:00:00.1234567890Z",
            "-026-11-25T12:00:00Z",
            "2026-11-25T12:00:0\u{e9}Z",
            "2026-11-25T12:00:00\u{e9}Z",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn microseconds_carry_into_seconds() {
        let start: Timestamp = "2026-11-25T23:59:59.999999Z".parse().unwrap();
        assert_eq!(start.add_micros(1).unwrap().to_string(), "2026-11-26T00:00:00.000000Z");
        assert_eq!(
            start.add_micros(86_400_000_001).unwrap().to_string(),
            "2026-11-27T00:00:00.000000Z"
        );
        let whole: Timestamp = "2026-11-25T12:00:00Z".parse().unwrap();
        assert_eq!(
            whole.add_micros(412).unwrap().to_string(),
            "2026-11-25T12:00:00.000412Z"
        );
        assert_eq!(whole.add_micros(u64::MAX), None);
    }

    #[test]
    fn out_of_range_instants_are_refused() {
        assert!(Timestamp::new(LAST_SECOND + 1, 0, 6).is_none());
        assert!(Timestamp::new(-SECONDS_BEFORE_EPOCH - 1, 0, 6).is_none());
        assert!(Timestamp::new(0, 1_000_000_000, 9).is_none());
        assert_eq!(
            Timestamp::new(0, 0, 12).unwrap().to_string(),
            "1970-01-01T00:00:00.000000000Z"
        );
    }
}
