//! ZeroMQ sockets on tokio.
//!
//! Every standard socket type (PAIR, PUB, SUB, XPUB, XSUB, PUSH, PULL, REQ, REP, DEALER,
//! ROUTER) over `tcp://`, `ipc://` and `inproc://`, speaking ZMTP 3.1 (and 3.0) to libzmq and
//! to each other. The socket semantics live in [`omq_sockets`]; this crate owns the file
//! descriptors, the tasks and the timers: one listener task per bound endpoint, one connect loop
//! per connected endpoint, and one driver task per connection that reads into the codec, writes
//! batches of queued messages with one vectored write, and runs the heartbeats.
//!
//! Sockets are `Send + Sync` and work on current-thread and multi-thread runtimes.
//!
//! ```
//! use omq_tokio::{Options, Socket, SocketType};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), omq_tokio::Error> {
//! let pull = Socket::new(SocketType::Pull, Options::default())?;
//! let endpoint = pull.bind("tcp://127.0.0.1:0").await?;
//!
//! let push = Socket::new(SocketType::Push, Options::default())?;
//! push.connect(&endpoint.to_string()).await?;
//! push.send("hello").await?;
//!
//! let msg = pull.recv().await?;
//! assert_eq!(msg.frames()[0], b"hello"[..]);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

mod driver;
mod transport;

pub use omq_sockets::api::*;
pub use transport::{Listener, Stream, Tokio};

/// A ZeroMQ socket on tokio (see [`omq_sockets::io::Socket`] for its methods).
pub type Socket = omq_sockets::io::Socket<Tokio>;

/// The workspace README's examples (they use this crate and the codec), compiled and run as doc
/// tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
