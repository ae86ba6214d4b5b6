//! omq sockets against a real libzmq (4.3, built by the `zmq` crate), on both backends: every
//! pattern, in both directions, with libzmq binding and with omq binding, over tcp and ipc,
//! heartbeats on both sides, content checked.
//!
//! libzmq runs its blocking calls on blocking threads with receive and send timeouts, so a
//! failure is an error, never a hang. Over ipc, libzmq can lose the tail of what it sent if it
//! closes right after sending (libzmq issue #4660), so every libzmq sender stays open until the
//! receiver has everything.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

mod tokio_backend {
    use super::*;
    use omq_tokio::{Message, MonitorEvent, Options, Socket, SocketType};

    macro_rules! suite_test {
        ($(#[$m:meta])* async fn $name:ident() $body:block) => {
            $(#[$m])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() $body
        };
    }

    async fn timeout<F: Future>(d: Duration, f: F) -> Result<F::Output, ()> {
        tokio::time::timeout(d, f).await.map_err(drop)
    }

    /// Starts `f` on a blocking thread now; the handle resolves to its result.
    fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = T> {
        let h = tokio::task::spawn_blocking(f);
        async move { h.await.unwrap() }
    }

    include!("libzmq_suite/body.rs");
}

mod compio_backend {
    use super::*;
    use omq_compio::{Message, MonitorEvent, Options, Socket, SocketType};

    macro_rules! suite_test {
        ($(#[$m:meta])* async fn $name:ident() $body:block) => {
            $(#[$m])*
            #[compio::test]
            async fn $name() $body
        };
    }

    async fn timeout<F: Future>(d: Duration, f: F) -> Result<F::Output, ()> {
        compio::time::timeout(d, f).await.map_err(drop)
    }

    /// Starts `f` on a blocking thread now; the handle resolves to its result.
    fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = T> {
        let h = compio::runtime::spawn_blocking(f);
        async move { h.await.unwrap() }
    }

    include!("libzmq_suite/body.rs");
}
