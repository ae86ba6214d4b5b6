//! The I/O the endpoint loops of omq-sockets need, on tokio: listeners, streams, the driver,
//! a timer.

use std::time::Instant;

use omq_sockets::io::{Io, Task};
use omq_sockets::{Engine, EngineError};
use tokio::task::JoinHandle;

use crate::driver;

omq_sockets::backend! {
    /// The tokio backend: omq-sockets' [`Io`] on tokio's runtime.
    pub struct Tokio on tokio::net;
}

impl Io for Tokio {
    type Handle = JoinHandle<()>;

    async fn run(&self, stream: Stream, engine: &mut Engine) -> EngineError {
        match stream {
            Stream::Tcp(s) => driver::run(s, engine).await,
            Stream::Ipc(s) => driver::run(s, engine).await,
        }
    }

    async fn sleep_until(&self, deadline: Instant) {
        tokio::time::sleep_until(deadline.into()).await;
    }

    fn spawn(&self, task: Task<Self>) -> JoinHandle<()> {
        tokio::spawn(task.run())
    }

    async fn join(handle: &mut JoinHandle<()>) {
        let _ = handle.await;
    }

    fn is_finished(handle: &JoinHandle<()>) -> bool {
        handle.is_finished()
    }

    fn detach(handle: JoinHandle<()>) {
        // A tokio task runs on when its handle is dropped.
        drop(handle);
    }

    fn runtime_available() -> bool {
        tokio::runtime::Handle::try_current().is_ok()
    }
}
