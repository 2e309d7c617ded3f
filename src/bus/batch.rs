//! The value format of one stored batch: a count, then each record as a length and its bytes
//! (u32 little-endian each). A batch is what one transaction appended to one partition.

/// Encodes `records` as one batch value.
pub(super) fn encode(records: &[Vec<u8>]) -> Vec<u8> {
    let size = 4 + records.iter().map(|r| 4 + r.len()).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for record in records {
        out.extend_from_slice(&(record.len() as u32).to_le_bytes());
        out.extend_from_slice(record);
    }
    out
}

/// Decodes a batch value into its records; `None` when the bytes are not a whole batch.
pub(super) fn decode(value: &[u8]) -> Option<Vec<&[u8]>> {
    let (count, mut rest) = take_u32(value)?;
    let mut records = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let (len, tail) = take_u32(rest)?;
        let len = len as usize;
        if tail.len() < len {
            return None;
        }
        records.push(&tail[..len]);
        rest = &tail[len..];
    }
    rest.is_empty().then_some(records)
}

fn take_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let head: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    Some((u32::from_le_bytes(head), &bytes[4..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn batches_decode_to_what_was_encoded(records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..20)) {
            let value = encode(&records);
            let back = decode(&value).expect("whole batch");
            prop_assert_eq!(back, records.iter().map(|r| r.as_slice()).collect::<Vec<_>>());
        }

        #[test]
        fn a_truncated_batch_is_refused(records in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..40), 1..20), cut in 1usize..10) {
            let value = encode(&records);
            let cut = cut.min(value.len());
            prop_assert!(decode(&value[..value.len() - cut]).is_none());
        }
    }
}
