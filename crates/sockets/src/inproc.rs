//! The inproc transport: sockets of one process joined by a pair of rings, no ZMTP.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use crate::core::{Core, InprocEnds, PeerId};
use crate::error::Error;

/// A connect that came before the bind: the connector's side is attached, the binder's ends
/// wait here.
#[derive(Debug)]
struct Pending {
    connector: Weak<Core>,
    connector_id: PeerId,
    /// The binder's ends.
    ends: InprocEnds,
}

#[derive(Debug, Default)]
struct Slot {
    bound: Option<Weak<Core>>,
    pending: Vec<Pending>,
}

fn registry() -> &'static Mutex<HashMap<String, Slot>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Slot>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// Binds `core` to the inproc `name`, attaching the connects that were waiting for it.
pub fn bind(core: &Arc<Core>, name: &str) -> Result<(), Error> {
    let pending = {
        let mut reg = registry().lock().unwrap_or_else(PoisonError::into_inner);
        let slot = reg.entry(name.to_owned()).or_default();
        if slot.bound.as_ref().is_some_and(|w| w.strong_count() > 0) {
            return Err(Error::AddressInUse(name.to_owned()));
        }
        slot.bound = Some(Arc::downgrade(core));
        std::mem::take(&mut slot.pending)
    };
    for p in pending {
        let Some(connector) = p.connector.upgrade() else {
            continue;
        };
        if !connector.socket_type().is_compatible(core.socket_type()) {
            connector.detach(p.connector_id);
            continue;
        }
        let Ok(id) = core.attach_inproc(p.ends, Some((p.connector.clone(), p.connector_id))) else {
            connector.detach(p.connector_id);
            continue;
        };
        connector.set_inproc_remote(p.connector_id, Arc::downgrade(core), id);
        establish(&connector, p.connector_id, core, id);
    }
    Ok(())
}

/// Whether a live socket is bound to the inproc `name`.
pub fn is_bound(name: &str) -> bool {
    let reg = registry().lock().unwrap_or_else(PoisonError::into_inner);
    reg.get(name)
        .and_then(|slot| slot.bound.as_ref())
        .is_some_and(|w| w.strong_count() > 0)
}

/// Removes the binding of `name` if `core` holds it. Established pipes stay.
pub fn unbind(core: &Arc<Core>, name: &str) -> bool {
    let mut reg = registry().lock().unwrap_or_else(PoisonError::into_inner);
    let Some(slot) = reg.get_mut(name) else {
        return false;
    };
    if slot
        .bound
        .as_ref()
        .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(core)))
    {
        slot.bound = None;
        if slot.pending.is_empty() {
            reg.remove(name);
        }
        return true;
    }
    false
}

/// Forgets a connect of `core` (peer `peer`) that still waits for its bind: `disconnect`.
pub fn forget(core: &Arc<Core>, peer: PeerId) {
    let mut reg = registry().lock().unwrap_or_else(PoisonError::into_inner);
    reg.retain(|_, slot| {
        slot.pending.retain(|p| {
            !(p.connector_id == peer && std::ptr::eq(p.connector.as_ptr(), Arc::as_ptr(core)))
        });
        slot.bound.is_some() || !slot.pending.is_empty()
    });
}

/// Connects `core` to the inproc `name`. Before the bind, the pipe exists on our side already,
/// so messages queue (up to the high-water mark) until the bind.
pub fn connect(core: &Arc<Core>, name: &str) -> Result<PeerId, Error> {
    let mut reg = registry().lock().unwrap_or_else(PoisonError::into_inner);
    let slot = reg.entry(name.to_owned()).or_default();
    let bound = slot.bound.as_ref().and_then(Weak::upgrade);
    match bound {
        Some(peer) => {
            drop(reg);
            if !core.socket_type().is_compatible(peer.socket_type()) {
                return Err(Error::NotSupported);
            }
            let (a, b) = InprocEnds::pair(
                core.inproc_capacity(peer.options().recv_hwm),
                peer.inproc_capacity(core.options().recv_hwm),
            );
            let a_id = core.attach_inproc(a, None)?;
            let b_id = match peer.attach_inproc(b, Some((Arc::downgrade(core), a_id))) {
                Ok(id) => id,
                Err(e) => {
                    core.detach(a_id);
                    return Err(e);
                }
            };
            core.set_inproc_remote(a_id, Arc::downgrade(&peer), b_id);
            establish(core, a_id, &peer, b_id);
            Ok(a_id)
        }
        None => {
            let o = core.options();
            let cap = core.inproc_capacity(o.recv_hwm);
            let (a, b) = InprocEnds::pair(cap, cap);
            let a_id = core.attach_inproc(a, None)?;
            slot.pending.push(Pending {
                connector: Arc::downgrade(core),
                connector_id: a_id,
                ends: b,
            });
            Ok(a_id)
        }
    }
}

/// Both sides attached: exchange routing ids and subscriptions; a refusal (a second PAIR
/// peer) detaches both.
fn establish(a: &Arc<Core>, a_id: PeerId, b: &Arc<Core>, b_id: PeerId) {
    let a_ok = b.established(b_id, a.options().routing_id.clone()).is_ok();
    let b_ok = a_ok && a.established(a_id, b.options().routing_id.clone()).is_ok();
    if !b_ok {
        a.detach(a_id);
        b.detach(b_id);
    }
}
