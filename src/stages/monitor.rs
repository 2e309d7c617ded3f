//! TODO: stage monitor.
