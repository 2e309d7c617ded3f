//! TODO: load model.
