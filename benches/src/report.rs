//! Markdown tables from results: medians with min and max, ratios to libzmq and to the raw
//! ceiling, CPU time per message and peak RSS.

use std::fmt::Write as _;

use crate::Impl;
use crate::run::{Case, Results};

/// `bench report RESULTS.json [--markdown FILE]`: the tables again, from saved results.
pub(crate) fn command(args: &[String]) -> Result<(), String> {
    let path = args.first().ok_or("report needs a results file")?;
    let json = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let results: Results = serde_json::from_str(&json).map_err(|e| format!("{path}: {e}"))?;
    let markdown = render(&results);
    match args.iter().position(|a| a == "--markdown") {
        Some(i) => {
            let out = args.get(i + 1).ok_or("--markdown needs a file")?;
            std::fs::write(out, markdown).map_err(|e| format!("{out}: {e}"))
        }
        None => {
            print!("{markdown}");
            Ok(())
        }
    }
}

/// Median, min and max of some values (`None` when there are none).
fn spread(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some((v[v.len() / 2], v[0], v[v.len() - 1]))
}

impl Case {
    fn rates(&self) -> Option<(f64, f64, f64)> {
        spread(self.runs.iter().filter_map(|r| r.rate).collect())
    }

    fn p50(&self) -> Option<(f64, f64, f64)> {
        spread(
            self.runs
                .iter()
                .filter_map(|r| r.latency.map(|l| l.p50_us))
                .collect(),
        )
    }

    fn p99(&self) -> Option<f64> {
        spread(
            self.runs
                .iter()
                .filter_map(|r| r.latency.map(|l| l.p99_us))
                .collect(),
        )
        .map(|s| s.0)
    }

    /// Median CPU nanoseconds per message over all of a run's processes.
    fn cpu_per_message_ns(&self) -> Option<f64> {
        let per_run = self
            .runs
            .iter()
            .map(|r| r.procs.iter().map(|p| p.cpu_s).sum::<f64>() * 1e9 / self.count as f64)
            .collect();
        spread(per_run).map(|s| s.0)
    }

    /// Median peak RSS in MiB of the processes playing `role`.
    fn rss_mib(&self, role: &str) -> Option<f64> {
        let per_run = self
            .runs
            .iter()
            .flat_map(|r| r.procs.iter().filter(|p| p.role == role))
            .map(|p| p.rss_kib as f64 / 1024.0)
            .collect();
        spread(per_run).map(|s| s.0)
    }

    /// Median peak RSS less the file-backed pages resident at exit, in MiB, of the processes
    /// playing `role`; `None` for results that did not record the file-backed part.
    fn rss_without_files_mib(&self, role: &str) -> Option<f64> {
        let per_run = self
            .runs
            .iter()
            .flat_map(|r| r.procs.iter().filter(|p| p.role == role))
            .filter(|p| p.file_kib > 0)
            .map(|p| p.rss_kib.saturating_sub(p.file_kib) as f64 / 1024.0)
            .collect();
        spread(per_run).map(|s| s.0)
    }
}

/// A median message rate with its min and max, in one unit: bytes per second from 8 KiB up
/// when `bytes`.
fn rate_range(m: f64, lo: f64, hi: f64, size: usize, bytes: bool) -> String {
    let (scale, unit) = if bytes && size >= 8192 {
        (size as f64 / 1e9, "GB/s")
    } else if m >= 1e6 {
        (1e-6, "M/s")
    } else {
        (1e-3, "k/s")
    };
    let digits = if unit == "k/s" { 1 } else { 2 };
    format!(
        "{:.digits$} ({:.digits$}-{:.digits$}) {unit}",
        m * scale,
        lo * scale,
        hi * scale
    )
}

fn size_label(size: usize) -> String {
    match size {
        s if s >= 1 << 20 && s % (1 << 20) == 0 => format!("{} MiB", s >> 20),
        s if s >= 1024 && s % 1024 == 0 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

/// Rows of one table: a label and the cases of each implementation for that row.
struct Table<'a> {
    impls: Vec<Impl>,
    rows: Vec<(String, Vec<Option<&'a Case>>)>,
}

impl<'a> Table<'a> {
    /// The cases of `pattern` selected by `pick`, one row per distinct (transport, size, peers).
    fn new(
        results: &'a Results,
        pick: impl Fn(&Case) -> bool,
        label: impl Fn(&Case) -> String,
    ) -> Self {
        let cases: Vec<&Case> = results.cases.iter().filter(|c| pick(c)).collect();
        let impls: Vec<Impl> = Impl::ALL
            .into_iter()
            .filter(|i| cases.iter().any(|c| c.imp == *i))
            .collect();
        let mut rows: Vec<(String, Vec<Option<&Case>>)> = Vec::new();
        for &c in &cases {
            let l = label(c);
            let k = impls.iter().position(|i| *i == c.imp).expect("listed");
            match rows.iter_mut().find(|(r, _)| *r == l) {
                Some((_, row)) => row[k] = Some(c),
                None => {
                    let mut row = vec![None; impls.len()];
                    row[k] = Some(c);
                    rows.push((l, row));
                }
            }
        }
        Table { impls, rows }
    }

    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn header(&self, out: &mut String, first: &str, columns: &[String]) {
        let _ = writeln!(out, "| {first} | {} |", columns.join(" | "));
        let _ = writeln!(out, "|---|{}", "---:|".repeat(columns.len()));
    }

    fn names(&self) -> Vec<String> {
        self.impls.iter().map(|i| i.name().to_owned()).collect()
    }

    /// Rates per implementation (median, min-max), then ratios to libzmq and to raw.
    fn throughput(&self, out: &mut String) {
        self.header(out, "", &self.names());
        for (label, row) in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|c| match c.and_then(|c| c.rates().map(|r| (c, r))) {
                    // Over inproc a message is handed over, not copied: msg/s at every size.
                    Some((c, (m, lo, hi))) => {
                        rate_range(m, lo, hi, c.size, c.transport != "inproc")
                    }
                    None => failed(*c),
                })
                .collect();
            let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
        }
        out.push('\n');
        let median = |c: &Option<&Case>| c.and_then(|c| c.rates()).map(|r| r.0);
        self.ratios(out, median, "higher is better");
    }

    /// Ratio columns: every implementation to libzmq, and to the raw ceiling.
    fn ratios(&self, out: &mut String, value: impl Fn(&Option<&Case>) -> Option<f64>, note: &str) {
        let at = |i: Impl| self.impls.iter().position(|x| *x == i);
        let mut columns = Vec::new();
        let mut pairs = Vec::new();
        if let Some(base) = at(Impl::Libzmq) {
            for (k, i) in self.impls.iter().enumerate() {
                if !matches!(i, Impl::Libzmq | Impl::Raw) {
                    columns.push(format!("{} / libzmq", i.name()));
                    pairs.push((k, base));
                }
            }
        }
        if let Some(raw) = at(Impl::Raw) {
            for (k, i) in self.impls.iter().enumerate() {
                if *i != Impl::Raw {
                    columns.push(format!("{} / raw", i.name()));
                    pairs.push((k, raw));
                }
            }
        }
        if columns.is_empty() {
            return;
        }
        let _ = writeln!(out, "Ratios ({note}):\n");
        self.header(out, "", &columns);
        for (label, row) in &self.rows {
            let cells: Vec<String> = pairs
                .iter()
                .map(|&(a, b)| ratio(value(&row[a]), value(&row[b])))
                .collect();
            let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
        }
        out.push('\n');
    }

    /// p50 and p99 per implementation, then p50 ratios.
    fn latency(&self, out: &mut String) {
        let columns: Vec<String> = self
            .names()
            .iter()
            .map(|n| format!("{n} p50 / p99"))
            .collect();
        self.header(out, "", &columns);
        for (label, row) in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|c| match c.and_then(|c| c.p50().zip(c.p99())) {
                    Some(((p50, lo, hi), p99)) => {
                        format!("{p50:.1} ({lo:.1}-{hi:.1}) / {p99:.1} µs")
                    }
                    None => failed(*c),
                })
                .collect();
            let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
        }
        out.push('\n');
        let p50 = |c: &Option<&Case>| c.and_then(|c| c.p50()).map(|p| p.0);
        self.ratios(out, p50, "of p50, lower is better");
    }

    /// One column per implementation from `value`, formatted by `show`.
    fn column(
        &self,
        out: &mut String,
        value: impl Fn(&Case) -> Option<f64>,
        show: impl Fn(f64) -> String,
    ) {
        self.header(out, "", &self.names());
        for (label, row) in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|c| c.and_then(&value).map_or_else(|| failed(*c), &show))
                .collect();
            let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
        }
        out.push('\n');
    }
}

/// The cell of a case with no result.
fn failed(c: Option<&Case>) -> String {
    match c {
        Some(c) if !c.failures.is_empty() => "failed".into(),
        _ => "-".into(),
    }
}

/// The whole COMPARISONS.md text.
pub(crate) fn render(r: &Results) -> String {
    let m = &r.machine;
    let mut out = String::new();
    let _ = write!(
        out,
        "# How omq compares\n\n\
         Generated from `benches/results/{mode}.json` by `cargo xtask bench{flag}` (the harness in \
         `benches/src/`); regenerate rather than edit.\n\n\
         - Measured {date} on {cpu}, {cpus} CPUs, {mem} GiB, Linux {kernel}, {rustc}.\n\
         - Implementations: libzmq {libzmq}; omq-tokio on a current-thread runtime; omq-compio on \
         io_uring; {zmq_rs} (zmq.rs) on a current-thread tokio runtime; raw: std sockets moving \
         the same payload bytes with no framing, in 1 MiB writes (throughput) or one write per \
         message (round trips), the transport's ceiling on this machine.\n\
         - Mode {mode}: {rounds} rounds per case, each round going over every case once (so \
         that one of the machine's slow phases costs many cases a round rather than one case all \
         of them), implementations back to back within a round; the median, with min-max in \
         parentheses.\n\
         - Over tcp and ipc each side is its own process (receiver or REP binds); inproc is two \
         threads of one process. Throughput: the messages sent after each sender's first \
         tenth (the warm-up), over the time from the earliest sender's mark to the receiver's \
         last message (wall clock, comparable between processes). libzmq's `local_thr` times \
         from the receiver's first message instead, which counts what the pipes had buffered \
         before the clock started as free: with large messages that is the whole run. A round trip is timed by the requester per \
         message after `count / 10` warm-up round trips (`local_lat`/`remote_lat`, which report \
         the mean of half round trips; here p50 and p99 of whole ones). libzmq's sender makes a \
         new message of the size per send (`remote_thr`); omq and zmq.rs send clones of one \
         reference-counted payload. zmq.rs streams messages under 8 KiB a tenth as many \
         messages per run as the others (it is some 30 times slower there).\n\
         - A cell `-` means the implementation does not play that case (zmq.rs has no inproc \
         and sits out the long memory run; the raw ceiling has no PUB/SUB); `failed` means \
         every round failed (see the JSON).\n\
         - Per-operation costs have criterion micro-benchmarks in their crates: `cargo bench -p \
         omq-zmtp` (encoding, decoding, CURVE's boxes, building and cloning messages), `cargo \
         bench -p yring` and `cargo bench -p blume` (the channels, against rtrb, crossbeam, \
         flume, std and tokio). What was changed for speed, and what each change measured, is \
         in `doc/performance.md`.\n\n",
        mode = r.mode,
        flag = if r.mode == "quick" { " --quick" } else { "" },
        date = m.date,
        cpu = m.cpu,
        cpus = m.cpus,
        mem = m.memory_gib,
        kernel = m.kernel,
        rustc = m.rustc,
        libzmq = m.libzmq,
        zmq_rs = m.zmq_rs,
        rounds = r.rounds,
    );
    for transport in ["tcp", "ipc", "inproc"] {
        let t = Table::new(
            r,
            |c| c.pattern == "pushpull" && c.transport == transport,
            |c| size_label(c.size),
        );
        if !t.is_empty() {
            let _ = writeln!(out, "## PUSH/PULL throughput, {transport}\n");
            if transport == "inproc" {
                let _ = writeln!(
                    out,
                    "Rates in msg/s at every size: over inproc a message is handed over, not \
                     copied. omq sends clones of one reference-counted payload, libzmq allocates \
                     a message per send (`remote_thr`), so from 128 B up these rows compare \
                     allocation as much as transport; the table \"a new message per send\" \
                     below has omq allocating per send too.\n"
                );
            }
            t.throughput(&mut out);
            if transport == "tcp" && r.cases.iter().any(|c| c.imp == Impl::Raw) {
                // Under the first table with `/ raw` columns.
                let _ = writeln!(
                    out,
                    "The raw ceiling is a blocking writer and reader with no framing, in 1 MiB \
                     writes and reads. It is what plain sockets reach here, not a physical \
                     bound: where omq comes out ahead of it, the blocking reader slept and woke \
                     for chunks that an event loop found already there. Read the `/ raw` \
                     columns as \"how far from plain sockets\".\n"
                );
            }
        }
    }
    let t = Table::new(r, |c| c.pattern == "fresh", |c| size_label(c.size));
    if !t.is_empty() {
        let _ = writeln!(
            out,
            "## PUSH/PULL throughput, inproc, a new message per send\n\n\
             Every implementation's sender builds a new message per send with the payload's \
             bytes copied in, which the receiving thread frees (omq: `Message::from(&bytes[..])`; \
             libzmq: `zmq_msg_init_size` and a copy; `remote_thr` leaves the bytes unwritten). \
             Above omq's inline size (63 B) both then run at the rate of the allocator's frees \
             from another thread, not of the transport (`doc/performance.md`, \"inproc with a \
             fresh message per send\").\n"
        );
        t.throughput(&mut out);
    }
    let t = Table::new(
        r,
        |c| c.pattern == "reqrep",
        |c| format!("{} {}", c.transport, size_label(c.size)),
    );
    if !t.is_empty() {
        let _ = writeln!(
            out,
            "## REQ/REP round trip\n\nomq runs with its defaults, under which a REQ or REP \
             receive that finds nothing polls for up to 100 µs before its thread sleeps \
             (`recv_spin`, adaptive), so a round trip does not wait for a sleeping thread to be \
             woken; the CPU table after this one shows what that costs.\n"
        );
        t.latency(&mut out);
        let _ = writeln!(
            out,
            "CPU time per round trip: user + system time of both sides (whole process \
             lifetimes, 10 ms resolution; inproc: the one process) divided by the timed round \
             trips, in µs.\n"
        );
        t.column(&mut out, Case::cpu_per_message_ns, |v| {
            format!("{:.1}", v / 1e3)
        });
    }
    let t = Table::new(
        r,
        |c| c.pattern == "pubsub",
        |c| format!("{} SUB, {}", c.peers, size_label(c.size)),
    );
    if !t.is_empty() {
        let _ = writeln!(
            out,
            "## PUB to many SUB processes, tcp\n\nAggregate rate: messages received by all \
             subscribers over the time from the publisher's go to the last subscriber's report. \
             Publisher and subscriber HWMs are the message count, so nothing is dropped.\n"
        );
        t.throughput(&mut out);
    }
    let t = Table::new(
        r,
        |c| c.pattern == "fanin",
        |c| format!("{} PUSH, {}", c.peers, size_label(c.size)),
    );
    if !t.is_empty() {
        let _ = writeln!(out, "## Fan-in: PUSH processes into one PULL, tcp\n");
        t.throughput(&mut out);
    }
    let t = Table::new(
        r,
        |c| c.pattern == "pushpull" && c.transport == "tcp",
        |c| size_label(c.size),
    );
    if !t.is_empty() {
        let _ = writeln!(
            out,
            "## CPU time per message, PUSH/PULL tcp\n\nUser + system time of both processes \
             (whole process lifetimes, 10 ms resolution) divided by the messages sent, in ns.\n"
        );
        t.column(&mut out, Case::cpu_per_message_ns, |v| format!("{v:.0}"));
    }
    let t = Table::new(
        r,
        |c| c.pattern == "memory",
        |c| format!("{} x {}", c.count, size_label(c.size)),
    );
    if !t.is_empty() {
        let _ = writeln!(
            out,
            "## Peak RSS, PUSH/PULL tcp\n\nPeak resident set size (VmHWM) of the receiving and \
             the sending process in MiB.\n"
        );
        let _ = writeln!(out, "Receiver:\n");
        t.column(&mut out, |c| c.rss_mib("pull"), |v| format!("{v:.1}"));
        let _ = writeln!(out, "Sender:\n");
        t.column(&mut out, |c| c.rss_mib("push"), |v| format!("{v:.1}"));
        if r.cases.iter().any(|c| {
            c.runs
                .iter()
                .any(|run| run.procs.iter().any(|p| p.file_kib > 0))
        }) {
            let _ = writeln!(
                out,
                "Most of that is file-backed: the pages of the one benchmark binary (every \
                 implementation is linked into it, libzmq included) and of the C library that \
                 the process touched, some 5 MiB. The same peaks less the file-backed pages \
                 resident at exit, in MiB, are the memory the implementation allocated \
                 (within the pages of code touched after the peak):\n"
            );
            let _ = writeln!(out, "Receiver:\n");
            t.column(
                &mut out,
                |c| c.rss_without_files_mib("pull"),
                |v| format!("{v:.2}"),
            );
            let _ = writeln!(out, "Sender:\n");
            t.column(
                &mut out,
                |c| c.rss_without_files_mib("push"),
                |v| format!("{v:.2}"),
            );
        }
    }
    out
}
