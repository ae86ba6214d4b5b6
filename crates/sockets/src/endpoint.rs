//! Endpoints: `tcp://host:port`, `ipc://path`, `ipc://@abstract`, `inproc://name`, parsed and
//! checked the way libzmq does, with typed errors.
//!
//! | form | meaning |
//! |---|---|
//! | `tcp://127.0.0.1:5555`, `tcp://[::1]:5555` | an IP address and port |
//! | `tcp://localhost:5555` | a host name, resolved by the backend |
//! | `tcp://*:5555` | bind only: every interface (`0.0.0.0`, or `::` with IPv6 on) |
//! | `tcp://127.0.0.1:0`, `tcp://127.0.0.1:*` | bind only: a port the system picks |
//! | `ipc:///tmp/feed` | a Unix domain socket at a path |
//! | `ipc://@feed` | a Linux abstract socket named `feed` |
//! | `ipc://*` | bind only: a fresh path the system picks |
//! | `inproc://feed` | in-process, by name |

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// Why an endpoint string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The string has no `scheme://`.
    #[error("endpoint {0:?} has no transport (expected tcp://, ipc:// or inproc://)")]
    MissingTransport(String),
    /// The transport is not one we support.
    #[error("unsupported transport {0:?}")]
    UnsupportedTransport(String),
    /// Nothing after `scheme://`.
    #[error("endpoint {0:?} has no address")]
    MissingAddress(String),
    /// A tcp address without `:port`.
    #[error("tcp endpoint {0:?} has no port")]
    MissingPort(String),
    /// The port is not a number from 0 to 65535 or `*`.
    #[error("invalid port {0:?}")]
    InvalidPort(String),
    /// The host is neither an IP address, `*`, nor a valid host name.
    #[error("invalid host {0:?}")]
    InvalidHost(String),
    /// A wildcard host or port, or `ipc://*`, where a connect needs a definite address.
    #[error("endpoint {0:?} has a wildcard, which only bind accepts")]
    WildcardConnect(String),
}

/// A tcp host.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Host {
    /// `*`: every interface.
    Any,
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A host name to resolve.
    Name(String),
}

/// A tcp port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Port {
    /// `*` or `0`: the system picks one (bind only).
    Any,
    /// A fixed port.
    Fixed(u16),
}

/// Where an ipc socket lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IpcAddr {
    /// A filesystem path.
    Path(PathBuf),
    /// A Linux abstract socket name (written `@name`).
    Abstract(String),
    /// `*`: a fresh path the system picks (bind only).
    Any,
}

/// A parsed endpoint.
///
/// ```
/// use omq_sockets::{Endpoint, Host, Port};
///
/// let ep: Endpoint = "tcp://[::1]:5555".parse().unwrap();
/// assert!(matches!(ep, Endpoint::Tcp { port: Port::Fixed(5555), .. }));
/// assert_eq!(ep.to_string(), "tcp://[::1]:5555");
/// assert!("tcp://*:0".parse::<Endpoint>().unwrap().check_connect().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `tcp://host:port`.
    Tcp {
        /// The host.
        host: Host,
        /// The port.
        port: Port,
    },
    /// `ipc://...`.
    Ipc(IpcAddr),
    /// `inproc://name`.
    Inproc(String),
}

impl Endpoint {
    /// Checks that the endpoint names one definite peer, as `connect` needs.
    pub fn check_connect(&self) -> Result<(), EndpointError> {
        let wildcard = match self {
            Self::Tcp { host, port } => *host == Host::Any || *port == Port::Any,
            Self::Ipc(addr) => *addr == IpcAddr::Any,
            Self::Inproc(_) => false,
        };
        if wildcard {
            Err(EndpointError::WildcardConnect(self.to_string()))
        } else {
            Ok(())
        }
    }

    /// The transport name (`tcp`, `ipc`, `inproc`).
    pub fn transport(&self) -> &'static str {
        match self {
            Self::Tcp { .. } => "tcp",
            Self::Ipc(_) => "ipc",
            Self::Inproc(_) => "inproc",
        }
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, EndpointError> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| EndpointError::MissingTransport(s.to_string()))?;
        if rest.is_empty() {
            return Err(EndpointError::MissingAddress(s.to_string()));
        }
        match scheme {
            "tcp" => parse_tcp(s, rest),
            "ipc" => Ok(Self::Ipc(match rest {
                "*" => IpcAddr::Any,
                _ => match rest.strip_prefix('@') {
                    Some("") => return Err(EndpointError::MissingAddress(s.to_string())),
                    Some(name) => IpcAddr::Abstract(name.to_string()),
                    None => IpcAddr::Path(PathBuf::from(rest)),
                },
            })),
            "inproc" => Ok(Self::Inproc(rest.to_string())),
            other => Err(EndpointError::UnsupportedTransport(other.to_string())),
        }
    }
}

fn parse_tcp(s: &str, rest: &str) -> Result<Endpoint, EndpointError> {
    // The port follows the last colon; an IPv6 host is in brackets.
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| EndpointError::MissingPort(s.to_string()))?;
    let port = match port {
        "*" | "0" => Port::Any,
        p if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Port::Fixed(
            p.parse()
                .map_err(|_| EndpointError::InvalidPort(p.to_string()))?,
        ),
        p => return Err(EndpointError::InvalidPort(p.to_string())),
    };
    let host = if host == "*" {
        Host::Any
    } else if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        // libzmq accepts a zone index (`fe80::1%eth0`) only through interface names; we take
        // plain IPv6 literals.
        Host::Ip(IpAddr::V6(
            inner
                .parse()
                .map_err(|_| EndpointError::InvalidHost(host.to_string()))?,
        ))
    } else if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
        Host::Ip(IpAddr::V4(ip))
    } else if is_host_name(host) {
        Host::Name(host.to_string())
    } else {
        return Err(EndpointError::InvalidHost(host.to_string()));
    };
    Ok(Endpoint::Tcp { host, port })
}

/// RFC 1123 host names: dot-separated labels of letters, digits and hyphens, 1-63 bytes each,
/// not starting or ending with a hyphen, 253 bytes in all.
fn is_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp { host, port } => {
                f.write_str("tcp://")?;
                match host {
                    Host::Any => f.write_str("*")?,
                    Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
                    Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}")?,
                    Host::Name(n) => f.write_str(n)?,
                }
                match port {
                    Port::Any => f.write_str(":*"),
                    Port::Fixed(p) => write!(f, ":{p}"),
                }
            }
            Self::Ipc(IpcAddr::Path(p)) => write!(f, "ipc://{}", p.display()),
            Self::Ipc(IpcAddr::Abstract(n)) => write!(f, "ipc://@{n}"),
            Self::Ipc(IpcAddr::Any) => f.write_str("ipc://*"),
            Self::Inproc(n) => write!(f, "inproc://{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Endpoint, EndpointError> {
        s.parse()
    }

    #[test]
    fn accepted_forms_round_trip() {
        for s in [
            "tcp://127.0.0.1:5555",
            "tcp://[::1]:5555",
            "tcp://[fe80::1:2]:1",
            "tcp://*:5555",
            "tcp://*:*",
            "tcp://localhost:65535",
            "tcp://my-host.example.com:80",
            "ipc:///tmp/feed.sock",
            "ipc://relative/path",
            "ipc://@feed",
            "ipc://*",
            "inproc://feed",
            "inproc://a:b/c",
        ] {
            let ep = parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(ep.to_string(), s);
            assert_eq!(parse(&ep.to_string()), Ok(ep));
        }
        // Port 0 is the same as `*`.
        assert_eq!(
            parse("tcp://127.0.0.1:0").unwrap().to_string(),
            "tcp://127.0.0.1:*"
        );
    }

    #[test]
    fn refused_forms_are_typed_errors() {
        use EndpointError::*;
        type Case = (&'static str, fn(&EndpointError) -> bool);
        let cases: &[Case] = &[
            ("127.0.0.1:5555", |e| matches!(e, MissingTransport(_))),
            ("udp://127.0.0.1:5555", |e| {
                matches!(e, UnsupportedTransport(_))
            }),
            ("tcp://", |e| matches!(e, MissingAddress(_))),
            ("inproc://", |e| matches!(e, MissingAddress(_))),
            ("ipc://@", |e| matches!(e, MissingAddress(_))),
            ("tcp://127.0.0.1", |e| matches!(e, MissingPort(_))),
            ("tcp://127.0.0.1:65536", |e| matches!(e, InvalidPort(_))),
            ("tcp://127.0.0.1:-1", |e| matches!(e, InvalidPort(_))),
            ("tcp://127.0.0.1:", |e| matches!(e, InvalidPort(_))),
            ("tcp://::1:5555", |e| matches!(e, InvalidHost(_))),
            ("tcp://[::g]:5555", |e| matches!(e, InvalidHost(_))),
            ("tcp://bad_host:5555", |e| matches!(e, InvalidHost(_))),
            ("tcp://-a.b:5555", |e| matches!(e, InvalidHost(_))),
            ("tcp://:5555", |e| matches!(e, InvalidHost(_))),
        ];
        for (s, ok) in cases {
            let e = parse(s).unwrap_err();
            assert!(ok(&e), "{s}: {e:?}");
        }
    }

    #[test]
    fn connect_needs_definite_addresses() {
        for s in [
            "tcp://*:5555",
            "tcp://127.0.0.1:0",
            "tcp://127.0.0.1:*",
            "ipc://*",
        ] {
            assert!(
                matches!(
                    parse(s).unwrap().check_connect(),
                    Err(EndpointError::WildcardConnect(_))
                ),
                "{s}"
            );
        }
        for s in ["tcp://127.0.0.1:1", "ipc://@x", "inproc://x", "tcp://h:2"] {
            assert_eq!(parse(s).unwrap().check_connect(), Ok(()), "{s}");
        }
    }

    #[test]
    fn arbitrary_strings_never_panic() {
        use proptest::prelude::*;
        proptest!(|(s in "\\PC{0,40}", scheme in prop_oneof!["tcp://", "ipc://", "inproc://", ""])| {
            let _ = parse(&format!("{scheme}{s}"));
        });
    }
}
