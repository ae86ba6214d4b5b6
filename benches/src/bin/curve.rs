//! CURVE PUSH/PULL throughput between two processes: omq (tokio and compio backends) against a
//! libzmq built with libsodium, in the same run, over tcp.
//!
//! The vendored libzmq of the `zmq` crate has no CURVE, so the libzmq side is
//! `benches/c/curve_peer.c` (libzmq's perf/local_thr and remote_thr in miniature), compiled at
//! start-up with `cc` against the libzmq that pyzmq bundles (`pip install pyzmq`). Without them
//! the libzmq column is left out.
//!
//! Every run has a receiver process (CURVE server, binds, times from its first message to its
//! last) and a sender process (CURVE client). Implementations alternate run by run; the report
//! gives the median of the rounds and the ratio to libzmq.
//!
//! ```text
//! cargo run --release -p omq-bench --bin curve -- [--quick] [--rounds N] [--sizes 16,16384]
//! ```

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use omq_tokio::{CurveKeyPair, CurvePublicKey, CurveSecretKey, Options};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    Libzmq,
    Tokio,
    Compio,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Self::Libzmq => "libzmq",
            Self::Tokio => "tokio-ct",
            Self::Compio => "compio",
        }
    }
}

fn count_for(size: usize, quick: bool) -> u64 {
    let n = if size <= 1024 { 1_000_000 } else { 40_000 };
    if quick { n / 4 } else { n }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1..]);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .map(|i| args[i + 1].clone())
    };
    let rounds: usize = value("--rounds").map_or(if quick { 3 } else { 5 }, |v| v.parse().unwrap());
    let sizes: Vec<usize> = value("--sizes").map_or(vec![16, 16384], |v| {
        v.split(',').map(|s| s.parse().unwrap()).collect()
    });
    let peer = build_libzmq_peer();
    let mut impls = vec![Impl::Tokio, Impl::Compio];
    match &peer {
        Ok(_) => impls.insert(0, Impl::Libzmq),
        Err(why) => println!("libzmq with CURVE is not available ({why}): omq columns only."),
    }
    let server = CurveKeyPair::generate().unwrap();
    let client = CurveKeyPair::generate().unwrap();
    let keys = Keys {
        server_secret: server.secret.to_z85(),
        server_public: server.public.to_z85(),
        client_secret: client.secret.to_z85(),
    };

    println!("CURVE PUSH/PULL over tcp between two processes, median of {rounds} rounds, msg/s.");
    println!("omq-tokio on a current-thread runtime; omq-compio on io_uring.");
    println!();
    let header: Vec<&str> = impls.iter().map(|i| i.name()).collect();
    print!("| size | {} |", header.join(" | "));
    if peer.is_ok() {
        print!(" tokio-ct / libzmq | compio / libzmq |");
    }
    println!();
    println!(
        "|---:|{}",
        "---:|".repeat(impls.len() + if peer.is_ok() { 2 } else { 0 })
    );
    for &size in &sizes {
        let count = count_for(size, quick);
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); impls.len()];
        for _ in 0..rounds {
            for (k, &imp) in impls.iter().enumerate() {
                rates[k].push(run(imp, peer.as_ref().ok(), &keys, size, count));
            }
        }
        let m: Vec<f64> = rates
            .iter_mut()
            .map(|r| {
                r.sort_by(f64::total_cmp);
                r[r.len() / 2]
            })
            .collect();
        let cells: Vec<String> = m.iter().map(|r| format!("{r:.0}")).collect();
        print!("| {size} B | {} |", cells.join(" | "));
        if peer.is_ok() {
            print!(" {:.2}x | {:.2}x |", m[1] / m[0], m[2] / m[0]);
        }
        println!();
    }
}

struct Keys {
    server_secret: String,
    server_public: String,
    client_secret: String,
}

/// One run: start the receiver, then the sender; the receiver's rate.
fn run(imp: Impl, peer: Option<&PathBuf>, keys: &Keys, size: usize, count: u64) -> f64 {
    let (size, count) = (size.to_string(), count.to_string());
    let command = |role: &str| match imp {
        Impl::Libzmq => {
            let mut c = Command::new(peer.expect("built"));
            c.arg(role);
            c
        }
        _ => {
            let mut c = Command::new(std::env::current_exe().unwrap());
            c.args(["--child", role, imp.name()]);
            c
        }
    };
    let mut recv = command("recv")
        .args(["tcp://127.0.0.1:*", &size, &count, &keys.server_secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the receiver");
    let mut lines = BufReader::new(recv.stdout.take().unwrap()).lines();
    let mut next = |word: &str| -> String {
        let line = lines.next().expect("receiver output").unwrap();
        line.strip_prefix(word)
            .unwrap_or_else(|| panic!("expected {word}, got {line}"))
            .trim()
            .to_owned()
    };
    let ep = next("endpoint");
    let mut send = command("send")
        .args([
            ep.as_str(),
            &size,
            &count,
            &keys.client_secret,
            &keys.server_public,
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("start the sender");
    let rate: f64 = next("rate").parse().unwrap();
    finish(&mut send);
    finish(&mut recv);
    rate
}

fn finish(child: &mut Child) {
    drop(child.stdin.take());
    child.wait().unwrap();
}

/// Compiles `benches/c/curve_peer.c` against pyzmq's libzmq; its path.
fn build_libzmq_peer() -> Result<PathBuf, String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import zmq, os, glob; d = os.path.join(os.path.dirname(os.path.dirname(zmq.__file__)), \
             'pyzmq.libs'); print(d); print(glob.glob(os.path.join(d, 'libzmq*'))[0]); \
             print(zmq.zmq_version())",
        ])
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        return Err("pyzmq with its bundled libzmq not found".into());
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let (dir, lib, version) = (lines.next(), lines.next(), lines.next());
    let (Some(dir), Some(lib), Some(version)) = (dir, lib, version) else {
        return Err("pyzmq with its bundled libzmq not found".into());
    };
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/c/curve_peer.c");
    let exe = std::env::temp_dir().join(format!("omq-curve-peer-{}", std::process::id()));
    let status = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&exe)
        .arg(source)
        .arg(lib)
        .arg(format!("-Wl,-rpath,{dir}"))
        .status()
        .map_err(|e| format!("cc: {e}"))?;
    if !status.success() {
        return Err("cc failed".into());
    }
    println!("libzmq {version} (pyzmq's, with libsodium) through benches/c/curve_peer.c");
    Ok(exe)
}

/// A child process: `recv|send IMPL EP SIZE COUNT SECRET [SERVER_PUBLIC]`.
fn child(args: &[String]) {
    let (role, imp, ep) = (&args[0], &args[1], &args[2]);
    let size: usize = args[3].parse().unwrap();
    let count: u64 = args[4].parse().unwrap();
    let mut o = Options::default();
    o.curve_secret_key = Some(CurveSecretKey::parse(args[5].as_bytes()).unwrap());
    if role == "recv" {
        o.curve_server = true;
    } else {
        o.curve_server_key = Some(CurvePublicKey::parse(args[6].as_bytes()).unwrap());
    }
    let ep = ep.replace('*', "0");
    match imp.as_str() {
        "compio" => compio::runtime::Runtime::new().unwrap().block_on(async {
            use omq_compio::{Message, Socket, SocketType};
            if role == "recv" {
                let pull = Socket::new(SocketType::Pull, o).unwrap();
                let bound = pull.bind(&ep).await.unwrap().to_string();
                println!("endpoint {bound}");
                pull.recv().await.unwrap();
                let start = Instant::now();
                for _ in 1..count {
                    pull.recv().await.unwrap();
                }
                println!(
                    "rate {:.0}",
                    (count - 1) as f64 / start.elapsed().as_secs_f64()
                );
            } else {
                let push = Socket::new(SocketType::Push, o).unwrap();
                push.connect(&ep).await.unwrap();
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
            }
        }),
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                use omq_tokio::{Message, Socket, SocketType};
                if role == "recv" {
                    let pull = Socket::new(SocketType::Pull, o).unwrap();
                    let bound = pull.bind(&ep).await.unwrap().to_string();
                    println!("endpoint {bound}");
                    pull.recv().await.unwrap();
                    let start = Instant::now();
                    for _ in 1..count {
                        pull.recv().await.unwrap();
                    }
                    println!(
                        "rate {:.0}",
                        (count - 1) as f64 / start.elapsed().as_secs_f64()
                    );
                } else {
                    let push = Socket::new(SocketType::Push, o).unwrap();
                    push.connect(&ep).await.unwrap();
                    let payload = Message::from(vec![0u8; size]);
                    for _ in 0..count {
                        push.send(payload.clone()).await.unwrap();
                    }
                    tokio::task::spawn_blocking(wait_for_parent).await.unwrap();
                    tokio::time::timeout(Duration::from_secs(60), push.close())
                        .await
                        .expect("close");
                }
            }),
    }
}

/// In a sender: waits until the parent closes our stdin (the receiver has every message).
fn wait_for_parent() {
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
}
