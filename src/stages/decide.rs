//! TODO: stage decide.
