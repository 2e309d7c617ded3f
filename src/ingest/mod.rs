//! TODO: file readers.
