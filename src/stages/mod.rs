//! The stages of the pipeline. Each is plain, deterministic code over event time: structs updated
//! through `&mut self` that return the events they produce, with no IO. Their state derives
//! `Serialize` so the driver can persist it beside the offsets it was computed from.

pub mod actuate;
pub mod decide;
pub mod features;
pub mod monitor;
pub mod predict;
pub mod regime;
