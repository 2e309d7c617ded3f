//! Line-oriented reading shared by the text formats: numbered lines, field splitting, numbers.
//!
//! Consumes any byte stream; produces one line at a time with its 1-based line number, without
//! the line ending (`\n` or `\r\n`), from one reused buffer. Keeps a small queue of lines that a
//! reader peeked at while opening, so they can be replayed before the rest of the stream.
//!
//! Caveat: fields are split on the delimiter byte alone; quoted fields are not supported. None of
//! the supported formats quote.

use std::collections::VecDeque;
use std::io::{self, BufRead};

/// A stream of numbered lines read into one reused buffer.
pub(crate) struct LineSource {
    reader: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    line: u64,
    replay: VecDeque<(u64, Vec<u8>)>,
    /// A read error met while peeking, returned once the peeked lines are replayed.
    deferred: Option<io::Error>,
    failed: bool,
}

impl LineSource {
    /// Returns a source over `reader`, positioned before line 1.
    pub(crate) fn new(reader: Box<dyn BufRead + Send>) -> Self {
        Self {
            reader,
            buf: Vec::with_capacity(256),
            line: 0,
            replay: VecDeque::new(),
            deferred: None,
            failed: false,
        }
    }

    /// Returns the number of the last line read from the stream (0 before the first).
    pub(crate) fn current_line(&self) -> u64 {
        self.line
    }

    /// Returns the next line and its number, or `None` at the end of the stream.
    ///
    /// After a read error, which is returned once, the source ends.
    pub(crate) fn next_line(&mut self) -> Option<io::Result<(u64, &[u8])>> {
        if let Some((line, bytes)) = self.replay.pop_front() {
            self.buf = bytes;
            return Some(Ok((line, &self.buf)));
        }
        if let Some(error) = self.deferred.take() {
            return Some(Err(error));
        }
        if self.failed {
            return None;
        }

        self.buf.clear();
        match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(0) => None,
            Ok(_) => {
                self.line += 1;
                Some(Ok((self.line, trim_line_end(&self.buf))))
            }
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }

    /// Returns the next line that is not blank, skipping blank ones.
    pub(crate) fn next_non_blank(&mut self) -> Option<io::Result<(u64, &[u8])>> {
        loop {
            match self.next_line()? {
                Ok((_, bytes)) if bytes.trim_ascii().is_empty() => continue,
                // Re-borrowing here keeps the borrow checker happy across the loop.
                Ok((line, _)) => return Some(Ok((line, trim_line_end(&self.buf)))),
                Err(error) => return Some(Err(error)),
            }
        }
    }

    /// Reads up to `count` non-blank lines ahead and queues them for replay; returns copies.
    ///
    /// A read error stops the look-ahead; it is returned after the peeked lines are replayed.
    pub(crate) fn peek_lines(&mut self, count: usize) -> Vec<(u64, Vec<u8>)> {
        let mut peeked = Vec::with_capacity(count);
        while peeked.len() < count {
            match self.next_non_blank() {
                Some(Ok((line, bytes))) => peeked.push((line, bytes.to_vec())),
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
}

/// Strips a trailing `\n` or `\r\n` from a line.
pub(crate) fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Splits `line` on `delim` into exactly `N` fields, trimming ASCII whitespace around each.
///
/// # Errors
/// Returns a reason naming both counts when the line has a different number of fields.
pub(crate) fn split_fields<const N: usize>(line: &[u8], delim: u8) -> Result<[&[u8]; N], String> {
    let mut fields: [&[u8]; N] = [&[]; N];
    let mut count = 0;
    for field in line.split(|b| *b == delim) {
        if count < N {
            fields[count] = field.trim_ascii();
        }
        count += 1;
    }
    if count == N {
        Ok(fields)
    } else {
        Err(format!("expected {N} columns, found {count}"))
    }
}

/// Splits a header line into trimmed column names (lossy UTF-8, byte order mark removed).
pub(crate) fn header_columns(line: &[u8], delim: u8) -> Vec<String> {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    line.split(|b| *b == delim)
        .map(|name| String::from_utf8_lossy(name.trim_ascii()).into_owned())
        .collect()
}

/// Parses a decimal integer (optional sign) from ASCII bytes.
///
/// # Errors
/// Returns a reason naming the column and the text when the bytes are not an integer.
pub(crate) fn parse_i64(bytes: &[u8], column: &str) -> Result<i64, String> {
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 18 {
        return Err(bad_number(column, bytes));
    }

    let mut value: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return Err(bad_number(column, bytes));
        }
        value = value * 10 + i64::from(b - b'0');
    }
    Ok(if negative { -value } else { value })
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
    fn split_fields_trims_and_counts_columns() {
        let fields = split_fields::<3>(b"1;\t2.5;\t x ", b';').expect("three fields");
        assert_eq!(fields, [&b"1"[..], b"2.5", b"x"]);
        assert_eq!(
            split_fields::<3>(b"1,2", b',').expect_err("should fail"),
            "expected 3 columns, found 2"
        );
        assert_eq!(
            split_fields::<2>(b"1,2,3,4", b',').expect_err("should fail"),
            "expected 2 columns, found 4"
        );
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

    #[test]
    fn lines_are_numbered_stripped_and_replayed_after_a_peek() {
        let data: &[u8] = b"h\r\na\n\nb\nc";
        let mut source = LineSource::new(Box::new(data));
        assert_eq!(
            source.next_line().expect("a line").expect("reads"),
            (1, &b"h"[..])
        );
        let peeked = source.peek_lines(2);
        assert_eq!(peeked, vec![(2, b"a".to_vec()), (4, b"b".to_vec())]);
        assert_eq!(
            source.next_non_blank().expect("a line").expect("reads"),
            (2, &b"a"[..])
        );
        assert_eq!(
            source.next_non_blank().expect("a line").expect("reads"),
            (4, &b"b"[..])
        );
        assert_eq!(
            source.next_non_blank().expect("a line").expect("reads"),
            (5, &b"c"[..])
        );
        assert!(source.next_non_blank().is_none());
    }
}
