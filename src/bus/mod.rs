//! The bus: where events are kept between stages.
//!
//! [`EmbeddedLog`] is the embedded default, a durable local log in sled with the topics,
//! partitions, offsets, consumer positions and stage state of a run. Kafka (a later step) offers
//! the same meaning across machines.

mod batch;
mod log;
mod partition;

pub use log::{EmbeddedLog, Error, Record, Transaction};
pub use partition::partition_for;
