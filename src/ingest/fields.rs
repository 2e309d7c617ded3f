//! Numbers and times from the bytes of one field.
//!
//! Consumes a field as `csv` hands it (already trimmed); produces an `f64` or `i64`, or a reason
//! that names the column and quotes the text, ready for a [`super::RowError`]. Keeps nothing.

/// Parses a decimal integer (optional sign) from ASCII bytes.
///
/// # Errors
/// Returns a reason naming the column and the text when the bytes are not an integer.
pub(crate) fn parse_i64(bytes: &[u8], column: &str) -> Result<i64, String> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.parse::<i64>().ok())
        .ok_or_else(|| bad_number(column, bytes))
}

/// Parses a finite floating-point number from ASCII bytes.
///
/// # Errors
/// Returns a reason naming the column and the text when the bytes are not a finite number.
pub(crate) fn parse_f64(bytes: &[u8], column: &str) -> Result<f64, String> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.parse::<f64>().ok())
        .filter(|value| value.is_finite())
        .ok_or_else(|| bad_number(column, bytes))
}

/// Parses a number that must be strictly positive, such as a price.
///
/// # Errors
/// Returns a reason when the bytes are not a number or the number is zero or negative.
pub(crate) fn parse_positive(bytes: &[u8], column: &str) -> Result<f64, String> {
    let value = parse_f64(bytes, column)?;
    if value > 0.0 {
        Ok(value)
    } else {
        Err(format!("non-positive {column} {value}"))
    }
}

/// Parses a number that must not be negative, such as a size or a count.
///
/// # Errors
/// Returns a reason when the bytes are not a number or the number is negative.
pub(crate) fn parse_non_negative(bytes: &[u8], column: &str) -> Result<f64, String> {
    let value = parse_f64(bytes, column)?;
    if value >= 0.0 {
        Ok(value)
    } else {
        Err(format!("negative {column} {value}"))
    }
}

/// Converts an epoch or relative time in seconds, ms or µs to µs, judging the unit by magnitude.
///
/// Values below 1e11 are seconds (1e11 s is the year 5138), below 1e14 milliseconds, and
/// microseconds otherwise; headers that name a unit are not trusted (Bitbrains says `[ms]` but
/// writes seconds).
pub(crate) fn time_to_us(value: f64) -> i64 {
    let magnitude = value.abs();
    let us = if magnitude < 1e11 {
        value * 1e6
    } else if magnitude < 1e14 {
        value * 1e3
    } else {
        value
    };
    us.round() as i64
}

/// The largest price or size a market row may carry: 1e12.
///
/// No traded price or size comes near it (a share of BRK.A is under 1e6 USD, a day's SPY volume
/// under 1e9 shares, and a bitcoin amount under 1e8), while a value like 1e300 would make a
/// notional (price × size) infinite downstream.
pub(crate) const MAX_MARKET_VALUE: f64 = 1e12;

/// Checks that a market price or size is at most [`MAX_MARKET_VALUE`].
///
/// # Errors
/// Returns `<column> <value> is above 1e12`.
pub(crate) fn bounded(value: f64, column: &str) -> Result<f64, String> {
    if value <= MAX_MARKET_VALUE {
        Ok(value)
    } else {
        Err(format!("{column} {value:e} is above 1e12"))
    }
}

/// Returns a symbol or venue field as text, refusing what cannot be a name.
///
/// # Errors
/// Returns a reason for bytes that are not UTF-8, or hold a control character (NUL included) or
/// a quote (`"`); nothing is stripped.
pub(crate) fn name_text<'a>(bytes: &'a [u8], column: &str) -> Result<&'a str, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{column} is not UTF-8"))?;
    if text.chars().any(|c| c.is_control() || c == '"') {
        return Err(format!(
            "{column} `{}` holds a control character or a quote",
            bytes.escape_ascii()
        ));
    }
    Ok(text)
}

/// A µs-since-epoch time written for a person: RFC 3339 in UTC, or the raw µs when out of range.
fn shown_time(ts_us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(ts_us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| format!("{ts_us} µs"))
}

/// Returns the latest plausible event time: the wall clock now plus one day, in µs.
///
/// Reading the wall clock here is deliberate, and the only place the readers do: no recording
/// can hold events from after it was made, and a row dated in 2200 (or `i64::MAX` µs) would
/// make the pipeline open windows up to that time. The day of slack covers clock skew and
/// time zones. Replays stay deterministic for any file that passes, since the bound only refuses
/// rows that could not be real.
pub(crate) fn latest_plausible_us() -> i64 {
    const DAY_US: i64 = 86_400_000_000;
    chrono::Utc::now().timestamp_micros().saturating_add(DAY_US)
}

/// Which bounds an event time must keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeBounds {
    /// Market data: from 1970-01-01 to [`latest_plausible_us`].
    Market,
    /// An absolute trace clock: at most [`latest_plausible_us`].
    UpperOnly,
    /// A relative clock (row-indexed from 0): not checked.
    None,
}

/// Checks `ts_us` against `bounds`, `latest_us` being [`latest_plausible_us`] at opening.
///
/// # Errors
/// Returns `timestamp … is not plausible (after …)` or `(before 1970-01-01)`.
pub(crate) fn check_time(ts_us: i64, bounds: TimeBounds, latest_us: i64) -> Result<(), String> {
    if bounds == TimeBounds::None {
        return Ok(());
    }
    if ts_us > latest_us {
        return Err(format!(
            "timestamp {} is not plausible (after {}, a day past the clock)",
            shown_time(ts_us),
            shown_time(latest_us)
        ));
    }
    if bounds == TimeBounds::Market && ts_us < 0 {
        return Err(format!(
            "timestamp {} is not plausible (before 1970-01-01)",
            shown_time(ts_us)
        ));
    }
    Ok(())
}

fn bad_number(column: &str, bytes: &[u8]) -> String {
    format!(
        "unparsable {column} `{}`",
        String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_above_1e12_and_names_with_control_characters_are_refused() {
        assert_eq!(bounded(1e12, "price"), Ok(1e12));
        assert_eq!(
            bounded(1e300, "price"),
            Err("price 1e300 is above 1e12".to_owned())
        );
        assert_eq!(name_text(b"BTC-PERP", "symbol"), Ok("BTC-PERP"));
        assert_eq!(
            name_text(b"BT\x00C", "symbol"),
            Err("symbol `BT\\x00C` holds a control character or a quote".to_owned())
        );
        assert!(name_text(b"BTC\"", "symbol").is_err());
        assert!(name_text(b"BTC\x7f", "venue").is_err());
        assert!(name_text(b"\xff", "venue").is_err());
    }

    #[test]
    fn implausible_times_are_refused_by_their_bounds() {
        // 2020-01-01T00:00:00Z is 1577836800 s; take it as "now + 1 day".
        let latest = 1_577_836_800_000_000;
        assert_eq!(check_time(latest, TimeBounds::Market, latest), Ok(()));
        assert_eq!(
            check_time(latest + 1_000_000, TimeBounds::Market, latest),
            Err("timestamp 2020-01-01T00:00:01Z is not plausible (after \
                 2020-01-01T00:00:00Z, a day past the clock)"
                .to_owned())
        );
        let huge = check_time(i64::MAX, TimeBounds::UpperOnly, latest).expect_err("refused");
        assert!(
            huge.starts_with("timestamp 9223372036854775807 µs is not plausible"),
            "{huge}"
        );
        assert_eq!(
            check_time(-1, TimeBounds::Market, latest),
            Err(
                "timestamp 1969-12-31T23:59:59.999999Z is not plausible (before 1970-01-01)"
                    .to_owned()
            )
        );
        assert_eq!(check_time(-1, TimeBounds::UpperOnly, latest), Ok(()));
        assert_eq!(check_time(i64::MAX, TimeBounds::None, latest), Ok(()));
        assert!(latest_plausible_us() > 1_700_000_000_000_000);
    }

    #[test]
    fn integers_parse_with_sign_and_reject_junk() {
        assert_eq!(
            parse_i64(b"1582329602111000", "ts"),
            Ok(1_582_329_602_111_000)
        );
        assert_eq!(parse_i64(b"-42", "ts"), Ok(-42));
        assert_eq!(
            parse_i64(b"4x2", "ts").expect_err("should fail"),
            "unparsable ts `4x2`"
        );
        assert!(parse_i64(b"", "ts").is_err());
        assert!(parse_i64(b"-", "ts").is_err());
        // One past i64::MAX overflows and is refused rather than wrapped.
        assert!(parse_i64(b"9223372036854775808", "ts").is_err());
    }

    #[test]
    fn positive_numbers_reject_zero_and_nan() {
        assert_eq!(parse_positive(b"9682.5", "price"), Ok(9682.5));
        assert_eq!(
            parse_positive(b"0", "price").expect_err("should fail"),
            "non-positive price 0"
        );
        assert!(parse_positive(b"NaN", "price").is_err());
        assert_eq!(
            parse_non_negative(b"-1", "size").expect_err("should fail"),
            "negative size -1"
        );
    }

    #[test]
    fn time_unit_is_judged_by_magnitude() {
        assert_eq!(time_to_us(1_372_629_804.0), 1_372_629_804_000_000);
        assert_eq!(time_to_us(300.0), 300_000_000);
        assert_eq!(time_to_us(1_372_629_804_123.0), 1_372_629_804_123_000);
        assert_eq!(time_to_us(1_582_329_602_111_000.0), 1_582_329_602_111_000);
    }
}
