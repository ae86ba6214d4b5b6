//! The comparison harness: omq (tokio and compio backends) against libzmq, zmq.rs and a raw-socket
//! ceiling, every implementation measured in the same run, interleaved round by round.
//!
//! ```text
//! cargo xtask bench [--quick]                 # the usual way in: results JSON + COMPARISONS.md
//! cargo run --release -p omq-bench --bin bench -- [--quick] [--rounds N] [--impls a,b,..]
//!     [--patterns pushpull,fresh,reqrep,pubsub,fanin,memory] [--transports tcp,ipc,inproc]
//!     [--sizes 8,128,..] [--out results.json] [--markdown COMPARISONS.md]
//! cargo run --release -p omq-bench --bin bench -- report results.json [--markdown FILE]
//! omq bench --pattern pushpull --transport tcp --size 128   # the same, from the omq tool
//! ```
//!
//! Patterns (libzmq's perf tools `local_thr`/`remote_thr` and `local_lat`/`remote_lat` are the
//! methodology mirrored here):
//! - `pushpull`: PUSH to PULL throughput. The receiver binds, the sender connects; the rate is
//!   the messages after the sender's warm-up over the time from its mark to the receiver's last.
//!   omq's and zmq.rs's senders send clones of one payload.
//! - `fresh`: inproc PUSH/PULL at 128 B and 1 KiB with a new message per send, the payload's
//!   bytes copied into it, by every implementation: the receiving thread frees what the sending
//!   one allocated. (libzmq's `remote_thr`, and libzmq's sender in the other patterns, allocate
//!   a message per send too but leave its bytes unwritten.)
//! - `reqrep`: REQ/REP round trips, each one timed; p50, p99 and mean after a warm-up.
//! - `pubsub`: PUB to 4 and 32 SUB processes, aggregate rate over every subscriber.
//! - `fanin`: 4 PUSH processes into 1 PULL.
//! - `memory`: a long 128 B tcp PUSH/PULL run for peak RSS, and peak RSS less the file-backed
//!   pages (the code every implementation shares the binary with).
//!
//! Over tcp and ipc every side is its own process; inproc runs two threads in one process. Each
//! process reports its CPU time and peak RSS. The parent only orchestrates: it starts the
//! processes (the running executable again, with `--child` first: a program that embeds the
//! harness, like the `omq` tool, hands such a command line to [`main`]), relays the go signal
//! and collects what they print.
//!
//! ```no_run
//! // A binary whose whole job is the harness.
//! fn main() -> std::process::ExitCode {
//!     let args: Vec<String> = std::env::args().skip(1).collect();
//!     omq_bench::main(&args)
//! }
//! ```

mod child;
mod report;
mod run;

use std::process::ExitCode;

use serde::{Deserialize, Serialize};

/// An implementation under comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
enum Impl {
    /// libzmq through the `zmq` crate (its vendored libzmq).
    #[serde(rename = "libzmq")]
    Libzmq,
    /// omq-tokio on a current-thread runtime in each process.
    #[serde(rename = "omq-tokio")]
    OmqTokio,
    /// omq-tokio on a multi-thread runtime with 2 workers.
    #[serde(rename = "omq-tokio-mt")]
    OmqTokioMt,
    /// omq-compio (io_uring).
    #[serde(rename = "omq-compio")]
    OmqCompio,
    /// zmq.rs (the `zeromq` crate) on a current-thread tokio runtime.
    #[serde(rename = "zmq.rs")]
    ZmqRs,
    /// Plain std sockets moving the same bytes: the transport's ceiling on this machine.
    #[serde(rename = "raw")]
    Raw,
}

impl Impl {
    const ALL: [Self; 6] = [
        Self::Libzmq,
        Self::OmqTokio,
        Self::OmqTokioMt,
        Self::OmqCompio,
        Self::ZmqRs,
        Self::Raw,
    ];

    /// What runs when `--impls` is not given.
    const DEFAULT: [Self; 5] = [
        Self::Libzmq,
        Self::OmqTokio,
        Self::OmqCompio,
        Self::ZmqRs,
        Self::Raw,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Libzmq => "libzmq",
            Self::OmqTokio => "omq-tokio",
            Self::OmqTokioMt => "omq-tokio-mt",
            Self::OmqCompio => "omq-compio",
            Self::ZmqRs => "zmq.rs",
            Self::Raw => "raw",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.name() == s)
    }
}

/// Runs the harness with `args` (the program's arguments without the program name): a
/// measurement run, `report FILE`, or one of the child processes a run starts (`--child ...`).
pub fn main(args: &[String]) -> ExitCode {
    let result = match args.first().map(String::as_str) {
        Some("--child") => {
            child::main(&args[1..]);
            Ok(())
        }
        Some("report") => report::command(&args[1..]),
        Some("--help" | "-h") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => run::command(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What `--help` prints.
const USAGE: &str = "\
Compare omq with libzmq, zmq.rs and plain sockets; print tables of medians and ratios.

Options:
  --quick                        short runs, 3 rounds (default: 5 rounds, twice the counts)
  --rounds N                     rounds per case
  --patterns LIST, --pattern P   pushpull,fresh,reqrep,pubsub,fanin,memory (default: all)
  --transports LIST, --transport T
                                 tcp,ipc,inproc (default: all)
  --sizes LIST, --size N         PUSH/PULL message sizes in bytes (default: 8 B to 1 MiB)
  --impls LIST                   libzmq,omq-tokio,omq-tokio-mt,omq-compio,zmq.rs,raw
  --out FILE                     write the raw results as JSON
  --markdown FILE                write the tables as markdown

  report FILE [--markdown OUT]   the tables again from saved results
";
