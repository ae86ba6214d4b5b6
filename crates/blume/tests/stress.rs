//! Multi-threaded stress: every item from every sender arrives exactly once and in its sender's
//! order, through the blocking, async and batch APIs, bounded and unbounded.
#![cfg(not(loom))]

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

const PER_SENDER: u64 = if cfg!(miri) {
    500
} else if cfg!(debug_assertions) {
    50_000
} else {
    200_000
};

fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

/// Checks per-sender order and completeness of `(sender, seq)` items.
struct Tally {
    next: Vec<u64>,
}

impl Tally {
    fn new(senders: usize) -> Self {
        Self {
            next: vec![0; senders],
        }
    }

    fn see(&mut self, (sender, seq): (usize, u64)) {
        assert_eq!(seq, self.next[sender], "sender {sender} out of order");
        self.next[sender] += 1;
    }

    fn done(&self) {
        assert!(
            self.next.iter().all(|&n| n == PER_SENDER),
            "{:?}",
            self.next
        );
    }
}

fn spawn_senders(
    tx: blume::Sender<(usize, u64)>,
    senders: usize,
    async_send: bool,
) -> Vec<thread::JoinHandle<()>> {
    (0..senders)
        .map(|s| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..PER_SENDER {
                    if async_send && i % 2 == 0 {
                        block_on(tx.send((s, i))).unwrap();
                    } else {
                        tx.send_blocking((s, i)).unwrap();
                    }
                }
            })
        })
        .collect()
}

#[test]
fn many_senders_blocking_receiver() {
    for capacity in [None, Some(1), Some(16), Some(1024)] {
        for senders in [1, 4] {
            let (tx, mut rx) = match capacity {
                Some(c) => blume::bounded(c),
                None => blume::unbounded(),
            };
            let handles = spawn_senders(tx, senders, false);
            let mut tally = Tally::new(senders);
            for item in rx.iter() {
                tally.see(item);
            }
            tally.done();
            handles.into_iter().for_each(|h| h.join().unwrap());
        }
    }
}

#[test]
fn many_async_senders_async_batch_receiver() {
    for capacity in [Some(1), Some(64), None] {
        let senders = 4;
        let (tx, mut rx) = match capacity {
            Some(c) => blume::bounded(c),
            None => blume::unbounded(),
        };
        let handles = spawn_senders(tx, senders, true);
        let mut tally = Tally::new(senders);
        block_on(async {
            let mut buf = VecDeque::new();
            while rx.recv_batch(&mut buf).await.is_ok() {
                for item in buf.drain(..) {
                    tally.see(item);
                }
            }
        });
        tally.done();
        handles.into_iter().for_each(|h| h.join().unwrap());
    }
}

#[test]
fn try_send_full_hands_back_and_nothing_is_lost() {
    let (tx, mut rx) = blume::bounded::<(usize, u64)>(8);
    let producer = thread::spawn(move || {
        let mut i = 0;
        let mut full = 0u64;
        while i < PER_SENDER {
            match tx.try_send((0, i)) {
                Ok(()) => i += 1,
                Err(blume::TrySendError::Full(back)) => {
                    assert_eq!(back, (0, i));
                    full += 1;
                    thread::yield_now();
                }
                Err(blume::TrySendError::Disconnected(_)) => panic!("receiver gone"),
            }
        }
        full
    });
    let mut tally = Tally::new(1);
    loop {
        match rx.try_recv() {
            Ok(item) => tally.see(item),
            Err(blume::TryRecvError::Empty) => thread::yield_now(),
            Err(blume::TryRecvError::Disconnected) => break,
        }
    }
    tally.done();
    producer.join().unwrap();
}

#[test]
fn dropped_recv_future_loses_nothing() {
    let (tx, mut rx) = blume::unbounded::<u32>();
    let mut cx = Context::from_waker(Waker::noop());
    {
        let mut fut = pin!(rx.recv());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
    }
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    {
        let mut fut = pin!(rx.recv());
        assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(Ok(1)));
    }
    assert_eq!(rx.try_recv(), Ok(2));
}

#[test]
fn one_wakeup_per_burst() {
    struct Count(std::sync::atomic::AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let count = Arc::new(Count(Default::default()));
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    let (tx, mut rx) = blume::unbounded::<u32>();
    assert!(rx.poll_recv(&mut cx).is_pending());
    for i in 0..100 {
        tx.try_send(i).unwrap();
    }
    assert_eq!(count.0.load(std::sync::atomic::Ordering::Relaxed), 1);
    let mut buf = VecDeque::new();
    assert_eq!(rx.try_recv_batch(&mut buf), Ok(100));
}

#[test]
fn disconnect_wakes_waiters() {
    let (tx, mut rx) = blume::unbounded::<u32>();
    let waiter = thread::spawn(move || rx.recv_blocking());
    thread::yield_now();
    drop(tx);
    assert_eq!(waiter.join().unwrap(), Err(blume::RecvError));

    let (tx, rx) = blume::bounded::<u32>(1);
    tx.try_send(1).unwrap();
    let waiter = thread::spawn(move || tx.send_blocking(2));
    thread::yield_now();
    drop(rx);
    assert_eq!(waiter.join().unwrap(), Err(blume::SendError(2)));
}
