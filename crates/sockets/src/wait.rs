//! A list of task wakers woken together: the waker handed to every pipe a socket waits on.

use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Wake, Waker};

/// Tasks waiting for one side of a socket (receive or send).
///
/// A pipe (a `yring` end) holds one waker. A socket waits on many pipes at once and may be
/// polled by several tasks, so every pipe gets this list's own waker, and waking it wakes every
/// task registered in the list. The protocol is set-pending, register, re-check: a task adds
/// itself with [`register`](Self::register) *before* it polls the pipes, so a wakeup between the
/// check and the sleep is never lost.
#[derive(Debug, Default)]
pub(crate) struct WaitList {
    wakers: Mutex<Vec<Waker>>,
}

impl WaitList {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Adds the task of `cx` (once, however often it is polled).
    pub(crate) fn register(&self, cx: &Context<'_>) {
        let mut w = self.wakers.lock().unwrap_or_else(PoisonError::into_inner);
        if !w.iter().any(|k| k.will_wake(cx.waker())) {
            w.push(cx.waker().clone());
        }
    }

    /// Wakes and forgets every registered task.
    pub(crate) fn wake_all(&self) {
        let wakers =
            std::mem::take(&mut *self.wakers.lock().unwrap_or_else(PoisonError::into_inner));
        for w in wakers {
            w.wake();
        }
    }
}

impl Wake for WaitList {
    fn wake(self: Arc<Self>) {
        self.wake_all();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_all();
    }
}
