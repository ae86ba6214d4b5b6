//! loom models of the ring: publish/fetch visibility and order, wrap-around at capacity 1, close,
//! drop with items inside, a keeping ring's in-place pops, and the async wake protocol on both
//! sides.
//!
//! Run with `cargo xtask loom` (or `RUSTFLAGS="--cfg loom" cargo test -p yring --test loom
//! --release`).
#![cfg(loom)]

use loom::future::block_on;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use yring::{PopError, Publish, PushError};

/// Runs a model once per publish mode.
fn model<F: Fn(Publish) + Sync + Send + Clone + 'static>(f: F) {
    for publish in [Publish::Swap, Publish::Store] {
        let f = f.clone();
        loom::model(move || f(publish));
    }
}

#[test]
fn published_items_arrive_in_order() {
    model(move |publish| {
        let (mut tx, mut rx) = yring::channel_with::<u32>(4, publish);
        let producer = thread::spawn(move || {
            tx.push(1).unwrap();
            tx.push(2).unwrap();
            tx.publish();
            tx.push_publish(3).unwrap();
        });
        let mut got = Vec::new();
        rx.fetch();
        while let Some(v) = rx.pop() {
            got.push(v);
        }
        // Whatever this side saw is a published prefix: nothing, both of the batch, or all.
        assert!(matches!(got.len(), 0 | 2 | 3), "{got:?}");
        producer.join().unwrap();
        loop {
            match rx.fetch_pop() {
                Ok(v) => got.push(v),
                Err(PopError::Disconnected) => break,
                Err(PopError::Empty) => unreachable!("the producer is gone"),
            }
        }
        assert_eq!(got, [1, 2, 3]);
    });
}

#[test]
fn capacity_one_wraps_without_loss() {
    model(move |publish| {
        let (mut tx, mut rx) = yring::channel_with::<u32>(1, publish);
        let producer = thread::spawn(move || {
            for i in 0..3 {
                let mut v = i;
                loop {
                    match tx.push_publish(v) {
                        Ok(()) => break,
                        Err(PushError::Full(back)) => {
                            v = back;
                            thread::yield_now();
                        }
                        Err(PushError::Disconnected(_)) => panic!("consumer gone"),
                    }
                }
            }
        });
        let mut expect = 0;
        while expect < 3 {
            match rx.fetch_pop() {
                Ok(v) => {
                    assert_eq!(v, expect);
                    expect += 1;
                }
                Err(_) => thread::yield_now(),
            }
        }
        producer.join().unwrap();
    });
}

#[test]
fn close_is_seen_after_the_last_item() {
    model(move |publish| {
        let (mut tx, mut rx) = yring::channel_with::<u32>(2, publish);
        let producer = thread::spawn(move || {
            tx.push(7).unwrap(); // published by the drop
        });
        let mut got = None;
        loop {
            match rx.fetch_pop() {
                Ok(v) => got = Some(v),
                Err(PopError::Disconnected) => break,
                Err(PopError::Empty) => thread::yield_now(),
            }
        }
        assert_eq!(got, Some(7));
        producer.join().unwrap();
    });
}

struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn items_inside_are_dropped_once_when_both_sides_go() {
    model(move |publish| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut tx, mut rx) = yring::channel_with::<Counted>(4, publish);
        for _ in 0..3 {
            tx.push(Counted(drops.clone())).unwrap();
        }
        tx.publish();
        tx.push(Counted(drops.clone())).unwrap(); // pending, published by the drop
        let consumer = thread::spawn(move || {
            rx.fetch();
            drop(rx.pop());
        });
        drop(tx);
        consumer.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 4);
    });
}

#[test]
fn keeping_ring_items_read_in_place_are_dropped_once_by_the_producer() {
    model(move |publish| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut tx, mut rx) = yring::channel_keeping::<Option<Counted>>(1, publish);
        let producer = {
            let drops = drops.clone();
            thread::spawn(move || {
                for _ in 0..3 {
                    let mut item = Some(Counted(drops.clone()));
                    loop {
                        match tx.push_publish(item) {
                            Ok(()) => break,
                            Err(PushError::Full(back)) => {
                                item = back;
                                thread::yield_now();
                            }
                            Err(PushError::Disconnected(_)) => unreachable!("the consumer stays"),
                        }
                    }
                }
                // Each write after the first dropped the item the consumer left in the slot.
                drops.load(Ordering::Relaxed)
            })
        };
        let mut seen = 0;
        while seen < 3 {
            if rx.is_empty() && rx.fetch() == 0 {
                thread::yield_now();
                continue;
            }
            // Read where it lies: the producer's next write to the slot drops it.
            rx.pop_fetched_with(|item| assert!(item.is_some()));
            seen += 1;
        }
        assert_eq!(producer.join().unwrap(), 2);
        drop(rx);
        assert_eq!(drops.load(Ordering::Relaxed), 3);
    });
}

#[test]
fn waiting_consumer_is_woken_by_publish() {
    model(move |publish| {
        let (mut tx, mut rx) = yring::channel_with::<u32>(2, publish);
        let producer = thread::spawn(move || {
            tx.push_publish(1).unwrap();
            // Keep the producer alive until the consumer has the item, so that only the publish
            // can wake it.
            tx
        });
        assert_eq!(block_on(rx.recv()), Ok(1));
        drop(producer.join().unwrap());
    });
}

#[test]
fn waiting_consumer_is_woken_by_close() {
    model(move |publish| {
        let (tx, mut rx) = yring::channel_with::<u32>(2, publish);
        let producer = thread::spawn(move || drop(tx));
        assert_eq!(block_on(rx.recv()), Err(yring::Disconnected));
        producer.join().unwrap();
    });
}

#[test]
fn waiting_producer_is_woken_by_release() {
    model(move |publish| {
        let (mut tx, mut rx) = yring::channel_with::<u32>(1, publish);
        let producer = thread::spawn(move || {
            block_on(async {
                tx.send(1).await.unwrap();
                tx.send(2).await.unwrap();
            });
        });
        assert_eq!(block_on(rx.recv()), Ok(1));
        assert_eq!(block_on(rx.recv()), Ok(2));
        producer.join().unwrap();
    });
}

#[test]
fn waiting_producer_is_woken_by_consumer_drop() {
    model(move |publish| {
        let (mut tx, rx) = yring::channel_with::<u32>(1, publish);
        tx.push_publish(1).unwrap();
        let consumer = thread::spawn(move || drop(rx));
        assert_eq!(block_on(tx.send(2)), Err(PushError::Disconnected(2)));
        consumer.join().unwrap();
    });
}

/// A longer exchange: both sides async, the producer waiting on slots several times. Its state
/// space is too large for CI (it did not finish in 4 minutes with 3 preemptions); run it with
/// `cargo xtask loom -- --ignored`. With the former plain-store publish and `membarrier` design
/// it reported a lost wakeup within a minute, which is why that design was reverted.
#[test]
#[ignore = "minutes of model checking; run explicitly"]
fn longer_async_exchange_through_a_small_ring() {
    const N: u32 = 5;
    const CAP: usize = 2;
    model(move |publish| {
        let (mut tx, mut rx) = yring::channel_with::<u32>(CAP, publish);
        let producer = thread::spawn(move || {
            block_on(async {
                for i in 0..N {
                    tx.send(i).await.unwrap();
                }
            });
        });
        for i in 0..N {
            assert_eq!(block_on(rx.recv()), Ok(i));
        }
        producer.join().unwrap();
    });
}
