//! TODO: embedded log.
