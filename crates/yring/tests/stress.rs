//! Multi-threaded stress: every item arrives once, in order, through every API form. Counts are
//! scaled down under Miri.
#![cfg(not(loom))]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;

use yring::{PopError, PushError};

const N: u64 = if cfg!(miri) {
    2_000
} else if cfg!(debug_assertions) {
    200_000
} else {
    1_000_000
};

/// A minimal executor: polls on this thread, parks until woken.
const MODES: [yring::Publish; 2] = [yring::Publish::Swap, yring::Publish::Store];

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

#[test]
fn spinning_batches_keep_order() {
    for publish in MODES {
        for capacity in [1, 3, 64, 1000] {
            let (mut tx, mut rx) = yring::channel_with::<u64>(capacity, publish);
            let producer = thread::spawn(move || {
                let mut next = 0;
                let mut batch = 1;
                while next < N {
                    for _ in 0..batch {
                        if next == N {
                            break;
                        }
                        match tx.push(next) {
                            Ok(()) => next += 1,
                            Err(PushError::Full(_)) => break,
                            Err(PushError::Disconnected(_)) => panic!("consumer gone"),
                        }
                    }
                    tx.publish();
                    batch = batch % 17 + 1;
                    thread::yield_now();
                }
            });
            let mut expect = 0;
            loop {
                match rx.fetch_pop() {
                    Ok(v) => {
                        assert_eq!(v, expect);
                        expect += 1;
                    }
                    Err(PopError::Empty) => thread::yield_now(),
                    Err(PopError::Disconnected) => break,
                }
            }
            producer.join().unwrap();
            assert_eq!(expect, N, "capacity {capacity}");
        }
    }
}

#[test]
fn slice_and_vec_batches_keep_order() {
    for publish in MODES {
        let (mut tx, mut rx) = yring::channel_with::<u64>(256, publish);
        let producer = thread::spawn(move || {
            let items: Vec<u64> = (0..N).collect();
            let mut at = 0;
            while at < items.len() {
                let end = (at + 100).min(items.len());
                at += tx.push_slice(&items[at..end]);
                tx.publish();
                if tx.pending() == 0 && at < items.len() {
                    thread::yield_now();
                }
            }
        });
        let mut out = Vec::new();
        let mut expect = 0;
        loop {
            out.clear();
            if rx.pop_into(&mut out) == 0 {
                if rx.is_abandoned() && rx.fetch() == 0 {
                    break;
                }
                thread::yield_now();
            }
            for &v in &out {
                assert_eq!(v, expect);
                expect += 1;
            }
        }
        producer.join().unwrap();
        assert_eq!(expect, N);
    }
}

#[test]
fn async_both_sides_keep_order() {
    for publish in MODES {
        for capacity in [1, 7, 128] {
            let (mut tx, mut rx) = yring::channel_with::<u64>(capacity, publish);
            let producer = thread::spawn(move || {
                block_on(async {
                    for i in 0..N {
                        if i % 3 == 0 {
                            tx.send(i).await.unwrap();
                        } else {
                            tx.wait_space().await.unwrap();
                            tx.push(i).unwrap();
                        }
                    }
                })
            });
            let got = block_on(async {
                let mut expect = 0;
                while let Ok(v) = rx.recv().await {
                    assert_eq!(v, expect);
                    expect += 1;
                }
                expect
            });
            producer.join().unwrap();
            assert_eq!(got, N, "capacity {capacity}");
        }
    }
}

#[test]
fn dropped_recv_future_loses_nothing() {
    for publish in MODES {
        let (mut tx, mut rx) = yring::channel_with::<u32>(4, publish);
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        {
            let mut fut = pin!(rx.recv());
            assert!(fut.as_mut().poll(&mut cx).is_pending());
        }
        tx.push_publish(1).unwrap();
        tx.push_publish(2).unwrap();
        {
            // Fetches both, returns the first; the second stays fetched in the consumer.
            let mut fut = pin!(rx.recv());
            assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(Ok(1)));
        }
        assert_eq!(rx.len(), 1);
        assert_eq!(block_on(rx.recv()), Ok(2));
    }
}

#[test]
fn disconnect_wakes_a_waiting_side() {
    for publish in MODES {
        let (tx, mut rx) = yring::channel_with::<u32>(4, publish);
        let waiter = thread::spawn(move || block_on(rx.recv()));
        thread::yield_now();
        drop(tx);
        assert_eq!(waiter.join().unwrap(), Err(yring::Disconnected));

        let (mut tx, rx) = yring::channel_with::<u32>(1, publish);
        tx.push_publish(1).unwrap();
        let waiter = thread::spawn(move || block_on(tx.send(2)));
        thread::yield_now();
        drop(rx);
        assert_eq!(waiter.join().unwrap(), Err(PushError::Disconnected(2)));
    }
}

#[test]
fn items_are_dropped_exactly_once_across_threads() {
    for publish in MODES {
        let token = Arc::new(());
        let (mut tx, mut rx) = yring::channel_with(64, publish);
        let t = token.clone();
        let producer = thread::spawn(move || {
            for _ in 0..50 {
                tx.push(t.clone()).unwrap();
            }
            tx.publish();
        });
        producer.join().unwrap();
        for _ in 0..20 {
            drop(rx.fetch_pop().unwrap());
        }
        drop(rx);
        assert_eq!(Arc::strong_count(&token), 1);
    }
}
