//! File readers: market recordings and workload traces turned into source events.
//!
//! Consumes a file path and, optionally, its [`Format`] (detected from the first bytes when not
//! given). Produces a [`Reader`], an iterator of [`SourceEvent`]s in file order; a row that cannot
//! be read becomes a [`RowError`] (line, reason, raw bytes) and the iteration goes on with the next
//! row, so the caller can dead-letter it. Problems with the file as a whole (missing, empty,
//! unknown format, an archive without the expected member) are an [`Error`] from [`open`].
//!
//! Readers stream: the CSV formats go through the `csv` crate (`records.rs` states the dialect)
//! and hold one record at a time in a reused `csv::ByteRecord`, never the whole file; the NASA
//! counts are a token stream. They keep no state besides `csv`'s position and a few cached
//! strings, and they do not sort: events come out in file order, and times are whatever the file
//! says.
//!
//! | format | detected by | maps to |
//! | --- | --- | --- |
//! | `tardis-trades` | header `exchange,symbol,timestamp,local_timestamp,id,side,price,amount` | `Trade`: venue = exchange, exchange time (µs), side buy/sell |
//! | `tardis-quotes` | header `exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount` | `Quote` at exchange time |
//! | `lean-trades` | zip magic `PK\x03\x04` holding a headerless 6-column CSV (or that CSV bare) | `Trade`: New York ms since midnight to UTC, price × 1e-4, side unknown, venue = exchange code; suspicious rows dead-lettered |
//! | `bars` | header `timestamp,open,high,low,close[,volume]` | `Bar`: interval = modal gap of the first rows (60 s default), symbol from the file name |
//! | `vix` | header `DATE,OPEN,HIGH,LOW,CLOSE` | `Context` (`VolatilityIndex`, `VIX`, close) at 16:15 New York on the date |
//! | `row-trace` | header starting `cpu_util_percent` (Alibaba, 30 s) or `avg_cpu` (Google, 300 s) | `Workload` at row × step from 0 |
//! | `timed-trace` | header starting `timestamp,` that is not a bar header (Azure) | `Workload` at the `timestamp` column (seconds from start) |
//! | `bitbrains` | header starting `Timestamp [ms];` (`;`+tab separated) | `Workload` at epoch seconds; load = CPU MHz |
//! | `nasa-counts` | bzip2 magic `BZh`, a tar holding one line of space-separated counts | `Workload`: count i at 1995-07-01T04:00:00Z + i s |
//!
//! What `load` means for each trace is written on [`traces`] and [`nasa`]. Workload events leave
//! `service` empty for the caller to fill in and set `source` to the file name.
//!
//! Caveats: fields are split on the delimiter with CSV quoting off (no supported format quotes,
//! and a stray `"` must not swallow the rows after it), and trimmed of ASCII whitespace; a row's
//! [`RowError::raw`] is its fields joined by the delimiter, not the exact bytes; blank lines are
//! skipped and do not count as rows (a row-indexed trace's clock ignores them);
//! market rows dated before 1970-01-01, and any absolute time later than the wall clock at
//! opening plus one day, are refused as implausible (row-indexed trace clocks are not checked);
//! a read error in the middle of a file (IO, damaged compressed data, a CRC or size mismatch, a
//! truncated archive) is returned once as a [`RowError`] with `fatal` set, and ends the reader.

mod bars;
mod checked;
mod detect;
mod fields;
mod lean;
pub mod nasa;
mod records;
mod tardis;
pub mod traces;
mod vix;

use std::fmt;
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::events::{Bar, DeadLetter, MarketContext, PodMetrics, QuoteTick, TradeTick};

pub use bars::symbol_from_file_name;

/// One event read from a file, before it is published on its topic.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceEvent {
    Trade(TradeTick),
    Quote(QuoteTick),
    Bar(Bar),
    Context(MarketContext),
    Workload(PodMetrics),
}

impl SourceEvent {
    /// Returns the event time in µs since the epoch (relative to 0 for row-indexed traces).
    pub fn ts_us(&self) -> i64 {
        match self {
            SourceEvent::Trade(e) => e.ts_us,
            SourceEvent::Quote(e) => e.ts_us,
            SourceEvent::Bar(e) => e.ts_us,
            SourceEvent::Context(e) => e.ts_us,
            SourceEvent::Workload(e) => e.ts_us,
        }
    }
}

/// The file formats tickscale reads; see the table in the module docs.
///
/// Its `--format` names, its serde form and [`Format::name`] are the same kebab-case words.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    TardisTrades,
    TardisQuotes,
    LeanTrades,
    Bars,
    Vix,
    RowTrace,
    TimedTrace,
    Bitbrains,
    NasaCounts,
}

impl Format {
    /// Every format, in the order of the module docs' table.
    pub const ALL: [Format; 9] = [
        Format::TardisTrades,
        Format::TardisQuotes,
        Format::LeanTrades,
        Format::Bars,
        Format::Vix,
        Format::RowTrace,
        Format::TimedTrace,
        Format::Bitbrains,
        Format::NasaCounts,
    ];

    /// Returns the kebab-case name that `--format` and [`FromStr`] accept.
    pub fn name(self) -> &'static str {
        match self {
            Format::TardisTrades => "tardis-trades",
            Format::TardisQuotes => "tardis-quotes",
            Format::LeanTrades => "lean-trades",
            Format::Bars => "bars",
            Format::Vix => "vix",
            Format::RowTrace => "row-trace",
            Format::TimedTrace => "timed-trace",
            Format::Bitbrains => "bitbrains",
            Format::NasaCounts => "nasa-counts",
        }
    }

    /// Returns the header the format expects, as an [`Error::Header`] states it.
    pub(crate) fn expected_header(self) -> &'static str {
        match self {
            Format::TardisTrades => "`exchange,symbol,timestamp,local_timestamp,id,side,price,amount`",
            Format::TardisQuotes => {
                "`exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount`"
            }
            Format::LeanTrades => "a zip holding one headerless trade-tick CSV",
            Format::Bars => "`timestamp,open,high,low,close[,volume]`",
            Format::Vix => "`DATE,OPEN,HIGH,LOW,CLOSE`",
            Format::RowTrace => {
                "column names, the load first, such as `cpu_util_percent,mem_util_percent,…`"
            }
            Format::TimedTrace => "`timestamp,<load>[,…]` that is not a bar header",
            Format::Bitbrains => {
                "`Timestamp [ms]`, `CPU usage [MHZ]`, `CPU usage [%]`, `Memory usage [KB]` and \
                 `Memory capacity provisioned [KB]` separated by `;`"
            }
            Format::NasaCounts => "a bzip2 tar holding one file of counts",
        }
    }

    /// Returns whether the format is a workload trace (row-trace, timed-trace, bitbrains,
    /// nasa-counts) rather than market data.
    pub fn is_workload(self) -> bool {
        matches!(
            self,
            Format::RowTrace | Format::TimedTrace | Format::Bitbrains | Format::NasaCounts
        )
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|format| format.name() == name)
            .ok_or_else(|| Error::UnknownFormatName {
                name: name.to_owned(),
            })
    }
}

fn format_names() -> String {
    Format::ALL.map(Format::name).join(", ")
}

/// A row that could not be read.
///
/// When [`RowError::fatal`] is false the row alone is bad and the reader goes on with the next
/// one. When it is true the file itself could not be read on (an IO error, damaged compressed
/// data, a CRC or size mismatch, a truncated archive): the reader ends after it, and the rows
/// that were not read are lost, so the caller should stop rather than carry on as if the file
/// had ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct RowError {
    /// The 1-based line number in the file (the 1-based count number for `nasa-counts`).
    pub line: u64,
    /// Why the row was refused, such as `non-positive price 0`.
    pub reason: String,
    /// The row's fields joined by the format's delimiter (the token for `nasa-counts`).
    ///
    /// `csv` hands over fields, not the line, so this is the line as written only up to
    /// whitespace around fields (trimmed) and the line ending (dropped): `1;\t2` comes back as
    /// `1;2`. Empty when the row could not be read at all. Cut to [`RAW_LIMIT`] bytes, and
    /// then the reason says so.
    pub raw: Vec<u8>,
    /// Whether the file could not be read past this point (see the type's docs).
    pub fatal: bool,
}

/// The most bytes of a refused row kept in [`RowError::raw`] (64 KiB).
pub const RAW_LIMIT: usize = 64 * 1024;

impl RowError {
    /// Returns the error of a bad row (not fatal), its `raw` cut to [`RAW_LIMIT`] bytes.
    ///
    /// When `raw` is cut, the reason ends `(row cut to 65,536 bytes)`.
    pub(crate) fn bad_row(line: u64, mut reason: String, mut raw: Vec<u8>) -> Self {
        if raw.len() > RAW_LIMIT {
            raw.truncate(RAW_LIMIT);
            raw.shrink_to_fit();
            reason.push_str(" (row cut to 65,536 bytes)");
        }
        Self {
            line,
            reason,
            raw,
            fatal: false,
        }
    }

    /// Returns the fatal error of a read that failed at `line`: the file cannot be read on.
    pub(crate) fn unreadable(line: u64, error: &std::io::Error) -> Self {
        Self {
            line,
            reason: format!("failed to read: {error}"),
            raw: Vec::new(),
            fatal: true,
        }
    }

    /// Returns the dead letter for this row of the file at `source`.
    pub fn to_dead_letter(&self, source: &str) -> DeadLetter {
        DeadLetter {
            source: source.to_owned(),
            partition: -1,
            offset: i64::try_from(self.line).unwrap_or(i64::MAX),
            reason: self.reason.clone(),
            payload: self.raw.clone(),
        }
    }
}

/// Why a file could not be opened for reading.
///
/// Only [`Error::Open`] and [`Error::Read`] can go away on a retry (a file system at fault); the
/// others describe the file, which needs fixing or another `--format`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened.
    #[error("failed to open {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Reading the beginning of the file failed.
    #[error("failed to read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file holds nothing to read.
    #[error("{} is empty", path.display())]
    Empty { path: PathBuf },
    /// Detection found no format whose signature matches the first bytes.
    #[error(
        "{} matches no known format: saw {seen}; expected one of {}; give --format",
        path.display(),
        format_names()
    )]
    UnknownFormat { path: PathBuf, seen: String },
    /// The header does not fit the format that was asked for.
    #[error("{} is not {format}: saw header `{seen}`; expected {expected}", path.display())]
    Header {
        path: PathBuf,
        format: Format,
        seen: String,
        expected: String,
    },
    /// An archive does not hold what the format needs.
    #[error("{} holds {found}; expected {expected}", path.display())]
    Archive {
        path: PathBuf,
        found: String,
        expected: String,
    },
    /// The zip archive's directory could not be read.
    #[error("failed to read the zip archive {}", path.display())]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    /// A format name that is not one of [`Format::name`]'s.
    #[error("unknown format `{name}`: expected one of {}", format_names())]
    UnknownFormatName { name: String },
}

/// An open file read as a stream of source events.
pub struct Reader {
    format: Format,
    path: PathBuf,
    rows: Box<dyn Iterator<Item = Result<SourceEvent, RowError>> + Send>,
}

impl Reader {
    /// Returns the format the file is read as.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Returns the path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Iterator for Reader {
    type Item = Result<SourceEvent, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rows.next()
    }
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("format", &self.format)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Opens `path` as `format`, or as the format detected from its first bytes when `None`.
///
/// # Errors
/// Returns [`Error::Open`] when the file cannot be opened, [`Error::Empty`] for an empty file,
/// [`Error::UnknownFormat`] when detection fails (naming what it saw), [`Error::Header`] when the
/// header does not fit the given format, and [`Error::Archive`] or [`Error::Zip`] for an archive
/// without the expected member.
pub fn open(path: &Path, format: Option<Format>) -> Result<Reader, Error> {
    let format = match format {
        Some(format) => format,
        None => detect::detect(path)?,
    };
    let rows: Box<dyn Iterator<Item = Result<SourceEvent, RowError>> + Send> = match format {
        Format::TardisTrades => Box::new(tardis::open_trades(path)?),
        Format::TardisQuotes => Box::new(tardis::open_quotes(path)?),
        Format::LeanTrades => Box::new(lean::open(path)?),
        Format::Bars => Box::new(bars::open(path)?),
        Format::Vix => Box::new(vix::open(path)?),
        Format::RowTrace => Box::new(traces::open_row_trace(path)?),
        Format::TimedTrace => Box::new(traces::open_timed_trace(path)?),
        Format::Bitbrains => Box::new(traces::open_bitbrains(path)?),
        Format::NasaCounts => Box::new(nasa::open(path)?),
    };
    Ok(Reader {
        format,
        path: path.to_owned(),
        rows,
    })
}

/// Turns one CSV record of a text format into an event, or into the reason it cannot be one.
pub(crate) trait RowParser: Send {
    /// Parses `record`, the `row`-th (0-based) non-blank record after the header.
    fn parse(&mut self, record: &csv::ByteRecord, row: u64) -> Result<SourceEvent, String>;

    /// Returns the bounds the parsed events' times must keep: market data's unless overridden.
    fn time_bounds(&self) -> fields::TimeBounds {
        fields::TimeBounds::Market
    }
}

/// The iterator of a CSV format: each non-blank record after the header through a parser.
pub(crate) struct Rows<P> {
    records: records::RecordSource,
    record: csv::ByteRecord,
    parser: P,
    row: u64,
    /// Set after a fatal error: the iterator ends.
    failed: bool,
    /// The latest plausible event time, read from the clock at opening.
    latest_us: i64,
}

impl<P: RowParser> Rows<P> {
    pub(crate) fn new(records: records::RecordSource, parser: P) -> Self {
        Self {
            records,
            record: csv::ByteRecord::new(),
            parser,
            row: 0,
            failed: false,
            latest_us: fields::latest_plausible_us(),
        }
    }
}

impl<P: RowParser> Iterator for Rows<P> {
    type Item = Result<SourceEvent, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next_line = self.records.next_line();
        match self.records.next_record(&mut self.record)? {
            Ok(line) => {
                let row = self.row;
                self.row += 1;
                let bounds = self.parser.time_bounds();
                let parsed = self.parser.parse(&self.record, row).and_then(|event| {
                    fields::check_time(event.ts_us(), bounds, self.latest_us).map(|()| event)
                });
                Some(parsed.map_err(|reason| {
                    RowError::bad_row(
                        line,
                        reason,
                        records::joined(&self.record, self.records.delimiter()),
                    )
                }))
            }
            Err(error) => {
                self.failed = true;
                Some(Err(RowError::unreadable(next_line, &error)))
            }
        }
    }
}

/// Opens a file for buffered reading, naming the path on failure.
pub(crate) fn open_file(path: &Path) -> Result<File, Error> {
    File::open(path).map_err(|source| Error::Open {
        path: path.to_owned(),
        source,
    })
}

/// Opens a CSV file of `format` split on `delimiter`, trimmed as `trim` says, and reads its
/// header (the first non-blank record).
///
/// Returns the header's columns and the header as it should appear in an error message (its
/// fields joined by the delimiter). The caller checks the columns.
///
/// # Errors
/// Returns [`Error::Open`], [`Error::Read`], or [`Error::Empty`] when there is no header, and
/// [`Error::Header`] for binary content: a zip, bzip2 or gzip magic, or a header holding control
/// characters other than tab.
pub(crate) fn open_with_header(
    path: &Path,
    format: Format,
    delimiter: u8,
    trim: csv::Trim,
) -> Result<(records::RecordSource, Vec<String>, String), Error> {
    let mut file = open_file(path)?;
    let mut magic = Vec::with_capacity(4);
    std::io::Read::by_ref(&mut file)
        .take(4)
        .read_to_end(&mut magic)
        .map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
    let reader = std::io::Cursor::new(magic.clone()).chain(file);
    let mut source = records::RecordSource::new(Box::new(reader), delimiter, trim);
    let mut header = csv::ByteRecord::new();
    match source.next_record(&mut header) {
        Some(Ok(_)) => {}
        Some(Err(source)) => {
            return Err(Error::Read {
                path: path.to_owned(),
                source,
            })
        }
        None => {
            return Err(Error::Empty {
                path: path.to_owned(),
            })
        }
    }
    let joined = records::joined(&header, delimiter);
    let seen = shown(&joined);
    if is_binary(&magic, &joined) {
        return Err(Error::Header {
            path: path.to_owned(),
            format,
            seen,
            expected: format.expected_header().to_owned(),
        });
    }
    Ok((source, records::columns(&header), seen))
}

/// Returns whether a file is binary: by its first bytes (zip, bzip2, gzip) or a control
/// character other than tab in its header.
fn is_binary(magic: &[u8], header: &[u8]) -> bool {
    let archive = magic.starts_with(b"PK\x03\x04")
        || magic.starts_with(b"BZh")
        || magic.starts_with(b"\x1f\x8b");
    archive
        || header
            .iter()
            .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

/// Returns a header line as it should appear in an error message: escaped and cut at 200 bytes.
pub(crate) fn shown(line: &[u8]) -> String {
    let cut = &line[..line.len().min(200)];
    let mut text = cut.escape_ascii().to_string();
    if cut.len() < line.len() {
        text.push('…');
    }
    text
}

/// Returns the file name of `path` as the `source` of workload events.
pub(crate) fn source_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests;
