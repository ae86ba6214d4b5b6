//! How received messages are printed: one line per message.

use clap::ValueEnum;
use omq_sockets::api::Message;

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Frames as text (invalid UTF-8 replaced), joined by TAB.
    Text,
    /// Frames in lower-case hex, joined by TAB.
    Hex,
    /// Frames in base64, joined by TAB.
    Base64,
    /// `{"frames":[...]}`: each frame a string when it is UTF-8, else `{"base64":"..."}`.
    Json,
}

impl Format {
    pub(crate) fn render(self, m: &Message) -> String {
        match self {
            Self::Text => join(m, |f| String::from_utf8_lossy(f).into_owned()),
            Self::Hex => join(m, hex),
            Self::Base64 => join(m, base64),
            Self::Json => {
                let frames: Vec<String> = m
                    .iter()
                    .map(|f| match std::str::from_utf8(f) {
                        Ok(s) => json_string(s),
                        Err(_) => format!("{{\"base64\":\"{}\"}}", base64(f)),
                    })
                    .collect();
                format!("{{\"frames\":[{}]}}", frames.join(","))
            }
        }
    }
}

fn join(m: &Message, f: impl Fn(&[u8]) -> String) -> String {
    m.iter().map(|fr| f(fr)).collect::<Vec<_>>().join("\t")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Standard base64 with padding (RFC 4648).
pub(crate) fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &x)| acc | (u32::from(x) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want, "{input}");
        }
    }

    #[test]
    fn every_format() {
        let m: Message = [&b"a\"b"[..], &[0xff, 0x00][..]].into_iter().collect();
        assert_eq!(Format::Text.render(&m), "a\"b\t\u{fffd}\u{0}");
        assert_eq!(Format::Hex.render(&m), "612262\tff00");
        assert_eq!(Format::Base64.render(&m), "YSJi\t/wA=");
        assert_eq!(
            Format::Json.render(&m),
            "{\"frames\":[\"a\\\"b\",{\"base64\":\"/wA=\"}]}"
        );
    }
}
