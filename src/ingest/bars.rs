//! One-minute (or any fixed-interval) OHLC bar CSVs.
//!
//! Consumes `timestamp,open,high,low,close[,volume]` with timestamps written
//! `YYYY-MM-DD HH:MM:SS[.ffffff][±HH:MM|Z]` (a `T` may replace the space); a naive timestamp is
//! taken as UTC. Produces bars stamped with their start. The interval is the most common gap
//! between the first 32 rows (the smallest on a tie), 60 s when there are fewer than two rows;
//! the rows it looks at are kept and replayed, so nothing is read twice from the file.
//!
//! The symbol comes from the file name, by [`symbol_from_file_name`].
//!
//! Refused rows: wrong column count, an unparsable timestamp or number, a non-positive price, a
//! negative volume, and prices that contradict each other (high below open, close or low; low
//! above open or close).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{NaiveDate, NaiveTime};
use csv::{ByteRecord, Trim};

use super::fields::{bounded, parse_non_negative, parse_positive};
use super::records::exact;
use super::{open_with_header, shown, Error, Format, RowParser, Rows, SourceEvent};
use crate::events::Bar;

const DEFAULT_INTERVAL_S: i64 = 60;
const INTERVAL_SAMPLE_ROWS: usize = 32;
const VENDORS: [&str; 8] = [
    "fxcm",
    "dukascopy",
    "histdata",
    "oanda",
    "binance",
    "bitmex",
    "ftx",
    "kraken",
];

/// Returns whether the header names bar columns; `Some(true)` when it has a volume column.
pub(super) fn header_volume(columns: &[String]) -> Option<bool> {
    let base = ["timestamp", "open", "high", "low", "close"];
    let base_matches = columns.len() >= 5 && columns[..5].iter().zip(base).all(|(a, b)| a == b);
    match columns.len() {
        5 if base_matches => Some(false),
        6 if base_matches && columns[5] == "volume" => Some(true),
        _ => None,
    }
}

/// Returns the symbol a bar file's name stands for.
///
/// The rule: take the file stem, split it on `-`, `_` and `.`, drop a leading vendor word (fxcm,
/// dukascopy, histdata, oanda, binance, bitmex, ftx, kraken), keep the words up to the first one
/// that holds a digit or is `bid`/`ask`/`mid`, and join them upper-cased with `-`:
/// `btc-perp-20211231-20220201_1m.csv` gives `BTC-PERP`, `fxcm-gbpusd-m1-bid-2012.csv` gives
/// `GBPUSD`. When no word is left, it is the whole stem.
pub fn symbol_from_file_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut words = stem
        .split(['-', '_', '.'])
        .filter(|w| !w.is_empty())
        .peekable();
    if words
        .peek()
        .is_some_and(|w| VENDORS.contains(&w.to_ascii_lowercase().as_str()))
    {
        words.next();
    }

    let kept: Vec<String> = words
        .take_while(|w| {
            let lower = w.to_ascii_lowercase();
            !w.bytes().any(|b| b.is_ascii_digit()) && !["bid", "ask", "mid"].contains(&&*lower)
        })
        .map(|w| w.to_ascii_uppercase())
        .collect();
    if kept.is_empty() {
        stem
    } else {
        kept.join("-")
    }
}

/// Opens a bar CSV.
pub(super) fn open(path: &Path) -> Result<Rows<BarParser>, Error> {
    let (mut records, columns, seen) = open_with_header(path, Format::Bars, b',', Trim::None)?;
    let has_volume = header_volume(&columns).ok_or_else(|| Error::Header {
        path: path.to_owned(),
        format: Format::Bars,
        seen,
        expected: "`timestamp,open,high,low,close[,volume]`".to_owned(),
    })?;

    let first_times = records
        .peek_records(INTERVAL_SAMPLE_ROWS)
        .iter()
        .filter_map(|(_, record)| record.get(0))
        .filter_map(|field| parse_timestamp_us(field.trim_ascii()).ok())
        .collect::<Vec<_>>();
    let parser = BarParser {
        symbol: symbol_from_file_name(path),
        interval_s: modal_gap_s(&first_times).unwrap_or(DEFAULT_INTERVAL_S),
        has_volume,
    };
    Ok(Rows::new(records, parser))
}

/// Returns the most common positive gap between consecutive times, in whole seconds.
fn modal_gap_s(times_us: &[i64]) -> Option<i64> {
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for pair in times_us.windows(2) {
        let gap_s = (pair[1] - pair[0]) / 1_000_000;
        if gap_s > 0 {
            *counts.entry(gap_s).or_default() += 1;
        }
    }
    // max_by_key keeps the last maximum; iterating in reverse makes that the smallest gap.
    counts
        .into_iter()
        .rev()
        .max_by_key(|&(_, n)| n)
        .map(|(gap, _)| gap)
}

/// Parses bar rows.
pub(super) struct BarParser {
    symbol: String,
    interval_s: i64,
    has_volume: bool,
}

impl RowParser for BarParser {
    fn parse(&mut self, record: &ByteRecord, _row: u64) -> Result<SourceEvent, String> {
        let (prices, volume) = if self.has_volume {
            let [t, o, h, l, c, v] = exact(record)?;
            (
                [t, o, h, l, c],
                Some(bounded(parse_non_negative(v, "volume")?, "volume")?),
            )
        } else {
            (exact::<5>(record)?, None)
        };
        let [ts, open, high, low, close] = prices;
        let bar = Bar {
            symbol: self.symbol.clone(),
            ts_us: parse_timestamp_us(ts)?,
            interval_s: self.interval_s,
            open: bounded(parse_positive(open, "open")?, "open")?,
            high: bounded(parse_positive(high, "high")?, "high")?,
            low: bounded(parse_positive(low, "low")?, "low")?,
            close: bounded(parse_positive(close, "close")?, "close")?,
            volume,
        };

        if bar.high < bar.open.max(bar.close).max(bar.low) || bar.low > bar.open.min(bar.close) {
            return Err(format!(
                "inconsistent prices: open {} high {} low {} close {}",
                bar.open, bar.high, bar.low, bar.close
            ));
        }
        Ok(SourceEvent::Bar(bar))
    }
}

/// Parses `YYYY-MM-DD[ T]HH:MM:SS[.fraction][Z|±HH:MM|±HHMM]` (or a bare date) to UTC µs.
///
/// # Errors
/// Returns a reason quoting the text when it does not have that shape or is not a real time.
pub(super) fn parse_timestamp_us(text: &[u8]) -> Result<i64, String> {
    let bad = || format!("unparsable timestamp `{}`", shown(text));
    let date = parse_date(text.get(..10).ok_or_else(bad)?).ok_or_else(bad)?;
    if text.len() == 10 {
        return Ok(date.and_time(NaiveTime::MIN).and_utc().timestamp_micros());
    }
    if text.len() < 19 || !matches!(text[10], b' ' | b'T') || text[13] != b':' || text[16] != b':' {
        return Err(bad());
    }
    let (hour, minute, second) = (
        digits(&text[11..13]),
        digits(&text[14..16]),
        digits(&text[17..19]),
    );
    let time = NaiveTime::from_hms_opt(
        hour.ok_or_else(bad)?,
        minute.ok_or_else(bad)?,
        second.ok_or_else(bad)?,
    )
    .ok_or_else(bad)?;

    let mut rest = &text[19..];
    let mut micros = 0;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let length = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        let (numerals, after) = fraction.split_at(length);
        micros = fraction_to_micros(numerals).ok_or_else(bad)?;
        rest = after;
    }
    let offset_s = parse_offset_s(rest).ok_or_else(bad)?;
    let naive_us = date.and_time(time).and_utc().timestamp_micros();
    Ok(naive_us + micros - offset_s * 1_000_000)
}

/// Parses `YYYY-MM-DD`.
pub(super) fn parse_date(text: &[u8]) -> Option<NaiveDate> {
    if text.len() != 10 || text[4] != b'-' || text[7] != b'-' {
        return None;
    }
    let year = i32::try_from(digits(&text[..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, digits(&text[5..7])?, digits(&text[8..10])?)
}

fn digits(text: &[u8]) -> Option<u32> {
    text.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// Returns the first six digits of a fraction of a second as µs (missing digits count as 0).
fn fraction_to_micros(numerals: &[u8]) -> Option<i64> {
    if numerals.is_empty() {
        return None;
    }
    let mut padded = [b'0'; 6];
    let used = numerals.len().min(6);
    padded[..used].copy_from_slice(&numerals[..used]);
    digits(&padded).map(i64::from)
}

/// Parses an empty suffix or `Z` (0), or `±HH:MM` / `±HHMM`, as seconds east of UTC.
fn parse_offset_s(text: &[u8]) -> Option<i64> {
    let (sign, rest) = match text {
        [] | [b'Z'] => return Some(0),
        [b'+', rest @ ..] => (1, rest),
        [b'-', rest @ ..] => (-1, rest),
        _ => return None,
    };
    let (hours, minutes) = match rest {
        [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?),
        _ => return None,
    };
    Some(sign * i64::from(hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::super::{open, Format, SourceEvent};
    use super::*;
    use crate::data::shared_data_file;
    use std::io::Write;

    fn read_bars(path: &Path) -> (Vec<Bar>, usize) {
        let mut bars = Vec::new();
        let mut errors = 0;
        for item in open(path, Some(Format::Bars)).expect("opens the file") {
            match item {
                Ok(SourceEvent::Bar(bar)) => bars.push(bar),
                Ok(other) => panic!("not a bar: {other:?}"),
                Err(_) => errors += 1,
            }
        }
        (bars, errors)
    }

    #[test]
    fn btc_perp_file_reads_45031_one_minute_bars_with_volume() {
        let (bars, errors) = read_bars(&shared_data_file(
            "market/btc-perp-20211231-20220201_1m.csv",
        ));
        assert_eq!((bars.len(), errors), (45_031, 0));
        let (first, last) = (&bars[0], &bars[45_030]);
        assert_eq!((first.symbol.as_str(), first.interval_s), ("BTC-PERP", 60));
        // 2021-12-31 23:01:00 UTC is 1640991660 s; 2022-02-01 05:31:00 UTC is 1643693460 s.
        assert_eq!(first.ts_us, 1_640_991_660_000_000);
        assert_eq!(
            (first.open, first.high, first.low, first.close),
            (46319.0, 46385.0, 46319.0, 46377.0)
        );
        assert_eq!(first.volume, Some(2_300_413.729_5));
        assert_eq!((last.ts_us, last.close), (1_643_693_460_000_000, 38544.0));
    }

    #[test]
    fn gbpusd_file_reads_30117_bars_without_volume_in_february_2012() {
        let (bars, errors) = read_bars(&shared_data_file("market/fxcm-gbpusd-m1-bid-2012.csv"));
        assert_eq!((bars.len(), errors), (30_117, 0));
        let (first, last) = (&bars[0], &bars[30_116]);
        assert_eq!(
            (first.symbol.as_str(), first.interval_s, first.volume),
            ("GBPUSD", 60, None)
        );
        // 2012-02-01 00:00:00+00:00 is 1328054400 s; 2012-03-01 00:00:00+00:00 is 1330560000 s.
        assert_eq!((first.ts_us, first.open), (1_328_054_400_000_000, 1.57597));
        assert_eq!((last.ts_us, last.close), (1_330_560_000_000_000, 1.59208));
    }

    #[test]
    fn timestamps_accept_fractions_offsets_and_bare_dates() {
        assert_eq!(
            parse_timestamp_us(b"2021-12-31 23:01:00.000000"),
            Ok(1_640_991_660_000_000)
        );
        assert_eq!(
            parse_timestamp_us(b"2021-12-31T23:01:00.25Z"),
            Ok(1_640_991_660_250_000)
        );
        // 01:00 at +01:00 is midnight UTC; 19:00 at -05:00 is midnight UTC of the next day.
        assert_eq!(
            parse_timestamp_us(b"2012-02-01 01:00:00+01:00"),
            Ok(1_328_054_400_000_000)
        );
        assert_eq!(
            parse_timestamp_us(b"2012-01-31 19:00:00-0500"),
            Ok(1_328_054_400_000_000)
        );
        assert_eq!(parse_timestamp_us(b"2012-02-01"), Ok(1_328_054_400_000_000));
        assert!(parse_timestamp_us(b"2012-02-30 00:00:00").is_err());
        assert!(parse_timestamp_us(b"2012-02-01 00:00:00+1").is_err());
        assert!(parse_timestamp_us(b"yesterday").is_err());
    }

    #[test]
    fn symbol_follows_the_file_name_rule() {
        let symbol = |name: &str| symbol_from_file_name(Path::new(name));
        assert_eq!(symbol("/d/btc-perp-20211231-20220201_1m.csv"), "BTC-PERP");
        assert_eq!(symbol("fxcm-gbpusd-m1-bid-2012.csv"), "GBPUSD");
        assert_eq!(symbol("eurusd.csv"), "EURUSD");
        assert_eq!(symbol("2021-bars.csv"), "2021-bars");
    }

    #[test]
    fn interval_is_the_modal_gap_of_the_first_rows() {
        let minute = 60_000_000;
        assert_eq!(
            modal_gap_s(&[0, minute, 2 * minute, 5 * minute, 6 * minute]),
            Some(60)
        );
        assert_eq!(modal_gap_s(&[0, 300_000_000, 600_000_000]), Some(300));
        assert_eq!(modal_gap_s(&[0, minute, 3 * minute]), Some(60));
        assert_eq!(modal_gap_s(&[0]), None);
    }

    #[test]
    fn bad_bar_rows_are_refused_and_five_minute_bars_get_a_300_s_interval() {
        let dir = tempfile::tempdir().expect("creates a temp file");
        let path = dir.path().join("eurusd-5m.csv");
        let mut file = std::fs::File::create(&path).expect("creates a temp file");
        write!(
            file,
            "timestamp,open,high,low,close\n\
             2020-01-01 00:00:00,1.1,1.2,1.0,1.15\n\
             2020-01-01 00:05:00,1.1,1.0,1.0,1.15\n\
             2020-01-01 00:10:00,1.1,1.2,1.0\n\
             2020-01-01 00:15:00,1.1,1.2,-1.0,1.15\n\
             2020-01-01 00:20:00,1.1,1.2,1.0,1.12\n"
        )
        .expect("writes the temp file");

        let items: Vec<_> = open(&path, None).expect("opens the file").collect();
        let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), [3, 4, 5]);
        assert!(
            errors[0].reason.starts_with("inconsistent prices"),
            "{}",
            errors[0].reason
        );
        assert_eq!(errors[1].reason, "expected 5 columns, found 4");
        assert_eq!(errors[2].reason, "non-positive low -1");
        let Some(Ok(SourceEvent::Bar(last))) = items.last() else {
            panic!("last row should read");
        };
        assert_eq!(
            (last.symbol.as_str(), last.interval_s, last.close),
            ("EURUSD", 300, 1.12)
        );
    }
}
