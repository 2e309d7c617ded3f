//! The replay loop: one market stage, one service stage per policy, figures as it goes.
//!
//! **Consumes** the events of an [`Input`] in event-time order. **Produces** a [`Report`].
//! **Keeps** the stages and each policy's [`PolicyTally`]; the stages hand their events to
//! collecting outboxes ([`Outbox::collecting`]), so nothing is encoded and nothing is written.
//! **Guarantees**: every policy sees the same feature vectors in the same order, from the same
//! code `run` drives; a stop request (the flag) ends the replay between two events, and the
//! report then says it is partial.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::events::{DeadLetter, FeatureVector};
use crate::ingest::SourceEvent;
use crate::pipeline::{Item, MarketStage, MergedSources, Outbox, ServiceStage, StageConfig};
use crate::topology::Topology;

use super::log_input::LogEvents;
use super::report::{PolicyTally, Report, RunFacts};
use super::{stage_configs, Error, Input, PolicyChoice};
use crate::kafka::market::TopicEvents;

/// Input events between two progress calls.
const PROGRESS_EVERY: u64 = 16_384;

/// What to replay and how.
#[derive(Debug, Clone)]
pub struct Replay {
    pub input: Input,
    /// The topics (to open a log) and the services to scale.
    pub topology: Topology,
    /// Services whose load comes from a workload trace.
    pub traced: BTreeSet<String>,
    /// The settings every policy shares; `decide` is replaced per policy.
    pub base: StageConfig,
    pub policies: Vec<PolicyChoice>,
    pub price_per_pod_hour: f64,
    /// The inputs as named on the command line, for the report.
    pub input_names: Vec<String>,
}

/// How far a replay has gone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub events_in: u64,
    /// Input events in all, when known (a log); files are not counted ahead.
    pub total: Option<u64>,
    /// The event time of the latest input event.
    pub event_time_us: Option<i64>,
}

/// One step of the input: an item as the files and logs give it, or a message from Kafka that
/// did not decode (already a dead letter with its topic, partition and offset).
enum Step {
    Item(Item),
    Letter(DeadLetter),
}

type Events = Box<dyn Iterator<Item = Result<Step, Error>>>;

/// Replays `replay`, calling `on_progress` every few thousand events, until its input ends or
/// `stop` is set.
///
/// # Errors
/// Fails when an input cannot be opened or read on, or the policies cannot share one market
/// stage.
pub fn replay(
    replay: &Replay,
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<Report, Error> {
    let configs = stage_configs(&replay.base, &replay.policies)?;
    let (events, total) = open(replay)?;
    let services = replay.topology.services.clone();
    let market_config = configs.first().unwrap_or(&replay.base);
    let mut state = State {
        market: MarketStage::new(market_config, services.clone(), replay.traced.clone()),
        stages: configs
            .iter()
            .map(|c| ServiceStage::new(c, services.clone()))
            .collect(),
        tallies: vec![PolicyTally::default(); configs.len()],
        market_out: Outbox::collecting(),
        service_out: Outbox::collecting(),
        first_window_us: None,
        last_window_end_us: None,
    };

    let mut progress = Progress {
        events_in: 0,
        total,
        event_time_us: None,
    };
    let mut partial = false;
    for item in events {
        if stop.load(Ordering::Relaxed) {
            partial = true;
            break;
        }
        match item? {
            Step::Item(item) => state.on_item(replay, item, &mut progress)?,
            Step::Letter(letter) => {
                progress.events_in += 1;
                state.on_letter(&letter)?;
            }
        }
        if progress.events_in.is_multiple_of(PROGRESS_EVERY) {
            on_progress(&progress);
        }
    }
    if !partial {
        let features = state.market.finish(&mut state.market_out)?;
        state.on_features(&features)?;
    }
    on_progress(&progress);
    Ok(state.report(replay, partial))
}

/// Opens the input as one stream of items, with its length when known.
fn open(replay: &Replay) -> Result<(Events, Option<u64>), Error> {
    match &replay.input {
        Input::Files(specs) => {
            let sources = MergedSources::open(specs, &vec![0; specs.len()])?;
            Ok((Box::new(sources.map(|item| Ok(Step::Item(item)))), None))
        }
        Input::Log(dir) => {
            let events = LogEvents::open(dir, &replay.topology.topics)?;
            let total = events.total();
            let steps = events.map(|e| e.map(|event| Step::Item(Item::Event(event))));
            Ok((Box::new(steps), Some(total)))
        }
        Input::Kafka { settings, since_us } => {
            let since_us = since_us.unwrap_or(i64::MIN);
            let steps = TopicEvents::open(settings)?.filter_map(move |next| match next {
                Ok(event) if event.ts_us() < since_us => None,
                Ok(event) => Some(Ok(Step::Item(Item::Event(event)))),
                Err(letter) => Some(Ok(Step::Letter(letter))),
            });
            Ok((Box::new(steps), None))
        }
    }
}

struct State {
    market: MarketStage,
    stages: Vec<ServiceStage>,
    tallies: Vec<PolicyTally>,
    market_out: Outbox,
    service_out: Outbox,
    first_window_us: Option<i64>,
    last_window_end_us: Option<i64>,
}

impl State {
    fn on_item(
        &mut self,
        replay: &Replay,
        item: Item,
        progress: &mut Progress,
    ) -> Result<(), Error> {
        progress.events_in += 1;
        let event = match item {
            Item::Event(event) => event,
            Item::Unreadable { source, error } if error.fatal => {
                return Err(crate::pipeline::Error::Unreadable {
                    file: source_name(replay, source),
                    line: error.line,
                    reason: error.reason,
                }
                .into());
            }
            Item::Unreadable { source, error } => {
                let letter = DeadLetter {
                    source: source_name(replay, source),
                    partition: -1,
                    offset: error.line as i64,
                    reason: error.reason,
                    payload: error.raw,
                };
                return self.on_letter(&letter);
            }
        };
        if !matches!(event, SourceEvent::Context(_)) {
            progress.event_time_us = Some(event.ts_us());
        }
        let features = self.market.on_event(&event, false, &mut self.market_out)?;
        // The market stage's own events (feature vectors, regimes) are not part of the report.
        self.market_out.take_collected();
        self.on_features(&features)
    }

    /// Counts an input that could not be read as a dead letter; the replay goes on.
    fn on_letter(&mut self, letter: &DeadLetter) -> Result<(), Error> {
        self.market.on_dead_letter(letter, &mut self.market_out)?;
        self.market_out.take_collected();
        Ok(())
    }

    /// Runs each feature vector through every policy's service stage and tallies what it
    /// emitted.
    fn on_features(&mut self, features: &[FeatureVector]) -> Result<(), Error> {
        for feature in features {
            let first = self.first_window_us.get_or_insert(feature.window_start_us);
            *first = (*first).min(feature.window_start_us);
            let last = self.last_window_end_us.get_or_insert(feature.window_end_us);
            *last = (*last).max(feature.window_end_us);
            for (stage, tally) in self.stages.iter_mut().zip(&mut self.tallies) {
                stage.on_feature(feature, &mut self.service_out)?;
                for event in self.service_out.take_collected() {
                    tally.on_event(&event);
                }
            }
        }
        Ok(())
    }

    fn report(&self, replay: &Replay, partial: bool) -> Report {
        let counters = &self.market.counters;
        let facts = RunFacts {
            inputs: replay.input_names.clone(),
            window_s: replay.base.features.window_s,
            events_in: counters.events_in,
            dead_letters: counters.dead_letters,
            windows: counters.windows,
            first_window_us: self.first_window_us,
            last_window_end_us: self.last_window_end_us,
        };
        let tallies: Vec<(String, PolicyTally)> = replay
            .policies
            .iter()
            .map(|p| p.name.clone())
            .zip(self.tallies.iter().cloned())
            .collect();
        let services = replay
            .topology
            .services
            .iter()
            .map(|s| s.name.clone())
            .collect();
        Report::build(
            facts,
            services,
            &tallies,
            replay.price_per_pod_hour,
            partial,
        )
    }
}

fn source_name(replay: &Replay, source: usize) -> String {
    match &replay.input {
        Input::Files(specs) => specs.get(source).map_or_else(String::new, |s| s.name()),
        Input::Log(dir) => dir.display().to_string(),
        Input::Kafka { settings, .. } => settings.brokers.clone(),
    }
}
