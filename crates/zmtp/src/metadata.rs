//! Connection metadata: the property list carried by READY (and, later, PLAIN and CURVE commands).
//!
//! ```text
//! metadata = *property
//! property = name-len(u8, >= 1) name value-len(u32 BE, <= 2^31 - 1) value
//! ```
//! Names compare case-insensitively. `Socket-Type` and `Identity` are defined by ZMTP; applications
//! add their own under names starting with `X-`.

use bytes::Bytes;

use crate::error::{ProtocolError, UsageError};

/// The `Socket-Type` property name.
pub const SOCKET_TYPE: &str = "Socket-Type";
/// The `Identity` property name.
pub const IDENTITY: &str = "Identity";
/// The `Resource` property name (ZMTP 3.1).
pub const RESOURCE: &str = "Resource";

const MAX_VALUE_LEN: usize = i32::MAX as usize;

/// An ordered list of metadata properties.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    props: Vec<(Bytes, Bytes)>,
}

impl Metadata {
    /// An empty property list.
    pub const fn new() -> Self {
        Self { props: Vec::new() }
    }

    /// Appends a property, replacing an earlier one of the same name (case-insensitively).
    ///
    /// Names must be 1-255 bytes and values at most 2^31 - 1 bytes.
    pub fn insert(
        &mut self,
        name: impl Into<Bytes>,
        value: impl Into<Bytes>,
    ) -> Result<(), UsageError> {
        let name = name.into();
        let value = value.into();
        if name.is_empty() || name.len() > 255 {
            return Err(UsageError::InvalidConfig(
                "metadata names must be 1-255 bytes",
            ));
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(UsageError::InvalidConfig(
                "metadata values must be at most 2^31 - 1 bytes",
            ));
        }
        self.props.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.props.push((name, value));
        Ok(())
    }

    /// The value of the property `name`, compared case-insensitively.
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.props
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// Iterates over `(name, value)` pairs in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.props.iter().map(|(n, v)| (&n[..], &v[..]))
    }

    /// The number of properties.
    pub fn len(&self) -> usize {
        self.props.len()
    }

    /// Whether there are no properties.
    pub fn is_empty(&self) -> bool {
        self.props.is_empty()
    }

    /// The size of the encoded property list in bytes.
    pub fn encoded_len(&self) -> usize {
        self.props
            .iter()
            .map(|(n, v)| 1 + n.len() + 4 + v.len())
            .sum()
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        for (name, value) in &self.props {
            encode_property(out, name, value);
        }
    }

    /// Parses a property list that must fill `data` exactly.
    pub fn parse(mut data: &[u8]) -> Result<Self, ProtocolError> {
        let mut props = Vec::new();
        while let Some((&name_len, rest)) = data.split_first() {
            let name_len = usize::from(name_len);
            if name_len == 0 {
                return Err(ProtocolError::MalformedMetadata("empty property name"));
            }
            if rest.len() < name_len + 4 {
                return Err(ProtocolError::MalformedMetadata("truncated property"));
            }
            let (name, rest) = rest.split_at(name_len);
            let (len, rest) = rest.split_at(4);
            let value_len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            if value_len > MAX_VALUE_LEN {
                return Err(ProtocolError::MalformedMetadata(
                    "value length above 2^31 - 1",
                ));
            }
            if rest.len() < value_len {
                return Err(ProtocolError::MalformedMetadata(
                    "value runs past the end of the command",
                ));
            }
            let (value, rest) = rest.split_at(value_len);
            props.push((Bytes::copy_from_slice(name), Bytes::copy_from_slice(value)));
            data = rest;
        }
        Ok(Self { props })
    }
}

/// Appends one property in wire form. `name` must be 1-255 bytes.
pub(crate) fn encode_property(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    debug_assert!(!name.is_empty() && name.len() <= 255);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_case_insensitive_lookup() {
        let mut m = Metadata::new();
        m.insert("Socket-Type", "DEALER").unwrap();
        m.insert("Identity", "").unwrap();
        m.insert("X-Hello", "world").unwrap();
        let mut wire = Vec::new();
        m.encode(&mut wire);
        assert_eq!(wire.len(), m.encoded_len());
        let parsed = Metadata::parse(&wire).unwrap();
        assert_eq!(parsed, m);
        assert_eq!(parsed.get("socket-type").unwrap(), "DEALER");
        assert_eq!(parsed.get("X-HELLO").unwrap(), "world");
        assert_eq!(parsed.get("identity").unwrap(), "");
        assert!(parsed.get("Resource").is_none());
    }

    #[test]
    fn insert_replaces_and_validates() {
        let mut m = Metadata::new();
        m.insert("X-A", "1").unwrap();
        m.insert("x-a", "2").unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m.get("X-A").unwrap(), "2");
        assert!(m.insert("", "v").is_err());
        assert!(m.insert(vec![b'a'; 256], "v").is_err());
    }

    #[test]
    fn rejects_malformed() {
        assert!(Metadata::parse(&[]).unwrap().is_empty());
        assert_eq!(
            Metadata::parse(&[0, 0, 0, 0, 0]),
            Err(ProtocolError::MalformedMetadata("empty property name"))
        );
        assert!(Metadata::parse(&[3, b'a', b'b']).is_err());
        assert!(Metadata::parse(&[1, b'a', 0, 0, 0, 2, b'x']).is_err());
        assert!(Metadata::parse(&[1, b'a', 0x80, 0, 0, 0]).is_err());
        assert!(Metadata::parse(&[1, b'a', 0, 0, 0]).is_err());
    }
}
