//! The bytes of one Kafka message: a header naming the writer's schema, then the Avro datum.
//!
//! Two framings, both accepted when reading:
//! - Avro single-object encoding (the default): `C3 01`, then the schema's 8-byte CRC-64-AVRO
//!   (Rabin) fingerprint, little-endian, then the datum. Any Avro library can check which
//!   schema wrote a message without a registry.
//! - Schema-registry framing (when a registry is configured): a zero byte, the registry's
//!   4-byte big-endian schema id, then the datum. Kafka tools that speak to a registry decode it.
//!
//! A message whose header names another schema than the topic's is refused with the reason;
//! schema evolution through resolution is not supported yet.

use apache_avro::rabin::Rabin;
use apache_avro::Schema;

/// The first two bytes of Avro single-object encoding.
pub const SINGLE_OBJECT_MAGIC: [u8; 2] = [0xC3, 0x01];
/// The first byte of schema-registry framing.
pub const REGISTRY_MAGIC: u8 = 0;

/// Why a message could not be unframed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("empty message")]
    Empty,
    #[error("message of {len} bytes is shorter than its {framing} header")]
    Truncated { len: usize, framing: &'static str },
    #[error(
        "written with schema fingerprint {found:016x}, but the topic's schema {schema} has \
         {expected:016x}"
    )]
    OtherFingerprint {
        schema: &'static str,
        found: u64,
        expected: u64,
    },
    #[error("written with registry schema id {found}, but {schema} is registered as {expected:?}")]
    OtherRegistryId {
        schema: &'static str,
        found: u32,
        expected: Option<u32>,
    },
    #[error(
        "unknown header byte 0x{0:02x}: expected Avro single-object encoding (c3 01) or \
         registry framing (00)"
    )]
    UnknownHeader(u8),
}

/// How one schema's messages are framed, and how its readers recognise them.
#[derive(Debug, Clone)]
pub struct Framing {
    schema: &'static str,
    fingerprint: u64,
    registry_id: Option<u32>,
    header: Vec<u8>,
}

impl Framing {
    /// Returns the framing of `schema` (named `name`): registry framing under `registry_id`
    /// when given, single-object encoding otherwise.
    pub fn new(name: &'static str, schema: &Schema, registry_id: Option<u32>) -> Self {
        let fingerprint = fingerprint(schema);
        let header = match registry_id {
            Some(id) => {
                let mut header = vec![REGISTRY_MAGIC];
                header.extend_from_slice(&id.to_be_bytes());
                header
            }
            None => {
                let mut header = SINGLE_OBJECT_MAGIC.to_vec();
                header.extend_from_slice(&fingerprint.to_le_bytes());
                header
            }
        };
        Self {
            schema: name,
            fingerprint,
            registry_id,
            header,
        }
    }

    /// Returns the bytes written before every datum.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// Returns the schema's CRC-64-AVRO fingerprint.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Returns `datum` with this schema's header in front.
    pub fn frame(&self, datum: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.header.len() + datum.len());
        bytes.extend_from_slice(&self.header);
        bytes.extend_from_slice(datum);
        bytes
    }

    /// Returns the datum of `message` after checking that its header names this schema, in
    /// either framing.
    ///
    /// # Errors
    /// Fails when the header is missing, cut short, or names another schema.
    pub fn unframe<'a>(&self, message: &'a [u8]) -> Result<&'a [u8], WireError> {
        match message {
            [] => Err(WireError::Empty),
            [0xC3, 0x01, rest @ ..] => {
                let (print, datum) = split::<8>(rest, message.len(), "single-object")?;
                let found = u64::from_le_bytes(print);
                if found != self.fingerprint {
                    return Err(WireError::OtherFingerprint {
                        schema: self.schema,
                        found,
                        expected: self.fingerprint,
                    });
                }
                Ok(datum)
            }
            [REGISTRY_MAGIC, rest @ ..] => {
                let (id, datum) = split::<4>(rest, message.len(), "registry")?;
                let found = u32::from_be_bytes(id);
                if self.registry_id != Some(found) {
                    return Err(WireError::OtherRegistryId {
                        schema: self.schema,
                        found,
                        expected: self.registry_id,
                    });
                }
                Ok(datum)
            }
            [first, ..] => Err(WireError::UnknownHeader(*first)),
        }
    }
}

fn split<'a, const N: usize>(
    rest: &'a [u8],
    len: usize,
    framing: &'static str,
) -> Result<([u8; N], &'a [u8]), WireError> {
    match rest.split_first_chunk::<N>() {
        Some((head, datum)) => Ok((*head, datum)),
        None => Err(WireError::Truncated { len, framing }),
    }
}

/// Returns the CRC-64-AVRO fingerprint of `schema`'s parsing canonical form.
pub fn fingerprint(schema: &Schema) -> u64 {
    let bytes = schema.fingerprint::<Rabin>().bytes;
    let mut le = [0u8; 8];
    le.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(le)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Codec, Event, ScalingDecision, Side, TradeTick};

    fn trade() -> TradeTick {
        TradeTick {
            symbol: "SPY".into(),
            venue: "test".into(),
            ts_us: 1_000_000,
            price: 450.25,
            size: 100.0,
            side: Side::Buy,
        }
    }

    #[test]
    fn the_canonical_form_of_a_primitive_has_the_fingerprint_the_avro_spec_gives() {
        // The Avro specification's CRC-64-AVRO of the canonical form "int" (the Java and Python
        // implementations agree on this value).
        let int = Schema::parse_str(r#""int""#).expect("valid schema");
        assert_eq!(fingerprint(&int), 0x7275_d51a_3f39_5c8f);
    }

    #[test]
    fn single_object_frames_start_with_c3_01_and_the_fingerprint_little_endian() {
        let framing = Framing::new(TradeTick::NAME, TradeTick::schema(), None);
        let framed = framing.frame(&[1, 2, 3]);
        assert_eq!(&framed[..2], &[0xC3, 0x01]);
        assert_eq!(&framed[2..10], &framing.fingerprint().to_le_bytes());
        assert_eq!(&framed[10..], &[1, 2, 3]);
    }

    #[test]
    fn a_trade_survives_framing_in_both_forms() {
        let codec = Codec::<TradeTick>::new();
        let mut datum = Vec::new();
        codec.encode(&trade(), &mut datum).expect("encodes");
        for registry_id in [None, Some(42)] {
            let framing = Framing::new(TradeTick::NAME, TradeTick::schema(), registry_id);
            let framed = framing.frame(&datum);
            let mut body = framing.unframe(&framed).expect("own framing");
            assert_eq!(codec.decode(&mut body).expect("decodes"), trade());
        }
    }

    #[test]
    fn registry_frames_carry_the_id_big_endian() {
        let framing = Framing::new(TradeTick::NAME, TradeTick::schema(), Some(0x0102_0304));
        assert_eq!(framing.frame(&[9]), vec![0, 1, 2, 3, 4, 9]);
    }

    #[test]
    fn a_message_of_another_schema_is_refused_with_both_fingerprints() {
        let decisions = Framing::new(ScalingDecision::NAME, ScalingDecision::schema(), None);
        let trades = Framing::new(TradeTick::NAME, TradeTick::schema(), None);
        let error = trades
            .unframe(&decisions.frame(&[0]))
            .expect_err("other schema");
        assert!(matches!(error, WireError::OtherFingerprint { .. }));
        assert!(error.to_string().contains("TradeTick"), "{error}");
    }

    #[test]
    fn bare_datums_short_headers_and_unknown_ids_are_refused() {
        let framing = Framing::new(TradeTick::NAME, TradeTick::schema(), Some(5));
        assert_eq!(framing.unframe(&[]), Err(WireError::Empty));
        assert_eq!(
            framing.unframe(&[0x02, 0x10]),
            Err(WireError::UnknownHeader(2))
        );
        assert!(matches!(
            framing.unframe(&[0xC3, 0x01, 1, 2]),
            Err(WireError::Truncated { len: 4, .. })
        ));
        assert!(matches!(
            framing.unframe(&[0, 0, 0, 0, 6, 1]),
            Err(WireError::OtherRegistryId { found: 6, .. })
        ));
    }
}
