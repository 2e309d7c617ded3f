//! Reading a case file: JSON syntax first, then each case, naming the one that is wrong.

use std::cell::Cell;
use std::fmt;
use std::path::Path;

use serde::de::{Deserializer as _, SeqAccess, Visitor};

use super::{Case, Error};

/// Reads the cases of the file at `path`.
///
/// # Errors
/// [`Error::Read`] when the file cannot be read, otherwise as [`parse`].
pub fn load(path: &Path) -> Result<Vec<Case>, Error> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        file: file.clone(),
        source,
    })?;
    parse(&text, &file)
}

/// Parses the cases in `text`, naming `file` in errors.
///
/// # Errors
/// [`Error::Syntax`] when `text` is not a JSON array, [`Error::Case`] for the first case with an
/// unknown, missing or mistyped field, [`Error::Invalid`] for fields that do not fit together.
pub fn parse(text: &str, file: &str) -> Result<Vec<Case>, Error> {
    // A first pass as plain values finds the names, so a bad case can be named.
    let values: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|source| Error::Syntax {
            file: file.to_string(),
            source,
        })?;
    let name_of = |index: usize| {
        values
            .get(index)
            .and_then(|v| v.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_string()
    };

    let failed_at = Cell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let cases = de
        .deserialize_seq(CaseList {
            failed_at: &failed_at,
        })
        .map_err(|error| {
            let index = failed_at.get().unwrap_or(0);
            let (line, column) = element_position(text, index);
            Error::Case {
                file: file.to_string(),
                index,
                name: name_of(index),
                line,
                column,
                detail: without_position(&error),
            }
        })?;

    for (index, case) in cases.iter().enumerate() {
        let (name, checked) = match case {
            Case::Metric(c) => (
                &c.name,
                c.metric
                    .to_metric()
                    .map(|_| ())
                    .and_then(|()| super::check::metric(c)),
            ),
            Case::Normalize(c) => (&c.name, super::check::normalize(c)),
        };
        checked.map_err(|message| Error::Invalid {
            file: file.to_string(),
            index,
            name: name.clone(),
            message,
        })?;
    }
    Ok(cases)
}

/// Returns serde_json's message without its position: a case is read whole before its fields
/// are checked, so that position is the end of the case, or of the array, not the field's.
fn without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    message
        .strip_suffix(&suffix)
        .map(str::to_string)
        .unwrap_or(message)
}

/// Returns the line and column (from 1) where element `index` of the top-level JSON array in
/// `text` starts; `text` is known to be a valid JSON array.
fn element_position(text: &str, index: usize) -> (usize, usize) {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let (mut seen, mut expecting) = (0usize, false);
    let (mut line, mut column) = (1, 0);
    for c in text.chars() {
        (line, column) = if c == '\n' {
            (line + 1, 0)
        } else {
            (line, column + 1)
        };
        if in_string {
            (escaped, in_string) = (!escaped && c == '\\', escaped || c != '"');
            continue;
        }
        if expecting && depth == 1 && !c.is_whitespace() {
            if seen == index {
                return (line, column);
            }
            (seen, expecting) = (seen + 1, false);
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => depth += 1,
            ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 1 => expecting = true,
            _ => {}
        }
        if c == '[' && depth == 1 {
            expecting = true;
        }
    }
    (line, column)
}

/// Deserialises the array of cases, remembering which case it was reading.
struct CaseList<'a> {
    failed_at: &'a Cell<Option<usize>>,
}

impl<'de> Visitor<'de> for CaseList<'_> {
    type Value = Vec<Case>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of cases")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut cases = Vec::new();
        loop {
            self.failed_at.set(Some(cases.len()));
            match seq.next_element::<Case>()? {
                Some(case) => cases.push(case),
                None => break,
            }
        }
        self.failed_at.set(None);
        Ok(cases)
    }
}
