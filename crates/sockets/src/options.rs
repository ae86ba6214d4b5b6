//! Socket options with libzmq's names and defaults, in Rust types: an absent limit or a disabled
//! feature is `None` rather than libzmq's `-1` or `0`.
//!
//! | field | libzmq option | default |
//! |---|---|---|
//! | `send_hwm`, `recv_hwm` | ZMQ_SNDHWM, ZMQ_RCVHWM | 1000 messages (0: no limit) |
//! | `linger` | ZMQ_LINGER | `None`: wait for every queued message (-1) |
//! | `reconnect_interval` | ZMQ_RECONNECT_IVL | 100 ms (`None`: never reconnect, -1) |
//! | `reconnect_interval_max` | ZMQ_RECONNECT_IVL_MAX | `None`: no backoff (0) |
//! | `reconnect_stop` | ZMQ_RECONNECT_STOP | nothing stops reconnecting |
//! | `handshake_interval` | ZMQ_HANDSHAKE_IVL | 30 s (`None`: no limit, 0) |
//! | `heartbeat_interval` | ZMQ_HEARTBEAT_IVL | `None`: off (0) |
//! | `heartbeat_ttl` | ZMQ_HEARTBEAT_TTL | `None`: 0 |
//! | `heartbeat_timeout` | ZMQ_HEARTBEAT_TIMEOUT | `None`: the heartbeat interval (-1) |
//! | `routing_id` | ZMQ_ROUTING_ID | `None`: the peer assigns one |
//! | `max_message_size` | ZMQ_MAXMSGSIZE | `None`: no limit (-1) |
//! | `conflate` | ZMQ_CONFLATE | off |
//! | `router_mandatory` | ZMQ_ROUTER_MANDATORY | off |
//! | `xpub_verbose`, `xpub_verboser`, `xpub_nodrop` | ZMQ_XPUB_VERBOSE, _VERBOSER, _NODROP | off |
//! | `tcp_keepalive` | ZMQ_TCP_KEEPALIVE (+ _IDLE, _CNT, _INTVL) | the system's default (-1) |
//! | `immediate` | ZMQ_IMMEDIATE | off |
//! | `ipv6` | ZMQ_IPV6 | off |
//! | `backlog` | ZMQ_BACKLOG | 100 |
//! | `plain_server`, `plain_username`, `plain_password` | ZMQ_PLAIN_SERVER, _USERNAME, _PASSWORD | off |
//! | `curve_server`, `curve_public_key`, `curve_secret_key`, `curve_server_key` | ZMQ_CURVE_SERVER, _PUBLICKEY, _SECRETKEY, _SERVERKEY | off |
//! | `zap_domain`, `zap_enforce_domain` | ZMQ_ZAP_DOMAIN, ZMQ_ZAP_ENFORCE_DOMAIN | empty, off |
//! | `authenticator` | (none: a Rust alternative to a ZAP handler socket) | `None` |
//! | `recv_spin` | (none: how long a receive polls before it sleeps) | `None`: 100 µs, adaptive, for REQ, REP, DEALER, ROUTER, PAIR; off for the others |
//!
//! The mechanism follows from the security options as in libzmq: `curve_server` makes a CURVE
//! server, a `curve_server_key` a CURVE client, `plain_server` a PLAIN server, a
//! `plain_username` a PLAIN client, and nothing NULL. The mechanism's server role is independent
//! of which side binds.

use std::time::Duration;

use bytes::Bytes;
use omq_zmtp::{CurveConfig, CurveKeyPair, CurvePublicKey, CurveSecretKey, Mechanism, SocketType};

use crate::zap::AuthHandler;

/// An option value the socket cannot use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionError {
    /// `routing_id` must be 1 to 255 bytes.
    #[error("routing id must be 1 to 255 bytes, not {0}")]
    RoutingIdLength(usize),
    /// A duration that must not be zero (use `None` to turn the feature off).
    #[error("{0} must not be zero (use None to turn it off)")]
    ZeroDuration(&'static str),
    /// `reconnect_interval_max` below `reconnect_interval`.
    #[error("reconnect_interval_max is below reconnect_interval")]
    ReconnectMaxBelowInterval,
    /// The option does not apply to this socket type.
    #[error("{option} does not apply to {socket_type} sockets")]
    NotForSocketType {
        /// The option.
        option: &'static str,
        /// The socket type.
        socket_type: SocketType,
    },
    /// A keepalive parameter out of range.
    #[error("invalid tcp keepalive setting: {0}")]
    Keepalive(&'static str),
    /// A high-water mark above [`Options::MAX_HWM`] (pipes are allocated up front).
    #[error("high-water mark {0} is above the maximum of {max}", max = Options::MAX_HWM)]
    HwmTooLarge(usize),
    /// The security options do not make a usable mechanism.
    #[error("invalid security options: {0}")]
    Security(&'static str),
}

/// What ends a connecting socket's reconnect attempts (ZMQ_RECONNECT_STOP).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconnectStop {
    /// Stop when the peer refuses the connection (ZMQ_RECONNECT_STOP_CONN_REFUSED).
    pub conn_refused: bool,
    /// Stop when a handshake fails (ZMQ_RECONNECT_STOP_HANDSHAKE_FAILED).
    pub handshake_failed: bool,
    /// Stop reconnecting once `disconnect` was called (ZMQ_RECONNECT_STOP_AFTER_DISCONNECT).
    /// omq always stops an endpoint at `disconnect`, so this changes nothing; it exists for
    /// option parity with libzmq.
    pub after_disconnect: bool,
}

/// TCP keepalive (ZMQ_TCP_KEEPALIVE and its parameters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TcpKeepalive {
    /// Leave the system's setting alone (-1).
    #[default]
    SystemDefault,
    /// Turn keepalive off (0).
    Off,
    /// Turn keepalive on (1), with optional parameters (`None`: the system's).
    On {
        /// Idle time before the first probe (ZMQ_TCP_KEEPALIVE_IDLE).
        idle: Option<Duration>,
        /// Time between probes (ZMQ_TCP_KEEPALIVE_INTVL).
        interval: Option<Duration>,
        /// Unanswered probes before the connection is dropped (ZMQ_TCP_KEEPALIVE_CNT).
        count: Option<u32>,
    },
}

/// The options of one socket.
///
/// ```
/// use std::time::Duration;
/// use omq_sockets::Options;
/// use omq_zmtp::SocketType;
///
/// let mut opts = Options::default();
/// opts.send_hwm = 10_000;
/// opts.linger = Some(Duration::ZERO);
/// opts.heartbeat_interval = Some(Duration::from_secs(1));
/// opts.validate(SocketType::Dealer).unwrap();
/// assert_eq!(opts.recv_hwm, 1000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Messages queued per peer for sending before `send` waits (0: no limit).
    pub send_hwm: usize,
    /// Messages queued per peer for receiving before the peer is not read from (0: no limit).
    pub recv_hwm: usize,
    /// How long `close` waits for queued messages to go out; `None` waits for all of them,
    /// `Some(Duration::ZERO)` drops them at once.
    pub linger: Option<Duration>,
    /// Wait before reconnecting; `None` never reconnects.
    pub reconnect_interval: Option<Duration>,
    /// Upper bound of the exponential backoff; `None` keeps the interval constant.
    pub reconnect_interval_max: Option<Duration>,
    /// What ends reconnect attempts.
    pub reconnect_stop: ReconnectStop,
    /// Time allowed for the ZMTP handshake; `None`: no limit.
    pub handshake_interval: Option<Duration>,
    /// Send a PING this often; `None`: no heartbeats.
    pub heartbeat_interval: Option<Duration>,
    /// The TTL announced in our PINGs.
    pub heartbeat_ttl: Option<Duration>,
    /// How long to wait for traffic after a PING; `None`: the heartbeat interval.
    pub heartbeat_timeout: Option<Duration>,
    /// Our routing id, sent to peers as `Identity` (1 to 255 bytes).
    pub routing_id: Option<Bytes>,
    /// Largest message accepted from a peer, in bytes; `None`: no limit.
    pub max_message_size: Option<u64>,
    /// Keep only the last message in each queue.
    pub conflate: bool,
    /// ROUTER: sending to an unknown routing id is an error instead of a silent drop.
    pub router_mandatory: bool,
    /// XPUB: pass every subscription up, not only new ones.
    pub xpub_verbose: bool,
    /// XPUB: pass every subscription and unsubscription up.
    pub xpub_verboser: bool,
    /// XPUB: `send` fails with a would-block error at the HWM instead of dropping.
    pub xpub_nodrop: bool,
    /// TCP keepalive.
    pub tcp_keepalive: TcpKeepalive,
    /// Queue messages only to peers whose connection is complete.
    pub immediate: bool,
    /// Allow IPv6 (a `tcp://*` bind listens on `::` and accepts IPv4 too).
    pub ipv6: bool,
    /// Listen backlog.
    pub backlog: u32,
    /// Be the PLAIN server: check the user name and password of connecting clients (through
    /// the ZAP handler, which PLAIN requires).
    pub plain_server: bool,
    /// Be a PLAIN client with this user name (at most 255 bytes).
    pub plain_username: Option<Bytes>,
    /// The PLAIN client's password (at most 255 bytes).
    pub plain_password: Option<Bytes>,
    /// Be the CURVE server (needs `curve_secret_key`).
    pub curve_server: bool,
    /// Our long-term CURVE public key. Derived from `curve_secret_key` when unset; when set it
    /// must match.
    pub curve_public_key: Option<CurvePublicKey>,
    /// Our long-term CURVE secret key.
    pub curve_secret_key: Option<CurveSecretKey>,
    /// The server's public key: setting it makes this socket a CURVE client.
    pub curve_server_key: Option<CurvePublicKey>,
    /// The ZAP domain sent with authentication requests. Setting it also makes NULL
    /// connections ask the ZAP handler, as in libzmq.
    pub zap_domain: Bytes,
    /// Fail the handshake when authentication is asked for and no handler answers (libzmq's
    /// ZMQ_ZAP_ENFORCE_DOMAIN); otherwise CURVE and NULL accept every peer without a handler.
    pub zap_enforce_domain: bool,
    /// Authenticates peers with a Rust function instead of a ZAP handler socket. Takes
    /// precedence over a handler bound at `inproc://zeromq.zap.01`.
    pub authenticator: Option<AuthHandler>,
    /// The longest a receive polls for a message before its thread sleeps;
    /// `Some(Duration::ZERO)`: never. `None`: the socket type's default, 100 µs for REQ, REP,
    /// DEALER, ROUTER and PAIR and never for the others (a one-way stream is faster when its
    /// receiver sleeps and the sender runs ahead). The window adapts between zero and this:
    /// it grows while messages arrive within it and falls to zero when they do not, so sparse
    /// traffic does not spin. Waking a sleeping thread costs tens of microseconds on a
    /// virtual machine, most of a request's round trip; spinning avoids it at the cost of the
    /// core meanwhile.
    pub recv_spin: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            send_hwm: 1000,
            recv_hwm: 1000,
            linger: None,
            reconnect_interval: Some(Duration::from_millis(100)),
            reconnect_interval_max: None,
            reconnect_stop: ReconnectStop::default(),
            handshake_interval: Some(Duration::from_secs(30)),
            heartbeat_interval: None,
            heartbeat_ttl: None,
            heartbeat_timeout: None,
            routing_id: None,
            max_message_size: None,
            conflate: false,
            router_mandatory: false,
            xpub_verbose: false,
            xpub_verboser: false,
            xpub_nodrop: false,
            tcp_keepalive: TcpKeepalive::SystemDefault,
            immediate: false,
            ipv6: false,
            backlog: 100,
            plain_server: false,
            plain_username: None,
            plain_password: None,
            curve_server: false,
            curve_public_key: None,
            curve_secret_key: None,
            curve_server_key: None,
            zap_domain: Bytes::new(),
            zap_enforce_domain: false,
            authenticator: None,
            recv_spin: None,
        }
    }
}

impl Options {
    /// The largest high-water mark: each peer's pipe is a ring of this many 64-byte slots,
    /// allocated when the peer attaches. A high-water mark of 0 (libzmq's "no limit") is a ring
    /// of 65 536 messages.
    pub const MAX_HWM: usize = 1 << 22;

    /// Checks the options for a socket of type `socket_type`.
    pub fn validate(&self, socket_type: SocketType) -> Result<(), OptionError> {
        for hwm in [self.send_hwm, self.recv_hwm] {
            if hwm > Self::MAX_HWM {
                return Err(OptionError::HwmTooLarge(hwm));
            }
        }
        if let Some(id) = &self.routing_id {
            if id.is_empty() || id.len() > 255 {
                return Err(OptionError::RoutingIdLength(id.len()));
            }
        }
        for (name, d) in [
            ("reconnect_interval", self.reconnect_interval),
            ("reconnect_interval_max", self.reconnect_interval_max),
            ("handshake_interval", self.handshake_interval),
            ("heartbeat_interval", self.heartbeat_interval),
            ("heartbeat_ttl", self.heartbeat_ttl),
            ("heartbeat_timeout", self.heartbeat_timeout),
        ] {
            if d.is_some_and(|d| d.is_zero()) {
                return Err(OptionError::ZeroDuration(name));
            }
        }
        if let (Some(ivl), Some(max)) = (self.reconnect_interval, self.reconnect_interval_max) {
            if max < ivl {
                return Err(OptionError::ReconnectMaxBelowInterval);
            }
        }
        if let TcpKeepalive::On {
            idle,
            interval,
            count,
        } = self.tcp_keepalive
        {
            if idle.is_some_and(|d| d < Duration::from_secs(1))
                || interval.is_some_and(|d| d < Duration::from_secs(1))
            {
                return Err(OptionError::Keepalive(
                    "idle and interval are whole seconds, at least 1",
                ));
            }
            if count == Some(0) {
                return Err(OptionError::Keepalive("count must be at least 1"));
            }
        }
        let only_for = |on: bool, option: &'static str, types: &[SocketType]| {
            if on && !types.contains(&socket_type) {
                Err(OptionError::NotForSocketType {
                    option,
                    socket_type,
                })
            } else {
                Ok(())
            }
        };
        only_for(
            self.router_mandatory,
            "router_mandatory",
            &[SocketType::Router],
        )?;
        let xpub = [SocketType::XPub];
        only_for(self.xpub_verbose, "xpub_verbose", &xpub)?;
        only_for(self.xpub_verboser, "xpub_verboser", &xpub)?;
        only_for(self.xpub_nodrop, "xpub_nodrop", &xpub)?;
        self.mechanism().map(|_| ())
    }

    /// The mechanism the security options select, and whether we take its server role
    /// (`None` for NULL, where the role follows the connection's direction).
    pub fn mechanism(&self) -> Result<(Mechanism, Option<bool>), OptionError> {
        let long = |b: &Option<Bytes>| b.as_ref().is_some_and(|b| b.len() > 255);
        if long(&self.plain_username) || long(&self.plain_password) {
            return Err(OptionError::Security(
                "PLAIN user name and password are at most 255 bytes",
            ));
        }
        if self.zap_domain.len() > 255 {
            return Err(OptionError::Security("zap_domain is at most 255 bytes"));
        }
        if self.curve_server || self.curve_server_key.is_some() {
            let secret = self
                .curve_secret_key
                .clone()
                .ok_or(OptionError::Security("CURVE needs curve_secret_key"))?;
            let keys = CurveKeyPair::from_secret(secret);
            if self.curve_public_key.is_some_and(|k| k != keys.public) {
                return Err(OptionError::Security(
                    "curve_public_key does not belong to curve_secret_key",
                ));
            }
            let config = if self.curve_server {
                CurveConfig::server(keys)
            } else {
                CurveConfig::client(keys, self.curve_server_key.expect("checked"))
            };
            return Ok((Mechanism::Curve(config), Some(self.curve_server)));
        }
        if self.plain_server {
            return Ok((
                Mechanism::Plain {
                    username: Bytes::new(),
                    password: Bytes::new(),
                },
                Some(true),
            ));
        }
        if let Some(username) = &self.plain_username {
            return Ok((
                Mechanism::Plain {
                    username: username.clone(),
                    password: self.plain_password.clone().unwrap_or_default(),
                },
                Some(false),
            ));
        }
        Ok((Mechanism::Null, None))
    }

    /// The ZMTP connection configuration these options imply for a socket of type
    /// `socket_type`.
    pub fn zmtp_config(&self, socket_type: SocketType) -> omq_zmtp::Config {
        let mut c = omq_zmtp::Config::new(socket_type);
        if let Some(id) = &self.routing_id {
            c.identity = id.clone();
        }
        c.handshake_timeout = self.handshake_interval;
        c.heartbeat_interval = self.heartbeat_interval;
        c.heartbeat_ttl = self.heartbeat_ttl;
        c.heartbeat_timeout = self.heartbeat_timeout;
        c.limits.max_message_size = self.max_message_size;
        if let Ok((mechanism, as_server)) = self.mechanism() {
            c.authenticate = match &mechanism {
                Mechanism::Null => !self.zap_domain.is_empty(),
                _ => as_server == Some(true),
            };
            c.as_server = as_server.unwrap_or(false);
            c.mechanism = mechanism;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_libzmqs() {
        let o = Options::default();
        assert_eq!((o.send_hwm, o.recv_hwm), (1000, 1000));
        assert_eq!(o.linger, None);
        assert_eq!(o.reconnect_interval, Some(Duration::from_millis(100)));
        assert_eq!(o.reconnect_interval_max, None);
        assert_eq!(o.handshake_interval, Some(Duration::from_secs(30)));
        assert_eq!(o.heartbeat_interval, None);
        assert_eq!(o.max_message_size, None);
        assert_eq!(o.backlog, 100);
        for t in SocketType::ALL {
            assert_eq!(o.validate(t), Ok(()), "{t}");
        }
    }

    #[test]
    fn invalid_values_are_typed_errors() {
        let check = |f: fn(&mut Options), t: SocketType| {
            let mut o = Options::default();
            f(&mut o);
            o.validate(t)
        };
        assert_eq!(
            check(|o| o.routing_id = Some(Bytes::new()), SocketType::Dealer),
            Err(OptionError::RoutingIdLength(0))
        );
        assert_eq!(
            check(
                |o| o.routing_id = Some(Bytes::from(vec![1; 256])),
                SocketType::Dealer
            ),
            Err(OptionError::RoutingIdLength(256))
        );
        assert_eq!(
            check(
                |o| o.heartbeat_interval = Some(Duration::ZERO),
                SocketType::Pair
            ),
            Err(OptionError::ZeroDuration("heartbeat_interval"))
        );
        assert_eq!(
            check(
                |o| o.reconnect_interval_max = Some(Duration::from_millis(10)),
                SocketType::Pair
            ),
            Err(OptionError::ReconnectMaxBelowInterval)
        );
        assert!(matches!(
            check(|o| o.router_mandatory = true, SocketType::Dealer),
            Err(OptionError::NotForSocketType { .. })
        ));
        assert_eq!(
            check(|o| o.router_mandatory = true, SocketType::Router),
            Ok(())
        );
        assert!(check(|o| o.xpub_nodrop = true, SocketType::Pub).is_err());
        assert_eq!(
            check(|o| o.recv_hwm = usize::MAX, SocketType::Pull),
            Err(OptionError::HwmTooLarge(usize::MAX))
        );
        assert!(
            check(
                |o| o.tcp_keepalive = TcpKeepalive::On {
                    idle: None,
                    interval: None,
                    count: Some(0)
                },
                SocketType::Pair
            )
            .is_err()
        );
    }

    #[test]
    fn zmtp_config_carries_the_connection_options() {
        let o = Options {
            routing_id: Some(Bytes::from_static(b"me")),
            heartbeat_interval: Some(Duration::from_secs(2)),
            max_message_size: Some(4096),
            handshake_interval: None,
            ..Options::default()
        };
        let c = o.zmtp_config(SocketType::Dealer);
        assert_eq!(c.identity, "me");
        assert_eq!(c.heartbeat_interval, Some(Duration::from_secs(2)));
        assert_eq!(c.limits.max_message_size, Some(4096));
        assert_eq!(c.handshake_timeout, None);
        assert_eq!(c.socket_type, SocketType::Dealer);
    }
}
