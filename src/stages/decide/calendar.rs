//! Scheduled market events, and the replica floor the event-driven strategy raises ahead of
//! them.
//!
//! **Consumes** market event times (to learn the trading dates of the input) and scheduled
//! [`MarketContext`] events (session open and close, macro releases). **Produces** the floor,
//! if any, that applies to a service at a decision time. **Keeps** the calendar of scheduled
//! events and, per service, the peak need seen around the latest and the previous event of each
//! name, and the floor in force. **Guarantees** the same floor for the same inputs.
//!
//! The calendar is built from the input, because the feature stage sees a context event only
//! when it happens, too late to start pods for it:
//!
//! - for every New York date on which a market event (trade, quote, bar) is seen, the NYSE
//!   regular session: `NYSE open` at 09:30 and `NYSE close` at 16:00 New York time (daylight
//!   saving applied). The built-in generator's day is 09:00 to 17:00 New York with its open and
//!   close at those times, so its calendar is the same;
//! - every scheduled context event that arrives (an input may announce a macro release), for
//!   the days after it.
//!
//! The floor for an event applies from `lead_s` before it until `hold_s` after it. It is fixed
//! when the lead starts: the peak need (the larger of the reactive and forecast answers, before
//! the floor) seen over the hold of the previous event of the same name, or, with no such
//! event, `ceil(multiple × current replicas)`.
//!
//! # Caveats
//!
//! Holidays and half days are not known: a date is a trading date when it has market events.
//! A bar or trade file that starts after 09:30 learns that day's open too late for its lead.
//! Crypto markets have no session: a BTC recording still gets NYSE times, which is harmless
//! (the floor then follows equity hours) but not meaningful.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::America::New_York;
use serde::{Deserialize, Serialize};

use crate::events::{ContextKind, MarketContext};

const MICROS: i64 = 1_000_000;

/// One scheduled market event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledEvent {
    pub ts_us: i64,
    pub kind: ContextKind,
    /// `NYSE open`, `NYSE close`, `FOMC`, …
    pub name: String,
}

/// The scheduled events known so far, in time order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Calendar {
    events: Vec<ScheduledEvent>,
    /// The UTC span `[start, end)` of the last New York date whose session was added.
    known_day_us: Option<(i64, i64)>,
}

impl Calendar {
    /// Returns the events, in time order.
    pub fn events(&self) -> &[ScheduledEvent] {
        &self.events
    }

    /// Adds a scheduled event unless one of the same name and time is known; index levels
    /// are not scheduled and are ignored.
    pub fn add(&mut self, event: ScheduledEvent) {
        if event.kind == ContextKind::VolatilityIndex {
            return;
        }
        let key = |e: &ScheduledEvent| (e.ts_us, e.name.clone());
        match self.events.binary_search_by_key(&key(&event), key) {
            Ok(_) => {}
            Err(at) => self.events.insert(at, event),
        }
    }

    /// Adds a scheduled context event.
    pub fn add_context(&mut self, context: &MarketContext) {
        self.add(ScheduledEvent {
            ts_us: context.ts_us,
            kind: context.kind,
            name: context.name.clone(),
        });
    }

    /// Notes a market event at `ts_us`: the first one of a New York date adds that date's NYSE
    /// open (09:30) and close (16:00). Cheap for every other event of the date.
    pub fn note_market_time(&mut self, ts_us: i64) {
        if let Some((start, end)) = self.known_day_us {
            if (start..end).contains(&ts_us) {
                return;
            }
        }
        let Some(utc) = DateTime::<Utc>::from_timestamp_micros(ts_us) else {
            return;
        };
        let date = utc.with_timezone(&New_York).date_naive();
        let (Some(start), Some(end)) = (
            new_york_us(date, NaiveTime::MIN),
            date.succ_opt().and_then(|d| new_york_us(d, NaiveTime::MIN)),
        ) else {
            return;
        };
        self.known_day_us = Some((start, end));
        self.add_nyse_session(date);
    }

    /// Adds the NYSE regular session of `date`: the open at 09:30 and the close at 16:00 New
    /// York time.
    pub fn add_nyse_session(&mut self, date: NaiveDate) {
        let sessions = [
            (9, 30, ContextKind::SessionOpen, "NYSE open"),
            (16, 0, ContextKind::SessionClose, "NYSE close"),
        ];
        for (hour, minute, kind, name) in sessions {
            let Some(ts_us) =
                NaiveTime::from_hms_opt(hour, minute, 0).and_then(|t| new_york_us(date, t))
            else {
                continue;
            };
            self.add(ScheduledEvent {
                ts_us,
                kind,
                name: name.to_string(),
            });
        }
    }

    /// Returns the event whose span `[ts − lead, ts + hold]` holds `now_us`, the earliest
    /// such event when several do.
    pub fn active(&self, now_us: i64, lead_s: i64, hold_s: i64) -> Option<&ScheduledEvent> {
        let first = self
            .events
            .partition_point(|e| e.ts_us + hold_s * MICROS < now_us);
        self.events[first..]
            .iter()
            .take_while(|e| e.ts_us - lead_s * MICROS <= now_us)
            .next()
    }
}

/// Returns the UTC µs of `time` on `date` in New York; the earlier instant when the clocks
/// go back.
fn new_york_us(date: NaiveDate, time: NaiveTime) -> Option<i64> {
    let local = date.and_time(time);
    New_York
        .from_local_datetime(&local)
        .earliest()
        .map(|t| t.timestamp_micros())
}

/// The floor in force for one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveFloor {
    pub event_ts_us: i64,
    pub name: String,
    pub replicas: i64,
}

/// The peak need seen over the hold of one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Peak {
    event_ts_us: i64,
    replicas: i64,
}

/// What one service remembers of scheduled events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventMemory {
    /// Per event name, the latest event's peak and the one before it.
    peaks: Vec<(String, Peak, Option<i64>)>,
    floor: Option<ActiveFloor>,
}

impl EventMemory {
    /// Returns the floor for `event` at `now_us`, fixing it when its lead starts.
    ///
    /// `need` is what the other rules ask for now (recorded as the event's peak after it
    /// starts); `current` the replicas now; `multiple` the factor used when no earlier event of
    /// the same name was seen.
    pub fn floor(
        &mut self,
        event: &ScheduledEvent,
        now_us: i64,
        need: i64,
        current: i64,
        multiple: f64,
    ) -> ActiveFloor {
        let floor = match &self.floor {
            Some(f) if f.event_ts_us == event.ts_us && f.name == event.name => f.clone(),
            _ => ActiveFloor {
                event_ts_us: event.ts_us,
                name: event.name.clone(),
                replicas: self
                    .previous_peak(event)
                    .unwrap_or_else(|| (multiple * current as f64 - 1e-9).ceil() as i64),
            },
        };
        self.floor = Some(floor.clone());
        if now_us >= event.ts_us {
            self.record(event, need);
        }
        floor
    }

    /// Returns the peak of the latest event named like `event` that came before it.
    fn previous_peak(&self, event: &ScheduledEvent) -> Option<i64> {
        let (_, peak, before) = self.peaks.iter().find(|(name, ..)| *name == event.name)?;
        if peak.event_ts_us < event.ts_us {
            Some(peak.replicas)
        } else {
            *before
        }
    }

    fn record(&mut self, event: &ScheduledEvent, need: i64) {
        let at = match self.peaks.iter().position(|(name, ..)| *name == event.name) {
            Some(at) => at,
            None => {
                let empty = Peak {
                    event_ts_us: event.ts_us,
                    replicas: 0,
                };
                self.peaks.push((event.name.clone(), empty, None));
                self.peaks.len() - 1
            }
        };
        let (_, peak, before) = &mut self.peaks[at];
        if peak.event_ts_us < event.ts_us {
            *before = Some(peak.replicas);
            *peak = Peak {
                event_ts_us: event.ts_us,
                replicas: 0,
            };
        }
        if peak.event_ts_us == event.ts_us {
            peak.replicas = peak.replicas.max(need);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2013-10-07, an EDT date: 09:30 New York is 13:30 UTC.
    const OCT7_0930_UTC_US: i64 = 1_381_152_600 * MICROS;

    fn open(ts_us: i64) -> ScheduledEvent {
        ScheduledEvent {
            ts_us,
            kind: ContextKind::SessionOpen,
            name: "NYSE open".into(),
        }
    }

    #[test]
    fn a_market_event_adds_its_new_york_dates_open_and_close_once() {
        let mut calendar = Calendar::default();
        // 13:00 UTC on 7 October 2013 is 09:00 EDT.
        calendar.note_market_time(OCT7_0930_UTC_US - 1800 * MICROS);
        calendar.note_market_time(OCT7_0930_UTC_US + 3600 * MICROS);
        let events = calendar.events();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].ts_us, OCT7_0930_UTC_US);
        assert_eq!(events[0].kind, ContextKind::SessionOpen);
        // 16:00 EDT is 6.5 h after the open.
        assert_eq!(events[1].ts_us, OCT7_0930_UTC_US + 23_400 * MICROS);
        assert_eq!(events[1].name, "NYSE close");
    }

    #[test]
    fn winter_dates_open_at_1430_utc() {
        let mut calendar = Calendar::default();
        // 2024-03-05 (EST): 15:00 UTC is 10:00 New York.
        calendar.note_market_time(1_709_650_800 * MICROS);
        // 2024-03-05 14:30:00 UTC.
        assert_eq!(calendar.events()[0].ts_us, 1_709_649_000 * MICROS);
    }

    #[test]
    fn an_event_is_active_from_lead_before_to_hold_after() {
        let mut calendar = Calendar::default();
        calendar.add(open(1000 * MICROS));
        assert!(calendar.active(899 * MICROS, 100, 60).is_none());
        assert!(calendar.active(900 * MICROS, 100, 60).is_some());
        assert!(calendar.active(1060 * MICROS, 100, 60).is_some());
        assert!(calendar.active(1061 * MICROS, 100, 60).is_none());
        // A VIX level is not scheduled.
        calendar.add(ScheduledEvent {
            ts_us: 2000 * MICROS,
            kind: ContextKind::VolatilityIndex,
            name: "VIX".into(),
        });
        assert!(calendar.active(2000 * MICROS, 100, 60).is_none());
    }

    #[test]
    fn the_floor_is_a_multiple_of_current_then_the_previous_events_peak() {
        let mut memory = EventMemory::default();
        let day1 = open(1000 * MICROS);
        // Lead starts with 3 replicas: ceil(2 × 3) = 6, fixed while the count rises.
        assert_eq!(memory.floor(&day1, 900 * MICROS, 3, 3, 2.0).replicas, 6);
        assert_eq!(memory.floor(&day1, 915 * MICROS, 6, 6, 2.0).replicas, 6);
        // After the open the needs 9 and 7 are seen; the peak is 9.
        memory.floor(&day1, 1000 * MICROS, 9, 6, 2.0);
        memory.floor(&day1, 1015 * MICROS, 7, 9, 2.0);
        // The next day's open starts from the peak, not from 2 × 2.
        let day2 = open(87_400 * MICROS);
        assert_eq!(memory.floor(&day2, 87_300 * MICROS, 2, 2, 2.0).replicas, 9);
        memory.floor(&day2, 87_400 * MICROS, 12, 9, 2.0);
        // Asked again during day 2's span, the floor stays day 1's peak.
        assert_eq!(memory.floor(&day2, 87_415 * MICROS, 5, 12, 2.0).replicas, 9);
    }
}
