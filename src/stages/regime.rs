//! TODO: stage regime.
