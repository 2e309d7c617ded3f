//! Lean (AlgoSeek) trade ticks: a zip holding one headerless CSV, or that CSV bare.
//!
//! Consumes rows `ms_since_midnight,price_1e4,size,exchange,condition,suspicious`. The date and
//! the symbol come from the CSV's name inside the zip (`20131007_spy_Trade_Tick.csv`), else from
//! the file's own name: the date is the first run of 8 digits, the symbol the first alphabetic
//! word other than trade/tick/quote, upper-cased (`SPY`). Produces trades with side `Unknown`,
//! venue = the exchange code (`P`, `K`, …) and price = column × 1e-4 USD.
//!
//! Times are wall-clock milliseconds since midnight in New York, converted to UTC with the
//! America/New_York rules of that date (EDT or EST, chosen per day; a day that changes clocks is
//! converted row by row).
//!
//! `suspicious` = 1 marks a print AlgoSeek flagged as likely erroneous (out-of-sequence or off
//! the market). Such rows are refused with the reason `trade flagged suspicious by the vendor`,
//! so they reach the dead-letter topic instead of the price features; they are rare (none in
//! the SPY day of 2013-10-07).
//!
//! The zip member is streamed: its deflate data is read straight from the file at the offset the
//! zip directory gives, so nothing is unpacked to memory or disk, and checked against the CRC-32
//! and size the central directory records; a mismatch or damaged deflate data is a fatal read
//! error. A zip must hold exactly one file, a `.csv`.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use chrono::{NaiveDate, NaiveTime, TimeZone};
use chrono_tz::America::New_York;
use csv::{ByteRecord, Trim};
use flate2::read::DeflateDecoder;
use zip::CompressionMethod;

use super::checked::Checked;
use super::fields::{bounded, name_text, parse_i64};
use super::records::{exact, RecordSource};
use super::{open_file, Error, RowParser, Rows, SourceEvent};
use crate::events::{Side, TradeTick};

const MS_PER_DAY: i64 = 86_400_000;

/// Opens a Lean trade-tick zip, or a bare Lean CSV.
pub(super) fn open(path: &Path) -> Result<Rows<TradeParser>, Error> {
    let (reader, member) = if is_zip(path)? {
        let (reader, name) = open_zip_member(path)?;
        (reader, Some(name))
    } else {
        let reader: Box<dyn Read + Send> = Box::new(open_file(path)?);
        (reader, None)
    };

    let file_name = super::source_name(path);
    let names: Vec<&str> = member
        .iter()
        .map(String::as_str)
        .chain([file_name.as_str()])
        .collect();
    let (date, symbol) = date_and_symbol(&names).ok_or_else(|| Error::Archive {
        path: path.to_owned(),
        found: format!("no date and symbol in the name(s) {}", names.join(", ")),
        expected: "a name such as `20131007_spy_Trade_Tick.csv`".to_owned(),
    })?;
    Ok(Rows::new(
        RecordSource::new(reader, b',', Trim::None),
        TradeParser::new(date, symbol),
    ))
}

/// Returns whether the file starts with the zip local-header magic.
pub(super) fn is_zip(path: &Path) -> Result<bool, Error> {
    let mut magic = [0u8; 4];
    let mut file = open_file(path)?;
    let read = file.read(&mut magic).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(read == 4 && &magic == b"PK\x03\x04")
}

/// Where a zip member's data sits in the file, and what the zip directory says it holds.
struct ZipMember {
    name: String,
    method: CompressionMethod,
    start: u64,
    size: u64,
    uncompressed: u64,
    crc32: u32,
}

/// The most member names an error lists.
const NAMES_SHOWN: usize = 5;

/// Finds the one `.csv` member of the zip at `path`.
///
/// # Errors
/// Returns [`Error::Archive`] when the zip holds more than one file (naming them) or its one
/// file is not a `.csv`, and [`Error::Zip`] when its directory cannot be read.
fn find_csv_member(path: &Path) -> Result<ZipMember, Error> {
    let zip_error = |source| Error::Zip {
        path: path.to_owned(),
        source,
    };
    let mut archive = zip::ZipArchive::new(open_file(path)?).map_err(zip_error)?;
    let files: Vec<(usize, &str)> = (0..archive.len())
        .filter_map(|i| archive.name_for_index(i).map(|name| (i, name)))
        .filter(|(_, name)| !name.ends_with('/'))
        .collect();
    if files.len() > 1 {
        let mut names: Vec<&str> = files.iter().take(NAMES_SHOWN).map(|(_, n)| *n).collect();
        if files.len() > NAMES_SHOWN {
            names.push("…");
        }
        return Err(Error::Archive {
            path: path.to_owned(),
            found: format!("{} members ({})", files.len(), names.join(", ")),
            expected: "one CSV".to_owned(),
        });
    }
    let index = files
        .iter()
        .find(|(_, name)| name.to_ascii_lowercase().ends_with(".csv"))
        .map(|(i, _)| *i)
        .ok_or_else(|| Error::Archive {
            path: path.to_owned(),
            found: format!("no .csv member ({} members)", archive.len()),
            expected: "one headerless trade-tick CSV".to_owned(),
        })?;

    let member = archive.by_index_raw(index).map_err(zip_error)?;
    Ok(ZipMember {
        name: member.name().to_owned(),
        method: member.compression(),
        start: member.data_start(),
        size: member.compressed_size(),
        uncompressed: member.size(),
        crc32: member.crc32(),
    })
}

/// Opens the one `.csv` member of a zip as a stream, returning it with the member's name.
///
/// The stream is checked against the CRC-32 and uncompressed size of the zip's central
/// directory as it is read (see [`Checked`]): damaged data, a mismatch or a short member is a
/// read error when it is met, at the latest as the stream ends. The stream is not buffered:
/// `csv` reads it through its own buffer.
pub(super) fn open_zip_member(path: &Path) -> Result<(Box<dyn Read + Send>, String), Error> {
    let member = find_csv_member(path)?;
    let mut file = open_file(path)?;
    file.seek(SeekFrom::Start(member.start))
        .map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;

    let data = file.take(member.size);
    let decoded: Box<dyn Read + Send> = match member.method {
        CompressionMethod::Stored => Box::new(data),
        CompressionMethod::Deflated => Box::new(DeflateDecoder::new(data)),
        other => {
            return Err(Error::Archive {
                path: path.to_owned(),
                found: format!("member {} compressed with {other}", member.name),
                expected: "a stored or deflated member".to_owned(),
            })
        }
    };
    let what = format!("zip member {}", member.name);
    let checked = Checked::new(decoded, what, member.uncompressed, Some(member.crc32));
    Ok((Box::new(checked), member.name))
}

/// Returns whether a first record looks like a Lean trade row: six fields, the first three
/// integers.
pub(super) fn looks_like_row(record: &ByteRecord) -> bool {
    exact::<6>(record).is_ok_and(|fields| {
        fields[..3]
            .iter()
            .all(|f| !f.is_empty() && f.iter().all(u8::is_ascii_digit))
    })
}

/// Finds the trading date and the symbol in the first name that has both.
fn date_and_symbol(names: &[&str]) -> Option<(NaiveDate, String)> {
    names.iter().find_map(|name| {
        let stem = name.rsplit(['/', '\\']).next().unwrap_or(name);
        let stem = stem.split('.').next().unwrap_or(stem);
        let words: Vec<&str> = stem.split(['_', '-', ' ']).collect();
        let date = words
            .iter()
            .filter(|w| w.len() == 8 && w.bytes().all(|b| b.is_ascii_digit()))
            .find_map(|w| NaiveDate::parse_from_str(w, "%Y%m%d").ok())?;
        let symbol = words.iter().find(|w| {
            !w.is_empty()
                && w.bytes().all(|b| b.is_ascii_alphabetic())
                && !["trade", "tick", "quote"].contains(&w.to_ascii_lowercase().as_str())
        })?;
        Some((date, symbol.to_ascii_uppercase()))
    })
}

/// Parses Lean trade rows of one day.
pub(super) struct TradeParser {
    symbol: String,
    date: NaiveDate,
    /// UTC µs of local midnight, when the whole day has one UTC offset.
    uniform_midnight_us: Option<i64>,
    venue_byte: Vec<u8>,
    venue: String,
}

impl TradeParser {
    fn new(date: NaiveDate, symbol: String) -> Self {
        let midnight = utc_us(date, 0);
        let offset_at = |ms| {
            utc_us(date, ms)
                .zip(midnight)
                .map(|(t, m)| t - m - ms * 1000)
        };
        // A day keeps one offset when midnight and the last millisecond agree.
        let uniform = offset_at(0) == offset_at(MS_PER_DAY - 1);
        Self {
            symbol,
            date,
            uniform_midnight_us: midnight.filter(|_| uniform),
            venue_byte: Vec::new(),
            venue: String::new(),
        }
    }

    fn ts_us(&self, ms: i64) -> Result<i64, String> {
        if !(0..MS_PER_DAY).contains(&ms) {
            return Err(format!("time {ms} ms is outside the day"));
        }
        match self.uniform_midnight_us {
            Some(midnight) => Ok(midnight + ms * 1000),
            None => utc_us(self.date, ms).ok_or_else(|| format!("time {ms} ms does not exist")),
        }
    }
}

/// Converts a New York wall-clock time (ms since midnight of `date`) to UTC µs.
fn utc_us(date: NaiveDate, ms: i64) -> Option<i64> {
    let seconds = u32::try_from(ms / 1000).ok()?;
    let nanos = u32::try_from(ms % 1000).ok()? * 1_000_000;
    let time = NaiveTime::from_num_seconds_from_midnight_opt(seconds, nanos)?;
    let local = New_York
        .from_local_datetime(&date.and_time(time))
        .earliest()?;
    Some(local.timestamp_micros())
}

impl RowParser for TradeParser {
    fn parse(&mut self, record: &ByteRecord, _row: u64) -> Result<SourceEvent, String> {
        let [ms, price, size, exchange, _condition, suspicious] = exact(record)?;
        match suspicious {
            b"0" => {}
            b"1" => return Err("trade flagged suspicious by the vendor".to_owned()),
            other => {
                return Err(format!(
                    "unparsable suspicious flag `{}`",
                    super::shown(other)
                ))
            }
        }
        let price = parse_i64(price, "price")?;
        let size = parse_i64(size, "size")?;
        if price <= 0 || size <= 0 {
            return Err(format!(
                "non-positive price or size: {price} × 1e-4, {size}"
            ));
        }

        bounded(price as f64 / 10_000.0, "price")?;
        bounded(size as f64, "size")?;
        if exchange != self.venue_byte.as_slice() {
            self.venue = name_text(exchange, "exchange")?.to_owned();
            self.venue_byte = exchange.to_vec();
        }
        Ok(SourceEvent::Trade(TradeTick {
            symbol: self.symbol.clone(),
            venue: self.venue.clone(),
            ts_us: self.ts_us(parse_i64(ms, "time")?)?,
            price: price as f64 / 10_000.0,
            size: size as f64,
            side: Side::Unknown,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{open, Format, SourceEvent};
    use super::*;
    use crate::data::shared_data_file;
    use std::io::Write;

    #[test]
    fn spy_zip_reads_250601_trades_none_suspicious_from_0400_new_york() {
        let path = shared_data_file("market/spy_tick_20131007_trade.zip");
        let reader = open(&path, Some(Format::LeanTrades)).expect("opens the file");
        let (mut count, mut errors, mut first, mut last) = (0, 0, None, None);
        for item in reader {
            match item {
                Ok(SourceEvent::Trade(trade)) => {
                    count += 1;
                    first.get_or_insert_with(|| trade.clone());
                    last = Some(trade);
                }
                Ok(other) => panic!("not a trade: {other:?}"),
                Err(_) => errors += 1,
            }
        }
        // No row of this day carries suspicious = 1 (checked with awk), so none is refused.
        assert_eq!((count, errors), (250_601, 0));

        let first = first.expect("a first trade");
        assert_eq!((first.symbol.as_str(), first.venue.as_str()), ("SPY", "P"));
        // 14 400 464 ms = 04:00:00.464 EDT = 08:00:00.464 UTC (date -u -d … +%s%3N).
        assert_eq!(first.ts_us, 1_381_132_800_464_000);
        assert_eq!(
            (first.price, first.size, first.side),
            (167.41, 100.0, Side::Unknown)
        );

        // Last row `71999536,1673000,100,K,…`: 19:59:59.536 EDT = 23:59:59.536 UTC.
        let last = last.expect("a last trade");
        assert_eq!(
            last.ts_us,
            1_381_132_800_000_000 + (71_999_536 - 14_400_000) * 1000
        );
        assert_eq!((last.price, last.venue.as_str()), (167.3, "K"));
    }

    #[test]
    fn winter_day_uses_eastern_standard_time() {
        let parser = TradeParser::new(
            NaiveDate::from_ymd_opt(2013, 12, 2).expect("parses"),
            "SPY".into(),
        );
        // 09:30 EST = 14:30 UTC; 2013-12-02T14:30:00Z is 1385994600 s.
        assert_eq!(parser.ts_us(34_200_000), Ok(1_385_994_600_000_000));
    }

    #[test]
    fn day_when_clocks_change_converts_each_row() {
        // 2013-11-03: 01:00 EDT happens twice, 03:00 is after the fall back (EST).
        let parser = TradeParser::new(
            NaiveDate::from_ymd_opt(2013, 11, 3).expect("parses"),
            "SPY".into(),
        );
        assert!(parser.uniform_midnight_us.is_none());
        // 00:30 EDT = 04:30 UTC; 03:00 EST = 08:00 UTC.
        assert_eq!(parser.ts_us(1_800_000), Ok(1_383_453_000_000_000));
        assert_eq!(parser.ts_us(10_800_000), Ok(1_383_465_600_000_000));
    }

    #[test]
    fn date_and_symbol_come_from_the_member_then_the_file_name() {
        let date = NaiveDate::from_ymd_opt(2013, 10, 7).expect("a real date");
        let found = date_and_symbol(&["20131007_spy_Trade_Tick.csv", "x.zip"]);
        assert_eq!(found, Some((date, "SPY".to_owned())));
        let found = date_and_symbol(&["trades.csv", "spy_tick_20131007_trade.zip"]);
        assert_eq!(found, Some((date, "SPY".to_owned())));
        assert_eq!(date_and_symbol(&["ticks.csv"]), None);
    }

    #[test]
    fn bare_lean_csv_refuses_suspicious_and_bad_rows_and_goes_on() {
        let dir = tempfile::tempdir().expect("creates a temp file");
        let path = dir.path().join("20131007_spy_Trade_Tick.csv");
        let mut file = std::fs::File::create(&path).expect("creates a temp file");
        write!(
            file,
            "34200000,1674100,100,P,0,0\n\
             34200001,1674100,100,P,0,1\n\
             34200002,0,100,P,0,0\n\
             34200003,16741x0,100,P,0,0\n\
             34200004,1674200,200,Q,0,0\n"
        )
        .expect("writes the temp file");

        let items: Vec<_> = open(&path, None).expect("opens the file").collect();
        let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(errors[0].reason, "trade flagged suspicious by the vendor");
        assert_eq!(errors[2].reason, "unparsable price `16741x0`");
        let Some(Ok(SourceEvent::Trade(last))) = items.last() else {
            panic!("last row should read");
        };
        // 34 200 004 ms = 09:30:00.004 EDT = 13:30:00.004 UTC.
        assert_eq!(last.ts_us, 1_381_152_600_004_000);
        assert_eq!((last.price, last.venue.as_str()), (167.42, "Q"));
    }

    #[test]
    fn zip_without_a_csv_is_refused() {
        let dir = tempfile::tempdir().expect("creates a temp file");
        let path = dir.path().join("20131007_trade.zip");
        let mut zip =
            zip::ZipWriter::new(std::fs::File::create(&path).expect("creates a temp file"));
        zip.start_file("readme.txt", zip::write::SimpleFileOptions::default())
            .expect("writes the temp file");
        zip.write_all(b"hello").expect("writes the temp file");
        zip.finish().expect("builds the archive");

        let error = open(&path, Some(Format::LeanTrades))
            .expect_err("should fail")
            .to_string();
        assert!(
            error.contains("holds no .csv member (1 members)"),
            "{error}"
        );
    }
}
