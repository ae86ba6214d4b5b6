//! loom models of the channel: order across a batch swap, close and disconnect, drop with items
//! inside, and the wake protocol for the receiver (empty to non-empty) and for a sender waiting
//! on a full bounded channel.
//!
//! Run with `cargo xtask loom`.
#![cfg(loom)]

use std::collections::VecDeque;

use loom::future::block_on;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

#[test]
fn two_senders_keep_their_order_across_swaps() {
    loom::model(|| {
        let (tx, mut rx) = blume::unbounded::<(u8, u8)>();
        let tx2 = tx.clone();
        let a = thread::spawn(move || {
            tx.try_send((0, 0)).unwrap();
            tx.try_send((0, 1)).unwrap();
        });
        let b = thread::spawn(move || {
            tx2.try_send((1, 0)).unwrap();
        });
        let mut next = [0u8; 2];
        let mut buf = VecDeque::new();
        while let Ok(n) = block_on(rx.recv_batch(&mut buf)) {
            assert!(n > 0);
            for (s, i) in buf.drain(..) {
                assert_eq!(i, next[usize::from(s)]);
                next[usize::from(s)] += 1;
            }
        }
        assert_eq!(next, [2, 1]);
        a.join().unwrap();
        b.join().unwrap();
    });
}

#[test]
fn receiver_is_woken_by_the_first_send() {
    loom::model(|| {
        let (tx, mut rx) = blume::unbounded::<u8>();
        let sender = thread::spawn(move || {
            tx.try_send(1).unwrap();
            tx.try_send(2).unwrap();
            tx
        });
        assert_eq!(block_on(rx.recv()), Ok(1));
        assert_eq!(block_on(rx.recv()), Ok(2));
        drop(sender.join().unwrap());
    });
}

#[test]
fn receiver_is_woken_by_the_last_sender_leaving() {
    loom::model(|| {
        let (tx, mut rx) = blume::unbounded::<u8>();
        let tx2 = tx.clone();
        let a = thread::spawn(move || drop(tx));
        let b = thread::spawn(move || drop(tx2));
        assert_eq!(block_on(rx.recv()), Err(blume::RecvError));
        a.join().unwrap();
        b.join().unwrap();
    });
}

#[test]
fn receiver_is_woken_by_close() {
    loom::model(|| {
        let (tx, mut rx) = blume::unbounded::<u8>();
        let closer = thread::spawn(move || {
            tx.close();
            tx
        });
        assert_eq!(block_on(rx.recv()), Err(blume::RecvError));
        drop(closer.join().unwrap());
    });
}

#[test]
fn full_sender_is_woken_by_the_receiver() {
    loom::model(|| {
        let (tx, mut rx) = blume::bounded::<u8>(1);
        let sender = thread::spawn(move || {
            block_on(async {
                tx.send(1).await.unwrap();
                tx.send(2).await.unwrap();
            });
        });
        assert_eq!(block_on(rx.recv()), Ok(1));
        assert_eq!(block_on(rx.recv()), Ok(2));
        sender.join().unwrap();
    });
}

#[test]
fn full_sender_is_woken_by_receiver_drop() {
    loom::model(|| {
        let (tx, rx) = blume::bounded::<u8>(1);
        tx.try_send(1).unwrap();
        let receiver = thread::spawn(move || drop(rx));
        assert_eq!(block_on(tx.send(2)), Err(blume::SendError(2)));
        receiver.join().unwrap();
    });
}

struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn items_inside_are_dropped_once() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, mut rx) = blume::unbounded::<Counted>();
        let d = drops.clone();
        let sender = thread::spawn(move || {
            for _ in 0..2 {
                let _ = tx.try_send(Counted(d.clone()));
            }
        });
        let _ = rx.try_recv();
        drop(rx);
        sender.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}
