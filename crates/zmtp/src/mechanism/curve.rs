//! CURVE (RFC 25 and 26, as libzmq 4.x speaks it).
//!
//! | command | contents | box nonce |
//! |---|---|---|
//! | HELLO (200 B) | version 1.0, 72 zero bytes, C′, short nonce, Box\[64 zeros\](C′→S) | `CurveZMQHELLO---` + u64 |
//! | WELCOME (168 B) | 16-byte nonce, Box\[S′ + cookie\](S→C′) | `WELCOME-` + 16 |
//! | cookie (96 B) | 16-byte nonce, SecretBox\[C′ + s′\](K) | `COOKIE--` + 16 |
//! | INITIATE | cookie, short nonce, Box\[C + vouch + metadata\](C′→S′) | `CurveZMQINITIATE` + u64 |
//! | vouch (96 B) | 16-byte nonce, Box\[C′ + S\](C→S′) | `VOUCH---` + 16 |
//! | READY | short nonce, Box\[metadata\](S′→C′) | `CurveZMQREADY---` + u64 |
//! | MESSAGE | short nonce, Box\[flags + payload\] | `CurveZMQMESSAGEC` / `…S` + u64 |
//!
//! Short nonces start at 1 and strictly increase in each direction. The server keeps nothing but
//! the cookie key K between WELCOME and INITIATE: C′ and s′ come back inside the cookie.
//! MESSAGE's flags byte carries MORE (`0x01`) and, as libzmq uses it, COMMAND (`0x02`): PING, PONG
//! and SUBSCRIBE travel encrypted as MESSAGEs with that bit set.

use bytes::Bytes;
use crypto_box::aead::AeadInPlace;
use crypto_box::aead::generic_array::GenericArray;
use crypto_box::{PublicKey, SalsaBox, SecretKey};
use crypto_secretbox::{KeyInit, XSalsa20Poly1305};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use super::plain::unexpected;
use super::{
    AuthRequest, CurveConfig, LocalInfo, PeerAuth, Step, check_socket_type, done,
    encode_properties, properties_len,
};
use crate::command::encode_command_header;
use crate::error::{Error, ProtocolError};
use crate::frame;
use crate::keys::{CurveKeyPair, CurvePublicKey, KEY_LEN};
use crate::message::{Frame, INLINE_CAPACITY};
use crate::metadata::Metadata;

const TAG_LEN: usize = 16;
const HELLO_LEN: usize = 200;
const WELCOME_LEN: usize = 168;
const COOKIE_LEN: usize = 96;
const VOUCH_LEN: usize = 96;
/// INITIATE without metadata: name, cookie, nonce, box of C + vouch.
const INITIATE_MIN: usize = 9 + COOKIE_LEN + 8 + TAG_LEN + KEY_LEN + VOUCH_LEN;
/// READY without metadata.
const READY_MIN: usize = 6 + 8 + TAG_LEN;
/// MESSAGE with an empty payload: name, nonce, MAC, flags.
const MESSAGE_MIN: usize = 8 + 8 + TAG_LEN + 1;

/// MESSAGE flag: more frames follow.
pub(crate) const FLAG_MORE: u8 = 0x01;
/// MESSAGE flag: the payload is a command body (libzmq's use of a bit RFC 26 reserves).
pub(crate) const FLAG_COMMAND: u8 = 0x02;

fn nonce(prefix: &[u8], tail: &[u8]) -> [u8; 24] {
    let mut n = [0u8; 24];
    n[..prefix.len()].copy_from_slice(prefix);
    n[prefix.len()..].copy_from_slice(tail);
    n
}

fn short_nonce(prefix: &[u8; 16], counter: u64) -> [u8; 24] {
    nonce(prefix, &counter.to_be_bytes())
}

fn crypto_failed() -> Error {
    ProtocolError::Cryptographic.into()
}

/// Appends `Box[plaintext]` (MAC then ciphertext) to `out`.
fn seal(key: &impl AeadInPlace, nonce: &[u8; 24], plaintext: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; TAG_LEN]);
    out.extend_from_slice(plaintext);
    seal_in_place(key, nonce, out, start);
}

/// Encrypts `out[start + TAG_LEN..]` in place and writes the MAC into `out[start..start + TAG_LEN]`.
fn seal_in_place(key: &impl AeadInPlace, nonce: &[u8; 24], out: &mut [u8], start: usize) {
    let (mac, data) = out[start..].split_at_mut(TAG_LEN);
    let tag = key
        .encrypt_in_place_detached(GenericArray::from_slice(nonce), b"", data)
        .expect("XSalsa20-Poly1305 encrypts any length that fits in memory");
    mac.copy_from_slice(&tag);
}

/// Opens `Box[...]` (MAC then ciphertext).
fn open(key: &impl AeadInPlace, nonce: &[u8; 24], boxed: &[u8]) -> Result<Vec<u8>, Error> {
    let (mac, data) = boxed.split_at_checked(TAG_LEN).ok_or_else(crypto_failed)?;
    let mut plain = data.to_vec();
    key.decrypt_in_place_detached(
        GenericArray::from_slice(nonce),
        b"",
        &mut plain,
        GenericArray::from_slice(mac),
    )
    .map_err(|_| crypto_failed())?;
    Ok(plain)
}

fn curve_box(public: &[u8; KEY_LEN], secret: &[u8; KEY_LEN]) -> SalsaBox {
    SalsaBox::new(&PublicKey::from(*public), &SecretKey::from(*secret))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    ExpectWelcome,
    ExpectReady,
    ExpectHello,
    ExpectInitiate,
    Authenticating,
}

/// One side of a CURVE handshake.
pub(crate) struct CurveHandshake {
    state: State,
    rng: ChaCha20Rng,
    keys: CurveKeyPair,
    /// Client: the server's long-term key.
    server_key: Option<CurvePublicKey>,
    /// Client: our short-term secret c′.
    ephemeral_secret: [u8; KEY_LEN],
    /// Client: the cookie to echo in INITIATE.
    cookie: [u8; COOKIE_LEN],
    /// Server: the cookie key K, the only state kept between WELCOME and INITIATE.
    cookie_key: [u8; KEY_LEN],
    /// The next short nonce we send.
    send_nonce: u64,
    /// The last short nonce the peer sent.
    recv_nonce: u64,
    /// Once both short-term keys are known: the precomputed session box.
    session: Option<SalsaBox>,
    /// Server, while authenticating: the client's long-term key and metadata.
    client: Option<(CurvePublicKey, Metadata)>,
}

impl std::fmt::Debug for CurveHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurveHandshake")
            .field("state", &self.state)
            .field("send_nonce", &self.send_nonce)
            .field("recv_nonce", &self.recv_nonce)
            .finish_non_exhaustive()
    }
}

impl CurveHandshake {
    pub(crate) fn new(config: &CurveConfig, as_server: bool, seed: [u8; 32]) -> Self {
        Self {
            state: if as_server {
                State::ExpectHello
            } else {
                State::ExpectWelcome
            },
            rng: ChaCha20Rng::from_seed(seed),
            keys: config.keys.clone(),
            server_key: config.server_key,
            ephemeral_secret: [0; KEY_LEN],
            cookie: [0; COOKIE_LEN],
            cookie_key: [0; KEY_LEN],
            send_nonce: 1,
            recv_nonce: 0,
            session: None,
            client: None,
        }
    }

    pub(crate) fn awaiting_auth(&self) -> bool {
        self.state == State::Authenticating
    }

    fn random<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        self.rng.fill_bytes(&mut out);
        out
    }

    fn next_nonce(&mut self) -> u64 {
        let n = self.send_nonce;
        self.send_nonce += 1;
        n
    }

    /// Records the peer's short nonce, which must be larger than the last one.
    fn check_nonce(&mut self, bytes: &[u8]) -> Result<u64, Error> {
        let n = u64::from_be_bytes(bytes.try_into().expect("8 bytes"));
        if n <= self.recv_nonce {
            return Err(ProtocolError::BadNonce.into());
        }
        self.recv_nonce = n;
        Ok(n)
    }

    pub(crate) fn start(&mut self, out: &mut Vec<u8>) -> Result<Step, Error> {
        if self.state != State::ExpectWelcome {
            return Ok(Step::Continue);
        }
        let server_key = self.server_key.ok_or(ProtocolError::Cryptographic)?;
        self.ephemeral_secret = self.random();
        let ephemeral = SecretKey::from(self.ephemeral_secret).public_key();
        let nonce_n = self.next_nonce();
        encode_command_header(out, b"HELLO", HELLO_LEN - 6);
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&[0; 72]);
        out.extend_from_slice(ephemeral.as_bytes());
        out.extend_from_slice(&nonce_n.to_be_bytes());
        let key = curve_box(server_key.as_bytes(), &self.ephemeral_secret);
        seal(
            &key,
            &short_nonce(b"CurveZMQHELLO---", nonce_n),
            &[0; 64],
            out,
        );
        Ok(Step::Continue)
    }

    pub(crate) fn handle_command(
        &mut self,
        body: &[u8],
        local: &LocalInfo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Step, Error> {
        match self.state {
            State::ExpectHello => self.on_hello(body, out),
            State::ExpectInitiate => self.on_initiate(body, local, out),
            State::ExpectWelcome => self.on_welcome(body, local, out),
            State::ExpectReady => self.on_ready(body),
            State::Authenticating => Err(unexpected(body)),
        }
    }

    /// Server: checks HELLO and answers WELCOME.
    fn on_hello(&mut self, body: &[u8], out: &mut Vec<u8>) -> Result<Step, Error> {
        if !body.starts_with(b"\x05HELLO") {
            return Err(unexpected(body));
        }
        if body.len() != HELLO_LEN {
            return Err(ProtocolError::MalformedCommandBody("HELLO").into());
        }
        if body[6..8] != [1, 0] || body[8..80].iter().any(|&b| b != 0) {
            return Err(ProtocolError::MalformedCommandBody("HELLO").into());
        }
        let client_ephemeral: [u8; KEY_LEN] = body[80..112].try_into().expect("32 bytes");
        let n = self.check_nonce(&body[112..120])?;
        let key = curve_box(&client_ephemeral, self.keys.secret.as_bytes());
        let zeros = open(&key, &short_nonce(b"CurveZMQHELLO---", n), &body[120..])?;
        if zeros.iter().any(|&b| b != 0) {
            return Err(crypto_failed());
        }

        // A fresh short-term key pair, sealed with C′ into the cookie under a fresh cookie key.
        let ephemeral_secret: [u8; KEY_LEN] = self.random();
        let ephemeral = SecretKey::from(ephemeral_secret).public_key();
        self.cookie_key = self.random();
        let cookie_nonce: [u8; 16] = self.random();
        let mut cookie_plain = [0u8; 2 * KEY_LEN];
        cookie_plain[..KEY_LEN].copy_from_slice(&client_ephemeral);
        cookie_plain[KEY_LEN..].copy_from_slice(&ephemeral_secret);
        let mut welcome_plain = Vec::with_capacity(KEY_LEN + COOKIE_LEN);
        welcome_plain.extend_from_slice(ephemeral.as_bytes());
        welcome_plain.extend_from_slice(&cookie_nonce);
        let cookie_box = XSalsa20Poly1305::new(GenericArray::from_slice(&self.cookie_key));
        seal(
            &cookie_box,
            &nonce(b"COOKIE--", &cookie_nonce),
            &cookie_plain,
            &mut welcome_plain,
        );
        zeroize::Zeroize::zeroize(&mut cookie_plain);

        let welcome_nonce: [u8; 16] = self.random();
        encode_command_header(out, b"WELCOME", WELCOME_LEN - 8);
        out.extend_from_slice(&welcome_nonce);
        seal(
            &key,
            &nonce(b"WELCOME-", &welcome_nonce),
            &welcome_plain,
            out,
        );
        self.state = State::ExpectInitiate;
        Ok(Step::Continue)
    }

    /// Client: opens WELCOME and answers INITIATE with our vouch and metadata.
    fn on_welcome(
        &mut self,
        body: &[u8],
        local: &LocalInfo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Step, Error> {
        if !body.starts_with(b"\x07WELCOME") {
            return Err(unexpected(body));
        }
        if body.len() != WELCOME_LEN {
            return Err(ProtocolError::MalformedCommandBody("WELCOME").into());
        }
        let server_key = self.server_key.ok_or(ProtocolError::Cryptographic)?;
        let key = curve_box(server_key.as_bytes(), &self.ephemeral_secret);
        let plain = open(&key, &nonce(b"WELCOME-", &body[8..24]), &body[24..])?;
        let server_ephemeral: [u8; KEY_LEN] = plain[..KEY_LEN].try_into().expect("32 bytes");
        self.cookie.copy_from_slice(&plain[KEY_LEN..]);

        // The vouch: C′ and S, boxed from our long-term key to S′.
        let mut vouch_plain = [0u8; 2 * KEY_LEN];
        vouch_plain[..KEY_LEN].copy_from_slice(
            SecretKey::from(self.ephemeral_secret)
                .public_key()
                .as_bytes(),
        );
        vouch_plain[KEY_LEN..].copy_from_slice(server_key.as_bytes());
        let vouch_nonce: [u8; 16] = self.random();
        let vouch_key = curve_box(&server_ephemeral, self.keys.secret.as_bytes());

        let meta_len = properties_len(local);
        let mut inner = Vec::with_capacity(KEY_LEN + VOUCH_LEN + meta_len);
        inner.extend_from_slice(self.keys.public.as_bytes());
        inner.extend_from_slice(&vouch_nonce);
        seal(
            &vouch_key,
            &nonce(b"VOUCH---", &vouch_nonce),
            &vouch_plain,
            &mut inner,
        );
        encode_properties(local, &mut inner);

        let session = curve_box(&server_ephemeral, &self.ephemeral_secret);
        let n = self.next_nonce();
        encode_command_header(out, b"INITIATE", COOKIE_LEN + 8 + TAG_LEN + inner.len());
        out.extend_from_slice(&self.cookie);
        out.extend_from_slice(&n.to_be_bytes());
        seal(&session, &short_nonce(b"CurveZMQINITIATE", n), &inner, out);
        zeroize::Zeroize::zeroize(&mut self.ephemeral_secret);
        self.session = Some(session);
        self.state = State::ExpectReady;
        Ok(Step::Continue)
    }

    /// Server: opens the cookie, INITIATE and the vouch, then asks for authentication or answers
    /// READY.
    fn on_initiate(
        &mut self,
        body: &[u8],
        local: &LocalInfo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Step, Error> {
        if !body.starts_with(b"\x08INITIATE") {
            return Err(unexpected(body));
        }
        if body.len() < INITIATE_MIN {
            return Err(ProtocolError::MalformedCommandBody("INITIATE").into());
        }
        let cookie = &body[9..9 + COOKIE_LEN];
        let cookie_box = XSalsa20Poly1305::new(GenericArray::from_slice(&self.cookie_key));
        let mut cookie_plain = open(
            &cookie_box,
            &nonce(b"COOKIE--", &cookie[..16]),
            &cookie[16..],
        )?;
        let client_ephemeral: [u8; KEY_LEN] = cookie_plain[..KEY_LEN].try_into().expect("32");
        let ephemeral_secret: [u8; KEY_LEN] = cookie_plain[KEY_LEN..].try_into().expect("32");
        zeroize::Zeroize::zeroize(&mut cookie_plain);
        // The cookie is single-use.
        zeroize::Zeroize::zeroize(&mut self.cookie_key);

        let at = 9 + COOKIE_LEN;
        let n = self.check_nonce(&body[at..at + 8])?;
        let session = curve_box(&client_ephemeral, &ephemeral_secret);
        let inner = open(
            &session,
            &short_nonce(b"CurveZMQINITIATE", n),
            &body[at + 8..],
        )?;
        let client_key: [u8; KEY_LEN] = inner[..KEY_LEN].try_into().expect("32 bytes");
        let vouch = &inner[KEY_LEN..KEY_LEN + VOUCH_LEN];
        let vouch_key = curve_box(&client_key, &ephemeral_secret);
        let vouched = open(&vouch_key, &nonce(b"VOUCH---", &vouch[..16]), &vouch[16..])?;
        if vouched[..KEY_LEN] != client_ephemeral
            || vouched[KEY_LEN..] != self.keys.public.as_bytes()[..]
        {
            return Err(crypto_failed());
        }
        let metadata = Metadata::parse(&inner[KEY_LEN + VOUCH_LEN..])?;
        check_socket_type(local, &metadata)?;
        self.session = Some(session);
        let client_key = CurvePublicKey::from_bytes(client_key);
        if local.authenticate {
            self.state = State::Authenticating;
            self.client = Some((client_key, metadata));
            return Ok(Step::Authenticate(AuthRequest {
                mechanism: "CURVE",
                credentials: vec![Bytes::copy_from_slice(client_key.as_bytes())],
            }));
        }
        self.client = Some((client_key, metadata));
        self.accepted(local, out)
    }

    /// Server: sends READY once the client is accepted.
    pub(crate) fn accepted(
        &mut self,
        local: &LocalInfo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Step, Error> {
        let (client_key, metadata) = self.client.take().ok_or(ProtocolError::Cryptographic)?;
        let session = self.session.take().ok_or(ProtocolError::Cryptographic)?;
        let mut plain = Vec::with_capacity(properties_len(local));
        encode_properties(local, &mut plain);
        let n = self.next_nonce();
        encode_command_header(out, b"READY", 8 + TAG_LEN + plain.len());
        out.extend_from_slice(&n.to_be_bytes());
        seal(&session, &short_nonce(b"CurveZMQREADY---", n), &plain, out);
        Ok(self.established(session, metadata, client_key))
    }

    /// The completed handshake: the session box carries on for MESSAGEs, the nonces go on from
    /// where the handshake left them, and `peer_key` is the peer's long-term key.
    fn established(&self, session: SalsaBox, metadata: Metadata, peer_key: CurvePublicKey) -> Step {
        let (ours, theirs) = if self.state == State::ExpectReady {
            (*b"CurveZMQMESSAGEC", *b"CurveZMQMESSAGES")
        } else {
            (*b"CurveZMQMESSAGES", *b"CurveZMQMESSAGEC")
        };
        let cipher = CurveCipher {
            key: session,
            send_prefix: ours,
            recv_prefix: theirs,
            send_nonce: self.send_nonce,
            recv_nonce: self.recv_nonce,
        };
        done(
            metadata,
            Some(cipher),
            PeerAuth {
                curve_public_key: Some(peer_key),
                ..PeerAuth::default()
            },
        )
    }

    /// Client: opens READY; the handshake is complete.
    fn on_ready(&mut self, body: &[u8]) -> Result<Step, Error> {
        if !body.starts_with(b"\x05READY") {
            return Err(unexpected(body));
        }
        if body.len() < READY_MIN {
            return Err(ProtocolError::MalformedCommandBody("READY").into());
        }
        let n = self.check_nonce(&body[6..14])?;
        let session = self.session.take().ok_or(ProtocolError::Cryptographic)?;
        let plain = open(&session, &short_nonce(b"CurveZMQREADY---", n), &body[14..])?;
        let metadata = Metadata::parse(&plain)?;
        let server_key = self.server_key.ok_or(ProtocolError::Cryptographic)?;
        Ok(self.established(session, metadata, server_key))
    }
}

/// The established side of CURVE: every frame in either direction is a boxed MESSAGE.
pub(crate) struct CurveCipher {
    key: SalsaBox,
    send_prefix: [u8; 16],
    recv_prefix: [u8; 16],
    send_nonce: u64,
    recv_nonce: u64,
}

impl std::fmt::Debug for CurveCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurveCipher")
            .field("send_nonce", &self.send_nonce)
            .field("recv_nonce", &self.recv_nonce)
            .finish_non_exhaustive()
    }
}

impl CurveCipher {
    /// Appends one MESSAGE frame carrying `flags` and the payload `head` followed by `body`,
    /// encrypted in place in `out`.
    #[inline]
    pub(crate) fn encrypt(&mut self, flags: u8, head: &[u8], body: &[u8], out: &mut Vec<u8>) {
        let n = self.send_nonce;
        self.send_nonce = n.saturating_add(1);
        let len = MESSAGE_MIN + head.len() + body.len();
        out.reserve(frame::LONG_HEADER_LEN + len);
        // libzmq sends MESSAGE as a data frame with no flags; MORE lives inside the box.
        frame::encode_header(out, 0, len);
        out.extend_from_slice(b"\x07MESSAGE");
        out.extend_from_slice(&n.to_be_bytes());
        let start = out.len();
        out.extend_from_slice(&[0; TAG_LEN]);
        out.push(flags);
        out.extend_from_slice(head);
        out.extend_from_slice(body);
        seal_in_place(&self.key, &short_nonce(&self.send_prefix, n), out, start);
    }

    /// Opens one MESSAGE frame body: its flags and payload.
    #[inline]
    pub(crate) fn decrypt(&mut self, body: &[u8]) -> Result<(u8, Frame), Error> {
        if !body.starts_with(b"\x07MESSAGE") {
            return Err(unexpected(body));
        }
        if body.len() < MESSAGE_MIN {
            return Err(ProtocolError::MalformedCommandBody("MESSAGE").into());
        }
        let n = u64::from_be_bytes(body[8..16].try_into().expect("8 bytes"));
        if n <= self.recv_nonce {
            return Err(ProtocolError::BadNonce.into());
        }
        let nonce = short_nonce(&self.recv_prefix, n);
        let nonce = GenericArray::from_slice(&nonce);
        let mac = GenericArray::from_slice(&body[16..16 + TAG_LEN]);
        let data = &body[16 + TAG_LEN..];
        let (flags, frame) = if data.len() <= 1 + INLINE_CAPACITY {
            let mut buf = [0u8; 1 + INLINE_CAPACITY];
            let buf = &mut buf[..data.len()];
            buf.copy_from_slice(data);
            self.key
                .decrypt_in_place_detached(nonce, b"", buf, mac)
                .map_err(|_| crypto_failed())?;
            (buf[0], Frame::copy_from_slice(&buf[1..]))
        } else {
            let mut buf = data.to_vec();
            self.key
                .decrypt_in_place_detached(nonce, b"", &mut buf, mac)
                .map_err(|_| crypto_failed())?;
            let flags = buf[0];
            (flags, Frame::from_bytes(Bytes::from(buf).slice(1..)))
        };
        // Only a MESSAGE that authenticated moves the nonce on.
        self.recv_nonce = n;
        Ok((flags, frame))
    }
}
