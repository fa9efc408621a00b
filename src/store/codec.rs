//! Record encoding: a version byte, then fields in a fixed order; integers little-endian,
//! strings and bytes prefixed by a u32 length. Decoding never panics: a record that does
//! not parse, or has bytes after its last field, is reported as damaged by the caller; so
//! bytes that decode are exactly the encoding of what they decode to.

const V1: u8 = 1;

#[derive(Clone, Debug, PartialEq)]
pub struct UserRecord {
    pub name: String,
    pub password_hash: String,
    pub admin: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClientRecord {
    pub user_id: u64,
    pub name: String,
    pub key: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AppRecord {
    pub client_id: u64,
    pub registration_id: String,
    pub routing_token: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MessageRecord {
    /// Unix milliseconds from which the message is never delivered.
    pub expires_at: u64,
    pub priority: Option<String>,
    pub registration_id: String,
    pub collapse_key: Option<String>,
    /// Compact JSON of the `data` object, as sent.
    pub data: Vec<u8>,
}

struct Writer(Vec<u8>);

impl Writer {
    fn new() -> Self {
        Writer(vec![V1])
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(mut self, v: &[u8]) -> Self {
        let len = u32::try_from(v.len()).expect("records are far below 4 GiB");
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(v);
        self
    }
    fn opt(self, v: Option<&str>) -> Self {
        match v {
            Some(s) => self.u64(1).bytes(s.as_bytes()),
            None => self.u64(0),
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Option<Self> {
        match bytes.split_first() {
            Some((&V1, rest)) => Some(Reader(rest)),
            _ => None,
        }
    }
    fn u64(&mut self) -> Option<u64> {
        let (head, rest) = self.0.split_at_checked(8)?;
        self.0 = rest;
        Some(u64::from_le_bytes(head.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(4)?;
        let len = u32::from_le_bytes(head.try_into().ok()?) as usize;
        let (value, rest) = rest.split_at_checked(len)?;
        self.0 = rest;
        Some(value)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }
    fn bool(&mut self) -> Option<bool> {
        match self.u64()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    /// `value` if the record had nothing after its last field.
    fn end<T>(self, value: T) -> Option<T> {
        self.0.is_empty().then_some(value)
    }
    fn opt(&mut self) -> Option<Option<String>> {
        match self.u64()? {
            0 => Some(None),
            1 => Some(Some(self.string()?)),
            _ => None,
        }
    }
}

impl UserRecord {
    pub fn encode(&self) -> Vec<u8> {
        Writer::new()
            .bytes(self.name.as_bytes())
            .bytes(self.password_hash.as_bytes())
            .u64(self.admin as u64)
            .0
    }
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes)?;
        let record = UserRecord {
            name: r.string()?,
            password_hash: r.string()?,
            admin: r.bool()?,
        };
        r.end(record)
    }
}

impl ClientRecord {
    pub fn encode(&self) -> Vec<u8> {
        Writer::new()
            .u64(self.user_id)
            .bytes(self.name.as_bytes())
            .bytes(self.key.as_bytes())
            .0
    }
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes)?;
        let record = ClientRecord {
            user_id: r.u64()?,
            name: r.string()?,
            key: r.string()?,
        };
        r.end(record)
    }
}

impl AppRecord {
    pub fn encode(&self) -> Vec<u8> {
        Writer::new()
            .u64(self.client_id)
            .bytes(self.registration_id.as_bytes())
            .bytes(self.routing_token.as_bytes())
            .0
    }
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes)?;
        let record = AppRecord {
            client_id: r.u64()?,
            registration_id: r.string()?,
            routing_token: r.string()?,
        };
        r.end(record)
    }
}

impl MessageRecord {
    /// The expiry time alone, without decoding the rest (it is the first field).
    pub fn expires_at(bytes: &[u8]) -> Option<u64> {
        Reader::new(bytes)?.u64()
    }

    pub fn encode(&self) -> Vec<u8> {
        Writer::new()
            .u64(self.expires_at)
            .opt(self.priority.as_deref())
            .bytes(self.registration_id.as_bytes())
            .opt(self.collapse_key.as_deref())
            .bytes(&self.data)
            .0
    }
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes)?;
        let record = MessageRecord {
            expires_at: r.u64()?,
            priority: r.opt()?,
            registration_id: r.string()?,
            collapse_key: r.opt()?,
            data: r.bytes()?.to_vec(),
        };
        r.end(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_truncation_is_refused() {
        let m = MessageRecord {
            expires_at: 42,
            priority: Some("high".into()),
            registration_id: "app".into(),
            collapse_key: None,
            data: br#"{"a":1}"#.to_vec(),
        };
        let bytes = m.encode();
        assert_eq!(MessageRecord::decode(&bytes), Some(m));
        for cut in 0..bytes.len() {
            assert_eq!(MessageRecord::decode(&bytes[..cut]), None);
        }
        let u = UserRecord {
            name: "ann".into(),
            password_hash: "h".into(),
            admin: true,
        };
        assert_eq!(UserRecord::decode(&u.encode()), Some(u));
    }

    // Regression: trailing bytes and a boolean other than 0 or 1 were accepted, so a damaged
    // record could be half read.
    #[test]
    fn trailing_bytes_and_odd_booleans_are_refused() {
        let u = UserRecord {
            name: "ann".into(),
            password_hash: "h".into(),
            admin: false,
        };
        let mut bytes = u.encode();
        bytes.push(0);
        assert_eq!(UserRecord::decode(&bytes), None);
        let last = bytes.len() - 9;
        bytes.pop();
        bytes[last] = 2;
        assert_eq!(UserRecord::decode(&bytes), None);
    }
}
