//! blume: a multi-producer single-consumer channel that hands items over in batches.
//!
//! Senders append to one queue under a short lock. The receiver takes the *whole* queue in one
//! lock round trip, by swapping it with its own empty buffer, and then pops from its private buffer
//! with no synchronisation at all until it runs dry. Senders wake the receiver only when the
//! queue goes from empty to non-empty: N sends in a burst cost one wakeup.
//!
//! ```
//! let (tx, mut rx) = blume::unbounded();
//! let tx2 = tx.clone();
//! std::thread::spawn(move || {
//!     for i in 0..3 {
//!         tx2.send_blocking(i).unwrap();
//!     }
//! })
//! .join()
//! .unwrap();
//! drop(tx);
//! let got: Vec<i32> = rx.iter().collect();
//! assert_eq!(got, [0, 1, 2]);
//! ```
//!
//! Bounded channels hold at most `capacity` items in the shared queue; a send waits (or
//! `try_send` hands the item back) while it is full. The batch the receiver has already taken is
//! not counted: while the receiver works through it, senders can refill the queue, so the two sides
//! run in parallel instead of in turns. At most `2 * capacity` items are buffered in total.
//!
//! Async methods take [`std::task::Context`] wakers and need no runtime; the `*_blocking` methods
//! park the calling thread.
//!
//! # Algorithm
//!
//! One `Mutex<State>` holds the queue, the receiver's waker, the wakers of senders waiting for
//! space, and the sender count. Every waiter registers its waker in the same critical section in
//! which it found the queue empty (receiver) or full (sender), and every state change that can end
//! a wait takes the registered wakers in its critical section and wakes them after unlocking; so
//! no wakeup is lost and none is sent while the receiver still has items to take. FIFO order per
//! sender follows from the single queue: items from one sender enter it in the order they were
//! sent, and the receiver's swaps hand over contiguous prefixes.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

mod sync;

use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Wake, Waker};

use sync::{Arc, Mutex, MutexGuard, lock};

/// Creates a channel whose shared queue holds at most `capacity` items.
///
/// # Panics
/// If `capacity` is 0.
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "capacity must be at least 1");
    channel(Some(capacity))
}

/// Creates a channel with no capacity limit.
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    channel(None)
}

fn channel<T>(capacity: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            receiver_waker: None,
            sender_wakers: Vec::new(),
            senders: 1,
            receiver_alive: true,
            closed: false,
        }),
        capacity,
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver {
            shared,
            local: VecDeque::new(),
        },
    )
}

struct Shared<T> {
    state: Mutex<State<T>>,
    capacity: Option<usize>,
}

struct State<T> {
    queue: VecDeque<T>,
    receiver_waker: Option<Waker>,
    /// Senders waiting for space.
    sender_wakers: Vec<Waker>,
    senders: usize,
    receiver_alive: bool,
    closed: bool,
}

impl<T> State<T> {
    fn disconnected_for_senders(&self) -> bool {
        self.closed || !self.receiver_alive
    }

    fn disconnected_for_receiver(&self) -> bool {
        self.closed || self.senders == 0
    }
}

/// The sending side. Clone it for more producers.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving side.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// The batch taken from the shared queue, popped without locking.
    local: VecDeque<T>,
}

/// The error of [`Sender::try_send`]: the item is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel is bounded and full.
    Full(T),
    /// The receiver is gone or the channel was closed.
    Disconnected(T),
}

/// The error of [`Sender::send`]: the receiver is gone or the channel was closed; the item is
/// handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SendError<T>(pub T);

/// The error of [`Receiver::try_recv`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing is queued right now.
    Empty,
    /// Nothing is queued and every sender is gone (or the channel was closed).
    Disconnected,
}

/// The error of [`Receiver::recv`]: nothing is queued and every sender is gone (or the channel was
/// closed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvError;

impl<T> TrySendError<T> {
    /// The item that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(v) | Self::Disconnected(v) => v,
        }
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("sending on a full channel"),
            Self::Disconnected(_) => f.write_str("sending on a disconnected channel"),
        }
    }
}

impl<T> std::error::Error for TrySendError<T> {}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a disconnected channel")
    }
}

impl<T> std::error::Error for SendError<T> {}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("receiving on an empty channel"),
            Self::Disconnected => f.write_str("receiving on an empty and disconnected channel"),
        }
    }
}

impl std::error::Error for TryRecvError {}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on an empty and disconnected channel")
    }
}

impl std::error::Error for RecvError {}

fn wake_all(wakers: Vec<Waker>) {
    for w in wakers {
        w.wake();
    }
}

impl<T> Sender<T> {
    /// Sends `value` if there is room; never waits.
    #[inline]
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let state = lock(&self.shared.state);
        if state.disconnected_for_senders() {
            return Err(TrySendError::Disconnected(value));
        }
        if self.is_full(&state) {
            return Err(TrySendError::Full(value));
        }
        self.push(state, value);
        Ok(())
    }

    #[inline]
    fn is_full(&self, state: &State<T>) -> bool {
        self.shared
            .capacity
            .is_some_and(|cap| state.queue.len() >= cap)
    }

    /// Appends under the lock, then wakes the receiver after unlocking if the queue was empty:
    /// only the empty to non-empty transition can find the receiver asleep.
    #[inline]
    fn push(&self, mut state: MutexGuard<'_, State<T>>, value: T) {
        let was_empty = state.queue.is_empty();
        state.queue.push_back(value);
        let waker = if was_empty {
            state.receiver_waker.take()
        } else {
            None
        };
        drop(state);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Sends the value in `value`, resolving `Pending` (and keeping the value) while a bounded
    /// channel is full. The waker is registered in the critical section that found it full.
    fn poll_send(
        &self,
        cx: &mut Context<'_>,
        value: &mut Option<T>,
    ) -> Poll<Result<(), SendError<T>>> {
        let mut state = lock(&self.shared.state);
        let v = value.take().expect("polled after completion");
        if state.disconnected_for_senders() {
            return Poll::Ready(Err(SendError(v)));
        }
        if self.is_full(&state) {
            if !state.sender_wakers.iter().any(|w| w.will_wake(cx.waker())) {
                state.sender_wakers.push(cx.waker().clone());
            }
            *value = Some(v);
            return Poll::Pending;
        }
        self.push(state, v);
        Poll::Ready(Ok(()))
    }

    /// Sends `value`, waiting while a bounded channel is full. If this future is dropped while
    /// waiting, the item is dropped with it.
    pub async fn send(&self, value: T) -> Result<(), SendError<T>> {
        let mut value = Some(value);
        poll_fn(|cx| self.poll_send(cx, &mut value)).await
    }

    /// Sends `value`, parking the thread while a bounded channel is full.
    pub fn send_blocking(&self, value: T) -> Result<(), SendError<T>> {
        match self.try_send(value) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(v)) => Err(SendError(v)),
            Err(TrySendError::Full(v)) => block_on(self.send(v)),
        }
    }

    /// Closes the channel: later sends fail, the receiver still gets what is queued.
    pub fn close(&self) {
        close(&self.shared);
    }

    /// Whether the receiver is gone or the channel was closed.
    pub fn is_disconnected(&self) -> bool {
        lock(&self.shared.state).disconnected_for_senders()
    }

    /// Items in the shared queue (not counting the receiver's current batch).
    pub fn len(&self) -> usize {
        lock(&self.shared.state).queue.len()
    }

    /// Whether the shared queue is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity of a bounded channel.
    pub fn capacity(&self) -> Option<usize> {
        self.shared.capacity
    }
}

fn close<T>(shared: &Shared<T>) {
    let mut state = lock(&shared.state);
    state.closed = true;
    let receiver = state.receiver_waker.take();
    let senders = std::mem::take(&mut state.sender_wakers);
    drop(state);
    receiver.into_iter().for_each(Waker::wake);
    wake_all(senders);
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        lock(&self.shared.state).senders += 1;
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = lock(&self.shared.state);
        state.senders -= 1;
        let waker = if state.senders == 0 {
            state.receiver_waker.take()
        } else {
            None
        };
        drop(state);
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Receiver<T> {
    /// Takes the whole shared queue into the local batch. Returns whether anything came, and
    /// leaves the lock held only for the swap.
    fn refill(&mut self, cx: Option<&mut Context<'_>>) -> Result<bool, RecvError> {
        debug_assert!(self.local.is_empty());
        let mut state = lock(&self.shared.state);
        if state.queue.is_empty() {
            if state.disconnected_for_receiver() {
                return Err(RecvError);
            }
            let old = match cx {
                Some(cx) => match &state.receiver_waker {
                    Some(w) if w.will_wake(cx.waker()) => None,
                    _ => state.receiver_waker.replace(cx.waker().clone()),
                },
                None => None,
            };
            drop(state);
            // A waker's drop can drop a task holding a Sender, whose drop takes the lock.
            drop(old);
            return Ok(false);
        }
        std::mem::swap(&mut state.queue, &mut self.local);
        let senders = std::mem::take(&mut state.sender_wakers);
        drop(state);
        wake_all(senders);
        Ok(true)
    }

    /// Receives an item if one is queued; never waits.
    #[inline]
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        if let Some(v) = self.local.pop_front() {
            return Ok(v);
        }
        match self.refill(None) {
            Ok(true) => Ok(self.local.pop_front().expect("refilled")),
            Ok(false) => Err(TryRecvError::Empty),
            Err(RecvError) => Err(TryRecvError::Disconnected),
        }
    }

    /// Resolves with the next item, or `Err` once the channel is empty and disconnected.
    #[inline]
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        if let Some(v) = self.local.pop_front() {
            return Poll::Ready(Ok(v));
        }
        match self.refill(Some(cx)) {
            Ok(true) => Poll::Ready(Ok(self.local.pop_front().expect("refilled"))),
            Ok(false) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Receives the next item, waiting for one. Cancel safe: a dropped future loses nothing.
    pub async fn recv(&mut self) -> Result<T, RecvError> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Receives the next item, parking the thread while the channel is empty.
    pub fn recv_blocking(&mut self) -> Result<T, RecvError> {
        match self.try_recv() {
            Ok(v) => Ok(v),
            Err(TryRecvError::Disconnected) => Err(RecvError),
            Err(TryRecvError::Empty) => block_on(self.recv()),
        }
    }

    /// Moves what is available without waiting to the end of `buf`: the batch this receiver
    /// already took, or else the whole shared queue (one lock round trip). When `buf` is empty
    /// this is a swap of buffers, not a copy. Returns how many items were moved, or `Err` when
    /// nothing is queued and the channel is disconnected.
    pub fn try_recv_batch(&mut self, buf: &mut VecDeque<T>) -> Result<usize, RecvError> {
        match self.poll_recv_batch(None, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Ok(0),
        }
    }

    fn poll_recv_batch(
        &mut self,
        cx: Option<&mut Context<'_>>,
        buf: &mut VecDeque<T>,
    ) -> Poll<Result<usize, RecvError>> {
        if self.local.is_empty() {
            match self.refill(cx) {
                Ok(true) => {}
                Ok(false) => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let n = self.local.len();
        if buf.is_empty() {
            std::mem::swap(buf, &mut self.local);
        } else {
            buf.append(&mut self.local);
        }
        Poll::Ready(Ok(n))
    }

    /// Waits until items are available, then moves them all to the end of `buf` (see
    /// [`try_recv_batch`](Self::try_recv_batch)). Cancel safe.
    pub async fn recv_batch(&mut self, buf: &mut VecDeque<T>) -> Result<usize, RecvError> {
        poll_fn(|cx| self.poll_recv_batch(Some(cx), buf)).await
    }

    /// Parks the thread until items are available, then moves them all to the end of `buf` (see
    /// [`try_recv_batch`](Self::try_recv_batch)).
    pub fn recv_batch_blocking(&mut self, buf: &mut VecDeque<T>) -> Result<usize, RecvError> {
        match self.try_recv_batch(buf)? {
            0 => block_on(self.recv_batch(buf)),
            n => Ok(n),
        }
    }

    /// A blocking iterator that ends when the channel is empty and disconnected.
    pub fn iter(&mut self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over what can be received without waiting.
    pub fn try_iter(&mut self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// Closes the channel: later sends fail; what is queued can still be received.
    pub fn close(&self) {
        close(&self.shared);
    }

    /// Whether every sender is gone or the channel was closed (items may still be queued).
    pub fn is_disconnected(&self) -> bool {
        lock(&self.shared.state).disconnected_for_receiver()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = lock(&self.shared.state);
        state.receiver_alive = false;
        let queued = std::mem::take(&mut state.queue);
        let senders = std::mem::take(&mut state.sender_wakers);
        let own_waker = state.receiver_waker.take();
        drop(state);
        // Items and wakers are dropped outside the lock: their Drop may do anything.
        drop(queued);
        drop(own_waker);
        wake_all(senders);
    }
}

/// Blocking iterator over a [`Receiver`], from [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a mut Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.recv_blocking().ok()
    }
}

/// Non-blocking iterator over a [`Receiver`], from [`Receiver::try_iter`].
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a mut Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.shared.capacity)
            .field("batch", &self.local.len())
            .finish_non_exhaustive()
    }
}

/// Wakes a thread blocked in [`block_on`]: sets a flag it spins on first, then unparks it.
/// Unparking a thread that is not parked costs no system call.
struct Signal {
    thread: std::thread::Thread,
    woken: std::sync::atomic::AtomicBool,
}

impl Wake for Signal {
    fn wake(self: StdArc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &StdArc<Self>) {
        self.woken.store(true, std::sync::atomic::Ordering::Release);
        self.thread.unpark();
    }
}

std::thread_local! {
    static SIGNAL: StdArc<Signal> = StdArc::new(Signal {
        thread: std::thread::current(),
        woken: std::sync::atomic::AtomicBool::new(false),
    });
}

/// Runs a future to completion on this thread. Between polls it spins briefly, then yields, then
/// parks: a wakeup that comes soon is caught without the cost of sleeping and being woken.
fn block_on<F: Future>(fut: F) -> F::Output {
    const SPINS: u32 = 64;
    const YIELDS: u32 = 16;
    let signal = SIGNAL.with(StdArc::clone);
    let waker = Waker::from(signal.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        signal
            .woken
            .store(false, std::sync::atomic::Ordering::Relaxed);
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        let mut waited = 0;
        while !signal
            .woken
            .swap(false, std::sync::atomic::Ordering::Acquire)
        {
            if waited < SPINS {
                std::hint::spin_loop();
            } else if waited < SPINS + YIELDS {
                std::thread::yield_now();
            } else {
                std::thread::park();
            }
            waited += 1;
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_batches() {
        let (tx, mut rx) = unbounded();
        for i in 0..5 {
            tx.try_send(i).unwrap();
        }
        assert_eq!(rx.try_recv(), Ok(0));
        tx.try_send(5).unwrap();
        let mut buf = VecDeque::new();
        // The taken batch (1..5), then the queue is taken on the next call.
        assert_eq!(rx.try_recv_batch(&mut buf), Ok(4));
        assert_eq!(rx.try_recv_batch(&mut buf), Ok(1));
        assert_eq!(buf, [1, 2, 3, 4, 5]);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        drop(tx);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(rx.try_recv_batch(&mut buf), Err(RecvError));
    }

    #[test]
    fn bounded_full_hands_the_item_back() {
        let (tx, mut rx) = bounded(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(rx.try_recv(), Ok(1));
        // The receiver took the whole queue: the senders have room for two more.
        tx.try_send(3).unwrap();
        tx.try_send(4).unwrap();
        assert_eq!(tx.try_send(5).unwrap_err().into_inner(), 5);
        let got: Vec<_> = rx.try_iter().collect();
        assert_eq!(got, [2, 3, 4]);
    }

    #[test]
    fn receiver_drop_disconnects_and_drops_items() {
        let item = StdArc::new(());
        let (tx, rx) = unbounded();
        tx.try_send(item.clone()).unwrap();
        drop(rx);
        assert_eq!(StdArc::strong_count(&item), 1);
        assert!(tx.is_disconnected());
        assert!(matches!(
            tx.try_send(item.clone()),
            Err(TrySendError::Disconnected(_))
        ));
        assert_eq!(tx.send_blocking(item.clone()).unwrap_err().0, item);
    }

    #[test]
    fn close_from_either_side() {
        let (tx, mut rx) = unbounded();
        tx.try_send(1).unwrap();
        tx.close();
        assert!(matches!(tx.try_send(2), Err(TrySendError::Disconnected(2))));
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));

        let (tx, mut rx) = unbounded::<i32>();
        rx.close();
        assert!(tx.is_disconnected());
        assert_eq!(rx.recv_blocking(), Err(RecvError));
    }

    #[test]
    fn last_sender_drop_disconnects() {
        let (tx, mut rx) = unbounded::<i32>();
        let tx2 = tx.clone();
        drop(tx);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert!(!rx.is_disconnected());
        drop(tx2);
        assert!(rx.is_disconnected());
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[test]
    fn send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Sender<String>>();
        check::<Receiver<String>>();
    }
}

/// The README's examples, compiled and run as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
