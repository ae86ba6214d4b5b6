//! PLAIN and CURVE through the in-memory pair: handshakes, authentication answers, boxed traffic
//! and hostile handshakes.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Pair;
use omq_zmtp::{
    AuthReply, Config, Connection, CurveConfig, CurveKeyPair, CurveSecretKey, Error, Event,
    Greeting, Mechanism, Message, ProtocolError, SocketType, WriteBuf,
};

fn plain(socket_type: SocketType, as_server: bool, authenticate: bool) -> Config {
    let mut config = Config::new(socket_type);
    config.mechanism = Mechanism::Plain {
        username: Bytes::from_static(b"admin"),
        password: Bytes::from_static(b"secret"),
    };
    config.as_server = as_server;
    config.authenticate = authenticate;
    config
}

/// The server key pair of libzmq's CURVE tests.
fn server_keys() -> CurveKeyPair {
    let secret: CurveSecretKey = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6".parse().unwrap();
    CurveKeyPair::from_secret(secret)
}

fn client_keys() -> CurveKeyPair {
    let secret: CurveSecretKey = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs".parse().unwrap();
    CurveKeyPair::from_secret(secret)
}

fn curve_pair(client: SocketType, server: SocketType, authenticate: bool) -> Pair {
    let mut c = Config::new(client);
    c.mechanism = Mechanism::Curve(CurveConfig::client(client_keys(), server_keys().public));
    let mut s = Config::new(server);
    s.mechanism = Mechanism::Curve(CurveConfig::server(server_keys()));
    s.as_server = true;
    s.authenticate = authenticate;
    Pair::new(c, s)
}

fn auth_request(events: Vec<Event>) -> omq_zmtp::AuthRequest {
    match events.as_slice() {
        [Event::Authenticate(request)] => request.clone(),
        other => panic!("expected one Authenticate event, got {other:?}"),
    }
}

#[test]
fn plain_without_authentication_accepts_and_reports_the_user() {
    let mut pair = Pair::new(
        plain(SocketType::Push, false, false),
        plain(SocketType::Pull, true, false),
    );
    pair.establish();
    let auth = &pair.server.conn.peer().unwrap().auth;
    assert_eq!(auth.plain_username.as_deref(), Some(&b"admin"[..]));
    pair.client_send("hello");
    assert_eq!(pair.server.take_messages(), [Message::from("hello")]);
}

#[test]
fn plain_waits_for_the_answer_and_carries_the_user_id() {
    let mut pair = Pair::new(
        plain(SocketType::Dealer, false, false),
        plain(SocketType::Router, true, true),
    );
    pair.drive();
    let request = auth_request(pair.server.take_events());
    assert_eq!(request.mechanism, "PLAIN");
    assert_eq!(request.credentials, [&b"admin"[..], &b"secret"[..]]);
    assert!(!pair.client.conn.is_established() && !pair.server.conn.is_established());
    let mut reply = AuthReply::accept("user-7");
    reply.metadata.insert("X-Role", "ops").unwrap();
    pair.server.conn.authenticate(pair.now, &reply).unwrap();
    pair.establish();
    let auth = &pair.server.conn.peer().unwrap().auth;
    assert_eq!(auth.user_id.as_deref(), Some(&b"user-7"[..]));
    assert_eq!(
        auth.metadata.get("x-role").map(|v| &v[..]),
        Some(&b"ops"[..])
    );
    // The client's metadata came through INITIATE.
    assert_eq!(
        pair.server.conn.peer().unwrap().socket_type,
        Some(SocketType::Dealer)
    );
}

#[test]
fn refusals_send_the_status_code_except_300() {
    for (code, client_error) in [
        (
            400,
            Some(Error::Refused {
                reason: "400".into(),
            }),
        ),
        (
            500,
            Some(Error::Refused {
                reason: "500".into(),
            }),
        ),
        (300, None),
    ] {
        let mut pair = Pair::new(
            plain(SocketType::Push, false, false),
            plain(SocketType::Pull, true, true),
        );
        pair.drive();
        auth_request(pair.server.take_events());
        let err = pair
            .server
            .conn
            .authenticate(pair.now, &AuthReply::deny(code, "no"))
            .unwrap_err();
        assert_eq!(err, Error::AuthFailed { status_code: code });
        pair.server.error = Some(err);
        pair.server.flush();
        pair.drive();
        assert_eq!(pair.client.error, client_error, "status {code}");
        assert!(!pair.client.conn.is_established());
    }
}

#[test]
fn null_with_authentication_holds_ready_until_accepted() {
    let mut client = Config::new(SocketType::Req);
    client.authenticate = false;
    let mut server = Config::new(SocketType::Rep);
    server.as_server = true;
    server.authenticate = true;
    let mut pair = Pair::new(client, server);
    pair.drive();
    let request = auth_request(pair.server.take_events());
    assert_eq!(request.mechanism, "NULL");
    assert!(!pair.client.conn.is_established());
    pair.server
        .conn
        .authenticate(pair.now, &AuthReply::accept(""))
        .unwrap();
    pair.server.collect_events();
    pair.establish();
}

#[test]
fn malformed_plain_hello_is_refused() {
    for hello in [
        &b"\x04\x0e\x05HELLO\x05admin\x06secre"[..],
        b"\x04\x10\x05HELLO\x05admin\x06secretX",
        b"\x04\x07\x05HELLO\x09",
    ] {
        let mut config = plain(SocketType::Pull, true, false);
        config.as_server = true;
        let mut conn = Connection::new(config, Instant::now()).unwrap();
        let mut input = Greeting::new(b"PLAIN", false).encode().to_vec();
        input.extend_from_slice(hello);
        let err = conn.handle_input(Instant::now(), &input).unwrap_err();
        assert_eq!(
            err,
            Error::Protocol(ProtocolError::MalformedCommandBody("HELLO")),
            "{hello:?}"
        );
    }
}

#[test]
fn curve_handshake_and_traffic_both_ways() {
    let mut pair = curve_pair(SocketType::Dealer, SocketType::Router, false);
    pair.establish();
    let auth = &pair.server.conn.peer().unwrap().auth;
    assert_eq!(auth.curve_public_key, Some(client_keys().public));
    assert_eq!(
        pair.client.conn.peer().unwrap().auth.curve_public_key,
        Some(server_keys().public)
    );
    let big = Bytes::from(vec![0xA5; 100_000]);
    let msg = Message::from_iter([Bytes::from_static(b"head"), big.clone(), Bytes::new()]);
    pair.client_send(msg.clone());
    pair.client_send("small");
    assert_eq!(pair.server.take_messages(), [msg, Message::from("small")]);

    let mut buf = WriteBuf::new();
    pair.server
        .conn
        .send(&Message::from("back"), &mut buf)
        .unwrap();
    buf.drain_into(&mut pair.server.outbox);
    pair.drive();
    assert_eq!(pair.client.take_messages(), [Message::from("back")]);
    // Nothing in clear on the wire.
    let mut buf = WriteBuf::new();
    pair.client
        .conn
        .send(&Message::from("secret words"), &mut buf)
        .unwrap();
    let mut wire = Vec::new();
    buf.drain_into(&mut wire);
    assert!(!wire.windows(12).any(|w| w == b"secret words"));
    assert!(wire.windows(8).any(|w| w == b"\x07MESSAGE"));
}

#[test]
fn curve_messages_reach_a_sink_and_pause_it() {
    let mut pair = curve_pair(SocketType::Dealer, SocketType::Router, false);
    pair.establish();
    let mut buf = WriteBuf::new();
    let parts = Message::from_iter(["a", "b"]);
    for m in [Message::from("one"), parts.clone(), Message::from("three")] {
        pair.client.conn.send(&m, &mut buf).unwrap();
    }
    let mut wire = Vec::new();
    buf.drain_into(&mut wire);
    let mut input = bytes::BytesMut::from(&wire[..]);
    let mut sunk = Vec::new();
    // Room for two: the third is declined, queued, and nothing is left to decode.
    let paused = pair
        .server
        .conn
        .handle_read_buf_with(pair.now, &mut input, |m| {
            if sunk.len() < 2 {
                sunk.push(m);
                Ok(())
            } else {
                Err(m)
            }
        })
        .unwrap();
    assert!(paused);
    assert_eq!(sunk, [Message::from("one"), parts]);
    assert_eq!(
        pair.server.conn.poll_event(),
        Some(Event::Message(Message::from("three")))
    );
    assert!(input.is_empty());
}

#[test]
fn curve_boxes_subscriptions_and_heartbeats() {
    let mut pair = curve_pair(SocketType::Sub, SocketType::Pub, false);
    pair.client.conn.config();
    pair.establish();
    let mut buf = WriteBuf::new();
    pair.client.conn.subscribe(b"topic", &mut buf).unwrap();
    pair.client.conn.cancel(b"topic", &mut buf).unwrap();
    buf.drain_into(&mut pair.client.outbox);
    pair.drive();
    assert_eq!(
        pair.server.take_events(),
        [
            Event::Subscribe(Bytes::from_static(b"topic")),
            Event::Cancel(Bytes::from_static(b"topic"))
        ]
    );
}

#[test]
fn curve_heartbeats_keep_both_sides_alive() {
    let mut c = Config::new(SocketType::Push);
    c.mechanism = Mechanism::Curve(CurveConfig::client(client_keys(), server_keys().public));
    c.heartbeat_interval = Some(Duration::from_millis(100));
    let mut s = Config::new(SocketType::Pull);
    s.mechanism = Mechanism::Curve(CurveConfig::server(server_keys()));
    s.as_server = true;
    s.heartbeat_interval = Some(Duration::from_millis(100));
    let mut pair = Pair::new(c, s);
    pair.establish();
    pair.advance(Duration::from_secs(2));
    assert_eq!(pair.client.error, None);
    assert_eq!(pair.server.error, None);
    // A silent server is detected through boxed PINGs left unanswered.
    pair.server.deliver = false;
    pair.advance(Duration::from_secs(1));
    assert_eq!(pair.client.error, Some(Error::HeartbeatTimeout));
}

#[test]
fn curve_authentication_sees_the_client_key() {
    let mut pair = curve_pair(SocketType::Req, SocketType::Rep, true);
    pair.drive();
    let request = auth_request(pair.server.take_events());
    assert_eq!(request.mechanism, "CURVE");
    assert_eq!(request.credentials, [&client_keys().public.as_bytes()[..]]);
    pair.server
        .conn
        .authenticate(pair.now, &AuthReply::accept("alice"))
        .unwrap();
    pair.server.collect_events();
    pair.establish();
    pair.client_send("hi");
    assert_eq!(pair.server.take_messages(), [Message::from("hi")]);

    let mut pair = curve_pair(SocketType::Req, SocketType::Rep, true);
    pair.drive();
    auth_request(pair.server.take_events());
    let err = pair
        .server
        .conn
        .authenticate(pair.now, &AuthReply::deny(400, "unknown key"))
        .unwrap_err();
    pair.server.error = Some(err);
    pair.server.flush();
    pair.drive();
    assert_eq!(
        pair.client.error,
        Some(Error::Refused {
            reason: "400".into()
        })
    );
}

#[test]
fn curve_wrong_server_key_fails_the_handshake() {
    let mut c = Config::new(SocketType::Push);
    let wrong = CurveKeyPair::generate().unwrap().public;
    c.mechanism = Mechanism::Curve(CurveConfig::client(client_keys(), wrong));
    let mut s = Config::new(SocketType::Pull);
    s.mechanism = Mechanism::Curve(CurveConfig::server(server_keys()));
    s.as_server = true;
    let mut pair = Pair::new(c, s);
    pair.drive();
    assert_eq!(
        pair.server.error,
        Some(Error::Protocol(ProtocolError::Cryptographic))
    );
    assert!(!pair.client.conn.is_established());
    // As libzmq: a broken CURVE handshake closes silently, no ERROR goes to the client.
    assert_eq!(pair.client.error, None);
}

#[test]
fn incompatible_socket_types_are_refused_before_ready() {
    for authenticate in [false, true] {
        let mut pair = curve_pair(SocketType::Push, SocketType::Push, authenticate);
        pair.drive();
        assert!(matches!(
            pair.server.error,
            Some(Error::Protocol(
                ProtocolError::IncompatibleSocketType { .. }
            ))
        ));
        // Neither READY nor an authentication request went out for the refused peer.
        assert!(pair.server.take_events().is_empty());
        assert!(!pair.client.conn.is_established());
    }
}

#[test]
fn curve_client_needs_the_server_key() {
    let mut c = Config::new(SocketType::Push);
    c.mechanism = Mechanism::Curve(CurveConfig::server(client_keys()));
    assert!(Connection::new(c, Instant::now()).is_err());
}

/// Captures one boxed MESSAGE frame the client sends.
fn boxed_frame(pair: &mut Pair, payload: &str) -> Vec<u8> {
    let mut buf = WriteBuf::new();
    pair.client
        .conn
        .send(&Message::from(payload), &mut buf)
        .unwrap();
    let mut wire = Vec::new();
    buf.drain_into(&mut wire);
    wire
}

#[test]
fn curve_replayed_reordered_or_altered_boxes_are_refused() {
    // Replay.
    let mut pair = curve_pair(SocketType::Push, SocketType::Pull, false);
    pair.establish();
    let first = boxed_frame(&mut pair, "one");
    pair.server.conn.handle_input(pair.now, &first).unwrap();
    assert_eq!(
        pair.server.conn.handle_input(pair.now, &first),
        Err(Error::Protocol(ProtocolError::BadNonce))
    );

    // Reorder.
    let mut pair = curve_pair(SocketType::Push, SocketType::Pull, false);
    pair.establish();
    let first = boxed_frame(&mut pair, "one");
    let second = boxed_frame(&mut pair, "two");
    pair.server.conn.handle_input(pair.now, &second).unwrap();
    assert_eq!(
        pair.server.conn.handle_input(pair.now, &first),
        Err(Error::Protocol(ProtocolError::BadNonce))
    );

    // One flipped bit anywhere in the box.
    for at in [18, 30, 37] {
        let mut pair = curve_pair(SocketType::Push, SocketType::Pull, false);
        pair.establish();
        let mut frame = boxed_frame(&mut pair, "one");
        frame[at] ^= 1;
        assert_eq!(
            pair.server.conn.handle_input(pair.now, &frame),
            Err(Error::Protocol(ProtocolError::Cryptographic)),
            "bit flipped at {at}"
        );
    }

    // A data frame in clear after the handshake.
    let mut pair = curve_pair(SocketType::Push, SocketType::Pull, false);
    pair.establish();
    assert!(
        pair.server
            .conn
            .handle_input(pair.now, b"\x00\x05hello")
            .is_err()
    );
}

/// The client's greeting and HELLO, and a fresh server to feed them to.
fn client_hello() -> (Vec<u8>, Connection) {
    let mut pair = curve_pair(SocketType::Push, SocketType::Pull, false);
    pair.client.flush();
    let greeting = Greeting::new(b"CURVE", true).encode();
    pair.client.conn.handle_input(pair.now, &greeting).unwrap();
    pair.client.flush();
    let mut s = Config::new(SocketType::Pull);
    s.mechanism = Mechanism::Curve(CurveConfig::server(server_keys()));
    s.as_server = true;
    (
        pair.client.outbox,
        Connection::new(s, Instant::now()).unwrap(),
    )
}

#[test]
fn curve_hostile_hellos_are_refused() {
    let (wire, _) = client_hello();
    // Greeting (64) + HELLO frame header (2) + body (200).
    assert_eq!(wire.len(), 64 + 2 + 200);
    let (mut server_out, mut server) = client_hello();
    server_out.clear();
    server.handle_input(Instant::now(), &wire).unwrap();
    assert!(!server.is_established());

    // A padding byte set, the version changed, the box altered, and truncated commands.
    for (what, edit) in [("padding", 66 + 40), ("version", 66 + 7), ("box", 66 + 150)] {
        let mut bad = wire.clone();
        bad[edit] ^= 0x01;
        let (_, mut server) = client_hello();
        assert!(server.handle_input(Instant::now(), &bad).is_err(), "{what}");
    }
    let mut short = wire[..64].to_vec();
    short.extend_from_slice(b"\x04\x06\x05HELLO");
    let (_, mut server) = client_hello();
    assert_eq!(
        server.handle_input(Instant::now(), &short),
        Err(Error::Protocol(ProtocolError::MalformedCommandBody(
            "HELLO"
        )))
    );
    // An oversized handshake command is refused on its header.
    let mut huge = wire[..64].to_vec();
    huge.extend_from_slice(&[0x06, 0, 0, 0, 0, 0x10, 0, 0, 0]);
    let (_, mut server) = client_hello();
    assert!(matches!(
        server.handle_input(Instant::now(), &huge),
        Err(Error::Protocol(ProtocolError::MetadataTooLarge { .. }))
    ));
}

#[test]
fn curve_seed_makes_the_handshake_deterministic() {
    let hello = |seed| {
        let mut c = Config::new(SocketType::Push);
        c.mechanism = Mechanism::Curve(CurveConfig::client(client_keys(), server_keys().public));
        let mut conn = Connection::with_seed(c, Instant::now(), seed).unwrap();
        conn.handle_input(Instant::now(), &Greeting::new(b"CURVE", true).encode())
            .unwrap();
        let mut buf = WriteBuf::new();
        conn.poll_transmit(&mut buf);
        let mut out = Vec::new();
        buf.drain_into(&mut out);
        out
    };
    assert_eq!(hello([1; 32]), hello([1; 32]));
    assert_ne!(hello([1; 32]), hello([2; 32]));
}

#[test]
fn mechanisms_must_match() {
    let mut c = plain(SocketType::Push, false, false);
    c.as_server = false;
    let mut s = Config::new(SocketType::Pull);
    s.mechanism = Mechanism::Curve(CurveConfig::server(server_keys()));
    s.as_server = true;
    let mut pair = Pair::new(c, s);
    pair.drive();
    assert!(matches!(
        pair.server.error,
        Some(Error::Protocol(ProtocolError::MechanismMismatch { .. }))
    ));
}

#[test]
fn plain_client_reports_the_servers_error() {
    let mut conn = Connection::new(plain(SocketType::Push, false, false), Instant::now()).unwrap();
    let mut input = Greeting::new(b"PLAIN", true).encode().to_vec();
    input.extend_from_slice(b"\x04\x0a\x05ERROR\x03400");
    assert_eq!(
        conn.handle_input(Instant::now(), &input),
        Err(Error::Refused {
            reason: "400".into()
        })
    );
}

/// libzmq 4.3 drops the name-length byte of the ERROR it sends for a ZAP refusal (captured from
/// pyzmq's libzmq 4.3.5): it still means a refusal with the status code.
#[test]
fn libzmqs_malformed_zap_error_is_read_as_a_refusal() {
    let mut conn = Connection::new(plain(SocketType::Push, false, false), Instant::now()).unwrap();
    let mut input = Greeting::new(b"PLAIN", true).encode().to_vec();
    input.extend_from_slice(b"\x04\x09^RROR\x03400");
    assert_eq!(
        conn.handle_input(Instant::now(), &input),
        Err(Error::Refused {
            reason: "400".into()
        })
    );
}

/// A ZMTP 3.0 subscriber over CURVE subscribes with a boxed `\x01topic` data message, which the
/// publisher sees as a message (the socket layer reads it as a subscription).
#[test]
fn curve_subscriptions_to_a_zmtp_30_peer_are_messages() {
    let mut c = Config::new(SocketType::Sub);
    c.version = omq_zmtp::Version::V3_0;
    c.mechanism = Mechanism::Curve(CurveConfig::client(client_keys(), server_keys().public));
    let mut s = Config::new(SocketType::Pub);
    s.mechanism = Mechanism::Curve(CurveConfig::server(server_keys()));
    s.as_server = true;
    let mut pair = Pair::new(c, s);
    pair.establish();
    let mut buf = WriteBuf::new();
    pair.client.conn.subscribe(b"news", &mut buf).unwrap();
    buf.drain_into(&mut pair.client.outbox);
    pair.drive();
    assert_eq!(
        pair.server.take_events(),
        [Event::Message(Message::from(&b"\x01news"[..]))]
    );
}
