//! Timestamps and dates as the API writes and reads them.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// RFC 3339 in UTC with exactly milliseconds: `2023-08-17T23:18:13.000Z`.
pub fn format_timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Accepts an RFC 3339 timestamp with any offset, or a plain `YYYY-MM-DD` (midnight UTC).
pub fn parse_timestamp(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .or_else(|| parse_date(s).map(|d| d.midnight().assume_utc()))
        .ok_or_else(|| {
            "must be an RFC 3339 timestamp such as 2023-08-17T23:18:13.000Z or a date in the form \
             YYYY-MM-DD"
                .to_owned()
        })
}

/// `YYYY-MM-DD`.
pub fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Parses exactly `YYYY-MM-DD`; `None` unless it is a real calendar date.
pub fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s, format_description!("[year]-[month]-[day]")).ok()
}

/// Microseconds since the Unix epoch (the storage form of timestamps).
pub fn to_unix_micros(t: OffsetDateTime) -> i64 {
    t.unix_timestamp() * 1_000_000 + i64::from(t.microsecond())
}

/// The inverse of [`to_unix_micros`]. Saturates at the supported date range, which stored values
/// (always produced by `to_unix_micros`) never leave.
pub fn from_unix_micros(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).unwrap_or_else(|_| {
        if micros < 0 {
            PrimitiveDateTime::MIN.assume_utc()
        } else {
            PrimitiveDateTime::MAX.assume_utc()
        }
    })
}

/// The exact time for people: `2023-08-17 23:18:13 UTC`.
pub fn format_exact(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        format_date(t.date()),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// How far `t` is from `now`, in the largest whole unit: "just now", "5 minutes ago",
/// "in 3 days", "1 year ago". A month counts 30 days and a year 365: it is a hint, shown with
/// the exact time beside it.
pub fn relative_time(t: OffsetDateTime, now: OffsetDateTime) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    const MONTH: u64 = 30 * DAY;
    const YEAR: u64 = 365 * DAY;
    let seconds = (now - t).whole_seconds();
    let distance = seconds.unsigned_abs();
    if distance < MINUTE {
        return "just now".to_owned();
    }
    let (count, unit) = match distance {
        d if d < HOUR => (d / MINUTE, "minute"),
        d if d < DAY => (d / HOUR, "hour"),
        d if d < MONTH => (d / DAY, "day"),
        d if d < YEAR => (d / MONTH, "month"),
        d => (d / YEAR, "year"),
    };
    let plural = if count == 1 { "" } else { "s" };
    if seconds > 0 {
        format!("{count} {unit}{plural} ago")
    } else {
        format!("in {count} {unit}{plural}")
    }
}

/// Serde for dates as `YYYY-MM-DD`.
pub mod serde_date {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;

    use crate::time_format::{format_date, parse_date};

    pub fn serialize<S: Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_date(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let s = String::deserialize(d)?;
        parse_date(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("`{s}` is not a date in the form YYYY-MM-DD"))
        })
    }
}

/// [`serde_date`] for optional dates.
pub mod serde_opt_date {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;

    pub fn serialize<S: Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serde_date::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super::serde_date")] Date);
        Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(d)| d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::{
        Duration,
        macros::{date, datetime},
    };

    #[test]
    fn formats_utc_with_milliseconds() {
        assert_eq!(
            format_timestamp(datetime!(2023-08-17 23:18:13 UTC)),
            "2023-08-17T23:18:13.000Z"
        );
        assert_eq!(
            format_timestamp(datetime!(2023-08-18 01:18:13.123_999 +02:00)),
            "2023-08-17T23:18:13.123Z"
        );
    }

    #[test]
    fn parses_timestamps_and_dates() {
        assert_eq!(
            parse_timestamp("2023-08-17T23:18:13.000Z"),
            Ok(datetime!(2023-08-17 23:18:13 UTC))
        );
        assert_eq!(
            parse_timestamp("2023-08-18T01:18:13+02:00").map(format_timestamp),
            Ok("2023-08-17T23:18:13.000Z".to_owned())
        );
        assert_eq!(
            parse_timestamp("2023-08-17"),
            Ok(datetime!(2023-08-17 0:00 UTC))
        );
        assert!(parse_timestamp("2023-02-30").is_err());
        assert!(parse_timestamp("yesterday").is_err());
    }

    #[test]
    fn dates_are_strict() {
        assert_eq!(parse_date("2024-02-29"), Some(date!(2024 - 02 - 29)));
        assert_eq!(format_date(date!(2024 - 02 - 09)), "2024-02-09");
        for bad in [
            "2023-02-29",
            "2023-2-09",
            "20230209",
            "2023-02-09T00:00:00Z",
            " 2023-02-09",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn out_of_range_micros_saturate() {
        assert_eq!(
            from_unix_micros(i64::MAX),
            PrimitiveDateTime::MAX.assume_utc()
        );
        assert_eq!(
            from_unix_micros(i64::MIN),
            PrimitiveDateTime::MIN.assume_utc()
        );
    }

    #[test]
    fn exact_times_are_utc_to_the_second() {
        assert_eq!(
            format_exact(datetime!(2023-08-18 01:18:13.999 +02:00)),
            "2023-08-17 23:18:13 UTC"
        );
    }

    #[test]
    fn relative_times_name_the_largest_whole_unit() {
        let now = datetime!(2026-12-07 12:00 UTC);
        let cases = [
            (Duration::ZERO, "just now"),
            (Duration::seconds(59), "just now"),
            (Duration::seconds(-59), "just now"),
            (Duration::seconds(60), "1 minute ago"),
            (Duration::minutes(59), "59 minutes ago"),
            (Duration::hours(1), "1 hour ago"),
            (Duration::hours(3) + Duration::minutes(59), "3 hours ago"),
            (Duration::days(1), "1 day ago"),
            (Duration::days(29), "29 days ago"),
            (Duration::days(30), "1 month ago"),
            (Duration::days(364), "12 months ago"),
            (Duration::days(365), "1 year ago"),
            (Duration::days(800), "2 years ago"),
            (Duration::minutes(-5), "in 5 minutes"),
            (Duration::days(-14), "in 14 days"),
        ];
        for (ago, expected) in cases {
            assert_eq!(relative_time(now - ago, now), expected, "{ago}");
        }
    }

    proptest! {
        #[test]
        fn relative_times_read_the_same_way_around(
            seconds in -20_000_000_000i64..20_000_000_000,
        ) {
            let now = datetime!(2026-12-07 12:00 UTC);
            let past = relative_time(now - Duration::seconds(seconds.abs()), now);
            let future = relative_time(now + Duration::seconds(seconds.abs()), now);
            if seconds.abs() < 60 {
                prop_assert_eq!(&past, "just now");
                prop_assert_eq!(&future, "just now");
            } else {
                let amount = past.strip_suffix(" ago").expect("the past ends in `ago`");
                prop_assert_eq!(future, format!("in {amount}"));
                let (count, unit) = amount.split_once(' ').expect("a count and a unit");
                let count: u64 = count.parse().expect("a whole count");
                prop_assert!(count >= 1);
                prop_assert_eq!(unit.ends_with('s'), count != 1, "{}", amount);
            }
        }

        #[test]
        fn micros_round_trip(micros in -62_000_000_000_000_000i64..250_000_000_000_000_000) {
            prop_assert_eq!(to_unix_micros(from_unix_micros(micros)), micros);
        }
    }
}
