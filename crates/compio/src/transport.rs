//! The I/O the endpoint loops of omq-sockets need, on compio: listeners, streams, the driver,
//! a timer.

use std::time::Instant;

use compio::runtime::JoinHandle;
use omq_sockets::io::{Io, Task};
use omq_sockets::{Engine, EngineError};

use crate::driver;

omq_sockets::backend! {
    /// The compio backend: omq-sockets' [`Io`] on compio's runtime.
    pub struct Compio on compio::net;
}

impl Io for Compio {
    type Handle = JoinHandle<()>;

    async fn run(&self, stream: Stream, engine: &mut Engine) -> EngineError {
        match stream {
            Stream::Tcp(s) => {
                let (r, w) = s.into_split();
                driver::run(r, w, engine).await
            }
            Stream::Ipc(s) => {
                let (r, w) = s.into_split();
                driver::run(r, w, engine).await
            }
        }
    }

    async fn sleep_until(&self, deadline: Instant) {
        compio::time::sleep_until(deadline).await;
    }

    fn spawn(&self, task: Task<Self>) -> JoinHandle<()> {
        compio::runtime::spawn(task.run())
    }

    async fn join(handle: &mut JoinHandle<()>) {
        let _ = handle.await;
    }

    fn is_finished(handle: &JoinHandle<()>) -> bool {
        handle.is_finished()
    }

    fn detach(handle: JoinHandle<()>) {
        // Dropping a compio task handle would cancel the task.
        handle.detach();
    }

    fn runtime_available() -> bool {
        compio::runtime::Runtime::try_current().is_some()
    }
}
