//! `omq`: send, receive, answer and watch ZeroMQ sockets from a shell.
//!
//! ```text
//! omq pull --bind tcp://*:5555 --count 10
//! echo hello | omq push --connect tcp://localhost:5555
//! omq rep --bind ipc:///tmp/svc --echo
//! omq req --connect ipc:///tmp/svc --data ping
//! omq sub --connect tcp://localhost:5556 --subscribe weather. --format json
//! omq keygen
//! omq pull --bind tcp://*:5555 --curve-server --curve-secret <SECRET>
//! omq push --connect tcp://host:5555 --curve-serverkey <SERVER PUBLIC> --data hi
//! omq bench --pattern pushpull --transport tcp --size 128
//! ```

use std::process::ExitCode;
use std::time::Duration;

use std::io::Write;

use clap::{Parser, ValueEnum};
use omq_sockets::api::{
    AuthHandler, AuthReply, CurveKeyPair, CurvePublicKey, CurveSecretKey, Message, MonitorEvent,
    Options, SocketType, ZapRequest,
};
use omq_sockets::io::{Either, Socket, join, race, sleep};

mod format;
mod runtime;

use format::Format;
use runtime::Runtime;

/// Socket types, as the command line spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Kind {
    Push,
    Pull,
    Pub,
    Sub,
    Req,
    Rep,
    Dealer,
    Router,
    Pair,
    Xpub,
    Xsub,
    /// Not a socket: print a new CURVE key pair (Z85 `public` and `secret` lines).
    Keygen,
}

impl Kind {
    fn socket_type(self) -> SocketType {
        match self {
            Self::Push => SocketType::Push,
            Self::Pull => SocketType::Pull,
            Self::Pub => SocketType::Pub,
            Self::Sub => SocketType::Sub,
            Self::Req => SocketType::Req,
            Self::Rep => SocketType::Rep,
            Self::Dealer => SocketType::Dealer,
            Self::Router => SocketType::Router,
            Self::Pair => SocketType::Pair,
            Self::Xpub => SocketType::XPub,
            Self::Xsub => SocketType::XSub,
            Self::Keygen => unreachable!("keygen is not a socket"),
        }
    }

    fn sends(self) -> bool {
        !matches!(self, Self::Pull | Self::Sub | Self::Rep | Self::Keygen)
    }

    fn receives(self) -> bool {
        !matches!(self, Self::Push | Self::Pub | Self::Keygen)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    Tokio,
    Compio,
}

/// Send, receive, answer and watch ZeroMQ sockets.
///
/// Sending sockets send each line of stdin as a message (or --data); receiving sockets print one
/// line per message, frames joined by a TAB.
#[derive(Debug, Parser)]
#[command(
    name = "omq",
    version,
    after_help = "Examples:\n  \
        omq pull --bind tcp://*:5555 --count 10\n  \
        echo hello | omq push --connect tcp://localhost:5555\n  \
        omq rep --bind ipc:///tmp/svc --echo\n  \
        omq req --connect ipc:///tmp/svc --data ping\n  \
        omq sub --connect tcp://localhost:5556 --subscribe weather. --format json\n\n\
        Security:\n  \
        omq keygen\n  \
        omq pull --bind tcp://*:5555 --curve-server --curve-secret SECRET [--curve-allow KEY]\n  \
        omq push --connect tcp://host:5555 --curve-serverkey SERVER_PUBLIC --data hi\n  \
        omq rep --bind tcp://*:5557 --plain-server --plain-user admin --plain-pass secret\n  \
        omq req --connect tcp://host:5557 --plain-user admin --plain-pass secret --data ping\n\n\
        Benchmark (omq against libzmq, zmq.rs and plain sockets; progress on stderr):\n  \
        omq bench --pattern pushpull --transport tcp --size 128\n  \
        omq bench --pattern reqrep --transport ipc --quick\n  \
        omq bench --help"
)]
struct Args {
    /// The socket type.
    #[arg(value_enum)]
    kind: Kind,
    /// Bind to this endpoint (repeatable).
    #[arg(long, value_name = "EP")]
    bind: Vec<String>,
    /// Connect to this endpoint (repeatable).
    #[arg(long, value_name = "EP")]
    connect: Vec<String>,
    /// The I/O backend.
    #[arg(long, value_enum, default_value = "tokio")]
    backend: Backend,
    /// Send this message instead of reading stdin.
    #[arg(long, value_name = "STRING")]
    data: Option<String>,
    /// Split each message into frames at TAB characters.
    #[arg(long)]
    frames: bool,
    /// Send each message this many times.
    #[arg(long, value_name = "N", default_value_t = 1)]
    repeat: u64,
    /// Wait this long between messages sent.
    #[arg(long, value_name = "MS")]
    interval: Option<u64>,
    /// How received messages are printed.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Exit after receiving this many messages.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Exit with status 1 when no message arrives for this long.
    #[arg(long, value_name = "MS")]
    timeout: Option<u64>,
    /// rep: answer every request with itself (the default).
    #[arg(long)]
    echo: bool,
    /// rep: answer every request with this.
    #[arg(long, value_name = "STRING")]
    reply: Option<String>,
    /// sub, xsub: subscribe to this prefix (repeatable; default: everything).
    #[arg(long, value_name = "PREFIX")]
    subscribe: Vec<String>,
    /// Send and receive high-water mark (messages).
    #[arg(long, value_name = "N")]
    hwm: Option<usize>,
    /// Linger on close, in ms (default: until everything is sent).
    #[arg(long, value_name = "MS")]
    linger: Option<u64>,
    /// The socket's routing id.
    #[arg(long, value_name = "ID")]
    identity: Option<String>,
    /// Heartbeat interval in ms.
    #[arg(long, value_name = "MS")]
    heartbeat_ivl: Option<u64>,
    /// Largest message accepted from peers, in bytes.
    #[arg(long, value_name = "BYTES")]
    max_msg_size: Option<u64>,
    /// Reconnect interval in ms.
    #[arg(long, value_name = "MS")]
    reconnect_ivl: Option<u64>,
    /// Print monitor events to stderr, one line each.
    #[arg(long)]
    monitor: bool,
    /// PLAIN: the user name (client), or the only user accepted (with --plain-server).
    #[arg(long, value_name = "USER")]
    plain_user: Option<String>,
    /// PLAIN: the password (client), or the only password accepted (with --plain-server).
    #[arg(long, value_name = "PASS")]
    plain_pass: Option<String>,
    /// Be the PLAIN server (without --plain-user, every user is accepted and reported with
    /// --monitor).
    #[arg(long)]
    plain_server: bool,
    /// Be the CURVE server (needs --curve-secret).
    #[arg(long)]
    curve_server: bool,
    /// Our CURVE secret key (40 Z85 characters). A client without one uses a fresh key pair.
    #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
    curve_secret: Option<String>,
    /// Our CURVE public key (checked against --curve-secret).
    #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
    curve_public: Option<String>,
    /// The CURVE server's public key: be a CURVE client.
    #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
    curve_serverkey: Option<String>,
    /// CURVE server: accept only this client public key (repeatable; default: any client).
    #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
    curve_allow: Vec<String>,
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    match raw.first().map(String::as_str) {
        Some("bench") => return bench(&raw[1..]),
        // A process that a running `omq bench` started.
        Some("--child") if cfg!(feature = "bench") => return bench(&raw),
        _ => {}
    }
    if let Some(kind) = help_for_type(&raw) {
        // `omq TYPE --help`: the options, then examples for that type.
        let mut cmd = <Args as clap::CommandFactory>::command().after_help(examples(kind));
        return match cmd.print_help() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e.to_string()),
        };
    }
    let args = Args::parse();
    if args.kind == Kind::Keygen {
        return match CurveKeyPair::generate() {
            Ok(pair) => {
                println!("public {}", pair.public.to_z85());
                println!("secret {}", pair.secret.to_z85());
                ExitCode::SUCCESS
            }
            Err(e) => fail(e.to_string()),
        };
    }
    let ran = match args.backend {
        Backend::Tokio => omq_tokio::Tokio::block_on(run::<omq_tokio::Tokio>(args)),
        Backend::Compio => omq_compio::Compio::block_on(run::<omq_compio::Compio>(args)),
    };
    match ran.and_then(|r| r) {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}

/// The socket type of `omq TYPE ... --help`.
fn help_for_type(raw: &[String]) -> Option<Kind> {
    let kind = Kind::from_str(raw.first()?, true).ok()?;
    raw.iter()
        .any(|a| a == "--help" || a == "-h")
        .then_some(kind)
}

/// Examples for one socket type, shown by `omq TYPE --help`.
fn examples(kind: Kind) -> &'static str {
    match kind {
        Kind::Push => {
            "Examples:\n  \
             echo hello | omq push --connect tcp://localhost:5555\n  \
             omq push --connect tcp://localhost:5555 --data job --repeat 100 --interval 10\n  \
             printf 'a\\tb\\n' | omq push --connect ipc:///tmp/jobs --frames"
        }
        Kind::Pull => {
            "Examples:\n  \
             omq pull --bind tcp://*:5555\n  \
             omq pull --bind tcp://*:5555 --count 10 --format json\n  \
             omq pull --connect ipc:///tmp/results --timeout 5000"
        }
        Kind::Pub => {
            "Examples:\n  \
             omq pub --bind tcp://*:5556 --data 'weather.paris 21C' --repeat 10 --interval 1000\n  \
             tail -f /var/log/syslog | omq pub --bind tcp://*:5556"
        }
        Kind::Sub => {
            "Examples:\n  \
             omq sub --connect tcp://localhost:5556\n  \
             omq sub --connect tcp://localhost:5556 --subscribe weather. --format json\n  \
             omq sub --connect tcp://localhost:5556 --count 1 --timeout 2000"
        }
        Kind::Req => {
            "Examples:\n  \
             omq req --connect tcp://localhost:5557 --data ping\n  \
             printf 'one\\ntwo\\n' | omq req --connect ipc:///tmp/svc\n  \
             omq req --connect tcp://host:5557 --curve-serverkey SERVER_PUBLIC --data ping"
        }
        Kind::Rep => {
            "Examples:\n  \
             omq rep --bind tcp://*:5557 --echo\n  \
             omq rep --bind ipc:///tmp/svc --reply pong --count 1\n  \
             omq rep --bind tcp://*:5557 --curve-server --curve-secret SECRET"
        }
        Kind::Dealer => {
            "Examples (sends stdin, prints what arrives):\n  \
             omq dealer --connect tcp://localhost:5558 --identity worker-1\n  \
             omq dealer --connect tcp://localhost:5558 --frames --data '\\tping'"
        }
        Kind::Router => {
            "Examples (prints the sender's routing id as the first frame):\n  \
             omq router --bind tcp://*:5558 --format json\n  \
             printf 'worker-1\\thello\\n' | omq router --bind tcp://*:5558 --frames"
        }
        Kind::Pair => {
            "Examples:\n  \
             omq pair --bind ipc:///tmp/pair\n  \
             echo hi | omq pair --connect ipc:///tmp/pair"
        }
        Kind::Xpub => {
            "Examples (prints subscriptions as they arrive: \\x01 topic, \\x00 to cancel):\n  \
             omq xpub --bind tcp://*:5556 --format hex"
        }
        Kind::Xsub => {
            "Examples:\n  \
             omq xsub --connect tcp://localhost:5556 --subscribe weather."
        }
        Kind::Keygen => {
            "Example:\n  \
             omq keygen   # prints `public KEY` and `secret KEY` lines (Z85)"
        }
    }
}

/// `omq bench ARGS`: the comparison harness (`omq bench --help`).
#[cfg(feature = "bench")]
fn bench(args: &[String]) -> ExitCode {
    omq_bench::main(args)
}

#[cfg(not(feature = "bench"))]
fn bench(_: &[String]) -> ExitCode {
    fail("this omq was built without `omq bench` (the `bench` feature)".into())
}

fn fail(msg: String) -> ExitCode {
    eprintln!("omq: {msg}");
    ExitCode::from(2)
}

fn options(args: &Args) -> Result<Options, String> {
    let ms = Duration::from_millis;
    let mut o = Options::default();
    if let Some(h) = args.hwm {
        o.send_hwm = h;
        o.recv_hwm = h;
    }
    o.linger = args.linger.map(ms);
    o.routing_id = args.identity.clone().map(Into::into);
    o.heartbeat_interval = args.heartbeat_ivl.map(ms);
    o.max_message_size = args.max_msg_size;
    if let Some(r) = args.reconnect_ivl {
        o.reconnect_interval = Some(ms(r));
    }
    security(args, &mut o)?;
    Ok(o)
}

/// The PLAIN and CURVE options, and an authenticator for the server roles.
fn security(args: &Args, o: &mut Options) -> Result<(), String> {
    let key = |flag: &str, text: &str| format!("{flag}: {text}");
    if let Some(k) = &args.curve_secret {
        o.curve_secret_key = Some(
            CurveSecretKey::parse(k.as_bytes())
                .map_err(|e| key("--curve-secret", &e.to_string()))?,
        );
    }
    if let Some(k) = &args.curve_public {
        o.curve_public_key = Some(
            CurvePublicKey::parse(k.as_bytes())
                .map_err(|e| key("--curve-public", &e.to_string()))?,
        );
    }
    if let Some(k) = &args.curve_serverkey {
        o.curve_server_key = Some(
            CurvePublicKey::parse(k.as_bytes())
                .map_err(|e| key("--curve-serverkey", &e.to_string()))?,
        );
        if o.curve_secret_key.is_none() {
            let pair = CurveKeyPair::generate().map_err(|e| e.to_string())?;
            o.curve_secret_key = Some(pair.secret);
        }
    }
    o.curve_server = args.curve_server;
    if args.curve_server {
        let allowed = args
            .curve_allow
            .iter()
            .map(|k| {
                CurvePublicKey::parse(k.as_bytes())
                    .map_err(|e| key("--curve-allow", &e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        o.authenticator = Some(AuthHandler::new(move |r: &ZapRequest| {
            let known = r.credentials.first().is_some_and(|c| {
                allowed.is_empty() || allowed.iter().any(|k| k.as_bytes()[..] == c[..])
            });
            if known {
                AuthReply::accept("")
            } else {
                AuthReply::deny(400, "unknown client key")
            }
        }));
    }
    if args.plain_server {
        o.plain_server = true;
        let user = args.plain_user.clone();
        let pass = args.plain_pass.clone();
        o.authenticator = Some(AuthHandler::new(move |r: &ZapRequest| {
            let matches = |want: &Option<String>, got: Option<&bytes::Bytes>| {
                want.as_ref()
                    .is_none_or(|w| got.is_some_and(|g| g[..] == *w.as_bytes()))
            };
            if matches(&user, r.credentials.first()) && matches(&pass, r.credentials.get(1)) {
                let user_id = r.credentials.first().cloned().unwrap_or_default();
                AuthReply::accept(user_id)
            } else {
                AuthReply::deny(400, "wrong user name or password")
            }
        }));
    } else if let Some(user) = &args.plain_user {
        o.plain_username = Some(user.clone().into());
        o.plain_password = Some(args.plain_pass.clone().unwrap_or_default().into());
    }
    Ok(())
}

/// The whole session on one backend: the socket, its endpoints, the work, an orderly close.
async fn run<R: Runtime>(args: Args) -> Result<ExitCode, String> {
    if args.bind.is_empty() && args.connect.is_empty() {
        return Err("give at least one --bind or --connect endpoint".into());
    }
    let socket =
        Socket::<R>::new(args.kind.socket_type(), options(&args)?).map_err(|e| e.to_string())?;
    if args.monitor {
        let mut mon = socket.monitor();
        R::spawn_detached(async move {
            while let Some(ev) = mon.next().await {
                eprintln!("{}", describe(&ev));
            }
        });
    }
    for ep in &args.bind {
        let bound = socket
            .bind(ep)
            .await
            .map_err(|e| format!("bind {ep}: {e}"))?;
        if args.monitor {
            eprintln!("bound {bound}");
        }
    }
    for ep in &args.connect {
        socket
            .connect(ep)
            .await
            .map_err(|e| format!("connect {ep}: {e}"))?;
    }
    if matches!(args.kind, Kind::Sub | Kind::Xsub) {
        if args.subscribe.is_empty() {
            socket.subscribe("").map_err(|e| e.to_string())?;
        }
        for p in &args.subscribe {
            socket.subscribe(p).map_err(|e| e.to_string())?;
        }
    }
    let code = match race(work::<R>(&socket, &args), R::ctrl_c()).await {
        Either::Left(r) => r?,
        Either::Right(()) => ExitCode::SUCCESS,
    };
    // Honours linger: what is queued is sent first (Ctrl-C again to stop waiting).
    let _ = race(socket.close(), R::ctrl_c()).await;
    Ok(code)
}

/// The messages to send: `--data` (repeated) or stdin's lines.
struct Input {
    data: Option<Message>,
    left: u64,
    lines: Option<blume::Receiver<Result<String, String>>>,
    frames: bool,
    repeat: u64,
    pending: Option<(Message, u64)>,
}

impl Input {
    fn new(args: &Args) -> Self {
        let frames = args.frames;
        match &args.data {
            Some(d) => Self {
                data: Some(to_message(d, frames)),
                left: args.repeat,
                lines: None,
                frames,
                repeat: args.repeat,
                pending: None,
            },
            None => Self {
                data: None,
                left: 0,
                lines: Some(stdin_lines()),
                frames,
                repeat: args.repeat,
                pending: None,
            },
        }
    }

    async fn next(&mut self) -> Result<Option<Message>, String> {
        if let Some(d) = &self.data {
            if self.left == 0 {
                return Ok(None);
            }
            self.left -= 1;
            return Ok(Some(d.clone()));
        }
        if let Some((m, n)) = &mut self.pending {
            if *n > 0 {
                *n -= 1;
                return Ok(Some(m.clone()));
            }
        }
        let Some(lines) = &mut self.lines else {
            return Ok(None);
        };
        match lines.recv().await {
            Ok(Ok(line)) => {
                let m = to_message(&line, self.frames);
                self.pending = Some((m.clone(), self.repeat.saturating_sub(1)));
                Ok(Some(m))
            }
            Ok(Err(e)) => Err(e),
            // End of input.
            Err(_) => Ok(None),
        }
    }
}

/// Stdin's lines, read by a thread (the same on every runtime); the channel closes at the end
/// of input. Bounded, so a large input is read only as fast as it is sent.
fn stdin_lines() -> blume::Receiver<Result<String, String>> {
    let (tx, rx) = blume::bounded(1024);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let failed = line.is_err();
            let line = line.map_err(|e| format!("reading stdin: {e}"));
            if tx.send_blocking(line).is_err() || failed {
                break;
            }
        }
    });
    rx
}

fn to_message(text: &str, frames: bool) -> Message {
    if frames {
        text.split('\t').collect()
    } else {
        Message::from(text)
    }
}

async fn work<R: Runtime>(socket: &Socket<R>, args: &Args) -> Result<ExitCode, String> {
    match args.kind {
        // One request, one reply, in turn.
        Kind::Req => send_all(socket, args).await,
        k if k.sends() && !k.receives() => send_all(socket, args).await,
        k if k.receives() && !k.sends() => receive(socket, args).await,
        // Both ways: send stdin (or --data) while printing what arrives.
        _ => {
            let (sent, received) = join(send_all(socket, args), receive(socket, args)).await;
            sent?;
            received
        }
    }
}

/// Sends every input message; `req` prints each reply before the next request.
async fn send_all<R: Runtime>(socket: &Socket<R>, args: &Args) -> Result<ExitCode, String> {
    let mut input = Input::new(args);
    let mut first = true;
    while let Some(m) = input.next().await? {
        if let (Some(ms), false) = (args.interval, first) {
            sleep(&R::default(), Duration::from_millis(ms)).await;
        }
        first = false;
        socket.send(m).await.map_err(|e| format!("send: {e}"))?;
        if args.kind == Kind::Req {
            let Some(reply) = next(socket, args).await? else {
                return Ok(ExitCode::from(1));
            };
            print(args, &reply)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits for the next message, or `None` after the idle timeout.
async fn next<R: Runtime>(socket: &Socket<R>, args: &Args) -> Result<Option<Message>, String> {
    let r = match args.timeout {
        Some(ms) => match race(
            socket.recv(),
            sleep(&R::default(), Duration::from_millis(ms)),
        )
        .await
        {
            Either::Left(r) => r,
            Either::Right(()) => return Ok(None),
        },
        None => socket.recv().await,
    };
    r.map(Some).map_err(|e| format!("recv: {e}"))
}

/// Prints one message as a line. Stdout is written directly: a line at a time, flushed.
fn print(args: &Args, m: &Message) -> Result<(), String> {
    let mut line = args.format.render(m);
    line.push('\n');
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}

/// Prints what arrives; `rep` answers each request (`--reply`, or the request itself).
async fn receive<R: Runtime>(socket: &Socket<R>, args: &Args) -> Result<ExitCode, String> {
    let reply = args.reply.as_deref().map(|r| to_message(r, args.frames));
    let mut n = 0u64;
    while args.count.is_none_or(|c| n < c) {
        let Some(m) = next(socket, args).await? else {
            return Ok(ExitCode::from(1));
        };
        print(args, &m)?;
        if args.kind == Kind::Rep {
            let answer = match &reply {
                Some(r) if !args.echo => r.clone(),
                _ => m,
            };
            socket
                .send(answer)
                .await
                .map_err(|e| format!("send: {e}"))?;
        }
        n += 1;
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(ev: &MonitorEvent) -> String {
    format!("monitor: {ev:?}")
}
