//! Authentication (ZAP, RFC 27): who may connect to a PLAIN or CURVE server.
//!
//! When a connection needs a decision, the socket asks, in this order:
//! 1. the [`Options::authenticator`](crate::Options::authenticator), a Rust function;
//! 2. a ZAP handler: any socket bound at [`ZAP_ENDPOINT`], exactly as in libzmq, so existing
//!    handler code (a REP or ROUTER loop) ports over. The request and reply frames are RFC 27's;
//! 3. nobody: then libzmq's rules apply. PLAIN fails the handshake (it has nothing to check the
//!    password against); CURVE and NULL accept the peer unless
//!    [`zap_enforce_domain`](crate::Options::zap_enforce_domain) is set.
//!
//! Replies: 200 accepts; 300 closes the connection silently; 400 and 500 refuse with an ERROR
//! command carrying the code. The reply's user id and metadata are reported with the
//! [`MonitorEvent::PeerAuthenticated`](crate::MonitorEvent::PeerAuthenticated) event.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use omq_zmtp::{AuthReply, Message, Metadata, SocketType};

use crate::core::Core;
use crate::inproc;
use crate::options::Options;

/// Where a ZAP handler binds (the inproc name libzmq uses).
pub const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";
const ZAP_NAME: &str = "zeromq.zap.01";

/// A ZAP request: what an authenticator decides on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ZapRequest {
    /// The socket's [`zap_domain`](crate::Options::zap_domain).
    pub domain: Bytes,
    /// The peer's address (an IP address for tcp, empty for ipc).
    pub address: Bytes,
    /// The socket's routing id (libzmq's "identity" frame), often empty.
    pub identity: Bytes,
    /// `"NULL"`, `"PLAIN"` or `"CURVE"`.
    pub mechanism: &'static str,
    /// PLAIN: user name and password. CURVE: the client's 32-byte public key. NULL: none.
    pub credentials: Vec<Bytes>,
}

/// Decides whether a peer may connect: a Rust alternative to a ZAP handler socket.
///
/// Closures `Fn(&ZapRequest) -> AuthReply` are authenticators. The call runs on the
/// connection's task, so it should be quick.
pub trait Authenticator: Send + Sync + 'static {
    /// The answer for `request`.
    fn authenticate(&self, request: &ZapRequest) -> AuthReply;
}

impl<F: Fn(&ZapRequest) -> AuthReply + Send + Sync + 'static> Authenticator for F {
    fn authenticate(&self, request: &ZapRequest) -> AuthReply {
        self(request)
    }
}

/// A shared [`Authenticator`], as the socket option holds it. Two handlers are equal when they
/// are the same object.
#[derive(Clone)]
pub struct AuthHandler(Arc<dyn Authenticator>);

impl AuthHandler {
    /// Wraps `authenticator`.
    pub fn new(authenticator: impl Authenticator) -> Self {
        Self(Arc::new(authenticator))
    }

    pub(crate) fn authenticate(&self, request: &ZapRequest) -> AuthReply {
        self.0.authenticate(request)
    }
}

impl fmt::Debug for AuthHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthHandler(..)")
    }
}

impl PartialEq for AuthHandler {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for AuthHandler {}

/// One request in flight to a ZAP handler socket, over a private inproc DEALER.
#[derive(Debug)]
pub(crate) struct ZapExchange {
    core: Arc<Core>,
    request_id: Bytes,
}

impl Drop for ZapExchange {
    fn drop(&mut self) {
        self.core.close();
    }
}

/// Why a ZAP exchange gave no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ZapFailure {
    /// The reply does not follow RFC 27.
    Malformed,
    /// The handler could not be asked (gone, or not a socket that can answer).
    Gone,
}

impl ZapExchange {
    /// Sends `request` to the handler bound at [`ZAP_ENDPOINT`]: `Ok(None)` when there is
    /// none, `Err` when one is bound but cannot be asked (a refusal, never a pass).
    pub(crate) fn start(request: &ZapRequest, request_id: u64) -> Result<Option<Self>, ZapFailure> {
        if !inproc::is_bound(ZAP_NAME) {
            return Ok(None);
        }
        // One request, one reply: the smallest pipes will do.
        let options = Options {
            linger: Some(std::time::Duration::ZERO),
            send_hwm: 2,
            recv_hwm: 2,
            ..Options::default()
        };
        let core = Core::new(SocketType::Dealer, options).map_err(|_| ZapFailure::Gone)?;
        inproc::connect(&core, ZAP_NAME).map_err(|_| ZapFailure::Gone)?;
        let request_id = Bytes::from(request_id.to_string());
        let mut msg = Message::new();
        msg.push(Bytes::new());
        msg.push(Bytes::from_static(b"1.0"));
        msg.push(request_id.clone());
        msg.push(request.domain.clone());
        msg.push(request.address.clone());
        msg.push(request.identity.clone());
        msg.push(Bytes::from_static(request.mechanism.as_bytes()));
        for c in &request.credentials {
            msg.push(c.clone());
        }
        core.try_send(msg).map_err(|_| ZapFailure::Gone)?;
        Ok(Some(Self { core, request_id }))
    }

    /// The handler's reply, once it is in.
    pub(crate) fn poll_reply(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<AuthReply, ZapFailure>> {
        match self.core.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(_)) => Poll::Ready(Err(ZapFailure::Gone)),
            Poll::Ready(Ok(msg)) => Poll::Ready(parse_reply(&msg, &self.request_id)),
        }
    }
}

/// Checks a reply (`""`, `"1.0"`, request id, status code, status text, user id, metadata).
fn parse_reply(msg: &Message, request_id: &[u8]) -> Result<AuthReply, ZapFailure> {
    let [empty, version, id, code, text, user_id, metadata] = msg.frames() else {
        return Err(ZapFailure::Malformed);
    };
    if !empty.is_empty() || version.as_slice() != b"1.0" || id.as_slice() != request_id {
        return Err(ZapFailure::Malformed);
    }
    let status_code = match code.as_slice() {
        b"200" => 200,
        b"300" => 300,
        b"400" => 400,
        b"500" => 500,
        _ => return Err(ZapFailure::Malformed),
    };
    let metadata = Metadata::parse(metadata).map_err(|_| ZapFailure::Malformed)?;
    let mut reply = AuthReply::deny(status_code, Bytes::copy_from_slice(text));
    reply.user_id = Bytes::copy_from_slice(user_id);
    reply.metadata = metadata;
    Ok(reply)
}

/// The address ZAP reports for an endpoint: the host of a tcp endpoint, nothing otherwise.
pub(crate) fn peer_address(endpoint: &str) -> Bytes {
    let Some(rest) = endpoint.strip_prefix("tcp://") else {
        return Bytes::new();
    };
    let host = rest.rsplit_once(':').map_or(rest, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Bytes::copy_from_slice(host.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_checked() {
        let reply = |frames: &[&[u8]]| {
            let msg = Message::from_iter(frames.iter().map(|f| Bytes::copy_from_slice(f)));
            parse_reply(&msg, b"7")
        };
        let ok = reply(&[b"", b"1.0", b"7", b"200", b"OK", b"alice", b""]).unwrap();
        assert_eq!((ok.status_code, &ok.user_id[..]), (200, &b"alice"[..]));
        let meta = b"\x06X-Role\x00\x00\x00\x03ops";
        let ok = reply(&[b"", b"1.0", b"7", b"400", b"no", b"", meta]).unwrap();
        assert_eq!(ok.status_code, 400);
        assert_eq!(ok.metadata.get("X-Role").map(|v| &v[..]), Some(&b"ops"[..]));
        for bad in [
            &[&b""[..], b"1.0", b"8", b"200", b"", b"", b""][..],
            &[b"", b"2.0", b"7", b"200", b"", b"", b""],
            &[b"", b"1.0", b"7", b"201", b"", b"", b""],
            &[b"", b"1.0", b"7", b"200", b"", b""],
            &[b"x", b"1.0", b"7", b"200", b"", b"", b""],
            &[b"", b"1.0", b"7", b"200", b"", b"", b"\x09"],
        ] {
            assert_eq!(reply(bad), Err(ZapFailure::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn peer_addresses() {
        assert_eq!(peer_address("tcp://127.0.0.1:5555"), "127.0.0.1");
        assert_eq!(peer_address("tcp://[::1]:5555"), "::1");
        assert_eq!(peer_address("ipc:///tmp/x"), "");
    }
}
