//! A moment as a traveller reads it, on pages and in emails alike: in the lot's time zone,
//! with the day and the zone, in their language.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;

use crate::money::Writing;

/// `Mon 23 Nov 2026, 19:45 CET` in English, `lun. 23 nov. 2026 à 19:45 CET` in French.
pub fn written(at: DateTime<Utc>, tz: Tz, writing: Writing) -> String {
    let local = at.with_timezone(&tz);
    let (date, zone) = (day(local.date_naive(), writing), local.format("%Z"));
    let (hour, minute) = (local.hour(), local.minute());
    match writing {
        Writing::English => format!("{date}, {hour:02}:{minute:02} {zone}"),
        Writing::French => format!("{date} à {hour:02}:{minute:02} {zone}"),
    }
}

/// A day with its weekday, which no reader can take for another: `Thu 24 Dec 2026` in
/// English, `jeu. 24 déc. 2026` in French (the first of a month is `1er`).
pub fn day(date: NaiveDate, writing: Writing) -> String {
    let (weekday, month) = (
        date.weekday().num_days_from_monday() as usize,
        date.month0() as usize,
    );
    let (n, year) = (date.day(), date.year());
    match writing {
        Writing::English => format!("{} {n} {} {year}", EN_DAYS[weekday], EN_MONTHS[month]),
        Writing::French if n == 1 => {
            format!("{} 1er {} {year}", FR_DAYS[weekday], FR_MONTHS[month])
        }
        Writing::French => format!("{} {n} {} {year}", FR_DAYS[weekday], FR_MONTHS[month]),
    }
}

/// Whether two moments fall in the same minute, as emails and pages write them.
pub fn same_minute(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    a.timestamp().div_euclid(60) == b.timestamp().div_euclid(60)
}

/// A lot's time zone by its IANA name; UTC for a name that does not parse (lots are checked
/// when created, so only a zone since dropped from the time zone database falls back).
pub fn zone(name: &str) -> Tz {
    crate::domain::lot::parse_time_zone(name).unwrap_or(chrono_tz::UTC)
}

const EN_DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const FR_DAYS: [&str; 7] = ["lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."];
const EN_MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const FR_MONTHS: [&str; 12] = [
    "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.",
    "déc.",
];

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_moment_is_written_in_the_lots_time_zone_with_its_day() {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 18, 45, 0).unwrap();
        let paris = zone("Europe/Paris");
        assert_eq!(
            written(at, paris, Writing::English),
            "Mon 23 Nov 2026, 19:45 CET"
        );
        assert_eq!(
            written(at, paris, Writing::French),
            "lun. 23 nov. 2026 à 19:45 CET"
        );
        // Past midnight there, the day changes with the hour.
        let tokyo = zone("Asia/Tokyo");
        assert_eq!(
            written(at, tokyo, Writing::English),
            "Tue 24 Nov 2026, 03:45 JST"
        );
        assert_eq!(zone("Mars/Olympus"), chrono_tz::UTC);
    }

    #[test]
    fn a_day_is_written_with_its_weekday() {
        let christmas_eve = NaiveDate::from_ymd_opt(2026, 12, 24).unwrap();
        assert_eq!(day(christmas_eve, Writing::English), "Thu 24 Dec 2026");
        assert_eq!(day(christmas_eve, Writing::French), "jeu. 24 déc. 2026");
        let first = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(day(first, Writing::English), "Sun 1 Mar 2026");
        assert_eq!(day(first, Writing::French), "dim. 1er mars 2026");
    }
}
