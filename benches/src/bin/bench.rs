//! `bench`: the comparison harness (see the `omq_bench` crate documentation).

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    omq_bench::main(&args)
}
