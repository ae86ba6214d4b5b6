//! PUSH/PULL throughput between two processes: omq (tokio and compio backends) against libzmq
//! in the same run, over tcp and ipc.
//!
//! The parent binds a PULL socket and starts a child process that connects a PUSH socket and
//! sends `count` messages of `size` bytes as fast as it can. The parent times from the first
//! message to the last. Implementations alternate run by run, so a noisy machine affects all of
//! them alike; the report gives the median of the rounds and ratios to libzmq.
//!
//! ```text
//! cargo run --release -p omq-bench --bin throughput -- [--quick] [--rounds N]
//!     [--sizes 8,128,...] [--transports tcp,ipc]
//! ```

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    Libzmq,
    /// omq-tokio on a current-thread runtime in each process.
    TokioCurrent,
    /// omq-tokio on a multi-thread runtime (2 workers) in each process.
    TokioMulti,
    /// omq-compio (io_uring) in each process.
    Compio,
}

impl Impl {
    const ALL: [Self; 4] = [
        Self::Libzmq,
        Self::TokioCurrent,
        Self::TokioMulti,
        Self::Compio,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Libzmq => "libzmq",
            Self::TokioCurrent => "tokio-ct",
            Self::TokioMulti => "tokio-mt",
            Self::Compio => "compio",
        }
    }

    fn parse(s: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|i| i.name() == s)
            .unwrap_or_else(|| panic!("unknown implementation {s}"))
    }
}

/// Messages per run for a size: about half a second of libzmq's rate on a small machine.
fn count_for(size: usize, quick: bool) -> u64 {
    let n = match size {
        0..=64 => 2_000_000,
        65..=512 => 1_000_000,
        513..=4096 => 400_000,
        _ => 20_000,
    };
    if quick { n / 4 } else { n }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let imp = Impl::parse(&args[i + 1]);
        let endpoint = &args[i + 2];
        let size: usize = args[i + 3].parse().unwrap();
        let count: u64 = args[i + 4].parse().unwrap();
        match imp {
            Impl::Libzmq => libzmq_send(endpoint, size, count),
            Impl::Compio => compio_send(endpoint, size, count),
            tokio => tokio_send(tokio, endpoint, size, count),
        }
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .map(|i| args[i + 1].clone())
    };
    let rounds: usize = value("--rounds").map_or(if quick { 3 } else { 5 }, |v| v.parse().unwrap());
    let sizes: Vec<usize> = value("--sizes").map_or(vec![8, 128, 1024, 65536], |v| {
        v.split(',').map(|s| s.parse().unwrap()).collect()
    });
    let transports: Vec<String> = value("--transports")
        .map_or(vec!["tcp".into(), "ipc".into()], |v| {
            v.split(',').map(str::to_owned).collect()
        });

    println!("PUSH/PULL between two processes, median of {rounds} rounds, messages per second.");
    println!(
        "omq-tokio on a current-thread runtime (tokio-ct) and on a multi-thread one with 2 \
         workers (tokio-mt); omq-compio on io_uring. Ratios are to libzmq in the same run."
    );
    for transport in &transports {
        println!();
        println!("{transport}:");
        println!();
        println!("| size | libzmq | tokio-ct | tokio-mt | compio | tokio-ct | tokio-mt | compio |");
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
        for &size in &sizes {
            let count = count_for(size, quick);
            let mut rates: Vec<Vec<f64>> = vec![Vec::new(); Impl::ALL.len()];
            for _ in 0..rounds {
                for (k, imp) in Impl::ALL.into_iter().enumerate() {
                    rates[k].push(run(imp, transport, size, count));
                }
            }
            let m: Vec<f64> = rates.iter_mut().map(|r| median(r)).collect();
            println!(
                "| {size} B | {:.0} | {:.0} | {:.0} | {:.0} | {:.2}x | {:.2}x | {:.2}x |",
                m[0],
                m[1],
                m[2],
                m[3],
                m[1] / m[0],
                m[2] / m[0],
                m[3] / m[0]
            );
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Where the receiver binds.
fn bind_endpoint(transport: &str, libzmq: bool) -> String {
    match transport {
        "tcp" if libzmq => "tcp://127.0.0.1:*".into(),
        "tcp" => "tcp://127.0.0.1:0".into(),
        _ => format!(
            "ipc://{}/omq-bench-{}.sock",
            std::env::temp_dir().display(),
            std::process::id()
        ),
    }
}

/// One run: bind, start the sender, receive `count` messages; messages per second.
fn run(imp: Impl, transport: &str, size: usize, count: u64) -> f64 {
    match imp {
        Impl::Libzmq => {
            let ctx = zmq::Context::new();
            let pull = ctx.socket(zmq::PULL).unwrap();
            pull.bind(&bind_endpoint(transport, true)).unwrap();
            let ep = pull.get_last_endpoint().unwrap().unwrap();
            let child = spawn_child(imp, &ep, size, count);
            let mut msg = zmq::Message::new();
            pull.recv(&mut msg, 0).unwrap();
            let start = Instant::now();
            for _ in 1..count {
                pull.recv(&mut msg, 0).unwrap();
                debug_assert_eq!(msg.len(), size);
            }
            let rate = (count - 1) as f64 / start.elapsed().as_secs_f64();
            finish(child);
            rate
        }
        Impl::Compio => compio::runtime::Runtime::new().unwrap().block_on(async {
            use omq_compio::{Socket, SocketType};
            let pull = Socket::new(SocketType::Pull, Default::default()).unwrap();
            let ep = pull
                .bind(&bind_endpoint(transport, false))
                .await
                .unwrap()
                .to_string();
            let child = spawn_child(imp, &ep, size, count);
            pull.recv().await.unwrap();
            let start = Instant::now();
            for _ in 1..count {
                let m = pull.recv().await.unwrap();
                debug_assert_eq!(m.size(), size);
            }
            let rate = (count - 1) as f64 / start.elapsed().as_secs_f64();
            finish(child);
            rate
        }),
        tokio => tokio_runtime(tokio).block_on(async {
            use omq_tokio::{Socket, SocketType};
            let pull = Socket::new(SocketType::Pull, Default::default()).unwrap();
            let ep = pull
                .bind(&bind_endpoint(transport, false))
                .await
                .unwrap()
                .to_string();
            let child = spawn_child(imp, &ep, size, count);
            pull.recv().await.unwrap();
            let start = Instant::now();
            for _ in 1..count {
                let m = pull.recv().await.unwrap();
                debug_assert_eq!(m.size(), size);
            }
            let rate = (count - 1) as f64 / start.elapsed().as_secs_f64();
            finish(child);
            rate
        }),
    }
}

fn spawn_child(imp: Impl, ep: &str, size: usize, count: u64) -> std::process::Child {
    // For finding the slow side: `THROUGHPUT_SENDER=libzmq` pairs every receiver with that sender.
    let imp = std::env::var("THROUGHPUT_SENDER").map_or(imp, |s| Impl::parse(&s));
    // The sender keeps its socket open until its stdin closes, which the parent does once it
    // has every message: libzmq can lose the tail of what it sent over ipc when it closes
    // right after sending (libzmq issue #4660).
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--child",
            imp.name(),
            ep,
            &size.to_string(),
            &count.to_string(),
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("start the sender process")
}

fn libzmq_send(ep: &str, size: usize, count: u64) {
    let ctx = zmq::Context::new();
    let push = ctx.socket(zmq::PUSH).unwrap();
    push.connect(ep).unwrap();
    let payload = vec![0u8; size];
    for _ in 0..count {
        push.send(&payload[..], 0).unwrap();
    }
    wait_for_parent();
    // The default linger sends everything before the context ends.
    drop(push);
}

fn tokio_send(imp: Impl, ep: &str, size: usize, count: u64) {
    tokio_runtime(imp).block_on(async {
        use omq_tokio::{Message, Socket, SocketType};
        let push = Socket::new(SocketType::Push, Default::default()).unwrap();
        push.connect(ep).await.unwrap();
        let payload = Message::from(vec![0u8; size]);
        for _ in 0..count {
            push.send(payload.clone()).await.unwrap();
        }
        // The default linger: close returns once everything is sent.
        tokio::task::spawn_blocking(wait_for_parent).await.unwrap();
        tokio::time::timeout(Duration::from_secs(60), push.close())
            .await
            .expect("close");
    });
}

fn compio_send(ep: &str, size: usize, count: u64) {
    compio::runtime::Runtime::new().unwrap().block_on(async {
        use omq_compio::{Message, Socket, SocketType};
        let push = Socket::new(SocketType::Push, Default::default()).unwrap();
        push.connect(ep).await.unwrap();
        let payload = Message::from(vec![0u8; size]);
        for _ in 0..count {
            push.send(payload.clone()).await.unwrap();
        }
        compio::runtime::spawn_blocking(wait_for_parent)
            .await
            .unwrap();
        compio::time::timeout(Duration::from_secs(60), push.close())
            .await
            .expect("close");
    });
}

/// The runtime for a tokio side.
fn tokio_runtime(imp: Impl) -> tokio::runtime::Runtime {
    if imp == Impl::TokioCurrent {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }
}

/// In the sender: waits until the parent closes our stdin (it has every message).
fn wait_for_parent() {
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
}

/// In the parent: lets the sender close, and reaps it.
fn finish(mut child: std::process::Child) {
    drop(child.stdin.take());
    child.wait().unwrap();
}
