//! Cross-thread transfer throughput: yring (per item and batched) against rtrb and crossbeam's
//! ArrayQueue, for `u64` and 64-byte items. Each sample moves `ITEMS` items from a producer thread
//! to a consumer thread through a ring of `CAPACITY` slots. Run with `cargo bench -p yring`.

use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};

const CAPACITY: usize = 4096;
const ITEMS: u64 = 1 << 20;
const BATCH: usize = 1024;

trait Item: Copy + Send + 'static {
    fn new(i: u64) -> Self;
}

impl Item for u64 {
    fn new(i: u64) -> Self {
        i
    }
}

#[derive(Clone, Copy)]
#[repr(align(8))]
#[allow(dead_code)] // only ever read through black_box
struct Item64([u8; 64]);

impl Item for Item64 {
    fn new(i: u64) -> Self {
        let mut b = [0u8; 64];
        b[..8].copy_from_slice(&i.to_le_bytes());
        Self(b)
    }
}

/// Runs `produce` on a new thread and `consume` here; returns the elapsed time of `iters` rounds.
fn timed<P, C>(iters: u64, mut make: impl FnMut() -> (P, C)) -> Duration
where
    P: FnOnce() + Send + 'static,
    C: FnOnce(),
{
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let (produce, consume) = make();
        let start = Instant::now();
        let t = thread::spawn(produce);
        consume();
        t.join().unwrap();
        total += start.elapsed();
    }
    total
}

fn yring_per_item<T: Item>(iters: u64) -> Duration {
    per_item::<T>(iters, yring::Publish::Swap)
}

fn yring_store_per_item<T: Item>(iters: u64) -> Duration {
    per_item::<T>(iters, yring::Publish::Store)
}

fn per_item<T: Item>(iters: u64, publish: yring::Publish) -> Duration {
    timed(iters, || {
        let (mut tx, mut rx) = yring::channel_with::<T>(CAPACITY, publish);
        (
            move || {
                for i in 0..ITEMS {
                    let mut v = T::new(i);
                    loop {
                        match tx.push_publish(v) {
                            Ok(()) => break,
                            Err(e) => {
                                v = e.into_inner();
                                std::hint::spin_loop();
                            }
                        }
                    }
                }
            },
            move || {
                let mut n = 0;
                while n < ITEMS {
                    match rx.fetch_pop() {
                        Ok(v) => {
                            black_box(v);
                            n += 1;
                        }
                        Err(_) => std::hint::spin_loop(),
                    }
                }
            },
        )
    })
}

fn yring_batched<T: Item>(iters: u64) -> Duration {
    timed(iters, || {
        let (mut tx, mut rx) = yring::channel::<T>(CAPACITY);
        (
            move || {
                let items: Vec<T> = (0..BATCH as u64).map(T::new).collect();
                let mut sent = 0u64;
                while sent < ITEMS {
                    let want = (ITEMS - sent).min(BATCH as u64) as usize;
                    let n = tx.push_slice(&items[..want]);
                    tx.publish();
                    if n == 0 {
                        std::hint::spin_loop();
                    }
                    sent += n as u64;
                }
            },
            move || {
                let mut out = Vec::with_capacity(CAPACITY);
                let mut n = 0u64;
                while n < ITEMS {
                    out.clear();
                    let got = rx.pop_into(&mut out);
                    if got == 0 {
                        std::hint::spin_loop();
                    }
                    black_box(&out);
                    n += got as u64;
                }
            },
        )
    })
}

fn rtrb_per_item<T: Item>(iters: u64) -> Duration {
    timed(iters, || {
        let (mut tx, mut rx) = rtrb::RingBuffer::<T>::new(CAPACITY);
        (
            move || {
                for i in 0..ITEMS {
                    let mut v = T::new(i);
                    loop {
                        match tx.push(v) {
                            Ok(()) => break,
                            Err(rtrb::PushError::Full(back)) => {
                                v = back;
                                std::hint::spin_loop();
                            }
                        }
                    }
                }
            },
            move || {
                let mut n = 0;
                while n < ITEMS {
                    match rx.pop() {
                        Ok(v) => {
                            black_box(v);
                            n += 1;
                        }
                        Err(_) => std::hint::spin_loop(),
                    }
                }
            },
        )
    })
}

fn array_queue_per_item<T: Item>(iters: u64) -> Duration {
    timed(iters, || {
        let q = Arc::new(crossbeam_queue::ArrayQueue::<T>::new(CAPACITY));
        let tx = q.clone();
        (
            move || {
                for i in 0..ITEMS {
                    let mut v = T::new(i);
                    while let Err(back) = tx.push(v) {
                        v = back;
                        std::hint::spin_loop();
                    }
                }
            },
            move || {
                let mut n = 0;
                while n < ITEMS {
                    match q.pop() {
                        Some(v) => {
                            black_box(v);
                            n += 1;
                        }
                        None => std::hint::spin_loop(),
                    }
                }
            },
        )
    })
}

fn bench_item<T: Item>(c: &mut Criterion, name: &str) {
    let mut g = c.benchmark_group(format!("spsc/{name}"));
    g.throughput(Throughput::Elements(ITEMS));
    g.sample_size(10);
    g.bench_function("yring_batched", |b| b.iter_custom(yring_batched::<T>));
    g.bench_function("yring_per_item", |b| b.iter_custom(yring_per_item::<T>));
    g.bench_function("yring_store_per_item", |b| {
        b.iter_custom(yring_store_per_item::<T>)
    });
    g.bench_function("rtrb_per_item", |b| b.iter_custom(rtrb_per_item::<T>));
    g.bench_function("array_queue_per_item", |b| {
        b.iter_custom(array_queue_per_item::<T>)
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_item::<u64>(c, "u64");
    bench_item::<Item64>(c, "64B");
}

criterion_group!(ring, benches);

/// `ROUNDS=n cargo bench -p yring --bench ring`: instead of criterion, runs every case `n` times,
/// interleaved so that all cases see the same machine conditions, and prints a markdown table of
/// medians (with min and max) in M items/s. This is the table in the README.
fn interleaved(rounds: usize) {
    type Case = (&'static str, &'static str, fn(u64) -> Duration);
    // Five cases per item type; the fourth of each five is rtrb's.
    let cases: [Case; 10] = [
        ("u64", "yring batched", yring_batched::<u64>),
        ("u64", "yring per item", yring_per_item::<u64>),
        ("u64", "yring per item, Store", yring_store_per_item::<u64>),
        ("u64", "rtrb per item", rtrb_per_item::<u64>),
        ("u64", "ArrayQueue per item", array_queue_per_item::<u64>),
        ("64 B", "yring batched", yring_batched::<Item64>),
        ("64 B", "yring per item", yring_per_item::<Item64>),
        (
            "64 B",
            "yring per item, Store",
            yring_store_per_item::<Item64>,
        ),
        ("64 B", "rtrb per item", rtrb_per_item::<Item64>),
        (
            "64 B",
            "ArrayQueue per item",
            array_queue_per_item::<Item64>,
        ),
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (i, (_, _, f)) in cases.iter().enumerate() {
            rates[i].push(ITEMS as f64 / f(1).as_secs_f64() / 1e6);
        }
    }
    println!("| item | case | M items/s median | min | max | vs rtrb per item |");
    println!("|---|---|---|---|---|---|");
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let medians: Vec<f64> = rates.iter_mut().map(median).collect();
    for (i, (item, name, _)) in cases.iter().enumerate() {
        let rtrb = medians[i / 5 * 5 + 3];
        let r = &rates[i];
        println!(
            "| {item} | {name} | {:.1} | {:.1} | {:.1} | {:.2}x |",
            medians[i],
            r[0],
            r[r.len() - 1],
            medians[i] / rtrb
        );
    }
}

fn main() {
    if let Some(rounds) = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()) {
        interleaved(rounds);
        return;
    }
    ring();
    Criterion::default().configure_from_args().final_summary();
}
