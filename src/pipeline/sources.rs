//! The inputs of a run merged into one stream in event-time order.
//!
//! Each source is a file reader or the built-in generator. The merge always takes the source
//! whose next event is earliest (ties go to the source listed first), so the merged order is a
//! function of the inputs alone; together with the per-source counts of records taken it lets a
//! restarted run continue exactly where the last checkpoint stopped. Rows that do not parse come
//! out as they are met, ahead of any event, so they reach the dead-letter topic in file order.
//!
//! Workload traces keep their own clock: row-indexed traces start at 0, others at their first
//! timestamp. A trace is shifted so its first sample lines up with the first market event.

use std::path::{Path, PathBuf};

use crate::generator::{GeneratedEvent, GeneratorConfig, MarketGenerator};
use crate::ingest::{self, Format, RowError, SourceEvent};

type Items = Box<dyn Iterator<Item = Result<SourceEvent, RowError>>>;

/// How many unreadable rows at the head of a file are looked past to find its first time.
const FIRST_TIME_LOOKAHEAD: usize = 1_000;

/// What a run reads.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum SourceSpec {
    /// A market recording (any format the readers know).
    Market {
        path: PathBuf,
        format: Option<Format>,
    },
    /// A workload trace that becomes `service`'s load.
    Load {
        service: String,
        path: PathBuf,
        format: Option<Format>,
    },
    /// The built-in market generator.
    Generator(GeneratorConfig),
}

impl SourceSpec {
    /// Returns a short name for messages and dead letters.
    pub fn name(&self) -> String {
        match self {
            Self::Market { path, .. } | Self::Load { path, .. } => path.display().to_string(),
            Self::Generator(_) => "generator".to_string(),
        }
    }
}

/// One open input with its one-item look-ahead.
struct Source {
    items: Items,
    next: Option<Result<SourceEvent, RowError>>,
    /// Items read ahead of `next` while looking for the first readable event.
    held: std::collections::VecDeque<Result<SourceEvent, RowError>>,
    taken: u64,
    shift_us: i64,
    service: Option<String>,
    is_market: bool,
}

impl Source {
    fn open(spec: &SourceSpec) -> Result<Self, super::Error> {
        let (items, service, is_market): (Items, _, _) = match spec {
            SourceSpec::Market { path, format } => {
                (Box::new(ingest::open(path, *format)?), None, true)
            }
            SourceSpec::Load {
                service,
                path,
                format,
            } => (
                Box::new(ingest::open(path, *format)?),
                Some(service.clone()),
                false,
            ),
            SourceSpec::Generator(config) => (
                Box::new(MarketGenerator::new(config.clone())?.map(|e| Ok(from_generated(e)))),
                None,
                true,
            ),
        };
        let mut source = Self {
            items,
            next: None,
            held: std::collections::VecDeque::new(),
            taken: 0,
            shift_us: 0,
            service,
            is_market,
        };
        source.next = source.items.next();
        Ok(source)
    }

    /// Returns the time of the first event ahead, skipping nothing.
    /// Returns the time of the first readable event, looking past unreadable rows (which stay
    /// queued, in order) for at most [`FIRST_TIME_LOOKAHEAD`] items.
    fn first_time(&mut self) -> Option<i64> {
        for i in 0..FIRST_TIME_LOOKAHEAD {
            let item = if i == 0 {
                self.next.as_ref()
            } else {
                self.held.get(i - 1)
            };
            match item {
                Some(Ok(event)) => return Some(event.ts_us()),
                Some(Err(_)) => {}
                None => return None,
            }
            if i >= self.held.len() {
                match self.items.next() {
                    Some(item) => self.held.push_back(item),
                    None => return None,
                }
            }
        }
        None
    }

    fn advance(&mut self) -> Option<Result<SourceEvent, RowError>> {
        let item = self.next.take()?;
        self.next = self.held.pop_front().or_else(|| self.items.next());
        self.taken += 1;
        Some(item.map(|event| self.adjust(event)))
    }

    fn adjust(&self, event: SourceEvent) -> SourceEvent {
        match event {
            SourceEvent::Workload(mut m) => {
                m.ts_us += self.shift_us;
                if let Some(service) = &self.service {
                    m.service.clone_from(service);
                }
                SourceEvent::Workload(m)
            }
            other => other,
        }
    }

    /// The key the merge orders by: unreadable rows first, then event time.
    fn order_key(&self) -> Option<i64> {
        match self.next.as_ref()? {
            Err(_) => Some(i64::MIN),
            Ok(event) => Some(
                event.ts_us()
                    + if self.is_workload(event) {
                        self.shift_us
                    } else {
                        0
                    },
            ),
        }
    }

    fn is_workload(&self, event: &SourceEvent) -> bool {
        matches!(event, SourceEvent::Workload(_))
    }
}

fn from_generated(event: GeneratedEvent) -> SourceEvent {
    match event {
        GeneratedEvent::Trade(t) => SourceEvent::Trade(t),
        GeneratedEvent::Quote(q) => SourceEvent::Quote(q),
        GeneratedEvent::Context(c) => SourceEvent::Context(c),
    }
}

/// One item of the merged stream: an event, or a row that did not parse, with its source.
pub enum Item {
    Event(SourceEvent),
    Unreadable { source: usize, error: RowError },
}

/// All inputs of a run, merged in event-time order.
pub struct MergedSources {
    sources: Vec<Source>,
}

impl MergedSources {
    /// Opens every source and skips the records already taken (`taken[i]` for source `i`).
    ///
    /// # Errors
    /// Fails when a file cannot be opened or its format is not recognised.
    pub fn open(specs: &[SourceSpec], taken: &[u64]) -> Result<Self, super::Error> {
        let mut sources = specs
            .iter()
            .map(Source::open)
            .collect::<Result<Vec<_>, _>>()?;
        align_traces(&mut sources);
        for (source, &skip) in sources.iter_mut().zip(taken) {
            while source.taken < skip && source.advance().is_some() {}
        }
        Ok(Self { sources })
    }

    /// Returns how many records each source has handed out.
    pub fn taken(&self) -> Vec<u64> {
        self.sources.iter().map(|s| s.taken).collect()
    }
}

/// Shifts workload traces so that their first sample meets the first market event.
fn align_traces(sources: &mut [Source]) {
    let market_start = sources
        .iter_mut()
        .filter(|s| s.is_market)
        .filter_map(Source::first_time)
        .min();
    let Some(start) = market_start else { return };
    for source in sources.iter_mut().filter(|s| !s.is_market) {
        if let Some(first) = source.first_time() {
            source.shift_us = start - first;
        }
    }
}

impl Iterator for MergedSources {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        let index = (0..self.sources.len())
            .filter_map(|i| self.sources[i].order_key().map(|k| (k, i)))
            .min()?
            .1;
        match self.sources[index].advance()? {
            Ok(event) => Some(Item::Event(event)),
            Err(error) => Some(Item::Unreadable {
                source: index,
                error,
            }),
        }
    }
}

/// Returns a description of a file for the run's fingerprint: its path, size and modification
/// time, so a file edited in place is not resumed as if it were the one read before.
pub fn describe_file(path: &Path) -> String {
    let meta = std::fs::metadata(path).ok();
    let size = meta.as_ref().map_or(0, |m| m.len());
    let modified = meta
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    format!(
        "{}:{size}:{}",
        path.display(),
        modified.map_or(0, |d| d.as_nanos())
    )
}
