//! The grammar of a schedule (`schedule = Cron("0 9 * * 1-5", timezone =
//! "Europe/Paris")`, `schedule = Period(2)`): a cron expression, a time
//! zone, a period.
//!
//! One file, compiled twice, like `container.rs`: into
//! `modal_runtime::options`, where `FunctionOptions::validate` checks what
//! a manifest carries at deploy, and into `modal-macros` (through
//! `#[path]`), which checks the same values at compile time and puts each
//! error on the token written. Hence no `crate::` paths in here: `std`,
//! `croner` (the cron grammar) and `chrono-tz` (the IANA time zones) only.

/// The shortest period, in seconds: a schedule is a job that runs now and
/// then, not a loop.
pub const PERIOD_MIN_SECS: f64 = 1.0;
/// The longest period, in seconds: 366 days.
pub const PERIOD_MAX_SECS: f64 = 366.0 * 86_400.0;
/// The longest cron expression accepted.
pub const CRON_MAX_LEN: usize = 256;

/// A cron expression of five fields (minute, hour, day of month, month,
/// day of week), as Modal and crontab read them; names (`MON`, `JAN`),
/// ranges, lists, steps and nicknames (`@hourly`, `@daily`) are fine.
pub fn parse_cron(expression: &str) -> Result<croner::Cron, String> {
    let refuse = |why: String| {
        Err(format!(
            "`{expression}` is not a cron expression: {why}; write five fields, minute hour \
             day-of-month month day-of-week, e.g. `\"0 9 * * 1-5\"` (09:00 on weekdays) or \
             `\"*/15 * * * *\"` (every 15 minutes)"
        ))
    };
    if expression.len() > CRON_MAX_LEN {
        return refuse(format!("it is longer than {CRON_MAX_LEN} characters"));
    }
    let fields = expression.split_whitespace().count();
    if !expression.trim_start().starts_with('@') && fields != 5 {
        return refuse(format!("it has {fields} fields"));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(expression)
        .or_else(|e| refuse(e.to_string().trim_end_matches('.').to_owned()))
}

/// An IANA time zone (`Europe/Paris`, `America/New_York`, `UTC`).
pub fn parse_timezone(name: &str) -> Result<chrono_tz::Tz, String> {
    if let Ok(tz) = name.parse::<chrono_tz::Tz>() {
        return Ok(tz);
    }
    let hint = chrono_tz::TZ_VARIANTS
        .iter()
        .find(|tz| tz.name().eq_ignore_ascii_case(name))
        .map(|tz| format!("; did you mean `{}`?", tz.name()))
        .unwrap_or_default();
    Err(format!(
        "`{name}` is not a known time zone: use an IANA name such as `Europe/Paris`, \
         `America/New_York` or `UTC`{hint}"
    ))
}

/// A period of `secs` seconds (fractions allowed), in whole milliseconds.
pub fn period_millis(secs: f64) -> Result<u64, String> {
    // NaN fails the first test, infinity the second.
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!(
            "a schedule's period is {secs} seconds, but must be greater than 0"
        ));
    }
    if !(PERIOD_MIN_SECS..=PERIOD_MAX_SECS).contains(&secs) {
        return Err(format!(
            "a schedule's period is {secs} seconds, but must be between {PERIOD_MIN_SECS} \
             second and {PERIOD_MAX_SECS} seconds (366 days); for anything more frequent, \
             loop inside one function"
        ));
    }
    Ok((secs * 1000.0).round() as u64)
}

/// Checks a period as a manifest carries it, in milliseconds.
pub fn check_period_millis(millis: u64) -> Result<(), String> {
    period_millis(millis as f64 / 1000.0).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_expressions() {
        for good in [
            "0 * * * *",
            "0 9 * * 1-5",
            "*/15 * * * *",
            "30 2 1 JAN,JUL *",
            "0 0 * * MON",
            "@daily",
            "@hourly",
        ] {
            assert!(
                parse_cron(good).is_ok(),
                "{good}: {:?}",
                parse_cron(good).err()
            );
        }
        for bad in [
            "",
            "* * * *",
            "0 0 * * * *",
            "61 * * * *",
            "0 25 * * *",
            "x * * * *",
            "@sometimes",
        ] {
            let err = parse_cron(bad).unwrap_err();
            assert!(err.contains("five fields"), "{bad}: {err}");
        }
    }

    #[test]
    fn time_zones() {
        assert!(parse_timezone("Europe/Paris").is_ok());
        assert!(parse_timezone("UTC").is_ok());
        let err = parse_timezone("europe/paris").unwrap_err();
        assert!(err.contains("did you mean `Europe/Paris`"), "{err}");
        assert!(parse_timezone("Mars/Olympus").is_err());
    }

    #[test]
    fn periods() {
        assert_eq!(period_millis(2.0), Ok(2000));
        assert_eq!(period_millis(1.5), Ok(1500));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 0.5, 1e9] {
            assert!(period_millis(bad).is_err(), "{bad}");
        }
        assert!(period_millis(0.0).unwrap_err().contains("greater than 0"));
        assert!(check_period_millis(2000).is_ok());
        assert!(check_period_millis(0).is_err());
    }
}
