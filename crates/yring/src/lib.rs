//! yring: a bounded single-producer single-consumer ring that moves items in batches.
//!
//! The producer pushes items privately and makes them visible with one [`publish`]; the consumer
//! takes everything published with one [`fetch`] and then pops with no atomic operations at all,
//! handing the slots back in one store. In steady state there is no atomic operation per item, and
//! the two sides touch each other's cache line once per batch.
//!
//! ```
//! let (mut tx, mut rx) = yring::channel::<u64>(1024);
//! for i in 0..10 {
//!     tx.push(i).unwrap(); // private to the producer...
//! }
//! assert_eq!(rx.fetch(), 0);
//! tx.publish(); // ...until published, all ten with one store
//! assert_eq!(rx.fetch(), 10);
//! let items: Vec<u64> = std::iter::from_fn(|| rx.pop()).collect();
//! assert_eq!(items, (0..10).collect::<Vec<_>>());
//!
//! // One item at a time, rtrb-style:
//! tx.push_publish(42).unwrap();
//! assert_eq!(rx.fetch_pop(), Ok(42));
//! ```
//!
//! # Algorithm
//!
//! A ring of `capacity` slots (the buffer is the next power of two, indexed by position & mask)
//! with two monotonically increasing positions, each in its own cache line:
//! - `tail`: how far the producer has published. The producer writes it once per published
//!   batch; the consumer reads it with an acquire load.
//! - `head`: how far the consumer has released. The consumer writes it with one `swap` per
//!   quarter of the capacity (and before sleeping); the producer reads it.
//!
//! Each side keeps a private copy of its own position (items pushed but not published; items
//! popped but not released) and a cached copy of the other side's, which it reloads only when the
//! cache says full (producer) or empty (consumer), as in rtrb's `cached_head`. Positions are
//! stored shifted left by two; the low bits are flags: `CLOSED` (the side that owns the word has
//! been dropped, set together with its final position, so pushed-but-unpublished items are
//! published on drop and nothing is lost) and `WAITING` (the other side is about to sleep and
//! must be woken by the next store to this word).
//!
//! Waking follows set pending, register, re-check, and a wake is sent only to a side that may be
//! asleep:
//! - **Producer asleep, consumer releasing** (once per quarter of the capacity). The producer
//!   registers its waker and `fetch_or`s `WAITING` into the head word, then re-checks the
//!   position that `fetch_or` returned; the consumer releases with a `swap` of the head word,
//!   sees `WAITING`, and wakes it. One atomic word decides.
//! - **Consumer asleep, producer publishing** (once per publish), in one of two ways chosen per
//!   ring ([`Publish`]):
//!   - [`Publish::Swap`] ([`channel`]): the same protocol on the tail word. The publish is a
//!     `swap`, a locked instruction that cannot complete until the tail's cache line, which the
//!     consumer keeps reading, is back, nor until the item's own stores are out. A consumer's
//!     sleep costs one `fetch_or`.
//!   - [`Publish::Store`] ([`channel_with`]): the publish is a plain release store, then a load of
//!     a `consumer_waiting` flag on its own line, which only a consumer going to sleep raises. The
//!     consumer registers its waker, raises the flag, and re-reads the tail. Each side stores,
//!     then loads the other's word: a Dekker pattern, which needs a store-load barrier on both
//!     sides. The producer's is a compiler fence; the consumer pays for both with one
//!     `membarrier(PRIVATE_EXPEDITED)` system call, which makes every running thread of the
//!     process execute a full barrier (0.4 µs here with the process's other threads idle, 1 µs
//!     with one of them running). Where that is unavailable, both sides use `fence(SeqCst)`. A
//!     consumer waiting on several rings raises every flag and pays the barrier once
//!     ([`Consumer::poll_fetch_announce`], [`confirm_waits`], [`Consumer::poll_recheck`]), and
//!     a wait that a barrier confirmed and no publish has ended needs no new one. With 64-byte
//!     items between two threads, this took omq's inproc sockets from 0.79x (omq-compio) and
//!     0.94x (omq-tokio) of the rate with the store to 1.0x; a consumer that sleeps after every
//!     few items pays a system call each time, so the swap stays the default.
//!
//! Before going to sleep, a side publishes (producer) or releases (consumer) everything it holds,
//! so two sleeping sides can never be waiting on each other. Wakers are kept in a small mutex
//! that is touched only on the sleep path. The async methods take [`std::task::Context`] wakers
//! and need no runtime.
//!
//! A keeping ring ([`channel_keeping`]) leaves each item in its slot after the consumer is done
//! with it, for the producer to drop: the consumer reads in place ([`Consumer::pop_with`]), and
//! the producer drops what the released slots keep in one pass each time it reloads `head`.
//!
//! [`publish`]: Producer::publish
//! [`fetch`]: Consumer::fetch
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    clippy::undocumented_unsafe_blocks
)]

mod barrier;
mod sync;

use std::fmt;
use std::future::poll_fn;
use std::mem::MaybeUninit;
use std::task::{Context, Poll, Waker};

use sync::{Arc, AtomicBool, AtomicUsize, Mutex, Ordering, UnsafeCell};

const WAITING: usize = 1;
const CLOSED: usize = 2;
const SHIFT: u32 = 2;
/// Positions wrap at 2^(usize::BITS - 2); all position arithmetic is modulo this.
const POS_MASK: usize = usize::MAX >> SHIFT;

/// How the producer's publish and a consumer going to sleep agree, chosen per ring (see the
/// crate docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Publish {
    /// Each publish is an atomic swap of the tail word, and a consumer goes to sleep with one
    /// `fetch_or` on it. The cheapest sleep; a publish waits for the tail's cache line. For
    /// rings whose two sides often share a thread, or whose consumer sleeps often.
    #[default]
    Swap,
    /// Each publish is a plain store, and a consumer going to sleep pays a barrier on every
    /// thread of the process (`membarrier` on Linux, [`confirm_waits`]). For rings between
    /// threads on different cores whose consumer takes many items per sleep: the producer
    /// never waits for the consumer's cache lines.
    Store,
}

/// Creates a ring holding up to `capacity` items, publishing with [`Publish::Swap`].
///
/// # Panics
/// If `capacity` is 0 or larger than `isize::MAX / 4` slots.
pub fn channel<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    channel_with(capacity, Publish::Swap)
}

/// Creates a ring holding up to `capacity` items, publishing as `publish` says.
///
/// ```
/// use yring::Publish;
///
/// let (mut tx, mut rx) = yring::channel_with::<u64>(1024, Publish::Store);
/// assert_eq!(rx.publish_mode(), Publish::Store);
/// tx.push_publish(7).unwrap(); // a plain store: never waits for the consumer's cache lines
/// assert_eq!(rx.fetch_pop(), Ok(7));
/// ```
///
/// # Panics
/// If `capacity` is 0 or larger than `isize::MAX / 4` slots.
pub fn channel_with<T>(capacity: usize, publish: Publish) -> (Producer<T>, Consumer<T>) {
    make(capacity, publish, None)
}

/// Creates a ring whose slots keep each item after the consumer is done with it: the producer
/// drops it the next time it reloads the consumer's position after the consumer released the
/// slot (at the latest before it writes that slot again), or the ring's drop does. An item the
/// consumer reads in place ([`Consumer::pop_with`]) and leaves there is therefore dropped on the
/// producer's side, in its thread; one it takes ([`Consumer::pop`] and the others) leaves
/// `T::default()` behind. Should `T::default()` panic there, the process aborts (the slot would
/// otherwise be left empty where an item is expected); should a kept item's drop panic, the
/// other items of that pass leak.
///
/// For items whose drop is better done by the thread that made them: a reference count that
/// the producer keeps touching, or memory the producer's allocator would rather get back
/// itself. Each slot holds an item from its first write on, so up to a ring's worth of items
/// stay alive after the consumer has read them.
///
/// ```
/// use std::sync::Arc;
/// use yring::Publish;
///
/// let payload = Arc::new([0u8; 128]);
/// let (mut tx, mut rx) = yring::channel_keeping::<Option<Arc<[u8; 128]>>>(2, Publish::Store);
/// tx.push_publish(Some(payload.clone())).unwrap();
/// rx.fetch();
/// // The consumer copies the bytes and leaves the shared handle in its slot...
/// let copy = rx.pop_fetched_with(|item| **item.as_ref().unwrap());
/// assert_eq!(copy, [0u8; 128]);
/// assert_eq!(Arc::strong_count(&payload), 2);
/// // ...which the producer drops once it has written every slot again.
/// tx.push_publish(None).unwrap();
/// rx.fetch_pop().unwrap();
/// rx.release();
/// tx.push_publish(None).unwrap();
/// assert_eq!(Arc::strong_count(&payload), 1);
/// ```
///
/// # Panics
/// If `capacity` is 0 or larger than `isize::MAX / 4` slots.
pub fn channel_keeping<T: Default>(
    capacity: usize,
    publish: Publish,
) -> (Producer<T>, Consumer<T>) {
    make(capacity, publish, Some(T::default))
}

/// The ring of [`channel_with`], and of [`channel_keeping`] when `fill` is given.
fn make<T>(
    capacity: usize,
    publish: Publish,
    fill: Option<fn() -> T>,
) -> (Producer<T>, Consumer<T>) {
    assert!(capacity > 0, "capacity must be at least 1");
    assert!(
        capacity <= (isize::MAX as usize) >> SHIFT,
        "capacity too large"
    );
    let len = capacity.next_power_of_two();
    let slots = Slots::new(len);
    let shared = Arc::new(Shared {
        tail: CachePadded(AtomicUsize::new(0)),
        head: CachePadded(AtomicUsize::new(0)),
        consumer_waiting: CachePadded(AtomicBool::new(false)),
        mode: match publish {
            Publish::Swap => Mode::Swap,
            Publish::Store if barrier::asymmetric() => Mode::StoreAsymmetric,
            Publish::Store => Mode::StoreFenced,
        },
        consumer_waker: Mutex::new(None),
        producer_waker: Mutex::new(None),
        slots,
        mask: len - 1,
        capacity,
        fill,
        cleared: AtomicUsize::new(len),
    });
    let release_batch = (capacity / 4).max(1);
    (
        Producer {
            shared: shared.clone(),
            tail: 0,
            published: 0,
            cached_head: 0,
            consumer_gone: false,
        },
        Consumer {
            shared,
            head: 0,
            released: 0,
            cached_tail: 0,
            producer_gone: false,
            release_batch,
            confirmed: false,
        },
    )
}

/// The barrier between announcing waits and re-checking them: see
/// [`Consumer::poll_fetch_announce`]. One call covers every ring announced before it, on this
/// thread.
///
/// On Linux this is one `membarrier` system call (well under a microsecond when the process's
/// other threads are idle, about one when another of them is running); elsewhere a fence.
pub fn confirm_waits() {
    barrier::heavy();
}

#[cfg_attr(
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "powerpc64"
    ),
    repr(align(128))
)]
#[cfg_attr(
    not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "powerpc64"
    )),
    repr(align(64))
)]
struct CachePadded<T>(T);

/// [`Publish`], with the store form's barrier decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Swap,
    /// Plain-store publish; the consumer's `membarrier` covers the producer's compiler fence.
    StoreAsymmetric,
    /// Plain-store publish where membarrier is unavailable: `fence(SeqCst)` on both sides.
    StoreFenced,
}

struct Shared<T> {
    /// Published position << SHIFT | producer CLOSED | consumer WAITING (`Mode::Swap` only).
    tail: CachePadded<AtomicUsize>,
    /// Released position << SHIFT | producer WAITING | consumer CLOSED.
    head: CachePadded<AtomicUsize>,
    /// `Mode::Store*`: the consumer is about to sleep, or asleep; the next publish wakes it.
    consumer_waiting: CachePadded<AtomicBool>,
    mode: Mode,
    consumer_waker: Mutex<Option<Waker>>,
    producer_waker: Mutex<Option<Waker>>,
    slots: Slots<T>,
    mask: usize,
    capacity: usize,
    /// A keeping ring ([`channel_keeping`]): what the consumer leaves in a slot whose item it
    /// takes. Every slot the producer has written holds an item.
    fill: Option<fn() -> T>,
    /// A keeping ring, the producer's record of which slots hold items: those of positions
    /// [tail, cleared) are empty (never written, or their items dropped), those of
    /// [cleared, tail + slots) hold items from the last lap. Only the producer writes it
    /// (relaxed: the ring's drop synchronises with the producer's).
    cleared: AtomicUsize,
}

// SAFETY: the ring moves `T` values from the producer's thread to the consumer's, which needs
// `T: Send`. Each slot is accessed by one side at a time: the producer only writes slots in
// [head, head + capacity) that it has not published, the consumer only reads slots in
// [head, tail) that were published with a release store it acquired. No `&T` is ever shared
// between the two sides, so `T: Sync` is not needed.
unsafe impl<T: Send> Send for Shared<T> {}
// SAFETY: as above; the shared state is only atomics, mutexes, and slots whose ownership is
// handed over through the release/acquire positions.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    #[inline]
    fn slot(&self, pos: usize) -> &UnsafeCell<MaybeUninit<T>> {
        &self.slots[pos & self.mask]
    }

    #[cold]
    #[inline(never)]
    fn wake(slot: &Mutex<Option<Waker>>) {
        let waker = lock(slot).take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Puts `waker` in `slot`; false if the slot already held one that wakes the same task.
    fn register(slot: &Mutex<Option<Waker>>, waker: &Waker) -> bool {
        let mut guard = lock(slot);
        let (changed, old) = match &*guard {
            Some(w) if w.will_wake(waker) => (false, None),
            _ => (true, guard.replace(waker.clone())),
        };
        drop(guard);
        // Dropping a waker can drop a task, and with it perhaps the other side of this ring,
        // whose drop takes this lock: never do it while holding the lock.
        drop(old);
        changed
    }
}

#[cfg(not(loom))]
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(loom)]
fn lock<T>(m: &Mutex<T>) -> loom::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The ring's slots, in one allocation that starts on a cache-line boundary (two lines, for
/// CPUs that fetch lines in pairs): an item of one line's size then occupies exactly one line,
/// instead of straddling two that it shares with its neighbours. With 64-byte items a slot
/// straddling two lines is written by the producer while the consumer reads its neighbour,
/// which cost a bare ring between two threads 7-10 % of its rate.
#[cfg(not(loom))]
struct Slots<T> {
    ptr: std::ptr::NonNull<UnsafeCell<MaybeUninit<T>>>,
    len: usize,
}

/// Under loom, whose cells are not `repr(transparent)`, a plain boxed slice.
#[cfg(loom)]
struct Slots<T>(Box<[UnsafeCell<MaybeUninit<T>>]>);

/// The alignment of the slots' allocation.
#[cfg(not(loom))]
const SLOTS_ALIGN: usize = 128;

#[cfg(not(loom))]
impl<T> Slots<T> {
    fn layout(len: usize) -> std::alloc::Layout {
        std::alloc::Layout::array::<UnsafeCell<MaybeUninit<T>>>(len)
            .and_then(|l| l.align_to(SLOTS_ALIGN))
            .expect("capacity too large")
    }

    fn new(len: usize) -> Self {
        let layout = Self::layout(len);
        let ptr = if layout.size() == 0 {
            std::ptr::NonNull::dangling()
        } else {
            // SAFETY: the layout's size is not zero.
            let raw = unsafe { std::alloc::alloc(layout) };
            match std::ptr::NonNull::new(raw.cast()) {
                Some(p) => p,
                None => std::alloc::handle_alloc_error(layout),
            }
        };
        Self { ptr, len }
    }
}

#[cfg(not(loom))]
impl<T> std::ops::Deref for Slots<T> {
    type Target = [UnsafeCell<MaybeUninit<T>>];

    #[inline(always)]
    fn deref(&self) -> &Self::Target {
        // SAFETY: `ptr` points to an allocation of `len` cells (or is dangling and aligned for
        // zero-sized ones), live until `drop`. A cell of `MaybeUninit` is valid uninitialised,
        // and all access to the contents goes through the cells.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

#[cfg(not(loom))]
impl<T> Drop for Slots<T> {
    fn drop(&mut self) {
        let layout = Self::layout(self.len);
        if layout.size() != 0 {
            // SAFETY: allocated in `new` with this layout. The cells hold `MaybeUninit`, so
            // nothing is dropped here: `Shared`'s drop has dropped the items left in them.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), layout) };
        }
    }
}

#[cfg(loom)]
impl<T> Slots<T> {
    fn new(len: usize) -> Self {
        Self(
            (0..len)
                .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                .collect(),
        )
    }
}

#[cfg(loom)]
impl<T> std::ops::Deref for Slots<T> {
    type Target = [UnsafeCell<MaybeUninit<T>>];

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // Both sides are gone and published/released their final positions; the Arc's drop
        // synchronised with both, so relaxed loads see them.
        let head = self.head.0.load(Ordering::Relaxed) >> SHIFT;
        let tail = self.tail.0.load(Ordering::Relaxed) >> SHIFT;
        if self.fill.is_some() {
            // A keeping ring: the slots of positions [tail, cleared) are empty, and every
            // other one holds an item (the consumer's takes leave `fill()`).
            let empty = self.cleared.load(Ordering::Relaxed).wrapping_sub(tail) & POS_MASK;
            for i in empty..self.slots.len() {
                self.slot(tail.wrapping_add(i)).with_mut(|p| {
                    // SAFETY: as above; nothing else can access the slots now.
                    unsafe { (*p).assume_init_drop() }
                });
            }
            return;
        }
        let mut pos = head;
        while pos != tail {
            self.slot(pos).with_mut(|p| {
                // SAFETY: slots in [head, tail) hold initialised items that were published and
                // never popped; nothing else can access them now.
                unsafe { (*p).assume_init_drop() }
            });
            pos = pos.wrapping_add(1) & POS_MASK;
        }
    }
}

/// The producing side of a ring.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    /// Next position to write.
    tail: usize,
    /// Position last published.
    published: usize,
    /// The consumer's released position, as last seen.
    cached_head: usize,
    consumer_gone: bool,
}

/// The consuming side of a ring.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    /// Next position to read.
    head: usize,
    /// Position last released.
    released: usize,
    /// The producer's published position, as last seen.
    cached_tail: usize,
    producer_gone: bool,
    /// Release automatically after popping this many items.
    release_batch: usize,
    /// An announced wait was confirmed (a barrier, then a re-check that found nothing) and
    /// the flag may still be up: while it is, the next publish wakes the registered waker.
    confirmed: bool,
}

/// The error of [`Producer::push`]: the item is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PushError<T> {
    /// The ring is full.
    Full(T),
    /// The consumer is gone (reported once the producer reloads the consumer's position: when the
    /// ring looks full, or in `poll_space`).
    Disconnected(T),
}

impl<T> PushError<T> {
    /// The item that could not be pushed.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(v) | Self::Disconnected(v) => v,
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("the ring is full"),
            Self::Disconnected(_) => f.write_str("the consumer is gone"),
        }
    }
}

impl<T> std::error::Error for PushError<T> {}

/// The error of [`Consumer::fetch_pop`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PopError {
    /// Nothing is available right now.
    Empty,
    /// Nothing is available and the producer is gone: nothing ever will be.
    Disconnected,
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the ring is empty"),
            Self::Disconnected => f.write_str("the ring is empty and the producer is gone"),
        }
    }
}

impl std::error::Error for PopError {}

/// The other side of the ring is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disconnected;

impl fmt::Display for Disconnected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the other side of the ring is gone")
    }
}

impl std::error::Error for Disconnected {}

impl<T> Producer<T> {
    /// The ring's capacity.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Items pushed but not yet published.
    pub fn pending(&self) -> usize {
        self.tail.wrapping_sub(self.published) & POS_MASK
    }

    /// Free slots, reloading the consumer's position.
    pub fn free_slots(&mut self) -> usize {
        self.refresh_head();
        self.free_cached()
    }

    /// Whether the consumer has been dropped.
    pub fn is_abandoned(&self) -> bool {
        self.shared.head.0.load(Ordering::Acquire) & CLOSED != 0
    }

    #[inline]
    fn free_cached(&self) -> usize {
        self.shared.capacity - (self.tail.wrapping_sub(self.cached_head) & POS_MASK)
    }

    #[inline]
    fn refresh_head(&mut self) {
        let h = self.shared.head.0.load(Ordering::Acquire);
        self.cached_head = h >> SHIFT;
        self.consumer_gone = h & CLOSED != 0;
        if self.shared.fill.is_some() {
            self.clear_ahead();
        }
    }

    /// A keeping ring: drops the items kept in every slot the consumer has released, up to
    /// the last one the producer may now write (`cached_head + capacity`), which `cleared`
    /// then records. Called after every reload of `cached_head`. In one pass: dropped one at a
    /// time as their slots are written, each drop waited for its slot's cache line, which the
    /// consumer read last (that halved the rate of omq's inproc sockets at 128 bytes).
    #[cold]
    #[inline(never)]
    fn clear_ahead(&mut self) {
        let target = self.cached_head.wrapping_add(self.shared.capacity) & POS_MASK;
        let cleared = self.shared.cleared.load(Ordering::Relaxed);
        let n = target.wrapping_sub(cleared) & POS_MASK;
        // `n` is beyond the slot count when `target` is not ahead of `cleared`.
        if n == 0 || n > self.shared.slots.len() {
            return;
        }
        // Recorded first: should an item's drop panic, the rest of the pass leaks rather than
        // being dropped again later.
        self.shared.cleared.store(target, Ordering::Relaxed);
        for i in 0..n {
            self.shared.slot(cleared.wrapping_add(i)).with_mut(|p| {
                // SAFETY: the slot of a position in [cleared, tail + slots) holds an item
                // from the last lap, and one below `cached_head + capacity` (at most
                // `cached_head + slots`) has been released by the consumer: only the
                // producer touches it, and `cleared` now says it is empty.
                unsafe { (*p).assume_init_drop() }
            });
        }
    }

    /// Pushes an item without publishing it: the consumer sees it after [`publish`](Self::publish).
    ///
    /// When the ring looks full, this reloads the consumer's position; a ring that is full of
    /// this producer's own unpublished items is published first, so that retrying `push` on
    /// `Full` always makes progress. `Disconnected` is reported as soon as that reload sees the
    /// consumer gone.
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), PushError<T>> {
        if self.free_cached() == 0 && !self.make_room() {
            return Err(if self.consumer_gone {
                PushError::Disconnected(value)
            } else {
                PushError::Full(value)
            });
        }
        self.write(value);
        Ok(())
    }

    /// `push`'s slow path, when the consumer's position as last loaded leaves no room: reloads
    /// it; false if the consumer is gone or there is still no room (then after publishing).
    #[cold]
    #[inline(never)]
    fn make_room(&mut self) -> bool {
        self.refresh_head();
        if self.consumer_gone {
            return false;
        }
        if self.free_cached() == 0 {
            self.publish();
            return false;
        }
        true
    }

    #[inline]
    fn write(&mut self, value: T) {
        #[cfg(not(loom))]
        debug_assert!(
            self.shared.fill.is_none()
                || (self
                    .shared
                    .cleared
                    .load(Ordering::Relaxed)
                    .wrapping_sub(self.tail)
                    & POS_MASK)
                    .wrapping_sub(1)
                    < self.shared.slots.len(),
            "a keeping ring's slot at tail holds an item"
        );
        self.shared.slot(self.tail).with_mut(|p| {
            // SAFETY: the slot at `tail` is free: the consumer released it (tail - head <
            // capacity) and only the producer writes unpublished slots. On a keeping ring it
            // is also empty: the producer writes only below `cached_head + capacity`, and
            // `cleared` is at least that (it starts at the slot count, and `clear_ahead`
            // brings it there after every reload of `cached_head`).
            unsafe { (*p).write(value) };
        });
        self.tail = self.tail.wrapping_add(1) & POS_MASK;
    }

    /// Makes every pushed item visible to the consumer, waking it if it is waiting: one atomic
    /// swap for the whole batch.
    #[inline]
    pub fn publish(&mut self) {
        if self.tail != self.published {
            self.published = self.tail;
            self.store_tail(self.tail << SHIFT);
        }
    }

    /// Stores the tail word and wakes the consumer if it is going to sleep. With
    /// [`Publish::Swap`], one swap that returns the consumer's `WAITING` flag. With
    /// [`Publish::Store`], a plain release store, then a load of the consumer's flag: the light
    /// barrier between them pairs with the consumer's heavy one, so either the consumer's
    /// re-check sees this store, or this load sees its flag.
    #[inline]
    fn store_tail(&self, word: usize) {
        if self.shared.mode == Mode::Swap {
            let old = self.shared.tail.0.swap(word, Ordering::AcqRel);
            if old & WAITING != 0 {
                Shared::<T>::wake(&self.shared.consumer_waker);
            }
            return;
        }
        self.shared.tail.0.store(word, Ordering::Release);
        barrier::light(self.shared.mode == Mode::StoreAsymmetric);
        let waiting = &self.shared.consumer_waiting.0;
        // A compare-exchange rather than a swap: the same effect, and loom 0.7 lets a plain store
        // fall between a swap's read and its write (tokio-rs/loom#254), which made a model of
        // this protocol report a lost wakeup that cannot happen. A failed compare-exchange
        // writes nothing, and one that succeeds wakes the consumer whatever it overwrote.
        if waiting.load(Ordering::Relaxed)
            && waiting
                .compare_exchange(true, false, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            Shared::<T>::wake(&self.shared.consumer_waker);
        }
    }

    /// Pushes and publishes one item.
    #[inline(always)]
    pub fn push_publish(&mut self, value: T) -> Result<(), PushError<T>> {
        self.push(value)?;
        self.publish();
        Ok(())
    }

    /// Pushes items from `iter` until it ends or the ring is full, without publishing. Returns how
    /// many were pushed; the rest stay in the iterator.
    pub fn push_iter(&mut self, iter: &mut impl Iterator<Item = T>) -> usize {
        // One reload up front: an item taken from the iterator cannot be put back, so the room
        // is known before the first one is taken.
        self.refresh_head();
        let free = self.free_cached();
        let mut n = 0;
        while n < free {
            let Some(v) = iter.next() else { break };
            self.write(v);
            n += 1;
        }
        n
    }

    /// Copies as many items from `items` as fit, without publishing. Returns how many.
    pub fn push_slice(&mut self, items: &[T]) -> usize
    where
        T: Copy,
    {
        let mut free = self.free_cached();
        if free < items.len() {
            self.refresh_head();
            free = self.free_cached();
        }
        let n = items.len().min(free);
        if self.shared.fill.is_some() {
            // Item by item, so that the record of which slots hold items stays exact.
            for &item in &items[..n] {
                self.write(item);
            }
            return n;
        }
        let mut done = 0;
        while done < n {
            let start = self.tail & self.shared.mask;
            let run = (n - done).min(self.shared.slots.len() - start);
            let src = &items[done..done + run];
            let cells = &self.shared.slots[start..start + run];
            #[cfg(not(loom))]
            {
                let dst = sync::run_ptr(cells).cast::<T>();
                // SAFETY: as in `write`, these `run` slots are free and unpublished, so only the
                // producer touches them; `dst` is valid for `run` writes of `T` (`MaybeUninit<T>`
                // has `T`'s layout) and cannot overlap the caller's `src`.
                unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, run) };
            }
            #[cfg(loom)]
            for (cell, &item) in cells.iter().zip(src) {
                // SAFETY: as above, per slot.
                cell.with_mut(|p| unsafe { (*p).write(item) });
            }
            done += run;
            self.tail = self.tail.wrapping_add(run) & POS_MASK;
        }
        n
    }

    /// Publishes what was pushed, then resolves when at least one slot is free (or the consumer is
    /// gone).
    pub fn poll_space(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Disconnected>> {
        self.publish();
        // Always reload (one acquire load of a line the consumer rarely writes), so that a gone
        // consumer is reported even while there is room.
        self.refresh_head();
        if self.consumer_gone {
            return Poll::Ready(Err(Disconnected));
        }
        if self.free_cached() > 0 {
            return Poll::Ready(Ok(()));
        }
        Shared::<T>::register(&self.shared.producer_waker, cx.waker());
        let h = self.shared.head.0.fetch_or(WAITING, Ordering::AcqRel);
        self.cached_head = h >> SHIFT;
        self.consumer_gone = h & CLOSED != 0;
        if self.shared.fill.is_some() {
            self.clear_ahead();
        }
        if self.consumer_gone {
            Poll::Ready(Err(Disconnected))
        } else if self.free_cached() > 0 {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    /// Waits until at least one slot is free, publishing pending items first.
    pub async fn wait_space(&mut self) -> Result<(), Disconnected> {
        poll_fn(|cx| self.poll_space(cx)).await
    }

    /// Pushes and publishes one item, waiting for space. If this future is dropped while waiting,
    /// the item is dropped with it.
    pub async fn send(&mut self, value: T) -> Result<(), PushError<T>> {
        if let Err(Disconnected) = self.wait_space().await {
            return Err(PushError::Disconnected(value));
        }
        self.push_publish(value)
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        // Publish what is pending and mark the ring closed in one store.
        self.store_tail(self.tail << SHIFT | CLOSED);
    }
}

impl<T> Consumer<T> {
    /// The ring's capacity.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// How the ring's producer publishes, as chosen at [`channel_with`]. With
    /// [`Publish::Store`], a wait that [`poll_fetch`](Self::poll_fetch) cannot confirm at once
    /// costs a barrier ([`confirm_waits`]).
    pub fn publish_mode(&self) -> Publish {
        match self.shared.mode {
            Mode::Swap => Publish::Swap,
            Mode::StoreAsymmetric | Mode::StoreFenced => Publish::Store,
        }
    }

    /// Items fetched and not yet popped.
    #[inline]
    pub fn len(&self) -> usize {
        self.cached_tail.wrapping_sub(self.head) & POS_MASK
    }

    /// Whether no fetched items are left to pop.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.cached_tail == self.head
    }

    /// Whether the producer has been dropped. Items it published may still be waiting.
    pub fn is_abandoned(&self) -> bool {
        self.shared.tail.0.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Releases popped slots (when enough have accumulated) and takes in everything the producer
    /// has published. Returns the number of items ready to pop.
    #[inline]
    pub fn fetch(&mut self) -> usize {
        if self.unreleased() >= self.release_batch {
            self.release();
        }
        let t = self.shared.tail.0.load(Ordering::Acquire);
        self.cached_tail = t >> SHIFT;
        self.producer_gone = t & CLOSED != 0;
        self.len()
    }

    #[inline]
    fn unreleased(&self) -> usize {
        self.head.wrapping_sub(self.released) & POS_MASK
    }

    /// Hands every popped slot back to the producer, waking it if it waits for space.
    #[inline]
    pub fn release(&mut self) {
        if self.head != self.released {
            self.released = self.head;
            let old = self
                .shared
                .head
                .0
                .swap(self.head << SHIFT, Ordering::AcqRel);
            if old & WAITING != 0 {
                Shared::<T>::wake(&self.shared.producer_waker);
            }
        }
    }

    /// Pops a fetched item, with no atomic operation (slots are released in batches).
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if self.head == self.cached_tail {
            return None;
        }
        Some(self.take_head())
    }

    /// Takes the item at `head`, which the caller checked is below the fetched tail.
    ///
    /// Separate from `pop` so that `fetch_pop` moves the item straight into its `Result`: going
    /// through `Option` costs two more copies of a large `T`.
    #[inline(always)]
    fn take_head(&mut self) -> T {
        debug_assert!(self.head != self.cached_tail);
        let value = self.shared.slot(self.head).with_mut(|p| {
            // SAFETY: the caller checked that `head` is below the published tail we acquired in
            // `fetch`, so the slot holds an initialised item that only the consumer may take.
            unsafe { (*p).assume_init_read() }
        });
        if let Some(fill) = self.shared.fill {
            self.refill(fill);
        }
        self.head = self.head.wrapping_add(1) & POS_MASK;
        if self.unreleased() >= self.release_batch {
            self.release();
        }
        value
    }

    /// A keeping ring: puts `fill()` in the slot at `head`, whose item was just taken. Out of
    /// line, so that other rings' pops stay as they were.
    #[cold]
    #[inline(never)]
    fn refill(&mut self, fill: fn() -> T) {
        // Between the take and this write the slot is empty and still at `head`: were `fill`
        // to panic, a later pop would take the same item again. Abort instead.
        struct AbortOnUnwind;
        impl Drop for AbortOnUnwind {
            fn drop(&mut self) {
                std::process::abort();
            }
        }
        let guard = AbortOnUnwind;
        let filler = fill();
        std::mem::forget(guard);
        self.shared.slot(self.head).with_mut(|p| {
            // SAFETY: the consumer still owns the slot (not released yet), and its item was
            // just moved out: a keeping ring's slot must hold an item again.
            unsafe { (*p).write(filler) };
        });
    }

    /// Pops a fetched item in place: `f` gets the item in its slot, to read or to take
    /// (leaving another value there, as with [`std::mem::take`]). On a keeping ring
    /// ([`channel_keeping`]) whatever `f` leaves in the slot is dropped by the producer when
    /// it writes the slot next; on another ring, here, after `f`.
    ///
    /// ```
    /// let (mut tx, mut rx) = yring::channel_keeping::<String>(4, yring::Publish::Store);
    /// tx.push_publish("a long string".to_string()).unwrap();
    /// rx.fetch();
    /// assert_eq!(rx.pop_with(|s| s.len()), Some(13)); // read where it lies; the producer drops it
    /// assert_eq!(rx.pop_with(|s| s.len()), None);
    /// ```
    #[inline]
    pub fn pop_with<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        if self.head == self.cached_tail {
            return None;
        }
        Some(self.head_with(f))
    }

    /// [`pop_with`](Self::pop_with) for a caller that knows a fetched item is there, as
    /// [`pop_fetched`](Self::pop_fetched).
    ///
    /// # Panics
    ///
    /// If no fetched item is left to pop.
    #[inline(always)]
    pub fn pop_fetched_with<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
        assert!(self.head != self.cached_tail, "no fetched item to pop");
        self.head_with(f)
    }

    /// Runs `f` on the item at `head`, which the caller checked is below the fetched tail,
    /// then pops it.
    #[inline(always)]
    fn head_with<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
        debug_assert!(self.head != self.cached_tail);
        let keeping = self.shared.fill.is_some();
        let (r, taken) = self.shared.slot(self.head).with_mut(|p| {
            // SAFETY: the caller checked that `head` is below the published tail we acquired in
            // `fetch`, so the slot holds an initialised item that only the consumer may touch
            // until it releases the slot, which is after `f` returns. Should `f` panic, the
            // item is still there, unpopped.
            let r = f(unsafe { (*p).assume_init_mut() });
            // SAFETY: as above; the slot is left logically empty, as a pop leaves it.
            let taken = (!keeping).then(|| unsafe { (*p).assume_init_read() });
            (r, taken)
        });
        self.head = self.head.wrapping_add(1) & POS_MASK;
        if self.unreleased() >= self.release_batch {
            self.release();
        }
        // Dropped once popped: a drop that panics cannot leave the slot to be read again.
        drop(taken);
        r
    }

    /// Pops a fetched item, for a caller that knows one is there (from [`fetch`](Self::fetch)'s
    /// count or [`is_empty`](Self::is_empty)).
    ///
    /// The item comes back as itself, not in an `Option` or `Result` that the caller then has
    /// to look into: for a large `T` whose enum tag shares a byte with its data, that look makes
    /// the compiler copy the item in pieces.
    ///
    /// # Panics
    ///
    /// If no fetched item is left to pop.
    #[inline(always)]
    pub fn pop_fetched(&mut self) -> T {
        assert!(self.head != self.cached_tail, "no fetched item to pop");
        self.take_head()
    }

    /// Whether the producer was gone at the last [`fetch`](Self::fetch) and every item it
    /// published has been popped: nothing more will come. ([`is_abandoned`](Self::is_abandoned)
    /// looks at the producer now, so items published just before it left may still be unfetched.)
    #[inline]
    pub fn is_drained(&self) -> bool {
        self.producer_gone && self.is_empty()
    }

    /// Pops one item, fetching first if nothing fetched is left.
    #[inline]
    pub fn fetch_pop(&mut self) -> Result<T, PopError> {
        if self.head == self.cached_tail && self.fetch() == 0 {
            return Err(if self.producer_gone {
                PopError::Disconnected
            } else {
                PopError::Empty
            });
        }
        Ok(self.take_head())
    }

    /// Fetches, moves every available item into `out`, and releases the slots. Returns how many.
    pub fn pop_into(&mut self, out: &mut Vec<T>) -> usize {
        self.fetch();
        let n = self.len();
        out.reserve(n);
        if self.shared.fill.is_some() {
            // A keeping ring: each slot keeps an item, so each is taken on its own.
            out.extend(std::iter::from_fn(|| self.pop()));
            self.release();
            return n;
        }
        let mut left = n;
        while left > 0 {
            let start = self.head & self.shared.mask;
            let run = left.min(self.shared.slots.len() - start);
            let cells = &self.shared.slots[start..start + run];
            #[cfg(not(loom))]
            {
                let src = sync::run_ptr(cells).cast::<T>();
                let len = out.len();
                // SAFETY: these `run` slots are published and initialised, and only the consumer
                // reads them; moving them out bitwise leaves them logically uninitialised, which
                // advancing `head` past them records. `out` has room for `run` more items
                // (reserved above), and the new length covers exactly the items written.
                unsafe {
                    std::ptr::copy_nonoverlapping(src, out.as_mut_ptr().add(len), run);
                    out.set_len(len + run);
                }
            }
            #[cfg(loom)]
            for cell in cells {
                // SAFETY: as in `pop`: published, initialised, owned by the consumer.
                out.push(cell.with_mut(|p| unsafe { (*p).assume_init_read() }));
            }
            self.head = self.head.wrapping_add(run) & POS_MASK;
            left -= run;
        }
        self.release();
        n
    }

    /// Resolves when items are ready to pop (`Ready(n)`, `n > 0`), or with `Ready(0)` when the
    /// ring is empty and the producer is gone. Releases everything popped before waiting.
    ///
    /// A `Pending` result has cost one heavy barrier (a `membarrier` system call on Linux, see
    /// the crate docs); a task that waits on several rings at once pays it once for all of
    /// them with [`poll_fetch_announce`](Self::poll_fetch_announce) and [`confirm_waits`].
    pub fn poll_fetch(&mut self, cx: &mut Context<'_>) -> Poll<usize> {
        match self.poll_fetch_announce(cx) {
            Poll::Ready(n) => Poll::Ready(n),
            Poll::Pending if self.wait_confirmed() => Poll::Pending,
            Poll::Pending => {
                confirm_waits();
                self.poll_recheck()
            }
        }
    }

    /// The first half of [`poll_fetch`](Self::poll_fetch), for a task that waits on several
    /// rings: `Ready` as `poll_fetch`, or else registers the waker of `cx`, announces that the
    /// consumer is going to sleep, and returns `Pending`. That `Pending` is not yet reliable:
    /// call [`confirm_waits`] once after announcing on every ring, then
    /// [`poll_recheck`](Self::poll_recheck) on each of them, and sleep only if every one is
    /// still `Pending`. A wait that an earlier barrier confirmed and that no publish has ended
    /// since needs no new one: [`wait_confirmed`](Self::wait_confirmed) says so.
    pub fn poll_fetch_announce(&mut self, cx: &mut Context<'_>) -> Poll<usize> {
        if !self.is_empty() {
            return Poll::Ready(self.len());
        }
        self.release();
        let n = self.fetch();
        if n > 0 || self.producer_gone {
            return Poll::Ready(n);
        }
        let changed = Shared::<T>::register(&self.shared.consumer_waker, cx.waker());
        if self.shared.mode == Mode::Swap {
            // Set pending, register, re-check, on one word: the `fetch_or` that announces the
            // sleep also returns the tail as it stands, and the producer's publishing swap
            // either comes before it (and is in the returned value) or after it (and sees
            // WAITING). Confirmed at once: no barrier is needed.
            let t = self.shared.tail.0.fetch_or(WAITING, Ordering::AcqRel);
            self.cached_tail = t >> SHIFT;
            self.producer_gone = t & CLOSED != 0;
            let n = self.len();
            if n > 0 || self.producer_gone {
                return Poll::Ready(n);
            }
            self.confirmed = true;
            return Poll::Pending;
        }
        // Set pending (the flag, after the waker is in place), register, then re-check after
        // the barrier: the producer's publish stores the tail, then loads this flag.
        let waiting = &self.shared.consumer_waiting.0;
        if self.confirmed && !changed && waiting.load(Ordering::Relaxed) {
            // Still confirmed: every publish since the barrier either was seen by its re-check
            // or finds the flag up and wakes this same task. (Should this load be stale, the
            // publish that took the flag down has woken this task already.)
            return Poll::Pending;
        }
        self.confirmed = false;
        waiting.store(true, Ordering::Release);
        Poll::Pending
    }

    /// Whether the wait announced by the last [`poll_fetch_announce`](Self::poll_fetch_announce)
    /// stands confirmed: no [`confirm_waits`] and [`poll_recheck`](Self::poll_recheck) are
    /// needed for this ring.
    pub fn wait_confirmed(&self) -> bool {
        self.confirmed
    }

    /// The re-check after [`poll_fetch_announce`](Self::poll_fetch_announce) and
    /// [`confirm_waits`]: `Ready` as [`poll_fetch`](Self::poll_fetch) when items came in the
    /// meantime (the announcement is withdrawn), else `Pending`, and the producer's next
    /// publish wakes the registered waker.
    pub fn poll_recheck(&mut self) -> Poll<usize> {
        let n = self.fetch();
        if self.shared.mode == Mode::Swap {
            return if n > 0 || self.producer_gone {
                Poll::Ready(n)
            } else {
                Poll::Pending
            };
        }
        if n > 0 || self.producer_gone {
            // Not sleeping after all: spare the producer a needless wake.
            self.confirmed = false;
            self.shared
                .consumer_waiting
                .0
                .store(false, Ordering::Relaxed);
            Poll::Ready(n)
        } else {
            self.confirmed = true;
            Poll::Pending
        }
    }

    /// Waits until items are ready to pop; `Err` when the ring is empty and the producer is gone.
    pub async fn wait(&mut self) -> Result<usize, Disconnected> {
        match poll_fn(|cx| self.poll_fetch(cx)).await {
            0 => Err(Disconnected),
            n => Ok(n),
        }
    }

    /// Pops one item, waiting for one if needed; `Err` when the ring is empty and the producer is
    /// gone. Cancel safe: a dropped future loses nothing.
    pub async fn recv(&mut self) -> Result<T, Disconnected> {
        if let Some(v) = self.pop() {
            return Ok(v);
        }
        self.wait().await?;
        Ok(self.pop().expect("wait returned items"))
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        // Release what was popped (those slots are empty now) and mark the ring closed.
        let old = self
            .shared
            .head
            .0
            .swap(self.head << SHIFT | CLOSED, Ordering::AcqRel);
        if old & WAITING != 0 {
            Shared::<T>::wake(&self.shared.producer_waker);
        }
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.shared.capacity)
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.shared.capacity)
            .field("fetched", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn push_is_private_until_published() {
        let (mut tx, mut rx) = channel(4);
        tx.push(1).unwrap();
        tx.push(2).unwrap();
        assert_eq!(tx.pending(), 2);
        assert_eq!(rx.fetch(), 0);
        assert_eq!(rx.fetch_pop(), Err(PopError::Empty));
        tx.publish();
        assert_eq!(tx.pending(), 0);
        assert_eq!(rx.fetch(), 2);
        assert_eq!(rx.pop(), Some(1));
        assert_eq!(rx.pop(), Some(2));
        assert_eq!(rx.pop(), None);
    }

    #[test]
    fn exact_capacity_not_the_power_of_two() {
        let (mut tx, mut rx) = channel(3);
        assert_eq!(tx.capacity(), 3);
        for i in 0..3 {
            tx.push(i).unwrap();
        }
        assert_eq!(tx.push(9), Err(PushError::Full(9)));
        tx.publish();
        assert_eq!(rx.fetch_pop(), Ok(0));
        assert_eq!(tx.free_slots(), 1);
        tx.push_publish(3).unwrap();
        let mut out = Vec::new();
        assert_eq!(rx.pop_into(&mut out), 3);
        assert_eq!(out, [1, 2, 3]);
    }

    #[test]
    fn slots_are_released_in_batches() {
        // Capacity 8 releases every 2 pops.
        let (mut tx, mut rx) = channel(8);
        for i in 0..8 {
            tx.push(i).unwrap();
        }
        tx.publish();
        assert_eq!(rx.fetch_pop(), Ok(0));
        // Popped but not released: still full from the producer's side.
        assert_eq!(tx.push(9), Err(PushError::Full(9)));
        assert_eq!(rx.fetch_pop(), Ok(1));
        assert_eq!(tx.free_slots(), 2);
        assert_eq!(rx.fetch_pop(), Ok(2));
        rx.release();
        assert_eq!(tx.free_slots(), 3);
    }

    #[test]
    fn wraps_around_many_times() {
        let (mut tx, mut rx) = channel(5);
        let mut next = 0u32;
        let mut expect = 0u32;
        for round in 0..1000 {
            let n = round % 6;
            for _ in 0..n {
                if tx.push(next).is_ok() {
                    next += 1;
                }
            }
            tx.publish();
            while let Ok(v) = rx.fetch_pop() {
                assert_eq!(v, expect);
                expect += 1;
            }
            rx.release();
        }
        assert_eq!(next, expect);
    }

    #[test]
    fn batch_forms() {
        let (mut tx, mut rx) = channel::<u64>(10);
        let items: Vec<u64> = (0..25).collect();
        assert_eq!(tx.push_slice(&items), 10);
        tx.publish();
        let mut out = Vec::new();
        assert_eq!(rx.pop_into(&mut out), 10);
        let mut it = items[10..].iter().copied();
        assert_eq!(tx.push_iter(&mut it), 10);
        assert_eq!(it.next(), Some(20));
        tx.publish();
        assert_eq!(rx.pop_into(&mut out), 10);
        assert_eq!(tx.push_slice(&items[21..]), 4);
        tx.publish();
        assert_eq!(rx.pop_into(&mut out), 4);
        let expected: Vec<u64> = (0..20).chain(21..25).collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn disconnection_is_seen_by_both_sides() {
        let (mut tx, rx) = channel(1);
        assert!(!tx.is_abandoned());
        drop(rx);
        assert!(tx.is_abandoned());
        tx.push(1).unwrap();
        assert_eq!(tx.push(2), Err(PushError::Disconnected(2)));

        let (mut tx, mut rx) = channel(4);
        tx.push(1).unwrap();
        drop(tx); // publishes the pending item
        assert!(rx.is_abandoned());
        assert_eq!(rx.fetch_pop(), Ok(1));
        assert_eq!(rx.fetch_pop(), Err(PopError::Disconnected));
    }

    #[test]
    fn pop_fetched_takes_fetched_items_and_drained_waits_for_the_fetch() {
        let (mut tx, mut rx) = channel(4);
        tx.push_publish(1).unwrap();
        tx.push_publish(2).unwrap();
        assert_eq!(rx.fetch(), 2);
        assert_eq!(rx.pop_fetched(), 1);
        tx.push(3).unwrap();
        drop(tx); // publishes 3
        // The producer is gone, but only a fetch tells: 2 and 3 are still to come.
        assert!(rx.is_abandoned());
        assert!(!rx.is_drained());
        assert_eq!(rx.pop_fetched(), 2);
        assert!(!rx.is_drained());
        assert_eq!(rx.fetch(), 1);
        assert!(!rx.is_drained());
        assert_eq!(rx.pop_fetched(), 3);
        assert!(rx.is_drained());
    }

    #[test]
    #[should_panic(expected = "no fetched item")]
    fn pop_fetched_with_nothing_fetched_panics() {
        let (mut tx, mut rx) = channel(4);
        tx.push_publish(1).unwrap();
        // Published, not fetched.
        rx.pop_fetched();
    }

    #[test]
    fn items_left_inside_are_dropped_once() {
        let item = Arc::new(());
        let (mut tx, mut rx) = channel(8);
        for _ in 0..6 {
            tx.push(item.clone()).unwrap();
        }
        tx.publish();
        tx.push(item.clone()).unwrap(); // unpublished
        assert_eq!(rx.fetch(), 6);
        drop(rx.pop()); // popped, not released
        assert_eq!(Arc::strong_count(&item), 7);
        drop(rx);
        drop(tx);
        assert_eq!(Arc::strong_count(&item), 1);
    }

    #[test]
    fn pending_items_are_published_on_drop() {
        let (mut tx, mut rx) = channel(8);
        tx.push("a").unwrap();
        drop(tx);
        assert_eq!(rx.fetch_pop(), Ok("a"));
    }

    /// A ring whose positions start at `start`, to reach the wrap of the position counters.
    fn channel_at<T>(capacity: usize, start: usize) -> (Producer<T>, Consumer<T>) {
        let (mut tx, mut rx) = channel(capacity);
        tx.shared.tail.0.store(start << SHIFT, Ordering::Relaxed);
        tx.shared.head.0.store(start << SHIFT, Ordering::Relaxed);
        (tx.tail, tx.published, tx.cached_head) = (start, start, start);
        (rx.head, rx.released, rx.cached_tail) = (start, start, start);
        (tx, rx)
    }

    #[test]
    fn positions_wrap_at_the_top_of_their_range() {
        for capacity in [1, 3, 8] {
            let (mut tx, mut rx) = channel_at::<u64>(capacity, POS_MASK - 20);
            let mut next = 0;
            let mut expect = 0;
            while expect < 100 {
                while tx.push(next).is_ok() {
                    next += 1;
                }
                tx.publish();
                let mut out = Vec::new();
                rx.pop_into(&mut out);
                if let Ok(v) = rx.fetch_pop() {
                    out.push(v);
                }
                for v in out {
                    assert_eq!(v, expect);
                    expect += 1;
                }
            }
            // Items left inside across the wrap are dropped exactly once.
            let token = Arc::new(());
            let (mut tx, rx) = channel_at(capacity.max(2), POS_MASK - 1);
            tx.push(token.clone()).unwrap();
            tx.push(token.clone()).unwrap();
            drop((tx, rx));
            assert_eq!(Arc::strong_count(&token), 1);
        }
    }

    #[test]
    fn full_of_own_unpublished_items_publishes_them() {
        let (mut tx, mut rx) = channel(2);
        tx.push(1).unwrap();
        tx.push(2).unwrap();
        assert_eq!(rx.fetch(), 0);
        // Retrying push on Full must make progress: the pending items go out.
        assert_eq!(tx.push(3), Err(PushError::Full(3)));
        assert_eq!(rx.fetch(), 2);
    }

    #[test]
    fn producer_sees_the_consumer_gone_even_with_room() {
        let (mut tx, mut rx) = channel(4);
        tx.push_publish(1).unwrap();
        assert_eq!(rx.fetch_pop(), Ok(1));
        drop(rx);
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(tx.poll_space(&mut cx), Poll::Ready(Err(Disconnected)));
    }

    #[test]
    fn slots_start_on_a_cache_line() {
        #[derive(Debug, PartialEq)]
        struct Line([u64; 8]);
        let (mut tx, mut rx) = channel::<Line>(100);
        assert_eq!(tx.shared.slots.as_ptr() as usize % SLOTS_ALIGN, 0);
        tx.push_publish(Line([7; 8])).unwrap();
        assert_eq!(rx.fetch_pop(), Ok(Line([7; 8])));
        let (tx, _rx) = channel::<u8>(3);
        assert_eq!(tx.shared.slots.as_ptr() as usize % SLOTS_ALIGN, 0);
    }

    #[test]
    fn zero_sized_items() {
        let (mut tx, mut rx) = channel::<()>(4);
        for _ in 0..10 {
            tx.push_publish(()).unwrap();
            assert_eq!(rx.fetch_pop(), Ok(()));
        }
        assert_eq!(rx.fetch_pop(), Err(PopError::Empty));
    }

    /// A drop count, with the thread of the last drop.
    type Marks = Arc<(AtomicUsize, Mutex<Option<std::thread::ThreadId>>)>;

    /// Counts its drops, and records the thread of the last one.
    #[derive(Debug, Default)]
    struct Counted(Option<Marks>);

    impl Counted {
        fn new(to: &Marks) -> Self {
            Self(Some(to.clone()))
        }
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            if let Some(to) = &self.0 {
                to.0.fetch_add(1, Ordering::Relaxed);
                *lock(&to.1) = Some(std::thread::current().id());
            }
        }
    }

    fn drops(to: &Marks) -> usize {
        to.0.load(Ordering::Relaxed)
    }

    #[test]
    fn keeping_ring_leaves_items_read_in_place_to_the_producer() {
        let to = Arc::default();
        let (mut tx, mut rx) = channel_keeping::<Counted>(2, Publish::Store);
        tx.push(Counted::new(&to)).unwrap();
        tx.push_publish(Counted::new(&to)).unwrap();
        assert_eq!(rx.fetch(), 2);
        assert_eq!(rx.pop_with(|c| c.0.is_some()), Some(true));
        let taken = rx.pop().unwrap();
        assert!(taken.0.is_some());
        assert_eq!(drops(&to), 0, "the item read in place stays in its slot");
        drop(taken);
        assert_eq!(drops(&to), 1);
        rx.release();
        tx.push_publish(Counted::new(&to)).unwrap();
        assert_eq!(
            drops(&to),
            2,
            "the producer's write dropped the item left in the slot"
        );
        tx.push_publish(Counted::new(&to)).unwrap();
        assert_eq!(drops(&to), 2);
        assert_eq!(rx.fetch(), 2);
        assert_eq!(rx.pop_with(|c| c.0.is_some()), Some(true));
        assert!(rx.pop_fetched_with(|c| c.0.is_some()));
        assert_eq!(rx.pop_with(|_| ()), None);
        drop(tx);
        assert_eq!(drops(&to), 2);
        drop(rx);
        assert_eq!(
            drops(&to),
            4,
            "the ring's drop took the items left in their slots"
        );
    }

    #[test]
    fn keeping_ring_dropped_before_its_first_lap() {
        let to = Arc::default();
        let (mut tx, mut rx) = channel_keeping::<Counted>(8, Publish::Swap);
        for _ in 0..3 {
            tx.push(Counted::new(&to)).unwrap();
        }
        tx.publish();
        rx.fetch();
        rx.pop_with(|_| ());
        drop(rx.pop());
        assert_eq!(drops(&to), 1);
        drop((tx, rx));
        // The unwritten slots hold nothing to drop (Miri checks that none is read).
        assert_eq!(drops(&to), 3);
    }

    #[test]
    fn keeping_ring_pop_into_takes_every_item() {
        let to = Arc::default();
        let (mut tx, mut rx) = channel_keeping::<Counted>(3, Publish::Store);
        for round in 0..3 {
            for _ in 0..3 {
                tx.push(Counted::new(&to)).unwrap();
            }
            tx.publish();
            let mut out = Vec::new();
            assert_eq!(rx.pop_into(&mut out), 3);
            assert!(out.iter().all(|c| c.0.is_some()));
            drop(out);
            assert_eq!(drops(&to), 3 * (round + 1));
        }
        drop((tx, rx));
        assert_eq!(drops(&to), 9);
    }

    #[test]
    fn keeping_ring_drops_on_the_producers_thread() {
        const N: usize = 1000;
        let (mut tx, mut rx) = channel_keeping::<Counted>(16, Publish::Store);
        let marks: Vec<Arc<_>> = (0..N).map(|_| Arc::default()).collect();
        let producer = {
            let marks = marks.clone();
            std::thread::spawn(move || {
                for m in &marks {
                    let mut item = Counted::new(m);
                    loop {
                        match tx.push_publish(item) {
                            Ok(()) => break,
                            Err(PushError::Full(back)) => {
                                item = back;
                                std::thread::yield_now();
                            }
                            Err(PushError::Disconnected(_)) => unreachable!(),
                        }
                    }
                }
                (tx, std::thread::current().id())
            })
        };
        let mut seen = 0;
        while seen < N {
            if rx.fetch() == 0 {
                std::thread::yield_now();
                continue;
            }
            while rx.pop_with(|c| assert!(c.0.is_some())).is_some() {
                seen += 1;
            }
        }
        let (tx, producer_thread) = producer.join().unwrap();
        // At most a ring's worth (16 slots) is still kept; every item dropped so far was
        // dropped by the producer, and only once.
        let dropped = marks.iter().filter(|m| drops(m) == 1).count();
        assert!(dropped >= N - 16, "{dropped}");
        for m in &marks {
            match drops(m) {
                0 => {}
                1 => assert_eq!(*lock(&m.1), Some(producer_thread)),
                n => panic!("dropped {n} times"),
            }
        }
        drop((tx, rx));
        assert!(marks.iter().all(|m| drops(m) == 1));
    }

    #[test]
    fn keeping_ring_push_slice() {
        let (mut tx, mut rx) = channel_keeping::<u32>(4, Publish::Swap);
        for round in 0..5 {
            assert_eq!(tx.push_slice(&[round, round + 1, round + 2]), 3);
            tx.publish();
            rx.fetch();
            assert_eq!(rx.pop_with(|v| *v), Some(round));
            assert_eq!(rx.pop(), Some(round + 1));
            assert_eq!(rx.pop_with(|v| *v), Some(round + 2));
            rx.release();
        }
    }

    #[test]
    fn pop_with_on_a_moving_ring_drops_the_item_after_f() {
        let to = Arc::default();
        let (mut tx, mut rx) = channel::<Counted>(2);
        tx.push_publish(Counted::new(&to)).unwrap();
        rx.fetch();
        assert_eq!(rx.pop_with(|_| drops(&to)), Some(0));
        assert_eq!(drops(&to), 1);
        drop((tx, rx));
        assert_eq!(drops(&to), 1);
    }

    #[test]
    fn keeping_ring_with_more_slots_than_capacity() {
        // Capacity 3 in 4 slots: the producer's reloads clear up to 3 slots ahead of the
        // consumer's position, so a kept item outlives up to 3 more pushes.
        let to = Arc::default();
        let (mut tx, mut rx) = channel_keeping::<Counted>(3, Publish::Store);
        for pushed in 1..=20 {
            tx.push_publish(Counted::new(&to)).unwrap();
            assert_eq!(rx.fetch(), 1);
            assert_eq!(rx.pop_with(|c| c.0.is_some()), Some(true));
            rx.release();
            let kept = pushed - drops(&to);
            assert!((1..=4).contains(&kept), "{pushed} pushed, {kept} kept");
        }
        drop((tx, rx));
        assert_eq!(drops(&to), 20);
    }

    /// Panics when dropped while armed.
    #[derive(Default)]
    struct Bomb(Option<Marks>, bool);

    impl Drop for Bomb {
        fn drop(&mut self) {
            if let Some(to) = &self.0 {
                to.0.fetch_add(1, Ordering::Relaxed);
            }
            if self.1 {
                panic!("armed");
            }
        }
    }

    #[test]
    fn keeping_ring_item_whose_drop_panics_is_not_dropped_again() {
        let to: Marks = Arc::default();
        let (mut tx, mut rx) = channel_keeping::<Bomb>(1, Publish::Swap);
        tx.push_publish(Bomb(Some(to.clone()), true)).unwrap();
        rx.fetch();
        rx.pop_with(|_| ());
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = tx.push(Bomb(Some(to.clone()), false));
        }));
        assert!(r.is_err(), "the kept item's drop panicked");
        // The kept item, and the one the push carried, dropped with the unwinding.
        assert_eq!(drops(&to), 2);
        // The ring's drop does not touch the kept item's slot again.
        drop((tx, rx));
        assert_eq!(drops(&to), 2);
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Producer<String>>();
        check::<Consumer<String>>();
    }
}

/// The README's examples, compiled and run as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
