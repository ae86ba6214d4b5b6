//! Project automation: `cargo xtask <command>`.
//!
//! - `ci`: everything CI checks, in CI's order (format, clippy, tests, docs, fuzz build and smoke).
//! - `loom [-- ARGS]`: the loom models of the channel crates (`--cfg loom`, in `target/loom`);
//!   `cargo xtask loom -- --ignored` runs the long ones.
//! - `miri`: the channel crates' tests under Miri (needs a nightly toolchain with the miri
//!   component; says so and stops when there is none).
//! - `fuzz [--smoke] [--seconds N] [--asan | --no-asan] [TARGET...]`: runs fuzz targets (all by
//!   default); `--smoke` runs each for 10 s. When a nightly toolchain is installed the targets are
//!   built with AddressSanitizer on it; otherwise (or with `--no-asan`, or if that build fails) on
//!   the stable toolchain without a sanitizer, which still catches panics. `--asan` insists on
//!   nightly.
//! - `bench [--quick] [--report] [HARNESS ARGS...]`: the comparison harness (`benches/`), in
//!   release mode. A full run writes `benches/results/full.json` and regenerates
//!   `COMPARISONS.md` from it; `--quick` writes `benches/results/quick.json` and prints the
//!   tables only. `--report` regenerates `COMPARISONS.md` from the committed full results
//!   without measuring. Other arguments go to the harness (`--rounds N`, `--patterns ...`).

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Every fuzz target and the seed folder it starts from.
const FUZZ_TARGETS: &[(&str, &str)] = &[
    ("greeting", "greeting"),
    ("frames", "frames"),
    ("connection_server", "connection"),
    ("connection_client", "connection"),
    ("plain_server", "plain_server"),
    ("plain_client", "plain_client"),
    ("curve_server", "curve"),
    ("curve_client", "curve"),
];

/// The command the README gives for running the tests.
const TEST_COMMAND: &[&str] = &["test", "--workspace", "--all-targets"];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("fuzz") => fuzz(&args[1..]),
        Some("loom") => loom(args.get(2..).unwrap_or_default()),
        Some("miri") => miri(),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask ci | loom | miri | fuzz [--smoke] [--seconds N] [--asan | --no-asan] [TARGET...] | bench [--quick] [--report] [ARGS...]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("+ {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

fn cargo() -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn ci() -> Result<(), String> {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args(TEST_COMMAND))?;
    compio_without_io_uring()?;
    // Doc tests are not part of --all-targets.
    run(cargo().args(["test", "--workspace", "--doc"]))?;
    run(cargo()
        .args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    loom(&[])?;
    if miri_available() {
        miri()?;
    } else {
        eprintln!("xtask: Miri skipped: no nightly toolchain with the miri component here");
    }
    fuzz(&["--smoke".into()])
}

/// omq-compio's scenario suite again with io_uring refused by a seccomp filter, so that compio
/// falls back to its polling driver (and the suite checks that it did).
fn compio_without_io_uring() -> Result<(), String> {
    let mut cmd = Command::new("python3");
    cmd.current_dir(root())
        .arg(root().join("xtask").join("no-io-uring.py"))
        .arg(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "-p", "omq-compio", "--test", "scenarios"])
        .env("OMQ_EXPECT_DRIVER", "polling");
    run(&mut cmd)
}

/// Crates with loom models (each has `tests/loom.rs`).
const LOOM_CRATES: &[&str] = &["yring", "blume"];

fn loom(extra: &[String]) -> Result<(), String> {
    let mut cmd = cargo();
    cmd.args(["test", "--release", "--test", "loom"])
        .env("RUSTFLAGS", "--cfg loom")
        // Bound the preemptions explored per execution, as tokio's CI does: 3 finds the
        // interleavings these models are about and keeps the run in seconds.
        .env("LOOM_MAX_PREEMPTIONS", "3")
        .env("CARGO_TARGET_DIR", root().join("target").join("loom"));
    for c in LOOM_CRATES {
        cmd.args(["-p", c]);
    }
    if !extra.is_empty() {
        cmd.arg("--").args(extra);
    }
    run(&mut cmd)
}

fn miri_available() -> bool {
    Command::new("rustup")
        .args(["run", "nightly", "cargo", "miri", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn miri() -> Result<(), String> {
    if !miri_available() {
        return Err(
            "no nightly toolchain with miri (rustup component add miri --toolchain nightly)".into(),
        );
    }
    let mut cmd = Command::new("rustup");
    cmd.current_dir(root())
        .args(["run", "nightly", "cargo", "miri", "test"])
        .env("MIRIFLAGS", "-Zmiri-strict-provenance")
        .env("CARGO_TARGET_DIR", root().join("target").join("miri"));
    for c in LOOM_CRATES {
        cmd.args(["-p", c]);
    }
    run(&mut cmd)
}

fn fuzz(args: &[String]) -> Result<(), String> {
    let mut seconds = 60u32;
    let mut asan = None;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--smoke" => seconds = 10,
            "--asan" => asan = Some(true),
            "--no-asan" => asan = Some(false),
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--seconds needs a number")?;
            }
            name => {
                let known = FUZZ_TARGETS.iter().find(|(t, _)| *t == name);
                targets.push(*known.ok_or_else(|| format!("unknown fuzz target {name}"))?);
            }
        }
    }
    if targets.is_empty() {
        targets = FUZZ_TARGETS.to_vec();
    }
    let fuzz_dir = root().join("fuzz");
    let build = |asan: bool| run(&mut cargo_fuzz(asan, "build", &fuzz_dir));
    let asan = match asan {
        Some(true) => build(true).map(|()| true)?,
        Some(false) => build(false).map(|()| false)?,
        None if nightly_available() => match build(true) {
            Ok(()) => true,
            Err(e) => {
                eprintln!(
                    "xtask: nightly ASan build failed ({e}); using stable without a sanitizer"
                );
                build(false).map(|()| false)?
            }
        },
        None => build(false).map(|()| false)?,
    };
    for (target, seeds) in targets {
        let corpus = fuzz_dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
        run(cargo_fuzz(asan, "run", &fuzz_dir)
            .arg(target)
            .arg(&corpus)
            .arg(fuzz_dir.join("seeds").join(seeds))
            .args([
                "--",
                "-dict=zmtp.dict",
                "-max_len=300000",
                "-rss_limit_mb=1024",
                &format!("-max_total_time={seconds}"),
            ]))?;
    }
    Ok(())
}

/// `cargo fuzz <sub>`: on nightly with its default sanitizer (ASan), or on stable with none.
fn cargo_fuzz(asan: bool, sub: &str, dir: &Path) -> Command {
    let mut cmd = if asan {
        // `cargo` here is the toolchain's own binary, which does not understand `+nightly`.
        let mut c = Command::new("rustup");
        c.args(["run", "nightly", "cargo"]);
        c
    } else {
        cargo()
    };
    cmd.current_dir(dir).args(["fuzz", sub]);
    if !asan {
        cmd.args(["-s", "none"]);
    }
    cmd
}

fn nightly_available() -> bool {
    Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The published results and the page made from them.
const FULL_RESULTS: &str = "benches/results/full.json";
const COMPARISONS: &str = "COMPARISONS.md";

fn bench(args: &[String]) -> Result<(), String> {
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "-p",
        "omq-bench",
        "--bin",
        "bench",
        "--",
    ]);
    if args.iter().any(|a| a == "--report") {
        cmd.args(["report", FULL_RESULTS, "--markdown", COMPARISONS]);
        return run(&mut cmd);
    }
    cmd.args(args);
    if args.iter().any(|a| a == "--quick") {
        cmd.args(["--out", "benches/results/quick.json"]);
    } else {
        cmd.args(["--out", FULL_RESULTS, "--markdown", COMPARISONS]);
    }
    run(&mut cmd)
}
