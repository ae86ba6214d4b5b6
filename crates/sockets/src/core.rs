//! The runtime-independent socket: per-peer pipes, routing, REQ/REP state, subscriptions.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use omq_zmtp::{Frame, Message, PeerInfo, SocketType};

use crate::error::{Error, TrySendError};
use crate::monitor::MonitorEvent;
use crate::wait::WaitList;
use crate::{Options, SubscriptionTrie};

/// A peer's number within one socket.
pub type PeerId = u64;

/// How long a receive looks for a message before it announces its wait on inproc pipes (see
/// [`pauses_before_waiting`]).
const INPUT_PAUSE: Duration = Duration::from_micros(1);

/// Spin-loop hints between two looks during [`INPUT_PAUSE`] (some 0.4-1.5 µs on x86).
const INPUT_PAUSE_SPINS: u32 = 16;

/// Whether a receive that found nothing looks again for a moment before it announces its wait.
///
/// Announcing a wait on an inproc pipe costs a barrier on every thread of the process
/// (`yring::confirm_waits`, a `membarrier` system call that interrupts the sending thread's
/// CPU). A receiver that keeps up with a steady sender finds its pipes empty now and then with
/// the next message a fraction of a microsecond away; the barrier's re-check then finds it, and
/// the barrier was paid for nothing. On a virtual machine in a phase where interrupting another
/// CPU is slow, that was one barrier per 33 to 330 messages, and inproc PUSH/PULL of 8 B ran at 2.5
/// M/s; with a look first, 4.3 M/s (libzmq: 3.5 M/s; 12.7 M/s outside such phases, unchanged).
/// A receive pauses only after a wait that found its message before sleeping, so a receiver of
/// sparse traffic, which sleeps on every wait, never does; and only when one of its pipes is
/// an inproc one (pipes from connections announce with one atomic instruction, and their
/// engine may need the thread).
fn pauses_before_waiting(st: &State) -> bool {
    st.streaming
        && st
            .inp
            .iter()
            .any(|p| p.rx.publish_mode() == yring::Publish::Store)
}

/// A command from the socket to one connection's engine, on the control path (never behind
/// data).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerCommand {
    /// Send SUBSCRIBE (or a `\x01topic` message to a ZMTP 3.0 peer).
    Subscribe(Bytes),
    /// Send CANCEL (or `\x00topic`).
    Cancel(Bytes),
    /// The socket is closed: send what is queued, for at most `linger` (`None`: no limit), then
    /// close the connection.
    Close {
        /// How long queued messages may still be sent.
        linger: Option<Duration>,
    },
}

/// How subscriptions reach a peer.
#[derive(Debug)]
pub(crate) enum PeerLink {
    /// A ZMTP connection: commands go to its engine.
    Zmtp(blume::Sender<PeerCommand>),
    /// An inproc peer: subscriptions are applied to the other socket directly. `None` until the
    /// inproc endpoint is bound.
    Inproc(Option<(Weak<Core>, PeerId)>),
}

#[derive(Debug)]
struct OutPeer {
    id: PeerId,
    tx: yring::Producer<Message>,
    /// What this peer subscribed to (PUB, XPUB).
    subs: SubscriptionTrie,
    link: PeerLink,
    /// The handshake (or inproc attach) is complete.
    established: bool,
}

/// An inproc receive copies a message of at most this many bytes (all frames together) that
/// shares a payload with the sender's ([`Frame::is_clone`]: clones of one payload, as a PUB's
/// fan-out or a sender that keeps its payload makes) into memory of its own, and leaves the
/// sender's in its slot of the pipe: the pipe is a keeping ring (`yring::channel_keeping`), so
/// the sending socket drops it in its next pass over the slots the receiver released (or the
/// pipe's drop does).
///
/// Otherwise both threads write the payload's reference count, one cache line, for every
/// message (inproc 128 B: 6.5 M/s against 15-19 with the copy). Copying stops paying at a few
/// KiB, where the copy costs what the line did. A payload only the message holds is left as
/// it is: copying it would cost an allocation more than its free on this thread does.
const LOCAL_COPY_MAX: usize = 1024;

/// One socket's ends of an inproc pipe pair.
#[derive(Debug)]
pub(crate) struct InprocEnds {
    /// Messages to the peer.
    pub(crate) tx: yring::Producer<Message>,
    /// Messages from the peer.
    pub(crate) rx: yring::Consumer<Message>,
}

impl InprocEnds {
    /// The two sockets' ends of a new pipe pair: `a_to_b` and `b_to_a` slots each way.
    pub(crate) fn pair(a_to_b: usize, b_to_a: usize) -> (Self, Self) {
        // The two sockets' tasks usually run on different threads, and a receiver that
        // sleeps takes a batch when it wakes: the producer publishes with a plain store and
        // the consumer pays for the barrier when it sleeps (see yring's `Publish`). The slots
        // keep what a receive copied, for the sender to drop (see [`LOCAL_COPY_MAX`]).
        let ring = |cap| yring::channel_keeping(cap, yring::Publish::Store);
        let (a_tx, b_rx) = ring(a_to_b);
        let (b_tx, a_rx) = ring(b_to_a);
        (Self { tx: a_tx, rx: a_rx }, Self { tx: b_tx, rx: b_rx })
    }
}

/// A received message and what its sender's handshake established (`None`: an inproc peer).
pub type MessageWithPeer = (Message, Option<Arc<PeerInfo>>);

#[derive(Debug)]
struct InPeer {
    id: PeerId,
    rx: yring::Consumer<Message>,
    /// An inproc peer: `rx` keeps in its slots the small messages that a receive copies (see
    /// [`LOCAL_COPY_MAX`]).
    inproc: bool,
    /// The routing id ROUTER prepends to this peer's messages.
    routing_id: Bytes,
    /// What the peer's ZMTP handshake established (`None` for inproc peers).
    info: Option<Arc<PeerInfo>>,
}

#[derive(Debug, Default)]
struct State {
    out: Vec<OutPeer>,
    /// Round-robin cursor into `out`.
    rr: usize,
    inp: Vec<InPeer>,
    /// Fair-queue cursor into `inp`.
    fq: usize,
    /// ROUTER: routing id to peer.
    by_rid: HashMap<Bytes, PeerId>,
    /// SUB/XSUB: our subscriptions (counted), re-sent to every new or reconnected peer.
    subs: SubscriptionTrie,
    /// XPUB: the union of the peers' subscriptions, to pass each one up once.
    xpub_union: SubscriptionTrie,
    /// XPUB: subscription messages waiting for `recv`.
    pending: VecDeque<Message>,
    /// REQ: the peer whose reply we wait for.
    req_peer: Option<PeerId>,
    /// REP: the peer and envelope of the request being answered.
    rep: Option<(PeerId, Vec<Frame>)>,
    /// PAIR: the one peer.
    pair_peer: Option<PeerId>,
    next_id: PeerId,
    next_rid: u32,
    closed: bool,
    /// The last receive that announced a wait found a message before it slept: the peers send
    /// steadily, and the next wait pauses before it pays a barrier (see
    /// [`pauses_before_waiting`]).
    streaming: bool,
    /// Inproc peers removed under the lock, to be told once it is released.
    unlinked: Vec<(Weak<Core>, PeerId)>,
}

impl InPeer {
    /// The next fetched message (there must be one). Inproc: a small one is a copy, and the
    /// sender's stays in the pipe for the sender to drop.
    #[inline(always)]
    fn pop_fetched(&mut self) -> Message {
        // Tested apart, so that a connection's message still moves from the slot into the
        // result whole (step 16 of the performance journal).
        if !self.inproc {
            return self.rx.pop_fetched();
        }
        self.pop_inproc()
    }

    /// [`pop_fetched`](Self::pop_fetched) of an inproc peer.
    #[inline(never)]
    fn pop_inproc(&mut self) -> Message {
        self.rx.pop_fetched_with(localize)
    }
}

/// A copy of the message in `slot`, in memory of this thread's, if it is at most
/// [`LOCAL_COPY_MAX`] bytes and has a frame cloned from one the sender keeps
/// ([`Frame::is_clone`]); the original stays in the slot. Otherwise the message itself, taken
/// from the slot. A payload that only this message holds is taken as it is: its reference count
/// is this thread's alone.
#[inline]
fn localize(slot: &mut Message) -> Message {
    match slot.frames() {
        [f] if f.is_clone() && f.len() <= LOCAL_COPY_MAX => {
            Message::single(Frame::copy_from_slice(f))
        }
        frames
            if frames.len() > 1
                && slot.size() <= LOCAL_COPY_MAX
                && frames.iter().any(Frame::is_clone) =>
        {
            let mut copy = Message::new();
            for f in frames {
                copy.push(Frame::copy_from_slice(f));
            }
            copy
        }
        _ => std::mem::take(slot),
    }
}

/// The backend's ends of one peer's pipes, handed to an [`Engine`](crate::Engine).
#[derive(Debug)]
pub struct PeerPipes {
    pub(crate) id: PeerId,
    /// Messages from the socket to the connection.
    pub(crate) outbound: yring::Consumer<Message>,
    /// Messages from the connection to the socket.
    pub(crate) inbound: yring::Producer<Message>,
    pub(crate) commands: blume::Receiver<PeerCommand>,
}

impl PeerPipes {
    /// The peer's number within its socket.
    pub fn id(&self) -> PeerId {
        self.id
    }

    /// Whether messages are queued for this peer (a closed socket's connect loop keeps trying
    /// to deliver them within the linger period).
    pub fn has_queued(&mut self) -> bool {
        self.outbound.fetch() > 0
    }
}

/// A socket's state, shared between the user's handle and the backend's connection drivers.
///
/// The user side calls [`poll_send`](Self::poll_send) / [`poll_recv`](Self::poll_recv) (or
/// the `try_` forms); the backend attaches pipes for connections and drives them with an
/// [`Engine`](crate::Engine). Messages travel through one bounded single-producer ring per peer
/// and direction (its capacity is the high-water mark), so the socket's lock is taken once per
/// user call and never by a connection's data path.
#[derive(Debug)]
pub struct Core {
    socket_type: SocketType,
    /// `recv` hands messages over as they arrive, with no envelope or state (PULL, DEALER,
    /// PAIR, XSUB, and SUB, which only filters; without `conflate`), so it may take them
    /// straight from the pipes.
    passthrough: bool,
    /// `send` load-balances plain messages over the peers (PUSH, DEALER): it may hand them
    /// straight to the next peer's pipe.
    balanced: bool,
    options: Options,
    /// Everything that changes, behind one lock taken once per `send` and per `recv`: see
    /// [`StateLock`].
    state: StateLock,
    recv_wait: Arc<WaitList>,
    send_wait: Arc<WaitList>,
    /// Engines with no pipes yet (accepted, handshake pending) wait here for `close`, each
    /// under its own token so that a finished engine leaves nothing behind.
    close_wakers: Mutex<HashMap<u64, Waker>>,
    next_token: std::sync::atomic::AtomicU64,
    recv_waker: Waker,
    send_waker: Waker,
    monitors: Mutex<Vec<blume::Sender<MonitorEvent>>>,
}

/// The lock of a socket's state: a spin lock that yields its thread while another holds it.
///
/// Its release is a plain store, where a `std::sync::Mutex` releases with an atomic swap (it has
/// to find out whether a thread sleeps on it). On x86 a locked instruction waits until the
/// thread's earlier stores are out, and on the send path those include the message just written
/// into a pipe's slot, whose cache line the receiving core holds. A yring between two threads
/// with a `Mutex` around each push moves 16-20 M items/s here, against 32-35 M with one locked
/// instruction per push. The state is held for short, bounded stretches (no I/O, no awaiting),
/// mostly by one thread at a time: the user's task, with engines joining and leaving now and
/// then, so a waiter that yields its thread is the rare case.
type StateLock = spin::mutex::SpinMutex<State, spin::relax::Yield>;

/// Pipe capacity for a high-water mark of 0 ("no limit" in libzmq): rings are allocated up
/// front, so "no limit" is a large fixed limit.
const UNLIMITED_HWM: usize = 1 << 16;

fn ring_capacity(hwm: usize) -> usize {
    if hwm == 0 { UNLIMITED_HWM } else { hwm }
}

/// A subscription or cancel message (`\x01topic` / `\x00topic`): its topic and kind.
fn as_subscription(msg: &Message) -> Option<(bool, &[u8])> {
    if msg.is_multipart() {
        return None;
    }
    let f = msg.first()?.as_slice();
    match f.first() {
        Some(1) => Some((true, &f[1..])),
        Some(0) => Some((false, &f[1..])),
        _ => None,
    }
}

fn subscription_message(subscribe: bool, topic: &[u8]) -> Message {
    let mut body = Vec::with_capacity(topic.len() + 1);
    body.push(u8::from(subscribe));
    body.extend_from_slice(topic);
    Message::from(body)
}

impl Core {
    /// A new socket core, after validating the options for this socket type.
    pub fn new(socket_type: SocketType, options: Options) -> Result<Arc<Self>, Error> {
        if socket_type.is_draft() {
            return Err(Error::NotSupported);
        }
        options.validate(socket_type)?;
        let recv_wait = WaitList::new();
        let send_wait = WaitList::new();
        Ok(Arc::new(Self {
            socket_type,
            passthrough: matches!(
                socket_type,
                SocketType::Pull
                    | SocketType::Dealer
                    | SocketType::Pair
                    | SocketType::Sub
                    | SocketType::XSub
            ) && !options.conflate,
            balanced: matches!(socket_type, SocketType::Push | SocketType::Dealer),
            options,
            state: StateLock::new(State {
                next_rid: 0x6b8b_4567,
                ..State::default()
            }),
            recv_waker: Waker::from(recv_wait.clone()),
            send_waker: Waker::from(send_wait.clone()),
            recv_wait,
            send_wait,
            close_wakers: Mutex::new(HashMap::new()),
            next_token: std::sync::atomic::AtomicU64::new(0),
            monitors: Mutex::new(Vec::new()),
        }))
    }

    /// The socket type.
    pub fn socket_type(&self) -> SocketType {
        self.socket_type
    }

    /// The options the socket was created with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    fn lock(&self) -> spin::mutex::SpinMutexGuard<'_, State> {
        self.state.lock()
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// A token for [`poll_closed`](Self::poll_closed).
    pub fn close_token(&self) -> u64 {
        self.next_token
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the socket is closed; if not, the task is woken when it is (until
    /// [`forget_close`](Self::forget_close) of the same token).
    pub fn poll_closed(&self, token: u64, cx: &Context<'_>) -> bool {
        self.close_wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token, cx.waker().clone());
        self.is_closed()
    }

    /// Drops the registration of [`poll_closed`](Self::poll_closed).
    pub fn forget_close(&self, token: u64) {
        self.close_wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&token);
    }

    // ----- monitor -----

    /// A new receiver of this socket's monitor events (from now on).
    pub fn monitor(&self) -> blume::Receiver<MonitorEvent> {
        let (tx, rx) = blume::unbounded();
        self.monitors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tx);
        rx
    }

    /// Reports an event to every monitor.
    pub fn emit(&self, event: MonitorEvent) {
        let mut m = self.monitors.lock().unwrap_or_else(PoisonError::into_inner);
        if m.is_empty() {
            return;
        }
        m.retain(|tx| tx.try_send(event.clone()).is_ok());
    }

    // ----- send -----

    /// Sends `msg` if a peer has room; never waits.
    pub fn try_send(&self, msg: Message) -> Result<(), TrySendError> {
        match self.send_now(msg, None) {
            Ok(None) => Ok(()),
            Ok(Some(m)) => Err(TrySendError::Full(m)),
            Err(e) => Err(TrySendError::Failed(e)),
        }
    }

    /// Sends the message in `msg` (taking it) or, when every eligible peer is at its high-water
    /// mark, leaves it there and arranges for the task to be woken when that may have changed.
    pub fn poll_send(
        &self,
        cx: &mut Context<'_>,
        msg: &mut Option<Message>,
    ) -> Poll<Result<(), Error>> {
        if self.balanced && self.send_to_next(msg) {
            return Poll::Ready(Ok(()));
        }
        let Some(m) = msg.take() else {
            return Poll::Ready(Ok(()));
        };
        match self.send_now(m, Some(cx)) {
            Ok(None) => Poll::Ready(Ok(())),
            Ok(Some(m)) => {
                *msg = Some(m);
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// The fast path of PUSH and DEALER: hands the message in `msg` to the next peer in
    /// round-robin order if that one has room. Returns `false` (the message still in `msg`)
    /// for everything else: no message, an empty one, a full or gone peer, a closed socket;
    /// [`send_locked`](Self::send_locked) then decides.
    #[inline]
    fn send_to_next(&self, msg: &mut Option<Message>) -> bool {
        if msg.as_ref().is_none_or(Message::is_empty) {
            return false;
        }
        let mut st = self.lock();
        let n = st.out.len();
        if st.closed || n == 0 {
            return false;
        }
        // The cursor is at most `n` (one past the last peer used), unless peers left since.
        let idx = if st.rr < n { st.rr } else { 0 };
        let Some(m) = msg.as_mut() else {
            return false;
        };
        // The message is moved out of the `Option` whole, with a placeholder (an empty inline
        // frame, whose drop is nothing) left in its place: `Option::take` stored the tag byte
        // and the other 63 bytes apart, and the move into the pipe's slot then waited for those
        // stores.
        match st.out[idx]
            .tx
            .push_publish(std::mem::replace(m, Message::single(Frame::new())))
        {
            Ok(()) => {
                st.rr = idx + 1;
                // The placeholder needs no drop: forgetting it spares re-reading its tag.
                std::mem::forget(msg.take());
                true
            }
            Err(yring::PushError::Full(m) | yring::PushError::Disconnected(m)) => {
                *msg = Some(m);
                false
            }
        }
    }

    /// [`send_locked`](Self::send_locked) under the lock, then tells the inproc peers that a
    /// send found gone (rare: the check is one comparison).
    #[inline]
    fn send_now(
        &self,
        msg: Message,
        cx: Option<&mut Context<'_>>,
    ) -> Result<Option<Message>, Error> {
        let mut st = self.lock();
        let r = self.send_locked(&mut st, msg, cx);
        if !st.unlinked.is_empty() {
            let unlinked = std::mem::take(&mut st.unlinked);
            drop(st);
            notify_unlinked(unlinked);
        }
        r
    }

    /// Returns `Some(msg)` when it would block (after arming wakeups when `cx` is given).
    #[inline]
    fn send_locked(
        &self,
        st: &mut State,
        msg: Message,
        cx: Option<&mut Context<'_>>,
    ) -> Result<Option<Message>, Error> {
        if st.closed {
            return Err(Error::Closed);
        }
        if msg.is_empty() {
            return Err(Error::EmptyMessage);
        }
        match self.socket_type {
            SocketType::Push | SocketType::Dealer => Ok(self.load_balance(st, msg, cx).err()),
            SocketType::Req => {
                if st.req_peer.is_some() {
                    return Err(Error::State);
                }
                let mut msg = msg;
                msg.push_front(Frame::new());
                match self.load_balance(st, msg, cx) {
                    Ok(id) => {
                        st.req_peer = Some(id);
                        Ok(None)
                    }
                    Err(mut m) => {
                        m.pop_front();
                        Ok(Some(m))
                    }
                }
            }
            SocketType::Pair => self.pair_send(st, msg, cx),
            SocketType::Pub => {
                self.fan_out(st, msg);
                Ok(None)
            }
            SocketType::XPub => {
                if self.options.xpub_nodrop && !self.fan_out_has_room(st, &msg, cx) {
                    return Ok(Some(msg));
                }
                self.fan_out(st, msg);
                Ok(None)
            }
            SocketType::XSub => {
                if let Some((on, topic)) = as_subscription(&msg) {
                    let topic = Bytes::copy_from_slice(topic);
                    self.subscription_locked(st, on, topic);
                } else {
                    self.send_to_all(st, msg);
                }
                Ok(None)
            }
            SocketType::Router => self.router_send(st, msg, cx),
            SocketType::Rep => {
                let Some((peer, envelope)) = st.rep.take() else {
                    return Err(Error::State);
                };
                let mut reply = Message::from(envelope);
                for f in msg {
                    reply.push(f);
                }
                if let Some(p) = st.out.iter_mut().find(|p| p.id == peer) {
                    // A full or vanished peer loses the reply, as in libzmq.
                    let _ = p.tx.push_publish(reply);
                }
                Ok(None)
            }
            _ => Err(Error::NotSupported),
        }
    }

    /// Round-robin over peers with room. Returns the peer used, or the message back.
    #[inline]
    fn load_balance(
        &self,
        st: &mut State,
        mut msg: Message,
        mut cx: Option<&mut Context<'_>>,
    ) -> Result<PeerId, Message> {
        for _ in 0..3 {
            let mut tried = 0;
            while tried < st.out.len() {
                let idx = (st.rr + tried) % st.out.len();
                match st.out[idx].tx.push_publish(msg) {
                    Ok(()) => {
                        st.rr = idx + 1;
                        return Ok(st.out[idx].id);
                    }
                    Err(yring::PushError::Full(m)) => {
                        msg = m;
                        tried += 1;
                    }
                    Err(yring::PushError::Disconnected(m)) => {
                        msg = m;
                        self.remove_out(st, idx);
                    }
                }
            }
            let Some(cx) = cx.as_deref_mut() else {
                return Err(msg);
            };
            if !self.arm_send(st, cx, |_| true) {
                return Err(msg);
            }
        }
        // Room appeared while arming, repeatedly; try again from the executor.
        if let Some(cx) = cx {
            cx.waker().wake_by_ref();
        }
        Err(msg)
    }

    /// Registers the task as a send waiter and arms every selected pipe. Returns whether a pipe
    /// had room after all (the caller retries).
    fn arm_send(
        &self,
        st: &mut State,
        cx: &mut Context<'_>,
        select: impl Fn(&OutPeer) -> bool,
    ) -> bool {
        self.send_wait.register(cx);
        let mut fan = Context::from_waker(&self.send_waker);
        let mut ready = false;
        for p in st.out.iter_mut().filter(|p| select(p)) {
            ready |= p.tx.poll_space(&mut fan).is_ready();
        }
        ready
    }

    fn pair_send(
        &self,
        st: &mut State,
        mut msg: Message,
        mut cx: Option<&mut Context<'_>>,
    ) -> Result<Option<Message>, Error> {
        for _ in 0..3 {
            // The paired peer; before pairing, a connected one, or the only pipe (an endpoint
            // connected but not up yet queues, as in libzmq).
            let idx = match st.pair_peer {
                Some(id) => st.out.iter().position(|p| p.id == id),
                None => st
                    .out
                    .iter()
                    .position(|p| p.established)
                    .or((st.out.len() == 1).then_some(0)),
            };
            let Some(idx) = idx else {
                if let Some(cx) = cx {
                    self.send_wait.register(cx);
                }
                return Ok(Some(msg));
            };
            match st.out[idx].tx.push_publish(msg) {
                Ok(()) => return Ok(None),
                Err(yring::PushError::Full(m)) => msg = m,
                Err(yring::PushError::Disconnected(m)) => {
                    msg = m;
                    self.remove_out(st, idx);
                    continue;
                }
            }
            let Some(cx) = cx.as_deref_mut() else {
                return Ok(Some(msg));
            };
            let pair = st.pair_peer;
            if !self.arm_send(st, cx, |p| pair.is_none_or(|id| id == p.id)) {
                return Ok(Some(msg));
            }
        }
        Ok(Some(msg))
    }

    /// Whether every subscribed peer has room (XPUB_NODROP); arms the full ones when not.
    fn fan_out_has_room(
        &self,
        st: &mut State,
        msg: &Message,
        mut cx: Option<&mut Context<'_>>,
    ) -> bool {
        let topic = msg.first().map_or(&[][..], |f| f.as_slice()).to_vec();
        for _ in 0..3 {
            // A peer whose other end is gone never drains: forget it rather than wait on it.
            let mut i = 0;
            while i < st.out.len() {
                if st.out[i].tx.is_abandoned() {
                    self.remove_out(st, i);
                } else {
                    i += 1;
                }
            }
            let full: Vec<usize> = (0..st.out.len())
                .filter(|&i| {
                    let p = &mut st.out[i];
                    p.established && p.subs.matches(&topic) && p.tx.free_slots() == 0
                })
                .collect();
            if full.is_empty() {
                return true;
            }
            let Some(cx) = cx.as_deref_mut() else {
                return false;
            };
            // Arm the full peers only: one with room would wake us at once, forever.
            self.send_wait.register(cx);
            let mut fan = Context::from_waker(&self.send_waker);
            let mut changed = false;
            for i in full {
                changed |= st.out[i].tx.poll_space(&mut fan).is_ready();
            }
            if !changed {
                return false;
            }
        }
        if let Some(cx) = cx {
            cx.waker().wake_by_ref();
        }
        false
    }

    /// PUB/XPUB: a copy to every subscribed peer with room; full peers miss it.
    fn fan_out(&self, st: &mut State, msg: Message) {
        let topic = msg.first().map_or(&[][..], |f| f.as_slice());
        let mut gone = Vec::new();
        for (i, p) in st.out.iter_mut().enumerate() {
            if p.subs.matches(topic) {
                if let Err(yring::PushError::Disconnected(_)) = p.tx.push_publish(msg.clone()) {
                    gone.push(i);
                }
            }
        }
        for i in gone.into_iter().rev() {
            self.remove_out(st, i);
        }
    }

    /// XSUB data: a copy to every peer with room.
    fn send_to_all(&self, st: &mut State, msg: Message) {
        for p in &mut st.out {
            let _ = p.tx.push_publish(msg.clone());
        }
    }

    fn router_send(
        &self,
        st: &mut State,
        mut msg: Message,
        cx: Option<&mut Context<'_>>,
    ) -> Result<Option<Message>, Error> {
        // Looked up by slice: no allocation per message.
        let rid: &[u8] = msg.first().map_or(&[][..], |f| f.as_slice());
        let Some(&peer) = st.by_rid.get(rid) else {
            return if self.options.router_mandatory {
                Err(Error::HostUnreachable)
            } else {
                Ok(None)
            };
        };
        let Some(idx) = st.out.iter().position(|p| p.id == peer) else {
            return if self.options.router_mandatory {
                Err(Error::HostUnreachable)
            } else {
                Ok(None)
            };
        };
        let id_frame = msg.pop_front();
        if msg.is_empty() {
            return Ok(None);
        }
        match st.out[idx].tx.push_publish(msg) {
            Ok(()) => Ok(None),
            Err(yring::PushError::Full(mut m)) if self.options.router_mandatory => {
                if let Some(f) = id_frame {
                    m.push_front(f);
                }
                if let Some(cx) = cx {
                    if self.arm_send(st, cx, |p| p.id == peer) {
                        cx.waker().wake_by_ref();
                    }
                }
                Ok(Some(m))
            }
            Err(yring::PushError::Full(_)) => Ok(None),
            Err(yring::PushError::Disconnected(_)) => {
                self.remove_out(st, idx);
                if self.options.router_mandatory {
                    Err(Error::HostUnreachable)
                } else {
                    Ok(None)
                }
            }
        }
    }

    fn remove_out(&self, st: &mut State, idx: usize) {
        let p = st.out.remove(idx);
        if st.rr > idx {
            st.rr -= 1;
        }
        st.by_rid.retain(|_, id| *id != p.id);
        if st.pair_peer == Some(p.id) {
            st.pair_peer = None;
        }
        if let PeerLink::Inproc(Some(remote)) = p.link {
            st.unlinked.push(remote);
        }
        if self.socket_type == SocketType::XPub {
            for (topic, _) in p.subs.subscriptions() {
                if st.xpub_union.unsubscribe(&topic) || self.options.xpub_verboser {
                    st.pending.push_back(subscription_message(false, &topic));
                }
            }
            self.recv_wait.wake_all();
        }
    }

    // ----- subscriptions -----

    /// SUB/XSUB: subscribes to messages starting with `topic`.
    pub fn subscribe(&self, topic: &[u8]) -> Result<(), Error> {
        self.user_subscription(true, topic)
    }

    /// SUB/XSUB: cancels one [`subscribe`](Self::subscribe) of `topic`.
    pub fn unsubscribe(&self, topic: &[u8]) -> Result<(), Error> {
        self.user_subscription(false, topic)
    }

    fn user_subscription(&self, on: bool, topic: &[u8]) -> Result<(), Error> {
        if !matches!(self.socket_type, SocketType::Sub | SocketType::XSub) {
            return Err(Error::NotSupported);
        }
        let mut st = self.lock();
        if st.closed {
            return Err(Error::Closed);
        }
        self.subscription_locked(&mut st, on, Bytes::copy_from_slice(topic));
        Ok(())
    }

    /// libzmq's XSUB rule: every subscribe is forwarded; a cancel only when it removes the
    /// last count of the topic.
    fn subscription_locked(&self, st: &mut State, on: bool, topic: Bytes) {
        let forward = if on {
            st.subs.subscribe(&topic);
            true
        } else {
            st.subs.unsubscribe(&topic)
        };
        if forward {
            for p in &st.out {
                send_subscription(p, on, topic.clone());
            }
        }
    }

    /// A peer subscribed (`on`) or cancelled: called by its engine, or by an inproc SUB.
    pub fn peer_subscription(&self, peer: PeerId, on: bool, topic: &[u8]) {
        if !matches!(self.socket_type, SocketType::Pub | SocketType::XPub) {
            return;
        }
        let mut st = self.lock();
        let st = &mut *st;
        let Some(p) = st.out.iter_mut().find(|p| p.id == peer) else {
            return;
        };
        // Per peer, a subscription is a set member, as in libzmq's mtrie.
        let changed = if on {
            p.subs.count(topic) == 0 && p.subs.subscribe(topic)
        } else {
            p.subs.count(topic) > 0 && p.subs.unsubscribe(topic)
        };
        if self.socket_type != SocketType::XPub {
            return;
        }
        let first_or_last = changed
            && if on {
                st.xpub_union.subscribe(topic)
            } else {
                st.xpub_union.unsubscribe(topic)
            };
        let verbose = if on {
            self.options.xpub_verbose || self.options.xpub_verboser
        } else {
            self.options.xpub_verboser
        };
        if first_or_last || verbose {
            st.pending.push_back(subscription_message(on, topic));
            self.recv_wait.wake_all();
        }
    }

    // ----- receive -----

    /// Receives a message if one is queued; never waits.
    pub fn try_recv(&self) -> Result<Option<Message>, Error> {
        let mut st = self.lock();
        Ok(self.recv_locked(&mut st, None)?.map(|(m, _)| m))
    }

    /// Receives a message, or arranges for the task to be woken when one may have arrived.
    #[inline]
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Result<Message, Error>> {
        self.recv_poll(Some(cx))
    }

    /// [`poll_recv`](Self::poll_recv), or with `None` a look that registers nothing (a
    /// spinning receive, which wakes its own task).
    pub(crate) fn recv_poll(&self, cx: Option<&mut Context<'_>>) -> Poll<Result<Message, Error>> {
        let mut st = self.lock();
        if self.passthrough && !st.closed {
            if self.socket_type != SocketType::Sub {
                // The message goes from the pipe's slot into the result as one value: no
                // `Option` around it for this function to look into on the way.
                if let Some(idx) = Self::ready_fair(&mut st) {
                    return Poll::Ready(Ok(st.inp[idx].pop_fetched()));
                }
            } else if let Some(m) = self.next_subscribed(&mut st) {
                return Poll::Ready(Ok(m));
            }
        }
        match self.recv_locked(&mut st, cx) {
            Ok(Some((m, _))) => Poll::Ready(Ok(m)),
            Ok(None) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// [`poll_recv`](Self::poll_recv), with what the sender's handshake established (its
    /// metadata and authentication: libzmq's message properties). `None` for messages from
    /// inproc peers and for XPUB's subscription messages.
    pub fn poll_recv_with_peer(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<MessageWithPeer, Error>> {
        self.recv_poll_with_peer(Some(cx))
    }

    /// [`poll_recv_with_peer`](Self::poll_recv_with_peer), or with `None` a look that registers
    /// nothing, as [`recv_poll`](Self::recv_poll).
    pub(crate) fn recv_poll_with_peer(
        &self,
        cx: Option<&mut Context<'_>>,
    ) -> Poll<Result<MessageWithPeer, Error>> {
        let mut st = self.lock();
        match self.recv_locked(&mut st, cx) {
            Ok(Some((m, peer))) => {
                let info = peer.and_then(|id| {
                    st.inp
                        .iter()
                        .find(|p| p.id == id)
                        .and_then(|p| p.info.clone())
                });
                Poll::Ready(Ok((m, info)))
            }
            Ok(None) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Records what the handshake of `peer` established, for
    /// [`poll_recv_with_peer`](Self::poll_recv_with_peer).
    pub fn set_peer_info(&self, peer: PeerId, info: Arc<PeerInfo>) {
        let mut st = self.lock();
        if let Some(p) = st.inp.iter_mut().find(|p| p.id == peer) {
            p.info = Some(info);
        }
    }

    #[inline]
    fn recv_locked(
        &self,
        st: &mut State,
        mut cx: Option<&mut Context<'_>>,
    ) -> Result<Option<(Message, Option<PeerId>)>, Error> {
        if st.closed {
            return Err(Error::Closed);
        }
        match self.socket_type {
            SocketType::Pub | SocketType::Push => return Err(Error::NotSupported),
            SocketType::Req if st.req_peer.is_none() => return Err(Error::State),
            SocketType::Rep if st.rep.is_some() => return Err(Error::State),
            _ => {}
        }
        let mut paused = false;
        for _ in 0..3 {
            if let Some(m) = self.recv_ready(st)? {
                return Ok(Some(m));
            }
            let Some(cx) = cx.as_deref_mut() else {
                return Ok(None);
            };
            if !paused && pauses_before_waiting(st) {
                paused = true;
                if let Some(m) = self.pause_for_input(st)? {
                    return Ok(Some(m));
                }
            }
            // Set pending, register, re-check: the task is on the wait list before any pipe
            // is looked at, and the pipes' announcements are confirmed with one barrier for all.
            self.recv_wait.register(cx);
            let mut fan = Context::from_waker(&self.recv_waker);
            let mut ready = !st.pending.is_empty();
            for p in &mut st.inp {
                ready |= p.rx.poll_fetch_announce(&mut fan).is_ready();
            }
            if !ready && st.inp.iter().any(|p| !p.rx.wait_confirmed()) {
                yring::confirm_waits();
                for p in &mut st.inp {
                    ready |= p.rx.poll_recheck().is_ready();
                }
            }
            st.streaming = ready;
            if !ready {
                return Ok(None);
            }
        }
        if let Some(cx) = cx {
            cx.waker().wake_by_ref();
        }
        Ok(None)
    }

    /// Looks for a message for up to [`INPUT_PAUSE`] before a receive announces its wait (see
    /// [`pauses_before_waiting`]); `None` if none came.
    #[cold]
    #[inline(never)]
    fn pause_for_input(&self, st: &mut State) -> Result<Option<(Message, Option<PeerId>)>, Error> {
        let deadline = Instant::now() + INPUT_PAUSE;
        loop {
            for _ in 0..INPUT_PAUSE_SPINS {
                std::hint::spin_loop();
            }
            if let Some(m) = self.recv_ready(st)? {
                st.streaming = true;
                return Ok(Some(m));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    /// One message that is ready now, after the socket type's filtering.
    #[inline]
    fn recv_ready(&self, st: &mut State) -> Result<Option<(Message, Option<PeerId>)>, Error> {
        if self.socket_type == SocketType::XPub {
            if let Some(m) = st.pending.pop_front() {
                return Ok(Some((m, None)));
            }
        }
        while let Some((peer, idx, mut msg)) = self.fair_queue(st) {
            match self.socket_type {
                // SUB filters; XSUB passes everything, as libzmq's does.
                SocketType::Sub => {
                    let topic = msg.first().map_or(&[][..], |f| f.as_slice());
                    if st.subs.matches(topic) {
                        return Ok(Some((msg, Some(peer))));
                    }
                }
                SocketType::Router => {
                    msg.push_front(Frame::from(st.inp[idx].routing_id.clone()));
                    return Ok(Some((msg, Some(peer))));
                }
                SocketType::Req => {
                    if st.req_peer != Some(peer) {
                        continue;
                    }
                    if msg.first().is_some_and(|f| f.is_empty()) && msg.len() > 1 {
                        msg.pop_front();
                        st.req_peer = None;
                        return Ok(Some((msg, Some(peer))));
                    }
                }
                SocketType::Rep => {
                    let Some(delim) = msg.iter().position(|f| f.is_empty()) else {
                        continue;
                    };
                    let mut frames = msg.into_frames();
                    let body = frames.split_off(delim + 1);
                    if body.is_empty() {
                        continue;
                    }
                    st.rep = Some((peer, frames));
                    return Ok(Some((Message::from(body), Some(peer))));
                }
                _ => return Ok(Some((msg, Some(peer)))),
            }
        }
        Ok(None)
    }

    /// The next message in fair-queue order, with its peer and the peer's index in `st.inp`.
    #[inline]
    fn fair_queue(&self, st: &mut State) -> Option<(PeerId, usize, Message)> {
        let (idx, mut m) = Self::pop_fair(st)?;
        let p = &mut st.inp[idx];
        if self.options.conflate {
            while let Ok(newer) = p.rx.fetch_pop() {
                m = newer;
            }
        }
        Some((p.id, idx, m))
    }

    /// SUB's receive fast path (see `passthrough`): the next message in fair-queue order that
    /// matches a subscription; the others are dropped, as [`recv_ready`](Self::recv_ready) does.
    /// The other passthrough types take theirs in `recv_poll` itself.
    #[inline]
    fn next_subscribed(&self, st: &mut State) -> Option<Message> {
        loop {
            let (_, m) = Self::pop_fair(st)?;
            let topic = m.first().map_or(&[][..], |f| f.as_slice());
            if st.subs.matches(topic) {
                return Some(m);
            }
        }
    }

    /// Pops a message from the next peer in fair-queue order that has one, moves the cursor
    /// past that peer, and returns the peer's index in `st.inp` with it. Peers found gone are
    /// removed.
    #[inline(always)]
    fn pop_fair(st: &mut State) -> Option<(usize, Message)> {
        let idx = Self::ready_fair(st)?;
        Some((idx, st.inp[idx].pop_fetched()))
    }

    /// The index in `st.inp` of the next peer in fair-queue order with a message fetched and
    /// ready to pop; the cursor moves past that peer. Peers found gone are removed.
    #[inline(always)]
    fn ready_fair(st: &mut State) -> Option<usize> {
        let mut tried = 0;
        while tried < st.inp.len() {
            let mut idx = st.fq + tried;
            if idx >= st.inp.len() {
                idx -= st.inp.len();
            }
            let rx = &mut st.inp[idx].rx;
            if !rx.is_empty() || rx.fetch() > 0 {
                st.fq = idx + 1;
                return Some(idx);
            }
            if rx.is_drained() {
                st.inp.remove(idx);
                if st.fq > idx {
                    st.fq -= 1;
                }
            } else {
                tried += 1;
            }
        }
        None
    }

    // ----- peers -----

    /// Creates the pipes of a new connection-oriented peer (a ZMTP connection, or an endpoint
    /// connected before its connection exists) and attaches the socket's ends. The peer takes
    /// part in load balancing at once; it is routable by id (ROUTER) and receives our
    /// subscriptions once [`established`](Self::established) is called.
    pub fn attach(&self) -> Result<PeerPipes, Error> {
        let (cmd_tx, cmd_rx) = blume::unbounded();
        let mut st = self.lock();
        if st.closed {
            return Err(Error::Closed);
        }
        let (out_tx, out_rx) = yring::channel(ring_capacity(self.options.send_hwm));
        let (in_tx, in_rx) = yring::channel(ring_capacity(self.options.recv_hwm));
        let id = self.attach_locked(&mut st, out_tx, in_rx, PeerLink::Zmtp(cmd_tx));
        drop(st);
        self.peers_changed();
        Ok(PeerPipes {
            id,
            outbound: out_rx,
            inbound: in_tx,
            commands: cmd_rx,
        })
    }

    /// Adds a peer: its outgoing and incoming pipes.
    fn attach_locked(
        &self,
        st: &mut State,
        tx: yring::Producer<Message>,
        rx: yring::Consumer<Message>,
        link: PeerLink,
    ) -> PeerId {
        st.next_id += 1;
        let id = st.next_id;
        let inproc = matches!(link, PeerLink::Inproc(_));
        st.out.push(OutPeer {
            id,
            tx,
            subs: SubscriptionTrie::new(),
            link,
            established: false,
        });
        st.inp.push(InPeer {
            id,
            rx,
            inproc,
            routing_id: Bytes::new(),
            info: None,
        });
        id
    }

    /// The peer's handshake completed; `identity` is the routing id it announced. Makes it
    /// routable (ROUTER), claims PAIR's single slot, and (SUB, XSUB) sends it every current
    /// subscription, which restores them after a reconnect.
    ///
    /// `Err` means the socket refuses the peer (a second PAIR peer, a ROUTER routing id that is
    /// in use): the backend closes the connection and detaches the peer.
    pub fn established(&self, peer: PeerId, identity: Option<Bytes>) -> Result<(), Error> {
        {
            let mut st = self.lock();
            let st = &mut *st;
            // Checked before anything changes: a peer removed meanwhile must leave no trace.
            if st.closed || !st.out.iter().any(|p| p.id == peer) {
                return Err(Error::Closed);
            }
            if self.socket_type == SocketType::Pair && st.pair_peer.is_some_and(|p| p != peer) {
                return Err(Error::State);
            }
            let rid = if self.socket_type == SocketType::Router {
                st.by_rid.retain(|_, id| *id != peer);
                Some(match identity.filter(|i| !i.is_empty()) {
                    Some(id) if st.by_rid.contains_key(&id) => return Err(Error::State),
                    Some(id) => id,
                    // Generated: a zero byte and a counter, skipping ids a peer announced.
                    None => loop {
                        st.next_rid = st.next_rid.wrapping_add(1);
                        let mut b = vec![0u8];
                        b.extend_from_slice(&st.next_rid.to_be_bytes());
                        let b = Bytes::from(b);
                        if !st.by_rid.contains_key(&b) {
                            break b;
                        }
                    },
                })
            } else {
                None
            };
            if self.socket_type == SocketType::Pair {
                st.pair_peer = Some(peer);
            }
            if let Some(rid) = rid {
                st.by_rid.insert(rid.clone(), peer);
                if let Some(p) = st.inp.iter_mut().find(|p| p.id == peer) {
                    p.routing_id = rid;
                }
            }
            // A reconnected subscriber keeps its subscriptions (libzmq keeps the pipe's
            // entries): it re-sends them all, and per peer they are a set.
            if let Some(p) = st.out.iter_mut().find(|p| p.id == peer) {
                p.established = true;
                if matches!(self.socket_type, SocketType::Sub | SocketType::XSub) {
                    for (topic, _) in st.subs.subscriptions() {
                        send_subscription(p, true, Bytes::from(topic));
                    }
                }
            }
        }
        self.peers_changed();
        Ok(())
    }

    /// A waiting sender or receiver must re-arm on the new set of pipes.
    fn peers_changed(&self) {
        self.send_wait.wake_all();
        self.recv_wait.wake_all();
    }

    /// Removes a peer from routing at once (its connection is gone for good). Messages it
    /// delivered stay receivable until drained.
    pub fn detach(&self, peer: PeerId) {
        let mut st = self.lock();
        if let Some(idx) = st.out.iter().position(|p| p.id == peer) {
            self.remove_out(&mut st, idx);
        }
        let unlinked = std::mem::take(&mut st.unlinked);
        drop(st);
        notify_unlinked(unlinked);
        // A sender waiting on this peer's full pipe may now use another (or see it gone).
        self.peers_changed();
    }

    /// `disconnect`: removes the peer in both directions at once; what it sent and was not
    /// received yet is dropped, as in libzmq.
    pub fn disconnect_peer(&self, peer: PeerId) {
        self.detach(peer);
        let mut st = self.lock();
        if let Some(idx) = st.inp.iter().position(|p| p.id == peer) {
            st.inp.remove(idx);
            if st.fq > idx {
                st.fq -= 1;
            }
        }
    }

    /// The peer's connection went down but its pipes stay (an endpoint we connected: messages
    /// keep queueing for the next connection). It is no longer routable by id until the next
    /// [`established`](Self::established).
    pub fn disconnected(&self, peer: PeerId) {
        let mut st = self.lock();
        st.by_rid.retain(|_, id| *id != peer);
        if let Some(p) = st.out.iter_mut().find(|p| p.id == peer) {
            p.established = false;
        }
        if st.pair_peer == Some(peer) {
            st.pair_peer = None;
        }
        drop(st);
        // A sender parked on this peer (ROUTER_MANDATORY, XPUB_NODROP) re-evaluates.
        self.peers_changed();
    }

    /// Closes the socket: pending and future calls fail with [`Error::Closed`], and every
    /// connection is told to send what is queued within the linger period, then close.
    pub fn close(&self) {
        let (out, inp) = {
            let mut st = self.lock();
            if st.closed {
                return;
            }
            st.closed = true;
            (std::mem::take(&mut st.out), std::mem::take(&mut st.inp))
        };
        for p in &out {
            if let PeerLink::Zmtp(tx) = &p.link {
                let _ = tx.try_send(PeerCommand::Close {
                    linger: self.options.linger,
                });
            }
        }
        // Dropping our ends: engines drain what is left and see the pipe closed; inproc peers
        // are told directly (their rings would only show it once full).
        let unlinked: Vec<_> = out
            .iter()
            .filter_map(|p| match &p.link {
                PeerLink::Inproc(Some(remote)) => Some(remote.clone()),
                _ => None,
            })
            .collect();
        drop(out);
        drop(inp);
        notify_unlinked(unlinked);
        self.send_wait.wake_all();
        self.recv_wait.wake_all();
        let wakers = std::mem::take(
            &mut *self
                .close_wakers
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for w in wakers.into_values() {
            w.wake();
        }
    }

    // ----- inproc -----

    /// Inproc: attaches our ends of a pipe pair.
    pub(crate) fn attach_inproc(
        &self,
        ends: InprocEnds,
        remote: Option<(Weak<Core>, PeerId)>,
    ) -> Result<PeerId, Error> {
        let mut st = self.lock();
        if st.closed {
            return Err(Error::Closed);
        }
        let id = self.attach_locked(&mut st, ends.tx, ends.rx, PeerLink::Inproc(remote));
        drop(st);
        self.peers_changed();
        Ok(id)
    }

    /// Inproc: records the other socket and its number for us, once both are known.
    pub(crate) fn set_inproc_remote(&self, peer: PeerId, remote: Weak<Core>, remote_id: PeerId) {
        let mut st = self.lock();
        if let Some(p) = st.out.iter_mut().find(|p| p.id == peer) {
            p.link = PeerLink::Inproc(Some((remote, remote_id)));
        }
    }

    pub(crate) fn inproc_capacity(&self, peer_recv_hwm: usize) -> usize {
        if self.options.send_hwm == 0 || peer_recv_hwm == 0 {
            UNLIMITED_HWM
        } else {
            self.options.send_hwm.saturating_add(peer_recv_hwm)
        }
    }
}

/// Sends a subscription change to one peer. An inproc publisher is updated directly, under our
/// lock, so that changes reach it in the order they were made. (No lock cycle: a publisher never
/// calls into another socket while it holds its own lock.)
fn send_subscription(p: &OutPeer, on: bool, topic: Bytes) {
    match &p.link {
        PeerLink::Zmtp(tx) => {
            let cmd = if on {
                PeerCommand::Subscribe(topic)
            } else {
                PeerCommand::Cancel(topic)
            };
            let _ = tx.try_send(cmd);
        }
        PeerLink::Inproc(Some((remote, id))) if p.established => {
            if let Some(core) = remote.upgrade() {
                core.peer_subscription(*id, on, &topic);
            }
        }
        PeerLink::Inproc(_) => {}
    }
}

/// Tells each inproc peer that we removed it, so it stops routing to us (its end of the pipe
/// toward us stays readable until drained).
fn notify_unlinked(unlinked: Vec<(Weak<Core>, PeerId)>) {
    for (remote, id) in unlinked {
        if let Some(core) = remote.upgrade() {
            core.detach(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    use omq_zmtp::{Message, SocketType};

    use super::pauses_before_waiting;
    use crate::{Options, SocketBase};

    /// A socket of type `bound` bound to `endpoint`, and one of type `connected` connected to it.
    fn inproc_pair(
        bound: SocketType,
        connected: SocketType,
        endpoint: &str,
    ) -> (SocketBase, SocketBase) {
        let b = SocketBase::new(bound, Options::default()).unwrap();
        b.prepare_bind(endpoint).unwrap();
        let c = SocketBase::new(connected, Options::default()).unwrap();
        c.prepare_connect(endpoint).unwrap();
        (b, c)
    }

    /// A message `recv` has ready now, without waiting.
    fn recv_now(s: &SocketBase) -> Option<Message> {
        let mut cx = Context::from_waker(Waker::noop());
        match s.core().poll_recv(&mut cx) {
            Poll::Ready(r) => Some(r.expect("recv")),
            Poll::Pending => None,
        }
    }

    /// Over inproc the publisher filters when it sends, so what was queued before an
    /// unsubscribe reaches the subscriber's pipe: its `recv` (the fast path) drops it.
    #[test]
    fn sub_drops_queued_messages_it_no_longer_subscribes_to() {
        let (publ, sub) = inproc_pair(SocketType::Pub, SocketType::Sub, "inproc://core-sub-filter");
        sub.subscribe("a").unwrap();
        sub.subscribe("b").unwrap();
        for m in [b"a-1", b"b-1", b"a-2", b"b-2", b"c-1", b"a-3"] {
            publ.try_send(m).unwrap();
        }
        sub.unsubscribe("b").unwrap();
        let got: Vec<Message> = std::iter::from_fn(|| recv_now(&sub)).collect();
        assert_eq!(got, [b"a-1", b"a-2", b"a-3"].map(Message::from));
    }

    /// PUSH's fast path hands each message to the next peer in turn and leaves a full peer to
    /// the general path, which skips it.
    #[test]
    fn push_alternates_and_skips_a_full_peer() {
        let opts = || Options {
            send_hwm: 2,
            recv_hwm: 2,
            ..Options::default()
        };
        let push = SocketBase::new(SocketType::Push, opts()).unwrap();
        let a = SocketBase::new(SocketType::Pull, opts()).unwrap();
        let b = SocketBase::new(SocketType::Pull, opts()).unwrap();
        a.prepare_bind("inproc://core-push-a").unwrap();
        b.prepare_bind("inproc://core-push-b").unwrap();
        push.prepare_connect("inproc://core-push-a").unwrap();
        push.prepare_connect("inproc://core-push-b").unwrap();
        let first = |m: Message| m.frames()[0].as_slice()[0];
        let drain = |s: &SocketBase| {
            std::iter::from_fn(|| recv_now(s))
                .map(first)
                .collect::<Vec<_>>()
        };
        for i in 0u8..4 {
            push.try_send(&[i]).unwrap();
        }
        // Strict alternation while both have room.
        assert_eq!(drain(&a), [0, 2]);
        assert_eq!(drain(&b), [1, 3]);
        // Only `a` is drained from now on: `b` takes its turns until its pipe is full, then
        // everything goes to `a`, and no send fails.
        let mut to_a = Vec::new();
        for i in 4u8..40 {
            push.try_send(&[i]).unwrap();
            to_a.extend(drain(&a));
        }
        let to_b = drain(&b);
        assert!(!to_b.is_empty() && to_b.len() < 10, "{to_b:?}");
        let turns: Vec<u8> = (0..to_b.len() as u8).map(|k| 5 + 2 * k).collect();
        assert_eq!(to_b, turns, "b's turns");
        let rest: Vec<u8> = (4u8..40).filter(|i| !to_b.contains(i)).collect();
        assert_eq!(to_a, rest, "everything else, in order, to a");
    }

    /// Counts its wakes.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A receive pauses before its wait only when the last wait found its message before
    /// sleeping and one of its pipes is an inproc one; a receive that paused and found nothing
    /// still waits, and the next send wakes it.
    #[test]
    fn a_receive_pauses_only_while_streaming_over_inproc() {
        let (pull, push) = inproc_pair(SocketType::Pull, SocketType::Push, "inproc://core-pause");
        let core = pull.core();
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);

        assert!(core.poll_recv(&mut cx).is_pending());
        assert!(!core.lock().streaming, "a wait that slept");
        core.lock().streaming = true;
        assert!(pauses_before_waiting(&core.lock()));

        assert!(core.poll_recv(&mut cx).is_pending(), "paused, then waits");
        assert!(!core.lock().streaming);
        let before = wakes.0.load(Ordering::SeqCst);
        push.try_send(b"m").unwrap();
        assert!(wakes.0.load(Ordering::SeqCst) > before, "the send wakes it");
        assert_eq!(recv_now(&pull), Some(Message::from(b"m")));

        // Pipes from connections announce without a barrier: no pause.
        let tcp = SocketBase::new(SocketType::Pull, Options::default()).unwrap();
        let _pipes = tcp.core().attach().unwrap();
        tcp.core().lock().streaming = true;
        assert!(!pauses_before_waiting(&tcp.core().lock()));
    }
}
