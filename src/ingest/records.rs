//! CSV records read through the `csv` crate, each with the 1-based line it starts on.
//!
//! Consumes any byte stream; produces one record at a time into a caller's reused
//! [`csv::ByteRecord`], skipping blank lines (empty ones, which `csv` drops itself, and ones that
//! hold only whitespace). Keeps a small queue of records that a reader peeked at while opening,
//! so they can be replayed before the rest of the stream.
//!
//! The dialect is fixed for the formats here: no headers (our detection checks them), flexible
//! field counts (a short row is the parser's refusal, not a `csv` error), no quoting (no supported
//! format quotes, and a stray `"` must not swallow the rows after it), and records ended by `\n`.
//! `csv` strips a UTF-8 byte order mark at the start of the stream.
//!
//! Trimming: the caller chooses `csv`'s [`Trim`]. `Trim::All` suits files with spaces or tabs
//! around fields (Bitbrains' `;`+tab) but costs `csv` a new record per row (it rebuilds the
//! record to trim it), which more than doubled the time to read the SPY day; the market formats
//! therefore read untrimmed and the accessors here ([`exact`], [`columns`], the blank-line test)
//! trim each field with `<[u8]>::trim_ascii`, which also drops the `\r` of a CRLF line ending
//! that stays on the last field when records end at `\n`.
//!
//! Line numbers: `csv` stamps a record with the position where it *began reading*, which is
//! before any blank lines it skipped, so that position is not the record's line. Ending records at
//! `\n` makes every record but an unterminated last one consume exactly its own line ending, so a
//! record's line is the reader's line count after it, less one; [`StreamEnd`] tells whether the
//! stream ended without a newline, the one case where nothing is subtracted.

use std::collections::VecDeque;
use std::io::{self, Read};

use csv::{ByteRecord, Terminator, Trim};

/// Bytes of `csv`'s own read buffer; large enough that a read costs one system call per 64 KiB.
const BUFFER_BYTES: usize = 1 << 16;

/// A stream of CSV records, each with the 1-based line it starts on.
pub(crate) struct RecordSource {
    csv: csv::Reader<StreamEnd<Box<dyn Read + Send>>>,
    delimiter: u8,
    replay: VecDeque<(u64, ByteRecord)>,
    /// A read error met while peeking, returned once the peeked records are replayed.
    deferred: Option<io::Error>,
}

impl RecordSource {
    /// Returns a source over `reader` whose fields are separated by `delimiter`.
    pub(crate) fn new(reader: Box<dyn Read + Send>, delimiter: u8, trim: Trim) -> Self {
        let csv = builder(delimiter, trim)
            .buffer_capacity(BUFFER_BYTES)
            .from_reader(StreamEnd::new(reader));
        Self {
            csv,
            delimiter,
            replay: VecDeque::new(),
            deferred: None,
        }
    }

    /// Returns the field delimiter.
    pub(crate) fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// Returns the line after the last record read: where a read error is reported.
    pub(crate) fn next_line(&self) -> u64 {
        self.csv.position().line()
    }

    /// Reads the next non-blank record into `record` and returns its line, `None` at the end.
    ///
    /// After a read error, which is returned once, the source ends (`csv` stops reading).
    pub(crate) fn next_record(&mut self, record: &mut ByteRecord) -> Option<io::Result<u64>> {
        if let Some((line, queued)) = self.replay.pop_front() {
            *record = queued;
            return Some(Ok(line));
        }
        if let Some(error) = self.deferred.take() {
            return Some(Err(error));
        }

        loop {
            match self.csv.read_byte_record(record) {
                Ok(false) => return None,
                Ok(true) if is_blank(record) => continue,
                Ok(true) => return Some(Ok(self.line_of_last_record())),
                Err(error) => return Some(Err(into_io(error))),
            }
        }
    }

    /// Reads up to `count` non-blank records ahead and queues them for replay; returns copies.
    ///
    /// A read error stops the look-ahead; it is returned after the peeked records are replayed.
    pub(crate) fn peek_records(&mut self, count: usize) -> Vec<(u64, ByteRecord)> {
        let mut peeked = Vec::with_capacity(count);
        let mut record = ByteRecord::new();
        while peeked.len() < count {
            match self.next_record(&mut record) {
                Some(Ok(line)) => peeked.push((line, record.clone())),
                Some(Err(error)) => {
                    self.deferred = Some(error);
                    break;
                }
                None => break,
            }
        }
        self.replay.extend(peeked.iter().cloned());
        peeked
    }

    /// Returns the line the record just read starts on (see the module docs).
    fn line_of_last_record(&self) -> u64 {
        let after = self.csv.position();
        let end = self.csv.get_ref();
        let unterminated = end.ended && after.byte() == end.total && end.last != Some(b'\n');
        if unterminated {
            after.line()
        } else {
            after.line().saturating_sub(1)
        }
    }
}

/// Returns the record of the first non-blank line of `bytes`, such as a file's first 8 KiB.
pub(crate) fn first_record(bytes: &[u8], delimiter: u8) -> Option<ByteRecord> {
    let mut csv = builder(delimiter, Trim::All).from_reader(bytes);
    let mut record = ByteRecord::new();
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(true) if is_blank(&record) => continue,
            Ok(true) => return Some(record),
            // A byte slice cannot fail to read, and the end means there is no record.
            Ok(false) | Err(_) => return None,
        }
    }
}

/// Returns a record's fields as column names (trimmed, lossy UTF-8).
pub(crate) fn columns(record: &ByteRecord) -> Vec<String> {
    record
        .iter()
        .map(|name| String::from_utf8_lossy(name.trim_ascii()).into_owned())
        .collect()
}

/// Returns the record's fields joined by `delimiter`: the row as a [`super::RowError`] keeps it.
///
/// Read untrimmed, that is the line as written, less its line ending; read with `Trim::All`, the
/// whitespace around fields is gone too (Bitbrains' `;`+tab comes back as `;`).
pub(crate) fn joined(record: &ByteRecord, delimiter: u8) -> Vec<u8> {
    let mut raw = Vec::with_capacity(record.as_slice().len() + record.len());
    for (i, field) in record.iter().enumerate() {
        if i > 0 {
            raw.push(delimiter);
        }
        raw.extend_from_slice(field);
    }
    if raw.last() == Some(&b'\r') {
        raw.pop();
    }
    raw
}

/// Returns exactly `N` fields of `record`, each trimmed of ASCII whitespace.
///
/// # Errors
/// Returns a reason naming both counts when the record has a different number of fields.
pub(crate) fn exact<const N: usize>(record: &ByteRecord) -> Result<[&[u8]; N], String> {
    if record.len() != N {
        return Err(format!("expected {N} columns, found {}", record.len()));
    }
    let mut fields: [&[u8]; N] = [&[]; N];
    for (slot, field) in fields.iter_mut().zip(record) {
        *slot = field.trim_ascii();
    }
    Ok(fields)
}

fn builder(delimiter: u8, trim: Trim) -> csv::ReaderBuilder {
    let mut builder = csv::ReaderBuilder::new();
    builder
        .has_headers(false)
        .flexible(true)
        .quoting(false)
        .trim(trim)
        .terminator(Terminator::Any(b'\n'))
        .delimiter(delimiter);
    builder
}

/// A whitespace-only line (`\r` alone included) comes out of `csv` as one blank field.
fn is_blank(record: &ByteRecord) -> bool {
    record.len() == 1 && record[0].trim_ascii().is_empty()
}

fn into_io(error: csv::Error) -> io::Error {
    match error.into_kind() {
        csv::ErrorKind::Io(error) => error,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// A reader that remembers how many bytes it gave, the last of them, and whether it ended.
struct StreamEnd<R> {
    inner: R,
    total: u64,
    last: Option<u8>,
    ended: bool,
}

impl<R> StreamEnd<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            total: 0,
            last: None,
            ended: false,
        }
    }
}

impl<R: Read> Read for StreamEnd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        match buf[..read].last() {
            Some(&byte) => {
                self.total += read as u64;
                self.last = Some(byte);
            }
            None => self.ended = !buf.is_empty(),
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `data` untrimmed and trimmed, checks both agree, and returns lines and columns.
    fn lines_and_fields(data: &'static [u8], delimiter: u8) -> Vec<(u64, Vec<String>)> {
        let untrimmed = read_with(data, delimiter, Trim::None);
        assert_eq!(untrimmed, read_with(data, delimiter, Trim::All));
        untrimmed
    }

    fn read_with(data: &'static [u8], delimiter: u8, trim: Trim) -> Vec<(u64, Vec<String>)> {
        let mut source = RecordSource::new(Box::new(data), delimiter, trim);
        let mut record = ByteRecord::new();
        let mut out = Vec::new();
        while let Some(line) = source.next_record(&mut record) {
            out.push((line.expect("reads"), columns(&record)));
        }
        out
    }

    fn one(text: &str) -> Vec<String> {
        text.split(',').map(str::to_owned).collect()
    }

    #[test]
    fn records_carry_the_line_they_start_on_past_blank_lines_and_crlf() {
        let expected = vec![(1, one("h")), (2, one("a")), (4, one("b")), (5, one("c"))];
        assert_eq!(lines_and_fields(b"h\na\n\nb\nc", b','), expected);
        assert_eq!(
            lines_and_fields(b"h\r\na\r\n\r\nb\r\nc\r\n", b','),
            expected
        );
        // Whitespace-only lines 3 and 5 are blank too; c is on line 6.
        assert_eq!(
            lines_and_fields(b"h\na\n  \nb\n\t\nc\n\n", b','),
            vec![(1, one("h")), (2, one("a")), (4, one("b")), (6, one("c"))]
        );
    }

    #[test]
    fn unterminated_last_record_after_blank_lines_keeps_its_own_line() {
        assert_eq!(
            lines_and_fields(b"h\n\n\nc", b','),
            vec![(1, one("h")), (4, one("c"))]
        );
        assert_eq!(lines_and_fields(b"\n\nh,x\n", b','), vec![(3, one("h,x"))]);
    }

    #[test]
    fn fields_are_trimmed_split_on_the_delimiter_and_a_bom_is_dropped() {
        let data: &[u8] = b"\xEF\xBB\xBFTimestamp [ms];\tCPU\n1;\t2.5 ; x \"y\n";
        assert_eq!(
            lines_and_fields(data, b';'),
            vec![
                (1, vec!["Timestamp [ms]".to_owned(), "CPU".to_owned()]),
                (
                    2,
                    vec!["1".to_owned(), "2.5".to_owned(), "x \"y".to_owned()]
                ),
            ]
        );
    }

    #[test]
    fn peeked_records_are_replayed_before_the_rest() {
        let mut source = RecordSource::new(Box::new(&b"h\na\n\nb\nc"[..]), b',', Trim::None);
        let mut record = ByteRecord::new();
        assert_eq!(
            source
                .next_record(&mut record)
                .expect("a record")
                .expect("reads"),
            1
        );
        let peeked: Vec<u64> = source.peek_records(2).iter().map(|(l, _)| *l).collect();
        assert_eq!(peeked, [2, 4]);
        let mut replayed = Vec::new();
        while let Some(line) = source.next_record(&mut record) {
            replayed.push((line.expect("reads"), record[0].to_vec()));
        }
        assert_eq!(
            replayed,
            [(2, b"a".to_vec()), (4, b"b".to_vec()), (5, b"c".to_vec())]
        );
    }

    #[test]
    fn exact_counts_fields_and_joined_rebuilds_the_row() {
        let record = first_record(b"\n x ,BTC, 10\r\n", b',').expect("a record");
        assert_eq!(exact::<3>(&record), Ok([&b"x"[..], b"BTC", b"10"]));
        assert_eq!(
            exact::<2>(&record).expect_err("should fail"),
            "expected 2 columns, found 3"
        );
        assert_eq!(joined(&record, b';'), b"x;BTC;10");
        assert_eq!(first_record(b"\n \n", b','), None);

        // Untrimmed, the row comes back as written, less its CRLF; the fields still trim.
        let mut source = RecordSource::new(Box::new(&b"x, BTC ,10\r\n"[..]), b',', Trim::None);
        let mut record = ByteRecord::new();
        assert_eq!(
            source
                .next_record(&mut record)
                .expect("a record")
                .expect("reads"),
            1
        );
        assert_eq!(joined(&record, b','), b"x, BTC ,10");
        assert_eq!(exact::<3>(&record), Ok([&b"x"[..], b"BTC", b"10"]));
    }
}
