//! TODO: stage predict.
