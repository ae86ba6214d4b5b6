//! End-to-end tests of the `omq` binary: omq against omq, and against a real libzmq.

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn omq(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_omq"));
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn ipc() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "ipc://{}/omq-cli-{}-{}.sock",
        std::env::temp_dir().display(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Waits for a child with a deadline, killing it when the deadline passes.
fn finish(mut child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "omq did not exit; stdout {:?}, stderr {:?}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `omq ARGS` with `input` on its stdin, to its end (with `finish`'s deadline).
fn run_with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = omq(args).stdin(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    finish(child)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn push_to_pull() {
    let ep = ipc();
    let pull = omq(&["pull", "--bind", &ep, "--count", "3"])
        .spawn()
        .unwrap();
    let push = omq(&["push", "--connect", &ep, "--data", "hi", "--repeat", "3"])
        .spawn()
        .unwrap();
    let push = finish(push);
    assert!(push.status.success(), "{push:?}");
    let pull = finish(pull);
    assert!(pull.status.success(), "{pull:?}");
    assert_eq!(stdout(&pull), "hi\nhi\nhi\n");
}

#[test]
fn stdin_lines_frames_and_json() {
    let ep = ipc();
    let pull = omq(&["pull", "--bind", &ep, "--count", "2", "--format", "json"])
        .spawn()
        .unwrap();
    let push = run_with_stdin(&["push", "--connect", &ep, "--frames"], b"a\tb\nsingle\n");
    assert!(push.status.success());
    let pull = finish(pull);
    assert_eq!(
        stdout(&pull),
        "{\"frames\":[\"a\",\"b\"]}\n{\"frames\":[\"single\"]}\n"
    );
}

#[test]
fn req_rep_echo() {
    let ep = ipc();
    let rep = omq(&["rep", "--bind", &ep, "--count", "2", "--echo"])
        .spawn()
        .unwrap();
    let req = run_with_stdin(&["req", "--connect", &ep], b"one\ntwo\n");
    assert!(req.status.success(), "{req:?}");
    assert_eq!(stdout(&req), "one\ntwo\n");
    let rep = finish(rep);
    assert_eq!(stdout(&rep), "one\ntwo\n");
}

#[test]
fn compio_backend_talks_to_tokio_backend() {
    // A compio REP answering a tokio REQ over ipc, then a tokio PUSH into a compio PULL over
    // tcp; the senders read stdin.
    let ep = ipc();
    let rep = omq(&["rep", "--backend", "compio", "--bind", &ep, "--count", "2"])
        .spawn()
        .unwrap();
    let req = run_with_stdin(
        &["req", "--backend", "tokio", "--connect", &ep],
        b"one\ntwo\n",
    );
    assert!(req.status.success(), "{req:?}");
    assert_eq!(stdout(&req), "one\ntwo\n");
    assert_eq!(stdout(&finish(rep)), "one\ntwo\n");

    let pull = omq(&[
        "pull",
        "--backend",
        "compio",
        "--bind",
        "tcp://127.0.0.1:0",
        "--monitor",
        "--count",
        "2",
        "--format",
        "json",
    ])
    .spawn()
    .unwrap();
    // --monitor prints the bound endpoint (port 0 resolved) among its events.
    let mut pull = pull;
    let err = std::io::BufReader::new(pull.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    // Keeps reading stderr to the end, so the monitor's later lines have somewhere to go.
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(err).map_while(Result::ok) {
            if let Some(ep) = line.strip_prefix("bound ") {
                let _ = tx.send(ep.to_owned());
            }
        }
    });
    let bound = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the bound endpoint");
    let push = run_with_stdin(
        &[
            "push",
            "--backend",
            "tokio",
            "--connect",
            &bound,
            "--frames",
        ],
        b"a\tb\nc\n",
    );
    assert!(push.status.success());
    let pull = finish(pull);
    assert!(pull.status.success(), "{pull:?}");
    assert_eq!(
        stdout(&pull),
        "{\"frames\":[\"a\",\"b\"]}\n{\"frames\":[\"c\"]}\n"
    );
}

#[test]
fn rep_fixed_reply() {
    let ep = ipc();
    let rep = omq(&["rep", "--bind", &ep, "--count", "1", "--reply", "pong"])
        .spawn()
        .unwrap();
    let req = finish(
        omq(&["req", "--connect", &ep, "--data", "ping"])
            .spawn()
            .unwrap(),
    );
    assert_eq!(stdout(&req), "pong\n");
    assert_eq!(stdout(&finish(rep)), "ping\n");
}

#[test]
fn pub_sub_with_a_prefix() {
    let ep = ipc();
    let sub = omq(&["sub", "--connect", &ep, "--subscribe", "w.", "--count", "2"])
        .spawn()
        .unwrap();
    // Publish for a while: the subscription takes a moment to arrive.
    let mut publ = omq(&["pub", "--bind", &ep, "--repeat", "300", "--interval", "5"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    publ.stdin
        .take()
        .unwrap()
        .write_all(b"z.skip\nw.one\n")
        .unwrap();
    let sub = finish(sub);
    assert!(sub.status.success(), "{sub:?}");
    assert_eq!(stdout(&sub), "w.one\nw.one\n");
    let _ = finish(publ);
}

#[test]
fn timeout_exits_with_status_1() {
    let out = finish(
        omq(&["pull", "--bind", &ipc(), "--timeout", "200"])
            .spawn()
            .unwrap(),
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bad_arguments_are_one_clear_line() {
    for args in [
        &["pull", "--bind", "nonsense://x"][..],
        &["pull"][..],
        &["push", "--connect", "tcp://*:1"][..],
    ] {
        let out = finish(omq(args).spawn().unwrap());
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("omq: "), "{err}");
    }
    let out = finish(omq(&["nosuchtype"]).spawn().unwrap());
    assert!(!out.status.success());
}

#[test]
fn libzmq_push_into_omq_pull() {
    let ep = ipc();
    let pull = omq(&["pull", "--bind", &ep, "--count", "1000"])
        .spawn()
        .unwrap();
    let ctx = zmq::Context::new();
    let push = ctx.socket(zmq::PUSH).unwrap();
    push.set_sndtimeo(10_000).unwrap();
    push.connect(&ep).unwrap();
    for i in 0..1000 {
        push.send(format!("m{i}").as_bytes(), 0).unwrap();
    }
    // libzmq stays open until omq has everything (its ipc tail loss on a quick close).
    let pull = finish(pull);
    drop(push);
    let lines: Vec<String> = stdout(&pull).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 1000);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l, &format!("m{i}"));
    }
}

#[test]
fn omq_req_against_libzmq_rep() {
    let ep = ipc();
    let ctx = zmq::Context::new();
    let rep = ctx.socket(zmq::REP).unwrap();
    rep.set_rcvtimeo(10_000).unwrap();
    rep.bind(&ep).unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let mut m = rep.recv_multipart(0).unwrap();
            m[0].extend_from_slice(b"!");
            rep.send_multipart(m, 0).unwrap();
        }
        rep
    });
    let req = run_with_stdin(&["req", "--connect", &ep], b"a\nb\n");
    assert_eq!(stdout(&req), "a!\nb!\n");
    drop(server.join().unwrap());
}

/// `omq keygen`'s two lines.
fn keygen() -> (String, String) {
    let out = omq(&["keygen"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let mut lines = text.lines();
    let public = lines
        .next()
        .unwrap()
        .strip_prefix("public ")
        .unwrap()
        .to_owned();
    let secret = lines
        .next()
        .unwrap()
        .strip_prefix("secret ")
        .unwrap()
        .to_owned();
    assert_eq!((public.len(), secret.len()), (40, 40));
    (public, secret)
}

#[test]
fn keygen_prints_a_matching_pair() {
    let (public, secret) = keygen();
    let derived = omq_tokio::CurveSecretKey::parse(secret.as_bytes())
        .unwrap()
        .public_key();
    assert_eq!(derived.to_z85(), public);
    assert_ne!(keygen().0, public);
}

#[test]
fn curve_push_to_pull_with_an_allow_list() {
    let (server_public, server_secret) = keygen();
    let (client_public, client_secret) = keygen();
    let ep = ipc();
    let pull = omq(&[
        "pull",
        "--bind",
        &ep,
        "--count",
        "1",
        "--curve-server",
        "--curve-secret",
        &server_secret,
        "--curve-allow",
        &client_public,
    ])
    .spawn()
    .unwrap();
    // A client the list does not know is refused first: nothing it sends arrives.
    let stranger = finish(
        omq(&[
            "push",
            "--connect",
            &ep,
            "--curve-serverkey",
            &server_public,
            "--data",
            "intruder",
            "--linger",
            "300",
        ])
        .spawn()
        .unwrap(),
    );
    assert!(stranger.status.success(), "{stranger:?}");
    let push = finish(
        omq(&[
            "push",
            "--connect",
            &ep,
            "--curve-serverkey",
            &server_public,
            "--curve-secret",
            &client_secret,
            "--data",
            "secret words",
        ])
        .spawn()
        .unwrap(),
    );
    assert!(push.status.success(), "{push:?}");
    assert_eq!(stdout(&finish(pull)), "secret words\n");
}

#[test]
fn plain_req_rep_checks_the_password() {
    let ep = ipc();
    let rep = omq(&[
        "rep",
        "--bind",
        &ep,
        "--count",
        "1",
        "--plain-server",
        "--plain-user",
        "admin",
        "--plain-pass",
        "secret",
    ])
    .spawn()
    .unwrap();
    let wrong = finish(
        omq(&[
            "req",
            "--connect",
            &ep,
            "--plain-user",
            "admin",
            "--plain-pass",
            "guess",
            "--data",
            "x",
            "--timeout",
            "500",
            "--linger",
            "0",
        ])
        .spawn()
        .unwrap(),
    );
    assert_eq!(wrong.status.code(), Some(1), "{wrong:?}");
    let req = finish(
        omq(&[
            "req",
            "--connect",
            &ep,
            "--plain-user",
            "admin",
            "--plain-pass",
            "secret",
            "--data",
            "ping",
        ])
        .spawn()
        .unwrap(),
    );
    assert_eq!(stdout(&req), "ping\n");
    assert_eq!(stdout(&finish(rep)), "ping\n");
}

#[test]
fn bad_keys_are_one_line_errors() {
    let out = omq(&[
        "push",
        "--connect",
        "tcp://127.0.0.1:1",
        "--curve-serverkey",
        "short",
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--curve-serverkey"), "{err}");
}

/// A Z85 key may start with `-` (it is in the alphabet): it is a value, not a flag.
#[test]
fn keys_starting_with_a_dash_are_values() {
    let key = format!("-{}", "0".repeat(39));
    let out = omq(&[
        "pull",
        "--bind",
        &ipc(),
        "--curve-server",
        "--curve-secret",
        &key,
        "--count",
        "1",
        "--timeout",
        "200",
    ])
    .output()
    .unwrap();
    // Nothing arrives: the timeout's status, not an argument error.
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[cfg(feature = "bench")]
#[test]
fn bench_runs_a_chosen_case() {
    let out = finish(
        omq(&[
            "bench",
            "--quick",
            "--rounds",
            "1",
            "--pattern",
            "pushpull",
            "--transport",
            "inproc",
            "--size",
            "128",
            "--impls",
            "omq-tokio",
        ])
        .spawn()
        .unwrap(),
    );
    assert!(out.status.success(), "{out:?}");
    let table = stdout(&out);
    assert!(table.contains("## PUSH/PULL throughput, inproc"), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("| 128 B |"))
        .unwrap_or_else(|| panic!("no 128 B row in {table}"));
    assert!(row.contains("M/s") || row.contains("k/s"), "{row}");
    // The progress line.
    assert!(String::from_utf8_lossy(&out.stderr).contains("[1/1] pushpull inproc 128 B"));
    let bad = finish(omq(&["bench", "--pattern", "nosuch"]).spawn().unwrap());
    assert!(!bad.status.success());
}

#[test]
fn help_per_type_has_examples() {
    for (kind, example) in [
        ("push", "omq push --connect"),
        ("sub", "--subscribe weather."),
        ("rep", "omq rep --bind"),
        ("router", "routing id"),
    ] {
        let out = finish(omq(&[kind, "--help"]).spawn().unwrap());
        assert!(out.status.success(), "{kind}: {out:?}");
        let help = stdout(&out);
        assert!(
            help.contains("--bind <EP>"),
            "{kind}: options missing: {help}"
        );
        assert!(help.contains(example), "{kind}: {help}");
    }
}

#[test]
fn hex_and_base64_formats() {
    for (format, want) in [("hex", "6869\t796f\n"), ("base64", "aGk=\teW8=\n")] {
        let ep = ipc();
        let pull = omq(&["pull", "--bind", &ep, "--count", "1", "--format", format])
            .spawn()
            .unwrap();
        let push = omq(&["push", "--connect", &ep, "--frames", "--data", "hi\tyo"])
            .spawn()
            .unwrap();
        assert!(finish(push).status.success());
        assert_eq!(stdout(&finish(pull)), want, "{format}");
    }
}
