//! std's `sync::mpsc` behaviour tests, ported to blume (as crossbeam-channel did in its
//! `tests/mpsc.rs`). Blocking calls are `send_blocking` / `recv_blocking`; counts are scaled down
//! under Miri.
#![cfg(not(loom))]

use std::sync::mpsc as std_mpsc;
use std::thread;

use blume::{RecvError, TryRecvError, TrySendError, bounded, unbounded};

const fn stress_factor() -> usize {
    if cfg!(miri) { 1 } else { 10 }
}

#[test]
fn smoke() {
    let (tx, mut rx) = unbounded::<i32>();
    tx.send_blocking(1).unwrap();
    assert_eq!(rx.recv_blocking().unwrap(), 1);
}

#[test]
fn drop_full() {
    let (tx, _rx) = unbounded::<Box<isize>>();
    tx.send_blocking(Box::new(1)).unwrap();
}

#[test]
fn drop_full_shared() {
    let (tx, _rx) = unbounded::<Box<isize>>();
    drop(tx.clone());
    drop(tx.clone());
    tx.send_blocking(Box::new(1)).unwrap();
}

#[test]
fn smoke_shared() {
    let (tx, mut rx) = unbounded::<i32>();
    tx.send_blocking(1).unwrap();
    assert_eq!(rx.recv_blocking().unwrap(), 1);
    let tx = tx.clone();
    tx.send_blocking(1).unwrap();
    assert_eq!(rx.recv_blocking().unwrap(), 1);
}

#[test]
fn smoke_threads() {
    let (tx, mut rx) = unbounded::<i32>();
    let t = thread::spawn(move || {
        tx.send_blocking(1).unwrap();
    });
    assert_eq!(rx.recv_blocking().unwrap(), 1);
    t.join().unwrap();
}

#[test]
fn smoke_port_gone() {
    let (tx, rx) = unbounded::<i32>();
    drop(rx);
    assert!(tx.send_blocking(1).is_err());
}

#[test]
fn smoke_shared_port_gone() {
    let (tx, rx) = unbounded::<i32>();
    drop(rx);
    assert!(tx.send_blocking(1).is_err())
}

#[test]
fn smoke_shared_port_gone2() {
    let (tx, rx) = unbounded::<i32>();
    drop(rx);
    let tx2 = tx.clone();
    drop(tx);
    assert!(tx2.send_blocking(1).is_err());
}

#[test]
fn port_gone_concurrent() {
    let (tx, mut rx) = unbounded::<i32>();
    let t = thread::spawn(move || {
        rx.recv_blocking().unwrap();
    });
    while tx.send_blocking(1).is_ok() {}
    t.join().unwrap();
}

#[test]
fn port_gone_concurrent_shared() {
    let (tx, mut rx) = unbounded::<i32>();
    let tx2 = tx.clone();
    let t = thread::spawn(move || {
        rx.recv_blocking().unwrap();
    });
    while tx.send_blocking(1).is_ok() && tx2.send_blocking(1).is_ok() {}
    t.join().unwrap();
}

#[test]
fn smoke_chan_gone() {
    let (tx, mut rx) = unbounded::<i32>();
    drop(tx);
    assert!(rx.recv_blocking().is_err());
}

#[test]
fn smoke_chan_gone_shared() {
    let (tx, mut rx) = unbounded::<()>();
    let tx2 = tx.clone();
    drop(tx);
    drop(tx2);
    assert!(rx.recv_blocking().is_err());
}

#[test]
fn chan_gone_concurrent() {
    let (tx, mut rx) = unbounded::<i32>();
    let t = thread::spawn(move || {
        tx.send_blocking(1).unwrap();
        tx.send_blocking(1).unwrap();
    });
    while rx.recv_blocking().is_ok() {}
    t.join().unwrap();
}

#[test]
fn stress() {
    let count = 1000 * stress_factor();
    let (tx, mut rx) = unbounded::<i32>();
    let t = thread::spawn(move || {
        for _ in 0..count {
            tx.send_blocking(1).unwrap();
        }
    });
    for _ in 0..count {
        assert_eq!(rx.recv_blocking().unwrap(), 1);
    }
    t.join().ok().unwrap();
}

#[test]
fn stress_shared() {
    let amt: u32 = 1000 * stress_factor() as u32;
    let nthreads: u32 = 8;
    let (tx, mut rx) = unbounded::<i32>();

    let t = thread::spawn(move || {
        for _ in 0..amt * nthreads {
            assert_eq!(rx.recv_blocking().unwrap(), 1);
        }
        // Nothing more was sent; the senders may or may not have dropped their handles yet.
        assert!(rx.try_recv().is_err());
    });

    let mut ts = Vec::with_capacity(nthreads as usize);
    for _ in 0..nthreads {
        let tx = tx.clone();
        let t = thread::spawn(move || {
            for _ in 0..amt {
                tx.send_blocking(1).unwrap();
            }
        });
        ts.push(t);
    }
    drop(tx);
    t.join().ok().unwrap();
    for t in ts {
        t.join().unwrap();
    }
}

#[test]
fn send_from_outside_runtime() {
    let (tx1, mut rx1) = unbounded::<()>();
    let (tx2, mut rx2) = unbounded::<i32>();
    let t1 = thread::spawn(move || {
        tx1.send_blocking(()).unwrap();
        for _ in 0..40 {
            assert_eq!(rx2.recv_blocking().unwrap(), 1);
        }
    });
    rx1.recv_blocking().unwrap();
    let t2 = thread::spawn(move || {
        for _ in 0..40 {
            tx2.send_blocking(1).unwrap();
        }
    });
    t1.join().ok().unwrap();
    t2.join().ok().unwrap();
}

#[test]
fn recv_from_outside_runtime() {
    let (tx, mut rx) = unbounded::<i32>();
    let t = thread::spawn(move || {
        for _ in 0..40 {
            assert_eq!(rx.recv_blocking().unwrap(), 1);
        }
    });
    for _ in 0..40 {
        tx.send_blocking(1).unwrap();
    }
    t.join().ok().unwrap();
}

#[test]
fn no_runtime() {
    let (tx1, mut rx1) = unbounded::<i32>();
    let (tx2, mut rx2) = unbounded::<i32>();
    let t1 = thread::spawn(move || {
        assert_eq!(rx1.recv_blocking().unwrap(), 1);
        tx2.send_blocking(2).unwrap();
    });
    let t2 = thread::spawn(move || {
        tx1.send_blocking(1).unwrap();
        assert_eq!(rx2.recv_blocking().unwrap(), 2);
    });
    t1.join().ok().unwrap();
    t2.join().ok().unwrap();
}

#[test]
fn oneshot_single_thread_close_port_first() {
    // Simple test of closing without sending
    let (_tx, rx) = unbounded::<i32>();
    drop(rx);
}

#[test]
fn oneshot_single_thread_close_chan_first() {
    // Simple test of closing without sending
    let (tx, _rx) = unbounded::<i32>();
    drop(tx);
}

#[test]
fn oneshot_single_thread_send_port_close() {
    // Testing that the sender cleans up the payload if receiver is closed
    let (tx, rx) = unbounded::<Box<i32>>();
    drop(rx);
    assert!(tx.send_blocking(Box::new(0)).is_err());
}

#[test]
fn oneshot_single_thread_recv_chan_close() {
    let (tx, mut rx) = unbounded::<i32>();
    drop(tx);
    assert_eq!(rx.recv_blocking(), Err(RecvError));
}

#[test]
fn oneshot_single_thread_send_then_recv() {
    let (tx, mut rx) = unbounded::<Box<i32>>();
    tx.send_blocking(Box::new(10)).unwrap();
    assert!(*rx.recv_blocking().unwrap() == 10);
}

#[test]
fn oneshot_single_thread_try_send_open() {
    let (tx, mut rx) = unbounded::<i32>();
    assert!(tx.try_send(10).is_ok());
    assert!(rx.recv_blocking().unwrap() == 10);
}

#[test]
fn oneshot_single_thread_try_send_closed() {
    let (tx, rx) = unbounded::<i32>();
    drop(rx);
    assert!(matches!(
        tx.try_send(10),
        Err(TrySendError::Disconnected(10))
    ));
}

#[test]
fn oneshot_single_thread_try_recv_open() {
    let (tx, mut rx) = unbounded::<i32>();
    tx.send_blocking(10).unwrap();
    assert!(rx.recv_blocking() == Ok(10));
}

#[test]
fn oneshot_single_thread_try_recv_closed() {
    let (tx, mut rx) = unbounded::<i32>();
    drop(tx);
    assert!(rx.recv_blocking().is_err());
}

#[test]
fn oneshot_single_thread_peek_data() {
    let (tx, mut rx) = unbounded::<i32>();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    tx.send_blocking(10).unwrap();
    assert_eq!(rx.try_recv(), Ok(10));
}

#[test]
fn oneshot_single_thread_peek_close() {
    let (tx, mut rx) = unbounded::<i32>();
    drop(tx);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn oneshot_single_thread_peek_open() {
    let (_tx, mut rx) = unbounded::<i32>();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn oneshot_multi_task_recv_then_send() {
    let (tx, mut rx) = unbounded::<Box<i32>>();
    let t = thread::spawn(move || {
        assert!(*rx.recv_blocking().unwrap() == 10);
    });
    tx.send_blocking(Box::new(10)).unwrap();
    t.join().unwrap();
}

#[test]
fn oneshot_multi_task_recv_then_close() {
    let (tx, mut rx) = unbounded::<Box<i32>>();
    let t = thread::spawn(move || {
        drop(tx);
    });
    let res = thread::spawn(move || {
        assert!(*rx.recv_blocking().unwrap() == 10);
    })
    .join();
    assert!(res.is_err());
    t.join().unwrap();
}

#[test]
fn oneshot_multi_thread_close_stress() {
    for _ in 0..stress_factor() {
        let (tx, rx) = unbounded::<i32>();
        let t = thread::spawn(move || {
            drop(rx);
        });
        drop(tx);
        t.join().unwrap();
    }
}

#[test]
fn oneshot_multi_thread_send_close_stress() {
    for _ in 0..stress_factor() {
        let (tx, rx) = unbounded::<i32>();
        let t = thread::spawn(move || {
            drop(rx);
        });
        let _ = thread::spawn(move || {
            let _ = tx.send_blocking(1);
        })
        .join();
        t.join().unwrap();
    }
}

#[test]
fn oneshot_multi_thread_recv_close_stress() {
    for _ in 0..stress_factor() {
        let (tx, mut rx) = unbounded::<i32>();
        let t = thread::spawn(move || {
            let res = thread::spawn(move || {
                rx.recv_blocking().unwrap();
            })
            .join();
            assert!(res.is_err());
        });
        let _t = thread::spawn(move || {
            thread::spawn(move || {
                drop(tx);
            });
        });
        t.join().unwrap();
    }
}

#[test]
fn oneshot_multi_thread_send_recv_stress() {
    for _ in 0..stress_factor() {
        let (tx, mut rx) = unbounded::<Box<isize>>();
        let t = thread::spawn(move || {
            tx.send_blocking(Box::new(10)).unwrap();
        });
        assert!(*rx.recv_blocking().unwrap() == 10);
        t.join().unwrap();
    }
}

#[test]
fn stream_send_recv_stress() {
    for _ in 0..stress_factor() {
        let (tx, rx) = unbounded();

        send(tx, 0);
        recv(rx, 0);

        fn send(tx: blume::Sender<Box<i32>>, i: i32) {
            if i == 10 {
                return;
            }
            thread::spawn(move || {
                tx.send_blocking(Box::new(i)).unwrap();
                send(tx, i + 1);
            });
        }

        fn recv(mut rx: blume::Receiver<Box<i32>>, i: i32) {
            if i == 10 {
                return;
            }
            thread::spawn(move || {
                assert!(*rx.recv_blocking().unwrap() == i);
                recv(rx, i + 1);
            });
        }
    }
}

#[test]
fn recv_a_lot() {
    let count = if cfg!(miri) { 1000 } else { 10000 };
    // Regression test that we don't run out of stack in scheduler context
    let (tx, mut rx) = unbounded();
    for _ in 0..count {
        tx.send_blocking(()).unwrap();
    }
    for _ in 0..count {
        rx.recv_blocking().unwrap();
    }
}

#[test]
fn shared_chan_stress() {
    let (tx, mut rx) = unbounded();
    let total = stress_factor() + 100;
    let mut ts = Vec::with_capacity(total);
    for _ in 0..total {
        let tx = tx.clone();
        let t = thread::spawn(move || {
            tx.send_blocking(()).unwrap();
        });
        ts.push(t);
    }
    for _ in 0..total {
        rx.recv_blocking().unwrap();
    }
    for t in ts {
        t.join().unwrap();
    }
}

#[test]
fn test_nested_recv_iter() {
    let (tx, mut rx) = unbounded::<i32>();
    let (total_tx, mut total_rx) = unbounded::<i32>();

    let t = thread::spawn(move || {
        let mut acc = 0;
        for x in rx.iter() {
            acc += x;
        }
        total_tx.send_blocking(acc).unwrap();
    });

    tx.send_blocking(3).unwrap();
    tx.send_blocking(1).unwrap();
    tx.send_blocking(2).unwrap();
    drop(tx);
    assert_eq!(total_rx.recv_blocking().unwrap(), 6);
    t.join().unwrap();
}

#[test]
fn test_recv_iter_break() {
    let (tx, mut rx) = unbounded::<i32>();
    let (count_tx, mut count_rx) = unbounded();

    let t = thread::spawn(move || {
        let mut count = 0;
        for x in rx.iter() {
            if count >= 3 {
                break;
            } else {
                count += x;
            }
        }
        count_tx.send_blocking(count).unwrap();
    });

    tx.send_blocking(2).unwrap();
    tx.send_blocking(2).unwrap();
    tx.send_blocking(2).unwrap();
    let _ = tx.send_blocking(2);
    drop(tx);
    assert_eq!(count_rx.recv_blocking().unwrap(), 4);
    t.join().unwrap();
}

#[test]
fn test_recv_try_iter() {
    let (request_tx, mut request_rx) = unbounded();
    let (response_tx, mut response_rx) = unbounded();

    // Request `x`s until we have `6`.
    let t = thread::spawn(move || {
        let mut count = 0;
        loop {
            for x in response_rx.try_iter() {
                count += x;
                if count == 6 {
                    return count;
                }
            }
            request_tx.send_blocking(()).unwrap();
        }
    });

    for _ in request_rx.iter() {
        if response_tx.send_blocking(2).is_err() {
            break;
        }
    }

    assert_eq!(t.join().unwrap(), 6);
}

#[test]
fn try_recv_states() {
    let (tx1, mut rx1) = unbounded::<i32>();
    let (tx2, mut rx2) = unbounded::<()>();
    let (tx3, mut rx3) = unbounded::<()>();
    let t = thread::spawn(move || {
        rx2.recv_blocking().unwrap();
        tx1.send_blocking(1).unwrap();
        tx3.send_blocking(()).unwrap();
        rx2.recv_blocking().unwrap();
        drop(tx1);
        tx3.send_blocking(()).unwrap();
    });

    assert_eq!(rx1.try_recv(), Err(TryRecvError::Empty));
    tx2.send_blocking(()).unwrap();
    rx3.recv_blocking().unwrap();
    assert_eq!(rx1.try_recv(), Ok(1));
    assert_eq!(rx1.try_recv(), Err(TryRecvError::Empty));
    tx2.send_blocking(()).unwrap();
    rx3.recv_blocking().unwrap();
    assert_eq!(rx1.try_recv(), Err(TryRecvError::Disconnected));
    t.join().unwrap();
}

// This bug used to end up in a livelock inside of the Receiver destructor because the internal
// state of the Shared packet was corrupted
#[test]
fn destroy_upgraded_shared_port_when_sender_still_active() {
    let (tx, mut rx) = unbounded();
    let (tx2, mut rx2) = unbounded();
    let t = thread::spawn(move || {
        rx.recv_blocking().unwrap(); // wait on a oneshot
        drop(rx); // destroy a shared
        tx2.send_blocking(()).unwrap();
    });
    // make sure the other thread has gone to sleep
    for _ in 0..5000 {
        thread::yield_now();
    }

    // upgrade to a shared chan and send a message
    let tx2_ = tx.clone();
    drop(tx);
    tx2_.send_blocking(()).unwrap();

    // wait for the child thread to exit before we exit
    rx2.recv_blocking().unwrap();
    t.join().unwrap();
}

#[test]
fn issue_32114() {
    let (tx, _) = unbounded();
    let _ = tx.send_blocking(123);
    assert_eq!(tx.send_blocking(123), Err(blume::SendError(123)));
}

#[test]
fn sync_channel_bounded_blocks_then_proceeds() {
    // std's sync_channel tests: a full bounded channel blocks the sender until the receiver
    // takes, and hands back items on try_send.
    let (tx, mut rx) = bounded::<i32>(1);
    tx.send_blocking(1).unwrap();
    assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    let t = thread::spawn(move || {
        tx.send_blocking(2).unwrap();
        tx.send_blocking(3).unwrap();
    });
    assert_eq!(rx.recv_blocking(), Ok(1));
    assert_eq!(rx.recv_blocking(), Ok(2));
    assert_eq!(rx.recv_blocking(), Ok(3));
    t.join().unwrap();
    assert_eq!(rx.recv_blocking(), Err(RecvError));
}

#[test]
fn behaves_like_std_on_a_random_script() {
    // The same single-threaded sequence of operations on std's channel and on blume's gives the
    // same results.
    let (stx, srx) = std_mpsc::channel::<u32>();
    let (btx, mut brx) = unbounded::<u32>();
    let mut seed = 0x2545_f491_u32;
    let steps = if cfg!(miri) { 500 } else { 10_000u32 };
    for i in 0..steps {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        if seed % 3 == 0 {
            assert_eq!(srx.try_recv().ok(), brx.try_recv().ok(), "step {i}");
        } else {
            stx.send(i).unwrap();
            btx.try_send(i).unwrap();
        }
    }
    drop(stx);
    drop(btx);
    let rest: Vec<u32> = brx.iter().collect();
    assert_eq!(srx.iter().collect::<Vec<_>>(), rest);
}
