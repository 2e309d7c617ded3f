//! TODO: market generator.
