//! Opaque names of accepted messages, for the answers of senders who must not learn the
//! message counter: the `Location` of every Web Push answer (RFC 8030 §5, the message
//! resource: `/message/<name>`), and the `id` of an ntfy publish without a user to an
//! endpoint topic.
//!
//! Message ids come from one counter shared by every queue (`store::tables`): they are the
//! subscribers' cursors, so they stay, but two of them tell anyone how many messages were
//! posted in between. A name is the id under a keyed permutation of the 64-bit numbers, a
//! balanced Feistel network of [`ROUNDS`] rounds whose round function is BLAKE2s of the
//! database's own 256-bit key (`store::tables::names_key`), the round and the half, written
//! as 16 lowercase hex digits. So:
//! - one message has one name, for as long as the database keeps its key (across
//!   restarts);
//! - two messages never share a name (it is a permutation), and [`Locations::id`] reads a
//!   name back;
//! - without the key, names say nothing about ids or about one another.
//!
//! Nothing serves `/message/<name>` (`GET` and `DELETE` on it are `404`, as they were for
//! `/message/<id>`); the name only identifies the message to its sender. The key is never
//! logged.

use blake2::{Blake2s256, Digest};

/// Rounds of the Feistel network: four make a pseudorandom permutation of a pseudorandom
/// round function; eight leave a margin, at eight BLAKE2s blocks per name.
const ROUNDS: u8 = 8;
/// Hex digits of a name: 64 bits.
const NAME_CHARS: usize = 16;

/// Turns message ids into the names senders see, and back, under the database's key.
pub struct Locations {
    key: [u8; 32],
}

impl Locations {
    /// Names under `key` (made once per database and kept in its `meta` table).
    pub fn new(key: [u8; 32]) -> Locations {
        Locations { key }
    }

    /// The name of message `id`.
    pub fn name(&self, id: u64) -> String {
        let (mut left, mut right) = ((id >> 32) as u32, id as u32);
        for round in 0..ROUNDS {
            (left, right) = (right, left ^ self.round(round, right));
        }
        format!("{:016x}", (u64::from(left) << 32) | u64::from(right))
    }

    /// The id a name stands for; `None` for text that is not a name.
    pub fn id(&self, name: &str) -> Option<u64> {
        if name.len() != NAME_CHARS || !name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        let value = u64::from_str_radix(name, 16).ok()?;
        let (mut left, mut right) = ((value >> 32) as u32, value as u32);
        for round in (0..ROUNDS).rev() {
            (left, right) = (right ^ self.round(round, left), left);
        }
        Some((u64::from(left) << 32) | u64::from(right))
    }

    /// The `Location` of message `id` in a Web Push answer.
    pub fn location(&self, id: u64) -> String {
        format!("/message/{}", self.name(id))
    }

    fn round(&self, round: u8, half: u32) -> u32 {
        let digest = Blake2s256::new()
            .chain_update(self.key)
            .chain_update([round])
            .chain_update(half.to_le_bytes())
            .finalize();
        u32::from_le_bytes(digest[..4].try_into().expect("a digest is 32 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_a_keyed_permutation_read_back_by_id() {
        let names = Locations::new([7; 32]);
        let mut seen = std::collections::HashSet::new();
        for id in (1..2000).chain([0, u64::MAX, 1 << 63]) {
            let name = names.name(id);
            assert_eq!(name.len(), NAME_CHARS);
            assert_eq!(names.name(id), name, "one message, one name");
            assert_eq!(names.id(&name), Some(id));
            assert!(seen.insert(name), "two messages never share a name");
        }
        let other = Locations::new([8; 32]);
        assert_ne!(other.name(1), names.name(1), "another key, other names");
        assert_eq!(names.location(5), format!("/message/{}", names.name(5)));
    }

    #[test]
    fn consecutive_ids_get_unrelated_names() {
        let names = Locations::new([7; 32]);
        let values: Vec<u64> = (1000..1064)
            .map(|id| u64::from_str_radix(&names.name(id), 16).unwrap())
            .collect();
        let rising = values.windows(2).filter(|w| w[1] > w[0]).count();
        assert!((16..=48).contains(&rising), "{rising} of 63 rise");
        let high_bits_differ = values
            .windows(2)
            .filter(|w| (w[0] ^ w[1]) >> 32 != 0)
            .count();
        assert_eq!(
            high_bits_differ, 63,
            "neighbours differ in their high half too"
        );
    }

    #[test]
    fn what_is_not_a_name_names_nothing() {
        let names = Locations::new([7; 32]);
        let name = names.name(42);
        for bad in [
            "",
            "42",
            &name[1..],
            &format!("{name}0"),
            &name.to_ascii_uppercase(),
            "+000000000000000",
            "000000000000000g",
        ] {
            if bad != name {
                assert_eq!(names.id(bad), None, "{bad:?}");
            }
        }
    }
}
