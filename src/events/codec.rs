//! Avro binary encoding of single events, with the schema derived from the type.
//!
//! The embedded log stores each event as a plain Avro datum: the topic names the schema, so
//! no per-message header is needed there. The Kafka wire framing is built on top of this.

use std::marker::PhantomData;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;

use super::Event;

/// Errors of encoding or decoding one event.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("failed to encode {schema}")]
    Encode {
        schema: &'static str,
        #[source]
        source: Box<apache_avro::Error>,
    },
    #[error("failed to decode {schema}")]
    Decode {
        schema: &'static str,
        #[source]
        source: Box<apache_avro::Error>,
    },
}

/// Encodes and decodes events of one type as Avro datums.
///
/// The writer and reader are built once: resolving a schema costs more than encoding an event.
pub struct Codec<T: Event> {
    writer: GenericDatumWriter<'static>,
    reader: GenericDatumReader<'static>,
    _type: PhantomData<fn() -> T>,
}

impl<T: Event> Default for Codec<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Event> Codec<T> {
    /// Returns a codec using the schema derived from `T`.
    pub fn new() -> Self {
        // The derived schema is self-contained (no references to other files), so resolving it
        // cannot fail; a failure here is a bug in an event type, caught by the schema tests.
        #[allow(clippy::expect_used)]
        let writer = GenericDatumWriter::builder(T::schema())
            .validate(false)
            .build()
            .expect("derived schemas resolve");
        #[allow(clippy::expect_used)]
        let reader = GenericDatumReader::builder(T::schema())
            .build()
            .expect("derived schemas resolve");
        Self {
            writer,
            reader,
            _type: PhantomData,
        }
    }

    /// Returns the schema this codec writes and reads.
    pub fn schema(&self) -> &'static Schema {
        T::schema()
    }

    /// Appends the Avro datum of `event` to `out`.
    ///
    /// # Errors
    /// Fails when the value does not fit the schema (a bug in the type, not bad input).
    pub fn encode(&self, event: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let wrap = |e| CodecError::Encode {
            schema: T::NAME,
            source: Box::new(e),
        };
        self.writer.write_ser(out, event).map_err(wrap)?;
        Ok(())
    }

    /// Decodes one datum from the front of `input` and advances it past the datum.
    ///
    /// # Errors
    /// Fails when the bytes are not a datum of this schema.
    pub fn decode(&self, input: &mut &[u8]) -> Result<T, CodecError> {
        let wrap = |e| CodecError::Decode {
            schema: T::NAME,
            source: Box::new(e),
        };
        self.reader.read_deser(input).map_err(wrap)
    }
}
