//! The little the tool needs from a runtime beyond omq's sockets, for each backend (`race`,
//! `join` and `sleep` come from omq-sockets).

use std::future::Future;

use omq_sockets::io::Io;

/// A backend the tool can run on: omq's I/O for it (which has the timer), plus a runtime,
/// Ctrl-C and background tasks.
pub(crate) trait Runtime: Io + Default + Sized + 'static {
    /// Runs `f` to completion on a new single-threaded runtime.
    fn block_on<F: Future>(f: F) -> Result<F::Output, String>;
    /// Completes when the process receives SIGINT (Ctrl-C).
    fn ctrl_c() -> impl Future<Output = ()>;
    /// Runs `f` in the background for as long as the runtime runs.
    fn spawn_detached(f: impl Future<Output = ()> + Send + 'static);
}

impl Runtime for omq_tokio::Tokio {
    fn block_on<F: Future>(f: F) -> Result<F::Output, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))?;
        Ok(rt.block_on(f))
    }

    async fn ctrl_c() {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handling here: never complete, as if the signal never came.
            std::future::pending::<()>().await;
        }
    }

    fn spawn_detached(f: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(f);
    }
}

impl Runtime for omq_compio::Compio {
    fn block_on<F: Future>(f: F) -> Result<F::Output, String> {
        let rt = omq_compio::runtime().map_err(|e| format!("cannot start the runtime: {e}"))?;
        Ok(rt.block_on(f))
    }

    async fn ctrl_c() {
        if compio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    fn spawn_detached(f: impl Future<Output = ()> + Send + 'static) {
        compio::runtime::spawn(f).detach();
    }
}
