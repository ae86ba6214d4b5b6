//! CURVE throughput: PUSH/PULL between two processes, and PUB to 16 SUB processes (aggregate),
//! omq (tokio and compio backends) against a libzmq built with libsodium, in the same run, over
//! tcp.
//!
//! The vendored libzmq of the `zmq` crate has no CURVE, so the libzmq side is
//! `benches/c/curve_peer.c` (libzmq's perf/local_thr and remote_thr in miniature), compiled at
//! start-up with `cc` against the libzmq that pyzmq bundles (`pip install pyzmq`). Without them
//! the libzmq column is left out.
//!
//! A PUSH/PULL run has a receiver process (CURVE server, binds, times from its first message to
//! its last) and a sender process (CURVE client). A PUB/SUB run has a publisher (CURVE server,
//! HWM of the message count so nothing is dropped) and 16 subscribers; once every subscriber has
//! seen a warm-up message the parent tells the publisher to send the counted messages, and the
//! aggregate rate is the messages all subscribers received over the time from that word to the
//! last subscriber's report. Implementations
//! alternate run by run; the report gives the median of the rounds and the ratio to libzmq.
//!
//! ```text
//! cargo run --release -p omq-bench --bin curve -- [--quick] [--rounds N] [--sizes 16,16384]
//!     [--subs 16]
//! ```

use std::io::{BufRead, BufReader, Write};
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

/// The publisher's part, over either backend's identical API: warm-up messages until a line on
/// stdin, the counted messages, then end markers until stdin closes.
macro_rules! publish {
    ($s:expr, $bound:expr, $size:expr, $count:expr, $sleep:ident) => {{
        println!("endpoint {}", $bound);
        let stdin = stdin_lines();
        let with = |tag: u8| {
            let mut v = vec![0u8; $size];
            v[0] = tag;
            Message::from(v)
        };
        let (warm, real, end) = (with(b'w'), with(b'm'), with(b'e'));
        while stdin.try_recv().is_err() {
            $s.send(warm.clone()).await.unwrap();
            $sleep(Duration::from_millis(1)).await;
        }
        for _ in 0..$count {
            $s.send(real.clone()).await.unwrap();
        }
        while !matches!(
            stdin.try_recv(),
            Err(std::sync::mpsc::TryRecvError::Disconnected)
        ) {
            $s.send(end.clone()).await.unwrap();
            $sleep(Duration::from_millis(1)).await;
        }
    }};
}

/// A subscriber's part: "ready" at the first warm-up message, then "got N SECONDS".
macro_rules! subscribe {
    ($s:expr, $ep:expr, $count:expr) => {{
        $s.subscribe("").unwrap();
        $s.connect(&$ep).await.unwrap();
        while $s.recv().await.unwrap().first().unwrap()[0] != b'w' {}
        println!("ready");
        let mut first = $s.recv().await.unwrap();
        while first.first().unwrap()[0] == b'w' {
            first = $s.recv().await.unwrap();
        }
        let start = Instant::now();
        let mut got = u64::from(first.first().unwrap()[0] == b'm');
        while got < $count {
            match $s.recv().await.unwrap().first().unwrap()[0] {
                b'e' => break,
                b'm' => got += 1,
                _ => {}
            }
        }
        println!("got {got} {:.6}", start.elapsed().as_secs_f64());
    }};
}

/// One child's role, written once over both backends' identical APIs (each branch defines
/// `sleep`, `parent_done` and `close` for its runtime).
macro_rules! play {
    ($role:expr, $o:expr, $ep:expr, $size:expr, $count:expr) => {{
        let (o, ep, size, count) = ($o, $ep, $size, $count);
        match $role.as_str() {
            "pub" => {
                let s = Socket::new(SocketType::Pub, o).unwrap();
                let bound = s.bind(&ep).await.unwrap().to_string();
                publish!(s, bound, size, count, sleep);
            }
            "sub" => {
                let s = Socket::new(SocketType::Sub, o).unwrap();
                subscribe!(s, ep, count);
            }
            "recv" => {
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
            }
            _ => {
                let push = Socket::new(SocketType::Push, o).unwrap();
                push.connect(&ep).await.unwrap();
                let payload = Message::from(vec![0u8; size]);
                for _ in 0..count {
                    push.send(payload.clone()).await.unwrap();
                }
                parent_done().await;
                close(push).await;
            }
        }
    }};
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
    let subs: usize = value("--subs").map_or(16, |v| v.parse().unwrap());
    let patterns = value("--patterns").unwrap_or_else(|| "pushpull,pubsub".into());
    let built = build_libzmq_peer();
    let mut impls = vec![Impl::Tokio, Impl::Compio];
    match &built {
        Ok(_) => impls.insert(0, Impl::Libzmq),
        Err(why) => println!("libzmq with CURVE is not available ({why}): omq columns only."),
    }
    let server = CurveKeyPair::generate().unwrap();
    let client = CurveKeyPair::generate().unwrap();
    let bench = Bench {
        impls,
        peer: built.ok(),
        keys: Keys {
            server_secret: server.secret.to_z85(),
            server_public: server.public.to_z85(),
            client_secret: client.secret.to_z85(),
        },
        rounds,
    };
    println!("omq-tokio on a current-thread runtime; omq-compio on io_uring.");
    if patterns.contains("pushpull") {
        println!();
        println!(
            "CURVE PUSH/PULL over tcp between two processes, median of {rounds} rounds, msg/s."
        );
        bench.table("size");
        for &size in &sizes {
            let count = count_for(size, quick);
            let m = bench.medians(|imp, b| run(imp, b.peer.as_ref(), &b.keys, size, count));
            bench.row(&format!("{size} B"), &m);
        }
    }
    if patterns.contains("pubsub") {
        let (size, count) = (16, if quick { 20_000 } else { 100_000 });
        println!();
        println!(
            "CURVE PUB to {subs} SUB processes over tcp, {size} B, {count} messages each, \
             aggregate msg/s (all subscribers), median of {rounds} rounds."
        );
        bench.table("pattern");
        let m =
            bench.medians(|imp, b| run_pubsub(imp, b.peer.as_ref(), &b.keys, subs, size, count));
        bench.row(&format!("PUB to {subs} SUB, {size} B"), &m);
    }
}

/// The implementations to compare and what their runs need.
struct Bench {
    impls: Vec<Impl>,
    peer: Option<PathBuf>,
    keys: Keys,
    rounds: usize,
}

impl Bench {
    /// Prints a table header whose first column is `first`.
    fn table(&self, first: &str) {
        println!();
        let names: Vec<&str> = self.impls.iter().map(|i| i.name()).collect();
        let ratios = if self.peer.is_some() {
            " tokio-ct / libzmq | compio / libzmq |"
        } else {
            ""
        };
        println!("| {first} | {} |{ratios}", names.join(" | "));
        let extra = if self.peer.is_some() { 2 } else { 0 };
        println!("|---|{}", "---:|".repeat(self.impls.len() + extra));
    }

    /// The median rate of each implementation over the rounds, runs interleaved.
    fn medians(&self, run: impl Fn(Impl, &Self) -> f64) -> Vec<f64> {
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); self.impls.len()];
        for _ in 0..self.rounds {
            for (k, &imp) in self.impls.iter().enumerate() {
                rates[k].push(run(imp, self));
            }
        }
        rates
            .iter_mut()
            .map(|r| {
                r.sort_by(f64::total_cmp);
                r[r.len() / 2]
            })
            .collect()
    }

    fn row(&self, label: &str, m: &[f64]) {
        let cells: Vec<String> = m.iter().map(|r| format!("{r:.0}")).collect();
        print!("| {label} | {} |", cells.join(" | "));
        if self.peer.is_some() {
            print!(" {:.2}x | {:.2}x |", m[1] / m[0], m[2] / m[0]);
        }
        println!();
    }
}

/// The command that runs `role` of `imp`.
fn command(imp: Impl, peer: Option<&PathBuf>, role: &str) -> Command {
    let mut c = match imp {
        Impl::Libzmq => Command::new(peer.expect("built")),
        _ => {
            let mut c = Command::new(std::env::current_exe().unwrap());
            c.args(["--child"]);
            c
        }
    };
    c.arg(role);
    if imp != Impl::Libzmq {
        c.arg(imp.name());
    }
    c
}

/// The next line of `lines` that starts with `word`, without it.
fn expect_line(lines: &mut impl Iterator<Item = std::io::Result<String>>, word: &str) -> String {
    let line = lines.next().expect("child output").unwrap();
    line.strip_prefix(word)
        .unwrap_or_else(|| panic!("expected {word}, got {line}"))
        .trim()
        .to_owned()
}

/// One PUB/SUB run: the aggregate rate over all subscribers.
fn run_pubsub(
    imp: Impl,
    peer: Option<&PathBuf>,
    keys: &Keys,
    subs: usize,
    size: usize,
    count: u64,
) -> f64 {
    let (size, count) = (size.to_string(), count.to_string());
    let mut publisher = command(imp, peer, "pub")
        .args(["tcp://127.0.0.1:*", &size, &count, &keys.server_secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the publisher");
    let mut pub_lines = BufReader::new(publisher.stdout.take().unwrap()).lines();
    let ep = expect_line(&mut pub_lines, "endpoint");
    let mut children: Vec<Child> = (0..subs)
        .map(|_| {
            command(imp, peer, "sub")
                .args([
                    ep.as_str(),
                    &size,
                    &count,
                    &keys.client_secret,
                    &keys.server_public,
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("start a subscriber")
        })
        .collect();
    let mut lines: Vec<_> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()).lines())
        .collect();
    for l in &mut lines {
        expect_line(l, "ready");
    }
    let mut go = publisher.stdin.take().unwrap();
    let start = Instant::now();
    go.write_all(b"go\n").unwrap();
    go.flush().unwrap();
    let mut total = 0.0;
    for l in &mut lines {
        let got = expect_line(l, "got");
        let (n, _) = got.split_once(' ').unwrap();
        total += n.parse::<f64>().unwrap();
    }
    // From "go" to the last subscriber's report: every box sealed and opened in between.
    let elapsed = start.elapsed().as_secs_f64();
    drop(go);
    for c in &mut children {
        finish(c);
    }
    finish(&mut publisher);
    total / elapsed
}

struct Keys {
    server_secret: String,
    server_public: String,
    client_secret: String,
}

/// One run: start the receiver, then the sender; the receiver's rate.
fn run(imp: Impl, peer: Option<&PathBuf>, keys: &Keys, size: usize, count: u64) -> f64 {
    let (size, count) = (size.to_string(), count.to_string());
    let mut recv = command(imp, peer, "recv")
        .args(["tcp://127.0.0.1:*", &size, &count, &keys.server_secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the receiver");
    let mut lines = BufReader::new(recv.stdout.take().unwrap()).lines();
    let ep = expect_line(&mut lines, "endpoint");
    let mut send = command(imp, peer, "send")
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
    let rate: f64 = expect_line(&mut lines, "rate").parse().unwrap();
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

/// Lines arriving on stdin, read by a thread; disconnected at end of file.
fn stdin_lines() -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A child process: `recv|send|pub|sub IMPL EP SIZE COUNT SECRET [SERVER_PUBLIC]`.
fn child(args: &[String]) {
    let (role, imp, ep) = (&args[0], &args[1], &args[2]);
    let size: usize = args[3].parse().unwrap();
    let count: u64 = args[4].parse().unwrap();
    let mut o = Options::default();
    o.curve_secret_key = Some(CurveSecretKey::parse(args[5].as_bytes()).unwrap());
    if role == "pub" || role == "sub" {
        let hwm = (count as usize).min(Options::MAX_HWM);
        o.send_hwm = hwm;
        o.recv_hwm = hwm;
    }
    if role == "recv" || role == "pub" {
        o.curve_server = true;
    } else {
        o.curve_server_key = Some(CurvePublicKey::parse(args[6].as_bytes()).unwrap());
    }
    let ep = ep.replace('*', "0");
    match imp.as_str() {
        "compio" => omq_compio::runtime().unwrap().block_on(async {
            use omq_compio::{Message, Socket, SocketType};
            async fn sleep(d: Duration) {
                compio::time::sleep(d).await
            }
            async fn parent_done() {
                compio::runtime::spawn_blocking(wait_for_parent)
                    .await
                    .unwrap();
            }
            async fn close(s: Socket) {
                compio::time::timeout(Duration::from_secs(60), s.close())
                    .await
                    .expect("close");
            }
            play!(role, o, ep, size, count);
        }),
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                use omq_tokio::{Message, Socket, SocketType};
                async fn sleep(d: Duration) {
                    tokio::time::sleep(d).await
                }
                async fn parent_done() {
                    tokio::task::spawn_blocking(wait_for_parent).await.unwrap();
                }
                async fn close(s: Socket) {
                    tokio::time::timeout(Duration::from_secs(60), s.close())
                        .await
                        .expect("close");
                }
                play!(role, o, ep, size, count);
            }),
    }
}

/// In a sender: waits until the parent closes our stdin (the receiver has every message).
fn wait_for_parent() {
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
}
