//! TODO: stage actuate.
