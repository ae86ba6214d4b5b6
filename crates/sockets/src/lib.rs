//! ZeroMQ socket semantics that do not depend on any async runtime, shared by the omq backends
//! (omq-tokio, omq-compio).
//!
//! - [`Core`]: one socket's state. Per-peer pipes (one bounded `yring` per peer and direction,
//!   its capacity the high-water mark), routing for every standard socket type (round-robin,
//!   fair queueing, ROUTER identities, REQ/REP envelopes and state, PUB/SUB subscriptions with
//!   a trie per peer), and the monitor.
//! - [`Engine`]: the glue between one ZMTP connection ([`omq_zmtp::Connection`]) and its
//!   socket, without I/O. A backend's connection driver reads bytes into it, writes out what it
//!   produces and runs its timers.
//! - [`inproc`]: the inproc transport, sockets joined by rings with no ZMTP.
//! - Endpoint lifecycles without I/O: [`EndpointCtl`] (running, closing, aborted),
//!   [`Connector`] (the reconnect policy of a connected endpoint) and [`Endpoints`] (a socket's
//!   table for `unbind`, `disconnect` and `close`). A backend adds connect, accept, run and
//!   sleep.
//! - [`io`]: the accept, serve and connect loops themselves, written once against [`io::Io`]
//!   (accept, connect, run a connection, sleep), which is all a backend implements.
//! - [`SocketBase`]: the user-facing socket API that is the same on every backend (messaging,
//!   subscriptions, monitor, unbind/disconnect, and the preparation of bind/connect); a
//!   backend's `Socket` dereferences to it.
//! - [`Endpoint`], [`Options`], [`SubscriptionTrie`], [`MonitorEvent`], [`Error`].
//!
//! ```
//! use std::task::{Context, Poll, Waker};
//! use omq_sockets::{inproc, Core, Options};
//! use omq_zmtp::{Message, SocketType};
//!
//! let pull = Core::new(SocketType::Pull, Options::default())?;
//! let push = Core::new(SocketType::Push, Options::default())?;
//! inproc::bind(&pull, "doc-example")?;
//! inproc::connect(&push, "doc-example")?;
//!
//! push.try_send(Message::from("hello")).unwrap();
//! let mut cx = Context::from_waker(Waker::noop());
//! let Poll::Ready(Ok(msg)) = pull.poll_recv(&mut cx) else { panic!() };
//! assert_eq!(msg, Message::from("hello"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

pub mod api;
mod base;
mod core;
mod endpoint;
mod engine;
mod error;
pub mod inproc;
#[cfg(unix)]
pub mod io;
mod lifecycle;
mod monitor;
#[cfg(unix)]
pub mod net;
mod options;
mod spin;
mod trie;
mod wait;
pub mod zap;

pub use crate::base::{Bind, Connect, MAX_SEND_STREAK, RecvFuture, SendFuture, SocketBase};
pub use crate::core::{Core, MessageWithPeer, PeerCommand, PeerId, PeerPipes};
pub use endpoint::{Endpoint, EndpointError, Host, IpcAddr, Port};
pub use engine::{Engine, EngineError, GOODBYE, READ_SPIN, STREAMING_READ};
pub use error::{Error, TrySendError};
pub use lifecycle::{Connector, EndpointCtl, EndpointState, Endpoints, Step};
pub use monitor::{Monitor, MonitorEvent};
pub use options::{OptionError, Options, ReconnectStop, TcpKeepalive};
pub use trie::SubscriptionTrie;
pub use zap::{AuthHandler, Authenticator, ZAP_ENDPOINT, ZapRequest};
