//! The socket scenario suite, written once against the [`Backend`] harness.
//!
//! A backend's test file implements [`Backend`] for its `Socket` and expands
//! [`scenario_tests!`] to get one test per scenario and transport. Scenarios never sleep to
//! synchronise: they wait on an event (a message, a monitor event) with a deadline, and a
//! deadline that passes fails the test.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use omq_sockets::io::Io;
use omq_sockets::net::Sockets;
pub use omq_sockets::{Endpoint, Error, Monitor, MonitorEvent, Options, SocketBase, TrySendError};
pub use omq_zmtp::{Message, SocketType};

mod scenarios;
pub use scenarios::*;

/// How long any single wait may take before the scenario fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A backend's socket: omq-sockets' generic socket on the backend's I/O.
pub type Sock<B> = omq_sockets::io::Socket<<B as Backend>::Io>;

/// A raw byte stream (for misbehaving peers): the backend's tcp stream.
pub type Raw<B> = <<B as Backend>::Io as Sockets>::TcpStream;

/// A raw listener: the backend's tcp listener.
pub type RawListener<B> = <<B as Backend>::Io as Sockets>::TcpListener;

/// What a backend offers the scenarios: its I/O (whose socket, and that socket's shared API,
/// [`SocketBase`], the default methods use) and raw streams. A backend implements only what
/// differs: reading and writing raw tcp streams, and whether its runtime is single-threaded.
#[allow(async_fn_in_trait)]
pub trait Backend {
    /// The backend's implementation of omq-sockets' I/O.
    type Io: Io + Default;

    /// `Socket::new`.
    fn socket(ty: SocketType, opts: Options) -> Result<Sock<Self>, Error> {
        Sock::<Self>::new(ty, opts)
    }
    /// `Socket::bind`.
    async fn bind(s: &Sock<Self>, ep: &str) -> Result<Endpoint, Error> {
        s.bind(ep).await
    }
    /// `Socket::connect`.
    async fn connect(s: &Sock<Self>, ep: &str) -> Result<(), Error> {
        s.connect(ep).await
    }
    /// `Socket::close`.
    async fn close(s: Sock<Self>) {
        s.close().await
    }
    /// A timer.
    async fn sleep(d: Duration) {
        omq_sockets::io::sleep(&Self::Io::default(), d).await
    }
    /// A raw tcp listener on 127.0.0.1 and its `tcp://` endpoint.
    async fn raw_listen() -> (RawListener<Self>, String) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("raw bind");
        l.set_nonblocking(true).expect("non-blocking");
        let ep = format!("tcp://{}", l.local_addr().expect("local address"));
        (
            <Self::Io as Sockets>::tcp_listener(l).expect("raw listener"),
            ep,
        )
    }
    /// Accepts one raw connection.
    async fn raw_accept(l: &RawListener<Self>) -> Raw<Self> {
        <Self::Io as Sockets>::accept_tcp(l)
            .await
            .expect("raw accept")
            .0
    }
    /// Connects a raw stream to a `tcp://host:port` endpoint.
    async fn raw_connect(ep: &str) -> Raw<Self> {
        let (host, port) = ep
            .trim_start_matches("tcp://")
            .rsplit_once(':')
            .expect("host:port");
        let port = port.parse().expect("port");
        <Self::Io as Sockets>::connect_tcp(host, port)
            .await
            .expect("raw connect")
    }
    /// Writes all of `data`.
    async fn raw_write(r: &mut Raw<Self>, data: &[u8]) -> std::io::Result<()>;
    /// Reads some bytes (0 at end of stream).
    async fn raw_read(r: &mut Raw<Self>, buf: &mut [u8]) -> std::io::Result<usize>;

    /// Whether the test's task and the sockets' connections share one thread, so that they
    /// interleave only where one of them awaits (a current-thread runtime).
    fn single_threaded() -> bool {
        true
    }

    /// `unbind`.
    async fn unbind(s: &Sock<Self>, ep: &str) -> Result<(), Error> {
        s.unbind(ep).await
    }
    /// `disconnect`.
    async fn disconnect(s: &Sock<Self>, ep: &str) -> Result<(), Error> {
        s.disconnect(ep).await
    }
    /// `send`.
    async fn send(s: &Sock<Self>, m: Message) -> Result<(), Error> {
        s.send(m).await
    }
    /// `try_send`.
    fn try_send(s: &Sock<Self>, m: Message) -> Result<(), TrySendError> {
        s.try_send(m)
    }
    /// `recv`.
    async fn recv(s: &Sock<Self>) -> Result<Message, Error> {
        s.recv().await
    }
    /// `try_recv`.
    fn try_recv(s: &Sock<Self>) -> Result<Option<Message>, Error> {
        s.try_recv()
    }
    /// `subscribe`.
    fn subscribe(s: &Sock<Self>, topic: &[u8]) -> Result<(), Error> {
        s.subscribe(topic)
    }
    /// `unsubscribe`.
    fn unsubscribe(s: &Sock<Self>, topic: &[u8]) -> Result<(), Error> {
        s.unsubscribe(topic)
    }
    /// `monitor`.
    fn monitor(s: &Sock<Self>) -> Monitor {
        s.monitor()
    }
    /// The monitor's next event.
    async fn next_event(m: &mut Monitor) -> Option<MonitorEvent> {
        m.next().await
    }
}

/// The transports every scenario runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `tcp://127.0.0.1:0`.
    Tcp,
    /// `ipc://` with a fresh path.
    Ipc,
    /// `inproc://` with a fresh name.
    Inproc,
}

impl Transport {
    /// A fresh endpoint to bind.
    pub fn endpoint(self) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        match self {
            Self::Tcp => "tcp://127.0.0.1:0".into(),
            Self::Ipc => format!(
                "ipc://{}/omq-scenario-{}-{n}.sock",
                std::env::temp_dir().display(),
                std::process::id()
            ),
            Self::Inproc => format!("inproc://scenario-{n}"),
        }
    }
}

/// Runs `f` with a deadline; panics with `what` when the deadline passes first.
pub async fn within<B: Backend, T>(what: &str, f: impl Future<Output = T>) -> T {
    within_for::<B, T>(DEADLINE, what, f).await
}

/// [`within`] with an explicit deadline.
///
/// The deadline is polled first: a future that only completes because the deadline's timer
/// polled it again (a lost wakeup) fails too.
pub async fn within_for<B: Backend, T>(d: Duration, what: &str, f: impl Future<Output = T>) -> T {
    match race(B::sleep(d), f).await {
        Either::Right(v) => v,
        Either::Left(()) => panic!("deadline passed waiting for {what}"),
    }
}

pub use omq_sockets::io::{Either, join, race};

/// Receives with the deadline.
pub async fn recv<B: Backend>(s: &Sock<B>) -> Message {
    within::<B, _>("a message", B::recv(s)).await.expect("recv")
}

/// Waits for a monitor event that `pred` accepts, skipping others.
pub async fn expect_event<B: Backend>(
    m: &mut Monitor,
    what: &str,
    pred: impl Fn(&MonitorEvent) -> bool,
) -> MonitorEvent {
    within::<B, _>(what, async {
        loop {
            let ev = B::next_event(m).await.expect("monitor ended");
            if pred(&ev) {
                return ev;
            }
        }
    })
    .await
}

/// A message of the given frames.
pub fn msg<const N: usize>(frames: [&[u8]; N]) -> Message {
    frames.into_iter().collect()
}

/// The frames of a message as byte vectors.
pub fn frames(m: &Message) -> Vec<Vec<u8>> {
    m.iter().map(|f| f.as_slice().to_vec()).collect()
}

/// Options with a small linger (0) so that test sockets close fast.
pub fn opts() -> Options {
    let mut o = Options::default();
    o.linger = Some(Duration::ZERO);
    o
}

/// [`opts`] changed by `f`.
pub fn opts_with(f: impl FnOnce(&mut Options)) -> Options {
    let mut o = opts();
    f(&mut o);
    o
}

/// Sends `make(i)` until the receiver gets one (for subscriptions and connections that settle
/// asynchronously), then returns what arrived.
pub async fn send_until_received<B: Backend>(
    tx: &Sock<B>,
    rx: &Sock<B>,
    make: impl Fn() -> Message,
) -> Message {
    within::<B, _>("the first message through", async {
        loop {
            let _ = B::try_send(tx, make());
            match race(B::recv(rx), B::sleep(Duration::from_millis(5))).await {
                Either::Left(m) => return m.expect("recv"),
                Either::Right(()) => {}
            }
        }
    })
    .await
}

/// Bytes of a topic for tests.
pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Expands to one `#[test]`-attributed async test per scenario and transport, for a backend.
/// `$attr` is the test attribute (`tokio::test` or the like).
#[macro_export]
macro_rules! scenario_tests {
    ($backend:ty, #[$attr:meta]) => {
        $crate::scenario_tests!(@each $backend, #[$attr],
            push_pull, push_round_robin, pull_fair_queue, req_rep, recv_spin_settings_deliver,
            req_state_machine,
            dealer_router_identities, router_mandatory, pub_sub_filtering, xpub_xsub_subscriptions,
            pair_exchange, hwm_blocks_and_try_send_hands_back, small_receive_pipe_resumes_buffered_input,
            pub_drops_at_hwm,
            pub_tight_loop_keeps_up,
            connect_before_bind, linger_delivers_queued, cancelled_recv_loses_nothing,
            multipart_atomic_under_load, monitor_reports_handshake, reconnect_restores_flow,
            sub_resubscribes_after_reconnect, unbind_and_disconnect, xpub_verbose, xpub_nodrop,
            conflate_keeps_latest, bad_arguments_are_errors, departed_peer_leaves_round_robin, immediate_skips_unconnected_endpoints,
            req_round_robins_over_reps, linger_survives_unread_input, close_interrupts_reconnect_wait,
            ipc_rebind_keeps_the_new_file, inproc_clones_are_copied_and_dropped_by_the_sender
        );
        $crate::scenario_tests!(@network $backend, #[$attr],
            garbage_peer_does_not_disturb, heartbeat_drops_silent_peer,
            full_receive_pipe_is_no_heartbeat_timeout, wrong_socket_type_refused,
            handshake_stall_times_out, oversized_message_drops_peer, huge_frame_header_is_harmless,
            close_does_not_wait_for_handshakes, disconnected_pending_inproc_leaves_no_trace
        );
    };
    (@each $backend:ty, #[$attr:meta], $($name:ident),*) => {
        $(
            mod $name {
                use super::*;
                #[$attr]
                async fn tcp() { $crate::$name::<$backend>($crate::Transport::Tcp).await }
                #[$attr]
                async fn ipc() { $crate::$name::<$backend>($crate::Transport::Ipc).await }
                #[$attr]
                async fn inproc() { $crate::$name::<$backend>($crate::Transport::Inproc).await }
            }
        )*
    };
    (@network $backend:ty, #[$attr:meta], $($name:ident),*) => {
        $(
            mod $name {
                use super::*;
                #[$attr]
                async fn tcp() { $crate::$name::<$backend>($crate::Transport::Tcp).await }
            }
        )*
    };
}
