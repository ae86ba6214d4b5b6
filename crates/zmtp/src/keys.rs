//! CURVE keys: Curve25519 public and secret keys, written as 32 bytes or 40 Z85 characters.

use std::fmt;
use std::str::FromStr;

use crate::z85;

/// Length of a CURVE key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of a CURVE key in Z85 characters.
pub const Z85_KEY_LEN: usize = 40;

/// Why a key was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A key is 32 bytes or 40 Z85 characters.
    #[error("a CURVE key is 32 bytes or 40 Z85 characters, got {0} bytes")]
    BadLength(usize),
    /// The 40 characters are not valid Z85.
    #[error("invalid Z85 key: {0}")]
    Z85(#[from] z85::Z85Error),
    /// The operating system's random number generator failed.
    #[error("no randomness available: {0}")]
    Random(String),
}

fn parse_key(key: &[u8]) -> Result<[u8; KEY_LEN], KeyError> {
    match key.len() {
        KEY_LEN => Ok(key.try_into().expect("length checked")),
        Z85_KEY_LEN => {
            let text = std::str::from_utf8(key)
                .map_err(|e| KeyError::Z85(z85::Z85Error::BadCharacter(e.valid_up_to())))?;
            let bytes = z85::decode(text)?;
            Ok(bytes.try_into().expect("40 characters decode to 32 bytes"))
        }
        n => Err(KeyError::BadLength(n)),
    }
}

/// A CURVE public key (a server's long-term key, or a client's).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CurvePublicKey([u8; KEY_LEN]);

impl CurvePublicKey {
    /// The key from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key from 32 raw bytes or 40 Z85 characters, as libzmq's key options accept it.
    pub fn parse(key: &[u8]) -> Result<Self, KeyError> {
        parse_key(key).map(Self)
    }

    /// The key's 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The key as 40 Z85 characters.
    pub fn to_z85(&self) -> String {
        z85::encode(&self.0).expect("32 is a multiple of 4")
    }
}

impl fmt::Debug for CurvePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CurvePublicKey({})", self.to_z85())
    }
}

impl fmt::Display for CurvePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_z85())
    }
}

impl FromStr for CurvePublicKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, KeyError> {
        Self::parse(s.as_bytes())
    }
}

/// A CURVE secret key. Its `Debug` output does not show the key, and its memory is zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct CurveSecretKey([u8; KEY_LEN]);

impl CurveSecretKey {
    /// The key from its 32 bytes.
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key from 32 raw bytes or 40 Z85 characters.
    pub fn parse(key: &[u8]) -> Result<Self, KeyError> {
        parse_key(key).map(Self)
    }

    /// The key's 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The key as 40 Z85 characters.
    pub fn to_z85(&self) -> String {
        z85::encode(&self.0).expect("32 is a multiple of 4")
    }

    /// The public key that belongs to this secret key.
    pub fn public_key(&self) -> CurvePublicKey {
        CurvePublicKey(self.box_key().public_key().to_bytes())
    }

    pub(crate) fn box_key(&self) -> crypto_box::SecretKey {
        crypto_box::SecretKey::from_bytes(self.0)
    }
}

impl fmt::Debug for CurveSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurveSecretKey(..)")
    }
}

impl FromStr for CurveSecretKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, KeyError> {
        Self::parse(s.as_bytes())
    }
}

impl Drop for CurveSecretKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// A CURVE key pair (libzmq's `zmq_curve_keypair`).
///
/// ```
/// use omq_zmtp::CurveKeyPair;
///
/// let pair = CurveKeyPair::generate().unwrap();
/// assert_eq!(pair.public.to_z85().len(), 40);
/// assert_eq!(pair.secret.public_key(), pair.public);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurveKeyPair {
    /// The public key, given to peers.
    pub public: CurvePublicKey,
    /// The secret key, kept private.
    pub secret: CurveSecretKey,
}

impl CurveKeyPair {
    /// A new key pair from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, KeyError> {
        let mut secret = [0u8; KEY_LEN];
        getrandom::getrandom(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self::from_secret(CurveSecretKey(secret)))
    }

    /// The key pair of `secret` (libzmq's `zmq_curve_public`).
    pub fn from_secret(secret: CurveSecretKey) -> Self {
        Self {
            public: secret.public_key(),
            secret,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server key pair used throughout libzmq's CURVE tests (`tests/testutil_security.cpp`):
    /// the public key must derive from the secret one.
    #[test]
    fn libzmq_test_keys_derive() {
        let secret: CurveSecretKey = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6".parse().unwrap();
        let public: CurvePublicKey = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7".parse().unwrap();
        assert_eq!(secret.public_key(), public);
        assert_eq!(public.to_z85(), "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
        assert_eq!(CurvePublicKey::parse(public.as_bytes()).unwrap(), public);
    }

    #[test]
    fn bad_keys_are_refused() {
        assert_eq!(CurvePublicKey::parse(b"short"), Err(KeyError::BadLength(5)));
        assert!(matches!(
            CurvePublicKey::parse(&[b'~'; 40]),
            Err(KeyError::Z85(_))
        ));
        assert_eq!(
            format!("{:?}", CurveSecretKey::from_bytes([7; 32])),
            "CurveSecretKey(..)"
        );
    }

    #[test]
    fn generated_pairs_differ() {
        let a = CurveKeyPair::generate().unwrap();
        let b = CurveKeyPair::generate().unwrap();
        assert_ne!(a.public, b.public);
    }
}
