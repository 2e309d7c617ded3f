//! The NASA-KSC web server trace: requests per second, July and August 1995.
//!
//! Consumes a bzip2-compressed tar holding one file, itself one line of whitespace-separated
//! counts (5,059,950 of them). Produces one `PodMetrics` per count with `load` = the requests in
//! that second, no CPU or memory figures, and `source` = the file name. Count i (from 0) is
//! stamped [`START_US`] + i s: the log starts 1995-07-01 00:00 at −04:00 (EDT).
//!
//! Caveat: time is the count's position, not a calendar. 28–31 July are absent from the source,
//! so August follows straight after 27 July and every August time comes out four days early;
//! the 1–3 August outage is there as zeros. The reader says nothing about the gap because the
//! file does not mark it.
//!
//! The file is streamed token by token: bzip2 and tar are decoded on the fly, one buffer at a
//! time. A token that is not a whole number is refused; its `line` in [`RowError`] is the
//! token's 1-based position. The tar layer is walked by hand (512-byte headers), so members
//! before the first regular file (directories, pax headers) are skipped.
//!
//! Opening walks the whole archive once before reading (about a second for the 1.2 MB NASA
//! file), because a tar only shows its second file after the first: a tar of more than one
//! regular file is refused at [`open`] with the files named, and so is a damaged or truncated
//! archive. While reading, the member is checked to give the size its tar header records (bzip2
//! checks its own CRCs), and a bzip2 error or a short member is a fatal [`RowError`].

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use bzip2::read::BzDecoder;

use super::checked::Checked;
use super::fields::{check_time, latest_plausible_us, TimeBounds};
use super::{open_file, source_name, Error, RowError, SourceEvent};
use crate::events::PodMetrics;

/// 1995-07-01T04:00:00Z (midnight EDT) in µs since the epoch: the time of the first count.
pub const START_US: i64 = 804_571_200_000_000;

const TAR_BLOCK: usize = 512;

/// The most file names an error lists.
const NAMES_SHOWN: usize = 5;

/// The member stream: decoded bzip2, cut to the member and checked against its size.
type Member = BufReader<Checked<io::Take<BzDecoder<std::fs::File>>>>;

/// Opens the trace and positions it at the first count.
///
/// # Errors
/// Returns [`Error::Archive`] when the archive is damaged, truncated, or holds other than one
/// regular file (the error names them).
pub(super) fn open(path: &Path) -> Result<Counts, Error> {
    let files = regular_files(path)?;
    if files.len() > 1 {
        let mut names: Vec<&str> = files.iter().take(NAMES_SHOWN).map(String::as_str).collect();
        if files.len() > NAMES_SHOWN {
            names.push("…");
        }
        return Err(archive_error(
            path,
            format!("{} files ({})", files.len(), names.join(", ")),
        ));
    }
    let reader = open_member(path)?;
    Ok(Counts {
        reader,
        token: Vec::with_capacity(16),
        index: 0,
        source: source_name(path),
        failed: false,
        latest_us: latest_plausible_us(),
    })
}

/// Returns whether the file is a bzip2 tar whose first file starts with a count.
pub(super) fn looks_like_counts(path: &Path) -> Result<bool, Error> {
    let mut reader = open_member(path)?;
    let head = reader.fill_buf().map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let start = head.trim_ascii_start();
    Ok(start.first().is_some_and(u8::is_ascii_digit))
}

fn archive_error(path: &Path, found: String) -> Error {
    Error::Archive {
        path: path.to_owned(),
        found,
        expected: "a tar with one file of space-separated counts".to_owned(),
    }
}

/// Returns the names of the regular files in the bzip2 tar at `path`, reading it to its end.
fn regular_files(path: &Path) -> Result<Vec<String>, Error> {
    let mut decoder = BzDecoder::new(open_file(path)?);
    let mut files = Vec::new();
    loop {
        let mut block = [0u8; TAR_BLOCK];
        let read = read_up_to(&mut decoder, &mut block)
            .map_err(|error| archive_error(path, format!("damaged bzip2 data ({error})")))?;
        // A tar ends with zero blocks; one that simply stops at a block boundary ends too.
        if read == 0 || (read == TAR_BLOCK && block.iter().all(|b| *b == 0)) {
            return Ok(files);
        }
        if read < TAR_BLOCK {
            return Err(archive_error(path, "a truncated tar header".to_owned()));
        }
        let header = tar::Header::from_byte_slice(&block);
        let size = header
            .entry_size()
            .map_err(|error| archive_error(path, format!("a bad tar header ({error})")))?;
        if header.entry_type().is_file() {
            files.push(String::from_utf8_lossy(&header.path_bytes()).into_owned());
        }
        let padded = size.div_ceil(TAR_BLOCK as u64) * TAR_BLOCK as u64;
        let skipped = io::copy(&mut (&mut decoder).take(padded), &mut io::sink())
            .map_err(|error| archive_error(path, format!("damaged bzip2 data ({error})")))?;
        if skipped < padded {
            return Err(archive_error(
                path,
                format!("a truncated member ({skipped} of {padded} bytes)"),
            ));
        }
    }
}

/// Reads until `block` is full or the stream ends; returns the bytes read.
fn read_up_to(reader: &mut impl Read, block: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < block.len() {
        match reader.read(&mut block[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// Opens the first regular file of the bzip2 tar at `path` as a buffered stream.
fn open_member(path: &Path) -> Result<Member, Error> {
    let archive_error = |found: String| archive_error(path, found);
    let mut decoder = BzDecoder::new(open_file(path)?);
    loop {
        let mut block = [0u8; TAR_BLOCK];
        if let Err(error) = decoder.read_exact(&mut block) {
            return Err(archive_error(format!("no readable tar header ({error})")));
        }
        if block.iter().all(|b| *b == 0) {
            return Err(archive_error("no regular file".to_owned()));
        }
        let header = tar::Header::from_byte_slice(&block);
        if header.as_ustar().is_none() && header.as_gnu().is_none() {
            return Err(archive_error(
                "bzip2 data that is not a tar archive".to_owned(),
            ));
        }
        let size = header
            .entry_size()
            .map_err(|error| archive_error(format!("a bad tar header ({error})")))?;

        if header.entry_type().is_file() {
            let what = format!(
                "tar member {}",
                String::from_utf8_lossy(&header.path_bytes())
            );
            let checked = Checked::new(decoder.take(size), what, size, None);
            return Ok(BufReader::with_capacity(1 << 16, checked));
        }
        // Skip the member's data, padded to whole blocks.
        let padded = size.div_ceil(TAR_BLOCK as u64) * TAR_BLOCK as u64;
        io::copy(&mut (&mut decoder).take(padded), &mut io::sink())
            .map_err(|error| archive_error(format!("a truncated member ({error})")))?;
    }
}

/// The stream of counts, one workload sample per token.
pub struct Counts {
    reader: Member,
    token: Vec<u8>,
    index: u64,
    source: String,
    failed: bool,
    /// The latest plausible time (the clock at opening plus a day); see [`check_time`].
    latest_us: i64,
}

impl Counts {
    /// Reads the next whitespace-separated token into `self.token`; empty at the end.
    fn read_token(&mut self) -> io::Result<()> {
        self.token.clear();
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Ok(());
            }
            let skip = if self.token.is_empty() {
                buf.iter().take_while(|b| b.is_ascii_whitespace()).count()
            } else {
                0
            };
            let rest = &buf[skip..];
            let length = rest.iter().take_while(|b| !b.is_ascii_whitespace()).count();
            self.token.extend_from_slice(&rest[..length]);
            let ended = length < rest.len();
            self.reader.consume(skip + length);
            if ended && !self.token.is_empty() {
                return Ok(());
            }
        }
    }

    fn sample(&self, position: u64) -> Result<SourceEvent, String> {
        let count = super::fields::parse_i64(&self.token, "count")?;
        if count < 0 {
            return Err(format!("negative count {count}"));
        }
        let offset_us = i64::try_from(position)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000);
        let ts_us = START_US.saturating_add(offset_us);
        check_time(ts_us, TimeBounds::UpperOnly, self.latest_us)?;
        Ok(SourceEvent::Workload(PodMetrics {
            service: String::new(),
            ts_us,
            load: count as f64,
            cpu_percent: None,
            memory_percent: None,
            source: self.source.clone(),
        }))
    }
}

impl Iterator for Counts {
    type Item = Result<SourceEvent, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let position = self.index;
        self.index += 1;
        if let Err(error) = self.read_token() {
            self.failed = true;
            return Some(Err(RowError::unreadable(self.index, &error)));
        }
        if self.token.is_empty() {
            return None;
        }

        Some(
            self.sample(position)
                .map_err(|reason| RowError::bad_row(self.index, reason, self.token.clone())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::{open, Format, SourceEvent};
    use super::*;
    use crate::data::shared_data_file;
    use std::io::Write;

    /// Writes `content` as the one file of a bzip2 tar, after a directory entry.
    fn bzip2_tar(content: &[u8]) -> tempfile::NamedTempFile {
        bzip2_tar_of(&[("data/workload.txt", content)])
    }

    /// Writes `files` into a bzip2 tar, after a directory entry.
    fn bzip2_tar_of(files: &[(&str, &[u8])]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("creates a temp file");
        let encoder = bzip2::write::BzEncoder::new(
            file.reopen().expect("creates a temp file"),
            bzip2::Compression::fast(),
        );
        let mut builder = tar::Builder::new(encoder);
        let mut dir = tar::Header::new_ustar();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_size(0);
        dir.set_cksum();
        builder
            .append_data(&mut dir, "data/", io::empty())
            .expect("builds the archive");
        for (name, content) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(content.len() as u64);
            header.set_cksum();
            builder
                .append_data(&mut header, name, *content)
                .expect("writes the temp file");
        }
        builder
            .into_inner()
            .expect("ends the tar")
            .finish()
            .expect("ends the bzip2 stream")
            .flush()
            .expect("writes the temp file");
        file
    }

    #[test]
    fn nasa_trace_reads_5059950_counts_one_second_apart_from_midnight_edt() {
        let path = shared_data_file("workload/nasa-http-1995-requests-per-second.tbz2");
        let reader = open(&path, Some(Format::NasaCounts)).expect("opens the file");
        let (mut count, mut total, mut first, mut last) = (0u64, 0.0, Vec::new(), None);
        for item in reader {
            let SourceEvent::Workload(sample) = item.expect("every count reads") else {
                panic!("not a workload sample");
            };
            if first.len() < 5 {
                first.push(sample.load);
            }
            assert_eq!(sample.ts_us, START_US + count as i64 * 1_000_000);
            count += 1;
            total += sample.load;
            last = Some(sample);
        }

        assert_eq!(count, 5_059_950);
        // `tar -xjOf … | head -c 10` shows `1 0 0 0 0 `; the line ends `… 0 3 0 0 1 0 2 0 3 0 0 2 `.
        assert_eq!(first, [1.0, 0.0, 0.0, 0.0, 0.0]);
        let last = last.expect("a last count");
        assert_eq!(
            (last.load, last.ts_us),
            (2.0, START_US + 5_059_949 * 1_000_000)
        );
        // The sum of all tokens, by `tr ' ' '\n' | awk '{s+=$1} END {print s}'`.
        assert_eq!(total, 3_461_610.0);
    }

    #[test]
    fn start_is_midnight_edt_on_1_july_1995() {
        // `date -u -d '1995-07-01 04:00' +%s` prints 804571200.
        assert_eq!(START_US, 804_571_200 * 1_000_000);
    }

    #[test]
    fn bad_counts_are_refused_by_position_and_reading_goes_on() {
        let file = bzip2_tar(b"3 x 4\n\n-2 7 ");
        let items: Vec<_> = open(file.path(), None).expect("opens the file").collect();
        let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 4]);
        assert_eq!(errors[0].raw, b"x");
        assert_eq!(errors[1].reason, "negative count -2");
        let Some(Ok(SourceEvent::Workload(last))) = items.last() else {
            panic!("last count should read");
        };
        assert_eq!((last.load, last.ts_us), (7.0, START_US + 4_000_000));
    }

    #[test]
    fn a_tar_of_two_files_is_refused_at_open_naming_them() {
        let file = bzip2_tar_of(&[("data/a.txt", b"1 2"), ("data/b.txt", b"3 4")]);
        let error = open(file.path(), Some(Format::NasaCounts))
            .expect_err("should fail")
            .to_string();
        assert!(
            error.ends_with(
                "holds 2 files (data/a.txt, data/b.txt); expected a tar with one file of \
                 space-separated counts"
            ),
            "{error}"
        );
    }

    /// Counts of a pseudo-random walk: 1.3 MB that bzip2 cannot shrink to nothing.
    fn many_counts() -> Vec<u8> {
        let mut text = Vec::new();
        let mut state: u64 = 12_345;
        for _ in 0..200_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            text.extend_from_slice(format!("{} ", state >> 44).as_bytes());
        }
        text
    }

    #[test]
    fn a_truncated_bzip2_file_is_refused_at_open_and_is_fatal_while_streaming() {
        let file = bzip2_tar(&many_counts());
        let length = file.as_file().metadata().expect("has a size").len();
        file.as_file()
            .set_len(length / 2)
            .expect("truncates the temp file");
        let error = open(file.path(), Some(Format::NasaCounts)).expect_err("should fail");
        assert!(matches!(error, Error::Archive { .. }), "{error:?}");

        // Read past the open-time walk, the stream itself ends in one fatal error.
        let counts = Counts {
            reader: open_member(file.path()).expect("the first header is intact"),
            token: Vec::new(),
            index: 0,
            source: String::new(),
            failed: false,
            latest_us: i64::MAX,
        };
        let items: Vec<_> = counts.collect();
        let read = items.iter().filter(|i| i.is_ok()).count();
        assert!(read > 1_000 && read < 200_000, "{read}");
        let last = items.last().expect("an item").as_ref().expect_err("fails");
        assert!(last.fatal, "{last:?}");
        assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1);
    }
}
