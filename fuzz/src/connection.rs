//! Shared body of the connection targets: the first byte picks the socket type and how the input
//! is cut into reads; timers fire between reads. Whatever happens, nothing panics, a failed
//! connection stays failed, and every message consumed came from the input.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use omq_zmtp::{Config, Connection, Event, SocketType, WriteBuf};

pub(crate) fn run(data: &[u8], as_server: bool) {
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
    let start = Instant::now();
    let mut now = start;
    let mut conn = Connection::new(config, now).expect("valid config");
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
        while let Some(event) = conn.poll_event() {
            if let Event::Message(m) = event {
                consumed_payload += m.size();
            }
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
