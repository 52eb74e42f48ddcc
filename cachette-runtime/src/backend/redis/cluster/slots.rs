//! Hash slots: the slot of a key (CRC16/XMODEM of the key, or of its hash tag, modulo 16,384,
//! as Redis Cluster computes it), and for each slot a short hash tag that lands in it (the
//! pattern count of a slot is kept beside the slot's entries, see the module above).

use std::sync::OnceLock;

/// Slots in a Redis Cluster.
pub(super) const SLOTS: u16 = 16_384;

/// CRC16/XMODEM (polynomial 0x1021, initial 0), the checksum Redis Cluster hashes keys with.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 == 0 {
                crc << 1
            } else {
                (crc << 1) ^ 0x1021
            };
        }
    }
    crc
}

/// What Redis hashes: the text between the first `{` and the first `}` after it when that is
/// not empty, the whole key otherwise.
fn hashed(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    let rest = key.get(open.saturating_add(1)..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'}') {
        Some(0) | None => key,
        Some(close) => rest.get(..close).unwrap_or(key),
    }
}

/// The hash slot of `key`.
pub(super) fn slot_of(key: &[u8]) -> u16 {
    crc16(hashed(key)) % SLOTS
}

/// For each slot, a hash tag (`{…}` included) that lands in it.
pub(super) fn slot_tag(slot: u16) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        let mut tags = vec![String::new(); usize::from(SLOTS)];
        let mut left = usize::from(SLOTS);
        let mut n: u64 = 0;
        // About 160,000 checksums of a few bytes: a few milliseconds, once per process.
        while left > 0 {
            let text = format!("{n:x}");
            let s = usize::from(crc16(text.as_bytes()) % SLOTS);
            if let Some(t) = tags.get_mut(s)
                && t.is_empty()
            {
                *t = format!("{{{text}}}");
                left = left.saturating_sub(1);
            }
            n = n.saturating_add(1);
        }
        tags
    });
    tags.get(usize::from(slot)).map_or("", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_cluster_slots() {
        // The examples of the Redis Cluster specification, and a hash tag.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(slot_of(b"foo"), 12182);
        assert_eq!(slot_of(b"{user1000}.following"), slot_of(b"user1000"));
        assert_eq!(slot_of(b"foo{}{bar}"), crc16(b"foo{}{bar}") % SLOTS);
        assert_eq!(slot_of(b"foo{{bar}}zap"), slot_of(b"{bar"));
        for key in ["a", "ns:user:1", "ns#tag:users", "{x}", "{", "}{"] {
            let ours = redis::cluster_routing::Slot::new(slot_of(key.as_bytes()));
            assert_eq!(
                ours,
                Some(redis::cluster_routing::Slot::for_key(key)),
                "{key}"
            );
        }
    }

    #[test]
    fn every_slot_has_a_tag_landing_in_it() {
        for s in 0..SLOTS {
            let key = format!("ns#patterns{}", slot_tag(s));
            assert_eq!(slot_of(key.as_bytes()), s);
        }
    }
}
