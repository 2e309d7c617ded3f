//! Key-to-partition mapping, the same as Kafka's default partitioner (murmur2 of the key bytes,
//! sign bit cleared, modulo the partition count), so a key lands on the same partition number
//! in the embedded log and on Kafka.

/// Returns the partition of `key` among `partitions` (which must be at least 1).
pub fn partition_for(key: &str, partitions: u32) -> u32 {
    (murmur2(key.as_bytes()) & 0x7fff_ffff) % partitions.max(1)
}

/// The 32-bit murmur2 hash with Kafka's seed.
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }

    // The tail bytes fold in from the highest one down, as in the reference implementation.
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if let Some(&first) = tail.first() {
        h ^= u32::from(first);
        h = h.wrapping_mul(M);
    }

    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Values from the Kafka Java client's partitioner for these keys (murmur2 then toPositive).
    #[test]
    fn murmur2_matches_kafkas_reference_values() {
        assert_eq!(murmur2(b"21") as i32, -973_932_308);
        assert_eq!(murmur2(b"foobar") as i32, -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985_981_536);
        assert_eq!(
            murmur2(b"a-little-bit-longer-string") as i32,
            -1_486_304_829
        );
        assert_eq!(murmur2(b"abc") as i32, 479_470_107);
    }

    #[test]
    fn a_key_always_maps_to_the_same_partition_within_range() {
        for key in [
            "market-data",
            "strategy",
            "risk",
            "order",
            "position",
            "SPY",
        ] {
            let p = partition_for(key, 6);
            assert!(p < 6);
            assert_eq!(p, partition_for(key, 6));
        }
        assert_eq!(partition_for("anything", 1), 0);
    }
}
