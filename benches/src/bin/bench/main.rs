//! The comparison harness: omq (tokio and compio backends) against libzmq, zmq.rs and a raw-socket
//! ceiling, every implementation measured in the same run, interleaved round by round.
//!
//! ```text
//! cargo xtask bench [--quick]                 # the usual way in: results JSON + COMPARISONS.md
//! cargo run --release -p omq-bench --bin bench -- [--quick] [--rounds N] [--impls a,b,..]
//!     [--patterns pushpull,reqrep,pubsub,fanin,memory] [--transports tcp,ipc,inproc]
//!     [--sizes 8,128,..] [--out results.json] [--markdown COMPARISONS.md]
//! cargo run --release -p omq-bench --bin bench -- report results.json [--markdown FILE]
//! ```
//!
//! Patterns (libzmq's perf tools `local_thr`/`remote_thr` and `local_lat`/`remote_lat` are the
//! methodology mirrored here):
//! - `pushpull`: PUSH to PULL throughput. The receiver binds and times from its
//!   `count / 10`-th message (the warm-up) to its last; the sender connects.
//! - `reqrep`: REQ/REP round trips, each one timed; p50, p99 and mean after a warm-up.
//! - `pubsub`: PUB to 4 and 32 SUB processes, aggregate rate over every subscriber.
//! - `fanin`: 4 PUSH processes into 1 PULL.
//! - `memory`: a long 128 B tcp PUSH/PULL run for peak RSS.
//!
//! Over tcp and ipc every side is its own process; inproc runs two threads in one process. Each
//! process reports its CPU time and peak RSS (`getrusage`). The parent only orchestrates: it
//! starts the processes, relays the go signal and collects what they print.

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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--child") => {
            child::main(&args[1..]);
            Ok(())
        }
        Some("report") => report::command(&args[1..]),
        _ => run::command(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}
