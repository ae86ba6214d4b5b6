//! Connection behaviour through the in-memory pair with virtual time, and against raw peers built
//! from libzmq's byte vectors.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Pair, Side, feed_in_pieces, raw_handshake};
use omq_zmtp::{
    Config, Connection, Error, Event, Limits, Message, ProtocolError, SocketType, UsageError,
    Version, WriteBuf,
};

/// libzmq `tests/testutil.hpp` `zmtp_greeting_null`.
const LIBZMQ_GREETING_NULL: [u8; 64] = {
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
/// libzmq `tests/testutil.hpp` `zmtp_ready_dealer` (also RFC 37's DEALER example).
const LIBZMQ_READY_DEALER: &[u8] =
    b"\x04\x29\x05READY\x0bSocket-Type\x00\x00\x00\x06DEALER\x08Identity\x00\x00\x00\x00";
/// libzmq `tests/testutil.hpp` `zmtp_ready_sub`.
const LIBZMQ_READY_SUB: &[u8] = b"\x04\x19\x05READY\x0bSocket-Type\x00\x00\x00\x03SUB";

fn transmit(conn: &mut Connection) -> Vec<u8> {
    let mut buf = WriteBuf::new();
    conn.poll_transmit(&mut buf);
    let mut out = Vec::new();
    buf.drain_into(&mut out);
    out
}

fn events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.poll_event()).collect()
}

#[test]
fn handshake_in_both_orders() {
    for server_first in [false, true] {
        for (c, s) in [
            (SocketType::Dealer, SocketType::Router),
            (SocketType::Req, SocketType::Rep),
            (SocketType::Sub, SocketType::XPub),
            (SocketType::Client, SocketType::Server),
        ] {
            let mut pair = Pair::of(c, s);
            pair.drive_ordered(server_first);
            assert!(pair.client.conn.is_established());
            assert!(pair.server.conn.is_established());
            let peer = pair.server.conn.peer().unwrap();
            assert_eq!(peer.socket_type, Some(c));
            assert_eq!(peer.version, Version::V3_1);
            assert_eq!(peer.identity.is_some(), c.sends_identity());
            assert_eq!(pair.client.conn.peer().unwrap().socket_type, Some(s));
        }
    }
}

#[test]
fn every_compatible_pair_establishes_and_every_other_is_refused() {
    for a in SocketType::ALL {
        for b in SocketType::ALL {
            let mut pair = Pair::of(a, b);
            pair.drive();
            if a.is_compatible(b) {
                assert!(pair.client.conn.is_established(), "{a} to {b}");
                assert!(pair.server.conn.is_established(), "{a} to {b}");
            } else {
                // Both sides see the other's READY and refuse it; each sends ERROR first.
                assert!(
                    matches!(
                        pair.server.error,
                        Some(Error::Protocol(
                            ProtocolError::IncompatibleSocketType { .. }
                        ))
                    ),
                    "{a} to {b}: {:?}",
                    pair.server.error
                );
                assert!(pair.client.error.is_some(), "{a} to {b}");
                assert!(!pair.client.conn.is_established());
            }
        }
    }
}

#[test]
fn refusal_sends_error_command() {
    // A raw PUSH peer talking to our PUSH: we answer its READY with ERROR and fail.
    let mut conn = Connection::new(Config::new(SocketType::Push), Instant::now()).unwrap();
    let _ = transmit(&mut conn);
    let err = conn
        .handle_input(Instant::now(), &raw_handshake(SocketType::Push, 1))
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Protocol(ProtocolError::IncompatibleSocketType { ours: SocketType::Push, ref theirs })
            if theirs == b"PUSH"
    ));
    let out = transmit(&mut conn);
    let ready_at = out.windows(6).position(|w| w == b"\x05READY").unwrap();
    let error_at = out.windows(6).position(|w| w == b"\x05ERROR").unwrap();
    assert!(error_at > ready_at);
    // Sticky: the same error again, and no more sending.
    assert_eq!(conn.handle_input(Instant::now(), b"x"), Err(err.clone()));
    assert_eq!(conn.handle_timeout(Instant::now()), Err(err));
    assert_eq!(
        conn.send(&"x".into(), &mut WriteBuf::new()),
        Err(UsageError::Failed)
    );
    assert_eq!(conn.poll_timeout(), None);
}

#[test]
fn peer_error_command_is_refused_with_reason() {
    let mut conn = Connection::new(Config::new(SocketType::Dealer), Instant::now()).unwrap();
    let mut input = LIBZMQ_GREETING_NULL.to_vec();
    input.extend_from_slice(b"\x04\x0a\x05ERROR\x03400");
    assert_eq!(
        conn.handle_input(Instant::now(), &input),
        Err(Error::Refused {
            reason: "400".into()
        })
    );
}

#[test]
fn libzmq_dealer_bytes_handshake_with_our_router() {
    let now = Instant::now();
    let mut conn = Connection::new(Config::new(SocketType::Router), now).unwrap();
    // Stage one: signature and major version only, before anything arrives.
    let first = transmit(&mut conn);
    assert_eq!(first, LIBZMQ_GREETING_NULL[..11]);
    // Signature and major from the peer release the rest of our greeting.
    assert_eq!(conn.handle_input(now, &LIBZMQ_GREETING_NULL[..11]), Ok(11));
    let second = transmit(&mut conn);
    let mut greeting = first.clone();
    greeting.extend_from_slice(&second);
    let mut expected = LIBZMQ_GREETING_NULL;
    expected[11] = 1;
    assert_eq!(greeting, expected);
    // The rest of the greeting (libzmq's 3.0 one) and its READY.
    let mut rest = LIBZMQ_GREETING_NULL[11..].to_vec();
    rest.extend_from_slice(LIBZMQ_READY_DEALER);
    assert_eq!(conn.handle_input(now, &rest), Ok(rest.len()));
    assert!(conn.is_established());
    let out = transmit(&mut conn);
    assert_eq!(
        out,
        b"\x04\x29\x05READY\x0bSocket-Type\x00\x00\x00\x06ROUTER\x08Identity\x00\x00\x00\x00"
    );
    let peer = conn.peer().unwrap();
    assert_eq!(peer.version, Version::V3_0);
    assert_eq!(peer.socket_type, Some(SocketType::Dealer));
    assert_eq!(peer.identity.as_deref(), Some(&b""[..]));
}

#[test]
fn dealer_sends_97_bytes_after_the_signature() {
    // libzmq tests/test_stream.cpp reads exactly this from a DEALER.
    let now = Instant::now();
    let mut conn = Connection::new(Config::new(SocketType::Dealer), now).unwrap();
    let mut out = transmit(&mut conn);
    conn.handle_input(now, &LIBZMQ_GREETING_NULL).unwrap();
    out.extend(transmit(&mut conn));
    let after = &out[10..];
    assert_eq!(after.len(), 97);
    assert_eq!(&after[..2], b"\x03\x01");
    assert_eq!(&after[2..6], b"NULL");
    assert_eq!(&after[54..], LIBZMQ_READY_DEALER);
}

#[test]
fn xpub_accepts_libzmq_30_sub_and_sees_message_form_subscriptions() {
    let now = Instant::now();
    let mut conn = Connection::new(Config::new(SocketType::XPub), now).unwrap();
    let mut input = LIBZMQ_GREETING_NULL.to_vec();
    input.extend_from_slice(LIBZMQ_READY_SUB);
    // libzmq tests/test_mock_pub_sub.cpp: a 3.0 SUB subscribes with the message `\x01A`.
    input.extend_from_slice(b"\x00\x02\x01A");
    // ... and a 3.1 one with a command, which an XPUB accepts on any connection.
    input.extend_from_slice(b"\x04\x0b\x09SUBSCRIBEB");
    conn.handle_input(now, &input).unwrap();
    assert_eq!(
        events(&mut conn),
        [
            Event::Established,
            Event::Message(Message::from(&b"\x01A"[..])),
            Event::Subscribe(Bytes::from_static(b"B")),
        ]
    );
}

#[test]
fn subscriptions_use_the_peer_versions_form() {
    for (client_version, expect_command) in [(Version::V3_1, true), (Version::V3_0, false)] {
        // The server (a PUB) announces `client_version`; the SUB picks the form from it.
        let mut server = Config::new(SocketType::Pub);
        server.version = client_version;
        let mut pair = Pair::new(Config::new(SocketType::Sub), server);
        pair.establish();
        let mut buf = WriteBuf::new();
        pair.client.conn.subscribe(b"topic", &mut buf).unwrap();
        pair.client.conn.cancel(b"topic", &mut buf).unwrap();
        buf.drain_into(&mut pair.client.outbox);
        pair.drive();
        let got = pair.server.take_events();
        if expect_command {
            assert_eq!(
                got,
                [
                    Event::Subscribe(Bytes::from_static(b"topic")),
                    Event::Cancel(Bytes::from_static(b"topic")),
                ]
            );
        } else {
            assert_eq!(
                got,
                [
                    Event::Message(Message::from(&b"\x01topic"[..])),
                    Event::Message(Message::from(&b"\x00topic"[..])),
                ]
            );
        }
    }
}

#[test]
fn join_and_leave() {
    let mut pair = Pair::of(SocketType::Dish, SocketType::Radio);
    pair.establish();
    let mut buf = WriteBuf::new();
    pair.client.conn.join(b"weather", &mut buf).unwrap();
    pair.client.conn.leave(b"weather", &mut buf).unwrap();
    assert_eq!(
        pair.client.conn.join(&[b'g'; 256], &mut buf),
        Err(UsageError::GroupTooLong)
    );
    buf.drain_into(&mut pair.client.outbox);
    pair.drive();
    assert_eq!(
        pair.server.take_events(),
        [
            Event::Join(Bytes::from_static(b"weather")),
            Event::Leave(Bytes::from_static(b"weather")),
        ]
    );
}

#[test]
fn messages_flow_both_ways_after_the_handshake() {
    let mut pair = Pair::of(SocketType::Dealer, SocketType::Router);
    pair.establish();
    let big = Message::from(vec![7u8; 100_000]);
    pair.client_send("one");
    pair.client_send(Message::from_iter(["", "two"]));
    pair.client_send(big.clone());
    assert_eq!(
        pair.server.take_messages(),
        [Message::from("one"), Message::from_iter(["", "two"]), big]
    );
    let mut buf = WriteBuf::new();
    pair.server.conn.send(&"back".into(), &mut buf).unwrap();
    buf.drain_into(&mut pair.server.outbox);
    pair.drive();
    assert_eq!(pair.client.take_messages(), [Message::from("back")]);
}

#[test]
fn send_before_handshake_and_empty_messages_are_usage_errors() {
    let mut conn = Connection::new(Config::new(SocketType::Push), Instant::now()).unwrap();
    let mut buf = WriteBuf::new();
    assert_eq!(conn.send(&"x".into(), &mut buf), Err(UsageError::NotReady));
    assert_eq!(conn.subscribe(b"", &mut buf), Err(UsageError::NotReady));
    let mut pair = Pair::of(SocketType::Push, SocketType::Pull);
    pair.establish();
    assert_eq!(
        pair.client.conn.send(&Message::new(), &mut buf),
        Err(UsageError::EmptyMessage)
    );
    assert!(buf.is_empty());
}

#[test]
fn invalid_config_is_a_usage_error() {
    let mut c = Config::new(SocketType::Dealer);
    c.identity = Bytes::from(vec![1u8; 256]);
    assert!(matches!(
        Connection::new(c, Instant::now()),
        Err(UsageError::InvalidConfig(_))
    ));
    let mut c = Config::new(SocketType::Dealer);
    c.metadata.insert("socket-type", "PUB").unwrap();
    assert!(Connection::new(c, Instant::now()).is_err());
}

#[test]
fn application_metadata_reaches_the_peer() {
    let mut client = Config::new(SocketType::Req);
    client.identity = Bytes::from_static(b"me");
    client.metadata.insert("X-Color", "blue").unwrap();
    let mut pair = Pair::new(client, Config::new(SocketType::Router));
    pair.establish();
    let peer = pair.server.conn.peer().unwrap();
    assert_eq!(peer.identity.as_deref(), Some(&b"me"[..]));
    assert_eq!(peer.metadata.get("x-color").unwrap(), "blue");
}

#[test]
fn greeting_errors() {
    let now = Instant::now();
    let new = || Connection::new(Config::new(SocketType::Pull), now).unwrap();
    assert_eq!(
        new().handle_input(now, b"GET / HTTP/1.1\r\n"),
        Err(ProtocolError::BadSignature.into())
    );
    // ZMTP 2.0 (major 1) and 1.0 (bit 0 of byte 9 clear).
    let mut g = LIBZMQ_GREETING_NULL;
    g[10] = 1;
    assert_eq!(
        new().handle_input(now, &g),
        Err(ProtocolError::UnsupportedVersion { major: 1 }.into())
    );
    let mut g = LIBZMQ_GREETING_NULL;
    g[9] = 0;
    assert_eq!(
        new().handle_input(now, &g[..10]),
        Err(ProtocolError::UnsupportedVersion { major: 0 }.into())
    );
    let mut g = LIBZMQ_GREETING_NULL;
    g[12..17].copy_from_slice(b"CURVE");
    let mut conn = new();
    assert_eq!(
        conn.handle_input(now, &g),
        Err(ProtocolError::MechanismMismatch {
            ours: "NULL",
            theirs: b"CURVE".to_vec()
        }
        .into())
    );
    // A mechanism mismatch closes without an ERROR command (the peer could not read it).
    assert!(!transmit(&mut conn).windows(6).any(|w| w == b"\x05ERROR"));
    // NULL followed by garbage in the rest of the 20 bytes is a mismatch too.
    let mut g = LIBZMQ_GREETING_NULL;
    g[20] = b'X';
    assert!(new().handle_input(now, &g).is_err());
}

#[test]
fn handshake_errors() {
    let now = Instant::now();
    let cases: &[(&[u8], Error)] = &[
        (b"\x00\x01x", ProtocolError::UnexpectedMessage.into()),
        (
            b"\x04\x06\x05HELLO",
            ProtocolError::UnexpectedCommand(b"HELLO".to_vec()).into(),
        ),
        (b"\x04\x00", ProtocolError::MalformedCommand.into()),
        (
            b"\x04\x0b\x05READY\x00\x00\x00\x00\x00",
            ProtocolError::MalformedMetadata("empty property name").into(),
        ),
        (
            b"\x04\x0c\x05READY\x01A\x00\x00\x00\x09",
            ProtocolError::MalformedMetadata("value runs past the end of the command").into(),
        ),
        (
            b"\x06\x00\x00\x00\x00\x00\x01\x00\x01",
            ProtocolError::MetadataTooLarge {
                size: 65537,
                limit: 65536,
            }
            .into(),
        ),
        (b"\x05\x05\x04PING", ProtocolError::CommandWithMore.into()),
    ];
    for (bytes, expected) in cases {
        let mut conn = Connection::new(Config::new(SocketType::Pull), now).unwrap();
        let mut input = LIBZMQ_GREETING_NULL.to_vec();
        input.extend_from_slice(bytes);
        let got = conn.handle_input(now, &input);
        if let Error::Protocol(ProtocolError::MetadataTooLarge { .. }) = expected {
            assert!(
                matches!(
                    got,
                    Err(Error::Protocol(ProtocolError::MetadataTooLarge { .. }))
                ),
                "{got:?}"
            );
        } else {
            assert_eq!(got.as_ref(), Err(expected), "{bytes:?}");
        }
        // A protocol error during the handshake is answered with ERROR.
        assert!(transmit(&mut conn).windows(6).any(|w| w == b"\x05ERROR"));
    }
    // An identity over 255 bytes.
    let mut ready = Vec::new();
    let mut meta = omq_zmtp::Metadata::new();
    meta.insert("Socket-Type", "DEALER").unwrap();
    meta.insert("Identity", vec![1u8; 300]).unwrap();
    let mut body = b"\x05READY".to_vec();
    meta.encode(&mut body);
    omq_zmtp::frame::encode_header(&mut ready, omq_zmtp::frame::FLAG_COMMAND, body.len());
    ready.extend_from_slice(&body);
    let mut conn = Connection::new(Config::new(SocketType::Router), now).unwrap();
    let mut input = LIBZMQ_GREETING_NULL.to_vec();
    input.extend_from_slice(&ready);
    assert_eq!(
        conn.handle_input(now, &input),
        Err(ProtocolError::InvalidIdentity.into())
    );
}

#[test]
fn missing_socket_type_is_tolerated_like_libzmq() {
    let now = Instant::now();
    let mut conn = Connection::new(Config::new(SocketType::Pull), now).unwrap();
    let mut input = LIBZMQ_GREETING_NULL.to_vec();
    input.extend_from_slice(b"\x04\x06\x05READY");
    conn.handle_input(now, &input).unwrap();
    assert!(conn.is_established());
    assert_eq!(conn.peer().unwrap().socket_type, None);
}

#[test]
fn data_errors_after_the_handshake() {
    let now = Instant::now();
    let mut limits = Limits::default();
    limits.max_message_size = Some(1000);
    let mut config = Config::new(SocketType::Pull);
    config.limits = limits;
    let handshake = {
        let mut v = LIBZMQ_GREETING_NULL.to_vec();
        v.extend_from_slice(&raw_handshake(SocketType::Push, 1)[64..]);
        v
    };
    let cases: &[(&[u8], Error)] = &[
        (
            b"\x02\x80\x00\x00\x00\x00\x00\x00\x00",
            ProtocolError::LengthOverflow(1 << 63).into(),
        ),
        (
            b"\x02\x00\x00\x00\x00\x00\x00\x03\xe9",
            ProtocolError::MessageTooLarge {
                size: 1001,
                limit: 1000,
            }
            .into(),
        ),
        (b"\x04\x02\x04PI", ProtocolError::MalformedCommand.into()),
        (
            b"\x04\x06\x04PING\x00",
            ProtocolError::MalformedCommandBody("PING").into(),
        ),
    ];
    for (bytes, expected) in cases {
        let mut conn = Connection::new(config.clone(), now).unwrap();
        let mut input = handshake.clone();
        input.extend_from_slice(bytes);
        assert_eq!(conn.handle_input(now, &input).as_ref(), Err(expected));
        // No ERROR command after the handshake.
        assert!(!transmit(&mut conn).windows(6).any(|w| w == b"\x05ERROR"));
    }
}

#[test]
fn unknown_and_late_handshake_commands_are_ignored_after_the_handshake() {
    let mut pair = Pair::of(SocketType::Push, SocketType::Pull);
    pair.establish();
    let mut raw = Vec::new();
    for cmd in [
        &b"\x04\x07\x06FOOBAR"[..],
        b"\x04\x06\x05READY",
        b"\x04\x0a\x05ERROR\x03400",
        b"\x04\x05\x04PONG",
    ] {
        raw.extend_from_slice(cmd);
    }
    raw.extend_from_slice(b"\x00\x02ok");
    pair.client.outbox.extend_from_slice(&raw);
    pair.drive();
    assert!(pair.server.error.is_none());
    assert_eq!(pair.server.take_events(), [Event::Message("ok".into())]);
}

#[test]
fn ping_is_answered_with_pong_echoing_context() {
    let mut pair = Pair::of(SocketType::Push, SocketType::Pull);
    pair.establish();
    let now = pair.now;
    // netmq's vector: PING, TTL 0, context "HI".
    pair.server
        .conn
        .handle_input(now, b"\x04\x09\x04PING\x00\x00HI")
        .unwrap();
    assert_eq!(transmit(&mut pair.server.conn), b"\x04\x07\x04PONGHI");
    assert_eq!(pair.server.conn.poll_timeout(), None, "TTL 0 sets no timer");
}

fn heartbeat_config(socket_type: SocketType, ivl_ms: u64) -> Config {
    let mut c = Config::new(socket_type);
    c.heartbeat_interval = Some(Duration::from_millis(ivl_ms));
    c
}

#[test]
fn heartbeats_keep_a_live_peer_alive() {
    let mut client = heartbeat_config(SocketType::Dealer, 100);
    client.heartbeat_ttl = Some(Duration::from_millis(300));
    let server = heartbeat_config(SocketType::Router, 70);
    let mut pair = Pair::new(client, server);
    pair.establish();
    pair.advance(Duration::from_secs(10));
    assert!(pair.client.error.is_none(), "{:?}", pair.client.error);
    assert!(pair.server.error.is_none(), "{:?}", pair.server.error);
    assert!(pair.client.take_events().is_empty());
}

#[test]
fn ping_carries_ttl_and_peer_answers() {
    let mut client = heartbeat_config(SocketType::Dealer, 1000);
    client.heartbeat_ttl = Some(Duration::from_millis(2500));
    let mut pair = Pair::new(client, Config::new(SocketType::Router));
    pair.establish();
    let t0 = pair.now;
    assert_eq!(
        pair.client.conn.poll_timeout(),
        Some(t0 + Duration::from_secs(1))
    );
    pair.client.deliver = false;
    pair.now = t0 + Duration::from_secs(1);
    pair.client.conn.handle_timeout(pair.now).unwrap();
    pair.client.flush();
    // TTL 25 tenths of a second, empty context.
    assert_eq!(pair.client.outbox, b"\x04\x07\x04PING\x00\x19");
    pair.client.deliver = true;
    pair.drive();
    assert!(pair.server.conn.poll_timeout() == Some(pair.now + Duration::from_millis(2500)));
    // The PONG reached the client: its heartbeat timeout is disarmed, next PING at 2 s.
    assert_eq!(
        pair.client.conn.poll_timeout(),
        Some(t0 + Duration::from_secs(2))
    );
}

/// Advances `pair` by `d` in two steps, checking that the side `which` picks is still up 1 ms
/// before and has failed with `e` at the end.
fn fails_after(pair: &mut Pair, which: fn(&mut Pair) -> &mut Side, d: Duration, e: Error) {
    pair.advance(d - Duration::from_millis(1));
    assert_eq!(which(pair).error, None);
    pair.advance(Duration::from_millis(1));
    assert_eq!(which(pair).error, Some(e));
}

fn the_client(p: &mut Pair) -> &mut Side {
    &mut p.client
}

fn the_server(p: &mut Pair) -> &mut Side {
    &mut p.server
}

/// The client pings at 1 s and hears nothing back: its timeout drops the connection at 2.5 s.
/// A pause in its reading from 0.5 s, `paused` long, moves that on by as much: the silence it
/// does not read is no timeout.
fn silent_peer_times_out(paused: Duration) {
    let mut client = heartbeat_config(SocketType::Dealer, 1000);
    client.heartbeat_timeout = Some(Duration::from_millis(1500));
    let mut pair = Pair::new(client, Config::new(SocketType::Router));
    pair.establish();
    pair.server.deliver = false;
    pair.advance(Duration::from_millis(500));
    if !paused.is_zero() {
        pair.client.conn.set_reading(false, pair.now);
        // Saying so again changes nothing.
        pair.client.conn.set_reading(false, pair.now + paused / 2);
        pair.advance(paused);
        assert_eq!(pair.client.error, None);
        // PINGs went on meanwhile: the server answered each (undelivered) with a PONG.
        assert!(pair.server.outbox.windows(5).any(|w| w == b"\x04PONG"));
        pair.client.conn.set_reading(true, pair.now);
    }
    let d = Duration::from_secs(2);
    fails_after(&mut pair, the_client, d, Error::HeartbeatTimeout);
}

#[test]
fn heartbeat_timeout_drops_a_silent_peer() {
    silent_peer_times_out(Duration::ZERO);
}

#[test]
fn a_reader_that_does_not_read_does_not_time_out() {
    silent_peer_times_out(Duration::from_secs(10));
}

#[test]
fn late_input_beats_the_heartbeat_timeout() {
    // Input that arrived before the deadline fires is fed first and counts as life.
    let mut client = heartbeat_config(SocketType::Dealer, 1000);
    client.heartbeat_timeout = Some(Duration::from_millis(500));
    let mut pair = Pair::new(client, Config::new(SocketType::Router));
    pair.establish();
    pair.server.deliver = false;
    pair.advance(Duration::from_millis(1400));
    assert!(pair.client.error.is_none());
    let deadline = pair.client.conn.poll_timeout().unwrap();
    pair.now = deadline;
    pair.server.deliver = true;
    pair.drive();
    pair.client.conn.handle_timeout(pair.now).unwrap();
}

/// The client pings at 1 s with TTL 3 s, then falls silent: the server drops it at 4 s, or
/// that much after the end of a pause in its reading from 1 s, `paused` long.
fn silent_peer_outlives_its_ttl(paused: Duration) {
    let mut client = heartbeat_config(SocketType::Dealer, 1000);
    client.heartbeat_ttl = Some(Duration::from_secs(3));
    let mut pair = Pair::new(client, Config::new(SocketType::Router));
    pair.establish();
    pair.advance(Duration::from_secs(1));
    pair.client.deliver = false;
    if !paused.is_zero() {
        pair.server.conn.set_reading(false, pair.now);
        pair.advance(paused);
        assert_eq!(pair.server.error, None);
        pair.server.conn.set_reading(true, pair.now);
    }
    let d = Duration::from_secs(3);
    fails_after(&mut pair, the_server, d, Error::TtlExpired);
}

#[test]
fn ttl_expiry_drops_a_silent_peer() {
    silent_peer_outlives_its_ttl(Duration::ZERO);
}

#[test]
fn a_reader_that_does_not_read_keeps_the_peers_ttl() {
    silent_peer_outlives_its_ttl(Duration::from_secs(60));
}

#[test]
fn handshake_timeout() {
    let mut server = Config::new(SocketType::Rep);
    server.handshake_timeout = Some(Duration::from_secs(30));
    let mut pair = Pair::new(Config::new(SocketType::Req), server);
    // The client never gets past its first 11 bytes.
    pair.client.deliver = false;
    pair.drive();
    pair.advance(Duration::from_millis(29_999));
    assert_eq!(pair.server.error, None);
    pair.advance(Duration::from_millis(1));
    assert_eq!(pair.server.error, Some(Error::HandshakeTimeout));
    assert_eq!(pair.client.error, Some(Error::HandshakeTimeout));
    // Once established, the handshake deadline is gone.
    let mut pair = Pair::of(SocketType::Req, SocketType::Rep);
    pair.establish();
    assert_eq!(pair.server.conn.poll_timeout(), None);
}

#[test]
fn spurious_timeouts_are_harmless() {
    let mut pair = Pair::of(SocketType::Req, SocketType::Rep);
    pair.establish();
    let now = pair.now;
    pair.client.conn.handle_timeout(now).unwrap();
    pair.client
        .conn
        .handle_timeout(now - Duration::from_secs(1))
        .unwrap();
    pair.client.flush();
    assert!(pair.client.outbox.is_empty());
}

#[test]
fn partial_frames_are_left_for_the_next_read() {
    let now = Instant::now();
    let conn = Connection::new(Config::new(SocketType::Pull), now).unwrap();
    let mut stream = LIBZMQ_GREETING_NULL.to_vec();
    stream.extend_from_slice(&raw_handshake(SocketType::Push, 1)[64..]);
    let hs = stream.len();
    stream.extend_from_slice(b"\x00\x05hello");
    let (ev, _, err) = feed_in_pieces(conn, now, &stream, &[hs + 3]);
    assert!(err.is_none());
    assert_eq!(ev, [Event::Established, Event::Message("hello".into())]);
    let mut conn = Connection::new(Config::new(SocketType::Pull), now).unwrap();
    assert_eq!(conn.handle_input(now, &stream[..hs + 3]), Ok(hs));
    assert_eq!(conn.bytes_needed(), 7);
}

#[test]
fn our_ready_precedes_a_message_sent_right_after_the_handshake() {
    // The peer's greeting and READY arrive in one read; we send before polling our output.
    let now = Instant::now();
    let mut conn = Connection::new(Config::new(SocketType::Push), now).unwrap();
    let mut wire = WriteBuf::new();
    conn.poll_transmit(&mut wire);
    conn.handle_input(now, &raw_handshake(SocketType::Pull, 1))
        .unwrap();
    assert!(conn.is_established());
    conn.send(&Message::from("first"), &mut wire).unwrap();
    conn.poll_transmit(&mut wire);
    let mut out = Vec::new();
    wire.drain_into(&mut out);
    let ready_at = out.windows(6).position(|w| w == b"\x05READY").unwrap();
    let msg_at = out.windows(7).position(|w| w == b"\x00\x05first").unwrap();
    assert!(ready_at < msg_at);
}

#[test]
fn commands_are_held_to_the_message_size_limit() {
    let now = Instant::now();
    let mut config = Config::new(SocketType::XPub);
    config.limits.max_message_size = Some(1 << 20);
    let mut conn = Connection::new(config, now).unwrap();
    let mut input = raw_handshake(SocketType::Sub, 1);
    // A SUBSCRIBE declaring 1 TiB: refused on its header.
    input.extend_from_slice(b"\x06\x00\x00\x01\x00\x00\x00\x00\x00\x09SUBSCRIBE");
    assert_eq!(
        conn.handle_input(now, &input),
        Err(ProtocolError::MessageTooLarge {
            size: 1 << 40,
            limit: 1 << 20
        }
        .into())
    );
}

#[test]
fn presenting_the_same_partial_frame_again_is_not_proof_of_life() {
    let mut client = heartbeat_config(SocketType::Dealer, 1000);
    client.heartbeat_timeout = Some(Duration::from_millis(500));
    let mut pair = Pair::new(client, Config::new(SocketType::Router));
    pair.establish();
    // The server sends the first 3 bytes of a frame and dies.
    pair.server.deliver = false;
    let partial = b"\x00\x05hel";
    let now = pair.now + Duration::from_millis(1000);
    assert_eq!(pair.client.conn.handle_input(now, partial), Ok(0));
    pair.client.conn.handle_timeout(now).unwrap(); // PING sent, deadline 1.5 s
    // A driver feeding its buffer on every loop turn presents the same bytes again.
    let later = now + Duration::from_millis(500);
    assert_eq!(pair.client.conn.handle_input(later, partial), Ok(0));
    assert_eq!(
        pair.client.conn.handle_timeout(later),
        Err(Error::HeartbeatTimeout)
    );
}

#[test]
fn zero_durations_are_refused() {
    for set in [
        (|c: &mut Config| c.heartbeat_interval = Some(Duration::ZERO)) as fn(&mut Config),
        |c| c.heartbeat_timeout = Some(Duration::ZERO),
        |c| c.heartbeat_ttl = Some(Duration::ZERO),
        |c| c.handshake_timeout = Some(Duration::ZERO),
    ] {
        let mut c = Config::new(SocketType::Pair);
        set(&mut c);
        assert!(matches!(
            Connection::new(c, Instant::now()),
            Err(UsageError::InvalidConfig(_))
        ));
    }
    // Huge ones mean "never" rather than overflowing.
    let mut c = Config::new(SocketType::Pair);
    c.handshake_timeout = Some(Duration::MAX);
    c.heartbeat_interval = Some(Duration::MAX);
    let mut pair = Pair::new(c.clone(), c);
    pair.establish();
    assert_eq!(pair.client.conn.poll_timeout(), None);
}

#[test]
fn a_ping_flood_gets_one_pong() {
    let mut pair = Pair::of(SocketType::Push, SocketType::Pull);
    pair.establish();
    let now = pair.now;
    let mut flood = Vec::new();
    for i in 0..1000u16 {
        flood.extend_from_slice(b"\x04\x09\x04PING\x00\x00");
        flood.extend_from_slice(&i.to_be_bytes());
    }
    pair.server.conn.handle_input(now, &flood).unwrap();
    // The last PING's context is echoed, once.
    assert_eq!(transmit(&mut pair.server.conn), b"\x04\x07\x04PONG\x03\xe7");
}

#[test]
fn application_metadata_is_sent_sorted_like_libzmq() {
    let now = Instant::now();
    let mut config = Config::new(SocketType::Pull);
    config.metadata.insert("X-b", "2").unwrap();
    config.metadata.insert("X-a", "1").unwrap();
    let mut conn = Connection::new(config, now).unwrap();
    conn.handle_input(now, &LIBZMQ_GREETING_NULL).unwrap();
    let out = transmit(&mut conn);
    let a = out.windows(3).position(|w| w == b"X-a").unwrap();
    let b = out.windows(3).position(|w| w == b"X-b").unwrap();
    assert!(a < b);
}

#[test]
fn short_ttl_rounds_up_instead_of_disabling() {
    let mut client = heartbeat_config(SocketType::Dealer, 1000);
    client.heartbeat_ttl = Some(Duration::from_millis(30));
    let mut pair = Pair::new(client, Config::new(SocketType::Router));
    pair.establish();
    pair.client.deliver = false;
    pair.now += Duration::from_secs(1);
    pair.client.conn.handle_timeout(pair.now).unwrap();
    pair.client.flush();
    assert_eq!(pair.client.outbox, b"\x04\x07\x04PING\x00\x01");
}

/// Feeds `buf` to `conn` with a sink that takes every message into `sunk`; whether decoding
/// paused.
fn feed_sink(conn: &mut Connection, buf: &mut bytes::BytesMut, sunk: &mut Vec<Message>) -> bool {
    conn.handle_read_buf_with(Instant::now(), buf, |m| {
        sunk.push(m);
        Ok(())
    })
    .unwrap()
}

#[test]
fn sink_takes_messages_only_behind_no_queued_event() {
    let mut pair = Pair::of(SocketType::XSub, SocketType::XPub);
    pair.establish();
    let mut wire = WriteBuf::new();
    let client = &mut pair.client.conn;
    client.send(&"m0".into(), &mut wire).unwrap();
    client.subscribe(b"a", &mut wire).unwrap();
    client.send(&"m1".into(), &mut wire).unwrap();
    client.send(&"m2".into(), &mut wire).unwrap();
    let mut bytes = Vec::new();
    wire.drain_into(&mut bytes);
    let mut buf = bytes::BytesMut::from(&bytes[..]);

    let mut sunk = Vec::new();
    let server = &mut pair.server.conn;
    // `m1` came after the subscription: it is queued behind it, and decoding pauses there.
    assert!(feed_sink(server, &mut buf, &mut sunk));
    assert_eq!(sunk, [Message::from("m0")]);
    assert_eq!(
        events(server),
        [
            Event::Subscribe(Bytes::from_static(b"a")),
            Event::Message(Message::from("m1")),
        ]
    );
    assert_eq!(buf.len(), 4, "m2's frame is left");
    assert!(!feed_sink(server, &mut buf, &mut sunk));
    assert!(buf.is_empty());
    assert_eq!(sunk, [Message::from("m0"), Message::from("m2")]);

    // A declined message is queued and decoding pauses; the rest waits in the buffer.
    for m in ["m3", "m4"] {
        pair.client.conn.send(&m.into(), &mut wire).unwrap();
    }
    bytes.clear();
    wire.drain_into(&mut bytes);
    let mut buf = bytes::BytesMut::from(&bytes[..]);
    let mut declined = Vec::new();
    let paused = server
        .handle_read_buf_with(pair.now, &mut buf, |m| {
            declined.push(m.clone());
            Err(m)
        })
        .unwrap();
    assert!(paused);
    assert_eq!(declined, [Message::from("m3")]);
    assert_eq!(events(server), [Event::Message(Message::from("m3"))]);
    assert_eq!(buf.len(), 4, "m4's frame is left");
    assert!(!feed_sink(server, &mut buf, &mut sunk));
    assert_eq!(sunk.last(), Some(&Message::from("m4")));
    assert!(buf.is_empty());
}
