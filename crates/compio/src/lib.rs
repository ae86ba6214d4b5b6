//! ZeroMQ sockets on compio: io_uring on Linux, with a polling driver where the kernel refuses
//! io_uring.
//!
//! The same socket API as omq-tokio (PAIR, PUB, SUB, XPUB, XSUB, PUSH, PULL, REQ, REP, DEALER,
//! ROUTER over `tcp://`, `ipc://` and `inproc://`), on the same runtime-independent socket layer
//! ([`omq_sockets`]). This crate owns the file descriptors, the tasks and the timers: a listener
//! task per bound endpoint, a connect loop per connected endpoint, and one driver task per
//! connection that owns every read and write operation with its buffer.
//!
//! # Cancel safety
//! A completion-based read owns its buffer until the kernel completes it; dropping its future
//! can lose bytes. No I/O operation is ever issued from a user's future here: `send` and `recv`
//! only touch the socket's in-memory pipes, and the per-connection driver keeps its operations
//! until the connection ends. A dropped `recv()` or `send()` future loses nothing.
//!
//! # Threads
//! compio runs one runtime per thread, and these sockets are `!Send`: create and use a socket on
//! the thread whose runtime runs it. For several cores, start a runtime per thread, each with its
//! own sockets (inproc endpoints connect sockets across threads). [`runtime`] builds one set up
//! for this crate's traffic (any compio runtime works). From a plain `main`:
//!
//! ```
//! use omq_compio::{Options, Socket, SocketType};
//!
//! let runtime = omq_compio::runtime()?;
//! runtime.block_on(async {
//!     let pull = Socket::new(SocketType::Pull, Options::default())?;
//!     let endpoint = pull.bind("tcp://127.0.0.1:0").await?;
//!     let push = Socket::new(SocketType::Push, Options::default())?;
//!     push.connect(&endpoint.to_string()).await?;
//!     push.send("hello").await?;
//!     assert_eq!(pull.recv().await?.frames()[0], b"hello"[..]);
//!     Ok::<(), omq_compio::Error>(())
//! })?;
//! # Ok::<(), omq_compio::Error>(())
//! ```
//!
//! [`driver_type`] tells whether io_uring or the polling driver is active.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

mod driver;
mod transport;

pub use omq_sockets::api::*;
pub use transport::{Compio, Listener, Stream};

/// A compio runtime for this thread, set up for omq's traffic.
///
/// An io_uring completion is finished by task work on the thread that submitted the operation.
/// By default the kernel interrupts that thread for it at once, with an inter-processor
/// interrupt when the thread is running on another CPU: costly on a virtual machine, and a
/// receive that spins (as REQ, REP, DEALER, ROUTER and PAIR do before they sleep) is interrupted
/// for every message. This runtime asks for cooperative task running instead
/// (`IORING_SETUP_COOP_TASKRUN`): the work waits for the thread's next entry into the kernel,
/// and `IORING_SETUP_TASKRUN_FLAG` tells the runtime when one is due. On a 2-vCPU VM that took
/// a tcp REQ/REP round trip from 32-43 µs to 16-21 µs, with PUSH/PULL throughput level or
/// better.
///
/// Where the kernel refuses those flags (before Linux 5.19) it is an ordinary
/// `compio::runtime::Runtime::new()`, which falls back to the polling driver where io_uring is
/// refused altogether.
///
/// ```
/// let runtime = omq_compio::runtime()?;
/// runtime.block_on(async {
///     let pull = omq_compio::Socket::new(omq_compio::SocketType::Pull, Default::default())?;
///     pull.bind("inproc://runtime-doc").await?;
///     Ok::<(), omq_compio::Error>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn runtime() -> std::io::Result<compio::runtime::Runtime> {
    let mut proactor = compio::driver::ProactorBuilder::new();
    proactor.coop_taskrun(true).taskrun_flag(true);
    let runtime = compio::runtime::RuntimeBuilder::new()
        .with_proactor(proactor)
        .build()?;
    if runtime.driver_type() == compio::driver::DriverType::Poll {
        // io_uring with those flags was refused: try it without them.
        return compio::runtime::Runtime::new();
    }
    Ok(runtime)
}

/// Which I/O driver the current thread's compio runtime uses, if a runtime is running.
pub fn driver_type() -> Option<compio::driver::DriverType> {
    compio::runtime::Runtime::try_current().map(|r| r.driver_type())
}

/// A ZeroMQ socket on compio (see [`omq_sockets::io::Socket`] for its methods). `!Send`: it lives on the thread of the runtime that runs it.
pub type Socket = omq_sockets::io::Socket<Compio>;
