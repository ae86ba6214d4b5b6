//! Z85 (RFC 32): the printable encoding ZeroMQ uses for CURVE keys.
//!
//! Four bytes become five characters from an 85-character alphabet, so a 32-byte key is 40
//! characters.
//!
//! ```
//! let text = omq_zmtp::z85::encode(&[0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]).unwrap();
//! assert_eq!(text, "HelloWorld");
//! assert_eq!(omq_zmtp::z85::decode(&text).unwrap(), [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]);
//! ```

const ALPHABET: &[u8; 85] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// The value of each alphabet character, `0xFF` for bytes outside the alphabet.
const DECODE: [u8; 256] = {
    let mut table = [0xFF; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Why a Z85 encode or decode was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Z85Error {
    /// Binary input must be a multiple of 4 bytes long.
    #[error("Z85 encodes multiples of 4 bytes, got {0}")]
    BadBinaryLength(usize),
    /// Text input must be a multiple of 5 characters long.
    #[error("Z85 text must be a multiple of 5 characters, got {0}")]
    BadTextLength(usize),
    /// A character outside the Z85 alphabet, at this byte offset.
    #[error("invalid Z85 character at offset {0}")]
    BadCharacter(usize),
    /// A group of five characters whose value does not fit in four bytes, at this offset.
    #[error("Z85 group at offset {0} is out of range")]
    Overflow(usize),
}

/// Encodes `data` (a multiple of 4 bytes) as Z85 text.
pub fn encode(data: &[u8]) -> Result<String, Z85Error> {
    if data.len() % 4 != 0 {
        return Err(Z85Error::BadBinaryLength(data.len()));
    }
    let mut out = String::with_capacity(data.len() / 4 * 5);
    for chunk in data.chunks_exact(4) {
        let mut value = u32::from_be_bytes(chunk.try_into().expect("chunk of 4"));
        let mut group = [0u8; 5];
        for slot in group.iter_mut().rev() {
            *slot = ALPHABET[(value % 85) as usize];
            value /= 85;
        }
        out.extend(group.iter().map(|&c| char::from(c)));
    }
    Ok(out)
}

/// Decodes Z85 `text` (a multiple of 5 characters).
pub fn decode(text: &str) -> Result<Vec<u8>, Z85Error> {
    let text = text.as_bytes();
    if text.len() % 5 != 0 {
        return Err(Z85Error::BadTextLength(text.len()));
    }
    let mut out = Vec::with_capacity(text.len() / 5 * 4);
    for (i, group) in text.chunks_exact(5).enumerate() {
        let mut value: u64 = 0;
        for (j, &c) in group.iter().enumerate() {
            let digit = DECODE[usize::from(c)];
            if digit == 0xFF {
                return Err(Z85Error::BadCharacter(i * 5 + j));
            }
            value = value * 85 + u64::from(digit);
        }
        let value = u32::try_from(value).map_err(|_| Z85Error::Overflow(i * 5))?;
        out.extend_from_slice(&value.to_be_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc32_vector() {
        let data = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B];
        assert_eq!(encode(&data).unwrap(), "HelloWorld");
        assert_eq!(decode("HelloWorld").unwrap(), data);
    }

    /// Every alphabet character decodes to its index, and all byte values round-trip.
    #[test]
    fn alphabet_and_round_trip() {
        for (i, &c) in ALPHABET.iter().enumerate() {
            assert_eq!(usize::from(DECODE[usize::from(c)]), i);
        }
        let data: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&data).unwrap()).unwrap(), data);
        assert_eq!(encode(&[0xFF; 4]).unwrap(), "%nSc0");
        assert_eq!(encode(&[0; 4]).unwrap(), "00000");
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(encode(&[1, 2, 3]), Err(Z85Error::BadBinaryLength(3)));
        assert_eq!(decode("Hello!"), Err(Z85Error::BadTextLength(6)));
        assert_eq!(decode("Hell\""), Err(Z85Error::BadCharacter(4)));
        assert_eq!(decode("Hello~orld"), Err(Z85Error::BadCharacter(5)));
        // "%nSc1" is 2^32: one past the largest group.
        assert_eq!(decode("%nSc1"), Err(Z85Error::Overflow(0)));
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
    }
}
