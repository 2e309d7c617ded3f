//! Tests across the readers: fatal errors, cut payloads, format kinds, plausibility checks.

use std::io::{self, Read, Write};

use super::records::RecordSource;
use super::{open, tardis, Format, RowError, Rows, RAW_LIMIT};

const TRADES_HEADER: &str = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n";

/// Gives `data`, then fails as a disk would.
struct FailsAfter(&'static [u8]);

impl Read for FailsAfter {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fn temp_file(content: &[u8]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("creates a temp file");
    file.write_all(content).expect("writes the temp file");
    file
}

#[test]
fn a_read_error_mid_file_is_fatal_and_ends_the_reader_while_bad_rows_are_not() {
    let data = b"x,BTC,1000,1001,1,buy,10,1\nx,BTC,2000,2001,2,buy,0,1\nx,BTC,3000";
    let source = RecordSource::new(Box::new(FailsAfter(data)), b',', csv::Trim::None);
    let items: Vec<_> = Rows::new(source, tardis::TradeParser::default()).collect();
    assert_eq!(items.len(), 3, "{items:?}");
    assert!(items[0].is_ok());
    let bad = items[1].as_ref().expect_err("price 0 is refused");
    assert!(!bad.fatal);
    let failed = items[2].as_ref().expect_err("the read fails");
    assert!(failed.fatal, "{failed:?}");
    assert_eq!(failed.reason, "failed to read: disk on fire");
}

#[test]
fn a_huge_refused_row_keeps_64_kib_and_says_it_was_cut() {
    let mut content = TRADES_HEADER.as_bytes().to_vec();
    content.extend_from_slice(b"x,BTC,1000,1001,1,buy,10,");
    content.extend(std::iter::repeat_n(b'9', 200_000));
    content.extend_from_slice(b"x\nx,BTC,2000,2001,2,buy,10,1\n");
    let file = temp_file(&content);
    let items: Vec<_> = open(file.path(), None).expect("opens the file").collect();
    let error = items[0].as_ref().expect_err("the long row is refused");
    assert_eq!(error.raw.len(), RAW_LIMIT);
    assert_eq!(RAW_LIMIT, 65_536);
    assert!(error.raw.starts_with(b"x,BTC,1000,"));
    assert!(
        error.reason.ends_with(" (row cut to 65,536 bytes)"),
        "{}",
        error.reason
    );
    assert!(items[1].is_ok());

    let short = RowError::bad_row(3, "bad".to_owned(), b"a,b".to_vec());
    assert_eq!(
        (short.reason.as_str(), short.raw.as_slice()),
        ("bad", &b"a,b"[..])
    );
}

#[test]
fn workload_formats_are_the_four_traces() {
    let workload: Vec<Format> = Format::ALL
        .into_iter()
        .filter(|f| f.is_workload())
        .collect();
    assert_eq!(
        workload,
        [
            Format::RowTrace,
            Format::TimedTrace,
            Format::Bitbrains,
            Format::NasaCounts
        ]
    );
}

/// Writes a zip named `20131007_spy_trade.zip` in `dir` holding `members`, compressed as `method`.
fn zip_of(
    dir: &std::path::Path,
    members: &[(&str, &[u8])],
    method: zip::CompressionMethod,
) -> std::path::PathBuf {
    let path = dir.join("20131007_spy_trade.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).expect("creates a temp file"));
    for (name, content) in members {
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        zip.start_file(*name, options)
            .expect("writes the temp file");
        zip.write_all(content).expect("writes the temp file");
    }
    zip.finish().expect("builds the archive");
    path
}

/// Flips one byte of the member's data, `at` bytes into it.
fn flip_member_byte(path: &std::path::Path, at: u64) {
    let start = {
        let mut archive =
            zip::ZipArchive::new(std::fs::File::open(path).expect("opens the zip")).expect("a zip");
        let member = archive.by_index_raw(0).expect("a member");
        member.data_start()
    };
    let mut bytes = std::fs::read(path).expect("reads the zip");
    let index = usize::try_from(start + at).expect("fits");
    bytes[index] ^= 0x01;
    std::fs::write(path, bytes).expect("writes the zip");
}

/// Lean rows with distinct times and prices, `count` of them.
fn lean_rows(count: u32) -> Vec<u8> {
    let mut rows = Vec::new();
    for i in 0..count {
        let line = format!("{},{},100,P,0,0\n", 34_200_000 + i, 1_674_100 + i % 97);
        rows.extend_from_slice(line.as_bytes());
    }
    rows
}

#[test]
fn a_zip_of_two_members_is_refused_naming_them() {
    let dir = tempfile::tempdir().expect("creates a temp dir");
    let rows = lean_rows(3);
    let path = zip_of(
        dir.path(),
        &[("a.csv", &rows), ("b.csv", &rows)],
        zip::CompressionMethod::Deflated,
    );
    for format in [None, Some(Format::LeanTrades)] {
        let error = open(&path, format).expect_err("should fail").to_string();
        assert!(
            error.ends_with("holds 2 members (a.csv, b.csv); expected one CSV"),
            "{error}"
        );
        assert!(error.contains("20131007_spy_trade.zip"), "{error}");
    }
}

#[test]
fn a_stored_member_with_a_flipped_byte_ends_in_a_fatal_crc_error() {
    let dir = tempfile::tempdir().expect("creates a temp dir");
    // 1,000 rows are 26 KiB, more than detection's look at the first 8 KiB.
    let rows = lean_rows(1_000);
    let path = zip_of(
        dir.path(),
        &[("t.csv", &rows)],
        zip::CompressionMethod::Stored,
    );
    // Byte 1 is the second digit of the first time: 34200000 becomes 35200000, still a time.
    flip_member_byte(&path, 1);
    let items: Vec<_> = open(&path, None).expect("opens the file").collect();
    assert_eq!(items.len(), 1_001, "1,000 rows and the CRC error");
    assert!(items[..1_000].iter().all(Result::is_ok));
    let error = items[1_000].as_ref().expect_err("the CRC does not match");
    assert!(error.fatal);
    assert!(
        error.reason.contains("zip member t.csv: CRC-32")
            && error.reason.contains("does not match"),
        "{}",
        error.reason
    );
}

#[test]
fn a_small_damaged_member_fails_detection_already() {
    let dir = tempfile::tempdir().expect("creates a temp dir");
    let path = zip_of(
        dir.path(),
        &[("t.csv", &lean_rows(10))],
        zip::CompressionMethod::Stored,
    );
    flip_member_byte(&path, 1);
    let error = open(&path, None).expect_err("should fail");
    assert!(matches!(error, super::Error::Read { .. }), "{error:?}");
}

#[test]
fn a_damaged_deflate_member_ends_in_a_fatal_error() {
    let dir = tempfile::tempdir().expect("creates a temp dir");
    let rows = lean_rows(5_000);
    let path = zip_of(
        dir.path(),
        &[("t.csv", &rows)],
        zip::CompressionMethod::Deflated,
    );
    flip_member_byte(&path, 200);
    let items: Vec<_> = open(&path, None).expect("opens the file").collect();
    let last = items.last().expect("an item").as_ref().expect_err("fails");
    assert!(last.fatal, "{last:?}");
    assert!(last.reason.contains("zip member t.csv"), "{}", last.reason);
    assert_eq!(
        items
            .iter()
            .filter(|i| matches!(i, Err(e) if e.fatal))
            .count(),
        1
    );

    // Undamaged, the same zip reads every row.
    let path = zip_of(
        dir.path(),
        &[("t.csv", &rows)],
        zip::CompressionMethod::Deflated,
    );
    let items: Vec<_> = open(&path, None).expect("opens the file").collect();
    assert_eq!(
        (items.len(), items.iter().all(Result::is_ok)),
        (5_000, true)
    );
}

#[test]
fn market_rows_dated_past_tomorrow_or_before_1970_are_refused_and_reading_goes_on() {
    let file = temp_file(
        format!(
            "{TRADES_HEADER}x,BTC,7258118400000000,0,1,buy,10,1\n\
             x,BTC,{},0,2,buy,10,1\n\
             x,BTC,-5,0,3,buy,10,1\n\
             x,BTC,1582329602111000,0,4,buy,10,1\n",
            i64::MAX
        )
        .as_bytes(),
    );
    let items: Vec<_> = open(file.path(), None).expect("opens the file").collect();
    let reasons: Vec<&str> = items
        .iter()
        .filter_map(|i| i.as_ref().err())
        .map(|e| e.reason.as_str())
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    // 7258118400 s is 2200-01-01T00:00:00Z.
    assert!(
        reasons[0].starts_with("timestamp 2200-01-01T00:00:00Z is not plausible (after 20"),
        "{}",
        reasons[0]
    );
    assert!(reasons[1].starts_with("timestamp 9223372036854775807 µs is not plausible"));
    assert!(reasons[2].ends_with("is not plausible (before 1970-01-01)"));
    assert_eq!(
        items[3].as_ref().map(|e| e.ts_us()),
        Ok(1_582_329_602_111_000)
    );
}

#[test]
fn bars_and_absolute_trace_times_in_2200_are_refused_but_row_clocks_are_not() {
    let bars = temp_file(b"timestamp,open,high,low,close\n2200-01-01 00:00:00,1,1,1,1\n");
    let items: Vec<_> = open(bars.path(), None).expect("opens the file").collect();
    assert!(items[0]
        .as_ref()
        .is_err_and(|e| e.reason.contains("not plausible")));

    let bitbrains = temp_file(
        b"Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\t\
          CPU usage [%];\tMemory capacity provisioned [KB];\tMemory usage [KB]\n\
          7258118400;\t1;\t1000;\t10;\t1;\t100;\t50\n\
          1372629804;\t1;\t1000;\t10;\t1;\t100;\t50\n",
    );
    let items: Vec<_> = open(bitbrains.path(), None)
        .expect("opens the file")
        .collect();
    assert!(items[0]
        .as_ref()
        .is_err_and(|e| e.reason.contains("not plausible")));
    assert!(items[1].is_ok());

    // A timed trace from 0 (Azure) and a row trace are relative clocks: 0 s is fine.
    let timed = temp_file(b"timestamp,cpu_usage\n0,5\n300,6\n");
    assert!(open(timed.path(), None).expect("opens").all(|i| i.is_ok()));
}

#[test]
fn forcing_a_trace_format_on_another_format_is_refused_for_its_header() {
    let shared = crate::data::shared_data_file;
    let cases = [
        ("market/spy_tick_20131007_trade.zip", Format::RowTrace),
        ("market/spy_tick_20131007_trade.zip", Format::TimedTrace),
        ("market/spy_tick_20131007_trade.zip", Format::TardisTrades),
        (
            "market/btc-perp-20211231-20220201_1m.csv",
            Format::TimedTrace,
        ),
        ("market/btc-perp-20211231-20220201_1m.csv", Format::RowTrace),
        ("market/tardis_trades.csv", Format::RowTrace),
        ("market/vix-daily.csv", Format::RowTrace),
        ("workload/bitbrains-vm407-2013-07.csv", Format::RowTrace),
        (
            "workload/nasa-http-1995-requests-per-second.tbz2",
            Format::Bars,
        ),
        (
            "workload/nasa-http-1995-requests-per-second.tbz2",
            Format::RowTrace,
        ),
    ];
    for (file, format) in cases {
        let error = open(&shared(file), Some(format)).expect_err(file);
        assert!(
            matches!(error, super::Error::Header { .. }),
            "{file}: {error:?}"
        );
        let text = error.to_string();
        assert!(
            text.contains(&format!("is not {format}: saw header `")),
            "{text}"
        );
    }
    // A bare Lean CSV has a numeric first row, not column names.
    let bare = temp_file(b"14400464,1674100,100,P,0,0\n");
    let error = open(bare.path(), Some(Format::RowTrace)).expect_err("should fail");
    assert!(error
        .to_string()
        .contains("is not row-trace: saw header `14400464,1674100"));
    // A header with a NUL is binary whatever the format.
    let nul = temp_file(b"cpu\x00,mem\n1,2\n");
    let error = open(nul.path(), Some(Format::RowTrace)).expect_err("should fail");
    assert!(
        error.to_string().contains("saw header `cpu\\x00,mem`"),
        "{error}"
    );
    // The shared row traces still open as row-trace, and a plain named header too.
    let named = temp_file(b"requests per s,errors [%]\n5,0\n");
    assert!(open(named.path(), Some(Format::RowTrace)).is_ok());
}

#[test]
fn symbols_with_control_characters_or_quotes_and_values_above_1e12_are_refused() {
    let file = temp_file(
        format!(
            "{TRADES_HEADER}x,BT\0C,1000,0,1,buy,10,1\n\
             x,BTC\",1000,0,2,buy,10,1\n\
             x\x07,BTC,1000,0,3,buy,10,1\n\
             x,BTC,1000,0,4,buy,1e300,1\n\
             x,BTC,1000,0,5,buy,10,2e12\n\
             x,BTC,1000,0,6,buy,1e12,1\n"
        )
        .as_bytes(),
    );
    let items: Vec<_> = open(file.path(), None).expect("opens the file").collect();
    let reasons: Vec<&str> = items
        .iter()
        .filter_map(|i| i.as_ref().err())
        .map(|e| e.reason.as_str())
        .collect();
    assert_eq!(
        reasons,
        [
            "symbol `BT\\x00C` holds a control character or a quote",
            "symbol `BTC\\\"` holds a control character or a quote",
            "exchange `x\\x07` holds a control character or a quote",
            "price 1e300 is above 1e12",
            "amount 2e12 is above 1e12",
        ]
    );
    let Some(Ok(super::SourceEvent::Trade(last))) = items.last() else {
        panic!("the last row reads");
    };
    assert_eq!((last.price, last.symbol.as_str()), (1e12, "BTC"));

    let dir = tempfile::tempdir().expect("creates a temp dir");
    let lean = dir.path().join("20131007_spy_Trade_Tick.csv");
    std::fs::write(
        &lean,
        "34200000,1674100,100,P\x01,0,0\n34200000,1674100,2000000000000,P,0,0\n",
    )
    .expect("writes the temp file");
    let items: Vec<_> = open(&lean, None).expect("opens the file").collect();
    assert_eq!(
        items
            .iter()
            .map(|i| i.as_ref().map_err(|e| e.reason.clone()).err())
            .collect::<Vec<_>>(),
        [
            Some("exchange `P\\x01` holds a control character or a quote".to_owned()),
            Some("size 2e12 is above 1e12".to_owned()),
        ]
    );
}
