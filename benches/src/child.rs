//! The processes the parent starts: `--child ROLE IMPL TRANSPORT ENDPOINT SIZE COUNT`.
//!
//! Roles and what they print (one line each, in this order):
//! - `pull`: binds; `endpoint EP`; receives COUNT messages; `done T` at the last one.
//! - `push`: connects; sends COUNT messages, with `mark T N` once N = COUNT / 10 are sent (the
//!   warm-up); closes once the parent closes its stdin.
//!
//! T is the wall clock in nanoseconds since the Unix epoch, comparable between processes. The
//! parent's rate is the messages sent after the marks over the time from the earliest mark to
//! the receiver's last message: messages the receiver had buffered before the window opened
//! cannot inflate it (with 1 MiB messages, both HWMs together hold the whole run).
//! - `rep`: binds; `endpoint EP`; echoes requests until its stdin closes.
//! - `req`: connects; a warm-up of COUNT / 10 round trips, then COUNT timed ones;
//!   `latency P50 P99 MEAN` in microseconds.
//! - `pub`: binds; `endpoint EP`; warm-up messages until a line on stdin, COUNT messages, then
//!   end markers until stdin closes.
//! - `sub`: connects; `ready` at the first warm-up message; `got N` after COUNT messages (or the
//!   first end marker).
//! - `inproc-thr`: PUSH/PULL between two threads of this process, timed the same way;
//!   `rate MSG_PER_S`.
//! - `inproc-thr-fresh`: the same with a new message per send with the payload's bytes copied
//!   in, by every implementation (libzmq's sender allocates per send in every role, as
//!   `remote_thr` does, but copies only in this one).
//! - `inproc-lat`: REQ/REP between two threads, with the `latency` line of `req`.
//!
//! Every child ends with `usage CPU_SECONDS PEAK_RSS_KIB FILE_RSS_KIB` (the whole process, from
//! `/proc`: CPU time, peak RSS, and the file-backed part of RSS at exit).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::Impl;

/// What a child was asked to do.
#[derive(Debug)]
struct Job {
    role: String,
    ep: String,
    size: usize,
    count: u64,
}

impl Job {
    /// The messages received before the timed window opens.
    fn warm(&self) -> u64 {
        (self.count / 10).max(1)
    }
}

/// Message tags on PUB/SUB: warm-up, counted, end.
const WARM: u8 = b'w';
const REAL: u8 = b'm';
const END: u8 = b'e';

pub(crate) fn main(args: &[String]) {
    let imp = Impl::parse(&args[1]).expect("implementation");
    let job = Job {
        role: args[0].clone(),
        ep: args[3].clone(),
        size: args[4].parse().expect("size"),
        count: args[5].parse().expect("count"),
    };
    match imp {
        Impl::Libzmq => libzmq::run(&job),
        Impl::Raw => raw::run(&job),
        Impl::ZmqRs => tokio_rt::runtime(false).block_on(zmqrs::run(&job)),
        Impl::OmqTokio => tokio_rt::runtime(false).block_on(omq_tokio::run(&job)),
        Impl::OmqTokioMt => {
            tokio_rt::MULTI.store(true, std::sync::atomic::Ordering::Relaxed);
            tokio_rt::runtime(true).block_on(omq_tokio::run(&job));
        }
        Impl::OmqCompio => compio_rt::block_on(omq_compio::run(&job)),
    }
    report_usage();
}

/// Prints the `usage` line: user + system CPU time of every thread, peak RSS, and the
/// file-backed part of RSS now (the binary's and libraries' pages).
fn report_usage() {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the line, in USER_HZ (100 per second on Linux).
    let ticks: u64 = fields
        .get(11..13)
        .map_or(0, |t| t.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |field: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    let (rss_kib, file_kib) = (kib("VmHWM:"), kib("RssFile:"));
    println!("usage {:.2} {rss_kib} {file_kib}", ticks as f64 / 100.0);
}

/// The wall clock in nanoseconds since the Unix epoch.
fn unix_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// A sender's warm-up is over: `sent` messages are out.
fn print_mark(sent: u64) {
    println!("mark {} {sent}", unix_ns());
}

/// A receiver has its last message.
fn print_done() {
    println!("done {}", unix_ns());
}

/// An in-process sender's warm-up is over, told to the receiving thread.
type Mark = mpsc::Sender<(Instant, u64)>;

/// The inproc rate: messages after the mark over the time from the mark to now.
fn print_inproc_rate(count: u64, mark: &mpsc::Receiver<(Instant, u64)>) {
    let (at, sent) = mark.recv().expect("the sender's mark");
    println!(
        "rate {:.1}",
        (count - sent) as f64 / at.elapsed().as_secs_f64()
    );
}

/// The latency line of a requester from each round trip's time.
fn print_latency(mut rtts: Vec<Duration>) {
    rtts.sort_unstable();
    let at = |q: f64| rtts[((rtts.len() - 1) as f64 * q).round() as usize];
    let mean = rtts.iter().sum::<Duration>() / rtts.len() as u32;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "latency {:.2} {:.2} {:.2}",
        us(at(0.5)),
        us(at(0.99)),
        us(mean)
    );
}

/// Lines from the parent on stdin, read by a thread; disconnected at end of file.
fn parent_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Blocks until the parent closes our stdin.
fn wait_for_parent() {
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
}

/// A PUB/SUB payload of `size` bytes (at least one) starting with `tag`.
fn tagged(size: usize, tag: u8) -> Vec<u8> {
    let mut v = vec![0u8; size.max(1)];
    v[0] = tag;
    v
}

/// The inproc endpoint of this process.
fn inproc_endpoint() -> String {
    format!("inproc://omq-bench-{}", std::process::id())
}

/// The tokio runtimes of the omq-tokio and zmq.rs children.
mod tokio_rt {
    use std::future::Future;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// Whether this process runs omq-tokio on the multi-thread runtime.
    pub(super) static MULTI: AtomicBool = AtomicBool::new(false);

    pub(super) fn runtime(multi: bool) -> tokio::runtime::Runtime {
        if multi {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime")
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime")
        }
    }

    /// Runs `f` to completion on a new runtime of this process's kind (a second inproc thread).
    pub(super) fn block_on<F: Future>(f: F) -> F::Output {
        runtime(MULTI.load(Ordering::Relaxed)).block_on(f)
    }

    pub(super) async fn sleep(d: Duration) {
        tokio::time::sleep(d).await;
    }

    pub(super) async fn wait_for_parent() {
        tokio::task::spawn_blocking(super::wait_for_parent)
            .await
            .expect("stdin thread");
    }

    pub(super) async fn timeout<F: Future>(d: Duration, f: F) -> Option<F::Output> {
        tokio::time::timeout(d, f).await.ok()
    }
}

/// The compio runtime of the omq-compio children.
mod compio_rt {
    use std::future::Future;
    use std::time::Duration;

    pub(super) fn block_on<F: Future>(f: F) -> F::Output {
        omq_compio::runtime().expect("compio runtime").block_on(f)
    }

    pub(super) async fn sleep(d: Duration) {
        compio::time::sleep(d).await;
    }

    pub(super) async fn wait_for_parent() {
        compio::runtime::spawn_blocking(super::wait_for_parent)
            .await
            .expect("stdin thread");
    }

    pub(super) async fn timeout<F: Future>(d: Duration, f: F) -> Option<F::Output> {
        compio::time::timeout(d, f).await.ok()
    }
}

/// Every role over one omq backend; both backends have the same API, so this is written once.
macro_rules! omq_roles {
    ($module:ident, $krate:ident, $rt:ident) => {
        mod $module {
            use std::time::{Duration, Instant};

            use $krate::{Message, Options, Socket, SocketType};

            use super::{END, Job, REAL, WARM, $rt as rt};

            /// How long closing may take before the child gives up on it.
            const CLOSE: Duration = Duration::from_secs(60);

            fn socket(kind: SocketType, job: &Job) -> Socket {
                let mut o = Options::default();
                if matches!(kind, SocketType::Pub | SocketType::Sub) {
                    // Nothing is dropped: the rate counts what every subscriber received.
                    let hwm = usize::try_from(job.count)
                        .unwrap_or(usize::MAX)
                        .clamp(1000, Options::MAX_HWM);
                    o.send_hwm = hwm;
                    o.recv_hwm = hwm;
                }
                Socket::new(kind, o).expect("socket")
            }

            async fn receive(pull: &Socket, job: &Job) {
                for _ in 0..job.count {
                    let m = pull.recv().await.expect("recv");
                    debug_assert_eq!(m.size(), job.size);
                }
            }

            /// Sends COUNT messages; `mark` runs once the warm-up is out. Clones of one
            /// payload, or with `fresh` a new message per send, copied from the payload bytes.
            async fn send(push: &Socket, job: &Job, fresh: bool, mark: impl FnOnce(u64)) {
                let bytes = vec![0u8; job.size];
                let payload = Message::from(bytes.clone());
                let next = || {
                    if fresh {
                        Message::from(&bytes[..])
                    } else {
                        payload.clone()
                    }
                };
                let warm = job.warm();
                for _ in 0..warm {
                    push.send(next()).await.expect("send");
                }
                mark(warm);
                for _ in warm..job.count {
                    push.send(next()).await.expect("send");
                }
            }

            async fn echo(rep: &Socket, rounds: u64) {
                for _ in 0..rounds {
                    let m = rep.recv().await.expect("recv");
                    rep.send(m).await.expect("send");
                }
            }

            async fn round_trips(req: &Socket, job: &Job) {
                let payload = Message::from(vec![0u8; job.size]);
                for _ in 0..job.warm() {
                    req.send(payload.clone()).await.expect("send");
                    req.recv().await.expect("recv");
                }
                let mut rtts = Vec::with_capacity(job.count as usize);
                for _ in 0..job.count {
                    let t = Instant::now();
                    req.send(payload.clone()).await.expect("send");
                    req.recv().await.expect("recv");
                    rtts.push(t.elapsed());
                }
                super::print_latency(rtts);
            }

            async fn close(s: Socket) {
                rt::timeout(CLOSE, s.close()).await.expect("close in time");
            }

            async fn bind(s: &Socket, ep: &str) {
                let bound = s.bind(ep).await.expect("bind");
                println!("endpoint {bound}");
            }

            pub(super) async fn run(job: &Job) {
                match job.role.as_str() {
                    "pull" => {
                        let pull = socket(SocketType::Pull, job);
                        bind(&pull, &job.ep).await;
                        receive(&pull, job).await;
                        super::print_done();
                    }
                    "push" => {
                        let push = socket(SocketType::Push, job);
                        push.connect(&job.ep).await.expect("connect");
                        send(&push, job, false, super::print_mark).await;
                        rt::wait_for_parent().await;
                        close(push).await;
                    }
                    "rep" => {
                        let rep = socket(SocketType::Rep, job);
                        bind(&rep, &job.ep).await;
                        echo(&rep, job.warm() + job.count).await;
                        rt::wait_for_parent().await;
                        close(rep).await;
                    }
                    "req" => {
                        let req = socket(SocketType::Req, job);
                        req.connect(&job.ep).await.expect("connect");
                        round_trips(&req, job).await;
                        close(req).await;
                    }
                    "pub" => {
                        let publisher = socket(SocketType::Pub, job);
                        bind(&publisher, &job.ep).await;
                        let parent = super::parent_lines();
                        let with = |tag| Message::from(super::tagged(job.size, tag));
                        let (warm, real, end) = (with(WARM), with(REAL), with(END));
                        while parent.try_recv().is_err() {
                            publisher.send(warm.clone()).await.expect("send");
                            rt::sleep(Duration::from_millis(1)).await;
                        }
                        for _ in 0..job.count {
                            publisher.send(real.clone()).await.expect("send");
                        }
                        while !matches!(
                            parent.try_recv(),
                            Err(std::sync::mpsc::TryRecvError::Disconnected)
                        ) {
                            publisher.send(end.clone()).await.expect("send");
                            rt::sleep(Duration::from_millis(1)).await;
                        }
                        close(publisher).await;
                    }
                    "sub" => {
                        let sub = socket(SocketType::Sub, job);
                        sub.subscribe("").expect("subscribe");
                        sub.connect(&job.ep).await.expect("connect");
                        let tag = |m: Message| m.first().map_or(0, |f| f[0]);
                        while tag(sub.recv().await.expect("recv")) != WARM {}
                        println!("ready");
                        let mut got = 0;
                        while got < job.count {
                            match tag(sub.recv().await.expect("recv")) {
                                REAL => got += 1,
                                END => break,
                                _ => {}
                            }
                        }
                        println!("got {got}");
                    }
                    "inproc-thr" | "inproc-thr-fresh" => {
                        let fresh = job.role == "inproc-thr-fresh";
                        let ep = super::inproc_endpoint();
                        let pull = socket(SocketType::Pull, job);
                        pull.bind(&ep).await.expect("bind");
                        let (done, finished) = std::sync::mpsc::channel::<()>();
                        let (mark, marked) = std::sync::mpsc::channel();
                        let sender = {
                            let (ep, size, count) = (ep.clone(), job.size, job.count);
                            std::thread::spawn(move || {
                                rt::block_on(async move {
                                    let job = Job {
                                        role: String::new(),
                                        ep,
                                        size,
                                        count,
                                    };
                                    let push = socket(SocketType::Push, &job);
                                    push.connect(&job.ep).await.expect("connect");
                                    let mark: super::Mark = mark;
                                    send(&push, &job, fresh, |n| {
                                        let _ = mark.send((Instant::now(), n));
                                    })
                                    .await;
                                    while finished.try_recv().is_err() {
                                        rt::sleep(Duration::from_millis(1)).await;
                                    }
                                    close(push).await;
                                })
                            })
                        };
                        receive(&pull, job).await;
                        super::print_inproc_rate(job.count, &marked);
                        let _ = done.send(());
                        sender.join().expect("sender thread");
                    }
                    "inproc-lat" => {
                        let ep = super::inproc_endpoint();
                        let rounds = job.warm() + job.count;
                        // Each thread makes its own socket: a socket belongs to its runtime.
                        let (bound, is_bound) = std::sync::mpsc::channel::<()>();
                        let server = std::thread::spawn({
                            let (ep, job) = (
                                ep.clone(),
                                Job {
                                    role: String::new(),
                                    ep: String::new(),
                                    size: 0,
                                    count: 0,
                                },
                            );
                            move || {
                                rt::block_on(async move {
                                    let rep = socket(SocketType::Rep, &job);
                                    rep.bind(&ep).await.expect("bind");
                                    let _ = bound.send(());
                                    echo(&rep, rounds).await;
                                    close(rep).await;
                                })
                            }
                        });
                        is_bound.recv().expect("server bound");
                        let req = socket(SocketType::Req, job);
                        req.connect(&ep).await.expect("connect");
                        round_trips(&req, job).await;
                        server.join().expect("server thread");
                        close(req).await;
                    }
                    other => panic!("unknown role {other}"),
                }
            }
        }
    };
}

omq_roles!(omq_tokio, omq_tokio, tokio_rt);
omq_roles!(omq_compio, omq_compio, compio_rt);

/// libzmq's roles, through the `zmq` crate: what `local_thr`/`remote_thr` and
/// `local_lat`/`remote_lat` do (a new message of `size` bytes per send, one message reused for
/// receiving).
mod libzmq {
    use std::time::Instant;

    use super::{END, Job, REAL, WARM};

    fn bind(s: &zmq::Socket, ep: &str) {
        s.bind(ep).expect("bind");
        let bound = s.get_last_endpoint().expect("endpoint").expect("utf-8");
        println!("endpoint {bound}");
    }

    fn receive(pull: &zmq::Socket, job: &Job) {
        let mut msg = zmq::Message::new();
        for _ in 0..job.count {
            pull.recv(&mut msg, 0).expect("recv");
            debug_assert_eq!(msg.len(), job.size);
        }
    }

    /// Sends COUNT messages; `mark` runs once the warm-up is out. A new message of the size
    /// per send (`zmq_msg_init_size`); with `fresh` the payload's bytes are copied into it, as
    /// omq's sender does in that pattern.
    fn send(push: &zmq::Socket, job: &Job, fresh: bool, mark: impl FnOnce(u64)) {
        let bytes = vec![0u8; job.size];
        let next = || {
            if fresh {
                zmq::Message::from(&bytes[..])
            } else {
                zmq::Message::with_size(job.size)
            }
        };
        let warm = job.warm();
        for _ in 0..warm {
            push.send(next(), 0).expect("send");
        }
        mark(warm);
        for _ in warm..job.count {
            push.send(next(), 0).expect("send");
        }
    }

    fn echo(rep: &zmq::Socket, rounds: u64) {
        for _ in 0..rounds {
            let mut msg = zmq::Message::new();
            rep.recv(&mut msg, 0).expect("recv");
            rep.send(msg, 0).expect("send");
        }
    }

    fn round_trips(req: &zmq::Socket, job: &Job) {
        let mut msg = zmq::Message::new();
        for _ in 0..job.warm() {
            req.send(zmq::Message::with_size(job.size), 0)
                .expect("send");
            req.recv(&mut msg, 0).expect("recv");
        }
        let mut rtts = Vec::with_capacity(job.count as usize);
        for _ in 0..job.count {
            let t = Instant::now();
            req.send(zmq::Message::with_size(job.size), 0)
                .expect("send");
            req.recv(&mut msg, 0).expect("recv");
            rtts.push(t.elapsed());
        }
        super::print_latency(rtts);
    }

    pub(super) fn run(job: &Job) {
        let ctx = zmq::Context::new();
        let hwm = i32::try_from(job.count).unwrap_or(i32::MAX).max(1000);
        match job.role.as_str() {
            "pull" => {
                let pull = ctx.socket(zmq::PULL).expect("socket");
                bind(&pull, &job.ep);
                receive(&pull, job);
                super::print_done();
            }
            "push" => {
                let push = ctx.socket(zmq::PUSH).expect("socket");
                push.connect(&job.ep).expect("connect");
                send(&push, job, false, super::print_mark);
                // The receiver has every message before the socket closes: libzmq can lose
                // the tail of what it sent over ipc when it closes right after sending.
                super::wait_for_parent();
            }
            "rep" => {
                let rep = ctx.socket(zmq::REP).expect("socket");
                bind(&rep, &job.ep);
                echo(&rep, job.warm() + job.count);
                super::wait_for_parent();
            }
            "req" => {
                let req = ctx.socket(zmq::REQ).expect("socket");
                req.connect(&job.ep).expect("connect");
                round_trips(&req, job);
            }
            "pub" => {
                let publisher = ctx.socket(zmq::PUB).expect("socket");
                publisher.set_sndhwm(hwm).expect("hwm");
                bind(&publisher, &job.ep);
                let parent = super::parent_lines();
                let with = |tag| super::tagged(job.size, tag);
                let (warm, real, end) = (with(WARM), with(REAL), with(END));
                while parent.try_recv().is_err() {
                    publisher.send(&warm[..], 0).expect("send");
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                for _ in 0..job.count {
                    publisher.send(&real[..], 0).expect("send");
                }
                while !matches!(
                    parent.try_recv(),
                    Err(std::sync::mpsc::TryRecvError::Disconnected)
                ) {
                    publisher.send(&end[..], 0).expect("send");
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                // libzmq 4.3's zmq_ctx_term can wait forever in a publisher whose subscribers
                // are gone, even with linger 0 (it cost a full run a 120 s timeout and a
                // round). Nothing is left to send: report and leave without terminating it.
                publisher.set_linger(0).expect("linger");
                super::report_usage();
                std::process::exit(0);
            }
            "sub" => {
                let sub = ctx.socket(zmq::SUB).expect("socket");
                sub.set_rcvhwm(hwm).expect("hwm");
                sub.set_subscribe(b"").expect("subscribe");
                sub.connect(&job.ep).expect("connect");
                let mut msg = zmq::Message::new();
                loop {
                    sub.recv(&mut msg, 0).expect("recv");
                    if msg.first() == Some(&WARM) {
                        break;
                    }
                }
                println!("ready");
                let mut got = 0;
                while got < job.count {
                    sub.recv(&mut msg, 0).expect("recv");
                    match msg.first() {
                        Some(&REAL) => got += 1,
                        Some(&END) => break,
                        _ => {}
                    }
                }
                println!("got {got}");
                sub.set_linger(0).expect("linger");
            }
            // libzmq's sender makes a new message per send in every role; in the fresh one it
            // also copies the payload into it, as omq's does.
            "inproc-thr" | "inproc-thr-fresh" => {
                let fresh = job.role == "inproc-thr-fresh";
                let ep = super::inproc_endpoint();
                let pull = ctx.socket(zmq::PULL).expect("socket");
                pull.bind(&ep).expect("bind");
                let push = ctx.socket(zmq::PUSH).expect("socket");
                let (size, count) = (job.size, job.count);
                let (mark, marked) = std::sync::mpsc::channel();
                let sender = std::thread::spawn(move || {
                    push.connect(&ep).expect("connect");
                    let job = Job {
                        role: String::new(),
                        ep,
                        size,
                        count,
                    };
                    let mark: super::Mark = mark;
                    send(&push, &job, fresh, |n| {
                        let _ = mark.send((Instant::now(), n));
                    });
                });
                receive(&pull, job);
                super::print_inproc_rate(job.count, &marked);
                sender.join().expect("sender thread");
            }
            "inproc-lat" => {
                let ep = super::inproc_endpoint();
                let rep = ctx.socket(zmq::REP).expect("socket");
                rep.bind(&ep).expect("bind");
                let rounds = job.warm() + job.count;
                let server = std::thread::spawn(move || echo(&rep, rounds));
                let req = ctx.socket(zmq::REQ).expect("socket");
                req.connect(&ep).expect("connect");
                round_trips(&req, job);
                server.join().expect("server thread");
            }
            other => panic!("unknown role {other}"),
        }
    }
}

/// zmq.rs's roles (tcp and ipc; it has no inproc).
mod zmqrs {
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use zeromq::{Socket, SocketRecv, SocketSend, ZmqMessage};

    use super::{END, Job, REAL, WARM};

    async fn bind(s: &mut impl Socket, ep: &str) {
        let bound = s.bind(ep).await.expect("bind");
        println!("endpoint {bound}");
    }

    fn tag(m: &ZmqMessage) -> u8 {
        m.get(0).and_then(|f| f.first().copied()).unwrap_or(0)
    }

    pub(super) async fn run(job: &Job) {
        let payload = Bytes::from(vec![0u8; job.size]);
        match job.role.as_str() {
            "pull" => {
                let mut pull = zeromq::PullSocket::new();
                bind(&mut pull, &job.ep).await;
                for _ in 0..job.count {
                    pull.recv().await.expect("recv");
                }
                super::print_done();
            }
            "push" => {
                let mut push = zeromq::PushSocket::new();
                push.connect(&job.ep).await.expect("connect");
                for i in 0..job.count {
                    if i == job.warm() {
                        super::print_mark(i);
                    }
                    push.send(ZmqMessage::from(payload.clone()))
                        .await
                        .expect("send");
                }
                super::tokio_rt::wait_for_parent().await;
                push.close().await;
            }
            "rep" => {
                let mut rep = zeromq::RepSocket::new();
                bind(&mut rep, &job.ep).await;
                for _ in 0..job.warm() + job.count {
                    let m = rep.recv().await.expect("recv");
                    rep.send(m).await.expect("send");
                }
                super::tokio_rt::wait_for_parent().await;
                rep.close().await;
            }
            "req" => {
                let mut req = zeromq::ReqSocket::new();
                req.connect(&job.ep).await.expect("connect");
                for _ in 0..job.warm() {
                    req.send(ZmqMessage::from(payload.clone()))
                        .await
                        .expect("send");
                    req.recv().await.expect("recv");
                }
                let mut rtts = Vec::with_capacity(job.count as usize);
                for _ in 0..job.count {
                    let t = Instant::now();
                    req.send(ZmqMessage::from(payload.clone()))
                        .await
                        .expect("send");
                    req.recv().await.expect("recv");
                    rtts.push(t.elapsed());
                }
                super::print_latency(rtts);
                req.close().await;
            }
            "pub" => {
                let mut publisher = zeromq::PubSocket::new();
                bind(&mut publisher, &job.ep).await;
                let parent = super::parent_lines();
                let with = |tag| Bytes::from(super::tagged(job.size, tag));
                let (warm, real, end) = (with(WARM), with(REAL), with(END));
                while parent.try_recv().is_err() {
                    publisher
                        .send(ZmqMessage::from(warm.clone()))
                        .await
                        .expect("send");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                for _ in 0..job.count {
                    publisher
                        .send(ZmqMessage::from(real.clone()))
                        .await
                        .expect("send");
                }
                while !matches!(
                    parent.try_recv(),
                    Err(std::sync::mpsc::TryRecvError::Disconnected)
                ) {
                    publisher
                        .send(ZmqMessage::from(end.clone()))
                        .await
                        .expect("send");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                publisher.close().await;
            }
            "sub" => {
                let mut sub = zeromq::SubSocket::new();
                sub.subscribe("").await.expect("subscribe");
                sub.connect(&job.ep).await.expect("connect");
                while tag(&sub.recv().await.expect("recv")) != WARM {}
                println!("ready");
                let mut got = 0;
                while got < job.count {
                    match tag(&sub.recv().await.expect("recv")) {
                        REAL => got += 1,
                        END => break,
                        _ => {}
                    }
                }
                println!("got {got}");
            }
            other => panic!("zmq.rs cannot play {other}"),
        }
    }
}

/// The raw-socket ceiling: std sockets moving the same payload bytes, with no framing, in
/// 1 MiB writes (throughput) or one write per message (round trips).
mod raw {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::time::Instant;

    use super::Job;

    const CHUNK: usize = 1024 * 1024;

    trait Stream: Read + Write {}
    impl<T: Read + Write> Stream for T {}

    /// Binds `ep` (`tcp://HOST:PORT` or `ipc://PATH`), prints the endpoint, accepts one peer.
    fn accept(ep: &str) -> Box<dyn Stream> {
        if let Some(addr) = ep.strip_prefix("tcp://") {
            let listener = TcpListener::bind(addr).expect("bind");
            println!("endpoint tcp://{}", listener.local_addr().expect("address"));
            let (s, _) = listener.accept().expect("accept");
            s.set_nodelay(true).expect("nodelay");
            Box::new(s)
        } else {
            let path = ep.strip_prefix("ipc://").expect("tcp:// or ipc://");
            let listener = UnixListener::bind(path).expect("bind");
            println!("endpoint {ep}");
            let (s, _) = listener.accept().expect("accept");
            let _ = std::fs::remove_file(path);
            Box::new(s)
        }
    }

    fn connect(ep: &str) -> Box<dyn Stream> {
        if let Some(addr) = ep.strip_prefix("tcp://") {
            let s = TcpStream::connect(addr).expect("connect");
            s.set_nodelay(true).expect("nodelay");
            Box::new(s)
        } else {
            let path = ep.strip_prefix("ipc://").expect("tcp:// or ipc://");
            Box::new(UnixStream::connect(path).expect("connect"))
        }
    }

    pub(super) fn run(job: &Job) {
        let total = job.size as u64 * job.count;
        let mut buf = vec![0u8; CHUNK.max(job.size)];
        match job.role.as_str() {
            "pull" => {
                let mut s = accept(&job.ep);
                let mut got = 0u64;
                while got < total {
                    let n = s.read(&mut buf).expect("read");
                    assert!(n > 0, "the sender closed early");
                    got += n as u64;
                }
                super::print_done();
            }
            "push" => {
                let mut s = connect(&job.ep);
                let warm = job.size as u64 * job.warm();
                let mut sent = 0;
                while sent < total {
                    if sent >= warm && sent - warm < CHUNK as u64 {
                        // The messages whose bytes are all out.
                        super::print_mark(sent / job.size as u64);
                    }
                    let n = (total - sent).min(CHUNK as u64) as usize;
                    s.write_all(&buf[..n]).expect("write");
                    sent += n as u64;
                }
                super::wait_for_parent();
            }
            "rep" => {
                let mut s = accept(&job.ep);
                for _ in 0..job.warm() + job.count {
                    s.read_exact(&mut buf[..job.size]).expect("read");
                    s.write_all(&buf[..job.size]).expect("write");
                }
                super::wait_for_parent();
            }
            "req" => {
                let mut s = connect(&job.ep);
                for _ in 0..job.warm() {
                    s.write_all(&buf[..job.size]).expect("write");
                    s.read_exact(&mut buf[..job.size]).expect("read");
                }
                let mut rtts = Vec::with_capacity(job.count as usize);
                for _ in 0..job.count {
                    let t = Instant::now();
                    s.write_all(&buf[..job.size]).expect("write");
                    s.read_exact(&mut buf[..job.size]).expect("read");
                    rtts.push(t.elapsed());
                }
                super::print_latency(rtts);
            }
            other => panic!("the raw ceiling cannot play {other}"),
        }
    }
}
