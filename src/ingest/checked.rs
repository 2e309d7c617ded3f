//! A reader that checks the length and CRC-32 of the bytes it passes on.
//!
//! Consumes a decoded stream (a zip member inflated, a tar member) and the length and CRC-32 its
//! archive promised. Produces the same bytes; keeps a running CRC and a byte count. Guarantees
//! that the end of the stream is only reported when both agree: a short stream (truncated
//! archive), a long one, or a CRC mismatch is an [`io::ErrorKind::InvalidData`] error instead,
//! and an error of the inner reader (damaged compressed data) comes back naming `what`. The
//! caller turns either into a fatal [`super::RowError`].

use std::io::{self, Read};

/// A stream checked against the length and, when known, the CRC-32 its archive records.
pub(crate) struct Checked<R> {
    inner: R,
    what: String,
    expected_len: u64,
    expected_crc: Option<u32>,
    hasher: crc32fast::Hasher,
    seen: u64,
}

impl<R: Read> Checked<R> {
    /// Returns `inner` checked to hold `expected_len` bytes with CRC-32 `expected_crc`; `what`
    /// names the stream in errors, such as `zip member a.csv`.
    pub(crate) fn new(
        inner: R,
        what: String,
        expected_len: u64,
        expected_crc: Option<u32>,
    ) -> Self {
        Self {
            inner,
            what,
            expected_len,
            expected_crc,
            hasher: crc32fast::Hasher::new(),
            seen: 0,
        }
    }

    fn invalid(&self, message: String) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {message}", self.what),
        )
    }

    /// Checks the stream as it ends.
    fn check_end(&self) -> io::Result<()> {
        if self.seen != self.expected_len {
            return Err(self.invalid(format!(
                "ended after {} of {} bytes (truncated or damaged)",
                self.seen, self.expected_len
            )));
        }
        match self.expected_crc {
            Some(expected) if self.hasher.clone().finalize() != expected => {
                Err(self.invalid(format!(
                    "CRC-32 {:08x} does not match the archive's {expected:08x}",
                    self.hasher.clone().finalize()
                )))
            }
            _ => Ok(()),
        }
    }
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self
            .inner
            .read(buf)
            .map_err(|error| io::Error::new(error.kind(), format!("{}: {error}", self.what)))?;
        if read == 0 && !buf.is_empty() {
            self.check_end()?;
            return Ok(0);
        }
        self.hasher.update(&buf[..read]);
        self.seen += read as u64;
        if self.seen > self.expected_len {
            return Err(self.invalid(format!(
                "holds more than the {} bytes its archive records",
                self.expected_len
            )));
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &'static [u8], len: u64, crc: Option<u32>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Checked::new(data, "m".to_owned(), len, crc).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn a_stream_of_the_promised_length_and_crc_passes_through() {
        // CRC-32 of `123456789` is cbf43926 (the standard check value).
        assert_eq!(
            read_all(b"123456789", 9, Some(0xcbf4_3926)).expect("reads"),
            b"123456789"
        );
        assert_eq!(read_all(b"abc", 3, None).expect("reads"), b"abc");
    }

    #[test]
    fn short_long_or_altered_streams_fail() {
        let short = read_all(b"12345678", 9, None).expect_err("should fail");
        assert_eq!(
            short.to_string(),
            "m: ended after 8 of 9 bytes (truncated or damaged)"
        );
        let long = read_all(b"1234567890", 9, None).expect_err("should fail");
        assert_eq!(
            long.to_string(),
            "m: holds more than the 9 bytes its archive records"
        );
        let altered = read_all(b"123456780", 9, Some(0xcbf4_3926)).expect_err("should fail");
        assert!(altered
            .to_string()
            .contains("does not match the archive's cbf43926"));
        assert_eq!(altered.kind(), io::ErrorKind::InvalidData);
    }
}
