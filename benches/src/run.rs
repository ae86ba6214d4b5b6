//! The parent: plans the cases, runs every implementation round by round, writes the results.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::Impl;

/// Everything one harness run measured, as written to the results JSON.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Results {
    /// The command line that produced these results.
    pub(crate) command: String,
    /// `quick` or `full`.
    pub(crate) mode: String,
    /// Rounds per case.
    pub(crate) rounds: usize,
    pub(crate) machine: Machine,
    pub(crate) cases: Vec<Case>,
}

/// Where the results were measured.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Machine {
    pub(crate) date: String,
    pub(crate) cpu: String,
    pub(crate) cpus: usize,
    pub(crate) memory_gib: f64,
    pub(crate) kernel: String,
    pub(crate) rustc: String,
    pub(crate) libzmq: String,
    pub(crate) zmq_rs: String,
}

/// One implementation in one configuration, with every round's run.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Case {
    /// `pushpull`, `reqrep`, `pubsub`, `fanin` or `memory`.
    pub(crate) pattern: String,
    pub(crate) transport: String,
    /// Message size in bytes.
    pub(crate) size: usize,
    /// Subscribers (pubsub) or senders (fanin); 1 otherwise.
    pub(crate) peers: usize,
    /// Messages per run (per subscriber for pubsub; round trips for reqrep).
    pub(crate) count: u64,
    #[serde(rename = "impl")]
    pub(crate) imp: Impl,
    pub(crate) runs: Vec<Run>,
    /// What went wrong in rounds that produced no result.
    pub(crate) failures: Vec<String>,
}

/// One round's result.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Run {
    /// Messages per second (aggregate over subscribers for pubsub).
    pub(crate) rate: Option<f64>,
    pub(crate) latency: Option<Latency>,
    /// CPU time and peak RSS of each process.
    pub(crate) procs: Vec<Usage>,
}

/// Round-trip times in microseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Latency {
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) mean_us: f64,
}

/// What one process used.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Usage {
    pub(crate) role: String,
    pub(crate) cpu_s: f64,
    /// Peak resident set size (VmHWM).
    pub(crate) rss_kib: u64,
    /// The file-backed part of the resident set at exit (the binary's and libraries' pages);
    /// 0 in results from before it was recorded.
    #[serde(default)]
    pub(crate) file_kib: u64,
}

const PATTERNS: [&str; 6] = ["pushpull", "fresh", "reqrep", "pubsub", "fanin", "memory"];
const SIZES: [usize; 7] = [8, 32, 128, 1024, 8192, 65536, 1 << 20];

/// What to run, from the command line.
struct Plan {
    quick: bool,
    rounds: usize,
    impls: Vec<Impl>,
    patterns: Vec<String>,
    transports: Vec<String>,
    sizes: Vec<usize>,
    out: Option<PathBuf>,
    markdown: Option<PathBuf>,
}

fn list(v: &str) -> Vec<String> {
    v.split(',').map(str::to_owned).collect()
}

impl Plan {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut plan = Plan {
            quick: false,
            rounds: 0,
            impls: Impl::DEFAULT.to_vec(),
            patterns: PATTERNS.iter().map(|p| (*p).to_owned()).collect(),
            transports: list("tcp,ipc,inproc"),
            sizes: SIZES.to_vec(),
            out: None,
            markdown: None,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{a} needs a value"))
            };
            match a.as_str() {
                "--quick" => plan.quick = true,
                "--rounds" => {
                    plan.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?;
                }
                "--impls" => {
                    plan.impls = list(&value()?)
                        .iter()
                        .map(|n| {
                            Impl::parse(n).ok_or_else(|| format!("unknown implementation {n}"))
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--patterns" | "--pattern" => plan.patterns = list(&value()?),
                "--transports" | "--transport" => plan.transports = list(&value()?),
                "--sizes" | "--size" => {
                    plan.sizes = list(&value()?)
                        .iter()
                        .map(|s| s.parse().map_err(|e| format!("--sizes: {e}")))
                        .collect::<Result<_, _>>()?;
                }
                "--out" => plan.out = Some(value()?.into()),
                "--markdown" => plan.markdown = Some(value()?.into()),
                other => return Err(format!("unknown argument {other}")),
            }
        }
        if let Some(p) = plan
            .patterns
            .iter()
            .find(|p| !PATTERNS.contains(&p.as_str()))
        {
            return Err(format!("unknown pattern {p}"));
        }
        if plan.rounds == 0 {
            plan.rounds = if plan.quick { 3 } else { 5 };
        }
        Ok(plan)
    }

    /// Messages per PUSH/PULL run: a few tenths of a second at libzmq's rate here (quick), twice
    /// that in a full run.
    fn count(&self, size: usize) -> u64 {
        let n = match size {
            0..=128 => 1_000_000,
            129..=1024 => 300_000,
            1025..=8192 => 60_000,
            8193..=65536 => 16_000,
            _ => 1_000,
        };
        if self.quick { n } else { n * 2 }
    }
}

/// `bench [options]`: runs the plan, prints the tables, writes JSON and markdown when asked.
pub(crate) fn command(args: &[String]) -> Result<(), String> {
    let plan = Plan::parse(args)?;
    let mut results = Results {
        command: std::iter::once("bench".to_owned())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
        mode: if plan.quick { "quick" } else { "full" }.into(),
        rounds: plan.rounds,
        machine: Machine::describe(),
        cases: Vec::new(),
    };
    // Round by round over every case, rather than all rounds of one case in a row: the
    // machine has slow phases that last tens of seconds, and one of those then costs each case
    // a round instead of costing one case every round (its median with it). Within a round,
    // the implementations of a configuration still run back to back.
    results.cases = plan
        .configs()
        .iter()
        .flat_map(|config| {
            config.impls.iter().map(|&imp| Case {
                pattern: config.pattern.clone(),
                transport: config.transport.clone(),
                size: config.size,
                peers: config.peers,
                count: config.count_for(imp),
                imp,
                runs: Vec::new(),
                failures: Vec::new(),
            })
        })
        .collect();
    let total = results.cases.len() * plan.rounds;
    let mut done = 0;
    for round in 0..plan.rounds {
        for case in &mut results.cases {
            done += 1;
            eprint!(
                "\r[{done}/{total}] {} {} {} B x{} {} round {}/{}\x1b[K",
                case.pattern,
                case.transport,
                case.size,
                case.peers,
                case.imp.name(),
                round + 1,
                plan.rounds
            );
            match run_case(case) {
                Ok(run) => case.runs.push(run),
                Err(e) => {
                    eprintln!("\n{} failed: {e}", case.imp.name());
                    case.failures.push(e);
                }
            }
        }
        if let Some(out) = &plan.out {
            write_json(&results, out)?;
        }
    }
    eprintln!();
    let markdown = crate::report::render(&results);
    println!("{markdown}");
    if let Some(path) = &plan.markdown {
        std::fs::write(path, &markdown).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn write_json(results: &Results, out: &PathBuf) -> Result<(), String> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let json = serde_json::to_string_pretty(results).map_err(|e| e.to_string())?;
    std::fs::write(out, json + "\n").map_err(|e| format!("{}: {e}", out.display()))
}

/// One configuration and the implementations that can play it.
struct Config {
    pattern: String,
    transport: String,
    size: usize,
    peers: usize,
    count: u64,
    impls: Vec<Impl>,
}

impl Config {
    /// Messages per run for `imp`: zmq.rs moves small messages some 30 times slower than the
    /// others, so it gets a tenth of the count there (a rate over a shorter window).
    fn count_for(&self, imp: Impl) -> u64 {
        let small_stream =
            self.size < 8192 && matches!(self.pattern.as_str(), "pushpull" | "fanin");
        if imp == Impl::ZmqRs && small_stream {
            (self.count / 10).max(10_000)
        } else {
            self.count
        }
    }
}

impl Plan {
    fn configs(&self) -> Vec<Config> {
        let mut out = Vec::new();
        let has = |p: &str| self.patterns.iter().any(|q| q == p);
        let can = |imp: Impl, pattern: &str, transport: &str| match imp {
            Impl::Raw => transport != "inproc" && matches!(pattern, "pushpull" | "reqrep"),
            // The memory run compares with libzmq; zmq.rs would take minutes over it.
            Impl::ZmqRs => transport != "inproc" && pattern != "memory",
            _ => true,
        };
        let mut add = |pattern: &str, transport: &str, size: usize, peers: usize, count: u64| {
            let impls: Vec<Impl> = self
                .impls
                .iter()
                .copied()
                .filter(|&i| can(i, pattern, transport))
                .collect();
            if !impls.is_empty() {
                out.push(Config {
                    pattern: pattern.into(),
                    transport: transport.into(),
                    size,
                    peers,
                    count,
                    impls,
                });
            }
        };
        let scale = if self.quick { 1 } else { 2 };
        for transport in &self.transports {
            if has("pushpull") {
                for &size in &self.sizes {
                    add("pushpull", transport, size, 1, self.count(size));
                }
            }
        }
        if has("fresh") && self.transports.iter().any(|t| t == "inproc") {
            // inproc PUSH/PULL with a new message per send, from the size that allocates up.
            for size in [128, 1024].into_iter().filter(|s| self.sizes.contains(s)) {
                add("fresh", "inproc", size, 1, self.count(size));
            }
        }
        for transport in &self.transports {
            if has("reqrep") {
                for size in [8, 1024] {
                    add("reqrep", transport, size, 1, 2_000 * scale);
                }
            }
        }
        if has("pubsub") {
            // The same deliveries in all, however many subscribers share them.
            for subs in [4u64, 32] {
                add("pubsub", "tcp", 16, subs as usize, 2_000_000 * scale / subs);
                add(
                    "pubsub",
                    "tcp",
                    16384,
                    subs as usize,
                    100_000 * scale / subs,
                );
            }
        }
        if has("fanin") {
            for size in [8, 1024] {
                add("fanin", "tcp", size, 4, self.count(size));
            }
        }
        if has("memory") {
            add(
                "memory",
                "tcp",
                128,
                1,
                if self.quick { 2_000_000 } else { 10_000_000 },
            );
        }
        out
    }
}

/// Runs one round of a case.
fn run_case(case: &Case) -> Result<Run, String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let imp = case.imp;
    let (size, count) = (case.size, case.count);
    if case.transport == "inproc" {
        let role = match case.pattern.as_str() {
            "reqrep" => "inproc-lat",
            "fresh" => "inproc-thr-fresh",
            _ => "inproc-thr",
        };
        let mut p = Proc::spawn(imp, role, "inproc", "-", size, count)?;
        let mut run = Run::default();
        if role == "inproc-lat" {
            run.latency = Some(parse_latency(&p.expect("latency", deadline)?)?);
        } else {
            run.rate = Some(parse_num(&p.expect("rate", deadline)?)?);
        }
        run.procs.push(p.finish(deadline)?);
        return Ok(run);
    }
    let ep = bind_endpoint(imp, &case.transport);
    match case.pattern.as_str() {
        "reqrep" => {
            let mut rep = Proc::spawn(imp, "rep", &case.transport, &ep, size, count)?;
            let ep = rep.expect("endpoint", deadline)?;
            let mut req = Proc::spawn(imp, "req", &case.transport, &ep, size, count)?;
            let latency = parse_latency(&req.expect("latency", deadline)?)?;
            let procs = vec![req.finish(deadline)?, rep.finish(deadline)?];
            Ok(Run {
                rate: None,
                latency: Some(latency),
                procs,
            })
        }
        "pubsub" => {
            let mut publisher = Proc::spawn(imp, "pub", &case.transport, &ep, size, count)?;
            let ep = publisher.expect("endpoint", deadline)?;
            let mut subs = (0..case.peers)
                .map(|_| Proc::spawn(imp, "sub", &case.transport, &ep, size, count))
                .collect::<Result<Vec<_>, _>>()?;
            for s in &mut subs {
                s.expect("ready", deadline)?;
            }
            let start = Instant::now();
            publisher.say("go")?;
            let mut got = 0.0;
            for s in &mut subs {
                got += parse_num(&s.expect("got", deadline)?)?;
            }
            // From the go to the last subscriber's report.
            let rate = got / start.elapsed().as_secs_f64();
            let mut procs = Vec::new();
            for s in &mut subs {
                procs.push(s.finish(deadline)?);
            }
            procs.push(publisher.finish(deadline)?);
            Ok(Run {
                rate: Some(rate),
                latency: None,
                procs,
            })
        }
        // pushpull, fanin, memory: PULL binds, every PUSH connects and sends its share.
        _ => {
            let share = count / case.peers as u64;
            let total = share * case.peers as u64;
            let mut pull = Proc::spawn(imp, "pull", &case.transport, &ep, size, total)?;
            let ep = pull.expect("endpoint", deadline)?;
            let mut pushes = (0..case.peers)
                .map(|_| Proc::spawn(imp, "push", &case.transport, &ep, size, share))
                .collect::<Result<Vec<_>, _>>()?;
            // From the earliest warm-up mark to the receiver's last message.
            let mut start = u128::MAX;
            let mut warm = 0;
            for p in &mut pushes {
                let mark = p.expect("mark", deadline)?;
                let mut v = mark.split_whitespace().map(str::parse::<u128>);
                match (v.next(), v.next()) {
                    (Some(Ok(at)), Some(Ok(sent))) => {
                        start = start.min(at);
                        warm += sent;
                    }
                    _ => return Err(format!("not a mark: {mark}")),
                }
            }
            let done: u128 = pull
                .expect("done", deadline)?
                .parse()
                .map_err(|e| format!("done: {e}"))?;
            let seconds = done.saturating_sub(start) as f64 / 1e9;
            let rate = (u128::from(total) - warm) as f64 / seconds;
            let mut procs = vec![pull.finish(deadline)?];
            for p in &mut pushes {
                procs.push(p.finish(deadline)?);
            }
            Ok(Run {
                rate: Some(rate),
                latency: None,
                procs,
            })
        }
    }
}

/// Where a binding child binds, in its implementation's syntax.
fn bind_endpoint(imp: Impl, transport: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    match transport {
        "tcp" if imp == Impl::Libzmq => "tcp://127.0.0.1:*".into(),
        "tcp" => "tcp://127.0.0.1:0".into(),
        _ => format!(
            "ipc://{}/omq-bench-{}-{}.sock",
            std::env::temp_dir().display(),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ),
    }
}

fn parse_num(s: &str) -> Result<f64, String> {
    s.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("not a number: {s}"))
}

fn parse_latency(s: &str) -> Result<Latency, String> {
    let v: Vec<f64> = s
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    match v[..] {
        [p50_us, p99_us, mean_us] => Ok(Latency {
            p50_us,
            p99_us,
            mean_us,
        }),
        _ => Err(format!("not a latency line: {s}")),
    }
}

/// A child process and the lines it prints, read by a thread so waits can have deadlines.
struct Proc {
    role: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    fn spawn(
        imp: Impl,
        role: &str,
        transport: &str,
        ep: &str,
        size: usize,
        count: u64,
    ) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .args([
                "--child",
                role,
                imp.name(),
                transport,
                ep,
                &size.to_string(),
                &count.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("start {role}: {e}"))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Proc {
            role: role.into(),
            stdin: child.stdin.take(),
            child,
            lines,
        })
    }

    /// The rest of the next line, which must start with `word`.
    fn expect(&mut self, word: &str, deadline: Instant) -> Result<String, String> {
        let wait = deadline.saturating_duration_since(Instant::now());
        let line = self.lines.recv_timeout(wait).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => {
                format!("{} timed out waiting for {word}", self.role)
            }
            mpsc::RecvTimeoutError::Disconnected => {
                format!("{} exited before {word}", self.role)
            }
        })?;
        line.strip_prefix(word)
            .map(|rest| rest.trim().to_owned())
            .ok_or_else(|| format!("{} said {line:?}, expected {word}", self.role))
    }

    /// Writes a line to the child's stdin.
    fn say(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("tell {}: {e}", self.role))
    }

    /// Closes the child's stdin (its signal to finish), reads its usage line, reaps it.
    fn finish(&mut self, deadline: Instant) -> Result<Usage, String> {
        drop(self.stdin.take());
        let usage = self.expect("usage", deadline)?;
        let mut v = usage.split_whitespace();
        let cpu_s = v.next().and_then(|c| c.parse().ok()).unwrap_or(0.0);
        let rss_kib = v.next().and_then(|r| r.parse().ok()).unwrap_or(0);
        let file_kib = v.next().and_then(|r| r.parse().ok()).unwrap_or(0);
        let status = self.child.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("{} exited with {status}", self.role));
        }
        Ok(Usage {
            role: self.role.clone(),
            cpu_s,
            rss_kib,
            file_kib,
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A run that failed leaves nothing behind.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Machine {
    fn describe() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let memory_kib: f64 = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        let output = |cmd: &str, args: &[&str]| {
            Command::new(cmd)
                .args(args)
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default()
        };
        let (major, minor, patch) = zmq::version();
        Machine {
            date: output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib: (memory_kib / (1024.0 * 1024.0) * 10.0).round() / 10.0,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            rustc: output("rustc", &["--version"]),
            libzmq: format!("{major}.{minor}.{patch} (the zmq crate's vendored build)"),
            zmq_rs: "zeromq 0.6".into(),
        }
    }
}
