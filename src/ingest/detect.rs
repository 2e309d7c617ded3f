//! Format detection from a file's first bytes, never from its name.
//!
//! Reads the first 8 KiB. A zip (`PK\x03\x04`) must hold a `.csv` member whose first line is a
//! Lean trade row; a bzip2 stream (`BZh`) must be a tar whose first file starts with a count.
//! Anything else is text and is judged by its first non-blank record, the header, as `csv`
//! splits it (see the table in the module docs of [`super`]); a headerless record of six fields
//! whose first three are integers is a bare Lean CSV. Nothing else is guessed: a file that matches nothing is an
//! [`Error::UnknownFormat`] that quotes what was seen.

use std::io::Read;
use std::path::Path;

use super::records::{columns, first_record, joined};
use super::{bars, lean, nasa, open_file, shown, tardis, traces, vix, Error, Format};

const HEAD_BYTES: usize = 8192;

/// Returns the format of the file at `path`, judged by its content.
///
/// # Errors
/// Returns [`Error::Open`] or [`Error::Read`] when the file cannot be read, [`Error::Empty`] for
/// an empty file, [`Error::Archive`] or [`Error::Zip`] for an archive with other content, and
/// [`Error::UnknownFormat`] when no format fits.
pub(super) fn detect(path: &Path) -> Result<Format, Error> {
    let head = read_head(path)?;
    if head.is_empty() {
        return Err(Error::Empty {
            path: path.to_owned(),
        });
    }
    if head.starts_with(b"PK\x03\x04") {
        return detect_zip(path);
    }
    if head.starts_with(b"BZh") {
        return detect_bzip2(path);
    }

    from_first_line(&head).ok_or_else(|| Error::UnknownFormat {
        path: path.to_owned(),
        seen: format!("header `{}` (first line)", shown(&first_row(&head))),
    })
}

/// Returns the format whose header (or, for Lean, first row) is the first record of `head`.
pub(super) fn from_first_line(head: &[u8]) -> Option<Format> {
    let by_semicolon = first_record(head, b';').map(|record| columns(&record));
    if by_semicolon.is_some_and(|columns| traces::is_bitbrains_header(&columns)) {
        return Some(Format::Bitbrains);
    }
    let record = first_record(head, b',')?;
    let format = from_columns(&columns(&record));
    if format.is_none() && lean::looks_like_row(&record) {
        Some(Format::LeanTrades)
    } else {
        format
    }
}

/// Returns the comma-separated format whose header is `columns` (Lean and Bitbrains aside).
pub(super) fn from_columns(columns: &[String]) -> Option<Format> {
    if tardis::header_is(columns, &tardis::TRADES_HEADER) {
        Some(Format::TardisTrades)
    } else if tardis::header_is(columns, &tardis::QUOTES_HEADER) {
        Some(Format::TardisQuotes)
    } else if bars::header_volume(columns).is_some() {
        Some(Format::Bars)
    } else if vix::is_header(columns) {
        Some(Format::Vix)
    } else if traces::is_row_trace_header(columns) {
        Some(Format::RowTrace)
    } else if traces::is_timed_trace_header(columns) {
        Some(Format::TimedTrace)
    } else {
        None
    }
}

/// Returns the first record of `head` as it should be quoted: its fields joined by commas.
fn first_row(head: &[u8]) -> Vec<u8> {
    first_record(head, b',')
        .map(|record| joined(&record, b','))
        .unwrap_or_default()
}

fn read_head(path: &Path) -> Result<Vec<u8>, Error> {
    let mut head = Vec::with_capacity(HEAD_BYTES);
    open_file(path)?
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
    Ok(head)
}

fn detect_zip(path: &Path) -> Result<Format, Error> {
    let (member, name) = lean::open_zip_member(path)?;
    let mut head = Vec::with_capacity(HEAD_BYTES);
    member
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
    if first_record(&head, b',').is_some_and(|record| lean::looks_like_row(&record)) {
        Ok(Format::LeanTrades)
    } else {
        Err(Error::UnknownFormat {
            path: path.to_owned(),
            seen: format!(
                "a zip whose member {name} starts `{}`",
                shown(&first_row(&head))
            ),
        })
    }
}

fn detect_bzip2(path: &Path) -> Result<Format, Error> {
    if nasa::looks_like_counts(path)? {
        Ok(Format::NasaCounts)
    } else {
        Err(Error::UnknownFormat {
            path: path.to_owned(),
            seen: "a bzip2 tar whose first file does not start with a count".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{open, Format};
    use super::*;
    use crate::data::shared_data_file;
    use std::io::Write;

    #[test]
    fn every_shared_recording_is_detected_as_its_format() {
        let expected = [
            ("market/tardis_trades.csv", Format::TardisTrades),
            ("market/tardis_quotes.csv", Format::TardisQuotes),
            ("market/spy_tick_20131007_trade.zip", Format::LeanTrades),
            ("market/btc-perp-20211231-20220201_1m.csv", Format::Bars),
            ("market/fxcm-gbpusd-m1-bid-2012.csv", Format::Bars),
            ("market/vix-daily.csv", Format::Vix),
            (
                "workload/alibaba2018_machine_usage_days_1_to_8_grouped_30_seconds.csv",
                Format::RowTrace,
            ),
            (
                "workload/google2019_instance_usage_grouped_300_seconds_month.csv",
                Format::RowTrace,
            ),
            (
                "workload/azure_v2_vm_cpu_readings_month_aggregated_cpu_mem.csv",
                Format::TimedTrace,
            ),
            ("workload/bitbrains-vm407-2013-07.csv", Format::Bitbrains),
            (
                "workload/nasa-http-1995-requests-per-second.tbz2",
                Format::NasaCounts,
            ),
        ];
        for (file, format) in expected {
            let path = shared_data_file(file);
            assert_eq!(detect(&path).expect("detects"), format, "{file}");
            assert_eq!(
                open(&path, None).expect("opens the file").format(),
                format,
                "{file}"
            );
        }
    }

    #[test]
    fn unknown_header_fails_naming_the_line_it_saw_and_the_formats() {
        let mut file = tempfile::NamedTempFile::new().expect("creates a temp file");
        write!(file, "when,what,how much\n1,2,3\n").expect("writes the temp file");
        let error = open(file.path(), None)
            .expect_err("should fail")
            .to_string();
        assert!(
            error.contains("matches no known format: saw header `when,what,how much` (first line)"),
            "{error}"
        );
        assert!(
            error.contains("expected one of tardis-trades, tardis-quotes, lean-trades"),
            "{error}"
        );
        assert!(error.ends_with("give --format"), "{error}");
    }

    #[test]
    fn gzip_bytes_are_shown_escaped_in_the_error() {
        let mut file = tempfile::NamedTempFile::new().expect("creates a temp file");
        file.write_all(b"\x1f\x8b\x08\x00rest")
            .expect("writes the temp file");
        let error = open(file.path(), None)
            .expect_err("should fail")
            .to_string();
        assert!(
            error.contains("saw header `\\x1f\\x8b\\x08\\x00rest`"),
            "{error}"
        );
    }

    #[test]
    fn empty_and_missing_files_are_file_level_errors() {
        let file = tempfile::NamedTempFile::new().expect("creates a temp file");
        assert!(matches!(open(file.path(), None), Err(Error::Empty { .. })));
        assert!(matches!(
            open(file.path(), Some(Format::Bars)),
            Err(Error::Empty { .. })
        ));

        let missing = file.path().with_extension("missing");
        let error = open(&missing, None).expect_err("should fail");
        assert!(matches!(error, Error::Open { .. }));
        assert!(error.to_string().contains(&*missing.to_string_lossy()));
    }

    #[test]
    fn format_names_round_trip_through_from_str() {
        for format in Format::ALL {
            assert_eq!(format.name().parse::<Format>().expect("parses"), format);
        }
        assert_eq!(
            "nasa-counts".parse::<Format>().expect("parses"),
            Format::NasaCounts
        );
        let error = "csv"
            .parse::<Format>()
            .expect_err("should fail")
            .to_string();
        assert!(
            error.starts_with("unknown format `csv`: expected one of tardis-trades"),
            "{error}"
        );
    }

    #[test]
    fn clap_and_serde_spell_formats_as_their_names() {
        use clap::ValueEnum;
        for format in Format::ALL {
            let value = format.to_possible_value().expect("no variant is skipped");
            assert_eq!(value.get_name(), format.name());
            let json = serde_json::to_string(&format).expect("serialises");
            assert_eq!(json, format!("\"{}\"", format.name()));
        }
    }

    #[test]
    fn headers_map_to_formats_without_a_file() {
        assert_eq!(
            from_first_line(b"timestamp,open,high,low,close"),
            Some(Format::Bars)
        );
        assert_eq!(
            from_first_line(b"timestamp,cpu_usage,assigned_mem"),
            Some(Format::TimedTrace)
        );
        assert_eq!(from_first_line(b"avg_cpu,avg_mem"), Some(Format::RowTrace));
        assert_eq!(
            from_first_line(b"14400464,1674100,100,P,20002000,0"),
            Some(Format::LeanTrades)
        );
        assert_eq!(from_first_line(b"timestamp"), None);
    }
}
