//! Polling for a while before a receive sleeps (the `recv_spin` option).
//!
//! A receive that finds nothing queued normally registers its task and returns `Pending`; the
//! thread then sleeps in the runtime's poll until a peer's message wakes it. On machines where
//! waking a sleeping thread is slow (a virtual CPU that has halted takes tens of microseconds to
//! run again), that wake-up is most of a request's round trip. A receive that keeps its task
//! scheduled instead, yielding to the runtime and checking again, never lets the thread sleep:
//! the runtime polls its I/O without blocking, and a message that arrives is seen within a
//! turn of the loop.
//!
//! Only the request-reply socket types (REQ, REP, DEALER, ROUTER) and PAIR spin unless the
//! option says otherwise. A one-way stream (PULL, SUB) is better served by sleeping: while its
//! receiver sleeps, the sender runs ahead and the receiver then takes a batch, where a spinning
//! receiver takes each message the moment it is published and the two threads fight over the
//! pipe's cache lines for every one (inproc PUSH/PULL of 8 B lost 23 % of its rate).
//!
//! Spinning costs a core while it lasts, so the window adapts the way Linux's guest haltpoll
//! governor does, per socket: it starts at zero (an idle or slow socket never spins); a receive
//! that slept but whose message came within the longest window (the option) doubles it (from a
//! quarter of the longest); a receive whose message took longer than that halves it, down to
//! zero. A request-reply exchange thus spins, sparse traffic sleeps, and the cost of a socket
//! whose traffic turns sparse is a few windows.
//!
//! A spin turn looks at the pipes without registering the task: registering ends with a barrier
//! that confirms the pipes' wait announcements (`yring::confirm_waits`, a system call), which
//! only a receive that is about to sleep needs. The task wakes itself, so nothing is missed, and
//! the first poll after the window registers as usual.

use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Context;
use std::time::{Duration, Instant};

use omq_zmtp::SocketType;

/// The longest window of the request-reply socket types (REQ, REP, DEALER, ROUTER) and PAIR
/// when `recv_spin` is not set. Long enough for a round trip with room (15-35 µs over tcp on a
/// 2-vCPU VM), short enough that a server whose requests come more than about 100 µs apart
/// sleeps between them: with 200 µs (Linux's guest haltpoll default), a REP answering a
/// request every 110 µs spun 69 % of a core where it used 10 % sleeping; with 100 µs, 8 %.
pub(crate) const DEFAULT_RECV_SPIN: Duration = Duration::from_micros(100);

/// How long the receives of one socket poll before they sleep, learnt from their waits.
#[derive(Debug)]
pub(crate) struct SpinWindow {
    /// The current window, in nanoseconds.
    window: AtomicU64,
    /// The longest window, in nanoseconds; 0: never spin.
    max: u64,
}

impl SpinWindow {
    /// The window of a socket of type `socket_type` with the `recv_spin` option `max`,
    /// starting at zero.
    pub(crate) fn new(max: Option<Duration>, socket_type: SocketType) -> Self {
        let max = max.unwrap_or(match socket_type {
            SocketType::Req
            | SocketType::Rep
            | SocketType::Dealer
            | SocketType::Router
            | SocketType::Pair => DEFAULT_RECV_SPIN,
            _ => Duration::ZERO,
        });
        Self {
            window: AtomicU64::new(0),
            max: nanos(max),
        }
    }

    /// The current window.
    fn current(&self) -> u64 {
        self.window.load(Ordering::Relaxed)
    }

    /// A receive that waited `waited` in all, and `slept` because its window ran out first.
    fn record(&self, waited: Duration, slept: bool) {
        if !slept || self.max == 0 {
            // A spin that caught its message keeps the window as it is.
            return;
        }
        let grow_start = self.max / 4;
        let window = self.current();
        let next = if nanos(waited) <= self.max {
            // A longer window would have caught it.
            window.saturating_mul(2).clamp(grow_start, self.max)
        } else if window / 2 < grow_start {
            0
        } else {
            window / 2
        };
        // Concurrent receivers may overwrite each other's update: both are estimates.
        self.window.store(next, Ordering::Relaxed);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The wait of one receive: when it began, and whether it has gone to sleep.
#[derive(Debug, Default)]
pub(crate) struct Spin {
    since: Option<Instant>,
    slept: bool,
    /// Spin turns so far.
    turns: u32,
}

/// A spinning receive gives up its thread's time slice once in this many polls.
const YIELD_EVERY: u32 = 4;

impl Spin {
    /// Whether this poll of the receive is a spin turn: within the window, the receive looks
    /// for a message without registering its task (it wakes the task itself if there is none,
    /// so no wake-up can be missed). Registering means confirming the pipes' announcements with
    /// a barrier (a system call, see `yring::confirm_waits`), which only a receive that is
    /// going to sleep needs. Outside the window, or with spinning off, the receive polls as
    /// usual: registered, and asleep if nothing is there.
    #[inline]
    pub(crate) fn turn(&mut self, window: &SpinWindow) -> bool {
        if window.max == 0 || self.slept {
            return false;
        }
        self.within(window)
    }

    /// Whether the receive is still within the window (starting it at the first poll).
    #[inline(never)]
    fn within(&mut self, window: &SpinWindow) -> bool {
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        nanos(now.duration_since(since)) < window.current()
    }

    /// The poll found nothing (`pending`) or completed, as a spin turn or registered
    /// (`spinning`). A spin turn that found nothing wakes its task, so the runtime polls its
    /// I/O without blocking and the receive looks again; a registered one that found nothing
    /// sleeps until a peer wakes it. A completed receive teaches the window how long it waited.
    #[inline]
    pub(crate) fn polled(
        &mut self,
        window: &SpinWindow,
        cx: &Context<'_>,
        pending: bool,
        spinning: bool,
    ) {
        // With spinning off there is nothing to do or learn.
        if window.max != 0 {
            self.account(window, cx, pending, spinning);
        }
    }

    #[inline(never)]
    fn account(&mut self, window: &SpinWindow, cx: &Context<'_>, pending: bool, spinning: bool) {
        match (pending, spinning) {
            (true, true) => {
                // On a machine with more ready threads than cores, a spinning receiver would
                // take the time of the threads it waits for: now and then it offers them its
                // core (a yield on every poll lengthened a tcp round trip by a fifth).
                self.turns = self.turns.wrapping_add(1);
                if self.turns % YIELD_EVERY == 0 {
                    std::thread::yield_now();
                }
                cx.waker().wake_by_ref();
            }
            (true, false) => self.slept = true,
            (false, _) => {
                if let Some(since) = self.since {
                    window.record(since.elapsed(), self.slept);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_micros(200);

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn starts_at_zero_and_grows_on_short_sleeps() {
        let w = SpinWindow::new(Some(MAX), SocketType::Req);
        assert_eq!(w.current(), 0);
        w.record(us(60), true);
        assert_eq!(
            w.current(),
            nanos(us(50)),
            "grows from a quarter of the longest"
        );
        w.record(us(60), true);
        assert_eq!(w.current(), nanos(us(100)));
        w.record(us(150), true);
        w.record(us(150), true);
        assert_eq!(w.current(), nanos(MAX), "never beyond the longest");
    }

    #[test]
    fn long_waits_shrink_it_to_zero() {
        let w = SpinWindow::new(Some(MAX), SocketType::Req);
        w.record(us(10), true);
        w.record(us(10), true);
        w.record(us(10), true);
        assert_eq!(w.current(), nanos(MAX));
        w.record(us(5000), true);
        assert_eq!(w.current(), nanos(us(100)));
        w.record(us(5000), true);
        assert_eq!(w.current(), nanos(us(50)));
        w.record(us(5000), true);
        assert_eq!(w.current(), 0);
        w.record(us(5000), true);
        assert_eq!(w.current(), 0, "sparse traffic never spins");
    }

    #[test]
    fn a_caught_message_keeps_the_window() {
        let w = SpinWindow::new(Some(MAX), SocketType::Req);
        w.record(us(10), true);
        w.record(us(30), false);
        assert_eq!(w.current(), nanos(us(50)));
    }

    #[test]
    fn off_never_spins() {
        for w in [
            SpinWindow::new(Some(Duration::ZERO), SocketType::Req),
            SpinWindow::new(None, SocketType::Pull),
            SpinWindow::new(None, SocketType::Sub),
        ] {
            w.record(us(10), true);
            assert_eq!(w.current(), 0);
            let mut spin = Spin::default();
            let cx = Context::from_waker(std::task::Waker::noop());
            assert!(!spin.turn(&w));
            spin.polled(&w, &cx, true, false);
            assert!(!spin.turn(&w));
            assert!(spin.since.is_none(), "no clock read when off");
        }
    }

    #[test]
    fn request_reply_types_spin_by_default() {
        for t in [
            SocketType::Req,
            SocketType::Rep,
            SocketType::Dealer,
            SocketType::Router,
            SocketType::Pair,
        ] {
            assert_eq!(
                SpinWindow::new(None, t).max,
                nanos(DEFAULT_RECV_SPIN),
                "{t}"
            );
        }
        for t in [
            SocketType::Pull,
            SocketType::Sub,
            SocketType::XSub,
            SocketType::XPub,
        ] {
            assert_eq!(SpinWindow::new(None, t).max, 0, "{t}");
        }
        assert_eq!(
            SpinWindow::new(Some(us(50)), SocketType::Pull).max,
            nanos(us(50))
        );
    }

    /// Counts its wakes.
    #[derive(Default)]
    struct Wakes(AtomicU64);

    impl std::task::Wake for Wakes {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn spins_within_the_window_then_sleeps() {
        let w = SpinWindow::new(Some(Duration::from_secs(3600)), SocketType::Pull);
        w.record(us(10), true);
        let wakes = std::sync::Arc::new(Wakes::default());
        let waker = std::task::Waker::from(wakes.clone());
        let cx = Context::from_waker(&waker);
        let mut spin = Spin::default();
        for _ in 0..10 {
            assert!(spin.turn(&w), "within a window of 15 minutes");
            spin.polled(&w, &cx, true, true);
        }
        assert_eq!(
            wakes.0.load(Ordering::Relaxed),
            10,
            "each spin turn asks to be polled again"
        );
        // A registered poll that finds nothing sleeps: no more spin turns, no self-wake.
        spin.polled(&w, &cx, true, false);
        assert!(!spin.turn(&w));
        assert_eq!(wakes.0.load(Ordering::Relaxed), 10);

        let cx = Context::from_waker(std::task::Waker::noop());

        let w = SpinWindow::new(Some(MAX), SocketType::Req);
        let mut spin = Spin::default();
        assert!(!spin.turn(&w), "a window of zero registers at once");
        spin.polled(&w, &cx, true, false);
        assert!(spin.slept);
        spin.polled(&w, &cx, false, false);
        assert!(w.current() > 0, "and learns from the wait");
    }

    #[test]
    fn a_message_found_at_once_teaches_nothing() {
        let w = SpinWindow::new(Some(MAX), SocketType::Req);
        let cx = Context::from_waker(std::task::Waker::noop());
        let mut spin = Spin::default();
        assert!(!spin.turn(&w));
        spin.polled(&w, &cx, false, false);
        assert_eq!(
            w.current(),
            0,
            "a receive that never waited leaves the window alone"
        );
    }
}
