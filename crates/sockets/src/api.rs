//! The user-facing types every backend crate re-exports (`pub use omq_sockets::api::*;`), so
//! that omq-tokio and omq-compio offer the same names from one list.

pub use crate::zap::{AuthHandler, Authenticator, ZAP_ENDPOINT, ZapRequest};
pub use crate::{
    Endpoint, EndpointError, Error, Host, IpcAddr, Monitor, MonitorEvent, OptionError, Options,
    Port, ReconnectStop, SocketBase, TcpKeepalive, TrySendError,
};
pub use omq_zmtp::{
    AuthReply, CurveKeyPair, CurvePublicKey, CurveSecretKey, Frame, Message, Metadata, PeerAuth,
    PeerInfo, SocketType,
};
