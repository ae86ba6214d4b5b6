//! Endpoint lifecycles without I/O: the control signal of a bound or connected endpoint, the
//! reconnect policy of a connected one, and the table of a socket's endpoints.
//!
//! A backend supplies only the I/O (connect, accept, run a connection, sleep) and a few lines of
//! glue; every decision (when to retry, how long to wait, when a closed socket stops trying,
//! which monitor event to report) is made here, so that the backends cannot drift apart.

use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::core::{Core, PeerId, PeerPipes};
use crate::engine::{Engine, EngineError};
use crate::error::Error;
use crate::monitor::MonitorEvent;
use crate::{Endpoint, inproc};

/// Where an endpoint's tasks stand. It only moves forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EndpointState {
    /// Working.
    Running,
    /// The socket is closed: finish the current connection (linger), start no new one unless
    /// messages are still queued for it.
    Closing,
    /// Unbound or disconnected: stop now.
    Aborted,
}

/// The control signal of one bound or connected endpoint, shared by the socket and the
/// endpoint's tasks. Runtime-agnostic: waiting is a `Future` woken by any executor.
#[derive(Debug)]
pub struct EndpointCtl {
    state: AtomicU8,
    /// Each waiting future under its own key, removed when the future is dropped: a listener
    /// whose accepted connections come and go keeps no wakers of finished ones.
    waiters: Mutex<HashMap<u64, Waker>>,
    next_key: AtomicU64,
}

/// Removes a waiter's registration when its future is dropped.
struct Deregister<'a> {
    ctl: &'a EndpointCtl,
    key: u64,
}

impl Drop for Deregister<'_> {
    fn drop(&mut self) {
        self.ctl.waiters().remove(&self.key);
    }
}

impl EndpointCtl {
    /// A running endpoint.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            state: AtomicU8::new(0),
            waiters: Mutex::new(HashMap::new()),
            next_key: AtomicU64::new(0),
        })
    }

    fn waiters(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Waker>> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current state.
    pub fn state(&self) -> EndpointState {
        match self.state.load(Ordering::Acquire) {
            0 => EndpointState::Running,
            1 => EndpointState::Closing,
            _ => EndpointState::Aborted,
        }
    }

    /// Moves the state forward to `s` (never back) and wakes the waiters.
    pub fn set(&self, s: EndpointState) {
        let v = match s {
            EndpointState::Running => 0,
            EndpointState::Closing => 1,
            EndpointState::Aborted => 2,
        };
        self.state.fetch_max(v, Ordering::AcqRel);
        let wakers: Vec<Waker> = self.waiters().drain().map(|(_, w)| w).collect();
        for w in wakers {
            w.wake();
        }
    }

    /// Resolves with the state once `f` accepts it.
    pub async fn until(&self, f: impl Fn(EndpointState) -> bool) -> EndpointState {
        let guard = Deregister {
            ctl: self,
            key: self.next_key.fetch_add(1, Ordering::Relaxed),
        };
        poll_fn(|cx| {
            let s = self.state();
            if f(s) {
                return Poll::Ready(s);
            }
            // Set pending, register, re-check.
            self.waiters().insert(guard.key, cx.waker().clone());
            let s = self.state();
            if f(s) { Poll::Ready(s) } else { Poll::Pending }
        })
        .await
    }

    /// Resolves once the endpoint is aborted.
    pub async fn aborted(&self) {
        self.until(|s| s == EndpointState::Aborted).await;
    }
}

/// What a connect loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Attempt a connection. While the socket is closing, give up at the deadline, if any.
    Connect {
        /// When a closed socket stops trying to deliver what is queued.
        give_up_at: Option<Instant>,
    },
    /// Wait this long, then call [`Connector::waited`].
    Wait(Duration),
    /// Stop, then call [`Connector::finish`].
    Stop,
}

/// The reconnect policy of one connected endpoint, without I/O.
///
/// ```text
/// let mut step = connector.next(now);
/// loop {
///     match step {
///         Step::Stop => break,
///         Step::Wait(d) => { sleep(d) unless aborted; step = connector.waited(d, now) }
///         Step::Connect { give_up_at } => match connect(endpoint) {   // raced with ctl/give_up_at
///             Ok(stream) => {
///                 let mut engine = connector.connected(now)?;
///                 let reason = run(stream, &mut engine);            // raced with ctl.aborted()
///                 step = connector.ended(engine, &reason, now);
///             }
///             Err(e) => step = connector.connect_failed(&e),
///         },
///     }
/// }
/// connector.finish();
/// ```
#[derive(Debug)]
pub struct Connector {
    core: Arc<Core>,
    endpoint: Endpoint,
    text: String,
    ctl: Arc<EndpointCtl>,
    /// The pipes that outlive connections (`None` with `immediate`).
    pipes: Option<PeerPipes>,
    interval: Option<Duration>,
    /// Once the socket is closed: until when queued messages may still be delivered.
    linger_end: Option<Option<Instant>>,
    /// The endpoint state the last decision saw.
    seen: EndpointState,
}

impl Connector {
    /// A connect loop's policy for `endpoint`, creating the endpoint's pipes at once unless
    /// `immediate` is set (messages queue for it from now on). Returns the peer of the pipes, for
    /// `disconnect` to take them out of routing at once.
    pub fn new(
        core: Arc<Core>,
        endpoint: Endpoint,
        ctl: Arc<EndpointCtl>,
    ) -> Result<(Self, Option<PeerId>), Error> {
        let pipes = if core.options().immediate {
            None
        } else {
            Some(core.attach()?)
        };
        let peer = pipes.as_ref().map(PeerPipes::id);
        Ok((
            Self {
                interval: core.options().reconnect_interval,
                text: endpoint.to_string(),
                core,
                endpoint,
                ctl,
                pipes,
                linger_end: None,
                seen: EndpointState::Running,
            },
            peer,
        ))
    }

    /// The endpoint to connect to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The socket's options.
    pub fn options(&self) -> &crate::Options {
        self.core.options()
    }

    /// The next step from here: the first one, or again after the endpoint's state changed.
    pub fn next(&mut self, now: Instant) -> Step {
        self.decide(now)
    }

    /// Whether to (still) connect: not once aborted, and once closed only while messages are
    /// queued and the linger period lasts.
    /// The endpoint state the last step was decided on: a loop waits for it to change, so that
    /// a close between the decision and the wait is not missed.
    pub fn seen_state(&self) -> EndpointState {
        self.seen
    }

    fn decide(&mut self, now: Instant) -> Step {
        self.seen = self.ctl.state();
        match self.seen {
            EndpointState::Aborted => return Step::Stop,
            EndpointState::Closing => {}
            EndpointState::Running if !self.core.is_closed() => {
                return Step::Connect { give_up_at: None };
            }
            EndpointState::Running => {}
        }
        let linger = self.core.options().linger;
        let end = *self
            .linger_end
            .get_or_insert_with(|| linger.and_then(|l| now.checked_add(l)));
        let queued = self.pipes.as_mut().is_some_and(PeerPipes::has_queued);
        if !queued || end.is_some_and(|e| e <= now) {
            Step::Stop
        } else {
            Step::Connect { give_up_at: end }
        }
    }

    /// A connection attempt failed.
    pub fn connect_failed(&mut self, err: &io::Error) -> Step {
        self.core.emit(MonitorEvent::ConnectDelayed {
            endpoint: self.text.clone(),
            reason: err.to_string(),
        });
        let opts = self.core.options();
        if opts.reconnect_stop.conn_refused && err.kind() == io::ErrorKind::ConnectionRefused {
            return self.stop_reconnecting();
        }
        self.retry()
    }

    /// A connection is up: the engine to run on it (with the endpoint's pipes).
    pub fn connected(&mut self, now: Instant) -> Result<Engine, Error> {
        self.core.emit(MonitorEvent::Connected {
            endpoint: self.text.clone(),
        });
        Engine::new(
            self.core.clone(),
            self.pipes.take(),
            false,
            self.text.clone(),
            now,
        )
    }

    /// The connection ended with `reason`.
    pub fn ended(&mut self, engine: Engine, reason: &EngineError, now: Instant) -> Step {
        let was_established = engine.is_established();
        self.pipes = engine.finish(reason);
        if matches!(reason, EngineError::SocketClosed) {
            return Step::Stop;
        }
        if self.core.is_closed() {
            // The connection broke while the socket lingers: reconnect if messages are still
            // queued and the linger period lasts, as libzmq does.
            return self.decide(now);
        }
        // A refused peer (a second PAIR peer, a routing id in use) is retried, as libzmq does:
        // the situation may have changed by the next attempt.
        if was_established {
            self.interval = self.core.options().reconnect_interval;
        }
        // `reconnect_stop.after_disconnect` needs nothing here: a disconnected endpoint
        // (`disconnect`) stops in any case.
        if self.core.options().reconnect_stop.handshake_failed && !was_established {
            return self.stop_reconnecting();
        }
        self.retry()
    }

    fn retry(&mut self) -> Step {
        if self.ctl.state() == EndpointState::Aborted {
            return Step::Stop;
        }
        match self.interval {
            Some(d) => Step::Wait(d),
            None => Step::Stop,
        }
    }

    fn stop_reconnecting(&self) -> Step {
        self.core.emit(MonitorEvent::ReconnectStopped {
            endpoint: self.text.clone(),
        });
        Step::Stop
    }

    /// The wait of [`Step::Wait`] is over: the next attempt, with the interval doubled up to
    /// `reconnect_interval_max`.
    pub fn waited(&mut self, waited: Duration, now: Instant) -> Step {
        self.core.emit(MonitorEvent::ConnectRetried {
            endpoint: self.text.clone(),
            interval: waited,
        });
        if let Some(max) = self.core.options().reconnect_interval_max {
            self.interval = Some(waited.saturating_mul(2).min(max));
        }
        self.decide(now)
    }

    /// The loop is over: the endpoint's pipes leave the socket.
    pub fn finish(self) {
        if let Some(p) = self.pipes {
            self.core.detach(p.id());
        }
    }
}

#[derive(Debug)]
enum Attached {
    Listener(Arc<EndpointCtl>),
    Connect(Arc<EndpointCtl>, Option<PeerId>),
    InprocBound(String),
    InprocConnected(PeerId),
}

/// A socket's bound and connected endpoints, for `unbind`, `disconnect` and `close`.
#[derive(Debug, Default)]
pub struct Endpoints {
    map: Mutex<HashMap<String, Vec<Attached>>>,
}

impl Endpoints {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&self, key: String, a: Attached) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default()
            .push(a);
    }

    /// Records a listener bound at `endpoint` (as resolved); returns its control signal.
    pub fn add_listener(&self, endpoint: &Endpoint) -> Arc<EndpointCtl> {
        let ctl = EndpointCtl::new();
        self.add(endpoint.to_string(), Attached::Listener(ctl.clone()));
        ctl
    }

    /// Records a connect loop for `endpoint` whose pipes belong to `peer`.
    pub fn add_connect(&self, endpoint: &Endpoint, ctl: Arc<EndpointCtl>, peer: Option<PeerId>) {
        self.add(endpoint.to_string(), Attached::Connect(ctl, peer));
    }

    /// Binds `core` to an inproc endpoint and records it.
    pub fn bind_inproc(
        &self,
        core: &Arc<Core>,
        endpoint: &Endpoint,
        name: &str,
    ) -> Result<(), Error> {
        inproc::bind(core, name)?;
        self.add(endpoint.to_string(), Attached::InprocBound(name.to_owned()));
        Ok(())
    }

    /// Connects `core` to an inproc endpoint and records it.
    pub fn connect_inproc(
        &self,
        core: &Arc<Core>,
        endpoint: &Endpoint,
        name: &str,
    ) -> Result<(), Error> {
        let id = inproc::connect(core, name)?;
        self.add(endpoint.to_string(), Attached::InprocConnected(id));
        Ok(())
    }

    /// `unbind` (`bound`) or `disconnect` of `endpoint` (text as given by the user; it is
    /// normalised through [`Endpoint`] when it parses).
    pub fn forget(&self, core: &Arc<Core>, endpoint: &str, bound: bool) -> Result<(), Error> {
        let key = endpoint
            .parse::<Endpoint>()
            .map(|e| e.to_string())
            .unwrap_or_else(|_| endpoint.to_owned());
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let list = map.get_mut(&key).ok_or(Error::UnknownEndpoint)?;
        let (gone, kept): (Vec<_>, Vec<_>) =
            std::mem::take(list).into_iter().partition(|a| match a {
                Attached::InprocBound(_) | Attached::Listener(_) => bound,
                Attached::InprocConnected(_) | Attached::Connect(..) => !bound,
            });
        *list = kept;
        if list.is_empty() {
            map.remove(&key);
        }
        drop(map);
        if gone.is_empty() {
            return Err(Error::UnknownEndpoint);
        }
        for a in gone {
            match a {
                Attached::Listener(ctl) => ctl.set(EndpointState::Aborted),
                Attached::Connect(ctl, peer) => {
                    ctl.set(EndpointState::Aborted);
                    // Out of routing at once, not when the task gets to run.
                    if let Some(p) = peer {
                        core.disconnect_peer(p);
                    }
                }
                Attached::InprocBound(name) => {
                    inproc::unbind(core, &name);
                }
                Attached::InprocConnected(id) => {
                    inproc::forget(core, id);
                    core.disconnect_peer(id);
                }
            }
        }
        Ok(())
    }

    /// The socket closes: every endpoint goes to [`EndpointState::Closing`], inproc names are
    /// released.
    pub fn close_all(&self, core: &Arc<Core>) {
        let map = std::mem::take(&mut *self.map.lock().unwrap_or_else(PoisonError::into_inner));
        for a in map.into_values().flatten() {
            match a {
                Attached::Listener(ctl) | Attached::Connect(ctl, _) => {
                    ctl.set(EndpointState::Closing);
                }
                Attached::InprocBound(name) => {
                    inproc::unbind(core, &name);
                }
                Attached::InprocConnected(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};

    use omq_zmtp::{Message, SocketType};

    use super::*;
    use crate::Options;

    fn core(f: impl FnOnce(&mut Options)) -> Arc<Core> {
        let mut o = Options::default();
        f(&mut o);
        Core::new(SocketType::Push, o).unwrap()
    }

    fn ep() -> Endpoint {
        "tcp://127.0.0.1:5555".parse().unwrap()
    }

    fn refused() -> io::Error {
        io::Error::from(io::ErrorKind::ConnectionRefused)
    }

    #[test]
    fn ctl_moves_forward_and_wakes() {
        let ctl = EndpointCtl::new();
        let mut cx = Context::from_waker(Waker::noop());
        let mut wait = pin!(ctl.until(|s| s != EndpointState::Running));
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        ctl.set(EndpointState::Aborted);
        ctl.set(EndpointState::Closing);
        assert_eq!(ctl.state(), EndpointState::Aborted, "states never go back");
        assert_eq!(
            wait.as_mut().poll(&mut cx),
            Poll::Ready(EndpointState::Aborted)
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let c = core(|o| {
            o.reconnect_interval = Some(Duration::from_millis(100));
            o.reconnect_interval_max = Some(Duration::from_millis(300));
        });
        let (mut conn, peer) = Connector::new(c, ep(), EndpointCtl::new()).unwrap();
        assert!(peer.is_some(), "pipes exist before the connection");
        let now = Instant::now();
        assert_eq!(conn.next(now), Step::Connect { give_up_at: None });
        let mut waits = Vec::new();
        for _ in 0..4 {
            let Step::Wait(d) = conn.connect_failed(&refused()) else {
                panic!("expected a wait")
            };
            waits.push(d.as_millis());
            assert_eq!(conn.waited(d, now), Step::Connect { give_up_at: None });
        }
        assert_eq!(waits, [100, 200, 300, 300]);
    }

    #[test]
    fn reconnect_stop_on_refused_reports_and_stops() {
        let c = core(|o| o.reconnect_stop.conn_refused = true);
        let mut mon = c.monitor();
        let (mut conn, _) = Connector::new(c, ep(), EndpointCtl::new()).unwrap();
        assert_eq!(conn.connect_failed(&refused()), Step::Stop);
        let events: Vec<_> = std::iter::from_fn(|| mon.try_recv().ok()).collect();
        assert!(matches!(events[0], MonitorEvent::ConnectDelayed { .. }));
        assert!(matches!(events[1], MonitorEvent::ReconnectStopped { .. }));
        // Other errors keep retrying.
        let c = core(|o| o.reconnect_stop.conn_refused = true);
        let (mut conn, _) = Connector::new(c, ep(), EndpointCtl::new()).unwrap();
        let other = io::Error::from(io::ErrorKind::TimedOut);
        assert!(matches!(conn.connect_failed(&other), Step::Wait(_)));
    }

    #[test]
    fn a_closed_socket_tries_only_while_something_is_queued_and_linger_lasts() {
        let now = Instant::now();
        // Nothing queued: stop at once.
        let c = core(|_| {});
        let ctl = EndpointCtl::new();
        let (mut conn, _) = Connector::new(c.clone(), ep(), ctl.clone()).unwrap();
        c.close();
        ctl.set(EndpointState::Closing);
        assert_eq!(conn.next(now), Step::Stop);

        // Queued, linger of 1 s: keep trying until then.
        let c = core(|o| o.linger = Some(Duration::from_secs(1)));
        let ctl = EndpointCtl::new();
        let (mut conn, _) = Connector::new(c.clone(), ep(), ctl.clone()).unwrap();
        c.try_send(Message::from("queued")).unwrap();
        ctl.set(EndpointState::Closing);
        assert_eq!(
            conn.next(now),
            Step::Connect {
                give_up_at: Some(now + Duration::from_secs(1))
            }
        );
        assert_eq!(conn.next(now + Duration::from_secs(2)), Step::Stop);

        // Aborted: stop whatever is queued.
        let c = core(|_| {});
        let ctl = EndpointCtl::new();
        let (mut conn, _) = Connector::new(c.clone(), ep(), ctl.clone()).unwrap();
        c.try_send(Message::from("queued")).unwrap();
        ctl.set(EndpointState::Aborted);
        assert_eq!(conn.next(now), Step::Stop);
    }

    #[test]
    fn immediate_creates_no_pipes_up_front() {
        let c = core(|o| o.immediate = true);
        let (_, peer) = Connector::new(c.clone(), ep(), EndpointCtl::new()).unwrap();
        assert_eq!(peer, None);
        assert!(matches!(
            c.try_send(Message::from("x")),
            Err(crate::TrySendError::Full(_))
        ));
    }
}
