//! The 64-byte ZMTP greeting (RFC 23 section "Version negotiation", RFC 37).
//!
//! ```text
//! offset  len  value
//!      0    1  FF          signature start
//!      1    8  padding     never validated (libzmq puts identity length + 1 here)
//!      9    1  7F          bit 0 set = not ZMTP 1.0; only that bit is checked
//!     10    1  major       3
//!     11    1  minor       1 (0 = ZMTP 3.0)
//!     12   20  mechanism   NUL-padded ASCII, compared on all 20 bytes
//!     32    1  as-server   ignored on receipt: roles come from local configuration
//!     33   31  filler      zeros
//! ```
//!
//! libzmq exchanges the greeting in stages so that it can fall back to older versions: it sends the
//! 10-byte signature, reads the peer's, sends the major version, reads the peer's, and only then
//! sends the rest. [`Connection`](crate::Connection) sends the first [`STAGE1_LEN`] bytes at once
//! (signature and major version, never blocking on the peer before them) and the remainder once the
//! peer's major version is known, so neither side ever waits for the other.

use crate::error::ProtocolError;

/// Length of a complete greeting.
pub const GREETING_LEN: usize = 64;
/// Length of the signature (`FF`, 8 bytes of padding, `7F`).
pub const SIGNATURE_LEN: usize = 10;
/// Bytes sent before waiting for anything from the peer: signature plus major version.
pub const STAGE1_LEN: usize = SIGNATURE_LEN + 1;
/// Length of the mechanism field.
pub const MECHANISM_LEN: usize = 20;

/// The ZMTP version a peer announced, reduced to the two behaviours that differ on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Version {
    /// ZMTP 3.0 (RFC 23): subscriptions travel as `\x01topic` / `\x00topic` data messages.
    V3_0,
    /// ZMTP 3.1 (RFC 37) or later: subscriptions are SUBSCRIBE / CANCEL commands.
    V3_1,
}

impl Version {
    /// The version for a peer that announced `major.minor` (`major` at least 3). Like libzmq, only
    /// exactly 3.0 gets 3.0 behaviour; anything newer is treated as 3.1.
    pub const fn from_wire(major: u8, minor: u8) -> Self {
        if major == 3 && minor == 0 {
            Self::V3_0
        } else {
            Self::V3_1
        }
    }
}

/// A parsed or to-be-sent greeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Greeting {
    /// Major version (3).
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Mechanism name, NUL-padded.
    pub mechanism: [u8; MECHANISM_LEN],
    /// The as-server flag. We send it as configured; on receipt it is informational only.
    pub as_server: bool,
}

impl Greeting {
    /// A ZMTP 3.1 greeting for the named mechanism.
    ///
    /// # Panics
    /// If `mechanism` is longer than 20 bytes (mechanism names are compile-time constants).
    pub fn new(mechanism: &[u8], as_server: bool) -> Self {
        assert!(mechanism.len() <= MECHANISM_LEN, "mechanism name too long");
        let mut m = [0; MECHANISM_LEN];
        m[..mechanism.len()].copy_from_slice(mechanism);
        Self {
            major: 3,
            minor: 1,
            mechanism: m,
            as_server,
        }
    }

    /// The 64 bytes on the wire.
    pub fn encode(&self) -> [u8; GREETING_LEN] {
        let mut out = [0u8; GREETING_LEN];
        out[0] = 0xFF;
        out[9] = 0x7F;
        out[10] = self.major;
        out[11] = self.minor;
        out[12..32].copy_from_slice(&self.mechanism);
        out[32] = u8::from(self.as_server);
        out
    }

    /// Checks as much of a greeting as `prefix` holds (any length up to 64): the signature bytes and
    /// the major version. Padding and filler are never checked.
    pub fn check_prefix(prefix: &[u8]) -> Result<(), ProtocolError> {
        if let Some(&b) = prefix.first() {
            if b != 0xFF {
                return Err(ProtocolError::BadSignature);
            }
        }
        if let Some(&b) = prefix.get(9) {
            if b & 1 == 0 {
                return Err(ProtocolError::UnsupportedVersion { major: 0 });
            }
        }
        if let Some(&major) = prefix.get(10) {
            if major < 3 {
                return Err(ProtocolError::UnsupportedVersion { major });
            }
        }
        Ok(())
    }

    /// Parses a complete greeting.
    pub fn parse(bytes: &[u8; GREETING_LEN]) -> Result<Self, ProtocolError> {
        Self::check_prefix(bytes)?;
        let mut mechanism = [0; MECHANISM_LEN];
        mechanism.copy_from_slice(&bytes[12..32]);
        Ok(Self {
            major: bytes[10],
            minor: bytes[11],
            mechanism,
            as_server: bytes[32] != 0,
        })
    }

    /// The peer behaviour this greeting selects.
    pub fn version(&self) -> Version {
        Version::from_wire(self.major, self.minor)
    }

    /// The mechanism name without its NUL padding.
    pub fn mechanism_name(&self) -> &[u8] {
        let end = self
            .mechanism
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i + 1);
        &self.mechanism[..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libzmq `tests/testutil.hpp` `zmtp_greeting_null` (a 3.0 NULL greeting).
    const LIBZMQ_NULL: [u8; 64] = {
        let mut g = [0u8; 64];
        g[0] = 0xFF;
        g[9] = 0x7F;
        g[10] = 3;
        g[12] = b'N';
        g[13] = b'U';
        g[14] = b'L';
        g[15] = b'L';
        g
    };

    #[test]
    fn parses_libzmq_null_greeting() {
        let g = Greeting::parse(&LIBZMQ_NULL).unwrap();
        assert_eq!(g.version(), Version::V3_0);
        assert_eq!(g.mechanism_name(), b"NULL");
        assert!(!g.as_server);
    }

    #[test]
    fn encodes_31_greeting() {
        let mut expected = LIBZMQ_NULL;
        expected[11] = 1;
        assert_eq!(Greeting::new(b"NULL", false).encode(), expected);
        let server = Greeting::new(b"PLAIN", true).encode();
        assert_eq!(server[32], 1);
        assert_eq!(&server[12..18], b"PLAIN\0");
    }

    #[test]
    fn padding_and_as_server_are_not_validated() {
        // libzmq's own greeting carries identity length + 1 in the padding.
        let mut g = LIBZMQ_NULL;
        g[1..9].copy_from_slice(&[0xAA; 8]);
        g[9] = 0xFF;
        g[32] = 7;
        g[40] = 0x55;
        assert!(Greeting::parse(&g).is_ok());
    }

    #[test]
    fn rejects_bad_signature_and_old_versions() {
        assert_eq!(
            Greeting::check_prefix(b"GET / HTTP/1.1"),
            Err(ProtocolError::BadSignature)
        );
        let mut g = LIBZMQ_NULL;
        g[9] = 0x7E;
        assert_eq!(
            Greeting::check_prefix(&g[..10]),
            Err(ProtocolError::UnsupportedVersion { major: 0 })
        );
        let mut g = LIBZMQ_NULL;
        g[10] = 2;
        assert_eq!(
            Greeting::check_prefix(&g[..11]),
            Err(ProtocolError::UnsupportedVersion { major: 2 })
        );
        assert_eq!(Greeting::check_prefix(&LIBZMQ_NULL[..9]), Ok(()));
    }

    #[test]
    fn newer_versions_behave_as_31() {
        assert_eq!(Version::from_wire(3, 0), Version::V3_0);
        assert_eq!(Version::from_wire(3, 1), Version::V3_1);
        assert_eq!(Version::from_wire(3, 2), Version::V3_1);
        assert_eq!(Version::from_wire(4, 0), Version::V3_1);
    }
}
