//! ZeroMQ socket semantics that do not depend on any async runtime, shared by the omq backends
//! (omq-tokio, omq-compio).
//!
//! This crate is being built up. It has so far:
//! - [`Endpoint`]: `tcp://`, `ipc://` and `inproc://` endpoints parsed as libzmq parses them,
//!   with typed errors and a check for what `connect` accepts.
//! - [`Options`]: socket options with libzmq's names and defaults, validated per socket type, and
//!   mapped onto the codec's [`omq_zmtp::Config`].
//! - [`SubscriptionTrie`]: counted prefix subscriptions whose match cost depends on the topic's
//!   length only, safe against subscriptions from the network (no recursion).
//!
//! Routing, per-peer pipes, REQ/REP state and inproc come next.
//!
//! ```
//! use omq_sockets::{Endpoint, Options, SubscriptionTrie};
//! use omq_zmtp::SocketType;
//!
//! let ep: Endpoint = "tcp://127.0.0.1:5555".parse()?;
//! ep.check_connect()?;
//!
//! let opts = Options::default();
//! opts.validate(SocketType::Sub)?;
//! let config = opts.zmtp_config(SocketType::Sub);
//! assert_eq!(config.socket_type, SocketType::Sub);
//!
//! let mut subs = SubscriptionTrie::new();
//! subs.subscribe(b"weather.");
//! assert!(subs.matches(b"weather.oslo"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

mod endpoint;
mod options;
mod trie;

pub use endpoint::{Endpoint, EndpointError, Host, IpcAddr, Port};
pub use options::{OptionError, Options, ReconnectStop, TcpKeepalive};
pub use trie::SubscriptionTrie;
