//! tickscale scales the services of a trading platform ahead of the load that markets bring.
//!
//! Market ticks and workload samples flow through topics into stages that keep state in event
//! time: [`stages::features`] (windows), [`stages::regime`], [`stages::predict`],
//! [`stages::decide`], [`stages::actuate`] (a simulated cluster) and [`stages::monitor`]. Stage
//! logic does no IO; the [`bus`] (the embedded log), [`ingest`] (file readers) and the
//! [`pipeline`] driver sit at the edges.

pub mod backtest;
pub mod bus;
pub mod data;
pub mod events;
pub mod generator;
pub mod ingest;
pub mod kafka;
pub mod load;
pub mod pipeline;
pub mod stages;
pub mod topology;
