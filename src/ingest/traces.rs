//! Workload traces in CSV: row-indexed, timestamped, and Bitbrains.
//!
//! Consumes one sample per row and produces `PodMetrics` with an empty `service` (the caller
//! names the service the trace drives) and `source` = the file name. What `load` is, per trace:
//!
//! | trace | time | `load` | `cpu_percent` | `memory_percent` |
//! | --- | --- | --- | --- | --- |
//! | Alibaba 2018 (`cpu_util_percent,mem_util_percent,…`) | row × 30 s | `cpu_util_percent`, fleet-average CPU % | the same | `mem_util_percent` |
//! | Google 2019 (`avg_cpu,avg_mem,…`) | row × 300 s | `avg_cpu`, cell-average CPU in normalised cores per instance | `avg_cpu` × 100 | `avg_mem` × 100 |
//! | other row trace | row × 60 s | the first column | none | none |
//! | Azure 2019 (`timestamp,cpu_usage,assigned_mem`) | `timestamp` | `cpu_usage`, CPU summed over all VMs | none | none |
//! | other timed trace (`timestamp,<load>,…`) | `timestamp` | the second column | none | none |
//! | Bitbrains GWA-T-12 | `Timestamp [ms]` | `CPU usage [MHZ]` | `CPU usage [%]` | memory usage / provisioned × 100 |
//!
//! Row-indexed traces start at 0 (the driver shifts them onto its clock); the step comes from a
//! recognised header, and unknown row traces get 60 s, which is a guess to be overridden by
//! knowing the trace. A refused row still takes its place in the row count, so later rows keep
//! their times. Time columns are seconds, ms or µs judged by magnitude (below 1e11 is seconds):
//! Bitbrains' header says ms but the values are epoch seconds, Azure's are seconds from start.
//!
//! Refused rows: wrong column count, an unparsable or negative number.

use std::path::Path;

use csv::{ByteRecord, Trim};

use super::fields::{parse_f64, parse_non_negative, time_to_us, TimeBounds};
use super::{open_with_header, source_name, Error, Format, RowParser, Rows, SourceEvent};
use crate::events::PodMetrics;

/// The first header column of the Alibaba 2018 aggregate (a row every 30 s).
pub const ALIBABA_FIRST_COLUMN: &str = "cpu_util_percent";
/// The first header column of the Google 2019 aggregate (a row every 300 s).
pub const GOOGLE_FIRST_COLUMN: &str = "avg_cpu";
/// The step of a row-indexed trace whose header is not recognised.
pub const DEFAULT_ROW_STEP_S: i64 = 60;

/// Where a trace row's time comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Clock {
    /// Row number × step, from 0.
    Rows { step_us: i64 },
    /// A time column.
    Column(usize),
}

/// How a trace row's memory percentage is found.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Memory {
    None,
    /// A column times a scale.
    Column(usize, f64),
    /// Used over provisioned, in percent.
    Ratio {
        used: usize,
        provisioned: usize,
    },
}

/// Where each field of a trace row sits; built from the header.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TraceParser {
    width: usize,
    clock: Clock,
    load: usize,
    cpu: Option<(usize, f64)>,
    memory: Memory,
    source: String,
}

/// Returns whether the header is a row-indexed trace's that detection recognises.
pub(super) fn is_row_trace_header(columns: &[String]) -> bool {
    columns
        .first()
        .is_some_and(|c| c == ALIBABA_FIRST_COLUMN || c == GOOGLE_FIRST_COLUMN)
}

/// Returns whether the header is a timestamped trace's (`timestamp` and at least a load column)
/// and not a bar file's.
pub(super) fn is_timed_trace_header(columns: &[String]) -> bool {
    columns.len() >= 2 && columns[0] == "timestamp" && super::bars::header_volume(columns).is_none()
}

/// Returns whether the header can be a row-indexed trace's, given as `--format row-trace`: every
/// column a name (a letter or `_` first; letters, digits, space and `_.-%[]()/` after) and the
/// header not another format's.
pub(super) fn is_any_row_trace_header(columns: &[String]) -> bool {
    let is_name = |column: &String| {
        column
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && column
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" _.-%[]()/".contains(&b))
    };
    let other = super::detect::from_columns(columns).is_some_and(|f| f != Format::RowTrace);
    !columns.is_empty() && columns.iter().all(is_name) && !other
}

/// Returns whether the header, split on `;`, is Bitbrains' (`Timestamp [ms]` first of several).
pub(super) fn is_bitbrains_header(columns: &[String]) -> bool {
    columns.len() > 1 && columns[0] == "Timestamp [ms]"
}

/// Opens a row-indexed trace (Alibaba, Google, or any header with the load first).
pub(super) fn open_row_trace(path: &Path) -> Result<Rows<TraceParser>, Error> {
    let (records, columns, seen) = open_with_header(path, Format::RowTrace, b',', Trim::All)?;
    if !is_any_row_trace_header(&columns) {
        return Err(header_error(path, Format::RowTrace, seen));
    }
    let step_s = match columns.first().map(String::as_str) {
        Some(ALIBABA_FIRST_COLUMN) => 30,
        Some(GOOGLE_FIRST_COLUMN) => 300,
        _ => DEFAULT_ROW_STEP_S,
    };
    let mut parser = TraceParser::new(path, columns.len(), 0);
    parser.clock = Clock::Rows {
        step_us: step_s * 1_000_000,
    };
    match columns.first().map(String::as_str) {
        Some(ALIBABA_FIRST_COLUMN) if columns.len() >= 2 => {
            parser.cpu = Some((0, 1.0));
            parser.memory = Memory::Column(1, 1.0);
        }
        Some(GOOGLE_FIRST_COLUMN) if columns.len() >= 2 => {
            parser.cpu = Some((0, 100.0));
            parser.memory = Memory::Column(1, 100.0);
        }
        _ => {}
    }
    Ok(Rows::new(records, parser))
}

/// Opens a timestamped trace: `timestamp` first, the load second.
pub(super) fn open_timed_trace(path: &Path) -> Result<Rows<TraceParser>, Error> {
    let (records, columns, seen) = open_with_header(path, Format::TimedTrace, b',', Trim::All)?;
    if !is_timed_trace_header(&columns) {
        return Err(header_error(path, Format::TimedTrace, seen));
    }
    let parser = TraceParser::new(path, columns.len(), 1);
    Ok(Rows::new(records, parser))
}

/// Opens a Bitbrains VM trace, finding its columns by name.
pub(super) fn open_bitbrains(path: &Path) -> Result<Rows<TraceParser>, Error> {
    let (records, columns, seen) = open_with_header(path, Format::Bitbrains, b';', Trim::All)?;
    let find = |name: &str| columns.iter().position(|c| c.eq_ignore_ascii_case(name));
    let found = (
        find("Timestamp [ms]"),
        find("CPU usage [MHZ]"),
        find("CPU usage [%]"),
        find("Memory usage [KB]"),
        find("Memory capacity provisioned [KB]"),
    );
    let (Some(time), Some(load), Some(cpu), Some(used), Some(provisioned)) = found else {
        return Err(header_error(path, Format::Bitbrains, seen));
    };

    let mut parser = TraceParser::new(path, columns.len(), load);
    parser.clock = Clock::Column(time);
    parser.cpu = Some((cpu, 1.0));
    parser.memory = Memory::Ratio { used, provisioned };
    Ok(Rows::new(records, parser))
}

fn header_error(path: &Path, format: Format, seen: String) -> Error {
    Error::Header {
        path: path.to_owned(),
        format,
        seen,
        expected: format.expected_header().to_owned(),
    }
}

impl TraceParser {
    /// Returns a parser of `width` columns with the load at `load` and time from column 0.
    fn new(path: &Path, width: usize, load: usize) -> Self {
        Self {
            width,
            clock: Clock::Column(0),
            load,
            cpu: None,
            memory: Memory::None,
            source: source_name(path),
        }
    }

    fn time_us(&self, fields: &ByteRecord, row: u64) -> Result<i64, String> {
        match self.clock {
            Clock::Rows { step_us } => Ok(i64::try_from(row).unwrap_or(i64::MAX) * step_us),
            Clock::Column(i) => Ok(time_to_us(parse_f64(&fields[i], "timestamp")?)),
        }
    }

    fn memory_percent(&self, fields: &ByteRecord) -> Result<Option<f64>, String> {
        Ok(match self.memory {
            Memory::None => None,
            Memory::Column(i, scale) => Some(parse_non_negative(&fields[i], "memory")? * scale),
            Memory::Ratio { used, provisioned } => {
                let used = parse_non_negative(&fields[used], "memory usage")?;
                let provisioned = parse_non_negative(&fields[provisioned], "memory provisioned")?;
                (provisioned > 0.0).then(|| used / provisioned * 100.0)
            }
        })
    }
}

impl RowParser for TraceParser {
    /// A time column (Bitbrains' epoch seconds, Azure's) gets the upper bound only: relative
    /// clocks start at 0. A row-indexed clock is not checked.
    fn time_bounds(&self) -> TimeBounds {
        match self.clock {
            Clock::Rows { .. } => TimeBounds::None,
            Clock::Column(_) => TimeBounds::UpperOnly,
        }
    }

    fn parse(&mut self, fields: &ByteRecord, row: u64) -> Result<SourceEvent, String> {
        // Every column index below was found in the header, so a row as wide reaches them all.
        if fields.len() != self.width {
            return Err(format!(
                "expected {} columns, found {}",
                self.width,
                fields.len()
            ));
        }

        let cpu_percent = match self.cpu {
            Some((i, scale)) => Some(parse_non_negative(&fields[i], "cpu")? * scale),
            None => None,
        };
        Ok(SourceEvent::Workload(PodMetrics {
            service: String::new(),
            ts_us: self.time_us(fields, row)?,
            load: parse_non_negative(&fields[self.load], "load")?,
            cpu_percent,
            memory_percent: self.memory_percent(fields)?,
            source: self.source.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{open, Format, SourceEvent};
    use crate::data::shared_data_file;
    use crate::events::PodMetrics;
    use std::io::Write;

    fn read_all(path: &std::path::Path, format: Format) -> Vec<PodMetrics> {
        open(path, Some(format))
            .expect("opens the file")
            .map(|item| match item.expect("every row reads") {
                SourceEvent::Workload(metrics) => metrics,
                other => panic!("not a workload sample: {other:?}"),
            })
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn alibaba_trace_reads_22415_rows_30_s_apart() {
        let name = "alibaba2018_machine_usage_days_1_to_8_grouped_30_seconds.csv";
        let samples = read_all(
            &shared_data_file(&format!("workload/{name}")),
            Format::RowTrace,
        );
        // `wc -l` counts 22 416 lines: the header and 22 415 rows.
        assert_eq!(samples.len(), 22_415);
        let (first, last) = (&samples[0], &samples[22_414]);
        assert_eq!((first.ts_us, first.load), (0, 16.126976521322472));
        assert_eq!(first.cpu_percent, Some(16.126976521322472));
        assert_eq!(first.memory_percent, Some(87.13895543842837));
        assert_eq!((first.service.as_str(), first.source.as_str()), ("", name));
        assert_eq!(
            (last.ts_us, last.load),
            (22_414 * 30_000_000, 36.48037924677377)
        );
    }

    #[test]
    fn google_trace_reads_8064_rows_300_s_apart_with_fractions_as_percent() {
        let path = "workload/google2019_instance_usage_grouped_300_seconds_month.csv";
        let samples = read_all(&shared_data_file(path), Format::RowTrace);
        assert_eq!(samples.len(), 8_064);
        let (first, last) = (&samples[0], &samples[8_063]);
        assert_eq!((first.ts_us, first.load), (0, 0.4416155843647663));
        assert!(close(
            first.cpu_percent.expect("a cpu figure"),
            44.16155843647663
        ));
        assert!(close(
            first.memory_percent.expect("a memory figure"),
            33.2384265123427
        ));
        // 8 063 steps of 300 s: 28 days less one step.
        assert_eq!(
            (last.ts_us, last.load),
            (8_063 * 300_000_000, 0.5210528948951924)
        );
    }

    #[test]
    fn azure_trace_reads_8640_rows_including_the_last_without_newline() {
        let path = "workload/azure_v2_vm_cpu_readings_month_aggregated_cpu_mem.csv";
        let samples = read_all(&shared_data_file(path), Format::TimedTrace);
        assert_eq!(samples.len(), 8_640);
        let (first, last) = (&samples[0], &samples[8_639]);
        assert_eq!(
            (first.ts_us, first.load, first.cpu_percent),
            (0, 6_135_515.87712279, None)
        );
        assert_eq!(
            (last.ts_us, last.load),
            (2_591_700_000_000, 5_892_026.249056151)
        );
    }

    #[test]
    fn bitbrains_trace_reads_8630_rows_with_epoch_seconds_and_memory_ratio() {
        let path = "workload/bitbrains-vm407-2013-07.csv";
        let samples = read_all(&shared_data_file(path), Format::Bitbrains);
        assert_eq!(samples.len(), 8_630);
        let (first, last) = (&samples[0], &samples[8_629]);
        // 1372629804 s is 2013-06-30T22:03:24Z: seconds, although the header says ms.
        assert_eq!(
            (first.ts_us, first.load),
            (1_372_629_804_000_000, 2126.399715594)
        );
        assert_eq!(first.cpu_percent, Some(88.6));
        assert!(close(
            first.memory_percent.expect("a memory figure"),
            548_054.133_333_333_3 / 3_143_680.0 * 100.0
        ));
        assert_eq!(
            (last.ts_us, last.load),
            (1_375_221_457_000_000, 1118.3998504140002)
        );
    }

    #[test]
    fn refused_trace_rows_keep_their_place_in_the_row_clock() {
        let mut file = tempfile::NamedTempFile::new().expect("creates a temp file");
        write!(
            file,
            "cpu_util_percent,mem_util_percent\n10,50\n-1,50\n11\nabc,50\n12,50"
        )
        .expect("writes the temp file");

        let items: Vec<_> = open(file.path(), None).expect("opens the file").collect();
        let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(errors[0].reason, "negative cpu -1");
        assert_eq!(errors[1].reason, "expected 2 columns, found 1");
        assert_eq!(errors[2].raw, b"abc,50");
        // The fifth row (index 4) is 4 × 30 s from the start.
        assert_eq!(
            items[4].as_ref().expect("the fifth row reads").ts_us(),
            120_000_000
        );
    }

    #[test]
    fn unknown_row_trace_defaults_to_a_60_s_step_on_the_first_column() {
        let mut file = tempfile::NamedTempFile::new().expect("creates a temp file");
        write!(file, "requests,errors\n5,0\n7,1\n").expect("writes the temp file");
        let samples = read_all(file.path(), Format::RowTrace);
        assert_eq!(
            samples
                .iter()
                .map(|s| (s.ts_us, s.load))
                .collect::<Vec<_>>(),
            [(0, 5.0), (60_000_000, 7.0)]
        );
    }
}
