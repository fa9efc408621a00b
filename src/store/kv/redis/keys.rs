//! Keys as Redis orders them: a table's keys are members of a sorted set whose scores are
//! all 0, so `ZRANGEBYLEX` orders them by their bytes (memcmp). Each key type has an
//! encoding whose byte order is the type's order: integers big-endian, a string or byte
//! slice as it is when it comes last, and a string inside a tuple with its zero bytes
//! escaped (`00 ff`) and ended by `00 00`, so that a shorter string sorts first.
//!
//! Values are not touched: a hash keeps each value's redb bytes under the key's encoding.

/// A key type of a table: redb's, with an encoding that keeps its order in Redis.
pub trait Key: redb::Key + 'static {
    /// The key's bytes, in the type's order.
    fn ordered(key: &Self::SelfType<'_>) -> Vec<u8>;
    /// The redb bytes of the key whose ordered bytes these are; `None` if they are not one.
    fn redb_bytes(ordered: &[u8]) -> Option<Vec<u8>>;
}

fn redb_bytes_of<K: redb::Key>(key: &K::SelfType<'_>) -> Vec<u8> {
    K::as_bytes(key).as_ref().to_vec()
}

fn split_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*head), rest))
}

/// A string that more of the key follows.
fn escape_into(out: &mut Vec<u8>, text: &[u8]) {
    for &b in text {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// The string [`escape_into`] wrote at the start of `bytes`, and what follows it.
fn unescape(bytes: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut text = Vec::new();
    let mut i = 0;
    loop {
        match (bytes.get(i)?, bytes.get(i + 1)) {
            (0, Some(0)) => return Some((text, &bytes[i + 2..])),
            (0, Some(0xff)) => {
                text.push(0);
                i += 2;
            }
            (0, _) => return None,
            (&b, _) => {
                text.push(b);
                i += 1;
            }
        }
    }
}

impl Key for u64 {
    fn ordered(key: &u64) -> Vec<u8> {
        key.to_be_bytes().to_vec()
    }
    fn redb_bytes(ordered: &[u8]) -> Option<Vec<u8>> {
        let (n, rest) = split_u64(ordered)?;
        rest.is_empty().then(|| redb_bytes_of::<u64>(&n))
    }
}

impl Key for &'static str {
    fn ordered(key: &&str) -> Vec<u8> {
        key.as_bytes().to_vec()
    }
    fn redb_bytes(ordered: &[u8]) -> Option<Vec<u8>> {
        let text = std::str::from_utf8(ordered).ok()?;
        Some(redb_bytes_of::<&str>(&text))
    }
}

impl Key for &'static [u8] {
    fn ordered(key: &&[u8]) -> Vec<u8> {
        key.to_vec()
    }
    fn redb_bytes(ordered: &[u8]) -> Option<Vec<u8>> {
        Some(redb_bytes_of::<&[u8]>(&ordered))
    }
}

impl Key for (u64, u64) {
    fn ordered(&(a, b): &(u64, u64)) -> Vec<u8> {
        let mut out = a.to_be_bytes().to_vec();
        out.extend_from_slice(&b.to_be_bytes());
        out
    }
    fn redb_bytes(ordered: &[u8]) -> Option<Vec<u8>> {
        let (a, rest) = split_u64(ordered)?;
        let (b, rest) = split_u64(rest)?;
        rest.is_empty()
            .then(|| redb_bytes_of::<(u64, u64)>(&(a, b)))
    }
}

impl Key for (u64, &'static str) {
    fn ordered(&(a, text): &(u64, &str)) -> Vec<u8> {
        let mut out = a.to_be_bytes().to_vec();
        out.extend_from_slice(text.as_bytes());
        out
    }
    fn redb_bytes(ordered: &[u8]) -> Option<Vec<u8>> {
        let (a, rest) = split_u64(ordered)?;
        let text = std::str::from_utf8(rest).ok()?;
        Some(redb_bytes_of::<(u64, &str)>(&(a, text)))
    }
}

impl Key for (u64, &'static str, &'static str) {
    fn ordered(&(a, first, second): &(u64, &str, &str)) -> Vec<u8> {
        let mut out = a.to_be_bytes().to_vec();
        escape_into(&mut out, first.as_bytes());
        out.extend_from_slice(second.as_bytes());
        out
    }
    fn redb_bytes(ordered: &[u8]) -> Option<Vec<u8>> {
        let (a, rest) = split_u64(ordered)?;
        let (first, rest) = unescape(rest)?;
        let first = std::str::from_utf8(&first).ok()?;
        let second = std::str::from_utf8(rest).ok()?;
        Some(redb_bytes_of::<(u64, &str, &str)>(&(a, first, second)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys listed in their order must encode to strictly increasing bytes.
    fn increasing(encoded: &[Vec<u8>]) -> bool {
        encoded.windows(2).all(|w| w[0] < w[1])
    }

    #[test]
    fn byte_order_is_the_key_order() {
        let ids = [0u64, 1, 255, 256, u64::MAX];
        assert!(increasing(
            &ids.iter().map(u64::ordered).collect::<Vec<_>>()
        ));
        let pairs = [(1u64, 2u64), (1, 300), (2, 0), (u64::MAX, 1)];
        assert!(increasing(
            &pairs.iter().map(<(u64, u64)>::ordered).collect::<Vec<_>>()
        ));
        let triples: [(u64, &'static str, &'static str); 7] = [
            (1, "", "z"),
            (1, "a", ""),
            (1, "a", "b"),
            (1, "a\0", ""),
            (1, "a\0b", ""),
            (1, "ab", ""),
            (2, "", ""),
        ];
        assert!(increasing(
            &triples
                .iter()
                .map(<(u64, &str, &str)>::ordered)
                .collect::<Vec<_>>()
        ));
    }

    #[test]
    fn every_key_comes_back_as_redb_writes_it() {
        let k = (7u64, "a\0b", "c");
        assert_eq!(
            <(u64, &str, &str)>::redb_bytes(&<(u64, &str, &str)>::ordered(&k)),
            Some(redb_bytes_of::<(u64, &str, &str)>(&k))
        );
        let k = (7u64, "topic");
        assert_eq!(
            <(u64, &str)>::redb_bytes(&<(u64, &str)>::ordered(&k)),
            Some(redb_bytes_of::<(u64, &str)>(&k))
        );
        assert_eq!(
            u64::redb_bytes(&u64::ordered(&9)),
            Some(9u64.to_le_bytes().to_vec())
        );
        assert_eq!(<&str>::redb_bytes(b"name").unwrap(), b"name".to_vec());
        assert_eq!(u64::redb_bytes(b"short"), None);
        assert_eq!(<(u64, &str, &str)>::redb_bytes(&[0; 9]), None);
    }
}
