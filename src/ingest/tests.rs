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
