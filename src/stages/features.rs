//! TODO: stage features.
