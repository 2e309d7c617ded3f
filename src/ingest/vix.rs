//! CBOE VIX daily history: `DATE,OPEN,HIGH,LOW,CLOSE`.
//!
//! Consumes one row per trading day, the date written `YYYY-MM-DD` or `MM/DD/YYYY` (CBOE's own
//! files). Produces one `MarketContext { kind: VolatilityIndex, name: "VIX", value: close }` per
//! day, stamped 16:15 New York time on that date (EST or EDT as the date has it): the VIX settles
//! after the 16:00 equity close, so the close is not known before then and a replay must not let
//! the day's stages see it earlier.
//!
//! Only the close is used. The open, high and low are not checked against each other: the
//! history has days (47 of them, in 1992 among others) where they contradict, and they do not
//! matter here. Refused rows: wrong column count, an unparsable date, a non-positive close.

use std::path::Path;

use chrono::{NaiveDate, NaiveTime, TimeZone};
use chrono_tz::America::New_York;
use csv::{ByteRecord, Trim};

use super::bars::parse_date;
use super::fields::{bounded, parse_positive};
use super::records::exact;
use super::{open_with_header, shown, Error, Format, RowParser, Rows, SourceEvent};
use crate::events::{ContextKind, MarketContext};

/// The header of the VIX history, compared without regard to case.
pub(super) const HEADER: [&str; 5] = ["date", "open", "high", "low", "close"];

/// Returns whether the header is the VIX history's.
pub(super) fn is_header(columns: &[String]) -> bool {
    columns.len() == HEADER.len()
        && columns
            .iter()
            .zip(HEADER)
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
}

/// Opens a VIX daily history.
pub(super) fn open(path: &Path) -> Result<Rows<VixParser>, Error> {
    let (records, columns, seen) = open_with_header(path, Format::Vix, b',', Trim::None)?;
    if !is_header(&columns) {
        return Err(Error::Header {
            path: path.to_owned(),
            format: Format::Vix,
            seen,
            expected: "`DATE,OPEN,HIGH,LOW,CLOSE`".to_owned(),
        });
    }
    Ok(Rows::new(records, VixParser))
}

/// Parses VIX rows.
pub(super) struct VixParser;

impl RowParser for VixParser {
    fn parse(&mut self, record: &ByteRecord, _row: u64) -> Result<SourceEvent, String> {
        let [date, _open, _high, _low, close] = exact(record)?;
        let date = parse_date(date)
            .or_else(|| parse_us_date(date))
            .ok_or_else(|| format!("unparsable date `{}`", shown(date)))?;
        Ok(SourceEvent::Context(MarketContext {
            ts_us: settlement_us(date)?,
            kind: ContextKind::VolatilityIndex,
            name: "VIX".to_owned(),
            value: Some(bounded(parse_positive(close, "close")?, "close")?),
        }))
    }
}

/// Parses `MM/DD/YYYY`.
fn parse_us_date(text: &[u8]) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(std::str::from_utf8(text).ok()?, "%m/%d/%Y").ok()
}

/// Returns 16:15 New York time on `date`, in UTC µs.
fn settlement_us(date: NaiveDate) -> Result<i64, String> {
    let time = NaiveTime::from_hms_opt(16, 15, 0).ok_or("16:15 is a valid time")?;
    New_York
        .from_local_datetime(&date.and_time(time))
        .earliest()
        .map(|t| t.timestamp_micros())
        .ok_or_else(|| format!("16:15 does not exist in New York on {date}"))
}

#[cfg(test)]
mod tests {
    use super::super::{open, Format, SourceEvent};
    use super::*;
    use crate::data::shared_data_file;
    use std::io::Write;

    #[test]
    fn vix_history_reads_9235_closes_stamped_at_1615_new_york() {
        let path = shared_data_file("market/vix-daily.csv");
        let mut contexts = Vec::new();
        for item in open(&path, Some(Format::Vix)).expect("opens the file") {
            match item.expect("every row reads") {
                SourceEvent::Context(context) => contexts.push(context),
                other => panic!("not a context: {other:?}"),
            }
        }
        assert_eq!(contexts.len(), 9_235);

        // 1990-01-02 16:15 EST = 21:15 UTC = 631314900 s; 2026-07-23 16:15 EDT = 1784837700 s.
        let (first, last) = (&contexts[0], &contexts[9_234]);
        assert_eq!(
            (first.ts_us, first.value),
            (631_314_900_000_000, Some(17.24))
        );
        assert_eq!(
            (first.kind, first.name.as_str()),
            (ContextKind::VolatilityIndex, "VIX")
        );
        assert_eq!(
            (last.ts_us, last.value),
            (1_784_837_700_000_000, Some(18.7))
        );
    }

    #[test]
    fn cboe_dates_parse_and_bad_rows_are_refused() {
        let mut file = tempfile::NamedTempFile::new().expect("creates a temp file");
        write!(
            file,
            "DATE,OPEN,HIGH,LOW,CLOSE\r\n\
             01/02/1990,17.24,17.24,17.24,17.24\r\n\
             1990-01-03,18.19,18.19,18.19,0\r\n\
             1990-13-04,19.22,19.22,19.22,19.22\r\n\
             1990-01-05,20.11,20.11,20.11,20.11\r\n"
        )
        .expect("writes the temp file");

        let items: Vec<_> = open(file.path(), None).expect("opens the file").collect();
        assert_eq!(
            items[0].as_ref().expect("the first row reads").ts_us(),
            631_314_900_000_000
        );
        let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(errors[0].reason, "non-positive close 0");
        assert_eq!(errors[1].reason, "unparsable date `1990-13-04`");
        // Three days after the first close, at the same 16:15 EST.
        assert_eq!(
            items[3].as_ref().expect("the fourth row reads").ts_us(),
            631_314_900_000_000 + 3 * 86_400_000_000
        );
    }
}
