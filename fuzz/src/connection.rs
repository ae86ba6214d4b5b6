//! Shared body of the connection targets: the first byte picks the socket type and how the input
//! is cut into reads; timers fire between reads. Whatever happens, nothing panics, a failed
//! connection stays failed, and every message consumed came from the input.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use omq_zmtp::{
    AuthReply, Config, Connection, CurveConfig, CurveKeyPair, CurveSecretKey, Event, Mechanism,
    SocketType, WriteBuf,
};

/// The security mechanism a target runs.
#[derive(Clone, Copy)]
pub(crate) enum Security {
    Null,
    Plain,
    Curve,
}

pub(crate) fn run_with(data: &[u8], as_server: bool, security: Security) {
    let Some((&knobs, data)) = data.split_first() else {
        return;
    };
    let socket_type = SocketType::ALL[usize::from(knobs) % SocketType::ALL.len()];
    let mut config = Config::new(socket_type);
    config.as_server = as_server;
    config.heartbeat_interval = Some(Duration::from_millis(100));
    config.heartbeat_ttl = Some(Duration::from_millis(500));
    config.limits.max_parts = 64;
    config.limits.max_message_size = Some(1 << 20);
    let keys = || CurveKeyPair::from_secret(CurveSecretKey::from_bytes([7; 32]));
    match security {
        Security::Null => {}
        Security::Plain => {
            config.mechanism = Mechanism::Plain {
                username: "admin".into(),
                password: "secret".into(),
            };
            config.authenticate = as_server;
        }
        Security::Curve => {
            config.mechanism = Mechanism::Curve(if as_server {
                CurveConfig::server(keys())
            } else {
                CurveConfig::client(keys(), keys().public)
            });
            config.authenticate = as_server;
        }
    }
    let start = Instant::now();
    let mut now = start;
    let mut conn = Connection::with_seed(config, now, [knobs; 32]).expect("valid config");
    let zero_copy = knobs & 0x80 != 0;
    let step = usize::from(knobs >> 5 & 3) * 7 + 1;

    let mut out = WriteBuf::new();
    let mut pending = BytesMut::new();
    let mut consumed_payload = 0usize;
    let mut failed = None;
    for chunk in data.chunks(step) {
        pending.extend_from_slice(chunk);
        let result = if zero_copy {
            conn.handle_read_buf(now, &mut pending)
        } else {
            conn.handle_input(now, &pending).map(|n| {
                let _ = pending.split_to(n);
            })
        };
        let mut accept = false;
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Message(m) => consumed_payload += m.size(),
                Event::Authenticate(_) => accept = true,
                _ => {}
            }
        }
        if accept {
            let reply = if knobs & 0x10 == 0 {
                AuthReply::accept("user")
            } else {
                AuthReply::deny(400, "no")
            };
            let _ = conn.authenticate(now, &reply);
        }
        conn.poll_transmit(&mut out);
        out.clear();
        if let Err(e) = result {
            failed = Some(e);
            break;
        }
        now += Duration::from_millis(u64::from(chunk[0] & 0x3f));
        if conn.poll_timeout().is_some_and(|t| t <= now) {
            if let Err(e) = conn.handle_timeout(now) {
                failed = Some(e);
                break;
            }
        }
    }
    assert!(consumed_payload <= data.len());
    if let Some(e) = failed {
        assert_eq!(conn.handle_input(now, b"\xff").unwrap_err(), e);
        assert!(conn.send(&"x".into(), &mut out).is_err());
    }
}
