//! Cross-thread MPSC throughput: blume against crossbeam-channel, flume, std's mpsc and tokio's
//! mpsc, with 1 and 4 producers, `u64` and 64-byte items, sync (blocking) and async (each side on
//! a current-thread tokio runtime of its own thread). Each sample moves `ITEMS` items in total.
//! Run with `cargo bench -p blume`.

use std::collections::VecDeque;
use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};

const ITEMS: u64 = 1 << 20;
const CAPACITY: usize = 1024;

trait Item: Copy + Send + 'static {
    fn new(i: u64) -> Self;
}

impl Item for u64 {
    fn new(i: u64) -> Self {
        i
    }
}

#[derive(Clone, Copy)]
#[allow(dead_code)] // only ever read through black_box
struct Item64([u64; 8]);

impl Item for Item64 {
    fn new(i: u64) -> Self {
        Self([i; 8])
    }
}

/// Spawns `producers` threads running `produce(count)` and runs `consume(total)` here.
fn run<S, P, C>(producers: usize, sender: S, produce: P, consume: C) -> Duration
where
    S: Clone + Send + 'static,
    P: Fn(S, u64) + Send + Sync + Clone + 'static,
    C: FnOnce(u64),
{
    let per = ITEMS / producers as u64;
    let start = Instant::now();
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let s = sender.clone();
            let p = produce.clone();
            thread::spawn(move || p(s, per))
        })
        .collect();
    drop(sender);
    consume(per * producers as u64);
    for h in handles {
        h.join().unwrap();
    }
    start.elapsed()
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn blume_sync<T: Item>(producers: usize) -> Duration {
    let (tx, mut rx) = blume::bounded::<T>(CAPACITY);
    run(
        producers,
        tx,
        |tx, n| (0..n).for_each(|i| tx.send_blocking(T::new(i)).unwrap()),
        move |total| {
            let mut buf = VecDeque::with_capacity(CAPACITY);
            let mut got = 0;
            while got < total {
                got += rx.recv_batch_blocking(&mut buf).unwrap() as u64;
                for v in buf.drain(..) {
                    black_box(v);
                }
            }
        },
    )
}

fn blume_async<T: Item>(producers: usize) -> Duration {
    let (tx, mut rx) = blume::bounded::<T>(CAPACITY);
    run(
        producers,
        tx,
        |tx, n| {
            tokio_rt().block_on(async {
                for i in 0..n {
                    tx.send(T::new(i)).await.unwrap();
                }
            })
        },
        move |total| {
            tokio_rt().block_on(async {
                let mut got = 0;
                while got < total {
                    black_box(rx.recv().await.unwrap());
                    got += 1;
                }
            })
        },
    )
}

fn flume_sync<T: Item>(producers: usize) -> Duration {
    let (tx, rx) = flume::bounded::<T>(CAPACITY);
    run(
        producers,
        tx,
        |tx, n| (0..n).for_each(|i| tx.send(T::new(i)).unwrap()),
        move |total| {
            (0..total).for_each(|_| {
                black_box(rx.recv().unwrap());
            })
        },
    )
}

fn flume_async<T: Item>(producers: usize) -> Duration {
    let (tx, rx) = flume::bounded::<T>(CAPACITY);
    run(
        producers,
        tx,
        |tx, n| {
            tokio_rt().block_on(async {
                for i in 0..n {
                    tx.send_async(T::new(i)).await.unwrap();
                }
            })
        },
        move |total| {
            tokio_rt().block_on(async {
                for _ in 0..total {
                    black_box(rx.recv_async().await.unwrap());
                }
            })
        },
    )
}

fn crossbeam_sync<T: Item>(producers: usize) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<T>(CAPACITY);
    run(
        producers,
        tx,
        |tx, n| (0..n).for_each(|i| tx.send(T::new(i)).unwrap()),
        move |total| {
            (0..total).for_each(|_| {
                black_box(rx.recv().unwrap());
            })
        },
    )
}

fn std_sync<T: Item>(producers: usize) -> Duration {
    let (tx, rx) = std::sync::mpsc::sync_channel::<T>(CAPACITY);
    run(
        producers,
        tx,
        |tx, n| (0..n).for_each(|i| tx.send(T::new(i)).unwrap()),
        move |total| {
            (0..total).for_each(|_| {
                black_box(rx.recv().unwrap());
            })
        },
    )
}

fn tokio_async<T: Item>(producers: usize) -> Duration {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<T>(CAPACITY);
    run(
        producers,
        tx,
        |tx, n| {
            tokio_rt().block_on(async {
                for i in 0..n {
                    tx.send(T::new(i)).await.unwrap();
                }
            })
        },
        move |total| {
            tokio_rt().block_on(async {
                for _ in 0..total {
                    black_box(rx.recv().await.unwrap());
                }
            })
        },
    )
}

fn group<T: Item>(c: &mut Criterion, item: &str, producers: usize) {
    let mut g = c.benchmark_group(format!("mpsc/{item}/{producers}p"));
    g.throughput(Throughput::Elements(ITEMS));
    g.sample_size(10);
    type Case = (&'static str, fn(usize) -> Duration);
    let cases: [Case; 7] = [
        ("blume_sync", blume_sync::<T>),
        ("flume_sync", flume_sync::<T>),
        ("crossbeam_sync", crossbeam_sync::<T>),
        ("std_sync", std_sync::<T>),
        ("blume_async", blume_async::<T>),
        ("flume_async", flume_async::<T>),
        ("tokio_async", tokio_async::<T>),
    ];
    for (name, f) in cases {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| f(producers)).sum())
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    for producers in [1, 4] {
        group::<u64>(c, "u64", producers);
        group::<Item64>(c, "64B", producers);
    }
}

criterion_group!(mpsc, benches);

/// `ROUNDS=n cargo bench -p blume --bench mpsc`: instead of criterion, runs every case `n` times,
/// interleaved so that all cases see the same machine conditions, and prints a markdown table of
/// medians (with min and max) in M items/s. This is the table in the README.
fn interleaved(rounds: usize) {
    type Case = (&'static str, fn(usize) -> Duration);
    let cases: [Case; 7] = [
        ("blume sync", blume_sync::<u64>),
        ("flume sync", flume_sync::<u64>),
        ("crossbeam sync", crossbeam_sync::<u64>),
        ("std sync", std_sync::<u64>),
        ("blume async", blume_async::<u64>),
        ("flume async", flume_async::<u64>),
        ("tokio async", tokio_async::<u64>),
    ];
    let cases64: [Case; 7] = [
        ("blume sync", blume_sync::<Item64>),
        ("flume sync", flume_sync::<Item64>),
        ("crossbeam sync", crossbeam_sync::<Item64>),
        ("std sync", std_sync::<Item64>),
        ("blume async", blume_async::<Item64>),
        ("flume async", flume_async::<Item64>),
        ("tokio async", tokio_async::<Item64>),
    ];
    println!("| item | producers | case | M items/s median | min | max | vs flume (same mode) |");
    println!("|---|---|---|---|---|---|---|");
    for (item, set) in [("u64", &cases), ("64 B", &cases64)] {
        for producers in [1, 4] {
            let mut rates: Vec<Vec<f64>> = vec![Vec::new(); set.len()];
            for _ in 0..rounds {
                for (i, (_, f)) in set.iter().enumerate() {
                    rates[i].push(ITEMS as f64 / f(producers).as_secs_f64() / 1e6);
                }
            }
            for r in &mut rates {
                r.sort_by(f64::total_cmp);
            }
            let median = |i: usize| rates[i][rates[i].len() / 2];
            for (i, (name, _)) in set.iter().enumerate() {
                let flume = if name.ends_with("async") {
                    median(5)
                } else {
                    median(1)
                };
                let r = &rates[i];
                println!(
                    "| {item} | {producers} | {name} | {:.1} | {:.1} | {:.1} | {:.2}x |",
                    median(i),
                    r[0],
                    r[r.len() - 1],
                    median(i) / flume
                );
            }
        }
    }
}

fn main() {
    if let Some(rounds) = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()) {
        interleaved(rounds);
        return;
    }
    mpsc();
    Criterion::default().configure_from_args().final_summary();
}
